"""Exact LSTM gate activations from a fused ``nn.LSTM``, and timescales estimated from data.

How the gates are computed (no Python loop over time steps): run the fused ``nn.LSTM`` over a
window of ``S`` steps to get every output ``h_t``; form ``h_{t-1}`` by shifting the outputs by one
step with the carried initial state in front; then all pre-activations of the window come from
one matrix product each::

    z_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh            (S*B rows at once)
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)   (PyTorch gate order)

The cell states ``c_t = f_t c_{t-1} + i_t g_t`` are a linear recurrence, solved for the whole
window by a parallel prefix scan (log2 S elementwise steps, float64) from the carried ``c_0``.
``1 - f`` is kept as ``sigmoid(-z_f)``, exact in float32 even when ``f`` rounds to 1, so
timescales of 1e6 steps and more stay resolved.

Timescales from data follow the reference procedure (paper Fig. 1; docs/methods.md §3): evaluation mode, test split,
batch 1, windows of 70 steps with the hidden state carried across windows; per window the mean
forget gate of each unit; the average of those window means is ``f_bar``; ``T_data = -1/log(f_bar)``
(``paper`` convention; ``chrono``: ``1/(1-f_bar)``) -- the timescale of the mean gate, not the
mean of timescales. With ``batch_size=B`` the stream is cut into ``B`` contiguous parallel streams
(each starting from a zero state, the last ``len % B`` tokens dropped) and each stream's window
counts as one window. Memory is bounded by one window whatever the corpus length.

Units: timescales in time steps (tokens); gates in (0, 1). Layers are numbered from 1 in tables,
units from 0 within a layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .errors import OptionError
from .evaluation import batchify  # noqa: F401  (re-exported: parallel streams of embedded inputs)
from .progress import ProgressLike, track
from .stack import LSTMLayer, LSTMStack
from .timescales import _check_convention, gate_complement_to_timescale, gate_to_timescale  # noqa: F401 (re-exported)
from .timescales import mean_gate_timescale as _timescale_of_mean

GATE_NAMES = ("i", "f", "g", "o")
DEFAULT_WINDOW = 70


# ----------------------------------------------------------------------------------------------
# one layer, one window
# ----------------------------------------------------------------------------------------------

@dataclass
class LayerGates:
    """Gate activations of one layer over one window; every tensor is ``(S, B, H)``.

    ``f_comp`` is ``1 - f`` computed as ``sigmoid(-z_f)`` (accurate when ``f`` is near 1).
    Gates not asked for (``which``) and ``c`` (unless cell states were asked for) are None.
    """

    f: torch.Tensor
    f_comp: torch.Tensor
    h: torch.Tensor
    i: torch.Tensor | None = None
    g: torch.Tensor | None = None
    o: torch.Tensor | None = None
    c: torch.Tensor | None = None


def split_lstm(lstm: nn.LSTM) -> list[nn.LSTM]:
    """Single-layer ``nn.LSTM`` modules sharing the weights of a multi-layer ``nn.LSTM``."""
    if lstm.bidirectional or getattr(lstm, "proj_size", 0):
        raise OptionError("bidirectional or projected LSTMs are not supported for gate extraction")
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


def lstm_from_layer(layer: LSTMLayer, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> nn.LSTM:
    """A single-layer ``nn.LSTM`` holding the weights of an :class:`LSTMLayer` (in eval mode)."""
    m = nn.LSTM(layer.input_size, layer.hidden_size, 1)
    with torch.no_grad():
        m.weight_ih_l0.copy_(layer.weight_ih)
        m.weight_hh_l0.copy_(layer.weight_hh)
        m.bias_ih_l0.copy_(layer.bias_ih)
        m.bias_hh_l0.copy_(layer.bias_hh)
    return m.to(device=device, dtype=dtype).eval().requires_grad_(False)


def as_lstm_modules(layers: Any, device: Any = None, dtype: torch.dtype = torch.float32) -> list[nn.LSTM]:
    """Normalise a stack to a list of single-layer ``nn.LSTM``: accepts an :class:`LSTMStack`, a
    list of :class:`LSTMLayer` or ``nn.LSTM`` modules, or one (multi-layer) ``nn.LSTM``."""
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
        else:
            raise OptionError(f"cannot read gates from a {type(layer).__name__}: expected nn.LSTM or LSTMLayer")
    return mods


def _weights(lstm: nn.LSTM):
    H = lstm.hidden_size
    w_ih, w_hh = lstm.weight_ih_l0, lstm.weight_hh_l0
    if lstm.bias:
        b = lstm.bias_ih_l0 + lstm.bias_hh_l0
    else:
        b = torch.zeros(4 * H, dtype=w_ih.dtype, device=w_ih.device)
    return w_ih, w_hh, b


def linear_scan(a: torch.Tensor, u: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """All states of ``x_t = a_t * x_{t-1} + u_t`` (t = 1..S along dim 0) from ``x0``, by a
    Hillis-Steele prefix scan: ``ceil(log2 S)`` elementwise steps, no loop over time steps.

    Products of ``a`` only shrink when ``|a| <= 1`` (forget gates), so nothing overflows.
    """
    A, U = a, u
    S = a.shape[0]
    d = 1
    while d < S:
        U = torch.cat([U[:d], A[d:] * U[:-d] + U[d:]], dim=0)
        A = torch.cat([A[:d], A[d:] * A[:-d]], dim=0)
        d *= 2
    return A * x0.unsqueeze(0) + U


@torch.no_grad()
def layer_gates(lstm: nn.LSTM, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None, *,
                cells: bool = True, which: str = "ifgo", scan_dtype: torch.dtype = torch.float64):
    """Gates of one single-layer ``nn.LSTM`` over a window.

    ``x``: ``(S, B, I)`` inputs (time first). ``state``: ``(h0, c0)`` each ``(1, B, H)`` or ``(B, H)``;
    zeros when None. ``which``: the gates to compute (``f`` always; ``"f"`` alone costs a quarter
    of the matrix products; ``cells`` needs ``i`` and ``g`` too). Returns ``(LayerGates, (h_n, c_n))``
    with the new state shaped ``(1, B, H)`` as ``nn.LSTM`` returns it. The outputs ``h`` and the
    final state are the fused module's own.
    """
    S, B, _ = x.shape
    H = lstm.hidden_size
    if state is None:
        h0 = x.new_zeros(1, B, H)
        c0 = x.new_zeros(1, B, H)
    else:
        h0, c0 = (s.reshape(1, B, H) for s in state)
    out, (hn, cn) = lstm(x, (h0, c0))
    h_prev = torch.cat([h0, out[:-1]], dim=0)
    w_ih, w_hh, b = _weights(lstm)
    wanted = set(which) | {"f"} | ({"i", "g"} if cells else set())
    x2, h2 = x.reshape(S * B, -1), h_prev.reshape(S * B, H)
    z = {}
    for k, name in enumerate(GATE_NAMES):
        if name in wanted:
            rows = slice(k * H, (k + 1) * H)
            zk = torch.addmm(b[rows], x2, w_ih[rows].t())
            zk.addmm_(h2, w_hh[rows].t())
            z[name] = zk.view(S, B, H)
    f = torch.sigmoid(z["f"])
    gates = LayerGates(f=f, f_comp=torch.sigmoid(-z["f"]), h=out)
    if "i" in z:
        gates.i = torch.sigmoid(z["i"])
    if "g" in z:
        gates.g = torch.tanh(z["g"])
    if "o" in z:
        gates.o = torch.sigmoid(z["o"])
    if cells:
        c = linear_scan(f.to(scan_dtype), (gates.i * gates.g).to(scan_dtype), c0.reshape(B, H).to(scan_dtype))
        gates.c = c.to(x.dtype)
    return gates, (hn, cn)


@torch.no_grad()
def stack_gates(layers: Sequence[nn.LSTM], x: torch.Tensor, states: list | None = None, *,
                cells: bool = True, which: str = "ifgo", output_masks: dict[int, torch.Tensor] | None = None):
    """Gates of every layer of a stack over one window of embedded input ``x`` ``(S, B, I)``.

    Layer ``k+1`` reads layer ``k``'s outputs (times ``output_masks[k]`` when given, 1-based ``k``,
    shape ``(H_k,)`` or ``(B, H_k)``). Returns ``(list[LayerGates], new_states)``.
    """
    states = states if states is not None else [None] * len(layers)
    result, new_states = [], []
    inp = x
    for k, (lstm, st) in enumerate(zip(layers, states), 1):
        gates, new = layer_gates(lstm, inp, st, cells=cells, which=which)
        result.append(gates)
        new_states.append(new)
        inp = gates.h
        if output_masks and k in output_masks:
            inp = inp * output_masks[k].to(inp)
    return result, new_states


# ----------------------------------------------------------------------------------------------
# streaming over a corpus
# ----------------------------------------------------------------------------------------------

def iter_windows(n_steps: int, window: int) -> list[tuple[int, int]]:
    """``(start, length)`` of consecutive windows over ``n_steps`` inputs (last one may be short)."""
    if window < 1:
        raise OptionError(f"window must be >= 1 step (got {window})", param="window")
    return [(s, min(window, n_steps - s)) for s in range(0, n_steps, window)]


#: Steps x parallel streams per fused LSTM call (rounded down to whole windows). Longer calls
#: amortise the per-call cost of ``torch.lstm`` and of the gate products; the windows the statistics
#: see are unchanged, and memory stays bounded by the block (about 3 MB per gate tensor at H=400).
BLOCK_TOKENS = 2048


def _windowed_gates(layers: Sequence[nn.LSTM], embed, n_steps: int, n_streams: int, window: int, *,
                    cells: bool, which: str, progress: ProgressLike) -> Iterator[list[LayerGates]]:
    """Run the stack over blocks of whole windows (state carried), then yield the gates window by
    window. ``embed(a, b)`` gives the inputs of steps ``a..b-1`` as ``(b - a, n_streams, I)``."""
    wins = iter_windows(n_steps, window)
    per_block = max(1, BLOCK_TOKENS // (window * max(1, n_streams)))
    blocks = [wins[k:k + per_block] for k in range(0, len(wins), per_block)]
    states = None
    for block in track(blocks, len(blocks), "gates", progress):
        start = block[0][0]
        gates, states = stack_gates(layers, embed(start, block[-1][0] + block[-1][1]), states, cells=cells, which=which)
        for w_start, length in block:
            a = w_start - start
            yield [LayerGates(**{k: (None if v is None else v[a:a + length]) for k, v in vars(lg).items()})
                   for lg in gates]


@torch.no_grad()
def iter_stack_gates(layers: Any, inputs: torch.Tensor, *, window: int = DEFAULT_WINDOW, cells: bool = False,
                     which: str = "ifgo", device: Any = "cpu", progress: ProgressLike = False) -> Iterator[list[LayerGates]]:
    """Stream gates of a stack over embedded inputs ``(N, I)`` (one stream) or ``(N, B, I)``
    (B parallel streams), ``window`` steps at a time, the state carried from window to window.

    ``layers``: anything :func:`as_lstm_modules` accepts. Yields one ``list[LayerGates]`` per window.
    """
    device = torch.device(device)
    mods = [m.to(device).eval() for m in as_lstm_modules(layers, device)]
    if inputs.ndim == 2:
        inputs = inputs.unsqueeze(1)
    dtype = mods[0].weight_ih_l0.dtype
    yield from _windowed_gates(mods, lambda a, b: inputs[a:b].to(device=device, dtype=dtype), inputs.shape[0],
                               inputs.shape[1], window, cells=cells, which=which, progress=progress)


def _model_layers(model) -> list[nn.LSTM]:
    if hasattr(model, "lstm_layers"):
        return list(model.lstm_layers())
    if hasattr(model, "rnns"):
        return [getattr(r, "module", r) for r in model.rnns]
    raise OptionError(f"{type(model).__name__} has no LSTM layers to read gates from")


@torch.no_grad()
def iter_model_gates(model, tokens: torch.Tensor, *, batch_size: int = 1, window: int = DEFAULT_WINDOW,
                     cells: bool = False, which: str = "ifgo", device: Any = "cpu",
                     progress: ProgressLike = False) -> Iterator[list[LayerGates]]:
    """Stream gates of a :class:`~timescale_probe.models.LanguageModel` over a token-id stream.

    Evaluation mode (no dropout), ``batch_size`` parallel streams, windows of ``window`` input
    tokens, the state carried. As in the reference, the inputs are ``tokens[:-1]`` (the last token
    is only ever a target). Yields one ``list[LayerGates]`` per window.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        model.to(device)
        layers = _model_layers(model)
        data = batchify(torch.as_tensor(tokens).long(), batch_size)
        n_inputs = data.shape[0] - 1
        dtype = layers[0].weight_ih_l0.dtype
        yield from _windowed_gates(layers, lambda a, b: model.encoder(data[a:b].to(device)).to(dtype), n_inputs,
                                   data.shape[1], window, cells=cells, which=which, progress=progress)
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------------------------
# reductions computed on the fly
# ----------------------------------------------------------------------------------------------

