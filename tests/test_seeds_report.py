"""Several seeds in the reproduce report: reading per-seed folders (synthetic, in tmp_path), the
combination over seeds (Table 1, Fig. 3, multiple comparisons), the validation gap, and the
verdicts the report gives with 1 vs 3 seeds."""
from __future__ import annotations

import json
import math
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from timescale_probe.ablation import adjust_p_values, combine_seed_ratios, routing_facts
from timescale_probe.analysis import find_claim
from timescale_probe.errors import OptionError
from timescale_probe.evaluation import seed_paired_comparison
from timescale_probe.reproduce.report import build_claims
from timescale_probe.reproduce.seedruns import collect_seed_runs, mean_gap_by_epoch, validation_gaps
from timescale_probe.seeds import parse_folder_name, read_seed_folder

LABELS = [">10K", "1K-10K", "100-1K", "<100"]


def _metrics(gaps_pct, base=200.0):
    """Two metrics tables whose validation perplexities differ by ``gaps_pct`` per epoch."""
    ep = np.arange(1, len(gaps_pct) + 1)
    pa = base / ep
    pb = pa * (1 + np.asarray(gaps_pct) / 100)
    mk = lambda p: pd.DataFrame({"epoch": ep, "train_loss": 5.0, "train_ppl": 150.0, "valid_loss": np.log(p),
                                 "valid_ppl": p, "lr": 30.0, "asgd": False, "best": True, "seconds": 1.0})
    return mk(pa), mk(pb)


def _write_folder(root, corpus, arch, seed, *, nll=None, metrics=None, ablation=None, timescales=None,
                  profile="small"):
    d = root / f"{corpus}-{arch}-seed{seed}"
    d.mkdir(parents=True)
    (d / "card.json").write_text(json.dumps({"seed": seed, "profile": profile, "arch": arch, "corpus": corpus}))
    if nll is not None:
        np.save(d / "token_nll.npy", nll)
    if metrics is not None:
        metrics.to_csv(d / "metrics.csv", index=False)
    if ablation is not None:
        ablation.to_csv(d / "ablation.csv", index=False)
    if timescales is not None:
        timescales.to_csv(d / "timescales.csv", index=False)
    return d


# ----------------------------------------------------------------------------------------------
# reading folders
# ----------------------------------------------------------------------------------------------

def test_folder_names():
    assert parse_folder_name("ptb-mts-seed2") == ("ptb", "mts", 2)
    assert parse_folder_name("markov-ptb-baseline-seed141") == ("markov-ptb", "baseline", 141)
    assert parse_folder_name("ptb-single-seed3") == ("ptb", "single", 3)
    assert parse_folder_name("notes") is None and parse_folder_name("ptb-mts") is None


