"""The maths of one recurrent cell: which gates it has, how they are computed, which one retains.

A :class:`CellSpec` names a cell and the activations it was saved with:

- ``kind``: ``lstm`` (PyTorch gate order i, f, g, o; ``c' = f*c + i*g``, ``h' = o*act(c')``),
  ``gru`` (order r, z, n; ``n = act(W_in x + b_in + r*(W_hn h + b_hn))``, ``h' = z*h + (1-z)*n``;
  with ``reset_after=False``, Keras's other GRU, ``n = act(W_in x + b_in + W_hn (r*h) + b_hn)``)
  or ``rnn`` (``h' = act(W_ih x + b_ih + W_hh h + b_hh)``);
- ``gate_activation``: the gates' squashing function (Keras's ``recurrent_activation``);
- ``activation``: the candidate / cell-output function (LSTM, GRU) or the unit's (RNN).

The activations are named in :mod:`timescale_probe.activations` (each checked there against its
framework's own source).

The retention gate (the one whose value multiplies the previous state: LSTM ``f``, GRU ``z``) is
what memory timescales are read from; a plain RNN has none. :meth:`CellSpec.is_fused` says whether
PyTorch's fused ``nn.LSTM``/``nn.GRU``/``nn.RNN`` computes the cell exactly; :class:`StepRecurrent`
computes any spec step by step (same parameter names and call signature as the fused modules).

For hooks and gate extraction (:mod:`timescale_probe.runner`): :func:`gate_values` turns a step's
input projection (``W_ih x + b_ih``) and previous state into the named gates;
:meth:`CellSpec.gate_rows` gives the rows of a weight matrix that feed one gate, so that the
retention gate alone can be computed for a whole window with one matmul.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .activations import ACTIVATIONS, GATE_ACTIVATIONS, activate, check_activation  # noqa: F401 (re-exported)
from .errors import CheckpointError, OptionError

CELL_KINDS = ("lstm", "gru", "rnn")
GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ("h",)}
RETENTION_GATE = {"lstm": "f", "gru": "z", "rnn": None}
NO_RETENTION_GATE = ("a plain RNN has no forget or update gate, so it has no timescales from biases or gates; "
                     "measure its units' timescales from their activity: `tsprobe activity-timescales`")


@dataclass(frozen=True)
class CellSpec:
    """One recurrent cell type with its saved activations (see the module docstring)."""

    kind: str = "lstm"
    gate_activation: str = "sigmoid"
    activation: str = "tanh"
    reset_after: bool = True

    def __post_init__(self) -> None:
        if self.kind not in CELL_KINDS:
            raise OptionError(f"unknown cell '{self.kind}': use one of {', '.join(CELL_KINDS)}", param="cell")
        check_activation(self.gate_activation, "gate_activation", GATE_ACTIVATIONS)
        check_activation(self.activation, "activation")
        if self.kind != "gru" and not self.reset_after:
            raise OptionError("reset_after applies to GRUs only", param="reset_after")

    # -- names -----------------------------------------------------------------------------
    @property
    def gates(self) -> tuple[str, ...]:
        return GATES[self.kind]

    @property
    def n_gates(self) -> int:
        return len(self.gates)

    @property
    def retention_gate(self) -> str | None:
        """``f`` (LSTM), ``z`` (GRU) or None (plain RNN)."""
        return RETENTION_GATE[self.kind]

    @property
    def has_cell_state(self) -> bool:
        return self.kind == "lstm"

    @property
    def name(self) -> str:
        """``lstm``, ``gru``, ``rnn_tanh``, ``rnn_relu`` (PyTorch's modes), with the activations
        in brackets where they are not the standard ones, e.g. ``lstm(gate=hard_sigmoid_keras2)``."""
        if self.kind == "rnn":
            base = f"rnn_{self.activation}"
            return base if self.activation in ("tanh", "relu") else "rnn" + f"(activation={self.activation})"
        extra = []
        if self.gate_activation != "sigmoid":
            extra.append(f"gate={self.gate_activation}")
        if self.activation != "tanh":
            extra.append(f"activation={self.activation}")
        if not self.reset_after:
            extra.append("reset_after=False")
        return self.kind + (f"({', '.join(extra)})" if extra else "")

    @property
    def is_fused(self) -> bool:
        """True where PyTorch's fused module computes this cell exactly."""
        if self.kind == "rnn":
            return self.activation in ("tanh", "relu")
        return self.gate_activation == "sigmoid" and self.activation == "tanh" and self.reset_after

    @property
    def is_standard_lstm(self) -> bool:
        return self.kind == "lstm" and self.is_fused

    def gate_rows(self, gate: str, hidden_size: int) -> slice:
        """Rows of ``weight_ih``/``weight_hh``/biases (``n_gates * H`` rows) that feed ``gate``."""
        try:
            k = self.gates.index(gate)
        except ValueError:
            raise OptionError(f"a {self.kind} cell has no gate '{gate}' (its gates: {', '.join(self.gates)})",
                              param="gate") from None
        return slice(k * hidden_size, (k + 1) * hidden_size)

    def retention_rows(self, hidden_size: int) -> slice:
        if self.retention_gate is None:
            raise CheckpointError(NO_RETENTION_GATE)
        return self.gate_rows(self.retention_gate, hidden_size)

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "CellSpec":
        if not d:
            return cls()
        known = {"kind", "gate_activation", "activation", "reset_after"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise CheckpointError(f"unknown cell field(s) {', '.join(unknown)} in the checkpoint; upgrade tsprobe")
        return cls(**{k: d[k] for k in known if k in d})

    @classmethod
    def from_mode(cls, mode: str, **kw: Any) -> "CellSpec":
        """From PyTorch's mode names (``LSTM``, ``GRU``, ``RNN_TANH``, ``RNN_RELU``, any case)."""
        m = str(mode).strip().lower()
        if m in ("lstm", "gru"):
            return cls(m, **kw)
        if m in ("rnn_tanh", "rnn", "rnn_relu"):
            return cls("rnn", activation="relu" if m == "rnn_relu" else "tanh", **kw)
        raise OptionError(f"unknown cell '{mode}': use one of lstm, gru, rnn_tanh, rnn_relu", param="cell")


LSTM = CellSpec()


# ----------------------------------------------------------------------------------------------
# one step of a cell
# ----------------------------------------------------------------------------------------------

def gate_values(cell: CellSpec, x_proj: torch.Tensor, h_prev: torch.Tensor, weight_hh: torch.Tensor,
                bias_hh: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The named gates of one step, ``(..., H)`` each, after their activations.

    ``x_proj = W_ih x + b_ih`` (``(..., n_gates*H)``, the input part, which can be computed for a
    whole window at once), ``h_prev`` the previous hidden state. LSTM: ``i, f, g, o``; GRU:
    ``r, z, n``; RNN: ``h`` (the new state itself).
    """
    H = h_prev.shape[-1]
    if cell.kind == "gru" and not cell.reset_after:
        w_rz, w_n = weight_hh[: 2 * H], weight_hh[2 * H:]
        rz = x_proj[..., : 2 * H] + h_prev @ w_rz.T
        if bias_hh is not None:
            rz = rz + bias_hh[: 2 * H]
        r = activate(cell.gate_activation, rz[..., :H])
        z = activate(cell.gate_activation, rz[..., H:])
        n_pre = x_proj[..., 2 * H:] + (r * h_prev) @ w_n.T
        if bias_hh is not None:
            n_pre = n_pre + bias_hh[2 * H:]
        return {"r": r, "z": z, "n": activate(cell.activation, n_pre)}
    h_proj = h_prev @ weight_hh.T
    if bias_hh is not None:
        h_proj = h_proj + bias_hh
    if cell.kind == "lstm":
        pre = x_proj + h_proj
        i, f, g, o = pre.split(H, dim=-1)
        ga = cell.gate_activation
        return {"i": activate(ga, i), "f": activate(ga, f), "g": activate(cell.activation, g), "o": activate(ga, o)}
    if cell.kind == "gru":
        xr, xz, xn = x_proj.split(H, dim=-1)
        hr, hz, hn = h_proj.split(H, dim=-1)
        r = activate(cell.gate_activation, xr + hr)
        z = activate(cell.gate_activation, xz + hz)
        return {"r": r, "z": z, "n": activate(cell.activation, xn + r * hn)}
    return {"h": activate(cell.activation, x_proj + h_proj)}


def next_state(cell: CellSpec, gates: dict[str, torch.Tensor], h_prev: torch.Tensor,
               c_prev: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(h, c)`` after one step from the gates of :func:`gate_values` (``c`` is None but for LSTMs)."""
    if cell.kind == "lstm":
        c = gates["f"] * c_prev + gates["i"] * gates["g"]
        return gates["o"] * activate(cell.activation, c), c
    if cell.kind == "gru":
        z = gates["z"]
        return z * h_prev + (1.0 - z) * gates["n"], None
    return gates["h"], None


class StepRecurrent(nn.Module):
    """One recurrent layer of any :class:`CellSpec`, computed step by step.

    Parameters and call signature match a single-layer, unidirectional ``nn.LSTM``/``nn.GRU``/
    ``nn.RNN`` (``weight_ih_l0 (G*H, I)``, ``weight_hh_l0 (G*H, H)``, ``bias_ih_l0``,
    ``bias_hh_l0``; ``forward(x (T, B, I), hx) -> (out (T, B, H), hx)`` with ``hx = (h, c)`` for
    LSTMs and ``h`` otherwise, each ``(1, B, H)``). The input projection of the whole sequence is
    one matmul; only the recurrent part loops over time. Used where the fused modules would compute
    a different function (hard sigmoids, other activations, Keras's ``reset_after=False`` GRU).
    """

    def __init__(self, input_size: int, hidden_size: int, cell: CellSpec) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.cell = input_size, hidden_size, cell
        G = cell.n_gates
        self.weight_ih_l0 = nn.Parameter(torch.empty(G * hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(G * hidden_size, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(G * hidden_size))
        self.bias_hh_l0 = nn.Parameter(torch.empty(G * hidden_size))
        bound = 1.0 / hidden_size ** 0.5  # PyTorch's default initialisation of its recurrent modules
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, cell={self.cell.name}"

    def forward(self, x: torch.Tensor, hx: Any = None, weight_hh: torch.Tensor | None = None):
        T, B = x.shape[0], x.shape[1]
        H = self.hidden_size
        if hx is None:
            zeros = x.new_zeros(1, B, H)
            hx = (zeros, zeros) if self.cell.has_cell_state else zeros
        h, c = (hx[0][0], hx[1][0]) if self.cell.has_cell_state else (hx[0], None)
        w_hh = self.weight_hh_l0 if weight_hh is None else weight_hh
        x_proj = torch.addmm(self.bias_ih_l0, x.reshape(T * B, -1), self.weight_ih_l0.T).view(T, B, -1)
        outs = []
        for t in range(T):
            gates = gate_values(self.cell, x_proj[t], h, w_hh, self.bias_hh_l0)
            h, c = next_state(self.cell, gates, h, c)
            outs.append(h)
        out = torch.stack(outs) if outs else x.new_zeros(0, B, H)
        state = (h.unsqueeze(0), c.unsqueeze(0)) if self.cell.has_cell_state else h.unsqueeze(0)
        return out, state


def fused_module(input_size: int, hidden_size: int, cell: CellSpec) -> nn.Module:
    """The fused single-layer PyTorch module that computes ``cell`` exactly (``cell.is_fused``)."""
    if not cell.is_fused:
        raise OptionError(f"no fused PyTorch module computes a {cell.name} cell", param="cell")
    if cell.kind == "lstm":
        return nn.LSTM(input_size, hidden_size)
    if cell.kind == "gru":
        return nn.GRU(input_size, hidden_size)
    return nn.RNN(input_size, hidden_size, nonlinearity=cell.activation)


def recurrent_module(input_size: int, hidden_size: int, cell: CellSpec) -> nn.Module:
    """A fused module where it is exact, else a :class:`StepRecurrent`."""
    return fused_module(input_size, hidden_size, cell) if cell.is_fused else StepRecurrent(input_size, hidden_size, cell)


def block_gates(cell: CellSpec, module: nn.Module, x: torch.Tensor, out: torch.Tensor, state0: Any,
                names: set[str], offsets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Gates of a whole block of steps of a GRU (or plain RNN: none) layer, for the stream runner.

    ``x (S, B, I)`` is the layer's input, ``out (S, B, H)`` the outputs the layer returned, ``state0``
    the state it started from (None: zeros). The previous states are ``[h0, out[:-1]]``, so every
    gate of every step comes from a few matmuls over the block. ``offsets (B, n_gates*H)`` are
    constant pre-activation offsets on the input side (as the runner's extra input channel adds
    them). Returns the gates asked for by ``names`` (``r``, ``z``, ``n``) and, with ``z``,
    ``z_comp = 1 - z`` computed as ``act(-pre)`` (exact near 1 for symmetric gate activations).
    """
    if cell.kind == "rnn":
        return {}
    if cell.kind != "gru":
        raise OptionError(f"block_gates computes GRU gates; the runner computes {cell.kind} gates itself", param="cell")
    S, B, _ = x.shape
    H = module.hidden_size
    h0 = x.new_zeros(1, B, H) if state0 is None else (state0[0] if isinstance(state0, tuple) else state0).reshape(1, B, H)
    h_prev = torch.cat([h0, out[:-1]], dim=0)
    w_ih, w_hh = module.weight_ih_l0, module.weight_hh_l0
    b_ih = getattr(module, "bias_ih_l0", None)
    b_hh = getattr(module, "bias_hh_l0", None)
    gi = x @ w_ih.t()
    if b_ih is not None:
        gi = gi + b_ih
    if offsets is not None:
        gi = gi + offsets
    ga = cell.gate_activation
    rz_h = h_prev @ w_hh[: 2 * H].t()
    if b_hh is not None:
        rz_h = rz_h + b_hh[: 2 * H]
    pre_r = gi[..., :H] + rz_h[..., :H]
    pre_z = gi[..., H:2 * H] + rz_h[..., H:]
    values: dict[str, torch.Tensor] = {}
    r = activate(ga, pre_r)
    if "r" in names:
        values["r"] = r
    if "z" in names:
        values["z"] = activate(ga, pre_z)
        values["z_comp"] = activate(ga, -pre_z)
    if "n" in names:
        if cell.reset_after:
            hn = h_prev @ w_hh[2 * H:].t() + (b_hh[2 * H:] if b_hh is not None else 0.0)
            pre_n = gi[..., 2 * H:] + r * hn
        else:
            pre_n = gi[..., 2 * H:] + (r * h_prev) @ w_hh[2 * H:].t() + (b_hh[2 * H:] if b_hh is not None else 0.0)
        values["n"] = activate(cell.activation, pre_n)
    return values
