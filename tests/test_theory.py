"""The theory study (timescale_probe.theory): verdict branches, the learned-shape estimator, the
source parameters, early stopping in the trainer, and the smoke profile end to end."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import one_thread_fixture  # noqa: F401 - the one_thread fixture

from timescale_probe import theory
from timescale_probe.errors import OptionError
from timescale_probe.theory import (
    ARMS,
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    arm_specs,
    hill_tail_index,
    lam_for_k,
    learned_shape,
    mapping_verdict,
    paired_differences,
    paired_verdict,
    slope_interval,
    t_interval,
    theory_summary,
    theory_verdicts,
    trend_verdict,
)

# ----------------------------------------------------------------------------------------------
# pure statistics and verdict branches
# ----------------------------------------------------------------------------------------------

def test_t_interval_and_slope_by_hand():
    m, lo, hi, n = t_interval([1.0, 2.0, 3.0, np.nan])
    # mean 2, sd 1, t(0.975, 2) = 4.302653 -> half width 4.302653 / sqrt(3)
    assert (m, n) == (2.0, 3)
    assert hi - m == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6) and m - lo == pytest.approx(hi - m)
    assert np.isnan(t_interval([5.0])[1])
    x = np.array([0.3, 0.3, 0.8, 0.8, 1.5, 1.5])
    y = 0.5 * x + np.array([0.01, -0.01, 0.02, -0.02, 0.01, -0.01])
    b, lo, hi, n = slope_interval(x, y)
    assert b == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-12) and lo < 0.5 < hi and n == 6


@pytest.mark.parametrize("diffs, power, budget, expected", [
    ([1.0, 1.2, 0.9, 1.1], None, None, HOLDS),
    ([-1.0, -1.2, -0.9, -1.1], None, None, DOES_NOT_HOLD),
    ([1.0, -1.0, 0.5, -0.4], None, None, INCONCLUSIVE),
    ([1.0, 1.2, 0.9, 1.1], "fewer than 3 seeds", None, INCONCLUSIVE),
    ([1.0, 1.2, 0.9, 1.1], None, "2 runs hit the epoch cap", INCONCLUSIVE),
    ([1.0], None, None, INCONCLUSIVE),
])
def test_paired_verdict_branches(diffs, power, budget, expected):
    assert paired_verdict(diffs, power_issue=power, budget_issue=budget)[0] == expected


@pytest.mark.parametrize("lo, hi, power, expected", [
    (0.1, 0.9, None, HOLDS), (-0.9, -0.1, None, DOES_NOT_HOLD), (-0.2, 0.4, None, INCONCLUSIVE),
    (0.1, 0.9, "fewer than 3 values of k", INCONCLUSIVE), (np.nan, np.nan, None, INCONCLUSIVE),
])
def test_trend_verdict_branches(lo, hi, power, expected):
    assert trend_verdict(lo, hi, power_issue=power) == expected


@pytest.mark.parametrize("lo, hi, claimed, other, power, expected", [
    (0.4, 0.7, 0.5, 1.0, None, HOLDS),           # covers k/2, excludes k
    (0.8, 1.3, 0.5, 1.0, None, DOES_NOT_HOLD),   # excludes k/2
    (0.8, 1.3, 1.0, 0.5, None, HOLDS),           # the a = k claim on the same interval
    (0.3, 1.2, 0.5, 1.0, None, INCONCLUSIVE),    # covers both
    (-0.2, 0.7, 0.5, 1.0, None, INCONCLUSIVE),   # covers 0: no tracking shown
    (0.4, 0.7, 0.5, 1.0, "fewer than 3 seeds", INCONCLUSIVE),
])
def test_mapping_verdict_branches(lo, hi, claimed, other, power, expected):
    assert mapping_verdict(lo, hi, claimed, other, power_issue=power) == expected


def _fake_results(ks=(0.3, 0.8, 1.5), seeds=(1, 2, 3), *, gain=None, shape=lambda k: k / 2, stuck=()):
    """Per-run results with known effects: ``gain[arch]`` = relative test-loss gain over the
    baseline (fraction), the baseline's tail index ``shape(k)`` (+-2% by seed)."""
    gain = gain or {"mts-half": 0.02, "mts-k": 0.01, "single": -0.01}
    rng = np.random.default_rng(0)
    rows = []
    for k in ks:
        for s in seeds:
            base = 1.0 + 0.1 * s + 0.05 * k
            jitter = 1 + 0.02 * (s - 2)
            for arch in ARMS:
                g = gain.get(arch, 0.0) + rng.normal(0, 0.001)
                loss = base * (1 - g) if arch != "baseline" else base
                rows.append({"k": k, "arch": arch, "seed": s, "test_loss": loss, "best_valid_loss": loss,
                             "auc_valid": loss * 1.1, "best_epoch": 5, "epochs_run": 8,
                             "stopped_early": (k, arch, s) not in stuck, "epochs_to_baseline_best": 5.0,
                             "a_tail": shape(k) * jitter if arch == "baseline" else np.nan,
                             "a_ig": shape(k) if arch == "baseline" else np.nan})
    return pd.DataFrame(rows)


