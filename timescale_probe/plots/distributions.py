"""Figures of timescale distribution fits (paper Fig. 1 and companions), drawn from the tables of
:func:`timescale_probe.distributions.figure_tables` only (no computation here).

Every figure is one scope (``pooled``, ``layer 1``...), except ``sorted_units_all``: one panel per
scope that has data (Fig. 1 style; skipped scopes get no empty placeholder). T is in time steps,
log axes are base 10. ``source`` (e.g. the input file) is named in every title.
"""
from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Callable

import pandas as pd

from ..fileio import save_figure
from .style import PALETTE, new_figure

#: One colour per family, the same in every figure.
FAMILY_COLORS = {
    "invgamma": "#C44E52", "gamma": "#4C72B0", "lognorm": "#55A868", "weibull_min": "#8172B3",
    "expon": "#937860", "fisk": "#DA8BC3", "invweibull": "#CCB974", "lomax": "#64B5CD",
}
FIGURE_KINDS = ("sorted_units", "log_density", "qq", "ccdf")
_STYLES = {"units": dict(color=PALETTE["baseline"], marker=".", ls="none", ms=2.5, alpha=0.7),
           "fit": dict(color=FAMILY_COLORS["invgamma"], lw=1.6),
           "reference": dict(color=PALETTE["reference"], lw=1.4, ls="--")}


def _color(family: str) -> str:
    return FAMILY_COLORS.get(family, "#333333")


def _title(text: str, source: str | None) -> str:
    return f"{text}\n{source}" if source else text


def _draw_sorted(ax, d: pd.DataFrame) -> None:
    for series in ("units", "fit", "reference"):
        s = d[d["series"] == series]
        if not s.empty:
            ax.plot(s["rank"], s["T"], label=s["label"].iloc[0], **_STYLES[series])
    ax.set_yscale("log")
    ax.set_xlabel("unit (sorted by decreasing timescale)")
    ax.set_ylabel("timescale T (steps)")
    ax.legend(frameon=False, fontsize=7)


