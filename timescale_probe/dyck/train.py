"""The Dyck model (1-layer LSTM, one-hot input, linear -> n sigmoid outputs), its training, the
per-sequence test metric, and conversion to/from our checkpoint format.

Training follows the reference (docs/methods.md §6): Adam, MSE on the sigmoid outputs averaged over positions
and output bits (BCE on the logits as an option), gradient norm clipped to 1.0, batch 32, the final
model is tested. Batches are *bucketed by length*: each epoch sorts the training sequences by length
(ties broken at random), cuts consecutive groups of ``batch_size`` and shuffles the order of the
groups, so the sequences of a batch differ in length by a few characters and almost no step is
spent on padding. Padded positions never enter the loss or the metric. By default a batch runs as
one dense padded tensor; ``packed=True`` runs it as a ``PackedSequence`` (identical numbers up to
float rounding). Measured on CPU (64 units, 1 thread, benchmarks/dyck_train.py) the dense bucketed
batches are about 5x faster than packed ones: PyTorch's CPU LSTM steps through packed input with a
changing batch size, while the bucketing already removes the padding that packing would skip.

Metric: a position is right when every output bit, thresholded at 0.5 (``sigmoid > 0.5``, as the
reference), equals its target bit; a sequence is right when every position is.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..errors import CheckpointError
from ..progress import ProgressLike, as_progress
from ..stack import LSTMLayer, LSTMStack, Provenance
from ..timescales import apply_mts_spec
from .config import ARCHS, LOSSES, PROFILES, DyckTrainConfig, profile_config
from .data import DyckDataset, DyckSplit

__all__ = ["ARCHS", "LOSSES", "PROFILES", "DyckLSTM", "DyckTrainConfig", "TrainedDyck", "build_model", "evaluate",
           "length_buckets", "model_from_stack", "model_to_stack", "profile_config", "train_dyck"]

class DyckLSTM(nn.Module):
    """1-layer LSTM over one-hot bracket codes (``2n`` inputs) -> linear -> ``n`` logits."""

    def __init__(self, n: int, units: int):
        super().__init__()
        self.n = n
        self.lstm = nn.LSTM(2 * n, units, batch_first=True)
        self.linear = nn.Linear(units, n)

    def valid_logits(self, codes: torch.Tensor, lengths: torch.Tensor, packed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``codes`` (B, L) padded, sorted by decreasing ``lengths`` -> (logits (P, n) of the P real
        positions in batch-major order, the (B, L) boolean mask of real positions).

        ``packed=False`` runs the dense padded batch: the LSTM reads left to right, so padding after
        a sequence never changes its outputs, and only real positions are returned: the same
        numbers as ``packed=True`` (a ``PackedSequence``), which skips the padded steps."""
        B, L = codes.shape
        mask = torch.arange(L, device=codes.device)[None, :] < lengths.to(codes.device)[:, None]
        if packed:
            p = pack_padded_sequence(codes, lengths.cpu(), batch_first=True, enforce_sorted=True)
            out, _ = self.lstm(PackedSequence(F.one_hot(p.data, 2 * self.n).float(), p.batch_sizes))
            out = pad_packed_sequence(out, batch_first=True, total_length=L)[0]
        else:
            out, _ = self.lstm(F.one_hot(codes, 2 * self.n).float())
        return self.linear(out[mask]), mask


def _loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "mse":
        return F.mse_loss(torch.sigmoid(logits), target)
    return F.binary_cross_entropy_with_logits(logits, target)


class _Tensors:
    """A split as padded tensors on a device, for fast batch slicing."""

    def __init__(self, split: DyckSplit, device: torch.device):
        x, y, lengths = split.padded()
        self.x = torch.as_tensor(x, device=device)
        self.y = torch.as_tensor(y, device=device)
        self.lengths = np.asarray(lengths)

    def batch(self, idx: np.ndarray):
        """Rows ``idx`` sorted by decreasing length: (idx sorted, codes (B, L), lengths, targets (B, L, n))."""
        idx = idx[np.argsort(-self.lengths[idx], kind="stable")]
        lengths = torch.as_tensor(self.lengths[idx])
        L = int(lengths[0])
        ii = torch.as_tensor(idx, device=self.x.device)
        return idx, self.x[ii, :L], lengths, self.y[ii, :L]


