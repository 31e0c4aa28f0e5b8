"""tsprobe's own checkpoint format: a plain dict of tensors, strings and numbers that
``torch.load(path, weights_only=True)`` reads without running any code.

Layout (``format_version`` 1 for standard LSTMs, 2 when any layer has another cell)::

    {"format": "tsprobe-checkpoint", "format_version": 1 | 2,
     "config": {...},            # model options (LanguageModel config), JSON-like
     "mts_spec": {...} | None,   # MTSSpec.to_dict()
     "vocab": [str, ...] | None,
     "stack": {"layers": [{"weight_ih", "weight_hh", "bias_ih", "bias_hh",
                           "cell": {kind, gate_activation, activation, reset_after}}, ...],   # cell: version 2
               "embedding": T | None, "decoder_weight": T | None, "decoder_bias": T | None,
               "tied": bool},   # tied: decoder_weight is the embedding and is not stored twice
     "provenance": {...}, "card": {...}}   # card: how it was made (command, seed, epochs, metrics)

Version 2 exists so that a tsprobe that does not know cells refuses a GRU or a hard-sigmoid LSTM
instead of reading it as a standard LSTM; standard LSTMs are still written as version 1.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..cells import CellSpec
from ..errors import CheckpointError
from ..fileio import atomic_write_with
from ..stack import LSTMStack, Provenance, RecurrentLayer
from .integrity import is_torchscript_names

FORMAT_NAME = "tsprobe-checkpoint"
FORMAT_VERSION = 2
#: versions this tsprobe reads (1: standard LSTMs only, no cell field)
READABLE_VERSIONS = (1, 2)
_LAYER_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _layer_payload(layer: RecurrentLayer, with_cell: bool) -> dict[str, Any]:
    d: dict[str, Any] = {k: getattr(layer, k).detach().cpu().contiguous() for k in _LAYER_KEYS}
    if with_cell:
        d["cell"] = layer.cell.to_dict()
    return d


def stack_to_payload(stack: LSTMStack, card: dict[str, Any] | None = None) -> dict[str, Any]:
    tied = stack.tied
    with_cell = not all(l.cell == CellSpec() for l in stack.layers)
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION if with_cell else 1,
        "config": dict(stack.config),
        "mts_spec": stack.mts_spec,
        "vocab": list(stack.vocab) if stack.vocab is not None else None,
        "stack": {
            "layers": [_layer_payload(l, with_cell) for l in stack.layers],
            "embedding": None if stack.embedding is None else stack.embedding.detach().cpu().contiguous(),
            "decoder_weight": None if (tied or stack.decoder_weight is None) else stack.decoder_weight.detach().cpu().contiguous(),
            "decoder_bias": None if stack.decoder_bias is None else stack.decoder_bias.detach().cpu().contiguous(),
            "tied": tied,
        },
        "provenance": stack.provenance.to_dict(),
        "card": dict(card or {}),
    }


def save_checkpoint(path: str | os.PathLike, stack: LSTMStack, card: dict[str, Any] | None = None) -> Path:
    """Write ``stack`` (and a model card) in our format, atomically."""
    payload = stack_to_payload(stack, card)
    return atomic_write_with(path, lambda p: torch.save(payload, p))


def is_our_payload(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT_NAME


def _tensor(x: Any, where: str) -> torch.Tensor | None:
    if x is None:
        return None
    if not isinstance(x, torch.Tensor):
        raise CheckpointError(f"tsprobe checkpoint field {where} is {type(x).__name__}, expected a tensor")
    return x.detach().float() if x.is_floating_point() else x


def payload_to_stack(obj: dict[str, Any], path: str | None = None, sha256: str | None = None) -> LSTMStack:
    version = obj.get("format_version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"tsprobe checkpoint format version {version} is not supported (this tsprobe reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}); upgrade tsprobe"
        )
    try:
        s = obj["stack"]
        layers = [RecurrentLayer(*(_tensor(l[k], f"stack.layers[{i}].{k}") for k in _LAYER_KEYS),
                                 CellSpec.from_dict(l.get("cell") if version >= 2 else None))
                  for i, l in enumerate(s["layers"])]
        embedding = _tensor(s.get("embedding"), "stack.embedding")
        decoder_weight = embedding if s.get("tied") else _tensor(s.get("decoder_weight"), "stack.decoder_weight")
        prov = obj.get("provenance") or {}
        notes = list(prov.get("notes") or [])
        if prov.get("source_format") not in (None, FORMAT_NAME, "memory"):
            notes.append(f"converted from {prov['source_format']}")
        return LSTMStack(
            layers=layers,
            embedding=embedding,
            decoder_weight=decoder_weight,
            decoder_bias=_tensor(s.get("decoder_bias"), "stack.decoder_bias"),
            vocab=list(obj["vocab"]) if obj.get("vocab") is not None else None,
            config=dict(obj.get("config") or {}),
            mts_spec=obj.get("mts_spec"),
            provenance=Provenance(FORMAT_NAME, path=path, sha256=sha256, notes=notes),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"malformed tsprobe checkpoint {path or ''}: missing or bad field {exc}") from None


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    """The model card stored in one of our checkpoints (empty when there is none).

    Read with ``torch.load(weights_only=True)``: a file that needs more (a whole pickled model, a
    malicious pickle) has no card of ours and gives ``{}``; a missing or unreadable file raises.
    """
    from ..fileio import require_file

    p = require_file(path, "checkpoint")
    try:
        with zipfile.ZipFile(p) as zf:
            if is_torchscript_names(zf.namelist()):
                return {}  # torch.load would hand it to torch.jit.load: never ours
    except (zipfile.BadZipFile, OSError):
        pass  # a legacy pickle, or damage that torch.load reports below
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 (not our format: no card)
        return {}
    return dict(obj.get("card") or {}) if is_our_payload(obj) else {}
