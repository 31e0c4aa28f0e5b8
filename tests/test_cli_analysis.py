"""``tsprobe estimate-timescales`` and ``tsprobe ablate`` through the real entry point."""
import json

import numpy as np
import pandas as pd
import pytest
from helpers import write_tiny_lm


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    # tiny models on a busy shared machine: torch's thread pool only adds contention
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny corpus directory and a tiny MTS checkpoint on its vocabulary."""
    return write_tiny_lm(tmp_path_factory.mktemp("tiny"), (400, 40, 60))


@pytest.fixture(scope="module")
def estimated(tiny, tmp_path_factory):
    from helpers import run_cli

    root, ckpt = tiny
    out = tmp_path_factory.mktemp("est")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        r = run_cli("estimate-timescales", ckpt, "--corpus", root, "--out", out, "--device", "cpu")
    return out, r


def test_estimate_timescales_writes_table_and_figures(estimated):
    out, r = estimated
    assert r.returncode == 0, r.stderr
    tab = pd.read_csv(out / "timescales.csv")
    assert list(tab.columns[:8]) == ["layer", "unit", "forget_bias", "T_bias", "f_mean", "f_sd", "n_windows", "T_data"]
    assert {"T_data_lo", "T_data_hi", "T_assigned"} <= set(tab.columns)
    assert len(tab) == 12 + 20 + 8 and tab.groupby("layer").size().tolist() == [12, 20, 8]
    np.testing.assert_allclose(tab.T_data, -1 / np.log(tab.f_mean), rtol=1e-6)
    assert tab.T_data.iloc[12 + 19] == pytest.approx(1 / 30, rel=1e-3)  # the T=0 unit (bias -30) stays resolved
    for f in ("timescales_data_vs_bias.pdf", "timescales_sorted.pdf", "timescales_estimated_vs_assigned.pdf",
              "gate_histograms.csv", "run.json"):
        assert (out / f).stat().st_size > 0
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["batch_size"] == 1 and run["options"]["window"] == 70
    assert "T_data" in r.stdout


def test_ablate_output_mode_with_controls_and_pos(cli, tiny, tmp_path, corpora_dir):
    root, ckpt = tiny
    out = tmp_path / "abl"
    r = cli("ablate", ckpt, "--corpus", root, "--layer", "2", "--groups", "chunks:5", "--controls", "3",
            "--bootstrap", "200", "--chunk", "20", "--group-batch", "3", "--pos-tags", corpora_dir / "brown" / "tagged",
            "--out", out, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    groups = pd.read_csv(out / "ablation_groups.csv")
    assert groups.kind.tolist() == ["group"] * 4 + ["control"] * 3
    assert (groups["size"] == 5).all()
    assert groups.T_mean.iloc[0] > groups.T_mean.iloc[-4]  # longest first
    ratios = pd.read_csv(out / "ablation_ratios.csv")
    assert set(ratios.binning) == {"frequency", "pos"}
    assert ratios.ratio[ratios.n_tokens == 0].isna().all()  # empty bins stay in the table, as NaN
    ratios = ratios[ratios.n_tokens > 0]
    assert (ratios.ratio_lo <= ratios.ratio + 1e-12).all() and (ratios.ratio <= ratios.ratio_hi + 1e-12).all()
    routing = pd.read_csv(out / "routing.csv")
    assert {"bin", "rank", "group", "ratio", "ratio_lo", "ratio_hi", "above_controls"} <= set(routing.columns)
    for f in ("ablation_fig3.pdf", "ablation_pos.pdf", "ablation_controls.csv", "run.json"):
        assert (out / f).stat().st_size > 0


def test_ablate_silence_by_data_from_table(cli, tiny, tmp_path, estimated):
    root, ckpt = tiny
    est = estimated[0]
    out = tmp_path / "sil"
    r = cli("ablate", ckpt, "--corpus", root, "--groups", "quantiles:2", "--mode", "silence", "--by", "data",
            "--timescales", est / "timescales.csv", "--bootstrap", "100", "--chunk", "20", "--out", out)
    assert r.returncode == 0, r.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["results"]["timescales_source"].startswith("T_data from")  # what was used: a result
    T = pd.read_csv(est / "timescales.csv").query("layer == 2").set_index("unit").T_data
    g = pd.read_csv(out / "ablation_groups.csv")
    first = [int(u) for u in g.units.iloc[0].split()]
    assert T.loc[first].min() >= T.drop(index=first).max()


@pytest.mark.parametrize("args,needle", [
    (("--groups", "chunks:x"), "chunks:N"),
    (("--groups", "units:3,999"), "out of range"),
    (("--mode", "zap"), "--mode"),
])
def test_ablate_bad_input_one_line(cli, tiny, tmp_path, args, needle):
    root, ckpt = tiny
    r = cli("ablate", ckpt, "--corpus", root, *args, "--out", tmp_path / "bad")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_estimate_missing_checkpoint_one_line(cli, tmp_path):
    r = cli("estimate-timescales", tmp_path / "nope.pt", "--out", tmp_path / "o")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "not found" in r.stderr
