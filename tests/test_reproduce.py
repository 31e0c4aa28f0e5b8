"""tsprobe reproduce: the smoke profile end to end (every figure a valid PDF, every table a CSV with
its columns, the report), caching, the analysis scripts, and the report's verdict logic."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from timescale_probe.errors import OptionError
from timescale_probe.paper import PAPER as PAPER_TABLE
from timescale_probe.pipeline import load_record
from timescale_probe.reproduce import (
    FIGURES,
    LABELS,
    PAPER,
    VERDICTS,
    ReproduceOptions,
    build_claims,
    find_claim,
    run_reproduce,
)

ROOT = Path(__file__).resolve().parents[1]

#: every figure of the smoke profile (PDF + PNG twin) and the tables behind them with key columns
FIGURE_STEMS = ["fig1_timescales", "fig2_dyck", "fig3_routing", "appendix_mts", "table1_perplexity", "mi_decay",
                "mi_decay_ptb", "seeds"]
TABLES = {
    "fig1_timescales.csv": ["source", "corpus", "rank", "T"],
    "fig1_curves.csv": ["source", "corpus", "series", "label"],
    "fig2_dyck.csv": ["arch", "kind", "bin", "mean", "std", "seeds"],
    "fig2_dyck_paired.csv": ["kind", "bin", "diff", "ci_lo", "ci_hi"],
    "fig3_routing.csv": ["group", "bin", "ratio", "ratio_lo", "ratio_hi"],
    "fig3_groups.csv": ["group", "T_min", "T_max"],
    "appendix_mts.csv": ["source", "layer", "unit", "T_assigned", "T_data", "rank"],
    "table1_perplexity.csv": ["bin", "ppl_baseline", "ppl_baseline_lo", "ppl_baseline_hi", "ppl_mts", "diff", "lo", "hi",
                              "rel_nll_pct", "rel_lo", "rel_hi", "direction"],
    "table1_seeds.csv": ["bin", "seeds", "diff", "lo", "hi", "t_lo", "t_hi", "rel_nll_pct", "rel_lo", "rel_hi"],
    "validation_gap.csv": ["seed", "epoch", "gap_pct"],
    "fig3_control_band.csv": ["bin", "n_controls", "control_lo", "control_hi"],
    "fig3_tests.csv": ["group", "bin", "ratio", "ratio_lo", "ratio_hi", "p", "p_holm", "p_bh"],
    "fig3_seeds.csv": ["group", "bin", "seeds", "ratio", "lo", "hi", "p", "p_holm", "p_bh"],
    "mi_decay.csv": ["corpus", "distance", "mi_bits", "excess_bits", "retained"],
    "mi_summary.csv": ["corpus", "verdict", "tail", "k_tail"],
    "claims.csv": ["id", "statement", "label", "verdict", "rule", "estimate", "lo", "hi", "level", "n", "sd",
                   "seeds_needed", "paper", "section", "note"],
    "tables/timescales_ptb-baseline.csv": ["layer", "unit", "T_bias", "T_data"],
    "tables/fits_ptb-baseline.csv": ["fit", "family", "shape", "scale", "shape_lo", "shape_hi"],
}


@pytest.fixture(scope="module")
def smoke(reproduce_smoke):
    return reproduce_smoke  # one smoke run per session (conftest.py)


def test_smoke_profile_writes_every_figure_and_table(smoke):
    out, r = smoke
    for stem in FIGURE_STEMS:
        pdf, png = out / f"{stem}.pdf", out / f"{stem}.png"
        assert pdf.is_file() and pdf.stat().st_size > 1000, stem
        assert pdf.read_bytes()[:5] == b"%PDF-", stem
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
    for name, cols in TABLES.items():
        df = pd.read_csv(out / name)
        assert len(df) > 0, name
        assert set(cols) <= set(df.columns), (name, set(cols) - set(df.columns))
    t1 = pd.read_csv(out / "table1_perplexity.csv")
    assert list(t1["bin"]) == [">10K", "1K-10K", "100-1K", "<100", "overall"]
    ok = t1["tokens"] > 0
    assert (t1.loc[ok, "ppl_baseline_lo"] <= t1.loc[ok, "ppl_baseline"]).all()
    assert (t1.loc[ok, "ppl_baseline"] <= t1.loc[ok, "ppl_baseline_hi"]).all()
    assert (t1["lo"].dropna() <= t1["hi"].dropna()).all()
    # the paper's Table 1, as printed there (docs/methods.md §4), not our own constant read back
    assert t1.set_index("bin")["paper_mts"].to_dict() == {">10K": 6.79, "1K-10K": 26.68, "100-1K": 167.97,
                                                          "<100": 1902.37, "overall": 57.58}
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["profile"] == "smoke"
    assert run["results"]["steps"]["table1_perplexity"]["status"] == "done"


def test_smoke_report_states_verdicts_honestly(smoke):
    out, _ = smoke
    md = (out / "report.md").read_text()
    assert "smoke profile" in md and "58.98" in md and "57.58" in md and "0.9382" in md
    assert "One interval level everywhere: **95%**" in md
    claims = pd.read_csv(out / "claims.csv")
    assert claims["id"].is_unique and set(claims["verdict"]) <= set(VERDICTS) and set(claims["label"]) <= set(LABELS)
    # one seed per arm: no effect of training holds or fails, and each says so and what power needs
    effects = claims[claims["id"].isin(["table1.overall_gain", "table1.rare_gain", "table1.rare_gain_largest",
                                        "fig3.rare_long_vs_short", "fig3.frequent_never_hurt", "fig2.mts_more_accurate"])]
    assert len(effects) == 6 and set(effects["verdict"]) <= {"inconclusive", "not run"}
    assert effects.loc[effects["verdict"] == "inconclusive", "note"].str.contains("seed").all()
    # the random-group controls of Fig. 3: >= 200, taking the quantile groups' sizes in turn
    ratios = pd.read_csv(out / "fig3_routing.csv")
    assert ratios.loc[ratios["kind"] == "control", "group"].nunique() == 200
    assert set(ratios["level"]) == {0.95}
    assert "Evidence: " in md and "Table 1 in full" in md and "Bin counting" in md and "# Beyond the paper" in md
    # at the smoke scale no absolute perplexity or accuracy is held against the paper's
    absolute = claims[claims["id"].str.startswith("table1.ppl_") | claims["id"].str.startswith("fig2.accuracy_")]
    assert set(absolute["verdict"]) <= {"not comparable", "not run"} and len(absolute) >= 8
    # rows true by construction are labelled so and kept out of the evidence count
    assert find_claim(build_claims({}, "smoke"), "mi.markov_ptb.exponential").label == "by construction"
    evidence = md.split("Not counted as evidence")[0]
    assert "by construction" not in evidence.split("Evidence: ")[1].split("\n")[0]
    # WikiText-2 training is skipped (no --corpus-dir) and says what is missing and where
    rec = load_record(out, "train_wt2_baseline")
    assert rec["status"] == "skipped" and "wikitext-2" in rec["reason"].lower() and "--corpus-dir" in rec["reason"]
    html = (out / "report.html").read_text()
    assert "<img src='fig1_timescales.png'" in html and "not comparable" in html


def test_per_seed_folders_join_this_runs_models_paired_by_seed(smoke, tmp_path):
    """Two more seeds per arm as per-seed folders (the shared format; synthetic here: this run's token
    NLLs shifted, MTS better by 0.05 nats per token; the own card with another seed, so one recipe)
    make 3 seeds per arm: the report combines them and the seed count no longer decides the verdict;
    a folder of another profile and one of another recipe are left out."""
    out, _ = smoke
    own_b = np.load(out / "tables" / "token_nll_ptb-baseline.npy")
    own_m = np.load(out / "tables" / "token_nll_ptb-mts.npy")
    ratios = pd.read_csv(out / "fig3_routing.csv", dtype={"group": str})
    metrics = pd.read_csv(out / "models" / "ptb-baseline.metrics.csv")
    cards = {a: json.loads((out / "models" / f"ptb-{a}.json").read_text()) for a in ("baseline", "mts")}
    rng = np.random.default_rng(5)
    seeds_dir = tmp_path / "seeds"
    for seed in (2, 3, 4, 5):
        for arch, nll, shift in (("baseline", own_b, 0.0), ("mts", own_b, 0.05)):
            d = seeds_dir / f"ptb-{arch}-seed{seed}"
            d.mkdir(parents=True)
            card = json.loads(json.dumps(cards[arch]))
            card["seed"] = seed
            card["train_config"]["seed"] = seed
            if seed == 4:
                card["profile"] = "small"  # trained at another profile: left out
            if seed == 5:
                card["train_config"]["epochs"] = 7  # another recipe: left out, naming the field
            card["seed_tables"] = {"ablation": {"controls": 200, "control_seed": seed}}
            (d / "card.json").write_text(json.dumps(card))
            np.save(d / "token_nll.npy", nll * (1 + 0.01 * rng.standard_normal(nll.size)) - shift)
            m = metrics.copy()
            m["valid_ppl"] = m["valid_ppl"] * (0.98 if arch == "mts" else 1.0)
            m.to_csv(d / "metrics.csv", index=False)
            if arch == "mts":
                r = ratios.merge(pd.read_csv(out / "fig3_groups.csv", dtype={"group": str})[["group", "T_min", "T_max"]],
                                 on="group", how="left")
                r["ratio"] = r["ratio"] * (1 + 0.001 * rng.standard_normal(len(r)))
                r.to_csv(d / "ablation.csv", index=False)
    assert own_m.shape == own_b.shape
    recs = run_reproduce(out, ReproduceOptions(profile="smoke", seeds_dir=seeds_dir), only=["seeds"])
    res = recs["seeds"]["results"]
    assert res["arms"]["ptb-baseline"] == [2, 3, 141] and res["arms"]["ptb-mts"] == [2, 3, 141]
    assert any("seed4" in x and "small profile" in x for x in res["left_out"])
    assert any("seed5" in x and "train_config.epochs" in x for x in res["left_out"])
    assert len(res["recipes"]["ptb-mts"]) == 2  # the arm's recipe and seed 5's
    t = pd.read_csv(out / "table1_seeds.csv").set_index("bin")
    assert (t["seeds"] == 3).all() and t.loc["overall", "t_lo"] < t.loc["overall", "t_hi"]
    per = pd.read_csv(out / "table1_per_seed.csv")
    assert sorted(per["seed"].unique()) == [2, 3, 141]
    fig3 = pd.read_csv(out / "fig3_seeds.csv")
    measured = fig3[fig3["ratio"].notna()]  # (a bin without test tokens has no ratio)
    assert len(measured) and (measured["seeds"] == 3).all() and {"p_holm", "p_bh"} <= set(fig3.columns)
    assert measured["T_max"].notna().all()  # the T range comes from the seed that has it
    assert res["fig3"]["seeds_controls"] == [2, 3, 141]  # 200 controls, each drawn with the model's seed
    gaps = pd.read_csv(out / "validation_gap.csv")
    assert gaps.loc[gaps["seed"] == 2, "gap_pct"].to_numpy() == pytest.approx(-2.0)
    claims = pd.read_csv(out / "claims.csv").set_index("id")
    overall = claims.loc["table1.overall_gain"]
    assert overall["n"] == 3 and "only" not in overall["note"] and overall["verdict"] in ("holds", "inconclusive", "fails")
    assert claims.loc["fig3.rare_long_vs_short", "n"] == 3
    md = (out / "report.md").read_text()
    assert "ptb-mts: 3 seed(s) finished: 2, 3, 141" in md and "left out" in md


def test_finished_steps_are_cached(smoke):
    out, _ = smoke
    events = []
    run_reproduce(out, ReproduceOptions(profile="smoke"), on_event=lambda s, st, m: events.append((s, st)))
    statuses = dict(events[i] for i in range(len(events)) if events[i][1] not in ("running", "progress"))
    heavy = ["train_ptb_baseline", "train_ptb_mts", "train_markov_baseline", "timescales_ptb", "table1_perplexity",
             "fig3_routing", "dyck", "mi_decay"]
    assert all(statuses[s] == "cached" for s in heavy), statuses
    assert statuses["report"] == "done" and statuses["fig1_timescales"] == "done"  # drawing steps are redone
    assert statuses["seeds"] == "done"


def test_cli_bad_profile_and_unknown_step_are_one_line_errors(cli, tmp_path):
    r = cli("reproduce", "--profile", "huge", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "smoke" in r.stderr
    r = cli("reproduce", "--profile", "smoke", "--only", "fig9", "--out", str(tmp_path / "y"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "fig9" in r.stderr


def test_cli_lists_steps(cli):
    """``--list`` covers every figure and table of the paper (docs/methods.md), and lists each step
    after the steps it needs (the order the pipeline can run them in)."""
    r = cli("reproduce", "--list")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for item in ("Fig. 1", "Fig. 2", "Fig. 3", "Table 1", "Appendix", "MI decay", "report.md"):
        assert item in text, item
    steps: dict[str, str] = {}
    for line in r.stdout.splitlines():
        cells = [c.strip() for c in line.split("\u2502")]
        if len(cells) != 3:
            continue
        if cells[0]:
            steps[cells[0]] = cells[2]
        elif steps:
            last = list(steps)[-1]
            steps[last] = f"{steps[last]} {cells[2]}".strip()
    assert len(steps) >= 10 and "train_ptb_mts" in steps and "fig3_routing" in steps
    seen: set[str] = set()
    for name, needs in steps.items():
        for need in filter(None, (n.strip() for n in needs.split(","))):
            assert need in seen, (name, need)
        seen.add(name)


def test_small_profile_without_checkpoints_skips_and_says_where(tmp_path):
    opts = ReproduceOptions(profile="small", checkpoints_dir=tmp_path / "none", dyck_results=tmp_path / "nodyck",
                            reference_dir=None)
    recs = run_reproduce(tmp_path / "out", opts, only=["train_ptb_mts", "dyck"])
    assert recs["train_ptb_mts"]["status"] == "skipped"
    assert "ptb-mts-small.pt" in recs["train_ptb_mts"]["reason"] and "tsprobe train" in recs["train_ptb_mts"]["reason"]
    assert recs["dyck"]["status"] == "skipped" and "nodyck" in recs["dyck"]["reason"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "not run" in md


def test_paper_profile_steps_train_at_the_papers_scale(tmp_path):
    from timescale_probe.reproduce import build_steps

    steps = {s.name: s for s in build_steps(ReproduceOptions(profile="paper", reference_dir=None))}
    assert steps["train_ptb_mts"].options["lm_profile"] == "paper"
    assert steps["fig3_routing"].options["ablation_groups"] == "chunks:50"  # 23 chunks of 50 units, as the paper
    assert steps["dyck"].options["dyck_profile"] == "paper" and len(steps["dyck"].options["dyck_seeds"]) == 20
    assert steps["table1_perplexity"].needs == ("train_ptb_baseline", "train_ptb_mts")
    with pytest.raises(OptionError, match="profile"):
        ReproduceOptions(profile="huge")


def test_analysis_scripts_import_without_side_effects(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in FIGURES:
        path = ROOT / "analyses" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"analysis_{name}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        assert callable(mod.main) and mod.FIGURE == name
    assert list(tmp_path.iterdir()) == []


def test_analysis_script_bad_option_exits_2(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "analyses" / "fig1_timescales.py"), "--profile", "smoke",
                        "--corpus-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "corpus-dir" in r.stderr


# ----------------------------------------------------------------------------------------------
# verdict logic
# ----------------------------------------------------------------------------------------------

def test_paper_numbers_live_in_one_table():
    assert PAPER is PAPER_TABLE or dict(PAPER) == dict(PAPER_TABLE)
    from timescale_probe.dyck import PAPER_ACCURACY

    assert PAPER_ACCURACY == {"baseline": PAPER_TABLE["dyck_baseline"], "mts": PAPER_TABLE["dyck_mts"]}
    with pytest.raises(TypeError):
        PAPER["ppl_mts"] = 1.0  # read-only


def test_table1_value_claims_small_vs_paper_profile_with_one_seed():
    rows = [{"bin": b, "ppl_baseline": 100.0, "ppl_baseline_lo": 90.0, "ppl_baseline_hi": 110.0, "ppl_mts": 98.0,
             "ppl_mts_lo": 88.0, "ppl_mts_hi": 108.0} for b in (">10K", "1K-10K", "100-1K", "<100")]
    rows.append(dict(rows[0], bin="overall", ppl_baseline=59.2, ppl_mts=57.9))
    recs = {"table1_perplexity": {"status": "done", "results": {"rows": rows}}}
    small = build_claims(recs, "small")
    assert find_claim(small, "table1.ppl_baseline.overall").verdict == "not comparable"
    paper = build_claims(recs, "paper")
    # at the paper's scale an absolute number is held against the paper's, but one seed cannot settle it
    c = find_claim(paper, "table1.ppl_baseline.overall")
    assert c.verdict == "inconclusive" and "within 3% of 58.98" in c.note and c.paper == 58.98
    assert "differs from 6.79" in find_claim(paper, "table1.ppl_mts.gt10k").note
    # a step that did not run: every claim of it says so with the reason
    none = [c for c in build_claims({"table1_perplexity": {"status": "skipped", "reason": "no checkpoint"}}, "small")
            if c.step == "table1_perplexity"]
    assert none and all(c.verdict == "not run" and "no checkpoint" in c.note for c in none)


def test_routing_claims_word_the_seeds_steps_decisions():
    from dataclasses import asdict

    from timescale_probe.reproduce.rules import null_rule

    null = np.random.default_rng(0).normal(0, 0.002, 5000)
    d = {"fig3.rare_long_vs_short": asdict(null_rule([0.02, 0.025, 0.018], null))}
    recs = {"seeds": {"status": "done", "results": {"decisions": d, "fig3": {
        "seeds": [2, 3, 141], "seeds_controls": [2, 3, 141], "left_out": [], "facts": {}, "band": {},
        "long": ["1", "2"], "short": ["22", "23"]}}}}
    c = find_claim(build_claims(recs, "small"), "fig3.rare_long_vs_short")
    assert c.verdict == "holds" and c.label == "reproduction" and c.n == 3 and "long-T groups 1, 2" in c.note
    # not computed (no seed with controls): not run, saying why
    c = find_claim(build_claims({}, "small"), "fig3.rare_vs_bins_long")
    assert c.verdict == "not run" and "seeds" in c.note


def test_paper_numbers_complete_for_what_the_report_compares():
    # every number a claim holds against the paper comes from paper.PAPER (one table)
    from timescale_probe.paper import FROM_ARRAYS, NOT_TRANSCRIBED, PRINTED

    ids = {c.id: c for c in build_claims({}, "small")}
    assert ids["table1.ppl_mts.lt100"].paper == PAPER_TABLE["ppl_mts_bins"]["<100"]
    assert ids["fig2.span_slope"].paper == PAPER_TABLE["dyck_span_slope"]
    # every number is either printed in the paper or measured from the authors' arrays, never both
    assert PRINTED | FROM_ARRAYS == set(PAPER_TABLE) and not PRINTED & FROM_ARRAYS
    assert not set(NOT_TRANSCRIBED) & set(PAPER_TABLE)
    # "code check" only for numbers the paper prints; rows on the authors' arrays are re-analyses or loaders
    code = [c for c in ids.values() if c.label == "code check"]
    assert [c.id for c in code] == ["fig2.span_slope"] and "dyck_span_slope" in PRINTED
    assert {c.label for i, c in ids.items() if i.startswith("fig1.published.")} == {"beyond the paper"}
    assert {c.label for i, c in ids.items() if i.startswith("fig3.published.")} == {"by construction"}


# ----------------------------------------------------------------------------------------------
# the published data through our code (needs ../shared/reference-results)
# ----------------------------------------------------------------------------------------------

def test_published_ablation_facts(reference_results):
    from timescale_probe.ablation import load_reference_ablation, reference_chunk_timescales, routing_facts

    facts = routing_facts(load_reference_ablation(reference_results / "unit_ablation"), reference_chunk_timescales())
    assert facts["<100"]["peak_position"] == 3
    assert round(facts["<100"]["peak_ratio"], 3) == 1.058
    assert facts["<100"]["peak_T_max"] == pytest.approx(94, abs=1)
    assert facts[">10K"]["max_ratio"] <= 1.0


def test_published_timescale_statistics_and_fits(reference_results):
    from timescale_probe.reproduce.steps import fit_summary, load_reference_timescales, timescale_summary

    df = load_reference_timescales(reference_results / "estimated_timescales", "PTB")
    s = timescale_summary(df["T"])
    assert s["units"] == 2700 and round(s["median"], 2) == 0.68 and round(s["max"], 1) == 88.8
    assert round(s["share_gt_10"], 3) == 0.041
    fit, fits = fit_summary(df["T"], n_boot=0, seed=0)
    assert round(fit["a"], 2) == 2.16 and round(fit["b"], 2) == 1.57 and round(fit["a_scale1"], 2) == 1.54
    # inverse gamma beats gamma and lognormal, but the best of all 8 families is Fréchet (issue 12)
    assert fit["invgamma_beats_gamma_lognorm"] and fit["best_family"] == "invweibull" and fit["families"] == 8
    free = fits[fits["fit"] == "free scale"].set_index("family")["aic"]
    assert fit["delta_aic_invgamma"] == pytest.approx(free["invgamma"] - free.min())
    assert set(fits["fit"]) == {"free scale", "scale fixed at 1"}


def test_chunk_bootstrap_interval_covers_the_perplexity():
    from timescale_probe.evaluation import ppl_intervals

    rng = np.random.default_rng(0)
    nll = rng.gamma(2.0, 2.0, size=5000)
    targets = rng.integers(0, 50, size=5000)
    bin_of = (np.arange(50) % 4).astype(np.int64)
    iv = ppl_intervals(nll, targets, bin_of, [">10K", "1K-10K", "100-1K", "<100"], n_resamples=500, seed=1)
    overall = math.exp(nll[:5000].mean())
    row = iv.set_index("bin").loc["overall"]
    assert row["ppl_lo"] < overall < row["ppl_hi"]
    iv2 = ppl_intervals(nll, targets, bin_of, [">10K", "1K-10K", "100-1K", "<100"], n_resamples=500, seed=1)
    pd.testing.assert_frame_equal(iv, iv2)  # seeded


def _toy_study(ctx, opts):
    """A registered study's step: rows of (claim, verdict, evidence) and a table it wrote."""
    path = ctx.path("toy_study.csv")
    pd.DataFrame({"k": [0.5, 1.0], "a_fit": [0.26, 0.49]}).to_csv(path, index=False)
    return {"rows": [{"claim": "learned shape tracks k/2", "verdict": "holds", "evidence": "a = 0.26, 0.49 at k = 0.5, 1.0"},
                     {"claim": "matching the shape beats single timescales", "verdict": "inconclusive",
                      "evidence": "interval [-0.1, 0.3]", "expected": "yes"}],
            "_files": ["toy_study.csv"]}


