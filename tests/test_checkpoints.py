"""Our own checkpoint format, plain state dicts (nn.LSTM, nn.LSTMCell, LMs, AWD names), safetensors,
Keras/TF1 .npz, and format detection."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
import torch.nn as nn
from test_checkpoints_fixtures import hand_timescales

from timescale_probe.checkpoints import FORMATS, load_checkpoint, read_card, save_checkpoint, sniff
from timescale_probe.checkpoints.ours import is_our_payload, payload_to_stack, stack_to_payload
from timescale_probe.errors import CheckpointError, OptionError
from timescale_probe.fileio import file_sha256
from timescale_probe.stack import LSTMLayer, LSTMStack
from timescale_probe.timescales import paper_lm_spec


def _stack(sizes=(6, 4), inp=4, vocab=9, tied=True, seed=0) -> LSTMStack:
    g = torch.Generator().manual_seed(seed)
    layers, prev = [], inp
    for H in sizes:
        layers.append(LSTMLayer(torch.randn(4 * H, prev, generator=g), torch.randn(4 * H, H, generator=g),
                                torch.randn(4 * H, generator=g), torch.randn(4 * H, generator=g)))
        prev = H
    emb = torch.randn(vocab, inp, generator=g)
    dec = emb if tied else torch.randn(vocab, sizes[-1], generator=g)
    if tied:
        assert sizes[-1] == inp
    return LSTMStack(layers, embedding=emb, decoder_weight=dec, decoder_bias=torch.randn(vocab, generator=g),
                     vocab=[f"w{i}" for i in range(vocab)], config={"tie_weights": tied, "dropout": 0.4},
                     mts_spec=paper_lm_spec().to_dict())


def _save_sd(path, sd, legacy=False):
    kwargs = {"_use_new_zipfile_serialization": False} if legacy else {}
    torch.save(sd, path, **kwargs)
    return path


# --------------------------------------------------------------------------- our format

def test_our_format_round_trip_tied(tmp_path):
    stack = _stack(sizes=(6, 4), inp=4, tied=True)
    path = save_checkpoint(tmp_path / "m.pt", stack, card={"seed": 141, "epochs": 3})
    raw = torch.load(path, weights_only=True)             # plain data only
    assert raw["format"] == "tsprobe-checkpoint" and raw["format_version"] == 1
    assert raw["stack"]["decoder_weight"] is None and raw["stack"]["tied"] is True
    back = load_checkpoint(path)
    assert back.provenance.source_format == "tsprobe-checkpoint"
    assert back.provenance.sha256 == file_sha256(path)
    for a, b in zip(stack.layers, back.layers):
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            assert torch.equal(getattr(a, k), getattr(b, k))
    assert torch.equal(back.embedding, stack.embedding) and back.tied
    assert back.vocab == stack.vocab and back.config == stack.config and back.mts_spec == stack.mts_spec
    assert back.num_parameters() == stack.num_parameters()
    assert read_card(path) == {"seed": 141, "epochs": 3}


def test_our_format_untied_and_parameter_count(tmp_path):
    stack = _stack(sizes=(6, 5), inp=4, tied=False)
    back = load_checkpoint(save_checkpoint(tmp_path / "u.pt", stack))
    assert not back.tied and torch.equal(back.decoder_weight, stack.decoder_weight)
    expected = sum(4 * H * (i + H) + 8 * H for i, H in ((4, 6), (6, 5))) + 9 * 4 + 9 * 5 + 9
    assert back.num_parameters() == expected == 638


def test_our_format_wrong_version(tmp_path):
    payload = stack_to_payload(_stack())
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "v99.pt")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "v99.pt")


def test_read_card_of_foreign_file_is_empty(tmp_path):
    path = _save_sd(tmp_path / "sd.pt", nn.LSTM(3, 2).state_dict())
    assert read_card(path) == {}
    assert is_our_payload(stack_to_payload(_stack())) and not is_our_payload({"format": "x"})
    with pytest.raises(CheckpointError, match="malformed"):
        payload_to_stack({"format": "tsprobe-checkpoint", "format_version": 1})


# --------------------------------------------------------------------------- plain state dicts

@pytest.mark.parametrize("legacy", [False, True])
def test_nn_lstm_state_dict_three_layers(tmp_path, legacy):
    torch.manual_seed(1)
    lstm = nn.LSTM(5, 7, num_layers=3)
    with torch.no_grad():
        for k in range(3):
            getattr(lstm, f"bias_hh_l{k}").uniform_(-3, 5)
    stack = load_checkpoint(_save_sd(tmp_path / "lstm.pt", lstm.state_dict(), legacy))
    assert stack.provenance.source_format == "state-dict:nn.LSTM"
    assert stack.layer_sizes == [7, 7, 7] and stack.input_size == 5 and stack.vocab is None
    assert any("no vocabulary" in n for n in stack.provenance.notes)
    table = stack.timescales_table()
    for k in range(3):
        layer = stack.layers[k]
        assert torch.equal(layer.weight_hh, getattr(lstm, f"weight_hh_l{k}").detach())
        want = hand_timescales(getattr(lstm, f"bias_ih_l{k}").detach(), getattr(lstm, f"bias_hh_l{k}").detach())
        got = table.loc[table.layer == k + 1, "T_bias"].to_numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert stack.num_parameters() == sum(p.numel() for p in lstm.parameters())


def test_timescale_hand_computation_fixed_biases(tmp_path):
    """b_f = b_ih + b_hh = 0.5 + 0.42732 = 0.92732 -> T = 3.0000 (docs/methods.md §1: T=3 <-> 0.92732)."""
    lstm = nn.LSTM(2, 3)
    with torch.no_grad():
        lstm.bias_ih_l0.zero_()
        lstm.bias_hh_l0.zero_()
        lstm.bias_ih_l0[3:6] = 0.5
        lstm.bias_hh_l0[3:6] = torch.tensor([0.42732, 0.75869, -1.04132])
    stack = load_checkpoint(_save_sd(tmp_path / "b.pt", lstm.state_dict()))
    T = stack.timescales_table()["T_bias"].to_numpy()
    np.testing.assert_allclose(T, [3.0, 4.0, 1.0], atol=2e-5)
    Tc = stack.timescales_table("chrono")["T_bias"].to_numpy()
    np.testing.assert_allclose(Tc, 1 + np.exp([0.92732, 1.25869, -0.54132]), rtol=1e-6)


def test_lstm_without_bias_gets_zeros_and_a_note(tmp_path):
    stack = load_checkpoint(_save_sd(tmp_path / "nb.pt", nn.LSTM(3, 4, bias=False).state_dict()))
    assert torch.equal(stack.layers[0].bias_ih, torch.zeros(16))
    assert any("bias=False" in n for n in stack.provenance.notes)
    np.testing.assert_allclose(stack.timescales_table()["T_bias"], 1 / np.log(2))  # sigmoid(0)=1/2


def test_lstm_cell_state_dict(tmp_path):
    cell = nn.LSTMCell(3, 5)
    stack = load_checkpoint(_save_sd(tmp_path / "cell.pt", cell.state_dict()))
    assert stack.provenance.source_format == "state-dict:nn.LSTMCell"
    assert stack.layer_sizes == [5] and torch.equal(stack.layers[0].weight_ih, cell.weight_ih.detach())


def test_many_cells_in_numeric_order(tmp_path):
    sizes = [2 + i for i in range(12)]                    # cells.10 and cells.11 must come after cells.9
    cells = nn.ModuleList(nn.LSTMCell(3 if i == 0 else sizes[i - 1], h) for i, h in enumerate(sizes))
    stack = load_checkpoint(_save_sd(tmp_path / "cells.pt", cells.state_dict()))
    assert stack.layer_sizes == sizes
    assert stack.provenance.source_format == "state-dict:nn.LSTMCell"


class _LM(nn.Module):
    def __init__(self, V=20, E=6, H=6, L=2, tie=True):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, L)
        self.fc = nn.Linear(H, V)
        if tie:
            self.fc.weight = self.embedding.weight


@pytest.mark.parametrize("tie", [True, False])
def test_lm_state_dict_embedding_decoder_tied(tmp_path, tie):
    lm = _LM(tie=tie)
    stack = load_checkpoint(_save_sd(tmp_path / "lm.pt", lm.state_dict()))
    assert stack.provenance.source_format == "state-dict:lm"
    assert torch.equal(stack.embedding, lm.embedding.weight.detach())
    assert torch.equal(stack.decoder_weight, lm.fc.weight.detach())
    assert torch.equal(stack.decoder_bias, lm.fc.bias.detach())
    assert stack.tied is tie and stack.config["tie_weights"] is tie and stack.vocab_size == 20
    n = sum(p.numel() for p in lm.parameters())          # parameters() counts a tied matrix once
    assert stack.num_parameters() == n


def test_decoder_under_an_unknown_name_is_found_by_its_shape(tmp_path):
    """A head called 'dec' or 'hidden2word' is the one (V, H_last) weight beside a V-row embedding."""
    class Odd(nn.Module):
        def __init__(self, extra: bool):
            super().__init__()
            self.emb = nn.Embedding(20, 4)
            self.rnn = nn.LSTM(4, 6, 2)
            self.hidden2word = nn.Linear(6, 20)
            if extra:                                    # a second candidate: ambiguous, so none is taken
                self.aux = nn.Linear(6, 20)

    m = Odd(False)
    stack = load_checkpoint(_save_sd(tmp_path / "odd.pt", m.state_dict()))
    assert torch.equal(stack.decoder_weight, m.hidden2word.weight.detach())
    assert torch.equal(stack.decoder_bias, m.hidden2word.bias.detach()) and not stack.tied
    assert any("hidden2word.weight found by its shape" in n for n in stack.provenance.notes)
    two = load_checkpoint(_save_sd(tmp_path / "two.pt", Odd(True).state_dict()))
    assert two.decoder_weight is None and any("no decoder found" in n for n in two.provenance.notes)

    sd = {("wordvecs.weight" if k == "emb.weight" else k): v for k, v in m.state_dict().items()}
    sd = {("decoder." + k.split(".", 1)[1] if k.startswith("hidden2word.") else k): v for k, v in sd.items()}
    named_head = load_checkpoint(_save_sd(tmp_path / "vecs.pt", sd))  # the embedding's name is the unknown one
    assert torch.equal(named_head.embedding, m.emb.weight.detach()) and named_head.vocab_size == 20
    assert any("wordvecs.weight found by its shape" in n for n in named_head.provenance.notes)


def test_numbered_single_layer_lstms_that_chain_are_one_stack(tmp_path):
    """'lstm1', 'lstm2', ... (a stack written by hand) are read in the order of their numbers when each
    reads the previous one's output; numbered LSTMs that do not chain are still refused."""
    class ByHand(nn.Module):
        def __init__(self, second_input: int):
            super().__init__()
            self.embedding = nn.Embedding(20, 4)
            self.lstm1 = nn.LSTM(4, 6)
            self.lstm2 = nn.LSTM(second_input, 5)
            self.lstm10 = nn.LSTM(5, 3)                  # natural order: 1, 2, 10
            self.fc = nn.Linear(3, 20)

    torch.manual_seed(4)
    m = ByHand(6)
    stack = load_checkpoint(_save_sd(tmp_path / "hand.pt", m.state_dict()))
    assert stack.layer_sizes == [6, 5, 3] and stack.input_size == 4 and stack.vocab_size == 20
    for layer, lstm in zip(stack.layers, (m.lstm1, m.lstm2, m.lstm10)):
        assert torch.equal(layer.weight_hh, lstm.weight_hh_l0.detach())
        assert torch.equal(layer.bias_ih + layer.bias_hh, (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach())
    assert torch.equal(stack.decoder_weight, m.fc.weight.detach())
    assert any("'lstm1.', 'lstm2.', 'lstm10.' read as one stack" in n for n in stack.provenance.notes)
    with pytest.raises(CheckpointError, match="several separate LSTMs"):
        load_checkpoint(_save_sd(tmp_path / "towers.pt", ByHand(4).state_dict()))   # lstm2 reads the embedding


def test_word_language_model_state_dict_in_a_nested_dict(tmp_path):
    class RNNModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Embedding(15, 4)
            self.rnn = nn.LSTM(4, 5, 2)
            self.decoder = nn.Linear(5, 15)

    m = RNNModel()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    for p in m.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    path = _save_sd(tmp_path / "nested.pt", {"epoch": 3, "model_state_dict": m.state_dict(), "optimizer": opt.state_dict()})
    stack = load_checkpoint(path)
    assert stack.provenance.source_format == "state-dict:lm" and stack.layer_sizes == [5, 5]
    assert torch.equal(stack.decoder_weight, m.decoder.weight.detach()) and not stack.tied


def _awd_state_dict(both=True):
    torch.manual_seed(3)
    sd = {"encoder.weight": torch.randn(11, 4)}
    sizes = [(4, 6), (6, 6), (6, 4)]
    for l, (i, h) in enumerate(sizes):
        p = f"rnns.{l}.module."
        sd[p + "weight_ih_l0"] = torch.randn(4 * h, i)
        sd[p + "weight_hh_l0_raw"] = torch.randn(4 * h, h)
        if both:
            sd[p + "weight_hh_l0"] = torch.zeros(4 * h, h)   # the last dropped copy
        sd[p + "bias_ih_l0"] = torch.randn(4 * h)
        sd[p + "bias_hh_l0"] = torch.randn(4 * h)
    sd["decoder.weight"] = sd["encoder.weight"]
    sd["decoder.bias"] = torch.zeros(11)
    return sd


@pytest.mark.parametrize("both", [True, False])
def test_awd_state_dict_prefers_raw(tmp_path, both):
    sd = _awd_state_dict(both)
    stack = load_checkpoint(_save_sd(tmp_path / "awd_sd.pt", sd))
    assert stack.provenance.source_format == "state-dict:lm"
    assert stack.config["arch"] == "awd-lstm" and stack.config["tie_weights"] is True
    assert stack.layer_sizes == [6, 6, 4] and stack.tied
    for l in range(3):
        assert torch.equal(stack.layers[l].weight_hh, sd[f"rnns.{l}.module.weight_hh_l0_raw"])
    notes = " ".join(stack.provenance.notes)
    assert ("used the raw" in notes) if both else ("read from weight_hh_l0_raw" in notes)


def test_dataparallel_prefix_and_dtypes(tmp_path):
    lm = _LM(tie=False).double()
    sd = {f"module.{k}": v for k, v in lm.state_dict().items()}
    stack = load_checkpoint(_save_sd(tmp_path / "dp.pt", sd))
    assert stack.layers[0].weight_ih.dtype == torch.float32
    assert torch.allclose(stack.layers[1].bias_hh, lm.lstm.bias_hh_l1.float())
    assert stack.embedding is not None and stack.decoder_weight is not None


def test_bidirectional_refused(tmp_path):
    path = _save_sd(tmp_path / "bi.pt", nn.LSTM(3, 4, bidirectional=True).state_dict())
    with pytest.raises(CheckpointError, match=r"bidirectional recurrent layer \(\w+_l0_reverse\)"):
        load_checkpoint(path)


def test_gru_read_and_projection_refused(tmp_path):
    """A GRU state dict is a GRU stack now (tests/test_recurrent*.py test the maths); a (5H, H)
    recurrent matrix is no cell at all; LSTM projections stay refused."""
    stack = load_checkpoint(_save_sd(tmp_path / "gru.pt", nn.GRU(3, 4).state_dict()))
    assert stack.cell.kind == "gru" and stack.provenance.source_format == "state-dict:nn.GRU"
    with pytest.raises(CheckpointError, match=r"no LSTM \(4H, H\), GRU \(3H, H\) or RNN"):
        load_checkpoint(_save_sd(tmp_path / "odd.pt", {"weight_ih_l0": torch.zeros(20, 3), "weight_hh_l0": torch.zeros(20, 4)}))
    with pytest.raises(CheckpointError, match="projections"):
        load_checkpoint(_save_sd(tmp_path / "proj.pt", nn.LSTM(3, 4, proj_size=2).state_dict()))


def test_two_separate_lstms_refused(tmp_path):
    sd = {**{f"enc.{k}": v for k, v in nn.LSTM(3, 4).state_dict().items()},
          **{f"dec.{k}": v for k, v in nn.LSTM(4, 4).state_dict().items()}}
    with pytest.raises(CheckpointError, match="several separate LSTMs"):
        load_checkpoint(_save_sd(tmp_path / "two.pt", sd))


def test_no_lstm_in_state_dict(tmp_path):
    with pytest.raises(CheckpointError, match="no recurrent weights found.*weight_ih_l0"):
        load_checkpoint(_save_sd(tmp_path / "lin.pt", nn.Linear(3, 4).state_dict()))


def test_inconsistent_layer_chain(tmp_path):
    sd = {**{f"rnns.0.module.{k}": v for k, v in nn.LSTM(3, 4).state_dict().items()},
          **{f"rnns.1.module.{k}": v for k, v in nn.LSTM(5, 4).state_dict().items()}}
    with pytest.raises(CheckpointError, match="layer 2 expects input size 5 but layer 1 has 4"):
        load_checkpoint(_save_sd(tmp_path / "chain.pt", sd))


# --------------------------------------------------------------------------- forced formats

def test_forced_formats(tmp_path):
    lm = _LM()
    path = _save_sd(tmp_path / "lm.pt", lm.state_dict())
    a = load_checkpoint(path, format="state-dict")
    b = load_checkpoint(path, format="pickle")            # the restricted unpickler reads state dicts too
    for la, lb in zip(a.layers, b.layers):
        assert torch.equal(la.weight_hh, lb.weight_hh) and torch.equal(la.bias_hh, lb.bias_hh)
    assert torch.equal(a.embedding, b.embedding) and b.tied
    with pytest.raises(CheckpointError, match="not a tsprobe checkpoint"):
        load_checkpoint(path, format="tsprobe")
    with pytest.raises(OptionError, match="unknown checkpoint format 'onnx'"):
        load_checkpoint(path, format="onnx")
    with pytest.raises(CheckpointError, match="cannot be read as --format keras-npz"):
        load_checkpoint(path, format="keras-npz")
    assert "auto" in FORMATS and "pickle" in FORMATS


# --------------------------------------------------------------------------- safetensors

def _write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return path


def test_safetensors_state_dict(tmp_path):
    lm = _LM(tie=False)
    sd = {k: v.detach() for k, v in lm.state_dict().items()}
    path = _write_safetensors(tmp_path / "lm.safetensors", sd)
    assert sniff(path) == "safetensors"
    stack = load_checkpoint(path)
    assert stack.provenance.source_format == "state-dict:lm"
    assert torch.equal(stack.layers[1].weight_ih, sd["lstm.weight_ih_l1"])
    assert any("safetensors" in n for n in stack.provenance.notes)


def test_npz_under_state_dict_names_is_that_state_dict(tmp_path):
    """``np.savez(f, **{k: v.numpy() for k, v in sd.items()})``, a pickle-free way people share weights:
    read as the state dict it names, exactly; a GRU's too; ``--format state-dict`` refuses a Keras npz."""
    lm = _LM(tie=False)
    sd = {k: v.detach() for k, v in lm.state_dict().items()}
    np.savez(tmp_path / "lm.npz", **{k: v.numpy() for k, v in sd.items()}, note=np.array(["not a tensor"]))
    stack = load_checkpoint(tmp_path / "lm.npz")
    ref = load_checkpoint(_write_safetensors(tmp_path / "lm.safetensors", sd))
    assert stack.provenance.source_format == ref.provenance.source_format == "state-dict:lm"
    for a, b in zip(stack.layers, ref.layers):
        assert torch.equal(a.bias_hh, b.bias_hh) and torch.equal(a.weight_ih, b.weight_ih)
    assert torch.equal(stack.decoder_weight, sd["fc.weight"])
    assert any(".npz of arrays under PyTorch state-dict names" in n for n in stack.provenance.notes)
    gru = nn.GRU(6, 5, 2)
    np.savez(tmp_path / "gru.npz", **{k: v.detach().numpy() for k, v in gru.state_dict().items()})
    g = load_checkpoint(tmp_path / "gru.npz")
    assert g.cell.kind == "gru" and torch.equal(g.layers[1].bias_ih, gru.bias_ih_l1.detach())
    np.savez(tmp_path / "keras.npz", **{"lstm/kernel": np.zeros((3, 8)), "lstm/recurrent_kernel": np.zeros((2, 8)),
                                        "lstm/bias": np.zeros(8)})
    with pytest.raises(CheckpointError, match="without PyTorch state-dict names"):
        load_checkpoint(tmp_path / "keras.npz", format="state-dict")
    assert load_checkpoint(tmp_path / "keras.npz").provenance.source_format == "keras-npz"


# --------------------------------------------------------------------------- Keras / TF1 .npz

def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _torch_step(stack, x, h, c):
    """One step of each layer of ``stack`` through nn.LSTM (PyTorch gate order)."""
    outs = []
    inp = torch.from_numpy(x).float()[None, None]
    for k, layer in enumerate(stack.layers):
        lstm = nn.LSTM(layer.input_size, layer.hidden_size)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(lstm, f"{name}_l0").copy_(getattr(layer, name))
        out, (hn, cn) = lstm(inp, (torch.from_numpy(h[k]).float()[None, None], torch.from_numpy(c[k]).float()[None, None]))
        outs.append((hn[0, 0].detach().numpy(), cn[0, 0].detach().numpy()))
        inp = out
    return outs


def test_keras_npz_matches_keras_equations(tmp_path):
    rng = np.random.default_rng(0)
    I, H1, H2, V = 3, 4, 5, 7
    arrays = {
        "embedding/embeddings:0": rng.normal(size=(V, I)),
        "lstm/lstm_cell/kernel:0": rng.normal(size=(I, 4 * H1)), "lstm/lstm_cell/recurrent_kernel:0": rng.normal(size=(H1, 4 * H1)),
        "lstm/lstm_cell/bias:0": rng.normal(size=4 * H1),
        "lstm_1/lstm_cell_1/kernel:0": rng.normal(size=(H1, 4 * H2)), "lstm_1/lstm_cell_1/recurrent_kernel:0": rng.normal(size=(H2, 4 * H2)),
        "lstm_1/lstm_cell_1/bias:0": rng.normal(size=4 * H2),
        "dense/kernel:0": rng.normal(size=(H2, V)), "dense/bias:0": rng.normal(size=V),
    }
    np.savez(tmp_path / "keras.npz", **arrays)
    stack = load_checkpoint(tmp_path / "keras.npz")
    assert stack.provenance.source_format == "keras-npz" and stack.layer_sizes == [H1, H2]
    assert stack.embedding.shape == (V, I) and stack.decoder_weight.shape == (V, H2)
    x = rng.normal(size=I)
    h = [rng.normal(size=H1), rng.normal(size=H2)]
    c = [rng.normal(size=H1), rng.normal(size=H2)]
    got = _torch_step(stack, x, h, c)
    inp = x
    for k, p in enumerate(["lstm/lstm_cell/", "lstm_1/lstm_cell_1/"]):
        z = inp @ arrays[p + "kernel:0"] + h[k] @ arrays[p + "recurrent_kernel:0"] + arrays[p + "bias:0"]
        i, f, cc, o = np.split(z, 4)                      # Keras order i, f, c, o
        c_new = _sigmoid(f) * c[k] + _sigmoid(i) * np.tanh(cc)
        h_new = _sigmoid(o) * np.tanh(c_new)
        np.testing.assert_allclose(got[k][1], c_new, atol=1e-5)
        np.testing.assert_allclose(got[k][0], h_new, atol=1e-5)
        inp = h_new
    b_f = arrays["lstm/lstm_cell/bias:0"][H1:2 * H1]
    np.testing.assert_allclose(stack.timescales_table().query("layer == 1")["T_bias"], -1 / np.log(_sigmoid(b_f)), rtol=1e-5)


@pytest.mark.parametrize("forget_bias", [1.0, 0.0])
def test_tf1_npz_reorders_gates_and_adds_forget_bias(tmp_path, forget_bias):
    rng = np.random.default_rng(1)
    I, H = 3, 4
    kernel, bias = rng.normal(size=(I + H, 4 * H)), rng.normal(size=4 * H)
    np.savez(tmp_path / "tf1.npz", **{"rnn/lstm_cell/kernel": kernel, "rnn/lstm_cell/bias": bias})
    stack = load_checkpoint(tmp_path / "tf1.npz", tf_forget_bias=forget_bias)
    assert stack.provenance.source_format == "tf1-npz" and stack.layer_sizes == [H] and stack.input_size == I
    x, h, c = rng.normal(size=I), [rng.normal(size=H)], [rng.normal(size=H)]
    got = _torch_step(stack, x, h, c)[0]
    z = np.concatenate([x, h[0]]) @ kernel + bias
    i, j, f, o = np.split(z, 4)                           # TF1 order i, j, f, o
    c_new = _sigmoid(f + forget_bias) * c[0] + _sigmoid(i) * np.tanh(j)
    np.testing.assert_allclose(got[1], c_new, atol=1e-5)
    np.testing.assert_allclose(got[0], _sigmoid(o) * np.tanh(c_new), atol=1e-5)
    T = stack.timescales_table()["T_bias"].to_numpy()
    np.testing.assert_allclose(T, -1 / np.log(_sigmoid(bias[2 * H:3 * H] + forget_bias)), rtol=1e-5)
    forced = load_checkpoint(tmp_path / "tf1.npz", format="tf1-npz", tf_forget_bias=forget_bias)
    assert torch.equal(forced.layers[0].bias_ih, stack.layers[0].bias_ih)


def test_keras_positional_get_weights(tmp_path):
    rng = np.random.default_rng(2)
    V, I, H = 6, 3, 3
    weights = [rng.normal(size=(V, I)), rng.normal(size=(I, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H),
               rng.normal(size=(H, V)), rng.normal(size=V)]
    np.savez(tmp_path / "gw.npz", *weights)
    stack = load_checkpoint(tmp_path / "gw.npz")
    assert stack.layer_sizes == [H] and stack.embedding.shape == (V, I)
    assert torch.allclose(stack.decoder_weight, torch.from_numpy(weights[4].T).float())
    assert torch.allclose(stack.layers[0].weight_hh, torch.from_numpy(weights[2].T).float())
    assert any("by position" in n for n in stack.provenance.notes)


def test_npz_and_npy_of_arrays_are_not_checkpoints(tmp_path):
    np.savez(tmp_path / "arrays.npz", T=np.ones(5), layer=np.arange(5))
    with pytest.raises(CheckpointError, match="fit-distribution"):
        load_checkpoint(tmp_path / "arrays.npz")
    np.save(tmp_path / "t.npy", np.ones(4))
    with pytest.raises(CheckpointError, match=r"NumPy array \(\.npy\).*fit-distribution"):
        load_checkpoint(tmp_path / "t.npy")


def test_sniff_kinds(tmp_path):
    (tmp_path / "a.txt").write_text("hello\nworld\n")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    (tmp_path / "c.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(40))
    torch.save({"w": torch.ones(1)}, tmp_path / "d.pt")
    torch.save({"w": torch.ones(1)}, tmp_path / "e.pt", _use_new_zipfile_serialization=False)
    kinds = [sniff(tmp_path / n) for n in ("a.txt", "b.png", "c.h5", "d.pt", "e.pt")]
    assert kinds == ["text", "png", "hdf5", "torch-zip", "pickle"]
    with pytest.raises(CheckpointError, match="HDF5"):
        load_checkpoint(tmp_path / "c.h5")


def test_weights_only_first_restricted_reader_only_for_whole_pickles(tmp_path, monkeypatch):
    """Our format and state dicts never reach the restricted unpickler; torch.load(weights_only=True) reads them."""
    import timescale_probe.checkpoints.loader as loader

    calls = []
    real_load = torch.load

    def spy_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    def no_restricted(path):
        raise AssertionError("restricted unpickler used for a weights-only file")

    monkeypatch.setattr(loader.torch, "load", spy_load)
    monkeypatch.setattr(loader, "load_torch_file_restricted", no_restricted)
    load_checkpoint(save_checkpoint(tmp_path / "ours.pt", _stack()))
    load_checkpoint(_save_sd(tmp_path / "sd.pt", _LM().state_dict(), legacy=True))
    assert calls == [True, True]


def test_stack_repr_is_short():
    """print(stack) names format, layers, sizes, vocabulary and shapes, and prints no tensor."""
    from timescale_probe.models import LanguageModel, LMConfig

    torch.manual_seed(0)
    stack = LanguageModel(LMConfig(vocab_size=300, emb_size=40, layer_sizes=(60, 50, 40),
                                   mts_spec=paper_lm_spec()), vocab=[f"w{i}" for i in range(300)]).to_stack()
    text = repr(stack)
    assert str(stack) == text and "\n" not in text and len(text) < 300
    assert "tensor" not in text and "sizes=[60, 50, 40]" in text and "input_size=40" in text
    assert "vocab=300 (stored)" in text and "embedding=300x40" in text and "tied" in text
    assert "'paper-lm'" in text and f"{stack.num_parameters():,}" in text and "format='memory'" in text
    assert "cell='lstm'" in text
    assert repr(stack.layers[0]) == "RecurrentLayer(cell=lstm, input_size=40, hidden_size=60)"
