"""Gate extraction from a fused nn.LSTM against a plain step-by-step LSTM cell; timescales from data."""
import math

import numpy as np
import pytest
import torch
from helpers import one_thread_fixture  # noqa: F401  (small models run on one torch thread)
from torch import nn

from timescale_probe.errors import OptionError
from timescale_probe.gates import (
    batchify,
    estimate_stack_timescales,
    gate_complement_to_timescale,
    gate_histogram,
    gate_to_timescale,
    linear_scan,
    split_lstm,
    timescales_table,
)
from timescale_probe.runner import Hook, collect, run_stream
from timescale_probe.stack import LSTMLayer, LSTMStack
from timescale_probe.timescales import MTSSpec, apply_mts_spec, paper_lm_spec, parse_mts_spec

pytestmark = pytest.mark.usefixtures("one_thread")


@torch.no_grad()
def step_by_step(layers, x, states=None):
    """Reference: a plain LSTM cell, one time step at a time (the reference code's approach)."""
    S, B, _ = x.shape
    out = {k: [] for k in ("i", "f", "g", "o", "c", "h")}
    inp = x
    final = []
    for li, m in enumerate(layers):
        H = m.hidden_size
        w_ih, w_hh = m.weight_ih_l0.double(), m.weight_hh_l0.double()
        b = (m.bias_ih_l0 + m.bias_hh_l0).double()
        if states is None:
            h = torch.zeros(B, H, dtype=torch.float64)
            c = torch.zeros(B, H, dtype=torch.float64)
        else:
            h, c = (s.reshape(B, H).double() for s in states[li])
        per = {k: [] for k in out}
        for t in range(S):
            z = inp[t].double() @ w_ih.T + h @ w_hh.T + b
            i, f, g, o = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H:2 * H]), torch.tanh(z[:, 2 * H:3 * H]), torch.sigmoid(z[:, 3 * H:])
            c = f * c + i * g
            h = o * torch.tanh(c)
            for k, v in zip(("i", "f", "g", "o", "c", "h"), (i, f, g, o, c, h)):
                per[k].append(v)
        for k in out:
            out[k].append(torch.stack(per[k]))
        final.append((h, c))
        inp = out["h"][-1].float()
    return out, final


def make_layers(sizes=(12, 10, 6), input_size=8, seed=0, trained_like=False):
    torch.manual_seed(seed)
    layers = []
    prev = input_size
    for H in sizes:
        m = nn.LSTM(prev, H, 1)
        if trained_like:  # larger recurrent weights and spread biases, as after training
            with torch.no_grad():
                m.weight_hh_l0.normal_(0, 1.5 / math.sqrt(H))
                m.weight_ih_l0.normal_(0, 1.0 / math.sqrt(prev))
                m.bias_hh_l0.normal_(0, 1.5)
                m.bias_hh_l0[H:2 * H] += 2.0
        layers.append(m.eval())
        prev = H
    return layers


def stack_gates(layers, x, state=None, *, window=None, block_tokens=None):
    """Every layer's gates (i, f, g, o, f_comp), cell states and outputs from the stream runner."""
    hooks = [h for k in range(1, len(layers) + 1)
             for h in (collect("gates", k, "ifgo"), collect("cell", k), collect("hidden", k))]
    run = run_stream(layers, x, hooks, window=window or x.shape[0], block_tokens=block_tokens, state=state)
    out = []
    for k in range(len(layers)):
        g, c, h = (hk.stacked() for hk in hooks[3 * k:3 * k + 3])
        out.append(dict(g, c=c, h=h))
    return out, run.states


