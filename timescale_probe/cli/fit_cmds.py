"""``tsprobe fit-distribution``: fit distributions of unit timescales (registered on ``app``)."""
from __future__ import annotations

from ..analyses.fit import FitOptions
from ..analysis import options_command
from . import app
from ._common import console, example


def _fmt(v, digits: int = 3) -> str:
    return "-" if v != v else f"{v:.{digits}g}"


@options_command(
    app, "fit-distribution", FitOptions,
    epilog=example(
        "tsprobe fit-distribution model.pt --out fits/",
        "tsprobe fit-distribution ../shared/reference-results/estimated_timescales/PTB_timescale_layer_{1,2,3}_output.npy"
        " --out fits_ptb/ --layers pooled --fix-scale 1 --reference-curve 1.4,1",
        "tsprobe fit-distribution timescales.csv --column T_data --families invgamma,lognorm --bootstrap 200",
    ),
)
def fit_distribution(opts: FitOptions) -> None:
    """Fit inverse gamma and seven other families to unit timescales (MLE, loc 0), with AIC/BIC,
    KS bootstrap p-values, bootstrap intervals and likelihood-ratio comparisons; draw Fig. 1."""
    from ..analyses.fit import run_fit

    result = run_fit(opts, progress=True)
    result.save(opts.out)
    report, verdicts, summary = result.report, result.verdicts, result.summary["scopes"]
    _print_table(report, verdicts, summary, source=result.source, fix_scale=opts.fix_scale, bootstrap=opts.bootstrap,
                 seed=opts.seed, ci_level=opts.ci_level, compare=opts.compare_to)
    excluded = result.excluded
    if any(excluded.values()):
        console.print(f"excluded {sum(excluded.values())} of {result.n_units} units (T not in (0, inf)): " + ", ".join(
            f"{v} {k[len('n_excluded_'):]}" for k, v in excluded.items() if v) + "; counts per scope in fits.csv")
    unconverged = report.fits_[~report.fits_["converged"].astype(bool)]
    for _, row in unconverged.iterrows():
        why = " (no finite MLE: the units are lighter-tailed than exponential)" if row["family"] == "lomax" else ""
        console.print(f"[yellow]{row['scope']}: the {row['label']} fit did not converge{why}; see fits.csv[/yellow]")
    for _scope, reason in report.skipped_:
        console.print(f"[yellow]skipped {reason}[/yellow]")
    for _scope, note in report.warnings_:
        console.print(f"[yellow]note: {note}[/yellow]")
    console.print(f"wrote fits.csv, comparisons.csv, {len(result.figures)} figures and run.json to {opts.out}")


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