@dataclass
class GateStatistics:
    """Per-unit statistics of gate activations accumulated window by window (float64 sums).

    For each layer: number of windows ``n_windows`` (parallel streams count separately), the sum
    and sum of squares over windows of each unit's window-mean of ``1 - f``, the sums of window
    means of ``i`` and ``o`` (when computed), of ``|c|`` (when cells were computed), and histograms
    (``bins`` equal-width bins on [0, 1]) of every activation of ``f`` (and ``i``, ``o``) per layer.
    """

    sizes: list[int]
    bins: int = 50
    n_windows: list[int] = field(default_factory=list)
    n_steps: list[int] = field(default_factory=list)
    f_sum: list[torch.Tensor] = field(default_factory=list)
    fc_sum: list[torch.Tensor] = field(default_factory=list)
    fc_sumsq: list[torch.Tensor] = field(default_factory=list)
    i_sum: list[torch.Tensor] = field(default_factory=list)
    o_sum: list[torch.Tensor] = field(default_factory=list)
    c_abs_sum: list[torch.Tensor] = field(default_factory=list)
    hist: list[dict[str, torch.Tensor]] = field(default_factory=list)
    has_cells: bool = False
    has_io: bool = False

    def __post_init__(self) -> None:
        L = len(self.sizes)
        self.n_windows = [0] * L
        self.n_steps = [0] * L
        z = [torch.zeros(H, dtype=torch.float64) for H in self.sizes]
        self.f_sum = [t.clone() for t in z]
        self.fc_sum = [t.clone() for t in z]
        self.fc_sumsq = [t.clone() for t in z]
        self.i_sum = [t.clone() for t in z]
        self.o_sum = [t.clone() for t in z]
        self.c_abs_sum = [t.clone() for t in z]
        self.hist = [{g: torch.zeros(self.bins, dtype=torch.float64) for g in ("f", "i", "o")} for _ in self.sizes]

    def update(self, gates: list[LayerGates]) -> None:
        for k, lg in enumerate(gates):
            S, B, _ = lg.f.shape
            fc = lg.f_comp.mean(0, dtype=torch.float64)  # (B, H): each stream's window mean of 1 - f
            self.fc_sum[k] += fc.sum(0).cpu()
            self.f_sum[k] += lg.f.mean(0, dtype=torch.float64).sum(0).cpu()
            self.fc_sumsq[k] += (fc * fc).sum(0).cpu()
            if lg.i is not None and lg.o is not None:
                self.i_sum[k] += lg.i.mean(0, dtype=torch.float64).sum(0).cpu()
                self.o_sum[k] += lg.o.mean(0, dtype=torch.float64).sum(0).cpu()
                self.has_io = True
            if lg.c is not None:
                self.c_abs_sum[k] += lg.c.abs().mean(0, dtype=torch.float64).sum(0).cpu()
                self.has_cells = True
            self.n_windows[k] += B
            self.n_steps[k] += S * B
            if self.bins:
                for name in ("f", "i", "o"):
                    t = getattr(lg, name)
                    if t is not None:
                        self.hist[k][name] += torch.histc(t.float(), bins=self.bins, min=0.0, max=1.0).double().cpu()

    def table(self, convention: str = "paper", level: float = 0.95) -> pd.DataFrame:
        """Tidy per-unit table (see :func:`estimate_timescales`)."""
        _check_convention(convention)
        from statistics import NormalDist

        z = NormalDist().inv_cdf(0.5 + level / 2)
        frames = []
        for k, H in enumerate(self.sizes):
            n = self.n_windows[k]
            if n == 0:
                raise OptionError("no windows were seen: the token stream is empty")
            fc_bar = (self.fc_sum[k] / n).numpy()
            f_bar = (self.f_sum[k] / n).numpy()
            var = np.maximum((self.fc_sumsq[k] / n).numpy() - fc_bar ** 2, 0.0) * (n / max(n - 1, 1))
            sd = np.sqrt(var)
            se = sd / math.sqrt(n)
            frame = {
                "layer": k + 1,
                "unit": np.arange(H),
                "f_mean": np.where(fc_bar < 0.5, 1.0 - fc_bar, f_bar),
                "f_sd": sd,
                "n_windows": n,
                "T_data": _timescale_of_mean(f_bar, fc_bar, convention),
                "T_data_lo": _timescale_of_mean(f_bar - z * se, fc_bar + z * se, convention),
                "T_data_hi": _timescale_of_mean(f_bar + z * se, fc_bar - z * se, convention),
            }
            if self.has_io:
                frame["i_mean"] = (self.i_sum[k] / n).numpy()
                frame["o_mean"] = (self.o_sum[k] / n).numpy()
            if self.has_cells:
                frame["c_abs_mean"] = (self.c_abs_sum[k] / n).numpy()
            frames.append(pd.DataFrame(frame))
        df = pd.concat(frames, ignore_index=True)
        df.attrs.update(convention=convention, level=level)
        return df

    def histograms(self) -> pd.DataFrame:
        """Tidy ``layer, gate, bin_left, bin_right, count`` over all units and steps of a layer."""
        edges = np.linspace(0.0, 1.0, self.bins + 1)
        rows = []
        for k, h in enumerate(self.hist):
            for name, counts in h.items():
                if name != "f" and not self.has_io:
                    continue
                rows.append(pd.DataFrame({"layer": k + 1, "gate": name, "bin_left": edges[:-1],
                                          "bin_right": edges[1:], "count": counts.numpy().astype(np.int64)}))
        return pd.concat(rows, ignore_index=True)


