"""Kolmogorov-Smirnov statistics, the bootstrap of one family's fit, and the exclusion of unusable
timescales.

Uncertainty of one fit: the KS p-value is a parametric bootstrap (B samples from the fitted model,
each refit, ``p = (1 + #{KS_b >= KS_obs}) / (B + 1)``). Parameter intervals are percentile intervals
of either the same parametric refits (``ci_method="parametric"``) or of refits of units resampled
with replacement (``"nonparametric"``). ``"auto"`` (the default) uses the parametric refits unless
the KS test rejects the family at level ``KS_ALPHA``: the parametric bootstrap assumes the fitted
model, which the data have just rejected, so the nonparametric one is used instead. Every table row
says which bootstrap gave its interval (``ci_method``) and whether KS rejected (``ks_rejected``).
"""
from __future__ import annotations

import zlib
from typing import Any, Callable

import numpy as np

from .families import FAMILY_ORDER, Family

__all__ = ["exclusion_counts", "ks_statistic", "CI_METHODS", "KS_ALPHA", "CHUNK"]

def exclusion_counts(T) -> tuple[np.ndarray, dict[str, int]]:
    """Split timescales into usable values (finite, > 0, float64) and counts of the excluded ones:
    ``n_excluded_zero``, ``n_excluded_negative``, ``n_excluded_inf`` (+/-inf), ``n_excluded_nan``."""
    T = np.asarray(T, dtype=np.float64).ravel()
    nan = np.isnan(T)
    inf = np.isinf(T)
    zero = T == 0
    neg = (T < 0) & ~inf
    keep = ~(nan | inf | zero | neg)
    counts = {"n_excluded_zero": int(zero.sum()), "n_excluded_negative": int(neg.sum()),
              "n_excluded_inf": int(inf.sum()), "n_excluded_nan": int(nan.sum())}
    return T[keep], counts


