"""The cell maths (timescale_probe.cells / activations / timescale_math) against closed forms and
PyTorch's fused modules; LanguageModel, MTS specs and our checkpoint format with GRU, RNN and
hard-sigmoid cells."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from timescale_probe.activations import activate, activate_np
from timescale_probe.cells import CellSpec, StepRecurrent, fused_module, recurrent_module
from timescale_probe.checkpoints import load_checkpoint, save_checkpoint
from timescale_probe.errors import CheckpointError, OptionError
from timescale_probe.models import LanguageModel, LMConfig, repackage_hidden
from timescale_probe.mts_specs import apply_mts_spec
from timescale_probe.timescale_math import forget_bias_to_timescale, timescale_to_forget_bias
from timescale_probe.timescales import parse_mts_spec

STANDARD = [CellSpec("lstm"), CellSpec("gru"), CellSpec("rnn", activation="tanh"), CellSpec("rnn", activation="relu")]


@pytest.mark.parametrize("cell", STANDARD, ids=lambda c: c.name)
def test_step_cell_equals_fused_module(cell):
    """The step cell computes exactly what PyTorch's fused kernel computes (float32, 1e-6)."""
    torch.manual_seed(0)
    fused = fused_module(3, 6, cell)
    step = StepRecurrent(3, 6, cell)
    step.load_state_dict(fused.state_dict())
    x = torch.randn(12, 4, 3)
    h0 = torch.randn(1, 4, 6)
    hx = (h0, torch.randn(1, 4, 6)) if cell.has_cell_state else h0
    with torch.no_grad():
        out_f, st_f = fused(x, hx)
        out_s, st_s = step(x, hx)
    torch.testing.assert_close(out_s, out_f, rtol=1e-6, atol=1e-6)
    for a, b in zip(st_s if cell.has_cell_state else [st_s], st_f if cell.has_cell_state else [st_f]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_fused_only_where_exact():
    assert all(c.is_fused for c in STANDARD)
    odd = [CellSpec("lstm", gate_activation="hard_sigmoid_keras2"), CellSpec("gru", reset_after=False),
           CellSpec("lstm", activation="relu"), CellSpec("rnn", activation="linear")]
    assert not any(c.is_fused for c in odd)
    assert all(isinstance(recurrent_module(2, 3, c), StepRecurrent) for c in odd)
    assert isinstance(recurrent_module(2, 3, CellSpec()), nn.LSTM)
    with pytest.raises(OptionError, match="gate_activation"):
        CellSpec("lstm", gate_activation="tanh")
    with pytest.raises(OptionError, match="reset_after"):
        CellSpec("lstm", reset_after=False)


def test_gru_reset_before_against_numpy():
    """Keras's reset_after=False GRU: n = tanh(W_in x + b_in + W_hn (r*h) + b_hn), h' = z h + (1-z) n,
    written out in numpy (float64) from the formula; the step cell agrees to float32 precision."""
    torch.manual_seed(1)
    cell = CellSpec("gru", gate_activation="hard_sigmoid_keras3", reset_after=False)
    m = StepRecurrent(3, 4, cell)
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        out, _ = m(x)
    W_ih, W_hh = m.weight_ih_l0.detach().double().numpy(), m.weight_hh_l0.detach().double().numpy()
    b_ih, b_hh = m.bias_ih_l0.detach().double().numpy(), m.bias_hh_l0.detach().double().numpy()
    H = 4
    h = np.zeros((2, H))
    ref = []
    for t in range(5):
        gi = x[t].double().numpy() @ W_ih.T + b_ih
        r = np.clip((gi[:, :H] + h @ W_hh[:H].T + b_hh[:H]) / 6 + 0.5, 0, 1)
        z = np.clip((gi[:, H:2 * H] + h @ W_hh[H:2 * H].T + b_hh[H:2 * H]) / 6 + 0.5, 0, 1)
        n = np.tanh(gi[:, 2 * H:] + (r * h) @ W_hh[2 * H:].T + b_hh[2 * H:])
        h = z * h + (1 - z) * n
        ref.append(h)
    np.testing.assert_allclose(out.numpy(), np.stack(ref), atol=1e-5)


def test_activations_match_their_definitions():
    x = np.linspace(-8, 8, 161)
    np.testing.assert_allclose(activate_np("hard_sigmoid_keras2", x), np.clip(0.2 * x + 0.5, 0, 1))
    np.testing.assert_allclose(activate_np("hard_sigmoid_keras3", x), np.minimum(np.maximum(x + 3, 0), 6) / 6)
    t = torch.from_numpy(x)
    np.testing.assert_allclose(activate("hard_sigmoid_keras3", t).numpy(), torch.nn.functional.hardsigmoid(t).numpy())
    for name in ("sigmoid", "tanh", "relu", "linear", "hard_sigmoid_keras2"):
        np.testing.assert_allclose(activate(name, t).numpy(), activate_np(name, x), rtol=1e-12)
    with np.errstate(all="raise"):  # NaN in, NaN out, no warning
        assert np.isnan(activate_np("sigmoid", np.nan))


@pytest.mark.parametrize("gate", ["hard_sigmoid_keras2", "hard_sigmoid_keras3"])
@pytest.mark.parametrize("convention", ["paper", "chrono"])
def test_hard_sigmoid_bias_timescale_round_trip(gate, convention):
    slope = {"hard_sigmoid_keras2": 0.2, "hard_sigmoid_keras3": 1 / 6}[gate]
    b = np.array([-10.0, -0.5 / slope, -1.0, 0.0, 1.0, 0.5 / slope - 1e-9, 0.5 / slope, 10.0])
    f = np.clip(slope * b + 0.5, 0, 1)
    with np.errstate(divide="ignore"):
        expected = -1 / np.log(f) if convention == "paper" else 1 / (1 - f)
    T = forget_bias_to_timescale(b, convention, gate)
    np.testing.assert_allclose(T[np.isfinite(expected)], expected[np.isfinite(expected)], rtol=1e-9)
    assert np.isinf(T[-2:]).all() and np.isfinite(T[:-2]).all()  # saturated at 1: never forgets
    # inverse: the bias of each finite, non-zero timescale gives it back
    ok = np.isfinite(T) & (T > (0 if convention == "paper" else 1))
    np.testing.assert_allclose(forget_bias_to_timescale(timescale_to_forget_bias(T[ok], convention, gate), convention, gate),
                               T[ok], rtol=1e-9)
    tb = forget_bias_to_timescale(torch.tensor(b), convention, gate)
    np.testing.assert_allclose(tb.numpy(), T)


def test_nan_and_inf_biases_give_no_warning_and_one_note(tmp_path):
    lstm = nn.LSTM(2, 4)
    with torch.no_grad():
        lstm.bias_hh_l0[4:8] = torch.tensor([float("nan"), float("nan"), float("inf"), 0.0])
    p = tmp_path / "nan.pt"
    torch.save(lstm.state_dict(), p)
    with np.errstate(all="raise"):
        stack = load_checkpoint(p)
        table = stack.timescales_table()
    notes = [n for n in stack.provenance.notes if "non-finite" in n]
    assert notes == ["layer 1: non-finite forget biases kept as stored: 1 at +inf (T=inf), "
                     "2 NaN (T NaN, left out of summaries and fits)"]
    assert np.isnan(table["T_bias"]).sum() == 2 and np.isinf(table["T_bias"]).sum() == 1


@pytest.mark.parametrize("cell,kw", [("gru", {}), ("rnn_tanh", {}), ("rnn_relu", {}),
                                     ("lstm", {"gate_activation": "hard_sigmoid_keras2"}),
                                     ("gru", {"reset_after": False, "gate_activation": "hard_sigmoid_keras3"})])
def test_language_model_trains_and_round_trips(tmp_path, cell, kw):
    """Every cell trains (DropConnect on W_hh included), carries its hidden state, and survives our
    checkpoint format (version 2 for anything but a standard LSTM) with identical outputs."""
    torch.manual_seed(0)
    cfg = LMConfig(vocab_size=13, emb_size=6, layer_sizes=(7, 6), cell=cell, **kw)
    model = LanguageModel(cfg)
    tokens = torch.randint(0, 13, (8, 3))
    model.train()
    logits, hidden, _ = model(tokens)
    logits.sum().backward()
    assert model.rnns[0].weight_hh_l0.grad is not None and model.rnns[0].weight_hh_l0.grad.abs().sum() > 0
    hidden = repackage_hidden(hidden)
    model.eval()
    with torch.no_grad():
        a, _, _ = model(tokens, hidden)
    path = save_checkpoint(tmp_path / "m.pt", model.to_stack())
    payload = torch.load(path, weights_only=True)
    assert payload["format_version"] == 2 and payload["stack"]["layers"][0]["cell"] == model.cells[0].to_dict()
    back = LanguageModel.from_stack(load_checkpoint(path)).eval()
    assert back.cells == model.cells
    with torch.no_grad():
        b, _, _ = back(tokens, hidden)
    torch.testing.assert_close(a, b)


def test_standard_lstm_keeps_format_version_1(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", LanguageModel(LMConfig(vocab_size=5, emb_size=3, layer_sizes=(3,))).to_stack())
    assert torch.load(path, weights_only=True)["format_version"] == 1


def test_mts_spec_on_a_gru_sets_the_update_gate():
    """fixed:3,4 on a GRU: b_hz = bias for T through its gate activation, b_iz = 0; r and n untouched."""
    torch.manual_seed(0)
    gru = StepRecurrent(3, 4, CellSpec("gru", gate_activation="hard_sigmoid_keras2"))
    before = gru.bias_hh_l0.detach().clone()
    apply_mts_spec([gru], parse_mts_spec("fixed:3,4"))
    b = gru.bias_ih_l0.detach()[4:8].double() + gru.bias_hh_l0.detach()[4:8].double()
    np.testing.assert_allclose(forget_bias_to_timescale(b.numpy(), "paper", "hard_sigmoid_keras2"), [3, 3, 4, 4], rtol=1e-6)
    assert torch.equal(gru.bias_hh_l0.detach()[:4], before[:4]) and not gru.bias_hh_l0.requires_grad
    with pytest.raises(OptionError, match="plain RNN has no forget or update gate"):
        apply_mts_spec([nn.RNN(3, 4)], parse_mts_spec("fixed:3"))


def test_plain_rnn_stack_refuses_forget_gate_questions():
    stack = LanguageModel(LMConfig(vocab_size=5, emb_size=3, layer_sizes=(3,), cell="rnn_tanh", tie_weights=True)).to_stack()
    with pytest.raises(CheckpointError, match="activity-timescales"):
        _ = stack.layers[0].forget_bias
    with pytest.raises(OptionError, match="plain RNN has no gates"):
        LMConfig(vocab_size=5, emb_size=3, layer_sizes=(3,), cell="rnn_relu", gate_activation="hard_sigmoid_keras2")


def test_old_names_still_work():
    from timescale_probe.stack import LSTMLayer, LSTMStack, RecurrentLayer, RecurrentStack

    assert LSTMLayer is RecurrentLayer and LSTMStack is RecurrentStack
    layer = LSTMLayer(torch.zeros(8, 3), torch.zeros(8, 2), torch.zeros(8), torch.zeros(8))
    assert layer.cell == CellSpec("lstm") and layer.hidden_size == 2
