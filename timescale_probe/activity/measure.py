"""Timescales from activity of a recurrent language model: one stream, every unit, any cell type.

One :func:`~timescale_probe.runner.run_stream` pass reads, per layer, the hidden state ``h_t``
(hook point ``hidden``: the layer's outputs) and, for cells that have one (LSTM), the cell
state ``c_t`` (hook point ``cell``); streaming accumulators (:mod:`.acf`) turn them into each
unit's autocorrelation at lags ``0..max_lag`` with the block sums a block bootstrap needs. Where
every layer has a retention gate (LSTM forget gate, GRU update gate) the same pass also feeds
:class:`~timescale_probe.gates.GateStatistics`, so ``T_data`` comes from exactly the same tokens.

Per unit and state, the autocorrelation is fitted by one and two exponentials (:mod:`.fit`); the
population autocorrelation of a layer is the mean of its units' autocorrelations (units whose
state is constant left out and counted), fitted the same way. Intervals: a non-overlapping block
bootstrap over stream blocks of ``block`` steps (``n_boot`` replicates, ``seed``); the same block
draws serve every unit, layer and state, so population and unit intervals are consistent.

Conventions. A decay ``r(k) = exp(-k/tau)`` is what a linear unit with constant retention ``f``
shows: ``r(k) = f^k``, so ``tau = -1/log f``, the paper's convention (``T = -1/log f``; f = 0.5
gives 1.44 steps). The leaky-integrator convention ``tau = 1/(1 - f)`` (Tallec & Ollivier's
chrono; f = 0.5 gives 2 steps) is the same decay read as ``f = exp(-1/tau)``; ``convention="chrono"``
reports every timescale so (``1/(1 - exp(-1/tau))``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import OptionError
from ..progress import ProgressLike, as_progress
from .acf import AutocorrelationAccumulator, AutocorrelationBlocks
from .fit import FitRules, fit_table

__all__ = ["STATES", "ActivityEstimate", "activity_hooks", "activity_timescales", "timescales_from_blocks",
           "to_convention", "CONVENTION_NOTE"]

STATES = ("hidden", "cell")
TAU_COLUMNS = ("tau", "tau_lo", "tau_hi", "tau_fast", "tau_slow", "tau_single")
#: Steps x streams per fused call of the stream runner (amortises the per-call cost; the maths is unchanged).
BLOCK_TOKENS = 4096

CONVENTION_NOTE = ("tau is the e-folding time of the fitted decay of the autocorrelation, in steps. paper convention: "
                   "a linear unit with constant retention f has r(k) = f^k, so tau = -1/log f (the paper's T; f = 0.5 "
                   "gives 1.44 steps). chrono convention: the leaky-integrator tau = 1/(1 - f) of the same decay, "
                   "1/(1 - exp(-1/tau_paper)) (f = 0.5 gives 2 steps).")


def to_convention(tau, convention: str):
    """Timescales in the paper convention (e-folding steps) as ``convention`` reports them."""
    tau = np.asarray(tau, dtype=np.float64)
    if convention == "paper":
        return tau
    if convention != "chrono":
        raise OptionError(f"unknown convention '{convention}': use paper or chrono", param="convention")
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(np.isnan(tau), np.nan, 1.0 / -np.expm1(-1.0 / tau))


@dataclass
class ActivityEstimate:
    """What :func:`activity_timescales` returns.

    - ``table_``: per unit and state: ``layer, unit, state, tau, tau_lo, tau_hi, model, tau_fast,
      tau_slow, weight, aic_single, aic_double`` then ``amplitude, tau_single, double_support,
      resolved, r1, mean, sd, n_boot_ok`` and the fit's details (see
      :func:`timescale_probe.activity.fit.fit_table`);
    - ``population_``: per layer and state (and ``layer = "all"``): the same fit of the mean
      autocorrelation, with ``n_units`` (units averaged) and ``n_constant`` (left out);
    - ``acf_``: tidy mean autocorrelation per layer, state and lag (``acf``, ``acf_lo``, ``acf_hi``:
      its bootstrap percentile band) and the fitted curves (``fit_single``, ``fit_double``);
    - ``gates_``: ``T_data`` per unit from the same pass (:meth:`GateStatistics.table`), or None;
    - ``options``: the settings, token and block counts.
    """

    table_: pd.DataFrame
    population_: pd.DataFrame
    acf_: pd.DataFrame
    gates_: pd.DataFrame | None = None
    options: dict[str, Any] = field(default_factory=dict)


def activity_hooks(layers: Sequence[Any], *, max_lag: int, block: int, burn_in: int,
                   states: Sequence[str] = STATES) -> tuple[list, dict[tuple[int, str], AutocorrelationAccumulator]]:
    """Hooks for :func:`~timescale_probe.runner.run_stream` that feed one accumulator per
    ``(layer, state)`` (layers from 1; ``cell`` only where the cell has a cell state)."""
    from ..runner import Hook, cell_maths

    accs: dict[tuple[int, str], AutocorrelationAccumulator] = {}
    hooks = []

    def feed(key):
        def fn(value, blk):
            accs[key].update(value.detach().cpu().numpy())
        return fn

    for k, mod in enumerate(layers, 1):
        has_cell = cell_maths(mod).cells is not None
        for state in states:
            if state == "cell" and not has_cell:
                continue
            accs[(k, state)] = AutocorrelationAccumulator(max_lag, block=block, burn_in=burn_in)
            hooks.append(Hook(state, feed((k, state)), layer=k))
    if not accs:
        raise OptionError("no layer of this model has a cell state: use states hidden", param="states")
    return hooks, accs


def _moments(blocks: AutocorrelationBlocks) -> tuple[np.ndarray, np.ndarray]:
    mean = (blocks.s.sum(0) + (blocks.offset * blocks.M[:, None]).sum(0)) / blocks.M.sum()
    var = blocks.covariance()[0][0, :, 0]
    return mean, np.sqrt(np.maximum(var, 0.0))


def _fitted_curves(fit_row: pd.Series, lags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both fitted curves at ``lags`` (NaN at lag 0, which is not fitted), timescales in e-folding steps."""
    a1, t1 = fit_row["amp_single"], fit_row["tau_single"]
    amp, w = fit_row["amp_double"], fit_row["weight"]
    tf, ts = fit_row["tau_fast"], fit_row["tau_slow"]
    with np.errstate(all="ignore"):
        single = a1 * np.exp(-lags / t1) if t1 > 0 else np.zeros_like(lags)
        double = amp * (w * np.exp(-lags / tf) + (1 - w) * np.exp(-lags / ts))
    single[lags == 0] = np.nan
    double[lags == 0] = np.nan
    return single, double


