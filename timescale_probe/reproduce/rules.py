"""The evidence rules of the report, as pure functions of per-seed numbers (no I/O, no state).

Each rule returns a :class:`Decision`: a verdict (``holds`` / ``fails`` / ``inconclusive``), the
rule in words, the reason with the numbers, and the numbers a :class:`~timescale_probe.analysis.Claim`
carries (estimate, 95% interval, n seeds, between-seed SD, standardised effect, p, seeds needed
for 80% power). Every interval and test is at the one level of :mod:`timescale_probe.stats`
(95% two-sided; one-sided tests at 2.5%, so a verdict agrees with the interval shown).

Rules, each tested as the paper states its claim (DESIGN.md, Conventions on evidence):

- :func:`effect_rule`: an effect of training in the paper's direction: one-sided t on the
  per-seed values; ``fails`` when the one-sided test in the other direction rejects.
- :func:`contrast_rule`: a "largest" claim: every contrast (e.g. the <100 gain minus the gain
  of each other bin) one-sided t > 0; all must hold (an intersection-union test: no correction).
- :func:`equivalence_rule`: a "never" claim: TOST of every column within ``±margin``; ``fails``
  when a column's interval lies wholly beyond the margin on the harmful side.
- :func:`null_rule`: a k-seed mean against the null of k-seed means of controls (Monte Carlo p).
- :func:`budget_rule`: whether the training budget is visibly too small (the validation gap
  between the arms still moving at the last epoch, judged over seeds).

An effect of training needs at least :data:`MIN_SEEDS` seeds per arm before it can hold or
fail; with fewer, or when the test cannot decide, the verdict is ``inconclusive`` and the reason
says how many seeds 80% power needs and how many more that is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .. import stats

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN, NOT_COMPARABLE = "holds", "fails", "inconclusive", "not run", "not comparable"
#: seeds per arm an effect of training needs before it can hold or fail
MIN_SEEDS = 3
#: a validation gap that moves by more than this many points at the last epoch, consistently over
#: seeds, marks the budget as visibly too small
GAP_TOL_PCT = 1.0
LEVEL = stats.LEVEL
ALPHA = stats.one_sided_alpha(LEVEL)


def _f(x: Any) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _g(x: float | None, nd: int = 4) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{nd}g}"


@dataclass(frozen=True)
class Decision:
    """A rule's verdict with its numbers (the fields a Claim takes)."""

    verdict: str
    rule: str
    reason: str = ""
    estimate: float | None = None
    lo: float | None = None
    hi: float | None = None
    n: int | None = None
    sd: float | None = None
    effect: float | None = None
    p: float | None = None
    seeds_needed: int | None = None
    level: float | None = LEVEL
    extra: dict[str, Any] = field(default_factory=dict)
    #: what ``lo``/``hi`` bound: ``estimate`` (an interval of ours) or ``controls`` (the null's range)
    interval_of: str = "estimate"

    def claim_fields(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~timescale_probe.analysis.Claim` (``note`` = the reason)."""
        return dict(verdict=self.verdict, rule=self.rule, note=self.reason, estimate=self.estimate, lo=self.lo,
                    hi=self.hi, n=self.n, sd=self.sd, effect=self.effect, p=self.p, seeds_needed=self.seeds_needed,
                    level=self.level, interval_of=self.interval_of)


def power_text(n: int, needed: int | None, *, why_none: str = "") -> str:
    """``"3 seeds; 80% power needs 6 (3 more)"``; the reason when the need is unknown."""
    if needed is None:
        return f"{n} seed(s); seeds for 80% power unknown" + (f" ({why_none})" if why_none else "")
    more = max(needed - n, 0)
    return f"{n} seed(s); 80% power needs {needed}" + (f" ({more} more)" if more else " (enough)")


def _needed(effect: float, sd: float | None, n: int, alternative: str = "greater") -> tuple[int | None, str]:
    if n < 2 or sd is None:
        return None, "needs >= 2 seeds to estimate the spread between seeds"
    if not sd > 0:
        return None, "the seeds do not differ at all"
    need = stats.seeds_needed(effect, sd, alternative=alternative)
    if need is None:
        return None, "the effect points away from the claim" if effect * (1 if alternative == "greater" else -1) < 0 \
            else "the effect is too small to power"
    return need, ""


# ----------------------------------------------------------------------------------------------
# effects of training over seeds
# ----------------------------------------------------------------------------------------------

def effect_rule(values: Sequence[float], *, direction: int = 1, null: float = 0.0, unit: str = "",
                min_seeds: int = MIN_SEEDS, budget: str | None = None, what: str = "the effect") -> Decision:
    """One-sided t test of the per-seed ``values`` against ``null`` in the paper's ``direction``
    (+1: above). ``holds``: p < 2.5% with >= ``min_seeds`` seeds and a budget not visibly too
    small; ``fails``: the test in the opposite direction rejects (same conditions); else
    ``inconclusive``."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction}")
    alt = "greater" if direction == 1 else "less"
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    rule = (f"one-sided t on the per-seed {what} ({'> ' if direction == 1 else '< '}{_g(null)}{unit}) at "
            f"{ALPHA:.1%}, >= {min_seeds} seeds per arm")
    if v.size == 0:
        return Decision(NOT_RUN, rule, "no seed measured it")
    tt = stats.t_test(v, null, alternative=alt)
    opp = stats.t_test(v, null, alternative="less" if alt == "greater" else "greater")
    sd = _f(tt.sd)
    eff = (tt.estimate - null) / sd if sd else None
    need, why = _needed((tt.estimate - null), sd, v.size, alt)
    base = dict(rule=rule, estimate=_f(tt.estimate), lo=_f(tt.lo), hi=_f(tt.hi), n=int(v.size), sd=sd,
                effect=_f(eff), p=_f(tt.p), seeds_needed=need)
    iv = f"95% t interval [{_g(tt.lo)}, {_g(tt.hi)}]{unit}" if v.size > 1 else f"one seed: {_g(tt.estimate)}{unit}"
    pw = power_text(int(v.size), need, why_none=why)
    if v.size < min_seeds:
        return Decision(INCONCLUSIVE, reason=f"only {v.size} seed(s) (needs >= {min_seeds}); {iv}; {pw}", **base)
    if budget:
        return Decision(INCONCLUSIVE, reason=f"budget visibly too small: {budget}; {iv}; {pw}", **base)
    if tt.rejects:
        return Decision(HOLDS, reason=f"{iv}, p {_g(tt.p, 3)}; {pw}", **base)
    if opp.rejects:
        return Decision(FAILS, reason=f"{iv} lies on the other side of {_g(null)} (p {_g(opp.p, 3)}); {pw}", **base)
    return Decision(INCONCLUSIVE, reason=f"{iv} includes {_g(null)} (p {_g(tt.p, 3)}); {pw}", **base)


def contrast_rule(matrix: np.ndarray, names: Sequence[str], *, unit: str = "", min_seeds: int = MIN_SEEDS,
                  budget: str | None = None, what: str = "contrast") -> Decision:
    """A "largest" claim: ``matrix[s, k]`` = seed ``s``'s contrast against alternative ``k``
    (> 0: the claim's side). ``holds`` when every column's one-sided t rejects at 2.5%
    (intersection-union: no correction is needed, all must hold); ``fails`` when some column's
    opposite test rejects; else ``inconclusive``. The estimate is the smallest column mean; the
    seeds needed are the most any column needs."""
    M = np.asarray(matrix, dtype=np.float64)
    rule = (f"every {what} > 0 by a one-sided t at {ALPHA:.1%} ({', '.join(names)}); all must hold "
            f"(intersection-union), >= {min_seeds} seeds")
    if M.ndim != 2 or M.shape[0] == 0 or M.shape[1] == 0:
        return Decision(NOT_RUN, rule, "no seed measured it")
    tests = [stats.t_test(M[:, k], alternative="greater") for k in range(M.shape[1])]
    opps = [stats.t_test(M[:, k], alternative="less") for k in range(M.shape[1])]
    n = int(min(t.n for t in tests))
    k_min = int(np.argmin([t.estimate for t in tests]))
    worst = tests[k_min]
    needs = [_needed(t.estimate, _f(t.sd), t.n) for t in tests]
    need = None if any(x[0] is None for x in needs) else max(x[0] for x in needs)
    why = next((x[1] for x in needs if x[0] is None), "")
    per = "; ".join(f"{nm}: {_g(t.estimate)}{unit} [{_g(t.lo)}, {_g(t.hi)}]" for nm, t in zip(names, tests))
    sd = _f(worst.sd)
    base = dict(rule=rule, estimate=_f(worst.estimate), lo=_f(worst.lo), hi=_f(worst.hi), n=n, sd=sd,
                effect=_f(worst.estimate / sd) if sd else None, p=_f(max(t.p for t in tests)), seeds_needed=need,
                extra={"per_contrast": {nm: {"mean": _f(t.estimate), "lo": _f(t.lo), "hi": _f(t.hi), "p": _f(t.p)}
                                        for nm, t in zip(names, tests)},
                       "by_seed": M.tolist()})
    pw = power_text(n, need, why_none=why)
    if n < min_seeds:
        return Decision(INCONCLUSIVE, reason=f"only {n} seed(s) (needs >= {min_seeds}); {per}; {pw}", **base)
    if budget:
        return Decision(INCONCLUSIVE, reason=f"budget visibly too small: {budget}; {per}; {pw}", **base)
    if all(t.rejects for t in tests):
        return Decision(HOLDS, reason=f"{per}; {pw}", **base)
    against = [nm for nm, o in zip(names, opps) if o.rejects]
    if against:
        return Decision(FAILS, reason=f"smaller than {', '.join(against)} (one-sided t at {ALPHA:.1%}); {per}; {pw}",
                        **base)
    return Decision(INCONCLUSIVE, reason=f"not every contrast clears 0; {per}; {pw}", **base)


def equivalence_rule(matrix: np.ndarray, names: Sequence[str], margin: float, *, harmful: int = 1, unit: str = "",
                     min_seeds: int = MIN_SEEDS, what: str = "change") -> Decision:
    """A "never" claim: every column of ``matrix[s, k]`` equivalent to 0 within ``±margin`` by TOST
    at the one level (95% interval inside the margin). ``fails`` when some column's interval lies
    wholly beyond the margin on the ``harmful`` side (+1: above); else ``inconclusive``."""
    M = np.asarray(matrix, dtype=np.float64)
    rule = (f"TOST: every {what}'s 95% interval inside ±{_g(margin)}{unit} (the stated margin), all must hold, "
            f">= {min_seeds} seeds; beyond the margin on the harmful side: fails")
    if M.ndim != 2 or M.shape[0] == 0 or M.shape[1] == 0:
        return Decision(NOT_RUN, rule, "no seed measured it (no test token in this bin?)")
    eqs = [stats.tost(M[:, k], margin) for k in range(M.shape[1])]
    n = int(min(e.n for e in eqs))
    k_worst = int(np.argmax([e.p if np.isfinite(e.p) else np.inf for e in eqs]))
    w = eqs[k_worst]
    # power: the binding one-sided test of the worst column, effect = distance of its mean to the margin
    needs = [_needed(margin - abs(e.estimate), _f(e.sd), e.n) for e in eqs]
    need = None if any(x[0] is None for x in needs) else max(x[0] for x in needs)
    why = next((x[1] for x in needs if x[0] is None), "")
    sd = _f(w.sd)
    harm = [nm for nm, e in zip(names, eqs) if e.n >= 2 and
            ((harmful == 1 and e.lo > margin) or (harmful == -1 and e.hi < -margin))]
    outside = sum(1 for e in eqs if not e.equivalent)
    base = dict(rule=rule, estimate=_f(w.estimate), lo=_f(w.lo), hi=_f(w.hi), n=n, sd=sd,
                effect=_f(w.estimate / sd) if sd else None, p=_f(w.p), seeds_needed=need,
                extra={"margin": margin, "not_equivalent": outside, "columns": len(eqs)})
    top = f"least equivalent: {names[k_worst]} {_g(w.estimate)}{unit} [{_g(w.lo)}, {_g(w.hi)}]"
    pw = power_text(n, need, why_none=why)
    if n < min_seeds:
        return Decision(INCONCLUSIVE, reason=f"only {n} seed(s) (needs >= {min_seeds}); {top}; {pw}", **base)
    if harm:
        return Decision(FAILS, reason=f"{', '.join(harm)} beyond the margin; {top}; {pw}", **base)
    if outside == 0:
        return Decision(HOLDS, reason=f"all {len(eqs)} inside ±{_g(margin)}{unit}; {top}; {pw}", **base)
    return Decision(INCONCLUSIVE, reason=f"{outside} of {len(eqs)} intervals reach past the margin; {top}; {pw}", **base)


def null_rule(per_seed: Sequence[float], null: np.ndarray, *, min_seeds: int = MIN_SEEDS, what: str = "statistic",
              null_single: np.ndarray | None = None) -> Decision:
    """A k-seed mean of a per-seed statistic against ``null`` (draws of the k-seed mean of the same
    statistic computed on control groups, :func:`timescale_probe.stats.mean_of_draws_null`):
    Monte-Carlo one-sided p (greater). ``holds``: p < 2.5% with >= ``min_seeds`` seeds; ``fails``
    when the observed mean lies below the null's 2.5% quantile (on the wrong side of the controls);
    else ``inconclusive``. ``null_single``: single-seed control statistics (the power's null mean)."""
    v = np.asarray(per_seed, dtype=np.float64)
    v = v[np.isfinite(v)]
    null = np.asarray(null, dtype=np.float64)
    rule = (f"the k-seed mean (k = {len(v)}) of the {what} against the null of k-seed means of random control "
            f"groups (same sizes, drawn per seed), one-sided Monte-Carlo p at {ALPHA:.1%}, >= {min_seeds} seeds")
    if v.size == 0 or null.size == 0:
        return Decision(NOT_RUN, rule, "no seed with controls measured it")
    obs = float(v.mean())
    p = float(stats.empirical_p(obs, null, alternative="greater"))
    p_low = float(stats.empirical_p(obs, null, alternative="less"))
    q_lo, q_hi = (float(x) for x in np.quantile(null, [ALPHA, 1 - ALPHA]))
    center = float(np.mean(null_single)) if null_single is not None and len(null_single) else float(null.mean())
    sd = _f(v.std(ddof=1)) if v.size > 1 else None
    need, why = _needed(obs - center, sd, int(v.size))
    base = dict(rule=rule, estimate=obs, lo=q_lo, hi=q_hi, n=int(v.size), sd=sd,
                effect=_f((obs - center) / sd) if sd else None, p=p, seeds_needed=need,
                extra={"null_mean": center, "null_lo": q_lo, "null_hi": q_hi}, interval_of="controls")
    where = f"observed {_g(obs)} vs the controls' 95% range [{_g(q_lo)}, {_g(q_hi)}] (p {_g(p, 3)})"
    pw = power_text(int(v.size), need, why_none=why)
    if v.size < min_seeds:
        return Decision(INCONCLUSIVE, reason=f"only {v.size} seed(s) with >= 200 controls (needs >= {min_seeds}); "
                                             f"{where}; {pw}", **base)
    if p < ALPHA:
        return Decision(HOLDS, reason=f"{where}; {pw}", **base)
    if p_low < ALPHA:
        return Decision(FAILS, reason=f"{where}: below the controls; {pw}", **base)
    return Decision(INCONCLUSIVE, reason=f"{where}: within the controls; {pw}", **base)


def all_of(decisions: Sequence[Decision], names: Sequence[str], rule: str) -> Decision:
    """Several pre-specified parts that must all hold (intersection-union): holds when all hold,
    fails when any fails, else inconclusive; numbers of the weakest part (largest p; among equal p,
    as when Monte-Carlo p values all sit at their floor, the smallest standardised effect)."""
    if not decisions:
        return Decision(NOT_RUN, rule, "nothing measured")
    verdicts = [d.verdict for d in decisions]

    def weakness(d: Decision) -> tuple[float, float]:
        p = d.p if d.p is not None and math.isfinite(d.p) else math.inf
        e = d.effect if d.effect is not None and math.isfinite(d.effect) else -math.inf
        return (p, -e)

    w = max(decisions, key=weakness)
    reason = "; ".join(f"{nm}: {d.verdict} ({d.reason})" for nm, d in zip(names, decisions))
    v = FAILS if FAILS in verdicts else HOLDS if all(x == HOLDS for x in verdicts) else \
        NOT_RUN if all(x == NOT_RUN for x in verdicts) else INCONCLUSIVE
    need = [d.seeds_needed for d in decisions]
    return Decision(v, rule, reason, estimate=w.estimate, lo=w.lo, hi=w.hi, n=w.n, sd=w.sd, effect=w.effect, p=w.p,
                    seeds_needed=None if any(x is None for x in need) else max(need), interval_of=w.interval_of)


# ----------------------------------------------------------------------------------------------
# training budget
# ----------------------------------------------------------------------------------------------

def budget_rule(last_changes: dict[int, float], *, tol_pct: float = GAP_TOL_PCT) -> str | None:
    """Whether the budget is visibly too small, from each seed's change of the validation gap
    (MTS vs baseline, percentage points) over its last epoch. Too small when the changes move
    consistently: their mean exceeds ``tol_pct`` in size and its 95% t interval excludes 0 (with
    one seed: its change exceeds ``tol_pct``). Returns the reason, or None. A single seed that
    moved more is named in the reason only when the set moved; seeds moving both ways are noise."""
    ch = {int(s): float(v) for s, v in last_changes.items() if np.isfinite(v)}
    if not ch:
        return None
    shown = ", ".join(f"seed {s}: {v:+.1f}" for s, v in sorted(ch.items()))
    vals = np.array(list(ch.values()))
    if vals.size == 1:
        return None if abs(vals[0]) <= tol_pct else \
            f"the validation gap still moved {vals[0]:+.1f} points at the last epoch (one seed, more than {tol_pct:g})"
    ci = stats.t_interval(vals)
    if abs(ci.mean) > tol_pct and (ci.lo > 0 or ci.hi < 0):
        return (f"the validation gap still moved {ci.mean:+.1f} points on average at the last epoch (95% t "
                f"[{ci.lo:+.1f}, {ci.hi:+.1f}], more than {tol_pct:g}): {shown}")
    return None
