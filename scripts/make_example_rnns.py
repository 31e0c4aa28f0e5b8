"""Train the example GRU and RNN_TANH language models of ``docs/examples-gru-rnn.md``.

Run from the repository root with the project's environment (one epoch took 297 CPU-s for the GRU
and 255 for the RNN_TANH on one thread of a loaded 2-core machine; each run's card records its own)::

    .venv/bin/python scripts/make_example_rnns.py --out checkpoints/examples --threads 1
    .venv/bin/python scripts/make_example_rnns.py --lr-probe     # why the RNN_TANH trains at lr 2

The models are pytorch/examples' ``word_language_model`` models, written here rather than copied: a
class ``model.RNNModel`` (``encoder`` -> ``nn.GRU`` / ``nn.RNN(nonlinearity='tanh')`` -> ``decoder``,
``drop``, ``rnn_type``, ``nhid``, ``nlayers``), trained by that example's loop (SGD by hand with
gradient-norm clipping, the hidden state carried across ``bptt`` windows of a ``batchify``-ed
stream, the learning rate divided by 4 whenever validation loss does not improve, the best epoch
kept) on PTB as ``timescale_probe.corpora.load_corpus("ptb")`` tokenises it (the train-only
vocabulary order, which on PTB is also that example's ``data.Corpus`` order). Each model is saved
twice, the way that example saves it (``torch.save(model, f)``: a whole-model pickle) and as a
state dict (``torch.save(model.state_dict(), f)``), with a JSON card (recipe, seed, per-epoch
validation perplexity, test perplexity by the example's ``evaluate``, CPU and wall time, versions,
SHA-256 of both files). Everything is deterministic given ``--seed`` on one CPU thread.

Our recipe differs from the example's defaults only where the CPU budget asks for it (smaller
sizes, tied weights, one epoch, and lr 2 for the RNN_TANH, whose loss rises above ln V at the
example's lr 20 with clip 0.25: ``--lr-probe``); the card records every value.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import sys
import time
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
RNN_TYPES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")


class RNNModel(nn.Module):
    """Encoder -> recurrent module -> decoder, with pytorch/examples' attribute names and forward
    (``forward(input, hidden) -> (log-probabilities (T*B, V), hidden)``). Pickled as ``model.RNNModel``."""

    def __init__(self, rnn_type: str, ntoken: int, ninp: int, nhid: int, nlayers: int,
                 dropout: float = 0.5, tie_weights: bool = False):
        super().__init__()
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"rnn_type must be one of {RNN_TYPES}, not {rnn_type!r}")
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ("LSTM", "GRU"):
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        else:
            nonlinearity = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type]
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            if nhid != ninp:
                raise ValueError("tied weights need nhid == ninp")
            self.decoder.weight = self.encoder.weight
        self.init_weights()
        self.rnn_type, self.nhid, self.nlayers = rnn_type, nhid, nlayers

    def init_weights(self) -> None:
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, tokens: torch.Tensor, hidden):
        emb = self.drop(self.encoder(tokens))
        output, hidden = self.rnn(emb, hidden)
        decoded = self.decoder(self.drop(output)).view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz: int):
        weight = next(self.parameters())
        zeros = weight.new_zeros(self.nlayers, bsz, self.nhid)
        return (zeros, zeros.clone()) if self.rnn_type == "LSTM" else zeros


def register_model_module() -> None:
    """Make ``RNNModel`` importable as ``model.RNNModel``, the name pytorch/examples' pickles carry."""
    mod = sys.modules.get("model")
    if mod is None or getattr(mod, "RNNModel", None) is not RNNModel:
        mod = types.ModuleType("model")
        RNNModel.__module__ = "model"
        mod.RNNModel = RNNModel
        sys.modules["model"] = mod


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a trained model, recorded in its card."""

    rnn_type: str
    emsize: int = 100
    nhid: int = 100
    nlayers: int = 2
    dropout: float = 0.2
    tied: bool = True
    lr: float = 20.0
    clip: float = 0.25
    epochs: int = 1
    batch_size: int = 20
    eval_batch_size: int = 10
    bptt: int = 35
    seed: int = 1111
    max_batches: int = 0          # batches per epoch (0 = the whole train stream)


@dataclass
class History:
    valid_ppl: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    kept: list[bool] = field(default_factory=list)
    test_ppl: float = float("nan")
    cpu_s: float = 0.0
    wall_s: float = 0.0


def batchify(data: torch.Tensor, bsz: int) -> torch.Tensor:
    """(N,) ids -> (N // bsz, bsz): ``bsz`` parallel streams, the tail dropped (the example's)."""
    nbatch = data.size(0) // bsz
    return data[: nbatch * bsz].view(bsz, -1).t().contiguous()


def get_batch(source: torch.Tensor, i: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].reshape(-1)


def repackage_hidden(h):
    return h.detach() if isinstance(h, torch.Tensor) else tuple(repackage_hidden(v) for v in h)


@torch.no_grad()
def evaluate(model: RNNModel, source: torch.Tensor, bptt: int) -> float:
    """Mean NLL per token over a batchified stream, the hidden state carried (the example's evaluate)."""
    model.eval()
    total, hidden = 0.0, model.init_hidden(source.size(1))
    for i in range(0, source.size(0) - 1, bptt):
        data, targets = get_batch(source, i, bptt)
        output, hidden = model(data, hidden)
        total += len(data) * F.nll_loss(output, targets).item()
    return total / (len(source) - 1)


def train_epoch(model: RNNModel, source: torch.Tensor, recipe: Recipe, lr: float) -> list[float]:
    """One pass of the example's train(): plain SGD by hand after clipping the gradient norm; the
    loss of every batch."""
    model.train()
    hidden, losses = model.init_hidden(recipe.batch_size), []
    for batch, i in enumerate(range(0, source.size(0) - 1, recipe.bptt)):
        if recipe.max_batches and batch >= recipe.max_batches:
            break
        data, targets = get_batch(source, i, recipe.bptt)
        hidden = repackage_hidden(hidden)
        model.zero_grad()
        output, hidden = model(data, hidden)
        loss = F.nll_loss(output, targets)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), recipe.clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        losses.append(loss.item())
    return losses


