"""Verdicts of rows that are not effects of training (pure functions, no I/O): a number of ours
against one the paper prints, an absolute number of a model trained here, a condition, and the
summary line that counts the claims.

Labels and verdicts are those of :mod:`timescale_probe.analysis.claims`:

- **code check** (only for numbers the paper prints): ``holds`` when our code gives the printed
  number to its last printed digit (:func:`code_check`);
- **reproduction**: effects of training are decided by :mod:`.rules`; an absolute number of our
  models (:func:`value_rule`) is ``not comparable`` below the paper's scale, and at it needs
  :data:`.rules.MIN_SEEDS` seeds and an interval that covers the paper's number (or lies within
  :data:`REL_TOL` of it);
- **beyond the paper**: a re-analysis or a question the paper does not print an answer to, with
  its outcome as the verdict;
- **by construction**: true because of how the experiment is built; shown, never counted as evidence.
"""
from __future__ import annotations

import math
from decimal import Decimal
from typing import Iterable, Mapping, Sequence

import numpy as np

from .. import stats
from ..analysis.claims import LABELS, VERDICTS
from .rules import FAILS, HOLDS, INCONCLUSIVE, MIN_SEEDS, NOT_COMPARABLE, NOT_RUN, Decision

#: Relative tolerance for an absolute number of ours against the paper's, at the paper's scale,
#: when our interval does not cover it (perplexities, accuracies, fitted shapes).
REL_TOL = 0.03


def finite(x) -> bool:
    """True for a real, finite number (bools and strings are not numbers here)."""
    return isinstance(x, (int, float, np.floating)) and not isinstance(x, bool) and math.isfinite(x)


def _g(x: float) -> str:
    return f"{x:.5g}"


def published_tolerance(paper: float) -> float:
    """One unit in the last digit the paper prints (2.16 -> 0.01, 88.8 -> 0.1, 0.041 -> 0.001): the
    printed numbers were rounded from fits whose last digit can differ by one with the optimiser."""
    exp = Decimal(repr(float(paper))).normalize().as_tuple().exponent
    return 10.0 ** min(int(exp), 0) + 1e-12


def code_check(ours: float | None, expected: float, *, tol: float | None = None, what: str = "") -> Decision:
    """Our number must equal ``expected`` to its last printed digit (or within ``tol``):
    ``holds`` / ``fails``; ``not run`` when there is no number."""
    tol = published_tolerance(expected) if tol is None else float(tol)
    rule = f"|ours - {_g(expected)}| <= {_g(tol)}" + (f" ({what})" if what else "")
    if not finite(ours):
        return Decision(NOT_RUN, rule, "not measured", level=None)
    d = abs(float(ours) - float(expected))
    return Decision(HOLDS if d <= tol else FAILS, rule, f"|{_g(ours)} - {_g(expected)}| = {_g(d)}",
                    estimate=float(ours), level=None)


def condition(ok: bool | None, rule: str, reason: str = "", *, estimate: float | None = None) -> Decision:
    """A rule stated as a condition (``None``: not measured)."""
    if ok is None:
        return Decision(NOT_RUN, rule, reason or "not measured", level=None)
    return Decision(HOLDS if ok else FAILS, rule, reason, estimate=estimate, level=None)


def value_rule(values: Sequence[float], paper: float, *, comparable: bool, rel_tol: float = REL_TOL,
               min_seeds: int = MIN_SEEDS, lo: float | None = None, hi: float | None = None) -> Decision:
    """An absolute number of models trained here (one value per seed) against the paper's.

    ``not comparable`` below the paper's scale; at it, ``inconclusive`` with fewer than
    ``min_seeds`` seeds, else ``holds`` when the 95% t interval across seeds covers ``paper`` or the
    mean lies within ``rel_tol`` of it, ``fails`` otherwise. ``lo, hi``: an interval to show when
    there is one seed (e.g. its chunk bootstrap)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    rule = (f"the 95% t interval across >= {min_seeds} seeds covers {_g(paper)} or the mean is within "
            f"{rel_tol:.0%} of it; only at the paper's scale")
    if v.size == 0:
        return Decision(NOT_RUN, rule, "not measured")
    ci = stats.t_interval(v)
    ilo, ihi = (ci.lo, ci.hi) if v.size > 1 else (lo, hi)
    base = dict(rule=rule, estimate=float(ci.mean), lo=ilo if finite(ilo) else None, hi=ihi if finite(ihi) else None,
                n=int(v.size), sd=float(ci.sd) if finite(ci.sd) else None)
    if not comparable:
        return Decision(NOT_COMPARABLE, reason=f"ours {_g(ci.mean)} vs the paper's {_g(paper)} at a smaller scale", **base)
    covers = finite(ilo) and finite(ihi) and ilo <= paper <= ihi
    close = abs(ci.mean - paper) <= rel_tol * abs(paper)
    what = (f"interval [{_g(ilo)}, {_g(ihi)}] covers {_g(paper)}" if covers else
            f"{_g(ci.mean)} within {rel_tol:.0%} of {_g(paper)}" if close else
            f"{_g(ci.mean)} differs from {_g(paper)} by more than {rel_tol:.0%}")
    if v.size < min_seeds:
        return Decision(INCONCLUSIVE, reason=f"only {v.size} seed(s) (needs >= {min_seeds}); {what}", **base)
    return Decision(HOLDS if (covers or close) else FAILS, reason=what, **base)


def count_claims(claims: Iterable) -> dict[str, dict[str, int]]:
    """``{label: {verdict: count}}`` over every label and verdict (zeros included)."""
    out = {lab: {v: 0 for v in VERDICTS} for lab in LABELS}
    for c in claims:
        out[c.label][c.verdict] += 1
    return out


def summary_line(counts: Mapping[str, Mapping[str, int]]) -> str:
    """``Evidence: reproduction 2 holds, 0 fails, 5 inconclusive, ...; code check ...; beyond the
    paper ...; by construction (not counted as evidence): 3 holds.`` (zeros of a label shown, verdicts
    a label never has left out)."""
    parts = []
    for lab in LABELS:
        c = counts.get(lab, {})
        total = sum(c.values())
        if not total and lab == "by construction":
            continue
        shown = ", ".join(f"{n} {v}" for v, n in c.items() if n or v in (HOLDS, FAILS, INCONCLUSIVE))
        parts.append(f"{lab} ({total}): {shown}")
    evidence = [p for p in parts if not p.startswith("by construction")]
    tail = [p for p in parts if p.startswith("by construction")]
    return ("Evidence: " + "; ".join(evidence) + "."
            + (f" Not counted as evidence: {tail[0]}." if tail else ""))