@dataclass
class TimescaleEstimate:
    """Result of :func:`estimate_timescales`: ``table_`` per unit, ``histograms_`` per layer."""

    table_: pd.DataFrame
    histograms_: pd.DataFrame
    options: dict[str, Any]


def accumulate(gate_windows: Iterable[list[LayerGates]], sizes: list[int], bins: int = 50) -> GateStatistics:
    stats = GateStatistics(list(sizes), bins=bins)
    for gates in gate_windows:
        stats.update(gates)
    return stats


def check_estimate_options(*, batch_size: int = 1, window: int = DEFAULT_WINDOW, convention: str = "paper",
                           level: float = 0.95, bins: int = 50) -> None:
    """Options of :func:`estimate_timescales`, one ``OptionError`` naming the parameter; commands
    call it before loading anything."""
    from .timescales import check_convention
    from .validation import check_fraction, check_int

    check_int(batch_size, "batch_size", minimum=1)
    check_int(window, "window", minimum=1)
    check_convention(convention)
    check_fraction(level, "level")
    check_int(bins, "bins", minimum=1)


def estimate_timescales(model, tokens: torch.Tensor, *, batch_size: int = 1, window: int = DEFAULT_WINDOW,
                        device: Any = "cpu", convention: str = "paper", level: float = 0.95, bins: int = 50,
                        cells: bool = False, all_gates: bool = False, progress: ProgressLike = False) -> TimescaleEstimate:
    """Timescales from data of every unit of a language model (the reference procedure by default).

    ``tokens``: a 1-D id stream (e.g. ``Corpus.tokens('test')``, ``<eos>`` included). Table columns:

    - ``layer`` (from 1), ``unit`` (from 0);
    - ``f_mean``: ``f_bar``, the mean over windows of each window's mean forget gate;
    - ``f_sd``: standard deviation over windows of the window means (the spread);
    - ``n_windows``: windows averaged (windows x parallel streams);
    - ``T_data = T(f_bar)`` in steps (``convention``); ``T_data_lo``, ``T_data_hi``: the ``level``
      interval of ``T_data`` from the standard error ``f_sd / sqrt(n_windows)`` (normal
      approximation, windows treated as independent, so an optimistic band for long-T units);
    - with ``all_gates``: ``i_mean``, ``o_mean`` (mean input and output gates) and their
      histograms (all four gates cost about 4x the forget gate alone); with ``cells``:
      ``c_abs_mean``, the mean |c|.
    """
    check_estimate_options(batch_size=batch_size, window=window, convention=convention, level=level, bins=bins)
    layers = _model_layers(model)
    sizes = [m.hidden_size for m in layers]
    it = iter_model_gates(model, tokens, batch_size=batch_size, window=window, cells=cells, device=device,
                          which="ifgo" if all_gates else "f", progress=progress)
    stats = accumulate(it, sizes, bins=bins)
    options = dict(batch_size=batch_size, window=window, convention=convention, level=level, n_tokens=int(len(tokens)))
    return TimescaleEstimate(stats.table(convention, level), stats.histograms(), options)


