"""The theory test (beyond the paper): do LSTM timescales follow the mutual-information exponent of
the source, and does imposing the matching inverse-gamma shape help?

The paper's argument (docs/methods.md §1, §8): language MI decays as a power law ``I(d) ~ d^-k``; units with
inverse-gamma timescales of shape ``a`` give a population memory ``(1 + t/b)^-a``; so impose
inverse-gamma timescales. Whether the right shape is ``a = k/2`` (MI behaves like a squared
correlation) or ``a = k`` is open. This module tests it where the truth is known: hierarchical
sources (:func:`timescale_probe.mutual_info.synthetic.sample_tree_grammar`, binary trees with a
K-symbol kernel that keeps the parent's symbol with probability ``lam``), whose leaf MI decays as
``d^-k`` with ``k = -4 ln(lam) / ln 2``.

Per nominal ``k`` (``lam = 2^(-k/4)``):

1. **Source**: ``k`` is measured back on an independent sample with :func:`mutual_info.mi_decay`
   (Grassberger estimator, shuffle band, pairs never cross trees): ``k`` of the power law on the
   retained range and ``k_tail`` of its upper half, each with its 95% interval.
2. **Models**, per seed (the seed draws the training/validation/test trees *and* the initial
   weights; every arm of a seed sees the same data, so arms are paired by seed). Four arms of the
   same 3-layer LSTM LM (tied embedding), differing only in layer 2:

   - ``baseline``: every bias trained;
   - ``mts-half``: layer 1 T=3/4 halves, layer 2 inverse-gamma quantiles of shape ``a = k/2``
     (scale 1), layer 3 free, MTS biases frozen (the paper's recipe with another shape);
   - ``mts-k``: the same with ``a = k``;
   - ``single``: the same, layer 2 all at one timescale, the median of the ``a = k`` quantiles.

   Every arm uses the same optimiser (Adam), learning rate and **early stopping** (stop after
   ``patience`` epochs without a better validation loss; the best-validation weights are kept), up
   to ``max_epochs``. Held-out cross-entropy (nats per token) on a test sample of fresh trees.
3. **Learned shape**: the baseline's ``T_data`` (:func:`timescale_probe.gates.estimate_timescales`
   on the test trees) of layer 2, summarised by the tail index of its largest timescales (Hill
   estimator on the top ``tail_fraction`` of units: for T ~ InvGamma(a, b), P(T > t) ~ t^-a, so the
   tail index *is* the inverse-gamma shape), with a nonparametric bootstrap interval over units;
   the ML inverse-gamma fit of the whole layer is reported beside it.

Optimisation speed is told apart from the result at convergence: ``auc_valid`` is the mean
validation loss over the epochs every arm of that (k, seed) ran (lower = learned faster);
``epochs_to_baseline_best`` is the first epoch at which an arm's validation loss reached the
baseline's best; ``test_loss`` is the loss of the best-validation weights (after early stopping).

Verdicts (:func:`theory_verdicts`, pure): outcomes ``holds`` / ``does not hold`` /
``inconclusive`` (the project's vocabulary for claims *beyond the paper*), each with the numbers.
Paired comparisons pool the (k, seed) pairs: mean relative difference in % with a Student-t 95%
interval; ``holds`` when the interval clears 0 in the claim's direction, ``does not hold`` when it
clears 0 in the other, else ``inconclusive``; also ``inconclusive`` with fewer than
:data:`MIN_SEEDS` seeds for some k or fewer than 3 values of k, and (for claims at convergence)
when an arm hit ``max_epochs`` without stopping early.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .errors import OptionError
from .progress import LOGGER, as_progress
from .validation import check_int

ARMS = ("baseline", "mts-half", "mts-k", "single")
ARM_LABELS = {"baseline": "baseline", "mts-half": "MTS a=k/2", "mts-k": "MTS a=k", "single": "single T"}
HOLDS, DOES_NOT_HOLD, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
OUTCOMES = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE)
#: Seeds per arm (and per k) before a comparison can hold or fail.
MIN_SEEDS = 3
#: Values of k before the shape-vs-k claims can hold or fail.
MIN_KS = 3
LEVEL = 0.95
BRANCHING = 2


@dataclass(frozen=True)
class TheoryProfile:
    """Sizes of a theory study. Trees are binary (``branching`` 2) of ``depth`` levels
    (``2**depth`` tokens each); every tree is one line of the corpus (so ``<eos>`` separates trees
    and the vocabulary is ``n_symbols + 1``)."""

    name: str
    ks: tuple[float, ...]
    seeds: tuple[int, ...]
    n_symbols: int
    depth: int
    train_trees: int
    valid_trees: int
    test_trees: int
    mi_trees: int
    mi_max_distance: int
    mi_distances: int
    mi_shuffles: int
    emb_size: int
    hidden: int
    dropout: float
    max_epochs: int
    patience: int
    min_epochs: int
    batch_size: int
    eval_batch_size: int
    bptt: int
    lr: float
    tail_fraction: float = 0.25
    n_boot: int = 1000

    @property
    def layer_sizes(self) -> tuple[int, int, int]:
        return (self.hidden, self.hidden, self.emb_size)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layer_sizes"] = list(self.layer_sizes)
        return d


PROFILES: dict[str, TheoryProfile] = {
    # seconds: a CI test runs it end to end (2 seeds: every verdict must come out inconclusive)
    "smoke": TheoryProfile("smoke", ks=(0.4, 1.2), seeds=(1, 2), n_symbols=4, depth=10, train_trees=2,
                           valid_trees=1, test_trees=1, mi_trees=2, mi_max_distance=200, mi_distances=12,
                           mi_shuffles=2, emb_size=8, hidden=12, dropout=0.0, max_epochs=3, patience=1, min_epochs=0,
                           batch_size=8, eval_batch_size=4, bptt=20, lr=1e-2, n_boot=200),
    # 3 k x 3 seeds x 4 arms of a 64/64/32 LSTM on 98k training tokens (6 trees of 16k) per source:
    # 1-2 min per run on one busy core (--threads 1), so about an hour in all
    "small": TheoryProfile("small", ks=(0.3, 0.8, 1.5), seeds=(1, 2, 3), n_symbols=8, depth=14, train_trees=6,
                           valid_trees=1, test_trees=2, mi_trees=16, mi_max_distance=4000, mi_distances=40,
                           mi_shuffles=5, emb_size=32, hidden=64, dropout=0.1, max_epochs=40, patience=5, min_epochs=12,
                           batch_size=32, eval_batch_size=16, bptt=50, lr=5e-3),
}


def check_options(profile: str, *, jobs: int = 1, seeds: Sequence[int] | None = None,
                  ks: Sequence[float] | None = None, device: str = "cpu", threads: int | None = None) -> TheoryProfile:
    """The profile with ``seeds``/``ks`` overrides, validated before any work."""
    if profile not in PROFILES:
        raise OptionError(f"unknown profile '{profile}': use {', '.join(PROFILES)}", param="profile")
    check_int(jobs, "jobs", minimum=1)
    if threads is not None:
        check_int(threads, "threads", minimum=1)
    prof = PROFILES[profile]
    if seeds is not None:
        seeds = tuple(int(s) for s in seeds)
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise OptionError(f"seeds must be distinct integers >= 0, got {list(seeds)}", param="seeds")
        prof = replace(prof, seeds=seeds)
    if ks is not None:
        ks = tuple(float(k) for k in ks)
        if not ks or len(set(ks)) != len(ks) or not all(0.05 <= k <= 4.0 for k in ks):
            raise OptionError(f"ks must be distinct values in [0.05, 4], got {list(ks)}", param="ks")
        prof = replace(prof, ks=tuple(sorted(ks)))
    if str(device).split(":")[0] not in ("cpu", "cuda", "auto"):
        raise OptionError(f"unknown device '{device}': use cpu, cuda or auto", param="device")
    return prof


def lam_for_k(k: float, branching: int = BRANCHING) -> float:
    """Kernel persistence ``lam`` giving the tree source the MI exponent ``k``: ``k = -4 ln(lam)/ln q``."""
    return float(np.exp(-float(k) * np.log(branching) / 4.0))


def arm_specs(k: float, layer2_size: int) -> dict[str, str | None]:
    """MTS spec text of every arm for exponent ``k`` (None: baseline)."""
    from .timescales import InverseGammaQuantiles

    t_single = float(np.median(InverseGammaQuantiles(float(k), 1.0).timescales(layer2_size)))
    return {"baseline": None, "mts-half": f"fixed:3,4;ig:{k / 2:.6g},1;free", "mts-k": f"fixed:3,4;ig:{k:.6g},1;free",
            "single": f"fixed:3,4;single:{t_single:.6g};free"}


def _trees(k: float, n: int, depth: int, n_symbols: int, seed_key: Sequence[int]) -> list[np.ndarray]:
    from .mutual_info.synthetic import sample_tree_grammar

    lam = lam_for_k(k)
    base = np.random.SeedSequence(list(seed_key)).generate_state(n)
    return [sample_tree_grammar(depth, branching=BRANCHING, n_symbols=n_symbols, lam=lam, seed=int(s)) for s in base]


def source_corpus(k: float, seed: int, prof: TheoryProfile):
    """The LM corpus of source ``k`` for ``seed``: fresh trees per split, one tree per line."""
    from .corpora import Corpus

    kk = int(round(k * 1000))
    lines = {}
    for j, (split, n) in enumerate((("train", prof.train_trees), ("valid", prof.valid_trees), ("test", prof.test_trees))):
        trees = _trees(k, n, prof.depth, prof.n_symbols, (seed, kk, j))
        lines[split] = [" ".join(f"s{v}" for v in t) for t in trees]
    vocab = [f"s{v}" for v in range(prof.n_symbols)] + ["<eos>"]
    return Corpus(f"tree-k{k:g}-seed{seed}", lines, vocab, {"train": "synthetic", "valid": "synthetic", "test": "synthetic"},
                  [f"hierarchical source k={k:g} (lam={lam_for_k(k):.5f}, q=2, {prof.n_symbols} symbols)"])


def measure_source(k: float, prof: TheoryProfile) -> dict[str, Any]:
    """``k`` measured back by :func:`mi_decay` on ``mi_trees`` independent trees (pairs never
    cross trees)."""
    from .mutual_info import mi_decay

    trees = _trees(k, prof.mi_trees, prof.depth, prof.n_symbols, (99991, int(round(k * 1000))))
    x = np.concatenate(trees)
    bounds = np.repeat(np.arange(len(trees)), [t.size for t in trees])
    res = mi_decay(x, max_distance=prof.mi_max_distance, n_distances=prof.mi_distances, shuffles=prof.mi_shuffles,
                   n_types=prof.n_symbols, boundaries=bounds, seed=0)
    s = res.summary
    return {"k": float(k), "lam": lam_for_k(k), "n_tokens": int(x.size), "mi_verdict": s.get("verdict"),
            "mi_tail": s.get("tail"), "k_measured": s.get("k", np.nan), "k_measured_low": s.get("k_low", np.nan),
            "k_measured_high": s.get("k_high", np.nan), "k_tail": s.get("k_tail", np.nan),
            "k_tail_low": s.get("k_tail_low", np.nan), "k_tail_high": s.get("k_tail_high", np.nan),
            "max_retained_distance": s.get("max_retained_distance", 0), "n_retained": s.get("n_retained", 0)}


# ----------------------------------------------------------------------------------------------
# learned shape
# ----------------------------------------------------------------------------------------------

def hill_tail_index(T, fraction: float = 0.25, min_units: int = 5) -> tuple[float, int]:
    """Hill estimate of the tail index of the largest timescales: with ``T_(1) >= ... `` and
    ``m = max(min_units, round(fraction * n))``, ``a = m / sum_{i<=m} log(T_(i) / T_(m+1))``.
    For T ~ InvGamma(a, b) the survival function falls as t^-a, so this estimates ``a``. Only
    finite, positive T count. Returns ``(a, m)``; NaN when fewer than ``m + 1`` values."""
    x = np.asarray(T, dtype=np.float64).ravel()
    x = np.sort(x[np.isfinite(x) & (x > 0)])[::-1]
    m = max(int(min_units), int(round(fraction * x.size)))
    if x.size < m + 1:
        return float("nan"), m
    logs = np.log(x[:m]) - np.log(x[m])
    s = logs.sum()
    return (float(m / s) if s > 0 else float("inf")), m


def learned_shape(T, *, fraction: float = 0.25, n_boot: int = 1000, seed: int = 0, level: float = LEVEL) -> dict[str, float]:
    """Tail index (Hill) and ML inverse-gamma shape/scale of one layer's timescales, each with a
    nonparametric bootstrap percentile interval over units (``n_boot`` resamples)."""
    from .distributions import fit_mle

    x = np.asarray(T, dtype=np.float64).ravel()
    x = x[np.isfinite(x) & (x > 0)]
    out = {"n_units": int(x.size)}
    a_tail, m = hill_tail_index(x, fraction)
    out.update(a_tail=a_tail, tail_units=m)
    try:
        a_ig, b_ig, ok = fit_mle(x, "invgamma") if x.size >= 3 else (np.nan, np.nan, False)
    except Exception:  # noqa: BLE001  (a degenerate sample: no fit)
        a_ig, b_ig, ok = np.nan, np.nan, False
    out.update(a_ig=a_ig if ok else np.nan, b_ig=b_ig if ok else np.nan)
    rng = np.random.default_rng(seed)
    tails, igs = [], []
    for _ in range(int(n_boot)):
        r = x[rng.integers(0, x.size, x.size)] if x.size else x
        tails.append(hill_tail_index(r, fraction)[0])
        if len(igs) < 200:  # the ML refit is the slow part: 200 resamples bound its interval
            try:
                a, _, ok = fit_mle(r, "invgamma")
                igs.append(a if ok else np.nan)
            except Exception:  # noqa: BLE001
                igs.append(np.nan)
    alpha = (1 - level) / 2
    for name, vals in (("a_tail", tails), ("a_ig", igs)):
        v = np.asarray(vals, dtype=np.float64)
        v = v[np.isfinite(v)]
        lo, hi = (np.quantile(v, [alpha, 1 - alpha]) if v.size >= 10 else (np.nan, np.nan))
        out[f"{name}_low"], out[f"{name}_high"] = float(lo), float(hi)
    return out


# ----------------------------------------------------------------------------------------------
# one training run (a worker process with --jobs > 1)
# ----------------------------------------------------------------------------------------------

def _mean_nll(model, stream, batch_size: int, bptt: int, device) -> float:
    from .evaluation import token_nll

    nll, _ = token_nll(model, stream, batch_size=batch_size, bptt=bptt, device=device)
    return float(np.mean(nll))


def run_arm(job: dict[str, Any]) -> dict[str, Any]:
    """Train one arm for one (k, seed) and measure it; returns ``{'row', 'curve', 'timescales'}``.
    ``job``: k, seed, arch, spec, profile (dict), workdir, device, threads."""
    import torch

    from .checkpoints import load_checkpoint
    from .gates import estimate_timescales
    from .models import LanguageModel
    from .training import train_language_model

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    prof = TheoryProfile(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in job["profile"].items()
                            if k != "layer_sizes"})
    k, seed, arch, spec = float(job["k"]), int(job["seed"]), job["arch"], job["spec"]
    corpus = source_corpus(k, seed, prof)
    out = Path(job["workdir"]) / f"k{k:g}-{arch}-seed{seed}.pt"
    t0 = time.time()
    p = prof.dropout
    res = train_language_model(
        corpus, out, arch="baseline" if spec is None else "mts", profile="tiny", mts_spec=spec,
        model_overrides=dict(emb_size=prof.emb_size, layer_sizes=prof.layer_sizes, dropout=p, dropouth=p, dropouti=p,
                             dropoute=0.0, wdrop=p, tie_weights=True),
        train_overrides=dict(epochs=prof.max_epochs, batch_size=prof.batch_size, eval_batch_size=prof.eval_batch_size,
                             test_batch_size=prof.eval_batch_size, bptt=prof.bptt, optimizer="adam", lr=prof.lr,
                             alpha=0.0, beta=0.0, wdecay=0.0, clip=0.25, seed=seed, patience=prof.patience,
                             min_epochs=prof.min_epochs),
        device=job.get("device", "cpu"), final_eval=False, log=lambda msg: None)
    train_s = time.time() - t0
    device = torch.device(job.get("device", "cpu"))
    model = LanguageModel.from_stack(load_checkpoint(out)).to(device).eval()
    valid = _mean_nll(model, corpus.tokens("valid"), prof.eval_batch_size, prof.bptt, device)
    test = _mean_nll(model, corpus.tokens("test"), prof.eval_batch_size, prof.bptt, device)
    m = res.metrics
    card = res.card
    row = {"k": k, "arch": arch, "seed": seed, "mts_spec": spec or "baseline",
           "epochs_run": int(card["epochs"]), "best_epoch": int(card["best_epoch"]),
           "stopped_early": bool(card.get("stopped_early", False)), "best_valid_loss": valid,
           "test_loss": test, "test_ppl": math.exp(test), "train_seconds": train_s,
           "parameters": int(card["parameters"]), "train_tokens": int(corpus.tokens("train").numel()),
           "test_tokens": int(corpus.tokens("test").numel())}
    curve = pd.DataFrame({"k": k, "arch": arch, "seed": seed, "epoch": m["epoch"].astype(int),
                          "train_loss": m["train_loss"].astype(float), "valid_loss": m["valid_loss"].astype(float)})
    ts = None
    if arch == "baseline":
        est = estimate_timescales(model, corpus.tokens("test"), batch_size=prof.eval_batch_size, device=device)
        tab = est.table_
        ts = pd.DataFrame({"k": k, "seed": seed, "layer": tab["layer"].astype(int), "unit": tab["unit"].astype(int),
                           "T_data": tab["T_data"].astype(float)})
        shape = learned_shape(tab.loc[tab["layer"] == 2, "T_data"], fraction=prof.tail_fraction, n_boot=prof.n_boot,
                              seed=seed)
        pooled = hill_tail_index(tab.loc[tab["layer"] <= 2, "T_data"], prof.tail_fraction)[0]
        row.update(shape)
        row["a_tail_layers12"] = pooled
    return {"row": row, "curve": curve, "timescales": ts}


# ----------------------------------------------------------------------------------------------
# the study
# ----------------------------------------------------------------------------------------------

@dataclass
class TheoryResult:
    """Everything :func:`run_theory_study` measured (see the module docstring for the columns)."""

    profile: TheoryProfile
    sources: pd.DataFrame
    results: pd.DataFrame
    curves: pd.DataFrame
    timescales: pd.DataFrame
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    verdicts: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)


def _speed_columns(results: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Add ``auc_valid`` (mean validation loss over the epochs every arm of the (k, seed) ran),
    ``common_epochs`` and ``epochs_to_baseline_best`` to ``results``."""
    out = results.copy()
    out["auc_valid"] = np.nan
    out["common_epochs"] = 0
    out["epochs_to_baseline_best"] = np.nan
    for (k, seed), grp in out.groupby(["k", "seed"]):
        cur = curves[(curves["k"] == k) & (curves["seed"] == seed)]
        common = int(cur.groupby("arch")["epoch"].max().min()) if len(cur) else 0
        base = cur[cur["arch"] == "baseline"]
        target = float(base["valid_loss"].min()) if len(base) else np.nan
        for idx, r in grp.iterrows():
            c = cur[cur["arch"] == r["arch"]].sort_values("epoch")
            out.at[idx, "common_epochs"] = common
            if common:
                out.at[idx, "auc_valid"] = float(c.loc[c["epoch"] <= common, "valid_loss"].mean())
            hit = c.loc[c["valid_loss"] <= target + 1e-12, "epoch"]
            out.at[idx, "epochs_to_baseline_best"] = float(hit.min()) if len(hit) else np.nan
    return out


