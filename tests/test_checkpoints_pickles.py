"""Whole-model pickles (reference repo / AWD-LSTM, pytorch/examples word_language_model) in both torch
serialisations, read without their source code through the restricted unpickler."""
from __future__ import annotations

import pickle
import sys
import zipfile

import numpy as np
import pytest
import torch
from scipy.stats import invgamma
from test_checkpoints_fixtures import FOREIGN_MODULES, hand_timescales, save_awd, save_wlm

from timescale_probe.checkpoints import load_checkpoint
from timescale_probe.checkpoints.safe_unpickle import (
    InertAttribute,
    InertObject,
    load_torch_file_restricted,
    resolve_global,
)
from timescale_probe.errors import CheckpointError

SERIALISATIONS = [pytest.param(False, id="zip"), pytest.param(True, id="legacy")]


@pytest.fixture(scope="module")
def awd_files(tmp_path_factory):
    """AWD-LSTM files: {(legacy, mts): (path, expected tensors)} plus variants."""
    d = tmp_path_factory.mktemp("awd")
    files = {}
    for legacy in (False, True):
        for mts in (False, True):
            path = d / f"awd_{'legacy' if legacy else 'zip'}_{'mts' if mts else 'base'}.pt"
            files[(legacy, mts)] = (path, save_awd(path, legacy=legacy, mts=mts))
    return files


@pytest.mark.parametrize("legacy", SERIALISATIONS)
def test_awd_pickle_layers_equal_the_raw_weights(awd_files, legacy):
    path, expected = awd_files[(legacy, False)]
    # another test may have left a module called 'model' behind (pytorch/examples' name), so compare
    # the foreign modules loaded before and after: the load imports none, and touches none that are there
    before = {m: sys.modules.get(m) for m in FOREIGN_MODULES}
    stack = load_checkpoint(path)
    assert {m: sys.modules.get(m) for m in FOREIGN_MODULES} == before     # nothing was imported
    assert stack.provenance.source_format == "pickle:awd-lstm"
    assert stack.layer_sizes == [12, 12, 8] and stack.input_size == 8
    for layer, want in zip(stack.layers, expected["layers"]):
        for k, v in want.items():
            assert torch.equal(getattr(layer, k), v), k
    assert torch.equal(stack.embedding, expected["embedding"]) and stack.tied
    assert torch.equal(stack.decoder_bias, expected["decoder_bias"])
    assert stack.vocab is None and stack.vocab_size == 50
    cfg = stack.config
    assert cfg["arch"] == "awd-lstm" and cfg["tie_weights"] is True and cfg["class"] == "model.RNNModel"
    assert (cfg["dropout"], cfg["dropouti"], cfg["dropouth"], cfg["dropoute"], cfg["wdrop"]) == (0.4, 0.4, 0.25, 0.1, 0.5)
    assert (cfg["ninp"], cfg["nhid"], cfg["nlayers"], cfg["rnn_type"]) == (8, 12, 3, "LSTM")
    notes = " | ".join(stack.provenance.notes)
    assert "used the raw" in notes and "no vocabulary" in notes
    assert "list of 3 objects (model.RNNModel, splitcross.SplitCrossEntropyLoss, torch.optim.asgd.ASGD)" in notes
    # 50x8 tied embedding + decoder bias 50 + layers
    n_layers = sum(4 * h * (i + h) + 8 * h for i, h in ((8, 12), (12, 12), (12, 8)))
    assert stack.num_parameters() == n_layers + 50 * 8 + 50


@pytest.mark.parametrize("legacy", SERIALISATIONS)
def test_awd_timescales_by_hand(awd_files, legacy):
    path, expected = awd_files[(legacy, False)]
    table = load_checkpoint(path).timescales_table()
    for k, want in enumerate(expected["layers"], 1):
        got = table.loc[table.layer == k, "T_bias"].to_numpy()
        np.testing.assert_allclose(got, hand_timescales(want["bias_ih"], want["bias_hh"]), rtol=1e-12)
        fb = table.loc[table.layer == k, "forget_bias"].to_numpy()
        H = len(fb)
        np.testing.assert_allclose(fb, want["bias_ih"][H:2 * H].double() + want["bias_hh"][H:2 * H].double())


@pytest.mark.parametrize("legacy", SERIALISATIONS)
def test_reference_mts_model(awd_files, legacy):
    path, _ = awd_files[(legacy, True)]
    stack = load_checkpoint(path)
    assert stack.provenance.source_format == "pickle:awd-lstm"
    assert stack.config["class"] == "model_mts.RNNModel"
    assert stack.mts_spec is not None and stack.mts_spec["name"] == "paper-lm"
    table = stack.timescales_table()
    T1 = table.loc[table.layer == 1, "T_bias"].to_numpy()
    np.testing.assert_allclose(T1, [3.0] * 6 + [4.0] * 6, rtol=1e-6)
    T2 = table.loc[table.layer == 2, "T_bias"].to_numpy()
    want = invgamma.isf(np.linspace(0, 1, 13), a=0.56, scale=1)[1:]
    np.testing.assert_allclose(T2[:-1], want[:-1], rtol=1e-4)       # float32 biases
    assert T2[-1] == 0.0 and np.isneginf(table.loc[table.layer == 2, "forget_bias"].to_numpy()[-1])
    assert any("layer 2: non-finite forget biases kept as stored: 1 at -inf (T=0)" in n for n in stack.provenance.notes)


