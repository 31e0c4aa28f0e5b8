"""Device parity: evaluation, gates, ablation, a training step and the per-seed tables give the
same numbers on a CUDA GPU as on the CPU (TF32 off).

Every check runs twice: against ``cpu`` (always; the same code path, only ``.to(device)``
differs, so a tensor left on the wrong device or a numpy conversion without ``.cpu()`` fails here
too) and against ``cuda`` (``@pytest.mark.cuda``: skipped without a GPU;
``benchmarks/gpu_check.py`` runs ``pytest -m cuda tests/test_cuda.py`` on a device).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from timescale_probe.ablation import ablated_nll, make_groups
from timescale_probe.evaluation import token_nll
from timescale_probe.gates import estimate_timescales
from timescale_probe.models import LanguageModel, LMConfig, repackage_hidden
from timescale_probe.timescales import paper_lm_spec

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(autouse=True)
def no_tf32():
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _model(mts: bool = True, wdrop: float = 0.0, seed: int = 0, **kw) -> LanguageModel:
    torch.manual_seed(seed)
    cfg = LMConfig(vocab_size=50, emb_size=12, layer_sizes=(16, 24, 12), wdrop=wdrop,
                   mts_spec=paper_lm_spec().to_dict() if mts else None, **kw)
    return LanguageModel(cfg).eval()


def _tokens(n: int = 400, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 50, (n,), generator=g)


def _copy_to(model: LanguageModel, device: str) -> LanguageModel:
    return LanguageModel.from_stack(model.to_stack()).to(device).eval()


@pytest.mark.parametrize("device", DEVICES)
def test_token_nll_matches_cpu(device):
    m = _model()
    tk = _tokens()
    ref, tg_ref = token_nll(m, tk, batch_size=1, bptt=30, device="cpu")
    got, tg = token_nll(_copy_to(m, device), tk, batch_size=1, bptt=30, device=device)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == (len(tk) - 1,)
    np.testing.assert_array_equal(tg, tg_ref)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
    # batched evaluation too (columns of the stream)
    ref4, _ = token_nll(m, tk, batch_size=4, bptt=30, device="cpu")
    got4, _ = token_nll(_copy_to(m, device), tk, batch_size=4, bptt=30, device=device)
    np.testing.assert_allclose(got4, ref4, rtol=0, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_gate_timescales_match_cpu(device):
    m = _model()
    tk = _tokens(300)
    ref = estimate_timescales(m, tk, window=25, device="cpu").table_
    got = estimate_timescales(_copy_to(m, device), tk, window=25, device=device).table_
    assert list(got.columns) == list(ref.columns) and len(got) == 16 + 24 + 12
    np.testing.assert_allclose(got["f_mean"], ref["f_mean"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["T_data"], ref["T_data"], rtol=1e-3)


@pytest.mark.parametrize("mode", ["output", "silence"])
@pytest.mark.parametrize("device", DEVICES)
def test_ablation_matches_cpu(device, mode):
    m = _model()
    tk = _tokens(200)
    T = m.to_stack().timescales_table().query("layer == 2")["T_bias"].to_numpy()
    groups = make_groups("quantiles:6", T, 2)
    i_ref, a_ref = ablated_nll(m, tk, groups, mode=mode, bptt=40, group_batch=4, device="cpu")
    i_got, a_got = ablated_nll(_copy_to(m, device), tk, groups, mode=mode, bptt=40, group_batch=7, device=device)
    assert a_got.shape == (6, len(tk) - 1)
    np.testing.assert_allclose(i_got, i_ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(a_got, a_ref, atol=1e-4, rtol=0)
    # ablating changes something, and the intact copy equals a plain evaluation
    assert np.abs(a_ref - i_ref).max() > 1e-4
    plain, _ = token_nll(m, tk, bptt=40)
    np.testing.assert_allclose(i_ref, plain, atol=1e-5, rtol=0)


def _one_step(model: LanguageModel, x: torch.Tensor, y: torch.Tensor, device: str) -> dict[str, torch.Tensor]:
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1.0)
    hidden = repackage_hidden(model.init_hidden(x.size(1)))
    logits, hidden, ex = model(x.to(device), hidden)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.to(device).reshape(-1))
    loss = loss + 2.0 * ex["dropped_outputs"][-1].pow(2).mean()
    loss.backward()
    opt.step()
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("device", DEVICES)
def test_training_step_matches_cpu(device):
    """Without dropout (random masks differ between devices) one SGD step gives the same weights;
    MTS bias vectors stay frozen on both."""
    kw = dict(dropout=0.0, dropouth=0.0, dropouti=0.0, dropoute=0.0)
    tk = _tokens(2 * 21).view(21, 2)
    x, y = tk[:-1], tk[1:]
    ref = _one_step(_model(wdrop=0.0, **kw), x, y, "cpu")
    got = _one_step(_model(wdrop=0.0, **kw), x, y, device)
    start = {k: v.clone() for k, v in _model(wdrop=0.0, **kw).state_dict().items()}
    for k in ref:
        np.testing.assert_allclose(got[k].numpy(), ref[k].numpy(), atol=2e-5, rtol=1e-4, err_msg=k)
    assert not torch.equal(ref["rnns.0.weight_hh_l0"], start["rnns.0.weight_hh_l0"])  # the step did something
    assert torch.equal(ref["rnns.1.bias_hh_l0"], start["rnns.1.bias_hh_l0"])  # frozen MTS layer-2 biases


@pytest.mark.parametrize("device", DEVICES)
def test_dropconnect_step_trains_the_raw_matrix(device):
    """Training mode with DropConnect on the device: the fused path runs, the gradient reaches
    the raw W_hh (only on kept entries of its mask), and eval mode is deterministic."""
    m = _model(wdrop=0.5).to(device).train()
    tk = _tokens(2 * 16).view(16, 2).to(device)
    torch.manual_seed(3)
    logits, _, _ = m(tk[:-1], m.init_hidden(2))
    assert logits.device.type == torch.device(device).type
    F.cross_entropy(logits.view(-1, 50), tk[1:].reshape(-1)).backward()
    for rnn in m.rnns:
        g = rnn.weight_hh_l0.grad
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
        zero_share = (g == 0).float().mean().item()
        assert 0.3 < zero_share < 0.7  # about wdrop of the entries were dropped
    m.eval()
    with torch.no_grad():
        a, _, _ = m(tk[:-1], m.init_hidden(2))
        b, _, _ = m(tk[:-1], m.init_hidden(2))
    assert torch.equal(a, b)


@pytest.mark.parametrize("device", DEVICES)
def test_train_and_seed_tables_on_device(device, tmp_path):
    """A tiny model trained on the device writes a per-seed folder whose numbers match the CPU's."""
    from timescale_probe.corpora import load_corpus
    from timescale_probe.seeds import read_seed_folder, write_seed_tables
    from timescale_probe.training import train_language_model

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    for split, n in (("train", 300), ("valid", 40), ("test", 40)):
        lines = [" ".join(rng.choice(words, size=rng.integers(3, 9))) for _ in range(n)]
        (tmp_path / f"{split}.txt").write_text("\n".join(lines) + "\n")
    corpus = load_corpus(str(tmp_path))
    ckpt = tmp_path / "m.pt"
    res = train_language_model(corpus, ckpt, arch="mts", profile="tiny", train_overrides={"epochs": 1},
                               device=device, final_eval=False)
    assert ckpt.is_file() and res.card["epochs"] == 1
    out_dev, out_cpu = tmp_path / "dev", tmp_path / "cpu"
    write_seed_tables(ckpt, corpus, out_dev, device=device, groups="quantiles:6", controls=3, n_resamples=50)
    write_seed_tables(ckpt, corpus, out_cpu, device="cpu", groups="quantiles:6", controls=3, n_resamples=50)
    a, b = read_seed_folder(out_dev), read_seed_folder(out_cpu)
    assert a.missing == [] and b.missing == []
    np.testing.assert_allclose(a.token_nll, b.token_nll, atol=1e-4, rtol=0)
    np.testing.assert_allclose(a.timescales["T_data"], b.timescales["T_data"], rtol=1e-3)
    np.testing.assert_allclose(a.ablation["ratio"], b.ablation["ratio"], rtol=1e-4)
    assert a.card["seed_tables"]["device"].startswith(torch.device(device).type)
    assert math.isclose(a.card["seed_tables"]["test_ppl"], math.exp(a.token_nll.mean()), rel_tol=1e-9)
