"""``demo``: the embedded default, its options declared once (the steps are :mod:`timescale_probe.demo`'s)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

from ..analysis import Options, option
from ..analysis.options import device_option, out_option, seed_option, threads_option
from .fit import MAX_FIT_BOOTSTRAP
from .lm import MAX_RESAMPLES

__all__ = ["DemoOptions", "run_demo_options"]


@dataclasses.dataclass(frozen=True)
class DemoOptions(Options):
    out: Path = out_option("tsprobe-demo", "Output folder (tables, figures, run.json).")
    bootstrap: int = option(200, "Bootstrap replicates of the distribution fits.", ge=1, le=MAX_FIT_BOOTSTRAP)
    resamples: int = option(10000, "Paired-bootstrap resamples of the model comparison (memory: resamples x 824 "
                            "chunks x 8 bytes).", ge=1, le=MAX_RESAMPLES)
    seed: int = seed_option(0, "Seed of every bootstrap.")
    keep_checkpoint: bool = option(False, "Keep the untrained paper-architecture checkpoint (97 MB) in --out; by "
                                   "default it lives in a temporary folder.")
    max_tokens: Optional[int] = option(None, "Score only the first N test tokens of the shipped checkpoints (>= 100): "
                                       "a quick check, not the demo's table.", ge=100)
    device: str = device_option()
    threads: Optional[int] = threads_option()


def run_demo_options(opts: DemoOptions, *, progress: Any = True) -> dict[str, Any]:
    """:func:`timescale_probe.demo.run_demo` with ``opts`` (torch threads by the one default rule
    unless given; the count used is recorded in ``run.json``)."""
    from ..demo import run_demo
    from ..fileio import resolve_device, use_threads

    dev = resolve_device(opts.device)
    threads = use_threads(opts.threads)
    return run_demo(opts.out, n_boot=opts.bootstrap, n_resamples=opts.resamples, seed=opts.seed, device=str(dev),
                    keep_checkpoint=opts.keep_checkpoint, max_tokens=opts.max_tokens,
                    options=dict(opts.to_dict(), device=str(dev), threads_used=threads), progress=progress)
