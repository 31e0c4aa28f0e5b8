"""``tsprobe reproduce``: every paper figure and table from one command (a cached, resumable
pipeline; see :mod:`timescale_probe.reproduce`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..analysis import Options, option
from ..analysis.cli import options_command
from ..analysis.options import device_option, out_option, seed_option, threads_option
from ..executors import ExecutorOptions
from . import app
from ._common import console, example

_STYLE = {"done": "green", "cached": "cyan", "skipped": "yellow", "failed": "red"}


def _profile(name: str) -> str:
    from ..reproduce.config import PROFILES
    from ..validation import check_choice

    return check_choice(name, "profile", PROFILES)


@dataclass(frozen=True)
class _ReproduceFields(Options):
    profile: str = option("smoke", "smoke (tiny models, minutes), small (shipped CPU checkpoints), paper (paper-scale "
                          "training; a GPU).", check=_profile)
    out: Path = out_option("repro")
    corpus_dir: Optional[Path] = option(None, "Folder with wikitext-2/, brown/brown.txt, kjv/kjv.txt, "
                                        "war-and-peace/warandpeace.txt (steps needing a missing one are skipped). PTB "
                                        "is embedded.")
    checkpoints_dir: Optional[Path] = option(None, "Folder of the small-profile checkpoints (default: checkpoints/ of "
                                             "the source checkout).", aliases=("--checkpoints",))
    dyck_results: Optional[Path] = option(None, "Folder of the Dyck small-profile sweep results (default: "
                                          "figures/dyck/ of the source checkout).")
    reference_dir: Optional[Path] = option(None, "The authors' reference results (default: ../shared/"
                                           "reference-results or $TSPROBE_SHARED/reference-results when present).")
    seeds_dir: Optional[Path] = option(None, "Per-seed result folders combined with this run's models (default for "
                                       "the small profile: figures/seeds/ of the source checkout).")
    force: tuple[str, ...] = option((), "Redo this step (and its dependants); repeatable; 'all' redoes everything.")
    only: tuple[str, ...] = option((), "Run only this step (and what it needs); repeatable.")
    seed: int = seed_option(0, "Seed of the samplers, bootstraps and shuffles.")
    threads: Optional[int] = threads_option(help="CPU threads for torch (default: 1 for smoke, the one rule "
                                            "otherwise).")
    list_steps: bool = option(False, "List the steps and exit.", aliases=("--list",))
    device: str = device_option()


@dataclass(frozen=True)
class ReproduceCommandOptions(ExecutorOptions, _ReproduceFields):
    """Options of ``tsprobe reproduce``: what the pipeline reads and runs
    (:class:`timescale_probe.reproduce.ReproduceOptions`), then where its steps run."""

    def pipeline_options(self):
        """The pipeline's :class:`~timescale_probe.reproduce.ReproduceOptions` (inputs checked there)."""
        from ..reproduce import ReproduceOptions
        from ..reproduce.config import default_reference_dir

        kw = {k: getattr(self, k) for k in ("checkpoints_dir", "dyck_results") if getattr(self, k) is not None}
        return ReproduceOptions(profile=self.profile, corpus_dir=self.corpus_dir, seeds_dir=self.seeds_dir,
                                reference_dir=self.reference_dir if self.reference_dir is not None
                                else default_reference_dir(),
                                device=str(self.task_device(self.device)), seed=self.seed, threads=self.threads, **kw)


@options_command(app, "reproduce", ReproduceCommandOptions, epilog=example(
    "tsprobe reproduce --profile smoke --out repro/",
    "tsprobe reproduce --profile small --corpus-dir ../shared/corpora --out figures/",
    "tsprobe reproduce --profile paper --device cuda --corpus-dir data/ --out repro-paper/",
    "tsprobe reproduce --profile small --out figures/ --force fig3_routing",
    "tsprobe reproduce --list-steps",
    "tsprobe reproduce --profile paper --device cuda --executor ray --address auto --gpus-per-task 1 --out repro-paper/",
))
def reproduce_cmd(cmd: ReproduceCommandOptions) -> None:
    """Regenerate every paper figure and table (PDF + PNG + CSV) and a report.md / report.html that
    puts each of our numbers beside the published one with its interval and a verdict."""
    from rich.live import Live
    from rich.spinner import Spinner
    from rich.table import Table

    from ..pipeline import pipeline_events
    from ..reproduce import build_steps, run_reproduce

    opts = cmd.pipeline_options()
    profile, out = cmd.profile, cmd.out
    steps = build_steps(opts)
    if cmd.list_steps:
        tab = Table(title=f"steps of tsprobe reproduce ({profile})", show_edge=False)
        tab.add_column("step")
        tab.add_column("what")
        tab.add_column("needs")
        for s in steps:
            tab.add_row(s.name, s.title, ", ".join(s.needs))
        console.print(tab)
        return
    names = [s.name for s in steps]
    state = {"current": None, "msg": ""}

    def render():
        return Spinner("dots", text=f"[bold]{state['current']}[/bold] {state['msg']}") if state["current"] else ""

    ex = cmd.make()
    if ex.concurrent:
        console.print(f"independent steps run at the same time: {ex.describe()}")
    with ex, Live(render(), console=console, refresh_per_second=4, transient=True) as live:
        def on_event(step: str, status: str, msg: str) -> None:
            if status in ("running", "progress"):
                state["current"], state["msg"] = step, msg
                live.update(render())
                return
            state["current"] = None
            live.update(render())
            color = _STYLE.get(status, "white")
            i = names.index(step) + 1 if step in names else 0
            live.console.print(f"[{color}]{status:>7}[/{color}] {i:2d}/{len(names)} {step}: {msg}")

        with pipeline_events(on_event):  # the step events are logged (timescale_probe.pipeline)
            records = run_reproduce(out, opts, force=cmd.force, only=cmd.only, executor=ex)

    verdicts = (records.get("report") or {}).get("results", {}).get("verdicts") or {}
    tab = Table(title=f"tsprobe reproduce --profile {profile}: {out}", show_edge=False)
    for col in ("step", "status", "seconds"):
        tab.add_column(col, justify="right" if col == "seconds" else "left")
    for n in names:
        r = records.get(n)
        if r is not None:
            st = r.get("status", "")
            tab.add_row(n, f"[{_STYLE.get(st, 'white')}]{st}[/]", f"{r.get('seconds', 0):.1f}")
    console.print(tab)
    summary = (records.get("report") or {}).get("results", {}).get("summary")
    if summary:  # the report's own line: every kind of verdict counted separately
        console.print(summary, soft_wrap=True)
    elif verdicts:
        console.print("verdicts: " + ", ".join(f"{v} {k}" for k, v in verdicts.items()))
    console.print(f"report: {Path(out) / 'report.md'} (and report.html)")
