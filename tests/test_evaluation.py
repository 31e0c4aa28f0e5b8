import math

import numpy as np
import pytest
import torch
from helpers import one_thread_fixture  # noqa: F401  (small models run on one torch thread)

from timescale_probe.errors import OptionError
from timescale_probe.evaluation import (
    batchify,
    comparison_table,
    markdown_table,
    order_statistic_ranks,
    paired_bootstrap,
    perplexity_by_bin,
    resample_counts,
    token_nll,
)
from timescale_probe.models import LanguageModel, LMConfig
from timescale_probe.runner import mask_output

pytestmark = pytest.mark.usefixtures("one_thread")

V = 23


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LanguageModel(LMConfig(vocab_size=V, emb_size=6, layer_sizes=(10, 6))).eval()


@pytest.fixture(scope="module")
def stream():
    return torch.randint(0, V, (203,), generator=torch.Generator().manual_seed(5))


def full_nll(model, seq):
    """Reference: one forward over the whole sequence (batch 1), NLL of tokens 1..n-1."""
    with torch.no_grad():
        logits = model(seq[:-1].view(-1, 1))[0][:, 0]
    return torch.nn.functional.cross_entropy(logits, seq[1:], reduction="none").double().numpy()


def test_token_nll_carries_state_across_windows(model, stream):
    nll, targets = token_nll(model, stream, batch_size=1, bptt=7)
    assert nll.dtype == np.float64 and targets.dtype == np.int64
    assert targets.tolist() == stream[1:].tolist()
    np.testing.assert_allclose(nll, full_nll(model, stream), rtol=1e-5, atol=1e-6)
    nll70, _ = token_nll(model, stream, batch_size=1, bptt=70)
    np.testing.assert_allclose(nll, nll70, rtol=1e-5, atol=1e-6)


def test_token_nll_batched_is_stream_ordered(model, stream):
    nll, targets = token_nll(model, stream, batch_size=3, bptt=10)
    n = 203 // 3
    cols = [stream[b * n:(b + 1) * n] for b in range(3)]
    assert targets.tolist() == sum((c[1:].tolist() for c in cols), [])
    expected = np.concatenate([full_nll(model, c) for c in cols])
    np.testing.assert_allclose(nll, expected, rtol=1e-5, atol=1e-6)
    assert batchify(stream, 3).shape == (67, 3)


def test_token_nll_hooks_and_training_flag(model, stream):
    model.train()
    plain, _ = token_nll(model, stream, bptt=50)
    assert model.training  # restored
    model.eval()
    np.testing.assert_array_equal(plain, token_nll(model, stream, bptt=50)[0])  # eval mode: dropout never ran
    masked, _ = token_nll(model, stream, bptt=50, hooks=[mask_output(1, torch.zeros(10))])
    assert not np.allclose(plain, masked)
    ones, _ = token_nll(model, stream, bptt=50, hooks=[mask_output(1, torch.ones(10))])
    np.testing.assert_array_equal(plain, ones)


def test_perplexity_by_bin():
    nll = np.array([1.0, 2.0, 3.0, 4.0])
    targets = np.array([0, 1, 1, 2])
    bin_of = np.array([0, 1, 1])
    t = perplexity_by_bin(nll, targets, bin_of, ["hi", "lo"])
    assert t["bin"].tolist() == ["hi", "lo", "overall"]
    assert t["tokens"].tolist() == [1, 3, 4]
    np.testing.assert_allclose(t["nll_mean"], [1.0, 3.0, 2.5])
    np.testing.assert_allclose(t["ppl"], np.exp([1.0, 3.0, 2.5]))
    empty = perplexity_by_bin(nll, targets, np.array([0, 0, 0]), ["a", "b"])
    assert empty["tokens"].tolist() == [4, 0, 4] and math.isnan(empty["ppl"][1])


def test_order_statistic_ranks_match_reference():
    assert order_statistic_ranks(10001, 0.999) == (4, 9995)
    assert order_statistic_ranks(10001, 0.95) == (249, 9750)
    with pytest.raises(OptionError):
        order_statistic_ranks(100, 1.0)


def test_resample_counts():
    W = resample_counts(7, 50, seed=3)
    assert W.shape == (51, 7) and (W[0] == 1).all() and (W.sum(axis=1) == 7).all()
    assert np.array_equal(W, resample_counts(7, 50, seed=3))
    assert not np.array_equal(W, resample_counts(7, 50, seed=4))


