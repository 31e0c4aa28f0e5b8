import json

import numpy as np
import pandas as pd
import pytest
import torch

from timescale_probe.errors import OptionError
from timescale_probe.timescales import (
    BIAS_LIMIT,
    FittedInverseGamma,
    FixedTimescales,
    InverseGammaDraws,
    InverseGammaQuantiles,
    LogUniformQuantiles,
    MTSSpec,
    apply_mts_spec,
    forget_bias_to_timescale,
    gate_complement_to_timescale,
    gate_to_timescale,
    inverse_gamma_memory,
    mean_gate_timescale,
    paper_dyck_spec,
    paper_lm_spec,
    parse_mts_spec,
    population_memory,
    timescale_to_forget_bias,
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


# ----------------------------------------------------------------------------------------------
# control specs: single:T, loguniform:LO,HI, ig-fit:PATH[,LAYER]; gate -> timescale helpers
# ----------------------------------------------------------------------------------------------


def test_single_control_puts_every_unit_at_one_timescale():
    spec = parse_mts_spec("fixed:3,4;single:3.57;free")
    T = spec.timescales([6, 9, 4])
    np.testing.assert_array_equal(T[1], np.full(9, 3.57))
    b = spec.forget_biases([6, 9, 4])[1]
    # b = -log(exp(1/T) - 1) written out
    np.testing.assert_allclose(b, -np.log(np.exp(1 / 3.57) - 1), rtol=1e-12)
    assert "single T=3.57" in spec.describe()
    for bad in ("single:0", "single:-2", "single:1,2", "single:inf", "single:"):
        with pytest.raises(OptionError):
            parse_mts_spec(f"fixed:3,4;{bad}")


def test_loguniform_control_gives_log_uniform_quantiles():
    from scipy.stats import loguniform

    T = parse_mts_spec("loguniform:2,5000").timescales([40])[0]
    # independent truth: scipy's log-uniform distribution at the midpoint levels, longest first
    expected = loguniform.isf((np.arange(40) + 0.5) / 40, 2, 5000)
    np.testing.assert_allclose(T, expected, rtol=1e-10)
    assert np.all(np.diff(T) < 0) and 2 < T.min() and T.max() < 5000
    np.testing.assert_allclose(np.diff(np.log(T)), -np.log(2500) / 40, rtol=1e-10)
    np.testing.assert_allclose(parse_mts_spec("loguniform:7,7").timescales([3])[0], [7.0, 7.0, 7.0], rtol=1e-14)
    for bad in ("loguniform:5,1", "loguniform:0,10", "loguniform:1", "loguniform:1,inf"):
        with pytest.raises(OptionError):
            parse_mts_spec(bad)
    with pytest.raises(OptionError):
        LogUniformQuantiles(1.0, 10.0, n=5).timescales(6)


def test_ig_fit_resolves_to_the_ml_fit_of_a_baseline(tmp_path):
    from scipy import stats

    rng = np.random.default_rng(0)
    l1 = stats.invgamma.rvs(3.0, scale=0.5, size=300, random_state=rng)
    l2 = stats.invgamma.rvs(1.3, scale=2.0, size=2000, random_state=rng)
    l2[:3] = [0.0, np.inf, np.nan]  # excluded from the likelihood, counted in the source
    df = pd.DataFrame({"layer": [1] * 300 + [2] * 2000, "unit": list(range(300)) + list(range(2000)),
                       "T_data": np.concatenate([l1, l2])})
    path = tmp_path / "timescales.csv"
    df.to_csv(path, index=False)
    spec = parse_mts_spec(f"fixed:3,4;ig-fit:{path},2;free")
    layer = spec.layers[1]
    assert isinstance(layer, FittedInverseGamma) and layer.kind == "ig-fit"
    a, loc, b = stats.invgamma.fit(l2[3:], floc=0)  # independent truth: scipy's generic MLE
    assert layer.shape == pytest.approx(a, rel=1e-4) and layer.scale == pytest.approx(b, rel=1e-4)
    assert layer.shape == pytest.approx(1.3, rel=0.1)
    assert layer.fit_n == 1997 and "3 excluded" in layer.source and "layer 2" in layer.source
    assert "T_data" in layer.source
    # the quantiles are those of ig:A,B with the fitted numbers
    np.testing.assert_allclose(layer.timescales(50), InverseGammaQuantiles(layer.shape, layer.scale).timescales(50))
    # the JSON keeps the numbers and the source: the baseline file is no longer needed
    text = json.dumps(spec.to_dict())
    path.unlink()
    again = MTSSpec.from_dict(json.loads(text))
    assert again == spec and again.layers[1].source == layer.source
    df.to_csv(path, index=False)
    pooled = parse_mts_spec(f"ig-fit:{path}").layers[0]
    a_all, _, _ = stats.invgamma.fit(np.concatenate([l1, l2[3:]]), floc=0)
    assert pooled.shape == pytest.approx(a_all, rel=1e-4) and "all layers" in pooled.source


def test_ig_fit_errors_are_one_line_option_errors(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"layer": [1, 1, 1, 1], "unit": [0, 1, 2, 3], "T_data": [1.0, 2.0, 3.0, 5.0]}).to_csv(path, index=False)
    with pytest.raises(OptionError, match="no layer 7"):
        parse_mts_spec(f"ig-fit:{path},7")
    with pytest.raises(OptionError):
        parse_mts_spec(f"ig-fit:{path},two")
    with pytest.raises(OptionError):
        parse_mts_spec(f"ig-fit:{path},1,sideways")
    from timescale_probe.errors import InputError

    with pytest.raises(InputError, match="nope.csv"):  # a missing file is an input error, never a traceback
        parse_mts_spec(f"ig-fit:{tmp_path / 'nope.csv'},1")
    pd.DataFrame({"layer": [1, 1], "unit": [0, 1], "T_data": [0.0, np.inf]}).to_csv(path, index=False)
    with pytest.raises(OptionError, match="fewer than 3"):
        parse_mts_spec(f"ig-fit:{path}")


