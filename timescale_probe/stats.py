"""The one statistics module: intervals, tests, power, bootstrap and multiple testing.

Every combination over seeds, groups or resamples in tsprobe goes through these functions, so a
reader checks one implementation of each rule. Conventions, stated once:

- **One interval level**, :data:`LEVEL` = 95% (two-sided). One-sided tests run at
  ``alpha = (1 - level) / 2`` = 2.5%, so a one-sided verdict always agrees with the two-sided 95%
  interval shown beside it (``lo > 0`` exactly when the one-sided p < 2.5%).
- **Equivalence (TOST)** at the same level: equivalent when the 95% interval lies inside
  ``(-margin, +margin)``, i.e. both one-sided tests reject at 2.5%. (The textbook TOST at 5% uses
  a 90% interval; we keep one level and are the more conservative for it.)
- **Power** of a one-sample / paired t test from the noncentral t distribution, one-sided at
  ``alpha`` = 2.5% (the rule above); :func:`seeds_needed` is the smallest n reaching the target.
- NaN and infinite values are dropped by the scalar functions (``n`` counts what was used);
  the ``axis`` forms keep NaN where any input along the axis is NaN.

API (each returns plain floats or a small frozen dataclass):

- :func:`t_interval` -> :class:`TInterval` (mean, lo, hi, sd, n, level); ``axis=`` for arrays
- :func:`t_test` (one-sample, ``alternative`` two-sided | greater | less) -> :class:`TTest`;
  :func:`paired_t_test` is ``t_test(a - b)``
- :func:`tost` -> :class:`Equivalence`
- :func:`t_power`, :func:`seeds_needed`, :func:`effect_size`
- :func:`bootstrap_interval`, :func:`distinct_resamples`
- :func:`holm`, :func:`benjamini_hochberg` (adjusted p values, through statsmodels)
- :func:`mean_of_draws_null` (the null of a k-seed mean built from per-seed control draws) and
  :func:`empirical_p`
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import OptionError

#: the one interval level of every report row (two-sided)
LEVEL = 0.95
#: the one power target
POWER = 0.80

_ALTERNATIVES = ("two-sided", "greater", "less")


def _check_level(level: float) -> None:
    if not 0.0 < float(level) < 1.0:
        raise OptionError(f"level must lie strictly between 0 and 1, got {level}")


def one_sided_alpha(level: float = LEVEL) -> float:
    """The per-side error rate that matches a two-sided interval at ``level``: ``(1 - level) / 2``."""
    _check_level(level)
    return (1.0 - float(level)) / 2.0


def _finite(x) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


# ----------------------------------------------------------------------------------------------
# t intervals and t tests
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TInterval:
    """Mean with its Student-t interval. ``sd`` is the sample SD (ddof 1); with ``axis`` given,
    ``mean, lo, hi, sd`` are arrays. ``lo, hi`` are NaN when n < 2."""
    mean: float | np.ndarray
    lo: float | np.ndarray
    hi: float | np.ndarray
    sd: float | np.ndarray
    n: int
    level: float

    @property
    def half_width(self):
        return (np.asarray(self.hi) - np.asarray(self.lo)) / 2.0


def t_quantile(level: float, df) -> float | np.ndarray:
    """Two-sided Student-t quantile ``t_{(1+level)/2, df}`` (NaN where df < 1)."""
    from scipy import stats

    _check_level(level)
    df = np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        q = stats.t.ppf((1.0 + level) / 2.0, np.where(df >= 1, df, np.nan))
    return float(q) if q.ndim == 0 else q


def t_interval(x, level: float = LEVEL, *, axis: int | None = None) -> TInterval:
    """Mean of ``x`` and its ``level`` Student-t interval (df = n - 1).

    ``axis=None``: ``x`` is flattened and its non-finite values dropped. With ``axis``, the
    interval of every slice along ``axis`` (all slices have the same n; NaN propagates).
    """
    _check_level(level)
    if axis is None:
        v = _finite(x)
        n = int(v.size)
        if n == 0:
            return TInterval(math.nan, math.nan, math.nan, math.nan, 0, float(level))
        m = float(v.mean())
        if n < 2:
            return TInterval(m, math.nan, math.nan, math.nan, 1, float(level))
        sd = float(v.std(ddof=1))
        half = float(t_quantile(level, n - 1)) * sd / math.sqrt(n)
        return TInterval(m, m - half, m + half, sd, n, float(level))
    a = np.asarray(x, dtype=np.float64)
    n = int(a.shape[axis])
    m = a.mean(axis=axis) if n else np.full(np.delete(a.shape, axis), np.nan)
    if n < 2:
        nan = np.full_like(m, np.nan)
        return TInterval(m, nan, nan, nan, n, float(level))
    sd = a.std(axis=axis, ddof=1)
    half = t_quantile(level, n - 1) * sd / math.sqrt(n)
    return TInterval(m, m - half, m + half, sd, n, float(level))


@dataclass(frozen=True)
class TTest:
    """A one-sample t test of ``mean = mu`` (paired: of the differences). ``lo, hi``: the two-sided
    ``level`` interval of the mean, whatever the alternative; ``p`` is for ``alternative``."""
    estimate: float
    lo: float
    hi: float
    sd: float
    se: float
    t: float
    df: int
    p: float
    n: int
    alternative: str
    mu: float
    level: float

    @property
    def alpha(self) -> float:
        """The error rate this test's verdict uses: ``1 - level`` two-sided, ``(1 - level)/2`` one-sided."""
        return 1.0 - self.level if self.alternative == "two-sided" else one_sided_alpha(self.level)

    @property
    def rejects(self) -> bool:
        """True when ``p < alpha`` (False when the test could not run, n < 2)."""
        return bool(np.isfinite(self.p) and self.p < self.alpha)


