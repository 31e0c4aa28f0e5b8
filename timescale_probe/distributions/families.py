"""Fitting and comparing distributions of unit timescales (paper Fig. 1 and §1 of SPEC.md).

Timescales ``T`` are in time steps (tokens). Every family is fitted by maximum likelihood with the
location fixed at 0 and is named, with its parameters, in scipy's conventions:

============  =================  ============  ==========================================
family        scipy name         shape         relation used by the fast MLE
============  =================  ============  ==========================================
inverse gamma ``invgamma``       ``a``         1/T ~ gamma(a, scale=1/b)
gamma         ``gamma``          ``a``         Newton on log a - digamma(a) = log mean - mean log
lognormal     ``lognorm``        ``s``         closed form (scale = exp(mean log T))
Weibull       ``weibull_min``    ``c``         Newton on the profile equation of c
exponential   ``expon``          (none)        closed form (scale = mean)
log-logistic  ``fisk``           ``c``         log T ~ logistic(log b, 1/c): 2-D Newton
Frechet       ``invweibull``     ``c``         1/T ~ weibull_min(c, scale=1/b)
Lomax         ``lomax``          ``c``         Newton on the profile equation of the scale
============  =================  ============  ==========================================

``scale`` is ``b`` throughout. The MLEs are vectorised over bootstrap replicates (arrays of shape
``(B, n)``), so a parametric bootstrap of 1000 refits of all eight families takes seconds; the
tests check every fast MLE against ``scipy.stats.<dist>.fit(data, floc=0)``. With a fixed scale
(``fix_scale=1`` reproduces the reference's shape-only fit) only the shape is fitted; the
exponential then has no free parameter.

Units whose ``T`` is zero, negative, infinite or NaN cannot enter a likelihood on (0, inf): they are
excluded and counted (``n_excluded_zero``, ``n_excluded_negative``, ``n_excluded_inf``,
``n_excluded_nan`` in every table), never dropped silently.

Uncertainty: the KS p-value is a parametric bootstrap (B samples from the fitted model, each refit,
``p = (1 + #{KS_b >= KS_obs}) / (B + 1)``); parameter intervals are percentile intervals of the same
refits (``ci_method="parametric"``) or of refits of resampled units (``"nonparametric"``).

Comparisons follow powerlaw's ``distribution_compare``: ``R`` is a log-likelihood ratio and comes
with a p-value. Non-nested pairs (every family against inverse gamma) use Vuong's test; nested
pairs (exponential inside gamma and inside Weibull: shape 1) use the likelihood-ratio test.
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from .errors import InputError, OptionError

__all__ = [
    "FAMILIES", "FAMILY_ORDER", "Family", "FitReport", "fit_timescales", "fit_table", "fit_mle",
    "load_timescales", "parse_families", "parse_layers", "sorted_curve", "figure_tables",
    "exclusion_counts", "vuong_test", "likelihood_ratio_test",
]

# ----------------------------------------------------------------------------------------------
# vectorised maximum likelihood
# ----------------------------------------------------------------------------------------------

_TOL = 1e-12


def _solve_increasing(fun: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], t0: np.ndarray, *,
                      step: float = 1.0, max_expand: int = 12, maxiter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``f(t) = 0`` row by row for an increasing ``f`` (vectorised safeguarded Newton).

    ``fun(t)`` returns ``(f, df/dt)`` for a vector ``t``. A bracket is found by stepping out from
    ``t0`` (doubling steps); Newton steps that leave the bracket become bisections. Returns ``t``
    and a mask of rows where a root was bracketed and found (others end at the bracket's edge).
    """
    t0 = np.asarray(t0, dtype=np.float64).copy()
    t0[~np.isfinite(t0)] = 0.0
    lo, hi = t0 - step, t0 + step
    flo, _ = fun(lo)
    fhi, _ = fun(hi)
    width = step
    for _ in range(max_expand):
        bad_lo = ~(flo < 0)
        bad_hi = ~(fhi > 0)
        if not (bad_lo.any() or bad_hi.any()):
            break
        width *= 2.0
        if bad_lo.any():
            lo = np.where(bad_lo, lo - width, lo)
            flo = np.where(bad_lo, fun(lo)[0], flo)
        if bad_hi.any():
            hi = np.where(bad_hi, hi + width, hi)
            fhi = np.where(bad_hi, fun(hi)[0], fhi)
    bracketed = (flo < 0) & (fhi > 0)
    t = np.where((t0 > lo) & (t0 < hi), t0, 0.5 * (lo + hi))
    t = np.where(bracketed, t, np.where(flo < 0, hi, lo))  # unbracketed rows: the edge reached
    active = bracketed.copy()
    converged = np.zeros_like(bracketed)
    f, d = fun(t)
    for _ in range(maxiter):
        if not active.any():
            break
        lo = np.where(active & (f < 0), t, lo)
        hi = np.where(active & (f > 0), t, hi)
        with np.errstate(all="ignore"):
            tn = t - f / d
        bisect = ~np.isfinite(tn) | (tn <= lo) | (tn >= hi)
        tn = np.where(bisect, 0.5 * (lo + hi), tn)
        done = active & ((np.abs(tn - t) <= _TOL * (1.0 + np.abs(t))) | (f == 0) | (hi - lo <= _TOL * (1.0 + np.abs(t))))
        t = np.where(active, tn, t)
        converged |= done
        active &= ~done
        if active.any():
            f, d = fun(t)
    return t, converged & bracketed


def _gamma_mle(m: np.ndarray, lm: np.ndarray, fixed_scale: float | None):
    """Gamma MLE from the sufficient statistics ``m = mean(x)`` and ``lm = mean(log x)`` per row."""
    if fixed_scale is None:
        s = np.log(m) - lm  # > 0 unless all values are equal (Jensen)
        ok = s > 0
        s = np.where(ok, s, 1.0)
        a0 = (3.0 - s + np.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)  # Minka's start

        def fun(t):
            a = np.exp(t)
            return special.digamma(a) - t + s, a * special.polygamma(1, a) - 1.0

        t, conv = _solve_increasing(fun, np.log(a0), step=0.5)
        a = np.exp(t)
        return a, m / a, conv & ok
    target = lm - np.log(fixed_scale)
    a0 = np.where(target > -2.0, np.exp(np.minimum(target, 700.0)) + 0.5, -1.0 / np.minimum(target, -1e-300))

    def fun(t):
        a = np.exp(t)
        return special.digamma(a) - target, a * special.polygamma(1, a)

    t, conv = _solve_increasing(fun, np.log(a0), step=0.5)
    return np.exp(t), np.full_like(t, float(fixed_scale)), conv