def _verdict(v, start):
    row = v[v["claim"] == start]
    if row.empty:
        row = v[v["claim"].str.startswith(start)]
    assert len(row) == 1, start
    return row.iloc[0]


def test_theory_verdicts_on_known_effects():
    res = _fake_results()
    v = theory_verdicts(res)
    assert list(v.columns[:3]) == ["claim", "verdict", "evidence"]
    assert _verdict(v, "learned layer-2 shape increases")["verdict"] == HOLDS
    assert _verdict(v, "learned shape follows a = k/2")["verdict"] == HOLDS
    assert _verdict(v, "learned shape follows a = k")["verdict"] == DOES_NOT_HOLD
    assert _verdict(v, "MTS a=k/2 beats the baseline at convergence")["verdict"] == HOLDS
    assert _verdict(v, "single-T control beats the baseline at convergence")["verdict"] == DOES_NOT_HOLD
    assert _verdict(v, "matched shape a=k/2 beats a=k")["verdict"] == HOLDS
    row = _verdict(v, "MTS a=k/2 beats the baseline at convergence")
    # the estimate is the paired mean relative difference, pooled over k and seed
    pairs = paired_differences(res, "mts-half", "baseline")
    assert row["estimate"] == pytest.approx(pairs["diff_pct"].mean()) and row["n"] == 9
    assert row["estimate"] == pytest.approx(2.0, abs=0.2)
    # the learned shape follows a = k instead
    v2 = theory_verdicts(_fake_results(shape=lambda k: k))
    assert _verdict(v2, "learned shape follows a = k/2")["verdict"] == DOES_NOT_HOLD
    assert _verdict(v2, "learned shape follows a = k")["verdict"] == HOLDS
    # flat shape: no trend
    v3 = theory_verdicts(_fake_results(shape=lambda k: 0.0 * k + 1.0))
    assert _verdict(v3, "learned layer-2 shape increases")["verdict"] == INCONCLUSIVE


def test_theory_verdicts_underpowered_and_capped_runs_are_inconclusive():
    v = theory_verdicts(_fake_results(seeds=(1, 2)))
    assert set(v["verdict"]) == {INCONCLUSIVE}
    assert v["evidence"].str.contains("fewer than 3 seeds").all()
    v = theory_verdicts(_fake_results(ks=(0.3, 0.8)))
    assert _verdict(v, "learned layer-2 shape increases")["verdict"] == INCONCLUSIVE
    assert "fewer than 3 values of k" in _verdict(v, "learned layer-2 shape increases")["evidence"]
    # one run that never stopped early: convergence claims with that arm are inconclusive, speed claims are not
    v = theory_verdicts(_fake_results(stuck={(0.8, "mts-half", 2)}))
    conv = _verdict(v, "MTS a=k/2 beats the baseline at convergence")
    assert conv["verdict"] == INCONCLUSIVE and "epoch cap" in conv["evidence"]
    assert _verdict(v, "MTS a=k beats the baseline at convergence")["verdict"] == HOLDS
    assert _verdict(v, "MTS a=k/2 learns faster")["verdict"] == HOLDS


