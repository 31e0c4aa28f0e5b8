"""Training throughput: tsprobe's LanguageModel step vs a bare nn.LSTM + embedding + softmax step.

Both run the same shapes (the small profile by default: emb 200, layers 300/300/200, vocabulary
10,000, batch 20, bptt 70) and the same optimiser work (forward, cross-entropy, backward, clip,
SGD step). Ours adds what the AWD recipe needs: embedding/locked dropout, DropConnect on W_hh
(a fresh mask per step, gradient to the raw matrix), AR/TAR and, for MTS, frozen bias vectors.
Rounds alternate between the variants so that load from other processes hits all alike; the
median of the rounds is reported.

    .venv/bin/python benchmarks/train_throughput.py [--threads 1] [--rounds 5] [--steps 4]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from _bare_lm import BareLM  # benchmarks/ is sys.path[0] for a script

from timescale_probe.models import LanguageModel, LMConfig, repackage_hidden
from timescale_probe.timescales import paper_lm_spec
from timescale_probe.training import awd_loss, resolve_profile


def make_step(model, ours: bool, V: int, alpha=2.0, beta=1.0, clip=0.25, lr=30.0):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, weight_decay=1.2e-6)

    def step(x, y, hidden):
        hidden = repackage_hidden(hidden)
        opt.zero_grad(set_to_none=True)
        if ours:
            logits, hidden, ex = model(x, hidden)
            loss, _ = awd_loss(logits, y, ex, alpha=alpha, beta=beta)
        else:
            logits, hidden = model(x, hidden)
            loss = F.cross_entropy(logits.view(-1, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        return hidden

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="small", choices=["tiny", "small", "paper"])
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--bptt", type=int, default=None)
    ap.add_argument("--steps", type=int, default=4, help="training steps per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    mopts, topts = resolve_profile(args.profile, "ptb")
    B = args.batch_size or topts["batch_size"]
    T = args.bptt or topts["bptt"]
    V = args.vocab
    torch.manual_seed(0)
    variants = {
        "bare nn.LSTM": BareLM(V, mopts["emb_size"], mopts["layer_sizes"]),
        "ours baseline": LanguageModel(LMConfig(vocab_size=V, **mopts)),
        "ours mts": LanguageModel(LMConfig(vocab_size=V, mts_spec=paper_lm_spec().to_dict(), **mopts)),
    }
    steps, hiddens = {}, {}
    for name, m in variants.items():
        m.train()
        steps[name] = make_step(m, name.startswith("ours"), V)
        hiddens[name] = m.init_hidden(B)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, V, (T, B), generator=g)
    y = torch.randint(0, V, (T, B), generator=g)
    for name in variants:  # warm-up
        hiddens[name] = steps[name](x, y, hiddens[name])
    wall = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name in variants:
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                hiddens[name] = steps[name](x, y, hiddens[name])
            wall[name].append(args.steps * T * B / (time.perf_counter() - t0))
            cpu[name].append(args.steps * T * B / (time.process_time() - c0))
    print(f"training step, profile {args.profile}: emb {mopts['emb_size']}, layers {mopts['layer_sizes']}, "
          f"vocab {V}, batch {B}, bptt {T}, {torch.get_num_threads()} threads, median of {args.rounds} rounds x {args.steps} steps")
    print("  (wall: tokens per second of elapsed time; cpu: per second of this process's CPU time, which load from "
          "other processes does not distort)")
    bare_w, bare_c = statistics.median(wall["bare nn.LSTM"]), statistics.median(cpu["bare nn.LSTM"])
    for name in variants:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"  {name:14s} wall {w:8.0f} tokens/s (ratio {w / bare_w:5.3f})   cpu {c:8.0f} tokens/s (ratio {c / bare_c:5.3f})")


if __name__ == "__main__":
    main()
