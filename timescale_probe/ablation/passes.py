"""NLL passes of a language model with groups of units ablated (``output`` and ``silence``
semantics, see :mod:`timescale_probe.ablation`)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import OptionError
from ..progress import ProgressLike, progress_bar
from ..validation import check_choice, check_int
from .groups import UnitGroup

MODES = ("output", "silence")
SILENCE_BIAS = -1.0e4


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
