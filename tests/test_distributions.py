"""Distribution fitting of unit timescales: fast MLEs against scipy, the reference regression numbers
(docs/methods.md §3), recovery on synthetic draws, bootstrap semantics, exclusions and input loading."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from timescale_probe.distributions import (
    FAMILIES,
    FAMILY_ORDER,
    exclusion_counts,
    figure_tables,
    fit_mle,
    fit_table,
    fit_timescales,
    fit_verdict,
    likelihood_ratio_test,
    load_timescales,
    parse_families,
    parse_layers,
    sorted_curve,
)
from timescale_probe.errors import InputError, OptionError
from timescale_probe.timescales import paper_lm_spec

REF = "estimated_timescales/{}_timescale_layer_{}_output.npy"


def _reference(reference_results, model):
    return np.concatenate([np.load(reference_results / REF.format(model, k), allow_pickle=False) for k in (1, 2, 3)])


def _samples():
    rng = np.random.default_rng(7)
    return {
        "lognormal": rng.lognormal(0.0, 1.0, 600),
        "invgamma": stats.invgamma.rvs(1.7, scale=1.3, size=600, random_state=rng),
    }


SAMPLES = _samples()


@pytest.mark.parametrize("fix_scale", [None, 1.0])
@pytest.mark.parametrize("family", FAMILY_ORDER)
@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_fast_mle_matches_scipy_fit(family, fix_scale, sample):
    x = SAMPLES[sample]
    fam = FAMILIES[family]
    shape, scale, ok = fit_mle(x, family, fix_scale)
    assert ok
    ours = fam.logpdf(x, shape, scale).sum()
    if family == "expon" and fix_scale is not None:
        assert scale == 1.0 and np.isnan(shape)
        return
    kw = {"floc": 0} if fix_scale is None else {"floc": 0, "fscale": fix_scale}
    params = fam.dist.fit(x, **kw)
    theirs = fam.dist.logpdf(x, *params).sum()
    assert ours == pytest.approx(theirs, rel=1e-4)
    assert ours >= theirs - 1e-6 * abs(theirs)  # never worse than scipy's optimiser
    if fix_scale is not None:
        assert scale == fix_scale


def test_rows_are_fitted_independently():
    rng = np.random.default_rng(3)
    X = stats.invgamma.rvs(1.5, scale=2.0, size=(5, 300), random_state=rng)
    for family in FAMILY_ORDER:
        sh, sc, ok = FAMILIES[family].fit_rows(X)
        assert ok.all(), family
        for i in (0, 4):
            s1, c1, _ = fit_mle(X[i], family)
            np.testing.assert_allclose([sh[i], sc[i]], [s1, c1], rtol=1e-9, equal_nan=True)


def test_lomax_without_finite_mle_is_flagged():
    x = np.random.default_rng(0).uniform(1.0, 2.0, 400)  # lighter-tailed than exponential
    shape, scale, ok = fit_mle(x, "lomax")
    assert not ok and scale > 1e3 * x.mean() and np.isfinite(shape)


def test_reference_regression_free_scale(reference_results):
    for model, a, b in (("PTB", 2.16, 1.57), ("WT2", 1.64, 1.25)):
        T = _reference(reference_results, model)
        rep = fit_timescales(T, ["invgamma", "gamma", "lognorm"], n_boot=0)
        shape, scale = rep.params("invgamma")
        assert shape == pytest.approx(a, rel=0.01) and scale == pytest.approx(b, rel=0.01)
        assert rep.fits_["n"].iloc[0] == 2700
        c = rep.comparisons_.set_index("vs")
        for other in ("gamma", "lognorm"):
            assert c.loc[other, "test"] == "vuong"
            assert c.loc[other, "R"] > 0 and c.loc[other, "favoured"] == "invgamma" and c.loc[other, "p"] < 1e-6


def test_reference_regression_fixed_scale(reference_results):
    for model, a in (("PTB", 1.54), ("WT2", 1.40)):
        rep = fit_timescales(_reference(reference_results, model), ["invgamma"], fix_scale=1.0, n_boot=0)
        shape, scale = rep.params("invgamma")
        assert shape == pytest.approx(a, abs=0.005) and scale == 1.0
        assert rep.fits_["k"].iloc[0] == 1


def test_reference_per_layer_and_pooled(reference_results):
    est = reference_results / "estimated_timescales"
    df = load_timescales([est / f"PTB_timescale_layer_{k}_output.npy" for k in (1, 2, 3)])
    assert list(df["layer"].unique()) == [1, 2, 3] and len(df) == 2700
    rep = fit_table(df, "T", layers="all", families=["invgamma"], n_boot=0)
    assert rep.scopes == ["layer 1", "layer 2", "layer 3", "pooled"]
    assert list(rep.fits_["n"]) == [1150, 1150, 400, 2700]
    assert rep.params("invgamma", "pooled")[0] == pytest.approx(2.16, rel=0.01)


def test_recovery_of_known_parameters():
    a, b = 1.5, 2.0
    T = stats.invgamma.rvs(a, scale=b, size=2000, random_state=np.random.default_rng(11))
    rep = fit_timescales(T, ["invgamma", "lognorm", "weibull_min"], n_boot=100, seed=1)
    row = rep.fits_.set_index("family").loc["invgamma"]
    assert row["shape_lo"] < a < row["shape_hi"] and row["scale_lo"] < b < row["scale_hi"]
    assert row["ks_p"] > 0.05  # the true model is not rejected
    assert rep.best() == "invgamma"
    assert rep.fits_.set_index("family").loc["weibull_min", "ks_p"] == pytest.approx(1 / 101)
    r2 = fit_timescales(T, ["invgamma"], n_boot=100, seed=1, ci_method="nonparametric").fits_.iloc[0]
    assert r2["ci_method"] == "nonparametric" and r2["shape_lo"] < r2["shape"] < r2["shape_hi"]
    width, width2 = row["shape_hi"] - row["shape_lo"], r2["shape_hi"] - r2["shape_lo"]
    assert 0.6 < width2 / width < 1.6 and r2["shape_lo"] != row["shape_lo"]
    assert r2["ks_p"] == row["ks_p"]  # the KS p-value always comes from the parametric bootstrap


def test_paper_lm_layer2_quantiles_give_a_near_056():
    T = paper_lm_spec().timescales([1150, 1150])[1]
    rep = fit_timescales(T, ["invgamma"], n_boot=100, seed=0)
    row = rep.fits_.iloc[0]
    assert row["n"] == 1149 and row["n_excluded_zero"] == 1  # the T=0 quantile
    assert row["shape"] == pytest.approx(0.5642, abs=5e-4)
    assert row["scale"] == pytest.approx(1.0126, abs=5e-4)
    assert row["shape_lo"] < 0.56 < row["shape_hi"]
    fixed = fit_timescales(T, ["invgamma"], fix_scale=1.0, n_boot=0).fits_.iloc[0]
    assert fixed["shape"] == pytest.approx(0.5611, abs=5e-4)


def test_exclusions_are_counted():
    T = np.array([1.0, 2.0, 0.0, np.inf, -np.inf, np.nan, -3.0, 5.0, 0.5, 7.0])
    x, counts = exclusion_counts(T)
    assert x.tolist() == [1.0, 2.0, 5.0, 0.5, 7.0]
    assert counts == {"n_excluded_zero": 1, "n_excluded_negative": 1, "n_excluded_inf": 2, "n_excluded_nan": 1}
    row = fit_timescales(T, ["lognorm"], n_boot=0).fits_.iloc[0]
    assert row["n"] == 5 and row["n_excluded_inf"] == 2 and row["n_excluded_zero"] == 1


def test_degenerate_scopes_are_skipped_or_refused():
    df = pd.DataFrame({"layer": [1] * 5 + [2] * 50, "T": [3.0] * 5 + list(np.linspace(0.5, 9, 50))})
    rep = fit_table(df, "T", layers="all", families=["invgamma"], n_boot=0)
    assert rep.scopes == ["layer 2", "pooled"] and rep.skipped_[0][0] == "layer 1"
    with pytest.raises(InputError, match="usable timescales"):
        fit_timescales([0.0, np.inf, 2.0], n_boot=0)


def test_seeded_bootstrap_is_reproducible():
    T = stats.gamma.rvs(2.0, scale=3.0, size=300, random_state=np.random.default_rng(2))
    r1 = fit_timescales(T, ["gamma", "fisk"], n_boot=50, seed=5).fits_
    r2 = fit_timescales(T, ["gamma", "fisk"], n_boot=50, seed=5).fits_
    r3 = fit_timescales(T, ["gamma", "fisk"], n_boot=50, seed=6).fits_
    pd.testing.assert_frame_equal(r1, r2)
    assert not np.allclose(r1["shape_lo"], r3["shape_lo"])
    # a family's bootstrap does not depend on which other families are fitted
    r4 = fit_timescales(T, ["fisk"], n_boot=50, seed=5).fits_
    assert r4["shape_lo"].iloc[0] == r1.set_index("family").loc["fisk", "shape_lo"]


def test_fixed_scale_exponential_has_no_free_parameter():
    T = stats.expon.rvs(scale=1.0, size=200, random_state=np.random.default_rng(4))
    rep = fit_timescales(T, ["expon", "gamma", "weibull_min"], fix_scale=1.0, n_boot=30)
    f = rep.fits_.set_index("family")
    assert f.loc["expon", "k"] == 0 and np.isnan(f.loc["expon", "shape_lo"])
    assert f.loc["expon", "loglik"] == pytest.approx(-T.sum())
    lrt = rep.comparisons_[rep.comparisons_["test"] == "wilks"].set_index("family")
    assert set(lrt.index) == {"gamma", "weibull_min"}
    assert (lrt["vs"] == "expon").all() and (lrt["p"] > 0.05).all()  # the true exponential is kept


def test_likelihood_ratio_test_vuong_and_wilks():
    rng = np.random.default_rng(0)
    la, lb = rng.normal(0.1, 1, 500), rng.normal(0, 1, 500)
    t = likelihood_ratio_test(la, lb)
    t2 = likelihood_ratio_test(lb, la)
    assert t.test == "vuong" and t.n == 500
    assert t.R == pytest.approx(-t2.R) and t.z == pytest.approx(-t2.z) and t.p == pytest.approx(t2.p)
    d = la - lb
    # ddof 0 (Vuong's omega), computed here independently of the implementation
    omega = np.sqrt(np.mean(d ** 2) - np.mean(d) ** 2)
    assert t.statistic == pytest.approx(d.sum() / (np.sqrt(500) * omega), rel=1e-12)
    assert t.p == pytest.approx(2 * stats.norm.sf(abs(t.statistic)), rel=1e-10)
    R, z, p = t  # unpacks as (R, statistic, p)
    assert (R, z, p) == (t.R, t.statistic, t.p)
    assert t.favoured("a", "b") == ("a" if t.R > 0 else "b")
    w = likelihood_ratio_test(-100.0, -103.0, nested=True, df=1)
    assert w.test == "wilks" and (w.R, w.statistic) == (3.0, 6.0) and w.p == pytest.approx(stats.chi2.sf(6.0, 1))
    assert np.isnan(w.z) and w.favoured("big", "small") == "big"
    # a nested comparison that the smaller model wins: p = 1, the smaller is kept
    w = likelihood_ratio_test(np.array([-1.0, -2.0]), np.array([-1.0, -2.5]) + 1.0, nested=True, df=2)
    assert w.R < 0 and w.p == 1.0 and w.favoured("big", "small") == "small"


def test_likelihood_ratio_test_zero_spread_and_bad_input():
    la = np.linspace(-3, -1, 50)
    same = likelihood_ratio_test(la, la)
    assert (same.R, same.statistic, same.p) == (0.0, 0.0, 1.0)
    shifted = likelihood_ratio_test(la + 0.25, la)  # better at every point by the same amount
    assert shifted.R == pytest.approx(12.5) and shifted.statistic == np.inf and shifted.p == 0.0
    assert likelihood_ratio_test(la, la + 0.25).statistic == -np.inf
    one = likelihood_ratio_test([1.0], [0.0])
    assert one.R == 1.0 and np.isnan(one.statistic) and np.isnan(one.p)
    with pytest.raises(InputError, match="same points"):
        likelihood_ratio_test(la, la[:-1])
    with pytest.raises(InputError, match="finite"):
        likelihood_ratio_test(np.r_[la[:-1], -np.inf], la)
    with pytest.raises(InputError, match="df"):
        likelihood_ratio_test(-1.0, -2.0, nested=True, df=0)


def test_sorted_curve_is_the_papers():
    y = sorted_curve(2700, 1.4, 1.0)
    np.testing.assert_array_equal(y, stats.invgamma.isf(np.linspace(0, 1, 2701)[1:], 1.4, scale=1.0))
    assert y[-1] == 0 and np.all(np.diff(y) <= 0)


def test_figure_tables_shapes():
    T = stats.invgamma.rvs(2.0, size=300, random_state=np.random.default_rng(9))
    rep = fit_timescales(T, ["invgamma", "lognorm"], n_boot=0)
    t = figure_tables(rep, reference_curve=(1.4, 1.0))
    s = t["sorted"]
    assert set(s["series"]) == {"units", "fit", "reference"}
    units = s[s["series"] == "units"]["T"].to_numpy()
    assert len(units) == 300 and np.all(np.diff(units) <= 0)
    assert (s["T"] > 0).all()
    d = t["density"][t["density"]["family"] == "invgamma"]
    np.testing.assert_allclose(np.trapezoid(d["density"], d["log10_T"]), 1.0, atol=0.02)
    assert len(t["qq"]) == 300 and t["qq"]["family"].iloc[0] == rep.best()


def test_option_parsing():
    assert parse_families("frechet,ig,weibull") == ["invweibull", "invgamma", "weibull_min"]
    assert parse_families(None) == list(FAMILY_ORDER)
    with pytest.raises(OptionError, match="unknown distribution family 'pareto'"):
        parse_families("pareto")
    assert [s for s, _ in parse_layers("all", [1, 2])] == ["layer 1", "layer 2", "pooled"]
    assert [s for s, _ in parse_layers("all", [1])] == ["pooled"]
    assert [s for s, _ in parse_layers("2,pooled", [1, 2])] == ["layer 2", "pooled"]
    with pytest.raises(OptionError, match="no layer '4'"):
        parse_layers("4", [1, 2, 3])
    with pytest.raises(OptionError):
        fit_timescales([1.0, 2.0, 3.0], n_boot=-1)
    with pytest.raises(OptionError):
        fit_timescales([1.0, 2.0, 3.0], fix_scale=0.0)


# ---------------------------------------------------------------------------------------------- inputs

def test_load_npy_layers_and_names(tmp_path):
    for k in (1, 2):
        np.save(tmp_path / f"l{k}.npy", np.arange(1, 4, dtype=np.float32) * k)
    df = load_timescales([tmp_path / "l1.npy", tmp_path / "l2.npy"])
    assert df["layer"].tolist() == [1, 1, 1, 2, 2, 2] and df["T"].tolist() == [1, 2, 3, 2, 4, 6]
    assert df["T"].dtype == np.float64
    named = load_timescales([tmp_path / "l1.npy", tmp_path / "l2.npy"], layer_names="2,3")
    assert named["layer"].tolist() == [2, 2, 2, 3, 3, 3]
    single = load_timescales(tmp_path / "l1.npy")
    assert "layer" not in single.columns


@pytest.mark.parametrize("make,match", [
    (lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True), "Python objects"),
    (lambda p: np.save(p, np.ones((3, 2))), "1-D"),
    (lambda p: np.save(p, np.array([], dtype=float)), "empty"),
    (lambda p: np.save(p, np.array(["a", "b"])), "expected real numbers"),
    (lambda p: p.write_bytes(b"not an npy file"), "cannot read"),
])
def test_bad_npy_inputs(tmp_path, make, match):
    path = tmp_path / "bad.npy"
    make(path)
    with pytest.raises(InputError, match=match):
        load_timescales(path)


def test_headerless_number_files_as_np_savetxt_writes_them(tmp_path):
    """One timescale per line without a header (np.savetxt, a shell pipe) is read exactly, not as a
    table whose first number is a column name."""
    T = np.array([0.5, 3.25, 1e6, 17.0, np.inf])
    np.savetxt(tmp_path / "t.txt", T)
    (tmp_path / "t.csv").write_text("0.5\n3.25\n1000000\n17\ninf\n")
    for name in ("t.txt", "t.csv"):
        df = load_timescales(tmp_path / name)
        assert df["T"].tolist() == T.tolist() and df.attrs["column"] == "T", name
    with pytest.raises(InputError, match="no column 'T_data'"):
        load_timescales(tmp_path / "t.txt", "T_data")
    np.savetxt(tmp_path / "two.txt", np.ones((3, 2)))
    with pytest.raises(InputError, match="no header and 2 columns"):
        load_timescales(tmp_path / "two.txt")


def test_load_csv(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("layer,unit,T_bias,T_data\n1,0,1.5,2.0\n1,1,2.5,\n2,0,inf,4.0\n")
    df = load_timescales(p)
    assert df.attrs["column"] == "T_data" and df["layer"].tolist() == [1, 1, 2]
    assert np.isnan(df["T"].iloc[1])  # blank cell: excluded and counted later
    df = load_timescales(p, "T_bias")
    assert df["T"].iloc[2] == np.inf
    with pytest.raises(InputError, match="no column 'T_x'"):
        load_timescales(p, "T_x")
    q = tmp_path / "q.csv"
    q.write_text("T\n1.0\nabc\n")
    with pytest.raises(InputError, match="non-numeric value 'abc'"):
        load_timescales(q)
    e = tmp_path / "e.csv"
    e.write_text("")
    with pytest.raises(InputError, match="empty"):
        load_timescales(e)
    n = tmp_path / "n.csv"
    n.write_text("x,y\n1,2\n")
    with pytest.raises(InputError, match="no timescale column"):
        load_timescales(n)
    with pytest.raises(OptionError, match="one layer each"):
        load_timescales([p, p])


def test_load_checkpoint_bias_timescales(tmp_path):
    from timescale_probe.checkpoints import save_checkpoint
    from timescale_probe.stack import LSTMLayer, LSTMStack
    from timescale_probe.timescales import timescale_to_forget_bias

    H = 4
    T = np.array([0.5, 2.0, 3.0, 50.0])
    bias_hh = torch.zeros(4 * H, dtype=torch.float64)
    bias_hh[H:2 * H] = torch.as_tensor(timescale_to_forget_bias(T))
    layer = LSTMLayer(torch.zeros(4 * H, 3), torch.zeros(4 * H, H), torch.zeros(4 * H), bias_hh.float())
    save_checkpoint(tmp_path / "m.pt", LSTMStack(layers=[layer]))
    df = load_timescales(tmp_path / "m.pt")
    assert df.attrs["column"] == "T_bias" and df["layer"].tolist() == [1] * 4
    np.testing.assert_allclose(df["T"], T, rtol=1e-5)
    chrono = load_timescales(tmp_path / "m.pt", convention="chrono")
    np.testing.assert_allclose(chrono["T"], 1.0 + np.exp(timescale_to_forget_bias(T)), rtol=1e-5)
    assert chrono.attrs["convention"] == "chrono"
    with pytest.raises(OptionError, match="T_bias only"):
        load_timescales(tmp_path / "m.pt", "T_data")


def test_layer_timescales_in_unit_order(tmp_path):
    from timescale_probe.distributions import layer_timescales

    p = tmp_path / "timescales.csv"
    # rows shuffled, two layers: the layer's values come back in unit order
    p.write_text("layer,unit,T_bias,T_data\n2,1,9,20.5\n1,0,9,1.0\n2,0,9,10.5\n2,2,9,30.5\n1,1,9,2.0\n")
    np.testing.assert_array_equal(layer_timescales(p, 2, 3), [10.5, 20.5, 30.5])
    np.testing.assert_array_equal(layer_timescales(p, 1, 2, "T_bias"), [9.0, 9.0])
    with pytest.raises(InputError, match="does not list units 0-3 of layer 2"):
        layer_timescales(p, 2, 4)
    q = tmp_path / "bad.csv"
    q.write_text("layer,unit,T_bias\n1,0,1.0\n")
    with pytest.raises(InputError, match="no column 'T_data'"):
        layer_timescales(q, 1, 1)


# ---------------------------------------------------------------------------------------------- the whole truth

def test_reference_ptb_all_families_regression(reference_results):
    """docs/methods.md §8 / issue 12: on the authors' pooled PTB baseline arrays Fréchet, not inverse gamma,
    fits best; inverse gamma beats only gamma and lognormal among the paper's families."""
    T = _reference(reference_results, "PTB")
    rep = fit_timescales(T, ["invgamma", "gamma", "lognorm", "invweibull"], n_boot=0)
    f = rep.fits_.set_index("family")
    for family, loglik in (("invweibull", -2534.7), ("invgamma", -2807.1), ("lognorm", -3500.3),
                           ("gamma", -4957.5)):
        assert f.loc[family, "loglik"] == pytest.approx(loglik, abs=0.05), family
    assert f.loc["invweibull", "shape"] == pytest.approx(1.989, abs=5e-4)
    assert f.loc["invweibull", "scale"] == pytest.approx(0.657, abs=5e-4)
    assert f.loc["invgamma", "shape"] == pytest.approx(2.162, abs=5e-4)
    assert f.loc["invgamma", "scale"] == pytest.approx(1.573, abs=5e-4)
    assert f.loc["invgamma", "ks"] == pytest.approx(0.150, abs=5e-4)
    v = fit_verdict(rep)
    assert v["scope"] == "pooled" and v["n"] == 2700
    assert v["best_family"] == "invweibull" and v["best_label"] == "Fréchet"
    # both have two parameters: ΔAIC = 2 (ll_Frechet - ll_IG)
    assert v["delta_aic_invgamma"] == pytest.approx(2 * (2807.1 - 2534.7), abs=0.2)
    assert v["delta_aic_reference"] == v["delta_aic_invgamma"] and not v["reference_is_best"]
    assert v["ks_stat"] == pytest.approx(0.150, abs=5e-4)
    assert set(v["beats"]) == {"gamma", "lognorm"} and v["beaten_by"] == ["invweibull"]
    assert "best of 4 families: Fréchet" in v["text"] and "beats lognormal, gamma" in v["text"]
    # Fréchet beats inverse gamma in every layer
    est = reference_results / "estimated_timescales"
    df = load_timescales([est / f"PTB_timescale_layer_{k}_output.npy" for k in (1, 2, 3)])
    per_layer = fit_table(df, "T", layers="each", families=["invgamma", "invweibull"], n_boot=0)
    for scope in per_layer.scopes:
        assert per_layer.verdict(scope)["best_family"] == "invweibull", scope