def test_reader_tolerates_missing_and_unreadable_files(tmp_path):
    d = _write_folder(tmp_path, "ptb", "baseline", 2, nll=np.ones(10))
    r = read_seed_folder(d)
    assert r.key == ("ptb", "baseline", 2) and r.card["seed"] == 2 and r.token_nll.shape == (10,)
    assert "metrics.csv" in r.missing and "token_nll.npy" not in r.missing
    assert "ablation.csv" not in r.missing  # a baseline is never ablated: nothing is missing
    assert "ablation.csv" in read_seed_folder(_write_folder(tmp_path, "ptb", "mts", 2, nll=np.ones(10))).missing
    (d / "card.json").write_text("{not json")
    np.save(d / "token_nll.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)  # never unpickled
    r = read_seed_folder(d)
    assert r.card is None and r.token_nll is None
    assert "card.json (unreadable: JSONDecodeError)" in r.missing
    assert "token_nll.npy (unreadable: ValueError)" in r.missing


def test_reader_names_a_folder_from_its_card_when_its_name_does_not(tmp_path):
    """The one reader also serves folders written under another name (``write_seed_tables(out=...)``):
    the model is named by its card; without a card that says, one clear error."""
    d = _write_folder(tmp_path, "ptb", "mts", 5, nll=np.ones(4)).rename(tmp_path / "on-device")
    r = read_seed_folder(d)
    assert r.key == ("ptb", "mts", 5) and r.name == "ptb-mts-seed5" and r.source == str(d)
    (d / "card.json").unlink()
    with pytest.raises(OptionError, match="neither its name"):
        read_seed_folder(d)
    with pytest.raises(OptionError, match="not found"):
        read_seed_folder(tmp_path / "nowhere")


def test_collect_keeps_one_run_per_seed_and_leaves_out_other_profiles_and_streams(tmp_path):
    root = tmp_path / "seeds"
    for s in (2, 3):
        _write_folder(root, "ptb", "baseline", s, nll=np.ones(50))
        _write_folder(root, "ptb", "mts", s, nll=np.ones(50))
    _write_folder(root, "ptb", "mts", 4, nll=np.ones(49))  # another test stream
    _write_folder(root, "ptb", "mts", 5, nll=np.ones(50), profile="tiny")  # another training profile
    (root / "README.txt").write_text("not a folder")
    own = [read_seed_folder(_write_folder(tmp_path / "own", "ptb", "mts", 2, nll=np.zeros(50)))]
    own[0].source = "this run"
    coll = collect_seed_runs(own, [root, tmp_path / "absent"], profile="small", test_lengths={"ptb": 50})
    assert coll.seeds("ptb", "baseline") == [2, 3] and coll.seeds("ptb", "mts") == [2, 3]
    assert next(r for r in coll.arm("ptb", "mts") if r.seed == 2).source == "this run"  # own run first
    assert len(coll.left_out) == 2
    assert any("49 values" in x for x in coll.left_out) and any("tiny profile" in x for x in coll.left_out)
    assert [(a.seed, b.seed) for a, b in coll.pairs("ptb", "baseline", "mts")] == [(2, 2), (3, 3)]


def test_validation_gap_per_epoch_is_read_from_the_metrics(tmp_path):
    root = tmp_path / "seeds"
    for s, gaps in ((1, [10.0, 4.0, 1.0]), (2, [12.0, 6.0, 3.0])):
        a, b = _metrics(gaps)
        _write_folder(root, "ptb", "baseline", s, metrics=a)
        _write_folder(root, "ptb", "mts", s, metrics=b)
    coll = collect_seed_runs([], [root])
    g = validation_gaps(coll.pairs("ptb", "baseline", "mts"))
    assert len(g) == 6
    assert g.loc[(g.seed == 2) & (g.epoch == 1), "gap_pct"].iloc[0] == pytest.approx(12.0)
    assert mean_gap_by_epoch(g) == pytest.approx([11.0, 5.0, 2.0])


# ----------------------------------------------------------------------------------------------
# Table 1 over seeds
# ----------------------------------------------------------------------------------------------

def test_seed_paired_comparison_point_values_by_hand():
    rng = np.random.default_rng(3)
    n = 4000
    targets = rng.integers(0, 40, n)
    bin_of = np.arange(40) % 4
    a = [rng.gamma(2.0, 2.0, n) for _ in range(3)]
    b = [x - 0.2 for x in a]  # the second arm is better by 0.2 nats on every token
    comb, per = seed_paired_comparison(a, b, targets, bin_of, LABELS, seeds=[2, 3, 141], n_resamples=300, seed=1)
    keep = (n // 100) * 100
    overall = comb.set_index("bin").loc["overall"]
    ma = [x[:keep].mean() for x in a]
    assert overall["ppl_baseline"] == pytest.approx(np.mean(np.exp(ma)))
    assert overall["diff"] == pytest.approx(np.mean([math.exp(m) - math.exp(m - 0.2) for m in ma]))
    assert overall["rel_nll_pct"] == pytest.approx(np.mean([100 * 0.2 / m for m in ma]))
    assert overall["lo"] > 0 and overall["direction"] == "mts better" and overall["seeds"] == 3
    # t interval across the three per-seed estimates, by hand
    d = per[per.bin == "overall"]["diff"].to_numpy()
    h = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert overall["t_lo"] == pytest.approx(d.mean() - h) and overall["t_hi"] == pytest.approx(d.mean() + h)
    assert sorted(per["seed"].unique()) == [2, 3, 141]
    # bin <100 by hand for seed 141
    sel = bin_of[targets[:keep]] == 3
    row = per[(per.seed == 141) & (per.bin == "<100")].iloc[0]
    assert row["ppl_mts"] == pytest.approx(math.exp(b[2][:keep][sel].mean()))


def test_seed_paired_comparison_without_an_effect_includes_zero():
    rng = np.random.default_rng(0)
    n = 3000
    targets = rng.integers(0, 20, n)
    bin_of = np.arange(20) % 4
    a = [rng.gamma(2.0, 2.0, n) for _ in range(3)]
    b = [rng.permutation(x) for x in a]  # same distribution, no effect
    comb, _ = seed_paired_comparison(a, b, targets, bin_of, LABELS, n_resamples=300, seed=0)
    o = comb.set_index("bin").loc["overall"]
    assert o["lo"] < 0 < o["hi"] and o["direction"] == "no clear difference"


# ----------------------------------------------------------------------------------------------
# Fig. 3 over seeds, multiple comparisons
# ----------------------------------------------------------------------------------------------

def _ablation(seed, peak_group=2, n_groups=6, controls=20, rng=None):
    rng = rng or np.random.default_rng(seed)
    rows = []
    for g in range(1, n_groups + 1):
        for b in LABELS + ["all"]:
            ratio = 1.0 + (0.05 if (g == peak_group and b == "<100") else 0.0) + rng.normal(0, 0.002)
            rows.append({"binning": "frequency", "group": str(g), "kind": "group", "bin": b, "ratio": ratio,
                         "ratio_lo": ratio - 0.01, "ratio_hi": ratio + 0.01, "p_not_above_1": 0.0 if ratio > 1.02 else 0.4,
                         "n_resamples": 1000, "level": 0.999, "T_min": 100.0 / g, "T_max": 120.0 / g})
    for c in range(controls):
        for b in LABELS + ["all"]:
            ratio = 1.0 + rng.normal(0, 0.003)
            rows.append({"binning": "frequency", "group": f"control {c}", "kind": "control", "bin": b, "ratio": ratio,
                         "ratio_lo": ratio - 0.01, "ratio_hi": ratio + 0.01, "p_not_above_1": 0.5,
                         "n_resamples": 1000, "level": 0.999})
    return pd.DataFrame(rows)


def test_combine_seed_ratios_geometric_mean_t_interval_and_band():
    tables = {s: _ablation(s) for s in (1, 2, 3)}
    res, band = combine_seed_ratios(tables)
    peak = res[(res.group == "2") & (res.bin == "<100")].iloc[0]
    lr = np.log([tables[s].query("group == '2' and bin == '<100'")["ratio"].iloc[0] for s in (1, 2, 3)])
    assert peak["ratio"] == pytest.approx(math.exp(lr.mean()))
    h = stats.t.ppf(0.975, 2) * lr.std(ddof=1) / math.sqrt(3)
    assert peak["lo"] == pytest.approx(math.exp(lr.mean() - h)) and peak["seeds"] == 3 and peak["position"] == 2
    assert peak["p"] == pytest.approx(stats.ttest_1samp(lr, 0, alternative="greater").pvalue)
    assert len(res) == 6 * 4  # quantile groups x bins ("all" and controls are not tested)
    ctl = pd.concat([t[(t.kind == "control") & (t.bin == "<100")] for t in tables.values()])["ratio"]
    b = band.set_index("bin").loc["<100"]
    assert b["n_controls"] == 60 and b["control_hi"] == pytest.approx(ctl.quantile(0.975))
    facts = routing_facts(res.assign(kind="group", ratio_lo=res["lo"], ratio_hi=res["hi"]))
    assert facts["<100"]["peak_position"] == 2


def test_seed_mean_band_is_the_null_of_a_k_seed_mean():
    """The issue's point: a 3-seed mean of controls is narrower than a single control (by about
    sqrt(3)); the band of k-seed means is what a k-seed group mean is held against."""
    from timescale_probe.ablation import seed_mean_band

    tables = {s: _ablation(s, controls=300) for s in (1, 2, 3)}
    _, single = combine_seed_ratios(tables)
    band = seed_mean_band(tables, n_draws=20000, seed=0).set_index("bin").loc["<100"]
    one = single.set_index("bin").loc["<100"]
    width_k = band["null_hi"] - band["null_lo"]
    width_1 = one["control_hi"] - one["control_lo"]
    assert band["n_seeds"] == 3 and band["n_controls"] == 300
    assert width_k == pytest.approx(width_1 / math.sqrt(3), rel=0.15)  # 300 controls per seed: ~8% noise


def test_combine_one_seed_keeps_its_bootstrap_interval_and_p():
    res, _ = combine_seed_ratios({7: _ablation(7)})
    peak = res[(res.group == "2") & (res.bin == "<100")].iloc[0]
    assert peak["seeds"] == 1 and peak["p"] == pytest.approx(1 / 1001) and "one seed" in peak["interval"]


def test_holm_and_bh_against_a_hand_implementation():
    p = np.array([0.001, 0.04, 0.03, 0.5, np.nan, 0.0125])
    adj = adjust_p_values(p)
    q = p[np.isfinite(p)]
    m = q.size
    order = np.argsort(q)
    holm = np.empty(m)
    running = 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * q[k]))
        holm[k] = running
    bh = np.empty(m)
    running = 1.0
    for i, k in reversed(list(enumerate(order))):
        running = min(running, q[k] * m / (i + 1))
        bh[k] = running
    assert np.allclose(adj["p_holm"].dropna().to_numpy(), holm)
    assert np.allclose(adj["p_bh"].dropna().to_numpy(), bh)
    assert math.isnan(adj["p_holm"].iloc[4]) and not adj["sig_holm"].iloc[4]


