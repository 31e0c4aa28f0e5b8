"""``tsprobe fit-distribution``: fit distributions of unit timescales (registered on ``app``)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import OptionError
from . import app
from ._common import console, example, out_option


def _parse_reference_curve(text: str | None) -> tuple[float, float] | None:
    if text is None or text.strip().lower() in ("", "none"):
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) not in (1, 2) or not all(v > 0 for v in vals) or not all(v < float("inf") for v in vals):
        raise OptionError(f"--reference-curve '{text}': give the inverse-gamma shape and scale, e.g. 1.4,1")
    return (vals[0], vals[1] if len(vals) == 2 else 1.0)


def _fmt(v, digits: int = 3) -> str:
    return "-" if v != v else f"{v:.{digits}g}"


@app.command(
    "fit-distribution",
    epilog=example(
        "tsprobe fit-distribution model.pt --out fits/",
        "tsprobe fit-distribution ../shared/reference-results/estimated_timescales/PTB_timescale_layer_{1,2,3}_output.npy"
        " --out fits_ptb/ --layers pooled --fix-scale 1 --reference-curve 1.4,1",
        "tsprobe fit-distribution timescales.csv --column T_data --families invgamma,lognorm --bootstrap 200",
    ),
)
def fit_distribution(
    inputs: List[Path] = typer.Argument(..., metavar="INPUT...", help="A checkpoint (T_bias), a CSV with a T / T_data / "
                                        "T_bias column (and optional layer column), or .npy arrays (one per layer)."),
    out: Path = out_option("fits"),
    layers: str = typer.Option("all", "--layers", help="pooled | each | all (each layer and pooled) | layer labels, "
                               "e.g. 1,2 or 2,pooled."),
    families: str = typer.Option("all", "--families", help="Comma-separated scipy names or aliases: invgamma, gamma, "
                                 "lognorm, weibull_min, expon, fisk (log-logistic), invweibull (Fréchet), lomax."),
    fix_scale: Optional[float] = typer.Option(None, "--fix-scale", help="Fit shapes only with this scale "
                                              "(1 reproduces the reference's shape-only fit)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap replicates (KS p-value, intervals); 0: none."),
    ci_bootstrap: str = typer.Option("auto", "--ci-bootstrap", help="Intervals from parametric refits, from "
                                     "resampled units (nonparametric), or auto: parametric unless the KS test "
                                     "rejects the family, then nonparametric."),
    ci_level: float = typer.Option(0.95, "--ci-level", help="Confidence level of the percentile intervals."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the bootstrap."),
    column: Optional[str] = typer.Option(None, "--column", help="Column of a CSV to fit (default T, else T_data, "
                                         "else T_bias)."),
    layer_names: Optional[str] = typer.Option(None, "--layer-names", help="Comma-separated labels of the layers "
                                              "(default 1..k in input order)."),
    reference_curve: Optional[str] = typer.Option(None, "--reference-curve", help="Also draw inverse-gamma "
                                                  "quantiles with this shape,scale, e.g. 1.4,1 (paper Fig. 1)."),
    convention: str = typer.Option("paper", "--convention", help="Timescale convention for checkpoint biases: "
                                   "paper (T=-1/log f) or chrono (T=1/(1-f))."),
    figures: str = typer.Option("all", "--figures", help="Figures for every scope (all), the pooled scope only "
                                "(pooled; else the first scope), or none."),
    compare_to: str = typer.Option("invgamma", "--compare-to", help="Family every other family is compared "
                                   "with (Vuong's test)."),
) -> None:
    """Fit inverse gamma and seven other families to unit timescales (MLE, loc 0), with AIC/BIC,
    KS bootstrap p-values, bootstrap intervals and likelihood-ratio comparisons; draw Fig. 1."""
    from ..distributions import (
        check_fit_options,
        exclusion_counts,
        figure_tables,
        fit_table,
        fit_verdict,
        load_timescales,
        parse_families,
    )
    from ..fileio import check_out_dir, staged_output, write_run_json, write_table
    from ..plots.distributions import draw_fit_figures
    from ..timescales import CONVENTIONS
    from ..validation import check_choice

    # every option is checked before anything is read, fitted or written
    fams = check_fit_options(n_boot=bootstrap, ci_level=ci_level, ci_method=ci_bootstrap, fix_scale=fix_scale,
                             families=families, compare_to=compare_to)
    compare = parse_families([compare_to], param="compare_to")[0]
    check_choice(convention, "convention", CONVENTIONS)
    check_choice(figures, "figures", ("all", "pooled", "none"))
    ref = _parse_reference_curve(reference_curve)
    check_out_dir(out)

    df = load_timescales(inputs, column, layer_names=layer_names, convention=convention)
    report = fit_table(df, column="T", layers=layers, families=fams, fix_scale=fix_scale, n_boot=bootstrap,
                       seed=seed, ci_level=ci_level, ci_method=ci_bootstrap, compare_to=compare, progress=True)
    source = _source_text(inputs, df.attrs.get("column"))
    verdicts = {scope: fit_verdict(report, scope, reference=compare) for scope in report.scopes}
    summary = {}
    for scope in report.scopes:
        f = report.fits_[report.fits_["scope"] == scope]
        first = f.iloc[0]
        summary[scope] = {
            "n": int(first["n"]),
            "excluded": {k: int(first[k]) for k in ("n_excluded_zero", "n_excluded_negative", "n_excluded_inf",
                                                    "n_excluded_nan")},
            "verdict": verdicts[scope],
        }
    with staged_output(out) as stage:
        write_table(report.fits_, stage / "fits.csv")
        write_table(report.comparisons_, stage / "comparisons.csv")
        figure_paths = []
        if figures != "none":
            scopes = (report.scopes if figures == "all"
                      else (["pooled"] if "pooled" in report.scopes else report.scopes[:1]))
            tables = figure_tables(report, reference_curve=ref, scopes=scopes)
            figure_paths = draw_fit_figures(tables, stage, source=source)
        write_run_json(stage, "fit-distribution", {
            "inputs": [str(p) for p in inputs], "out": str(out), "layers": layers, "families": fams,
            "fix_scale": fix_scale, "bootstrap": bootstrap, "ci_bootstrap": ci_bootstrap, "ci_level": ci_level,
            "column": df.attrs.get("column"), "layer_names": layer_names, "reference_curve": ref,
            "convention": convention, "compare_to": compare, "figures": figures,
        }, seed=seed, inputs=inputs, results={"scopes": summary, "skipped": report.skipped_,
                                              "warnings": report.warnings_,
                                              "figures": [p.name for p in figure_paths]})

    _print_table(report, verdicts, summary, source=source, fix_scale=fix_scale, bootstrap=bootstrap, seed=seed,
                 ci_level=ci_level, compare=compare)
    _, excluded = exclusion_counts(df["T"])
    if any(excluded.values()):
        console.print(f"excluded {sum(excluded.values())} of {len(df)} units (T not in (0, inf)): " + ", ".join(
            f"{v} {k[len('n_excluded_'):]}" for k, v in excluded.items() if v) + "; counts per scope in fits.csv")
    unconverged = report.fits_[~report.fits_["converged"].astype(bool)]
    for _, row in unconverged.iterrows():
        why = " (no finite MLE: the units are lighter-tailed than exponential)" if row["family"] == "lomax" else ""
        console.print(f"[yellow]{row['scope']}: the {row['label']} fit did not converge{why}; see fits.csv[/yellow]")
    for _scope, reason in report.skipped_:
        console.print(f"[yellow]skipped {reason}[/yellow]")
    for _scope, note in report.warnings_:
        console.print(f"[yellow]note: {note}[/yellow]")
    console.print(f"wrote fits.csv, comparisons.csv, {len(figure_paths)} figures and run.json to {out}")


def _source_text(inputs, column) -> str:
    """Short name of the input for titles: the file (or the first and how many more) and the column."""
    first = Path(inputs[0]).name
    text = first if len(inputs) == 1 else f"{first} and {len(inputs) - 1} more"
    return f"{text} ({column})" if column else text


def _print_table(report, verdicts, summary, *, source, fix_scale, bootstrap, seed, ci_level, compare) -> None:
    """The terminal table: per scope, the best of all fitted families and where the reference family
    (``compare``, inverse gamma by default) stands; readable family names (scipy names in the CSV).
    Kept within 80 columns."""
    from rich import box
    from rich.table import Table

    from ..distributions import FAMILIES

    fam = FAMILIES[compare]
    ref = fam.label
    level = f"{100 * ci_level:g}%"
    scale = f"scale fixed at {fix_scale:g}" if fix_scale is not None else "loc 0"
    table = Table(title=f"{source}: {ref} vs all {len(report.options['families'])} families\n"
                        f"({scale}, B={bootstrap}, seed {seed})",
                  box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False)
    shape = fam.shape_name
    for col in ("scope", "n", "best\n(AIC)", "ΔAIC", f"{shape or '-'}\n[{level} CI]", f"b\n[{level} CI]",
                "KS\n(p)", "CI\nfrom"):
        table.add_column(col, no_wrap=True)
    ci_names = {"parametric": "param", "nonparametric": "nonpar", "none": "-"}
    for scope, v in verdicts.items():
        n_txt = str(summary[scope]["n"])
        if v["reference_aic"] != v["reference_aic"]:  # the reference family was not fitted
            d_txt = a_txt = b_txt = p_txt = ci_txt = "-"
        else:
            d_txt = f"{v['delta_aic_reference']:.1f}"
            a_txt = f"{_fmt(v['shape'])}\n[{_fmt(v['shape_lo'])}, {_fmt(v['shape_hi'])}]" if shape else "-"
            b_txt = (f"{_fmt(v['scale'])}\n(fixed)" if fix_scale is not None
                     else f"{_fmt(v['scale'])}\n[{_fmt(v['scale_lo'])}, {_fmt(v['scale_hi'])}]")
            p_txt = f"{v['ks_stat']:.3f}\n" + ("(-)" if v["ks_p"] != v["ks_p"] else f"(p {v['ks_p']:.2g})")
            ci_txt = ci_names[v["ci_method"]]
        table.add_row(scope, n_txt, v["best_label"], d_txt, a_txt, b_txt, p_txt, ci_txt)
    console.print(table)
    console.print(f"Columns after 'best': the {ref} fit. ΔAIC: AIC of {ref} minus the lowest AIC of all fitted families (0: {ref} is best). "
                  f"KS (p): Kolmogorov-Smirnov statistic of the {ref} fit and its parametric-bootstrap p-value. "
                  f"CI from: the bootstrap behind the intervals (nonparametric over units where KS rejects, "
                  f"p < 0.05, with --ci-bootstrap auto). Scipy names of the families are in fits.csv.")
    for scope, v in verdicts.items():
        console.print(f"{scope}: {v['text']}")
