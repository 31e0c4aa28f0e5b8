"""Exact Bayes predictors of the theory sources: the lowest loss any model can reach, with the
whole past or with only the last ``n`` tokens as context.

**Factor source** (:class:`~timescale_probe.theory.sources.FactorSource`). Factors evolve and are
used independently, and a token carries evidence about its own factor only, so the posterior over
the J factor states factorises: one filter per factor. In terms of the spin magnetisation
``m_j(t) = E[2 z_j(t) - 1 | x_<t]``: a token ``(j, b)`` updates factor j by
``m <- (m + a) / (1 + a m)`` with ``a = (2b - 1)(1 - 2 noise)`` (adding log-odds), and every step
decays all factors, ``m <- c_j m`` with ``c_j = exp(-1/tau_j)``; the prior is ``m = 0``. The next
token is ``(j, b)`` with probability ``w_j (1 + (2b - 1)(1 - 2 noise) m_j) / 2``. Each step is a
linear-fractional (Moebius) map of ``m``, ``[[c, c a], [a, 1]]`` acting on ``(m, 1)``, so the whole
filter is a cumulative product of 2x2 matrices, computed by a log-depth scan (vectorised, exact up
to rounding). With a window of ``n`` tokens the filter restarts from the prior ``n`` tokens back:
``n`` vectorised steps over all positions at once.

**Tree source** (binary trees, K symbols, kernel ``M = lam I + (1 - lam)/K``, uniform root). The
leaves seen before leaf ``t`` (all of the tree's earlier leaves, or those in ``[t - n, t)``) form,
below the lowest common ancestor A of the window's first leaf q and t, the *suffix* of A's left
child C (observed from q on) and whole left subtrees along t's path; nothing above A is observed.
So the predictive is one upward pass along q's path inside C (full-subtree messages from a
precomputed upward pass over the tree) and one downward pass from A (uniform prior) to t. Both
passes run for all t at once, level by level: ``O(N K^2 depth)``.

Both are checked against brute-force enumeration in ``tests/test_theory_bayes.py``.
"""
from __future__ import annotations

import numpy as np

from ..errors import OptionError
from .sources import FactorSource

# ----------------------------------------------------------------------------------------------
# factor source
# ----------------------------------------------------------------------------------------------

def _factor_evidence(source: FactorSource, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.asarray(tokens, dtype=np.int64)
    J = int(source.n_factors)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= 2 * J):
        raise OptionError(f"factor-source tokens must be ids in [0, {2 * J}), got {tokens.min()}..{tokens.max()}")
    factor = tokens // 2
    a = (2.0 * (tokens % 2) - 1.0) * (1.0 - 2.0 * source.noise)
    return factor, a


def _scan_magnetisation(factor: np.ndarray, a: np.ndarray, decay: np.ndarray) -> np.ndarray:
    """``m[..., t, j]``: the predictive magnetisation of factor j before token t (full past), by
    a Hillis-Steele scan of the 2x2 step matrices (rows normalised after each doubling)."""
    J = decay.size
    N = factor.shape[-1]
    hit = factor[..., :, None] == np.arange(J)                      # (..., N, J)
    aj = np.where(hit, a[..., :, None], 0.0)
    c = np.broadcast_to(decay, aj.shape)
    # step t maps the state before token t to the state before token t+1
    s00, s01, s10, s11 = c.copy(), c * aj, aj.copy(), np.ones_like(aj)
    off = 1
    while off < N:
        # S_t <- S_t @ S_{t-off} for t >= off (the later step on the left)
        p00, p01, p10, p11 = (x[..., :-off, :] for x in (s00, s01, s10, s11))
        q00, q01, q10, q11 = (x[..., off:, :] for x in (s00, s01, s10, s11))
        n00, n01 = q00 * p00 + q01 * p10, q00 * p01 + q01 * p11
        n10, n11 = q10 * p00 + q11 * p10, q10 * p01 + q11 * p11
        scale = np.maximum(np.maximum(np.abs(n00), np.abs(n01)), np.maximum(np.abs(n10), np.abs(n11)))
        for full, new in ((s00, n00), (s01, n01), (s10, n10), (s11, n11)):
            full[..., off:, :] = new / scale
        off *= 2
    m = np.zeros(aj.shape, dtype=np.float64)
    m[..., 1:, :] = s01[..., :-1, :] / s11[..., :-1, :]          # (S_{t-1} (0, 1))
    return m


def _window_magnetisation(factor: np.ndarray, a: np.ndarray, decay: np.ndarray, window: int) -> np.ndarray:
    """``m[..., t, j]`` given only tokens ``[t - window, t)``."""
    J = decay.size
    N = factor.shape[-1]
    m = np.zeros(factor.shape + (J,), dtype=np.float64)
    onehot = factor[..., :, None] == np.arange(J)
    for u in range(int(window), 0, -1):
        if u >= N:
            continue
        # positions t >= u see token t - u; earlier positions only decay from the prior (m = 0)
        obs = onehot[..., :-u, :]
        av = a[..., :-u, None]
        cur = m[..., u:, :]
        upd = (cur + av) / (1.0 + av * cur)
        cur = np.where(obs, upd, cur)
        m[..., u:, :] = cur * decay
        m[..., :u, :] *= decay
    return m


