"""``fit-distribution``: fit distributions of unit timescales (paper Fig. 1 and §1) on the analysis
protocol. The statistics live in :mod:`timescale_probe.distributions`; this module declares the
options once and gathers what is written."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

from ..analysis import Options, Result, option
from ..analysis.options import out_option, seed_option
from ..errors import OptionError
from ..timescale_math import CONVENTIONS

__all__ = ["FitOptions", "FitResult", "run_fit", "MAX_FIT_BOOTSTRAP"]

#: Most bootstrap replicates per fit: each refits every family, about 6 ms of CPU for 8 families on
#: 1,150 units, so 100,000 replicates are about 10 minutes per scope (time grows with units and scopes).
MAX_FIT_BOOTSTRAP = 100_000


def _families(value: tuple[str, ...]) -> tuple[str, ...]:
    from ..distributions import parse_families

    return tuple(parse_families(list(value)))


def _family(value: str) -> str:
    from ..distributions import parse_families

    return parse_families([value], param="compare_to")[0]


def _ci_method(value: str) -> str:
    from ..distributions import CI_METHODS

    if value not in CI_METHODS:
        raise OptionError(f"unknown ci_bootstrap '{value}': use {', '.join(CI_METHODS)}")
    return value


def _reference_curve(value: tuple[float, ...]) -> tuple[float, float]:
    if len(value) not in (1, 2) or not all(v > 0 for v in value):
        raise OptionError(f"reference_curve needs the inverse-gamma shape and scale, both > 0, e.g. 1.4,1 (got "
                          f"{','.join(f'{v:g}' for v in value)})")
    return (value[0], value[1] if len(value) == 2 else 1.0)


@dataclasses.dataclass(frozen=True)
class FitOptions(Options):
    inputs: tuple[Path, ...] = option(
        help="A checkpoint (T_bias), a CSV with a T / T_data / T_bias column (and optional layer column), or .npy "
             "arrays (one per layer).", argument=True, metavar="INPUT...")
    out: Path = out_option("fits")
    layers: str = option("all", "pooled | each | all (each layer and pooled) | layer labels, e.g. 1,2 or 2,pooled.")
    families: tuple[str, ...] = option(
        ("all",), "Comma-separated scipy names or aliases: invgamma, gamma, lognorm, weibull_min, expon, fisk "
        "(log-logistic), invweibull (Fréchet), lomax; all = the eight.", check=_families)
    fix_scale: Optional[float] = option(None, "Fit shapes only with this scale (1 reproduces the reference's "
                                        "shape-only fit).", gt=0)
    bootstrap: int = option(1000, "Bootstrap replicates (KS p-value, intervals); 0: none. Each refits every family "
                            "(about 6 ms of CPU for 8 families on 1,150 units).", ge=0, le=MAX_FIT_BOOTSTRAP)
    ci_bootstrap: str = option("auto", "Intervals from parametric refits (parametric), from resampled units "
                               "(nonparametric), or auto: parametric unless the KS test rejects the family, then "
                               "nonparametric.", check=_ci_method)
    ci_level: float = option(0.95, "Confidence level of the percentile intervals.", gt=0, lt=1)
    seed: int = seed_option(0, "Random seed of the bootstrap.")
    column: Optional[str] = option(None, "Column of a CSV to fit (default T, else T_data, else T_bias).")
    layer_names: Optional[str] = option(None, "Comma-separated labels of the layers (default 1..k in input order).")
    reference_curve: Optional[tuple[float, ...]] = option(
        None, "Also draw inverse-gamma quantiles with this shape,scale, e.g. 1.4,1 (paper Fig. 1).",
        check=_reference_curve)
    convention: str = option("paper", "Timescale convention for checkpoint biases: paper (T=-1/log f) or chrono "
                             "(T=1/(1-f)).", choices=CONVENTIONS)
    figures: str = option("all", "Figures for every scope (all), the pooled scope only (pooled; else the first "
                          "scope), or none.", choices=("all", "pooled", "none"))
    compare_to: str = option("invgamma", "Family every other family is compared with (Vuong's test).", check=_family)


@dataclasses.dataclass
class FitResult(Result):
    command = "fit-distribution"

    report: Any = None
    verdicts: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    source: str = ""
    #: units read, and how many of them were excluded (T not in (0, inf)) by reason
    n_units: int = 0
    excluded: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def fits(self):
        return self.tables["fits.csv"]


def _source_text(inputs, column) -> str:
    """Short name of the input for titles: the file (or the first and how many more) and the column."""
    first = Path(inputs[0]).name
    text = first if len(inputs) == 1 else f"{first} and {len(inputs) - 1} more"
    return f"{text} ({column})" if column else text


def run_fit(opts: FitOptions, *, progress: Any = None) -> FitResult:
    """Fit every family (MLE, loc 0) per scope, with AIC/BIC, KS bootstrap p-values, bootstrap
    intervals and likelihood-ratio comparisons with ``compare_to``; the verdict per scope names
    the best of all fitted families (:func:`distributions.fit_verdict`)."""
    from ..distributions import exclusion_counts, figure_tables, fit_table, fit_verdict, load_timescales
    from ..plots.distributions import fit_figures

    df = load_timescales(list(opts.inputs), opts.column, layer_names=opts.layer_names, convention=opts.convention)
    report = fit_table(df, column="T", layers=opts.layers, families=list(opts.families), fix_scale=opts.fix_scale,
                       n_boot=opts.bootstrap, seed=opts.seed, ci_level=opts.ci_level, ci_method=opts.ci_bootstrap,
                       compare_to=opts.compare_to, progress=progress)
    column = df.attrs.get("column")
    source = _source_text(opts.inputs, column)
    verdicts = {scope: fit_verdict(report, scope, reference=opts.compare_to) for scope in report.scopes}
    scopes = {}
    for scope in report.scopes:
        first = report.fits_[report.fits_["scope"] == scope].iloc[0]
        scopes[scope] = {"n": int(first["n"]),
                         "excluded": {k: int(first[k]) for k in ("n_excluded_zero", "n_excluded_negative",
                                                                 "n_excluded_inf", "n_excluded_nan")},
                         "verdict": verdicts[scope]}
    figures = {}
    if opts.figures != "none":
        drawn = report.scopes if opts.figures == "all" else (["pooled"] if "pooled" in report.scopes
                                                              else report.scopes[:1])
        figures = fit_figures(figure_tables(report, reference_curve=opts.reference_curve, scopes=drawn), drawn,
                              source=source)
    resolved = opts if column == opts.column else dataclasses.replace(opts, column=column)
    return FitResult(options=resolved, tables={"fits.csv": report.fits_, "comparisons.csv": report.comparisons_},
                     figures=figures, inputs=list(opts.inputs), seed=opts.seed,
                     summary={"scopes": scopes, "skipped": report.skipped_, "warnings": report.warnings_,
                              "figures": list(figures)},
                     report=report, verdicts=verdicts, source=source, n_units=len(df),
                     excluded=exclusion_counts(df["T"])[1])
