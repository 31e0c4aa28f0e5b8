"""``tsprobe reproduce``: every paper figure and table from one command (a cached, resumable
pipeline; see :mod:`timescale_probe.reproduce`)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from . import _executor as _ex
from . import app
from ._common import console, device_option, example, out_option

_STYLE = {"done": "green", "cached": "cyan", "skipped": "yellow", "failed": "red"}


@app.command("reproduce", epilog=example(
    "tsprobe reproduce --profile smoke --out repro/",
    "tsprobe reproduce --profile small --corpus-dir ../shared/corpora --out figures/",
    "tsprobe reproduce --profile paper --device cuda --corpus-dir data/ --out repro-paper/",
    "tsprobe reproduce --profile small --out figures/ --force fig3_routing",
    "tsprobe reproduce --list",
    "tsprobe reproduce --profile paper --device cuda --executor ray --address auto --gpus-per-task 1 --out repro-paper/",
))
def reproduce_cmd(
    profile: str = typer.Option("smoke", "--profile", help="smoke (tiny models, minutes), small (shipped CPU "
                                                           "checkpoints), paper (paper-scale training; a GPU)."),
    out: Path = out_option("repro"),
    corpus_dir: Optional[Path] = typer.Option(None, "--corpus-dir", help="Folder with wikitext-2/, brown/brown.txt, "
                                              "kjv/kjv.txt, war-and-peace/warandpeace.txt (steps needing a missing "
                                              "one are skipped). PTB is embedded."),
    checkpoints: Optional[Path] = typer.Option(None, "--checkpoints", help="Folder of the small-profile checkpoints "
                                               "(default: checkpoints/ of the source checkout)."),
    dyck_results: Optional[Path] = typer.Option(None, "--dyck-results", help="Folder of the Dyck small-profile sweep "
                                                "results (default: figures/dyck/ of the source checkout)."),
    reference_dir: Optional[Path] = typer.Option(None, "--reference-dir", help="The authors' reference results "
                                                 "(default: ../shared/reference-results when present)."),
    force: List[str] = typer.Option([], "--force", help="Redo this step (and its dependants); repeatable; 'all' redoes everything."),
    only: List[str] = typer.Option([], "--only", help="Run only this step (and what it needs); repeatable."),
    seed: int = typer.Option(0, "--seed", help="Seed of the samplers, bootstraps and shuffles."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch (default: 1 for smoke, "
                                          "torch's default otherwise)."),
    list_steps: bool = typer.Option(False, "--list", help="List the steps and exit."),
    jobs: int = typer.Option(1, "--jobs", help="Steps at a time with the local executor (1: one after another, "
                             "in this process)."),
    executor: str = _ex.EXECUTOR, address: Optional[str] = _ex.ADDRESS, cpus_per_task: float = _ex.CPUS_PER_TASK,
    gpus_per_task: float = _ex.GPUS_PER_TASK, storage: Optional[Path] = _ex.STORAGE, max_retries: int = _ex.MAX_RETRIES,
    device: str = device_option(),
) -> None:
    """Regenerate every paper figure and table (PDF + PNG + CSV) and a report.md / report.html that
    puts each of our numbers beside the published one with its interval and a verdict."""
    from rich.live import Live
    from rich.spinner import Spinner
    from rich.table import Table

    from ..pipeline import pipeline_events
    from ..reproduce import ReproduceOptions, build_steps, run_reproduce
    from ..reproduce.config import default_reference_dir

    kw = {}
    if checkpoints is not None:
        kw["checkpoints_dir"] = checkpoints
    if dyck_results is not None:
        kw["dyck_results"] = dyck_results
    opts = ReproduceOptions(profile=profile, corpus_dir=corpus_dir,
                            reference_dir=reference_dir if reference_dir is not None else default_reference_dir(),
                            device=str(_ex.task_device(device, executor, gpus_per_task)), seed=seed, threads=threads, **kw)
    steps = build_steps(opts)
    _ex.validate(executor, jobs, address, cpus_per_task, gpus_per_task, max_retries)
    if list_steps:
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

    ex = _ex.make(executor, jobs, address, cpus_per_task, gpus_per_task, storage, max_retries)
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
            records = run_reproduce(out, opts, force=force, only=only, executor=ex)

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