def _fit_gamma(x, lx, fixed_scale):
    return _gamma_mle(x.mean(axis=1), lx.mean(axis=1), fixed_scale)


def _fit_invgamma(x, lx, fixed_scale):
    with np.errstate(over="ignore"):
        y = 1.0 / x
    a, scale_y, ok = _gamma_mle(y.mean(axis=1), -lx.mean(axis=1), None if fixed_scale is None else 1.0 / fixed_scale)
    return a, 1.0 / scale_y, ok


def _fit_lognorm(x, lx, fixed_scale):
    mu = lx.mean(axis=1) if fixed_scale is None else np.full(lx.shape[0], np.log(fixed_scale))
    s = np.sqrt(np.mean((lx - mu[:, None]) ** 2, axis=1))
    return s, np.exp(mu), s > 0


def _fit_expon(x, lx, fixed_scale):
    scale = x.mean(axis=1) if fixed_scale is None else np.full(x.shape[0], float(fixed_scale))
    return np.full(x.shape[0], np.nan), scale, np.isfinite(scale)


def _weibull_mle(lx: np.ndarray, fixed_scale: float | None):
    """Weibull MLE from ``lx = log x`` (rows are samples). Returns shape c, scale, converged."""
    sd = lx.std(axis=1)
    ok = sd > 0
    t0 = np.log(np.pi / (np.sqrt(6.0) * np.where(ok, sd, 1.0)))
    if fixed_scale is None:
        ymax = lx.max(axis=1, keepdims=True)
        yc = lx - ymax
        ybar = yc.mean(axis=1)

        def fun(t):
            c = np.exp(t)
            w = np.exp(c[:, None] * yc)
            W = w.sum(axis=1)
            wy = w * yc
            m1 = wy.sum(axis=1) / W
            m2 = (wy * yc).sum(axis=1) / W
            return m1 - 1.0 / c - ybar, c * (m2 - m1 * m1) + 1.0 / c

        t, conv = _solve_increasing(fun, t0)
        c = np.exp(t)
        log_scale = ymax[:, 0] + np.log(np.mean(np.exp(c[:, None] * yc), axis=1)) / c
        return c, np.exp(log_scale), conv & ok
    y = lx - np.log(fixed_scale)
    ybar = y.mean(axis=1)
    y2 = y * y

    def fun(t):
        c = np.exp(t)
        with np.errstate(over="ignore", invalid="ignore"):
            w = np.exp(c[:, None] * y)
            m1 = (w * y).mean(axis=1)
            m2 = (w * y2).mean(axis=1)
        return m1 - ybar - 1.0 / c, c * m2 + 1.0 / c

    t, conv = _solve_increasing(fun, t0)
    return np.exp(t), np.full_like(t, float(fixed_scale)), conv & ok


def _fit_weibull(x, lx, fixed_scale):
    return _weibull_mle(lx, fixed_scale)


def _fit_invweibull(x, lx, fixed_scale):
    c, scale_y, ok = _weibull_mle(-lx, None if fixed_scale is None else 1.0 / fixed_scale)
    return c, 1.0 / scale_y, ok


def _logistic_g(z):
    """log of the standard logistic density, stable for any z."""
    az = np.abs(z)
    return -az - 2.0 * np.log1p(np.exp(-az))


def _fit_fisk(x, lx, fixed_scale):
    """Log-logistic: ``log T ~ logistic(loc=log b, scale=1/c)``. The log-likelihood is concave in
    ``(alpha, beta) = (mu/s, 1/s)``, so damped 2-D Newton from the moment start converges."""
    B = lx.shape[0]
    if fixed_scale is not None:
        u = lx - np.log(fixed_scale)
        rms = np.sqrt(np.mean(u * u, axis=1))
        ok = rms > 0

        def fun(t):
            z = np.exp(t)[:, None] * u
            th = np.tanh(0.5 * z)
            ztan = z * th
            return ztan.mean(axis=1) - 1.0, (ztan + 0.5 * z * z * (1.0 - th * th)).mean(axis=1)

        t, conv = _solve_increasing(fun, np.log(np.pi / (np.sqrt(3.0) * np.where(ok, rms, 1.0))))
        return np.exp(t), np.full(B, float(fixed_scale)), conv & ok
    m0 = np.median(lx, axis=1)
    s0 = np.sqrt(3.0) / np.pi * lx.std(axis=1)
    ok = s0 > 0
    s0 = np.where(ok, s0, 1.0)
    y = (lx - m0[:, None]) / s0[:, None]
    alpha = np.zeros(B)
    beta = np.ones(B)

    def loglik(al, be):
        return np.log(be) + _logistic_g(be[:, None] * y - al[:, None]).mean(axis=1)

    ll = loglik(alpha, beta)
    active = ok.copy()
    conv = np.zeros(B, dtype=bool)
    for _ in range(100):
        if not active.any():
            break
        z = beta[:, None] * y - alpha[:, None]
        th = np.tanh(0.5 * z)
        g2 = -0.5 * (1.0 - th * th)  # second derivative of log density
        ga = th.mean(axis=1)
        gb = 1.0 / beta - (th * y).mean(axis=1)
        haa = g2.mean(axis=1)
        hab = -(g2 * y).mean(axis=1)
        hbb = -1.0 / beta ** 2 + (g2 * y * y).mean(axis=1)
        det = haa * hbb - hab * hab
        with np.errstate(all="ignore"):
            da = -(hbb * ga - hab * gb) / det
            db = -(-hab * ga + haa * gb) / det
        da = np.where(active & np.isfinite(da), da, 0.0)
        db = np.where(active & np.isfinite(db), db, 0.0)
        step = np.ones(B)
        accepted = ~active
        new_a, new_b, new_ll = alpha.copy(), beta.copy(), ll.copy()
        for _ in range(40):
            pending = ~accepted
            if not pending.any():
                break
            ta = alpha + step * da
            tb = beta + step * db
            valid = tb > 0
            with np.errstate(all="ignore"):
                tll = np.where(valid, loglik(ta, np.where(valid, tb, 1.0)), -np.inf)
            good = pending & (tll >= ll - 1e-15 * np.abs(ll))
            new_a = np.where(good, ta, new_a)
            new_b = np.where(good, tb, new_b)
            new_ll = np.where(good, tll, new_ll)
            accepted |= good
            step = np.where(accepted, step, 0.5 * step)
        small = (np.abs(step * da) <= 1e-11 * (1.0 + np.abs(alpha))) & (np.abs(step * db) <= 1e-11 * beta)
        alpha, beta, ll = new_a, new_b, new_ll
        done = active & (small | ~accepted)
        conv |= done & accepted
        active &= ~done
    c = beta / s0
    log_scale = m0 + s0 * alpha / beta
    return c, np.exp(log_scale), conv & ok


