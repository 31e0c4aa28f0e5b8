"""Exact gate activations from a fused recurrent stack, and timescales estimated from data.

The gates come from the one stream runner (:func:`timescale_probe.runner.run_stream`, hook point
``gates``): the fused ``nn.LSTM`` runs over a block of whole windows; ``h_{t-1}`` is its outputs
shifted by one step with the carried state in front; then each gate asked for is one matrix
product over the whole block::

    z_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh            (S*B rows at once)
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)   (PyTorch gate order)

The cell states ``c_t = f_t c_{t-1} + i_t g_t`` (hook point ``cell``) are a linear recurrence,
solved for the whole window by a parallel prefix scan (log2 S elementwise steps, float64) from the
carried ``c_0``. ``1 - f`` is kept as ``sigmoid(-z_f)``, exact in float32 even when ``f`` rounds
to 1, so timescales of 1e6 steps and more stay resolved.

Timescales from data follow the reference procedure (paper Fig. 1; docs/methods.md §3): evaluation mode, test split,
batch 1, windows of 70 steps with the hidden state carried across windows; per window the mean
forget gate of each unit; the average of those window means is ``f_bar``; ``T_data = -1/log(f_bar)``
(``paper`` convention; ``chrono``: ``1/(1-f_bar)``) -- the timescale of the mean gate, not the
mean of timescales. With ``batch_size=B`` the stream is cut into ``B`` contiguous parallel streams
(each starting from a zero state, the last ``len % B`` tokens dropped) and each stream's window
counts as one window. Memory is bounded by one block (:data:`BLOCK_TOKENS`) whatever the corpus length.

Units: timescales in time steps (tokens); gates in (0, 1). Layers are numbered from 1 in tables,
units from 0 within a layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from .errors import OptionError
from .progress import ProgressLike
from .runner import (  # noqa: F401  (re-exported: the stack adapters, parallel streams, the scan)
    Block,
    Hook,
    as_lstm_modules,
    batchify,
    linear_scan,
    model_layers,
    run_stream,
    split_lstm,
)
from .stack import LSTMStack
from .timescales import _check_convention, gate_complement_to_timescale, gate_to_timescale  # noqa: F401 (re-exported)
from .timescales import mean_gate_timescale as _timescale_of_mean

DEFAULT_WINDOW = 70

#: Steps x parallel streams per fused call (rounded down to whole windows). Longer calls amortise
#: the per-call cost of the fused kernel and of the gate products; the windows the statistics see
#: are unchanged, and memory stays bounded by the block (about 3 MB per gate tensor at H=400).
BLOCK_TOKENS = 2048


def _window_means(t: torch.Tensor, windows: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """``(n_windows, B, H)`` float64 means over each window's steps of a block tensor ``(S, B, H)``
    (runs of equal-length windows reduced at once)."""
    parts, i = [], 0
    while i < len(windows):
        start, length = windows[i]
        j = i
        while j < len(windows) and windows[j][1] == length:
            j += 1
        seg = t[start:start + length * (j - i)]
        parts.append(seg.reshape(j - i, length, *t.shape[1:]).mean(1, dtype=torch.float64))
        i = j
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def gate_histogram(t: torch.Tensor, bins: int) -> torch.Tensor:
    """Counts (float64) of ``t``'s values (all in [0, 1]) in ``bins`` equal-width bins on [0, 1],
    1.0 in the last bin: the counts of ``torch.histc(t, bins, 0, 1)``, from one ``bincount``."""
    idx = (t.reshape(-1).float() * bins).to(torch.int32).clamp_(max=bins - 1)
    return torch.bincount(idx, minlength=bins).double()


# ----------------------------------------------------------------------------------------------
# reductions computed on the fly
# ----------------------------------------------------------------------------------------------

@dataclass
class GateStatistics:
    """Per-unit statistics of gate activations accumulated window by window (float64 sums).

    For each layer: number of windows ``n_windows`` (parallel streams count separately), the sum
    and sum of squares over windows of each unit's window-mean of ``1 - f``, the sums of window
    means of ``i`` and ``o`` (when computed), of ``|c|`` (when cells were computed), and histograms
    (``bins`` equal-width bins on [0, 1]) of every activation of the retention gate (LSTM ``f``, GRU
    ``z``) and of the other gates in [0, 1] that were computed (``i``, ``o``; ``r``) per layer.
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
        self.hist = [{} for _ in self.sizes]

    def hooks(self, gates: str = "", cells: bool = False) -> list[Hook]:
        """Hooks that feed these statistics from a :func:`~timescale_probe.runner.run_stream` pass:
        the retention gate (and ``gates``, e.g. ``"ifgo"``) of every layer, and its cell states."""
        out = [Hook("gates", self.update, gates=gates)]
        if cells:
            out.append(Hook("cell", self.update_cells))
        return out

    def update(self, values: dict[str, torch.Tensor], block: Block) -> None:
        """One layer's gates over one block (``(S, B, H)`` each; the block's windows in ``block``)."""
        k = block.layer - 1
        ret = block.cell.retention
        f = values[ret]
        S, B, _ = f.shape
        fc = _window_means(values[ret + "_comp"], block.windows)  # (W, B, H): each stream's window means
        self.fc_sum[k] += fc.sum((0, 1)).cpu()
        self.f_sum[k] += _window_means(f, block.windows).sum((0, 1)).cpu()
        self.fc_sumsq[k] += (fc * fc).sum((0, 1)).cpu()
        if "i" in values and "o" in values:
            self.i_sum[k] += _window_means(values["i"], block.windows).sum((0, 1)).cpu()
            self.o_sum[k] += _window_means(values["o"], block.windows).sum((0, 1)).cpu()
            self.has_io = True
        self.n_windows[k] += fc.shape[0] * B
        self.n_steps[k] += S * B
        if self.bins:
            for name in (ret, "i", "o", "r"):  # the gates with values in [0, 1] (LSTM f, i, o; GRU z, r)
                if name in values:
                    counts = self.hist[k].setdefault(name, torch.zeros(self.bins, dtype=torch.float64))
                    counts += gate_histogram(values[name], self.bins).cpu()

    def update_cells(self, c: torch.Tensor, block: Block) -> None:
        """One layer's cell states over one block: the window means of ``|c|``."""
        self.c_abs_sum[block.layer - 1] += _window_means(c.abs(), block.windows).sum((0, 1)).cpu()
        self.has_cells = True

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
                rows.append(pd.DataFrame({"layer": k + 1, "gate": name, "bin_left": edges[:-1],
                                          "bin_right": edges[1:], "count": counts.numpy().astype(np.int64)}))
        return pd.concat(rows, ignore_index=True)