def test_summary_matches_the_paired_numbers():
    res = _fake_results()
    s = theory_summary(res)
    assert len(s) == 12 and list(s["arch"][:4]) == list(ARMS)
    r = s[(s["k"] == 0.8) & (s["arch"] == "mts-k")].iloc[0]
    sub = res[res["k"] == 0.8]
    b = sub[sub["arch"] == "baseline"].set_index("seed")["test_loss"]
    m = sub[sub["arch"] == "mts-k"].set_index("seed")["test_loss"]
    assert r["d_test_pct"] == pytest.approx((100 * (b - m) / b).mean())
    base = s[(s["k"] == 1.5) & (s["arch"] == "baseline")].iloc[0]
    assert base["a_tail"] == pytest.approx(0.75)


# ----------------------------------------------------------------------------------------------
# learned shape, sources, arms
# ----------------------------------------------------------------------------------------------

def test_hill_tail_index_recovers_known_tails():
    from scipy import stats

    n = 20000
    q = (np.arange(n) + 0.5) / n
    pareto = q ** (-1 / 0.7)  # P(T > t) = t^-0.7 exactly
    a, m = hill_tail_index(pareto, 0.25)
    assert m == 5000 and a == pytest.approx(0.7, rel=0.01)
    ig = stats.invgamma.isf(q, 0.6, scale=1.0)  # tail index of InvGamma(a) is a
    assert hill_tail_index(ig, 0.05)[0] == pytest.approx(0.6, rel=0.05)
    a_small, m_small = hill_tail_index([1.0, 2.0, 4.0], 0.25)
    assert np.isnan(a_small) and m_small == 5
    out = learned_shape(stats.invgamma.rvs(0.8, size=400, random_state=1), fraction=0.1, n_boot=300)
    assert out["a_tail_low"] < 0.8 < out["a_tail_high"] and out["n_units"] == 400
    assert out["a_ig"] == pytest.approx(stats.invgamma.fit(stats.invgamma.rvs(0.8, size=400, random_state=1),
                                                            floc=0)[0], rel=1e-4)


def test_source_parameters_and_arms():
    from timescale_probe.mutual_info import tree_exponent
    from timescale_probe.timescales import InverseGammaQuantiles, parse_mts_spec

    for k in (0.3, 0.8, 1.5):
        assert tree_exponent(lam_for_k(k), 2) == pytest.approx(k, rel=1e-12)
    specs = arm_specs(0.6, 64)
    assert specs["baseline"] is None
    single = parse_mts_spec(specs["single"]).timescales([64, 64, 32])[1]
    median = np.median(InverseGammaQuantiles(0.6).timescales(64))
    assert single == pytest.approx(np.full(64, median), rel=1e-5)
    np.testing.assert_allclose(parse_mts_spec(specs["mts-half"]).timescales([64, 64])[1],
                               InverseGammaQuantiles(0.3).timescales(64), rtol=1e-5)
    assert parse_mts_spec(specs["mts-k"]).layers[0].values == (3.0, 4.0)
    prof = theory.PROFILES["smoke"]
    c1, c2 = theory.source_corpus(0.8, 1, prof), theory.source_corpus(0.8, 1, prof)
    assert torch.equal(c1.tokens("train"), c2.tokens("train"))
    assert c1.vocab_size == prof.n_symbols + 1
    assert c1.tokens("train").numel() == prof.train_trees * (2 ** prof.depth + 1)
    assert not torch.equal(c1.tokens("train")[:500], theory.source_corpus(0.8, 2, prof).tokens("train")[:500])