def length_buckets(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices sorted by length (random tie-break), cut into batches, batch order shuffled."""
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


@torch.no_grad()
def evaluate(model: DyckLSTM, split: DyckSplit | _Tensors, device: torch.device | None = None,
             loss: str = "mse", batch_size: int = 500, packed: bool = False) -> tuple[np.ndarray, float]:
    """Per-sequence correctness (bool array in split order) and the mean loss over positions x bits."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    t = split if isinstance(split, _Tensors) else _Tensors(split, device)
    N = len(t.lengths)
    correct = np.zeros(N, dtype=bool)
    total_loss, total_elems = 0.0, 0
    order = np.argsort(-t.lengths, kind="stable")
    for start in range(0, N, batch_size):
        idx, x, lengths, y = t.batch(order[start:start + batch_size])
        logits, mask = model.valid_logits(x, lengths, packed)
        y = y[mask]
        total_loss += float(_loss(logits, y, loss)) * y.numel()
        total_elems += y.numel()
        pos_ok = ((torch.sigmoid(logits) > 0.5) == (y > 0.5)).all(dim=1)
        rows = mask.nonzero()[:, 0]
        wrong = torch.zeros(len(idx), device=pos_ok.device).index_add_(0, rows, (~pos_ok).float())
        correct[idx] = (wrong == 0).cpu().numpy()
    model.train(was_training)
    return correct, total_loss / max(1, total_elems)


@dataclass
class TrainedDyck:
    model: DyckLSTM
    config: DyckTrainConfig
    timescales: np.ndarray | None
    history: pd.DataFrame
    test: pd.DataFrame
    seconds: float
    stopped: str
    data_meta: dict[str, Any] = field(default_factory=dict)

    @property
    def test_accuracy(self) -> float:
        return float(self.test["correct"].mean())


def build_model(cfg: DyckTrainConfig, n: int, device: torch.device | str = "cpu") -> tuple[DyckLSTM, np.ndarray | None]:
    """A freshly initialised model (seeded by ``cfg.seed``); MTS gets the paper's Dyck spec,
    frozen. Returns the model and the imposed timescales (None for the baseline)."""
    torch.manual_seed(cfg.seed)
    model = DyckLSTM(n, cfg.units)
    T = apply_mts_spec(model.lstm, cfg.spec())[0] if cfg.arch == "mts" else None
    return model.to(device), T


def train_dyck(data: DyckDataset, cfg: DyckTrainConfig, device: torch.device | str = "cpu",
               progress: ProgressLike = None) -> TrainedDyck:
    """Train one model on ``data['train']``, validate on ``valid``, test on ``test``.

    ``progress`` (:mod:`timescale_probe.progress`): started with the epoch budget, advanced once
    per epoch; a bar with ``info`` shows the training loss and validation accuracy. Same seed, same
    device and thread count -> the same numbers."""
    device = torch.device(device)
    t0 = time.perf_counter()
    n = data.grammar.n
    model, T = build_model(cfg, n, device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    train_t, valid_t = _Tensors(data["train"], device), _Tensors(data["valid"], device)
    rng = np.random.default_rng([cfg.seed, 2])
    rows, best, best_state, since_best, stopped = [], -1.0, None, 0, "max epochs"
    bar = as_progress(progress)
    info = getattr(bar, "info", None)
    bar.start(cfg.epochs, f"{cfg.arch} seed {cfg.seed}")
    try:
        for epoch in range(1, cfg.epochs + 1):
            te = time.perf_counter()
            model.train()
            loss_sum, elems = 0.0, 0
            for idx in length_buckets(train_t.lengths, cfg.batch_size, rng):
                _, x, lengths, y = train_t.batch(idx)
                logits, mask = model.valid_logits(x, lengths, cfg.packed)
                y = y[mask]
                loss = _loss(logits, y, cfg.loss)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, cfg.clip)
                opt.step()
                loss_sum += float(loss.detach()) * y.numel()
                elems += y.numel()
            row = {"epoch": epoch, "train_loss": loss_sum / elems, "valid_loss": np.nan, "valid_accuracy": np.nan}
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                ok, vloss = evaluate(model, valid_t, device, cfg.loss, packed=cfg.packed)
                row.update(valid_loss=vloss, valid_accuracy=float(ok.mean()))
                if row["valid_accuracy"] > best:
                    best, since_best = row["valid_accuracy"], 0
                    if cfg.restore_best:
                        best_state = copy.deepcopy(model.state_dict())
                else:
                    since_best += 1
            row["seconds"] = time.perf_counter() - te
            rows.append(row)
            bar.advance(1)
            if callable(info):
                acc = row["valid_accuracy"]
                info(f"loss {row['train_loss']:.4f}" + ("" if acc != acc else f" valid {acc:.3f}"))
            if cfg.converge_loss and row["valid_loss"] < cfg.converge_loss:
                stopped = "converged"
                break
            if cfg.patience and since_best >= cfg.patience:
                stopped = "patience"
                break
    finally:
        bar.done()
    if cfg.restore_best and best_state is not None:
        model.load_state_dict(best_state)
    test_split = data["test"]
    ok, _ = evaluate(model, test_split, device, cfg.loss, packed=cfg.packed)
    test = pd.DataFrame({
        "index": np.arange(len(test_split)), "length": test_split.lengths,
        "max_span": test_split.ann.max_span, "max_depth": test_split.ann.max_depth, "correct": ok,
    })
    return TrainedDyck(model, cfg, T, pd.DataFrame(rows), test, time.perf_counter() - t0, stopped, dict(data.meta))


# ------------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------------

def model_to_stack(model: DyckLSTM, cfg: DyckTrainConfig, data_meta: dict[str, Any] | None = None) -> LSTMStack:
    """The model as an LSTMStack: one layer, no embedding (one-hot input), the output layer as the
    decoder (``n`` rows, one per output bit), ``config['arch'] == 'dyck'``."""
    lstm = model.lstm
    layer = LSTMLayer(*(getattr(lstm, f"{k}_l0").detach().cpu().float().clone()
                        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
    meta = data_meta or {}
    config = {
        "arch": "dyck", "model": cfg.arch, "n_types": model.n, "units": cfg.units, "input": "one-hot",
        "input_codes": "open bracket j -> j, closing bracket j -> n + j",
        "pairs": meta.get("pairs"), "outputs": "n sigmoid bits; column k = bracket type n-1-k",
        "train": {k: v for k, v in asdict(cfg).items() if k not in ("arch",)},
    }
    return LSTMStack(
        layers=[layer], embedding=None,
        decoder_weight=model.linear.weight.detach().cpu().float().clone(),
        decoder_bias=model.linear.bias.detach().cpu().float().clone(),
        vocab=None, config=config, mts_spec=cfg.spec().to_dict(), provenance=Provenance("memory"),
    )


def model_from_stack(stack: LSTMStack) -> DyckLSTM:
    """Rebuild a runnable DyckLSTM from a stack written by :func:`model_to_stack`."""
    if stack.config.get("arch") != "dyck" or len(stack.layers) != 1 or stack.decoder_weight is None:
        raise CheckpointError("not a Dyck model checkpoint (config.arch must be 'dyck', one layer, a decoder)")
    layer = stack.layers[0]
    n = int(stack.decoder_weight.shape[0])
    if layer.input_size != 2 * n:
        raise CheckpointError(f"Dyck checkpoint has {layer.input_size} inputs for {n} bracket types (expected {2 * n})")
    model = DyckLSTM(n, layer.hidden_size)
    with torch.no_grad():
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(model.lstm, f"{k}_l0").copy_(getattr(layer, k))
        model.linear.weight.copy_(stack.decoder_weight)
        model.linear.bias.copy_(stack.decoder_bias if stack.decoder_bias is not None else torch.zeros(n))
    return model.eval()
