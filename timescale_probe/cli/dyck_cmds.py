"""``tsprobe dyck ...``: the Dyck-n formal-language experiment (paper Fig. 2)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from . import _executor as _ex
from . import app
from ._common import console, device_option, example, out_option

dyck_app = typer.Typer(
    name="dyck",
    help="Dyck-n formal-language experiment (paper Fig. 2): generate data, train baseline/MTS LSTMs, sweep seeds, plot.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(dyck_app, name="dyck")

PROFILE_HELP = ("Training budget: paper (256 units, 2000 epochs, lr 1e-4; a GPU), small (CPU: 64 units, few epochs, "
                "higher lr), tiny (tests); auto = paper on a GPU, small on CPU. Options below override it.")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=True)


def _resolve_profile(profile: str, device) -> str:
    return ("paper" if device.type == "cuda" else "small") if profile == "auto" else profile


@dyck_app.command("generate", epilog=example(
    "tsprobe dyck generate --out dyck2/",
    "tsprobe dyck generate --types 3 --max-len 100 --train 2000 --valid 500 --test 1000 --seed 7 --out dyck3/"))
def generate_cmd(
    out: Path = out_option("dyck2"),
    types: Optional[int] = typer.Option(None, "--types", help="Number of bracket types (the n of Dyck-n). [default: 2]"),
    n_alias: Optional[int] = typer.Option(None, "--n", hidden=True, help="Old name of --types."),
    p_bracket: float = typer.Option(0.5, help="P(S -> b S c), split equally over the bracket types."),
    p_concat: float = typer.Option(0.25, help="P(S -> S S); the rest is P(S -> empty)."),
    min_len: int = typer.Option(2, help="Shortest sequence kept (bracket characters)."),
    max_len: int = typer.Option(200, help="Longest sequence kept (bracket characters)."),
    train: int = typer.Option(10_000, help="Training sequences."),
    valid: int = typer.Option(2_000, help="Validation sequences."),
    test: int = typer.Option(5_000, help="Test sequences."),
    seed: int = typer.Option(0, help="Random seed of the sampler and the split."),
    fit_lo: int = typer.Option(4, help="Smallest span in the log-log slope fit."),
    fit_hi: Optional[int] = typer.Option(None, help="Largest span in the fit (default max_len/2)."),
) -> None:
    """Sample unique Dyck-n strings from the PCFG (one pool, split train/valid/test) and write them
    as text, with per-sequence statistics and the span distribution (CSV + log-log PDF + slope).
    Every option is checked before any work; a failed run writes nothing."""
    from ..dyck.data import check_generate_options, generate_dataset, save_dataset, span_slope, span_table
    from ..dyck.grammar import DyckGrammar
    from ..errors import OptionError
    from ..fileio import save_figure, staged_output, write_run_json
    from ..plots.dyck import figure_spans

    if types is not None and n_alias is not None and types != n_alias:
        raise OptionError(f"--types {types} and --n {n_alias} (its old name) disagree: give one")
    types = types if types is not None else (n_alias if n_alias is not None else 2)
    grammar = DyckGrammar.make(n=types, p_bracket=p_bracket, p_concat=p_concat, min_len=min_len, max_len=max_len)
    sizes = {"train": train, "valid": valid, "test": test}
    fit_hi = check_generate_options(grammar, sizes, fit_lo, fit_hi)
    with staged_output(out) as stage:
        ds = generate_dataset(grammar, sizes, seed=seed)
        save_dataset(ds, stage)
        spans = span_table(ds["train"], grammar.max_len)
        fit = span_slope(spans, fit_lo, fit_hi)
        save_figure(figure_spans(spans, fit), stage / "spans.pdf")
        options = dict(types=types, p_bracket=p_bracket, p_concat=p_concat, p_empty=grammar.p_empty, min_len=min_len,
                       max_len=max_len, train=train, valid=valid, test=test, fit_lo=fit_lo, fit_hi=fit["hi"])
        write_run_json(stage, "tsprobe dyck generate", options, seed=seed,
                       results={"span_slope": fit, "mean_length": {s: float(ds[s].lengths.mean()) for s in ds.splits}})
    table = Table(title=f"Dyck-{types} data in {out}", show_edge=False)
    for col in ("split", "sequences", "mean length", "max length", "mean max span"):
        table.add_column(col, justify="right")
    for s in ("train", "valid", "test"):
        sp = ds[s]
        table.add_row(s, str(len(sp)), f"{sp.lengths.mean():.1f}", str(sp.lengths.max()), f"{sp.max_span.mean():.1f}")
    console.print(table)
    console.print(f"span distribution slope {fit['slope']:.3f} +- {fit['stderr']:.3f} (log-log least squares, spans "
                  f"{fit['lo']}..{fit['hi']}; paper about -1.6, critical branching -3/2)")


def _train_options(units, epochs, lr, batch_size, loss, patience, converge_loss, eval_every, restore_best,
                   mts_shape, mts_scale, packed) -> dict:
    return dict(units=units, epochs=epochs, lr=lr, batch_size=batch_size, loss=loss, patience=patience,
                converge_loss=converge_loss, eval_every=eval_every, restore_best=restore_best or None,
                mts_shape=mts_shape, mts_scale=mts_scale, packed=packed or None)


_UNITS = typer.Option(None, help="LSTM units (profile default).")
_EPOCHS = typer.Option(None, help="Maximum epochs (profile default).")
_LR = typer.Option(None, "--lr", help="Adam learning rate (profile default).")
_BATCH = typer.Option(None, help="Sequences per batch (profile default; the paper 32).")
_LOSS = typer.Option(None, help="mse (the reference: MSE on sigmoid outputs) or bce.")
_PATIENCE = typer.Option(None, help="Stop after this many validations without a better accuracy (0 = never).")
_CONVERGE = typer.Option(None, help="Stop when the validation loss is below this (the reference: 1e-4; 0 = never).")
_EVAL_EVERY = typer.Option(None, help="Validate every this many epochs.")
_RESTORE = typer.Option(False, "--restore-best", help="Test the best-validation weights (the paper tests the final ones).")
_SHAPE = typer.Option(None, help="MTS inverse-gamma shape a (paper 1.5).")
_SCALE = typer.Option(None, help="MTS inverse-gamma scale b (paper 1).")
_PACKED = typer.Option(False, "--packed", help="Run batches as PackedSequence (same numbers; slower on CPU than "
                       "the default dense length-bucketed batches).")
_THREADS = typer.Option(None, help="torch CPU threads per training process (default: torch's own; sweep: 1).")


@dyck_app.command("train", epilog=example(
    "tsprobe dyck train dyck2/ --arch mts --seed 1 --out runs/mts-1.pt",
    "tsprobe dyck train dyck2/ --arch baseline --seed 3 --profile paper --device cuda --out runs/baseline-3.pt"))
def train_cmd(
    data: Path = typer.Argument(..., help="Data folder from 'tsprobe dyck generate'."),
    arch: str = typer.Option("mts", help="baseline or mts (inverse-gamma a=1.5 timescales, frozen biases)."),
    seed: int = typer.Option(1, help="Seed of initialisation and batch order."),
    out: Path = typer.Option(Path("runs/run.pt"), "--out", "-o",
                             help="Checkpoint path; <stem>.test.csv, .history.csv and .run.json go beside it."),
    profile: str = typer.Option("auto", help=PROFILE_HELP),
    units: Optional[int] = _UNITS, epochs: Optional[int] = _EPOCHS, lr: Optional[float] = _LR,
    batch_size: Optional[int] = _BATCH, loss: Optional[str] = _LOSS, patience: Optional[int] = _PATIENCE,
    converge_loss: Optional[float] = _CONVERGE, eval_every: Optional[int] = _EVAL_EVERY, restore_best: bool = _RESTORE,
    mts_shape: Optional[float] = _SHAPE, mts_scale: Optional[float] = _SCALE, packed: bool = _PACKED,
    threads: Optional[int] = _THREADS,
    device: str = device_option(),
) -> None:
    """Train one Dyck model, test it, and save a tsprobe checkpoint (readable by 'tsprobe
    timescales') with the per-sequence test results beside it."""
    import torch

    from ..dyck.data import load_dataset
    from ..dyck.runs import save_run
    from ..dyck.train import profile_config
    from ..errors import OptionError
    from ..fileio import resolve_device

    dev = resolve_device(device)
    prof = _resolve_profile(profile, dev)
    cfg = profile_config(prof, arch=arch, seed=seed, **_train_options(
        units, epochs, lr, batch_size, loss, patience, converge_loss, eval_every, restore_best, mts_shape, mts_scale, packed))
    if out.exists() and out.is_dir():
        raise OptionError(f"--out is a checkpoint file path (e.g. runs/{arch}-{seed}.pt), but {out} is a folder")
    ds = load_dataset(data)
    if threads:
        torch.set_num_threads(threads)
    from ..dyck.train import train_dyck

    with _progress() as bar:
        task = bar.add_task(f"{arch} seed {seed}", total=cfg.epochs)

        def tick(epoch, total, row):
            acc = row["valid_accuracy"]
            desc = f"{arch} seed {seed} loss {row['train_loss']:.4f}" + ("" if acc != acc else f" valid {acc:.3f}")
            bar.update(task, completed=epoch, description=desc)

        trained = train_dyck(ds, cfg, dev, progress=tick)
    paths = save_run(trained, out, profile=prof, data_dir=data, device=str(dev))
    t = trained.test
    tail = t[t["max_span"] > 75]["correct"]
    console.print(f"[bold]{arch}[/] seed {seed} ({prof} profile, {cfg.units} units, {len(trained.history)} epochs, "
                  f"stopped: {trained.stopped}, {trained.seconds:.0f} s): test sequence accuracy {trained.test_accuracy:.4f}"
                  + (f", max timescale > 75: {tail.mean():.4f} ({len(tail)} sequences)" if len(tail) else ""))
    console.print(f"wrote {paths['checkpoint']} and {paths['test']}")


@dyck_app.command("sweep", epilog=example(
    "tsprobe dyck sweep dyck2/ --seeds 1-20 --arch baseline,mts --profile small --out runs/",
    "tsprobe dyck sweep dyck2/ --seeds 1-4 --jobs 2 --epochs 10 --out runs-quick/",
    "tsprobe dyck sweep dyck2/ --seeds 1-20 --profile paper --executor ray --address auto --gpus-per-task 0.5 --out runs/"))
def sweep_cmd(
    data: Path = typer.Argument(..., help="Data folder from 'tsprobe dyck generate'."),
    seeds: Optional[str] = typer.Option(None, help="Seeds, e.g. 1-20 or 1,2,5 (default: 1..the profile's count)."),
    arch: str = typer.Option("baseline,mts", help="Architectures, comma separated."),
    out: Path = out_option("runs"),
    profile: str = typer.Option("auto", help=PROFILE_HELP),
    jobs: int = typer.Option(1, help="Parallel training processes with the local executor (a GPU runs one at a time)."),
    executor: str = _ex.EXECUTOR, address: Optional[str] = _ex.ADDRESS, cpus_per_task: float = _ex.CPUS_PER_TASK,
    gpus_per_task: float = _ex.GPUS_PER_TASK, storage: Optional[Path] = _ex.STORAGE, max_retries: int = _ex.MAX_RETRIES,
    units: Optional[int] = _UNITS, epochs: Optional[int] = _EPOCHS, lr: Optional[float] = _LR,
    batch_size: Optional[int] = _BATCH, loss: Optional[str] = _LOSS, patience: Optional[int] = _PATIENCE,
    converge_loss: Optional[float] = _CONVERGE, eval_every: Optional[int] = _EVAL_EVERY, restore_best: bool = _RESTORE,
    mts_shape: Optional[float] = _SHAPE, mts_scale: Optional[float] = _SCALE, packed: bool = _PACKED,
    threads: Optional[int] = typer.Option(1, help="torch CPU threads per training process."),
    device: str = device_option(),
) -> None:
    """Train every (arch, seed) into OUT (resumable: finished runs are skipped) and write the tidy
    results table OUT/results.csv (arch, seed, kind, bin, bin_lo, bin_hi, n, correct, accuracy).
    Runs go to local processes or a Ray cluster (--executor); each run's files come back to OUT.
    A run that fails is reported with its seed and log (OUT/<arch>-<seed>.log) while the others
    finish; the command then exits with status 1."""
    from ..dyck.analysis import paired_comparison, summarize
    from ..dyck.runs import parse_archs, parse_seeds, sweep, validate_sweep
    from ..dyck.train import PROFILES, profile_config
    from ..fileio import write_run_json
    from ..progress import RichProgress
    from ..validation import check_int

    dev = _ex.task_device(device, executor, gpus_per_task)
    prof = _resolve_profile(profile, dev)
    archs = parse_archs(arch)
    cfg = profile_config(prof, arch=archs[0], seed=1, **_train_options(
        units, epochs, lr, batch_size, loss, patience, converge_loss, eval_every, restore_best, mts_shape, mts_scale, packed))
    seed_list = parse_seeds(seeds if seeds else f"1-{PROFILES[prof]['seeds']}")
    if threads is not None:
        check_int(threads, "threads", minimum=1)
    _ex.validate(executor, jobs, address, cpus_per_task, gpus_per_task, max_retries)
    validate_sweep(data, out, archs, seed_list, cfg, prof)
    if dev.type == "cuda" and executor == "local":
        jobs = 1
    bar = RichProgress()

    def done(info):
        say = bar.console.print if bar.console is not None else console.print
        if info.get("error"):
            say(f"[red]failed[/] {info['arch']:>8} seed {info['seed']:>3}: {info['error']} (log {info['log']})")
        else:
            say(f"{info['arch']:>8} seed {info['seed']:>3}: accuracy {info['accuracy']:.4f} "
                f"({info['epochs']} epochs, {info['seconds']:.0f} s" + (f", {info['attempts']} attempts)" if info.get(
                    "attempts", 1) > 1 else ")"))

    with _ex.make(executor, jobs, address, cpus_per_task, gpus_per_task, storage, max_retries) as ex:
        console.print(f"executor: {ex.describe()}")
        outcome = sweep(data, out, archs, seed_list, cfg, profile=prof, device=str(dev), threads=threads, executor=ex,
                        on_done=done, progress=bar)
    results = outcome.results
    write_run_json(out, "tsprobe dyck sweep", {"archs": archs, "seeds": seed_list, "profile": prof, "jobs": jobs,
                                               "executor": executor, "address": address, "cpus_per_task": cpus_per_task,
                                               "gpus_per_task": gpus_per_task, "threads": threads, "device": str(dev),
                                               **asdict(cfg)},
                   inputs=[Path(data) / f"{s}.txt" for s in ("train", "valid", "test")],
                   results={"trained": len(outcome.trained), "skipped": len(outcome.skipped),
                            "failed": outcome.failed, "retried": outcome.retried})
    console.print(f"runs: {len(outcome.trained)} trained, {len(outcome.skipped)} already finished (skipped), "
                  f"{len(outcome.failed)} failed, {outcome.retried} retried")
    if len(results):
        summary = summarize(results)
        _print_summary(summary, paired_comparison(results) if {"baseline", "mts"} <= set(results["arch"]) else None)
    console.print(f"wrote {out / 'results.csv'}")
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


@dyck_app.command("plot", epilog=example(
    "tsprobe dyck plot runs/ --out figures/",
    "tsprobe dyck plot runs/ --data dyck2/ --boot 20000 --out figures/dyck/"))
def plot_cmd(
    runs: Path = typer.Argument(..., help="Folder of finished runs (*.test.csv), e.g. from 'tsprobe dyck sweep'."),
    out: Path = out_option("figures"),
    data: Optional[Path] = typer.Option(None, help="Data folder for the span panel (default: RUNS/spans.csv from the sweep)."),
    max_len: Optional[int] = typer.Option(None, help="Upper end of the max-timescale bins (default: the data's max length)."),
    tail: float = typer.Option(75.0, help="Report accuracy on sequences whose max timescale exceeds this."),
    boot: int = typer.Option(10_000, help="Bootstrap resamples (over seeds) of the mean paired difference."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
) -> None:
    """Fig. 2: fraction correct vs max timescale (mean +- std over seeds, baseline vs MTS) and the
    span distribution; tables results.csv, summary.csv and paired.csv (MTS - baseline per seed)."""
    import pandas as pd

    from ..dyck.analysis import paired_comparison, results_table, summarize
    from ..dyck.data import span_slope
    from ..dyck.runs import collect_tests, sweep_max_len
    from ..errors import InputError, OptionError
    from ..fileio import prepare_out_dir, save_figure, write_run_json, write_table
    from ..plots.dyck import figure_dyck

    if boot < 1:
        raise OptionError("--boot must be >= 1")
    tests = collect_tests(runs)
    max_len = max_len or sweep_max_len(data if data else runs)
    results = results_table(tests, max_len=max_len, tail=tail)
    summary = summarize(results)
    paired = paired_comparison(results, n_boot=boot, seed=seed) if {"baseline", "mts"} <= set(results["arch"]) else None
    spans_path = (data / "spans.csv") if data else (runs / "spans.csv")
    spans = fit = None
    if spans_path.is_file():
        try:
            spans = pd.read_csv(spans_path)
            fit = span_slope(spans)
        except (pd.errors.ParserError, KeyError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read span distribution {spans_path}: {exc}") from None
    elif data:
        raise InputError(f"{spans_path} not found: is {data} a folder from 'tsprobe dyck generate'?")
    out = prepare_out_dir(out)
    write_table(results, out / "results.csv")
    write_table(summary, out / "summary.csv")
    if paired is not None:
        write_table(paired, out / "paired.csv")
    if spans is not None:
        write_table(spans, out / "spans.csv")
    save_figure(figure_dyck(summary, spans, fit), out / "fig2_dyck.pdf")
    write_run_json(out, "tsprobe dyck plot", {"runs": runs, "data": data, "max_len": max_len, "tail": tail, "boot": boot},
                   seed=seed, inputs=sorted(Path(runs).glob("*.test.csv")),
                   results={"span_slope": fit, "summary": summary[summary["kind"] != "bin"].to_dict(orient="records")})
    _print_summary(summary, paired)
    console.print(f"wrote {out / 'fig2_dyck.pdf'}, results.csv, summary.csv" + (", paired.csv" if paired is not None else ""))