#: Profile fields that must match for a cached run to be reused (not the list of seeds or ks).
_CACHE_FIELDS_IGNORED = ("seeds", "ks", "name")


def _cache_key(k: float, arch: str, seed: int) -> str:
    return f"k{k:g}-{arch}-seed{seed}.json"


def _cache_write(cache_dir: str | os.PathLike, prof: TheoryProfile, result: dict[str, Any]) -> None:
    from .fileio import atomic_write_text

    row = result["row"]
    payload = {"profile": {k: v for k, v in prof.to_dict().items() if k not in _CACHE_FIELDS_IGNORED},
               "row": row, "curve": result["curve"].to_dict(orient="list"),
               "timescales": None if result["timescales"] is None else result["timescales"].to_dict(orient="list")}
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(cache_dir) / _cache_key(row["k"], row["arch"], row["seed"]), json.dumps(payload) + "\n")


def _cache_read(cache_dir: str | os.PathLike, prof: TheoryProfile, k: float, arch: str, seed: int) -> dict | None:
    """A finished run from the cache (plain JSON, never executed), or None. A run cached with
    other settings is an error (use another cache folder)."""
    path = Path(cache_dir) / _cache_key(k, arch, seed)
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        want = {k2: v for k2, v in prof.to_dict().items() if k2 not in _CACHE_FIELDS_IGNORED}
        if json.loads(json.dumps(want)) != payload["profile"]:
            raise OptionError(f"cache_dir {cache_dir} holds {path.name} made with other settings; use another "
                              "cache folder", param="cache_dir")
        ts = payload["timescales"]
        return {"row": payload["row"], "curve": pd.DataFrame(payload["curve"]),
                "timescales": None if ts is None else pd.DataFrame(ts)}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise OptionError(f"cache_dir: {path} is not a theory-run cache file ({exc})", param="cache_dir") from None