def _fit_lomax(x, lx, fixed_scale):
    """Lomax (Pareto II) ``pdf = c/b (1 + x/b)^-(c+1)``; given b, ``c = 1/mean(log1p(x/b))``.
    The scale solves ``(c + 1) mean(x/(b + x)) = 1``; samples lighter-tailed than the exponential
    have no finite solution (b -> inf, the exponential limit): those rows are flagged."""
    if fixed_scale is not None:
        c = 1.0 / np.mean(np.log1p(x / fixed_scale), axis=1)
        return c, np.full(x.shape[0], float(fixed_scale)), np.isfinite(c)
    m = x.mean(axis=1, keepdims=True)
    xs = x / m

    def fun(t):
        b = np.exp(t)[:, None]
        r = xs / (b + xs)
        u = r.mean(axis=1)
        S = np.log1p(xs / b).mean(axis=1)
        du = -(r * (1.0 - r)).mean(axis=1)
        return 1.0 - u / S - u, -(du * S + u * u) / (S * S) - du

    t, conv = _solve_increasing(fun, np.zeros(x.shape[0]), step=1.0, max_expand=6)
    b = np.exp(t)
    c = 1.0 / np.log1p(xs / b[:, None]).mean(axis=1)
    return c, b * m[:, 0], conv


def _rvs_invgamma(shape, scale, size, rng):
    """InvGamma(a, b) draws as b / Gamma(a, 1) (scipy's invgamma.rvs inverts the CDF: 8x slower)."""
    with np.errstate(divide="ignore", over="ignore"):
        return scale / rng.standard_gamma(shape, size=size)


@dataclass(frozen=True)
class Family:
    """One distribution family on (0, inf), location fixed at 0, in scipy's parametrisation."""

    name: str          # scipy name, e.g. "invgamma"
    label: str         # human name, e.g. "inverse gamma"
    shape_name: str    # scipy's name of the shape parameter ("" when there is none)
    fitter: Callable = field(repr=False, compare=False)
    aliases: tuple[str, ...] = ()
    sampler: Callable | None = field(default=None, repr=False, compare=False)  # faster than scipy's rvs

    @property
    def dist(self):
        return getattr(stats, self.name)

    @property
    def has_shape(self) -> bool:
        return bool(self.shape_name)

    def n_params(self, fixed_scale: float | None) -> int:
        return int(self.has_shape) + int(fixed_scale is None)

    def _args(self, shape) -> tuple:
        return (shape,) if self.has_shape else ()

    def logpdf(self, x, shape, scale):
        return self.dist.logpdf(x, *self._args(shape), scale=scale)

    def pdf(self, x, shape, scale):
        return self.dist.pdf(x, *self._args(shape), scale=scale)

    def cdf(self, x, shape, scale):
        return self.dist.cdf(x, *self._args(shape), scale=scale)

    def sf(self, x, shape, scale):
        return self.dist.sf(x, *self._args(shape), scale=scale)

    def ppf(self, q, shape, scale):
        return self.dist.ppf(q, *self._args(shape), scale=scale)

    def isf(self, q, shape, scale):
        return self.dist.isf(q, *self._args(shape), scale=scale)

    def rvs(self, shape, scale, size, rng):
        if self.sampler is not None:
            return self.sampler(shape, scale, size, rng)
        return self.dist.rvs(*self._args(shape), scale=scale, size=size, random_state=rng)

    def fit_rows(self, x: np.ndarray, lx: np.ndarray | None = None, fixed_scale: float | None = None):
        """Fast MLE of every row of ``x`` (shape ``(B, n)``, all values > 0 and finite).

        Returns ``(shape, scale, converged)``, each of shape ``(B,)`` (``shape`` is NaN for the
        exponential)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if lx is None:
            lx = np.log(x)
        with np.errstate(under="ignore"):
            return self.fitter(x, lx, fixed_scale)


FAMILY_ORDER = ("invgamma", "gamma", "lognorm", "weibull_min", "expon", "fisk", "invweibull", "lomax")
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("invgamma", "inverse gamma", "a", _fit_invgamma, ("inverse-gamma", "inversegamma", "inverse_gamma", "ig"),
           _rvs_invgamma),
    Family("gamma", "gamma", "a", _fit_gamma),
    Family("lognorm", "lognormal", "s", _fit_lognorm, ("lognormal", "log-normal")),
    Family("weibull_min", "Weibull", "c", _fit_weibull, ("weibull",)),
    Family("expon", "exponential", "", _fit_expon, ("exponential", "exp")),
    Family("fisk", "log-logistic", "c", _fit_fisk, ("log-logistic", "loglogistic")),
    Family("invweibull", "Frechet", "c", _fit_invweibull, ("frechet", "fréchet", "inverse-weibull")),
    Family("lomax", "Lomax", "c", _fit_lomax, ("pareto2", "pareto-ii")),
)}
_ALIASES = {alias.lower(): f.name for f in FAMILIES.values() for alias in (f.name, *f.aliases)}
#: Nested pairs tested by the likelihood-ratio test: (bigger, smaller). The exponential is the
#: gamma and the Weibull with shape 1 (also with a common fixed scale). The exponential is only a
#: limit of the Lomax (b -> inf), where the chi-square law of the LRT fails, so that pair is not
#: tested; no family is nested in the inverse gamma or contains it, so those pairs use Vuong.
NESTED_PAIRS = (("gamma", "expon"), ("weibull_min", "expon"))


def parse_families(spec: str | Sequence[str] | None) -> list[str]:
    """Family names (scipy names or aliases, comma-separated or a list; ``None``/``all`` = all 8)."""
    if spec is None:
        return list(FAMILY_ORDER)
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s and s.strip()]
    if not items or [i.lower() for i in items] == ["all"]:
        return list(FAMILY_ORDER)
    out = []
    for item in items:
        name = _ALIASES.get(item.lower())
        if name is None:
            raise OptionError(f"unknown distribution family '{item}': use any of {', '.join(FAMILY_ORDER)}")
        if name not in out:
            out.append(name)
    return out


def fit_mle(x, family: str, fix_scale: float | None = None) -> tuple[float, float, bool]:
    """MLE (loc 0) of one family on one sample ``x`` (positive, finite): ``(shape, scale, converged)``."""
    fam = FAMILIES[parse_families([family])[0]]
    x = np.asarray(x, dtype=np.float64)
    sh, sc, ok = fam.fit_rows(x[None, :], fixed_scale=fix_scale)
    return float(sh[0]), float(sc[0]), bool(ok[0])


# ----------------------------------------------------------------------------------------------
# data cleaning, tests, bootstrap
# ----------------------------------------------------------------------------------------------

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


def _ks_rows(x_sorted: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Kolmogorov-Smirnov statistic of each row (``x_sorted`` ascending; ``cdf`` at those values)."""
    n = x_sorted.shape[1]
    i = np.arange(1, n + 1)
    return np.maximum((i / n - cdf).max(axis=1), (cdf - (i - 1) / n).max(axis=1))