def scope_slug(scope: str) -> str:
    """File-name form of a scope: ``layer 1`` -> ``layer1``, ``pooled`` -> ``pooled``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "", scope.replace(" ", "")) or "scope"


def plot_sorted_units(sorted_df: pd.DataFrame, scope: str, title: str | None = None, source: str | None = None):
    """Paper Fig. 1: units sorted by decreasing T (log y) with the fitted quantile curve and an
    optional reference curve (``series`` = units | fit | reference)."""
    d = sorted_df[sorted_df["scope"] == scope]
    fig, axes = new_figure(width=5.0, height=3.6)
    ax = axes[0, 0]
    _draw_sorted(ax, d)
    ax.set_title(title or _title(f"Unit timescales, {scope}", source), fontsize=9)
    return fig


def plot_sorted_units_panels(sorted_df: pd.DataFrame, scopes=None, source: str | None = None):
    """Fig. 1 style: one sorted-units panel per scope that has units in ``sorted_df`` (scopes
    without data get no panel). Returns the figure, or None when no scope has data."""
    present = list(dict.fromkeys(sorted_df.loc[sorted_df["series"] == "units", "scope"]))
    scopes = present if scopes is None else [s for s in scopes if s in present]
    if not scopes:
        return None
    fig, axes = new_figure(ncols=len(scopes), width=4.2, height=3.6)
    for ax, scope in zip(axes[0], scopes):
        _draw_sorted(ax, sorted_df[sorted_df["scope"] == scope])
        ax.set_title(scope, fontsize=9)
    if source:
        fig.suptitle(f"Unit timescales: {source}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_log_density(hist_df: pd.DataFrame, density_df: pd.DataFrame, scope: str, title: str | None = None, source: str | None = None):
    """Histogram of log10 T with every fitted pdf transformed to log10 T (best fit drawn thicker)."""
    h = hist_df[hist_df["scope"] == scope]
    d = density_df[density_df["scope"] == scope]
    fig, axes = new_figure(width=5.0, height=3.6)
    ax = axes[0, 0]
    ax.bar(h["left"], h["density"], width=h["right"] - h["left"], align="edge", color=PALETTE["null"],
           edgecolor="white", linewidth=0.3, label="units")
    for family, g in d.groupby("family", sort=False):
        best = bool(g["best"].iloc[0])
        ax.plot(g["log10_T"], g["density"], color=_color(family), lw=2.0 if best else 1.0,
                label=g["label"].iloc[0] + (" (best AIC)" if best else ""))
    ax.set_xlabel("log10 timescale T (steps)")
    ax.set_ylabel("density of log10 T")
    top = max(h["density"].max(), 1e-12)
    ax.set_ylim(0, top * 1.35)
    ax.set_title(title or _title(f"Density of log timescales, {scope}", source), fontsize=9)
    _legend_outside(ax)
    return fig


def _legend_outside(ax) -> None:
    """The legend to the right of the axes: with eight families, a legend inside covers curves
    (it hid the exponential's peak in the demo's layer-2 density)."""
    ax.legend(frameon=False, fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def plot_qq(qq_df: pd.DataFrame, scope: str, title: str | None = None, source: str | None = None):
    """Quantile-quantile plot of the best fit (log-log), with the identity line."""
    d = qq_df[qq_df["scope"] == scope]
    fig, axes = new_figure(width=3.8, height=3.6)
    ax = axes[0, 0]
    family = d["family"].iloc[0]
    ax.plot(d["theoretical"], d["empirical"], ".", ms=2.5, color=_color(family), alpha=0.8)
    both = pd.concat([d["theoretical"], d["empirical"]])
    both = both[both > 0]
    lo, hi = both.min(), both.max()
    ax.plot([lo, hi], [lo, hi], color="#333333", lw=0.8, ls="--", label="y = x")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"{d['label'].iloc[0]} quantile (steps)")
    ax.set_ylabel("unit timescale quantile (steps)")
    ax.set_title(title or _title(f"QQ plot, best fit ({d['label'].iloc[0]}), {scope}", source), fontsize=9)
    ax.legend(frameon=False, fontsize=7)
    return fig


def plot_ccdf(ccdf_df: pd.DataFrame, scope: str, title: str | None = None, source: str | None = None):
    """Complementary CDF P(T >= t) on log-log axes: units and every fitted survival function."""
    d = ccdf_df[ccdf_df["scope"] == scope]
    fig, axes = new_figure(width=5.0, height=3.6)
    ax = axes[0, 0]
    emp = d[d["series"] == "empirical"]
    ax.step(emp["T"], emp["ccdf"], where="post", color="black", lw=1.2, label="units")
    fits = d[d["series"] == "fit"]
    for family, g in fits.groupby("family", sort=False):
        g = g[g["ccdf"] > 0]
        ax.plot(g["T"], g["ccdf"], color=_color(family), lw=1.0, label=g["label"].iloc[0] if len(g) else family)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ymin = emp["ccdf"][emp["ccdf"] > 0].min() if len(emp) else 1e-4
    ax.set_ylim(ymin / 5.0, 1.5)
    ax.set_xlabel("timescale t (steps)")
    ax.set_ylabel("P(T >= t)")
    ax.set_title(title or _title(f"Complementary CDF, {scope}", source), fontsize=9)
    _legend_outside(ax)
    return fig


def fit_figures(tables: dict[str, pd.DataFrame], scopes=None, prefix: str = "",
                source: str | None = None) -> dict[str, Callable[[], object]]:
    """The fit figures as ``{file name: builder}`` (drawn only when called, as
    :attr:`timescale_probe.analysis.Result.figures` wants): ``<kind>_<scope>.pdf`` for every kind in
    :data:`FIGURE_KINDS` and scope (e.g. ``sorted_units_pooled.pdf``, ``qq_layer2.pdf``) and, with
    several scopes, ``sorted_units_all.pdf`` with one panel per scope that has data. ``source``
    (the input) is named in every title."""
    scopes = list(dict.fromkeys(tables["sorted"]["scope"])) if scopes is None else list(scopes)
    out: dict[str, Callable[[], object]] = {}
    for scope in scopes:
        slug = scope_slug(scope)
        out[f"{prefix}sorted_units_{slug}.pdf"] = partial(plot_sorted_units, tables["sorted"], scope, source=source)
        out[f"{prefix}log_density_{slug}.pdf"] = partial(plot_log_density, tables["hist"], tables["density"], scope,
                                                          source=source)
        out[f"{prefix}qq_{slug}.pdf"] = partial(plot_qq, tables["qq"], scope, source=source)
        out[f"{prefix}ccdf_{slug}.pdf"] = partial(plot_ccdf, tables["ccdf"], scope, source=source)
    present = set(tables["sorted"].loc[tables["sorted"]["series"] == "units", "scope"])
    if len(scopes) > 1 and present & set(scopes):
        out[f"{prefix}sorted_units_all.pdf"] = partial(plot_sorted_units_panels, tables["sorted"], scopes, source=source)
    return out


def draw_fit_figures(tables: dict[str, pd.DataFrame], out_dir, scopes=None, prefix: str = "",
                     source: str | None = None) -> list[Path]:
    """Write :func:`fit_figures` into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    return [save_figure(build(), out_dir / name) for name, build in fit_figures(tables, scopes, prefix, source).items()]
