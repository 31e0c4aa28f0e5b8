"""What a Keras file says about its recurrent layers' maths: cell, activations, options.

Read from the model config (parsed JSON data, never executed) of ``.keras`` archives and
``model.save`` HDF5 files, per layer name:

- classes ``LSTM``, ``GRU``, ``SimpleRNN`` (and ``RNN`` wrapping an ``LSTMCell``/``GRUCell``/
  ``SimpleRNNCell``), Keras 2's ``CuDNNLSTM``/``CuDNNGRU`` (sigmoid and tanh, two bias vectors:
  the same maths as ``LSTM`` and ``GRU(reset_after=True)``), each also inside ``Bidirectional``;
- ``recurrent_activation`` and ``activation``: ``"hard_sigmoid"`` means Keras 2's
  ``clip(0.2x + 0.5)`` in a file written by Keras 1/2 or tf.keras and Keras 3's ``clip(x/6 + 0.5)``
  in one written by Keras 3 (:mod:`timescale_probe.activations`); where a config leaves them out,
  the defaults of the writing version apply (Keras < 2.3: ``hard_sigmoid``);
- ``reset_after`` (GRU), ``use_bias`` (False: zero biases, noted), ``go_backwards`` (outside a
  ``Bidirectional`` refused: the layer reads time backwards), ``implementation`` (1 and 2 compute
  the same function: recorded only); ``unroll``, ``stateful``, ``time_major``, ``dropout`` ... do
  not change the function of a trained layer.

Activations outside :data:`~timescale_probe.activations.ACTIVATIONS` (a custom function, ``elu``,
``softsign`` ...) are refused by name with one line. Files without a config (weights only) get
the writing version's defaults, and the caller notes them as assumed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..activations import ACTIVATIONS, GATE_ACTIVATIONS
from ..cells import CellSpec
from ..errors import CheckpointError

RNN_CLASSES = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "rnn", "CuDNNLSTM": "lstm", "CuDNNGRU": "gru",
               "LSTMV1": "lstm", "GRUV1": "gru", "UnifiedLSTM": "lstm", "UnifiedGRU": "gru"}
CELL_CLASSES = {"LSTMCell": "lstm", "GRUCell": "gru", "SimpleRNNCell": "rnn", "LSTMCellV1": "lstm", "GRUCellV1": "gru"}


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """``"2.2.4-tf"`` -> ``(2, 2, 4)``; None when absent or unreadable."""
    if not text:
        return None
    parts = []
    for p in str(text).split("."):
        digits = "".join(c for c in p if c.isdigit()) if p[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None


def default_gate_activation(version: tuple[int, ...] | None) -> str:
    """The LSTM/GRU ``recurrent_activation`` default of a Keras version (hard_sigmoid before 2.3)."""
    if version is not None and version < (2, 3):
        return "hard_sigmoid_keras2"
    return "sigmoid"


def default_reset_after(version: tuple[int, ...] | None) -> bool:
    """The GRU ``reset_after`` default: False in Keras 1/2 (standalone) before tf.keras 2.x made it True."""
    return not (version is not None and version < (2, 3))


def activation_name(value: Any, version: tuple[int, ...] | None, where: str, gate: bool) -> str:
    """Our name for a config's activation value; one CheckpointError naming an unsupported one."""
    name = value
    if isinstance(value, dict):  # Keras 3 may serialise {"class_name": "function", "config": "tanh", ...}
        cfg = value.get("config")
        name = cfg if isinstance(cfg, str) else value.get("class_name")
    if not isinstance(name, str):
        raise CheckpointError(f"{where}: activation {value!r} is not a named Keras activation; tsprobe cannot compute it")
    if name == "hard_sigmoid":
        name = "hard_sigmoid_keras3" if version is not None and version >= (3,) else "hard_sigmoid_keras2"
    allowed = GATE_ACTIVATIONS if gate else ACTIVATIONS
    if name not in allowed:
        what = "recurrent_activation (gates)" if gate else "activation"
        raise CheckpointError(f"{where}: {what} '{name}' is not supported (tsprobe computes "
                              f"{', '.join(a.replace('_keras2', '').replace('_keras3', '') for a in dict.fromkeys(allowed))})")
    return name


@dataclass
class KerasRNN:
    """One recurrent layer as its config describes it."""

    name: str
    class_name: str
    cell: CellSpec
    use_bias: bool = True
    go_backwards: bool = False
    implementation: int | None = None
    recorded: bool = True                     # False: no config, the defaults were assumed
    notes: list[str] = field(default_factory=list)


