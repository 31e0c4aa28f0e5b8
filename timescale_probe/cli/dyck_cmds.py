"""``tsprobe dyck ...``: the Dyck-n formal-language experiment (paper Fig. 2). Thin commands over
:mod:`timescale_probe.dyck.commands` (options in :mod:`timescale_probe.dyck.options`)."""
from __future__ import annotations

import typer
from rich.table import Table

from ..analysis.cli import options_command
from ..dyck.options import DyckGenerateOptions, DyckPlotOptions, DyckSweepOptions, DyckTrainOptions
from . import app
from ._common import console, example

dyck_app = typer.Typer(
    name="dyck",
    help="Dyck-n formal-language experiment (paper Fig. 2): generate data, train baseline/MTS LSTMs, sweep seeds, plot.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(dyck_app, name="dyck")


@options_command(dyck_app, "generate", DyckGenerateOptions, epilog=example(
    "tsprobe dyck generate --out dyck2/",
    "tsprobe dyck generate --types 3 --max-len 100 --train 2000 --valid 500 --test 1000 --seed 7 --out dyck3/"))
def generate_cmd(opts: DyckGenerateOptions) -> None:
    """Sample unique Dyck-n strings from the PCFG (one pool, split train/valid/test) and write them
    as text, with per-sequence statistics and the span distribution (CSV + log-log PDF + slope).
    Every option is checked before any work; a failed run writes nothing."""
    from ..dyck.commands import run_dyck_generate

    res = run_dyck_generate(opts)
    res.save(opts.out)
    ds, fit = res.dataset, res.fit
    table = Table(title=f"Dyck-{opts.types} data in {opts.out}", show_edge=False)
    for col in ("split", "sequences", "mean length", "max length", "mean max span"):
        table.add_column(col, justify="right")
    for s in ("train", "valid", "test"):
        sp = ds[s]
        table.add_row(s, str(len(sp)), f"{sp.lengths.mean():.1f}", str(sp.lengths.max()), f"{sp.max_span.mean():.1f}")
    console.print(table)
    console.print(f"span distribution slope {fit['slope']:.3f} +- {fit['stderr']:.3f} (log-log least squares, spans "
                  f"{fit['lo']}..{fit['hi']}; paper about -1.6, critical branching -3/2)")


@options_command(dyck_app, "train", DyckTrainOptions, epilog=example(
    "tsprobe dyck train dyck2/ --arch mts --seed 1 --out runs/mts-1.pt",
    "tsprobe dyck train dyck2/ --arch baseline --seed 3 --profile paper --device cuda --out runs/baseline-3.pt"))
def train_cmd(opts: DyckTrainOptions) -> None:
    """Train one Dyck model, test it, and save a tsprobe checkpoint (readable by 'tsprobe
    timescales') with the per-sequence test results beside it."""
    from ..dyck.commands import run_dyck_train
    from ..progress import RichProgress

    res = run_dyck_train(opts, progress=RichProgress(console=console))
    paths = res.save(opts.out)
    trained, s = res.trained, res.summary
    console.print(f"[bold]{opts.arch}[/] seed {opts.seed} ({res.profile} profile, {trained.config.units} units, "
                  f"{s['epochs_run']} epochs, stopped: {trained.stopped}, {trained.seconds:.0f} s): test sequence "
                  f"accuracy {trained.test_accuracy:.4f}"
                  + (f", max timescale > 75: {s['test_accuracy_max_span_gt75']:.4f} ({s['tail_sequences']} sequences)"
                     if s["tail_sequences"] else ""))
    console.print(f"wrote {paths} and {paths.with_name(paths.name[:-3] + '.test.csv') if paths.name.endswith('.pt') else paths}")


@options_command(dyck_app, "sweep", DyckSweepOptions, epilog=example(
    "tsprobe dyck sweep dyck2/ --seeds 1-20 --arch baseline,mts --profile small --out runs/",
    "tsprobe dyck sweep dyck2/ --seeds 1-4 --jobs 2 --epochs 10 --out runs-quick/",
    "tsprobe dyck sweep dyck2/ --seeds 1-20 --profile paper --executor ray --address auto --gpus-per-task 0.5 --out runs/"))
def sweep_cmd(opts: DyckSweepOptions) -> None:
    """Train every (arch, seed) into OUT (resumable: finished runs are skipped) and write the tidy
    results table OUT/results.csv (arch, seed, kind, bin, bin_lo, bin_hi, n, correct, accuracy).
    Runs go to local processes or a Ray cluster (--executor); each run's files come back to OUT.
    A run that fails is reported with its seed and log (OUT/<arch>-<seed>.log) while the others
    finish; the command then exits with status 1."""
    from ..dyck.analysis import paired_comparison, summarize
    from ..dyck.commands import run_dyck_sweep
    from ..progress import RichProgress

    bar = RichProgress()

    def done(info):
        say = bar.console.print if bar.console is not None else console.print
        if info.get("error"):
            say(f"[red]failed[/] {info['arch']:>8} seed {info['seed']:>3}: {info['error']} (log {info['log']})")
        else:
            say(f"{info['arch']:>8} seed {info['seed']:>3}: accuracy {info['accuracy']:.4f} "
                f"({info['epochs']} epochs, {info['seconds']:.0f} s" + (f", {info['attempts']} attempts)" if info.get(
                    "attempts", 1) > 1 else ")"))

    res = run_dyck_sweep(opts, progress=bar, on_done=done,
                         on_start=lambda ex: console.print(f"executor: {ex.describe()}"))
    res.save(opts.out)
    outcome = res.outcome
    results = outcome.results
    console.print(f"runs: {len(outcome.trained)} trained, {len(outcome.skipped)} already finished (skipped), "
                  f"{len(outcome.failed)} failed, {outcome.retried} retried")
    if len(results):
        _print_summary(summarize(results),
                       paired_comparison(results) if {"baseline", "mts"} <= set(results["arch"]) else None)
    console.print(f"wrote {opts.out / 'results.csv'}")
    if outcome.failed:
        for f in outcome.failed:
            console.print(f"[red]failed[/]: {f['arch']} seed {f['seed']}: {f['error']} (log {f['log']})")
        raise typer.Exit(1)


def _print_summary(summary, paired) -> None:
    table = Table(title="test sequence accuracy (mean +- std over seeds)", show_edge=False)
    table.add_column("arch")
    table.add_column("seeds", justify="right")
    table.add_column("overall", justify="right")
    table.add_column("max T > 75", justify="right")
    for arch, g in summary.groupby("arch", sort=False):
        cells = []
        for kind in ("overall", "tail"):
            r = g[g["kind"] == kind]
            cells.append("-" if r.empty else f"{r['mean'].iloc[0]:.4f} +- {r['std'].iloc[0]:.4f}")
        table.add_row(arch, str(int(g["seeds"].max())), *cells)
    console.print(table)
    if paired is not None:
        for kind in ("overall", "tail"):
            r = paired[paired["kind"] == kind]
            if not r.empty and r["pairs"].iloc[0] > 0:
                r = r.iloc[0]
                console.print(f"MTS - baseline ({'all' if kind == 'overall' else r['bin']}): {r['diff']:+.4f} "
                              f"[{r['ci_lo']:+.4f}, {r['ci_hi']:+.4f}] over {r['pairs']} paired seeds; "
                              f"wins {r['wins']}/{r['pairs']}, sign p={r['sign_p']:.3g}, Wilcoxon p={r['wilcoxon_p']:.3g}")
    from ..paper import dyck_summary_line

    console.print(dyck_summary_line())


@options_command(dyck_app, "plot", DyckPlotOptions, epilog=example(
    "tsprobe dyck plot runs/ --out figures/",
    "tsprobe dyck plot runs/ --data dyck2/ --n-resamples 20000 --out figures/dyck/"))
def plot_cmd(opts: DyckPlotOptions) -> None:
    """Fig. 2: fraction correct vs max timescale (mean +- std over seeds, baseline vs MTS) and the
    span distribution; tables results.csv, summary.csv and paired.csv (MTS - baseline per seed)."""
    from ..dyck.commands import run_dyck_plot

    res = run_dyck_plot(opts)
    res.save(opts.out)
    _print_summary(res.summary_table, res.paired)
    console.print(f"wrote {opts.out / 'fig2_dyck.pdf'}, results.csv, summary.csv"
                  + (", paired.csv" if res.paired is not None else ""))
