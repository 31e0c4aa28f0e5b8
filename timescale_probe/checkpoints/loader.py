"""Format detection and dispatch: every supported checkpoint file becomes one :class:`RecurrentStack`.

Order of attempts for a ``torch.save`` file (zip or legacy): ``torch.load(weights_only=True)``
first (our own format, plain state dicts); only when that refuses (whole pickled objects) the
restricted unpickler of :mod:`.safe_unpickle`, which never imports or runs anything named in the
file. ``provenance.source_format`` says what was found:

==============================  ==========================================================
``tsprobe-checkpoint``          our own format (:mod:`.ours`)
``state-dict:nn.LSTM``          state dict of an ``nn.LSTM`` (``weight_ih_l{k}`` ...); ``nn.GRU``, ``nn.RNN`` alike
``state-dict:nn.LSTMCell``      state dict of ``nn.LSTMCell`` s (``weight_ih`` ...); ``nn.GRUCell`` ... alike
``state-dict:lm``               state dict of an LM wrapping them (embedding/decoder, AWD names)
``pickle:awd-lstm``             whole pickled AWD-LSTM / reference-repo model
``pickle:word_language_model``  whole pickled pytorch/examples ``RNNModel`` (LSTM, GRU, RNN_TANH, RNN_RELU)
``pickle:module``               any other whole pickled module holding a recurrent layer
``torchscript``                 the weights of a TorchScript archive (``torch.jit.save``); its code is never run
``keras-npz`` / ``tf1-npz``     Keras / TensorFlow-1 LSTM weights saved with ``np.savez``
``state-dict:*`` from ``.npz``  a PyTorch state dict saved with ``np.savez`` (its names kept)
``keras``                       Keras 3 ``.keras`` archive (:mod:`.keras_h5`, h5py only)
``keras-weights-h5``            Keras 3 ``.weights.h5``
``keras-h5``                    legacy Keras 2 / tf.keras ``.h5`` (``model_config``, ``layer_names``)
==============================  ==========================================================

Safetensors files are read too (header + raw tensors, no dependency) as state dicts.

Cells and activations: PyTorch files hold PyTorch's cells (sigmoid gates, tanh; a pickled
``nn.RNN`` records its nonlinearity, a state dict does not: tanh is assumed and noted). Keras
files record theirs in the config (:mod:`.keras_config`); weights-only Keras files do not, and the
notes say what was assumed. ``gate_activation=`` and ``activation=`` override what was read or
assumed (noted), for files whose producer is known to the user.
"""
from __future__ import annotations

import json
import os
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..activations import ACTIVATIONS, GATE_ACTIVATIONS, check_activation
from ..errors import CheckpointError, OptionError
from ..fileio import file_sha256, require_file
from ..stack import LSTMStack, Provenance, RecurrentStack
from .integrity import LEGACY_NO_CHECKSUM_NOTE, check_zip_records, is_torchscript_names
from .ours import FORMAT_NAME, is_our_payload, payload_to_stack
from .pickled import describe_model, flatten
from .safe_unpickle import is_inert, load_torch_file_restricted
from .state_dict import _LSTM_KEY, NO_VOCAB_NOTE, find_lstm

#: Values of ``format=`` (``--format``): ``auto`` detects.
FORMATS = ("auto", "tsprobe", "state-dict", "pickle", "safetensors", "keras", "keras-npz", "tf1-npz")