def test_a_registered_study_becomes_a_beyond_the_paper_section(tmp_path, monkeypatch):
    from timescale_probe.reproduce import steps as S

    monkeypatch.setattr(S, "STUDIES", [])
    S.register_study("toy", "toy theory study", "toy theory test", "tests.test_reproduce:_toy_study")
    S.register_study("toy", "toy theory study", "toy theory test", _toy_study)  # the same name replaces it
    assert len(S.STUDIES) == 1
    opts = ReproduceOptions(profile="smoke", reference_dir=None)
    names = [s.name for s in S.build_steps(opts)]
    assert names[-2:] == ["toy", "report"]
    recs = run_reproduce(tmp_path / "out", opts, only=["toy"])
    assert recs["toy"]["status"] == "done" and (tmp_path / "out" / "toy_study.csv").is_file()
    claims = pd.read_csv(tmp_path / "out" / "claims.csv")
    toy = claims[claims["step"] == "toy"]
    assert list(toy["verdict"]) == ["holds", "inconclusive"] and set(toy["label"]) == {"beyond the paper"}
    assert set(toy["section"]) == {"toy theory test"} and list(toy["id"]) == ["study.toy.1", "study.toy.2"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## toy theory test" in md and "learned shape tracks k/2" in md and "# Beyond the paper" in md


def test_input_fingerprints_follow_content_not_modification_times(tmp_path):
    """A step's cache key holds its inputs' fingerprints: a corpus or checkpoint copied again (a fresh
    ``../shared`` every session, a ``git checkout``) keeps the cache; a same-size edit whose mtime is
    put back, which a size+mtime stamp would miss, reruns the step."""
    import os

    from timescale_probe.reproduce.common import fingerprint

    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    f = d / "sub" / "train.txt"
    f.write_text("the cat sat\n")
    (d / "valid.txt").write_text("a dog ran\n")
    file0, dir0 = fingerprint(f), fingerprint(d)
    os.utime(f, ns=(1, 1))  # only the time changes
    assert fingerprint(f) == file0 and fingerprint(d) == dir0
    st = f.stat()
    f.write_text("the rat sat\n")  # same size, one letter
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert fingerprint(f)["size"] == file0["size"]
    assert fingerprint(f) != file0 and fingerprint(d) != dir0
    edited = fingerprint(d)
    f.rename(d / "train.txt")  # the same bytes under another name inside the folder
    assert fingerprint(d)["sha256"] != edited["sha256"]
    (d / ".steps").mkdir()
    before = fingerprint(d)
    (d / ".steps" / "x.json").write_text("{}")  # a pipeline's own records inside an input folder do not count
    assert fingerprint(d) == before
    assert fingerprint(tmp_path / "nothing") == {"path": str(tmp_path / "nothing"), "missing": True}
    assert fingerprint(None) == {"path": None}
