import json

import numpy as np
import pytest
import torch

from timescale_probe.errors import OptionError
from timescale_probe.timescales import (
    BIAS_LIMIT, FixedTimescales, InverseGammaDraws, InverseGammaQuantiles, MTSSpec, apply_mts_spec,
    forget_bias_to_timescale, inverse_gamma_memory, paper_dyck_spec, paper_lm_spec, parse_mts_spec,
    population_memory, timescale_to_forget_bias,
)


def test_spec_reference_values():
    # docs/methods.md §1: T=3 -> 0.92732; T=4 -> 1.25869; T=1 -> -0.54132
    assert timescale_to_forget_bias(3.0) == pytest.approx(0.92732, abs=5e-6)
    assert timescale_to_forget_bias(4.0) == pytest.approx(1.25869, abs=5e-6)
    assert timescale_to_forget_bias(1.0) == pytest.approx(-0.54132, abs=5e-6)


def test_paper_definition_matches_naive_formula():
    b = np.linspace(-8, 8, 101)
    naive = -1.0 / np.log(1.0 / (1.0 + np.exp(-b)))
    np.testing.assert_allclose(forget_bias_to_timescale(b), naive, rtol=1e-12)
    chrono_naive = 1.0 / (1.0 - 1.0 / (1.0 + np.exp(-b)))
    np.testing.assert_allclose(forget_bias_to_timescale(b, "chrono"), chrono_naive, rtol=1e-9)


@pytest.mark.parametrize("convention", ["paper", "chrono"])
def test_round_trip_over_wide_range(convention):
    # chrono T = 1 + exp(b) cannot resolve b << 0 (T rounds to 1), so its range starts at -5
    lowest = 2.8 if convention == "paper" else np.log10(5)
    b = np.concatenate([-np.logspace(-6, lowest, 200), [0.0], np.logspace(-6, 2.8, 200)])
    T = forget_bias_to_timescale(b, convention)
    assert np.all(np.isfinite(T))
    np.testing.assert_allclose(timescale_to_forget_bias(T, convention), b, rtol=1e-9, atol=1e-9)


def test_extremes_are_stable_without_warnings():
    with np.errstate(all="raise"):
        T = forget_bias_to_timescale(np.array([-1e4, 1e4, np.inf, -np.inf]))
        assert T[0] == pytest.approx(1e-4, rel=1e-12)
        assert T[1] == np.inf and T[2] == np.inf and T[3] == 0.0
        b = timescale_to_forget_bias(np.array([0.0, np.inf, 1e-4, 1e300]))
        assert b[0] == -np.inf and b[1] == np.inf
        assert b[2] == pytest.approx(-1e4, rel=1e-12)
        assert b[3] == pytest.approx(np.log(1e300), rel=1e-12)
    assert forget_bias_to_timescale(np.inf, "chrono") == np.inf
    assert forget_bias_to_timescale(-np.inf, "chrono") == 1.0


def test_torch_inputs_give_torch_outputs():
    b = torch.tensor([0.92732, 1e4, -1e4, float("inf"), -float("inf")], dtype=torch.float64)
    T = forget_bias_to_timescale(b)
    assert isinstance(T, torch.Tensor)
    np.testing.assert_allclose(T.numpy(), forget_bias_to_timescale(b.numpy()), rtol=1e-12)
    back = timescale_to_forget_bias(torch.tensor([3.0, 4.0], dtype=torch.float32))
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
    np.testing.assert_allclose(back.numpy(), [0.92732, 1.25869], atol=1e-5)


def test_invalid_timescales_raise():
    with pytest.raises(OptionError):
        timescale_to_forget_bias(-1.0)
    with pytest.raises(OptionError):
        timescale_to_forget_bias(0.5, "chrono")
    with pytest.raises(OptionError):
        forget_bias_to_timescale(1.0, "bogus")


def test_paper_lm_layer2_quantiles_match_spec():
    T = paper_lm_spec().timescales([1150, 1150, 400])
    assert T[2] is None
    np.testing.assert_array_equal(T[0][:575], 3.0)
    np.testing.assert_array_equal(T[0][575:], 4.0)
    t2 = T[1]
    assert t2[0] == pytest.approx(359932, rel=1e-5) and t2[-1] == 0.0
    assert np.all(np.diff(t2) <= 0)
    assert np.median(t2) == pytest.approx(3.57, abs=0.005)
    assert (t2 > 10).mean() == pytest.approx(0.298, abs=0.0005)
    assert (t2 > 100).mean() == pytest.approx(0.084, abs=0.0005)
    assert (t2 < 1).mean() == pytest.approx(0.182, abs=0.0005)


