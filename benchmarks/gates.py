"""Benchmark: exact gates from the fused nn.LSTM (timescale_probe.gates) against the reference's
approach, a Python loop over time steps computing each LSTM cell by hand, and against the limit: a
bare fused forward of the same stack over the same tokens (embedding + nn.LSTM layers, same
blocks, state carried, no gates kept), which is what any gate extraction must at least cost.
Prints the times (wall and CPU time of each process), the ratios (target: gates extraction at
least 0.8 of the bare forward's tokens/s), the T_data agreement, how far parallel streams move
T_data from the batch-1 values, and the peak resident memory (each method runs in a fresh process).

    .venv/bin/python benchmarks/gates.py                      # PTB test tokens, a mid-size random model
    .venv/bin/python benchmarks/gates.py --checkpoint checkpoints/ptb-baseline-small.pt --tokens 20000
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time

import numpy as np


def build(args):
    import torch

    from timescale_probe.corpora import check_vocab_compatible, load_corpus
    from timescale_probe.models import LanguageModel, LMConfig

    torch.set_num_threads(args.threads)
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


def _best_of(fn, repeats):
    """(wall, cpu, result) of the run with the least CPU time."""
    best = None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        if best is None or cpu < best[1]:
            best = (wall, cpu, out)
    return best


def ours(args, batch_size, q):
    from timescale_probe.gates import estimate_timescales

    model, tokens = build(args)
    estimate_timescales(model, tokens[:300], batch_size=batch_size, window=70)  # warm-up
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu, est = _best_of(lambda: estimate_timescales(model, tokens, batch_size=batch_size, window=70),
                              args.repeats)
    q.put(((wall, cpu), est.table_["T_data"].to_numpy(), rss0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def bare(args, batch_size, q):
    """The limit: the same embedding and fused nn.LSTM layers over the same inputs (``tokens[:-1]``,
    ``batch_size`` contiguous streams, the blocks gates extraction uses, state carried), outputs
    discarded."""
    import torch

    from timescale_probe.evaluation import batchify
    from timescale_probe.gates import BLOCK_TOKENS, DEFAULT_WINDOW, _model_layers

    model, tokens = build(args)
    layers = _model_layers(model)
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
        return None

    forward()  # warm-up
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu, _ = _best_of(forward, args.repeats)
    q.put(((wall, cpu), None, rss0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def loop(args, q):
    """The reference approach: LSTM cells by hand, one time step at a time, batch 1, gates copied
    to numpy at every step and averaged per 70-step window."""

    model, tokens = build(args)
    run_loop(model, tokens[:300])  # warm-up
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t, c = time.perf_counter(), time.process_time()
    T = run_loop(model, tokens)
    q.put(((time.perf_counter() - t, time.process_time() - c), T, rss0,
           resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def run_loop(model, tokens):
    import torch

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
                    # as the reference (util/pytorch_lstm.py LSTMNew): each gate copied out per step
                    fs[k].append(f[0].numpy().copy())
                    _ = (i.numpy().copy(), o.numpy().copy())
                    x = h
            for k in range(len(layers)):
                sums[k] += torch.from_numpy(np.mean(np.array(fs[k], dtype=np.float64), axis=0))
            count += 1
        return np.concatenate([(-1.0 / np.log((s / count).numpy())) for s in sums])


def run(target, *a):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*a, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="ptb")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--sizes", default="400,400,200", help="layer sizes of the random model (last = embedding)")
    ap.add_argument("--tokens", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=16, help="parallel streams for the second run")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads for both methods (default: all cores)")
    ap.add_argument("--repeats", type=int, default=3, help="timings of the fused methods (least CPU time kept)")
    ap.add_argument("--skip-loop", action="store_true", help="skip the slow Python loop")
    args = ap.parse_args()

    t_loop = T_loop = rss_loop = None
    if not args.skip_loop:
        t_loop, T_loop, _, rss_loop = run(loop, args)
    t_one, T_one, rss_base, rss_one = run(ours, args, 1)
    t_bare1, _, _, _ = run(bare, args, 1)
    t_par, T_par, _, rss_par = run(ours, args, args.batch)
    t_bareB, _, _, _ = run(bare, args, args.batch)
    what = args.checkpoint or f"random model {args.sizes}"
    n = args.tokens - 1

    def line(label, t, extra=""):
        wall, cpu = t
        return f"{label:40s} {wall:8.3f} s wall {cpu:8.3f} s CPU  {n / cpu:9.0f} tokens/CPU-s{extra}"

    print(f"{what}; {args.corpus} test, first {args.tokens} tokens; window 70; {args.threads} thread(s); "
          f"best of {args.repeats} (least CPU time)")
    if t_loop is not None:
        print(line("python loop over time steps (batch 1)", t_loop, f"   peak RSS {rss_loop / 1024:.0f} MiB"))
    print(line("bare fused forward, batch 1 (limit)", t_bare1))
    print(line("fused gates, batch 1", t_one, f"   peak RSS {rss_one / 1024:.0f} MiB"
               + (f"   speed-up x{t_loop[1] / t_one[1]:.1f} vs loop (CPU)" if t_loop is not None else "")))
    print(line(f"bare fused forward, {args.batch} streams (limit)", t_bareB))
    print(line(f"fused gates, {args.batch} parallel streams", t_par, f"   peak RSS {rss_par / 1024:.0f} MiB"))
    print(f"gates / bare forward tokens/s (CPU time): batch 1 {t_bare1[1] / t_one[1]:.2f}, "
          f"{args.batch} streams {t_bareB[1] / t_par[1]:.2f} (wall: {t_bare1[0] / t_one[0]:.2f}, "
          f"{t_bareB[0] / t_par[0]:.2f}); target >= 0.8")
    print(f"(process RSS after loading model and corpus: {rss_base / 1024:.0f} MiB)")
    if T_loop is not None:
        rel = np.abs(T_one - T_loop) / np.maximum(np.abs(T_loop), 1e-12)
        print(f"T_data fused vs loop (batch 1): max relative difference {rel.max():.2e}")
    shift = np.abs(np.log(T_par / T_one))
    print(f"T_data with {args.batch} streams vs batch 1: median |log ratio| {np.median(shift):.4f}, "
          f"max {shift.max():.4f}; median T {np.median(T_one):.4f} -> {np.median(T_par):.4f}, "
          f"max T {T_one.max():.4g} -> {T_par.max():.4g}")


if __name__ == "__main__":
    main()
