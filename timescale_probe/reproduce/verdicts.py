"""Verdicts of the reproduce report, in one place, as pure functions (no I/O, no state).

Kinds of evidence and the verdict each can get:

- **code check** (``code check: pass`` / ``code check: fail``): our code run on the authors' own
  published arrays (or a property our code must have by construction) gives the number it should.
  It shows our code is right, *not* that the paper's claim holds.
- **trained here** (``reproduced`` / ``contradicted`` / ``inconclusive``): an effect measured on
  models trained here. ``reproduced`` needs at least :data:`MIN_SEEDS` seeds per arm and an
  interval that clears the null in the paper's direction; ``contradicted`` the same in the
  opposite direction. Otherwise ``inconclusive``, and the reason says which, with the numbers:
  the interval includes the null, too few seeds, or the training budget is visibly too small
  (the validation gap between the arms still moving at the last epoch, :func:`budget_check`).
- ``not comparable at this scale``: an absolute number of a model smaller / shorter-trained than
  the paper's (only directions of effects are held against the paper below its scale).
- ``not run``: the step measuring it was skipped or failed (the reason is given).
- ``beyond the paper``: a claim the paper does not make (e.g. how the corpora's mutual information
  decays); its own section, with an *outcome* (:data:`OUTCOMES`) instead of a verdict on the paper.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Mapping, Sequence

CODE_PASS = "code check: pass"
CODE_FAIL = "code check: fail"
REPRODUCED = "reproduced"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_COMPARABLE = "not comparable at this scale"
NOT_RUN = "not run"
BEYOND = "beyond the paper"
#: Every verdict, in the order the summary line counts them.
VERDICTS = (CODE_PASS, CODE_FAIL, REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_COMPARABLE, NOT_RUN, BEYOND)

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
#: Outcomes of a ``beyond the paper`` row (``inconclusive`` and ``not run`` as above).
OUTCOMES = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, NOT_RUN)

#: Seeds per arm an effect of training needs before it can be called reproduced or contradicted.
MIN_SEEDS = 3
#: A validation gap between two arms that still moves by more than this many percentage points
#: from the second-last to the last epoch marks the budget as visibly too small.
GAP_TOL_PCT = 1.0
#: Relative tolerance for an absolute number of ours against the paper's, at the paper's scale,
#: when our interval does not cover it (perplexities, accuracies, fitted shapes).
REL_TOL = 0.03


@dataclass(frozen=True)
class Verdict:
    """A verdict and the reason for it (with the numbers behind it)."""

    verdict: str
    reason: str = ""


def finite(x) -> bool:
    """True for a real, finite number (bools and strings are not numbers here)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _g(x: float) -> str:
    return f"{x:.5g}"


def published_tolerance(paper: float) -> float:
    """One unit in the last digit the paper prints (2.16 -> 0.01, 88.8 -> 0.1, 0.041 -> 0.001): the
    printed numbers were rounded from fits whose last digit can differ by one with the optimiser."""
    exp = Decimal(repr(float(paper))).normalize().as_tuple().exponent
    return 10.0 ** min(int(exp), 0) + 1e-12


def code_check(ours: float | None, expected: float, *, tol: float | None = None) -> Verdict:
    """Our code on the authors' arrays must give the printed number to its last digit (or within
    ``tol``): ``code check: pass`` / ``fail``; ``not run`` when there is no number."""
    if not finite(ours):
        return Verdict(NOT_RUN, "not measured")
    tol = published_tolerance(expected) if tol is None else float(tol)
    d = abs(float(ours) - float(expected))
    if d <= tol:
        return Verdict(CODE_PASS, f"|{_g(ours)} - {_g(expected)}| = {_g(d)} <= {_g(tol)}")
    return Verdict(CODE_FAIL, f"|{_g(ours)} - {_g(expected)}| = {_g(d)} > {_g(tol)}")


def code_check_holds(ok: bool | None, reason: str = "") -> Verdict:
    """A code check stated as a condition (``None``: not measured)."""
    if ok is None:
        return Verdict(NOT_RUN, reason or "not measured")
    return Verdict(CODE_PASS if ok else CODE_FAIL, reason)


def budget_check(gap_by_epoch: Sequence[float], *, tol_pct: float = GAP_TOL_PCT) -> str | None:
    """Whether a training budget is visibly too small to compare two arms.

    ``gap_by_epoch``: the validation gap between the arms per epoch, in percent (e.g. MTS vs
    baseline perplexity, ``100 * (ppl_mts / ppl_baseline - 1)``; NaN entries are ignored). Returns
    ``None`` when the gap has settled (it moved by at most ``tol_pct`` points over the last epoch),
    else the reason, with the gaps: ``"the validation gap was still closing: +9.9, +3.8, +1.1 % over
    epochs 1-3"``. Fewer than 2 epochs: too small (nothing shows the gap has settled)."""
    g = [float(x) for x in gap_by_epoch if finite(x)]
    if not g:
        return None
    shown = ", ".join(f"{x:+.1f}" for x in g)
    if len(g) < 2:
        return f"only {len(g)} epoch of training (validation gap {shown} %): nothing shows the gap has settled"
    step = g[-1] - g[-2]
    if abs(step) > tol_pct:
        trend = "closing" if abs(g[-1]) < abs(g[-2]) else "moving"
        return (f"the validation gap was still {trend} ({step:+.1f} points at the last epoch, more than "
                f"{tol_pct:g}): {shown} % over epochs 1-{len(g)}")
    return None


def _seeds(seeds: int | Mapping[str, int] | None) -> tuple[int, str]:
    if seeds is None:
        return 0, "0"
    if isinstance(seeds, Mapping):
        if not seeds:
            return 0, "0"
        n = min(int(v) for v in seeds.values())
        return n, ", ".join(f"{k} {int(v)}" for k, v in seeds.items())
    return int(seeds), str(int(seeds))