def run_theory_study(profile: str = "small", out_dir: str | os.PathLike | None = None, *, jobs: int = 1,
                     seeds: Sequence[int] | None = None, ks: Sequence[float] | None = None, device: str = "cpu",
                     threads: int | None = None, progress: Any = False, cache_dir: str | os.PathLike | None = None,
                     log: Callable[[str], None] | None = None) -> TheoryResult:
    """Run the theory study (module docstring) and, when ``out_dir`` is given, write its outputs
    there (:func:`write_theory_outputs`, only after everything succeeded). ``jobs``: training runs
    in parallel processes; ``threads``: torch threads per run. ``cache_dir``: every finished run is
    stored there (one JSON file per k, arm and seed) and reused by a later call with the same
    settings, so an interrupted study resumes where it stopped. Runs go seed by seed (all k and
    arms of seed 1 first), so a partial cache holds whole seeds."""
    prof = check_options(profile, jobs=jobs, seeds=seeds, ks=ks, device=device, threads=threads)
    if cache_dir is not None and Path(cache_dir).exists() and not Path(cache_dir).is_dir():
        raise OptionError(f"cache_dir must be a directory, but {cache_dir} is a file", param="cache_dir")
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise OptionError(f"out_dir must be a directory, but {out_dir} is a file", param="out_dir")
    if str(device) == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    log = log or LOGGER.info
    t0 = time.time()
    bar = as_progress(progress)
    sources = []
    for k in prof.ks:
        sources.append(measure_source(k, prof))
        s = sources[-1]
        log(f"source k={k:g}: measured k={s['k_measured']:.3f} [{s['k_measured_low']:.3f}, {s['k_measured_high']:.3f}], "
            f"k_tail={s['k_tail']:.3f}")
    sources_df = pd.DataFrame(sources)

    rows, curves, tss = [], [], []
    with tempfile.TemporaryDirectory(prefix="tsprobe-theory-") as work:
        jobs_list, cached = [], []
        for seed in prof.seeds:
            for k in prof.ks:
                specs = arm_specs(k, prof.hidden)
                for arch in ARMS:
                    hit = _cache_read(cache_dir, prof, k, arch, seed) if cache_dir is not None else None
                    if hit is not None:
                        cached.append(hit)
                        continue
                    jobs_list.append({"k": k, "seed": seed, "arch": arch, "spec": specs[arch], "profile": prof.to_dict(),
                                      "workdir": work, "device": str(device), "threads": threads})
        bar.start(len(jobs_list) + len(cached), f"theory study: {len(jobs_list)} training runs"
                  f"{f' ({len(cached)} more from the cache)' if cached else ''}")
        try:
            def collect(r, fresh=True):
                if fresh and cache_dir is not None:
                    _cache_write(cache_dir, prof, r)
                rows.append(r["row"])
                curves.append(r["curve"])
                if r["timescales"] is not None:
                    tss.append(r["timescales"])
                rr = r["row"]
                log(f"k={rr['k']:g} seed={rr['seed']} {rr['arch']}: test loss {rr['test_loss']:.4f} "
                    f"(best epoch {rr['best_epoch']}/{rr['epochs_run']}, {rr['train_seconds']:.0f} s)")
                bar.advance(1)

            for r in cached:
                collect(r, fresh=False)
            if int(jobs) == 1:
                for j in jobs_list:
                    collect(run_arm(j))
            else:
                import multiprocessing as mp
                from concurrent.futures import ProcessPoolExecutor

                with ProcessPoolExecutor(max_workers=int(jobs), mp_context=mp.get_context("spawn")) as ex:
                    for r in ex.map(run_arm, jobs_list):
                        collect(r)
        finally:
            bar.done()

    results = pd.DataFrame(rows)
    order = {a: i for i, a in enumerate(ARMS)}
    curves_df = pd.concat(curves, ignore_index=True)
    curves_df = curves_df.sort_values(["k", "seed", "arch", "epoch"],
                                      key=lambda s: s.map(order) if s.name == "arch" else s).reset_index(drop=True)
    results = results.merge(sources_df[["k", "k_measured", "k_measured_low", "k_measured_high", "k_tail"]]
                            .rename(columns={"k_tail": "k_tail_measured"}), on="k", how="left")
    results["a_imposed"] = results.apply(lambda r: {"mts-half": r["k"] / 2, "mts-k": r["k"]}.get(r["arch"], np.nan), axis=1)
    results["T_single"] = results.apply(
        lambda r: float(r["mts_spec"].split("single:")[1].split(";")[0]) if r["arch"] == "single" else np.nan, axis=1)
    results = _speed_columns(results, curves_df)
    results = results.sort_values(["k", "seed", "arch"], key=lambda s: s.map(order) if s.name == "arch" else s)
    results = results.reset_index(drop=True)
    ts_df = pd.concat(tss, ignore_index=True) if tss else pd.DataFrame(columns=["k", "seed", "layer", "unit", "T_data"])
    result = TheoryResult(prof, sources_df, results, curves_df, ts_df, seconds=time.time() - t0,
                          options={"profile": prof.name, "jobs": int(jobs), "seeds": list(prof.seeds),
                                   "ks": list(prof.ks), "device": str(device), "threads": threads})
    result.summary = theory_summary(results)
    result.verdicts = theory_verdicts(result)
    if out_dir is not None:
        write_theory_outputs(result, out_dir)
    return result


