"""``LSTMStack``: the one description of a stacked LSTM that every checkpoint loader returns.

Weights are CPU float tensors in PyTorch's gate order (i, f, g, o) and layout:
``weight_ih (4H, I)``, ``weight_hh (4H, H)``, ``bias_ih (4H)``, ``bias_hh (4H)``. Loaders of other
frameworks (Keras, TensorFlow) convert to this order. Layers are numbered from 1 in every table
and on the command line (``layer 1`` is the one reading the embedding).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from .errors import CheckpointError
from .timescales import forget_bias_to_timescale


@dataclass
class LSTMLayer:
    weight_ih: torch.Tensor
    weight_hh: torch.Tensor
    bias_ih: torch.Tensor
    bias_hh: torch.Tensor

    def __post_init__(self) -> None:
        four_h = self.weight_hh.shape[0]
        H = four_h // 4
        problems = []
        if four_h % 4 or self.weight_hh.shape != (four_h, H):
            problems.append(f"weight_hh has shape {tuple(self.weight_hh.shape)}, expected (4H, H)")
        if self.weight_ih.ndim != 2 or self.weight_ih.shape[0] != four_h:
            problems.append(f"weight_ih has shape {tuple(self.weight_ih.shape)}, expected (4H={four_h}, I)")
        for name in ("bias_ih", "bias_hh"):
            if tuple(getattr(self, name).shape) != (four_h,):
                problems.append(f"{name} has shape {tuple(getattr(self, name).shape)}, expected ({four_h},)")
        if problems:
            raise CheckpointError("inconsistent LSTM layer: " + "; ".join(problems))

    def __repr__(self) -> str:
        return f"LSTMLayer(input_size={self.input_size}, hidden_size={self.hidden_size})"

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]

    @property
    def forget_bias(self) -> torch.Tensor:
        """Effective forget-gate bias ``bias_ih[f] + bias_hh[f]`` (float64)."""
        H = self.hidden_size
        return (self.bias_ih[H:2 * H].double() + self.bias_hh[H:2 * H].double())

    def num_parameters(self) -> int:
        return sum(t.numel() for t in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh))


@dataclass
class Provenance:
    source_format: str
    path: str | None = None
    sha256: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source_format": self.source_format, "path": self.path, "sha256": self.sha256, "notes": list(self.notes)}


@dataclass
class LSTMStack:
    """A stacked LSTM, optionally with an embedding, a decoder and a vocabulary.

    ``config`` holds model options known from the source (dropouts, tie_weights, ...);
    ``mts_spec`` the MTS spec as a dict (see :class:`timescale_probe.timescales.MTSSpec`) when known.
    """

    layers: list[LSTMLayer]
    embedding: torch.Tensor | None = None
    decoder_weight: torch.Tensor | None = None
    decoder_bias: torch.Tensor | None = None
    vocab: list[str] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    mts_spec: dict[str, Any] | None = None
    provenance: Provenance = field(default_factory=lambda: Provenance("memory"))

    def __post_init__(self) -> None:
        if not self.layers:
            raise CheckpointError("no LSTM layers found")
        for k in range(1, len(self.layers)):
            prev, cur = self.layers[k - 1], self.layers[k]
            if cur.input_size != prev.hidden_size:
                raise CheckpointError(
                    f"LSTM layer {k + 1} expects input size {cur.input_size} but layer {k} has {prev.hidden_size} units"
                )

    def __repr__(self) -> str:
        """Short: format, layers and sizes, vocabulary, embedding/decoder shapes, MTS spec; no tensors."""
        def shape(t):
            return "none" if t is None else "x".join(map(str, t.shape))

        vocab = "none" if self.vocab_size is None else f"{self.vocab_size} ({'stored' if self.vocab is not None else 'not stored'})"
        spec = (self.mts_spec or {}).get("name")
        return (f"LSTMStack(format={self.provenance.source_format!r}, layers={len(self.layers)}, "
                f"sizes={self.layer_sizes}, input_size={self.input_size}, vocab={vocab}, "
                f"embedding={shape(self.embedding)}, decoder={shape(self.decoder_weight)}{' tied' if self.tied else ''}, "
                f"mts_spec={spec!r}, parameters={self.num_parameters():,})")

    __str__ = __repr__

    @property
    def layer_sizes(self) -> list[int]:
        return [l.hidden_size for l in self.layers]

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def vocab_size(self) -> int | None:
        if self.vocab is not None:
            return len(self.vocab)
        for t in (self.embedding, self.decoder_weight):
            if t is not None:
                return t.shape[0]
        return None

    @property
    def tied(self) -> bool:
        return (
            self.embedding is not None
            and self.decoder_weight is not None
            and (self.decoder_weight is self.embedding or torch.equal(self.decoder_weight, self.embedding))
        )

    def num_parameters(self) -> int:
        """Parameter count; a decoder tied to the embedding is counted once."""
        n = sum(l.num_parameters() for l in self.layers)
        if self.embedding is not None:
            n += self.embedding.numel()
        if self.decoder_weight is not None and not self.tied:
            n += self.decoder_weight.numel()
        if self.decoder_bias is not None:
            n += self.decoder_bias.numel()
        return n

    def timescales_table(self, convention: str = "paper") -> pd.DataFrame:
        """Tidy table ``layer, unit, forget_bias, T_bias`` (layers from 1, ``convention`` recorded)."""
        frames = []
        for k, layer in enumerate(self.layers, 1):
            b = layer.forget_bias.numpy()
            frames.append(pd.DataFrame({
                "layer": k,
                "unit": np.arange(len(b)),
                "forget_bias": b,
                "T_bias": forget_bias_to_timescale(b, convention),
            }))
        df = pd.concat(frames, ignore_index=True)
        df.attrs["convention"] = convention
        return df

    def summary(self) -> dict[str, Any]:
        return {
            "format": self.provenance.source_format,
            "path": self.provenance.path,
            "sha256": self.provenance.sha256,
            "layers": len(self.layers),
            "input_size": self.input_size,
            "layer_sizes": self.layer_sizes,
            "vocab_size": self.vocab_size,
            "has_vocab": self.vocab is not None,
            "embedding": None if self.embedding is None else list(self.embedding.shape),
            "decoder": None if self.decoder_weight is None else list(self.decoder_weight.shape),
            "tied": self.tied,
            "parameters": self.num_parameters(),
            "mts_spec": (self.mts_spec or {}).get("name"),
            "notes": list(self.provenance.notes),
        }