def effect_verdict(lo: float | None, hi: float | None, *, seeds: int | Mapping[str, int] | None,
                   null: float = 0.0, direction: int = 1, budget: str | None = None,
                   min_seeds: int = MIN_SEEDS) -> Verdict:
    """An effect of training judged by its interval ``[lo, hi]`` against ``null``.

    ``direction``: +1 when the paper claims the effect lies above ``null``, -1 below. ``seeds``: the
    number of seeds behind the interval (per arm: a mapping arm -> count; the smallest counts).
    ``budget``: a reason the training budget is visibly too small (:func:`budget_check`), or None.
    ``reproduced`` / ``contradicted`` only with ``min_seeds`` seeds per arm, a budget that is not
    visibly too small, and an interval clearing the null; else ``inconclusive`` with the reason."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction}")
    if not (finite(lo) and finite(hi)):
        return Verdict(NOT_RUN, "not measured")
    iv = f"[{_g(lo)}, {_g(hi)}]"
    if lo > null:
        side = 1
        where = f"interval {iv} above {_g(null)}"
    elif hi < null:
        side = -1
        where = f"interval {iv} below {_g(null)}"
    else:
        side = 0
        where = f"interval {iv} includes {_g(null)}"
    agrees = side == direction
    where += "" if side == 0 else (" (the paper's direction)" if agrees else " (opposite to the paper)")
    n, per_arm = _seeds(seeds)
    if n < min_seeds:
        return Verdict(INCONCLUSIVE, f"only {per_arm} seed(s) per arm (needs >= {min_seeds}); {where}")
    if budget:
        return Verdict(INCONCLUSIVE, f"budget visibly too small: {budget}; {where}")
    if side == 0:
        return Verdict(INCONCLUSIVE, where)
    return Verdict(REPRODUCED if agrees else CONTRADICTED, f"{where}; {per_arm} seeds per arm")


def value_verdict(ours: float | None, paper: float, *, comparable: bool, lo: float | None = None,
                  hi: float | None = None, seeds: int | Mapping[str, int] | None = None,
                  rel_tol: float = REL_TOL, min_seeds: int = MIN_SEEDS) -> Verdict:
    """An absolute number of a model trained here against the paper's: ``not comparable at this
    scale`` below the paper's scale; at it, ``inconclusive`` with fewer than ``min_seeds`` seeds,
    else ``reproduced`` when our interval covers the paper's value or we are within ``rel_tol`` of
    it, ``contradicted`` otherwise. ``seeds=None`` at the paper's scale counts as one seed."""
    if not finite(ours):
        return Verdict(NOT_RUN, "not measured")
    if not comparable:
        return Verdict(NOT_COMPARABLE, f"ours {_g(ours)} vs the paper's {_g(paper)} at a smaller scale")
    n, per_arm = _seeds(1 if seeds is None else seeds)
    covers = finite(lo) and finite(hi) and lo <= paper <= hi
    close = abs(ours - paper) <= rel_tol * abs(paper)
    what = (f"interval [{_g(lo)}, {_g(hi)}] covers {_g(paper)}" if covers else
            f"{_g(ours)} within {rel_tol:.0%} of {_g(paper)}" if close else
            f"{_g(ours)} differs from {_g(paper)} by more than {rel_tol:.0%}")
    if n < min_seeds:
        return Verdict(INCONCLUSIVE, f"only {per_arm} seed(s) (needs >= {min_seeds}); {what}")
    return Verdict(REPRODUCED if (covers or close) else CONTRADICTED, what)


def not_run(reason: str) -> Verdict:
    return Verdict(NOT_RUN, reason)


def beyond_outcome(holds: bool | None, *, reason: str = "", inconclusive: str | None = None) -> Verdict:
    """Outcome of a ``beyond the paper`` row: ``holds`` / ``does not hold``; ``inconclusive`` with
    the given reason; ``not run`` when ``holds`` is None and no reason for inconclusive is given."""
    if inconclusive:
        return Verdict(INCONCLUSIVE, inconclusive)
    if holds is None:
        return Verdict(NOT_RUN, reason or "not measured")
    return Verdict(HOLDS if holds else DOES_NOT_HOLD, reason)


def count_verdicts(verdicts: Iterable[str], outcomes: Iterable[str] = ()) -> dict[str, int]:
    """How many rows got each verdict (every kind in :data:`VERDICTS`, zeros included) and, under
    ``beyond: <outcome>``, how the ``beyond the paper`` rows came out."""
    verdicts = list(verdicts)
    unknown = set(verdicts) - set(VERDICTS)
    if unknown:
        raise ValueError(f"unknown verdict(s) {sorted(unknown)}: use {VERDICTS}")
    out = {v: sum(1 for x in verdicts if x == v) for v in VERDICTS}
    outcomes = list(outcomes)
    for o in OUTCOMES:
        out[f"beyond: {o}"] = sum(1 for x in outcomes if x == o)
    return out


def summary_line(counts: Mapping[str, int]) -> str:
    """``Summary: 13 code check: pass, 0 code check: fail, 2 reproduced, ... ; beyond the paper:
    6 (5 holds, 1 inconclusive).``: every kind counted separately, zeros shown."""
    head = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS if v != BEYOND)
    beyond = counts.get(BEYOND, 0)
    parts = [f"{counts.get('beyond: ' + o, 0)} {o}" for o in OUTCOMES if counts.get("beyond: " + o, 0)]
    tail = f"; {beyond} {BEYOND}" + (f" ({', '.join(parts)})" if parts else "")
    return f"Summary: {head}{tail}."
