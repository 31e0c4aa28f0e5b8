"""NLL passes of a language model with groups of units ablated (``output`` and ``silence``
semantics, see :mod:`timescale_probe.ablation`), as hooks on the one stream runner."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import OptionError
from ..fileio import save_npy
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


def pass_fingerprint(model, tokens: torch.Tensor, batches: Sequence[Sequence[Sequence[UnitGroup]]], *, mode: str,
                     bptt: int, device: Any) -> str:
    """A hex digest of everything a batched pass's numbers depend on: the model's parameters and
    buffers, the tokens, the copies' groups (layer and units, in order), mode, bptt, device type
    and torch version. Two runs with one fingerprint compute the same passes, bit for bit."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(torch.as_tensor(tokens).long().cpu().numpy().tobytes())
    for batch in batches:
        h.update(b"|pass")
        for copy in batch:
            h.update(b"|copy")
            for g in copy:
                h.update(f"{g.layer}:".encode() + np.asarray(g.units, dtype=np.int64).tobytes())
    h.update(f"|{mode}|{bptt}|{torch.device(device).type}|{torch.__version__}".encode())
    return h.hexdigest()[:20]


def _load_pass(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """A finished pass saved by an earlier, interrupted run (None when absent or not what is expected)."""
    if not path.is_file():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return arr if arr.shape == shape and arr.dtype == np.float64 else None


def ablated_nll(model, tokens: torch.Tensor, groups: Sequence[UnitGroup], *, mode: str = "output",
                bptt: int = 70, group_batch: int = 8, device: Any = "cpu", progress: ProgressLike = False,
                resume_dir: str | Path | None = None, stats: dict[str, int] | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Token NLL of the intact model and of each ablated group.

    Returns ``(intact (N-1,), ablated (G, N-1))`` in nats. The stream runs as batch 1 with the
    hidden state carried over ``bptt``-step windows, as ``group_batch`` parallel copies per pass
    (:func:`~timescale_probe.runner.run_stream` with ``copies``), copy ``c`` with its own group
    ablated; the intact stream is one more copy in the first pass, so intact and ablated numbers
    come from the same arithmetic. Layers below the first ablated one run once per pass.

    ``resume_dir``: each finished pass is saved under ``resume_dir/<fingerprint>/`` (see
    :func:`pass_fingerprint`) and a later call with the same inputs starts after the passes found
    there, so a long CPU ablation stopped part-way picks up where it left off; the folder is removed
    once every pass is done. The numbers are those of an uninterrupted run. ``stats``: a dict that
    receives ``passes`` (batched passes in all) and ``passes_resumed`` (read back, not run), so a
    caller that times the call can say which part of the work that time covers.
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
    copies_of = [[[] if j is None else [groups[j]] for j in batch] for batch in batches]
    store = None
    if resume_dir is not None:
        store = Path(resume_dir) / pass_fingerprint(model, tokens, copies_of, mode=mode, bptt=bptt, device=device)
        store.mkdir(parents=True, exist_ok=True)
    resumed = 0
    with progress_bar(n_windows * len(batches), f"ablate ({mode}, {len(batches)} batched passes)", progress) as bar:
        for p, (batch, copies) in enumerate(zip(batches, copies_of)):
            path = store / f"pass-{p:05d}.npy" if store is not None else None
            nll = _load_pass(path, (len(batch), n)) if path is not None else None
            if nll is not None:
                resumed += 1
                bar.advance(n_windows)
            else:
                hooks = ablation_hooks(model, copies, mode)
                run = run_stream(model, tokens, hooks, window=bptt, copies=len(batch), nll=True, device=device,
                                 progress=advance_only(bar))
                nll = np.ascontiguousarray(run.nll_by_copy(), dtype=np.float64)
                if path is not None:
                    save_npy(path, nll)
            for c, j in enumerate(batch):
                if j is None:
                    intact[:] = nll[c]
                else:
                    ablated[j] = nll[c]
    if store is not None:
        shutil.rmtree(store, ignore_errors=True)
    if stats is not None:
        stats.update(passes=len(batches), passes_resumed=resumed)
    return intact, ablated
