"""``RecurrentStack``: the one description of a stacked recurrent net that every checkpoint loader returns.

Each layer carries its weights and its cell (:class:`~timescale_probe.cells.CellSpec`: LSTM, GRU
or plain RNN, with the gate and candidate activations it was saved with). Weights are CPU float
tensors in PyTorch's gate order and layout, ``G`` gates of ``H`` rows each: LSTM ``i, f, g, o``
(G=4), GRU ``r, z, n`` (G=3), RNN one block (G=1); ``weight_ih (G*H, I)``, ``weight_hh (G*H, H)``,
``bias_ih (G*H)``, ``bias_hh (G*H)``. Loaders of other frameworks (Keras, TensorFlow) convert to
this order. Layers are numbered from 1 in every table and on the command line.

Timescales come from the retention gate (LSTM forget gate ``f``, GRU update gate ``z``), through
the layer's gate activation; a plain RNN has none (:data:`~timescale_probe.cells.NO_RETENTION_GATE`).
``LSTMStack`` and ``LSTMLayer`` are the former names of :class:`RecurrentStack` and
:class:`RecurrentLayer` (the same classes; a layer built without a cell is a standard LSTM).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from .cells import LSTM, NO_RETENTION_GATE, CellSpec
from .errors import CheckpointError
from .timescale_math import forget_bias_to_timescale


@dataclass
class RecurrentLayer:
    """One recurrent layer: weights in PyTorch's layout and the cell they belong to."""

    weight_ih: torch.Tensor
    weight_hh: torch.Tensor
    bias_ih: torch.Tensor
    bias_hh: torch.Tensor
    cell: CellSpec = LSTM

    def __post_init__(self) -> None:
        G = self.cell.n_gates
        gh = self.weight_hh.shape[0]
        H = gh // G
        kind = self.cell.kind.upper() if self.cell.kind != "rnn" else "RNN"
        problems = []
        if self.weight_hh.ndim != 2 or gh % G or self.weight_hh.shape != (gh, H):
            problems.append(f"weight_hh has shape {tuple(self.weight_hh.shape)}, expected ({G}H, H)")
        if self.weight_ih.ndim != 2 or self.weight_ih.shape[0] != gh:
            problems.append(f"weight_ih has shape {tuple(self.weight_ih.shape)}, expected ({G}H={gh}, I)")
        for name in ("bias_ih", "bias_hh"):
            if tuple(getattr(self, name).shape) != (gh,):
                problems.append(f"{name} has shape {tuple(getattr(self, name).shape)}, expected ({gh},)")
        if problems:
            raise CheckpointError(f"inconsistent {kind} layer: " + "; ".join(problems))

    def __repr__(self) -> str:
        return f"RecurrentLayer(cell={self.cell.name}, input_size={self.input_size}, hidden_size={self.hidden_size})"

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]

    @property
    def retention_bias(self) -> torch.Tensor:
        """Effective retention-gate bias ``bias_ih + bias_hh`` over the LSTM's ``f`` or the GRU's
        ``z`` rows (float64). A plain RNN has none: :class:`CheckpointError`."""
        rows = self.cell.retention_rows(self.hidden_size)
        return self.bias_ih[rows].double() + self.bias_hh[rows].double()

    @property
    def forget_bias(self) -> torch.Tensor:
        """The retention-gate bias (:attr:`retention_bias`; for a GRU, its update gate's)."""
        return self.retention_bias

    def timescales(self, convention: str = "paper") -> np.ndarray:
        """``T_bias`` per unit from the retention bias through the layer's gate activation."""
        return np.asarray(forget_bias_to_timescale(self.retention_bias.numpy(), convention, self.cell.gate_activation),
                          dtype=np.float64)

    def num_parameters(self) -> int:
        return sum(t.numel() for t in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh))


LSTMLayer = RecurrentLayer  # the former name: a layer built without a cell is a standard LSTM


@dataclass
class Provenance:
    source_format: str
    path: str | None = None
    sha256: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source_format": self.source_format, "path": self.path, "sha256": self.sha256, "notes": list(self.notes)}


def nonfinite_bias_notes(layers: list[RecurrentLayer]) -> list[str]:
    """One note per layer whose retention-gate biases are not all finite, with the count of units."""
    notes = []
    for n, layer in enumerate(layers, 1):
        if layer.cell.retention_gate is None:
            continue
        fb = layer.retention_bias
        if bool(torch.isfinite(fb).all()):
            continue
        n_neg, n_pos = int((fb == float("-inf")).sum()), int((fb == float("inf")).sum())
        n_nan = int(torch.isnan(fb).sum())
        gate = "forget" if layer.cell.kind == "lstm" else "update-gate"
        parts = ([f"{n_neg} at -inf (T=0)"] * bool(n_neg) + [f"{n_pos} at +inf (T=inf)"] * bool(n_pos)
                 + [f"{n_nan} NaN (T NaN, left out of summaries and fits)"] * bool(n_nan))
        notes.append(f"layer {n}: non-finite {gate} biases kept as stored: {', '.join(parts)}"
                     + (" (the reference's T=0 quantile)" if n_neg and not n_pos and not n_nan else ""))
    return notes


