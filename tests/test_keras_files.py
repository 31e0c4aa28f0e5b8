"""Genuine Keras files (made by Keras 3 itself: tests/fixtures/make_keras_fixtures.py) read with h5py
alone; the converted weights reproduce Keras's own outputs saved next to them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from timescale_probe.checkpoints import load_checkpoint, sniff
from timescale_probe.errors import CheckpointError, OptionError
from timescale_probe.models import LanguageModel

FIX = Path(__file__).parent / "fixtures" / "keras"
KINDS = [("keras", "keras"), ("weights.h5", "keras-weights-h5"), ("h5", "keras-h5")]


def npy(name: str) -> np.ndarray:
    return np.load(FIX / name, allow_pickle=False)


def run_lstm(layer, x: np.ndarray) -> np.ndarray:
    """Our converted layer as a torch nn.LSTM over batch-first ``x (B, T, I)``."""
    lstm = torch.nn.LSTM(layer.input_size, layer.hidden_size, batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(layer.weight_ih)
        lstm.weight_hh_l0.copy_(layer.weight_hh)
        lstm.bias_ih_l0.copy_(layer.bias_ih)
        lstm.bias_hh_l0.copy_(layer.bias_hh)
        return lstm(torch.from_numpy(x))[0].numpy()


def test_fixtures_are_small_and_made_by_keras():
    files = sorted(FIX.glob("*"))
    assert files and all(p.stat().st_size < 100_000 for p in files)
    versions = json.loads((FIX / "versions.json").read_text())
    assert versions["keras"].startswith("3.")


@pytest.mark.parametrize("suffix,fmt", KINDS)
def test_language_model_reproduces_keras_outputs(suffix, fmt):
    stack = load_checkpoint(FIX / f"lm.{suffix}")
    assert stack.provenance.source_format == fmt
    assert stack.layer_sizes == [8, 5] and stack.input_size == 6 and stack.vocab_size == 20
    assert not stack.tied and stack.vocab is None
    assert any("lstm_a, lstm_b" in n for n in stack.provenance.notes)
    model = LanguageModel.from_stack(stack).eval()
    x = npy("lm.input.npy")
    with torch.no_grad():
        logits, _, extras = model(torch.from_numpy(x.T.astype(np.int64)))
    np.testing.assert_allclose(logits.transpose(0, 1).numpy(), npy("lm.out_logits.npy"), atol=2e-5)
    for k in (1, 2):
        np.testing.assert_allclose(extras["raw_outputs"][k - 1].transpose(0, 1).numpy(),
                                   npy(f"lm.out_layer{k}.npy"), atol=2e-5)


@pytest.mark.parametrize("suffix", ["keras", "weights.h5", "h5"])
def test_bidirectional_per_direction(suffix):
    x = npy("bidi.input.npy")
    fwd = load_checkpoint(FIX / f"bidi.{suffix}")
    bwd = load_checkpoint(FIX / f"bidi.{suffix}", direction="backward")
    assert fwd.layer_sizes == bwd.layer_sizes == [6]
    np.testing.assert_allclose(run_lstm(fwd.layers[0], x), npy("bidi.out_forward.npy"), atol=2e-5)
    # the backward LSTM reads the sequence reversed; Keras flips its outputs back into time order
    out_b = run_lstm(bwd.layers[0], np.ascontiguousarray(x[:, ::-1]))[:, ::-1]
    np.testing.assert_allclose(out_b, npy("bidi.out_backward.npy"), atol=2e-5)
    note = next(n for n in fwd.provenance.notes if n.startswith("Bidirectional layer 'bidi'"))
    assert "forward 6 units" in note and "backward 6 units" in note and "holds the forward direction" in note
    fb_f, fb_b = np.median(fwd.layers[0].forget_bias.numpy()), np.median(bwd.layers[0].forget_bias.numpy())
    assert f"{fb_f:.4g}" in note and f"{fb_b:.4g}" in note
    with pytest.raises(OptionError):
        load_checkpoint(FIX / f"bidi.{suffix}", direction="both")


@pytest.mark.parametrize("suffix", ["keras", "weights.h5", "h5"])
def test_nested_model(suffix):
    stack = load_checkpoint(FIX / f"nested.{suffix}")
    assert stack.layer_sizes == [4] and stack.input_size == 3
    np.testing.assert_allclose(run_lstm(stack.layers[0], npy("nested.input.npy")), npy("nested.out_layer1.npy"),
                               atol=2e-5)


def test_gate_conversion_by_hand():
    """Keras bias (i, f, c, o) lands in bias_ih in the same order; timescales come from its f block."""
    import h5py

    with h5py.File(FIX / "lm.weights.h5", "r") as f:
        bias = f["layers/lstm/cell/vars/2"][()]
        kernel = f["layers/lstm/cell/vars/0"][()]
    stack = load_checkpoint(FIX / "lm.weights.h5")
    H = 8
    assert torch.equal(stack.layers[0].bias_ih, torch.from_numpy(bias))
    assert torch.equal(stack.layers[0].bias_hh, torch.zeros(4 * H))
    assert torch.equal(stack.layers[0].weight_ih, torch.from_numpy(kernel.T.copy()))
    T = stack.timescales_table().query("layer == 1")["T_bias"].to_numpy()
    np.testing.assert_allclose(T, -1.0 / np.log(1.0 / (1.0 + np.exp(-bias[H:2 * H].astype(np.float64)))), rtol=1e-12)


@pytest.mark.parametrize("name,cell", [("gru.keras", "gru"), ("gru.h5", "gru"), ("simple_rnn.keras", "rnn_tanh")])
def test_gru_and_simple_rnn_are_read(name, cell):
    """GRUs and SimpleRNNs are recurrent stacks now (their maths: tests/test_recurrent_frameworks.py)."""
    stack = load_checkpoint(FIX / name)
    assert stack.cell_name == cell and stack.layer_sizes == [4]


def test_cli_inspect_keras(cli, tmp_path):
    r = cli("inspect", FIX / "lm.keras")
    assert r.returncode == 0, r.stderr
    assert "keras" in r.stdout and "8, 5" in r.stdout and "20x6" in r.stdout
    r = cli("timescales", FIX / "bidi.h5", "--direction", "backward", "--out", tmp_path / "t")
    assert r.returncode == 0, r.stderr
    assert "holds the backward direction" in json.loads((tmp_path / "t" / "run.json").read_text())["results"]["notes"][1]


def test_reading_imports_no_keras_and_sniffs():
    assert sniff(FIX / "lm.keras") == "keras" and sniff(FIX / "lm.h5") == "hdf5"
    load_checkpoint(FIX / "lm.keras")
    assert "keras" not in sys.modules and "tensorflow" not in sys.modules


def test_hdf5_that_is_not_keras(tmp_path):
    import h5py

    p = tmp_path / "data.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(CheckpointError, match="not a Keras model"):
        load_checkpoint(p)


@pytest.mark.parametrize("cell", ["lstm_cell/", ""])
def test_keras2_weight_names(tmp_path, cell):
    """Keras 2 / tf.keras ``save_weights`` layout (no tensorflow here to write one: the layout is
    rebuilt with h5py from Keras 3's legacy file): root ``layer_names``, ``:0`` suffixes, and both the
    tf.keras ``<layer>/lstm_cell/kernel:0`` and the Keras 2.0-2.2 ``<layer>/kernel:0`` names."""
    import h5py

    want = load_checkpoint(FIX / "lm.h5")
    p = tmp_path / "k2.h5"
    with h5py.File(FIX / "lm.h5", "r") as src, h5py.File(p, "w") as dst:
        mw = src["model_weights"]
        dst.attrs["layer_names"] = np.array([b"embedding_1", b"lstm_1", b"lstm_2", b"dense_1"])
        dst.attrs["keras_version"] = b"2.15.0"
        dst.attrs["backend"] = b"tensorflow"
        layout = {"embedding_1": ("embedding/embedding", {"embeddings": "embeddings"}),
                  "lstm_1": ("lstm_a/lstm_a/lstm_cell", {"kernel": "kernel", "recurrent_kernel": "recurrent_kernel", "bias": "bias"}),
                  "lstm_2": ("lstm_b/lstm_b/lstm_cell", {"kernel": "kernel", "recurrent_kernel": "recurrent_kernel", "bias": "bias"}),
                  "dense_1": ("decoder/decoder", {"kernel": "kernel", "bias": "bias"})}
        for lname, (where, leaves) in layout.items():
            g = dst.create_group(lname)
            inner = cell if lname.startswith("lstm") else ""
            names = [f"{lname}/{inner}{leaf}:0" for leaf in leaves]
            g.attrs["weight_names"] = np.array([n.encode() for n in names])
            for n, leaf in zip(names, leaves.values()):
                g[n] = mw[f"{where}/{leaf}"][()]
    got = load_checkpoint(p)
    assert got.provenance.source_format == "keras-h5" and "keras 2.15.0" in got.provenance.notes[0]
    assert got.layer_sizes == want.layer_sizes
    for a, b in zip(got.layers, want.layers):
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            assert torch.equal(getattr(a, k), getattr(b, k))
    assert torch.equal(got.embedding, want.embedding) and torch.equal(got.decoder_weight, want.decoder_weight)