def t_test(x, mu: float = 0.0, *, alternative: str = "two-sided", level: float = LEVEL) -> TTest:
    """One-sample Student t test of ``mean(x) = mu`` against ``alternative``
    (``"greater"``: mean > mu). Non-finite values are dropped; with n < 2, ``t`` and ``p`` are NaN.
    A zero SD with a mean away from ``mu`` gives ``t = ±inf`` and p 0 or 1."""
    from scipy import stats

    if alternative not in _ALTERNATIVES:
        raise OptionError(f"alternative must be one of {', '.join(_ALTERNATIVES)}, got {alternative!r}")
    ci = t_interval(x, level)
    n = ci.n
    if n < 2:
        return TTest(float(ci.mean), math.nan, math.nan, math.nan, math.nan, math.nan, max(n - 1, 0),
                     math.nan, n, alternative, float(mu), float(level))
    se = ci.sd / math.sqrt(n)
    diff = ci.mean - mu
    with np.errstate(divide="ignore", invalid="ignore"):
        t = diff / se if se > 0 else (math.copysign(math.inf, diff) if diff != 0 else math.nan)
    df = n - 1
    if alternative == "greater":
        p = float(stats.t.sf(t, df))
    elif alternative == "less":
        p = float(stats.t.cdf(t, df))
    else:
        p = float(2.0 * stats.t.sf(abs(t), df))
    return TTest(float(ci.mean), float(ci.lo), float(ci.hi), float(ci.sd), float(se), float(t), df, p, n,
                 alternative, float(mu), float(level))


