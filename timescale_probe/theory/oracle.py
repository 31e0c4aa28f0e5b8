"""The oracle basis: what a set of imposed timescales can give at most to a learned readout.

Frozen bases and a learned readout, for the factor source
(:class:`~timescale_probe.theory.sources.FactorSource`): no optimisation of the memory itself, so
differences between arms here are differences between the timescale sets alone. For timescales
``T_1..T_n`` and factor j the features before token t are the leaky integrals of that factor's
signed evidence, ``F_ij(t) = sum_{s < t} l_i^(t-1-s) a_s [j_s = j]`` with ``l_i = exp(-1/T_i)`` and
``a_s = +1`` for a ``(j, 1)`` token, ``-1`` for ``(j, 0)`` (every unit integrating every factor at
its own timescale: more than one LSTM unit's single input projection can). The readout is one
logistic regression per factor without intercept (the states are symmetric), ``P(b_t = 1 | j_t = j)
= sigmoid(beta_j . F_j(t))``, fitted by Newton's method (a small ridge penalty) on a training
stream; the factor of the next token is predicted by its usage ``w_j`` (factor choices are
independent of everything, so the readout cannot do better there). Scored on test streams, each
integrated from its own start as the exact predictor and the LM evaluation do.
"""
from __future__ import annotations

import numpy as np

from .sources import FactorSource


def evidence_features(source: FactorSource, tokens: np.ndarray, timescales, factor: int) -> np.ndarray:
    """``(N, n)``: ``F[t, i]`` for ``factor`` j of one stream (module docstring), the evidence
    before token t."""
    from scipy.signal import lfilter

    tokens = np.asarray(tokens, dtype=np.int64)
    ev = np.where(tokens // 2 == factor, 2.0 * (tokens % 2) - 1.0, 0.0)
    out = np.zeros((tokens.size, len(timescales)))
    with np.errstate(divide="ignore"):
        lams = np.exp(-1.0 / np.asarray(timescales, dtype=np.float64))  # T = 0 -> 0: the last token only
    for i, lam in enumerate(lams):
        out[1:, i] = lfilter([1.0], [1.0, -lam], ev)[:-1]
    return out


def fit_oracle(source: FactorSource, train_tokens: np.ndarray, timescales, *, ridge: float = 1e-3,
               iterations: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Per-factor readout weights ``beta (J, n)`` and feature scales ``(J, n)`` fitted on one stream."""
    tokens = np.asarray(train_tokens, dtype=np.int64)
    J, n = int(source.n_factors), len(timescales)
    beta, scales = np.zeros((J, n)), np.ones((J, n))
    for j in range(J):
        rows = tokens // 2 == j
        F = evidence_features(source, tokens, timescales, j)[rows]
        scales[j] = np.sqrt((F ** 2).mean(axis=0)) + 1e-9
        X = F / scales[j]
        y = (tokens[rows] % 2).astype(np.float64)
        b = np.zeros(n)
        for _ in range(int(iterations)):  # einsum, not BLAS: its threads spin on a busy machine for these sizes
            p = 1.0 / (1.0 + np.exp(-np.einsum("ti,i->t", X, b)))
            g = np.einsum("ti,t->i", X, y - p) - ridge * len(y) * b
            H = np.einsum("ti,t,tj->ij", X, p * (1 - p), X, optimize=False) + ridge * len(y) * np.eye(n)
            step = np.linalg.solve(H, g)
            b += step
            if np.abs(step).max() < 1e-10:
                break
        beta[j] = b
    return beta, scales


def oracle_logp(source: FactorSource, fitted, streams: np.ndarray, timescales) -> np.ndarray:
    """``log q(x_t | x_<t)`` (nats) of every token of every stream (rows), shape of ``streams``."""
    beta, scales = fitted
    out = []
    for s in np.atleast_2d(np.asarray(streams, dtype=np.int64)):
        j = s // 2
        z = np.zeros(s.size)
        for f in range(int(source.n_factors)):
            rows = j == f
            z[rows] = np.einsum("ti,i->t", evidence_features(source, s, timescales, f)[rows] / scales[f], beta[f])
        sign = 2.0 * (s % 2) - 1.0
        out.append(np.log(source.usage[j]) - np.logaddexp(0.0, -sign * z))
    return np.stack(out)
