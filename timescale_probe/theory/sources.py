"""Sources of known long-range structure for the theory test.

**Factor source** (:class:`FactorSource`, the default): ``J`` binary latent factors ``z_j(t)``,
each a symmetric two-state Markov chain with persistence time ``tau_j`` (log-spaced from
``tau_min`` to ``tau_max``): per step a factor flips with probability ``p_j = (1 - exp(-1/tau_j))/2``,
so ``E[s_j(t) s_j(t+d)] = exp(-d/tau_j)`` for the spins ``s = 2z - 1``. At every step one factor
``j_t`` is drawn with probability ``w_j ~ tau_j^(-k/2)`` (its *usage*) and emits the token
``2 j_t + b_t`` where ``b_t = z_j(t)`` is flipped with probability ``noise``: the vocabulary has
``2J`` tokens and each token is labelled with its factor (``token // 2``). Two tokens at distance
``d`` share information only when they come from the same factor, so

    I(d) ~ (1/2) sum_j w_j^2 (1 - 2 noise)^4 exp(-2 d / tau_j) ~ integral tau^-k e^(-2d/tau) dlog tau ~ d^-k

for ``tau_min << d << tau_max``: a power law whose exponent is set by ``k`` (exact I(d):
:meth:`FactorSource.exact_mi`). The exact Bayes predictor is per-factor filtering
(:func:`timescale_probe.theory.bayes.factor_predictive`). *Slow-factor tokens* are those of factors
with ``tau_j >= slow_tau``: the tokens where memory beyond a few dozen steps matters.

**Tree source** (the first study's): binary trees of a K-symbol kernel that keeps the parent's
symbol with probability ``lam`` (:func:`timescale_probe.mutual_info.synthetic.sample_tree_grammar`),
leaf MI ~ ``d^-k`` with ``k = -4 ln(lam) / ln 2``; one tree per corpus line.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import OptionError

BRANCHING = 2


# ----------------------------------------------------------------------------------------------
# the factor source
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FactorSource:
    """The factor source (module docstring). ``k``: the MI exponent; ``noise``: emission flip
    probability; ``slow_tau``: factors with ``tau >= slow_tau`` are *slow*."""

    k: float
    n_factors: int = 8
    tau_min: float = 2.0
    tau_max: float = 6000.0
    noise: float = 0.2
    slow_tau: float = 500.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.k <= 6.0 and np.isfinite(self.k)):
            raise OptionError(f"k must lie in [0, 6], got {self.k}", param="ks")
        if int(self.n_factors) < 1 or not 1.0 <= self.tau_min <= self.tau_max:
            raise OptionError(f"factor source needs n_factors >= 1 and 1 <= tau_min <= tau_max, got "
                              f"{self.n_factors}, {self.tau_min}, {self.tau_max}", param="n_factors")
        if not 0.0 <= self.noise < 0.5:
            raise OptionError(f"noise must lie in [0, 0.5), got {self.noise}", param="noise")

    @property
    def taus(self) -> np.ndarray:
        """Persistence times (steps), log-spaced, shortest first."""
        return np.geomspace(self.tau_min, self.tau_max, int(self.n_factors))

    @property
    def usage(self) -> np.ndarray:
        """``w_j``: the probability that a token comes from factor j (``~ tau_j^(-k/2)``)."""
        w = self.taus ** (-self.k / 2.0)
        return w / w.sum()

    @property
    def decay(self) -> np.ndarray:
        """``c_j = exp(-1/tau_j) = 1 - 2 p_j``: the per-step decay of a factor's spin correlation."""
        return np.exp(-1.0 / self.taus)

    @property
    def flip(self) -> np.ndarray:
        """``p_j``: the per-step flip probability of factor j."""
        return (1.0 - self.decay) / 2.0

    @property
    def slow(self) -> np.ndarray:
        """Boolean mask of the slow factors."""
        return self.taus >= self.slow_tau

    @property
    def vocab(self) -> list[str]:
        """Token names, id ``2j + b``: ``f{j}s{b}``."""
        return [f"f{j}s{b}" for j in range(int(self.n_factors)) for b in (0, 1)]

    def describe(self) -> str:
        return (f"factor source k={self.k:g}: {self.n_factors} binary factors, tau {self.tau_min:g}..{self.tau_max:g}, "
                f"usage ~ tau^-{self.k / 2:g}, noise {self.noise:g}, slow = tau >= {self.slow_tau:g} "
                f"({100 * self.usage[self.slow].sum():.1f}% of tokens)")

    def sample(self, n: int, seed: int | Sequence[int]) -> dict[str, np.ndarray]:
        """``n`` tokens from the stationary source: ``tokens`` (ids ``2j + b``), ``factor`` (j),
        ``state`` (the emitting factor's true state z_j(t)). Vectorised: every factor's flips are
        drawn at once and its state is the parity of their running count."""
        n = int(n)
        if n < 1:
            raise OptionError(f"need at least one token, got {n}", param="n")
        rng = np.random.default_rng(seed if isinstance(seed, (int, np.integer)) else list(seed))
        J = int(self.n_factors)
        z0 = rng.integers(0, 2, size=J)
        flips = rng.random((n, J)) < self.flip[None, :]
        flips[0] = False
        z = (z0[None, :] + np.cumsum(flips, axis=0)) & 1
        factor = rng.choice(J, size=n, p=self.usage)
        state = z[np.arange(n), factor]
        bit = state ^ (rng.random(n) < self.noise)
        return {"tokens": (2 * factor + bit).astype(np.int64), "factor": factor.astype(np.int64),
                "state": state.astype(np.int64)}

    def exact_mi(self, distances) -> np.ndarray:
        """Exact I(d) in bits between tokens ``d`` apart (stationary source): the joint of
        ``(j, b), (j', b')`` is ``w_j w_j' / 4 * (1 + [j = j'] s s' r^2 c_j^d)`` with ``r = 1 - 2 noise``."""
        d = np.asarray(distances, dtype=np.float64).reshape(-1, 1)
        w = self.usage[None, :]
        rho = (1.0 - 2.0 * self.noise) ** 2 * self.decay[None, :] ** d  # (D, J)
        # same factor: four cells (b, b') with probability w^2/4 (1 +- rho); marginals w/2 each
        plus, minus = (1.0 + rho), (1.0 - rho)
        mi = (w ** 2 / 4.0) * 2.0 * (plus * np.log(plus) + minus * np.log(np.where(minus > 0, minus, 1.0)))
        return mi.sum(axis=1) / np.log(2.0)


