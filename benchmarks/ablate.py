"""Benchmark: the cost of a 23-group ablation study in units of one evaluation pass.

Times, on the same model and tokens: one intact evaluation pass (batch 1, bptt 70); the paper's
way (one batch-1 pass per ablated group, 23 passes); our ``output`` mode (all groups as masked
parallel copies of the stream, ``--group-batch`` per pass, the intact copy included); our
``silence`` mode (batched the same way, per-copy output-gate bias). Prints seconds, passes-equivalent and
ratios, and checks that the batched and the one-pass-per-group NLL agree. Times are this process's CPU
time (``time.process_time``: undistorted by other load on a shared machine).

    .venv/bin/python benchmarks/ablate.py
    .venv/bin/python benchmarks/ablate.py --checkpoint checkpoints/ptb-mts-small.pt --tokens 20000
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    from timescale_probe.ablation import ablated_nll, make_groups
    from timescale_probe.corpora import check_vocab_compatible, load_corpus
    from timescale_probe.evaluation import token_nll
    from timescale_probe.models import LanguageModel, LMConfig
    from timescale_probe.runner import mask_output

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="ptb")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--sizes", default="460,460,200", help="layer sizes of the random model (last = embedding)")
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--groups", type=int, default=23)
    ap.add_argument("--tokens", type=int, default=3000)
    ap.add_argument("--group-batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    corpus = load_corpus(args.corpus)
    if args.checkpoint:
        from timescale_probe.checkpoints import load_checkpoint

        stack = load_checkpoint(args.checkpoint)
        model = LanguageModel.from_stack(stack)
        corpus = check_vocab_compatible(corpus, stack.vocab, stack.vocab_size, args.checkpoint)
        T = stack.timescales_table().query("layer == @args.layer").T_bias.to_numpy()
    else:
        torch.manual_seed(0)
        sizes = tuple(int(s) for s in args.sizes.split(","))
        model = LanguageModel(LMConfig(vocab_size=corpus.vocab_size, emb_size=sizes[-1], layer_sizes=sizes))
        T = np.arange(sizes[args.layer - 1], 0, -1, dtype=float)
    model.eval()
    tokens = corpus.tokens("test")[: args.tokens]
    H = len(T)
    size = -(-H // args.groups)
    groups = make_groups(f"chunks:{size}", T, args.layer)
    token_nll(model, tokens[:200])  # warm-up

    t = time.process_time()
    intact = token_nll(model, tokens)[0]
    one = time.process_time() - t

    t = time.process_time()
    naive = []
    for g in groups:
        mask = torch.ones(H)
        mask[torch.as_tensor(g.units)] = 0
        naive.append(token_nll(model, tokens, hooks=[mask_output(args.layer, mask)])[0])
    t_naive = time.process_time() - t

    t = time.process_time()
    intact_b, out = ablated_nll(model, tokens, groups, mode="output", group_batch=args.group_batch)
    t_out = time.process_time() - t

    t = time.process_time()
    _, sil = ablated_nll(model, tokens, groups, mode="silence", group_batch=args.group_batch)
    t_sil = time.process_time() - t

    what = args.checkpoint or f"random model {args.sizes}"
    print(f"{what}; {args.corpus} test, {len(tokens)} tokens; layer {args.layer}: {len(groups)} groups of {size} units; "
          f"{args.threads} thread(s); CPU seconds")
    print(f"one intact evaluation pass (batch 1):           {one:8.3f} s  = 1 pass")
    print(f"paper's way, one batch-1 pass per group:        {t_naive:8.3f} s  = {t_naive / one:5.1f} passes")
    print(f"ours, output mode, {args.group_batch} groups per batched pass: {t_out:8.3f} s  = {t_out / one:5.1f} passes "
          f"(intact included; x{t_naive / t_out:.1f} faster than one pass per group)")
    print(f"ours, silence mode, {args.group_batch} groups per batched pass:{t_sil:8.3f} s  = {t_sil / one:5.1f} passes (intact included)")
    diff = max(np.abs(np.asarray(naive) - out).max(), np.abs(intact - intact_b).max())
    print(f"batched vs one-pass-per-group NLL: max abs difference {diff:.2e} nats")


if __name__ == "__main__":
    main()
