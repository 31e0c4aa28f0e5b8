"""``tsprobe train-sweep``: language models over seeds and architectures, on local processes or a Ray cluster."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import _executor as _ex
from . import app
from ._common import console, device_option, example


@app.command("train-sweep", epilog=example(
    "tsprobe train-sweep --corpus ptb --seeds 1-3 --arch baseline,mts --profile small --out seeds/",
    "tsprobe train-sweep --corpus markov-ptb/ --seeds 1-3 --arch baseline --epochs 20 --jobs 2 --out seeds/",
    "tsprobe train-sweep --seeds 1-5 --profile paper --executor ray --address auto --gpus-per-task 1 --out seeds/"))
def train_sweep_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Folder of the runs: <corpus>-<arch>-seed<N>.pt, .json (card), "
                             ".metrics.csv; train-sweep.json records the options."),
    corpus: str = typer.Option("ptb", "--corpus", help="ptb (built in), a folder with train/valid/test.txt, or a text file."),
    seeds: str = typer.Option("1-3", "--seeds", help="Seeds, e.g. 1-3 or 1,2,5 (>= 3 per arm for a claim about training)."),
    arch: str = typer.Option("baseline,mts", "--arch", help="Architectures, comma separated: baseline, mts."),
    profile: str = typer.Option("small", "--profile", help="paper, small or tiny (see 'tsprobe train --help')."),
    mts_spec: Optional[str] = typer.Option(None, "--mts-spec", help="MTS spec for the mts runs (default paper-lm)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epoch budget (overrides the profile)."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="sgd (AWD NT-ASGD) or adam."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (overrides the default)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Training batch size."),
    bptt: Optional[int] = typer.Option(None, "--bptt", help="Mean sequence length."),
    jobs: int = typer.Option(1, "--jobs", help="Runs at a time with the local executor."),
    executor: str = _ex.EXECUTOR, address: Optional[str] = _ex.ADDRESS, cpus_per_task: float = _ex.CPUS_PER_TASK,
    gpus_per_task: float = _ex.GPUS_PER_TASK, storage: Optional[Path] = _ex.STORAGE, max_retries: int = _ex.MAX_RETRIES,
    threads: Optional[int] = typer.Option(1, "--threads", help="torch CPU threads per run."),
    device: str = device_option(),
) -> None:
    """Train a language model for every (arch, seed), resumable: finished runs are skipped, a
    killed run resumes from its last epoch. Each run's checkpoint, card and metrics come back to
    OUT whichever machine trained it. A run that fails is reported with its seed and log while the
    others finish; the command then exits with status 1."""
    from ..dyck.runs import parse_seeds
    from ..progress import RichProgress
    from ..sweeps import train_sweep, validate_train_sweep
    from ..validation import check_int

    dev = _ex.task_device(device, executor, gpus_per_task)
    seed_list = parse_seeds(seeds)
    overrides = {"epochs": epochs, "optimizer": optimizer, "lr": lr, "batch_size": batch_size, "bptt": bptt}
    if threads is not None:
        check_int(threads, "threads", minimum=1)
    _ex.validate(executor, jobs, address, cpus_per_task, gpus_per_task, max_retries)
    validate_train_sweep(corpus, out, seed_list, arch, profile, overrides, mts_spec)
    bar = RichProgress()

    def done(info):
        say = bar.console.print if bar.console is not None else console.print
        if info.get("error"):
            say(f"[red]failed[/] {info['run']}: {info['error']} (log {info['log']})")
        else:
            say(f"{info['run']}: {info['epochs']} epochs, best valid ppl {info['best_valid_ppl']:.2f}, test ppl "
                f"{(info.get('test_ppl') or float('nan')):.2f}" + (" (resumed)" if info.get("resumed") else ""))

    with _ex.make(executor, jobs, address, cpus_per_task, gpus_per_task, storage, max_retries) as ex:
        console.print(f"executor: {ex.describe()}")
        outcome = train_sweep(corpus, out, seeds=seed_list, archs=arch, profile=profile, train_overrides=overrides,
                              mts_spec=mts_spec, device=str(dev), threads=threads, executor=ex, progress=bar,
                              on_done=done)
    console.print(f"runs: {len(outcome.trained)} trained, {len(outcome.skipped)} already finished (skipped), "
                  f"{len(outcome.failed)} failed, {outcome.retried} retried; in {out}")
    if outcome.failed:
        raise typer.Exit(1)
