"""The learned timescale shape: the tail index of a layer's largest timescales (Hill estimator)
and the ML inverse-gamma fit, each with a bootstrap interval over units.

For T ~ InvGamma(a, b), P(T > t) ~ t^-a, so the tail index of the largest timescales *is* the
inverse-gamma shape a; the study compares the baseline's learned a against the source's k.
"""
from __future__ import annotations

import numpy as np

LEVEL = 0.95


def hill_tail_index(T, fraction: float = 0.25, min_units: int = 5) -> tuple[float, int]:
    """Hill estimate of the tail index of the largest timescales: with ``T_(1) >= ... `` and
    ``m = max(min_units, round(fraction * n))``, ``a = m / sum_{i<=m} log(T_(i) / T_(m+1))``.
    Only finite, positive T count. Returns ``(a, m)``; NaN when fewer than ``m + 1`` values."""
    x = np.asarray(T, dtype=np.float64).ravel()
    x = np.sort(x[np.isfinite(x) & (x > 0)])[::-1]
    m = max(int(min_units), int(round(fraction * x.size)))
    if x.size < m + 1:
        return float("nan"), m
    logs = np.log(x[:m]) - np.log(x[m])
    s = logs.sum()
    return (float(m / s) if s > 0 else float("inf")), m


def learned_shape(T, *, fraction: float = 0.25, n_boot: int = 1000, seed: int = 0, level: float = LEVEL) -> dict[str, float]:
    """Tail index (Hill) and ML inverse-gamma shape/scale of one layer's timescales, each with a
    nonparametric bootstrap percentile interval over units (``n_boot`` resamples; the ML refit,
    the slow part, on the first 200)."""
    from ..distributions import fit_mle

    x = np.asarray(T, dtype=np.float64).ravel()
    x = x[np.isfinite(x) & (x > 0)]
    out: dict[str, float] = {"n_units": int(x.size)}
    a_tail, m = hill_tail_index(x, fraction)
    out.update(a_tail=a_tail, tail_units=m)
    try:
        a_ig, b_ig, ok = fit_mle(x, "invgamma") if x.size >= 3 else (np.nan, np.nan, False)
    except Exception:  # noqa: BLE001  (a degenerate sample: no fit)
        a_ig, b_ig, ok = np.nan, np.nan, False
    out.update(a_ig=a_ig if ok else np.nan, b_ig=b_ig if ok else np.nan)
    rng = np.random.default_rng(seed)
    tails, igs = [], []
    for _ in range(int(n_boot)):
        r = x[rng.integers(0, x.size, x.size)] if x.size else x
        tails.append(hill_tail_index(r, fraction)[0])
        if len(igs) < 200:
            try:
                a, _, ok = fit_mle(r, "invgamma")
                igs.append(a if ok else np.nan)
            except Exception:  # noqa: BLE001
                igs.append(np.nan)
    alpha = (1 - level) / 2
    for name, vals in (("a_tail", tails), ("a_ig", igs)):
        v = np.asarray(vals, dtype=np.float64)
        v = v[np.isfinite(v)]
        lo, hi = (np.quantile(v, [alpha, 1 - alpha]) if v.size >= 10 else (np.nan, np.nan))
        out[f"{name}_low"], out[f"{name}_high"] = float(lo), float(hi)
    return out