def vuong_test(ll_a: np.ndarray, ll_b: np.ndarray) -> tuple[float, float, float]:
    """Vuong's test of non-nested models from pointwise log-likelihoods.

    Returns ``(R, z, p)``: ``R = sum(ll_a - ll_b)`` (> 0 favours a), ``z = R / (sqrt(n) * sd)``
    with the population sd of the pointwise differences, and the two-sided normal p-value.
    No correction for the number of parameters (powerlaw's convention)."""
    d = np.asarray(ll_a, dtype=np.float64) - np.asarray(ll_b, dtype=np.float64)
    R = float(d.sum())
    sd = float(d.std())
    if sd == 0 or not np.isfinite(sd):
        return R, 0.0, 1.0
    z = R / (np.sqrt(d.size) * sd)
    return R, float(z), float(special.erfc(abs(z) / np.sqrt(2.0)))


def likelihood_ratio_test(ll_big: float, ll_small: float, df: int) -> tuple[float, float, float]:
    """LRT of nested models: ``(R, 2R, p)`` with ``R = ll_big - ll_small`` and ``p = chi2.sf(2R, df)``."""
    R = float(ll_big - ll_small)
    stat = max(2.0 * R, 0.0)
    return R, 2.0 * R, float(stats.chi2.sf(stat, df))


#: Bootstrap replicates are drawn and refitted in chunks of this many rows (memory stays ~n x 256
#: floats per array; the random stream does not depend on it).
CHUNK = 256
#: Simulated bootstrap values are clipped into [TINY, HUGE] so that logs and reciprocals stay finite.
TINY, HUGE = 1e-300, 1e300


def _family_rng(seed: int, scope: str, family: str, purpose: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(scope.encode("utf-8")), FAMILY_ORDER.index(family), purpose])


def _fit_one(x: np.ndarray, fam: Family, *, fixed_scale, n_boot, seed, scope, ci_level, ci_method,
             progress: Callable[[int], None] | None) -> tuple[dict[str, Any], np.ndarray]:
    """Fit one family to one sample with its bootstrap; returns the table row and pointwise logpdf."""
    n = x.size
    xs = np.sort(x)
    lx = np.log(xs)
    sh, sc, ok = fam.fit_rows(xs[None, :], lx[None, :], fixed_scale)
    shape, scale, converged = float(sh[0]), float(sc[0]), bool(ok[0])
    logpdf = np.asarray(fam.logpdf(xs, shape, scale), dtype=np.float64)
    loglik = float(logpdf.sum())
    k = fam.n_params(fixed_scale)
    ks_obs = float(_ks_rows(xs[None, :], np.asarray(fam.cdf(xs, shape, scale))[None, :])[0])

    ks_boot, sh_boot, sc_boot, ok_boot = [], [], [], []
    sh_np, sc_np, ok_np = [], [], []
    rng = _family_rng(seed, scope, fam.name, 0)
    rng_np = _family_rng(seed, scope, fam.name, 1)
    for start in range(0, n_boot, CHUNK):
        b = min(CHUNK, n_boot - start)
        sim = np.clip(np.asarray(fam.rvs(shape, scale, (b, n), rng), dtype=np.float64), TINY, HUGE)
        sim.sort(axis=1)
        lsim = np.log(sim)
        bsh, bsc, bok = fam.fit_rows(sim, lsim, fixed_scale)
        if not fam.has_shape:
            bsh = np.full(b, np.nan)
        cdf = np.asarray(fam.cdf(sim, bsh[:, None], bsc[:, None]), dtype=np.float64)
        ks_boot.append(_ks_rows(sim, cdf))
        sh_boot.append(bsh), sc_boot.append(bsc), ok_boot.append(bok)
        if ci_method == "nonparametric":
            idx = rng_np.integers(0, n, size=(b, n))
            res = xs[idx]
            nsh, nsc, nok = fam.fit_rows(res, lx[idx], fixed_scale)
            sh_np.append(nsh), sc_np.append(nsc), ok_np.append(nok)
        if progress is not None:
            progress(b)
    row: dict[str, Any] = {
        "family": fam.name, "label": fam.label, "shape_name": fam.shape_name,
        "shape": shape if fam.has_shape else np.nan, "scale": scale,
        "scale_fixed": fixed_scale is not None, "k": k, "n": n,
        "loglik": loglik, "aic": 2 * k - 2 * loglik, "bic": k * np.log(n) - 2 * loglik,
        "ks": ks_obs, "converged": converged,
    }
    alpha = (1.0 - ci_level) / 2.0
    if n_boot > 0:
        ks_b = np.concatenate(ks_boot)
        row["ks_p"] = float((1 + np.sum(ks_b >= ks_obs)) / (n_boot + 1))
        if ci_method == "nonparametric":
            bsh, bsc, bok = np.concatenate(sh_np), np.concatenate(sc_np), np.concatenate(ok_np)
        else:
            bsh, bsc, bok = np.concatenate(sh_boot), np.concatenate(sc_boot), np.concatenate(ok_boot)
        for name, vals, fitted in (("shape", bsh, fam.has_shape), ("scale", bsc, fixed_scale is None)):
            finite = vals[np.isfinite(vals)]
            if fitted and finite.size:
                lo_hi = np.quantile(finite, [alpha, 1.0 - alpha])
                row[f"{name}_lo"], row[f"{name}_hi"] = float(lo_hi[0]), float(lo_hi[1])
            else:
                row[f"{name}_lo"] = row[f"{name}_hi"] = np.nan
        row["boot_unconverged"] = int((~bok).sum())
    else:
        row.update(ks_p=np.nan, shape_lo=np.nan, shape_hi=np.nan, scale_lo=np.nan, scale_hi=np.nan,
                   boot_unconverged=0)
    return row, logpdf


