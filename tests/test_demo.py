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


def test_demo_without_shipped_checkpoints_says_so(tmp_path, caplog):
    with caplog.at_level("INFO", logger="timescale_probe"):
        res = run_demo(tmp_path / "out", n_boot=20, checkpoints_dir=tmp_path / "none", progress=False)
    assert "not found" in res["compare"]["skipped"]
    steps = [r.getMessage() for r in caplog.records if r.name == "timescale_probe.demo"]
    assert steps[0].startswith("1/2 ") and steps[1].startswith("2/2 skipped")  # step messages via logging
    # the 97 MB untrained checkpoint lived in a temporary folder: nothing of it in the output
    assert not list((tmp_path / "out").rglob("*.pt")) and res["impose"]["checkpoint"].startswith("not kept")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def test_demo_keeps_the_checkpoint_when_asked(tmp_path):
    from timescale_probe.checkpoints import load_checkpoint

    out = tmp_path / "kept"
    res = run_demo(out, n_boot=20, checkpoints_dir=tmp_path / "none", keep_checkpoint=True,
                   options={"keep_checkpoint": True}, say=lambda m: None)
    ckpt = out / "paper-mts-untrained.pt"
    assert res["impose"]["checkpoint"] == str(ckpt)
    assert load_checkpoint(ckpt).layer_sizes == [1150, 1150, 400]
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["keep_checkpoint"] is True and run["results"]["impose"]["checkpoint"] == str(ckpt)


def test_failed_demo_leaves_nothing(tmp_path):
    from timescale_probe.errors import OptionError

    with pytest.raises(OptionError) as info:
        run_demo(tmp_path / "d", n_resamples=0, say=lambda m: None)
    assert info.value.param == "n_resamples"
    assert list(tmp_path.iterdir()) == []


def test_comparison_markdown_prints_the_level_as_a_percentage():
    from timescale_probe.demo import comparison_markdown

    table = pd.DataFrame({"bin": [">10K", "overall"], "tokens": [10, 20], "ppl_baseline": [5.0, 6.0],
                          "ppl_mts": [4.5, 5.5], "diff": [0.5, 0.5], "lo": [0.1, 0.2], "hi": [0.9, 0.8],
                          "level": [0.999, 0.999], "n_resamples": [10000, 10000], "seed": [0, 0]})
    md = comparison_markdown(table)
    assert "99.9% order-statistic interval (level 0.999)" in md and "10,000 paired resamples" in md
    header, body = md.split("\n\n", 1)
    assert "1.00" not in md and "| level" not in body
    assert "| overall | 20 | 6.00 | 5.50 | 0.50 | 0.20 | 0.80 |" in body


@pytest.mark.slow
def test_demo_command_end_to_end(tmp_path, cli):
    if not all((shipped_checkpoints_dir() / f).is_file() for f in SHIPPED):
        pytest.skip("shipped checkpoints missing")
    r = cli("demo", "--out", tmp_path / "d", "--bootstrap", "50", "--resamples", "1000")
    assert r.returncode == 0, r.stderr
    run = json.loads((tmp_path / "d" / "run.json").read_text())
    assert run["results"]["compare"]["comparison"][0]["bin"]
    assert (tmp_path / "d" / "comparison.md").is_file()


def test_max_tokens_below_one_bootstrap_chunk_is_refused_before_any_work(tmp_path):
    from timescale_probe.errors import OptionError

    with pytest.raises(OptionError) as info:
        run_demo(tmp_path / "d", max_tokens=99, say=lambda m: None)
    assert info.value.param == "max_tokens" and "100" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_in_a_checkout_the_shipped_checkpoints_are_its_checkpoints_folder():
    from timescale_probe import locations

    checkout = locations.source_checkout()
    assert checkout is not None and (checkout / "pyproject.toml").is_file()
    # an editable install has no package data: the checkout's checkpoints/ serve the demo
    assert shipped_checkpoints_dir() == checkout / "checkpoints"
    assert all((shipped_checkpoints_dir() / f).is_file() for f in SHIPPED)


def test_the_untrained_paper_model_is_seeded():
    """Its free weights (layer 3's forget biases are in the demo's paper-mts/timescales.csv) come
    from the demo's seed, not from whatever torch's global generator holds."""
    import torch

    from timescale_probe.demo import paper_mts_model

    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = (paper_mts_model(s).to_stack().timescales_table() for s in (0, 0, 1))
    assert torch.equal(torch.rand(3), before)  # the caller's random stream is untouched
    assert a.equals(b)
    layer3 = a["layer"] == 3
    assert not np.array_equal(a.loc[layer3, "forget_bias"], c.loc[layer3, "forget_bias"])
    assert a.loc[~layer3, "T_bias"].equals(c.loc[~layer3, "T_bias"])  # the imposed layers do not depend on it