@dataclass
class TimescaleEstimate:
    """Result of :func:`estimate_timescales`: ``table_`` per unit, ``histograms_`` per layer."""

    table_: pd.DataFrame
    histograms_: pd.DataFrame
    options: dict[str, Any]


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
    stats = GateStatistics([m.hidden_size for m in model_layers(model)], bins=bins)
    run_stream(model, tokens, stats.hooks("ifgo" if all_gates else "", cells), batch_size=batch_size, window=window,
               block_tokens=BLOCK_TOKENS, device=device, progress=progress, description="gates")
    options = dict(batch_size=batch_size, window=window, convention=convention, level=level, n_tokens=int(len(tokens)))
    return TimescaleEstimate(stats.table(convention, level), stats.histograms(), options)


def estimate_stack_timescales(layers: Any, inputs: torch.Tensor, *, window: int = DEFAULT_WINDOW,
                              device: Any = "cpu", convention: str = "paper", level: float = 0.95,
                              bins: int = 50, all_gates: bool = True) -> TimescaleEstimate:
    """:func:`estimate_timescales` on plain layers and embedded inputs ``(N, I)`` or ``(N, B, I)``."""
    mods = as_lstm_modules(layers, device)
    stats = GateStatistics([m.hidden_size for m in mods], bins=bins)
    run_stream(mods, inputs, stats.hooks("ifgo" if all_gates else ""), window=window, block_tokens=BLOCK_TOKENS,
               device=device)
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