def describe_rnn(class_name: str, cfg: dict[str, Any], version: tuple[int, ...] | None, name: str) -> KerasRNN:
    """A :class:`KerasRNN` from one layer config (``class_name`` one of :data:`RNN_CLASSES`)."""
    where = f"Keras layer '{name}' ({class_name})"
    kind = RNN_CLASSES[class_name]
    notes = []
    if class_name.startswith("CuDNN"):
        cell = CellSpec(kind)  # fixed sigmoid/tanh; GRU with reset_after (two bias vectors)
        notes.append(f"{where}: sigmoid gates and tanh (fixed by cuDNN); kernels converted from cuDNN's layout and "
                     "both bias vectors kept, as Keras's own loader converts them")
    else:
        act = activation_name(cfg.get("activation", "tanh"), version, where, gate=False)
        if kind == "rnn":
            cell = CellSpec("rnn", activation=act)
        else:
            if "recurrent_activation" in cfg:
                gate = activation_name(cfg["recurrent_activation"], version, where, gate=True)
            else:
                gate = default_gate_activation(version)
                notes.append(f"{where}: no recurrent_activation in the config; the writing version's default {gate}")
            reset_after = True
            if kind == "gru":
                reset_after = bool(cfg.get("reset_after", default_reset_after(version)))
            cell = CellSpec(kind, gate_activation=gate, activation=act, reset_after=reset_after)
    use_bias = bool(cfg.get("use_bias", True))
    if not use_bias:
        notes.append(f"{where}: use_bias=False, biases are zero")
    impl = cfg.get("implementation")
    return KerasRNN(name, class_name, cell, use_bias, bool(cfg.get("go_backwards", False)),
                    impl if isinstance(impl, int) else None, True, notes)


def rnn_layers_from_config(config: Any, version: tuple[int, ...] | None) -> dict[str, KerasRNN]:
    """Every recurrent layer of a parsed Keras config, by layer name. Inside a ``Bidirectional``
    named ``B``: ``B/forward`` and ``B/backward`` (the backward one reads time reversed)."""
    out: dict[str, KerasRNN] = {}

    def layer_of(node: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        cls, cfg = node.get("class_name"), node.get("config")
        if not isinstance(cls, str) or not isinstance(cfg, dict):
            return None, None
        if cls == "RNN" and isinstance(cfg.get("cell"), dict):
            inner = cfg["cell"]
            icls, icfg = inner.get("class_name"), inner.get("config")
            if icls in CELL_CLASSES and isinstance(icfg, dict):
                mapped = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}[CELL_CLASSES[icls]]
                return mapped, {**icfg, "go_backwards": cfg.get("go_backwards", False), "name": cfg.get("name")}
        return (cls, cfg) if cls in RNN_CLASSES else (None, None)

    def visit(node: Any, depth: int = 0) -> None:
        if depth > 64:
            return
        if isinstance(node, dict):
            cls, cfg = node.get("class_name"), node.get("config")
            if cls == "Bidirectional" and isinstance(cfg, dict):
                bname = cfg.get("name", node.get("name"))
                fwd = cfg.get("layer") if isinstance(cfg.get("layer"), dict) else None
                bwd = cfg.get("backward_layer") if isinstance(cfg.get("backward_layer"), dict) else fwd
                for direction, sub in (("forward", fwd), ("backward", bwd)):
                    if sub is None:
                        continue
                    scls, scfg = layer_of(sub)
                    if scls is not None:
                        out[f"{bname}/{direction}"] = describe_rnn(scls, scfg, version, f"{bname}/{direction}")
                return
            scls, scfg = layer_of(node)
            if scls is not None:
                name = scfg.get("name", node.get("name"))
                if isinstance(name, str):
                    out[name] = describe_rnn(scls, scfg, version, name)
                return
            for v in node.values():
                visit(v, depth + 1)
        elif isinstance(node, list):
            for v in node:
                visit(v, depth + 1)

    visit(config)
    return out


def assumed_rnn(kind: str, version: tuple[int, ...] | None, bias_shape: tuple[int, ...] | None,
                hidden_size: int, name: str, why: str) -> KerasRNN:
    """Defaults for a layer whose file records no config; ``why`` says which file kind this is.

    A GRU's ``reset_after`` is read from its bias shape where there is a bias (two rows: True)."""
    gate = default_gate_activation(version)
    reset_after = True
    note = f"{gate} gates, tanh candidates"
    if kind == "gru":
        if bias_shape is not None:
            reset_after = len(bias_shape) == 2 or (bias_shape == (6 * hidden_size,))
            note += f", reset_after={reset_after} (from the bias shape {bias_shape})"
        else:
            reset_after = default_reset_after(version)
            note += f", reset_after={reset_after} (the default)"
    if kind == "rnn":
        cell = CellSpec("rnn")
        note = "tanh (SimpleRNN's default activation)"
    elif bias_shape is not None and bias_shape == (2 * (4 if kind == "lstm" else 3) * hidden_size,):
        gate, note = "sigmoid", "two bias vectors: a CuDNN layer (sigmoid and tanh fixed), kernels converted from cuDNN's layout"
        cell = CellSpec(kind)
    else:
        cell = CellSpec(kind, gate_activation=gate, reset_after=reset_after)
    ver = ".".join(map(str, version)) if version else "unknown"
    reason = (" (Keras < 2.3's default recurrent_activation)" if gate != "sigmoid" else
              " (the default of Keras >= 2.3 and Keras 3)" if kind != "rnn" else "")
    msg = (f"{why}: layer '{name}' records no activations; assumed {note}{reason}, keras version {ver}; "
           "if it was built otherwise pass gate_activation= / activation= (--gate-activation)")
    return KerasRNN(name, kind.upper(), cell, recorded=False, notes=[msg])
