"""Recurrent checkpoints made by the frameworks themselves (Keras 3, Keras 2.15 / TensorFlow 2.15, torch):
our loaded model's forward equals the framework's own output on a fixed input.

Fixtures: tests/fixtures/recurrent/, written by tests/fixtures/make_keras3_recurrent_fixtures.py,
make_keras2_recurrent_fixtures.py and make_torch_recurrent_fixtures.py (their versions in
versions_*.json). Tolerance: 2e-5 absolute on logits of magnitude <= ~10 (float32 against float32,
different summation orders; measured differences are 1e-7 to 1e-6, so the headroom is >= 20x);
relu RNNs, whose states grow large, are compared relatively (rtol 1e-5).
"""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from timescale_probe.activations import activate_np
from timescale_probe.checkpoints import load_checkpoint
from timescale_probe.errors import CheckpointError
from timescale_probe.models import LanguageModel
from timescale_probe.timescale_math import summarize_timescales

FIX = Path(__file__).parent / "fixtures" / "recurrent"
KERAS3 = ["lstm_hard", "gru_after", "gru_before", "gru_hard", "rnn_tanh", "rnn_relu"]
#: cell name each Keras 3 model must be read as, from its config
KERAS3_CELLS = {"lstm_hard": "lstm(gate=hard_sigmoid_keras3)", "gru_after": "gru", "gru_before": "gru(reset_after=False)",
                "gru_hard": "gru(gate=hard_sigmoid_keras3)", "rnn_tanh": "rnn_tanh", "rnn_relu": "rnn_relu"}


def npy(name: str) -> np.ndarray:
    return np.load(FIX / name, allow_pickle=False)


