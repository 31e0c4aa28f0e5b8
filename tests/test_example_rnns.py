"""The example GRU and RNN_TANH checkpoints (checkpoints/examples/, made by scripts/make_example_rnns.py).

They are pytorch/examples ``word_language_model`` models saved both ways that example's users hold
them: a whole-model pickle (``model.RNNModel``) and a state dict. Checked here: both files give the
same stack; cell types and activations are read right; a GRU's ``T_bias`` is -1/ln sigmoid(b_z) of
the update-gate rows ``H:2H`` of ``bias_ih + bias_hh`` read straight from the state dict; tsprobe's
forward of the loaded pickle equals the script's own ``RNNModel`` on the state dict; each card's
hashes are the files'; and the script itself trains deterministically into files tsprobe reads.
"""
from __future__ import annotations

import importlib.util
import json
import math
import sys

import numpy as np
import pytest
import torch
from helpers import ROOT, one_thread_fixture, run_cli_inprocess  # noqa: F401 (the one_thread fixture)

import timescale_probe as tsp
from timescale_probe.errors import CheckpointError
from timescale_probe.fileio import file_sha256
from timescale_probe.models import LanguageModel

EXAMPLES = ROOT / "checkpoints" / "examples"
STEMS = {"GRU": "ptb-gru-example", "RNN_TANH": "ptb-rnn-tanh-example"}


def _script():
    name = "_scripts_make_example_rnns"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "make_example_rnns.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def _files(rnn_type: str):
    stem = STEMS[rnn_type]
    paths = EXAMPLES / f"{stem}.pt", EXAMPLES / f"{stem}.state_dict.pt", EXAMPLES / f"{stem}.json"
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        pytest.fail(f"example checkpoint files missing: {missing} (run scripts/make_example_rnns.py)")
    return paths