@dataclass
class RecurrentStack:
    """A stacked recurrent net (one cell kind), optionally with an embedding, a decoder and a vocabulary.

    ``config`` holds model options known from the source (dropouts, tie_weights, ...);
    ``mts_spec`` the MTS spec as a dict (see :class:`timescale_probe.mts_specs.MTSSpec`) when known.
    Notes about non-finite retention biases are added to ``provenance.notes`` once, here.
    """

    layers: list[RecurrentLayer]
    embedding: torch.Tensor | None = None
    decoder_weight: torch.Tensor | None = None
    decoder_bias: torch.Tensor | None = None
    vocab: list[str] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    mts_spec: dict[str, Any] | None = None
    provenance: Provenance = field(default_factory=lambda: Provenance("memory"))

    def __post_init__(self) -> None:
        if not self.layers:
            raise CheckpointError("no recurrent layers found")
        kinds = list(dict.fromkeys(l.cell.kind for l in self.layers))
        if len(kinds) > 1:
            raise CheckpointError(f"the layers mix cell types ({', '.join(kinds)}); tsprobe reads a stack of one "
                                  "cell type: save the part you want on its own")
        for k in range(1, len(self.layers)):
            prev, cur = self.layers[k - 1], self.layers[k]
            if cur.input_size != prev.hidden_size:
                raise CheckpointError(
                    f"layer {k + 1} expects input size {cur.input_size} but layer {k} has {prev.hidden_size} units"
                )
        for note in nonfinite_bias_notes(self.layers):
            if note not in self.provenance.notes:
                self.provenance.notes.append(note)

    def __repr__(self) -> str:
        """Short: format, cell, layers and sizes, vocabulary, embedding/decoder shapes, MTS spec; no tensors."""
        def shape(t):
            return "none" if t is None else "x".join(map(str, t.shape))

        vocab = "none" if self.vocab_size is None else f"{self.vocab_size} ({'stored' if self.vocab is not None else 'not stored'})"
        spec = (self.mts_spec or {}).get("name")
        return (f"RecurrentStack(format={self.provenance.source_format!r}, cell={self.cell_name!r}, "
                f"layers={len(self.layers)}, sizes={self.layer_sizes}, input_size={self.input_size}, vocab={vocab}, "
                f"embedding={shape(self.embedding)}, decoder={shape(self.decoder_weight)}{' tied' if self.tied else ''}, "
                f"mts_spec={spec!r}, parameters={self.num_parameters():,})")

    __str__ = __repr__

    @property
    def cell(self) -> CellSpec:
        """The first layer's cell (every layer has the same kind; activations may differ: :attr:`cells`)."""
        return self.layers[0].cell

    @property
    def cells(self) -> list[CellSpec]:
        return [l.cell for l in self.layers]

    @property
    def cell_name(self) -> str:
        """``lstm``, ``gru``, ``rnn_tanh``... (with non-standard activations in brackets); layers
        that differ are listed with ``/``."""
        return "/".join(dict.fromkeys(c.name for c in self.cells))

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

    def require_retention_gate(self, what: str = "this command") -> None:
        """One :class:`CheckpointError` when the stack is a plain RNN (no forget/update gate)."""
        if self.cell.retention_gate is None:
            raise CheckpointError(f"{what} reads forget/update gates, but this is a {self.cell_name} stack: "
                                  + NO_RETENTION_GATE)

    def timescales_table(self, convention: str = "paper") -> pd.DataFrame:
        """Tidy table ``layer, unit, forget_bias, T_bias`` (layers from 1).

        ``forget_bias`` is the effective retention-gate bias (a GRU's update gate); ``T_bias`` comes
        from it through each layer's gate activation and is ``inf`` where a hard-sigmoid gate
        saturates at 1. ``attrs``: ``convention``, ``cell``, ``retention_gate``, ``gate_activation``.
        """
        self.require_retention_gate("timescales from biases")
        frames = []
        for k, layer in enumerate(self.layers, 1):
            b = layer.retention_bias.numpy()
            frames.append(pd.DataFrame({
                "layer": k,
                "unit": np.arange(len(b)),
                "forget_bias": b,
                "T_bias": layer.timescales(convention),
            }))
        df = pd.concat(frames, ignore_index=True)
        df.attrs.update(convention=convention, cell=self.cell_name, retention_gate=self.cell.retention_gate,
                        gate_activation="/".join(dict.fromkeys(c.gate_activation for c in self.cells)))
        return df

    def summary(self) -> dict[str, Any]:
        return {
            "format": self.provenance.source_format,
            "path": self.provenance.path,
            "sha256": self.provenance.sha256,
            "cell": self.cell_name,
            "gate_activation": "/".join(dict.fromkeys(c.gate_activation for c in self.cells)),
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


LSTMStack = RecurrentStack  # the former name
