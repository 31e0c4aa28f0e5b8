"""What running a Dyck sweep on Ray costs against the local executor, in the same run.

The same sweep (2 architectures x ``--seeds`` seeds of the tiny-size model, ``--epochs`` epochs,
1 torch thread per run) is trained three ways on this machine's CPUs, each into a fresh folder:

1. ``local``, ``jobs=N``: a pool of N spawned worker processes (the default executor's parallel mode);
2. ``ray``: a local Ray cluster with N CPUs, one CPU per task; its start-up (``ray.init``) is
   timed separately and also included in the total, as a user of ``--executor ray`` pays it;
3. ``local``, ``jobs=1``: one run after another in this process (the baseline without any fan-out).

The results tables of all three are checked to be identical (same seeds -> same numbers). Printed:
wall-clock seconds of each (the fastest of ``--repeat`` sweeps, each into a fresh folder: on a
shared machine the other processes' load moves single timings by a factor of two) and the ratios
Ray / local (with and without Ray's start-up). The local pool's process start-up is inside its time.

Usage: python benchmarks/ray_overhead.py [--cpus 2] [--seeds 4] [--epochs 3] [--units 32] [--repeat 2]
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from timescale_probe.dyck import DyckGrammar, generate_dataset, profile_config, save_dataset, sweep
from timescale_probe.executors import LocalExecutor, make_executor


def timed_sweep(data: Path, out: Path, executor, seeds: list[int], cfg) -> tuple[float, pd.DataFrame]:
    t0 = time.perf_counter()
    outcome = sweep(data, out, ["baseline", "mts"], seeds, cfg, profile="tiny", executor=executor)
    seconds = time.perf_counter() - t0
    if outcome.failed:
        raise SystemExit(f"runs failed: {outcome.failed}")
    return seconds, outcome.results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpus", type=int, default=2, help="worker processes / Ray CPUs")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--units", type=int, default=32)
    ap.add_argument("--sequences", type=int, default=1000, help="training sequences (valid, test: 1/4 each)")
    ap.add_argument("--repeat", type=int, default=2, help="sweeps per executor; the fastest is reported")
    args = ap.parse_args()
    seeds = list(range(1, args.seeds + 1))
    cfg = profile_config("tiny", units=args.units, epochs=args.epochs)
    tmp = Path(tempfile.mkdtemp(prefix="tsprobe-ray-bench-"))
    try:
        data = tmp / "data"
        n = args.sequences
        save_dataset(generate_dataset(DyckGrammar.make(max_len=100), {"train": n, "valid": n // 4, "test": n // 4},
                                      seed=0), data)
        print(f"sweep: 2 archs x {len(seeds)} seeds, {args.units} units, {args.epochs} epochs, {n} training sequences; "
              f"{args.cpus} CPUs")
        def best(make, name):
            runs = []
            for i in range(args.repeat):
                with make() as ex:
                    runs.append(timed_sweep(data, tmp / f"{name}{i}", ex, seeds, cfg))
            return min(r[0] for r in runs), runs[0][1]

        t_local, r_local = best(lambda: LocalExecutor(jobs=args.cpus), "local")
        t0 = time.perf_counter()
        ray_ex = make_executor("ray", num_cpus=args.cpus, cpus_per_task=1)
        t_init = time.perf_counter() - t0
        with ray_ex:
            t_ray, r_ray = best(lambda: contextlib.nullcontext(ray_ex), "ray")
        t_serial, r_serial = best(lambda: LocalExecutor(jobs=1), "serial")
        pd.testing.assert_frame_equal(r_local, r_ray)
        pd.testing.assert_frame_equal(r_local, r_serial)
        print("results: identical under all three executors")
        print(f"fastest of {args.repeat} sweeps each:")
        print(f"local, {args.cpus} processes : {t_local:8.1f} s")
        print(f"ray, {args.cpus} CPUs          : {t_ray:8.1f} s  (+ {t_init:.1f} s to start the local cluster)")
        print(f"local, in-process (serial): {t_serial:8.1f} s")
        print(f"ratio ray / local processes: {t_ray / t_local:.2f} (sweep only), "
              f"{(t_ray + t_init) / t_local:.2f} (with Ray's start-up)")
        print(f"ratio ray / local serial   : {t_ray / t_serial:.2f} (sweep only), "
              f"{(t_ray + t_init) / t_serial:.2f} (with Ray's start-up)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