def train_model(recipe: Recipe, train: torch.Tensor, valid: torch.Tensor, test: torch.Tensor, ntoken: int,
                log=print) -> tuple[RNNModel, History]:
    """Train by the example's loop; return the best-on-validation model (a copy) and its history."""
    register_model_module()
    torch.manual_seed(recipe.seed)
    model = RNNModel(recipe.rnn_type, ntoken, recipe.emsize, recipe.nhid, recipe.nlayers,
                     recipe.dropout, recipe.tied)
    train_b = batchify(train, recipe.batch_size)
    valid_b, test_b = batchify(valid, recipe.eval_batch_size), batchify(test, recipe.eval_batch_size)
    hist, lr, best_loss, best_state = History(), recipe.lr, None, None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for epoch in range(1, recipe.epochs + 1):
        losses = train_epoch(model, train_b, recipe, lr)
        train_loss = sum(losses) / max(len(losses), 1)
        val_loss = evaluate(model, valid_b, recipe.bptt)
        keep = best_loss is None or val_loss < best_loss
        hist.valid_ppl.append(math.exp(val_loss))
        hist.lr.append(lr)
        hist.kept.append(keep)
        log(f"{recipe.rnn_type} epoch {epoch}: lr {lr:g}, train loss {train_loss:.3f}, "
            f"valid ppl {math.exp(val_loss):.2f}{' (kept)' if keep else ''}")
        if keep:
            best_loss = val_loss
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            lr /= 4.0
    model.load_state_dict(best_state)
    hist.test_ppl = math.exp(evaluate(model, test_b, recipe.bptt))
    hist.cpu_s, hist.wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    return model.eval(), hist