def test_ks_rejection_switches_intervals_to_the_nonparametric_bootstrap(reference_results):
    T = _reference(reference_results, "PTB")
    rep = fit_timescales(T, ["invgamma"], n_boot=40, seed=3)
    row = rep.fits_.iloc[0]
    # KS 0.150 at n = 2700: no parametric replicate comes near it
    assert row["ks_p"] == pytest.approx(1 / 41) and bool(row["ks_rejected"])
    assert row["ci_method"] == "nonparametric"
    nonpar = fit_timescales(T, ["invgamma"], n_boot=40, seed=3, ci_method="nonparametric").fits_.iloc[0]
    par = fit_timescales(T, ["invgamma"], n_boot=40, seed=3, ci_method="parametric").fits_.iloc[0]
    assert (row["shape_lo"], row["shape_hi"]) == (nonpar["shape_lo"], nonpar["shape_hi"])
    assert par["ci_method"] == "parametric" and par["shape_lo"] != nonpar["shape_lo"]
    assert par["ks_p"] == row["ks_p"] == nonpar["ks_p"]  # the KS p-value is always the parametric one
    v = fit_verdict(rep)
    assert v["ks_rejected"] and v["ci_method"] == "nonparametric"
    assert "rejected; intervals from the nonparametric bootstrap" in v["text"]


