"""The theory study (timescale_probe.theory): verdict branches and their power, the headroom gate,
the learned-shape estimator, arms and profiles, the LM's state loss, early stopping in the trainer,
the smoke profile end to end, parallel runs, the run cache, and the first (tree) study relabelled."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import ROOT, one_thread_fixture  # noqa: F401 - the one_thread fixture

from timescale_probe import stats, theory
from timescale_probe.errors import OptionError
from timescale_probe.theory import (
    FACTOR_ARMS,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NO_POWER,
    TheoryOptions,
    hill_tail_index,
    learned_shape,
    mapping_outcome,
    paired_differences,
    slope_interval,
    theory_summary,
    theory_verdicts,
)
from timescale_probe.theory import verdicts as V

# ----------------------------------------------------------------------------------------------
# statistics, verdict branches, power
# ----------------------------------------------------------------------------------------------

def test_slope_interval_and_detectable_effect_by_hand():
    x = np.array([0.3, 0.3, 0.8, 0.8, 1.5, 1.5])
    y = 0.5 * x + np.array([0.01, -0.01, 0.02, -0.02, 0.01, -0.01])
    b, lo, hi, n = slope_interval(x, y)
    assert b == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-12) and lo < 0.5 < hi and n == 6
    # the detectable effect is where stats.t_power reaches 80%; more pairs, smaller effect
    d = V.detectable_effect(1.0, 10)
    assert stats.t_power(d, 1.0, 10) == pytest.approx(0.8, abs=1e-6)
    assert V.detectable_effect(1.0, 40) < d and np.isnan(V.detectable_effect(1.0, 1))


@pytest.mark.parametrize("lo, hi, claimed, other, expected", [
    (0.4, 0.7, 0.5, 1.0, HOLDS),           # covers k/2, excludes k and 0
    (0.8, 1.3, 0.5, 1.0, FAILS),           # excludes k/2
    (0.8, 1.3, 1.0, 0.5, HOLDS),           # the a = k claim on the same interval
    (0.45, 1.05, 0.5, 1.0, INCONCLUSIVE),  # covers both
    (-0.2, 0.7, 0.5, 1.0, INCONCLUSIVE),   # covers 0: no tracking shown
    (-0.7, 0.77, 1.0, 0.5, FAILS),         # the first study's interval, on its own (its gate makes it no power)
    (1.9, 5.5, 0.5, 1.0, FAILS),           # steeper than either mapping
    (np.nan, np.nan, 0.5, 1.0, INCONCLUSIVE),
])
def test_mapping_outcome_branches(lo, hi, claimed, other, expected):
    assert mapping_outcome(lo, hi, claimed, other) == expected


def _fake_results(ks=(0.3, 0.6, 1.2), seeds=tuple(range(1, 11)), *, gain=None, sd=0.002, shape=lambda k: k / 2,
                  stuck=(), room=0.07):
    """Per-run factor-study rows with known effects: ``gain[arch]`` = nats below short-only on
    slow-state loss (between-seed SD ``sd``), the baseline's tail index ``shape(k)``, and a Bayes
    headroom of ``room`` nats beyond 50 tokens."""
    gain = gain if gain is not None else {"log-uniform": 0.05, "ig-half": 0.04, "ig-k": 0.04, "baseline": 0.01}
    rng = np.random.default_rng(0)
    rows = []
    for k in ks:
        for s in seeds:
            base = 0.65 + 0.01 * rng.normal()
            for arch in FACTOR_ARMS:
                v = base - gain.get(arch, 0.0) + rng.normal(0, sd)
                rows.append({"source": "factor", "k": k, "arch": arch, "seed": s, "slow_state_loss": v, "loss": 2 + v / 10,
                             "auc_valid": 2.5 + v, "bayes_slow_state_loss": 0.53, "bayes_slow_state_loss_n50": 0.53 + room,
                             "bayes_loss": 2.0, "bayes_loss_n50": 2.01, "best_epoch": 5, "epochs_run": 8,
                             "stopped_early": (k, arch, s) not in stuck,
                             "a_tail": shape(k) * (1 + 0.02 * (s - 5)) if arch == "baseline" else np.nan,
                             "a_ig": shape(k) if arch == "baseline" else np.nan})
    return pd.DataFrame(rows)


def _v(table, claim_id):
    row = table[table["id"] == claim_id]
    assert len(row) == 1, claim_id
    return row.iloc[0]


def test_factor_verdicts_hold_fail_and_carry_their_power():
    res = _fake_results()
    v = theory_verdicts(res)
    assert list(v.columns) == V.VERDICT_COLUMNS and v["id"].is_unique
    row = _v(v, "theory.factor.long_vs_short")
    assert row["verdict"] == HOLDS
    pairs = paired_differences(res, "log-uniform", "short-only", "slow_state_loss")
    ti = stats.t_interval(pairs["diff"])
    assert (row["estimate"], row["low"], row["high"], row["n"]) == pytest.approx((ti.mean, ti.lo, ti.hi, 30))
    assert row["estimate"] == pytest.approx(0.05, abs=0.002) and row["sd"] == pytest.approx(ti.sd)
    assert row["detectable"] == pytest.approx(V.detectable_effect(ti.sd, 30))
    assert row["seeds_needed"] == stats.seeds_needed(ti.mean, ti.sd)
    assert "headroom" in row["evidence"] and f"{row['estimate']:.4f}" in row["evidence"]
    assert _v(v, "theory.factor.ig_half_vs_log_uniform")["verdict"] == FAILS   # 0.04 < 0.05: log-uniform better
    assert _v(v, "theory.factor.matched_shape")["verdict"] == INCONCLUSIVE     # equal gains
    assert _v(v, "theory.factor.shape_trend")["verdict"] == HOLDS
    assert _v(v, "theory.factor.shape_half")["verdict"] == HOLDS
    assert _v(v, "theory.factor.shape_k")["verdict"] == FAILS
    v2 = theory_verdicts(_fake_results(shape=lambda k: k))
    assert _v(v2, "theory.factor.shape_half")["verdict"] == FAILS and _v(v2, "theory.factor.shape_k")["verdict"] == HOLDS
    claims = theory.TheoryResult(options=TheoryOptions(profile="smoke"), tables={"theory_verdicts.csv": v}).claims()
    assert [c.id for c in claims] == list(v["id"]) and {c.label for c in claims} == {"beyond the paper"}


def test_no_power_when_the_headroom_is_below_the_detectable_effect():
    # a noisy study of a source whose long range is worth 0.001 nats: nothing can be shown
    v = theory_verdicts(_fake_results(gain={}, sd=0.02, room=0.001))
    row = _v(v, "theory.factor.long_vs_short")
    assert row["verdict"] == NO_POWER and row["detectable"] > 0.001 and "no power" in row["evidence"]
    # the optimisation-speed claim is not a long-memory claim: no gate; the learned-shape claims are gated
    assert _v(v, "theory.factor.ig_half_faster")["verdict"] == INCONCLUSIVE
    assert _v(v, "theory.factor.shape_trend")["verdict"] == HOLDS  # a holding trend stays
    v = theory_verdicts(_fake_results(gain={}, sd=0.02, room=0.001, shape=lambda k: k))
    assert _v(v, "theory.factor.shape_half")["verdict"] == NO_POWER and "headroom" in _v(v, "theory.factor.shape_half")["evidence"]
    # the same noise with ample headroom stays inconclusive
    assert _v(theory_verdicts(_fake_results(gain={}, sd=0.02, room=0.1)), "theory.factor.long_vs_short")["verdict"] \
        == INCONCLUSIVE


def test_underpowered_and_capped_runs_are_inconclusive():
    v = theory_verdicts(_fake_results(seeds=(1, 2)))
    assert set(v["verdict"]) == {INCONCLUSIVE} and v["evidence"].str.contains("fewer than 3").all()
    v = theory_verdicts(_fake_results(ks=(0.3, 0.6)))
    assert "fewer than 3 values of k" in _v(v, "theory.factor.shape_trend")["evidence"]
    v = theory_verdicts(_fake_results(stuck={(0.6, "short-only", 2)}))
    row = _v(v, "theory.factor.long_vs_short")
    assert row["verdict"] == INCONCLUSIVE and "epoch cap" in row["evidence"]
    assert _v(v, "theory.factor.ig_half_vs_baseline")["verdict"] == HOLDS


def test_summary_matches_the_paired_numbers():
    res = _fake_results()
    s = theory_summary(res)
    assert len(s) == 18 and list(s["arch"][:6]) == list(FACTOR_ARMS)
    r = s[(s["k"] == 0.6) & (s["arch"] == "ig-k")].iloc[0]
    sub = res[res["k"] == 0.6]
    b = sub[sub["arch"] == "baseline"].set_index("seed")["slow_state_loss"]
    m = sub[sub["arch"] == "ig-k"].set_index("seed")["slow_state_loss"]
    assert r["d_vs_baseline"] == pytest.approx((b - m).mean())
    assert s[(s["k"] == 1.2) & (s["arch"] == "baseline")].iloc[0]["a_tail"] == pytest.approx(0.6 * 1.01)  # mean jitter 1.01


# ----------------------------------------------------------------------------------------------
# learned shape, arms, options
# ----------------------------------------------------------------------------------------------

def test_hill_tail_index_recovers_known_tails():
    from scipy import stats as sps

    q = (np.arange(20000) + 0.5) / 20000
    a, m = hill_tail_index(q ** (-1 / 0.7), 0.25)  # P(T > t) = t^-0.7 exactly
    assert m == 5000 and a == pytest.approx(0.7, rel=0.01)
    assert hill_tail_index(sps.invgamma.isf(q, 0.6), 0.05)[0] == pytest.approx(0.6, rel=0.05)
    assert np.isnan(hill_tail_index([1.0, 2.0, 4.0], 0.25)[0])
    out = learned_shape(sps.invgamma.rvs(0.8, size=400, random_state=1), fraction=0.1, n_boot=300)
    assert out["a_tail_low"] < 0.8 < out["a_tail_high"] and out["n_units"] == 400


def test_arms_differ_only_in_the_imposed_timescales():
    from timescale_probe.theory.profiles import imposed_timescales
    from timescale_probe.timescales import InverseGammaQuantiles, parse_mts_spec

    prof = theory.resolve_profile("factor", "small")
    specs = prof.arm_specs(0.6)
    assert set(specs) == set(FACTOR_ARMS) and specs["baseline"] is None
    for spec in specs.values():
        if spec is not None:  # layer 1 imposed, layer 2 free in every arm
            ts = parse_mts_spec(spec).timescales(list(prof.layer_sizes))
            assert ts[0].shape == (prof.imposed,) and ts[1] is None
    np.testing.assert_allclose(imposed_timescales(specs["ig-half"], prof.layer_sizes, 1),
                               InverseGammaQuantiles(0.3).timescales(32), rtol=1e-5)
    short = imposed_timescales(specs["short-only"], prof.layer_sizes, 1)
    assert short.min() >= 0.5 and short.max() <= 4.0
    single = imposed_timescales(specs["single"], prof.layer_sizes, 1)
    assert np.ptp(single) == 0 and single[0] == pytest.approx(np.median(InverseGammaQuantiles(0.6).timescales(32)), rel=1e-5)
    assert prof.seeds == tuple(range(1, 11)) and len(prof.ks) == 3


def test_options_are_checked_once():
    for kwargs, param in (({"jobs": 0}, "jobs"), ({"seeds": "1,1"}, "seeds"), ({"ks": "0.01"}, "ks"),
                          ({"seeds": "a,b"}, "seeds"), ({"threads": 0}, "threads"), ({"device": "tpu"}, "device"),
                          ({"source": "trees"}, "source"), ({"profile": "huge"}, "profile")):
        with pytest.raises(OptionError) as exc:
            TheoryOptions(**kwargs)
        assert exc.value.param == param, kwargs
    p = TheoryOptions(profile="small", seeds="4,5,6", ks="1.2,0.4,0.7").resolved()
    assert p.seeds == (4, 5, 6) and p.ks == (0.4, 0.7, 1.2)
    assert TheoryOptions(source="tree").resolved().arms == theory.TREE_ARMS


def test_state_loss_of_the_lm_matches_token_nll(one_thread):
    """The study's own stream pass gives the per-token NLL that evaluation.token_nll gives, and a
    state loss equal to the token loss less the model's factor probability."""
    from timescale_probe.evaluation import token_nll
    from timescale_probe.models import LanguageModel, LMConfig
    from timescale_probe.theory.study import _stream_logprobs

    src = theory.FactorSource(0.6, n_factors=4, tau_max=300)
    x = np.stack([src.sample(121, (3, i))["tokens"] for i in range(2)])
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(vocab_size=9, emb_size=8, layer_sizes=(8, 8), dropout=0, dropouth=0, dropouti=0,
                                   dropoute=0, wdrop=0))
    tok, state = _stream_logprobs(model, x, 20, "cpu")
    nll, _ = token_nll(model, torch.from_numpy(x.reshape(-1)), batch_size=2, bptt=20)
    np.testing.assert_allclose(-tok.reshape(-1), nll, atol=1e-6)
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.from_numpy(x.T.copy()))[0].double(), -1).numpy()  # (N, S, V)
    t = 7
    j = x[:, t + 1] // 2
    pair = np.logaddexp(logp[t, [0, 1], 2 * j], logp[t, [0, 1], 2 * j + 1])
    np.testing.assert_allclose(state[:, t], logp[t, [0, 1], x[:, t + 1]] - pair, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# early stopping in the trainer
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("patience, min_epochs, stop_epoch", [(2, 0, 4), (2, 6, 6), (None, 0, 8)])
def test_trainer_stops_after_patience_epochs(tmp_path, monkeypatch, one_thread, patience, min_epochs, stop_epoch):
    import sys

    from timescale_probe import training
    from timescale_probe.theory.study import build_corpus

    script = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0])  # best at epoch 2, then worse
    loop = sys.modules[training.train_language_model.__module__]  # where the trainer's validation pass lives
    monkeypatch.setattr(loop, "_mean_nll", lambda *a, **k: next(script))
    corpus, _ = build_corpus(theory.resolve_profile("factor", "smoke"), 0.6, 1)
    res = training.train_language_model(
        corpus, tmp_path / "m.pt", profile="tiny",
        train_overrides={"epochs": 8, "patience": patience, "min_epochs": min_epochs, "optimizer": "adam"},
        final_eval=False)
    assert res.card["epochs"] == stop_epoch and res.card["best_epoch"] == 2
    assert res.card["stopped_early"] == (patience is not None)
    assert res.metrics["epoch"].tolist() == list(range(1, stop_epoch + 1))