def sniff(path: Path) -> str:
    """The kind of file from its first bytes: torch-zip, npz, zip, pickle, npy, safetensors, png, hdf5, text, unknown."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return "torch-zip"  # let the torch readers report the damage
        if is_torchscript_names(names):
            return "torchscript"  # it has a data.pkl too, but torch.load would hand it to torch.jit.load
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "torch-zip"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        if any(n.endswith("model.weights.h5") for n in names):
            return "keras"
        return "zip"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] == b"\x89HDF":
        return "hdf5"
    if len(head) >= 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if 0 < n <= size - 8:
            return "safetensors"
    try:
        text = head.decode("utf-8")
        if text and all(c.isprintable() or c in "\r\n\t" for c in text):
            return "text"
    except UnicodeDecodeError:
        pass
    return "unknown"


_NOT_A_CHECKPOINT = {
    "npy": "a NumPy array (.npy), not a checkpoint; arrays of timescales go to `tsprobe fit-distribution`",
    "png": "a PNG image, not a checkpoint",
    "text": "a text file, not a checkpoint",
    "zip": "a zip archive without data.pkl: not a PyTorch checkpoint",
    "torchscript": "a TorchScript archive (torch.jit.save): leave out --format (or give --format pickle) to read its weights",
    "unknown": "not a recognised checkpoint (neither a torch.save file, safetensors, a Keras file, nor a Keras/TF .npz)",
}


def load_checkpoint(path: str | os.PathLike, *, format: str | None = None, tf_forget_bias: float = 1.0,
                    direction: str = "forward", gate_activation: str | None = None,
                    activation: str | None = None) -> RecurrentStack:
    """Read any supported checkpoint into a :class:`RecurrentStack` (CPU float32 weights in PyTorch's
    gate order: LSTM i,f,g,o; GRU r,z,n), with each layer's cell and saved activations.

    ``format`` forces a loader (one of :data:`FORMATS`; ``None``/``auto`` detects). ``tf_forget_bias``
    is the forget bias TensorFlow-1 ``LSTMCell`` adds at run time (default 1.0); it is added back
    into ``bias_ih`` of ``tf1-npz`` files. ``direction`` (forward|backward) picks the direction of
    Keras ``Bidirectional`` layers. ``gate_activation`` (``sigmoid``, ``hard_sigmoid_keras2``,
    ``hard_sigmoid_keras3``) and ``activation`` (candidate/cell or plain-RNN function: ``tanh``,
    ``relu``, ...) override what the file records or what was assumed for it; the notes say so.
    Raises :class:`CheckpointError` (or its subclass :class:`UnsafeCheckpointError` for files that
    try to run code) with a one-line message.
    """
    p = require_file(path, "checkpoint")
    fmt = (format or "auto").lower()
    if fmt not in FORMATS:
        raise OptionError(f"unknown checkpoint format '{format}': use one of {', '.join(FORMATS)}")
    if direction not in ("forward", "backward"):
        raise OptionError(f"direction must be forward or backward, got '{direction}'", param="direction")
    if gate_activation is not None:
        check_activation(gate_activation, "gate_activation", GATE_ACTIVATIONS)
    if activation is not None:
        check_activation(activation, "activation", ACTIVATIONS)
    stack = _load(p, fmt, tf_forget_bias, direction)
    return override_activations(stack, gate_activation, activation)


def override_activations(stack: RecurrentStack, gate_activation: str | None = None,
                         activation: str | None = None) -> RecurrentStack:
    """``stack`` with every layer's gate and/or candidate activation replaced (in place), and a note."""
    from dataclasses import replace

    changes = {k: v for k, v in (("gate_activation", gate_activation), ("activation", activation)) if v is not None}
    if not changes:
        return stack
    if "gate_activation" in changes and stack.cell.kind == "rnn":
        raise OptionError("gate_activation applies to LSTM and GRU gates; a plain RNN has no gates", param="gate_activation")
    before = stack.cell_name
    for layer in stack.layers:
        layer.cell = replace(layer.cell, **changes)
    stack.provenance.notes.append(
        "activations set by the caller: " + ", ".join(f"{k}={v}" for k, v in changes.items())
        + f" (read or assumed from the file: {before}; now {stack.cell_name})")
    return stack