# ----------------------------------------------------------------------------------------------
# statistics and verdicts (pure)
# ----------------------------------------------------------------------------------------------

def t_interval(x, level: float = LEVEL) -> tuple[float, float, float, int]:
    """Mean of ``x`` (NaN dropped) with its Student-t interval: ``(mean, low, high, n)``; NaN bounds
    when n < 2."""
    from scipy import stats

    v = np.asarray(x, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    m = float(v.mean())
    if n < 2:
        return m, float("nan"), float("nan"), n
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / np.sqrt(n))
    return m, m - half, m + half, n


def slope_interval(x, y, level: float = LEVEL) -> tuple[float, float, float, int]:
    """OLS slope of ``y`` on ``x`` with its Student-t interval (n - 2 df): ``(slope, low, high, n)``."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    if n < 3 or np.ptp(x) == 0:
        return float("nan"), float("nan"), float("nan"), n
    xc = x - x.mean()
    b = float(xc @ (y - y.mean()) / (xc @ xc))
    resid = y - y.mean() - b * xc
    se = float(np.sqrt(resid @ resid / (n - 2) / (xc @ xc)))
    half = float(stats.t.ppf(0.5 + level / 2, n - 2) * se)
    return b, b - half, b + half, n


def paired_differences(results: pd.DataFrame, better: str, worse: str, column: str = "test_loss") -> pd.DataFrame:
    """Per (k, seed) present in both arms: ``diff_pct = 100 (worse - better) / worse`` of ``column``
    (> 0: ``better`` really is lower)."""
    a = results[results["arch"] == better].set_index(["k", "seed"])[column]
    b = results[results["arch"] == worse].set_index(["k", "seed"])[column]
    j = pd.concat({"better": a, "worse": b}, axis=1).dropna()
    j["diff_pct"] = 100.0 * (j["worse"] - j["better"]) / j["worse"]
    return j.reset_index()


def _fmt(x: float, nd: int = 3) -> str:
    return "nan" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def _power_issue(results: pd.DataFrame, arms: Sequence[str], min_ks: int = 1) -> str | None:
    """Why a comparison of ``arms`` is underpowered (too few seeds per k, or too few k), or None."""
    sub = results[results["arch"].isin(arms)]
    if sub.empty:
        return "no runs"
    per = sub.groupby(["k", "arch"])["seed"].nunique()
    if per.min() < MIN_SEEDS:
        return f"fewer than {MIN_SEEDS} seeds per arm and k (min {int(per.min())})"
    nk = sub["k"].nunique()
    if nk < min_ks:
        return f"fewer than {min_ks} values of k ({nk})"
    return None


def paired_verdict(diffs, *, power_issue: str | None = None, budget_issue: str | None = None,
                   level: float = LEVEL) -> tuple[str, float, float, float, int]:
    """Outcome of "the claimed-better arm is better": ``diffs`` > 0 favour it. ``holds`` if the
    t interval of the mean lies above 0, ``does not hold`` if below 0, else ``inconclusive``; also
    ``inconclusive`` when ``power_issue`` or ``budget_issue`` is given. Returns (outcome, mean,
    low, high, n)."""
    m, lo, hi, n = t_interval(diffs, level)
    if power_issue or budget_issue or n < 2 or not np.isfinite(lo):
        return INCONCLUSIVE, m, lo, hi, n
    if lo > 0:
        return HOLDS, m, lo, hi, n
    if hi < 0:
        return DOES_NOT_HOLD, m, lo, hi, n
    return INCONCLUSIVE, m, lo, hi, n


def trend_verdict(slope_low: float, slope_high: float, *, power_issue: str | None = None) -> str:
    """Outcome of "the learned shape increases with k": interval of the slope above 0 -> holds,
    below 0 -> does not hold, else (or underpowered) inconclusive."""
    if power_issue or not (np.isfinite(slope_low) and np.isfinite(slope_high)):
        return INCONCLUSIVE
    if slope_low > 0:
        return HOLDS
    if slope_high < 0:
        return DOES_NOT_HOLD
    return INCONCLUSIVE


def mapping_verdict(slope_low: float, slope_high: float, claimed: float, other: float, *,
                    power_issue: str | None = None) -> str:
    """Outcome of "the learned shape is a = claimed * k" against the alternative ``other * k``, from
    the interval of the slope of a on k: does not hold if it excludes ``claimed``; holds if it covers
    ``claimed`` and excludes both ``other`` and 0 (the shape must track k at all); else (or when
    underpowered) inconclusive. A pooled ratio a/k would "cover" a mapping even with no trend."""
    if power_issue or not (np.isfinite(slope_low) and np.isfinite(slope_high)):
        return INCONCLUSIVE
    covers = lambda v: slope_low <= v <= slope_high  # noqa: E731
    if not covers(claimed):
        return DOES_NOT_HOLD
    if covers(other) or covers(0.0):
        return INCONCLUSIVE
    return HOLDS


def _budget_issue(results: pd.DataFrame, arms: Sequence[str]) -> str | None:
    sub = results[results["arch"].isin(arms)]
    capped = sub[~sub["stopped_early"].astype(bool)]
    if len(capped):
        return (f"{len(capped)} of {len(sub)} runs hit the epoch cap without early stopping "
                f"({', '.join(f'k={r.k:g} {r.arch} seed {r.seed}' for r in capped.head(4).itertuples())}"
                f"{', ...' if len(capped) > 4 else ''})")
    return None


def _per_k(pairs: pd.DataFrame) -> str:
    parts = []
    for k, g in pairs.groupby("k"):
        m, lo, hi, n = t_interval(g["diff_pct"])
        parts.append(f"k={k:g}: {_fmt(m, 2)}% [{_fmt(lo, 2)}, {_fmt(hi, 2)}] (n={n})")
    return "; ".join(parts)


PAIRED_CLAIMS = (
    # (claim, better arm, worse arm, column, at convergence?)
    ("MTS a=k/2 beats the baseline at convergence (test loss)", "mts-half", "baseline", "test_loss", True),
    ("MTS a=k beats the baseline at convergence (test loss)", "mts-k", "baseline", "test_loss", True),
    ("single-T control beats the baseline at convergence (test loss)", "single", "baseline", "test_loss", True),
    ("matched shape a=k/2 beats a=k at convergence (test loss)", "mts-half", "mts-k", "test_loss", True),
    ("inverse-gamma a=k/2 beats the single-T control at convergence (test loss)", "mts-half", "single", "test_loss", True),
    ("inverse-gamma a=k beats the single-T control at convergence (test loss)", "mts-k", "single", "test_loss", True),
    ("MTS a=k/2 learns faster than the baseline (validation AUC over common epochs)", "mts-half", "baseline", "auc_valid", False),
    ("MTS a=k learns faster than the baseline (validation AUC over common epochs)", "mts-k", "baseline", "auc_valid", False),
    ("single-T control learns faster than the baseline (validation AUC over common epochs)", "single", "baseline", "auc_valid", False),
    ("inverse-gamma a=k/2 learns faster than the single-T control (validation AUC)", "mts-half", "single", "auc_valid", False),
)


def theory_verdicts(result: TheoryResult | pd.DataFrame) -> pd.DataFrame:
    """Verdict rows ``claim, verdict, evidence`` (plus ``estimate, low, high, n``) from the
    per-run results (a :class:`TheoryResult` or its ``results`` table). Pure: no I/O."""
    res = result.results if isinstance(result, TheoryResult) else result
    rows = []
    base = res[res["arch"] == "baseline"].copy()
    shape_issue = _power_issue(res, ["baseline"], MIN_KS)
    if "a_tail" in base:
        b, lo, hi, n = slope_interval(base["k"], base["a_tail"])
        v = trend_verdict(lo, hi, power_issue=shape_issue)
        means = "; ".join(f"k={k:g}: a={_fmt(g['a_tail'].mean(), 2)}" for k, g in base.groupby("k"))
        ev = (f"slope of the baseline's layer-2 tail index a on k: {_fmt(b, 3)} [{_fmt(lo, 3)}, {_fmt(hi, 3)}] "
              f"(t 95%, n={n} runs; a = k/2 predicts 0.5, a = k predicts 1); {means}")
        if shape_issue:
            ev += f"; inconclusive: {shape_issue}"
        rows.append({"claim": "learned layer-2 shape increases with the source's k", "verdict": v, "evidence": ev,
                     "estimate": b, "low": lo, "high": hi, "n": n})
        ratio = base["a_tail"] / base["k"]
        m, rlo, rhi, rn = t_interval(ratio)
        for claim, c, o in (("learned shape follows a = k/2", 0.5, 1.0), ("learned shape follows a = k", 1.0, 0.5)):
            v = mapping_verdict(lo, hi, c, o, power_issue=shape_issue)
            ev = (f"slope of a on k {_fmt(b, 3)} [{_fmt(lo, 3)}, {_fmt(hi, 3)}] (t 95%, n={n}); covers {c:g}: "
                  f"{bool(np.isfinite(lo) and lo <= c <= hi)}, covers {o:g}: {bool(np.isfinite(lo) and lo <= o <= hi)}, "
                  f"covers 0: {bool(np.isfinite(lo) and lo <= 0 <= hi)}; mean a/k = {_fmt(m, 3)} "
                  f"[{_fmt(rlo, 3)}, {_fmt(rhi, 3)}] over {rn} runs")
            if shape_issue:
                ev += f"; inconclusive: {shape_issue}"
            rows.append({"claim": claim, "verdict": v, "evidence": ev, "estimate": b, "low": lo, "high": hi, "n": n})
    for claim, better, worse, col, at_conv in PAIRED_CLAIMS:
        pairs = paired_differences(res, better, worse, col) if col in res else pd.DataFrame(columns=["k", "diff_pct"])
        power = _power_issue(res, [better, worse])
        budget = _budget_issue(res, [better, worse]) if at_conv else None
        v, m, lo, hi, n = paired_verdict(pairs["diff_pct"], power_issue=power, budget_issue=budget)
        what = "test loss" if col == "test_loss" else "mean validation loss over common epochs"
        ev = (f"{ARM_LABELS[worse]} minus {ARM_LABELS[better]} {what}, relative: {_fmt(m, 2)}% "
              f"[{_fmt(lo, 2)}, {_fmt(hi, 2)}] (t 95%, {n} pairs by k and seed; > 0 favours {ARM_LABELS[better]})")
        if len(pairs):
            ev += f"; per k: {_per_k(pairs)}"
        for issue in (power, budget):
            if issue:
                ev += f"; inconclusive: {issue}"
        rows.append({"claim": claim, "verdict": v, "evidence": ev, "estimate": m, "low": lo, "high": hi, "n": n})
    return pd.DataFrame(rows, columns=["claim", "verdict", "evidence", "estimate", "low", "high", "n"])


def theory_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per (k, arch): seeds, mean test loss (t interval), paired relative differences to the
    baseline (test loss and validation AUC, %, > 0 = better than the baseline), mean best epoch and
    epochs to the baseline's best, and for the baseline the learned tail index a."""
    rows = []
    for (k, arch), g in results.groupby(["k", "arch"], sort=False):
        m, lo, hi, n = t_interval(g["test_loss"])
        row = {"k": k, "arch": arch, "seeds": int(g["seed"].nunique()), "test_loss": m, "test_loss_low": lo,
               "test_loss_high": hi, "best_valid_loss": float(g["best_valid_loss"].mean()),
               "best_epoch": float(g["best_epoch"].mean()), "epochs_run": float(g["epochs_run"].mean()),
               "stopped_early": int(g["stopped_early"].astype(bool).sum()),
               "epochs_to_baseline_best": float(g["epochs_to_baseline_best"].mean())
               if g["epochs_to_baseline_best"].notna().all() else np.nan,
               "reached_baseline_best": int(g["epochs_to_baseline_best"].notna().sum())}
        sub = results[results["k"] == k]
        for col, name in (("test_loss", "d_test_pct"), ("auc_valid", "d_auc_pct")):
            if arch == "baseline":
                row.update({name: 0.0, f"{name}_low": np.nan, f"{name}_high": np.nan})
                continue
            pairs = paired_differences(sub, arch, "baseline", col)
            dm, dlo, dhi, _ = t_interval(pairs["diff_pct"])
            row.update({name: dm, f"{name}_low": dlo, f"{name}_high": dhi})
        if arch == "baseline" and "a_tail" in g:
            am, alo, ahi, _ = t_interval(g["a_tail"])
            row.update({"a_tail": am, "a_tail_low": alo, "a_tail_high": ahi, "a_ig": float(g["a_ig"].mean())})
        rows.append(row)
    out = pd.DataFrame(rows)
    order = {a: i for i, a in enumerate(ARMS)}
    return out.sort_values(["k", "arch"], key=lambda s: s.map(order) if s.name == "arch" else s).reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------------------------