# ----------------------------------------------------------------------------------------------
# the smoke profile end to end, parallel runs, the cache
# ----------------------------------------------------------------------------------------------

def test_smoke_profile_end_to_end(tmp_path, cli, one_thread):
    out = tmp_path / "theory"
    r = cli("theory-test", "--profile", "smoke", "--threads", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    for name in (*theory.TABLES, "theory.pdf", "theory.png", "claims.csv", "run.json"):
        assert (out / name).is_file(), name
    res = pd.read_csv(out / "theory_results.csv")
    prof = theory.resolve_profile("factor", "smoke")
    assert {"source", "k", "arch", "seed", "loss", "slow_loss", "bayes_loss", "slow_state_loss", "bayes_slow_state_loss",
            "bayes_slow_state_loss_n50", "excess_slow_state", "best_epoch", "stopped_early", "auc_valid",
            "a_tail"} <= set(res.columns)
    assert len(res) == len(prof.ks) * len(prof.seeds) * len(FACTOR_ARMS) and set(res["source"]) == {"factor"}
    # the exact bound: no arm beats it (on scored tokens, every run); Bayes numbers are per seed, not per arm
    assert (res["loss"] > res["bayes_loss"]).all() and (res["slow_state_loss"] > res["bayes_slow_state_loss"]).all()
    assert res.groupby(["k", "seed"])["bayes_loss"].nunique().eq(1).all()
    assert res.loc[res["arch"] == "baseline", "a_tail"].notna().all()
    cur = pd.read_csv(out / "theory_curves.csv")
    last = cur.groupby(["k", "arch", "seed"])["epoch"].max().rename("last").reset_index()
    assert (res.merge(last, on=["k", "arch", "seed"]).eval("last == epochs_run")).all()
    v = pd.read_csv(out / "theory_verdicts.csv")
    again = theory_verdicts(res, oracle=pd.read_csv(out / "theory_oracle.csv"))
    assert v["id"].tolist() == again["id"].tolist() and v["verdict"].tolist() == again["verdict"].tolist()
    np.testing.assert_allclose(v["estimate"], again["estimate"], rtol=1e-9, equal_nan=True)
    assert set(v["verdict"]) == {INCONCLUSIVE}  # two seeds
    claims = pd.read_csv(out / "claims.csv")
    assert claims["id"].tolist() == v["id"].tolist()
    oracle = pd.read_csv(out / "theory_oracle.csv")
    assert set(oracle["arch"]) == set(FACTOR_ARMS) - {"baseline"} and (oracle["oracle_excess_slow_state"] > 0).all()
    head = pd.read_csv(out / "theory_headroom.csv")
    assert (head["slow_state_gain_beyond_50"] > 0).all() and (head["gain_beyond_5"] > head["gain_beyond_50"]).all()
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["profile"] == "smoke" and set(run["results"]["verdicts"].values()) == {INCONCLUSIVE}


def test_cli_bad_option_is_one_line_and_writes_nothing(tmp_path, cli):
    out = tmp_path / "nothing"
    for args in (("--seeds", "1,1"), ("--ks", "a,b"), ("--source", "trees")):
        r = cli("theory-test", "--profile", "smoke", *args, "--out", out)
        assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert not out.exists()


def test_parallel_jobs_and_the_cache_give_the_same_numbers(tmp_path, one_thread, monkeypatch):
    opts = TheoryOptions(profile="smoke", seeds="1", ks="0.6", threads=1, cache=tmp_path / "cache")
    a = theory.run_theory(opts)
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == len(FACTOR_ARMS) + len(FACTOR_ARMS) - 1 and "factor-k0.6-baseline-seed1.json" in files
    b = theory.run_theory(opts.replace(cache=None, jobs=2))
    timing = ["train_seconds"]
    pd.testing.assert_frame_equal(a.results.drop(columns=timing), b.results.drop(columns=timing), check_exact=False,
                                  rtol=1e-12, atol=0)

    def no_training(job):
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr(theory.study, "run_job", no_training)
    c = theory.run_theory(opts)
    pd.testing.assert_frame_equal(a.results, c.results, check_dtype=False)
    pd.testing.assert_frame_equal(a.verdicts, c.verdicts, check_dtype=False)
    path = tmp_path / "cache" / "factor-k0.6-baseline-seed1.json"
    payload = json.loads(path.read_text())
    payload["profile"]["imposed"] = 99
    path.write_text(json.dumps(payload))
    with pytest.raises(OptionError, match="other settings"):
        theory.run_theory(opts)
    path.write_text("not json")
    with pytest.raises(OptionError):
        theory.run_theory(opts)


# ----------------------------------------------------------------------------------------------
# the first (tree) study, relabelled from its saved tables
# ----------------------------------------------------------------------------------------------

def test_tree_study_relabelled_reads_no_power(tmp_path):
    saved = ROOT / "figures" / "theory" / "tree"
    if not (saved / "theory_results.csv").is_file():
        pytest.skip("figures/theory/tree/ not present")
    r = theory.relabel_tree_study(saved, out=tmp_path / "tree")
    v = r.verdicts
    # the source's headroom beyond 50 tokens (<= 0.8%, 0.46% on average) is below what 9 pairs can detect
    head = r.table("headroom")
    assert (head["gain_beyond_50_pct"] < 0.8).all() and (head["runs_worse_than_bayes_n5"] == head["runs"]).all()
    memory = v[~v["id"].str.contains("faster")]
    room = head["gain_beyond_50_pct"].mean()
    assert set(memory["verdict"]) == {NO_POWER} and (memory.loc[memory["unit"] == "%", "detectable"] > room).all()
    assert FAILS not in set(memory["verdict"])
    assert (tmp_path / "tree" / "theory_headroom.csv").is_file()
    shipped = pd.read_csv(saved / "theory_verdicts.csv")
    assert shipped["verdict"].tolist() == v["verdict"].tolist()