FIT_COLUMNS = [
    "scope", "family", "label", "shape_name", "shape", "shape_lo", "shape_hi", "scale", "scale_lo",
    "scale_hi", "scale_fixed", "k", "n", "loglik", "aic", "bic", "delta_aic", "ks", "ks_p", "converged",
    "boot_unconverged", "n_boot", "ci_method", "ci_level", "n_excluded_zero", "n_excluded_negative",
    "n_excluded_inf", "n_excluded_nan",
]
COMPARISON_COLUMNS = ["scope", "family", "vs", "test", "R", "statistic", "p", "favoured", "significant"]


@dataclass
class FitReport:
    """Result of fitting timescale distributions, one or several scopes (``pooled``, ``layer 1``...).

    Attributes (tidy DataFrames):

    - ``fits_``: one row per scope and family: ``family`` (scipy name), ``label``, ``shape_name``
      (``a``/``s``/``c``, empty for expon), ``shape``, ``scale`` (= b, same unit as T: time steps),
      ``*_lo``/``*_hi`` bootstrap percentile interval (``ci_level``, ``ci_method``, ``n_boot``),
      ``scale_fixed``, ``k`` free parameters, ``n`` units used, ``loglik``, ``aic``, ``bic``,
      ``delta_aic`` (to the scope's best), ``ks`` and ``ks_p`` (parametric bootstrap),
      ``converged`` (observed fit), ``boot_unconverged`` (replicates whose MLE did not converge),
      ``n_excluded_zero|negative|inf|nan``.
    - ``comparisons_``: ``family`` vs ``vs``, ``test`` (``vuong`` or ``lrt``), ``R`` = loglik(family)
      - loglik(vs) (> 0 favours ``family``), ``statistic`` (Vuong z, or 2R for the LRT), ``p``,
      ``favoured`` (Vuong: the sign; LRT: the bigger model when p < 0.05, else the smaller),
      ``significant`` (p < 0.05).
    - ``samples_``: ``scope, T`` the values fitted (excluded units left out), for figures.
    - ``skipped_``: scopes that could not be fitted, with the reason.
    """

    fits_: pd.DataFrame
    comparisons_: pd.DataFrame
    samples_: pd.DataFrame
    options: dict[str, Any]
    skipped_: list[tuple[str, str]] = field(default_factory=list)

    @property
    def scopes(self) -> list[str]:
        return list(dict.fromkeys(self.fits_["scope"]))

    def params(self, family: str = "invgamma", scope: str | None = None) -> tuple[float, float]:
        """(shape, scale) of ``family`` in ``scope`` (the first scope by default)."""
        row = self._row(family, scope)
        return float(row["shape"]), float(row["scale"])

    def _row(self, family: str, scope: str | None) -> pd.Series:
        scope = self.scopes[0] if scope is None else scope
        sel = self.fits_[(self.fits_["scope"] == scope) & (self.fits_["family"] == family)]
        if sel.empty:
            raise KeyError(f"no fit of {family} in scope {scope}")
        return sel.iloc[0]

    def best(self, scope: str | None = None) -> str:
        """Family with the lowest AIC in ``scope``."""
        scope = self.scopes[0] if scope is None else scope
        f = self.fits_[self.fits_["scope"] == scope]
        return str(f.loc[f["aic"].idxmin(), "family"])


def _check_options(n_boot, ci_level, ci_method, fix_scale):
    if int(n_boot) < 0:
        raise OptionError(f"--bootstrap must be >= 0 (got {n_boot})")
    if not 0 < ci_level < 1:
        raise OptionError(f"the confidence level must lie in (0, 1) (got {ci_level})")
    if ci_method not in ("parametric", "nonparametric"):
        raise OptionError(f"unknown --ci-bootstrap '{ci_method}': use parametric or nonparametric")
    if fix_scale is not None and not (np.isfinite(fix_scale) and fix_scale > 0):
        raise OptionError(f"--fix-scale must be a positive number (got {fix_scale})")


