"""One likelihood-ratio test for comparing two fitted models on the same data points.

Used for timescale families (:mod:`timescale_probe.distributions.fitting`) and for the
mutual-information decay laws (:mod:`timescale_probe.mutual_info.fits`) alike.

``likelihood_ratio_test(ll_a, ll_b, nested=False)`` takes the pointwise log-likelihoods of models
``a`` and ``b`` at the same ``n`` points and returns a :class:`LikelihoodRatioTest` with
``R = sum(ll_a - ll_b)`` (> 0 favours ``a``), the test statistic and a p-value:

- **non-nested** (``nested=False``): Vuong's (1989) test, as in powerlaw's
  ``distribution_compare``: ``z = R / (sqrt(n) * omega)`` with ``omega`` the standard deviation of
  the pointwise differences ``d_i = ll_a[i] - ll_b[i]`` **with ddof = 0** (Vuong's definition,
  ``omega^2 = mean(d^2) - mean(d)^2``), and the two-sided normal p-value
  ``p = erfc(|z| / sqrt 2)``. No correction for the number of parameters.
- **nested** (``nested=True``, ``a`` the bigger model with ``df`` more free parameters): Wilks'
  likelihood-ratio test, ``statistic = 2R`` and ``p = chi2.sf(max(2R, 0), df)``; only the sums of
  the pointwise values matter, so scalars are accepted too.

Zero spread (Vuong): when every pointwise difference is the same, the normal approximation is
undefined. The convention is the limit of a vanishing spread: ``R == 0`` (the models agree at
every point) gives ``z = 0, p = 1``; ``R != 0`` (one model is better at every point by the same
amount) gives ``z = +-inf, p = 0``. Fewer than 2 points give ``z = p = NaN``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from ..errors import InputError

__all__ = ["LikelihoodRatioTest", "likelihood_ratio_test"]


@dataclass(frozen=True)
class LikelihoodRatioTest:
    """Result of :func:`likelihood_ratio_test`.

    ``test``: ``"vuong"`` or ``"wilks"``; ``R``: sum of ``ll_a - ll_b`` (> 0 favours ``a``);
    ``statistic``: Vuong's z, or Wilks' 2R; ``p``: two-sided normal (Vuong) or chi-square (Wilks)
    p-value; ``n``: points; ``df``: extra parameters of the bigger model (Wilks) or ``None``.
    Unpacks as ``R, statistic, p``.
    """

    test: str
    R: float
    statistic: float
    p: float
    n: int
    df: int | None = None

    @property
    def z(self) -> float:
        """Vuong's z (NaN for Wilks' test)."""
        return self.statistic if self.test == "vuong" else float("nan")

    def favoured(self, name_a: str = "a", name_b: str = "b", alpha: float = 0.05) -> str:
        """Vuong: the model the sign of ``R`` favours. Wilks: the bigger model ``a`` when
        ``p < alpha``, else the smaller ``b``."""
        if self.test == "wilks":
            return name_a if self.p < alpha else name_b
        return name_a if self.R > 0 else name_b

    def __iter__(self):
        return iter((self.R, self.statistic, self.p))


def likelihood_ratio_test(ll_a, ll_b, *, nested: bool = False, df: int = 1) -> LikelihoodRatioTest:
    """Compare models ``a`` and ``b`` from their pointwise log-likelihoods (module docstring).

    ``nested``: ``b`` is ``a`` with ``df`` parameters fixed (Wilks' test); otherwise Vuong's test
    of non-nested models. Raises InputError for arrays of different lengths or non-finite values.
    """
    a = np.atleast_1d(np.asarray(ll_a, dtype=np.float64))
    b = np.atleast_1d(np.asarray(ll_b, dtype=np.float64))
    if nested:
        if int(df) < 1:
            raise InputError(f"df must be >= 1 for a nested likelihood-ratio test (got {df})")
        R = float(a.sum() - b.sum())
        if not np.isfinite(R):
            raise InputError("log-likelihoods must be finite for a likelihood-ratio test")
        stat = 2.0 * R
        return LikelihoodRatioTest("wilks", R, stat, float(stats.chi2.sf(max(stat, 0.0), int(df))),
                                   int(max(a.size, b.size)), int(df))
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(f"Vuong's test needs pointwise log-likelihoods at the same points "
                         f"(got shapes {a.shape} and {b.shape})")
    d = a - b
    if not np.all(np.isfinite(d)):
        raise InputError("pointwise log-likelihoods must be finite for Vuong's test")
    R = float(d.sum())
    n = int(d.size)
    if n < 2:
        return LikelihoodRatioTest("vuong", R, float("nan"), float("nan"), n)
    sd = float(d.std(ddof=0))
    if sd <= 1e-15 * max(1.0, float(np.abs(d).max())):
        if R == 0:
            return LikelihoodRatioTest("vuong", R, 0.0, 1.0, n)
        return LikelihoodRatioTest("vuong", R, float(np.copysign(np.inf, R)), 0.0, n)
    z = R / (np.sqrt(n) * sd)
    return LikelihoodRatioTest("vuong", R, float(z), float(special.erfc(abs(z) / np.sqrt(2.0))), n)