def paired_t_test(a, b, *, alternative: str = "two-sided", level: float = LEVEL) -> TTest:
    """Paired t test of ``a - b`` (pairs with a non-finite member are dropped)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise OptionError(f"paired samples need the same length, got {a.size} and {b.size}")
    return t_test(a - b, alternative=alternative, level=level)


# ----------------------------------------------------------------------------------------------
# equivalence
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Equivalence:
    """Two one-sided tests (TOST) of ``-margin < mean < margin`` (``low, high`` in general).
    ``p`` = the larger of the two one-sided p values; ``equivalent`` when ``p < (1 - level)/2``,
    i.e. the two-sided ``level`` interval ``[lo, hi]`` lies inside ``(low, high)``."""
    estimate: float
    lo: float
    hi: float
    sd: float
    n: int
    low: float
    high: float
    p_lower: float
    p_upper: float
    level: float

    @property
    def p(self) -> float:
        return max(self.p_lower, self.p_upper)

    @property
    def equivalent(self) -> bool:
        return bool(np.isfinite(self.p) and self.p < one_sided_alpha(self.level))


def tost(x, margin: float | None = None, *, low: float | None = None, high: float | None = None,
         level: float = LEVEL) -> Equivalence:
    """Equivalence of ``mean(x)`` to the interval ``(low, high)`` (default ``(-margin, margin)``)
    by two one-sided t tests at ``(1 - level)/2`` each."""
    if margin is not None:
        if low is not None or high is not None:
            raise OptionError("give either margin or low/high, not both")
        if not margin > 0:
            raise OptionError(f"margin must be > 0, got {margin}")
        low, high = -float(margin), float(margin)
    if low is None or high is None or not low < high:
        raise OptionError(f"equivalence needs low < high, got {low}, {high}")
    lower = t_test(x, low, alternative="greater", level=level)
    upper = t_test(x, high, alternative="less", level=level)
    return Equivalence(lower.estimate, lower.lo, lower.hi, lower.sd, lower.n, float(low), float(high),
                       lower.p, upper.p, float(level))


# ----------------------------------------------------------------------------------------------
# power
# ----------------------------------------------------------------------------------------------

def effect_size(x) -> float:
    """Standardised mean ``d = mean / sd`` (Cohen's d_z for paired differences); NaN when n < 2."""
    v = _finite(x)
    if v.size < 2:
        return math.nan
    sd = float(v.std(ddof=1))
    return math.nan if sd == 0 else float(v.mean()) / sd


def t_power(effect: float, sd: float, n: int, *, level: float = LEVEL, alternative: str = "greater") -> float:
    """Power of the one-sample (paired) t test with ``n`` observations when the true mean is
    ``effect`` and the SD ``sd``: ``P(T' > t_crit)`` with ``T'`` noncentral t (df n - 1, ncp
    ``effect / sd * sqrt(n)``). One-sided alternatives use ``alpha = (1 - level)/2`` (the module's
    rule); ``"two-sided"`` uses ``1 - level`` split over both tails. NaN when n < 2 or sd <= 0."""
    from scipy import stats

    if alternative not in _ALTERNATIVES:
        raise OptionError(f"alternative must be one of {', '.join(_ALTERNATIVES)}, got {alternative!r}")
    _check_level(level)
    if n < 2 or not (sd > 0) or not np.isfinite(effect):
        return math.nan
    df = n - 1
    ncp = effect / sd * math.sqrt(n)
    if alternative == "less":
        ncp = -ncp
    if alternative == "two-sided":
        q = stats.t.ppf(1 - (1 - level) / 2, df)
        return float(stats.nct.sf(q, df, ncp) + stats.nct.cdf(-q, df, ncp))
    q = stats.t.ppf(1 - one_sided_alpha(level), df)
    return float(stats.nct.sf(q, df, ncp))


def seeds_needed(effect: float, sd: float, *, power: float = POWER, level: float = LEVEL,
                 alternative: str = "greater", max_n: int = 10000) -> int | None:
    """Smallest n (>= 2) at which :func:`t_power` reaches ``power``; None when the effect is zero,
    of the wrong sign for a one-sided alternative, or needs more than ``max_n``."""
    if not 0.0 < power < 1.0:
        raise OptionError(f"power must lie strictly between 0 and 1, got {power}")
    if not (sd > 0) or not np.isfinite(effect) or effect == 0:
        return None
    if (alternative == "greater" and effect < 0) or (alternative == "less" and effect > 0):
        return None

    def ok(n: int) -> bool:
        return t_power(effect, sd, n, level=level, alternative=alternative) >= power

    lo, hi = 2, 2
    while not ok(hi):  # power rises with n: double, then bisect
        lo, hi = hi + 1, hi * 2
        if hi > max_n:
            if not ok(max_n):
                return None
            hi = max_n
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return int(hi)


# ----------------------------------------------------------------------------------------------
# bootstrap
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BootstrapInterval:
    """Percentile bootstrap interval of ``statistic``; ``distinct`` = the number of distinct
    resamples there are of n values (a bootstrap over 3 seeds has only 10)."""
    estimate: float
    lo: float
    hi: float
    n: int
    n_resamples: int
    distinct: int
    level: float
    seed: int


def distinct_resamples(n: int) -> int:
    """How many distinct multisets a bootstrap of ``n`` values can draw: C(2n - 1, n)."""
    return math.comb(2 * n - 1, n) if n > 0 else 0


def bootstrap_interval(x, statistic: Callable[..., np.ndarray] = np.mean, *, n_resamples: int = 10000,
                       level: float = LEVEL, seed: int = 0) -> BootstrapInterval:
    """Percentile bootstrap of ``statistic`` over the finite values of ``x``. ``statistic`` must take
    an array and ``axis=-1`` (as ``np.mean``/``np.median`` do); all resamples run as one array."""
    _check_level(level)
    if n_resamples < 1:
        raise OptionError(f"n_resamples must be >= 1, got {n_resamples}")
    v = _finite(x)
    n = int(v.size)
    if n == 0:
        return BootstrapInterval(math.nan, math.nan, math.nan, 0, int(n_resamples), 0, float(level), int(seed))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(int(n_resamples), n))
    boot = np.asarray(statistic(v[idx], axis=-1), dtype=np.float64)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return BootstrapInterval(float(statistic(v, axis=-1)), float(lo), float(hi), n, int(n_resamples),
                             distinct_resamples(n), float(level), int(seed))


