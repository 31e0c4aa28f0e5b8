import numpy as np
import pytest
import torch

from timescale_probe.checkpoints import load_checkpoint, save_checkpoint
from timescale_probe.errors import CheckpointError, OptionError
from timescale_probe.models import LanguageModel, LMConfig
from timescale_probe.stack import LSTMStack
from timescale_probe.timescales import forget_bias_to_timescale, paper_lm_spec, timescale_to_forget_bias

V = 37


def make_model(spec=None, wdrop=0.5, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = LMConfig(vocab_size=V, emb_size=8, layer_sizes=(12, 10, 8), wdrop=wdrop,
                   mts_spec=None if spec is None else spec.to_dict(), **kw)
    return LanguageModel(cfg, vocab=[f"w{i}" for i in range(V)])


def tokens(T=9, B=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (T, B), generator=g)


def test_forward_shapes_and_extras():
    m = make_model()
    x = tokens()
    logits, hidden, extras = m(x, m.init_hidden(3))
    assert logits.shape == (9, 3, V)
    assert [h.shape for h, _ in hidden] == [(1, 3, 12), (1, 3, 10), (1, 3, 8)]
    assert [o.shape[-1] for o in extras["raw_outputs"]] == [12, 10, 8]
    assert len(extras["dropped_outputs"]) == 3
    assert isinstance(m.rnns[0], torch.nn.LSTM) and m.decoder.weight is m.encoder.weight
    assert m.lstm_layers()[1] is m.rnns[1]


def test_dropconnect_trains_the_raw_recurrent_weight():
    m = make_model(wdrop=0.5)
    m.train()
    x = tokens()
    torch.manual_seed(3)
    a = m(x)[0]
    torch.manual_seed(4)
    b = m(x)[0]
    assert not torch.allclose(a, b)  # a fresh DropConnect mask (and dropout) per forward
    a.pow(2).sum().backward()
    for rnn in m.rnns:
        g = rnn.weight_hh_l0.grad
        assert g is not None and g.abs().sum() > 0
        # rows of the dropped entries get no gradient from them: some zeros, not all
        assert (g == 0).float().mean() > 0.2
    before = m.rnns[0].weight_hh_l0.detach().clone()
    torch.optim.SGD(m.parameters(), lr=1.0).step()
    assert not torch.equal(before, m.rnns[0].weight_hh_l0)


def test_dropconnect_gradient_equals_masked_manual():
    """The gradient reaching the raw W_hh is that of an explicitly masked copy (same mask)."""
    m = make_model(wdrop=0.3)
    m.train()
    rnn = m.rnns[0]
    x = m.encoder(tokens()).detach()
    hx = m.init_hidden(3)[0]
    torch.manual_seed(7)
    out, _ = m._run_layer(0, x, hx)
    out.pow(2).sum().backward()
    g_model = rnn.weight_hh_l0.grad.clone()
    torch.manual_seed(7)  # replay: the same Bernoulli draw gives the same (scaled) mask
    mask = torch.nn.functional.dropout(torch.ones_like(rnn.weight_hh_l0), 0.3, True)
    w = rnn.weight_hh_l0.detach().clone().requires_grad_(True)
    cell = torch.nn.LSTM(8, 12)
    with torch.no_grad():
        cell.weight_ih_l0.copy_(rnn.weight_ih_l0)
        cell.bias_ih_l0.copy_(rnn.bias_ih_l0)
        cell.bias_hh_l0.copy_(rnn.bias_hh_l0)
    out2, _ = torch.func.functional_call(cell, {"weight_hh_l0": w * mask}, (x, hx))
    out2.pow(2).sum().backward()
    assert torch.allclose(out, out2, atol=1e-6)
    assert torch.allclose(g_model, w.grad, atol=1e-5)


def test_eval_mode_is_deterministic_and_uses_raw_weight():
    m = make_model().eval()
    x = tokens()
    a = m(x)[0]
    b = m(x)[0]
    assert torch.equal(a, b)
    # eval mode equals a plain nn.LSTM stack with the raw weights
    h = m.encoder(x)
    for rnn in m.lstm_layers():
        h, _ = rnn(h)
    assert torch.allclose(m.decoder(h), a, atol=1e-6)


def test_mts_spec_scaled_to_layer_sizes_and_frozen():
    m = make_model(spec=paper_lm_spec())
    r1, r2, r3 = m.rnns
    H = 12
    bf = (r1.bias_ih_l0 + r1.bias_hh_l0)[H:2 * H].detach().double()
    assert torch.allclose(bf[:6], torch.full((6,), timescale_to_forget_bias(3.0), dtype=torch.float64), atol=1e-6)
    assert torch.allclose(bf[6:], torch.full((6,), timescale_to_forget_bias(4.0), dtype=torch.float64), atol=1e-6)
    from scipy.stats import invgamma

    T2 = forget_bias_to_timescale((r2.bias_ih_l0 + r2.bias_hh_l0)[10:20].detach().double()).numpy()
    expected = invgamma.isf(np.linspace(0, 1, 11), 0.56, scale=1)[1:]
    np.testing.assert_allclose(T2[:-1], expected[:-1], rtol=1e-4)
    assert T2[-1] < 0.05  # the T=0 quantile, clipped to a finite bias
    assert not r1.bias_hh_l0.requires_grad and not r2.bias_ih_l0.requires_grad
    assert r3.bias_hh_l0.requires_grad and r1.weight_hh_l0.requires_grad
    assert m.num_parameters(trainable_only=True) == m.num_parameters() - 2 * 4 * (12 + 10)


def test_output_masks_per_batch_row():
    m = make_model().eval()
    x = tokens(B=2)
    plain = m(x)[0]
    zero = m(x, output_masks={2: torch.zeros(10)})[0]
    mixed = m(x, output_masks={2: torch.stack([torch.ones(10), torch.zeros(10)])})[0]
    assert torch.allclose(mixed[:, 0], plain[:, 0], atol=1e-6)
    assert torch.allclose(mixed[:, 1], zero[:, 1], atol=1e-6)
    assert not torch.allclose(zero, plain)
    # layer 2's own recurrence is untouched: its raw outputs do not change
    raw_plain = m(x)[2]["raw_outputs"][1]
    raw_zero = m(x, output_masks={2: torch.zeros(10)})[2]["raw_outputs"][1]
    assert torch.equal(raw_plain, raw_zero)


def test_stack_round_trip(tmp_path):
    m = make_model(spec=paper_lm_spec()).eval()
    path = save_checkpoint(tmp_path / "m.pt", m.to_stack(), {"note": "test"})
    stack = load_checkpoint(path)
    assert stack.tied and stack.vocab == m.vocab and stack.mts_spec["name"] == "paper-lm"
    m2 = LanguageModel.from_stack(stack).eval()
    x = tokens()
    assert torch.equal(m(x)[0], m2(x)[0])
    assert m2.config.dropouth == m.config.dropouth
    assert not m2.rnns[0].bias_hh_l0.requires_grad and m2.rnns[2].bias_hh_l0.requires_grad


def test_from_stack_needs_embedding_and_decoder():
    stack = make_model().to_stack()
    bare = LSTMStack(layers=stack.layers)
    with pytest.raises(CheckpointError, match="cannot run as a language model"):
        LanguageModel.from_stack(bare)


def test_untied_stack_without_vocab():
    m = make_model()
    stack = m.to_stack()
    stack.decoder_weight = stack.decoder_weight.clone() * 2
    stack.vocab = None
    m2 = LanguageModel.from_stack(stack).eval()
    assert m2.decoder.weight is not m2.encoder.weight and m2.vocab is None
    assert torch.allclose(m2.decoder.weight, 2 * m.encoder.weight)


def test_config_validation():
    with pytest.raises(OptionError, match="tied"):
        LMConfig(vocab_size=5, emb_size=8, layer_sizes=(4, 6))
    with pytest.raises(OptionError):
        LMConfig(vocab_size=5, dropout=1.0)
    assert LMConfig(vocab_size=5, emb_size=8, layer_sizes=(4, 6), tie_weights=False).layer_sizes == (4, 6)
