"""Verdicts of a theory study, with their power (pure functions: tables in, tables out).

**Paired claims** ("arm A beats arm B on a metric"): per (k, seed) the difference ``B - A`` (nats
for the factor study's slow-token state loss; % of B for the tree study's test loss, as that study
reported), pooled over k and seeds; its mean with the 95% t interval (:func:`timescale_probe.stats.t_interval`).
``holds`` when the interval lies above 0, ``fails`` when below, else ``inconclusive``. Beside it,
its power: n, between-seed SD of the differences, the smallest effect detectable with 80% power at
this n (:func:`detectable_effect`, one-sided 2.5%, noncentral t as :func:`timescale_probe.stats.t_power`)
and the seeds needed for 80% power at the observed effect (:func:`timescale_probe.stats.seeds_needed`).
``inconclusive`` also with fewer than :data:`MIN_SEEDS` seeds per arm and k and, for claims at
convergence, when a run hit the epoch cap without stopping early.

**No power.** A claim about long memory presupposes that the source's long-range structure is
worth more to the loss than the study can resolve. Its *headroom* is the exact Bayes predictor's
gain from context beyond 50 tokens (the factor study: on slow-factor tokens' state loss; the tree
study: on the loss, in %). When the study's detectable effect on that scale exceeds the headroom,
such a claim cannot be shown either way and any outcome but ``holds`` reads ``no power``. The
learned-shape claims presuppose the same (a network cannot follow a structure the study cannot
resolve): they are gated by the study's first long-memory contrast (factor: log-uniform vs
short-only; tree: MTS a=k/2 vs baseline).

**Shape identifiability** (factor study): the oracle basis (:mod:`timescale_probe.theory.oracle`)
gives each arm's best loss with its timescales frozen; when the oracle difference between
``a = k/2`` and ``a = k`` is below the detectable effect, the evidence says the source cannot
identify the shape at this power.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .. import stats
from .profiles import ARM_LABELS

HOLDS, FAILS, INCONCLUSIVE, NO_POWER = "holds", "fails", "inconclusive", "no power"
OUTCOMES = (HOLDS, FAILS, INCONCLUSIVE, NO_POWER)
#: Seeds per arm (and per k) before a comparison can hold or fail.
MIN_SEEDS = 3
#: Values of k before the shape-vs-k claims can hold or fail.
MIN_KS = 3
#: The context beyond which the headroom is counted (the training window, bptt).
HORIZON = 50

VERDICT_COLUMNS = ["id", "claim", "verdict", "evidence", "estimate", "low", "high", "n", "sd", "detectable",
                   "seeds_needed", "unit"]


@dataclass(frozen=True)
class PairedClaim:
    """``better`` beats ``worse`` on ``column`` (lower is better); ``memory``: a long-memory
    claim (subject to the headroom gate); ``at_convergence``: capped runs make it inconclusive."""

    id: str
    statement: str
    better: str
    worse: str
    column: str
    memory: bool = True
    at_convergence: bool = True


FACTOR_CLAIMS = (
    PairedClaim("theory.factor.long_vs_short", "log-uniform timescales beat short-only ones on slow-factor tokens",
                "log-uniform", "short-only", "slow_state_loss"),
    PairedClaim("theory.factor.ig_half_vs_short", "IG a=k/2 beats short-only timescales on slow-factor tokens",
                "ig-half", "short-only", "slow_state_loss"),
    PairedClaim("theory.factor.ig_k_vs_short", "IG a=k beats short-only timescales on slow-factor tokens",
                "ig-k", "short-only", "slow_state_loss"),
    PairedClaim("theory.factor.matched_shape", "IG a=k/2 beats IG a=k on slow-factor tokens (matched vs mismatched shape)",
                "ig-half", "ig-k", "slow_state_loss"),
    PairedClaim("theory.factor.ig_half_vs_log_uniform", "IG a=k/2 beats log-uniform timescales on slow-factor tokens",
                "ig-half", "log-uniform", "slow_state_loss"),
    PairedClaim("theory.factor.ig_half_vs_single", "IG a=k/2 beats the single-T control on slow-factor tokens",
                "ig-half", "single", "slow_state_loss"),
    PairedClaim("theory.factor.ig_half_vs_baseline", "IG a=k/2 beats the baseline on slow-factor tokens",
                "ig-half", "baseline", "slow_state_loss"),
    PairedClaim("theory.factor.log_uniform_vs_baseline", "log-uniform timescales beat the baseline on slow-factor tokens",
                "log-uniform", "baseline", "slow_state_loss"),
    PairedClaim("theory.factor.ig_half_vs_baseline_overall", "IG a=k/2 beats the baseline on all tokens",
                "ig-half", "baseline", "loss"),
    PairedClaim("theory.factor.ig_half_faster", "IG a=k/2 learns faster than the baseline (validation AUC)",
                "ig-half", "baseline", "auc_valid", memory=False, at_convergence=False),
)

TREE_CLAIMS = (
    PairedClaim("theory.tree.mts_half_vs_baseline", "MTS a=k/2 beats the baseline at convergence (test loss)",
                "mts-half", "baseline", "test_loss"),
    PairedClaim("theory.tree.mts_k_vs_baseline", "MTS a=k beats the baseline at convergence (test loss)",
                "mts-k", "baseline", "test_loss"),
    PairedClaim("theory.tree.single_vs_baseline", "single-T control beats the baseline at convergence (test loss)",
                "single", "baseline", "test_loss"),
    PairedClaim("theory.tree.matched_shape", "matched shape a=k/2 beats a=k at convergence (test loss)",
                "mts-half", "mts-k", "test_loss"),
    PairedClaim("theory.tree.mts_half_vs_single", "inverse-gamma a=k/2 beats the single-T control at convergence (test loss)",
                "mts-half", "single", "test_loss"),
    PairedClaim("theory.tree.mts_k_vs_single", "inverse-gamma a=k beats the single-T control at convergence (test loss)",
                "mts-k", "single", "test_loss"),
    PairedClaim("theory.tree.mts_half_faster", "MTS a=k/2 learns faster than the baseline (validation AUC over common epochs)",
                "mts-half", "baseline", "auc_valid", memory=False, at_convergence=False),
    PairedClaim("theory.tree.mts_k_faster", "MTS a=k learns faster than the baseline (validation AUC over common epochs)",
                "mts-k", "baseline", "auc_valid", memory=False, at_convergence=False),
    PairedClaim("theory.tree.single_faster", "single-T control learns faster than the baseline (validation AUC over common epochs)",
                "single", "baseline", "auc_valid", memory=False, at_convergence=False),
    PairedClaim("theory.tree.mts_half_faster_than_single", "inverse-gamma a=k/2 learns faster than the single-T control (validation AUC)",
                "mts-half", "single", "auc_valid", memory=False, at_convergence=False),
)


# ----------------------------------------------------------------------------------------------
# numbers
# ----------------------------------------------------------------------------------------------

def detectable_effect(sd: float, n: int, *, power: float = stats.POWER, level: float = stats.LEVEL) -> float:
    """The smallest true mean difference a paired t test on ``n`` pairs with SD ``sd`` detects with
    probability ``power`` (one-sided at ``(1 - level)/2``): the root of :func:`stats.t_power`."""
    from scipy.optimize import brentq

    if n < 2 or not (sd > 0):
        return math.nan
    f = lambda e: stats.t_power(e, sd, n, level=level) - power  # noqa: E731
    hi = sd
    while f(hi) < 0:
        hi *= 2.0
    return float(brentq(f, 0.0, hi, xtol=sd * 1e-9))


def slope_interval(x, y, level: float = stats.LEVEL) -> tuple[float, float, float, int]:
    """OLS slope of ``y`` on ``x`` with its Student-t interval (n - 2 df): ``(slope, low, high, n)``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    if n < 3 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan, n
    xc = x - x.mean()
    b = float(xc @ (y - y.mean()) / (xc @ xc))
    resid = y - y.mean() - b * xc
    se = float(np.sqrt(resid @ resid / (n - 2) / (xc @ xc)))
    half = float(stats.t_quantile(level, n - 2)) * se
    return b, b - half, b + half, n