def test_check_options_rejects_bad_values():
    for kwargs, param in (({"jobs": 0}, "jobs"), ({"seeds": [1, 1]}, "seeds"), ({"ks": [0.01]}, "ks"),
                          ({"threads": 0}, "threads"), ({"device": "tpu"}, "device")):
        with pytest.raises(OptionError) as exc:
            theory.check_options("smoke", **kwargs)
        assert exc.value.param == param
    with pytest.raises(OptionError):
        theory.check_options("huge")
    p = theory.check_options("small", seeds=[4, 5, 6], ks=[1.2, 0.4, 0.7])
    assert p.seeds == (4, 5, 6) and p.ks == (0.4, 0.7, 1.2)


# ----------------------------------------------------------------------------------------------
# early stopping in the trainer
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("patience, min_epochs, stop_epoch", [(2, 0, 4), (2, 6, 6), (None, 0, 8)])
def test_trainer_stops_after_patience_epochs(tmp_path, monkeypatch, one_thread, patience, min_epochs, stop_epoch):
    from timescale_probe import training

    script = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0])  # best at epoch 2, then worse
    monkeypatch.setattr(training, "_mean_nll", lambda *a, **k: next(script))
    corpus = theory.source_corpus(0.8, 1, theory.PROFILES["smoke"])
    res = training.train_language_model(
        corpus, tmp_path / "m.pt", profile="tiny",
        train_overrides={"epochs": 8, "patience": patience, "min_epochs": min_epochs, "optimizer": "adam"},
        final_eval=False)
    assert res.card["epochs"] == stop_epoch and res.card["best_epoch"] == 2
    assert res.card["stopped_early"] == (patience is not None)
    assert res.metrics["epoch"].tolist() == list(range(1, stop_epoch + 1))
    with pytest.raises(OptionError):
        training.TrainConfig(patience=0)


# ----------------------------------------------------------------------------------------------
# the smoke profile end to end (CLI)
# ----------------------------------------------------------------------------------------------

