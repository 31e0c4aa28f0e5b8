"""``LanguageModel``: an AWD-LSTM word-level language model (Merity et al. 2018), optionally with
multi-timescale (MTS) forget biases (Mahto et al. 2021); the same model with GRU or plain-RNN cells.

Architecture: embedding (``encoder``) -> one single-layer recurrent module per layer (``rnns``, sizes
free) -> linear ``decoder`` (weight tied to the embedding when ``tie_weights``, which needs the
last layer to be ``emb_size`` wide). Regularisation as in AWD-LSTM:

- ``dropoute``: embedding dropout (whole rows of the embedding matrix, i.e. word types);
- ``dropouti`` / ``dropouth`` / ``dropout``: locked (variational) dropout, one mask per sequence
  over time, on the embedding output / between layers / on the last layer's output;
- ``wdrop``: DropConnect on each layer's recurrent matrix W_hh. The trained parameter *is* the
  raw matrix (``rnns[k].weight_hh_l0``); in training mode each forward draws a dropped copy and
  runs the fused LSTM kernel (``torch._VF.lstm``) on it, so the gradient reaches the raw matrix.
  (The reference code re-wraps the dropped matrix as a new Parameter, so its W_hh never trains;
  we do not copy that defect.) In eval mode the raw matrix is used as is, as in AWD-LSTM.

Cells (``cell``: ``lstm``, ``gru``, ``rnn_tanh``, ``rnn_relu``; :mod:`timescale_probe.cells`): each
layer is PyTorch's fused ``nn.LSTM``/``nn.GRU``/``nn.RNN`` where that computes the cell exactly
(sigmoid gates, tanh candidates, PyTorch's GRU), and a
:class:`~timescale_probe.cells.StepRecurrent` computing the saved activations otherwise (Keras's
hard sigmoids, ``reset_after=False`` GRUs, other activations). The standard LSTM path is the one
it always was. Hidden state per layer: ``(h, c)`` for LSTMs, ``h`` otherwise, each ``(1, B, H)``.

An MTS spec (:mod:`timescale_probe.mts_specs`) is applied to the layers after initialisation;
quantile specs with ``n=None`` follow each layer's size. Layers are numbered from 1 in every
public argument (``output_masks``), 0-based in ``self.rnns``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .cells import CellSpec, recurrent_module
from .errors import CheckpointError, OptionError
from .mts_specs import FreeLayer, MTSSpec, apply_mts_spec
from .stack import LSTMStack, Provenance, RecurrentLayer


@dataclass
class LMConfig:
    """Options of a :class:`LanguageModel` (the paper's PTB values by default)."""

    vocab_size: int
    emb_size: int = 400
    layer_sizes: tuple[int, ...] = (1150, 1150, 400)
    dropout: float = 0.4
    dropouth: float = 0.25
    dropouti: float = 0.4
    dropoute: float = 0.1
    wdrop: float = 0.5
    tie_weights: bool = True
    mts_spec: dict[str, Any] | None = None
    cell: str = "lstm"
    gate_activation: str = "sigmoid"
    activation: str | None = None
    reset_after: bool = True
    layer_cells: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        self.layer_sizes = tuple(int(h) for h in self.layer_sizes)
        if self.layer_cells is not None:
            if len(self.layer_cells) != len(self.layer_sizes):
                raise OptionError(f"layer_cells has {len(self.layer_cells)} entries for {len(self.layer_sizes)} layers",
                                  param="layer_cells")
            self.layer_cells = [CellSpec.from_dict(c).to_dict() if not isinstance(c, CellSpec) else c.to_dict()
                                for c in self.layer_cells]
        self.cells  # noqa: B018 (validates cell, gate_activation, activation, reset_after)
        if self.vocab_size < 1 or self.emb_size < 1 or not self.layer_sizes or min(self.layer_sizes) < 1:
            raise OptionError(f"model sizes must be positive: vocab {self.vocab_size}, emb {self.emb_size}, layers {list(self.layer_sizes)}")
        for name in ("dropout", "dropouth", "dropouti", "dropoute", "wdrop"):
            p = getattr(self, name)
            if not 0.0 <= p < 1.0:
                raise OptionError(f"{name} must lie in [0, 1), got {p}")
        if self.tie_weights and self.layer_sizes[-1] != self.emb_size:
            raise OptionError(
                f"tied weights need the last layer ({self.layer_sizes[-1]} units) to be as wide as the embedding ({self.emb_size})"
            )
        if isinstance(self.mts_spec, MTSSpec):
            self.mts_spec = self.mts_spec.to_dict()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layer_sizes"] = list(self.layer_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LMConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def spec(self) -> MTSSpec | None:
        return None if self.mts_spec is None else MTSSpec.from_dict(self.mts_spec)

    @property
    def cells(self) -> list[CellSpec]:
        """One :class:`CellSpec` per layer: ``layer_cells`` where given, else ``cell`` (a PyTorch mode
        name) with ``gate_activation``, ``activation`` (None: the mode's) and ``reset_after``."""
        if self.layer_cells is not None:
            return [CellSpec.from_dict(c) for c in self.layer_cells]
        base = CellSpec.from_mode(self.cell)
        extra: dict[str, Any] = {}
        if base.kind == "gru":
            extra["reset_after"] = self.reset_after
        elif not self.reset_after:
            raise OptionError("reset_after applies to GRU cells only", param="reset_after")
        if base.kind != "rnn":
            extra["gate_activation"] = self.gate_activation
        elif self.gate_activation != "sigmoid":
            raise OptionError("gate_activation applies to LSTM and GRU cells; a plain RNN has no gates",
                              param="gate_activation")
        if self.activation is not None:
            extra["activation"] = self.activation
        from dataclasses import replace

        return [replace(base, **extra)] * len(self.layer_sizes)


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Variational dropout on ``x (T, B, D)``: one Bernoulli mask per (batch row, feature), shared
    over time, scaled by ``1/(1-p)``."""
    if not training or p == 0.0:
        return x
    mask = x.new_empty((1, x.size(1), x.size(2))).bernoulli_(1.0 - p).div_(1.0 - p)
    return x * mask


def embedded_dropout(embed: nn.Embedding, words: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Embedding lookup with dropout of whole word types (rows), scaled by ``1/(1-p)``."""
    weight = embed.weight
    if training and p > 0.0:
        mask = weight.new_empty((weight.size(0), 1)).bernoulli_(1.0 - p).div_(1.0 - p)
        weight = weight * mask
    return F.embedding(words, weight)


Hidden = list[Any]  # per layer (h, c) for LSTMs, h otherwise


class LanguageModel(nn.Module):
    """AWD-LSTM language model; see the module docstring.

    ``forward(tokens (T, B), hidden, output_masks=None) -> (logits (T, B, V), new_hidden, extras)``
    with ``extras = {'raw_outputs': [per layer (T,B,H_k)], 'dropped_outputs': [per layer]}``
    (``raw_outputs`` before any mask or dropout; ``dropped_outputs`` after mask and dropout, the
    last one is what the decoder reads) for AR/TAR.
    """

    def __init__(self, config: LMConfig, vocab: Sequence[str] | None = None):
        super().__init__()
        self.config = config
        self.vocab = list(vocab) if vocab is not None else None
        if self.vocab is not None and len(self.vocab) != config.vocab_size:
            raise OptionError(f"vocabulary has {len(self.vocab)} entries but vocab_size is {config.vocab_size}")
        self.encoder = nn.Embedding(config.vocab_size, config.emb_size)
        sizes = [config.emb_size, *config.layer_sizes]
        self.cells = config.cells
        self.rnns = nn.ModuleList(recurrent_module(sizes[k], sizes[k + 1], self.cells[k])
                                  for k in range(len(config.layer_sizes)))
        self.decoder = nn.Linear(config.layer_sizes[-1], config.vocab_size)
        self._init_weights()
        if config.tie_weights:
            self.decoder.weight = self.encoder.weight
        self.timescales_ = None
        spec = config.spec
        if spec is not None and not spec.is_free:
            self.timescales_ = apply_mts_spec(list(self.rnns), spec)

    def _init_weights(self) -> None:
        init_range = 0.1
        nn.init.uniform_(self.encoder.weight, -init_range, init_range)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -init_range, init_range)

    # -- structure -------------------------------------------------------------------------
    @property
    def layer_sizes(self) -> list[int]:
        return [rnn.hidden_size for rnn in self.rnns]

    @property
    def num_layers(self) -> int:
        return len(self.rnns)

    def recurrent_layers(self) -> list[nn.Module]:
        """The layers as single-layer recurrent modules (``nn.LSTM``/``nn.GRU``/``nn.RNN`` or
        :class:`~timescale_probe.cells.StepRecurrent`); their ``weight_hh_l0`` is the raw recurrent
        matrix, which is the effective (eval-mode) one. Their cells: :attr:`cells`."""
        return list(self.rnns)

    lstm_layers = recurrent_layers  # the former name

    def init_hidden(self, batch_size: int) -> Hidden:
        w = self.encoder.weight
        return [(w.new_zeros(1, batch_size, h), w.new_zeros(1, batch_size, h)) if cell.has_cell_state
                else w.new_zeros(1, batch_size, h) for h, cell in zip(self.layer_sizes, self.cells)]

    # -- forward ---------------------------------------------------------------------------
    def _run_layer(self, k: int, x: torch.Tensor, hx: Any):
        rnn = self.rnns[k]
        if self.training and self.config.wdrop > 0.0:
            w_hh = F.dropout(rnn.weight_hh_l0, p=self.config.wdrop, training=True)
            cell = self.cells[k]
            if cell.is_standard_lstm:
                params = [rnn.weight_ih_l0, w_hh, rnn.bias_ih_l0, rnn.bias_hh_l0]
                out, h, c = torch._VF.lstm(x, hx, params, True, 1, 0.0, True, False, False)
                return out, (h, c)
            if not cell.is_fused:
                return rnn(x, hx, weight_hh=w_hh)
            params = [rnn.weight_ih_l0, w_hh, rnn.bias_ih_l0, rnn.bias_hh_l0]
            fused = {"gru": torch._VF.gru, "rnn_tanh": torch._VF.rnn_tanh, "rnn_relu": torch._VF.rnn_relu}[cell.name]
            return fused(x, hx, params, True, 1, 0.0, True, False, False)
        return rnn(x, hx)

    def forward(self, tokens: torch.Tensor, hidden: Hidden | None = None, *,
                output_masks: dict[int, torch.Tensor] | None = None):
        if hidden is None:
            hidden = self.init_hidden(tokens.size(1))
        cfg = self.config
        x = embedded_dropout(self.encoder, tokens, cfg.dropoute, self.training)
        x = locked_dropout(x, cfg.dropouti, self.training)
        raw_outputs, dropped_outputs, new_hidden = [], [], []
        last = self.num_layers - 1
        for k in range(self.num_layers):
            out, hk = self._run_layer(k, x, hidden[k])
            new_hidden.append(hk)
            raw_outputs.append(out)
            if output_masks and (k + 1) in output_masks:
                mask = output_masks[k + 1].to(out)
                out = out * (mask if mask.dim() == 1 else mask.unsqueeze(0))
            out = locked_dropout(out, cfg.dropout if k == last else cfg.dropouth, self.training)
            dropped_outputs.append(out)
            x = out
        logits = self.decoder(x)
        return logits, new_hidden, {"raw_outputs": raw_outputs, "dropped_outputs": dropped_outputs}

    # -- conversion ------------------------------------------------------------------------
    def to_stack(self, provenance: Provenance | None = None) -> LSTMStack:
        """Framework-free copy of the weights (CPU), config and vocabulary, for
        :func:`timescale_probe.checkpoints.save_checkpoint`."""
        layers = [
            RecurrentLayer(*(getattr(r, n).detach().cpu().clone() for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")),
                           cell)
            for r, cell in zip(self.rnns, self.cells)
        ]
        emb = self.encoder.weight.detach().cpu().clone()
        tied = self.decoder.weight is self.encoder.weight
        return LSTMStack(
            layers=layers,
            embedding=emb,
            decoder_weight=emb if tied else self.decoder.weight.detach().cpu().clone(),
            decoder_bias=self.decoder.bias.detach().cpu().clone(),
            vocab=list(self.vocab) if self.vocab is not None else None,
            config=self.config.to_dict(),
            mts_spec=self.config.mts_spec,
            provenance=provenance or Provenance("memory"),
        )

    @classmethod
    def from_stack(cls, stack: LSTMStack, **overrides: Any) -> "LanguageModel":
        """A runnable model from any loaded stack (ours or foreign). Dropouts come from
        ``stack.config`` when recorded (else AWD's PTB values; they only matter for training),
        sizes from the weights. Biases are taken from the stack; layers constrained by its MTS
        spec get their bias vectors frozen again as the spec says."""
        if stack.embedding is None or stack.decoder_weight is None:
            missing = "an embedding" if stack.embedding is None else "a decoder (output layer)"
            raise CheckpointError(
                f"this checkpoint has no {missing.split(' ', 1)[1]}: it holds only the LSTM layers "
                f"({stack.provenance.path or 'in memory'}), so it cannot run as a language model"
            )
        emb = stack.embedding
        if emb.shape[1] != stack.input_size:
            raise CheckpointError(f"embedding width {emb.shape[1]} differs from layer 1's input size {stack.input_size}")
        if stack.decoder_weight.shape[1] != stack.layer_sizes[-1]:
            raise CheckpointError(
                f"decoder reads {stack.decoder_weight.shape[1]} features but the last layer has {stack.layer_sizes[-1]} units"
            )
        if stack.decoder_weight.shape[0] != emb.shape[0]:
            raise CheckpointError(f"decoder has {stack.decoder_weight.shape[0]} outputs but the embedding {emb.shape[0]} words")
        known = {f.name for f in fields(LMConfig)}
        base = {k: v for k, v in (stack.config or {}).items() if k in known}
        base.update(vocab_size=emb.shape[0], emb_size=emb.shape[1], layer_sizes=tuple(stack.layer_sizes),
                    tie_weights=bool(stack.tied), mts_spec=stack.mts_spec, **_cell_config(stack.cells))
        base.update(overrides)
        cfg = LMConfig.from_dict(base)
        spec_dict, cfg.mts_spec = cfg.mts_spec, None  # do not re-initialise the biases
        vocab = stack.vocab if stack.vocab is not None and len(stack.vocab) == emb.shape[0] else None
        model = cls(cfg, vocab=vocab)
        cfg.mts_spec = spec_dict
        with torch.no_grad():
            model.encoder.weight.copy_(emb)
            if not stack.tied:
                model.decoder.weight.copy_(stack.decoder_weight)
            if stack.decoder_bias is not None:
                model.decoder.bias.copy_(stack.decoder_bias)
            else:
                model.decoder.bias.zero_()
            for rnn, layer in zip(model.rnns, stack.layers):
                rnn.weight_ih_l0.copy_(layer.weight_ih)
                rnn.weight_hh_l0.copy_(layer.weight_hh)
                rnn.bias_ih_l0.copy_(layer.bias_ih)
                rnn.bias_hh_l0.copy_(layer.bias_hh)
        if spec_dict is not None:
            spec = MTSSpec.from_dict(spec_dict)
            for k, rnn in enumerate(model.rnns):
                ls = spec.layer(k)
                if not isinstance(ls, FreeLayer) and ls.freeze == "all":
                    rnn.bias_ih_l0.requires_grad_(False)
                    rnn.bias_hh_l0.requires_grad_(False)
        return model

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def _cell_config(cells: list[CellSpec]) -> dict[str, Any]:
    """LMConfig fields that give every layer its cell: uniform fields when the layers agree."""
    first = cells[0]
    if any(c != first for c in cells):
        return {"layer_cells": [c.to_dict() for c in cells]}
    mode = first.kind if first.kind != "rnn" else ("rnn_relu" if first.activation == "relu" else "rnn_tanh")
    return {"cell": mode, "gate_activation": first.gate_activation, "activation": first.activation,
            "reset_after": first.reset_after, "layer_cells": None}


def repackage_hidden(hidden: Hidden) -> Hidden:
    """Detach a hidden state from its history (truncated backpropagation through time)."""
    return [tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach() for h in hidden]


def load_language_model(path, corpus, *, device: Any = "cpu", unk_fallback: bool = False,
                        stack: LSTMStack | None = None) -> tuple[LSTMStack, "LanguageModel", Any]:
    """A runnable model from a checkpoint of any supported format, with the corpus tokenised to match it.

    Returns ``(stack, model in eval mode on device, corpus)``. The one place where a model's
    vocabulary meets a corpus (:func:`timescale_probe.corpora.match_model_vocabulary`):

    - a checkpoint with a vocabulary re-tokenises the corpus with its ids; other words are a
      one-line CorpusError unless ``unk_fallback`` (the model has ``<unk>``; its unknown words map
      to it: used for regenerated Markov corpora);
    - a checkpoint without one (the reference's pickles, AWD-LSTM, Keras) gets the candidate order
      (train-only, or the reference's train+valid+test first-occurrence order) whose size equals
      its decoder's; none or several matching is a one-line CorpusError listing their sizes.

    The returned corpus's ``vocab_info`` / :meth:`~timescale_probe.corpora.Corpus.vocabulary_statement`
    say which vocabulary was used. ``stack`` skips reading ``path`` again when already loaded.
    """
    from .checkpoints import load_checkpoint
    from .corpora import match_model_vocabulary

    if stack is None:
        stack = load_checkpoint(path)
    corpus = match_model_vocabulary(corpus, stack.vocab, stack.vocab_size, f"checkpoint {path}",
                                    unk_fallback=unk_fallback)
    model = LanguageModel.from_stack(stack)
    if model.vocab is None and len(corpus.vocab) == model.config.vocab_size:
        model.vocab = list(corpus.vocab)
    return stack, model.to(device).eval(), corpus
