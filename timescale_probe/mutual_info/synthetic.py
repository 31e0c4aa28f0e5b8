"""Sources with known mutual-information decay, for ground-truth tests.

**First-order Markov chain** with transition matrix P (rows sum to 1) and stationary law pi:
``p_d(a, b) = pi_a (P^d)_ab``. Writing ``P^d = 1 pi^T + sum_j lambda_j^d r_j l_j^T`` (j >= 2),
``p_d(a,b) = pi_a pi_b (1 + eps_ab(d))`` with ``eps = O(|lambda_2|^d)``, and
``I(d) = sum pi_a pi_b (1+eps) ln(1+eps) = 1/2 sum pi_a pi_b eps^2 + O(eps^3) ~ |lambda_2|^(2d)``:
an exponential with decay length ``xi = -1 / (2 ln|lambda_2|)`` tokens (checked numerically in the
tests against the exact I(d) from matrix powers).

**Hierarchical (tree) grammar** in the manner of Lin & Tegmark (2016): a root symbol is drawn from
pi; every symbol has ``branching`` children, each drawn independently from the row of a Markov
matrix M; after ``depth`` levels the leaves, left to right, are the stream (``branching**depth``
tokens). With ``M = lam I + (1 - lam) 1 pi^T`` (keep the parent's symbol with probability lam, else
redraw from pi), two leaves whose lowest common ancestor is h levels up are equal-by-descent with
probability ``rho = lam^(2h)``: ``p(a,b) = rho pi_a [a=b] + (1-rho) pi_a pi_b``. Leaves at distance d
have ``h ~ log_q d``, so ``rho(d) ~ d^(2 ln lam / ln q)`` and ``I ~ rho^2 ~ d^-k`` with
``k = -4 ln(lam) / ln(q)``: a power law (with log-periodic ripples from the discrete levels). The
pooled I(d) of a finite tree is computed exactly by :func:`tree_exact_mi` (LCA heights of every
pair of positions).
"""
from __future__ import annotations

import numpy as np

from ..errors import OptionError
from .estimate import LN2


def mi_of_joint(joint: np.ndarray) -> float:
    """Mutual information (bits) of a joint probability matrix."""
    p = np.asarray(joint, dtype=np.float64)
    p = p / p.sum()
    pa, pb = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / (pa @ pb)[nz])) / LN2)