def test_smoke_profile_end_to_end(tmp_path, cli, one_thread):
    out = tmp_path / "theory"
    r = cli("theory-test", "--profile", "smoke", "--threads", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    for name in theory.OUTPUT_FILES:
        assert (out / name).is_file(), name
    res = pd.read_csv(out / "theory_results.csv")
    prof = theory.PROFILES["smoke"]
    assert {"k", "arch", "seed", "a_imposed", "k_measured", "k_measured_low", "k_measured_high", "best_epoch",
            "best_valid_loss", "test_loss", "auc_valid", "epochs_to_baseline_best", "stopped_early", "a_tail",
            "a_tail_low", "a_tail_high", "a_ig"} <= set(res.columns)
    assert len(res) == len(prof.ks) * len(prof.seeds) * len(ARMS)
    assert set(res["arch"]) == set(ARMS) and sorted(res["k"].unique()) == list(prof.ks)
    assert res.loc[res["arch"] == "mts-half", "a_imposed"].tolist() == pytest.approx(
        [k / 2 for k in res.loc[res["arch"] == "mts-half", "k"]])
    assert res.loc[res["arch"] == "baseline", "a_tail"].notna().all()
    assert res.loc[res["arch"] != "baseline", "a_tail"].isna().all()
    # curves agree with the per-run table
    cur = pd.read_csv(out / "theory_curves.csv")
    runs = cur.groupby(["k", "arch", "seed"])["epoch"].max().rename("last").reset_index()
    j = res.merge(runs, on=["k", "arch", "seed"])
    assert (j["last"] == j["epochs_run"]).all() and len(j) == len(res)
    best = cur.loc[cur.groupby(["k", "arch", "seed"])["valid_loss"].idxmin()].merge(res, on=["k", "arch", "seed"])
    assert (best["epoch"] == best["best_epoch"]).all()
    # verdicts: recomputed from the CSV, and inconclusive with two seeds
    v = pd.read_csv(out / "theory_verdicts.csv")
    assert list(v.columns[:3]) == ["claim", "verdict", "evidence"]
    again = theory_verdicts(res)
    assert v["claim"].tolist() == again["claim"].tolist() and v["verdict"].tolist() == again["verdict"].tolist()
    np.testing.assert_allclose(v["estimate"], again["estimate"], rtol=1e-9, equal_nan=True)
    assert set(v["verdict"]) == {INCONCLUSIVE}
    row = v[v["claim"].str.startswith("MTS a=k beats the baseline")].iloc[0]
    pairs = paired_differences(res, "mts-k", "baseline")
    assert row["estimate"] == pytest.approx(pairs["diff_pct"].mean(), rel=1e-9)
    assert f"{row['estimate']:.2f}%" in row["evidence"]
    summ = pd.read_csv(out / "theory_summary.csv")
    assert len(summ) == len(prof.ks) * len(ARMS) and (summ["seeds"] == len(prof.seeds)).all()
    src = pd.read_csv(out / "theory_sources.csv")
    assert list(src["k"]) == list(prof.ks) and np.isfinite(src["k_measured"]).all()
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["profile"] == "smoke" and set(run["results"]["verdicts"].values()) == {INCONCLUSIVE}
    assert (out / "theory.png").read_bytes()[:4] == b"\x89PNG" and (out / "theory.pdf").read_bytes()[:4] == b"%PDF"


def test_cli_bad_option_is_one_line_and_writes_nothing(tmp_path, cli):
    out = tmp_path / "nothing"
    r = cli("theory-test", "--profile", "smoke", "--seeds", "1,1", "--out", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "seeds" in r.stderr
    assert not out.exists()
    r = cli("theory-test", "--profile", "smoke", "--ks", "a,b", "--out", out)
    assert r.returncode == 2 and not out.exists()


def test_parallel_jobs_give_the_same_numbers(one_thread):
    a = theory.run_theory_study("smoke", None, jobs=1, seeds=[1], ks=[0.4], threads=1)
    b = theory.run_theory_study("smoke", None, jobs=2, seeds=[1], ks=[0.4], threads=1)
    assert a.results["arch"].tolist() == b.results["arch"].tolist() == list(ARMS)
    np.testing.assert_array_equal(a.results["test_loss"], b.results["test_loss"])
    pd.testing.assert_frame_equal(a.curves, b.curves)


def test_cache_resumes_with_the_same_numbers(tmp_path, one_thread, monkeypatch):
    cache = tmp_path / "cache"
    a = theory.run_theory_study("smoke", None, seeds=[1], ks=[0.4], threads=1, cache_dir=cache)
    files = sorted(p.name for p in cache.iterdir())
    assert files == sorted(f"k0.4-{arch}-seed1.json" for arch in ARMS)

    def no_training(job):
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr(theory, "run_arm", no_training)
    b = theory.run_theory_study("smoke", None, seeds=[1], ks=[0.4], threads=1, cache_dir=cache)
    pd.testing.assert_frame_equal(a.results, b.results, check_dtype=False)
    pd.testing.assert_frame_equal(a.curves, b.curves, check_dtype=False)
    pd.testing.assert_frame_equal(a.verdicts, b.verdicts)
    # a cache made with other settings is refused, in one line
    path = cache / "k0.4-baseline-seed1.json"
    payload = json.loads(path.read_text())
    payload["profile"]["hidden"] = 99
    path.write_text(json.dumps(payload))
    with pytest.raises(OptionError, match="other settings"):
        theory.run_theory_study("smoke", None, seeds=[1], ks=[0.4], cache_dir=cache)
    path.write_text("not json")
    with pytest.raises(OptionError):
        theory.run_theory_study("smoke", None, seeds=[1], ks=[0.4], cache_dir=cache)
