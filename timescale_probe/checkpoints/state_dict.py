"""Finding a stacked recurrent net in a flat ``name -> tensor`` mapping (a state dict, or a flattened object tree).

Recurrent tensors are found by name and checked by shape:

- ``nn.LSTM``/``nn.GRU``/``nn.RNN``: ``<prefix>weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
  ``bias_hh_l{k}``;
- ``nn.LSTMCell``/``nn.GRUCell``/``nn.RNNCell``: ``<prefix>weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``;
- AWD-LSTM (DropConnect): ``rnns.<l>.module.weight_hh_l0_raw`` next to (or instead of) ``weight_hh_l0``;
  the ``_raw`` matrix is the trained one and is preferred (noted).

Layers are ordered by prefix (numbers compared as numbers: ``rnns.2`` before ``rnns.10``), then by
``k``. The cell comes from ``weight_hh``'s shape: ``(4H, H)`` LSTM, ``(3H, H)`` GRU, ``(H, H)`` plain
RNN. A state dict does not record a plain RNN's nonlinearity: tanh (PyTorch's default) is assumed
and noted unless the caller knows better (a pickled module records it; ``activation=`` overrides).
Bidirectional layers (``_reverse``) and LSTM projections (``weight_hr``) are refused. An embedding
(``encoder|embedding|...weight`` of shape ``(V, input_size)``) and a decoder (``decoder|fc|...``
``weight (V, H_last)`` and ``bias (V,)``) are picked up where present; a decoder equal to the
embedding is tied.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from ..cells import CellSpec
from ..errors import CheckpointError
from ..stack import RecurrentLayer

#: The note of every loader whose file carries no vocabulary (here, the module every loader imports).
NO_VOCAB_NOTE = ("no vocabulary in the file: commands that read a corpus rebuild it there, in train-only order and in "
                 "the reference's order (first occurrence over train, then valid, then test), and use the one whose "
                 "size equals the decoder's; a vocabulary file (--vocab-file) overrides")

_LSTM_KEY = re.compile(
    r"^(?P<prefix>(?:.*\.)?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
    r"(?:_l(?P<k>\d+))?(?P<rev>_reverse)?(?P<raw>_raw)?$"
)
EMBEDDING_NAMES = (
    "encoder", "embedding", "embeddings", "embed", "emb", "word_embeddings", "word_embedding", "wte",
    "tok_embeddings", "embed_tokens", "lookup", "word_emb", "input_embedding", "token_embedding", "embedder",
)
DECODER_NAMES = (
    "decoder", "linear", "out", "output", "fc", "proj", "projection", "lm_head", "softmax", "classifier", "head",
    "output_layer", "dense", "out_proj", "logits", "generator",
)


def natural_key(text: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text) if p != "")


def _family(prefix: str) -> str:
    return re.sub(r"(^|\.)\d+(?=\.)", r"\1#", prefix)


_KIND_BY_RATIO = {4: "lstm", 3: "gru", 1: "rnn"}
_MODULE_NAME = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


@dataclass
class FoundLSTM:
    """What :func:`find_lstm` found: layers in order, where they came from, and notes for the user."""

    layers: list[RecurrentLayer]
    keys: list[dict[str, str]]          # per layer: the state-dict key used for each tensor
    style: str                          # "nn.LSTM" | "nn.GRU" | "nn.RNN" | "nn.LSTMCell" | ... | "awd-lstm"
    prefix: str                         # the prefix family, e.g. "rnn." or "rnns.#.module."
    embedding: torch.Tensor | None = None
    embedding_key: str | None = None
    decoder_weight: torch.Tensor | None = None
    decoder_weight_key: str | None = None
    decoder_bias: torch.Tensor | None = None
    tied: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def is_lm(self) -> bool:
        return self.embedding is not None or self.decoder_weight is not None

    @property
    def kind(self) -> str:
        return self.layers[0].cell.kind


FoundRecurrent = FoundLSTM


def _as_float(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous()


def _describe_keys(keys: list[str], n: int = 6) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def _rnn_kind(w: torch.Tensor) -> str | None:
    if w.ndim != 2 or w.shape[1] == 0 or w.shape[0] % w.shape[1]:
        return None
    return _KIND_BY_RATIO.get(w.shape[0] // w.shape[1])


def find_lstm(tensors: Mapping[str, Any], where: str = "the file", cell: CellSpec | None = None) -> FoundLSTM:
    """Find one stacked recurrent net (and its embedding/decoder) among ``tensors`` (other values ignored).

    The cell kind comes from the shapes; ``cell`` (when the caller knows it, e.g. from a pickled
    module's ``mode``) gives the activations and must be of the same kind.
    """
    tensors = {k: v for k, v in tensors.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    groups: dict[tuple[str, int | None], dict[str, str]] = defaultdict(dict)
    reverse, projection = [], []
    for key in sorted(tensors, key=natural_key):
        m = _LSTM_KEY.match(key)
        if not m:
            continue
        if m["rev"]:
            reverse.append(key)
            continue
        if m["kind"] == "weight_hr":
            projection.append(key)
            continue
        k = int(m["k"]) if m["k"] is not None else None
        groups[(m["prefix"], k)][m["kind"] + ("_raw" if m["raw"] else "")] = key
    if reverse:
        raise CheckpointError(
            f"{where} holds a bidirectional recurrent layer ({reverse[0]}): memory timescales are defined for a "
            "left-to-right network only; save a unidirectional model"
        )
    if projection:
        raise CheckpointError(f"{where} holds an LSTM with projections ({projection[0]}, proj_size > 0), which tsprobe does not support")
    groups = {g: kinds for g, kinds in groups.items() if "weight_hh" in kinds or "weight_hh_raw" in kinds}
    if not groups:
        names = sorted(tensors, key=natural_key)
        raise CheckpointError(
            f"no recurrent weights found in {where}: expected names like weight_ih_l0/weight_hh_l0 (nn.LSTM, "
            f"nn.GRU, nn.RNN) or weight_ih/weight_hh (nn.LSTMCell ...); its tensors are: {_describe_keys(names) or 'none'}"
        )

    # keep the groups whose recurrent matrix has a recurrent cell's shape (4H|3H|H, H)
    lstm_groups, other, group_kind = {}, [], {}
    for g, kinds in groups.items():
        w = tensors[kinds.get("weight_hh_raw", kinds.get("weight_hh"))]
        kind = _rnn_kind(w)
        if kind is not None:
            lstm_groups[g] = kinds
            group_kind[g] = kind
        else:
            other.append((g, kinds, tuple(w.shape)))
    if not lstm_groups:
        g, kinds, shape = other[0]
        key = kinds.get("weight_hh_raw", kinds.get("weight_hh"))
        raise CheckpointError(f"{where}: {key} has shape {shape}, which is no LSTM (4H, H), GRU (3H, H) or RNN (H, H) "
                              "recurrent matrix; tsprobe cannot read it")

    families: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
    for g in lstm_groups:
        families[_family(g[0])].append(g)
    notes: list[str] = []
    if len(families) > 1 and len({re.sub(r"\d+", "#", f) for f in families}) == 1:
        # numbered modules, each its own LSTM ('lstm1.', 'lstm2.'): one stack when, in the order of their
        # numbers, each layer reads the previous one's output
        order = sorted(lstm_groups, key=lambda g: (natural_key(g[0]), -1 if g[1] is None else g[1]))
        hh = {g: kinds.get("weight_hh_raw", kinds.get("weight_hh")) for g, kinds in lstm_groups.items()}
        shapes = [(tensors[lstm_groups[g]["weight_ih"]].shape[1], tensors[hh[g]].shape[1])
                  for g in order if "weight_ih" in lstm_groups[g]]
        if len(shapes) == len(order) and all(shapes[i][0] == shapes[i - 1][1] for i in range(1, len(shapes))):
            names = list(dict.fromkeys(g[0] for g in order))
            notes.append(f"separate recurrent modules {', '.join(repr(n) for n in names)} read as one stack in the "
                         "order of their numbers (each one's input width is the previous one's output width)")
            families = {_family(names[0]): order}
    if len(families) > 1:
        raise CheckpointError(
            f"{where} holds several separate LSTMs (prefixes {', '.join(repr(f or '<none>') for f in sorted(families))}); "
            "tsprobe reads one stacked LSTM: save the state dict of the one you want"
        )
    family, members = next(iter(families.items()))
    members.sort(key=lambda g: (natural_key(g[0]), -1 if g[1] is None else g[1]))

    kinds_found = list(dict.fromkeys(group_kind[g] for g in members))
    if len(kinds_found) > 1:
        raise CheckpointError(f"{where}: the recurrent layers mix cell types ({', '.join(kinds_found)}); tsprobe reads "
                              "a stack of one cell type")
    kind = kinds_found[0]
    if cell is not None and cell.kind != kind:
        raise CheckpointError(f"{where}: the model says its cell is {cell.name} but the weights have a {kind}'s shapes")
    if cell is None:
        cell = CellSpec(kind)
        if kind == "rnn":
            notes.append("plain RNN weights: the file does not record the nonlinearity; assumed tanh (PyTorch's "
                         "default, nn.RNN / RNN_TANH); pass activation='relu' for an RNN_RELU model")
    layers, used, raw_used = [], [], []
    for n, (prefix, k) in enumerate(members, 1):
        kinds = lstm_groups[(prefix, k)]
        suffix = "" if k is None else f"_l{k}"
        if "weight_ih" not in kinds:
            raise CheckpointError(f"{where}: {prefix}weight_hh{suffix} has no matching {prefix}weight_ih{suffix}; the state dict is incomplete")
        w_hh_key = kinds.get("weight_hh_raw", kinds.get("weight_hh"))
        if "weight_hh_raw" in kinds:
            raw_used.append((n, kinds["weight_hh_raw"], kinds.get("weight_hh")))
        w_ih, w_hh = _as_float(tensors[kinds["weight_ih"]]), _as_float(tensors[w_hh_key])
        four_h = w_hh.shape[0]
        biases = {}
        for b in ("bias_ih", "bias_hh"):
            if b in kinds:
                biases[b] = _as_float(tensors[kinds[b]])
            else:
                biases[b] = torch.zeros(four_h)
                notes.append(f"layer {n}: no {prefix}{b}{suffix} in the file (bias=False); used zeros")
        layers.append(RecurrentLayer(w_ih, w_hh, biases["bias_ih"], biases["bias_hh"], cell))
        used.append({"weight_ih": kinds["weight_ih"], "weight_hh": w_hh_key,
                     "bias_ih": kinds.get("bias_ih", "zeros"), "bias_hh": kinds.get("bias_hh", "zeros")})
    both = [r for r in raw_used if r[2] is not None]
    if both:
        notes.append(
            f"layers {', '.join(str(r[0]) for r in both)}: both weight_hh_l0_raw and weight_hh_l0 present; used the raw "
            "(DropConnect-trained) matrix, not the last dropped copy"
        )
    only_raw = [r for r in raw_used if r[2] is None]
    if only_raw:
        notes.append(f"layers {', '.join(str(r[0]) for r in only_raw)}: recurrent weights read from weight_hh_l0_raw (DropConnect)")
    module = _MODULE_NAME[kind]
    style = "awd-lstm" if raw_used else (f"nn.{module}Cell" if members[0][1] is None else f"nn.{module}")
    found = FoundLSTM(layers=layers, keys=used, style=style, prefix=family, notes=notes)
    _find_embedding_decoder(tensors, found, members[0][0])
    return found


def _common_prefix_len(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split("."), b.split(".")):
        if x != y:
            break
        n += 1
    return n


def _pick(candidates: list[str], anchor: str) -> str | None:
    if not candidates:
        return None
    return max(sorted(candidates, key=natural_key), key=lambda k: _common_prefix_len(k, anchor))


def _module_name(key: str) -> str:
    parts = key.split(".")
    return parts[-2] if len(parts) >= 2 else ""


def _one_by_shape(tensors: dict[str, torch.Tensor], exclude: set[str], shape: tuple[int, int]) -> str | None:
    """The one ``*weight`` matrix of ``shape`` outside ``exclude`` (None when there is none, or several)."""
    hits = [k for k, t in tensors.items() if k not in exclude and k.endswith("weight") and t.ndim == 2
            and tuple(t.shape) == shape]
    return hits[0] if len(hits) == 1 else None


def _find_embedding_decoder(tensors: dict[str, torch.Tensor], found: FoundLSTM, anchor: str) -> None:
    lstm_keys = {v for d in found.keys for v in d.values()}
    I, H_last = found.layers[0].input_size, found.layers[-1].hidden_size
    emb = [k for k, t in tensors.items() if k not in lstm_keys and k.endswith(".weight") and t.ndim == 2
           and _module_name(k).lower() in EMBEDDING_NAMES and t.shape[1] == I]
    dec = [k for k, t in tensors.items() if k not in lstm_keys and k.endswith(".weight") and t.ndim == 2
           and _module_name(k).lower() in DECODER_NAMES and t.shape[1] == H_last]
    emb_key = _pick(emb, anchor)
    if emb_key is not None:
        found.embedding, found.embedding_key = _as_float(tensors[emb_key]), emb_key
        V = found.embedding.shape[0]
        same_v = [k for k in dec if tensors[k].shape[0] == V]
        dec = same_v or dec
        if not dec:  # an output layer under a name we do not know ('dec', 'hidden2word')
            key = _one_by_shape(tensors, lstm_keys | {emb_key}, (V, H_last))
            if key is not None:
                dec = [key]
                found.notes.append(f"decoder {key} found by its shape ({V} x {H_last}: the embedding's "
                                   "vocabulary by the last layer's width), not by its name")
    dec_key = _pick(dec, anchor)
    if dec_key is not None and emb_key is None:  # the same for an embedding under a name we do not know
        V = tensors[dec_key].shape[0]
        emb_key = _one_by_shape(tensors, lstm_keys | {dec_key}, (V, I))
        if emb_key is not None:
            found.embedding, found.embedding_key = _as_float(tensors[emb_key]), emb_key
            found.notes.append(f"embedding {emb_key} found by its shape ({V} x {I}: the decoder's vocabulary by "
                               "the first layer's input width), not by its name")
    if dec_key is not None:
        found.decoder_weight_key = dec_key
        bias_key = dec_key[: -len("weight")] + "bias"
        b = tensors.get(bias_key)
        if b is not None and b.ndim == 1 and b.shape[0] == tensors[dec_key].shape[0]:
            found.decoder_bias = _as_float(b)
        if found.embedding is not None and tensors[dec_key].shape == found.embedding.shape and (
            tensors[dec_key] is tensors[emb_key] or torch.equal(tensors[dec_key].float(), found.embedding)
        ):
            found.decoder_weight, found.tied = found.embedding, True
        else:
            found.decoder_weight = _as_float(tensors[dec_key])
        if found.embedding is not None and found.decoder_weight.shape[0] != found.embedding.shape[0]:
            found.notes.append(
                f"embedding ({emb_key}) has {found.embedding.shape[0]} rows but the decoder ({dec_key}) "
                f"{found.decoder_weight.shape[0]}: vocabulary sizes differ"
            )
    if found.embedding is None and found.decoder_weight is None:
        found.notes.append("no embedding or decoder in the file: a bare LSTM")
    elif found.embedding is None:
        found.notes.append(f"no embedding matrix found (looked for {'/'.join(EMBEDDING_NAMES[:4])}... .weight of width {I})")
    elif found.decoder_weight is None:
        found.notes.append(f"no decoder found (looked for {'/'.join(DECODER_NAMES[:5])}... .weight of width {H_last})")