def estimate_stack_timescales(layers: Any, inputs: torch.Tensor, *, window: int = DEFAULT_WINDOW,
                              device: Any = "cpu", convention: str = "paper", level: float = 0.95,
                              bins: int = 50, all_gates: bool = True) -> TimescaleEstimate:
    """:func:`estimate_timescales` on plain layers and embedded inputs ``(N, I)`` or ``(N, B, I)``."""
    mods = as_lstm_modules(layers, device)
    it = iter_stack_gates(mods, inputs, window=window, device=device, which="ifgo" if all_gates else "f")
    stats = accumulate(it, [m.hidden_size for m in mods], bins)
    return TimescaleEstimate(stats.table(convention, level), stats.histograms(),
                             dict(window=window, convention=convention, level=level))


def timescales_table(stack: LSTMStack, estimate: pd.DataFrame | TimescaleEstimate,
                     convention: str = "paper") -> pd.DataFrame:
    """Join the bias-based timescales of ``stack`` with estimated ones: columns ``layer, unit,
    forget_bias, T_bias, T_data, T_data_lo, T_data_hi, f_mean, f_sd, ...`` and ``T_assigned``
    (the spec's timescale, before bias clipping) when the stack carries an MTS spec."""
    est = estimate.table_ if isinstance(estimate, TimescaleEstimate) else estimate
    bias = stack.timescales_table(convention)
    df = bias.merge(est, on=["layer", "unit"], how="inner", validate="one_to_one")
    if len(df) != len(bias):
        raise OptionError("the estimate does not cover every unit of the checkpoint (layer sizes differ)")
    assigned = assigned_timescales(stack)
    if assigned is not None:
        df["T_assigned"] = np.concatenate([
            a if a is not None else np.full(H, np.nan) for a, H in zip(assigned, stack.layer_sizes)
        ])
    df.attrs.update(est.attrs)
    df.attrs["convention"] = convention
    return df


def assigned_timescales(stack: LSTMStack) -> list[np.ndarray | None] | None:
    """Timescales an MTS spec assigned to each layer (None per free layer), or None without a spec."""
    if not stack.mts_spec:
        return None
    from .timescales import MTSSpec

    spec = MTSSpec.from_dict(stack.mts_spec)
    out = []
    for k, H in enumerate(stack.layer_sizes):
        T = spec.layer(k).timescales(H)
        out.append(None if T is None else np.asarray(T, dtype=np.float64))
    return out