def ks_statistic(x_sorted: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Kolmogorov-Smirnov statistic of each row (``x_sorted`` ascending, shape ``(B, n)``; ``cdf``
    the model's CDF at those values)."""
    n = x_sorted.shape[1]
    i = np.arange(1, n + 1)
    return np.maximum((i / n - cdf).max(axis=1), (cdf - (i - 1) / n).max(axis=1))


#: Bootstrap replicates are drawn and refitted in chunks of this many rows (memory stays ~n x 256
#: floats per array; the random stream does not depend on it).
CHUNK = 256
#: Simulated bootstrap values are clipped into [TINY, HUGE] so that logs and reciprocals stay finite.
TINY, HUGE = 1e-300, 1e300
#: Interval methods: parametric refits, refits of resampled units, or ``auto`` (parametric unless the
#: KS test rejects the family at ``KS_ALPHA``, then nonparametric).
CI_METHODS = ("auto", "parametric", "nonparametric")
#: Level at which a KS p-value counts as a rejection of the family (``ks_rejected``, ``auto``).
KS_ALPHA = 0.05


def _family_rng(seed: int, scope: str, family: str, purpose: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(scope.encode("utf-8")), FAMILY_ORDER.index(family), purpose])


def _percentile_interval(vals: np.ndarray, fitted: bool, alpha: float) -> tuple[float, float]:
    finite = vals[np.isfinite(vals)]
    if not fitted or finite.size == 0:
        return np.nan, np.nan
    lo, hi = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def fit_one_family(x: np.ndarray, fam: Family, *, fixed_scale, n_boot, seed, scope, ci_level, ci_method,
                   progress: Callable[[int], None] | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """Fit one family to one sample ``x`` (usable values) with its bootstraps.

    Returns the table row (``family, label, shape_name, shape, scale, scale_fixed, k, n, loglik,
    aic, bic, ks, ks_p, ks_rejected, shape_lo, shape_hi, scale_lo, scale_hi, ci_method,
    boot_unconverged, converged``) and the pointwise log-density at the sorted ``x``.
    ``ci_method`` in the row is the bootstrap that gave the intervals (``parametric`` or
    ``nonparametric``; ``none`` without a bootstrap). ``progress(b)`` is called after every chunk
    of ``b`` parametric refits. Each family and scope has its own seeded streams (parametric and
    nonparametric apart), so results do not depend on which other families are fitted.
    """
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {CI_METHODS}")
    n = x.size
    xs = np.sort(x)
    lx = np.log(xs)
    sh, sc, ok = fam.fit_rows(xs[None, :], lx[None, :], fixed_scale)
    shape, scale, converged = float(sh[0]), float(sc[0]), bool(ok[0])
    logpdf = np.asarray(fam.logpdf(xs, shape, scale), dtype=np.float64)
    loglik = float(logpdf.sum())
    k = fam.n_params(fixed_scale)
    ks_obs = float(ks_statistic(xs[None, :], np.asarray(fam.cdf(xs, shape, scale))[None, :])[0])
    row: dict[str, Any] = {
        "family": fam.name, "label": fam.label, "shape_name": fam.shape_name,
        "shape": shape if fam.has_shape else np.nan, "scale": scale,
        "scale_fixed": fixed_scale is not None, "k": k, "n": n,
        "loglik": loglik, "aic": 2 * k - 2 * loglik, "bic": k * np.log(n) - 2 * loglik,
        "ks": ks_obs, "converged": converged,
    }
    if n_boot <= 0:
        row.update(ks_p=np.nan, ks_rejected=False, shape_lo=np.nan, shape_hi=np.nan, scale_lo=np.nan,
                   scale_hi=np.nan, ci_method="none", boot_unconverged=0)
        return row, logpdf

    # parametric bootstrap: KS p-value (always) and the parametric intervals
    ks_boot, sh_boot, sc_boot, ok_boot = [], [], [], []
    rng = _family_rng(seed, scope, fam.name, 0)
    for start in range(0, n_boot, CHUNK):
        b = min(CHUNK, n_boot - start)
        sim = np.clip(np.asarray(fam.rvs(shape, scale, (b, n), rng), dtype=np.float64), TINY, HUGE)
        sim.sort(axis=1)
        bsh, bsc, bok = fam.fit_rows(sim, np.log(sim), fixed_scale)
        if not fam.has_shape:
            bsh = np.full(b, np.nan)
        cdf = np.asarray(fam.cdf(sim, bsh[:, None], bsc[:, None]), dtype=np.float64)
        ks_boot.append(ks_statistic(sim, cdf))
        sh_boot.append(bsh), sc_boot.append(bsc), ok_boot.append(bok)
        if progress is not None:
            progress(b)
    ks_p = float((1 + np.sum(np.concatenate(ks_boot) >= ks_obs)) / (n_boot + 1))
    rejected = ks_p < KS_ALPHA
    method = ci_method if ci_method != "auto" else ("nonparametric" if rejected else "parametric")
    if method == "nonparametric":  # refits of units resampled with replacement (its own stream)
        rng_np = _family_rng(seed, scope, fam.name, 1)
        sh_np, sc_np, ok_np = [], [], []
        for start in range(0, n_boot, CHUNK):
            b = min(CHUNK, n_boot - start)
            idx = rng_np.integers(0, n, size=(b, n))
            nsh, nsc, nok = fam.fit_rows(xs[idx], lx[idx], fixed_scale)
            sh_np.append(nsh), sc_np.append(nsc), ok_np.append(nok)
        bsh, bsc, bok = np.concatenate(sh_np), np.concatenate(sc_np), np.concatenate(ok_np)
    else:
        bsh, bsc, bok = np.concatenate(sh_boot), np.concatenate(sc_boot), np.concatenate(ok_boot)
    alpha = (1.0 - ci_level) / 2.0
    row["ks_p"] = ks_p
    row["ks_rejected"] = bool(rejected)
    row["shape_lo"], row["shape_hi"] = _percentile_interval(bsh, fam.has_shape, alpha)
    row["scale_lo"], row["scale_hi"] = _percentile_interval(bsc, fixed_scale is None, alpha)
    row["ci_method"] = method
    row["boot_unconverged"] = int((~bok).sum())
    return row, logpdf
