"""The entropy and MI estimators (plug-in, Miller-Madow, Grassberger 2003) from counts, in nats,
and the delta-method SE of the plug-in MI. Formulas: see :mod:`.estimate`."""
from __future__ import annotations

import numpy as np

from ..errors import OptionError
from .counts import PairCounts

ESTIMATORS = ("plugin", "miller-madow", "grassberger")


def check_estimator(name: str) -> str:
    key = (name or "").lower().replace("_", "-")
    aliases = {"plug-in": "plugin", "ml": "plugin", "mm": "miller-madow", "millermadow": "miller-madow",
               "g": "grassberger", "grassberger2003": "grassberger"}
    key = aliases.get(key, key)
    if key not in ESTIMATORS:
        raise OptionError(f"unknown estimator '{name}': use {', '.join(ESTIMATORS)}", param="estimator")
    return key


def estimator_column(estimator: str) -> str:
    """The ``mi_curve`` column of an estimator (``mi_grassberger_bits``)."""
    return f"mi_{check_estimator(estimator).replace('-', '_')}_bits"


def grassberger_g(n: np.ndarray) -> np.ndarray:
    """Grassberger (2003) G(n) = psi(n) + (-1)^n/2 (psi((n+1)/2) - psi(n/2)), n >= 1."""
    from scipy.special import digamma  # here: reading the options of an MI command needs no scipy

    n = np.asarray(n, dtype=np.float64)
    sign = np.where(np.mod(n, 2) == 0, 1.0, -1.0)
    return digamma(n) + 0.5 * sign * (digamma((n + 1) / 2) - digamma(n / 2))


class TermTables:
    """Lookup tables ``n ln n`` and ``n G(n)`` for n = 0..n_max (both 0 at n = 0), so that the
    sums over cells are gathers, not digamma calls. ``n_max``: the largest count that can occur
    (the most frequent token's count bounds every marginal and joint count)."""

    def __init__(self, n_max: int):
        n = np.arange(int(n_max) + 1, dtype=np.float64)
        safe = np.where(n > 0, n, 1.0)
        self.n_log_n = np.where(n > 0, n * np.log(safe), 0.0)
        self.n_g_n = np.where(n > 0, n * grassberger_g(safe), 0.0)

    @classmethod
    def for_tokens(cls, tokens: np.ndarray) -> "TermTables":
        x = np.asarray(tokens)
        return cls(int(np.bincount(x).max()) if x.size else 1)

    def terms(self, counts: np.ndarray) -> np.ndarray:
        """(sum n ln n, sum n G(n), occupied cells) of a histogram."""
        return np.array([self.n_log_n[counts].sum(), self.n_g_n[counts].sum(), np.count_nonzero(counts)],
                        dtype=np.float64)


def _terms(counts: np.ndarray) -> np.ndarray:
    return TermTables(int(counts.max()) if counts.size else 1).terms(counts)


def _entropies(n, terms: np.ndarray) -> np.ndarray:
    """Entropies (nats) by plug-in, Miller-Madow, Grassberger from :func:`_terms` (last axis);
    ``n`` and ``terms`` may carry leading axes (one row per leave-one-out sample)."""
    terms = np.asarray(terms, dtype=np.float64)
    log_n = np.log(n)
    plugin = log_n - terms[..., 0] / n
    return np.stack([plugin, plugin + (terms[..., 2] - 1) / (2.0 * n), log_n - terms[..., 1] / n], axis=-1)


def entropy_from_counts(counts: np.ndarray, estimator: str = "plugin") -> float:
    """Entropy (nats) of a histogram with the named estimator."""
    est = check_estimator(estimator)
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    if n == 0:
        return float("nan")
    return float(_entropies(n, _terms(counts))[ESTIMATORS.index(est)])


def _mi_all(n, t_first: np.ndarray, t_second: np.ndarray, t_joint: np.ndarray) -> np.ndarray:
    """MI (nats) by every estimator; with an array ``n`` (rows of terms), one row per entry,
    NaN where ``n <= 0``."""
    if np.ndim(n) == 0:
        if n <= 0:
            return np.full(3, np.nan)
        return _entropies(n, t_first) + _entropies(n, t_second) - _entropies(n, t_joint)
    n = np.asarray(n, dtype=np.float64)
    ok = n > 0
    safe = np.where(ok, n, 1.0)[:, None]
    mi = _entropies(safe[:, 0], t_first) + _entropies(safe[:, 0], t_second) - _entropies(safe[:, 0], t_joint)
    mi[~ok] = np.nan
    return mi


def delta_se(pc: PairCounts) -> float:
    """Delta-method SE (nats) of the plug-in MI: sqrt((sum p pmi^2 - I^2) / n)."""
    return _delta_se_cells(pc.cells, pc.joint, pc.first, pc.second, pc.n_types, pc.n_pairs)


def _delta_se_cells(cells, joint, first, second, n_types: int, n: int, work=None) -> float:
    """:func:`delta_se` of occupied cells ``a * n_types + b`` (any integer dtype; the arithmetic
    stays in it) with their counts. ``work``: a :class:`_JackknifeWork` whose buffers hold the
    temporaries. The two sums are einsum passes: no BLAS threads spinning for a dot product, no
    temporary for ``n pmi^2``."""
    if n == 0:
        return float("nan")
    C = cells.size
    kd = cells.dtype.type

    def buf(name, dtype):
        return None if work is None else work.buffer(name, C, dtype)

    a = np.floor_divide(cells, kd(n_types), out=buf("delta_a", cells.dtype))
    b = np.multiply(a, kd(n_types), out=buf("delta_b", cells.dtype))
    np.subtract(cells, b, out=b)
    with np.errstate(divide="ignore"):  # tokens absent from one side never index these tables
        log_first = np.log(first.astype(np.float64))
        log_second = np.log(second.astype(np.float64))
    log_first -= np.log(float(n))
    if work is None:
        jf = joint.astype(np.float64)
    else:
        jf = work.buffer("delta_j", C, np.float64)
        np.copyto(jf, joint)
    pmi = np.log(jf, out=buf("delta_pmi", np.float64))
    tmp = buf("delta_tmp", np.float64)
    pmi -= np.take(log_first, a, out=tmp, mode="clip")
    pmi -= np.take(log_second, b, out=tmp, mode="clip")
    mi = float(np.einsum("i,i->", jf, pmi)) / n
    var = (float(np.einsum("i,i,i->", jf, pmi, pmi)) / n - mi * mi) / n
    return float(np.sqrt(max(var, 0.0)))


def mi_from_counts(pc: PairCounts, tables: TermTables | None = None, *, with_delta: bool = True) -> dict[str, float]:
    """MI (nats) of one distance by every estimator, and the delta-method SE of the plug-in MI."""
    n = pc.n_pairs
    tables = tables or TermTables(int(max(pc.first.max(initial=1), pc.second.max(initial=1))))
    mi = _mi_all(n, tables.terms(pc.first), tables.terms(pc.second), tables.terms(pc.joint))
    out = {"distance": pc.distance, "n_pairs": n, "occupied_cells": int(pc.cells.size)}
    out.update(dict(zip(ESTIMATORS, map(float, mi))))
    out["se_delta"] = delta_se(pc) if with_delta else float("nan")
    return out