def _fit_scope(T, scope: str, families: list[str], *, fix_scale, n_boot, seed, ci_level, ci_method,
               compare_to, progress) -> tuple[list[dict], list[dict], np.ndarray, dict[str, int]]:
    x, counts = exclusion_counts(T)
    if x.size < 3 or np.unique(x).size < 2:
        excl = ", ".join(f"{k[len('n_excluded_'):]}: {v}" for k, v in counts.items() if v)
        raise InputError(
            f"{scope}: only {x.size} usable timescales ({np.unique(x).size} distinct)"
            f"{' after excluding ' + excl if excl else ''}; need at least 3 with 2 distinct values"
        )
    rows, logpdfs = [], {}
    for name in families:
        row, lp = _fit_one(x, FAMILIES[name], fixed_scale=fix_scale, n_boot=n_boot, seed=seed, scope=scope,
                           ci_level=ci_level, ci_method=ci_method, progress=progress)
        row.update(scope=scope, n_boot=n_boot, ci_method=ci_method, ci_level=ci_level, **counts)
        rows.append(row)
        logpdfs[name] = lp
    best_aic = min(r["aic"] for r in rows)
    for r in rows:
        r["delta_aic"] = r["aic"] - best_aic
    comps = []
    if compare_to in logpdfs:
        for name in families:
            if name == compare_to:
                continue
            R, z, p = vuong_test(logpdfs[compare_to], logpdfs[name])
            comps.append({"scope": scope, "family": compare_to, "vs": name, "test": "vuong", "R": R,
                          "statistic": z, "p": p, "favoured": compare_to if R > 0 else name,
                          "significant": p < 0.05})
    k = {r["family"]: r["k"] for r in rows}
    for big, small in NESTED_PAIRS:
        if big in logpdfs and small in logpdfs and k[big] > k[small]:
            R, stat, p = likelihood_ratio_test(logpdfs[big].sum(), logpdfs[small].sum(), k[big] - k[small])
            comps.append({"scope": scope, "family": big, "vs": small, "test": "lrt", "R": R, "statistic": stat,
                          "p": p, "favoured": big if p < 0.05 else small, "significant": p < 0.05})
    return rows, comps, x, counts


def fit_timescales(T, families: str | Sequence[str] | None = None, *, fix_scale: float | None = None,
                   n_boot: int = 1000, seed: int = 0, ci_level: float = 0.95, ci_method: str = "parametric",
                   compare_to: str = "invgamma", scope: str = "pooled",
                   progress: Callable[[int], None] | None = None) -> FitReport:
    """Fit distribution families to one set of timescales ``T`` (time steps; excluded units counted).

    ``fix_scale``: fit shapes only with ``scale = fix_scale`` (the reference uses 1).
    ``n_boot``: parametric-bootstrap replicates for the KS p-value and the intervals (0: none).
    ``progress(k)`` is called after every ``k`` bootstrap replicates of a family.
    """
    return fit_table(pd.DataFrame({"T": np.asarray(T, dtype=np.float64).ravel()}), column="T", layers="pooled",
                     families=families, fix_scale=fix_scale, n_boot=n_boot, seed=seed, ci_level=ci_level,
                     ci_method=ci_method, compare_to=compare_to, progress=progress, pooled_name=scope)


def parse_layers(spec: str | Sequence | None, available: Sequence) -> list[tuple[str, list]]:
    """Scopes from ``--layers``: ``pooled`` (every unit), ``each`` (each layer), ``all`` (each layer
    and pooled; just pooled when there is one layer), or a comma-separated list of layer labels and
    the words above, e.g. ``1,2`` or ``2,pooled``. Returns ``[(scope name, [layers])]``."""
    available = list(available)
    items = ["all"] if spec is None else ([s.strip() for s in spec.split(",")] if isinstance(spec, str)
                                           else [str(s) for s in spec])
    items = [i for i in items if i]
    if not items:
        raise OptionError("--layers is empty: use pooled, each, all or layer numbers such as 1,2")
    by_label = {str(l): l for l in available}
    scopes: list[tuple[str, list]] = []

    def add(name, layers):
        if name not in [s[0] for s in scopes]:
            scopes.append((name, layers))

    for item in items:
        low = item.lower()
        if low == "all":
            if len(available) > 1:
                for l in available:
                    add(f"layer {l}", [l])
            add("pooled", available)
        elif low == "each":
            for l in available:
                add(f"layer {l}", [l])
        elif low == "pooled":
            add("pooled", available)
        elif item in by_label:
            add(f"layer {item}", [by_label[item]])
        else:
            raise OptionError(
                f"--layers: no layer '{item}' (layers present: {', '.join(map(str, available)) or 'none'}); "
                "use pooled, each, all or layer labels"
            )
    return scopes


def fit_table(df: pd.DataFrame, column: str = "T", layers: str | Sequence | None = "all",
              families: str | Sequence[str] | None = None, *, fix_scale: float | None = None,
              n_boot: int = 1000, seed: int = 0, ci_level: float = 0.95, ci_method: str = "parametric",
              compare_to: str = "invgamma", progress: Callable[[int], None] | None = None,
              pooled_name: str = "pooled") -> FitReport:
    """Fit per layer and/or pooled from a timescales table (``layer`` column optional; ``column``
    e.g. ``T``, ``T_bias`` or ``T_data``). ``layers`` as in :func:`parse_layers`.

    Scopes that cannot be fitted (fewer than 3 usable values or a single distinct value) are
    skipped and listed in ``skipped_``; if none can be fitted, InputError.
    """
    fams = parse_families(families)
    _check_options(n_boot, ci_level, ci_method, fix_scale)
    if column not in df.columns:
        raise OptionError(f"no column '{column}' in the timescales table (columns: {', '.join(map(str, df.columns))})")
    available = list(dict.fromkeys(df["layer"])) if "layer" in df.columns else []
    if "layer" in df.columns:
        scopes = parse_layers(layers, available)
    else:
        if layers not in (None, "all", "pooled", "each") and list(layers) != ["pooled"]:
            raise OptionError("--layers: the input has no layers; only 'pooled' is possible")
        scopes = [("pooled", None)]
    fit_rows, comp_rows, samples, skipped = [], [], [], []
    for name, layer_list in scopes:
        scope_name = pooled_name if name == "pooled" else name
        T = df[column] if layer_list is None else df.loc[df["layer"].isin(layer_list), column]
        try:
            rows, comps, x, _ = _fit_scope(np.asarray(T, dtype=np.float64), scope_name, fams, fix_scale=fix_scale,
                                           n_boot=int(n_boot), seed=seed, ci_level=ci_level, ci_method=ci_method,
                                           compare_to=compare_to, progress=progress)
        except InputError as exc:
            skipped.append((scope_name, str(exc)))
            if progress is not None:
                progress(int(n_boot) * len(fams))
            continue
        fit_rows += rows
        comp_rows += comps
        samples.append(pd.DataFrame({"scope": scope_name, "T": x}))
    if not fit_rows:
        raise InputError(skipped[0][1] if len(skipped) == 1 else "no scope could be fitted: " +
                         "; ".join(msg for _, msg in skipped))
    options = {"families": fams, "fix_scale": fix_scale, "n_boot": int(n_boot), "seed": seed, "ci_level": ci_level,
               "ci_method": ci_method, "compare_to": compare_to, "column": column,
               "scopes": [s for s, _ in scopes]}
    return FitReport(
        fits_=pd.DataFrame(fit_rows)[FIT_COLUMNS],
        comparisons_=pd.DataFrame(comp_rows, columns=COMPARISON_COLUMNS),
        samples_=pd.concat(samples, ignore_index=True),
        options=options,
        skipped_=skipped,
    )


