"""Benchmark: I(d) of PTB train (929,589 tokens, 60 log-spaced distances 1..1000) by our vectorised
estimator against a straightforward ``collections.Counter`` implementation, and a 10M-token stream.

The Counter baseline counts the pairs of each distance in a Counter over ``zip(x[:-d], x[d:])``
and the two marginals in Counters, then sums plug-in entropies in Python. It is timed on a subset
of distances and extrapolated linearly to all 60 (its cost per distance does not depend on d);
both compute the plug-in estimate, checked equal to 1e-9 on that subset. Our side is timed for the
point estimates of all three estimators (``se='none'``), with the jackknife SE, and with the
jackknife plus the delta-method SE (``delta_se=True``, an extra on request); in wall time and in
CPU time of this process (``time.process_time``; the ratio of CPU times is the figure to read on a
busy machine). Target: the jackknife costs at most 2x the point estimate, with the same numbers
(the jackknife SEs are checked identical with and without the delta SE; tests check every
leave-one-block-out estimate against a recomputation without the block).

Usage: .venv/bin/python benchmarks/mi_decay.py [--ptb ptb] [--baseline-distances 4] [--big 10000000]
"""
from __future__ import annotations

import argparse
import math
import time
from collections import Counter

import numpy as np


def counter_mi(x: list[int], d: int) -> float:
    """Plug-in MI (nats) of the pairs at distance d, the obvious way."""
    joint = Counter(zip(x[:-d], x[d:]))
    first = Counter(x[:-d])
    second = Counter(x[d:])
    n = len(x) - d

    def h(counter):
        return -sum(c / n * math.log(c / n) for c in counter.values())

    return h(first) + h(second) - h(joint)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ptb", default="ptb", help="corpus spec for the PTB train stream")
    ap.add_argument("--baseline-distances", type=int, default=4, help="distances timed for the Counter baseline")
    ap.add_argument("--big", type=int, default=10_000_000, help="tokens of the large stream (PTB train repeated; 0: skip)")
    ap.add_argument("--repeats", type=int, default=2, help="timings of our side (the best is kept)")
    args = ap.parse_args()

    from timescale_probe.mutual_info import log_distances, mi_curve
    from timescale_probe.mutual_info.streams import load_token_stream

    stream = load_token_stream(args.ptb, splits=["train"])
    x = stream.tokens
    dists = log_distances(1000, 60)
    print(f"PTB train: {len(x):,} tokens, {stream.n_types:,} types, {len(dists)} distances 1..{dists[-1]}")

    cpu = {}
    results = {}
    runs = {"none": dict(se="none"), "jackknife": dict(se="jackknife"),
            "jackknife+delta": dict(se="jackknife", delta_se=True)}
    for _ in range(args.repeats):  # best of a few: the machine may be busy
        for name, kw in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            results[name] = mi_curve(x, dists, n_types=stream.n_types, **kw)
            wall, c = time.perf_counter() - t0, time.process_time() - c0
            if c < cpu.get(name, (np.inf,))[0]:
                cpu[name] = (c, wall)
    ours = results["none"]
    se_cols = [c for c in results["jackknife"].columns if c.startswith("se_")]
    assert results["jackknife"][se_cols].equals(results["jackknife+delta"][se_cols])
    (c_ours, t_ours), (c_ours_se, t_ours_se) = cpu["none"], cpu["jackknife"]
    c_delta, t_delta = cpu["jackknife+delta"]

    sub = dists[np.linspace(0, len(dists) - 1, args.baseline_distances).round().astype(int)]
    xl = x.tolist()
    t0 = time.perf_counter()
    base = [counter_mi(xl, int(d)) for d in sub]
    t_base_sub = time.perf_counter() - t0
    t_base = t_base_sub / len(sub) * len(dists)
    mine = ours.set_index("distance").loc[sub, "mi_plugin_bits"].to_numpy() * math.log(2)
    assert np.allclose(mine, base, rtol=1e-9, atol=1e-12), (mine, base)

    print(f"ours, 3 estimators, no SE   : {t_ours:8.2f} s wall, {c_ours:.2f} s CPU for 60 distances "
          f"({c_ours / len(dists) * 1e3:.0f} ms CPU each)")
    print(f"ours, with jackknife SE     : {t_ours_se:8.2f} s wall, {c_ours_se:.2f} s CPU for 60 distances")
    print(f"jackknife / point estimate  : {c_ours_se / c_ours:8.2f}x CPU time ({t_ours_se / t_ours:.2f}x wall; "
          f"target <= 2x)")
    print(f"+ delta SE (on request)     : {t_delta:8.2f} s wall, {c_delta:.2f} s CPU: {c_delta / c_ours:.2f}x the point "
          f"estimate")
    print(f"Counter baseline (plug-in)  : {t_base_sub:8.2f} s for {len(sub)} distances {list(map(int, sub))} "
          f"-> {t_base:.1f} s extrapolated to 60")
    print(f"speed-up (no SE)            : {t_base / t_ours:8.1f}x   (with jackknife SE: {t_base / t_ours_se:.1f}x)")

    if args.big <= 0:
        return
    reps = -(-args.big // len(x))
    big = np.tile(x, reps)[: args.big]
    t0 = time.perf_counter()
    mi_curve(big, dists, n_types=stream.n_types, se="none")
    t_big = time.perf_counter() - t0
    print(f"{len(big):,} tokens (PTB train repeated), 60 distances, no SE: {t_big:.1f} s")


if __name__ == "__main__":
    main()
