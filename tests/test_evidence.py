"""The evidence rules of the report (issue 21), each on synthetic per-seed data where the claim
clearly holds and where it clearly fails (headroom stated per case), plus the per-seed numbers measured on the 3 small-profile seeds (141, 2, 3) of wave 2."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from timescale_probe.reproduce import rules as R
from timescale_probe.reproduce.multiseed import fig3_decisions, table1_decisions

# baseline - MTS perplexity per seed (141, 2, 3), small profile, measured in wave 2 (issue 21)
ISSUE21_GAIN = [2.05, 2.06, 0.44]


def test_effect_rule_holds_fails_and_says_how_many_more_seeds():
    rng = np.random.default_rng(0)
    # gain 0.5 with SD 0.05 over 5 seeds: t ~ 22 against a critical 2.78 (8x headroom)
    up = R.effect_rule(0.5 + 0.05 * rng.standard_normal(5), unit="%")
    assert up.verdict == R.HOLDS and up.lo > 0 and up.p < 0.001 and up.seeds_needed == 2
    down = R.effect_rule(-0.5 + 0.05 * rng.standard_normal(5), unit="%")
    assert down.verdict == R.FAILS and down.hi < 0
    # issue 21: 3 seeds, mean 1.51, SD 0.93: inconclusive; 80% power needs 6, i.e. 3 more
    spec = R.effect_rule(ISSUE21_GAIN)
    assert spec.verdict == R.INCONCLUSIVE and spec.seeds_needed == 6 and "3 more" in spec.reason
    assert spec.sd == pytest.approx(0.932, abs=1e-3) and spec.effect == pytest.approx(1.627, abs=1e-3)
    # too few seeds: inconclusive whatever the numbers, saying so
    few = R.effect_rule([0.5, 0.52])
    assert few.verdict == R.INCONCLUSIVE and "only 2 seed(s)" in few.reason
    # a budget visibly too small blocks a verdict
    assert R.effect_rule(0.5 + 0.05 * rng.standard_normal(5), budget="still moving").verdict == R.INCONCLUSIVE


def test_contrast_rule_needs_every_contrast():
    rng = np.random.default_rng(1)
    names = ["<100 - >10K", "<100 - 1K-10K", "<100 - 100-1K"]
    # all three contrasts 1.0 +- 0.1 over 5 seeds (t ~ 22): the gain is largest on rare words
    ok = R.contrast_rule(1.0 + 0.1 * rng.standard_normal((5, 3)), names)
    assert ok.verdict == R.HOLDS and set(ok.extra["per_contrast"]) == set(names)
    # one contrast clearly negative (-0.6 +- 0.1): the gain is not largest there
    M = 1.0 + 0.1 * rng.standard_normal((5, 3))
    M[:, 1] = -0.6 + 0.1 * rng.standard_normal(5)
    bad = R.contrast_rule(M, names)
    assert bad.verdict == R.FAILS and "smaller than <100 - 1K-10K" in bad.reason
    # two strong contrasts and one null one: not every contrast clears 0
    M[:, 1] = 0.05 * rng.standard_normal(5)
    assert R.contrast_rule(M, names).verdict == R.INCONCLUSIVE
    # the issue's 3 seeds of (<100 gain) - (1K-10K gain): -0.31, -0.58, -0.94 (t(2) = -3.35, one-sided p 0.039)
    spec = R.contrast_rule(np.array([[-0.31], [-0.58], [-0.94]]), ["<100 - 1K-10K"])
    assert spec.verdict == R.INCONCLUSIVE and spec.estimate == pytest.approx(-0.61)


def test_equivalence_rule_tost_with_a_stated_margin():
    rng = np.random.default_rng(2)
    names = [f"group {g}" for g in range(1, 24)]
    # every group's log ratio 0 +- 0.001 over 5 seeds, margin 0.01: intervals ~ ±0.0013 (7x headroom)
    ok = R.equivalence_rule(0.001 * rng.standard_normal((5, 23)), names, 0.01)
    assert ok.verdict == R.HOLDS and ok.extra["not_equivalent"] == 0
    # one group hurts by 5% (+- 0.002): beyond the margin on the harmful side
    M = 0.001 * rng.standard_normal((5, 23))
    M[:, 16] = 0.05 + 0.002 * rng.standard_normal(5)
    bad = R.equivalence_rule(M, names, 0.01)
    assert bad.verdict == R.FAILS and "group 17" in bad.reason
    # noise as wide as the margin: cannot show equivalence, but nothing shown beyond it either
    wide = R.equivalence_rule(0.01 * rng.standard_normal((3, 23)), names, 0.01)
    assert wide.verdict == R.INCONCLUSIVE
    # the issue's case: Holm over 92 tests with 2 df "passes whatever the data say"; TOST with 1 seed cannot
    assert R.equivalence_rule(M[:1], names, 0.01).verdict == R.INCONCLUSIVE


def test_null_rule_against_k_seed_means_of_controls():
    rng = np.random.default_rng(3)
    null = rng.normal(0.0, 0.002, size=20000)  # a 3-seed mean of controls: SD 0.002
    single = rng.normal(0.0, 0.0035, size=20000)
    up = R.null_rule([0.02, 0.025, 0.018], null, null_single=single)  # 10 SDs above: clearly beyond
    assert up.verdict == R.HOLDS and up.p < 0.001 and up.hi < 0.02
    down = R.null_rule([-0.02, -0.025, -0.018], null, null_single=single)
    assert down.verdict == R.FAILS
    within = R.null_rule([0.001, -0.002, 0.0005], null, null_single=single)
    assert within.verdict == R.INCONCLUSIVE and "within the controls" in within.reason
    assert R.null_rule([0.02], null).verdict == R.INCONCLUSIVE  # one seed



def test_a_null_range_is_shown_as_the_controls_not_as_an_interval_of_ours():
    """null_rule's lo/hi are the controls' 95% range of k-seed means: the claim says so, the report
    shows 'controls [lo, hi]', and all_of keeps it from its weakest part."""
    from timescale_probe.analysis import Claim
    from timescale_probe.reproduce.report import cells

    rng = np.random.default_rng(4)
    d = R.null_rule([0.02, 0.025, 0.018], rng.normal(0.0, 0.002, 5000))
    assert d.interval_of == "controls" and d.lo < 0 < d.hi < d.estimate
    c = Claim("x.null", "s", "reproduction", **d.claim_fields())
    assert c.interval_of == "controls" and cells(c)["interval"].startswith("controls [")
    both = R.all_of([d, R.effect_rule(np.array([0.3, 0.2, 0.4]))], ["a", "b"], "both")
    assert both.interval_of == ("controls" if both.p == d.p else "estimate")
    t = Claim("x.t", "s", "reproduction", **R.effect_rule(np.array([0.3, 0.2, 0.4])).claim_fields())
    assert t.interval_of == "estimate" and cells(t)["interval"].startswith("[")
    # parts tied at the Monte-Carlo floor: the weakest is the one with the smallest standardised effect
    strong = R.Decision(R.HOLDS, "r", p=5e-5, effect=9.0, estimate=0.3)
    weak = R.Decision(R.HOLDS, "r", p=5e-5, effect=2.5, estimate=0.1)
    assert R.all_of([strong, weak], ["s", "w"], "both").estimate == 0.1
    assert R.all_of([weak, strong], ["w", "s"], "both").estimate == 0.1
    with pytest.raises(ValueError, match="interval_of"):
        Claim("x.bad", "s", "reproduction", "holds", interval_of="band")


def _ablation(seed: int, *, long_hurts_rare: float, short_hurts_rare: float, n_controls: int = 230):
    """A synthetic ablation table: 23 groups (1-6 long T, 20-23 short T) + controls of log ratio
    N(0, 0.003) (the groups' >10K bin N(0, 0.001)); long groups add ``long_hurts_rare`` to the <100 log ratio, short ones ``short_hurts_rare``."""
    rng = np.random.default_rng(seed)
    rows = []
    T = np.geomspace(1000.0, 0.1, 23)
    for g in range(1, 24):
        T_min, T_max = (20.0, 1000.0) if g <= 6 else (0.2, 0.9) if g >= 20 else (2.0, 8.0)
        for b in (">10K", "1K-10K", "100-1K", "<100"):
            x = (0.001 if b == ">10K" else 0.003) * rng.standard_normal()
            if b == "<100":
                x += long_hurts_rare if g <= 6 else short_hurts_rare if g >= 20 else 0.0
            rows.append({"binning": "frequency", "group": str(g), "kind": "group", "bin": b, "ratio": np.exp(x),
                         "T_min": T_min, "T_max": T_max, "T_median": T[g - 1]})
    for c in range(1, n_controls + 1):
        for b in (">10K", "1K-10K", "100-1K", "<100"):
            rows.append({"binning": "frequency", "group": f"control {c}", "kind": "control", "bin": b,
                         "ratio": np.exp(0.003 * rng.standard_normal()), "T_min": np.nan, "T_max": np.nan})
    return pd.DataFrame(rows)


def test_fig3_contrasts_hold_when_long_units_route_rare_words_and_fail_otherwise():
    # long-T groups raise the <100 log ratio by 0.02 (about 7 SDs of one control; a 3-seed mean of the
    # long-vs-short contrast has a null SD near 0.001): clearly beyond the controls
    tabs = {s: _ablation(s, long_hurts_rare=0.02, short_hurts_rare=0.0) for s in (1, 2, 3)}
    d, info = fig3_decisions(tabs, tabs, seed=0)
    assert info["long"] == ["1", "2", "3", "4", "5", "6"] and info["short"] == ["20", "21", "22", "23"]
    assert d["fig3.rare_long_vs_short"].verdict == R.HOLDS
    assert d["fig3.rare_vs_bins_long"].verdict == R.HOLDS
    assert d["fig3.rare_routed_specifically"].verdict == R.HOLDS  # the claim: both parts
    # >10K log ratios N(0, 0.001): 3-seed TOST intervals reach about ±0.005 against the margin 0.01
    assert d["fig3.frequent_never_hurt"].verdict == R.HOLDS
    # short-T groups hurt rare words more than long ones (the issue's finding turned up): the contrast fails
    tabs = {s: _ablation(s, long_hurts_rare=0.0, short_hurts_rare=0.02) for s in (1, 2, 3)}
    d, _ = fig3_decisions(tabs, tabs, seed=0)
    assert d["fig3.rare_long_vs_short"].verdict == R.FAILS
    assert d["fig3.rare_vs_bins_long"].verdict == R.INCONCLUSIVE  # long groups: no rare-specific effect
    assert d["fig3.rare_routed_specifically"].verdict == R.FAILS
    # seeds without >= 200 controls enter only the TOST: the contrasts have no seed to stand on
    d, info = fig3_decisions(tabs, {}, seed=0)
    assert d["fig3.rare_long_vs_short"].verdict == R.NOT_RUN and d["fig3.frequent_never_hurt"].n == 3


def test_table1_decisions_overall_rare_and_largest():
    rng = np.random.default_rng(4)
    rows = []
    for seed in range(1, 6):
        gains = {">10K": 0.3, "1K-10K": 0.6, "100-1K": 0.8, "<100": 2.0, "overall": 0.5}
        for b, g in gains.items():
            rows.append({"seed": seed, "bin": b, "rel_nll_pct": g + 0.05 * rng.standard_normal()})
    per = pd.DataFrame(rows)
    d = table1_decisions(per, None)
    assert d["table1.overall_gain"].verdict == R.HOLDS and d["table1.rare_gain"].verdict == R.HOLDS
    assert d["table1.rare_gain_largest"].verdict == R.HOLDS
    # the issue's pattern: the gain is largest on 1K-10K, not on rare words
    per.loc[per["bin"] == "1K-10K", "rel_nll_pct"] += 2.5
    d = table1_decisions(per, None)
    assert d["table1.rare_gain_largest"].verdict == R.FAILS and d["table1.overall_gain"].verdict == R.HOLDS


def test_a_seed_enters_the_fig3_contrasts_only_with_200_controls_drawn_with_its_own_seed():
    from timescale_probe.reproduce.multiseed import _qualified_ablation
    from timescale_probe.seeds import SeedRun

    run = SeedRun("ptb", "mts", 4, "folder", ablation=_ablation(4, long_hurts_rare=0.0, short_hurts_rare=0.0),
                  ablation_meta={"controls": 230, "control_seed": 4})
    assert _qualified_ablation(run) is None
    # seeds 2 and 3 of the GPU run: 20 controls drawn with seed 0 in every model (the same units each time)
    old = SeedRun("ptb", "mts", 2, "folder", ablation=_ablation(2, long_hurts_rare=0.0, short_hurts_rare=0.0,
                                                                 n_controls=20),
                  ablation_meta={"controls": 20, "control_seed": None})
    assert "20 random control groups (needs >= 200)" in _qualified_ablation(old)
    shared = SeedRun("ptb", "mts", 5, "folder", ablation=run.ablation, ablation_meta={"controls": 230, "control_seed": 0})
    assert "not independent per seed" in _qualified_ablation(shared)