def _same_stack(a, b) -> None:
    assert a.cell_name == b.cell_name and len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert la.cell == lb.cell
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            assert torch.equal(getattr(la, name), getattr(lb, name)), name
    for name in ("embedding", "decoder_weight", "decoder_bias"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.tied and b.tied


@pytest.mark.parametrize("rnn_type", sorted(STEMS))
def test_pickle_and_state_dict_give_the_same_stack(rnn_type):
    pickle_path, sd_path, card_path = _files(rnn_type)
    from_pickle, from_sd = tsp.load_checkpoint(pickle_path), tsp.load_checkpoint(sd_path)
    assert from_pickle.provenance.source_format == "pickle:word_language_model"
    assert from_sd.provenance.source_format != from_pickle.provenance.source_format
    _same_stack(from_pickle, from_sd)
    recipe = json.loads(card_path.read_text())["recipe"]
    assert from_pickle.layer_sizes == [recipe["nhid"]] * recipe["nlayers"]
    assert from_pickle.vocab_size == 10000 and from_pickle.vocab is None


def test_cell_types_and_activations_are_read_right():
    gru = tsp.load_checkpoint(_files("GRU")[0])
    assert gru.cell_name == "gru" and all(c.kind == "gru" for c in gru.cells)
    assert {(c.gate_activation, c.activation, c.reset_after) for c in gru.cells} == {("sigmoid", "tanh", True)}
    assert gru.cell.retention_gate == "z"
    assert gru.config.get("rnn_type") == "GRU"

    rnn_pickle, rnn_sd = (tsp.load_checkpoint(p) for p in _files("RNN_TANH")[:2])
    assert rnn_pickle.config.get("rnn_type") == "RNN_TANH"
    for stack in (rnn_pickle, rnn_sd):
        assert stack.cell_name == "rnn_tanh" and stack.cell.retention_gate is None
        assert {c.activation for c in stack.cells} == {"tanh"}
    # the pickle records tanh (its rnn_type / the nn.RNN's mode); a state dict does not: tanh is assumed, and said
    assert not any("assum" in n for n in rnn_pickle.provenance.notes)
    assert any("assum" in n and "tanh" in n for n in rnn_sd.provenance.notes)
    with pytest.raises(CheckpointError, match="activity-timescales"):
        rnn_pickle.timescales_table()


def test_gru_T_bias_is_the_update_gate_rows_of_the_state_dict():
    pickle_path, sd_path, _ = _files("GRU")
    sd = torch.load(sd_path, map_location="cpu", weights_only=True)
    table = tsp.load_checkpoint(pickle_path).timescales_table()
    assert table.attrs["retention_gate"] == "z"
    nlayers = sum(1 for k in sd if k.startswith("rnn.bias_ih_l"))
    assert sorted(table["layer"].unique()) == list(range(1, nlayers + 1))
    for k in range(nlayers):
        H = sd[f"rnn.weight_hh_l{k}"].shape[1]
        b_z = (sd[f"rnn.bias_ih_l{k}"][H:2 * H].double() + sd[f"rnn.bias_hh_l{k}"][H:2 * H].double()).numpy()
        expected = -1.0 / np.log(1.0 / (1.0 + np.exp(-b_z)))      # T = -1/ln z, z = sigmoid(b_z)
        got = table.loc[table["layer"] == k + 1]
        np.testing.assert_allclose(got["forget_bias"].to_numpy(), b_z, rtol=0, atol=0)
        np.testing.assert_allclose(got["T_bias"].to_numpy(), expected, rtol=1e-12)
        # the r rows (0:H) give other numbers: the table really reads z
        b_r = (sd[f"rnn.bias_ih_l{k}"][:H] + sd[f"rnn.bias_hh_l{k}"][:H]).double().numpy()
        assert not np.allclose(b_r, b_z)


def test_inspect_and_timescales_name_the_cell_and_its_gate(tmp_path):
    gru, rnn = _files("GRU")[0], _files("RNN_TANH")[0]
    r = run_cli_inprocess("inspect", gru)
    assert r.returncode == 0 and "gru (gate activation sigmoid)" in r.stdout and "median update-gate bias" in r.stdout
    r = run_cli_inprocess("inspect", rnn)
    assert r.returncode == 0 and "rnn_tanh" in r.stdout and "retention gate" in r.stdout
    assert "nan" not in r.stdout and "forget bias" not in r.stdout
    r = run_cli_inprocess("timescales", gru, "--out", tmp_path / "gru")
    assert r.returncode == 0 and "timescales from update-gate biases" in r.stdout
    r = run_cli_inprocess("timescales", rnn, "--out", tmp_path / "rnn")
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "tsprobe activity-timescales" in lines[0]
    assert not (tmp_path / "rnn").exists()
    # estimate-timescales: the same one line (it used to come from the runner as '--hooks: ...')
    r = run_cli_inprocess("estimate-timescales", rnn, "--corpus", "ptb", "--max-tokens", "200", "--out", tmp_path / "est")
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "estimate-timescales reads forget/update gates" in lines[0] and "tsprobe activity-timescales" in lines[0]
    assert "--hooks" not in lines[0] and not (tmp_path / "est").exists()


@pytest.mark.parametrize("rnn_type", sorted(STEMS))
def test_loaded_pickle_runs_as_the_script_model(rnn_type, one_thread):
    """tsprobe's forward of the pickle = the script's RNNModel with the state dict (eval mode)."""
    mod = _script()
    pickle_path, sd_path, card_path = _files(rnn_type)
    recipe = json.loads(card_path.read_text())["recipe"]
    model = mod.RNNModel(rnn_type, 10000, recipe["emsize"], recipe["nhid"], recipe["nlayers"],
                         recipe["dropout"], recipe["tied"])
    model.load_state_dict(torch.load(sd_path, map_location="cpu", weights_only=True))
    model.eval()
    tokens = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 10000, (40, 2), generator=tokens)
    with torch.no_grad():
        want, _ = model(tokens, model.init_hidden(2))
        lm = LanguageModel.from_stack(tsp.load_checkpoint(pickle_path)).eval()
        logits, _, _ = lm(tokens)
        got = torch.log_softmax(logits, dim=-1).reshape(-1, 10000)
    # measured: 0.0 (both run PyTorch's fused modules); 1e-6 leaves room for another BLAS
    assert (got - want).abs().max().item() < 1e-6