# ----------------------------------------------------------------------------------------------
# claims of the report with 1 vs 3 seeds (looked up by id)
# ----------------------------------------------------------------------------------------------

def _records(gains: dict[int, float], *, rare: float = 2.0, last_change: dict[int, float] | None = None):
    """Records of a finished seeds step whose per-seed overall relative gains are ``gains``."""
    from timescale_probe.reproduce.multiseed import table1_decisions
    from timescale_probe.reproduce.rules import budget_rule

    rows = [{"seed": s, "bin": b, "rel_nll_pct": (rare + 0.1 * (s % 3) if b == "<100" else g),
             "ppl_baseline": 100.0, "ppl_mts": 98.0} for s, g in gains.items() for b in LABELS + ["overall"]]
    per = pd.DataFrame(rows)
    budget = budget_rule(last_change or {})
    comb = [{"bin": b, "rel_lo": 0.1, "rel_hi": 0.7, "ppl_baseline_lo": 95.0, "ppl_baseline_hi": 105.0,
             "ppl_mts_lo": 93.0, "ppl_mts_hi": 103.0} for b in LABELS + ["overall"]]
    decisions = {k: asdict(v) for k, v in table1_decisions(per, budget).items()}
    return {"seeds": {"status": "done", "results": {
        "table1": {"seeds": list(gains), "rows": comb, "per_seed": rows},
        "arm_counts": {"ptb-baseline": len(gains), "ptb-mts": len(gains)},
        "gap": {"seeds": list(gains), "mean_by_epoch": [], "last_change": [], "budget": budget},
        "decisions": decisions}}}


