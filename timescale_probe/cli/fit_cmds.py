"""``tsprobe fit-distribution``: fit distributions of unit timescales (registered on ``app``)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from . import app
from ._common import console, err_console, example, out_option
from ..errors import OptionError


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
                                 "lognorm, weibull_min, expon, fisk (log-logistic), invweibull (Frechet), lomax."),
    fix_scale: Optional[float] = typer.Option(None, "--fix-scale", help="Fit shapes only with this scale "
                                              "(1 reproduces the reference's shape-only fit)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Parametric-bootstrap replicates (KS p-value, intervals)."),
    ci_bootstrap: str = typer.Option("parametric", "--ci-bootstrap", help="Intervals from parametric refits or "
                                     "from resampled units (nonparametric)."),
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
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich import box
    from rich.table import Table

    from ..distributions import (
        exclusion_counts, figure_tables, fit_table, load_timescales, parse_families, parse_layers,
    )
    from ..fileio import prepare_out_dir, write_run_json, write_table
    from ..plots.distributions import draw_fit_figures
    from ..timescales import CONVENTIONS

    if convention not in CONVENTIONS:
        raise OptionError(f"unknown --convention '{convention}': use paper or chrono")
    ref = _parse_reference_curve(reference_curve)
    if figures not in ("all", "pooled", "none"):
        raise OptionError(f"unknown --figures '{figures}': use all, pooled or none")
    fams = parse_families(families)
    compare = parse_families([compare_to])[0]
    df = load_timescales(inputs, column, layer_names=layer_names, convention=convention)
    out_dir = prepare_out_dir(out)

    n_scopes = len(parse_layers(layers, list(dict.fromkeys(df["layer"])))) if "layer" in df.columns else 1
    with Progress(TextColumn("fitting"), BarColumn(), TextColumn("{task.completed}/{task.total} refits"),
                  TimeRemainingColumn(), console=err_console, transient=True,
                  disable=bootstrap == 0) as progress:
        task = progress.add_task("fit", total=bootstrap * len(fams) * n_scopes)
        report = fit_table(df, column="T", layers=layers, families=fams, fix_scale=fix_scale, n_boot=bootstrap,
                           seed=seed, ci_level=ci_level, ci_method=ci_bootstrap, compare_to=compare,
                           progress=lambda k: progress.advance(task, k))
    write_table(report.fits_, out_dir / "fits.csv")
    write_table(report.comparisons_, out_dir / "comparisons.csv")
    figure_paths = []
    if figures != "none":
        scopes = report.scopes if figures == "all" else (["pooled"] if "pooled" in report.scopes else report.scopes[:1])
        tables = figure_tables(report, reference_curve=ref, scopes=scopes)
        figure_paths = draw_fit_figures(tables, out_dir)

    summary = {}
    for scope in report.scopes:
        f = report.fits_[report.fits_["scope"] == scope]
        ig = f[f["family"] == "invgamma"]
        first = f.iloc[0]
        summary[scope] = {
            "n": int(first["n"]),
            "excluded": {k: int(first[k]) for k in ("n_excluded_zero", "n_excluded_negative", "n_excluded_inf",
                                                    "n_excluded_nan")},
            "best_aic": report.best(scope),
            "invgamma": None if ig.empty else {k: float(ig.iloc[0][k]) for k in
                                               ("shape", "shape_lo", "shape_hi", "scale", "scale_lo", "scale_hi",
                                                "ks", "ks_p")},
        }
    write_run_json(out_dir, "fit-distribution", {
        "inputs": [str(p) for p in inputs], "out": str(out), "layers": layers, "families": fams,
        "fix_scale": fix_scale, "bootstrap": bootstrap, "ci_bootstrap": ci_bootstrap, "ci_level": ci_level,
        "column": df.attrs.get("column"), "layer_names": layer_names, "reference_curve": ref,
        "convention": convention, "compare_to": compare, "figures": figures,
    }, seed=seed, inputs=inputs, results={"scopes": summary, "skipped": report.skipped_,
                                          "figures": [p.name for p in figure_paths]})

    level = f"{100 * ci_level:g}%"
    table = Table(title=f"Timescale fits: {df.attrs.get('column')}, "
                        f"{'scale fixed at ' + format(fix_scale, 'g') if fix_scale is not None else 'loc 0'}, "
                        f"B={bootstrap}, seed {seed}", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for col in ("scope", "n", "excl.", "best (AIC)", f"inv. gamma a\n[{level} CI]", f"b\n[{level} CI]", "KS p"):
        table.add_column(col, no_wrap=True)
    for scope, s in summary.items():
        n_ex = sum(s["excluded"].values())
        ig = s["invgamma"]
        if ig is None:
            a_txt = b_txt = p_txt = "-"
        else:
            a_txt = f"{_fmt(ig['shape'])}\n[{_fmt(ig['shape_lo'])}, {_fmt(ig['shape_hi'])}]"
            b_txt = (f"{_fmt(ig['scale'])}\n(fixed)" if fix_scale is not None
                     else f"{_fmt(ig['scale'])}\n[{_fmt(ig['scale_lo'])}, {_fmt(ig['scale_hi'])}]")
            p_txt = _fmt(ig["ks_p"], 2)
        table.add_row(scope, str(s["n"]), str(n_ex), s["best_aic"], a_txt, b_txt, p_txt)
    console.print(table)
    _, excluded = exclusion_counts(df["T"])
    if any(excluded.values()):
        console.print(f"excluded {sum(excluded.values())} of {len(df)} units (T not in (0, inf)): " + ", ".join(
            f"{v} {k[len('n_excluded_'):]}" for k, v in excluded.items() if v) + "; counts per scope in fits.csv")
    unconverged = report.fits_[~report.fits_["converged"].astype(bool)]
    for _, row in unconverged.iterrows():
        why = " (no finite MLE: the units are lighter-tailed than exponential)" if row["family"] == "lomax" else ""
        console.print(f"[yellow]{row['scope']}: the {row['label']} fit did not converge{why}; see fits.csv[/yellow]")
    for scope, reason in report.skipped_:
        console.print(f"[yellow]skipped {scope}:[/yellow] {reason}")
    console.print(f"wrote fits.csv, comparisons.csv, {len(figure_paths)} figures and run.json to {out_dir}")
