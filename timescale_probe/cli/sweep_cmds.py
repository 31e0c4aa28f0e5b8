"""``tsprobe train-sweep``: language models over seeds and architectures, on local processes or a Ray cluster."""
from __future__ import annotations

import typer

from ..analysis.cli import options_command
from ..sweeps import TrainSweepOptions
from . import app
from ._common import console, example


@options_command(app, "train-sweep", TrainSweepOptions, epilog=example(
    "tsprobe train-sweep --corpus ptb --seeds 1-3 --arch baseline,mts --profile small --out seeds/",
    "tsprobe train-sweep --corpus markov-ptb/ --seeds 1-3 --arch baseline --epochs 20 --jobs 2 --out seeds/",
    "tsprobe train-sweep --seeds 1-5 --profile paper --executor ray --address auto --gpus-per-task 1 --out seeds/"))
def train_sweep_cmd(opts: TrainSweepOptions) -> None:
    """Train a language model for every (arch, seed), resumable: finished runs are skipped, a
    killed run resumes from its last epoch. Each run's checkpoint, card and metrics come back to
    OUT whichever machine trained it. A run that fails is reported with its seed and log while the
    others finish; the command then exits with status 1."""
    from ..progress import RichProgress
    from ..sweeps import run_train_sweep

    bar = RichProgress()

    def done(info):
        say = bar.console.print if bar.console is not None else console.print
        if info.get("error"):
            say(f"[red]failed[/] {info['run']}: {info['error']} (log {info['log']})")
        else:
            say(f"{info['run']}: {info['epochs']} epochs, best valid ppl {info['best_valid_ppl']:.2f}, test ppl "
                f"{(info.get('test_ppl') or float('nan')):.2f}" + (" (resumed)" if info.get("resumed") else ""))

    res = run_train_sweep(opts, progress=bar, on_done=done, on_start=lambda ex: console.print(f"executor: {ex.describe()}"))
    outcome = res.outcome
    console.print(f"runs: {len(outcome.trained)} trained, {len(outcome.skipped)} already finished (skipped), "
                  f"{len(outcome.failed)} failed, {outcome.retried} retried; in {opts.out}")
    if outcome.failed:
        raise typer.Exit(1)
