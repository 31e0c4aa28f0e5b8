"""Genuine Keras files read with h5py alone (no keras, no tensorflow, nothing executed).

Three kinds of file:

- ``.keras`` (Keras 3): a zip with ``config.json`` (parsed as JSON data, for layer order and
  classes) and ``model.weights.h5``, whose groups follow the model's object tree:
  ``layers/<lstm>/cell/vars/{0,1,2}`` = kernel, recurrent_kernel, bias; ``layers/<bidirectional>/
  {forward_layer,backward_layer}/cell/vars``; nested models under ``layers/<model>/layers/...``;
  each ``vars`` group carries the layer's name in its ``name`` attribute;
- ``.weights.h5`` (Keras 3 ``save_weights``): the same HDF5 tree without config (layer order from
  the group names: ``lstm``, ``lstm_1``, ... are numbered in model order);
- legacy ``.h5`` (Keras 2 / tf.keras ``model.save``/``save_weights``, and Keras 3's legacy writer):
  ``model_config`` (JSON) and ``layer_names`` attributes, each layer group listing its
  ``weight_names`` (``lstm/lstm_cell/kernel:0`` ...), in model order.

Recurrent layers are told apart by the recurrent kernel's shape ``(H, k*H)``: k=4 LSTM, 3 GRU,
1 SimpleRNN; a stack holds one kind (mixed kinds are refused with one line). Conversions
(:func:`.keras.keras_recurrent_layer`): LSTM gate order i, f, c, o is PyTorch's i, f, g, o (a
transpose, the bias in ``bias_ih``); GRU z, r, h is reordered to r, z, n (a ``reset_after`` bias's
two rows go to ``bias_ih`` and ``bias_hh``). Each layer's cell and activations come from the
config (:mod:`.keras_config`), read by the writing Keras version (``hard_sigmoid`` differs between
Keras 2 and 3); weights-only files get the version's defaults, noted as assumed. An ``Embedding``
whose width is the first layer's input and the ``Dense`` layer reading the last one are kept as
embedding and decoder. ``Bidirectional`` layers hold two directions: the stack holds one
(``direction``), the notes report both.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError, OptionError
from ..stack import LSTMStack, Provenance
from .keras import _t, keras_recurrent_layer
from .keras_config import KerasRNN, assumed_rnn, parse_version, rnn_layers_from_config
from .state_dict import NO_VOCAB_NOTE, natural_key

DIRECTIONS = ("forward", "backward")
_KIND_BY_RATIO = {4: "LSTM", 3: "GRU", 1: "SimpleRNN"}
#: largest model.weights.h5 read from a .keras archive into memory
MAX_WEIGHTS_BYTES = 16 * 2 ** 30


@dataclass
class _Record:
    """One layer's weights as found in the file, in model order."""

    path: str                     # where in the file (for messages)
    names: list[str]              # user-visible layer names, outermost first
    role: str                     # "rnn" | "embedding" | "dense"
    arrays: list[np.ndarray]
    direction: str | None = None  # "forward" | "backward" inside a Bidirectional
    owner: str | None = None      # the Bidirectional layer's name
    order: tuple = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return self.names[-1] if self.names else self.path

    @property
    def rnn_kind(self) -> str:
        k, r = self.arrays[0], self.arrays[1]
        if k.ndim != 2 or r.ndim != 2 or r.shape[0] == 0 or r.shape[1] % r.shape[0] or k.shape[1] != r.shape[1]:
            return "unknown"
        return _KIND_BY_RATIO.get(r.shape[1] // r.shape[0], "unknown")


def _decode_list(value: Any) -> list[str]:
    out = []
    for v in np.atleast_1d(value):
        out.append(v.decode("utf-8") if isinstance(v, bytes) else str(v))
    return out


def _attr_text(attrs, key: str) -> str | None:
    v = attrs.get(key)
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v.item()
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
    return str(v)


def _read(ds) -> np.ndarray:
    arr = np.asarray(ds[()])
    if arr.dtype.kind not in "fiu":
        raise CheckpointError(f"dataset {ds.name} holds {arr.dtype} values, expected numbers")
    return arr


def _child(group, name: str, notes: list[str]):
    import h5py

    link = group.get(name, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        notes.append(f"ignored an external link to another file at {group.name}/{name}")
        return None
    return group.get(name)


# ----------------------------------------------------------------------------------------------
# Keras 3 weights tree (model.weights.h5 / .weights.h5)
# ----------------------------------------------------------------------------------------------

def _vars_arrays(group, notes) -> list[np.ndarray]:
    import h5py

    keys = sorted((k for k in group.keys() if k.isdigit()), key=int)
    out = []
    for k in keys:
        ds = _child(group, k, notes)
        if isinstance(ds, h5py.Dataset):
            out.append(_read(ds))
    return out


def _walk_keras3(group, path: str, names: list[str], out: list[_Record], notes: list[str],
                 direction: str | None = None, owner: str | None = None) -> None:
    import h5py

    for key in sorted(group.keys(), key=natural_key):
        if key == "vars":
            continue
        child = _child(group, key, notes)
        if not isinstance(child, h5py.Group):
            continue
        cpath = f"{path}/{key}" if path else key
        vars_group = child.get("vars") if isinstance(child.get("vars"), h5py.Group) else None
        own_name = _attr_text(vars_group.attrs, "name") if vars_group is not None else None
        cnames = names + ([own_name] if own_name else [])
        cdir = {"forward_layer": "forward", "backward_layer": "backward"}.get(key, direction)
        cell = child.get("cell")
        if isinstance(cell, h5py.Group) and isinstance(cell.get("vars"), h5py.Group):
            arrays = _vars_arrays(cell["vars"], notes)
            if len(arrays) >= 2:
                out.append(_Record(cpath, cnames, "rnn", arrays, cdir, owner))
            continue
        subgroups = [k for k in child.keys() if k != "vars" and isinstance(child.get(k), h5py.Group)]
        if vars_group is not None and not subgroups:
            arrays = _vars_arrays(vars_group, notes)
            base = key.rstrip("_0123456789")
            if base == "embedding" and len(arrays) == 1 and arrays[0].ndim == 2:
                out.append(_Record(cpath, cnames, "embedding", arrays))
            elif base == "dense" and arrays and arrays[0].ndim == 2:
                out.append(_Record(cpath, cnames, "dense", arrays))
            continue
        is_bidi = "forward_layer" in child and "backward_layer" in child
        _walk_keras3(child, cpath, cnames, out, notes, cdir, own_name if is_bidi else owner)


def _config_order(config: Any) -> tuple[dict[str, int], dict[str, str]]:
    """Pre-order index and class of every named layer in a Keras config (parsed JSON data)."""
    order: dict[str, int] = {}
    classes: dict[str, str] = {}

    def visit(node: Any, depth: int = 0) -> None:
        if depth > 64:
            return
        if isinstance(node, dict):
            cfg = node.get("config")
            cls = node.get("class_name")
            if isinstance(cfg, dict) and isinstance(cls, str):
                name = cfg.get("name", node.get("name"))
                if isinstance(name, str) and name not in order:
                    order[name] = len(order)
                    classes[name] = cls
            for v in node.values():
                visit(v, depth + 1)
        elif isinstance(node, list):
            for v in node:
                visit(v, depth + 1)

    visit(config)
    return order, classes


def _snake_case(name: str) -> str:
    """Keras's own rule for the group name of a layer class (``SimpleRNN`` -> ``simple_rnn``)."""
    text = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", text).lower()


def _name_unnamed(records: list[_Record], config: Any) -> None:
    """Keras 2.13-2.15 ``.keras`` archives carry no layer names in their weights tree: their groups
    are ``layers/<snake_case class>[_n]`` in model order. Name those records from the config's
    top-level layer list the same way (nested models stay unnamed)."""
    cfg = config.get("config") if isinstance(config, dict) else None
    layer_list = cfg.get("layers") if isinstance(cfg, dict) else None
    if not isinstance(layer_list, list):
        return
    counts: dict[str, int] = {}
    by_group: dict[str, str] = {}
    for node in layer_list:
        if not isinstance(node, dict) or not isinstance(node.get("class_name"), str):
            continue
        base = _snake_case(node["class_name"])
        k = counts.get(base, 0)
        counts[base] = k + 1
        name = (node.get("config") or {}).get("name", node.get("name"))
        if isinstance(name, str):
            by_group[f"layers/{base}" + (f"_{k}" if k else "")] = name
    for r in records:
        if not r.names:
            group = "/".join(r.path.split("/")[:2])
            if group in by_group:
                r.names = [by_group[group]]
                if r.owner is None and r.direction is not None:
                    r.owner = by_group[group]


# ----------------------------------------------------------------------------------------------
# legacy HDF5 (Keras 2 / tf.keras, Keras 3 legacy writer)
# ----------------------------------------------------------------------------------------------

def _walk_legacy(root, notes: list[str]) -> list[_Record]:
    import h5py

    out: list[_Record] = []
    for lname in _decode_list(root.attrs["layer_names"]):
        g = _child(root, lname, notes)
        if not isinstance(g, h5py.Group):
            continue
        wnames = _decode_list(g.attrs.get("weight_names", []))
        groups: dict[str, dict[str, np.ndarray]] = {}
        for wn in wnames:
            ds = g.get(wn)
            if not isinstance(ds, h5py.Dataset):
                raise CheckpointError(f"layer {lname} lists weight {wn} but the file lacks it; the file is damaged")
            prefix, _, leaf = wn.rpartition("/")
            groups.setdefault(prefix, {})[re.sub(r":\d+$", "", leaf)] = _read(ds)
        for prefix, w in groups.items():
            parts = prefix.split("/")
            direction = next((d for d in DIRECTIONS for p in parts if p.startswith(d + "_")), None)
            names = [lname] + [p for p in parts[1:] if not p.endswith("_cell")]
            path = f"{lname}/{prefix}"
            if "kernel" in w and "recurrent_kernel" in w:
                arrays = [w["kernel"], w["recurrent_kernel"]] + ([w["bias"]] if "bias" in w else [])
                out.append(_Record(path, names, "rnn", arrays, direction, lname if direction else None))
            elif "embeddings" in w and w["embeddings"].ndim == 2:
                out.append(_Record(path, names, "embedding", [w["embeddings"]]))
            elif "kernel" in w and w["kernel"].ndim == 2:
                out.append(_Record(path, names, "dense", [w["kernel"]] + ([w["bias"]] if "bias" in w else [])))
    return out


# ----------------------------------------------------------------------------------------------
# entry point
# ----------------------------------------------------------------------------------------------

def _open_h5(source, where: str):
    import h5py

    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{where} is not a readable HDF5 file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def _read_keras_zip(p: Path) -> tuple[bytes, Any, dict[str, Any]]:
    try:
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
            h5 = [n for n in names if n.endswith("model.weights.h5")] or [n for n in names if n.endswith(".h5")]
            if not h5:
                raise CheckpointError(f"{p} is a zip archive without model.weights.h5: not a Keras 3 .keras file")
            info = zf.getinfo(h5[0])
            if info.file_size > MAX_WEIGHTS_BYTES:
                raise CheckpointError(f"{p}: {h5[0]} would unpack to {info.file_size:,} bytes; refusing (limit {MAX_WEIGHTS_BYTES:,})")
            data = zf.read(h5[0])
            config = meta = None
            for name, target in (("config.json", "config"), ("metadata.json", "meta")):
                if name in names:
                    try:
                        value = json.loads(zf.read(name).decode("utf-8"))
                    except (UnicodeDecodeError, json.JSONDecodeError):
                        raise CheckpointError(f"{p}: {name} is not valid JSON; the archive is damaged") from None
                    if target == "config":
                        config = value
                    else:
                        meta = value
    except (zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{p} is a damaged zip archive ({exc}); re-save the model") from None
    return data, config, meta if isinstance(meta, dict) else {}


_LAYOUT_NOTE = {
    "LSTM": "Keras gate order i,f,c,o = i,f,g,o; kernel transposed, the bias vector(s) in bias_ih (bias_hh zero unless "
            "two were stored)",
    "GRU": "Keras gate order z,r,h reordered to r,z,n; kernel transposed; input bias in bias_ih, recurrent bias "
           "(reset_after=True) in bias_hh",
    "SimpleRNN": "kernel transposed, the bias in bias_ih (bias_hh zero)",
}


def _info(r: _Record, infos: dict[str, KerasRNN], version: tuple[int, ...] | None, has_config: bool,
          notes: list[str]) -> KerasRNN:
    """The config's description of record ``r`` (by layer name; ``owner/direction`` inside a
    Bidirectional), else the defaults of the writing version (noted as assumed)."""
    keys = ([f"{r.owner}/{r.direction}"] if r.owner and r.direction else []) + list(reversed(r.names))
    for key in keys:
        if key in infos:
            return infos[key]
    kind = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "rnn"}[r.rnn_kind]
    bias = r.arrays[2].shape if len(r.arrays) > 2 else None
    why = ("no config entry for it in the file" if has_config else
           "a weights-only Keras file (no model config)")
    return assumed_rnn(kind, version, bias, r.arrays[1].shape[0], r.owner or r.name, why)


def load_keras_file(path: Path, *, sha256: str | None = None, direction: str = "forward") -> LSTMStack:
    """A Keras ``.keras``, ``.weights.h5`` or legacy ``.h5`` file as an :class:`LSTMStack` (see the module doc).

    ``direction`` picks the direction of ``Bidirectional`` layers (``forward`` or ``backward``).
    Raises :class:`CheckpointError` with one line for files without LSTM layers (GRU, SimpleRNN,
    no recurrent layer) or damaged files.
    """
    if direction not in DIRECTIONS:
        raise OptionError(f"direction must be forward or backward, got '{direction}'", param="direction")
    notes: list[str] = []
    p = Path(path)
    with open(p, "rb") as fh:
        head = fh.read(8)
    config: Any = None
    meta: dict[str, Any] = {}
    if head[:4] == b"PK\x03\x04":
        data, config, meta = _read_keras_zip(p)
        source, kind_text = "keras", "Keras .keras archive (config.json + model.weights.h5)"
        f = _open_h5(io.BytesIO(data), f"{p}:model.weights.h5")
    else:
        f = _open_h5(p, str(p))
        source, kind_text = None, None
    with f:
        legacy_root = None
        if "model_weights" in f and "layer_names" in f["model_weights"].attrs:
            legacy_root = f["model_weights"]
        elif "layer_names" in f.attrs:
            legacy_root = f
        if legacy_root is not None:
            text = _attr_text(f.attrs, "model_config")
            if text:
                try:
                    config = json.loads(text)
                except json.JSONDecodeError:
                    notes.append("model_config attribute is not valid JSON: ignored")
            version = _attr_text(legacy_root.attrs, "keras_version") or _attr_text(f.attrs, "keras_version")
            source = "keras-h5"
            kind_text = (f"legacy Keras HDF5 ({'model.save' if text else 'save_weights'}"
                         f"{', keras ' + version if version else ''}; model order from layer_names)")
            records = _walk_legacy(legacy_root, notes)
        elif "layers" in f:
            records = []
            _walk_keras3(f, "", [], records, notes)
            if source is None:
                source, kind_text = "keras-weights-h5", "Keras weights file (.weights.h5, the layout of Keras 3 and 2.13+; no config)"
            version = meta.get("keras_version")
            if version:
                kind_text += f", keras {version}"
        else:
            keys = ", ".join(list(f.keys())[:6]) or "none"
            raise CheckpointError(f"{p} is an HDF5 file but not a Keras model or weights file (top-level groups: {keys})")
    where = str(p)
    if config is not None and source == "keras":
        _name_unnamed(records, config)
    order, classes = _config_order(config) if config is not None else ({}, {})
    ordered = source == "keras-h5" or bool(order)
    if source == "keras-weights-h5" or not order:
        for i, r in enumerate(records):
            r.order = (i,)
    else:
        for i, r in enumerate(records):
            idx = [order[n] for n in reversed(r.names) if n in order]
            r.order = (idx[0] if idx else len(order), i)
    records.sort(key=lambda r: r.order)
    notes.append(f"read with h5py from a {kind_text}")

    rnns = [r for r in records if r.role == "rnn"]
    known = [r for r in rnns if r.rnn_kind != "unknown"]
    if not known:
        if rnns:
            r = rnns[0]
            raise CheckpointError(f"{where}: layer '{r.owner or r.name}' has a recurrent kernel of shape "
                                  f"{tuple(r.arrays[1].shape)}, which is no LSTM, GRU or SimpleRNN")
        raise CheckpointError(f"{where}: no recurrent layer (LSTM, GRU, SimpleRNN) in this Keras file (layers with "
                              f"weights: {', '.join(r.name for r in records) or 'none'})")
    kinds = list(dict.fromkeys(r.rnn_kind for r in known))
    if len(kinds) > 1:
        raise CheckpointError(f"{where}: the recurrent layers mix cell types ({', '.join(kinds)}: "
                              f"{', '.join(f'{r.name} ({r.rnn_kind})' for r in known)}); tsprobe reads a stack of one "
                              "cell type")
    kind_name = kinds[0]
    vtuple = parse_version(version)
    if vtuple is not None and vtuple < (2,):
        raise CheckpointError(f"{where}: written by Keras {version}; Keras 1 files (weights W_i, U_i, b_i ... per gate) "
                              "are not supported: load the model in Keras 2 and save it again")
    infos = rnn_layers_from_config(config, vtuple) if config is not None else {}
    owners = list(dict.fromkeys(r.owner for r in known if r.direction))
    for owner in owners:
        both = {r.direction: r for r in known if r.owner == owner}
        parts = []
        for d in DIRECTIONS:
            if d in both:
                layer = keras_recurrent_layer(both[d].arrays[0], both[d].arrays[1],
                                              both[d].arrays[2] if len(both[d].arrays) > 2 else None, both[d].path,
                                              _info(both[d], infos, vtuple, config is not None, notes).cell)
                median = (f" (median {'forget' if layer.cell.kind == 'lstm' else 'update-gate'} bias "
                          f"{float(np.median(layer.forget_bias.numpy())):.4g})" if layer.cell.retention_gate else "")
                parts.append(f"{d} {layer.hidden_size} units{median}")
        notes.append(f"Bidirectional layer '{owner}': {'; '.join(parts)}; this stack holds the {direction} direction "
                     f"(direction='{'backward' if direction == 'forward' else 'forward'}' reads the other)")
    chosen = [r for r in known if r.direction in (None, direction)]
    if not chosen:
        raise CheckpointError(f"{where}: no {direction} recurrent layer in this file")
    layers = []
    for r in chosen:
        info = _info(r, infos, vtuple, config is not None, notes)
        if info.go_backwards and r.direction is None:
            raise CheckpointError(f"{where}: layer '{r.name}' has go_backwards=True (it reads the sequence backwards); "
                                  "tsprobe reads left-to-right layers (and Bidirectional ones by direction)")
        layers.append(keras_recurrent_layer(r.arrays[0], r.arrays[1], r.arrays[2] if len(r.arrays) > 2 else None,
                                            f"{where}:{r.path}", info.cell))
        notes.extend(n for n in info.notes if n not in notes)
    I, H_last = layers[0].input_size, layers[-1].hidden_size
    first_pos, last_pos = records.index(chosen[0]), records.index(chosen[-1])
    if not ordered:  # no model order across layer classes: any embedding / dense of the right shape
        first_pos, last_pos = len(records), -1
    embedding = decoder_w = decoder_b = None
    embs = [r for r in records[:first_pos] if r.role == "embedding" and r.arrays[0].shape[1] == I]
    if embs:
        embedding = _t(embs[-1].arrays[0])
    decs = [r for r in records[last_pos + 1:] if r.role == "dense" and r.arrays[0].shape[0] == H_last]
    if decs:
        decoder_w = _t(decs[0].arrays[0].T)
        if len(decs[0].arrays) > 1 and decs[0].arrays[1].shape == (decoder_w.shape[0],):
            decoder_b = _t(decs[0].arrays[1])
    names = [r.name for r in chosen]
    notes.append(f"{kind_name} layers in model order: {', '.join(names)}; " + _LAYOUT_NOTE[kind_name])
    if embedding is not None and decoder_w is not None and torch.equal(embedding, decoder_w):
        decoder_w = embedding
    try:
        stack = LSTMStack(layers=layers, embedding=embedding, decoder_weight=decoder_w, decoder_bias=decoder_b, vocab=None,
                          config={"arch": f"keras-{kind_name.lower()}", "layer_names": names},
                          provenance=Provenance(source, path=where, sha256=sha256, notes=notes))
    except CheckpointError as exc:
        raise CheckpointError(f"{where}: the {kind_name} layers ({', '.join(names)}) do not form one stack: {exc}") from None
    if embedding is not None or decoder_w is not None:
        stack.config["tie_weights"] = stack.tied

    if decoder_w is not None:
        stack.provenance.notes.append(NO_VOCAB_NOTE)
    return stack