@pytest.mark.parametrize("rnn_type", sorted(STEMS))
def test_card_describes_the_committed_files(rnn_type):
    pickle_path, sd_path, card_path = _files(rnn_type)
    card = json.loads(card_path.read_text())
    assert card["recipe"]["rnn_type"] == rnn_type
    assert card["files"]["pickle"]["sha256"] == file_sha256(pickle_path)
    assert card["files"]["state_dict"]["sha256"] == file_sha256(sd_path)
    assert math.isfinite(card["test_ppl"]) and 1 < card["test_ppl"] < 10000
    for p in (pickle_path, sd_path):
        assert p.stat().st_size < 6_000_000


def test_script_trains_deterministically_into_files_tsprobe_reads(tmp_path, one_thread):
    """Tiny recipe on a synthetic stream: the same seed gives the same weights, and the two files
    the script writes load to one stack as pytorch/examples' format."""
    mod = _script()
    g = torch.Generator().manual_seed(0)
    train, valid, test = (torch.randint(0, 30, (n,), generator=g) for n in (1200, 300, 300))
    recipe = mod.Recipe(rnn_type="GRU", emsize=8, nhid=8, nlayers=2, epochs=2, batch_size=4, eval_batch_size=2,
                        bptt=10, seed=5)
    logs: list[str] = []
    a, hist = mod.train_model(recipe, train, valid, test, 30, log=logs.append)
    b, _ = mod.train_model(recipe, train, valid, test, 30, log=lambda _: None)
    assert len(logs) == 2 and len(hist.valid_ppl) == 2 and math.isfinite(hist.test_ppl)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    c, _ = mod.train_model(mod.Recipe(**{**recipe.__dict__, "seed": 6}), train, valid, test, 30, log=lambda _: None)
    assert not torch.equal(a.rnn.weight_hh_l0, c.rnn.weight_hh_l0)

    paths = mod.save_model(a, tmp_path, "tiny")
    card = mod.write_card(a, recipe, hist, paths, 1, "test")
    assert json.loads(card.read_text())["files"]["pickle"]["sha256"] == file_sha256(paths["pickle"])
    from_pickle, from_sd = tsp.load_checkpoint(paths["pickle"]), tsp.load_checkpoint(paths["state_dict"])
    assert from_pickle.provenance.source_format == "pickle:word_language_model"
    _same_stack(from_pickle, from_sd)


def test_committed_outputs_are_of_these_checkpoints():
    """The tables under figures/examples/ (shown in docs/examples-gru-rnn.md) come from the committed
    files: run.json hashes the checkpoint, and T_bias in them is the checkpoint's."""
    import pandas as pd

    pickle_path = _files("GRU")[0]
    sha = file_sha256(pickle_path)
    table = tsp.load_checkpoint(pickle_path).timescales_table()
    for sub in ("timescales", "estimate-timescales", "evaluate", "ablate", "activity"):
        run = json.loads((ROOT / "figures" / "examples" / "gru" / sub / "run.json").read_text())
        assert sha in json.dumps(run["inputs"]), sub
    for sub in ("timescales", "estimate-timescales"):
        saved = pd.read_csv(ROOT / "figures" / "examples" / "gru" / sub / "timescales.csv")
        np.testing.assert_allclose(saved["T_bias"].to_numpy(), table["T_bias"].to_numpy(), rtol=1e-12)
    rnn_sha = file_sha256(_files("RNN_TANH")[0])
    for sub in ("evaluate", "activity"):
        run = json.loads((ROOT / "figures" / "examples" / "rnn-tanh" / sub / "run.json").read_text())
        assert rnn_sha in json.dumps(run["inputs"]), sub
