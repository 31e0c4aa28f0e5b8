"""The verdicts of the reproduce report: one test per branch of every rule (pure functions)."""
from __future__ import annotations

import math

import pytest

from timescale_probe.reproduce import verdicts as V

# ------------------------------------------------------------------ code checks

def test_published_tolerance_is_one_unit_of_the_last_printed_digit():
    assert V.published_tolerance(2.16) == pytest.approx(0.01)
    assert V.published_tolerance(88.8) == pytest.approx(0.1)
    assert V.published_tolerance(0.041) == pytest.approx(0.001)
    assert V.published_tolerance(3) == pytest.approx(1.0)


def test_code_check_pass_fail_and_not_run():
    v = V.code_check(2.1612, 2.16)
    assert v.verdict == V.CODE_PASS and "<=" in v.reason
    v = V.code_check(2.1721, 2.16)
    assert v.verdict == V.CODE_FAIL and "0.0121" in v.reason
    assert V.code_check(None, 2.16).verdict == V.NOT_RUN
    assert V.code_check(float("nan"), 2.16).verdict == V.NOT_RUN
    assert V.code_check(-1.62, -1.6, tol=0.15).verdict == V.CODE_PASS
    assert V.code_check(-1.9, -1.6, tol=0.15).verdict == V.CODE_FAIL


def test_code_check_as_a_condition():
    assert V.code_check_holds(True, "rho 0.98").verdict == V.CODE_PASS
    assert V.code_check_holds(False).verdict == V.CODE_FAIL
    assert V.code_check_holds(None).verdict == V.NOT_RUN


# ------------------------------------------------------------------ budget

def test_budget_check_flags_a_gap_still_closing_and_accepts_a_settled_one():
    # the 3-epoch shipped models of issue 12: 9.9 -> 3.8 -> 1.1 %
    why = V.budget_check([9.9, 3.8, 1.1])
    assert why is not None and "still closing" in why and "+9.9, +3.8, +1.1" in why and "1-3" in why
    # the 10-epoch measurement: the gap settled at -2.2
    assert V.budget_check([17.9, 4.8, 2.0, 0.2, 0.9, -0.9, -1.6, -2.6, -2.2, -2.2]) is None
    assert "only 1 epoch" in V.budget_check([5.0])
    assert V.budget_check([]) is None
    assert V.budget_check([1.0, float("nan"), 1.2]) is None  # NaN epochs ignored
    assert "moving" in V.budget_check([0.5, 3.0])  # widening, not closing


# ------------------------------------------------------------------ effects of training

def test_effect_reproduced_needs_three_seeds_and_an_interval_clearing_the_null():
    v = V.effect_verdict(0.5, 2.0, seeds={"baseline": 3, "mts": 3})
    assert v.verdict == V.REPRODUCED and "paper's direction" in v.reason


def test_effect_contradicted_when_the_interval_clears_the_other_way():
    v = V.effect_verdict(-2.0, -0.5, seeds=3)
    assert v.verdict == V.CONTRADICTED and "opposite" in v.reason
    # a claim of a decrease (direction -1) with an interval below the null is reproduced
    assert V.effect_verdict(-2.0, -0.5, seeds=3, direction=-1).verdict == V.REPRODUCED


def test_effect_inconclusive_when_the_interval_includes_the_null():
    v = V.effect_verdict(-0.5, 1.0, seeds=5)
    assert v.verdict == V.INCONCLUSIVE and "includes 0" in v.reason


def test_effect_inconclusive_with_too_few_seeds_says_how_many():
    v = V.effect_verdict(0.5, 2.0, seeds={"baseline": 3, "mts": 1})
    assert v.verdict == V.INCONCLUSIVE
    assert "only baseline 3, mts 1 seed(s) per arm (needs >= 3)" in v.reason and "paper's direction" in v.reason
    assert V.effect_verdict(0.5, 2.0, seeds=None).verdict == V.INCONCLUSIVE


def test_effect_inconclusive_when_the_budget_is_visibly_too_small():
    why = V.budget_check([9.9, 3.8, 1.1])
    v = V.effect_verdict(-3.8, -1.7, seeds=3, budget=why)
    assert v.verdict == V.INCONCLUSIVE and "budget visibly too small" in v.reason and "+9.9" in v.reason


def test_effect_not_run_and_a_null_other_than_zero():
    assert V.effect_verdict(None, 1.0, seeds=3).verdict == V.NOT_RUN
    assert V.effect_verdict(1.01, 1.05, seeds=3, null=1.0).verdict == V.REPRODUCED
    assert V.effect_verdict(0.99, 1.05, seeds=3, null=1.0).verdict == V.INCONCLUSIVE
    with pytest.raises(ValueError):
        V.effect_verdict(0.1, 0.2, seeds=3, direction=0)


# ------------------------------------------------------------------ absolute numbers

def test_value_verdict_branches():
    assert V.value_verdict(120.0, 58.98, comparable=False).verdict == V.NOT_COMPARABLE
    assert V.value_verdict(None, 58.98, comparable=True).verdict == V.NOT_RUN
    assert V.value_verdict(59.5, 58.98, comparable=True, seeds=3).verdict == V.REPRODUCED  # within 3%
    assert V.value_verdict(62.0, 58.98, comparable=True, lo=57.0, hi=63.0, seeds=3).verdict == V.REPRODUCED
    assert V.value_verdict(62.0, 58.98, comparable=True, lo=61.0, hi=63.0, seeds=3).verdict == V.CONTRADICTED
    v = V.value_verdict(59.5, 58.98, comparable=True)  # one seed at the paper's scale
    assert v.verdict == V.INCONCLUSIVE and "only 1 seed(s)" in v.reason


# ------------------------------------------------------------------ beyond the paper, counting

def test_beyond_outcomes():
    assert V.beyond_outcome(True).verdict == V.HOLDS
    assert V.beyond_outcome(False).verdict == V.DOES_NOT_HOLD
    assert V.beyond_outcome(None).verdict == V.NOT_RUN
    assert V.beyond_outcome(True, inconclusive="too few distances").verdict == V.INCONCLUSIVE


def test_counts_and_summary_line_count_each_kind_separately():
    verdicts = [V.CODE_PASS] * 13 + [V.REPRODUCED, V.INCONCLUSIVE, V.INCONCLUSIVE, V.NOT_COMPARABLE] + [V.BEYOND] * 3
    c = V.count_verdicts(verdicts, [V.HOLDS, V.HOLDS, V.INCONCLUSIVE])
    assert c[V.CODE_PASS] == 13 and c[V.CODE_FAIL] == 0 and c[V.INCONCLUSIVE] == 2 and c[V.BEYOND] == 3
    assert c["beyond: holds"] == 2 and c["beyond: inconclusive"] == 1
    line = V.summary_line(c)
    assert line.startswith("Summary: 13 code check: pass, 0 code check: fail, 1 reproduced, 0 contradicted, "
                           "2 inconclusive, 1 not comparable at this scale, 0 not run; 3 beyond the paper")
    assert "(2 holds, 1 inconclusive)" in line
    with pytest.raises(ValueError):
        V.count_verdicts(["not reproduced"])


def test_finite():
    assert V.finite(1.0) and V.finite(3) and not V.finite(True) and not V.finite(math.inf) and not V.finite("1")
