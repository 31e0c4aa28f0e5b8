"""LanguageModel forward throughput per cell type, against a bare fused stack of the same weights.

For each cell (``lstm`` by default; ``--cells lstm,gru,rnn_tanh,lstm-hard``) the model's eval-mode
forward over a random token stream (batch ``--batch-size``, windows of ``--bptt`` steps, hidden
state carried) is timed against a bare loop over the same weights: embedding -> ``nn.LSTM`` /
``nn.GRU`` / ``nn.RNN`` per layer -> linear. Rounds alternate; the median of each and the ratio
(model / bare; 1.00 = no overhead) are printed, and the logits are checked to agree. ``lstm-hard``
(a Keras 2 hard_sigmoid LSTM) runs on the step cell; its bare reference is the fused sigmoid LSTM
(a different function: there the ratio is the step cell's price, not an overhead).

    .venv/bin/python benchmarks/recurrent_forward.py [--threads 1] [--tokens 2000] [--cells lstm]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from timescale_probe.models import LanguageModel, LMConfig


def build(cell: str, vocab: int, emb: int, sizes: tuple[int, ...], seed: int) -> LanguageModel:
    torch.manual_seed(seed)
    kw = {}
    if cell != "lstm":  # the cell options exist only after the recurrent-stack change
        kind, _, act = cell.partition("-")
        kw["cell"] = kind
        if act == "hard":
            kw["gate_activation"] = "hard_sigmoid_keras2"
    cfg = LMConfig(vocab_size=vocab, emb_size=emb, layer_sizes=sizes, tie_weights=False, **kw)
    return LanguageModel(cfg).eval()


def bare_layers(model: LanguageModel) -> list[nn.Module]:
    """Fused modules with the same weights (for a step-cell layer: the fused module of its kind)."""
    out = []
    for k, rnn in enumerate(model.rnns):
        cell = model.cells[k] if hasattr(model, "cells") else None  # before the recurrent-stack change: LSTMs
        kind = cell.kind if cell is not None else "lstm"
        if kind == "rnn":
            m = nn.RNN(rnn.input_size, rnn.hidden_size, nonlinearity=cell.activation)
        else:
            m = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](rnn.input_size, rnn.hidden_size)
        m.load_state_dict({k: v for k, v in rnn.state_dict().items() if k.endswith("_l0")})
        out.append(m.eval())
    return out


@torch.no_grad()
def run_model(model: LanguageModel, data: torch.Tensor, bptt: int) -> torch.Tensor:
    hidden, out = None, []
    for i in range(0, data.size(0), bptt):
        logits, hidden, _ = model(data[i:i + bptt], hidden)
        out.append(logits)
    return torch.cat(out)


@torch.no_grad()
def run_bare(model: LanguageModel, layers: list[nn.Module], data: torch.Tensor, bptt: int) -> torch.Tensor:
    hidden, out = [None] * len(layers), []
    for i in range(0, data.size(0), bptt):
        h = model.encoder(data[i:i + bptt])
        for k, rnn in enumerate(layers):
            h, hidden[k] = rnn(h, hidden[k])
        out.append(model.decoder(h))
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="lstm")
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--emb", type=int, default=200)
    ap.add_argument("--sizes", default="400,400,200")
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--bptt", type=int, default=70)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, args.vocab, (args.tokens // args.batch_size, args.batch_size), generator=g)
    print(f"threads {torch.get_num_threads()}, tokens {data.numel()}, batch {args.batch_size}, bptt {args.bptt}, "
          f"sizes {list(sizes)}")
    for cell in args.cells.split(","):
        model = build(cell, args.vocab, args.emb, sizes, seed=1)
        layers = bare_layers(model)
        ours, bare = run_model(model, data, args.bptt), run_bare(model, layers, data, args.bptt)
        if not cell.endswith("-hard"):
            torch.testing.assert_close(ours, bare, rtol=1e-5, atol=1e-5)
        t_ours, t_bare = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            run_model(model, data, args.bptt)
            t_ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            run_bare(model, layers, data, args.bptt)
            t_bare.append(time.perf_counter() - t0)
        mo, mb = statistics.median(t_ours), statistics.median(t_bare)
        print(f"{cell:>10}: model {mo * 1e3:8.1f} ms  bare fused {mb * 1e3:8.1f} ms  ratio {mo / mb:.3f}")


if __name__ == "__main__":
    main()