def paired_differences(results: pd.DataFrame, better: str, worse: str, column: str,
                       relative: bool = False) -> pd.DataFrame:
    """Per (k, seed) present in both arms: ``diff = worse - better`` of ``column`` (> 0: ``better``
    really is lower); ``relative``: in % of ``worse``."""
    a = results[results["arch"] == better].set_index(["k", "seed"])[column]
    b = results[results["arch"] == worse].set_index(["k", "seed"])[column]
    j = pd.concat({"better": a, "worse": b}, axis=1).dropna()
    j["diff"] = (j["worse"] - j["better"]) * (100.0 / j["worse"] if relative else 1.0)
    return j.reset_index()


def _fmt(x, nd: int = 3) -> str:
    return "nan" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def power_issue(results: pd.DataFrame, arms: Sequence[str], min_ks: int = 1) -> str | None:
    """Why a comparison of ``arms`` is underpowered by design (too few seeds per k or too few k)."""
    sub = results[results["arch"].isin(arms)]
    if sub.empty:
        return "no runs"
    per = sub.groupby(["k", "arch"])["seed"].nunique()
    if per.min() < MIN_SEEDS or len(per) < len(arms) * sub["k"].nunique():
        return f"fewer than {MIN_SEEDS} seeds per arm and k (min {int(per.min()) if len(per) == len(arms) * sub['k'].nunique() else 0})"
    nk = sub["k"].nunique()
    if nk < min_ks:
        return f"fewer than {min_ks} values of k ({nk})"
    return None