def test_auto_intervals_stay_parametric_for_a_fitting_family():
    T = stats.invweibull.rvs(2.0, scale=0.7, size=400, random_state=np.random.default_rng(5))
    rep = fit_timescales(T, ["invweibull", "gamma"], n_boot=60, seed=2)
    f = rep.fits_.set_index("family")
    assert not f.loc["invweibull", "ks_rejected"] and f.loc["invweibull", "ci_method"] == "parametric"
    par = fit_timescales(T, ["invweibull"], n_boot=60, seed=2, ci_method="parametric").fits_.iloc[0]
    assert f.loc["invweibull", "shape_lo"] == par["shape_lo"]
    assert f.loc["gamma", "ks_rejected"] and f.loc["gamma", "ci_method"] == "nonparametric"
    v = fit_verdict(rep.fits_, reference="frechet")  # a plain fits table works too
    assert v["reference_family"] == "invweibull" and v["reference_is_best"] and v["delta_aic_reference"] == 0
    assert np.isnan(v["delta_aic_invgamma"]) and v["beats"] == ["gamma"] and v["beaten_by"] == []
    assert fit_timescales(T, ["gamma"], n_boot=0).fits_.iloc[0]["ci_method"] == "none"


def test_fit_verdict_reads_fits_csv_back(tmp_path):
    T = stats.lognorm.rvs(0.8, scale=2.0, size=300, random_state=np.random.default_rng(8))
    rep = fit_timescales(T, ["invgamma", "lognorm", "fisk"], n_boot=20)
    rep.fits_.to_csv(tmp_path / "fits.csv", index=False)
    v = fit_verdict(pd.read_csv(tmp_path / "fits.csv"))
    assert v == fit_verdict(rep)
    assert v["ranking"][0][2] == 0.0 and [r[0] for r in v["ranking"]] == list(
        rep.fits_.sort_values("aic")["family"])
    with pytest.raises(InputError, match="no fits in scope 'layer 9'"):
        fit_verdict(rep, "layer 9")


