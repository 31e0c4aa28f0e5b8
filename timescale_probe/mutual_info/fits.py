"""Decay laws for I(d): exponential, power law and their sum, fitted by weighted least squares in
log space and compared by AICc.

Models (d in tokens, I in bits):
- ``exponential``: ``I = A exp(-d/xi)``; ``xi`` is the decay length in tokens.
- ``power``: ``I = A d^-k``.
- ``combined``: ``I = A d^-k + B exp(-d/xi)``.

Fitting: residuals ``r_i = (ln I_i - ln f(d_i)) / s_i`` with ``s_i = sigma_i / I_i`` (the SE of
``ln I`` by the delta method), i.e. each distance weighted by its standard error, relative to its
size, so that decades of decay count alike. The error scale is unknown (the SEs give relative
weights; text has correlated residuals), so it is estimated by maximum likelihood: with n points and
chi2 = sum r_i^2, ``ln L = -n/2 (ln(2 pi chi2/n) + 1) - sum ln s_i`` and the parameter count p
includes that scale. ``AICc = -2 ln L + 2p + 2p(p+1)/(n-p-1)``. Intervals are 95% Wald intervals
from the (scaled) covariance ``chi2/(n-q) (J^T J)^-1`` with Student-t quantiles (q = number of
curve parameters); the ``xi`` interval of the exponential is the transformed interval of its slope.

The exponential and the power law are straight lines in log space (``ln I`` against ``d`` or
``ln d``): they are fitted by statsmodels' weighted least squares (``WLS`` with weights ``1/s_i^2``),
whose estimates equal the closed-form ones (checked in the tests to 1e-12), and whose standard
errors, t intervals and log-likelihood (the formula above) are used as they come. AICc is
statsmodels' ``eval_measures.aicc`` with the scale counted. The combined law is nonlinear and is
fitted by ``scipy.optimize.least_squares`` from several starts, with the same likelihood and AICc.

Mapping to the inverse-gamma shape (docs/methods.md §1, §8): a population of units with timescales
T ~ InvGamma(a, b) has memory ``M(t) = (1 + t/b)^-a`` ~ t^-a. The mutual information between two
tokens behaves like the square of a correlation (for weak dependence ``I ~ rho^2 / 2``; a Markov
chain has correlations ~ |lambda_2|^d and I(d) ~ |lambda_2|^(2d)), so a memory that must carry a
correlation decaying like t^-a shows up as I(d) ~ d^-2a. We therefore suggest **a = k / 2**.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..distributions.compare import LikelihoodRatioTest, likelihood_ratio_test
from ..errors import OptionError

MODELS = ("exponential", "power", "combined")
N_CURVE_PARAMS = {"exponential": 2, "power": 2, "combined": 4}


@dataclass
class DecayFit:
    """One fitted law. ``params``: A, k, B, xi (NaN where the model lacks them); ``intervals``:
    name -> (low, high), 95%. ``pointwise_loglik``: per-point log-likelihood (for the Vuong test)."""

    model: str
    params: dict
    intervals: dict
    n_points: int
    chi2: float
    log_likelihood: float
    aicc: float
    converged: bool
    pointwise_loglik: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def predict(self, d) -> np.ndarray:
        return decay_law(self.model, np.asarray(d, dtype=np.float64), self.params)


def decay_law(model: str, d: np.ndarray, p: dict) -> np.ndarray:
    d = np.asarray(d, dtype=np.float64)
    if model == "exponential":
        return p["A"] * np.exp(-d / p["xi"])
    if model == "power":
        return p["A"] * d ** (-p["k"])
    if model == "combined":
        return p["A"] * d ** (-p["k"]) + p["B"] * np.exp(-d / p["xi"])
    raise OptionError(f"unknown decay law '{model}': use {', '.join(MODELS)}")


def _aicc(chi2: float, s: np.ndarray, q: int) -> tuple[float, float, np.ndarray]:
    """Log-likelihood (error scale by maximum likelihood), AICc counting that scale, and the scale."""
    n = s.size
    var = chi2 / n
    loglik = -0.5 * n * (np.log(2 * np.pi * var) + 1) - float(np.sum(np.log(s)))
    return float(loglik), _aicc_of(loglik, n, q + 1), var


def _aicc_of(loglik: float, n: int, p: int) -> float:
    """statsmodels' AICc of a log-likelihood with ``p`` parameters (inf when n - p - 1 <= 0)."""
    from statsmodels.tools.eval_measures import aicc

    return float(aicc(loglik, n, p)) if n - p - 1 > 0 else float("inf")


def _pointwise(resid: np.ndarray, s: np.ndarray, var: float) -> np.ndarray:
    return -0.5 * np.log(2 * np.pi * var * s * s) - resid ** 2 / (2 * var)