# ----------------------------------------------------------------------------------------------
# curves and figure tables (the plots module draws these; it computes nothing)
# ----------------------------------------------------------------------------------------------

def sorted_curve(n: int, shape: float, scale: float = 1.0, family: str = "invgamma") -> np.ndarray:
    """The paper's Fig. 1 curve: ``isf(linspace(0, 1, n + 1)[1:], shape, scale=scale)``, i.e. the
    model's quantiles for n units sorted longest first (the last one is 0 for families on (0, inf))."""
    return FAMILIES[parse_families([family])[0]].isf(np.linspace(0.0, 1.0, n + 1)[1:], shape, scale)


def figure_tables(report: FitReport, reference_curve: tuple[float, float] | None = None, *,
                  scopes: Sequence[str] | None = None, grid: int = 300, bins: int = 40) -> dict[str, pd.DataFrame]:
    """Tidy tables for the four figures, per scope (log10 is used on every log axis):

    - ``sorted``: ``scope, rank, T, series`` (``units``, ``fit`` = inverse gamma's (or the best
      family's) quantile curve, ``reference``), ``label``; zero-valued curve ends are dropped.
    - ``hist``: ``scope, left, right, density`` histogram of log10 T (density per unit log10 T).
    - ``density``: ``scope, family, label, log10_T, density`` each fitted pdf transformed to log10 T
      (``f(T) * T * ln 10``), ``best`` marks the lowest-AIC family.
    - ``qq``: ``scope, family, theoretical, empirical`` for the best family, at plotting positions
      ``(i - 0.5)/n``.
    - ``ccdf``: ``scope, series (empirical|fit), family, label, T, ccdf``: empirical ``P(T >= t_i)``
      and each fitted survival function on a log grid.

    ``scopes``: the scopes to tabulate (default all).
    """
    sorted_rows, hist_rows, dens_rows, qq_rows, ccdf_rows = [], [], [], [], []
    for scope in (report.scopes if scopes is None else scopes):
        x = np.sort(report.samples_.loc[report.samples_["scope"] == scope, "T"].to_numpy())
        n = x.size
        fits = report.fits_[report.fits_["scope"] == scope]
        best = report.best(scope)
        rank = np.arange(1, n + 1)
        sorted_rows.append(pd.DataFrame({"scope": scope, "rank": rank, "T": x[::-1], "series": "units",
                                         "label": f"units (n={n})"}))
        curve_fam = "invgamma" if "invgamma" in set(fits["family"]) else best
        row = fits[fits["family"] == curve_fam].iloc[0]
        curves = [(curve_fam, row["shape"], row["scale"], "fit",
                   f"{row['label']} fit: {_param_text(row)}")]
        if reference_curve is not None:
            a, b = reference_curve
            curves.append(("invgamma", a, b, "reference", f"reference inverse gamma a={a:g}, b={b:g}"))
        for fam, sh, sc, series, label in curves:
            y = sorted_curve(n, sh, sc, fam)
            keep = y > 0
            sorted_rows.append(pd.DataFrame({"scope": scope, "rank": rank[keep], "T": y[keep], "series": series,
                                             "label": label}))
        lx = np.log10(x)
        dens, edges = np.histogram(lx, bins=bins, density=True)
        hist_rows.append(pd.DataFrame({"scope": scope, "left": edges[:-1], "right": edges[1:], "density": dens}))
        pad = 0.15 * (lx[-1] - lx[0]) + 0.1
        g = np.linspace(lx[0] - pad, lx[-1] + pad, grid)
        tg = 10.0 ** g
        tgrid = np.logspace(lx[0] - pad, lx[-1] + 2 * pad, grid)
        for _, r in fits.iterrows():
            fam = FAMILIES[r["family"]]
            with np.errstate(all="ignore"):
                dens_rows.append(pd.DataFrame({"scope": scope, "family": fam.name, "label": fam.label,
                                               "log10_T": g, "density": fam.pdf(tg, r["shape"], r["scale"]) * tg * np.log(10.0),
                                               "best": fam.name == best}))
                ccdf_rows.append(pd.DataFrame({"scope": scope, "series": "fit", "family": fam.name,
                                               "label": fam.label, "T": tgrid,
                                               "ccdf": fam.sf(tgrid, r["shape"], r["scale"])}))
        ccdf_rows.append(pd.DataFrame({"scope": scope, "series": "empirical", "family": "", "label": "units",
                                       "T": x, "ccdf": 1.0 - np.arange(n) / n}))
        r = fits[fits["family"] == best].iloc[0]
        theo = FAMILIES[best].ppf((np.arange(1, n + 1) - 0.5) / n, r["shape"], r["scale"])
        qq_rows.append(pd.DataFrame({"scope": scope, "family": best, "label": FAMILIES[best].label,
                                     "theoretical": theo, "empirical": x}))
    return {
        "sorted": pd.concat(sorted_rows, ignore_index=True),
        "hist": pd.concat(hist_rows, ignore_index=True),
        "density": pd.concat(dens_rows, ignore_index=True),
        "qq": pd.concat(qq_rows, ignore_index=True),
        "ccdf": pd.concat(ccdf_rows, ignore_index=True),
    }


def _param_text(row) -> str:
    parts = []
    if row["shape_name"]:
        parts.append(f"{row['shape_name']}={row['shape']:.3g}")
    parts.append(f"b={row['scale']:.3g}" + (" (fixed)" if row["scale_fixed"] else ""))
    return ", ".join(parts)


# ----------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------

_TABLE_SUFFIXES = (".csv", ".tsv", ".txt")


