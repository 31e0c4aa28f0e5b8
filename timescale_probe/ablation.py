"""Grouped unit ablations of an LSTM language model and the routing of information by timescale.

The question (paper Fig. 3): which units, grouped by timescale, carry what a model needs to
predict words of each frequency bin? Silence a group, measure per-bin perplexity, compare with the
intact model.

Groups (:func:`make_groups`) are built on one layer's units, ordered by timescale, longest first
(``T`` from the biases or from data; ties keep unit order):

- ``chunks:N``: consecutive runs of ``N`` units in that order (the paper: 23 x 50 on layer 2);
  the last chunk holds the remainder;
- ``quantiles:K``: ``K`` groups of (nearly) equal size in that order (``np.array_split``);
- ``edges:a,b,...``: ``T`` ranges ``[.., a), [a, b), ..., [z, ..]`` (empty ranges are left out),
  longest range first;
- ``units:1,5,9`` (one group) or ``units:FILE`` (one group per non-empty line; ``#`` comments).

Units are numbered from 0 within a layer, layers from 1.

Two ablation semantics, both keeping the fused ``nn.LSTM``:

- ``output`` (the paper's): the group's outputs are zeroed where they enter the next layer (or the
  decoder for the last layer); the layer's own recurrence still sees them. Implemented with the
  model's ``output_masks``: ``G`` groups run as ``G`` parallel copies of the same token stream in
  one batched pass, each copy with its own mask.
- ``silence`` (Lakretz et al. 2019): the unit's output is zero everywhere, into the next layer or
  decoder *and* into its own layer's recurrence: its output-gate pre-activation gets ``-1e4``, so
  ``o = sigmoid(-1e4 + ...) = 0`` and ``h = o tanh(c) = 0`` exactly. Batched like ``output``: the
  ablated layer gets one extra one-hot input channel per copy whose input weights carry the
  ``-1e4`` on that copy's units, i.e. a per-copy output-gate bias inside the fused LSTM. (The
  unbatched fallback sets the biases themselves, one pass per group, and restores them.)

In both modes the layers below the ablated one are the same for every copy and run once; the
cost of a study is about (groups + 1) / group_batch batched passes of the upper layers and the
decoder.

Results per group and bin (frequency bins of the target word, or any other per-vocabulary class
such as function vs content words): perplexity intact and ablated, their ratio, and a paired
bootstrap interval of the ratio over consecutive chunks of 100 target tokens (the same resamples
for every group). Random control groups of the same size give a null band.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .errors import InputError, OptionError
from .fileio import finite_or_none
from .progress import ProgressLike, progress_bar
from .validation import check_choice, check_int

MODES = ("output", "silence")
ORDER_BY = ("bias", "data")
SILENCE_BIAS = -1.0e4


# ----------------------------------------------------------------------------------------------
# groups
# ----------------------------------------------------------------------------------------------

@dataclass
class UnitGroup:
    """A set of units of one layer. ``kind`` is ``group`` or ``control``; ``T`` the timescales of
    its units (in steps, same order as ``units``)."""

    name: str
    layer: int
    units: np.ndarray
    T: np.ndarray
    kind: str = "group"

    @property
    def size(self) -> int:
        return len(self.units)

    def summary(self) -> dict[str, Any]:
        T = self.T[np.isfinite(self.T)] if np.any(np.isfinite(self.T)) else self.T
        return {
            "group": self.name, "kind": self.kind, "layer": self.layer, "size": self.size,
            "T_mean": float(np.mean(T)) if len(T) else float("nan"),
            "T_median": float(np.median(self.T)) if self.size else float("nan"),
            "T_min": float(np.min(self.T)) if self.size else float("nan"),
            "T_max": float(np.max(self.T)) if self.size else float("nan"),
            "units": " ".join(str(int(u)) for u in self.units),
        }


def timescale_order(T: np.ndarray) -> np.ndarray:
    """Unit indices sorted by timescale, longest first; ties (and NaN last) keep unit order."""
    T = np.asarray(T, dtype=np.float64)
    key = np.where(np.isnan(T), -np.inf, T)
    return np.argsort(-key, kind="stable")


def _parse_unit_list(text: str, n_units: int, where: str) -> np.ndarray:
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    units = []
    for p in parts:
        if re.fullmatch(r"\d+-\d+", p):
            a, b = (int(v) for v in p.split("-"))
            units.extend(range(a, b + 1))
        elif p.isdigit():
            units.append(int(p))
        else:
            raise OptionError(f"cannot read unit '{p}' in {where}: give unit numbers from 0, e.g. 1,5,9 or 10-19")
    arr = np.array(units, dtype=np.int64)
    if len(arr) == 0:
        raise OptionError(f"no units in {where}")
    bad = arr[(arr < 0) | (arr >= n_units)]
    if len(bad):
        raise OptionError(f"unit {int(bad[0])} in {where} is out of range: the layer has units 0-{n_units - 1}")
    if len(np.unique(arr)) != len(arr):
        raise OptionError(f"{where} names a unit twice")
    return arr


def make_groups(spec: str, T: np.ndarray, layer: int) -> list[UnitGroup]:
    """Groups of one layer's units from a spec (see the module docstring). ``T``: timescale of
    every unit of the layer (index = unit number), used for ordering and labels."""
    T = np.asarray(T, dtype=np.float64)
    H = len(T)
    kind, _, arg = str(spec).partition(":")
    kind = kind.strip().lower()
    order = timescale_order(T)

    def grp(i: int, units: np.ndarray) -> UnitGroup:
        return UnitGroup(str(i), layer, units, T[units])

    if kind in ("chunks", "quantiles"):
        try:
            n = int(arg)
        except ValueError:
            raise OptionError(f"cannot read '{spec}': use {kind}:N with a whole number", param="groups") from None
        if n < 1 or n > H:
            raise OptionError(f"'{spec}': N must lie in 1..{H} (units in layer {layer})", param="groups")
        parts = [order[s:s + n] for s in range(0, H, n)] if kind == "chunks" else np.array_split(order, n)
        return [grp(i, p) for i, p in enumerate(parts, 1)]
    if kind == "edges":
        try:
            edges = sorted(float(v) for v in arg.split(",") if v.strip())
        except ValueError:
            raise OptionError(f"cannot read '{spec}': use edges:a,b,... with timescales in steps",
                              param="groups") from None
        if not edges:
            raise OptionError(f"'{spec}' gives no edges", param="groups")
        which = np.searchsorted(np.asarray(edges), T, side="right")  # 0 = below the first edge
        groups = []
        for b in range(len(edges), -1, -1):  # longest range first
            members = order[which[order] == b]
            if len(members):
                groups.append(members)
        return [grp(i, p) for i, p in enumerate(groups, 1)]
    if kind == "units":
        path = Path(arg.strip())
        if arg.strip() and not re.fullmatch(r"[\d,\s-]+", arg) and path.exists():
            if path.is_dir():
                raise InputError(f"unit list is a directory, expected a file: {path}")
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise InputError(f"unit list {path} is not UTF-8 text") from None
            lines = [l.split("#", 1)[0].strip() for l in text.splitlines()]
            lines = [l for l in lines if l]
            if not lines:
                raise InputError(f"unit list {path} has no units")
            return [grp(i, _parse_unit_list(l, H, f"{path} line {i}")) for i, l in enumerate(lines, 1)]
        if not re.fullmatch(r"[\d,\s-]+", arg or ""):
            raise OptionError(f"unit list file not found: {arg.strip() or '(empty)'}", param="groups")
        return [grp(1, _parse_unit_list(arg, H, f"'{spec}'"))]
    raise OptionError(f"unknown group spec '{spec}': use chunks:N, quantiles:K, edges:a,b,... or units:LIST|FILE",
                      param="groups")


def check_group_spec(spec: str) -> None:
    """The syntax of a group spec, before the layer is known (its size is checked by :func:`make_groups`)."""
    kind, _, arg = str(spec).partition(":")
    kind = kind.strip().lower()
    if kind in ("chunks", "quantiles"):
        try:
            n = int(arg)
        except ValueError:
            raise OptionError(f"cannot read '{spec}': use {kind}:N with a whole number", param="groups") from None
        if n < 1:
            raise OptionError(f"'{spec}': N must be >= 1", param="groups")
    elif kind == "edges":
        make_groups(spec, np.ones(1), 1)
    elif kind == "units":
        a = arg.strip()
        if not (re.fullmatch(r"[\d,\s-]+", a) or Path(a).is_file()):
            make_groups(spec, np.ones(1), 1)  # the same one-line error as later
    else:
        make_groups(spec, np.ones(1), 1)


def check_ablation_options(*, groups: str | Sequence[UnitGroup] | None = None, layer: int = 2, mode: str = "output",
                           controls: int = 0, control_size: int | None = None, bptt: int = 70, group_batch: int = 8,
                           chunk: int = 100, n_resamples: int = 10000, level: float = 0.999, top: int = 3) -> None:
    """Options of :func:`run_ablation_study`, one ``OptionError`` naming the parameter; commands
    call it before any work (the layer's existence needs the model and is checked there)."""
    from .evaluation import check_bootstrap_options

    check_int(layer, "layer", minimum=1)
    check_choice(mode, "mode", MODES)
    check_int(controls, "controls", minimum=0)
    if control_size is not None:
        check_int(control_size, "control_size", minimum=1)
    check_int(bptt, "bptt", minimum=1)
    check_int(group_batch, "group_batch", minimum=1)
    check_int(top, "top", minimum=1)
    check_bootstrap_options(chunk=chunk, n_resamples=n_resamples, level=level)
    if isinstance(groups, str):
        check_group_spec(groups)


def control_groups(n_units: int, size: int, k: int, T: np.ndarray, layer: int, seed: int = 0) -> list[UnitGroup]:
    """``k`` random groups of ``size`` units each (without replacement within a group), seeded."""
    if k <= 0:
        return []
    if size > n_units:
        raise OptionError(f"control groups of {size} units do not fit in a layer of {n_units}")
    rng = np.random.default_rng(seed)
    T = np.asarray(T, dtype=np.float64)
    out = []
    for j in range(1, k + 1):
        units = np.sort(rng.choice(n_units, size=size, replace=False))
        out.append(UnitGroup(f"control {j}", layer, units, T[units], kind="control"))
    return out


def groups_table(groups: Sequence[UnitGroup]) -> pd.DataFrame:
    """One row per group: ``group, kind, layer, size, T_mean, T_median, T_min, T_max, units``."""
    return pd.DataFrame([g.summary() for g in groups])


# ----------------------------------------------------------------------------------------------
# ablated evaluation
# ----------------------------------------------------------------------------------------------

@torch.no_grad()
def masked_stream_nll(model, tokens: torch.Tensor, masks: dict[int, torch.Tensor] | None = None, *,
                      copies: int = 1, bptt: int = 70, device: Any = "cpu", bar=None) -> np.ndarray:
    """Token NLL (nats) of ``copies`` parallel copies of one stream, each with its own masks.

    The stream is evaluated as at batch size 1 (inputs ``tokens[:-1]``, targets ``tokens[1:]``,
    windows of ``bptt``, the hidden state carried, eval mode); ``masks[k]`` is ``(copies, H_k)``
    (or ``(H_k,)`` shared) and multiplies layer ``k``'s output where it enters layer ``k+1``.
    Returns ``(copies, N-1)`` float64.
    """
    device = torch.device(device)
    model.eval()
    tokens = torch.as_tensor(tokens).long()
    n = tokens.numel() - 1
    if n < 1:
        raise OptionError("the token stream has fewer than 2 tokens")
    data = tokens.to(device).unsqueeze(1).expand(-1, copies)
    masks = {k: v.to(device) for k, v in (masks or {}).items()}
    hidden = model.init_hidden(copies)
    out = torch.empty(copies, n, dtype=torch.float64)
    for start in range(0, n, bptt):
        s = min(bptt, n - start)
        x = data[start:start + s]
        y = data[start + 1:start + 1 + s]
        logits, hidden, _ = model(x, hidden, output_masks=masks or None)
        nll = F.cross_entropy(logits.reshape(s * copies, -1).float(), y.reshape(-1), reduction="none").view(s, copies)
        out[:, start:start + s] = nll.t().double().cpu()
        if bar is not None:
            bar.advance(s)
    return out.numpy()


class _silenced:
    """Context manager: output-gate biases of ``units`` of layer ``layer`` set to -1e4 (h = 0)."""

    def __init__(self, model, layer: int, units: np.ndarray):
        self.rnn = model.lstm_layers()[layer - 1]
        H = self.rnn.hidden_size
        self.idx = torch.as_tensor(3 * H + np.asarray(units, dtype=np.int64), device=self.rnn.bias_ih_l0.device)
        self.saved = None

    def __enter__(self):
        b = self.rnn.bias_ih_l0
        self.saved = b.detach()[self.idx].clone()
        with torch.no_grad():
            b[self.idx] = SILENCE_BIAS
        return self

    def __exit__(self, *exc):
        with torch.no_grad():
            self.rnn.bias_ih_l0[self.idx] = self.saved
        return False


def _is_plain_lm(model) -> bool:
    """A model whose eval-mode forward is embedding -> LSTM layers -> decoder (LanguageModel)."""
    from torch import nn

    return (isinstance(getattr(model, "encoder", None), nn.Embedding) and hasattr(model, "lstm_layers")
            and isinstance(getattr(model, "decoder", None), nn.Linear) and not model.training)


@torch.no_grad()
def grouped_pass_nll(model, tokens: torch.Tensor, layer: int, unit_sets: Sequence[np.ndarray | None], *,
                     mode: str = "output", bptt: int = 70, device: Any = "cpu", bar=None) -> np.ndarray:
    """Token NLL ``(copies, N-1)`` of one stream run as parallel copies, copy ``j`` with the units
    ``unit_sets[j]`` of ``layer`` ablated (None or empty = intact), in one fused pass.

    Layers below the ablated one are the same for every copy and run once at batch 1; from the
    ablated layer on, the copies run as a batch. ``output``: layer ``k``'s output times a per-copy
    mask. ``silence``: layer ``k`` runs with one extra input channel per copy (a one-hot
    indicator) whose weights are ``-1e4`` on the silenced units' output-gate rows, so each copy
    gets its own output-gate bias and ``h = 0`` exactly for its units, in the recurrence too.
    Same numbers as :func:`masked_stream_nll` with ``output_masks`` (output) or the bias surgery of
    :func:`ablated_nll` (silence), up to float rounding.
    """
    from torch import nn

    device = torch.device(device)
    layers = model.lstm_layers()
    G = len(unit_sets)
    base = layers[layer - 1]
    H = base.hidden_size
    dtype = base.weight_ih_l0.dtype
    tokens = torch.as_tensor(tokens).long().to(device)
    n = tokens.numel() - 1
    if mode == "output":
        mask = torch.ones(G, H, device=device, dtype=dtype)
        for j, u in enumerate(unit_sets):
            if u is not None and len(u):
                mask[j, torch.as_tensor(u, device=device)] = 0.0
        prefix, suffix, lk = layers[:layer], layers[layer:], None
    elif mode == "silence":
        extra = torch.zeros(4 * H, G, device=device, dtype=dtype)
        for j, u in enumerate(unit_sets):
            if u is not None and len(u):
                extra[3 * H + torch.as_tensor(u, device=device), j] = SILENCE_BIAS
        lk = nn.LSTM(base.input_size + G, H).to(device=device, dtype=dtype).eval()
        lk.weight_ih_l0.copy_(torch.cat([base.weight_ih_l0, extra], dim=1))
        lk.weight_hh_l0.copy_(base.weight_hh_l0)
        lk.bias_ih_l0.copy_(base.bias_ih_l0)
        lk.bias_hh_l0.copy_(base.bias_hh_l0)
        indicator = torch.eye(G, device=device, dtype=dtype)
        prefix, suffix = layers[:layer - 1], layers[layer:]
    else:
        raise OptionError(f"unknown ablation mode '{mode}': use output or silence")
    pre_state = [None] * len(prefix)
    k_state = None
    suf_state = [None] * len(suffix)
    out = torch.empty(G, n, dtype=torch.float64)
    for start in range(0, n, bptt):
        s = min(bptt, n - start)
        x = model.encoder(tokens[start:start + s].unsqueeze(1)).to(dtype)  # (s, 1, E)
        for i, m in enumerate(prefix):
            x, pre_state[i] = m(x, pre_state[i])
        x = x.expand(s, G, x.shape[-1])
        if lk is None:
            x = x * mask
        else:
            x, k_state = lk(torch.cat([x, indicator.expand(s, G, G)], dim=-1), k_state)
        for i, m in enumerate(suffix):
            x, suf_state[i] = m(x, suf_state[i])
        logits = model.decoder(x)
        y = tokens[start + 1:start + 1 + s].unsqueeze(1).expand(s, G)
        nll = F.cross_entropy(logits.reshape(s * G, -1).float(), y.reshape(-1), reduction="none").view(s, G)
        out[:, start:start + s] = nll.t().double().cpu()
        if bar is not None:
            bar.advance(s)
    return out.numpy()


def ablated_nll(model, tokens: torch.Tensor, groups: Sequence[UnitGroup], *, mode: str = "output",
                bptt: int = 70, group_batch: int = 8, device: Any = "cpu", fused: bool = True,
                progress: ProgressLike = False) -> tuple[np.ndarray, np.ndarray]:
    """Token NLL of the intact model and of each ablated group.

    Returns ``(intact (N-1,), ablated (G, N-1))`` in nats. The intact stream runs as one more copy
    in the first pass, so intact and ablated numbers come from the same arithmetic;
    ``group_batch`` copies per pass. With ``fused`` (and a plain embedding -> LSTMs -> decoder
    model, all groups in one layer) both modes use :func:`grouped_pass_nll`: layers below the
    ablated one run once, the rest as a batch of copies. Otherwise ``output`` runs the model's own
    forward with per-copy ``output_masks`` and ``silence`` one pass per group with the output-gate
    biases of the group set to -1e4 (restored afterwards).
    """
    check_choice(mode, "mode", MODES)
    check_int(group_batch, "group_batch", minimum=1)
    device = torch.device(device)
    model.to(device).eval()
    n = torch.as_tensor(tokens).numel() - 1
    sizes = [m.hidden_size for m in model.lstm_layers()]
    for g in groups:
        if not 1 <= g.layer <= len(sizes):
            raise OptionError(f"layer {g.layer} does not exist: the model has layers 1-{len(sizes)}")
    G = len(groups)
    ablated = np.empty((G, n), dtype=np.float64)
    intact = None
    fused = fused and _is_plain_lm(model) and len({g.layer for g in groups}) <= 1
    if fused or mode == "output":
        layer = groups[0].layer if groups else 1

        def run_copies(batch: list[int | None], bar) -> np.ndarray:
            """NLL of one batched pass; copy c is intact when batch[c] is None, else group batch[c]."""
            if fused:
                sets = [None if j is None else groups[j].units for j in batch]
                return grouped_pass_nll(model, tokens, layer, sets, mode=mode, bptt=bptt, device=device, bar=bar)
            masks: dict[int, torch.Tensor] = {}
            for c, j in enumerate(batch):
                if j is not None:
                    g = groups[j]
                    if g.layer not in masks:
                        masks[g.layer] = torch.ones(len(batch), sizes[g.layer - 1])
                    masks[g.layer][c, torch.as_tensor(g.units)] = 0.0
            return masked_stream_nll(model, tokens, masks, copies=len(batch), bptt=bptt, device=device, bar=bar)

        jobs = [None] + list(range(G))  # None = the intact copy
        batches = [jobs[s:s + group_batch] for s in range(0, len(jobs), group_batch)]
        with progress_bar(n * len(batches), f"ablate ({mode}, {len(batches)} batched passes)", progress) as bar:
            for batch in batches:
                nll = run_copies(batch, bar)
                for c, j in enumerate(batch):
                    if j is None:
                        intact = nll[c]
                    else:
                        ablated[j] = nll[c]
        return intact, ablated
    with progress_bar(n * (G + 1), f"ablate ({mode}, {G + 1} passes)", progress) as bar:
        intact = masked_stream_nll(model, tokens, None, bptt=bptt, device=device, bar=bar)[0]
        for j, g in enumerate(groups):
            with _silenced(model, g.layer, g.units):
                ablated[j] = masked_stream_nll(model, tokens, None, bptt=bptt, device=device, bar=bar)[0]
    return intact, ablated


# ----------------------------------------------------------------------------------------------
# ratios per bin with a paired bootstrap
# ----------------------------------------------------------------------------------------------

def bootstrap_chunk_counts(n_tokens: int, chunk: int = 100, n_resamples: int = 10000, seed: int = 0) -> np.ndarray:
    """Resampling weights ``(n_resamples + 1, n_chunks)`` (float64): row 0 is the original sample
    (all ones), the others count how often each of the ``n_tokens // chunk`` consecutive chunks is
    drawn (with replacement). Tokens after the last whole chunk are not resampled. The same draws
    as :func:`timescale_probe.evaluation.resample_counts` for the same seed."""
    from .evaluation import resample_counts

    n_chunks = n_tokens // chunk
    if n_chunks < 2:
        raise OptionError(f"{n_tokens} tokens make fewer than 2 bootstrap chunks of {chunk}")
    return resample_counts(n_chunks, n_resamples, seed).astype(np.float64)


def _order_stat_interval(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Interval from order statistics over axis 0, all samples including the original one, with
    the reference's ranks (:func:`timescale_probe.evaluation.order_statistic_ranks`: 10,001
    values at level 0.999 -> sorted indices 4 and 9995)."""
    from .evaluation import order_statistic_ranks

    lo_i, hi_i = order_statistic_ranks(values.shape[0], level)
    s = np.sort(values, axis=0)
    return s[lo_i], s[hi_i]


def ratio_table(intact: np.ndarray, ablated: np.ndarray, targets: np.ndarray, category_of_vocab: np.ndarray,
                labels: Sequence[str], groups: Sequence[UnitGroup], *, binning: str = "frequency",
                chunk: int = 100, n_resamples: int = 10000, level: float = 0.999, seed: int = 0,
                counts: np.ndarray | None = None) -> pd.DataFrame:
    """Perplexity ratios ablated / intact per group and bin, with paired bootstrap intervals.

    ``targets``: the ``N-1`` target ids; a token's bin is ``category_of_vocab[target]`` (values
    ``0..len(labels)-1``; negative = no bin). Rows for every group and bin plus bin ``all``.
    The interval comes from order statistics over the original sample and the resamples (the
    reference's ranks), the same resamples for every group and bin.
    Columns: ``binning, group, kind, bin, n_tokens, ppl_intact, ppl_ablated, ratio, ratio_lo,
    ratio_hi, p_not_above_1`` (share of resamples with ratio <= 1), ``level, n_resamples, chunk``.
    ``ratio = exp(mean NLL ablated - mean NLL intact)`` over the bin's tokens = ppl_ablated / ppl_intact.
    """
    n = len(targets)
    cat = np.asarray(category_of_vocab)[np.asarray(targets)]
    B = len(labels)
    # one-hot bins plus "all": (n, B+1)
    onehot = np.zeros((n, B + 1), dtype=np.float64)
    ok = cat >= 0
    onehot[np.nonzero(ok)[0], cat[ok]] = 1.0
    onehot[:, B] = 1.0
    diff = ablated - intact[None, :]  # (G, n)
    tok_count = onehot.sum(0)
    sum_intact = intact @ onehot
    sum_ablated = ablated @ onehot  # (G, B+1)
    if counts is None:
        counts = bootstrap_chunk_counts(n, chunk, n_resamples, seed)
    n_chunks = counts.shape[1]
    used = n_chunks * chunk
    # per chunk sums: (n_chunks, B+1) counts and (G, n_chunks, B+1) differences
    oh_c = onehot[:used].reshape(n_chunks, chunk, B + 1)
    chunk_n = oh_c.sum(1)
    chunk_d = np.matmul(diff[:, :used].reshape(len(diff), n_chunks, 1, chunk), oh_c[None]).squeeze(2)  # (G, C, B+1)
    denom = counts @ chunk_n  # (R+1, B+1)
    G = len(diff)
    num = (counts @ chunk_d.transpose(1, 0, 2).reshape(n_chunks, G * (B + 1))).reshape(-1, G, B + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.exp(num / denom[:, None, :])  # (R+1, G, B+1)
    lo, hi = _order_stat_interval(boot, level)
    p_le = np.mean(boot[1:] <= 1.0, axis=0) if len(boot) > 1 else np.full(lo.shape, np.nan)
    all_labels = list(labels) + ["all"]
    rows = []
    for gi, g in enumerate(groups):
        for b, lab in enumerate(all_labels):
            cnt = tok_count[b]
            with np.errstate(invalid="ignore", divide="ignore"):
                ppl_i = math.exp(sum_intact[b] / cnt) if cnt else float("nan")
                ppl_a = math.exp(sum_ablated[gi, b] / cnt) if cnt else float("nan")
                ratio = math.exp((sum_ablated[gi, b] - sum_intact[b]) / cnt) if cnt else float("nan")
            rows.append({
                "binning": binning, "group": g.name, "kind": g.kind, "bin": lab, "n_tokens": int(cnt),
                "ppl_intact": ppl_i, "ppl_ablated": ppl_a, "ratio": ratio,
                "ratio_lo": float(lo[gi, b]), "ratio_hi": float(hi[gi, b]), "p_not_above_1": float(p_le[gi, b]),
            })
    df = pd.DataFrame(rows)
    df["level"] = level
    df["n_resamples"] = counts.shape[0] - 1
    df["chunk"] = chunk
    return df


def control_band(ratios: pd.DataFrame, quantiles: tuple[float, float] = (0.025, 0.975)) -> pd.DataFrame:
    """Null band per binning and bin from the control groups' ratios: ``binning, bin, n_controls,
    control_mean, control_lo, control_hi`` (``quantiles`` of the control ratios, linear interpolation)."""
    ctl = ratios[ratios.kind == "control"]
    if ctl.empty:
        return pd.DataFrame(columns=["binning", "bin", "n_controls", "control_mean", "control_lo", "control_hi"])
    g = ctl.groupby(["binning", "bin"], sort=False)["ratio"]
    return pd.DataFrame({
        "n_controls": g.size(), "control_mean": g.mean(),
        "control_lo": g.quantile(quantiles[0]), "control_hi": g.quantile(quantiles[1]),
    }).reset_index()


def routing_summary(ratios: pd.DataFrame, groups: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """For each binning and bin, the ``top`` groups whose ablation hurts most (largest ratio).

    Columns: ``binning, bin, rank, group, T_mean, T_min, T_max, ratio, ratio_lo, ratio_hi,
    significant`` (interval above 1), ``above_controls`` (ratio above the control band's upper
    end; NaN without controls).
    """
    band = control_band(ratios)
    main = ratios[ratios.kind == "group"].merge(groups[["group", "T_mean", "T_min", "T_max"]], on="group", how="left")
    if not band.empty:
        main = main.merge(band[["binning", "bin", "control_hi"]], on=["binning", "bin"], how="left")
    else:
        main["control_hi"] = np.nan
    rows = []
    for (binning, b), sub in main.groupby(["binning", "bin"], sort=False):
        sub = sub.sort_values("ratio", ascending=False).head(top)
        for rank, r in enumerate(sub.itertuples(), 1):
            rows.append({
                "binning": binning, "bin": b, "rank": rank, "group": r.group, "T_mean": r.T_mean,
                "T_min": r.T_min, "T_max": r.T_max, "ratio": r.ratio, "ratio_lo": r.ratio_lo, "ratio_hi": r.ratio_hi,
                "significant": bool(r.ratio_lo > 1.0),
                "above_controls": (bool(r.ratio > r.control_hi) if not np.isnan(r.control_hi) else np.nan),
            })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# the study
# ----------------------------------------------------------------------------------------------

@dataclass
class AblationStudy:
    """Everything an ablation run produced (tables are tidy DataFrames)."""

    groups_: pd.DataFrame
    ratios_: pd.DataFrame
    controls_: pd.DataFrame
    routing_: pd.DataFrame
    options: dict[str, Any] = field(default_factory=dict)


def run_ablation_study(model, tokens: torch.Tensor, T: np.ndarray, *, layer: int, groups: str | Sequence[UnitGroup],
                       mode: str = "output", binnings: Sequence[tuple[str, np.ndarray, Sequence[str]]] = (),
                       controls: int = 0, control_size: int | None = None, seed: int = 0, bptt: int = 70,
                       group_batch: int = 8, chunk: int = 100, n_resamples: int = 10000, level: float = 0.999,
                       top: int = 3, device: Any = "cpu", progress: ProgressLike = False) -> AblationStudy:
    """Ablate groups of ``layer``'s units (ordered by ``T``, the timescale of every unit of that
    layer) and tabulate per-bin perplexity ratios for every binning ``(name, category_of_vocab,
    labels)``. Control groups: ``controls`` random groups of ``control_size`` units (default: the
    most common group size), drawn with ``seed``; the bootstrap uses ``seed`` too."""
    check_ablation_options(groups=groups, layer=layer, mode=mode, controls=controls, control_size=control_size,
                           bptt=bptt, group_batch=group_batch, chunk=chunk, n_resamples=n_resamples, level=level,
                           top=top)
    sizes = [m.hidden_size for m in model.lstm_layers()]
    if not 1 <= layer <= len(sizes):
        raise OptionError(f"layer {layer} does not exist: the model has layers 1-{len(sizes)}", param="layer")
    T = np.asarray(T, dtype=np.float64)
    if len(T) != sizes[layer - 1]:
        raise OptionError(f"{len(T)} timescales given for layer {layer} of {sizes[layer - 1]} units")
    main = make_groups(groups, T, layer) if isinstance(groups, str) else list(groups)
    if control_size is None:
        vals, cnt = np.unique([g.size for g in main], return_counts=True)
        control_size = int(vals[np.argmax(cnt)])
    ctl = control_groups(sizes[layer - 1], control_size, controls, T, layer, seed)
    all_groups = main + ctl
    intact, ablated = ablated_nll(model, tokens, all_groups, mode=mode, bptt=bptt, group_batch=group_batch,
                                  device=device, progress=progress)
    targets = torch.as_tensor(tokens).long().numpy()[1:]
    counts = bootstrap_chunk_counts(len(targets), chunk, n_resamples, seed)
    if not binnings:
        raise OptionError("no binning of the target words was given")
    ratios = pd.concat([
        ratio_table(intact, ablated, targets, cat, labels, all_groups, binning=name, chunk=chunk,
                    n_resamples=n_resamples, level=level, seed=seed, counts=counts)
        for name, cat, labels in binnings
    ], ignore_index=True)
    gtab = groups_table(all_groups)
    band = control_band(ratios)
    routing = routing_summary(ratios, gtab, top=top)
    opts = dict(layer=layer, groups=groups if isinstance(groups, str) else "explicit", mode=mode, controls=controls,
                control_size=control_size, seed=seed, bptt=bptt, group_batch=group_batch, chunk=chunk,
                n_resamples=n_resamples, level=level, n_targets=len(targets),
                ppl_intact=float(math.exp(intact.mean())))
    return AblationStudy(gtab, ratios, band, routing, opts)


# parts of speech (Brown tags) live in corpora.py; names kept here for existing imports
from .corpora import (  # noqa: E402,F401
    POS_LABELS,
    brown_tag_class,
    normalize_brown_tag,
    pos_classes_for_vocab,
    pos_lexicon,
    read_brown_tagged,
    read_tagged_sentences,
)

# ----------------------------------------------------------------------------------------------
# reference data (paper Fig. 3)
# ----------------------------------------------------------------------------------------------

REFERENCE_BINS = (">10K", "1K-10K", "100-1K", "<100")


def load_reference_ablation(directory: str | Path) -> pd.DataFrame:
    """The authors' Fig. 3 numbers (``unit_ablation/bin{1,2,3,4}.txt.npy``; PTB MTS, layer 2,
    23 chunks of 50 units) as a tidy table ``binning, group, kind, bin, ratio, source``
    (group = chunk number from 1, longest timescales first)."""
    d = Path(directory)
    if (d / "unit_ablation").is_dir():
        d = d / "unit_ablation"
    frames = []
    for i, lab in enumerate(REFERENCE_BINS, 1):
        p = d / f"bin{i}.txt.npy"
        if not p.is_file():
            raise InputError(f"reference ablation file not found: {p}")
        try:
            arr = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"{p} is not a plain .npy array: {exc}") from None
        arr = np.asarray(arr, dtype=np.float64).ravel()
        frames.append(pd.DataFrame({"binning": "frequency", "group": [str(k) for k in range(1, len(arr) + 1)],
                                    "kind": "group", "bin": lab, "ratio": arr, "source": "reference"}))
    return pd.concat(frames, ignore_index=True)


def reference_chunk_timescales(n_units: int = 1150, chunk: int = 50, shape: float = 0.56) -> pd.DataFrame:
    """Group table for the reference's chunks: the paper's layer-2 timescales
    (``invgamma.isf(linspace(0, 1, n+1))[1:]``) in consecutive chunks."""
    from scipy.stats import invgamma

    T = invgamma.isf(np.linspace(0, 1, n_units + 1), shape, scale=1.0)[1:]
    return groups_table(make_groups(f"chunks:{chunk}", T, 2))


# ----------------------------------------------------------------------------------------------
# routing facts, several seeds combined, and multiple-comparison corrections (Fig. 3)
# ----------------------------------------------------------------------------------------------


def routing_facts(ratios: pd.DataFrame, groups: pd.DataFrame | None = None) -> dict[str, Any]:
    """Per bin: the group whose ablation hurts most (1-based position in longest-first order, its
    ratio and interval, its T range) and the largest ratio of the bin. Only ``kind == group`` rows
    count (control groups are the null, not candidates); a bin without test tokens is ``empty``."""
    r = ratios[ratios["bin"] != "all"]
    if "kind" in r:
        r = r[r["kind"] == "group"]
    order = list(dict.fromkeys(r["group"]))
    out: dict[str, Any] = {}
    for b, s in r.groupby("bin", sort=False):
        if not np.isfinite(s["ratio"].to_numpy(dtype=np.float64)).any():
            out[str(b)] = {"empty": True, "n_groups": len(order)}
            continue
        i = int(np.nanargmax(s["ratio"].to_numpy()))
        row = s.iloc[i]
        d = {"peak_group": str(row["group"]), "peak_ratio": float(row["ratio"]),
             "peak_position": order.index(row["group"]) + 1, "n_groups": len(order),
             "max_ratio": float(s["ratio"].max()), "any_above_1": bool((s["ratio"] > 1).any())}
        if "ratio_lo" in s:
            d.update(peak_lo=finite_or_none(row["ratio_lo"]), peak_hi=finite_or_none(row["ratio_hi"]),
                     any_significantly_above_1=bool((s["ratio_lo"] > 1).any()))
        src = groups.set_index("group") if groups is not None and "T_max" in groups else None
        if src is not None and row["group"] in src.index:
            d["peak_T_max"] = finite_or_none(src.loc[row["group"], "T_max"])
            d["peak_T_min"] = finite_or_none(src.loc[row["group"], "T_min"])
        elif "T_max" in s:
            d["peak_T_max"], d["peak_T_min"] = finite_or_none(row["T_max"]), finite_or_none(row.get("T_min"))
        out[str(b)] = d
    return out


def bootstrap_p_values(ratios: pd.DataFrame) -> np.ndarray:
    """One-sided p-values that a ratio exceeds 1, from the bootstrap column ``p_not_above_1`` (share
    of resamples with ratio <= 1) and ``n_resamples``: ``(k + 1) / (R + 1)`` so no p is 0."""
    R = ratios["n_resamples"].to_numpy(dtype=np.float64)
    k = np.rint(ratios["p_not_above_1"].to_numpy(dtype=np.float64) * R)
    return (k + 1.0) / (R + 1.0)


def adjust_p_values(p: np.ndarray, alpha: float = 0.05) -> pd.DataFrame:
    """Holm (family-wise error) and Benjamini-Hochberg (false discovery rate) adjustments of ``p``
    (``statsmodels.stats.multitest.multipletests``): columns ``p, p_holm, p_bh, sig_raw, sig_holm,
    sig_bh`` at ``alpha``. NaN p-values (empty bins) stay NaN and are not counted as tests."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, dtype=np.float64)
    out = pd.DataFrame({"p": p, "p_holm": np.nan, "p_bh": np.nan})
    ok = np.isfinite(p)
    if ok.any():
        out.loc[ok, "p_holm"] = multipletests(p[ok], alpha=alpha, method="holm")[1]
        out.loc[ok, "p_bh"] = multipletests(p[ok], alpha=alpha, method="fdr_bh")[1]
    for col, src in (("sig_raw", "p"), ("sig_holm", "p_holm"), ("sig_bh", "p_bh")):
        out[col] = out[src] < alpha
    return out


