"""timescale_probe.stats: each rule against an independent computation (scipy / statsmodels /
closed forms / simulation), one case where synthetic data clearly hold and one where they fail."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from timescale_probe import stats
from timescale_probe.errors import OptionError

# per-seed baseline - MTS perplexity, issue 21 (seeds 141, 2, 3)
PPL_GAIN = [2.05, 2.06, 0.44]


def test_t_interval_matches_scipy_and_axis_form():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, size=12)
    ci = stats.t_interval(x)
    lo, hi = sps.t.interval(0.95, x.size - 1, loc=x.mean(), scale=sps.sem(x))
    assert ci.n == 12 and ci.level == 0.95
    assert ci.lo == pytest.approx(lo, rel=1e-12) and ci.hi == pytest.approx(hi, rel=1e-12)
    X = rng.normal(size=(5, 3, 4))
    cia = stats.t_interval(X, axis=0)
    one = stats.t_interval(X[:, 2, 1])
    assert cia.lo[2, 1] == pytest.approx(one.lo) and cia.hi[2, 1] == pytest.approx(one.hi)
    # non-finite dropped; one value: no interval
    assert stats.t_interval([1.0, np.nan, 3.0]).n == 2
    assert math.isnan(stats.t_interval([1.0]).lo)


def test_t_test_reproduces_spec_numbers_and_scipy():
    tt = stats.t_test(PPL_GAIN)  # issue 21: t(2) = 2.82, two-sided p = 0.11
    assert tt.t == pytest.approx(2.817, abs=1e-3) and tt.p == pytest.approx(0.106, abs=1e-3)
    ref = sps.ttest_1samp(PPL_GAIN, 0.0, alternative="greater")
    one = stats.t_test(PPL_GAIN, alternative="greater")
    assert one.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert not one.rejects  # 0.053 > 0.025: does not reject at the one-sided 2.5% of a 95% interval
    # the one-sided verdict agrees with the 95% interval's lower bound, both ways
    for x in ([0.1, 0.2, 0.15, 0.12], [0.1, -0.2, 0.15, 0.05]):
        r = stats.t_test(x, alternative="greater")
        assert r.rejects == (r.lo > 0)
    a, b = np.array([3.0, 4.0, 5.0, 6.0]), np.array([2.5, 3.9, 4.1, 5.2])
    assert stats.paired_t_test(a, b).p == pytest.approx(sps.ttest_rel(a, b).pvalue, rel=1e-12)
    with pytest.raises(OptionError):
        stats.t_test(PPL_GAIN, alternative="bigger")


def test_power_and_seeds_needed_match_spec_and_simulation():
    m, sd = float(np.mean(PPL_GAIN)), float(np.std(PPL_GAIN, ddof=1))
    # issue 21: power 36% at 3 seeds; about 6 seeds for 80%; the <100 bin (d = 0.95) about 11
    assert stats.t_power(m, sd, 3) == pytest.approx(0.355, abs=0.005)
    assert stats.seeds_needed(m, sd) == 6
    assert stats.seeds_needed(0.95, 1.0) == 11
    assert stats.t_power(m, sd, 6) >= 0.8 > stats.t_power(m, sd, 5)
    # against a simulation of the test itself (20,000 trials: SE of a power near 0.5 is 0.0035)
    rng = np.random.default_rng(1)
    n, d = 5, 1.0
    x = rng.normal(d, 1.0, size=(20000, n))
    t = x.mean(1) / (x.std(1, ddof=1) / math.sqrt(n))
    sim = float((t > sps.t.ppf(0.975, n - 1)).mean())
    assert stats.t_power(d, 1.0, n) == pytest.approx(sim, abs=0.015)
    assert stats.seeds_needed(-1.0, 1.0) is None and stats.seeds_needed(0.0, 1.0) is None
    assert stats.seeds_needed(1e-4, 1.0, max_n=100) is None


def test_tost_holds_and_fails():
    rng = np.random.default_rng(2)
    tight = rng.normal(0.0, 0.01, size=8)  # SD 0.01 around 0, margin 0.05: interval ~±0.01 -> 5x headroom
    eq = stats.tost(tight, 0.05)
    assert eq.equivalent and eq.p < 0.001
    assert -0.05 < eq.lo and eq.hi < 0.05
    wide = np.array([0.04, -0.03, 0.06, 0.0])  # mean inside the margin, interval not
    ne = stats.tost(wide, 0.05)
    assert not ne.equivalent and (ne.lo < -0.05 or ne.hi > 0.05)
    # TOST p = the larger one-sided p, each from scipy
    p1 = sps.ttest_1samp(wide, -0.05, alternative="greater").pvalue
    p2 = sps.ttest_1samp(wide, 0.05, alternative="less").pvalue
    assert ne.p == pytest.approx(max(p1, p2), rel=1e-12)
    with pytest.raises(OptionError):
        stats.tost(wide, -1.0)


def test_bootstrap_interval_and_distinct_resamples():
    assert stats.distinct_resamples(3) == 10  # issue 21: 3 seeds give 10 distinct resamples
    assert stats.distinct_resamples(7) == 1716
    b = stats.bootstrap_interval(PPL_GAIN, seed=3)
    assert b.distinct == 10 and b.lo == pytest.approx(0.44) and b.hi == pytest.approx(2.06)
    rng = np.random.default_rng(4)
    x = rng.normal(5.0, 1.0, size=400)
    bb = stats.bootstrap_interval(x, n_resamples=4000, seed=0)
    t = stats.t_interval(x)
    assert bb.lo == pytest.approx(t.lo, abs=0.03) and bb.hi == pytest.approx(t.hi, abs=0.03)
    assert stats.bootstrap_interval(x, np.median, n_resamples=100, seed=1) == \
        stats.bootstrap_interval(x, np.median, n_resamples=100, seed=1)


def test_holm_and_bh_keep_nan():
    p = np.array([0.01, 0.04, np.nan, 0.03])
    assert np.allclose(stats.holm(p), [0.03, 0.06, np.nan, 0.06], equal_nan=True)
    bh = stats.benjamini_hochberg(p)
    assert np.isnan(bh[2]) and bh[0] == pytest.approx(0.03)


def test_mean_of_draws_null_has_the_spread_of_a_k_mean():
    rng = np.random.default_rng(5)
    controls = [rng.normal(0.0, 1.0, size=300) for _ in range(4)]
    null = stats.mean_of_draws_null(controls, n_draws=40000, seed=0)
    # a 4-seed mean of unit-SD controls has SD 1/2 (300 controls per seed: SD of SDs ~4%)
    assert null.std() == pytest.approx(0.5, rel=0.08)
    assert stats.empirical_p(3.0, null) < 0.001  # a 6-SD effect: clearly beyond
    assert stats.empirical_p(0.0, null) == pytest.approx(0.5, abs=0.03)  # a null effect: not
    multi = stats.mean_of_draws_null([rng.normal(size=(50, 3))] * 2, n_draws=10, seed=1)
    assert multi.shape == (10, 3)
