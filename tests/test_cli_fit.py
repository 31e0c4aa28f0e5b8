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