def _wls_line(x: np.ndarray, z: np.ndarray, s: np.ndarray):
    """statsmodels WLS of ``z = c0 + c1 x`` with weights ``1/s^2`` (the fitted results object)."""
    import statsmodels.api as sm

    X = np.column_stack([np.ones_like(x), x])
    return sm.WLS(z, X, weights=1.0 / (s * s)).fit()


def _line_fit(res, s: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """From a WLS fit: chi2 (weighted SSR), log-likelihood, AICc (2 curve parameters + the
    scale), and the pointwise log-likelihood."""
    n = s.size
    chi2 = float(res.ssr)
    loglik = float(res.llf)
    return chi2, loglik, _aicc_of(loglik, n, 3), _pointwise(np.asarray(res.wresid), s, chi2 / n)


def _fit_exponential(d, z, s) -> DecayFit:
    res = _wls_line(d, z, s)
    slope = float(res.params[1])
    xi = -1.0 / slope if slope != 0 else np.inf
    lo_s, hi_s = (float(v) for v in res.conf_int(0.05)[1])
    xi_int = (-1.0 / lo_s, -1.0 / hi_s) if hi_s < 0 else (-1.0 / lo_s if lo_s < 0 else np.nan, np.inf)
    chi2, ll, aicc, pointwise = _line_fit(res, s)
    A = float(np.exp(res.params[0]))
    return DecayFit("exponential", {"A": A, "k": np.nan, "B": np.nan, "xi": float(xi)},
                    {"xi": tuple(map(float, xi_int)), "k": (np.nan, np.nan)}, d.size, chi2, ll, aicc, True, pointwise)


def _fit_power(d, z, s) -> DecayFit:
    res = _wls_line(np.log(d), z, s)
    k = -float(res.params[1])
    lo, hi = (float(v) for v in res.conf_int(0.05)[1])
    chi2, ll, aicc, pointwise = _line_fit(res, s)
    return DecayFit("power", {"A": float(np.exp(res.params[0])), "k": k, "B": np.nan, "xi": np.nan},
                    {"k": (-hi, -lo), "xi": (np.nan, np.nan)}, d.size, chi2, ll, aicc, True, pointwise)


def _t(n: int, q: int) -> float:
    return float(stats.t.ppf(0.975, max(n - q, 1)))


def _combined_log(theta, d):
    lnA, k, lnB, lnxi = theta
    return np.logaddexp(lnA - k * np.log(d), lnB - d / np.exp(lnxi))


def _fit_combined(d, z, s, power: DecayFit, expo: DecayFit) -> DecayFit:
    def resid(theta):
        return (z - _combined_log(theta, d)) / s

    starts = []
    lnAp, kp = np.log(power.params["A"]), power.params["k"]
    for xi0 in np.geomspace(max(d.min(), 0.5), max(d.max(), 2.0), 5):
        for frac in (0.1, 0.5, 0.9):
            starts.append([lnAp + np.log(1 - frac + 1e-3), kp, lnAp + np.log(frac), np.log(xi0)])
    xi_e = expo.params["xi"]
    if np.isfinite(xi_e) and xi_e > 0:
        lnAe = np.log(expo.params["A"])
        starts.append([lnAe - 3.0, max(kp, 0.1), lnAe, np.log(xi_e)])
    best = None
    for x0 in starts:
        try:
            res = optimize.least_squares(resid, np.asarray(x0, dtype=np.float64), method="trf", max_nfev=2000,
                                         bounds=([-np.inf, -5.0, -np.inf, np.log(1e-3)],
                                                 [np.inf, 20.0, np.inf, np.log(1e7)]))
        except (ValueError, np.linalg.LinAlgError):
            continue
        if best is None or res.cost < best.cost:
            best = res
    if best is None:
        nan = np.nan
        return DecayFit("combined", {"A": nan, "k": nan, "B": nan, "xi": nan}, {"k": (nan, nan), "xi": (nan, nan)},
                        d.size, nan, nan, np.inf, False)
    r = best.fun
    chi2 = float(r @ r)
    dof = max(d.size - 4, 1)
    try:
        cov = np.linalg.pinv(best.jac.T @ best.jac) * chi2 / dof
    except np.linalg.LinAlgError:
        cov = np.full((4, 4), np.nan)
    lnA, k, lnB, lnxi = best.x
    t = _t(d.size, 4)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    ll, aicc, var = _aicc(chi2, s, 4)
    return DecayFit("combined", {"A": float(np.exp(lnA)), "k": float(k), "B": float(np.exp(lnB)),
                                 "xi": float(np.exp(lnxi))},
                    {"k": (float(k - t * se[1]), float(k + t * se[1])),
                     "xi": (float(np.exp(lnxi - t * se[3])), float(np.exp(lnxi + t * se[3])))},
                    d.size, chi2, ll, aicc, bool(best.success), _pointwise(r, s, var))


def fit_decay_laws(distance, mi, sigma) -> list[DecayFit]:
    """Fit the three laws to positive ``mi`` (bits) at ``distance`` with standard errors ``sigma``.

    The combined law needs at least 7 points (AICc with 5 parameters), the others 4; a law that
    cannot be fitted comes back with NaN parameters and ``aicc = inf``.
    """
    d = np.asarray(distance, dtype=np.float64)
    y = np.asarray(mi, dtype=np.float64)
    sig = np.asarray(sigma, dtype=np.float64)
    ok = np.isfinite(d) & np.isfinite(y) & (y > 0) & (d > 0)
    d, y, sig = d[ok], y[ok], sig[ok]
    # a zero/NaN SE would give one point infinite weight: floor it at 1e-3 of the point's value
    sig = np.where(np.isfinite(sig) & (sig > 0), sig, np.nan)
    sig = np.fmax(np.nan_to_num(sig, nan=0.0), 1e-3 * y)
    nan = np.nan

    def empty(model):
        return DecayFit(model, {"A": nan, "k": nan, "B": nan, "xi": nan}, {"k": (nan, nan), "xi": (nan, nan)},
                        int(d.size), nan, nan, np.inf, False)

    if d.size < 4:
        return [empty(m) for m in MODELS]
    z = np.log(y)
    s = sig / y
    expo = _fit_exponential(d, z, s)
    power = _fit_power(d, z, s)
    combined = _fit_combined(d, z, s, power, expo) if d.size >= 7 else empty("combined")
    return [expo, power, combined]


def vuong_test(f1: DecayFit, f2: DecayFit) -> LikelihoodRatioTest:
    """Vuong's test of two non-nested fits on the same points, by the package's one
    :func:`~timescale_probe.distributions.compare.likelihood_ratio_test` (ddof 0; zero spread gives
    p = 1 when the fits agree at every point). Returns its result: ``R`` = ln L1 - ln L2 (> 0
    favours ``f1``), ``z``, two-sided ``p``; all NaN when the fits are not on the same points.
    Residual correlation across distances makes the p-value optimistic; read it with the AICc
    weights."""
    l1, l2 = f1.pointwise_loglik, f2.pointwise_loglik
    if l1.size == 0 or l1.size != l2.size or not (np.all(np.isfinite(l1)) and np.all(np.isfinite(l2))):
        nan = float("nan")
        return LikelihoodRatioTest("vuong", nan, nan, nan, int(l1.size))
    return likelihood_ratio_test(l1, l2)


def fits_table(fits: list[DecayFit]) -> pd.DataFrame:
    """One row per law. Columns: ``model``, ``n_points``, ``chi2`` (weighted, log space),
    ``log_likelihood``, ``aicc``, ``delta_aicc`` (to the best), ``akaike_weight``, ``A`` (bits),
    ``k``, ``k_low``, ``k_high``, ``B`` (bits), ``xi`` (tokens), ``xi_low``, ``xi_high``, ``converged``."""
    rows = []
    for f in fits:
        rows.append({"model": f.model, "n_points": f.n_points, "chi2": f.chi2, "log_likelihood": f.log_likelihood,
                     "aicc": f.aicc, "A": f.params["A"], "k": f.params["k"], "k_low": f.intervals["k"][0],
                     "k_high": f.intervals["k"][1], "B": f.params["B"], "xi": f.params["xi"],
                     "xi_low": f.intervals["xi"][0], "xi_high": f.intervals["xi"][1], "converged": f.converged})
    df = pd.DataFrame(rows)
    finite = np.isfinite(df["aicc"])
    best = df.loc[finite, "aicc"].min() if finite.any() else np.nan
    df["delta_aicc"] = df["aicc"] - best
    w = np.where(finite, np.exp(-0.5 * np.nan_to_num(df["delta_aicc"], nan=np.inf)), 0.0)
    df["akaike_weight"] = w / w.sum() if w.sum() > 0 else np.nan
    cols = ["model", "n_points", "chi2", "log_likelihood", "aicc", "delta_aicc", "akaike_weight", "A", "k",
            "k_low", "k_high", "B", "xi", "xi_low", "xi_high", "converged"]
    return df[cols]


def suggested_shape(k: float) -> float:
    """Inverse-gamma shape ``a`` suggested by an MI exponent ``k``: a = k / 2 (module docstring)."""
    return float(k) / 2.0