def logits_and_layer1(stack, tokens_bt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Our LanguageModel over batch-first tokens; outputs batch-first like Keras's."""
    model = LanguageModel.from_stack(stack).eval()
    with torch.no_grad():
        logits, _, extras = model(torch.from_numpy(tokens_bt.T.astype(np.int64)))
    return logits.transpose(0, 1).numpy(), extras["raw_outputs"][0].transpose(0, 1).numpy()


def assert_matches(stack, stem: str) -> None:
    logits, h1 = logits_and_layer1(stack, npy(f"{stem}.input.npy"))
    rtol = 1e-5 if "relu" in stem else 0.0
    np.testing.assert_allclose(h1, npy(f"{stem}.out_layer1.npy"), atol=2e-5, rtol=rtol)
    np.testing.assert_allclose(logits, npy(f"{stem}.out_logits.npy"), atol=2e-5, rtol=rtol)


def test_fixtures_are_small_and_made_by_the_frameworks():
    files = sorted(FIX.iterdir())
    assert files and all(p.stat().st_size < 30_000 for p in files)
    assert json.loads((FIX / "versions_keras3.json").read_text())["keras"].startswith("3.")
    assert json.loads((FIX / "versions_keras2.json").read_text())["keras"].startswith("2.")
    assert json.loads((FIX / "versions_torch.json").read_text())["torch"]


# -- Keras 3 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["keras", "h5"])
@pytest.mark.parametrize("name", KERAS3)
def test_keras3_forward_equals_keras(name, suffix):
    stack = load_checkpoint(FIX / f"k3_{name}.{suffix}")
    assert stack.cell_name == KERAS3_CELLS[name]
    assert_matches(stack, f"k3_{name}")


@pytest.mark.parametrize("name", ["gru_after", "gru_before", "rnn_tanh"])
def test_keras3_weights_only_defaults_are_right_when_the_model_used_them(name):
    """No config: sigmoid/tanh assumed (Keras 3's defaults), a GRU's reset_after from its bias shape;
    the note says what was assumed."""
    stack = load_checkpoint(FIX / f"k3_{name}.weights.h5")
    assert stack.cell_name == KERAS3_CELLS[name]
    assert any("records no activations; assumed" in n for n in stack.provenance.notes)
    assert_matches(stack, f"k3_{name}")


@pytest.mark.parametrize("name,override", [("lstm_hard", {"gate_activation": "hard_sigmoid_keras3"}),
                                           ("gru_hard", {"gate_activation": "hard_sigmoid_keras3"}),
                                           ("rnn_relu", {"activation": "relu"})])
def test_keras3_weights_only_needs_the_override_where_the_default_is_wrong(name, override):
    stem = f"k3_{name}"
    assumed = load_checkpoint(FIX / f"{stem}.weights.h5")
    logits, _ = logits_and_layer1(assumed, npy(f"{stem}.input.npy"))
    assert np.abs(logits - npy(f"{stem}.out_logits.npy")).max() > 1e-2  # the assumption is visibly wrong here
    fixed = load_checkpoint(FIX / f"{stem}.weights.h5", **override)
    assert any(n.startswith("activations set by the caller") for n in fixed.provenance.notes)
    assert_matches(fixed, stem)


def test_keras2_and_keras3_hard_sigmoids_differ():
    """Reading a Keras 3 hard-sigmoid model with Keras 2's formula gives another network."""
    stem = "k3_lstm_hard"
    wrong = load_checkpoint(FIX / f"{stem}.keras", gate_activation="hard_sigmoid_keras2")
    logits, _ = logits_and_layer1(wrong, npy(f"{stem}.input.npy"))
    assert np.abs(logits - npy(f"{stem}.out_logits.npy")).max() > 1e-2


# -- Keras 2 (TensorFlow 2.15) ---------------------------------------------------------------------

@pytest.mark.parametrize("stem,suffix,cell", [
    ("k2_lstm_hard", "h5", "lstm(gate=hard_sigmoid_keras2)"),
    ("k2_lstm_hard", "keras", "lstm(gate=hard_sigmoid_keras2)"),   # a .keras archive written by Keras 2.15
    ("k2_gru_before", "h5", "gru(reset_after=False)"),
    ("k2_gru_after", "h5", "gru"),
    ("k2_rnn_relu", "h5", "rnn_relu"),
    ("k2_cudnn_lstm", "h5", "lstm"),
])
def test_keras2_forward_equals_keras(stem, suffix, cell):
    stack = load_checkpoint(FIX / f"{stem}.{suffix}")
    assert stack.cell_name == cell
    assert_matches(stack, stem)


def test_cudnn_lstm_is_named_and_converted():
    stack = load_checkpoint(FIX / "k2_cudnn_lstm.h5")
    assert any("CuDNNLSTM" in n and "cuDNN's layout" in n for n in stack.provenance.notes)


def _with_version(tmp_path: Path, version: bytes) -> Path:
    import h5py

    p = tmp_path / "w.h5"
    shutil.copy(FIX / "k2_lstm_hard_weights.h5", p)
    with h5py.File(p, "r+") as f:
        f.attrs["keras_version"] = version
    return p


def test_keras2_weights_only_assumes_by_version(tmp_path):
    """save_weights files record no activation: Keras >= 2.3 -> sigmoid assumed (wrong for this model,
    and said so); the same bytes labelled Keras 2.2.4 -> hard_sigmoid (Keras < 2.3's default), right."""
    new = load_checkpoint(FIX / "k2_lstm_hard_weights.h5")
    note = next(n for n in new.provenance.notes if "records no activations" in n)
    assert new.cell_name == "lstm" and "assumed sigmoid" in note and "2.15.0" in note
    old = load_checkpoint(_with_version(tmp_path, b"2.2.4"))
    note = next(n for n in old.provenance.notes if "records no activations" in n)
    assert old.cell_name == "lstm(gate=hard_sigmoid_keras2)" and "Keras < 2.3's default" in note
    assert_matches(old, "k2_lstm_hard")
    with pytest.raises(CheckpointError, match="Keras 1 files"):
        load_checkpoint(_with_version(tmp_path, b"1.2.2"))


def test_hard_sigmoid_timescales_against_the_documented_formula():
    """T_bias = -1/ln f with f = clip(0.2 b + 0.5, 0, 1) (Keras 2 backend.hard_sigmoid); units whose
    gate saturates at 1 have T = inf; summaries leave them out and count them."""
    import h5py

    stack = load_checkpoint(FIX / "k2_lstm_hard.h5")
    with h5py.File(FIX / "k2_lstm_hard.h5", "r") as f:
        g = f["model_weights/rnn"]
        name = next(str(n, "utf-8") if isinstance(n, bytes) else str(n) for n in g.attrs["weight_names"]
                    if (str(n, "utf-8") if isinstance(n, bytes) else str(n)).endswith("bias:0"))
        bias = g[name][()].astype(np.float64)
    H = 5
    b_f = bias[H:2 * H]
    f = np.clip(0.2 * b_f + 0.5, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        expected = -1.0 / np.log(f)
    table = stack.timescales_table()
    np.testing.assert_array_equal(np.isinf(table["T_bias"]), np.isinf(expected))
    np.testing.assert_allclose(table["T_bias"][np.isfinite(expected)], expected[np.isfinite(expected)], rtol=1e-12)
    assert int(np.isinf(expected).sum()) == 2  # biases 2.5 and 4.0 saturate
    s = summarize_timescales(table["T_bias"])
    assert s["infinite"] == 2 and s["units"] == 5 and np.isfinite(s["max"])
    # the gate value through our activation equals the formula
    np.testing.assert_allclose(activate_np("hard_sigmoid_keras2", b_f), f)


def _edit_keras_config(tmp_path: Path, **changes) -> Path:
    src = FIX / "k3_lstm_hard.keras"
    dst = tmp_path / "edited.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                cfg = json.loads(data)
                for layer in cfg["config"]["layers"]:
                    if layer["class_name"] == "LSTM":
                        layer["config"].update(changes)
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)
    return dst


@pytest.mark.parametrize("changes,message", [
    ({"recurrent_activation": "softsign"}, "recurrent_activation \\(gates\\) 'softsign' is not supported"),
    ({"activation": "elu"}, "activation 'elu' is not supported"),
    ({"go_backwards": True}, "go_backwards=True"),
])
def test_options_that_change_the_maths_are_refused_by_name(tmp_path, changes, message):
    with pytest.raises(CheckpointError, match=message) as exc:
        load_checkpoint(_edit_keras_config(tmp_path, **changes))
    assert "\n" not in str(exc.value)


def test_keras_relu_lstm_runs_on_the_step_cell(tmp_path):
    """An activation the step cell computes (relu candidates) is read, not refused."""
    stack = load_checkpoint(_edit_keras_config(tmp_path, activation="relu"))
    assert stack.cell_name == "lstm(gate=hard_sigmoid_keras3, activation=relu)"


# -- PyTorch ---------------------------------------------------------------------------------------

def _run_layers(stack, x: np.ndarray) -> np.ndarray:
    from timescale_probe.cells import recurrent_module

    h = torch.from_numpy(x)
    for layer in stack.layers:
        m = recurrent_module(layer.input_size, layer.hidden_size, layer.cell)
        m.load_state_dict({"weight_ih_l0": layer.weight_ih, "weight_hh_l0": layer.weight_hh,
                           "bias_ih_l0": layer.bias_ih, "bias_hh_l0": layer.bias_hh})
        with torch.no_grad():
            h, _ = m(h)
    return h.numpy()


def test_torch_gru_state_dict():
    stack = load_checkpoint(FIX / "pt_gru_sd.pt")
    assert stack.provenance.source_format == "state-dict:nn.GRU" and stack.cell_name == "gru"
    assert stack.layer_sizes == [5, 5]
    np.testing.assert_allclose(_run_layers(stack, npy("pt_gru_sd.input.npy")), npy("pt_gru_sd.out.npy"), atol=1e-6)


def test_torch_rnn_state_dict_needs_its_nonlinearity():
    """A state dict does not record tanh vs relu: tanh assumed and noted; activation='relu' fixes it."""
    assumed = load_checkpoint(FIX / "pt_rnn_relu_sd.pt")
    assert assumed.cell_name == "rnn_tanh" and any("assumed tanh" in n for n in assumed.provenance.notes)
    stack = load_checkpoint(FIX / "pt_rnn_relu_sd.pt", activation="relu")
    assert stack.cell_name == "rnn_relu"
    np.testing.assert_allclose(_run_layers(stack, npy("pt_rnn_relu_sd.input.npy")), npy("pt_rnn_relu_sd.out.npy"),
                               atol=1e-6)


@pytest.mark.parametrize("name,cell,fmt", [
    ("wlm_lstm", "lstm", "pickle:word_language_model"), ("wlm_gru", "gru", "pickle:word_language_model"),
    ("wlm_rnn_tanh", "rnn_tanh", "pickle:word_language_model"), ("wlm_rnn_relu", "rnn_relu", "pickle:word_language_model"),
    ("awd_gru", "gru", "pickle:awd-lstm"),
])
def test_torch_pickled_language_models(name, cell, fmt):
    """Whole pickled models (read by the restricted unpickler): the cell comes from the pickled
    module's mode (nn.RNN keeps RNN_TANH / RNN_RELU there), and the LM forward equals theirs."""
    stack = load_checkpoint(FIX / f"pt_{name}.pt")
    assert stack.cell_name == cell and stack.provenance.source_format == fmt
    model = LanguageModel.from_stack(stack).eval()
    with torch.no_grad():
        logits, _, _ = model(torch.from_numpy(npy(f"pt_{name}.input.npy")))
    np.testing.assert_allclose(logits.numpy(), npy(f"pt_{name}.out_logits.npy"), atol=1e-6)


def test_plain_rnn_has_no_timescales_from_biases(cli):
    stack = load_checkpoint(FIX / "pt_wlm_rnn_tanh.pt")
    with pytest.raises(CheckpointError, match="activity-timescales") as exc:
        stack.timescales_table()
    assert "plain RNN has no forget or update gate" in str(exc.value)
    r = cli("timescales", FIX / "pt_wlm_rnn_tanh.pt")
    assert r.returncode == 2 and "activity-timescales" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_gru_timescales_come_from_the_update_gate():
    """T_bias of a GRU = -1/ln sigmoid(b_iz + b_hz), the z rows (H:2H in PyTorch's r, z, n order)."""
    stack = load_checkpoint(FIX / "pt_wlm_gru.pt")
    layer = stack.layers[0]
    H = layer.hidden_size
    b = layer.bias_ih[H:2 * H].double().numpy() + layer.bias_hh[H:2 * H].double().numpy()
    table = stack.timescales_table()
    assert table.attrs["retention_gate"] == "z"
    np.testing.assert_allclose(table.query("layer == 1")["T_bias"], -1.0 / np.log(1.0 / (1.0 + np.exp(-b))), rtol=1e-12)


def test_cli_inspect_names_the_cell(cli):
    r = cli("inspect", FIX / "k2_lstm_hard.h5", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["cell"] == "lstm(gate=hard_sigmoid_keras2)" and info["gate_activation"] == "hard_sigmoid_keras2"
    r = cli("inspect", FIX / "pt_wlm_rnn_relu.pt", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["layer_table"][0]["cell"] == "rnn_relu"