def factor_corpus(source: FactorSource, seed: int, train_tokens: int, valid_tokens: int, test_streams: int,
                  test_tokens: int, key: int = 0):
    """The LM corpus of one seed: one line of ``train_tokens`` and one of ``valid_tokens``, and
    ``test_streams`` independent test lines of ``test_tokens`` each (so an evaluation with
    ``batch_size = test_streams`` runs each line as one column from its start, as the exact
    predictor does). Returns ``(corpus, test)`` with ``test`` the stacked samples
    (``tokens``, ``factor``, ``state`` of shape ``(test_streams, test_tokens)``)."""
    from ..corpora import Corpus

    kk = int(round(source.k * 1000))
    tr = source.sample(train_tokens, (int(seed), kk, 0, key))
    va = source.sample(valid_tokens, (int(seed), kk, 1, key))
    te = [source.sample(test_tokens, (int(seed), kk, 2, key, i)) for i in range(int(test_streams))]
    vocab = source.vocab + ["<eos>"]
    words = np.asarray(source.vocab)
    lines = {"train": [" ".join(words[tr["tokens"]])], "valid": [" ".join(words[va["tokens"]])],
             "test": [" ".join(words[t["tokens"]]) for t in te]}
    test = {name: np.stack([t[name] for t in te]) for name in ("tokens", "factor", "state")}
    corpus = Corpus(f"factor-k{source.k:g}-seed{seed}", lines, vocab,
                    {s: "synthetic" for s in ("train", "valid", "test")}, [source.describe()])
    return corpus, test


def measure_factor_source(source: FactorSource, n_tokens: int, *, max_distance: int, n_distances: int, shuffles: int,
                          seed: int = 99991) -> dict[str, Any]:
    """The MI exponent measured back by :func:`timescale_probe.mutual_info.mi_decay` on an
    independent sample, with the exact power-law exponent of the same distances beside it."""
    from ..mutual_info import mi_decay

    x = source.sample(n_tokens, (seed, int(round(source.k * 1000))))["tokens"]
    res = mi_decay(x, max_distance=max_distance, n_distances=n_distances, shuffles=shuffles,
                   n_types=2 * int(source.n_factors), seed=0)
    s = res.summary
    return {"k": float(source.k), "n_tokens": int(x.size), "slow_share": float(source.usage[source.slow].sum()),
            "mi_verdict": s.get("verdict"), "mi_tail": s.get("tail"), "k_measured": s.get("k", np.nan),
            "k_measured_low": s.get("k_low", np.nan), "k_measured_high": s.get("k_high", np.nan),
            "k_tail": s.get("k_tail", np.nan), "k_tail_low": s.get("k_tail_low", np.nan),
            "k_tail_high": s.get("k_tail_high", np.nan), "max_retained_distance": s.get("max_retained_distance", 0),
            "n_retained": s.get("n_retained", 0),
            "k_exact_fit": exact_power_exponent(source, max(int(s.get("max_retained_distance") or 0), 4), 1)}