# ----------------------------------------------------------------------------------------------
# multiple testing
# ----------------------------------------------------------------------------------------------

def _adjust(p, method: str) -> np.ndarray:
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out


def holm(p) -> np.ndarray:
    """Holm step-down adjusted p values (NaN stays NaN and is not counted)."""
    return _adjust(p, "holm")


def benjamini_hochberg(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p values (false discovery rate; NaN stays NaN)."""
    return _adjust(p, "fdr_bh")


# ----------------------------------------------------------------------------------------------
# nulls built from controls
# ----------------------------------------------------------------------------------------------

def mean_of_draws_null(per_seed: Sequence[np.ndarray], *, n_draws: int = 20000, seed: int = 0,
                       statistic: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """The null distribution of a k-seed mean, from independent control draws of each seed.

    ``per_seed[s]`` holds seed ``s``'s control values, shape ``(m_s, ...)`` (one row per control).
    Each null draw picks one control row of every seed independently and averages over the k
    seeds, so the null has the spread of a k-seed mean, not of a single control. ``statistic``
    maps the rows drawn for one seed, shape ``(n_draws, ...)``, to values (default: identity).
    Returns ``(n_draws, ...)``.
    """
    if not len(per_seed):
        raise OptionError("the null of a seed mean needs at least one seed of controls")
    rng = np.random.default_rng(seed)
    total = None
    for s, ctrl in enumerate(per_seed):
        c = np.asarray(ctrl, dtype=np.float64)
        if c.shape[0] < 1:
            raise OptionError(f"seed {s} has no control values")
        rows = c[rng.integers(0, c.shape[0], size=int(n_draws))]
        vals = rows if statistic is None else np.asarray(statistic(rows), dtype=np.float64)
        total = vals if total is None else total + vals
    return total / len(per_seed)


def empirical_p(observed, null, *, alternative: str = "greater") -> float | np.ndarray:
    """Monte-Carlo p value ``(1 + #{null at least as extreme}) / (1 + N)`` along axis 0 of ``null``."""
    if alternative not in ("greater", "less"):
        raise OptionError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    null = np.asarray(null, dtype=np.float64)
    obs = np.asarray(observed, dtype=np.float64)
    hits = (null >= obs).sum(axis=0) if alternative == "greater" else (null <= obs).sum(axis=0)
    p = (1.0 + hits) / (1.0 + null.shape[0])
    return float(p) if np.ndim(p) == 0 else p
