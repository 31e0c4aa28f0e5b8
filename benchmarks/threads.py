"""torch CPU threads: the one default rule (``fileio.default_threads``) against 1 and 2 threads.

Every torch-heavy command takes ``--threads``; without it, ``fileio.default_threads`` gives the CPUs
this process may use less the load already running on them (the 1-minute load average), at least 1.
This script times the same work under that default and under 1 and 2 threads, each configuration
in fresh processes (torch's thread pool is per process), rounds alternating between them, and
prints the medians of wall and CPU time with the machine and its load, so that the rule is judged
on the machine it runs on. Run it on an idle machine and on a loaded one (the load average it
prints says which it was):

    .venv/bin/python benchmarks/threads.py [--rounds 3] [--tokens 2000] [--settle 90]

The rule reads the 1-minute load average, which lags: right after this script's previous worker
(or any other work) it still counts that load. ``--settle S`` waits up to S seconds before each
worker for the load average to fall below 0.5 and prints how long it waited, so that an idle
machine is measured as one a user would meet (the default rule then sees it idle).

Work (the shapes of the commands): the shipped small PTB checkpoint (300/300/200 units) scoring a
token stream at batch 1 (evaluate, compare, ablate, estimate-timescales, the demo) and with 16
streams (estimate-timescales --batch-size 16), and the paper's architecture (1150/1150/400) at
batch 1. The token streams are random ids (the same in every process).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("small, batch 1", "small, 16 streams", "paper size, batch 1")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _worker(threads: str, tokens: int) -> None:
    """One process: set the threads, time every workload once, print one JSON line."""
    import torch

    from timescale_probe.checkpoints import load_checkpoint
    from timescale_probe.evaluation import token_nll
    from timescale_probe.fileio import use_threads
    from timescale_probe.models import LanguageModel, LMConfig
    from timescale_probe.timescales import paper_lm_spec

    n = use_threads(None if threads == "default" else int(threads))
    small = LanguageModel.from_stack(load_checkpoint(ROOT / "checkpoints" / "ptb-mts-small.pt")).eval()
    torch.manual_seed(0)
    paper = LanguageModel(LMConfig(vocab_size=10000, mts_spec=paper_lm_spec().to_dict())).eval()
    gen = torch.Generator().manual_seed(1)
    stream = torch.randint(0, 10000, (tokens,), generator=gen)
    long_stream = torch.randint(0, 10000, (16 * tokens,), generator=gen)
    jobs = {"small, batch 1": (small, stream, 1), "small, 16 streams": (small, long_stream, 16),
            "paper size, batch 1": (paper, stream[: tokens // 4], 1)}
    out = {"threads_used": n, "load_at_start": os.getloadavg()[0]}
    for name in WORKLOADS:
        model, s, b = jobs[name]
        w0, c0 = time.perf_counter(), time.process_time()
        token_nll(model, s, batch_size=b)
        out[name] = (time.perf_counter() - w0, time.process_time() - c0)
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=2000, help="tokens per stream (16 streams: 16x)")
    ap.add_argument("--configs", default="default,1,2")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="wait up to this many seconds before each worker for the 1-min load to fall below 0.5")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        _worker(args.worker, args.tokens)
        return
    from timescale_probe.fileio import available_cpus

    configs = args.configs.split(",")
    load0 = os.getloadavg()
    cpus = available_cpus()
    print(f"machine: {_cpu_model()}, {os.cpu_count()} CPUs ({cpus} available to this process), "
          f"{platform.platform()}, python {platform.python_version()}")
    print(f"load average at start: {load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f} (1/5/15 min) -> "
          f"{'LOADED' if load0[0] > 0.5 * cpus else 'idle'} machine")
    results: dict[str, list[dict]] = {c: [] for c in configs}
    waited: list[float] = []
    for r in range(args.rounds):
        for c in (configs if r % 2 == 0 else configs[::-1]):  # alternate the order between rounds
            t0 = time.perf_counter()
            while args.settle > 0 and os.getloadavg()[0] >= 0.5 and time.perf_counter() - t0 < args.settle:
                time.sleep(2.0)
            waited.append(time.perf_counter() - t0)
            proc = subprocess.run([sys.executable, __file__, "--worker", c, "--tokens", str(args.tokens)],
                                  capture_output=True, text=True, check=True, cwd=ROOT)
            results[c].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    load1 = os.getloadavg()
    print(f"load average at end:   {load1[0]:.2f} / {load1[1]:.2f} / {load1[2]:.2f}; {args.rounds} rounds, "
          "medians; CPU = process CPU time (all threads)")
    if args.settle > 0:
        print(f"settled before each worker: waited {min(waited):.0f}-{max(waited):.0f} s for the 1-min load to fall "
              f"below 0.5 (at most {args.settle:.0f} s)")
    used = sorted({r["threads_used"] for r in results.get("default", [])})
    if used:
        loads = ", ".join(f"{r['load_at_start']:.1f}" for r in results["default"])
        print(f"the default rule chose {', '.join(map(str, used))} thread(s) (load at the start of its processes: {loads})")
    header = f"{'work':<22}" + "".join(f"{c + ' thr':>22}" for c in configs)
    print(header + "\n" + "-" * len(header))
    med = {}
    for name in WORKLOADS:
        cells = []
        for c in configs:
            wall = statistics.median(r[name][0] for r in results[c])
            cpu = statistics.median(r[name][1] for r in results[c])
            med[(name, c)] = wall
            cells.append(f"{wall:7.2f}s wall {cpu:6.2f}s cpu")
        print(f"{name:<22}" + "".join(f"{x:>22}" for x in cells))
    if "default" in configs:
        for c in configs:
            if c == "default":
                continue
            ratios = ", ".join(f"{name}: {med[(name, 'default')] / med[(name, c)]:.2f}" for name in WORKLOADS)
            print(f"wall time, default / {c} thread(s): {ratios}  (< 1: the default is faster)")


if __name__ == "__main__":
    main()
