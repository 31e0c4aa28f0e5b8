"""``tsprobe reproduce``: every figure and table of the paper from one command, as PDFs (and PNG
twins), CSV tables and a report that holds each of our numbers against the published one.

    from timescale_probe.reproduce import ReproduceOptions, run_reproduce
    records = run_reproduce("repro/", ReproduceOptions(profile="smoke"))

The pipeline (:func:`~timescale_probe.pipeline.run_pipeline`) caches every finished step in
``<out>/.steps/``; ``force`` redoes steps (and their dependants), ``only`` runs some steps (and
what they need). Steps that only draw (figures from cached tables) and the report are always
redone. See :mod:`.steps` for what each step computes and :mod:`.report` for the verdict rules.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from ..analysis.claims import LABELS, VERDICTS, Claim, find_claim
from ..fileio import prepare_out_dir, write_run_json
from ..pipeline import pipeline_events, run_pipeline
from ..progress import ProgressLike
from .config import PAPER, PROFILES, SETTINGS, ReproduceOptions
from .report import build_claims
from .steps import CHEAP_STEPS, FIGURES, build_steps
from .verdicts import code_check, value_rule

__all__ = ["PAPER", "PROFILES", "SETTINGS", "ReproduceOptions", "run_reproduce", "step_names", "build_steps",
           "FIGURES", "VERDICTS", "LABELS", "analysis_main", "Claim", "build_claims", "find_claim", "code_check",
           "value_rule"]


def step_names(opts: ReproduceOptions | None = None) -> list[str]:
    return [s.name for s in build_steps(opts or ReproduceOptions())]


#: steps that run on the driver even with an executor: they draw from cached tables or read every
#: record (cheap, and they need the whole output folder); each runs after every step before it
DRIVER_STEPS = (*CHEAP_STEPS, "seeds")


def run_reproduce(out: str | Path, opts: ReproduceOptions, *, force: Iterable[str] = (), only: Iterable[str] = (),
                  on_event: Callable[[str, str, str], None] | None = None, progress: ProgressLike = None,
                  executor: Any = None) -> dict[str, dict[str, Any]]:
    """Run the pipeline into ``out``; return every step's record (status, results, files, seconds).

    ``executor`` (:func:`timescale_probe.executors.make_executor`): with a concurrent one (local
    with ``jobs > 1``, or Ray) independent steps run at the same time on its workers, each with
    ``threads`` torch threads (the profile's default when None), while the step cache and the
    drawing/report steps stay here; same records as a sequential run.
    Writes ``run.json`` (options, profile, seed, step statuses) beside the outputs.
    ``progress`` counts the settled steps; the step events are logged to ``timescale_probe.pipeline``
    (:func:`timescale_probe.pipeline.pipeline_events` receives them) and passed to ``on_event`` if given."""
    out = prepare_out_dir(out)
    missing_inputs = opts.missing_inputs()  # said once up front; each step that needs one says so again
    for line in missing_inputs:
        logging.getLogger("timescale_probe.reproduce").info("input missing: %s", line)
    steps = build_steps(opts)
    only = set(only)
    if only:
        only.add("report")
    force = set(force) | {n for n in CHEAP_STEPS if not only or n in only}
    t0 = time.time()
    import torch

    from ..fileio import default_threads

    # --threads, else the profile's pin (smoke: 1, so its outputs are the same on every machine),
    # else the one default rule shared by the executor's concurrent workers
    threads = opts.threads or opts.settings["threads"] or default_threads(getattr(executor, "jobs", 1) or 1)
    prev = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        records = run_pipeline(steps, out, opts.profile, force=force, only=only or None, on_event=on_event,
                               progress=progress,
                               executor=executor, rebuild=(build_steps, (opts,)), on_driver=DRIVER_STEPS,
                               threads=int(threads) if threads else None)
    finally:
        torch.set_num_threads(prev)
    inputs = [opts.checkpoints_dir / f for f in ("ptb-baseline-small.pt", "ptb-mts-small.pt",
                                                 "markov-ptb-baseline-small.pt")] if opts.profile == "small" else []
    write_run_json(out, "tsprobe reproduce", opts.to_dict() | {"force": sorted(force), "only": sorted(only)},
                   seed=opts.seed, inputs=[p for p in inputs if p.is_file()],
                   results={"seconds": round(time.time() - t0, 1), "missing_inputs": missing_inputs,
                            "steps": {n: {"status": r.get("status"), "seconds": r.get("seconds"),
                                          "reason": r.get("reason")} for n, r in records.items()},
                            "verdicts": (records.get("report") or {}).get("results", {}).get("verdicts")})
    return records


def analysis_main(figure: str, doc: str, argv: list[str] | None = None) -> int:
    """Command line of ``analyses/<figure>.py``: parse ``--profile --out --corpus-dir --device --reference-dir --force --seed`` and run the
    steps of ``figure`` (a key of :data:`timescale_probe.reproduce.FIGURES`)."""
    import argparse
    import sys

    from ..errors import TsprobeError
    from ..fileio import resolve_device
    from .config import default_reference_dir

    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--profile", default="small", choices=["smoke", "small", "paper"])
    p.add_argument("--out", type=Path, default=Path("figures"))
    p.add_argument("--corpus-dir", type=Path, default=None)
    p.add_argument("--checkpoints", type=Path, default=None)
    p.add_argument("--dyck-results", type=Path, default=None)
    p.add_argument("--reference-dir", type=Path, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: the profile's pin, 1 for smoke; otherwise the one rule, "
                        "timescale_probe.fileio.default_threads)")
    p.add_argument("--force", action="append", default=[], help="redo this step (repeatable)")
    a = p.parse_args(argv)
    try:
        kw = {k: v for k, v in (("checkpoints_dir", a.checkpoints), ("dyck_results", a.dyck_results)) if v is not None}
        opts = ReproduceOptions(profile=a.profile, corpus_dir=a.corpus_dir, device=str(resolve_device(a.device)),
                                reference_dir=a.reference_dir or default_reference_dir(), seed=a.seed,
                                threads=a.threads, **kw)

        def say(step, status, msg):
            if status not in ("running", "progress"):
                print(f"{status:>8} {step}: {msg}", flush=True)

        with pipeline_events(say):
            records = run_reproduce(a.out, opts, only=FIGURES[figure], force=a.force)
    except TsprobeError as exc:
        import re

        from ..analysis.options import flag_name

        param, text = getattr(exc, "param", None), str(exc)
        if param:  # the parameter named as this script's flag
            flag = flag_name(param)
            text = re.sub(rf"\b{re.escape(param)}\b", flag, text, count=1) if re.search(rf"\b{re.escape(param)}\b", text) \
                else f"{flag}: {text}"
        print(f"error: {text}", file=sys.stderr)
        return 2
    bad = [n for n in FIGURES[figure] if records.get(n, {}).get("status") == "failed"]
    return 1 if bad else 0