def stationary_distribution(P: np.ndarray) -> np.ndarray:
    P = np.asarray(P, dtype=np.float64)
    w, v = np.linalg.eig(P.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    return pi / pi.sum()


def second_eigenvalue_modulus(P: np.ndarray) -> float:
    """|lambda_2|: the second-largest eigenvalue modulus of a transition matrix."""
    return float(np.sort(np.abs(np.linalg.eigvals(np.asarray(P, dtype=np.float64))))[-2])


def markov_decay_length(P: np.ndarray) -> float:
    """Asymptotic e-folding length (tokens) of I(d) for the chain: xi = -1 / (2 ln|lambda_2|)."""
    return -1.0 / (2.0 * np.log(second_eigenvalue_modulus(P)))


def markov_exact_mi(P: np.ndarray, distances) -> np.ndarray:
    """Exact I(d) (bits) of the stationary chain, the MI of ``diag(pi) P^d``.

    Computed without cancellation near independence: ``P^d - 1 pi^T = (P - 1 pi^T)^d``, so
    ``eps_ab = ((P - 1 pi^T)^d)_ab / pi_b`` and ``I = sum pi_a pi_b (1 + eps) log1p(eps)``.
    """
    P = np.asarray(P, dtype=np.float64)
    pi = stationary_distribution(P)
    D = P - np.outer(np.ones(len(pi)), pi)
    out = []
    for d in distances:
        eps = np.linalg.matrix_power(D, int(d)) / pi[None, :]
        w = np.outer(pi, pi) * (1 + eps)
        out.append(float(np.sum(np.where(w > 0, w * np.log1p(np.fmax(eps, -1 + 1e-300)), 0.0)) / LN2))
    return np.array(out)


def random_reversible_matrix(n_states: int, lambda2: float, seed: int = 0, *, within: str = "random") -> np.ndarray:
    """A random reversible transition matrix (real spectrum) with ``|lambda_2| = lambda2`` exactly.

    ``P = lambda2 Q + (1 - lambda2) 1 pi^T`` where Q is block diagonal over two clusters of states,
    each block a random reversible chain (symmetric gamma weights). Q has eigenvalue 1 twice (the
    cluster indicator is its second eigenvector); every eigenvector of Q orthogonal to 1 (in the
    pi inner product) is an eigenvector of P with eigenvalue ``lambda2 * mu``, so P's spectrum is
    1, lambda2 and lambda2 * (the other eigenvalues of the blocks, |mu| < 1).
    ``within='iid'``: each block is rank one (the next state within a cluster is drawn afresh from
    the cluster's law), so the spectrum is exactly {1, lambda2, 0, ...}.
    """
    if not 0 < lambda2 < 1:
        raise OptionError(f"lambda2 must be in (0, 1), got {lambda2}")
    if n_states < 4:
        raise OptionError("need at least 4 states (two clusters of two)")
    rng = np.random.default_rng(seed)
    sizes = (n_states // 2, n_states - n_states // 2)
    Q = np.zeros((n_states, n_states))
    pi = np.zeros(n_states)
    start = 0
    weights = rng.dirichlet([4.0, 4.0])
    for size, w in zip(sizes, weights):
        W = rng.gamma(1.0, size=(size, size))
        W = W + W.T
        if within == "iid":
            W = np.outer(W.sum(1), W.sum(1))
        block = slice(start, start + size)
        Q[block, block] = W / W.sum(1, keepdims=True)
        pi[block] = w * W.sum(1) / W.sum()
        start += size
    return lambda2 * Q + (1 - lambda2) * np.outer(np.ones(n_states), pi)


def sample_markov_chain(P: np.ndarray, n_tokens: int, *, n_chains: int = 64, seed: int = 0):
    """Sample ``n_chains`` independent stationary chains of ``ceil(n_tokens / n_chains)`` steps.

    Returns ``(tokens, chain_ids)``: the chains concatenated, and each token's chain (pass it as
    boundaries so that no pair crosses two independent chains). The time loop is batched over the
    chains (inverse-CDF sampling of all chains per step).
    """
    P = np.asarray(P, dtype=np.float64)
    rng = np.random.default_rng(seed)
    L = -(-int(n_tokens) // int(n_chains))
    cdf = np.cumsum(P, axis=1)
    cdf[:, -1] = 1.0
    out = np.empty((n_chains, L), dtype=np.int64)
    pi = stationary_distribution(P)
    out[:, 0] = rng.choice(P.shape[0], size=n_chains, p=pi)
    u = rng.random((n_chains, L))
    for t in range(1, L):
        rows = cdf[out[:, t - 1]]
        out[:, t] = (u[:, t, None] > rows).sum(1)
    chain_ids = np.repeat(np.arange(n_chains), L)
    return out.reshape(-1)[:n_tokens], chain_ids[:n_tokens]


def sample_tree_grammar(depth: int, *, branching: int = 2, n_symbols: int = 4, lam: float = 0.85,
                        seed: int = 0) -> np.ndarray:
    """Leaves of the hierarchical grammar (module docstring), ``branching**depth`` tokens.

    Symbols are uniform (pi = 1/n_symbols); each child keeps its parent's symbol with probability
    ``lam``, else draws uniformly. Vectorised level by level.
    """
    if branching < 2 or depth < 1 or not 0 <= lam <= 1:
        raise OptionError("tree grammar needs branching >= 2, depth >= 1 and 0 <= lam <= 1")
    rng = np.random.default_rng(seed)
    level = rng.integers(0, n_symbols, size=1)
    for _ in range(depth):
        parents = np.repeat(level, branching)
        keep = rng.random(parents.size) < lam
        level = np.where(keep, parents, rng.integers(0, n_symbols, size=parents.size))
    return level.astype(np.int64)


def tree_exponent(lam: float, branching: int = 2) -> float:
    """Asymptotic power-law exponent of the tree grammar's I(d): k = -4 ln(lam) / ln(branching)."""
    return -4.0 * np.log(lam) / np.log(branching)


def tree_exact_mi(depth: int, distances, *, branching: int = 2, n_symbols: int = 4, lam: float = 0.85) -> np.ndarray:
    """Exact pooled I(d) (bits) of one tree of the grammar: positions i and i+d, i in [0, N-d),
    with ``rho(d) = mean_i lam^(2 h_i)`` (h_i: height of their lowest common ancestor)."""
    N = branching ** depth
    out = []
    i = np.arange(N, dtype=np.int64)
    for d in distances:
        d = int(d)
        a, b = i[:N - d], i[d:]
        h = np.zeros(a.size, dtype=np.int64)
        pa, pb = a.copy(), b.copy()
        for _ in range(depth):
            diff = pa != pb
            h += diff
            pa //= branching
            pb //= branching
        rho = float(np.mean(lam ** (2.0 * h)))
        pi = np.full(n_symbols, 1.0 / n_symbols)
        joint = rho * np.diag(pi) + (1 - rho) * np.outer(pi, pi)
        out.append(mi_of_joint(joint))
    return np.array(out)
