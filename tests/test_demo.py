import json

import numpy as np
import pandas as pd
import pytest

from timescale_probe.demo import SHIPPED, impose_and_recover, run_demo, shipped_checkpoints_dir
from timescale_probe.timescales import paper_lm_spec


def test_impose_and_recover_gives_back_the_paper_shape(tmp_path):
    res = impose_and_recover(tmp_path, n_boot=60, seed=1)
    assert res["layer_sizes"] == [1150, 1150, 400]
    assert res["parameters"] == pytest.approx(24.2e6, rel=0.01)  # docs/methods.md §2: about 24.2 M
    assert res["a_lo"] < 0.56 < res["a_hi"]
    assert res["a"] == pytest.approx(0.56, abs=0.03)
    table = pd.read_csv(tmp_path / "paper-mts" / "timescales.csv")
    layer2 = table[table["layer"] == 2]["T_bias"].to_numpy()
    expected = paper_lm_spec().timescales([1150, 1150])[1]
    # stored in float32 and the T=0 unit clipped to b=-30: all others agree to float32 precision
    np.testing.assert_allclose(layer2[:-1], expected[:-1], rtol=2e-3)
    assert 0 < layer2[-1] < 0.05
    for name in ("fits.csv", "sorted_units_layer2.pdf", "qq_layer2.pdf"):
        assert (tmp_path / "paper-mts" / name).stat().st_size > 0


def test_demo_without_shipped_checkpoints_says_so(tmp_path):
    res = run_demo(tmp_path / "out", n_boot=20, checkpoints_dir=tmp_path / "none", say=lambda m: None)
    assert "not found" in res["compare"]["skipped"]


@pytest.mark.slow
def test_demo_command_end_to_end(tmp_path, cli):
    if not all((shipped_checkpoints_dir() / f).is_file() for f in SHIPPED):
        pytest.skip("shipped checkpoints missing")
    r = cli("demo", "--out", tmp_path / "d", "--bootstrap", "50", "--resamples", "1000")
    assert r.returncode == 0, r.stderr
    run = json.loads((tmp_path / "d" / "run.json").read_text())
    assert run["results"]["compare"]["comparison"][0]["bin"]
    assert (tmp_path / "d" / "comparison.md").is_file()