def _population(r, r_boot, live, *, rules, level, n_blocks, convention, layer, state):
    """The fit of the mean autocorrelation over ``live`` units (row of the population table) and the
    curve table: the mean, its bootstrap percentile band, both fitted curves."""
    pop = np.nanmean(r[live], axis=0) if live.any() else np.full(r.shape[1], np.nan)
    pop_boot = np.nanmean(r_boot[:, live], axis=1) if r_boot is not None and live.any() else None
    fits = fit_table(pop[None], r_boot=None if pop_boot is None else pop_boot[:, None, :], level=level,
                     n_blocks=n_blocks, rules=rules)
    lags = np.arange(len(pop), dtype=np.float64)
    single, double = _fitted_curves(fits.iloc[0], lags)
    lo = hi = np.full(len(lags), np.nan)
    if pop_boot is not None:
        lo, hi = np.nanpercentile(pop_boot, [(1 - level) / 2 * 100, (1 + level) / 2 * 100], axis=0)
    curve = pd.DataFrame({"layer": layer, "state": state, "lag": lags.astype(int), "acf": pop, "acf_lo": lo,
                          "acf_hi": hi, "fit_single": single, "fit_double": double})
    fits.insert(0, "layer", layer)
    fits.insert(1, "state", state)
    fits["n_units"], fits["n_constant"] = int(live.sum()), int((~live).sum())
    for col in TAU_COLUMNS:
        fits[col] = to_convention(fits[col], convention)
    return fits, curve