def test_three_seeds_with_a_clear_gain_hold_and_one_seed_is_inconclusive():
    c = find_claim(build_claims(_records({2: 0.50, 3: 0.55, 141: 0.45}), "small"), "table1.overall_gain")
    assert c.verdict == "holds" and c.n == 3 and c.lo > 0 and c.label == "reproduction"
    assert c.seeds_needed <= 3 and c.more_seeds == 0  # d = 10: 80% power at 3 seeds (t_crit(1 df) = 12.7 at 2)
    c = find_claim(build_claims(_records({141: 0.5}), "small"), "table1.overall_gain")
    assert c.verdict == "inconclusive" and "only 1 seed(s)" in c.note and c.n == 1


def test_a_gain_on_the_other_side_fails_and_a_budget_too_small_blocks_the_verdict():
    c = find_claim(build_claims(_records({2: -0.50, 3: -0.55, 141: -0.45}), "small"), "table1.overall_gain")
    assert c.verdict == "fails" and c.hi < 0
    recs = _records({2: 0.50, 3: 0.55, 141: 0.45}, last_change={2: -2.4, 3: -2.6, 141: -2.5})
    c = find_claim(build_claims(recs, "small"), "table1.overall_gain")
    assert c.verdict == "inconclusive" and "budget visibly too small" in c.note