def figure_theory(result: TheoryResult):
    """Top row, per k: test loss of each arm below the baseline's of the same seed (%, points =
    seeds, bar = mean with its t 95% interval); the last panel: the baseline's
    learned tail index a against k with the a = k/2 and a = k lines. Bottom row, per k: validation
    learning curves (one line per seed and arm); the last panel: measured against nominal k."""
    from .plots.style import new_figure

    ks = list(result.profile.ks)
    fig, axes = new_figure(ncols=len(ks) + 1, nrows=2, width=3.3, height=2.8)
    colors = {"baseline": "0.3", "mts-half": "tab:blue", "mts-k": "tab:orange", "single": "tab:green"}
    res = result.results
    for j, k in enumerate(ks):
        ax = axes[0][j]
        sub = res[res["k"] == k]
        for i, arch in enumerate(ARMS):
            d = paired_differences(sub, arch, "baseline")["diff_pct"] if arch != "baseline" else pd.Series([0.0])
            m, lo, hi, _ = t_interval(d)
            ax.scatter(np.full(len(d), i) + np.linspace(-0.12, 0.12, len(d)), d, color=colors[arch], s=14, zorder=2)
            if np.isfinite(lo):
                ax.errorbar([i + 0.3], [m], yerr=[[m - lo], [hi - m]], fmt="_", color=colors[arch], lw=1.2, ms=10)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_xticks(range(len(ARMS)), [ARM_LABELS[a] for a in ARMS], rotation=30, fontsize=7)
        ax.set_title(f"k = {k:g}", fontsize=9)
        if j == 0:
            ax.set_ylabel("test loss below baseline (%)\n(seeds; mean, t 95%)")
        ax2 = axes[1][j]
        cur = result.curves[result.curves["k"] == k]
        for (arch, seed), g in cur.groupby(["arch", "seed"]):
            ax2.plot(g["epoch"], g["valid_loss"], color=colors[arch], lw=0.9, alpha=0.8,
                     label=ARM_LABELS[arch] if seed == cur["seed"].min() else None)
        ax2.set_xlabel("epoch")
        if j == 0:
            ax2.set_ylabel("validation loss")
            ax2.legend(fontsize=6)
    ax = axes[0][-1]
    base = res[res["arch"] == "baseline"]
    if "a_tail" in base:
        yerr = np.vstack([base["a_tail"] - base["a_tail_low"], base["a_tail_high"] - base["a_tail"]])
        yerr = np.where(np.isfinite(yerr), np.clip(yerr, 0, None), 0)
        ax.errorbar(base["k"], base["a_tail"], yerr=yerr, fmt="o", ms=3, color="0.2", lw=0.8, label="baseline a (tail)")
    kk = np.linspace(0, max(ks) * 1.1, 20)
    ax.plot(kk, kk / 2, "--", color="tab:blue", label="a = k/2")
    ax.plot(kk, kk, ":", color="tab:orange", label="a = k")
    ax.set_xlabel("source k (nominal)")
    ax.set_ylabel("learned layer-2 shape a")
    ax.legend(fontsize=6)
    ax = axes[1][-1]
    s = result.sources
    yerr = np.vstack([s["k_measured"] - s["k_measured_low"], s["k_measured_high"] - s["k_measured"]])
    yerr = np.where(np.isfinite(yerr), np.clip(yerr, 0, None), 0)
    ax.errorbar(s["k"], s["k_measured"], yerr=yerr, fmt="s", ms=3, color="tab:purple", label="measured k (mi-decay)")
    ax.plot(kk, kk, color="0.6", lw=0.8, label="nominal")
    ax.set_xlabel("source k (nominal)")
    ax.set_ylabel("measured k")
    ax.legend(fontsize=6)
    fig.suptitle(f"Theory test on hierarchical sources ({result.profile.name} profile)", fontsize=10)
    return fig


