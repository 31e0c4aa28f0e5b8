"""Benchmark: gate extraction (timescales from data through the stream runner's ``gates`` hook)
against its limit, a bare fused forward of the same stack over the same tokens (embedding +
``nn.LSTM`` layers, the same blocks, state carried, nothing kept), at batch 1 and with parallel
streams. Both run in the same process, alternating, ``--rounds`` times after a warm-up; the
medians of their CPU times (and wall times) give the printed ratio ``bare / gates`` (1.0: gates
for free). The machine may be shared: the load average is printed before and after.

The forget-gate products the gates cost on top of the forward are a quarter of the LSTM's own
multiply-adds (``H (I + H)`` of ``4 H (I + H)`` per token and layer); the printed bound is the
ratio if they ran at the fused kernel's speed. ``--loop`` also times the reference code's approach
(a Python loop over time steps computing each LSTM cell by hand, batch 1) and checks that both give
the same T_data.

    .venv/bin/python benchmarks/gates.py                      # PTB test tokens, a mid-size random model
    .venv/bin/python benchmarks/gates.py --checkpoint checkpoints/ptb-baseline-small.pt --tokens 20000
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch


def build(args):
    from timescale_probe.corpora import check_vocab_compatible, load_corpus
    from timescale_probe.models import LanguageModel, LMConfig

    corpus = load_corpus(args.corpus)
    if args.checkpoint:
        from timescale_probe.checkpoints import load_checkpoint

        stack = load_checkpoint(args.checkpoint)
        model = LanguageModel.from_stack(stack)
        corpus = check_vocab_compatible(corpus, stack.vocab, stack.vocab_size, args.checkpoint)
    else:
        torch.manual_seed(0)
        sizes = tuple(int(s) for s in args.sizes.split(","))
        model = LanguageModel(LMConfig(vocab_size=corpus.vocab_size, emb_size=sizes[-1], layer_sizes=sizes))
        with torch.no_grad():  # trained-like: spread forget biases
            for r in model.rnns:
                H = r.hidden_size
                r.bias_hh_l0[H:2 * H].normal_(1.0, 1.5)
    return model.eval(), corpus.tokens("test")[: args.tokens]


def bare_forward(model, tokens, batch_size):
    """The limit: the same embedding and fused layers over the same inputs (``tokens[:-1]``,
    ``batch_size`` contiguous streams, the blocks gate extraction uses, state carried)."""
    from timescale_probe.gates import BLOCK_TOKENS, DEFAULT_WINDOW
    from timescale_probe.runner import batchify, model_layers

    layers = model_layers(model)
    data = batchify(torch.as_tensor(tokens).long(), batch_size)
    n_inputs = data.shape[0] - 1
    step = max(1, BLOCK_TOKENS // (DEFAULT_WINDOW * batch_size)) * DEFAULT_WINDOW

    @torch.no_grad()
    def forward():
        states = [None] * len(layers)
        for a in range(0, n_inputs, step):
            x = model.encoder(data[a:min(a + step, n_inputs)])
            for k, lstm in enumerate(layers):
                x, states[k] = lstm(x, states[k])

    return forward


def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def compare(model, tokens, batch_size, rounds):
    """Alternate bare forward and gate extraction; medians of (wall, cpu) and the T_data table."""
    from timescale_probe.gates import estimate_timescales

    bare = bare_forward(model, tokens, batch_size)

    def gates():
        return estimate_timescales(model, tokens, batch_size=batch_size, window=70).table_["T_data"].to_numpy()

    bare()
    gates()  # warm-up
    b, g, T = [], [], None
    for _ in range(rounds):
        b.append(timed(bare)[:2])
        wall, cpu, T = timed(gates)
        g.append((wall, cpu))
    med = [(statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for v in (b, g)]
    per_round = [bb[1] / gg[1] for bb, gg in zip(b, g)]
    return med[0], med[1], per_round, T


def run_loop(model, tokens):
    """The reference approach: LSTM cells by hand, one time step at a time, batch 1, gates copied
    to numpy at every step and averaged per 70-step window."""
    layers = model.lstm_layers()
    with torch.no_grad():
        W = [(m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0 + m.bias_hh_l0) for m in layers]
        state = [(torch.zeros(1, m.hidden_size), torch.zeros(1, m.hidden_size)) for m in layers]
        sums = [torch.zeros(m.hidden_size, dtype=torch.float64) for m in layers]
        n_inputs = len(tokens) - 1
        count = 0
        for start in range(0, n_inputs, 70):
            x_all = model.encoder(tokens[start:min(start + 70, n_inputs)].unsqueeze(1))  # (S, 1, E)
            fs = [[] for _ in layers]
            for step in range(x_all.shape[0]):
                x = x_all[step]
                for k, (w_ih, w_hh, b) in enumerate(W):
                    h, c = state[k]
                    H = h.shape[1]
                    z = x @ w_ih.t() + h @ w_hh.t() + b
                    i, f = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H:2 * H])
                    g, o = torch.tanh(z[:, 2 * H:3 * H]), torch.sigmoid(z[:, 3 * H:])
                    c = f * c + i * g
                    h = o * torch.tanh(c)
                    state[k] = (h, c)
                    fs[k].append(f[0].numpy().copy())  # as the reference (util/pytorch_lstm.py LSTMNew)
                    _ = (i.numpy().copy(), o.numpy().copy())
                    x = h
            for k in range(len(layers)):
                sums[k] += torch.from_numpy(np.mean(np.array(fs[k], dtype=np.float64), axis=0))
            count += 1
        return np.concatenate([(-1.0 / np.log((s / count).numpy())) for s in sums])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="ptb")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--sizes", default="400,400,200", help="layer sizes of the random model (last = embedding)")
    ap.add_argument("--tokens", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=16, help="parallel streams for the second comparison")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: CPU times comparable "
                                                           "on a shared machine)")
    ap.add_argument("--rounds", type=int, default=7, help="alternating timings of each method (medians kept)")
    ap.add_argument("--loop", action="store_true", help="also time the Python loop over time steps (slow)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, tokens = build(args)
    load0 = os.getloadavg()
    res = {B: compare(model, tokens, B, args.rounds) for B in (1, args.batch)}
    load1 = os.getloadavg()
    what = args.checkpoint or f"random model {args.sizes}"
    n = args.tokens - 1
    print(f"{what}; {args.corpus} test, first {args.tokens} tokens; window 70; {args.threads} thread(s); "
          f"medians of {args.rounds} alternating rounds; load average {load0[0]:.1f} before, {load1[0]:.1f} after "
          f"({os.cpu_count()} cores)")
    for B, (bare, ours, _, _) in res.items():
        label = "batch 1" if B == 1 else f"{B} streams"
        print(f"  {label:11s} bare fused forward {bare[0]:7.3f} s wall {bare[1]:7.3f} s CPU ({n / bare[1]:7.0f} tokens/CPU-s)"
              f" | gates {ours[0]:7.3f} s wall {ours[1]:7.3f} s CPU ({n / ours[1]:7.0f} tokens/CPU-s)")
    ratios = {B: (r[0][1] / r[1][1], r[0][0] / r[1][0], r[2]) for B, r in res.items()}
    for B, (cpu, wall, per_round) in ratios.items():
        label = "batch 1" if B == 1 else f"{B} streams"
        print(f"gates / bare forward tokens/s, {label}: {cpu:.2f} (CPU time), {wall:.2f} (wall); "
              f"per round (CPU) {min(per_round):.2f}-{max(per_round):.2f}")
    print("bound if the forget-gate products ran at the fused kernel's speed: 1 / (1 + 1/4) = 0.80")
    T_one, T_par = res[1][3], res[args.batch][3]
    shift = np.abs(np.log(T_par / T_one))
    print(f"T_data with {args.batch} streams vs batch 1: median |log ratio| {np.median(shift):.4f}, max {shift.max():.4f}")
    if args.loop:
        wall, cpu, T_loop = timed(lambda: run_loop(model, tokens))
        rel = np.abs(T_one - T_loop) / np.maximum(np.abs(T_loop), 1e-12)
        print(f"python loop over time steps (batch 1): {wall:.3f} s wall {cpu:.3f} s CPU; gates x{cpu / res[1][1][1]:.1f} "
              f"faster (CPU); T_data max relative difference {rel.max():.2e}")


if __name__ == "__main__":
    main()