def timescales_from_blocks(blocks: dict[tuple[int, str], AutocorrelationBlocks], *, n_boot: int = 100,
                           level: float = 0.95, seed: int = 0, convention: str = "paper",
                           rules: FitRules = FitRules(), progress: ProgressLike = False
                           ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Unit table, population table and mean-ACF table (see :class:`ActivityEstimate`) from the
    block sums of each ``(layer, state)``; the bootstrap draws its blocks once (``seed``) for all."""
    units, pops = [], []
    by_state: dict[str, list] = {}
    first = next(iter(blocks.values()))
    weights = first.bootstrap_weights(n_boot, seed) if n_boot else None
    common = dict(rules=rules, level=level, n_blocks=first.n_blocks, convention=convention)
    bar = as_progress(progress)
    bar.start(len(blocks), "fits")
    try:
        for (layer, state), blk in sorted(blocks.items()):
            if blk.n_blocks != first.n_blocks:
                raise OptionError("the states were not read over the same stream (block counts differ)")
            r = blk.acf()[0]
            r_boot = blk.acf(weights) if weights is not None else None
            fits = fit_table(r, r_boot=r_boot, level=level, n_blocks=blk.n_blocks, rules=rules)
            fits.insert(0, "layer", layer)
            fits.insert(1, "unit", np.arange(len(fits)))
            fits.insert(2, "state", state)
            fits["mean"], fits["sd"] = _moments(blk)
            for col in TAU_COLUMNS:
                fits[col] = to_convention(fits[col], convention)
            units.append(fits)
            live = np.isfinite(r).all(1)
            by_state.setdefault(state, []).append((r, r_boot, live))
            pops.append(_population(r, r_boot, live, layer=str(layer), state=state, **common))
            bar.advance()
        for state, parts in by_state.items():
            if len(parts) > 1:  # every layer's units together
                r = np.concatenate([p[0] for p in parts])
                rb = None if weights is None else np.concatenate([p[1] for p in parts], axis=1)
                live = np.concatenate([p[2] for p in parts])
                pops.append(_population(r, rb, live, layer="all", state=state, **common))
    finally:
        bar.done()
    return (pd.concat(units, ignore_index=True), pd.concat([p[0] for p in pops], ignore_index=True),
            pd.concat([p[1] for p in pops], ignore_index=True))


def activity_timescales(model, tokens, *, max_lag: int = 100, burn_in: int = 500, block: int = 2048,
                        batch_size: int = 1, n_boot: int = 100, level: float = 0.95, seed: int = 0,
                        states: Sequence[str] = STATES, convention: str = "paper", gates: bool = True,
                        rules: FitRules = FitRules(), device: Any = "cpu",
                        progress: ProgressLike = False) -> ActivityEstimate:
    """Timescales from activity of every unit of a recurrent language model over a token stream.

    ``tokens``: 1-D ids (``Corpus.tokens(split)``), cut into ``batch_size`` parallel streams, each
    starting from a zero state and losing its first ``burn_in`` steps. ``model``: anything
    :func:`~timescale_probe.runner.run_stream` runs (a language model, or a bare stack fed embedded
    inputs). ``gates``: also collect ``T_data`` in the same pass where every layer has a retention
    gate. See the module docstring for the method and :class:`ActivityEstimate` for the outputs.
    """
    from ..runner import as_lstm_modules, cell_maths, model_layers, run_stream

    states = tuple(states)
    for s in states:
        if s not in STATES:
            raise OptionError(f"unknown state '{s}': use hidden or cell", param="states")
    to_convention(0.0, convention)  # checks the name
    is_lm = all(hasattr(model, a) for a in ("encoder", "decoder"))
    layers = model_layers(model) if is_lm else as_lstm_modules(model, device)
    hooks, accs = activity_hooks(layers, max_lag=max_lag, block=block, burn_in=burn_in, states=states)
    stats = None
    if gates and all(cell_maths(m).retention is not None for m in layers):
        from ..gates import GateStatistics

        stats = GateStatistics([m.hidden_size for m in layers], bins=0)  # no histograms
        hooks += stats.hooks()
    run = run_stream(model if is_lm else layers, tokens, hooks, batch_size=batch_size, block_tokens=BLOCK_TOKENS,
                     device=device, progress=progress, description="activity")
    blocks = {key: acc.finish() for key, acc in accs.items()}
    table, population, acf = timescales_from_blocks(blocks, n_boot=n_boot, level=level, seed=seed,
                                                    convention=convention, rules=rules, progress=progress)
    first = next(iter(blocks.values()))
    gate_table = stats.table(convention, level) if stats is not None else None
    options = dict(max_lag=max_lag, burn_in=burn_in, block=block, batch_size=batch_size, n_boot=n_boot, level=level,
                   seed=seed, states=list(states), convention=convention, n_steps=run.n_steps, streams=run.streams,
                   n_steps_used=first.n_steps, n_blocks=first.n_blocks, rules=dataclasses.asdict(rules),
                   cell_types=sorted({cell_maths(m).kind for m in layers}))
    return ActivityEstimate(table, population, acf, gate_table, options)
