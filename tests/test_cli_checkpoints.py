"""``tsprobe inspect`` and ``tsprobe timescales`` through the real entry point."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_checkpoints_fixtures import hand_timescales, save_awd

from timescale_probe.checkpoints import load_checkpoint
from timescale_probe.checkpoints.report import describe_stack, timescale_summary


@pytest.fixture(scope="module")
def awd_legacy(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "awd_legacy.pt"
    return path, save_awd(path, legacy=True)


def test_inspect_table(cli, awd_legacy):
    path, _ = awd_legacy
    res = cli("inspect", path)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for text in ("pickle:awd-lstm", "3 (sizes 12, 12, 8; input 8)", "50 (not stored)", "3,458", "tied", "wdrop=0.5",
                 "used the raw", "no vocabulary"):
        assert text in out, text


def test_inspect_json_and_out(cli, awd_legacy, tmp_path):
    path, _ = awd_legacy
    res = cli("inspect", path, "--json", "--out", tmp_path / "o")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["source_format"] == "pickle:awd-lstm" and info["layer_sizes"] == [12, 12, 8]
    assert info["vocab_size"] == 50 and info["tied"] is True and info["parameters"] == 3458
    assert info["config"]["dropouth"] == 0.25 and info["config"]["tie_weights"] is True
    assert [r["hidden_size"] for r in info["layer_table"]] == [12, 12, 8]
    assert json.loads((tmp_path / "o" / "inspect.json").read_text()) == info
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    assert run["command"] == "inspect" and str(path) in run["inputs"]


def test_timescales_command(cli, awd_legacy, tmp_path):
    path, expected = awd_legacy
    out = tmp_path / "ts"
    res = cli("timescales", path, "--out", out)
    assert res.returncode == 0, res.stderr
    df = pd.read_csv(out / "timescales.csv")
    assert list(df.columns) == ["layer", "unit", "forget_bias", "T_bias"]
    assert df.layer.tolist() == [1] * 12 + [2] * 12 + [3] * 8 and df.unit.tolist()[:3] == [0, 1, 2]
    want = np.concatenate([hand_timescales(l["bias_ih"], l["bias_hh"]) for l in expected["layers"]])
    np.testing.assert_allclose(df.T_bias.to_numpy(), want, rtol=1e-12)
    summary = pd.read_csv(out / "timescales_summary.csv")
    assert summary.layer.astype(str).tolist() == ["1", "2", "3", "all"]
    np.testing.assert_allclose(summary.T_median.iloc[3], np.median(want), rtol=1e-12)
    np.testing.assert_allclose(summary.share_gt_10.iloc[3], np.mean(want > 10))
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["convention"] == "paper" and run["results"]["source_format"] == "pickle:awd-lstm"
    assert "median T" in res.stdout and "share T>10" in res.stdout


def test_timescales_bad_convention_and_help(cli, awd_legacy, tmp_path):
    path, _ = awd_legacy
    res = cli("timescales", path, "--out", tmp_path / "x", "--convention", "weird")
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode == 2 and len(lines) == 1 and "unknown --convention 'weird'" in lines[0]
    help_text = cli("timescales", "--help").stdout
    assert "tsprobe timescales awd_ptb.pt --out out/" in help_text and "--convention" in help_text


def test_failed_runs_leave_no_out_folder_and_debug_goes_anywhere(awd_legacy, tmp_path):
    from helpers import run_cli_inprocess

    from timescale_probe.cli import main
    from timescale_probe.errors import InputError

    path, _ = awd_legacy
    res = run_cli_inprocess("timescales", path, "--out", tmp_path / "t", "--convention", "weird")
    assert res.returncode == 2 and "unknown --convention 'weird'" in res.stderr
    res = run_cli_inprocess("timescales", tmp_path / "missing.pt", "--out", tmp_path / "t")
    assert res.returncode == 2 and "not found" in res.stderr
    res = run_cli_inprocess("inspect", tmp_path / "missing.pt", "--out", tmp_path / "i")
    assert res.returncode == 2 and list(tmp_path.iterdir()) == []
    with pytest.raises(InputError):  # --debug after the command: the exception itself, not a usage error
        main(["inspect", str(tmp_path / "missing.pt"), "--debug"])
    res = run_cli_inprocess("inspect", path, "--out", tmp_path / "i")
    assert res.returncode == 0 and sorted(p.name for p in (tmp_path / "i").iterdir()) == ["inspect.json", "run.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i"]


def test_inspect_help_and_missing_file(cli, tmp_path):
    assert "tsprobe inspect awd_ptb.pt" in cli("inspect", "--help").stdout
    res = cli("inspect", tmp_path / "missing.pt")
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode == 2 and lines == [f"tsprobe: error: checkpoint not found: {tmp_path / 'missing.pt'}"]


def test_summary_functions_chrono(tmp_path):
    lstm = torch.nn.LSTM(2, 4)
    with torch.no_grad():
        lstm.bias_ih_l0.zero_()
        lstm.bias_hh_l0.zero_()
        lstm.bias_hh_l0[4:8] = torch.tensor([0.0, np.log(4.0), np.log(19.0), np.log(99.0)])
    torch.save(lstm.state_dict(), tmp_path / "l.pt")
    stack = load_checkpoint(tmp_path / "l.pt")
    s = timescale_summary(stack.timescales_table("chrono"))
    # chrono: T = 1 + exp(b) = 2, 5, 20, 100 -> median 12.5, max 100, share > 10 is 2/4
    np.testing.assert_allclose(s.loc[s.layer == "all", ["T_median", "T_max", "share_gt_10"]].to_numpy()[0],
                               [12.5, 100.0, 0.5], rtol=1e-5)
    info = describe_stack(stack)
    assert info["source_format"] == "state-dict:nn.LSTM" and info["layer_table"][0]["parameters"] == 4 * 4 * 6 + 32


def test_non_finite_forget_biases_get_one_note_and_no_warning(tmp_path):
    """Issue 19: NaN forget biases leaked a numpy RuntimeWarning and the summary printed nan%. Now
    one note with the counts, no Python warning, no nan in the summary (real subprocess: warnings
    reach stderr there)."""
    from helpers import run_cli

    from timescale_probe.checkpoints import save_checkpoint
    from timescale_probe.models import LanguageModel, LMConfig

    torch.manual_seed(0)
    stack = LanguageModel(LMConfig(vocab_size=20, emb_size=4, layer_sizes=(6, 4))).to_stack()
    layer = stack.layers[0]
    H = layer.hidden_size
    with torch.no_grad():
        layer.bias_ih[H:H + 3] = float("nan")  # the forget gate's biases (PyTorch order i, f, g, o)
        layer.bias_hh[H + 3] = float("inf")
    save_checkpoint(tmp_path / "nan.pt", stack)
    res = run_cli("timescales", tmp_path / "nan.pt", "--out", tmp_path / "o")
    assert res.returncode == 0 and res.stderr == "", res.stderr
    notes = [line for line in res.stdout.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "3 NaN" in notes[0] and "1 at +inf" in notes[0], res.stdout
    assert "nan%" not in res.stdout.lower()
