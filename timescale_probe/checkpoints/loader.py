"""Format detection and dispatch (placeholder until the loaders land: reads our own format only)."""
from __future__ import annotations

import os

import torch

from ..errors import CheckpointError
from ..fileio import file_sha256, require_file
from ..stack import LSTMStack
from .ours import is_our_payload, payload_to_stack


def load_checkpoint(path: str | os.PathLike) -> LSTMStack:
    p = require_file(path, "checkpoint")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"cannot read {p} as a checkpoint: {str(exc).splitlines()[0]}") from None
    if not is_our_payload(obj):
        raise CheckpointError(f"{p} is not a tsprobe checkpoint")
    return payload_to_stack(obj, path=str(p), sha256=file_sha256(p))
