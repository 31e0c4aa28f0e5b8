"""Verdicts of rows that are not effects of training (code checks, absolute values, the summary
line) and the budget rule: one test per branch (pure functions)."""
from __future__ import annotations

import pytest

from timescale_probe.analysis import Claim
from timescale_probe.reproduce import rules as R
from timescale_probe.reproduce import verdicts as V


def test_published_tolerance_is_one_unit_of_the_last_printed_digit():
    assert V.published_tolerance(2.16) == pytest.approx(0.01)
    assert V.published_tolerance(88.8) == pytest.approx(0.1)
    assert V.published_tolerance(0.041) == pytest.approx(0.001)
    assert V.published_tolerance(3) == pytest.approx(1.0)


def test_code_check_holds_fails_and_not_run():
    d = V.code_check(2.1612, 2.16)
    assert d.verdict == R.HOLDS and d.estimate == pytest.approx(2.1612) and "<=" in d.rule
    d = V.code_check(2.1721, 2.16)
    assert d.verdict == R.FAILS and "0.0121" in d.reason
    assert V.code_check(None, 2.16).verdict == R.NOT_RUN
    assert V.code_check(float("nan"), 2.16).verdict == R.NOT_RUN
    assert V.code_check(-1.62, -1.6, tol=0.15).verdict == R.HOLDS
    assert V.code_check(-1.9, -1.6, tol=0.15).verdict == R.FAILS


def test_condition():
    assert V.condition(True, "rho >= 0.9").verdict == R.HOLDS
    assert V.condition(False, "rho >= 0.9").verdict == R.FAILS
    assert V.condition(None, "rho >= 0.9").verdict == R.NOT_RUN


def test_value_rule_below_scale_is_not_comparable_and_at_scale_needs_seeds():
    d = V.value_rule([100.0, 102.0, 98.0], 58.98, comparable=False)
    assert d.verdict == R.NOT_COMPARABLE and d.n == 3 and d.estimate == pytest.approx(100.0)
    assert V.value_rule([59.1], 58.98, comparable=True).verdict == R.INCONCLUSIVE  # one seed
    held = V.value_rule([58.5, 59.5, 59.0], 58.98, comparable=True)  # the t interval covers the paper's number
    assert held.verdict == R.HOLDS and "covers" in held.reason and held.lo < 58.98 < held.hi
    far = V.value_rule([70.0, 70.5, 69.5], 58.98, comparable=True)  # 19% away, interval far from it
    assert far.verdict == R.FAILS and "more than 3%" in far.reason
    assert V.value_rule([], 58.98, comparable=True).verdict == R.NOT_RUN


def test_budget_rule_needs_consistent_movement_over_seeds():
    # every seed's gap still moving by ~2.5 points at the last epoch: visibly too small
    why = R.budget_rule({2: -2.4, 3: -2.6, 141: -2.5})
    assert why is not None and "seed 2: -2.4" in why
    # the case: one seed moved 2.4 points, the others barely, in both directions: noise, not a trend
    assert R.budget_rule({2: -2.4, 3: 0.3, 141: 0.2}) is None
    # one seed alone: its own change decides
    assert "one seed" in R.budget_rule({141: 3.0})
    assert R.budget_rule({141: 0.5}) is None
    assert R.budget_rule({}) is None


def _claim(label, verdict, i):
    return Claim(id=f"x.{i}", statement="s", label=label, verdict=verdict)


def test_summary_line_counts_labels_and_keeps_by_construction_out_of_the_evidence():
    claims = [_claim("reproduction", "holds", 1), _claim("reproduction", "inconclusive", 2),
              _claim("code check", "holds", 3), _claim("by construction", "holds", 4),
              _claim("beyond the paper", "fails", 5), _claim("reproduction", "not comparable", 6)]
    counts = V.count_claims(claims)
    assert counts["reproduction"]["holds"] == 1 and counts["reproduction"]["not comparable"] == 1
    line = V.summary_line(counts)
    evidence, _, rest = line.partition("Not counted as evidence:")
    assert "reproduction (3): 1 holds, 0 fails, 1 inconclusive, 1 not comparable" in evidence
    assert "by construction" not in evidence and "by construction (1): 1 holds" in rest
    assert "beyond the paper (1): 0 holds, 1 fails" in evidence