def exact_power_exponent(source: FactorSource, max_distance: int, min_distance: int = 1) -> float:
    """Least-squares slope of ``-log I(d)`` on ``log d`` of the exact I(d), ``d`` log-spaced in
    ``[min_distance, max_distance]``: the exponent the source really has over that range (the
    finite ``tau_max`` steepens it at distances approaching ``tau_max / 2``)."""
    d = np.unique(np.geomspace(min_distance, max_distance, 40).round())
    return float(-np.polyfit(np.log(d), np.log(source.exact_mi(d)), 1)[0])


# ----------------------------------------------------------------------------------------------
# the tree source
# ----------------------------------------------------------------------------------------------

def lam_for_k(k: float, branching: int = BRANCHING) -> float:
    """Kernel persistence ``lam`` giving the tree source the MI exponent ``k``: ``k = -4 ln(lam)/ln q``."""
    return float(np.exp(-float(k) * np.log(branching) / 4.0))


def tree_samples(k: float, n: int, depth: int, n_symbols: int, seed_key: Sequence[int]) -> list[np.ndarray]:
    """``n`` independent trees' leaves (seeded by ``seed_key``)."""
    from ..mutual_info.synthetic import sample_tree_grammar

    lam = lam_for_k(k)
    base = np.random.SeedSequence(list(seed_key)).generate_state(n)
    return [sample_tree_grammar(depth, branching=BRANCHING, n_symbols=n_symbols, lam=lam, seed=int(s)) for s in base]


def tree_split_trees(k: float, seed: int, depth: int, n_symbols: int, counts: dict[str, int]) -> dict[str, list[np.ndarray]]:
    """The trees of every split of one seed (the first study's seeding, kept so its test trees
    can be rebuilt exactly)."""
    kk = int(round(k * 1000))
    return {split: tree_samples(k, counts[split], depth, n_symbols, (seed, kk, j))
            for j, split in enumerate(("train", "valid", "test"))}


def tree_corpus(k: float, seed: int, depth: int, n_symbols: int, counts: dict[str, int]):
    """The LM corpus of tree source ``k`` for ``seed``: fresh trees per split, one tree per line."""
    from ..corpora import Corpus

    trees = tree_split_trees(k, seed, depth, n_symbols, counts)
    lines = {split: [" ".join(f"s{v}" for v in t) for t in ts] for split, ts in trees.items()}
    vocab = [f"s{v}" for v in range(n_symbols)] + ["<eos>"]
    return Corpus(f"tree-k{k:g}-seed{seed}", lines, vocab, {s: "synthetic" for s in ("train", "valid", "test")},
                  [f"hierarchical source k={k:g} (lam={lam_for_k(k):.5f}, q=2, {n_symbols} symbols)"])


def measure_tree_source(k: float, *, n_trees: int, depth: int, n_symbols: int, max_distance: int, n_distances: int,
                        shuffles: int) -> dict[str, Any]:
    """``k`` measured back by :func:`mi_decay` on ``n_trees`` independent trees (pairs never
    cross trees)."""
    from ..mutual_info import mi_decay

    trees = tree_samples(k, n_trees, depth, n_symbols, (99991, int(round(k * 1000))))
    x = np.concatenate(trees)
    bounds = np.repeat(np.arange(len(trees)), [t.size for t in trees])
    res = mi_decay(x, max_distance=max_distance, n_distances=n_distances, shuffles=shuffles, n_types=n_symbols,
                   boundaries=bounds, seed=0)
    s = res.summary
    return {"k": float(k), "lam": lam_for_k(k), "n_tokens": int(x.size), "mi_verdict": s.get("verdict"),
            "mi_tail": s.get("tail"), "k_measured": s.get("k", np.nan), "k_measured_low": s.get("k_low", np.nan),
            "k_measured_high": s.get("k_high", np.nan), "k_tail": s.get("k_tail", np.nan),
            "k_tail_low": s.get("k_tail_low", np.nan), "k_tail_high": s.get("k_tail_high", np.nan),
            "max_retained_distance": s.get("max_retained_distance", 0), "n_retained": s.get("n_retained", 0)}