def _load(p: Path, fmt: str, tf_forget_bias: float, direction: str) -> RecurrentStack:
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p} is empty (0 bytes): not a checkpoint; was the save or the download interrupted?")
    kind = sniff(p)
    sha = file_sha256(p)
    if fmt == "keras" or (fmt == "auto" and kind in ("keras", "hdf5")):
        from .keras_h5 import load_keras_file

        if kind not in ("keras", "hdf5"):
            raise CheckpointError(f"{p} is neither a .keras archive nor an HDF5 file, so it cannot be read as --format keras")
        return load_keras_file(p, sha256=sha, direction=direction)
    arrays = None
    if kind == "npz" and fmt in ("auto", "state-dict", "keras-npz", "tf1-npz"):
        from .keras import read_npz

        arrays = read_npz(p)  # read once: the state-dict sniff and the Keras/TF1 reader share the arrays
    if kind == "npz" and fmt in ("auto", "state-dict"):
        state = _torch_names_npz(arrays)
        if state is not None:
            return _stack_from_tree(state, p, sha, loaded_by="npz", fmt=fmt)
        if fmt == "state-dict":
            raise CheckpointError(f"{p} is an .npz without PyTorch state-dict names (weight_ih_l0, ...); leave out "
                                  "--format to read Keras or TF1 weights")
    if fmt in ("keras-npz", "tf1-npz") or (fmt == "auto" and kind == "npz"):
        from .keras import load_npz_lstm

        if kind not in ("npz",):
            raise CheckpointError(f"{p} is not an .npz archive, so it cannot be read as --format {fmt}")
        return load_npz_lstm(p, sha256=sha, format=None if fmt == "auto" else fmt, tf_forget_bias=tf_forget_bias,
                             arrays=arrays)
    if fmt == "safetensors" or (fmt == "auto" and kind == "safetensors"):
        return _stack_from_tree(_read_safetensors(p), p, sha, loaded_by="safetensors", fmt=fmt)
    if kind == "torchscript":
        # only the weights: data.pkl through the restricted unpickler (a hostile one is refused as such
        # whatever --format says); the archive's code is never compiled or run, as torch.load would
        # (it hands these archives to torch.jit.load)
        from .safe_unpickle import load_zip_torch_file

        check_zip_records(p)
        tree = load_zip_torch_file(p)
        if fmt not in ("auto", "pickle"):
            raise CheckpointError(f"{p} cannot be read as --format {fmt}: it is {_NOT_A_CHECKPOINT[kind]}")
        return _stack_from_tree(tree, p, sha, loaded_by="torchscript", fmt=fmt)
    if kind in ("torch-zip", "pickle"):
        if kind == "torch-zip":
            check_zip_records(p)  # torch itself does not check the records' CRC-32s
        obj, loaded_by = _read_torch(p, fmt)
        stack = _stack_from_tree(obj, p, sha, loaded_by=loaded_by, fmt=fmt)
        if kind == "pickle":
            stack.provenance.notes.append(LEGACY_NO_CHECKSUM_NOTE)
        return stack
    if fmt != "auto":
        raise CheckpointError(f"{p} cannot be read as --format {fmt}: it is {_NOT_A_CHECKPOINT.get(kind, kind)}")
    raise CheckpointError(f"{p} is {_NOT_A_CHECKPOINT[kind]}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_torch(p: Path, fmt: str) -> tuple[Any, str]:
    """``(object, how)``: ``torch.load(weights_only=True)`` first, the restricted unpickler after."""
    if fmt != "pickle":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return torch.load(p, map_location="cpu", weights_only=True), "weights-only"
        except Exception as exc:  # noqa: BLE001 (weights-only refusal, or corruption: the restricted reader says which)
            if fmt in ("state-dict", "tsprobe"):
                # still read it safely so that a malicious file is reported as such
                load_torch_file_restricted(p)
                raise CheckpointError(
                    f"{p} is not a plain state dict (torch.load(weights_only=True) refused it: {_first_line(exc)[:160]}); "
                    "it holds pickled objects: leave out --format to read it safely"
                ) from None
    return load_torch_file_restricted(p), "restricted-unpickler"


def _torch_names_npz(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor] | None:
    """The arrays of an ``.npz`` (read with ``allow_pickle=False``) that carry PyTorch state-dict names
    (``np.savez(f, **{k: v.numpy() ...})``) as that state dict (numeric arrays only); None for other names."""
    if not any(_LSTM_KEY.match(k) for k in arrays):
        return None
    return {k: torch.from_numpy(np.array(a)) for k, a in arrays.items() if a.dtype.kind in "fiub"}


def _read_safetensors(p: Path) -> dict[str, torch.Tensor]:
    dtypes = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}
    data = p.read_bytes()
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8: 8 + n].decode("utf-8"))
        body = bytearray(data[8 + n:])
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = (int(x) for x in info["data_offsets"])
            dtype, shape = dtypes[info["dtype"]], [int(s) for s in info["shape"]]
            if not 0 <= begin <= end <= len(body):
                raise ValueError(f"tensor {name} lies outside the file")
            t = torch.frombuffer(body, dtype=torch.uint8, offset=begin, count=end - begin) if end > begin else torch.empty(0, dtype=torch.uint8)
            out[name] = t.view(dtype).reshape(shape)
        return out
    except (ValueError, KeyError, TypeError, RuntimeError, UnicodeDecodeError, struct.error) as exc:
        raise CheckpointError(f"{p} is not a valid safetensors file ({_first_line(exc)}); the file is corrupt") from None