def test_two_valued_layer_is_skipped_and_noted_in_pooled():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"layer": [1] * 40 + [2] * 200,
                       "T": [3.0] * 20 + [4.0] * 20 + list(stats.invgamma.rvs(1.5, size=200, random_state=rng))})
    rep = fit_table(df, "T", layers="all", families=["invgamma"], n_boot=0)
    assert rep.scopes == ["layer 2", "pooled"]
    (scope, reason), = rep.skipped_
    assert scope == "layer 1" and "only 2 distinct values (3, 4)" in reason
    assert [s for s, _ in rep.warnings_] == ["pooled"] and "includes layer 1" in rep.warnings_[0][1]
    with pytest.raises(InputError, match="only 2 distinct values"):
        fit_timescales([3.0, 4.0] * 50, n_boot=0)


@pytest.mark.parametrize("kwargs,param", [
    ({"n_boot": -1}, "n_boot"), ({"n_boot": 2.5}, "n_boot"), ({"fix_scale": 0.0}, "fix_scale"),
    ({"fix_scale": float("inf")}, "fix_scale"), ({"ci_level": 2.0}, "ci_level"), ({"ci_method": "foo"}, "ci_method"),
    ({"families": "pareto"}, "families"), ({"compare_to": "zz"}, "compare_to"),
])
def test_fit_options_are_checked_first_and_name_the_parameter(kwargs, param):
    calls = []
    with pytest.raises(OptionError) as exc:  # before any fitting: the progress never starts
        fit_timescales([1.0, 2.0, 3.0, 5.0], progress=lambda k: calls.append(k), **kwargs)
    assert exc.value.param == param and param in str(exc.value) and "--" not in str(exc.value)
    assert calls == []
