"""Time our Dyck pipeline against the obvious alternatives, in the same run.

1. Sampling the pool: our vectorised leftmost derivations (many derivations per numpy step) vs
   one derivation at a time with a Python stack (the reference's approach, minus its string
   re-scans).
2. One training epoch: length-bucketed dense batches (ours) vs the same buckets as PackedSequence
   vs padded batches of random composition (the reference's DataLoader); the loss is masked so
   all three compute the same objective.

Usage: python benchmarks/dyck_train.py [--sequences 3000] [--units 64] [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from timescale_probe.dyck.data import generate_dataset
from timescale_probe.dyck.grammar import DyckGrammar, generate_pool
from timescale_probe.dyck.train import DyckTrainConfig, _Tensors, build_model, length_buckets


def naive_pool(g: DyckGrammar, size: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    probs = np.array(list(g.p_types) + [g.p_concat, g.p_empty])
    cum = np.cumsum(probs)
    pairs = g.pairs
    pool: dict[str, None] = {}
    while len(pool) < size:
        stack, out, owed = [0], [], 0
        while stack:
            top = stack.pop()
            if top:
                out.append(pairs[top - 1][1])
                owed -= 1
                continue
            k = int(np.searchsorted(cum, rng.random(), side="right"))
            if k < g.n:
                if len(out) + owed + 2 > g.max_len:
                    break
                out.append(pairs[k][0])
                owed += 1
                stack += [k + 1, 0]
            elif k == g.n:
                stack += [0, 0]
        if not stack and len(out) >= g.min_len:
            pool.setdefault("".join(out))
    return list(pool)


def epoch(model, opt, t: _Tensors, rng, batch_size=32, bucketed=True, packed=False) -> float:
    """One epoch of MSE training; bucketed = our length buckets, else random batches."""
    t0 = time.perf_counter()
    perm = rng.permutation(len(t.lengths))
    batches = (length_buckets(t.lengths, batch_size, rng) if bucketed
               else [perm[s:s + batch_size] for s in range(0, len(perm), batch_size)])
    for b in batches:
        _, x, lengths, y = t.batch(b)
        logits, mask = model.valid_logits(x, lengths, packed)
        loss = F.mse_loss(torch.sigmoid(logits), y[mask])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sequences", type=int, default=3000, help="training sequences timed per epoch")
    ap.add_argument("--pool", type=int, default=17000, help="pool size for the sampler timing")
    ap.add_argument("--units", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = DyckGrammar.make()

    t0 = time.perf_counter()
    generate_pool(g, args.pool, seed=0)
    fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive_pool(g, args.pool, seed=0)
    slow = time.perf_counter() - t0
    print(f"sample {args.pool} unique Dyck-2 strings: vectorised {fast:.2f} s, one at a time {slow:.2f} s, "
          f"ratio {slow / fast:.1f}x")

    ds = generate_dataset(g, {"train": args.sequences, "valid": 10, "test": 10}, seed=0)
    t = _Tensors(ds["train"], torch.device("cpu"))
    times = {}
    variants = {"ours (bucketed, dense padded)": dict(bucketed=True, packed=False),
                "bucketed, PackedSequence": dict(bucketed=True, packed=True),
                "random batches, padded (reference)": dict(bucketed=False, packed=False)}
    times = {}
    for name, kw in variants.items():
        model, _ = build_model(DyckTrainConfig(arch="mts", units=args.units, seed=1), 2)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
        times[name] = epoch(model, opt, t, np.random.default_rng(0), **kw)
    ours = times["ours (bucketed, dense padded)"]
    print(f"one epoch over {args.sequences} sequences, {args.units} units, {args.threads} thread(s):")
    for name, sec in times.items():
        print(f"  {name:36s} {sec:6.2f} s   ratio to ours {sec / ours:.2f}x")


if __name__ == "__main__":
    main()