def test_population_memory_is_a_power_law():
    # docs/methods.md §1: 0.6779, 0.2607, 0.0750, 0.02045 at t = 1, 10, 100, 1000 vs (1+t)^-0.56
    t2 = paper_lm_spec().timescales([1150, 1150])[1]
    t = np.array([1, 10, 100, 1000])
    M = population_memory(t2, t)
    np.testing.assert_allclose(M, [0.6779, 0.2607, 0.0750, 0.02045], atol=5e-5)
    theory = inverse_gamma_memory(t, 0.56, 1.0)
    np.testing.assert_allclose(theory, [0.6783, 0.2611, 0.0754, 0.02088], atol=5e-5)
    grid = np.unique(np.round(np.logspace(0, 3, 60)))
    rel = np.abs(population_memory(t2, grid) / inverse_gamma_memory(grid, 0.56) - 1)
    assert rel.max() < 0.022  # 2.1% at t=1000, the finite set of quantiles (docs/methods.md §1)
    assert rel[grid <= 100].max() < 0.01
    without_zero = population_memory(t2[t2 > 0], 1000) / inverse_gamma_memory(1000, 0.56) - 1
    assert without_zero == pytest.approx(-0.0199, abs=0.0005)


def test_paper_dyck_spec():
    T = paper_dyck_spec().timescales([256])[0]
    assert T[0] == pytest.approx(33.0, abs=0.05) and T[-1] == pytest.approx(0.15, abs=0.005)
    assert len(T) == 256 and np.all(np.isfinite(T))


def test_apply_spec_sets_and_freezes_biases():
    lstms = [torch.nn.LSTM(8, 20), torch.nn.LSTM(20, 20), torch.nn.LSTM(20, 8)]
    spec = paper_lm_spec()
    imposed = apply_mts_spec(lstms, spec)
    H = 20
    for k in (0, 1):
        m = lstms[k]
        eff = (m.bias_ih_l0 + m.bias_hh_l0)[H:2 * H].double().detach()
        expected = np.clip(timescale_to_forget_bias(imposed[k]), -BIAS_LIMIT, BIAS_LIMIT)
        np.testing.assert_allclose(eff.numpy(), expected, rtol=1e-6)
        assert torch.all(m.bias_ih_l0[: 2 * H] == 0)
        np.testing.assert_allclose(m.bias_hh_l0[:H].detach().numpy(), -m.bias_hh_l0[H:2 * H].detach().numpy())
        assert not m.bias_ih_l0.requires_grad and not m.bias_hh_l0.requires_grad
        assert m.weight_hh_l0.requires_grad
    assert imposed[2] is None and lstms[2].bias_hh_l0.requires_grad
    # the T=0 unit is clipped to a finite bias, deliberately
    assert lstms[1].bias_hh_l0[2 * H - 1].item() == pytest.approx(-BIAS_LIMIT)


def test_apply_spec_to_multilayer_lstm_and_gate_freeze():
    lstm = torch.nn.LSTM(4, 6, num_layers=2)
    spec = MTSSpec(layers=(FixedTimescales((2.0,), freeze="gates"), InverseGammaDraws(1.0, seed=3)))
    apply_mts_spec(lstm, spec)
    out, _ = lstm(torch.randn(5, 3, 4))
    out.sum().backward()
    g = lstm.bias_hh_l0.grad
    assert torch.all(g[:12] == 0) and torch.any(g[12:] != 0)
    assert lstm.bias_hh_l1.grad is None
    np.testing.assert_allclose(forget_bias_to_timescale((lstm.bias_ih_l0 + lstm.bias_hh_l0)[6:12].detach().double()).numpy(), 2.0, rtol=1e-6)


def test_spec_round_trips_through_json_and_text(tmp_path):
    spec = paper_lm_spec()
    again = MTSSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    p = tmp_path / "spec.json"
    p.write_text(json.dumps(spec.to_dict()))
    assert parse_mts_spec(str(p)) == spec
    parsed = parse_mts_spec("fixed:3,4;ig:0.56,1;free")
    for a, b in zip(parsed.timescales([10, 10, 5]), spec.timescales([10, 10, 5])):
        assert (a is None and b is None) or np.array_equal(a, b)
    assert parse_mts_spec("baseline").is_free
    with pytest.raises(OptionError):
        parse_mts_spec("ig:abc")
    with pytest.raises(OptionError):
        MTSSpec.from_dict({"layers": [{"kind": "nope"}]})


def test_draws_are_seeded_and_sorted():
    a = InverseGammaDraws(0.56, seed=7).timescales(50)
    b = InverseGammaDraws(0.56, seed=7).timescales(50)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.diff(a) <= 0)
    assert not np.array_equal(a, InverseGammaDraws(0.56, seed=8).timescales(50))
    q = InverseGammaQuantiles(0.56, ends="midpoints").timescales(10)
    assert np.all(np.isfinite(q)) and len(q) == 10
