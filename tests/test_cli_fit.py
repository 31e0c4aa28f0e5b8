"""``tsprobe fit-distribution`` through the real entry point."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

FIGS = ("sorted_units", "log_density", "qq", "ccdf")


def test_fit_distribution_reference_fixed_scale(cli, reference_results, tmp_path):
    est = reference_results / "estimated_timescales"
    files = [est / f"WT2_timescale_layer_{k}_output.npy" for k in (1, 2, 3)]
    out = tmp_path / "out"
    r = cli("fit-distribution", *files, "--out", out, "--layers", "pooled", "--fix-scale", "1",
            "--families", "invgamma,lognorm,gamma", "--bootstrap", "50", "--reference-curve", "1.4,1",
            "--figures", "pooled")
    assert r.returncode == 0, r.stderr
    fits = pd.read_csv(out / "fits.csv")
    ig = fits.set_index("family").loc["invgamma"]
    assert ig["shape"] == pytest.approx(1.40, abs=0.005) and ig["scale"] == 1.0 and bool(ig["scale_fixed"])
    assert ig["n"] == 2700 and ig["n_boot"] == 50 and ig["shape_lo"] < ig["shape"] < ig["shape_hi"]
    comps = pd.read_csv(out / "comparisons.csv")
    assert (comps["family"] == "invgamma").all() and (comps["R"] > 0).all()
    for kind in FIGS:
        assert (out / f"{kind}_pooled.pdf").stat().st_size > 1000
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 0 and run["options"]["fix_scale"] == 1.0 and run["options"]["reference_curve"] == [1.4, 1.0]
    assert len(run["inputs"]) == 3 and all(len(h) == 64 for h in run["inputs"].values())
    assert "pooled" in r.stdout and "1.4" in r.stdout


def test_fit_distribution_layers_and_exclusions(cli, tmp_path):
    rng = np.random.default_rng(0)
    l1 = stats.invgamma.rvs(2.0, scale=1.5, size=300, random_state=rng)
    l2 = np.concatenate([stats.invgamma.rvs(1.0, size=200, random_state=rng), [0.0, np.inf]])
    np.save(tmp_path / "a.npy", l1)
    np.save(tmp_path / "b.npy", l2)
    out = tmp_path / "out"
    r = cli("fit-distribution", tmp_path / "a.npy", tmp_path / "b.npy", "--out", out, "--bootstrap", "20",
            "--families", "invgamma,lognorm,expon,gamma", "--seed", "3", "--layers", "2,pooled")
    assert r.returncode == 0, r.stderr
    fits = pd.read_csv(out / "fits.csv")
    assert list(fits["scope"].unique()) == ["layer 2", "pooled"]
    ig = fits[fits["family"] == "invgamma"].set_index("scope")
    assert ig.loc["layer 2", "n"] == 200 and ig.loc["layer 2", "n_excluded_zero"] == 1
    assert ig.loc["layer 2", "n_excluded_inf"] == 1 and ig.loc["pooled", "n"] == 500
    comps = pd.read_csv(out / "comparisons.csv")
    assert set(comps["test"]) == {"vuong", "wilks"}
    for kind in FIGS:
        for slug in ("layer2", "pooled"):
            assert (out / f"{kind}_{slug}.pdf").is_file()
    assert "excluded 2 of 502 units" in r.stdout


def test_fit_distribution_csv_column(cli, tmp_path):
    T = stats.lognorm.rvs(1.0, size=150, random_state=np.random.default_rng(1))
    pd.DataFrame({"layer": 1, "unit": range(150), "T_bias": T * 2, "T_data": T}).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "out"
    r = cli("fit-distribution", tmp_path / "t.csv", "--column", "T_bias", "--out", out, "--bootstrap", "0",
            "--families", "lognorm", "--figures", "none")
    assert r.returncode == 0, r.stderr
    row = pd.read_csv(out / "fits.csv").iloc[0]
    assert row["scope"] == "pooled" and row["scale"] == pytest.approx(2 * np.exp(np.log(T).mean()))
    assert json.loads((out / "run.json").read_text())["options"]["column"] == "T_bias"
    assert not list(out.glob("*.pdf"))


@pytest.mark.parametrize("args,match", [
    (["obj.npy"], "holds Python objects"),
    (["t.csv", "--column", "T_x"], "no column 'T_x'"),
    (["t.csv", "--families", "pareto"], "unknown distribution family"),
    (["t.csv", "--reference-curve", "1.4,x"], "--reference-curve"),
])
def test_fit_distribution_bad_input(cli, tmp_path, args, match):
    np.save(tmp_path / "obj.npy", np.array([None, 1.0], dtype=object), allow_pickle=True)
    pd.DataFrame({"T": [1.0, 2.0, 3.0]}).to_csv(tmp_path / "t.csv", index=False)
    r = cli("fit-distribution", *[str(tmp_path / a) if a.endswith((".npy", ".csv")) else a for a in args],
            "--out", tmp_path / "out")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tsprobe: error:") and match in lines[0]


@pytest.mark.parametrize("args,flag", [
    (["--bootstrap", "-1"], "--bootstrap"), (["--fix-scale", "0"], "--fix-scale"), (["--ci-level", "2"], "--ci-level"),
    (["--ci-bootstrap", "foo"], "--ci-bootstrap"), (["--figures", "some"], "--figures"),
    (["--convention", "x"], "--convention"), (["--compare-to", "pareto"], "--compare-to"),
])
def test_fit_distribution_bad_options_before_any_work(cli, tmp_path, args, flag):
    # the input does not exist: a check made after loading would report that instead
    out = tmp_path / "out"
    r = cli("fit-distribution", tmp_path / "missing.npy", "--out", out, *args)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tsprobe: error:") and flag in lines[0], r.stderr
    assert "missing.npy" not in lines[0] and "Traceback" not in r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_fit_distribution_failed_fit_leaves_nothing(cli, tmp_path):
    np.save(tmp_path / "two.npy", np.array([3.0, 4.0] * 30))
    out = tmp_path / "out"
    r = cli("fit-distribution", tmp_path / "two.npy", "--out", out, "--bootstrap", "10")
    assert r.returncode == 2 and "only 2 distinct values (3, 4)" in r.stderr
    assert len(r.stderr.splitlines()) == 1 and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.npy"]


def test_fit_distribution_table_names_families_and_skips_two_valued_layer(cli, tmp_path):
    rng = np.random.default_rng(4)
    np.save(tmp_path / "l1.npy", np.array([3.0] * 50 + [4.0] * 50))  # an MTS layer 1
    np.save(tmp_path / "l2.npy", stats.invweibull.rvs(2.0, scale=0.7, size=400, random_state=rng))
    out = tmp_path / "out"
    r = cli("fit-distribution", tmp_path / "l1.npy", tmp_path / "l2.npy", "--out", out, "--bootstrap", "30",
            "--families", "invgamma,frechet,gamma", "--figures", "all")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    # readable names in the terminal, scipy names in the CSV
    assert "Fréchet" in r.stdout and "invweibull" not in r.stdout
    fits = pd.read_csv(out / "fits.csv")
    assert set(fits["family"]) == {"invgamma", "invweibull", "gamma"} and set(fits["scope"]) == {"layer 2", "pooled"}
    assert {"ks_rejected", "ci_method"} <= set(fits.columns)
    # the table says whose KS p it shows and which bootstrap gave the intervals; it fits 80 columns
    flat = " ".join(r.stdout.split())
    assert "KS (p): Kolmogorov-Smirnov statistic of the inverse gamma fit" in flat
    assert "…" not in r.stdout and max(len(line) for line in r.stdout.splitlines()) <= 80
    assert "skipped layer 1: the 100 usable timescales take only 2 distinct values (3, 4)" in flat
    assert "includes layer 1" in flat
    run = json.loads((out / "run.json").read_text())
    verdict = run["results"]["scopes"]["layer 2"]["verdict"]
    assert verdict["best_family"] == "invweibull" and verdict["best_label"] == "Fréchet"
    ig = fits[(fits["scope"] == "layer 2")].set_index("family")
    assert verdict["delta_aic_invgamma"] == pytest.approx(ig.loc["invgamma", "aic"] - ig["aic"].min())
    assert verdict["ci_method"] == ig.loc["invgamma", "ci_method"]
    assert "best of 3 families: Fréchet" in flat
    # figures for the two fitted scopes only (nothing for the skipped layer), plus one two-panel Fig. 1
    assert sorted(p.name for p in out.glob("sorted_units*.pdf")) == [
        "sorted_units_all.pdf", "sorted_units_layer2.pdf", "sorted_units_pooled.pdf"]