@pytest.mark.parametrize("legacy", SERIALISATIONS)
def test_awd_without_optimizer_and_awd_style_dropconnect(tmp_path, legacy):
    path = tmp_path / "awd2.pt"
    expected = save_awd(path, legacy=legacy, with_optimizer=False, reference_style=False, seed=5)
    stack = load_checkpoint(path)
    assert stack.provenance.source_format == "pickle:awd-lstm"
    assert any("list of 2 objects" in n for n in stack.provenance.notes)
    for layer, want in zip(stack.layers, expected["layers"]):
        assert torch.equal(layer.weight_hh, want["weight_hh"])


def test_awd_before_any_forward_has_only_raw(tmp_path):
    path = tmp_path / "awd3.pt"
    expected = save_awd(path, forward=False)
    stack = load_checkpoint(path)
    assert any("read from weight_hh_l0_raw" in n for n in stack.provenance.notes)
    assert torch.equal(stack.layers[2].weight_hh, expected["layers"][2]["weight_hh"])


@pytest.mark.parametrize("legacy", SERIALISATIONS)
@pytest.mark.parametrize("tie", [False, True])
def test_word_language_model_pickle(tmp_path, legacy, tie):
    path = tmp_path / "wlm.pt"
    model = save_wlm(path, legacy=legacy, tie=tie)
    stack = load_checkpoint(path)
    assert stack.provenance.source_format == "pickle:word_language_model"
    assert stack.layer_sizes == [6, 6] and stack.tied is tie
    for k, layer in enumerate(stack.layers):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            assert torch.equal(getattr(layer, name), getattr(model.rnn, f"{name}_l{k}").detach())
        np.testing.assert_allclose(
            stack.timescales_table().query(f"layer == {k + 1}")["T_bias"],
            hand_timescales(getattr(model.rnn, f"bias_ih_l{k}").detach(), getattr(model.rnn, f"bias_hh_l{k}").detach()),
            rtol=1e-12)
    assert torch.equal(stack.embedding, model.encoder.weight.detach())
    assert torch.equal(stack.decoder_bias, model.decoder.bias.detach())
    cfg = stack.config
    assert cfg["arch"] == "word_language_model" and cfg["tie_weights"] is tie and cfg["dropout"] == 0.2
    assert cfg["nlayers"] == 2 and cfg["nhid"] == 6


@pytest.mark.parametrize("legacy", SERIALISATIONS)
def test_whole_pickled_nn_lstm(tmp_path, legacy):
    lstm = torch.nn.LSTM(3, 4, num_layers=2)
    kwargs = {"_use_new_zipfile_serialization": False} if legacy else {}
    torch.save(lstm, tmp_path / "lstm.pt", **kwargs)
    stack = load_checkpoint(tmp_path / "lstm.pt")
    assert stack.provenance.source_format == "pickle:module"
    assert torch.equal(stack.layers[1].weight_ih, lstm.weight_ih_l1.detach())


def test_weights_only_refuses_these_files(awd_files):
    """The fallback is really exercised: torch's own safe loader cannot read whole-model pickles."""
    for legacy in (False, True):
        with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
            torch.load(awd_files[(legacy, False)][0], weights_only=True)


def test_inert_stand_ins_record_classes_and_the_bound_method(awd_files):
    obj = load_torch_file_restricted(awd_files[(False, False)][0])
    model, criterion, optimizer = obj
    assert isinstance(model, InertObject) and model.tsprobe_class == "model.RNNModel"
    assert criterion.tsprobe_class == "splitcross.SplitCrossEntropyLoss" and optimizer.tsprobe_class == "torch.optim.asgd.ASGD"
    wd = model.attributes["_modules"]["rnns"].attributes["_modules"]["0"]
    assert wd.tsprobe_class == "weight_drop.WeightDrop"
    lstm = wd.attributes["_modules"]["module"]
    assert lstm.tsprobe_class == "torch.nn.modules.rnn.LSTM"
    bound = lstm.attributes["flatten_parameters"]
    assert isinstance(bound, InertAttribute) and bound.name == "widget_demagnetizer_y2k_edition" and bound.owner is wd
    assert lstm.attributes["input_size"] == 8 and lstm.attributes["hidden_size"] == 12


def test_stand_in_classes_are_per_load_and_inert():
    cache: dict = {}
    cls = resolve_global("model", "RNNModel", cache)
    assert resolve_global("model", "RNNModel", cache) is cls and resolve_global("model", "RNNModel", {}) is not cls
    obj = cls(1, 2, x=3)
    obj.__setstate__({"a": 1})
    assert obj.attributes == {"a": 1} and obj.tsprobe_args == (1, 2)


def test_truncated_awd_pickles(awd_files, tmp_path):
    for legacy in (False, True):
        data = awd_files[(legacy, False)][0].read_bytes()
        cut = tmp_path / f"cut_{legacy}.pt"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError, match="truncated|corrupt"):
            load_checkpoint(cut)


def test_zip_with_missing_storage_record(awd_files, tmp_path):
    src = awd_files[(False, False)][0]
    bad = tmp_path / "missing.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            if not item.filename.endswith("/data/0"):
                zout.writestr(item, zin.read(item.filename))
    with pytest.raises(CheckpointError, match="missing|corrupt"):
        load_checkpoint(bad)