def _has_lstm_tensors(tensors: dict[str, Any]) -> bool:
    return any(isinstance(k, str) and _LSTM_KEY.match(k) for k in tensors)


def _class_name(obj: Any) -> str:
    return obj.tsprobe_class if is_inert(obj) else type(obj).__name__


def _stack_from_tree(obj: Any, p: Path, sha: str, *, loaded_by: str, fmt: str) -> LSTMStack:
    if is_our_payload(obj):
        return payload_to_stack(obj, path=str(p), sha256=sha)
    if fmt == "tsprobe":
        raise CheckpointError(f"{p} is a PyTorch file but not a tsprobe checkpoint (no format='{FORMAT_NAME}' field); leave out --format")
    notes: list[str] = []
    root = obj
    if isinstance(obj, (list, tuple)) and obj:
        picked = None
        for i, item in enumerate(obj):
            if _has_lstm_tensors(flatten(item).tensors):
                picked = i
                break
        if picked is not None:
            root = obj[picked]
            if len(obj) > 1:
                kinds = ", ".join(_class_name(o) for o in obj)
                notes.append(f"the file holds a list of {len(obj)} objects ({kinds}); the LSTM was read from item {picked + 1}")
    flat = flatten(root)
    found = find_lstm(flat.tensors, where=str(p), cell=_pickled_cell(flat, notes))
    config: dict[str, Any] = {}
    mts_spec = None
    if flat.modules:
        desc = describe_model(root, flat, found.prefix)
        source = desc.source_format
        if loaded_by == "torchscript":
            source = "torchscript"
            notes.append("weights read from a TorchScript archive (torch.jit.save); its code was neither compiled nor run")
        config.update(desc.config)
        notes.extend(desc.notes)
        if isinstance(config.get("tie_weights"), bool) and found.is_lm and config["tie_weights"] != found.tied:
            notes.append(f"the model says tie_weights={config['tie_weights']} but the decoder and embedding "
                         f"{'are' if found.tied else 'are not'} equal")
        mts_spec = _reference_mts_spec(desc.model_class, found, notes)
    else:
        if fmt == "pickle":
            notes.append("read with the restricted unpickler (--format pickle)")
        source = "state-dict:lm" if (found.is_lm or found.style == "awd-lstm") else f"state-dict:{found.style}"
        config["arch"] = "awd-lstm" if found.style == "awd-lstm" else (
            found.kind + ("-cells" if found.style.endswith("Cell") else ""))
        if loaded_by in ("safetensors", "npz"):
            notes.append("read from a safetensors file" if loaded_by == "safetensors"
                         else "read from an .npz of arrays under PyTorch state-dict names")
    if found.is_lm:
        config["tie_weights"] = found.tied
    notes.extend(found.notes)
    notes.append(NO_VOCAB_NOTE)
    return LSTMStack(
        layers=found.layers,
        embedding=found.embedding,
        decoder_weight=found.decoder_weight,
        decoder_bias=found.decoder_bias,
        vocab=None,
        config=config,
        mts_spec=mts_spec,
        provenance=Provenance(source, path=str(p), sha256=sha, notes=notes),
    )


