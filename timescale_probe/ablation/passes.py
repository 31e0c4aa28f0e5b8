"""NLL passes of a language model with groups of units ablated (``output`` and ``silence``
semantics, see :mod:`timescale_probe.ablation`), as hooks on the one stream runner."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..errors import OptionError
from ..progress import ProgressLike, advance_only, progress_bar
from ..runner import LSTM_MATHS, Hook, cell_maths, mask_output, model_layers, run_stream, silence
from ..validation import check_choice, check_int
from .groups import UnitGroup

MODES = ("output", "silence")
SILENCE_BIAS = LSTM_MATHS.silence[1]  # -1e4 on the output gate


def ablation_hooks(model, copies: Sequence[Sequence[UnitGroup]], mode: str = "output") -> list[Hook]:
    """Hooks that ablate, in copy ``c`` of the stream, the units of every group in ``copies[c]``
    (an empty list: the intact model): one per layer involved, ``output`` masks (the group's
    outputs zeroed where they enter the next layer or the decoder) or ``silence`` (output exactly 0,
    in the layer's own recurrence too)."""
    check_choice(mode, "mode", MODES)
    layers = model_layers(model)
    hooks = []
    for k in sorted({g.layer for groups in copies for g in groups}):
        if not 1 <= k <= len(layers):
            raise OptionError(f"layer {k} does not exist: the model has layers 1-{len(layers)}", param="layer")
        H = layers[k - 1].hidden_size
        sets = [np.concatenate([np.asarray(g.units, dtype=np.int64) for g in groups if g.layer == k] or
                               [np.zeros(0, dtype=np.int64)]) for groups in copies]
        if mode == "output":
            mask = torch.ones(len(copies), H)
            for c, units in enumerate(sets):
                mask[c, torch.as_tensor(units)] = 0.0
            hooks.append(mask_output(k, mask))
        else:
            hooks.append(silence(k, sets, H, cell_maths(layers[k - 1]).kind))
    return hooks


def ablated_nll(model, tokens: torch.Tensor, groups: Sequence[UnitGroup], *, mode: str = "output",
                bptt: int = 70, group_batch: int = 8, device: Any = "cpu",
                progress: ProgressLike = False) -> tuple[np.ndarray, np.ndarray]:
    """Token NLL of the intact model and of each ablated group.

    Returns ``(intact (N-1,), ablated (G, N-1))`` in nats. The stream runs as batch 1 with the
    hidden state carried over ``bptt``-step windows, as ``group_batch`` parallel copies per pass
    (:func:`~timescale_probe.runner.run_stream` with ``copies``), copy ``c`` with its own group
    ablated; the intact stream is one more copy in the first pass, so intact and ablated numbers
    come from the same arithmetic. Layers below the first ablated one run once per pass.
    """
    check_choice(mode, "mode", MODES)
    check_int(group_batch, "group_batch", minimum=1)
    check_int(bptt, "bptt", minimum=1)
    n = torch.as_tensor(tokens).numel() - 1
    if n < 1:
        raise OptionError("the token stream has fewer than 2 tokens", param="tokens")
    G = len(groups)
    ablated = np.empty((G, n), dtype=np.float64)
    intact = np.empty(n, dtype=np.float64)
    jobs: list[int | None] = [None] + list(range(G))  # None = the intact copy
    batches = [jobs[s:s + group_batch] for s in range(0, len(jobs), group_batch)]
    n_windows = -(-n // bptt)
    with progress_bar(n_windows * len(batches), f"ablate ({mode}, {len(batches)} batched passes)", progress) as bar:
        for batch in batches:
            copies = [[] if j is None else [groups[j]] for j in batch]
            hooks = ablation_hooks(model, copies, mode)
            run = run_stream(model, tokens, hooks, window=bptt, copies=len(batch), nll=True, device=device,
                             progress=advance_only(bar))
            nll = run.nll_by_copy()
            for c, j in enumerate(batch):
                if j is None:
                    intact[:] = nll[c]
                else:
                    ablated[j] = nll[c]
    return intact, ablated