OUTPUT_FILES = ("theory_results.csv", "theory_curves.csv", "theory_summary.csv", "theory_verdicts.csv",
                "theory_sources.csv", "theory_timescales.csv", "theory.pdf", "theory.png", "run.json")


def write_theory_outputs(result: TheoryResult, out_dir: str | os.PathLike) -> Path:
    """Write every output atomically into ``out_dir`` (created): :data:`OUTPUT_FILES`."""
    from .fileio import prepare_out_dir, save_figure, write_run_json, write_table

    out = prepare_out_dir(out_dir)
    write_table(result.results, out / "theory_results.csv")
    write_table(result.curves, out / "theory_curves.csv")
    write_table(result.summary, out / "theory_summary.csv")
    write_table(result.verdicts, out / "theory_verdicts.csv")
    write_table(result.sources, out / "theory_sources.csv")
    write_table(result.timescales, out / "theory_timescales.csv")
    save_figure(figure_theory(result), out / "theory.pdf")
    save_figure(figure_theory(result), out / "theory.png")
    verdicts = {r.claim: r.verdict for r in result.verdicts.itertuples()}
    write_run_json(out, "tsprobe theory-test", dict(result.options, profile_settings=result.profile.to_dict()),
                   seed=None, results={"seconds": result.seconds, "verdicts": verdicts,
                                       "sources": result.sources.to_dict(orient="records")})
    return out


def reproduce_step(ctx, opts) -> dict[str, Any]:
    """The ``theory`` step of ``tsprobe reproduce`` (a *beyond the paper* section): the study at the
    reproduce profile's size (``smoke`` -> smoke, otherwise small), outputs in ``<out>/theory/``,
    finished runs cached in ``<out>/models/theory-cache/`` so an interrupted reproduce resumes."""
    profile = "smoke" if opts.profile == "smoke" else "small"
    threads = getattr(opts, "threads", None) or 1
    result = run_theory_study(profile, ctx.path("theory"), jobs=1, threads=threads,
                              cache_dir=ctx.path("models", "theory-cache"))
    rows = []
    for r in result.verdicts.itertuples():
        lo, hi = getattr(r, "low", float("nan")), getattr(r, "high", float("nan"))
        interval = f"[{lo:.3g}, {hi:.3g}]" if np.isfinite(lo) and np.isfinite(hi) else "-"
        rows.append({"claim": r.claim, "verdict": r.verdict, "evidence": r.evidence, "interval": interval})
    return {"rows": rows, "_files": [f"theory/{name}" for name in OUTPUT_FILES]}