def _numeric(values, where: str) -> np.ndarray:
    """Column as float64; blank cells and 'nan' become NaN (excluded and counted later), any other
    text is an InputError naming the first bad cell."""
    s = pd.Series(values)
    if pd.api.types.is_bool_dtype(s):
        raise InputError(f"{where}: values are true/false, not timescales")
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=np.float64)
    text = s.astype(str).str.strip()
    blank = s.isna() | text.str.lower().isin(["", "nan"])
    conv = pd.to_numeric(text.where(~blank, "nan"), errors="coerce")
    bad = conv.isna() & ~blank
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{where}: non-numeric value {text.iloc[i][:40]!r} in data row {i + 1}")
    return conv.to_numpy(dtype=np.float64)


def _load_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as fh:
        if fh.read(6) != b"\x93NUMPY":
            raise InputError(f"cannot read {path} as a .npy array: no NPY header (save it with numpy.save)")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        msg = str(exc).splitlines()[0]
        if "allow_pickle" in msg or "Object arrays" in msg:
            raise InputError(f"{path} holds Python objects, not numbers; save a float array "
                             "(np.save(path, np.asarray(T, dtype=float)))") from None
        raise InputError(f"cannot read {path} as a .npy array: {msg}") from None
    except Exception as exc:  # noqa: BLE001  (truncated file, not npy)
        raise InputError(f"cannot read {path} as a .npy array: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{path} is an .npz archive; give one .npy array per layer")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{path} holds {arr.dtype} values; expected real numbers (timescales in steps)")
    if arr.ndim != 1:
        raise InputError(f"{path} has shape {arr.shape}; expected a 1-D array of timescales (one file per layer)")
    if arr.size == 0:
        raise InputError(f"{path} is empty")
    return arr.astype(np.float64)


def _load_csv(path: Path, column: str | None) -> pd.DataFrame:
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        df = pd.read_csv(path, sep=sep, low_memory=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read {path} as a CSV table: {str(exc).splitlines()[0]}") from None
    df.columns = [str(c).strip() for c in df.columns]
    if column is None:
        for cand in ("T", "T_data", "T_bias"):
            if cand in df.columns:
                column = cand
                break
        else:
            raise InputError(f"{path} has no timescale column (looked for T, T_data, T_bias; columns: "
                             f"{', '.join(df.columns[:12])}); name one with --column")
    elif column not in df.columns:
        raise InputError(f"{path} has no column '{column}' (columns: {', '.join(df.columns[:12])})")
    if len(df) == 0:
        raise InputError(f"{path} has a header but no rows")
    out = pd.DataFrame({"T": _numeric(df[column], f"{path}, column {column}")})
    if "layer" in df.columns:
        layer = _numeric(df["layer"], f"{path}, column layer")
        if np.any(~np.isfinite(layer)) or np.any(layer != np.round(layer)):
            raise InputError(f"{path}: column 'layer' must hold whole layer numbers")
        out.insert(0, "layer", layer.astype(int))
    out["unit"] = (out.groupby("layer").cumcount() if "layer" in out.columns else np.arange(len(out)))
    if "unit" in df.columns:
        try:
            out["unit"] = _numeric(df["unit"], f"{path}, column unit").astype(int)
        except (InputError, ValueError):
            pass
    out.attrs["column"] = column
    return out


def load_timescales(paths: str | os.PathLike | Sequence[str | os.PathLike], column: str | None = None, *,
                    layer_names: Sequence | None = None, convention: str = "paper") -> pd.DataFrame:
    """Read timescales into a table ``layer, unit, T, source``.

    Inputs, by suffix: ``.npy`` (1-D float array; several files are layers 1..k in the given order,
    or named by ``layer_names``), ``.csv``/``.tsv`` (a column ``T``, else ``T_data``, else
    ``T_bias``, or ``column``; a ``layer`` column is used when present), anything else a checkpoint
    (``load_checkpoint``; its ``T_bias`` under ``convention``). Several inputs must be one layer
    each. ``df.attrs['column']`` says which column was read.
    """
    from .fileio import require_file

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise OptionError("no input given: pass a checkpoint, a CSV with a T column, or .npy arrays")
    frames, used_column = [], None
    for i, p in enumerate(paths):
        require_file(p, "timescales input")
        suffix = p.suffix.lower()
        if suffix == ".npy":
            if column not in (None, "T"):
                raise OptionError(f"--column {column} applies to CSV tables, not to .npy arrays ({p})")
            arr = _load_npy(p)
            f = pd.DataFrame({"unit": np.arange(arr.size), "T": arr})
            used_column = used_column or "T"
        elif suffix in _TABLE_SUFFIXES:
            f = _load_csv(p, column)
            used_column = used_column or f.attrs["column"]
        elif suffix == ".npz":
            raise InputError(f"{p}: .npz archives are not read; give one .npy array per layer")
        else:
            if column not in (None, "T_bias", "T"):
                raise OptionError(f"a checkpoint gives T_bias only; '{column}' needs a timescales table "
                                  f"(measure T_data first and pass the CSV) ({p})")
            from .checkpoints import load_checkpoint

            table = load_checkpoint(p).timescales_table(convention=convention)
            f = table[["layer", "unit"]].copy()
            f["T"] = table["T_bias"].to_numpy(dtype=np.float64)
            used_column = used_column or "T_bias"
        f["source"] = str(p)
        frames.append(f)
    if len(frames) > 1:
        if any("layer" in f.columns for f in frames):
            raise OptionError("several inputs must be one layer each (.npy arrays or CSVs without a layer "
                              "column); a checkpoint or layered table is given alone")
        for i, f in enumerate(frames, 1):
            f.insert(0, "layer", i)
    elif "layer" not in frames[0].columns and layer_names is not None:
        frames[0].insert(0, "layer", 1)
    df = pd.concat(frames, ignore_index=True)
    if layer_names is not None:
        names = [str(s).strip() for s in (layer_names.split(",") if isinstance(layer_names, str) else layer_names)]
        present = list(dict.fromkeys(df["layer"]))
        if len(names) != len(present) or len(set(names)) != len(names):
            raise OptionError(f"--layer-names gives {len(names)} distinct names for {len(present)} layers")
        labels = [int(s) if s.lstrip("-").isdigit() else s for s in names]
        df["layer"] = df["layer"].map(dict(zip(present, labels)))
    df.attrs["column"] = used_column
    df.attrs["convention"] = convention
    return df