def test_mi_rows_are_beyond_the_paper_and_markov_is_by_construction():
    recs = {"mi_decay": {"status": "done", "results": {"corpora": {
        "PTB": {"tail": "power", "k_tail": 0.57, "k_tail_low": 0.51, "k_tail_high": 0.63, "max_retained_distance": 741},
        "Markov-PTB": {"tail": "exponential", "xi_exponential": 1.6, "max_retained_distance": 10},
        "KJV": {"tail": "insufficient"}}}}}
    claims = build_claims(recs, "small")
    ptb = find_claim(claims, "mi.ptb.power_law")
    assert ptb.label == "beyond the paper" and ptb.verdict == "holds" and ptb.estimate == pytest.approx(0.57)
    assert find_claim(claims, "mi.kjv.power_law").verdict == "inconclusive"
    mk = find_claim(claims, "mi.markov_ptb.exponential")
    assert mk.label == "by construction" and mk.verdict == "holds" and "AICc" in mk.rule


def test_routing_tests_of_one_run_count_raw_holm_and_bh():
    from timescale_probe.reproduce.steps import routing_table, routing_tests

    r = _ablation(11)  # p_not_above_1 = 0 for the peak (<100, group 2), 0.4 elsewhere; 1000 resamples
    tab = routing_table(r)
    assert len(tab) == 6 * 4 and set(tab["bin"]) == set(LABELS)
    peak = tab[(tab.group == "2") & (tab.bin == "<100")].iloc[0]
    assert peak["p"] == pytest.approx(1 / 1001) and peak["p_holm"] == pytest.approx(24 / 1001)
    other = tab[(tab.group == "1") & (tab.bin == "<100")].iloc[0]
    assert other["p"] == pytest.approx(401 / 1001)
    t = routing_tests(r)
    assert t["tests"] == 24 and t["significant_raw"] == 1 and t["significant_holm"] == 1 and t["significant_bh"] == 1
    assert t["bins"]["<100"]["peak_p_holm"] == pytest.approx(24 / 1001)


def test_seeds_figure_draws_the_tables_values():
    from timescale_probe.plots.reproduce import figure_seeds

    res, band = combine_seed_ratios({s: _ablation(s) for s in (1, 2, 3)})
    a, b = _metrics([10.0, 4.0, 1.0])
    gaps = pd.DataFrame({"seed": 1, "epoch": a["epoch"], "gap_pct": [10.0, 4.0, 1.0]})
    per = pd.DataFrame({"seed": [1, 2], "bin": ["overall", "overall"], "rel_nll_pct": [0.5, 0.7]})
    comb = pd.DataFrame({"bin": ["overall"], "rel_nll_pct": [0.6], "rel_lo": [0.4], "rel_hi": [0.8]})
    fig = figure_seeds(gaps, res, band, per, comb)
    ax_gap, ax_t1, ax_f3 = fig.axes[:3]
    assert any(np.allclose(line.get_ydata(), [10.0, 4.0, 1.0]) for line in ax_gap.lines)
    rare = res[res.bin == "<100"].sort_values("position")["ratio"].to_numpy()
    assert any(len(line.get_ydata()) == len(rare) and np.allclose(line.get_ydata(), rare) for line in ax_f3.lines)
    strip = ax_t1.collections[0].get_offsets()[:, 1]  # the per-seed dots (stripplot)
    assert sorted(np.round(strip, 6).tolist()) == [0.5, 0.7]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_report_says_which_planned_seeds_finished_and_how_the_sweep_resumes():
    from timescale_probe.reproduce.config import SETTINGS
    from timescale_probe.reproduce.report_extra import planned_lines

    planned = SETTINGS["small"]["planned_seeds"]
    assert len(planned["ptb"]) >= 7 and 141 in planned["ptb"] and len(planned["markov-ptb"]) >= 3
    lines = planned_lines({"ptb-baseline": ["141", "2", "3", "4"], "ptb-mts": ["141", "2", "3"],
                           "markov-ptb-baseline": ["141"]}, planned)
    n = len(planned["ptb"])
    assert f"ptb-baseline: 4 of {n} finished" in lines[0] and f"ptb-mts: 3 of {n} finished" in lines[0]
    assert f"--seeds {','.join(str(x) for x in planned['ptb'] if x not in (141, 2, 3))} " in lines[1]
    assert "seeds ingest" in lines[1]
    assert "markov-ptb-baseline: 1 of 3 finished" in lines[2] and "--seeds 2,3 " in lines[3]
    # all finished: counts only, nothing left to resume
    done = {"ptb-baseline": planned["ptb"], "ptb-mts": planned["ptb"], "markov-ptb-baseline": planned["markov-ptb"]}
    assert len(planned_lines(done, planned)) == 2 and planned_lines(done, {}) == []