def _naive_bootstrap(nll_a, nll_b, targets, bin_of, n_bins, chunk, W):
    """The reference's loop: concatenate the drawn chunks, ppl per bin, difference."""
    n_chunks = W.shape[1]
    diffs = []
    for row in W:
        idx = np.concatenate([np.arange(c * chunk, (c + 1) * chunk) for c in range(n_chunks) for _ in range(row[c])])
        b = bin_of[targets[idx]]
        d = [math.exp(nll_a[idx][b == j].mean()) - math.exp(nll_b[idx][b == j].mean()) for j in range(n_bins)]
        d.append(math.exp(nll_a[idx].mean()) - math.exp(nll_b[idx].mean()))
        diffs.append(d)
    return np.array(diffs)


def test_paired_bootstrap_equals_naive_loop():
    rng = np.random.default_rng(0)
    n, chunk = 1234, 10
    targets = rng.integers(0, 5, n)
    bin_of = np.array([0, 0, 1, 1, 1])
    nll_a = rng.gamma(2.0, 1.5, n)
    nll_b = nll_a - 0.1 * (targets >= 2) + rng.normal(0, 0.01, n)
    boot = paired_bootstrap(nll_a, nll_b, targets, bin_of, ["frequent", "rare"], chunk=chunk, n_resamples=300,
                            level=0.9, seed=11)
    W = resample_counts(n // chunk, 300, seed=11)
    naive = _naive_bootstrap(nll_a, nll_b, targets, bin_of, 2, chunk, W)
    np.testing.assert_allclose(boot["diff"], naive.mean(axis=0), rtol=1e-10)
    lo, hi = order_statistic_ranks(301, 0.9)
    np.testing.assert_allclose(boot["lo"], np.sort(naive, axis=0)[lo], rtol=1e-10)
    np.testing.assert_allclose(boot["hi"], np.sort(naive, axis=0)[hi], rtol=1e-10)
    keep = (n // chunk) * chunk
    assert boot["tokens"].tolist()[-1] == keep and boot["n_chunks"].iloc[0] == 123
    assert boot["ppl_a"].iloc[-1] == pytest.approx(math.exp(nll_a[:keep].mean()), rel=1e-12)
    # the rare bin is where b is better, and the interval excludes 0 there
    assert boot.loc[1, "lo"] > 0 and boot.loc[0, "diff"] == pytest.approx(0, abs=0.05)


def test_paired_bootstrap_identical_models_and_seed():
    rng = np.random.default_rng(1)
    nll = rng.gamma(2.0, 1.0, 500)
    targets = rng.integers(0, 3, 500)
    bin_of = np.array([0, 1, 1])
    b = paired_bootstrap(nll, nll, targets, bin_of, ["a", "b"], n_resamples=100)
    assert (b[["diff", "lo", "hi"]].to_numpy() == 0).all()
    b1 = paired_bootstrap(nll, nll * 1.01, targets, bin_of, ["a", "b"], n_resamples=100, seed=5)
    b2 = paired_bootstrap(nll, nll * 1.01, targets, bin_of, ["a", "b"], n_resamples=100, seed=5)
    assert b1.equals(b2)
    with pytest.raises(OptionError):
        paired_bootstrap(nll, nll[:-1], targets, bin_of, ["a", "b"])


def test_comparison_and_markdown():
    nll = np.array([1.0, 2.0, 3.0, 4.0] * 50)
    targets = np.array([0, 1, 1, 2] * 50)
    bin_of = np.array([0, 1, 1])
    pa = perplexity_by_bin(nll, targets, bin_of, ["hi", "lo"])
    pb = perplexity_by_bin(nll * 0.9, targets, bin_of, ["hi", "lo"])
    boot = paired_bootstrap(nll, nll * 0.9, targets, bin_of, ["hi", "lo"], chunk=10, n_resamples=50)
    t = comparison_table(pa, pb, boot)
    assert list(t.columns[:4]) == ["bin", "tokens", "ppl_baseline", "ppl_mts"]
    assert (t["diff"] > 0).all()
    md = markdown_table(t)
    assert md.splitlines()[0].startswith("| bin | tokens | ppl_baseline") and "| overall |" in md


def test_head_perplexity_is_the_perplexity_of_the_first_targets(model, stream):
    """The card's quick check: exp(mean NLL) of the first n targets of one whole-sequence forward."""
    from timescale_probe.evaluation import head_perplexity

    class OneSplit:
        def tokens(self, split):
            assert split == "test"
            return stream

    ref = full_nll(model, stream)
    for n in (1, 50, 202):
        assert head_perplexity(model, OneSplit(), n, bptt=7) == pytest.approx(math.exp(ref[:n].mean()), rel=1e-5)
    for bad in (0, 203):
        with pytest.raises(OptionError, match="n_tokens") as exc:
            head_perplexity(model, OneSplit(), bad)
        assert exc.value.param == "n_tokens"