def combine_seed_ratios(tables: dict[int, pd.DataFrame], *, level: float = 0.95, binning: str = "frequency",
                        alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. 3 over several seeds: ``tables[seed]`` is one model's ablation ratio table
    (:func:`ratio_table` rows, ``kind`` group/control; e.g. a per-seed ``ablation.csv``).

    Per quantile group and bin: ``seeds``, the geometric mean of the ratios, and with >= 2 seeds a t
    interval (``df = seeds - 1``) and a one-sided t test (ratio > 1) on the log ratios across seeds;
    with one seed that seed's bootstrap interval and bootstrap p. The p-values of all groups x bins
    are adjusted by Holm and Benjamini-Hochberg (:func:`adjust_p_values`). Returns ``(groups,
    band)``: ``groups`` has ``group, position, bin, seeds, ratio, lo, hi, p, p_holm, p_bh, sig_raw,
    sig_holm, sig_bh, interval`` (and ``T_min, T_max`` when the tables carry them); ``band`` is the
    null band of the control groups pooled over seeds (:func:`control_band`) with ``n_seeds``."""
    from scipy import stats

    if not tables:
        raise OptionError("no ablation tables to combine")
    frames = []
    for s, t in tables.items():
        t = t[(t["binning"] == binning) & (t["bin"] != "all")] if "binning" in t else t[t["bin"] != "all"]
        frames.append(t.assign(seed=s, kind=t["kind"] if "kind" in t else "group"))
    allr = pd.concat(frames, ignore_index=True)
    main = allr[allr["kind"] == "group"].copy()
    order = list(dict.fromkeys(main["group"].astype(str)))
    main["group"] = main["group"].astype(str)
    rows = []
    for (g, b), sub in main.groupby(["group", "bin"], sort=False):
        lr = np.log(sub["ratio"].to_numpy(dtype=np.float64))
        lr = lr[np.isfinite(lr)]
        n = lr.size
        row = {"group": g, "position": order.index(g) + 1, "bin": b, "seeds": int(n)}
        if n == 0:
            row.update(ratio=np.nan, lo=np.nan, hi=np.nan, p=np.nan, interval="none")
        elif n == 1:
            one = sub.iloc[0]
            p1 = bootstrap_p_values(sub.iloc[:1])[0] if {"p_not_above_1", "n_resamples"} <= set(sub) else np.nan
            row.update(ratio=float(np.exp(lr[0])), lo=finite_or_none(one.get("ratio_lo")) or np.nan,
                       hi=finite_or_none(one.get("ratio_hi")) or np.nan, p=float(p1),
                       interval=f"bootstrap over chunks ({one.get('level', 'n/a')}), one seed")
        else:
            m, se = lr.mean(), lr.std(ddof=1) / np.sqrt(n)
            tq = stats.t.ppf((1 + level) / 2, n - 1)
            if se > 0:
                p = float(stats.t.sf(m / se, n - 1))
            else:
                p = 0.0 if m > 0 else 1.0
            row.update(ratio=float(np.exp(m)), lo=float(np.exp(m - tq * se)), hi=float(np.exp(m + tq * se)), p=p,
                       interval=f"t across {n} seeds ({level:g})")
        for col in ("T_min", "T_max"):
            known = sub[col].dropna() if col in sub else ()
            if len(known):
                row[col] = float(known.iloc[0])  # the same groups in every seed (units sorted by assigned T)
        rows.append(row)
    res = pd.DataFrame(rows)
    adj = adjust_p_values(res["p"].to_numpy(), alpha=alpha)
    res = pd.concat([res, adj.drop(columns=["p"])], axis=1)
    band = control_band(allr.assign(binning=binning))
    if not band.empty:
        band["n_seeds"] = allr[allr["kind"] == "control"].groupby("bin")["seed"].nunique().reindex(band["bin"]).to_numpy()
    return res, band
