"""One stream runner: a recurrent language model (or a bare recurrent stack) over a token stream,
the hidden state carried from window to window, with named hook points to read and intervene.

Evaluation (token NLL), ablation (units silenced or their outputs masked) and gate extraction
(timescales from data) are all hooks on :func:`run_stream`; nothing else loops over windows.

API::

    run = run_stream(model, tokens, hooks=[...], batch_size=1, window=70, copies=1, nll=True)
    run.nll        # (n_steps, copies * batch_size) float64 NLL of every target, or None
    run.targets    # (n_steps, batch_size) int64 target ids (token models)
    run.states     # each layer's final state

    g = collect("gates", layer=2, gates="ifgo")   # a hook that keeps what it sees
    run_stream(model, tokens, [g, mask_output(1, mask)]); g.stacked()["f"]   # (n_steps, 1, H)

``model``: a language model with ``encoder`` (embedding), recurrent layers (``lstm_layers()`` or
``rnns``) and ``decoder``, run in eval mode (no dropout; its training flag is restored after);
or a bare stack (:class:`~timescale_probe.stack.LSTMStack`, a list of layers or ``nn.LSTM``)
fed with embedded inputs ``(N, I)`` or ``(N, B, I)``. Token streams are cut into ``batch_size``
contiguous streams (AWD ``batchify``); the inputs are ``data[:-1]``, the targets ``data[1:]``;
a bare stack's inputs are all ``N`` steps. The stream is read in windows of ``window`` steps
with the state carried; ``block_tokens`` groups whole windows into one fused call per layer
(steps x streams per call; default: one window per call). Hooks see whole blocks and the window
boundaries in :class:`Block`.

Hook points (layers numbered from 1), in the order they fire for each block:

=========  ===========================================================  ==============
``input``  embedded input of layer 1, ``(S, B, I)``                     read / replace
``gates``  per layer: dict of gate activations ``(S, B, H)`` by name    read; write by
           (LSTM ``i f g o``), plus ``<retention>_comp`` = 1 - the      constant
           retention gate, computed as ``act(-z)`` (exact near 1)        offsets (bias)
``cell``   per layer: cell states ``c_t`` ``(S, B, H)`` (LSTM)          read
``hidden`` per layer: the layer's outputs ``h_t`` (what its own          read
           recurrence sees)
``output`` per layer: its output where it enters the next layer or the   read / replace
           decoder
``logits`` decoder output ``(S, B, V)``                                  read / replace
=========  ===========================================================  ==============

A hook is a :class:`Hook` (point, layer or None for every layer, ``fn(value, block)``); ``fn``
returning a tensor replaces the value where that is allowed. Gates are not part of the fused
kernel's output: they are computed after it, for the whole block at once, from the layer's input
and the outputs the kernel returns (``z = W_ih x_t + W_hh h_{t-1} + b``, one matmul per gate asked
for: ``gates="f"`` costs a quarter of ``"ifgo"``); cell states by a parallel scan. Interventions
on gates are constant pre-activation offsets per copy (:func:`gate_bias`, :func:`silence`),
added inside the fused kernel through one extra input channel per copy, so the recurrence sees
them. :func:`mask_output` replaces a layer's output; :func:`collect` keeps what a point sees.

``copies``: the streams run as ``copies`` side-by-side copies (batch index ``copy * batch_size +
stream``), each with its own interventions (e.g. one ablated group per copy). Copies are identical
up to the first write hook, so the layers before it run once, at ``batch_size`` streams; tensors
seen there have ``batch_size`` streams, after it ``copies * batch_size`` (``Block.expanded``).

Per cell type, the maths the runner needs (gate names, the retention gate, how gates come from
pre-activations, cell states, which gate silences a unit) is one :class:`CellMaths` entry in
:data:`CELL_MATHS`; a layer module names its kind by its class (``nn.LSTM``) or a ``cell``
attribute with ``kind`` and activations.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import OptionError
from .progress import ProgressLike, progress_bar
from .stack import LSTMLayer, LSTMStack
from .validation import check_int

POINTS = ("input", "gates", "cell", "hidden", "output", "logits")
WRITABLE = ("input", "output", "logits")
LAYER_POINTS = ("gates", "cell", "hidden", "output")

# ----------------------------------------------------------------------------------------------
# hooks
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """Where a hook is called: ``start`` (first input step of the block in each stream),
    ``windows`` (``(start, length)`` of the windows in the block, relative to ``start``),
    ``layer`` (from 1; None at ``input``/``logits``), ``expanded`` (the batch holds the copies)."""

    start: int
    windows: tuple[tuple[int, int], ...]
    layer: int | None
    expanded: bool
    cell: "CellMaths | None" = None


@dataclass(frozen=True, eq=False)  # hooks compare by identity (two collectors are two hooks)
class Hook:
    """``fn(value, block)`` at ``point`` of ``layer`` (None: every layer). For ``gates``,
    ``gates`` names the gates to compute (``"f"``, ``"ifgo"``; ``""``: the retention gate) and
    ``bias`` (instead of ``fn``) is a write: pre-activation offsets ``(copies, n_gates*H)`` or
    ``(n_gates*H,)`` added inside the fused kernel. ``store`` keeps what :func:`collect` saw."""

    point: str
    fn: Callable[[Any, Block], Any] | None = None
    layer: int | None = None
    gates: str = ""
    bias: torch.Tensor | None = None
    store: list = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.point not in POINTS:
            raise OptionError(f"unknown hook point '{self.point}': use one of {', '.join(POINTS)}", param="hooks")
        if (self.fn is None) == (self.bias is None):
            raise OptionError("a hook needs exactly one of fn or bias", param="hooks")
        if self.bias is not None and (self.point != "gates" or self.layer is None):
            raise OptionError("bias hooks act on the gates of one layer: Hook('gates', layer=k, bias=...)",
                              param="hooks")
        if self.layer is not None and (self.point not in LAYER_POINTS or int(self.layer) < 1):
            raise OptionError(f"hook point '{self.point}' takes no layer" if self.point not in LAYER_POINTS
                              else f"layers are numbered from 1 (got {self.layer})", param="hooks")

    def stacked(self) -> Any:
        """What :func:`collect` kept, concatenated along time (a dict of tensors for ``gates``)."""
        if not self.store:
            return None
        if isinstance(self.store[0], dict):
            return {k: torch.cat([s[k] for s in self.store]) for k in self.store[0]}
        return torch.cat(self.store)


def collect(point: str, layer: int | None = None, gates: str = "") -> Hook:
    """A hook that keeps (on the CPU) every block it sees at ``point`` (of ``layer``, required at
    layer points); read with ``hook.stacked()``."""
    if point in LAYER_POINTS and layer is None:
        raise OptionError(f"collect('{point}') needs a layer", param="hooks")

    def keep(value, block):
        v = {k: t.detach().cpu() for k, t in value.items()} if isinstance(value, dict) else value.detach().cpu()
        hook.store.append(v)

    hook = Hook(point, keep, layer=layer, gates=gates)
    return hook


def mask_output(layer: int, mask: torch.Tensor) -> Hook:
    """Layer ``layer``'s output times ``mask`` (``(H,)``, or ``(copies, H)``: one mask per copy)
    where it enters the next layer or the decoder; its own recurrence still sees it unmasked."""
    mask = torch.as_tensor(mask)
    cache: dict[tuple, torch.Tensor] = {}

    def apply(out, block):
        key = (out.device, out.dtype, out.shape[1])
        if key not in cache:
            m = mask.to(device=out.device, dtype=out.dtype)
            if m.dim() == 2 and m.shape[0] != out.shape[1]:
                m = m.repeat_interleave(out.shape[1] // m.shape[0], dim=0)
            cache[key] = m
        return out * cache[key]

    return Hook("output", apply, layer=layer)


def gate_bias(layer: int, offsets: torch.Tensor) -> Hook:
    """Constant pre-activation offsets of layer ``layer``'s gates: ``(n_gates*H,)`` for all
    copies or ``(copies, n_gates*H)`` (rows in the weights' gate order)."""
    return Hook("gates", layer=layer, bias=torch.as_tensor(offsets))


def silence(layer: int, unit_sets: Sequence[Any], hidden_size: int, kind: str = "lstm") -> Hook:
    """Units of ``layer`` silenced per copy (``unit_sets[c]``; None or empty: intact): their output
    is exactly 0, into the next layer and their own recurrence (LSTM: output-gate pre-activation
    ``-1e4``, so ``o = 0`` and ``h = o tanh(c) = 0``; Lakretz et al. 2019)."""
    maths = CELL_MATHS[kind]
    if maths.silence is None:
        raise OptionError(f"units of a {kind} cell cannot be silenced through a gate", param="mode")
    gate, value = maths.silence
    k = maths.gate_names.index(gate)
    offsets = torch.zeros(len(unit_sets), len(maths.gate_names) * hidden_size)
    for c, units in enumerate(unit_sets):
        if units is not None and len(units):
            offsets[c, k * hidden_size + torch.as_tensor(np.asarray(units, dtype=np.int64))] = value
    return gate_bias(layer, offsets)


# ----------------------------------------------------------------------------------------------
# cell maths (one entry per cell type)
# ----------------------------------------------------------------------------------------------


def linear_scan(a: torch.Tensor, u: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """All states of ``x_t = a_t * x_{t-1} + u_t`` (t = 1..S along dim 0) from ``x0``, by a
    Hillis-Steele prefix scan: ``ceil(log2 S)`` elementwise steps, no loop over time steps.
    Products of ``a`` only shrink when ``|a| <= 1`` (forget gates), so nothing overflows."""
    A, U = a, u
    S = a.shape[0]
    d = 1
    while d < S:
        U = torch.cat([U[:d], A[d:] * U[:-d] + U[d:]], dim=0)
        A = torch.cat([A[:d], A[d:] * A[:-d]], dim=0)
        d *= 2
    return A * x0.unsqueeze(0) + U


def _lstm_gates(mod: nn.Module, x: torch.Tensor, out: torch.Tensor, state0: Any, names: set[str],
                offsets: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """LSTM gates of a block from the layer's input ``x``, its outputs ``out`` and the state it
    started from: ``z = x W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh (+ offsets)`` per gate asked for."""
    S, B, _ = x.shape
    H = mod.hidden_size
    h0 = x.new_zeros(1, B, H) if state0 is None else state0[0].reshape(1, B, H)
    h_prev = torch.cat([h0, out[:-1]], dim=0)
    w_ih, w_hh = mod.weight_ih_l0, mod.weight_hh_l0
    b = mod.bias_ih_l0 + mod.bias_hh_l0 if getattr(mod, "bias", True) else w_ih.new_zeros(4 * H)
    x2, h2 = x.reshape(S * B, -1), h_prev.reshape(S * B, H)
    gate_act, act = _activations(mod)
    values: dict[str, torch.Tensor] = {}
    for k, name in enumerate(LSTM_MATHS.gate_names):
        if name not in names:
            continue
        rows = slice(k * H, (k + 1) * H)
        z = torch.addmm(b[rows], x2, w_ih[rows].t())
        z.addmm_(h2, w_hh[rows].t())
        z = z.view(S, B, H)
        if offsets is not None:
            z = z + offsets[:, rows]
        values[name] = act(z) if name == "g" else gate_act(z)
        if name == "f":
            values["f_comp"] = gate_act(-z)
    return values


def _lstm_cells(values: dict[str, torch.Tensor], state0: Any) -> torch.Tensor:
    f, i, g = values["f"], values["i"], values["g"]
    S, B, H = f.shape
    c0 = f.new_zeros(B, H) if state0 is None else state0[1].reshape(B, H)
    dt = torch.float64
    return linear_scan(f.to(dt), (i * g).to(dt), c0.to(dt)).to(f.dtype)


def _activations(mod: nn.Module) -> tuple[Callable, Callable]:
    """(gate activation, cell activation) of a layer: PyTorch's fused modules use sigmoid and tanh;
    other modules say theirs in ``mod.cell`` (``gate_activation``, ``activation``)."""
    cell = getattr(mod, "cell", None)
    if cell is None:
        return torch.sigmoid, torch.tanh
    from .cells import activate

    return (lambda z: activate(cell.gate_activation, z)), (lambda z: activate(cell.activation, z))


@dataclass(frozen=True)
class CellMaths:
    """What the runner needs to know about one cell type: its gates (row blocks of the weights,
    in order), the retention gate (whose mean gives a timescale), the gate and pre-activation
    offset that make a unit's output exactly 0 (None: not possible), ``gates(module, x, out,
    state0, names, offsets) -> {name: (S, B, H)}`` and ``cells(values, state0)`` (None: no cell
    state), with the gates ``cells`` needs."""

    kind: str
    gate_names: tuple[str, ...]
    retention: str | None
    silence: tuple[str, float] | None
    gates: Callable[..., dict[str, torch.Tensor]]
    cells: Callable[..., torch.Tensor] | None = None
    cell_needs: str = ""

    def wanted(self, gates: str) -> set[str]:
        """Gate names for a hook's ``gates`` string (``""``: the retention gate; ``"all"``: every gate)."""
        if not self.gate_names:
            from .cells import NO_RETENTION_GATE

            raise OptionError(NO_RETENTION_GATE, param="hooks")
        names = set(self.gate_names) if gates == "all" else set(gates)
        unknown = names - set(self.gate_names)
        if unknown:
            raise OptionError(f"a {self.kind} cell has no gate {sorted(unknown)[0]!r} "
                              f"(its gates: {', '.join(self.gate_names)})", param="hooks")
        return names | ({self.retention} if self.retention else set())


LSTM_MATHS = CellMaths("lstm", ("i", "f", "g", "o"), "f", ("o", -1.0e4), _lstm_gates, _lstm_cells, "ifg")

def _gru_gates(mod: nn.Module, x: torch.Tensor, out: torch.Tensor, state0: Any, names: set[str],
               offsets: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """GRU gates of a block (r, z, n and ``z_comp``): :func:`timescale_probe.cells.block_gates`."""
    from .cells import CellSpec, block_gates

    return block_gates(getattr(mod, "cell", None) or CellSpec("gru"), mod, x, out, state0, names, offsets)


#: A GRU's output cannot be zeroed through one gate (h = z h_prev + (1-z) n): ablate it by output masks.
GRU_MATHS = CellMaths("gru", ("r", "z", "n"), "z", None, _gru_gates)
#: A plain RNN has no gates (asking for them is one error naming activity-timescales).
RNN_MATHS = CellMaths("rnn", (), None, None, lambda *args: {})

#: Cell maths by kind; other cell types add their entry here.
CELL_MATHS: dict[str, CellMaths] = {"lstm": LSTM_MATHS, "gru": GRU_MATHS, "rnn": RNN_MATHS}


def cell_maths(module: nn.Module) -> CellMaths:
    """The :class:`CellMaths` of a layer module (``nn.LSTM``, or a module with ``cell.kind``)."""
    if isinstance(module, nn.LSTM):
        kind = "lstm"
    else:
        kind = getattr(getattr(module, "cell", None), "kind", None) or type(module).__name__.lower()
    if kind not in CELL_MATHS:
        raise OptionError(f"the stream runner has no maths for {kind} layers (known: {', '.join(CELL_MATHS)})")
    return CELL_MATHS[kind]


# ----------------------------------------------------------------------------------------------
# what runs: embedding -> layers -> decoder
# ----------------------------------------------------------------------------------------------


def split_lstm(lstm: nn.LSTM) -> list[nn.LSTM]:
    """Single-layer ``nn.LSTM`` modules sharing the weights of a multi-layer ``nn.LSTM``."""
    if lstm.bidirectional or getattr(lstm, "proj_size", 0):
        raise OptionError("bidirectional or projected LSTMs are not supported")
    if not lstm.batch_first and lstm.num_layers == 1:
        return [lstm]
    out = []
    for k in range(lstm.num_layers):
        w_ih = getattr(lstm, f"weight_ih_l{k}")
        m = nn.LSTM(w_ih.shape[1], lstm.hidden_size, 1, bias=lstm.bias)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            if hasattr(lstm, f"{name}_l{k}"):
                setattr(m, f"{name}_l0", getattr(lstm, f"{name}_l{k}"))
        out.append(m.to(w_ih.device))
    return out


def lstm_from_layer(layer: LSTMLayer, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> nn.Module:
    """A single-layer module holding the weights of a stack layer (in eval mode): PyTorch's fused
    module where it computes the layer's cell exactly, else a :class:`~timescale_probe.cells.StepRecurrent`."""
    from .cells import recurrent_module

    m = recurrent_module(layer.input_size, layer.hidden_size, layer.cell)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(m, f"{name}_l0").copy_(getattr(layer, name))
    return m.to(device=device, dtype=dtype).eval().requires_grad_(False)


def as_lstm_modules(layers: Any, device: Any = None, dtype: torch.dtype = torch.float32) -> list[nn.LSTM]:
    """A stack as single-layer ``nn.LSTM`` modules: accepts an :class:`LSTMStack`, a list of
    :class:`LSTMLayer` or ``nn.LSTM`` modules, or one (multi-layer) ``nn.LSTM``."""
    if isinstance(layers, LSTMStack):
        layers = layers.layers
    if isinstance(layers, nn.LSTM):
        layers = [layers]
    mods: list[nn.LSTM] = []
    for layer in layers:
        if isinstance(layer, LSTMLayer):
            mods.append(lstm_from_layer(layer, device or "cpu", dtype))
        elif isinstance(layer, nn.LSTM):
            mods.extend(split_lstm(layer))
        elif isinstance(getattr(layer, "weight_hh_l0", None), torch.Tensor) and not hasattr(layer, "weight_hh_l1"):
            mods.append(layer)  # a single-layer nn.GRU / nn.RNN / StepRecurrent
        else:
            raise OptionError(f"cannot run a {type(layer).__name__}: expected nn.LSTM or LSTMLayer")
    return mods


def model_layers(model: Any) -> list[nn.Module]:
    """The recurrent layers of a language model (single-layer modules, first layer first)."""
    if hasattr(model, "lstm_layers"):
        return list(model.lstm_layers())
    if hasattr(model, "rnns"):
        return [getattr(r, "module", r) for r in model.rnns]
    raise OptionError(f"{type(model).__name__} has no recurrent layers to run")


def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """AWD-LSTM batching: a stream ``(N, ...)`` becomes ``(N // batch_size, batch_size, ...)`` where
    column ``b`` is the ``b``-th consecutive piece of ``stream`` (the remainder is dropped). Token-id
    streams give ``(N // B, B)``; embedded inputs ``(N, I)`` give ``(N // B, B, I)``."""
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    n = stream.shape[0] // batch_size
    if n < 2:
        raise OptionError(f"a stream of {stream.shape[0]} tokens is too short for batch_size {batch_size}",
                          param="batch_size")
    return stream[: n * batch_size].reshape(batch_size, n, *stream.shape[1:]).transpose(0, 1).contiguous()


def iter_windows(n_steps: int, window: int) -> list[tuple[int, int]]:
    """``(start, length)`` of consecutive windows over ``n_steps`` inputs (last one may be short)."""
    window = check_int(window, "window", minimum=1)
    return [(s, min(window, n_steps - s)) for s in range(0, n_steps, window)]


@dataclass
class StreamRun:
    """What :func:`run_stream` returns: ``nll`` ``(n_steps, copies * streams)`` float64 (CPU) when
    asked for, ``targets`` ``(n_steps, streams)`` int64 (token models), each layer's final state
    ``states``, and the sizes."""

    n_steps: int
    streams: int
    copies: int
    nll: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    states: list[Any] = field(default_factory=list)

    def nll_by_copy(self) -> np.ndarray:
        """``(copies, streams * n_steps)``: each copy's NLL, stream after stream (stream order)."""
        return self.nll.view(self.n_steps, self.copies, self.streams).permute(1, 2, 0).reshape(self.copies, -1).numpy()


def _expand(t: torch.Tensor, copies: int) -> torch.Tensor:
    """``(S, B, ...)`` -> ``(S, copies * B, ...)``, copy-major (a view when ``B == 1``)."""
    if copies == 1:
        return t
    S, B = t.shape[0], t.shape[1]
    if B == 1:
        return t.expand(S, copies, *t.shape[2:])
    return t.unsqueeze(1).expand(S, copies, *t.shape[1:]).reshape(S, copies * B, *t.shape[2:])


def _biased(mod: nn.Module, offsets: torch.Tensor) -> nn.Module:
    """A copy of ``mod`` with one extra input channel per row of ``offsets`` ``(C, G*H)`` whose
    input weights are those offsets: fed a one-hot copy indicator, each copy gets its own bias."""
    out = copy.deepcopy(mod)
    w = mod.weight_ih_l0.detach()
    out.weight_ih_l0 = nn.Parameter(torch.cat([w, offsets.to(w).t()], dim=1), requires_grad=False)
    out.input_size = mod.input_size + offsets.shape[0]
    return out.eval()


def _is_language_model(model: Any) -> bool:
    return all(hasattr(model, a) for a in ("encoder", "decoder")) and (hasattr(model, "lstm_layers")
                                                                       or hasattr(model, "rnns"))


def _fire(hooks: Sequence[Hook], value: Any, block: Block, point: str) -> Any:
    for h in hooks:
        new = h.fn(value, block)
        if new is not None:
            if point not in WRITABLE:
                raise OptionError(f"hooks at '{point}' only read (write to gates with a bias hook)", param="hooks")
            value = new
    return value


def _layer_plan(hooks: Sequence[Hook], n_layers: int, copies: int, sizes: list[tuple[int, int]],
                device: torch.device, dtype: torch.dtype) -> tuple[dict, dict[int, torch.Tensor], int]:
    """Hooks per (point, layer); summed gate offsets ``(copies, G*H)`` per layer; the position at
    which copies diverge (0: input, 2k-1: layer k's input, 2k: layer k's output, 2L+1: decoder)."""
    by: dict[tuple[str, int | None], list[Hook]] = {}
    biases: dict[int, torch.Tensor] = {}
    diverge = 2 * n_layers + 1
    for h in hooks:
        if h.layer is not None and h.layer > n_layers:
            raise OptionError(f"hook on layer {h.layer}, but the model has layers 1-{n_layers}", param="hooks")
        if h.bias is not None:
            width = sizes[h.layer - 1][0] * sizes[h.layer - 1][1]
            off = h.bias.to(device=device, dtype=dtype)
            off = off.reshape(1, -1).expand(copies, -1) if off.dim() == 1 else off
            if off.shape != (copies, width):
                raise OptionError(f"gate offsets of layer {h.layer} must be ({width},) or ({copies}, {width}), "
                                  f"got {tuple(h.bias.shape)}", param="hooks")
            biases[h.layer] = biases[h.layer] + off if h.layer in biases else off
            diverge = min(diverge, 2 * h.layer - 1)
            continue
        layers = [None] if h.point not in LAYER_POINTS else ([h.layer] if h.layer else range(1, n_layers + 1))
        for k in layers:
            by.setdefault((h.point, k), []).append(h)
        if h.point in WRITABLE:
            diverge = min(diverge, {"input": 0, "logits": 2 * n_layers + 1}.get(h.point, 2 * (h.layer or 1)))
    return by, biases, diverge


@torch.no_grad()
def run_stream(model: Any, tokens: torch.Tensor, hooks: Sequence[Hook] = (), *, batch_size: int = 1,
               window: int = 70, copies: int = 1, block_tokens: int | None = None, nll: bool = False,
               state: Sequence[Any] | None = None, device: Any = "cpu", progress: ProgressLike = False,
               description: str = "stream") -> StreamRun:
    """Run ``model`` over ``tokens`` with ``hooks`` (see the module docstring for every argument;
    ``state``: each layer's initial state as its module takes it, zeros when None)."""
    window = check_int(window, "window", minimum=1)
    copies = check_int(copies, "copies", minimum=1)
    device = torch.device(device)
    lm = _is_language_model(model)
    was_training = bool(getattr(model, "training", False))
    if lm:
        model.to(device).eval()
        layers = model_layers(model)
        dtype = layers[0].weight_ih_l0.dtype
        data = batchify(torch.as_tensor(tokens).long(), batch_size)
        n_steps, streams = data.shape[0] - 1, data.shape[1]

        def embed(a: int, b: int) -> torch.Tensor:
            return model.encoder(data[a:b].to(device)).to(dtype)
    else:
        if nll:
            raise OptionError("a bare recurrent stack has no decoder: no NLL to compute", param="nll")
        layers = [m.to(device).eval() for m in as_lstm_modules(model, device)]
        dtype = layers[0].weight_ih_l0.dtype
        x_all = torch.as_tensor(tokens)
        if x_all.ndim == 2:
            x_all = batchify(x_all, batch_size) if batch_size > 1 else x_all.unsqueeze(1)
        elif x_all.ndim != 3 or batch_size != 1:
            raise OptionError("a bare stack takes embedded inputs (N, I), or (N, B, I) with batch_size 1",
                              param="tokens")
        n_steps, streams = x_all.shape[0], x_all.shape[1]

        def embed(a: int, b: int) -> torch.Tensor:
            return x_all[a:b].to(device=device, dtype=dtype)
    if n_steps < 1:
        raise OptionError("the stream has no steps to run", param="tokens")
    maths = [cell_maths(m) for m in layers]
    sizes = [(len(cm.gate_names), m.hidden_size) for cm, m in zip(maths, layers)]
    by, biases, diverge = _layer_plan(list(hooks), len(layers), copies, sizes, device, dtype)
    if copies == 1:
        diverge = -1
    biased = {k: _biased(layers[k - 1], off) for k, off in biases.items()}
    indicator = torch.eye(copies, device=device, dtype=dtype).repeat_interleave(streams, dim=0)
    row_offsets = {k: off.repeat_interleave(streams, dim=0) for k, off in biases.items()}
    need = {}
    for k, cm in enumerate(maths, 1):
        names: set[str] = set()
        for h in by.get(("gates", k), []):
            names |= cm.wanted(h.gates)
        if by.get(("cell", k)):
            if cm.cells is None:
                raise OptionError(f"layer {k} ({cm.kind}) has no cell state", param="hooks")
            names |= cm.wanted(cm.cell_needs)
        need[k] = names

    wins = iter_windows(n_steps, window)
    per_block = max(1, (block_tokens or 0) // (window * streams))
    blocks = [wins[i:i + per_block] for i in range(0, len(wins), per_block)]
    run = StreamRun(n_steps, streams, copies, targets=data[1:] if lm else None)
    out_nll = torch.empty(n_steps, copies * streams, dtype=torch.float64, device=device) if nll else None
    states: list[Any] = list(state) if state is not None else [None] * len(layers)
    if len(states) != len(layers):
        raise OptionError(f"state has {len(states)} entries for {len(layers)} layers", param="state")
    try:
        with progress_bar(len(blocks), description, progress) as bar:
            for blk in blocks:
                a, b = blk[0][0], blk[-1][0] + blk[-1][1]
                rel = tuple((s - a, n) for s, n in blk)
                expanded = diverge < 0
                x = embed(a, b)
                if diverge == 0:
                    x, expanded = _expand(x, copies), True
                x = _fire(by.get(("input", None), ()), x, Block(a, rel, None, expanded), "input")
                for k, (mod, cm) in enumerate(zip(layers, maths), 1):
                    if diverge == 2 * k - 1 and not expanded:
                        x, expanded = _expand(x, copies), True
                    st0 = states[k - 1]
                    if k in biased:
                        ind = indicator.expand(x.shape[0], *indicator.shape)
                        out, states[k - 1] = biased[k](torch.cat([x, ind], dim=-1), st0)
                    else:
                        out, states[k - 1] = mod(x, st0)
                    where = Block(a, rel, k, expanded, cm)
                    if need[k]:
                        values = cm.gates(mod, x, out, st0, need[k], row_offsets.get(k))
                        _fire(by.get(("gates", k), ()), values, where, "gates")
                        if by.get(("cell", k)):
                            _fire(by[("cell", k)], cm.cells(values, st0), where, "cell")
                    _fire(by.get(("hidden", k), ()), out, where, "hidden")
                    if diverge == 2 * k and not expanded:
                        out, expanded = _expand(out, copies), True
                        where = Block(a, rel, k, expanded, cm)
                    x = _fire(by.get(("output", k), ()), out, where, "output")
                if lm and (out_nll is not None or ("logits", None) in by):  # the decoder only when needed
                    if not expanded:
                        x, expanded = _expand(x, copies), True
                    logits = _fire(by.get(("logits", None), ()), model.decoder(x), Block(a, rel, None, True),
                                   "logits")
                    if out_nll is not None:
                        S = b - a
                        y = _expand(data[a + 1:b + 1].to(device), copies)
                        loss = F.cross_entropy(logits.reshape(S * y.shape[1], -1).float(), y.reshape(-1),
                                               reduction="none")
                        out_nll[a:b] = loss.view(S, -1).double()
                bar.advance()
    finally:
        if lm:
            model.train(was_training)
    if out_nll is not None:
        run.nll = out_nll.cpu()
    run.states = states
    return run