#: ``mode`` of a pickled ``torch.nn.modules.rnn`` module -> cell
_TORCH_MODES = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu"}


def _pickled_cell(flat, notes: list[str]):
    """The cell a pickled tree records: the ``mode`` of its torch recurrent modules (``nn.RNN`` keeps
    ``RNN_TANH``/``RNN_RELU`` there), else the model's ``rnn_type`` (pytorch/examples' RNNModel).
    None when nothing is recorded (shapes decide; a plain RNN is then assumed tanh)."""
    from ..cells import CellSpec

    modes = []
    for _, m in flat.modules:
        if not m.tsprobe_module.removeprefix("__torch__.").startswith("torch.nn.modules.rnn"):
            continue
        mode, nonlinearity = m.attributes.get("mode"), m.attributes.get("nonlinearity")
        if not isinstance(mode, str) and m.tsprobe_name in ("LSTM", "GRU"):  # TorchScript keeps no mode
            mode = m.tsprobe_name
        if not isinstance(mode, str) and m.tsprobe_name == "RNN" and nonlinearity in ("tanh", "relu"):
            mode = f"RNN_{nonlinearity}"
        if isinstance(mode, str) and mode.upper() in _TORCH_MODES:
            modes.append(mode.upper())
    modes = list(dict.fromkeys(modes))
    if len(modes) == 1:
        return CellSpec.from_mode(_TORCH_MODES[modes[0]])
    for _, m in flat.modules:
        rnn_type = m.attributes.get("rnn_type")
        if isinstance(rnn_type, str) and rnn_type.upper() in _TORCH_MODES:
            notes.append(f"cell from the model's rnn_type '{rnn_type}'")
            return CellSpec.from_mode(_TORCH_MODES[rnn_type.upper()])
    return None


def _reference_mts_spec(model_class: str | None, found, notes: list[str]) -> dict[str, Any] | None:
    """The reference's ``model_mts.RNNModel`` hard-codes the paper's LM spec; confirm it from the biases.

    On an odd layer-1 size the reference gives ``int(0.5*H)`` units T=3 and the rest T=4
    (``split='smaller-first'``, what :func:`paper_lm_spec` applies); tsprobe before this release split
    the other way (``larger-first``). Both are accepted; the spec recorded is the one the biases match.
    """
    if not model_class or not model_class.startswith("model_mts."):
        return None
    from dataclasses import replace

    from ..mts_specs import MTSSpec, paper_lm_spec

    sizes = [l.hidden_size for l in found.layers]
    reference = paper_lm_spec()
    other = MTSSpec(layers=(replace(reference.layers[0], split="larger-first"),) + reference.layers[1:],
                    name=reference.name, convention=reference.convention, bias_limit=reference.bias_limit)
    for spec in (reference, other) if sizes[0] % 2 else (reference,):
        if len(sizes) >= 2 and _biases_match(spec, found.layers, sizes):
            split = "" if not sizes[0] % 2 else (
                f"; layer 1 ({sizes[0]} units) split {sizes[0] // 2} x T=3 then {sizes[0] - sizes[0] // 2} x T=4 as the reference"
                if spec is reference else
                f"; layer 1 ({sizes[0]} units) split {sizes[0] - sizes[0] // 2} x T=3 then {sizes[0] // 2} x T=4 (larger block first)")
            notes.append("model_mts.RNNModel (reference multi-timescale model): layer 1-2 forget biases match the paper's "
                         f"LM spec (paper-lm){split}")
            return spec.to_dict()
    notes.append("class model_mts.RNNModel, but the forget biases do not match the paper's LM spec; no MTS spec recorded")
    return None


def _biases_match(spec, layers, sizes) -> bool:
    try:
        expected = spec.forget_biases(sizes)
    except Exception:  # noqa: BLE001 (sizes the spec cannot take: no match)
        return False
    for layer, b in zip(layers, expected):
        if b is None:
            continue
        got = layer.forget_bias.numpy()
        finite = np.abs(b) < spec.bias_limit
        if not np.allclose(got[finite], b[finite], atol=1e-3):
            return False
    return True
