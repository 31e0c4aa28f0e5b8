"""Evaluation throughput: ``evaluation.token_nll`` vs a bare nn.LSTM evaluation loop.

Both score the same random token stream at the reference's setting (batch 1, bptt 70, hidden
state carried, per-token NLL kept) with the same weights; the bare loop is embedding ->
nn.LSTM per layer -> linear -> cross-entropy under ``torch.no_grad``. The small-profile shapes
are the default. Rounds alternate between the two; the median is reported, and the two NLL
arrays are checked to agree.

    .venv/bin/python benchmarks/eval_throughput.py [--threads 1] [--tokens 3000] [--batch-size 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from timescale_probe.evaluation import batchify, token_nll
from timescale_probe.models import LanguageModel, LMConfig
from timescale_probe.timescales import paper_lm_spec
from timescale_probe.training import resolve_profile


@torch.no_grad()
def bare_nll(model: LanguageModel, stream: torch.Tensor, batch_size: int, bptt: int) -> np.ndarray:
    data = batchify(stream, batch_size)
    enc, rnns, dec = model.encoder, list(model.rnns), model.decoder
    hidden = [None] * len(rnns)
    out = []
    for i in range(0, data.size(0) - 1, bptt):
        seq = min(bptt, data.size(0) - 1 - i)
        h = enc(data[i:i + seq])
        for k, rnn in enumerate(rnns):
            h, hidden[k] = rnn(h, hidden[k])
        logits = dec(h)
        out.append(F.cross_entropy(logits.view(-1, logits.size(-1)), data[i + 1:i + 1 + seq].reshape(-1), reduction="none")
                   .view(seq, batch_size))
    return torch.cat(out).t().reshape(-1).double().numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="small", choices=["tiny", "small", "paper"])
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--tokens", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--bptt", type=int, default=70)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    mopts, _ = resolve_profile(args.profile, "ptb")
    torch.manual_seed(0)
    stream = torch.randint(0, args.vocab, (args.tokens,), generator=torch.Generator().manual_seed(1))
    print(f"evaluation, profile {args.profile}: emb {mopts['emb_size']}, layers {mopts['layer_sizes']}, vocab {args.vocab}, "
          f"batch {args.batch_size}, bptt {args.bptt}, {args.tokens} tokens, {torch.get_num_threads()} threads, "
          f"median of {args.rounds} rounds (wall: elapsed time; cpu: this process's CPU time, undistorted by other load)")
    for arch, spec in (("baseline", None), ("mts", paper_lm_spec().to_dict())):
        model = LanguageModel(LMConfig(vocab_size=args.vocab, mts_spec=spec, **mopts)).eval()
        ours_t, bare_t, ours_c, bare_c = [], [], [], []
        a = token_nll(model, stream, batch_size=args.batch_size, bptt=args.bptt)[0]
        b = bare_nll(model, stream, args.batch_size, args.bptt)
        assert np.allclose(a, b, rtol=1e-5, atol=1e-6), "token_nll and the bare loop disagree"
        for _ in range(args.rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            token_nll(model, stream, batch_size=args.batch_size, bptt=args.bptt)
            ours_t.append(time.perf_counter() - t0)
            ours_c.append(time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            bare_nll(model, stream, args.batch_size, args.bptt)
            bare_t.append(time.perf_counter() - t0)
            bare_c.append(time.process_time() - c0)
        n = a.size
        ours, bare = n / statistics.median(ours_t), n / statistics.median(bare_t)
        ours_cpu, bare_cpu = n / statistics.median(ours_c), n / statistics.median(bare_c)
        print(f"  {arch:8s} wall: ours {ours:7.0f} tokens/s, bare nn.LSTM {bare:7.0f} tokens/s, ratio {ours / bare:5.3f}"
              f" | cpu: ours {ours_cpu:7.0f}, bare {bare_cpu:7.0f}, ratio {ours_cpu / bare_cpu:5.3f}")


if __name__ == "__main__":
    main()
