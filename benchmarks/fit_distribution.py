"""Benchmark: ``fit-distribution``'s parametric bootstrap against scipy's generic ``fit`` in a loop.

Data: the 2,700 unit timescales of the paper's baseline PTB model (all three layers pooled, from
../shared/reference-results, else the copy vendored in tests/data). Ours: all eight families,
``--n-boot`` (1000) parametric-bootstrap refits each, vectorised (``ci_method="parametric"``: the
default ``auto`` would add a nonparametric bootstrap for the families KS rejects). The obvious alternative: ``scipy.stats.<dist>.fit(sample, floc=0)`` plus
``scipy.stats.kstest`` once per replicate; it is timed on ``--subset`` replicates per family (the
same kind of simulated samples) and extrapolated linearly to ``n_boot`` replicates per family.

    .venv/bin/python benchmarks/fit_distribution.py [--n-boot 1000] [--subset 5]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

from timescale_probe.distributions import FAMILIES, FAMILY_ORDER, fit_timescales

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TSPROBE_SHARED", ROOT.parent / "shared"))
FILES = [SHARED / f"reference-results/estimated_timescales/PTB_timescale_layer_{k}_output.npy" for k in (1, 2, 3)]
if not all(p.is_file() for p in FILES):
    FILES = [ROOT / f"tests/data/reference-results/estimated_timescales/PTB_timescale_layer_{k}_output.npy"
             for k in (1, 2, 3)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--subset", type=int, default=5, help="replicates per family timed with scipy's fit")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    missing = [p for p in FILES if not p.is_file()]
    if missing:
        print(f"skipped: reference timescales not found ({missing[0]}); set TSPROBE_SHARED to ../shared")
        return 0
    x = np.concatenate([np.load(p, allow_pickle=False) for p in FILES]).astype(np.float64)
    n, B = x.size, args.n_boot
    print(f"data: {n} unit timescales (PTB baseline, layers 1-3 pooled); {len(FAMILY_ORDER)} families; "
          f"{B} parametric-bootstrap refits each; {os.cpu_count()} CPUs visible")

    fit_timescales(x, ["lognorm"], n_boot=10)  # warm imports and caches
    t0, c0 = time.perf_counter(), time.process_time()
    report = fit_timescales(x, n_boot=B, seed=args.seed, ci_method="parametric")
    ours, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    ig = report.fits_.set_index("family").loc["invgamma"]
    print(f"ours (vectorised MLE, all replicates at once): {ours:.2f} s wall, {ours_cpu:.2f} s CPU "
          f"(inverse gamma a={ig['shape']:.4f} [{ig['shape_lo']:.4f}, {ig['shape_hi']:.4f}], "
          f"b={ig['scale']:.4f} [{ig['scale_lo']:.4f}, {ig['scale_hi']:.4f}])")

    rng = np.random.default_rng(args.seed + 1)
    total_scipy = total_scipy_cpu = 0.0
    worst_gap = 0.0
    print(f"scipy.stats.<dist>.fit(sample, floc=0) + kstest, {args.subset} replicates per family:")
    for name in FAMILY_ORDER:
        fam = FAMILIES[name]
        shape, scale = report.params(name)
        sims = np.clip(fam.rvs(shape, scale, (args.subset, n), rng), 1e-300, 1e300)
        t0, c0 = time.perf_counter(), time.process_time()
        lls = []
        for sample in sims:
            params = fam.dist.fit(sample, floc=0)
            stats.kstest(sample, fam.dist.cdf, args=params)
            lls.append(fam.dist.logpdf(sample, *params).sum())
        per = (time.perf_counter() - t0) / args.subset
        total_scipy_cpu += (time.process_time() - c0) / args.subset * B
        sh, sc, _ = fam.fit_rows(sims)
        ours_ll = np.array([fam.logpdf(s, a, b).sum() for s, a, b in zip(sims, sh, sc)])
        gap = float(np.max((np.array(lls) - ours_ll) / np.abs(ours_ll)))
        worst_gap = max(worst_gap, gap)
        total_scipy += per * B
        print(f"  {name:12s} {per * 1e3:8.1f} ms per replicate -> {per * B:7.1f} s for {B} "
              f"(scipy loglik minus ours, relative, worst: {gap:+.1e})")
    print(f"scipy loop, extrapolated from {args.subset} to {B} replicates per family: {total_scipy:.1f} s wall, "
          f"{total_scipy_cpu:.1f} s CPU")
    print(f"ratio scipy / ours: {total_scipy / ours:.0f}x wall, {total_scipy_cpu / ours_cpu:.0f}x CPU")
    print(f"(positive 'scipy minus ours' would mean scipy found a better optimum; worst {worst_gap:+.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
