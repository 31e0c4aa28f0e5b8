"""Curves and figure tables of fits (the plots module draws these; it computes nothing)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .families import FAMILIES, parse_families
from .fitting import FitReport

__all__ = ["sorted_curve", "figure_tables"]


def sorted_curve(n: int, shape: float, scale: float = 1.0, family: str = "invgamma") -> np.ndarray:
    """The paper's Fig. 1 curve: ``isf(linspace(0, 1, n + 1)[1:], shape, scale=scale)``, i.e. the
    model's quantiles for n units sorted longest first (the last one is 0 for families on (0, inf))."""
    return FAMILIES[parse_families([family])[0]].isf(np.linspace(0.0, 1.0, n + 1)[1:], shape, scale)


def figure_tables(report: FitReport, reference_curve: tuple[float, float] | None = None, *,
                  scopes: Sequence[str] | None = None, grid: int = 300, bins: int = 40) -> dict[str, pd.DataFrame]:
    """Tidy tables for the four figures, per scope (log10 is used on every log axis):

    - ``sorted``: ``scope, rank, T, series`` (``units``, ``fit`` = inverse gamma's (or the best
      family's) quantile curve, ``reference``), ``label``; zero-valued curve ends are dropped.
    - ``hist``: ``scope, left, right, density`` histogram of log10 T (density per unit log10 T).
    - ``density``: ``scope, family, label, log10_T, density`` each fitted pdf transformed to log10 T
      (``f(T) * T * ln 10``), ``best`` marks the lowest-AIC family.
    - ``qq``: ``scope, family, theoretical, empirical`` for the best family, at plotting positions
      ``(i - 0.5)/n``.
    - ``ccdf``: ``scope, series (empirical|fit), family, label, T, ccdf``: empirical ``P(T >= t_i)``
      and each fitted survival function on a log grid.

    ``scopes``: the scopes to tabulate (default all).
    """
    sorted_rows, hist_rows, dens_rows, qq_rows, ccdf_rows = [], [], [], [], []
    for scope in (report.scopes if scopes is None else scopes):
        x = np.sort(report.samples_.loc[report.samples_["scope"] == scope, "T"].to_numpy())
        n = x.size
        fits = report.fits_[report.fits_["scope"] == scope]
        best = report.best(scope)
        rank = np.arange(1, n + 1)
        sorted_rows.append(pd.DataFrame({"scope": scope, "rank": rank, "T": x[::-1], "series": "units",
                                         "label": f"units (n={n})"}))
        curve_fam = "invgamma" if "invgamma" in set(fits["family"]) else best
        row = fits[fits["family"] == curve_fam].iloc[0]
        curves = [(curve_fam, row["shape"], row["scale"], "fit",
                   f"{row['label']} fit: {_param_text(row)}")]
        if reference_curve is not None:
            a, b = reference_curve
            curves.append(("invgamma", a, b, "reference", f"reference inverse gamma a={a:g}, b={b:g}"))
        for fam, sh, sc, series, label in curves:
            y = sorted_curve(n, sh, sc, fam)
            keep = y > 0
            sorted_rows.append(pd.DataFrame({"scope": scope, "rank": rank[keep], "T": y[keep], "series": series,
                                             "label": label}))
        lx = np.log10(x)
        dens, edges = np.histogram(lx, bins=bins, density=True)
        hist_rows.append(pd.DataFrame({"scope": scope, "left": edges[:-1], "right": edges[1:], "density": dens}))
        pad = 0.15 * (lx[-1] - lx[0]) + 0.1
        g = np.linspace(lx[0] - pad, lx[-1] + pad, grid)
        tg = 10.0 ** g
        tgrid = np.logspace(lx[0] - pad, lx[-1] + 2 * pad, grid)
        for _, r in fits.iterrows():
            fam = FAMILIES[r["family"]]
            with np.errstate(all="ignore"):
                dens_rows.append(pd.DataFrame({"scope": scope, "family": fam.name, "label": fam.label,
                                               "log10_T": g, "density": fam.pdf(tg, r["shape"], r["scale"]) * tg * np.log(10.0),
                                               "best": fam.name == best}))
                ccdf_rows.append(pd.DataFrame({"scope": scope, "series": "fit", "family": fam.name,
                                               "label": fam.label, "T": tgrid,
                                               "ccdf": fam.sf(tgrid, r["shape"], r["scale"])}))
        ccdf_rows.append(pd.DataFrame({"scope": scope, "series": "empirical", "family": "", "label": "units",
                                       "T": x, "ccdf": 1.0 - np.arange(n) / n}))
        r = fits[fits["family"] == best].iloc[0]
        theo = FAMILIES[best].ppf((np.arange(1, n + 1) - 0.5) / n, r["shape"], r["scale"])
        qq_rows.append(pd.DataFrame({"scope": scope, "family": best, "label": FAMILIES[best].label,
                                     "theoretical": theo, "empirical": x}))
    return {
        "sorted": pd.concat(sorted_rows, ignore_index=True),
        "hist": pd.concat(hist_rows, ignore_index=True),
        "density": pd.concat(dens_rows, ignore_index=True),
        "qq": pd.concat(qq_rows, ignore_index=True),
        "ccdf": pd.concat(ccdf_rows, ignore_index=True),
    }


def _param_text(row) -> str:
    parts = []
    if row["shape_name"]:
        parts.append(f"{row['shape_name']}={row['shape']:.3g}")
    parts.append(f"b={row['scale']:.3g}" + (" (fixed)" if row["scale_fixed"] else ""))
    return ", ".join(parts)