def lr_probe(train: torch.Tensor, ntoken: int, rnn_type: str = "RNN_TANH", lrs=(20.0, 2.0), batches: int = 120,
             log=print) -> dict[float, list[float]]:
    """The first ``batches`` training batches at each learning rate from the same seed: the evidence
    for the RNN_TANH's lr (its loss at lr 20 rises above ln V; at lr 2 it falls). Mean loss per 20 batches."""
    out = {}
    for lr in lrs:
        recipe = Recipe(rnn_type=rnn_type, lr=lr, max_batches=batches)
        torch.manual_seed(recipe.seed)
        model = RNNModel(rnn_type, ntoken, recipe.emsize, recipe.nhid, recipe.nlayers, recipe.dropout, recipe.tied)
        losses = train_epoch(model, batchify(train, recipe.batch_size), recipe, lr)
        out[lr] = [sum(losses[k:k + 20]) / len(losses[k:k + 20]) for k in range(0, len(losses), 20)]
        log(f"{rnn_type} lr {lr:g}: mean loss per 20 batches " + " ".join(f"{v:.2f}" for v in out[lr])
            + f" (ln V = {math.log(ntoken):.2f})")
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_model(model: RNNModel, out: Path, stem: str) -> dict[str, Path]:
    """Write ``STEM.pt`` (``torch.save(model)``, as the example saves) and ``STEM.state_dict.pt``, atomically."""
    from timescale_probe.fileio import atomic_write_with

    register_model_module()
    paths = {"pickle": out / f"{stem}.pt", "state_dict": out / f"{stem}.state_dict.pt"}
    atomic_write_with(paths["pickle"], lambda p: torch.save(model, p))
    atomic_write_with(paths["state_dict"], lambda p: torch.save(model.state_dict(), p))
    return paths


def write_card(model: RNNModel, recipe: Recipe, hist: History, paths: dict[str, Path], threads: int, command: str) -> Path:
    from timescale_probe.fileio import atomic_write_text

    card = {
        "command": command,
        "format": "pytorch/examples word_language_model (whole-model pickle model.RNNModel) + state dict",
        "corpus": "ptb (timescale_probe.corpora.load_corpus('ptb'); train-only vocabulary order)",
        "vocab_size": model.ntoken,
        "recipe": asdict(recipe),
        "valid_ppl_by_epoch": hist.valid_ppl,
        "lr_by_epoch": hist.lr,
        "epoch_kept": hist.kept,
        "test_ppl": hist.test_ppl,
        "test_ppl_procedure": f"the example's evaluate: test stream batchified into {recipe.eval_batch_size} "
                              f"streams, bptt {recipe.bptt}, state carried",
        "parameters": sum(p.numel() for p in model.parameters()),  # shared (tied) tensors once
        "cpu_s": round(hist.cpu_s, 1),
        "wall_s": round(hist.wall_s, 1),
        "threads": threads,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "files": {k: {"path": str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p),
                      "bytes": p.stat().st_size, "sha256": _sha256(p)} for k, p in paths.items()},
    }
    return atomic_write_text(paths["pickle"].with_suffix(".json"), json.dumps(card, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "checkpoints" / "examples")
    parser.add_argument("--rnn-types", default="GRU,RNN_TANH", help="comma list of LSTM, GRU, RNN_TANH, RNN_RELU")
    parser.add_argument("--epochs", type=int, default=Recipe.epochs)
    parser.add_argument("--max-batches", type=int, default=0, help="batches per epoch (0 = all)")
    parser.add_argument("--seed", type=int, default=Recipe.seed)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lr-probe", action="store_true",
                        help="only run the learning-rate probe (RNN_TANH, 120 batches at lr 20 and at lr 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from timescale_probe.corpora import load_corpus

    corpus = load_corpus("ptb")
    train, valid, test = (corpus.tokens(s) for s in ("train", "valid", "test"))
    if args.lr_probe:
        lr_probe(train, corpus.vocab_size)
        return 0
    # RNN_TANH: the example's lr 20 with clip 0.25 diverges for a tanh RNN; 2 trains (see the card).
    lrs = {"GRU": 20.0, "LSTM": 20.0, "RNN_TANH": 2.0, "RNN_RELU": 2.0}
    command = "python scripts/make_example_rnns.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for rnn_type in args.rnn_types.split(","):
        recipe = Recipe(rnn_type=rnn_type.strip().upper(), epochs=args.epochs, seed=args.seed,
                        max_batches=args.max_batches, lr=lrs.get(rnn_type.strip().upper(), 20.0))
        model, hist = train_model(recipe, train, valid, test, corpus.vocab_size)
        stem = f"ptb-{recipe.rnn_type.lower().replace('_', '-')}-example"
        paths = save_model(model, args.out, stem)
        card = write_card(model, recipe, hist, paths, args.threads, command)
        print(f"{stem}: test ppl {hist.test_ppl:.2f}, {hist.cpu_s:.0f} CPU-s; wrote {', '.join(map(str, paths.values()))}, {card}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
