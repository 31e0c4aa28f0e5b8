"""Keras and TensorFlow-1 LSTM weights saved as ``.npz`` (``np.savez``), converted to PyTorch's layout.

- Keras ``LSTM``: per layer ``kernel (I, 4H)``, ``recurrent_kernel (H, 4H)``, ``bias (4H,)`` (``8H`` for
  CuDNN-style input+recurrent biases), gate order i, f, c, o, which is PyTorch's i, f, g, o:
  ``weight_ih = kernel.T``, ``weight_hh = recurrent_kernel.T``, ``bias_ih = bias``, ``bias_hh = 0``.
- TensorFlow 1 ``LSTMCell``/``BasicLSTMCell``: ``kernel`` (or ``weights``) of shape ``(I + H, 4H)`` and
  ``bias`` (or ``biases``) ``(4H,)``, gate order i, j, f, o; the cell adds ``forget_bias`` (default
  1.0) to the f gate at run time without storing it. We reorder to i, f, j(=g), o and add
  ``forget_bias`` back into ``bias_ih``'s f block, so ``T = -1/log sigmoid(b_f + forget_bias)``.

Arrays are matched by name (``<prefix>kernel``, ``<prefix>recurrent_kernel``, ``<prefix>bias``, with an
optional ``:0``), layers ordered by prefix; files of unnamed arrays (``arr_0, arr_1, ...`` from
``np.savez(path, *model.get_weights())``) are matched by position and shape. An embedding
``(V, I)`` and a dense decoder ``kernel (H, V)`` + ``bias (V,)`` are picked up where present.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cells import CellSpec
from ..errors import CheckpointError
from ..stack import LSTMLayer, LSTMStack, Provenance, RecurrentLayer
from .state_dict import NO_VOCAB_NOTE, natural_key

_KEY = re.compile(r"^(?P<prefix>.*?)(?P<kind>recurrent_kernel|kernel|weights|bias|biases|embeddings)(?::\d+)?$")
_TF1_ORDER = (0, 2, 1, 3)  # i, j, f, o  ->  i, f, j, o


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _reorder_tf1(x: np.ndarray, axis: int) -> np.ndarray:
    blocks = np.split(x, 4, axis=axis)
    return np.concatenate([blocks[i] for i in _TF1_ORDER], axis=axis)


_KIND_BY_RATIO = {4: "lstm", 3: "gru", 1: "rnn"}
_KERAS_GRU_ORDER = (1, 0, 2)  # Keras z, r, h  ->  PyTorch r, z, n


def keras_kind(kernel: np.ndarray, rec: np.ndarray) -> str | None:
    """``lstm``/``gru``/``rnn`` from a Keras kernel ``(I, G*H)`` and recurrent kernel ``(H, G*H)``."""
    if kernel.ndim != 2 or rec.ndim != 2 or rec.shape[0] == 0 or rec.shape[1] % rec.shape[0] or kernel.shape[1] != rec.shape[1]:
        return None
    return _KIND_BY_RATIO.get(rec.shape[1] // rec.shape[0])


def from_cudnn_layout(kernel: np.ndarray, rec: np.ndarray, n_gates: int) -> tuple[np.ndarray, np.ndarray]:
    """Keras 2's ``CuDNNLSTM``/``CuDNNGRU`` kernels as the plain layer's (what Keras's own loader does,
    ``hdf5_format._convert_rnn_weights``): the CuDNN layer hands each gate's ``(I, H)`` block to cuDNN
    as a flat buffer read as an ``(H, I)`` matrix, and each recurrent ``(H, H)`` block untransposed."""
    I, H = kernel.shape[0], rec.shape[0]
    k_blocks = [blk.reshape(H, I).T for blk in np.split(np.ascontiguousarray(kernel), n_gates, axis=1)]
    r_blocks = [blk.T for blk in np.split(rec, n_gates, axis=1)]
    return np.concatenate(k_blocks, axis=1), np.concatenate(r_blocks, axis=1)


def _reorder_gru(x: np.ndarray, axis: int) -> np.ndarray:
    blocks = np.split(x, 3, axis=axis)
    return np.concatenate([blocks[i] for i in _KERAS_GRU_ORDER], axis=axis)


def keras_recurrent_layer(kernel: np.ndarray, rec: np.ndarray, bias: np.ndarray | None, where: str,
                          cell: CellSpec | None = None) -> RecurrentLayer:
    """A Keras LSTM / GRU / SimpleRNN layer's arrays in PyTorch's layout and gate order.

    GRU: Keras's z, r, h blocks become r, z, n; a ``(2, 3H)`` (or CuDNNGRU ``(6H,)``) bias is the input
    and recurrent bias (``reset_after=True``), a ``(3H,)`` bias the input bias alone
    (``reset_after=False``, whose candidate adds no recurrent bias inside the reset). ``cell`` (from
    the config) gives the activations; without it the cell's defaults, ``reset_after`` from the bias.
    """
    kind = keras_kind(kernel, rec)
    if kind is None:
        raise CheckpointError(f"{where}: kernel {kernel.shape} / recurrent_kernel {rec.shape} are no LSTM, GRU or "
                              "SimpleRNN's (I, G*H) / (H, G*H)")
    if kind == "lstm":
        layer = _keras_layer(kernel, rec, bias, where)
        return layer if cell is None else RecurrentLayer(layer.weight_ih, layer.weight_hh, layer.bias_ih, layer.bias_hh,
                                                         _checked(cell, kind, where))
    H = rec.shape[0]
    b = None if bias is None else np.asarray(bias)
    if kind == "rnn":
        b_ih = np.zeros(H, np.float32) if b is None else b
        if b_ih.shape != (H,):
            raise CheckpointError(f"{where}: bias has shape {b_ih.shape}, expected ({H},)")
        return RecurrentLayer(_t(kernel.T), _t(rec.T), _t(b_ih), torch.zeros(H), _checked(cell or CellSpec("rnn"), kind, where))
    if b is None:
        b_ih, b_hh, two = np.zeros(3 * H, np.float32), np.zeros(3 * H, np.float32), None
    elif b.shape == (2, 3 * H):
        b_ih, b_hh, two = b[0], b[1], True
    elif b.shape == (6 * H,):  # CuDNNGRU
        kernel, rec = from_cudnn_layout(kernel, rec, 3)
        b_ih, b_hh, two = b[: 3 * H], b[3 * H:], True
    elif b.shape == (3 * H,):
        b_ih, b_hh, two = b, np.zeros(3 * H, np.float32), False
    else:
        raise CheckpointError(f"{where}: GRU bias has shape {b.shape}, expected (2, {3 * H}) or ({3 * H},)")
    if cell is None:
        cell = CellSpec("gru", reset_after=two is not False)
    cell = _checked(cell, kind, where)
    if two is not None and two != cell.reset_after:
        raise CheckpointError(f"{where}: the config says reset_after={cell.reset_after} but the bias has shape "
                              f"{b.shape}; the file is inconsistent")
    return RecurrentLayer(_t(_reorder_gru(kernel, 1).T), _t(_reorder_gru(rec, 1).T), _t(_reorder_gru(b_ih, 0)),
                          _t(_reorder_gru(b_hh, 0)), cell)


def _checked(cell: CellSpec, kind: str, where: str) -> CellSpec:
    if cell.kind != kind:
        raise CheckpointError(f"{where}: the config says {cell.name} but the weights have a {kind}'s shapes")
    return cell


def _keras_layer(kernel: np.ndarray, rec: np.ndarray, bias: np.ndarray | None, where: str) -> LSTMLayer:
    H = rec.shape[0]
    if kernel.ndim != 2 or rec.shape != (H, 4 * H) or kernel.shape[1] != 4 * H:
        raise CheckpointError(f"{where}: kernel {kernel.shape} / recurrent_kernel {rec.shape} are not an LSTM's (I, 4H) / (H, 4H)")
    b_ih = np.zeros(4 * H, np.float32) if bias is None else np.asarray(bias)
    b_hh = np.zeros(4 * H, np.float32)
    if b_ih.shape == (8 * H,):  # CuDNNLSTM: input and recurrent biases, kernels in cuDNN's layout
        kernel, rec = from_cudnn_layout(kernel, rec, 4)
        b_ih, b_hh = b_ih[: 4 * H], b_ih[4 * H:]
    if b_ih.shape != (4 * H,):
        raise CheckpointError(f"{where}: bias has shape {b_ih.shape}, expected ({4 * H},)")
    return LSTMLayer(_t(kernel.T), _t(rec.T), _t(b_ih), _t(b_hh))


def _tf1_layer(kernel: np.ndarray, bias: np.ndarray | None, forget_bias: float, where: str) -> LSTMLayer:
    if kernel.ndim != 2 or kernel.shape[1] % 4:
        raise CheckpointError(f"{where}: TF1 kernel has shape {kernel.shape}, expected (I + H, 4H)")
    H = kernel.shape[1] // 4
    I = kernel.shape[0] - H
    if I <= 0:
        raise CheckpointError(f"{where}: TF1 kernel {kernel.shape} is too short for {H} units")
    k = _reorder_tf1(kernel, axis=1)
    b = np.zeros(4 * H, np.float64) if bias is None else _reorder_tf1(np.asarray(bias, np.float64), axis=0)
    if b.shape != (4 * H,):
        raise CheckpointError(f"{where}: bias has shape {b.shape}, expected ({4 * H},)")
    b = b.copy()
    b[H: 2 * H] += forget_bias
    return LSTMLayer(_t(k[:I].T), _t(k[I:].T), _t(b), torch.zeros(4 * H))


def read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"cannot read {path} as an .npz of arrays: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def load_npz_lstm(path: Path, *, sha256: str | None = None, format: str | None = None, tf_forget_bias: float = 1.0,
                  arrays: dict[str, np.ndarray] | None = None) -> LSTMStack:
    """Keras / TF1 LSTM weights in an ``.npz`` as an :class:`LSTMStack` (``format`` forces keras-npz or tf1-npz;
    ``arrays`` are the file's arrays when the caller has already read them)."""
    if arrays is None:
        arrays = read_npz(path)
    groups: dict[str, dict[str, str]] = {}
    for key in sorted(arrays, key=natural_key):
        m = _KEY.match(key)
        if m:
            kind = {"weights": "kernel", "biases": "bias"}.get(m["kind"], m["kind"])
            groups.setdefault(m["prefix"], {})[kind] = key
    keras = {p: g for p, g in groups.items() if "kernel" in g and "recurrent_kernel" in g}
    tf1 = {p: g for p, g in groups.items() if "kernel" in g and "recurrent_kernel" not in g and "bias" in g
           and re.search(r"lstm|cell|rnn", p, re.I) and arrays[g["kernel"]].ndim == 2 and arrays[g["kernel"]].shape[1] % 4 == 0}
    notes: list[str] = []
    embedding = decoder_w = decoder_b = None
    if format == "tf1-npz" or (format is None and tf1 and not keras):
        if not tf1:
            raise CheckpointError(f"{path}: no TF1 LSTMCell weights (<scope>/lstm_cell/kernel and bias) found; arrays: {', '.join(list(arrays)[:6])}")
        layers = [_tf1_layer(arrays[g["kernel"]], arrays.get(g.get("bias", "")), tf_forget_bias, f"{path}:{p}")
                  for p, g in tf1.items()]
        source = "tf1-npz"
        notes.append(f"TensorFlow-1 LSTMCell weights: gate order i,j,f,o reordered to i,f,g,o; forget_bias "
                     f"{tf_forget_bias:g} (added by TF at run time) added back into bias_ih")
        used = {k for g in tf1.values() for k in g.values()}
    elif keras:
        layers = [_keras_layer(arrays[g["kernel"]], arrays[g["recurrent_kernel"]], arrays.get(g.get("bias", "")), f"{path}:{p}")
                  for p, g in keras.items()]
        source = "keras-npz"
        used = {k for g in keras.values() for k in g.values()}
    else:
        layers, used, embedding, decoder_w, decoder_b = _positional(arrays, path)
        source = "keras-npz"
        if layers:
            notes.append("unnamed arrays (np.savez(*model.get_weights())): LSTM layers matched by position and shape")
    if format == "keras-npz" and source != "keras-npz":
        raise CheckpointError(f"{path}: no Keras LSTM weights (kernel, recurrent_kernel, bias) found")
    if not layers:
        names = ", ".join(list(arrays)[:6])
        raise CheckpointError(
            f"{path} is an .npz of arrays ({names}) without LSTM weights: not a checkpoint; arrays of timescales go to "
            "`tsprobe fit-distribution`, Keras weights need kernel/recurrent_kernel/bias per layer"
        )
    if embedding is None:
        I = layers[0].input_size
        emb = [k for k, a in arrays.items() if k not in used and a.ndim == 2 and a.shape[1] == I and re.search(r"emb", k, re.I)]
        if emb:
            embedding = _t(arrays[emb[0]])
    if decoder_w is None:
        H = layers[-1].hidden_size
        dec = [p for p, g in groups.items() if "kernel" in g and g["kernel"] not in used and arrays[g["kernel"]].ndim == 2
               and arrays[g["kernel"]].shape[0] == H]
        if dec:
            g = groups[dec[0]]
            decoder_w = _t(arrays[g["kernel"]].T)
            if "bias" in g and arrays[g["bias"]].shape == (decoder_w.shape[0],):
                decoder_b = _t(arrays[g["bias"]])
    if embedding is not None and decoder_w is not None and torch.equal(embedding, decoder_w):
        decoder_w = embedding
    stack = LSTMStack(
        layers=layers, embedding=embedding, decoder_weight=decoder_w, decoder_bias=decoder_b, vocab=None,
        config={"arch": "keras-lstm" if source == "keras-npz" else "tf1-lstm"},
        provenance=Provenance(source, path=str(path), sha256=sha256, notes=notes),
    )
    if stack.embedding is not None or stack.decoder_weight is not None:
        stack.config["tie_weights"] = stack.tied

    stack.provenance.notes.append(NO_VOCAB_NOTE)
    return stack


def _positional(arrays: dict[str, np.ndarray], path: Path) -> tuple[list[LSTMLayer], set, Any, Any, Any]:
    keys = sorted(arrays, key=natural_key)
    layers, used, first, last = [], set(), None, None
    i = 0
    while i + 1 < len(keys):
        k, r = arrays[keys[i]], arrays[keys[i + 1]]
        if k.ndim == 2 and r.ndim == 2 and r.shape[1] == 4 * r.shape[0] and k.shape[1] == r.shape[1]:
            has_bias = i + 2 < len(keys) and arrays[keys[i + 2]].shape in ((4 * r.shape[0],), (8 * r.shape[0],))
            b = arrays[keys[i + 2]] if has_bias else None
            layers.append(_keras_layer(k, r, b, f"{path}:{keys[i]}"))
            n = 3 if has_bias else 2
            used.update(keys[i: i + n])
            first = i if first is None else first
            last = i + n
            i += n
        else:
            i += 1
    embedding = decoder_w = decoder_b = None
    if layers:
        if first and arrays[keys[first - 1]].ndim == 2 and arrays[keys[first - 1]].shape[1] == layers[0].input_size:
            embedding = _t(arrays[keys[first - 1]])
        if last is not None and last < len(keys) and arrays[keys[last]].ndim == 2 and arrays[keys[last]].shape[0] == layers[-1].hidden_size:
            decoder_w = _t(arrays[keys[last]].T)
            if last + 1 < len(keys) and arrays[keys[last + 1]].shape == (decoder_w.shape[0],):
                decoder_b = _t(arrays[keys[last + 1]])
    return layers, used, embedding, decoder_w, decoder_b
