"""Retention-gate bias and value <-> memory timescale: every f <-> T formula of the package.

The retention gate is the LSTM's forget gate ``f`` or the GRU's update gate ``z`` (both multiply the
previous state). Two conventions for what a gate value ``f`` means as a timescale ``T`` (steps):

- ``paper`` (Mahto et al. 2021, the default): with no input the state decays as ``f**t = exp(-t/T)``,
  so ``T = -1/log(f)``; for a sigmoid gate ``T = 1/softplus(-b)`` and ``b = -log(expm1(1/T))``.
- ``chrono`` (Tallec & Ollivier 2018), the leaky integrator's: ``T = 1/(1-f)``; for a sigmoid gate
  ``T = 1 + exp(b)``. The two differ most at short timescales: ``f = 0.5`` gives 1.44 (paper) and
  2 (chrono).

The gate value comes from the bias through the gate activation the model was saved with
(:mod:`timescale_probe.activations`): ``sigmoid``, or a hard sigmoid ``f = clip(s*b + 0.5, 0, 1)`` with
``s = 0.2`` (Keras 2) or ``1/6`` (Keras 3). A hard-sigmoid gate saturates: ``f = 1`` for
``b >= 0.5/s`` (2.5 or 3), a unit that never forgets, ``T = inf``; ``f = 0`` for ``b <= -0.5/s``,
``T = 0`` (paper) or 1 (chrono). Infinite timescales are kept as ``inf`` in tables; summaries and
fits leave them out and count them.

Every function accepts Python scalars, numpy arrays and torch tensors (where noted) and returns the
same kind; none lets a numpy warning through (NaN in gives NaN out, quietly).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .activations import GATE_ACTIVATIONS, HARD_SIGMOID_SLOPE, check_activation
from .errors import OptionError

CONVENTIONS = ("paper", "chrono")
#: Forget biases are clipped to +-BIAS_LIMIT when a spec is applied. 30 keeps every finite
#: quantile of the paper's specs exact (the longest paper-lm T, 359,932 steps, needs b=12.8) and
#: turns the T=0 quantile (b=-inf) into b=-30, a gate of 9e-14 whose timescale is 0.033 steps.
BIAS_LIMIT = 30.0


def check_convention(convention: str) -> str:
    """``paper`` (T = -1/log f) or ``chrono`` (T = 1/(1-f)); else one ``OptionError`` naming ``convention``."""
    if convention not in CONVENTIONS:
        raise OptionError(f"unknown convention '{convention}': use paper or chrono", param="convention")
    return convention


_check_convention = check_convention  # the former private name


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def forget_bias_to_timescale(bias, convention: str = "paper", gate_activation: str = "sigmoid"):
    """Timescale in steps of a unit whose effective retention-gate bias is ``bias``.

    The effective bias of a PyTorch LSTM is ``bias_ih + bias_hh`` (forget rows ``H:2H``; a GRU's
    update rows the same). Sigmoid gates: stable for any ``|b|`` up to 1e4 and for infinities
    (``b=+inf -> T=inf``, ``b=-inf -> T=0``); hard sigmoids: ``inf`` where the gate saturates at 1.
    """
    check_convention(convention)
    check_activation(gate_activation, "gate_activation", GATE_ACTIVATIONS)
    if _is_torch(bias):
        import torch

        b = bias if bias.is_floating_point() else bias.double()
        if gate_activation != "sigmoid":
            comp = torch.clamp(0.5 - HARD_SIGMOID_SLOPE[gate_activation] * b, 0.0, 1.0)
            return torch.as_tensor(gate_complement_to_timescale(comp.detach().cpu().double().numpy(), convention),
                                   dtype=b.dtype, device=b.device)
        if convention == "paper":
            return 1.0 / torch.logaddexp(torch.zeros_like(b), -b)
        return 1.0 + torch.exp(b)
    b = np.asarray(bias, dtype=np.float64)
    if gate_activation != "sigmoid":
        with np.errstate(invalid="ignore"):
            comp = np.clip(0.5 - HARD_SIGMOID_SLOPE[gate_activation] * b, 0.0, 1.0)
        return gate_complement_to_timescale(comp, convention)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        if convention == "paper":
            out = 1.0 / np.logaddexp(0.0, -b)
        else:
            out = 1.0 + np.exp(b)
    return out if out.ndim else float(out)


def _log_expm1(x):
    """log(exp(x) - 1) for x >= 0 without overflow (x large) or cancellation (x small)."""
    big = x > 1.0
    safe_small = np.where(big, 1.0, x)
    safe_big = np.where(big, x, 1.0)
    with np.errstate(divide="ignore", under="ignore"):
        return np.where(big, safe_big + np.log1p(-np.exp(-safe_big)), np.log(np.expm1(safe_small)))


def timescale_to_forget_bias(timescale, convention: str = "paper", gate_activation: str = "sigmoid"):
    """Retention-gate bias that gives a unit the timescale ``timescale`` (the inverse of
    :func:`forget_bias_to_timescale`). Sigmoid, ``paper``: T=0 -> -inf, T=inf -> +inf; ``chrono``:
    T=1 -> -inf, T < 1 has no chrono bias and raises. Hard sigmoids: the bias of the gate value
    ``f`` (T=inf -> the smallest bias with f=1, ``0.5/s``; T=0 -> ``-0.5/s``)."""
    check_convention(convention)
    check_activation(gate_activation, "gate_activation", GATE_ACTIVATIONS)
    torch_in = _is_torch(timescale)
    if torch_in:
        import torch

        dtype, device = timescale.dtype, timescale.device
        T = timescale.detach().cpu().double().numpy()
    else:
        T = np.asarray(timescale, dtype=np.float64)
    if np.any(np.isnan(T)) or np.any(T < 0):
        raise OptionError("timescales must be >= 0 (no NaN)")
    if convention == "chrono" and np.any(T < 1):
        raise OptionError("the chrono convention needs timescales >= 1 (T = 1/(1-f))")
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        if gate_activation != "sigmoid":
            if convention == "paper":
                f = np.where(T == 0, 0.0, np.exp(-1.0 / np.where(T == 0, 1.0, T)))
            else:
                f = 1.0 - 1.0 / T
            out = (f - 0.5) / HARD_SIGMOID_SLOPE[gate_activation]
        elif convention == "paper":
            inv = np.where(T == 0, np.inf, 1.0 / np.where(T == 0, 1.0, T))
            out = np.where(np.isinf(inv), -np.inf, -_log_expm1(np.where(np.isinf(inv), 1.0, inv)))
        else:
            out = np.log(T - 1.0)
    if torch_in:
        return torch.as_tensor(out, dtype=dtype if dtype.is_floating_point else torch.float64, device=device)
    return out if out.ndim else float(out)


def gate_complement_to_timescale(f_comp, convention: str = "paper"):
    """Timescale of a (mean) retention gate ``f`` given as ``1 - f``, in steps.

    ``paper``: ``T = -1/log(f) = -1/log1p(-(1-f))``; ``chrono``: ``T = 1/(1-f)``. ``1-f = 0`` gives
    ``inf``; ``1-f = 1`` gives 0 (paper).
    """
    check_convention(convention)
    q = np.asarray(f_comp, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if convention == "paper":
            out = -1.0 / np.log1p(-q)
        else:
            out = 1.0 / q
    out = np.where(q == 0, np.inf, out)
    return out if out.ndim else float(out)


def gate_to_timescale(f, convention: str = "paper"):
    """Timescale of a retention-gate value ``f`` (see :func:`gate_complement_to_timescale`)."""
    return gate_complement_to_timescale(1.0 - np.asarray(f, dtype=np.float64), convention)


def mean_gate_timescale(f_bar, fc_bar, convention: str = "paper"):
    """T of a mean gate known two ways, ``f_bar`` and ``fc_bar = 1 - f_bar``: the complement is
    exact near f = 1 (long timescales), ``f_bar`` itself near f = 0 (the T ~ 0 units)."""
    f_bar = np.clip(np.asarray(f_bar, dtype=np.float64), 0.0, 1.0)
    fc_bar = np.clip(np.asarray(fc_bar, dtype=np.float64), 0.0, 1.0)
    from_comp = gate_complement_to_timescale(fc_bar, convention)
    if convention == "chrono":
        return from_comp
    with np.errstate(divide="ignore", invalid="ignore"):
        from_f = np.where(f_bar > 0, -1.0 / np.log(np.where(f_bar > 0, f_bar, 0.5)), 0.0)
    return np.where(fc_bar < 0.5, from_comp, from_f)


def population_memory(timescales, t):
    """``M(t) = mean_T exp(-t/T)`` over a population of unit timescales (T=0 contributes 0, T=inf 1).

    ``t`` may be a scalar or an array; returns an array of the same shape as ``t``.
    """
    T = np.asarray(timescales, dtype=np.float64).ravel()
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        rate = np.where(T > 0, 1.0 / np.where(T > 0, T, 1.0), np.inf)
        out = np.exp(-np.multiply.outer(t, rate)).mean(axis=-1)
    return out if out.ndim else float(out)


def inverse_gamma_memory(t, shape: float, scale: float = 1.0):
    """``E[exp(-t/T)]`` for ``T ~ InvGamma(shape, scale)``: the power law ``(1 + t/scale)**-shape``."""
    return (1.0 + np.asarray(t, dtype=np.float64) / scale) ** (-shape)


# ----------------------------------------------------------------------------------------------
# one summary of a set of timescales (reproduce, estimate-timescales, inspect)
# ----------------------------------------------------------------------------------------------

def summarize_timescales(T, long_t: float = 10.0) -> dict[str, Any]:
    """Summary of one set of timescales (steps): ``units, median, q90, max, share_gt_<long_t>,
    share_gt_100, share_lt_1, infinite``.

    NaN is left out entirely. Infinite timescales (a saturated hard-sigmoid gate, a bias of +inf)
    are counted in ``units`` and ``infinite`` but left out of every statistic, which describes the
    finite ones. No finite unit gives NaN statistics (``units`` may still be > 0).
    """
    T = np.asarray(T, dtype=np.float64).ravel()
    T = T[~np.isnan(T)]
    finite = T[np.isfinite(T)]
    n_inf = int(T.size - finite.size)
    if finite.size == 0:
        nan = float("nan")
        return {"units": int(T.size), "median": nan, "q90": nan, "max": nan, f"share_gt_{long_t:g}": nan,
                "share_gt_100": nan, "share_lt_1": nan, "infinite": n_inf}
    return {"units": int(T.size), "median": float(np.median(finite)), "q90": float(np.quantile(finite, 0.9)),
            "max": float(np.max(finite)), f"share_gt_{long_t:g}": float(np.mean(finite > long_t)),
            "share_gt_100": float(np.mean(finite > 100)), "share_lt_1": float(np.mean(finite < 1)),
            "infinite": n_inf}


def summarize_timescale_table(table, column: str = "T_data", long_t: float = 10.0):
    """:func:`summarize_timescales` per layer and over all units (last row, ``layer = "all"``) of a
    timescales table (``layer`` and ``column`` columns): a DataFrame ``layer, units, median, q90,
    max, share_gt_<long_t>, share_gt_100, share_lt_1, infinite``."""
    import pandas as pd

    rows = [{"layer": str(k), **summarize_timescales(g[column], long_t)} for k, g in table.groupby("layer", sort=True)]
    rows.append({"layer": "all", **summarize_timescales(table[column], long_t)})
    return pd.DataFrame(rows)