def test_control_specs_round_trip_through_a_checkpoint(tmp_path):
    from timescale_probe.checkpoints import load_checkpoint, save_checkpoint
    from timescale_probe.models import LanguageModel, LMConfig

    spec = parse_mts_spec("fixed:3,4;single:2.5;loguniform:1,100;free")
    model = LanguageModel(LMConfig(vocab_size=11, emb_size=6, layer_sizes=(8, 8, 10, 6), mts_spec=spec))
    save_checkpoint(tmp_path / "m.pt", model.to_stack(), {"note": "test"})
    stack = load_checkpoint(tmp_path / "m.pt")
    assert MTSSpec.from_dict(stack.mts_spec) == spec
    back = LanguageModel.from_stack(stack)
    for k, T in ((1, np.full(8, 2.5)), (2, np.geomspace(100, 1, 21)[1::2])):
        eff = (back.rnns[k].bias_ih_l0 + back.rnns[k].bias_hh_l0)[len(T):2 * len(T)].detach().double().numpy()
        np.testing.assert_allclose(forget_bias_to_timescale(eff), T, rtol=1e-5)
        assert not back.rnns[k].bias_hh_l0.requires_grad
    assert back.rnns[3].bias_hh_l0.requires_grad


def test_gate_conversions_live_here_and_gates_reexports_them():
    from timescale_probe import gates

    assert gates.gate_to_timescale is gate_to_timescale
    assert gates.gate_complement_to_timescale is gate_complement_to_timescale
    f = np.array([0.1, 0.5, 0.9, 0.999])
    np.testing.assert_allclose(gate_to_timescale(f), -1 / np.log(f), rtol=1e-12)
    np.testing.assert_allclose(gate_to_timescale(f, "chrono"), 1 / (1 - f), rtol=1e-9)
    # both routes of a mean gate: the complement near f = 1, f itself near f = 0
    assert mean_gate_timescale(1 - 1e-12, 1e-12) == pytest.approx(1e12 - 0.5, rel=1e-9)
    assert mean_gate_timescale(1e-300, 1.0) == pytest.approx(-1 / np.log(1e-300), rel=1e-12)
    assert mean_gate_timescale(0.0, 1.0) == 0.0
    np.testing.assert_allclose(mean_gate_timescale(f, 1 - f), -1 / np.log(f), rtol=1e-9)


def test_train_cli_takes_control_specs(tmp_path, cli):
    from scipy import stats

    from timescale_probe.checkpoints import load_checkpoint

    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(12)]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for split, n in (("train", 120), ("valid", 20), ("test", 20)):
        lines = [" ".join(rng.choice(words, size=12)) for _ in range(n)]
        (corpus / f"{split}.txt").write_text("\n".join(lines) + "\n")
    ts = tmp_path / "timescales.csv"
    T2 = stats.invgamma.rvs(0.9, scale=1.5, size=200, random_state=rng)
    pd.DataFrame({"layer": 2, "unit": range(200), "T_data": T2}).to_csv(ts, index=False)
    out = tmp_path / "m.pt"
    r = cli("train", "--corpus", corpus, "--arch", "mts", "--profile", "tiny", "--epochs", "1", "--threads", "1",
            "--mts-spec", f"fixed:3,4;ig-fit:{ts},2;single:2.5", "--out", out)
    assert r.returncode == 0, r.stderr
    spec = MTSSpec.from_dict(load_checkpoint(out).mts_spec)
    a, _, b = stats.invgamma.fit(T2, floc=0)
    assert spec.layers[1].kind == "ig-fit" and spec.layers[1].shape == pytest.approx(a, rel=1e-4)
    assert spec.layers[1].scale == pytest.approx(b, rel=1e-4) and str(ts) in spec.layers[1].source
    stack = load_checkpoint(out)
    eff = (stack.layers[2].bias_ih + stack.layers[2].bias_hh).double().numpy()
    H = stack.layer_sizes[2]
    np.testing.assert_allclose(forget_bias_to_timescale(eff[H:2 * H]), 2.5, rtol=1e-5)
    bad = cli("train", "--corpus", corpus, "--arch", "mts", "--profile", "tiny", "--epochs", "1",
              "--mts-spec", "fixed:3,4;single:0", "--out", tmp_path / "bad.pt")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and not (tmp_path / "bad.pt").exists()
