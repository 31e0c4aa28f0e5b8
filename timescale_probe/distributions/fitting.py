"""Fitting every family to one or several scopes (pooled, per layer), comparing them, and the
verdict on a fit (:func:`fit_verdict`: the best of all fitted families, not only of those a claim
names).

Comparisons follow powerlaw's ``distribution_compare``: ``R`` is a log-likelihood ratio and comes
with a p-value from :func:`~timescale_probe.distributions.compare.likelihood_ratio_test`.
Non-nested pairs (every family against ``compare_to``, inverse gamma by default) use Vuong's test;
nested pairs (exponential inside gamma and inside Weibull: shape 1) use Wilks' test.

Units whose ``T`` is zero, negative, infinite or NaN cannot enter a likelihood on (0, inf): they are
excluded and counted (``n_excluded_zero``, ``n_excluded_negative``, ``n_excluded_inf``,
``n_excluded_nan`` in every table), never dropped silently. A scope whose usable values take fewer
than ``MIN_DISTINCT`` distinct values (e.g. an MTS layer 1 fixed at T = 3 and 4) is not described by
any continuous law: it is skipped, with the reason, in ``skipped_``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError, OptionError
from ..progress import as_progress
from ..validation import check_choice, check_fraction, check_int, check_positive
from .bootstrap import CI_METHODS, KS_ALPHA, exclusion_counts, fit_one_family
from .compare import likelihood_ratio_test
from .families import FAMILIES, NESTED_PAIRS, parse_families
from .inputs import parse_layers

__all__ = ["FitReport", "fit_timescales", "fit_table", "fit_verdict", "FIT_COLUMNS",
           "COMPARISON_COLUMNS", "MIN_DISTINCT"]

#: Fewest distinct usable values a scope needs before continuous laws are fitted to it.
MIN_DISTINCT = 3
#: A scope where one value is shared by at least this fraction of the units gets a warning.
ATOM_WARNING = 0.2

FIT_COLUMNS = [
    "scope", "family", "label", "shape_name", "shape", "shape_lo", "shape_hi", "scale", "scale_lo",
    "scale_hi", "scale_fixed", "k", "n", "loglik", "aic", "bic", "delta_aic", "ks", "ks_p", "ks_rejected", "converged",
    "boot_unconverged", "n_boot", "ci_method", "ci_level", "n_excluded_zero", "n_excluded_negative",
    "n_excluded_inf", "n_excluded_nan",
]
COMPARISON_COLUMNS = ["scope", "family", "vs", "test", "R", "statistic", "p", "favoured", "significant"]


@dataclass
class FitReport:
    """Result of fitting timescale distributions, one or several scopes (``pooled``, ``layer 1``...).

    Attributes (tidy DataFrames):

    - ``fits_``: one row per scope and family: ``family`` (scipy name), ``label``, ``shape_name``
      (``a``/``s``/``c``, empty for expon), ``shape``, ``scale`` (= b, same unit as T: time steps),
      ``*_lo``/``*_hi`` bootstrap percentile interval (``ci_level``, ``n_boot``; ``ci_method`` says
      which bootstrap gave it: ``parametric``, ``nonparametric`` or ``none``),
      ``scale_fixed``, ``k`` free parameters, ``n`` units used, ``loglik``, ``aic``, ``bic``,
      ``delta_aic`` (to the scope's best), ``ks`` and ``ks_p`` (parametric bootstrap),
      ``ks_rejected`` (``ks_p < KS_ALPHA``),
      ``converged`` (observed fit), ``boot_unconverged`` (replicates whose MLE did not converge),
      ``n_excluded_zero|negative|inf|nan``.
    - ``comparisons_``: ``family`` vs ``vs``, ``test`` (``vuong`` or ``wilks``), ``R`` = loglik(family)
      - loglik(vs) (> 0 favours ``family``), ``statistic`` (Vuong z, or 2R for Wilks), ``p``,
      ``favoured`` (Vuong: the sign; Wilks: the bigger model when p < 0.05, else the smaller),
      ``significant`` (p < 0.05).
    - ``samples_``: ``scope, T`` the values fitted (excluded units left out), for figures.
    - ``skipped_``: scopes that could not be fitted, with the reason.
    - ``warnings_``: ``(scope, message)`` for scopes fitted despite something a reader should know
      (e.g. many units sharing one value).
    """

    fits_: pd.DataFrame
    comparisons_: pd.DataFrame
    samples_: pd.DataFrame
    options: dict[str, Any]
    skipped_: list[tuple[str, str]] = field(default_factory=list)
    warnings_: list[tuple[str, str]] = field(default_factory=list)

    @property
    def scopes(self) -> list[str]:
        return list(dict.fromkeys(self.fits_["scope"]))

    def params(self, family: str = "invgamma", scope: str | None = None) -> tuple[float, float]:
        """(shape, scale) of ``family`` in ``scope`` (the first scope by default)."""
        row = self._row(family, scope)
        return float(row["shape"]), float(row["scale"])

    def _row(self, family: str, scope: str | None) -> pd.Series:
        scope = self.scopes[0] if scope is None else scope
        sel = self.fits_[(self.fits_["scope"] == scope) & (self.fits_["family"] == family)]
        if sel.empty:
            raise KeyError(f"no fit of {family} in scope {scope}")
        return sel.iloc[0]

    def best(self, scope: str | None = None) -> str:
        """Family with the lowest AIC in ``scope``."""
        scope = self.scopes[0] if scope is None else scope
        f = self.fits_[self.fits_["scope"] == scope]
        return str(f.loc[f["aic"].idxmin(), "family"])

    def verdict(self, scope: str | None = None, reference: str = "invgamma") -> dict[str, Any]:
        """:func:`fit_verdict` of ``scope`` (the first scope by default)."""
        return fit_verdict(self.fits_, scope=self.scopes[0] if scope is None else scope, reference=reference)


def _check_fit_args(*, n_boot: int, ci_level: float, ci_method: str, fix_scale: float | None, families,
                    compare_to: str) -> list[str]:
    """The arguments of :func:`fit_table`, checked before any fitting (messages name the Python
    parameter; the command line checks them earlier, as fields of ``analyses.fit.FitOptions``);
    returns the parsed family names."""
    check_int(n_boot, "n_boot", minimum=0)
    check_fraction(ci_level, "ci_level")
    check_choice(ci_method, "ci_method", CI_METHODS)
    if fix_scale is not None:
        check_positive(fix_scale, "fix_scale")
    fams = parse_families(families)
    parse_families([compare_to], param="compare_to")
    return fams


def _describe_values(x: np.ndarray) -> str:
    vals = np.unique(x)
    shown = ", ".join(f"{v:g}" for v in vals[:4]) + (", ..." if vals.size > 4 else "")
    return f"{vals.size} distinct values ({shown})"


def _fit_scope(T, scope: str, families: list[str], *, fix_scale, n_boot, seed, ci_level, ci_method,
               compare_to, progress) -> tuple[list[dict], list[dict], np.ndarray, dict[str, int], list[str]]:
    x, counts = exclusion_counts(T)
    excl = ", ".join(f"{k[len('n_excluded_'):]}: {v}" for k, v in counts.items() if v)
    excl = f" after excluding {excl}" if excl else ""
    if x.size < 3:
        raise InputError(f"{scope}: only {x.size} usable timescales{excl}; need at least 3")
    n_distinct = np.unique(x).size
    if n_distinct < MIN_DISTINCT:
        raise InputError(
            f"{scope}: the {x.size} usable timescales{excl} take only {_describe_values(x)}, which no "
            f"continuous law describes (e.g. an MTS layer fixed at T = 3 and 4); need {MIN_DISTINCT} distinct values"
        )
    notes = []
    _, tie_counts = np.unique(x, return_counts=True)
    top = int(tie_counts.argmax())
    if tie_counts[top] / x.size >= ATOM_WARNING:
        value = np.unique(x)[top]
        notes.append(f"{scope}: {tie_counts[top]} of {x.size} units ({tie_counts[top] / x.size:.0%}) share the "
                     f"value T = {value:g}; continuous laws describe such an atom poorly")
    rows, logpdfs = [], {}
    for name in families:
        row, lp = fit_one_family(x, FAMILIES[name], fixed_scale=fix_scale, n_boot=n_boot, seed=seed, scope=scope,
                                 ci_level=ci_level, ci_method=ci_method, progress=progress)
        row.update(scope=scope, n_boot=n_boot, ci_level=ci_level, **counts)
        rows.append(row)
        logpdfs[name] = lp
    best_aic = min(r["aic"] for r in rows)
    for r in rows:
        r["delta_aic"] = r["aic"] - best_aic
    comps = []
    if compare_to in logpdfs:
        for name in families:
            if name == compare_to:
                continue
            t = likelihood_ratio_test(logpdfs[compare_to], logpdfs[name])
            comps.append({"scope": scope, "family": compare_to, "vs": name, "test": t.test, "R": t.R,
                          "statistic": t.statistic, "p": t.p, "favoured": t.favoured(compare_to, name),
                          "significant": t.p < 0.05})
    k = {r["family"]: r["k"] for r in rows}
    for big, small in NESTED_PAIRS:
        if big in logpdfs and small in logpdfs and k[big] > k[small]:
            t = likelihood_ratio_test(logpdfs[big], logpdfs[small], nested=True, df=k[big] - k[small])
            comps.append({"scope": scope, "family": big, "vs": small, "test": t.test, "R": t.R,
                          "statistic": t.statistic, "p": t.p, "favoured": t.favoured(big, small),
                          "significant": t.p < 0.05})
    return rows, comps, x, counts, notes


def fit_timescales(T, families: str | Sequence[str] | None = None, *, fix_scale: float | None = None,
                   n_boot: int = 1000, seed: int = 0, ci_level: float = 0.95, ci_method: str = "auto",
                   compare_to: str = "invgamma", scope: str = "pooled", progress: Any = None) -> FitReport:
    """Fit distribution families to one set of timescales ``T`` (time steps; excluded units counted).

    ``fix_scale``: fit shapes only with ``scale = fix_scale`` (the reference uses 1).
    ``n_boot``: bootstrap replicates for the KS p-value and the intervals (0: none).
    ``ci_method``: ``auto`` (parametric intervals unless KS rejects the family, then
    nonparametric), ``parametric`` or ``nonparametric``; each row's ``ci_method`` says which was used.
    ``progress``: as everywhere in the package (:mod:`timescale_probe.progress`: ``True`` for a bar,
    a Progress object, or a callable ``f(k)``), advanced by every ``k`` parametric refits.
    """
    return fit_table(pd.DataFrame({"T": np.asarray(T, dtype=np.float64).ravel()}), column="T", layers="pooled",
                     families=families, fix_scale=fix_scale, n_boot=n_boot, seed=seed, ci_level=ci_level,
                     ci_method=ci_method, compare_to=compare_to, progress=progress, pooled_name=scope)


def _fit_scopes(df, column, scopes, fams, pooled_name, bar, fit_rows, comp_rows, samples, skipped, notes, *,
                fix_scale, n_boot, seed, ci_level, ci_method, compare_to) -> None:
    for name, layer_list in scopes:
        scope_name = pooled_name if name == "pooled" else name
        T = df[column] if layer_list is None else df.loc[df["layer"].isin(layer_list), column]
        try:
            rows, comps, x, _, scope_notes = _fit_scope(
                np.asarray(T, dtype=np.float64), scope_name, fams, fix_scale=fix_scale, n_boot=n_boot, seed=seed,
                ci_level=ci_level, ci_method=ci_method, compare_to=compare_to, progress=bar.advance)
        except InputError as exc:
            skipped.append((scope_name, str(exc)))
            bar.advance(n_boot * len(fams))
            continue
        fit_rows += rows
        comp_rows += comps
        notes += [(scope_name, msg) for msg in scope_notes]
        if layer_list is not None and len(layer_list) > 1:
            for layer in layer_list:
                xl, _ = exclusion_counts(df.loc[df["layer"] == layer, column])
                if xl.size and np.unique(xl).size < MIN_DISTINCT:
                    notes.append((scope_name, f"{scope_name}: includes layer {layer}, whose {xl.size} units take only "
                                              f"{_describe_values(xl)}; continuous laws describe such atoms poorly"))
        samples.append(pd.DataFrame({"scope": scope_name, "T": x}))


def fit_table(df: pd.DataFrame, column: str = "T", layers: str | Sequence | None = "all",
              families: str | Sequence[str] | None = None, *, fix_scale: float | None = None,
              n_boot: int = 1000, seed: int = 0, ci_level: float = 0.95, ci_method: str = "auto",
              compare_to: str = "invgamma", progress: Any = None,
              pooled_name: str = "pooled") -> FitReport:
    """Fit per layer and/or pooled from a timescales table (``layer`` column optional; ``column``
    e.g. ``T``, ``T_bias`` or ``T_data``). ``layers`` as in :func:`parse_layers`.

    Scopes that cannot be fitted (fewer than 3 usable values or fewer than ``MIN_DISTINCT``
    distinct values) are skipped and listed in ``skipped_``; if none can be fitted, InputError.
    """
    fams = _check_fit_args(n_boot=n_boot, ci_level=ci_level, ci_method=ci_method, fix_scale=fix_scale,
                             families=families, compare_to=compare_to)
    compare_to = parse_families([compare_to], param="compare_to")[0]
    if column not in df.columns:
        raise OptionError(f"column: no column '{column}' in the timescales table "
                          f"(columns: {', '.join(map(str, df.columns))})", param="column")
    available = list(dict.fromkeys(df["layer"])) if "layer" in df.columns else []
    if "layer" in df.columns:
        scopes = parse_layers(layers, available)
    else:
        if layers not in (None, "all", "pooled", "each") and list(layers) != ["pooled"]:
            raise OptionError("layers: the input has no layer column; only 'pooled' is possible", param="layers")
        scopes = [("pooled", None)]
    fit_rows, comp_rows, samples, skipped, notes = [], [], [], [], []
    bar = as_progress(progress if int(n_boot) > 0 else None)
    bar.start(int(n_boot) * len(fams) * len(scopes), "fitting (bootstrap refits)")
    try:
        _fit_scopes(df, column, scopes, fams, pooled_name, bar, fit_rows, comp_rows, samples, skipped, notes,
                    fix_scale=fix_scale, n_boot=int(n_boot), seed=seed, ci_level=ci_level, ci_method=ci_method,
                    compare_to=compare_to)
    finally:
        bar.done()
    if not fit_rows:
        raise InputError(skipped[0][1] if len(skipped) == 1 else "no scope could be fitted: " +
                         "; ".join(msg for _, msg in skipped))
    options = {"families": fams, "fix_scale": fix_scale, "n_boot": int(n_boot), "seed": seed, "ci_level": ci_level,
               "ci_method": ci_method, "compare_to": compare_to, "column": column,
               "scopes": [s for s, _ in scopes]}
    return FitReport(
        fits_=pd.DataFrame(fit_rows)[FIT_COLUMNS],
        comparisons_=pd.DataFrame(comp_rows, columns=COMPARISON_COLUMNS),
        samples_=pd.concat(samples, ignore_index=True),
        options=options,
        skipped_=skipped,
        warnings_=notes,
    )


def fit_verdict(fits, scope: str | None = None, reference: str = "invgamma") -> dict[str, Any]:
    """The whole truth about one scope's fits: the best of ALL fitted families, and where the
    ``reference`` family (inverse gamma, the paper's claim) stands.

    ``fits``: a :class:`FitReport` or its ``fits_`` table (``fits.csv`` read back works too);
    ``scope``: default the ``pooled`` scope when present, else the first. Returns a dict:

    - ``scope``, ``n`` (units fitted), ``families`` (scipy names fitted, in table order)
    - ``best_family`` (scipy name, lowest AIC), ``best_label``, ``best_aic``, ``best_loglik``,
      ``best_ks_stat``, ``best_ks_p``, ``best_ks_rejected``
    - ``reference_family``, ``reference_label``, ``reference_aic``, ``reference_loglik``
      (NaN when the reference was not fitted), ``delta_aic_reference`` (reference AIC - best AIC,
      >= 0; 0 when the reference is best), ``delta_aic_invgamma`` (the same for inverse gamma,
      whatever the reference), ``reference_is_best``
    - ``ks_stat``, ``ks_p``, ``ks_rejected`` of the reference (KS p from the parametric bootstrap;
      NaN / False without a bootstrap), ``shape``, ``shape_lo``, ``shape_hi``, ``scale``,
      ``scale_lo``, ``scale_hi`` of the reference and ``ci_method`` (the bootstrap behind those
      intervals: ``parametric``, ``nonparametric`` or ``none``)
    - ``beats``: families the reference has a lower AIC than; ``beaten_by``: those with a lower AIC
      than the reference (best first)
    - ``ranking``: ``[(family, label, delta_aic)]`` by AIC, best first
    - ``text``: one sentence saying all of the above, e.g. "best of 8 families: Fréchet (AIC
      5073.4); inverse gamma ΔAIC 545.0, KS 0.150 (p 0.001, rejected: intervals from the
      nonparametric bootstrap); inverse gamma beats gamma, lognormal".
    """
    table = fits.fits_ if isinstance(fits, FitReport) else pd.DataFrame(fits)
    if table.empty:
        raise InputError("no fits to judge")
    scopes = list(dict.fromkeys(table["scope"])) if "scope" in table.columns else [None]
    if scope is None:
        scope = "pooled" if "pooled" in scopes else scopes[0]
    f = table if scope is None else table[table["scope"] == scope]
    if f.empty:
        raise InputError(f"no fits in scope '{scope}' (scopes: {', '.join(map(str, scopes))})")
    reference = parse_families([reference])[0]
    order = f.sort_values("aic", kind="stable")
    best = order.iloc[0]
    ranking = [(str(r["family"]), FAMILIES[r["family"]].label, float(r["aic"] - best["aic"]))
               for _, r in order.iterrows()]
    by_family = f.set_index("family")
    nan = float("nan")

    def _ks_rejected(row) -> bool:
        if "ks_rejected" in row.index and pd.notna(row["ks_rejected"]):
            return bool(row["ks_rejected"])
        return bool(pd.notna(row["ks_p"]) and row["ks_p"] < KS_ALPHA)

    out: dict[str, Any] = {
        "scope": scope, "n": int(best["n"]), "families": [str(x) for x in f["family"]],
        "best_family": str(best["family"]), "best_label": FAMILIES[best["family"]].label,
        "best_aic": float(best["aic"]), "best_loglik": float(best["loglik"]),
        "best_ks_stat": float(best["ks"]), "best_ks_p": float(best["ks_p"]), "best_ks_rejected": _ks_rejected(best),
        "reference_family": reference, "reference_label": FAMILIES[reference].label,
        "ranking": ranking,
    }
    if "invgamma" in by_family.index:
        out["delta_aic_invgamma"] = float(by_family.loc["invgamma", "aic"] - best["aic"])
    else:
        out["delta_aic_invgamma"] = nan
    if reference in by_family.index:
        ref = by_family.loc[reference]
        d_ref = float(ref["aic"] - best["aic"])
        out.update({
            "reference_aic": float(ref["aic"]), "reference_loglik": float(ref["loglik"]),
            "delta_aic_reference": d_ref, "reference_is_best": reference == best["family"],
            "ks_stat": float(ref["ks"]), "ks_p": float(ref["ks_p"]), "ks_rejected": _ks_rejected(ref),
            "ci_method": str(ref["ci_method"]),
            **{k: float(ref[k]) for k in ("shape", "shape_lo", "shape_hi", "scale", "scale_lo", "scale_hi")},
            "beats": [fam for fam, _, d in ranking if d > d_ref],
            "beaten_by": [fam for fam, _, d in ranking if d < d_ref],
        })
    else:
        out.update({"reference_aic": nan, "reference_loglik": nan, "delta_aic_reference": nan,
                    "reference_is_best": False, "ks_stat": nan, "ks_p": nan, "ks_rejected": False,
                    "ci_method": "none", "shape": nan, "shape_lo": nan, "shape_hi": nan, "scale": nan,
                    "scale_lo": nan, "scale_hi": nan, "beats": [], "beaten_by": []})
    out["text"] = _verdict_text(out)
    return out


def _verdict_text(v: dict[str, Any]) -> str:
    n_fam = len(v["families"])
    text = f"best of {n_fam} famil{'y' if n_fam == 1 else 'ies'}: {v['best_label']} (AIC {v['best_aic']:.1f})"
    if np.isnan(v["reference_aic"]):
        return text + f"; {v['reference_label']} not fitted"
    lab = v["reference_label"]
    if v["reference_is_best"]:
        text += f", {lab} itself"
    else:
        text += f"; {lab} \N{GREEK CAPITAL LETTER DELTA}AIC {v['delta_aic_reference']:.1f}"
    if np.isfinite(v["ks_p"]):
        verdict = "rejected" if v["ks_rejected"] else "not rejected"
        text += f", KS {v['ks_stat']:.3f} (p {v['ks_p']:.3g}, {verdict}"
        if v["ci_method"] != "none":
            text += f"; intervals from the {v['ci_method']} bootstrap"
        text += ")"
    else:
        text += f", KS {v['ks_stat']:.3f} (no bootstrap p-value)"
    labels = [FAMILIES[f].label for f in v["beats"]]
    if labels:
        text += f"; {lab} beats " + ", ".join(labels)
    return text