@pytest.mark.parametrize("trained_like", [False, True])
@pytest.mark.parametrize("spec", [None, "paper-lm-small", "fixed:3,4;ig:0.56;free"])
def test_parity_with_step_by_step_cell(trained_like, spec):
    layers = make_layers(trained_like=trained_like)
    if spec == "paper-lm-small":
        apply_mts_spec(layers, paper_lm_spec())  # layer 2 includes T=0 (bias clipped to -30) and T=3.6e5
    elif spec:
        apply_mts_spec(layers, parse_mts_spec(spec))
    torch.manual_seed(1)
    x = torch.randn(37, 3, 8)
    state0 = [(torch.randn(1, 3, m.hidden_size) * 0.5, torch.randn(1, 3, m.hidden_size)) for m in layers]
    gates, states = stack_gates(layers, x, state0)
    ref, final = step_by_step(layers, x, state0)
    for k, lg in enumerate(gates):
        for name in ("i", "f", "g", "o", "c", "h"):
            np.testing.assert_allclose(lg[name].double().numpy(), ref[name][k].numpy(), atol=1e-5, rtol=1e-5,
                                       err_msg=f"layer {k + 1} gate {name}")
        np.testing.assert_allclose(lg["f_comp"].double().numpy(), 1 - ref["f"][k].numpy(), atol=1e-5)
        np.testing.assert_allclose(states[k][0].reshape(3, -1).numpy(), final[k][0].numpy(), atol=1e-5)
        np.testing.assert_allclose(states[k][1].reshape(3, -1).numpy(), final[k][1].numpy(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("block_tokens", [None, 21, 2048])
def test_streaming_windows_equal_one_long_pass(block_tokens):
    """Windows of 7 steps (state carried), one window or several per fused call, equal one pass."""
    layers = make_layers(trained_like=True)
    torch.manual_seed(2)
    x = torch.randn(50, 8)
    gates, _ = stack_gates(layers, x, window=7, block_tokens=block_tokens)
    seen = []
    run = run_stream(layers, x, [Hook("gates", lambda v, b: seen.append(b.windows), layer=1)], window=7,
                     block_tokens=block_tokens)
    assert run.n_steps == 50
    assert [n for w in seen for _, n in w] == [7] * 7 + [1]
    assert len(seen) == {None: 8, 21: 3, 2048: 1}[block_tokens]
    ref, _ = step_by_step(layers, x.unsqueeze(1))
    for k in range(3):
        for name in ("f", "c", "h"):
            np.testing.assert_allclose(gates[k][name].double().numpy(), ref[name][k].numpy(), atol=1e-5, rtol=1e-5)


def test_linear_scan_matches_recurrence_and_survives_tiny_gates():
    torch.manual_seed(3)
    a = torch.rand(70, 2, 5, dtype=torch.float64)
    a[:, :, 0] = 9e-14  # the T=0 unit of the paper's spec
    a[:, :, 1] = 1 - 1e-7
    u = torch.randn(70, 2, 5, dtype=torch.float64)
    x0 = torch.randn(2, 5, dtype=torch.float64)
    got = linear_scan(a, u, x0)
    x = x0.clone()
    for t in range(70):
        x = a[t] * x + u[t]
        np.testing.assert_allclose(got[t].numpy(), x.numpy(), rtol=1e-12, atol=1e-12)


def test_split_multilayer_lstm_shares_weights():
    torch.manual_seed(4)
    lstm = nn.LSTM(5, 7, 3).eval()
    parts = split_lstm(lstm)
    assert len(parts) == 3 and parts[1].weight_hh_l0 is lstm.weight_hh_l1
    x = torch.randn(11, 2, 5)
    out, _ = lstm(x)
    gates, _ = stack_gates(parts, x)
    np.testing.assert_allclose(gates[-1]["h"].numpy(), out.detach().numpy(), atol=1e-6)


def test_timescale_from_gates():
    f = np.array([0.5, 1 - 1 / 3, 0.9, 1.0, 0.0])
    T = gate_to_timescale(f)
    np.testing.assert_allclose(T[:3], -1 / np.log(f[:3]))
    assert T[3] == np.inf and T[4] == 0.0
    # 1 - f carried directly keeps huge timescales exact: f = 1 - 1e-9 -> T ~ 1e9
    assert gate_complement_to_timescale(1e-9) == pytest.approx(1e9 - 0.5, rel=1e-12)
    assert gate_complement_to_timescale(0.25, "chrono") == 4.0


def test_estimate_matches_reference_procedure():
    """Mean over windows of each window's mean gate (last short window weighted like the others)."""
    layers = make_layers(trained_like=True)
    torch.manual_seed(5)
    x = torch.randn(150, 8)
    est = estimate_stack_timescales(layers, x, window=70)
    ref, _ = step_by_step(layers, x.unsqueeze(1))
    for k in range(3):
        f = ref["f"][k][:, 0].numpy()  # (150, H)
        means = np.stack([f[0:70].mean(0), f[70:140].mean(0), f[140:150].mean(0)])
        f_bar = means.mean(0)
        row = est.table_[est.table_.layer == k + 1]
        np.testing.assert_allclose(row.f_mean.to_numpy(), f_bar, atol=1e-6)
        np.testing.assert_allclose(row.f_sd.to_numpy(), means.std(0, ddof=1), atol=1e-6)
        np.testing.assert_allclose(row.T_data.to_numpy(), -1 / np.log(f_bar), rtol=1e-4)
        assert (row.n_windows == 3).all()
        assert np.all(row.T_data_lo <= row.T_data) and np.all(row.T_data <= row.T_data_hi)
    hist = est.histograms_
    assert set(hist.gate) == {"f", "i", "o"}
    assert hist[(hist.layer == 1) & (hist.gate == "f")]["count"].sum() == 150 * 12


def test_parallel_streams_count_each_stream_window():
    layers = make_layers()
    x = torch.randn(100, 8)
    data = batchify(x, 4)
    assert data.shape == (25, 4, 8)
    np.testing.assert_array_equal(data[:, 1].numpy(), x[25:50].numpy())
    est = estimate_stack_timescales(layers, data, window=10)
    assert (est.table_.n_windows == 4 * 3).all()
    with pytest.raises(OptionError):
        batchify(x, 80)


def test_mts_assigned_timescales_are_recovered_without_input_drive():
    """With zero input weights and zero recurrence, f = sigmoid(b_f): T_data equals T_bias."""
    layer = nn.LSTM(4, 20, 1).eval()
    with torch.no_grad():
        layer.weight_ih_l0.zero_()
        layer.weight_hh_l0.zero_()
    spec = MTSSpec(layers=(parse_mts_spec("ig:0.56").layer(0),), name="t")
    apply_mts_spec([layer], spec)
    est = estimate_stack_timescales([layer], torch.randn(140, 4), window=70)
    stack = LSTMStack(layers=[LSTMLayer(layer.weight_ih_l0.detach(), layer.weight_hh_l0.detach(),
                                        layer.bias_ih_l0.detach(), layer.bias_hh_l0.detach())],
                      mts_spec=spec.to_dict())
    tab = timescales_table(stack, est)
    assert list(tab.columns[:6]) == ["layer", "unit", "forget_bias", "T_bias", "f_mean", "f_sd"]
    finite = tab.T_assigned > 0.1
    # float32 sigmoid resolves 1 - f down to ~1e-7 via sigmoid(-z): T up to ~1e6 within 1e-4
    ok = finite & (tab.T_assigned < 1e6)
    np.testing.assert_allclose(tab.T_data[ok], tab.T_assigned[ok], rtol=2e-4)
    np.testing.assert_allclose(tab.T_data[ok], tab.T_bias[ok], rtol=2e-4)
    assert tab.T_assigned.iloc[0] == pytest.approx(258.75, abs=0.01) and tab.T_data.iloc[-1] < 0.05


@pytest.mark.parametrize("bins", [1, 7, 50, 100, 1000])
def test_gate_histogram_counts_as_histc(bins):
    """The bincount histogram gives torch.histc's counts, bin edges included (values in [0, 1])."""
    g = torch.Generator().manual_seed(bins)
    edges = torch.arange(bins + 1, dtype=torch.float32) / bins
    t = torch.cat([torch.sigmoid(torch.randn(200_000, generator=g) * 4), edges,
                   torch.nextafter(edges, torch.tensor(2.0)).clamp(0, 1), torch.nextafter(edges, torch.tensor(-1.0)).clamp(0, 1),
                   torch.tensor([0.0, 1.0])])
    np.testing.assert_array_equal(gate_histogram(t, bins).numpy(), torch.histc(t, bins, 0.0, 1.0).double().numpy())