def budget_issue(results: pd.DataFrame, arms: Sequence[str]) -> str | None:
    sub = results[results["arch"].isin(arms)]
    capped = sub[~sub["stopped_early"].astype(bool)]
    if len(capped):
        return (f"{len(capped)} of {len(sub)} runs hit the epoch cap without early stopping "
                f"({', '.join(f'k={r.k:g} {r.arch} seed {r.seed}' for r in capped.head(4).itertuples())}"
                f"{', ...' if len(capped) > 4 else ''})")
    return None


def interval_outcome(lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    return HOLDS if lo > 0 else FAILS if hi < 0 else INCONCLUSIVE


def mapping_outcome(lo: float, hi: float, claimed: float, other: float) -> str:
    """"The learned shape is a = claimed * k" from the interval of the slope of a on k: fails if
    it excludes ``claimed``; holds if it covers ``claimed`` and excludes ``other`` and 0; else
    inconclusive."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    covers = lambda v: lo <= v <= hi  # noqa: E731
    if not covers(claimed):
        return FAILS
    return INCONCLUSIVE if covers(other) or covers(0.0) else HOLDS


# ----------------------------------------------------------------------------------------------
# headroom and verdicts
# ----------------------------------------------------------------------------------------------

def headroom(results: pd.DataFrame, column: str, horizon: int = HORIZON) -> float:
    """The most that context beyond ``horizon`` tokens can give on ``column``'s scale, from the
    exact Bayes numbers of the runs (mean over k and seeds): nats for the factor study's columns,
    % of the Bayes loss for the tree study's ``test_loss``; NaN when unknown."""
    per_seed = results.drop_duplicates(["k", "seed"])
    if column == "slow_state_loss" and f"bayes_slow_state_loss_n{horizon}" in per_seed:
        return float((per_seed[f"bayes_slow_state_loss_n{horizon}"] - per_seed["bayes_slow_state_loss"]).mean())
    if column == "loss" and f"bayes_loss_n{horizon}" in per_seed:
        return float((per_seed[f"bayes_loss_n{horizon}"] - per_seed["bayes_loss"]).mean())
    if column == "test_loss" and f"bayes_loss_n{horizon}" in per_seed:
        return float((100 * (per_seed[f"bayes_loss_n{horizon}"] - per_seed["bayes_loss"]) / per_seed["bayes_loss"]).mean())
    return math.nan


def _per_k(pairs: pd.DataFrame, nd: int) -> str:
    parts = []
    for k, g in pairs.groupby("k"):
        ti = stats.t_interval(g["diff"])
        parts.append(f"k={k:g}: {_fmt(ti.mean, nd)} [{_fmt(ti.lo, nd)}, {_fmt(ti.hi, nd)}] (n={ti.n})")
    return "; ".join(parts)


def paired_verdict(results: pd.DataFrame, claim: PairedClaim, *, relative: bool,
                   oracle: pd.DataFrame | None = None) -> dict:
    """One verdict row (:data:`VERDICT_COLUMNS`) of a paired claim."""
    unit = "%" if relative else "nats"
    nd = 2 if relative else 4
    if claim.column not in results:
        pairs = pd.DataFrame(columns=["k", "seed", "diff"])
    else:
        pairs = paired_differences(results, claim.better, claim.worse, claim.column, relative)
    ti = stats.t_interval(pairs["diff"])
    det = detectable_effect(ti.sd, ti.n)
    need = stats.seeds_needed(ti.mean, ti.sd) if ti.n >= 2 and np.isfinite(ti.mean) and ti.mean > 0 else None
    verdict = interval_outcome(ti.lo, ti.hi)
    issues = [power_issue(results, [claim.better, claim.worse])]
    if claim.at_convergence:
        issues.append(budget_issue(results, [claim.better, claim.worse]))
    issues = [i for i in issues if i]
    if issues:
        verdict = INCONCLUSIVE
    room = headroom(results, claim.column) if claim.memory else math.nan
    what = {"slow_state_loss": "slow-factor state loss", "loss": "loss", "test_loss": "test loss",
            "auc_valid": "mean validation loss over common epochs"}.get(claim.column, claim.column)
    ev = (f"{ARM_LABELS[claim.worse]} minus {ARM_LABELS[claim.better]} {what}: {_fmt(ti.mean, nd)} {unit} "
          f"[{_fmt(ti.lo, nd)}, {_fmt(ti.hi, nd)}] (t 95%, {ti.n} pairs by k and seed; > 0 favours "
          f"{ARM_LABELS[claim.better]}); between-seed SD {_fmt(ti.sd, nd)}, detectable with 80% power "
          f"{_fmt(det, nd)} {unit}, seeds for 80% power at this effect: {need if need else '-'}")
    if len(pairs):
        ev += f"; per k: {_per_k(pairs, nd)}"
    if claim.memory and np.isfinite(room):
        ev += f"; headroom (exact Bayes gain from context beyond {HORIZON} tokens): {_fmt(room, nd)} {unit}"
        if np.isfinite(det) and det > room and verdict != HOLDS:
            verdict = NO_POWER
            ev += f"; no power: the detectable effect {_fmt(det, nd)} exceeds the headroom"
    if oracle is not None and len(oracle) and {claim.better, claim.worse} <= set(oracle["arch"]):
        od = paired_differences(oracle, claim.better, claim.worse, "oracle_slow_state_loss")
        om = float(od["diff"].mean()) if len(od) else math.nan
        ev += f"; oracle basis (frozen timescales, fitted readout): {_fmt(om, nd)} {unit} over {len(od)} (k, seed)"
        if np.isfinite(om) and np.isfinite(det) and abs(om) < det:
            ev += "; the source cannot identify this contrast at this power (oracle difference below the detectable effect)"
    for issue in issues:
        ev += f"; inconclusive: {issue}"
    return {"id": claim.id, "claim": claim.statement, "verdict": verdict, "evidence": ev, "estimate": ti.mean,
            "low": ti.lo, "high": ti.hi, "n": ti.n, "sd": ti.sd, "detectable": det, "seeds_needed": need, "unit": unit}


def shape_verdicts(results: pd.DataFrame, prefix: str, layer_name: str, gate: str | None = None) -> list[dict]:
    """The learned-shape claims: the baseline's tail index a increases with k; follows a = k/2; a = k.
    ``gate``: why the study cannot resolve long memory (then any outcome but holds is no power)."""
    base = results[results["arch"] == "baseline"]
    if "a_tail" not in base:
        return []
    issue = power_issue(results, ["baseline"], MIN_KS)
    b, lo, hi, n = slope_interval(base["k"], base["a_tail"])
    means = "; ".join(f"k={k:g}: a={_fmt(g['a_tail'].mean(), 2)}" for k, g in base.groupby("k"))
    ratio = stats.t_interval(base["a_tail"] / base["k"])
    rows = []
    trend = interval_outcome(lo, hi)
    if gate and trend != HOLDS:
        trend = NO_POWER
    ev = (f"slope of the baseline's {layer_name} tail index a on k: {_fmt(b)} [{_fmt(lo)}, {_fmt(hi)}] (t 95%, n={n} "
          f"runs; a = k/2 predicts 0.5, a = k predicts 1); {means}")
    if gate and trend == NO_POWER:
        ev += f"; no power: {gate}"
    rows.append({"id": f"{prefix}.shape_trend", "claim": f"learned {layer_name} shape increases with the source's k",
                 "verdict": INCONCLUSIVE if issue else trend, "evidence": ev + (f"; inconclusive: {issue}" if issue else ""),
                 "estimate": b, "low": lo, "high": hi, "n": n, "sd": math.nan, "detectable": math.nan,
                 "seeds_needed": None, "unit": "slope"})
    for name, c, o in (("shape_half", 0.5, 1.0), ("shape_k", 1.0, 0.5)):
        v = mapping_outcome(lo, hi, c, o)
        if gate and v != HOLDS:
            v = NO_POWER
        ev = (f"slope of a on k {_fmt(b)} [{_fmt(lo)}, {_fmt(hi)}] (t 95%, n={n}); covers {c:g}: "
              f"{bool(np.isfinite(lo) and lo <= c <= hi)}, covers {o:g}: {bool(np.isfinite(lo) and lo <= o <= hi)}, "
              f"covers 0: {bool(np.isfinite(lo) and lo <= 0 <= hi)}; mean a/k = {_fmt(ratio.mean)} "
              f"[{_fmt(ratio.lo)}, {_fmt(ratio.hi)}] over {ratio.n} runs")
        if v == NO_POWER:
            ev += f"; no power: {gate}"
        rows.append({"id": f"{prefix}.{name}", "claim": f"learned shape follows a = {'k/2' if c == 0.5 else 'k'}",
                     "verdict": INCONCLUSIVE if issue else v, "evidence": ev + (f"; inconclusive: {issue}" if issue else ""),
                     "estimate": b, "low": lo, "high": hi, "n": n, "sd": math.nan, "detectable": math.nan,
                     "seeds_needed": None, "unit": "slope"})
    return rows


def theory_verdicts(results: pd.DataFrame, *, source: str | None = None, oracle: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every verdict of a study (:data:`VERDICT_COLUMNS`) from its per-run results (and, for the
    factor study, the oracle table). Pure: no I/O."""
    if source is None:
        source = str(results["source"].iloc[0]) if "source" in results and len(results) else "factor"
    tree = source == "tree"
    claims = TREE_CLAIMS if tree else FACTOR_CLAIMS
    paired = [paired_verdict(results, c, relative=tree, oracle=None if tree else oracle) for c in claims]
    first = next(c for c in claims if c.memory)
    row = next(r for r in paired if r["id"] == first.id)
    room = headroom(results, first.column)
    gate = None
    if np.isfinite(room) and np.isfinite(row["detectable"]) and row["detectable"] > room:
        gate = (f"the study's long-memory contrast ({first.statement}) detects {_fmt(row['detectable'], 3)} "
                f"{row['unit']} with 80% power, more than the source's headroom {_fmt(room, 3)} {row['unit']}")
    shape = shape_verdicts(results, f"theory.{'tree' if tree else 'factor'}", "layer-2" if tree else "layer-1", gate)
    rows = shape + paired if tree else paired + shape
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def verdict_claims(verdicts: pd.DataFrame) -> list:
    """The verdict rows as :class:`timescale_probe.analysis.Claim` data (``no power`` is an
    inconclusive claim whose note says why)."""
    from ..analysis import Claim

    out = []
    for r in verdicts.itertuples():
        v = {HOLDS: "holds", FAILS: "fails"}.get(r.verdict, "inconclusive")
        fin = lambda x: float(x) if x is not None and np.isfinite(x) else None  # noqa: E731
        need = None if r.seeds_needed is None or (isinstance(r.seeds_needed, float) and not np.isfinite(r.seeds_needed)) \
            else int(r.seeds_needed)
        out.append(Claim(id=r.id, statement=r.claim, label="beyond the paper", verdict=v,
                         rule="95% t interval of the paired differences clears 0; no power when the detectable effect "
                              "exceeds the source's headroom", estimate=fin(r.estimate), lo=fin(r.low), hi=fin(r.high),
                         level=stats.LEVEL, n=int(r.n) if r.n == r.n else None, sd=fin(r.sd), seeds_needed=need,
                         unit=str(r.unit), section="theory", note=r.verdict if r.verdict == NO_POWER else ""))
    return out


def theory_summary(results: pd.DataFrame, oracle: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (k, arch): seeds, mean of every loss column with its t interval, the paired difference
    to the baseline on the primary column, epochs, the learned tail index (baseline) and the
    oracle-basis numbers beside the trained ones."""
    primary = "slow_state_loss" if "slow_state_loss" in results else "test_loss"
    cols = [c for c in ("loss", "slow_loss", "slow_state_loss", "fast_state_loss", "excess_slow_state", "bayes_loss",
                        "bayes_slow_state_loss", "test_loss", "auc_valid") if c in results]
    rows = []
    for (k, arch), g in results.groupby(["k", "arch"], sort=False):
        row = {"source": g["source"].iloc[0] if "source" in g else "", "k": k, "arch": arch,
               "seeds": int(g["seed"].nunique())}
        for c in cols:
            ti = stats.t_interval(g[c])
            row.update({c: ti.mean, f"{c}_low": ti.lo, f"{c}_high": ti.hi})
        row.update(best_epoch=float(g["best_epoch"].mean()), epochs_run=float(g["epochs_run"].mean()),
                   stopped_early=int(g["stopped_early"].astype(bool).sum()))
        if arch != "baseline":
            d = paired_differences(results[results["k"] == k], arch, "baseline", primary, relative=primary == "test_loss")
            ti = stats.t_interval(d["diff"])
            row.update({"d_vs_baseline": ti.mean, "d_vs_baseline_low": ti.lo, "d_vs_baseline_high": ti.hi})
        if arch == "baseline" and "a_tail" in g:
            ti = stats.t_interval(g["a_tail"])
            row.update({"a_tail": ti.mean, "a_tail_low": ti.lo, "a_tail_high": ti.hi, "a_ig": float(g["a_ig"].mean())})
        if oracle is not None and len(oracle):
            o = oracle[(oracle["k"] == k) & (oracle["arch"] == arch)]
            if len(o):
                row.update({"oracle_slow_state_loss": float(o["oracle_slow_state_loss"].mean()),
                            "oracle_excess_slow_state": float(o["oracle_excess_slow_state"].mean()),
                            "oracle_seeds": int(len(o))})
        rows.append(row)
    out = pd.DataFrame(rows)
    order = {a: i for i, a in enumerate(ARM_LABELS)}
    return out.sort_values(["k", "arch"], key=lambda s: s.map(order) if s.name == "arch" else s).reset_index(drop=True)