def factor_magnetisation(source: FactorSource, tokens, window: int | None = None) -> np.ndarray:
    """Predictive magnetisation ``m[..., t, j]`` of every factor before every token of
    ``tokens`` (``(..., N)`` ids; leading axes are independent streams); ``window``: only the last
    ``window`` tokens are seen (None: the whole past)."""
    factor, a = _factor_evidence(source, tokens)
    if window is None:
        return _scan_magnetisation(factor, a, source.decay)
    if int(window) < 0:
        raise OptionError(f"window must be >= 0, got {window}", param="window")
    return _window_magnetisation(factor, a, source.decay, int(window))


def factor_bayes_logp(source: FactorSource, tokens, window: int | None = None) -> np.ndarray:
    """``log P(x_t | context)`` of every token under the exact Bayes predictor (nats), shape of
    ``tokens``. The first token of each stream is predicted from the prior."""
    tokens = np.asarray(tokens, dtype=np.int64)
    factor, a = _factor_evidence(source, tokens)
    m = factor_magnetisation(source, tokens, window)
    mj = np.take_along_axis(m, factor[..., None], axis=-1)[..., 0]
    return np.log(source.usage[factor]) + np.log1p(a * mj) - np.log(2.0)


def factor_bayes_distribution(source: FactorSource, tokens, window: int | None = None) -> np.ndarray:
    """The whole predictive distribution over the ``2J`` token ids before every token,
    ``(..., N, 2J)`` (rows sum to 1)."""
    m = factor_magnetisation(source, tokens, window)
    r = 1.0 - 2.0 * source.noise
    p1 = source.usage * (1.0 + r * m) / 2.0
    p0 = source.usage * (1.0 - r * m) / 2.0
    return np.stack([p0, p1], axis=-1).reshape(m.shape[:-1] + (2 * int(source.n_factors),))


# ----------------------------------------------------------------------------------------------
# tree source
# ----------------------------------------------------------------------------------------------

def _tree_kernel(n_symbols: int, lam: float) -> np.ndarray:
    K = int(n_symbols)
    return lam * np.eye(K) + (1.0 - lam) / K


def _times(a: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``a @ m`` for a tall ``(N, K)`` and a small ``(K, K)``, as an einsum: BLAS would spin up its
    threads for these tiny products (several times slower on a busy machine)."""
    return np.einsum("nk,kj->nj", a, m)


def _upward_messages(leaves: np.ndarray, n_symbols: int, kernel: np.ndarray) -> list[np.ndarray]:
    """``L[h][i]``: P(all leaves under node i at height h | node = a), rows normalised."""
    L = [np.eye(n_symbols)[leaves]]
    while L[-1].shape[0] > 1:
        U = _times(L[-1], kernel.T)
        nxt = U[0::2] * U[1::2]
        L.append(nxt / nxt.sum(axis=1, keepdims=True))
    return L


def tree_bayes_logp(leaves, n_symbols: int, lam: float, window: int | None = None) -> np.ndarray:
    """``log P(leaf_t | earlier leaves of the same tree)`` (nats) for every leaf of one tree of
    ``2**depth`` leaves; ``window``: only the last ``window`` leaves are seen (None: all)."""
    x = np.asarray(leaves, dtype=np.int64)
    N = x.size
    depth = int(round(np.log2(N))) if N else 0
    if N < 2 or 2 ** depth != N:
        raise OptionError(f"a binary tree has 2**depth >= 2 leaves, got {N}")
    if x.min() < 0 or x.max() >= n_symbols:
        raise OptionError(f"tree leaves must be ids in [0, {n_symbols}), got {x.min()}..{x.max()}")
    K = int(n_symbols)
    M = _tree_kernel(K, lam)
    L = _upward_messages(x, K, M)
    t = np.arange(N)
    q = np.zeros(N, dtype=np.int64) if window is None else np.maximum(t - int(window), 0)
    seen = q < t                                                  # leaves with any context
    # height of the lowest common ancestor of q and t (1..depth) where q < t
    H = np.zeros(N, dtype=np.int64)
    for h in range(1, depth + 1):
        H = np.where((H == 0) & ((q >> h) == (t >> h)) & seen, h, H)
    # upward along q's path inside C (the LCA's left child, height H - 1)
    sl = np.eye(K)[x[q]]
    for g in range(1, depth):
        active = g <= H - 1
        child = q >> (g - 1)
        is_left = (child & 1) == 0
        up = _times(sl, M.T)
        sib = _times(L[g - 1][np.minimum(child + 1, L[g - 1].shape[0] - 1)], M.T)
        new = np.where(is_left[:, None], up * sib, up)
        new /= new.sum(axis=1, keepdims=True)
        sl = np.where(active[:, None], new, sl)
    # downward from the LCA (uniform prior) to leaf t
    alpha = np.full((N, K), 1.0 / K)
    for g in range(depth, 0, -1):
        at_lca = g == H
        below = g < H
        child = t >> (g - 1)
        is_right = (child & 1) == 1
        sib = _times(L[g - 1][np.maximum(child - 1, 0)], M.T)
        from_c = _times(alpha * _times(sl, M.T), M)
        inside = _times(np.where(is_right[:, None], alpha * sib, alpha), M)
        new = np.where(at_lca[:, None], from_c, np.where(below[:, None], inside, alpha))
        alpha = new / new.sum(axis=1, keepdims=True)
    p = np.where(seen, alpha[t, x], 1.0 / K)
    return np.log(p)
