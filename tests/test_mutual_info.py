"""Estimator exactness, fits and synthetic ground truth for timescale_probe.mutual_info."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy.special import digamma

from timescale_probe.errors import CorpusError, OptionError
from timescale_probe.mutual_info import (
    distance_stats,
    entropy_from_counts,
    fit_decay_laws,
    fits_table,
    grassberger_g,
    log_distances,
    markov_decay_length,
    markov_exact_mi,
    mi_curve,
    mi_decay,
    pair_counts,
    parse_distances,
    random_reversible_matrix,
    read_token_stream,
    sample_markov_chain,
    sample_tree_grammar,
    second_eigenvalue_modulus,
    shuffle_null,
    tree_exact_mi,
    tree_exponent,
)
from timescale_probe.mutual_info.estimate import ESTIMATORS, mi_from_counts


def _direct_from_pairs(pairs):
    """Plug-in, Miller-Madow and Grassberger MI (nats) of an explicit list of pairs (Counters)."""
    n = len(pairs)
    joint, first, second = Counter(pairs), Counter(p[0] for p in pairs), Counter(p[1] for p in pairs)
    plug = sum(c / n * math.log(c * n / (first[a] * second[b])) for (a, b), c in joint.items())
    mm = plug + (len(first) + len(second) - len(joint) - 1) / (2 * n)

    def g(k):
        return digamma(k) + 0.5 * (-1) ** k * (digamma((k + 1) / 2) - digamma(k / 2))

    def hg(counter):
        return math.log(n) - sum(c * g(c) for c in counter.values()) / n

    return np.array([plug, mm, hg(first) + hg(second) - hg(joint)])


def direct_mi(x, d, seg=None):
    """Independent reference: plug-in, Miller-Madow and Grassberger MI (nats) from Python Counters,
    and the number of pairs."""
    pairs = [(x[i], x[i + d]) for i in range(len(x) - d) if seg is None or seg[i] == seg[i + d]]
    return (*_direct_from_pairs(pairs), len(pairs))


@pytest.fixture(scope="module")
def small_stream():
    rng = np.random.default_rng(3)
    # a little dependence: a noisy copy at lag 2 over a skewed alphabet
    x = rng.zipf(1.6, size=3000) % 40
    x[2:] = np.where(rng.random(2998) < 0.3, x[:-2], x[2:])
    seg = np.repeat(np.arange(30), 100)
    return x.astype(np.int64), seg


@pytest.mark.parametrize("d", [1, 2, 7, 50])
@pytest.mark.parametrize("use_seg", [False, True])
def test_estimators_equal_direct_formula(small_stream, d, use_seg):
    x, seg = small_stream
    seg = seg if use_seg else None
    plug, mm, gr, n = direct_mi(x.tolist(), d, None if seg is None else seg.tolist())
    r = distance_stats(x, d, 40, boundaries=seg, se="delta")
    assert r["n_pairs"] == n
    assert r["plugin"] == pytest.approx(plug, rel=1e-12, abs=1e-14)
    assert r["miller-madow"] == pytest.approx(mm, rel=1e-12, abs=1e-14)
    assert r["grassberger"] == pytest.approx(gr, rel=1e-11, abs=1e-13)


def test_grassberger_g_known_values():
    euler = 0.5772156649015329
    assert grassberger_g(1) == pytest.approx(-euler - math.log(2), abs=1e-14)
    assert grassberger_g(2) == pytest.approx(2 - euler - math.log(2), abs=1e-14)
    # G(n) -> ln n for large n (the estimator becomes the plug-in)
    assert grassberger_g(10**6) == pytest.approx(math.log(10**6), abs=1e-6)
    counts = np.array([5, 3, 1, 1, 0, 7])
    n = counts.sum()
    ml = -sum(c / n * math.log(c / n) for c in counts if c)
    assert entropy_from_counts(counts, "plugin") == pytest.approx(ml, rel=1e-14)
    assert entropy_from_counts(counts, "miller-madow") == pytest.approx(ml + 4 / (2 * n), rel=1e-14)


def test_chunked_counts_equal_single_pass(small_stream):
    x, seg = small_stream
    for b in (None, seg):
        full = pair_counts(x, 3, 40, boundaries=b)
        chunked = pair_counts(x, 3, 40, boundaries=b, chunk_size=97)  # many chunks, merges on the way
        np.testing.assert_array_equal(full.cells, chunked.cells)
        np.testing.assert_array_equal(full.joint, chunked.joint)
        np.testing.assert_array_equal(full.first, chunked.first)
        # large alphabet forces the sort path instead of bincount
        big = x * 1000
        a = pair_counts(big, 3, 40_000, boundaries=b)
        c = pair_counts(big, 3, 40_000, boundaries=b, chunk_size=211)
        np.testing.assert_array_equal(a.joint, c.joint)
        assert mi_from_counts(a)["plugin"] == pytest.approx(mi_from_counts(full)["plugin"], rel=1e-13)


def test_jackknife_equals_brute_force_and_both_paths(small_stream):
    x, seg = small_stream
    d, B = 4, 10
    fast = distance_stats(x, d, 40, se="jackknife", n_blocks=B)
    generic = distance_stats(x, d, 40, se="jackknife", n_blocks=B, chunk_size=50)  # chunked path, 60 blocks
    same_blocks = distance_stats(x, d, 40, se="jackknife", n_blocks=B, chunk_size=len(x) - d - 1)
    # brute force: drop the pairs whose start lies in block k, recompute from scratch
    n_pos = len(x) - d
    edges = np.linspace(0, n_pos, B + 1).round().astype(int)
    loo = []
    for k in range(B):
        keep = np.ones(n_pos, bool)
        keep[edges[k]:edges[k + 1]] = False
        pairs = list(zip(x[:n_pos][keep].tolist(), x[d:][keep].tolist()))
        n = len(pairs)
        j, f, s = Counter(pairs), Counter(p[0] for p in pairs), Counter(p[1] for p in pairs)
        loo.append(sum(c / n * math.log(c * n / (f[a] * s[b])) for (a, b), c in j.items()))
    loo = np.array(loo)
    se = math.sqrt((B - 1) / B * np.sum((loo - loo.mean()) ** 2))
    assert fast["se_plugin"] == pytest.approx(se, rel=1e-9)
    assert same_blocks["se_plugin"] == pytest.approx(se, rel=1e-9)  # 2 chunks but 10 blocks: generic path
    assert generic["plugin"] == pytest.approx(fast["plugin"], rel=1e-13)
    assert generic["se_plugin"] > 0


def test_distance_grid_and_parsing():
    d = log_distances(1000, 60)
    assert len(d) == 60 and d[0] == 1 and d[-1] == 1000 and np.all(np.diff(d) > 0)
    assert list(parse_distances("1,2,5,10-12")) == [1, 2, 5, 10, 11, 12]
    with pytest.raises(OptionError):
        parse_distances("0,3")
    with pytest.raises(OptionError):
        parse_distances("a-b")
    assert list(log_distances(5, 60)) == [1, 2, 3, 4, 5]


def test_shuffle_null_is_seeded_and_independent_of_count(small_stream):
    x, _ = small_stream
    a = shuffle_null(x, [1, 5], 3, seed=11)
    b = shuffle_null(x, [1, 5], 2, seed=11)
    np.testing.assert_array_equal(a[a.shuffle < 2]["mi_plugin_bits"].to_numpy(), b["mi_plugin_bits"].to_numpy())
    c = shuffle_null(x, [1, 5], 2, seed=12)
    assert not np.allclose(b["mi_plugin_bits"], c["mi_plugin_bits"])


def test_bad_inputs_raise_user_errors():
    with pytest.raises(OptionError):
        mi_decay(np.arange(10), estimator="nope")
    with pytest.raises(OptionError):
        mi_decay(np.arange(10), distances=[20])
    with pytest.raises(OptionError):
        mi_curve(np.array([0.5, 1.5]), [1])


# ---------------------------------------------------------------- fits on exact curves
def test_fits_recover_exact_laws():
    d = np.unique(np.round(np.geomspace(1, 500, 40)))
    y = 0.7 * np.exp(-d / 23.0)
    keep = y > 1e-8
    t = fits_table(fit_decay_laws(d[keep], y[keep], 0.01 * y[keep]))
    e = t.set_index("model")
    assert e.loc["exponential", "xi"] == pytest.approx(23.0, rel=1e-9)
    assert e.loc["exponential", "delta_aicc"] == 0 or e.loc["combined", "B"] / e.loc["exponential", "A"] > 0.99
    y = 0.3 * d ** -0.8
    t = fits_table(fit_decay_laws(d, y, 0.01 * y)).set_index("model")
    assert t.loc["power", "k"] == pytest.approx(0.8, rel=1e-9)
    assert t.loc["power", "delta_aicc"] == 0
    y = 0.3 * d ** -0.6 + 1.5 * np.exp(-d / 4.0)
    t = fits_table(fit_decay_laws(d, y, 0.01 * y)).set_index("model")
    assert t.loc["combined", "delta_aicc"] == 0
    assert t.loc["combined", "k"] == pytest.approx(0.6, abs=1e-4)
    assert t.loc["combined", "xi"] == pytest.approx(4.0, rel=1e-4)


# ---------------------------------------------------------------- synthetic ground truth
def test_markov_mi_decays_as_lambda2_squared():
    """Exact I(d) of a generic reversible chain: I(d+1)/I(d) -> |lambda_2|^2 (xi = -1/(2 ln|lambda_2|))."""
    P = random_reversible_matrix(7, 0.9, seed=5)
    assert second_eigenvalue_modulus(P) == pytest.approx(0.9, abs=1e-12)
    d = np.arange(1, 120)
    mi = markov_exact_mi(P, d)
    rate = np.log(mi[1:] / mi[:-1])
    assert abs(rate[0] - 2 * np.log(0.9)) > 0.05  # not yet asymptotic at d = 1 ...
    assert rate[-1] == pytest.approx(2 * np.log(0.9), abs=1e-5)  # ... but exactly so at long range
    assert markov_decay_length(P) == pytest.approx(-1 / (2 * np.log(0.9)), rel=1e-12)


def test_markov_chain_fit_is_exponential_with_known_length():
    """Sampled chain (1.2M tokens): the tail law is exponential and xi within 5% of -1/(2 ln 0.9) = 4.746."""
    P = random_reversible_matrix(6, 0.9, seed=1, within="iid")
    x, chains = sample_markov_chain(P, 1_200_000, n_chains=200, seed=2)
    r = mi_decay(x, boundaries=chains, max_distance=200, n_distances=30, n_resamples=3, seed=0)
    s = r.summary
    assert s["tail"] == "exponential" and s["tail_delta_aicc"] > 20
    assert s["delta_aicc_power"] > 20  # the pure power law loses on the whole range too
    assert s["xi_tail"] == pytest.approx(markov_decay_length(P), rel=0.05) and s["xi"] == s["xi_tail"]
    assert np.isnan(s["a"])
    exact = markov_exact_mi(P, r.curve["distance"].to_numpy()[:10])
    np.testing.assert_allclose(r.curve["excess_bits"].to_numpy()[:10], exact, rtol=0.02)


def test_tree_grammar_fit_is_power_law_with_known_exponent():
    """Lin & Tegmark-style tree (2^20 tokens): power-law tail, k within 0.05 of the exact curve's k."""
    lam, depth = 0.85, 20
    x = sample_tree_grammar(depth, lam=lam, seed=4)
    r = mi_decay(x, max_distance=1000, n_distances=40, n_resamples=3, seed=0)
    s = r.summary
    assert s["tail"] == "power"
    assert s["delta_aicc_exponential"] > 100
    d = r.curve["distance"].to_numpy()
    exact = tree_exact_mi(depth, d, lam=lam)
    np.testing.assert_allclose(r.curve["excess_bits"].to_numpy()[:5], exact[:5], rtol=0.05)
    k_exact = fits_table(fit_decay_laws(d, exact, 0.01 * exact)).set_index("model").loc["power", "k"]
    assert s["k"] == pytest.approx(k_exact, abs=0.05)
    assert s["k_tail"] == pytest.approx(tree_exponent(lam), abs=0.05)  # asymptotic 0.938
    assert s["a"] == pytest.approx(s["k_tail"] / 2)


# ---------------------------------------------------------------- reading text
def test_read_token_stream_lines_documents_and_gutenberg(tmp_path):
    text = "header junk\n*** START OF THE BOOK ***\nb a\n\nc a b\n*** END OF THE BOOK ***\nfooter\n"
    p = tmp_path / "book.txt"
    p.write_text(text)
    refs = tmp_path / "book.refs.txt"
    refs.write_text("x 0:0\nx 0:1\nBook One 1:1\nBook One 1:2\nBook Two 1:1\nx 9:9\nx 9:9\n")
    s = read_token_stream(p, documents=refs)
    assert s.vocab == ["<eos>", "a", "b", "c"]
    assert [s.vocab[i] for i in s.tokens] == ["b", "a", "<eos>", "<eos>", "c", "a", "b", "<eos>"]
    assert s.line_ids.tolist() == [0, 0, 0, 1, 2, 2, 2, 2]
    assert s.doc_ids.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    raw = read_token_stream(p, strip_gutenberg=False, lowercase=True)
    assert len(raw) == (2 + 6 + 2 + 0 + 3 + 6 + 1) + 7  # all 7 lines: tokens + one <eos> each
    (tmp_path / "bin.txt").write_bytes(b"a\x00b\n")
    with pytest.raises(CorpusError):
        read_token_stream(tmp_path / "bin.txt")
    with pytest.raises(OptionError):
        s.boundaries("sentences")


def test_block_shuffle_and_paired_jackknife_of_the_excess():
    """Blocks with different vocabularies (like Brown's genres): deleting a block shifts the
    estimator's bias in I(d) and in its block-shuffled reference alike, so the paired SE of the
    excess is far below the plain jackknife SE of I(d)."""
    from timescale_probe.mutual_info.estimate import block_shuffle

    rng = np.random.default_rng(0)
    parts = []
    for _g in range(20):  # 20 "genres", each its own slice of a 4000-type vocabulary, with a lag-1 copy
        v = rng.integers(0, 4000, size=300) + 0
        p = rng.choice(v, size=6000, p=rng.dirichlet(np.full(300, 0.3)))
        p[1:] = np.where(rng.random(5999) < 0.2, p[:-1], p[1:])
        parts.append(p)
    x = np.concatenate(parts)
    xb = block_shuffle(x, 20, seed=1)
    edges = np.linspace(0, x.size, 21).round().astype(int)
    for a, b in zip(edges[:-1], edges[1:]):
        np.testing.assert_array_equal(np.sort(x[a:b]), np.sort(xb[a:b]))
    r = mi_decay(x, distances=[1, 2, 5, 20, 100], n_resamples=2, seed=0, n_blocks=20)
    c = r.curve
    assert (c["excess_se_bits"] < 0.5 * c["se_bits"]).all()
    assert c.loc[c.distance == 1, "excess_bits"].item() > 0.1


def test_retained_range_tolerates_single_gaps():
    from timescale_probe.mutual_info.analysis import retained_range

    c = np.array([1, 1, 0, 1, 1, 0, 0, 1], bool)
    assert retained_range(c, 1).astype(int).tolist() == [1, 1, 0, 1, 1, 0, 0, 0]
    assert retained_range(c, 0).astype(int).tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert retained_range(np.ones(4, bool), 1).all()


def test_without_eos_drops_line_ends(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("a b\nc\n")
    s = read_token_stream(p).without_eos()
    assert [s.vocab[i] for i in s.tokens] == ["a", "b", "c"] and s.line_ids.tolist() == [0, 0, 1]


def test_jackknife_wide_keys_with_boundaries_equal_the_generic_path():
    """A vocabulary whose ``V^2 << shift`` overflows 32 bits takes the int64 key; with segment
    boundaries the one-sort jackknife still equals the chunked path, and the delta SE equals the
    direct formula."""
    rng = np.random.default_rng(3)
    V = 70_000  # V^2 * 32 > 2^32
    x = rng.choice(np.array([0, 5, 17, 40_000, 69_999]), size=3000, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    x = np.where(rng.random(3000) < 0.5, x, np.roll(x, 1))  # some dependence at distance 1
    seg = np.cumsum(rng.random(3000) < 0.01)
    fast = distance_stats(x, 1, V, boundaries=seg, se="jackknife", n_blocks=20, delta_se=True)
    generic = distance_stats(x, 1, V, boundaries=seg, se="jackknife", n_blocks=20, chunk_size=149, delta_se=True)
    assert fast["plugin"] == pytest.approx(generic["plugin"], rel=1e-13)
    assert fast["se_delta"] == pytest.approx(generic["se_delta"], rel=1e-12)
    keep = seg[:-1] == seg[1:]
    pairs = list(zip(x[:-1][keep].tolist(), x[1:][keep].tolist()))
    n = len(pairs)
    j, f, s = Counter(pairs), Counter(p[0] for p in pairs), Counter(p[1] for p in pairs)
    pmi = {ab: math.log(c * n / (f[ab[0]] * s[ab[1]])) for ab, c in j.items()}
    mi = sum(c / n * pmi[ab] for ab, c in j.items())
    var = (sum(c / n * pmi[ab] ** 2 for ab, c in j.items()) - mi * mi) / n
    assert fast["plugin"] == pytest.approx(mi, rel=1e-12)
    assert fast["se_delta"] == pytest.approx(math.sqrt(var), rel=1e-9)
    assert fast["loo"].shape == (20, 3) and np.isfinite(fast["se_plugin"]) and fast["se_plugin"] > 0


def test_line_laws_equal_closed_form_weighted_least_squares():
    """The exponential and power laws come from statsmodels WLS: the same estimates, t intervals,
    log-likelihood and AICc as the closed-form weighted least squares written out here."""
    from scipy import stats as st

    rng = np.random.default_rng(0)
    d = np.unique(np.geomspace(1, 1000, 40).round())
    mi = 0.5 * d ** -0.6 * np.exp(rng.normal(0, 0.05, d.size))
    sigma = 0.05 * mi * (1 + rng.random(d.size))
    fits = {f.model: f for f in fit_decay_laws(d, mi, sigma)}
    z, s = np.log(mi), sigma / mi
    n = d.size
    for model, x in (("exponential", d), ("power", np.log(d))):
        W = 1 / s ** 2
        X = np.column_stack([np.ones(n), x])
        coef = np.linalg.solve(X.T @ (W[:, None] * X), X.T @ (W * z))
        r = (z - X @ coef) / s
        chi2 = float(r @ r)
        se = np.sqrt(np.diag(np.linalg.inv(X.T @ (W[:, None] * X))) * chi2 / (n - 2))
        t = st.t.ppf(0.975, n - 2)
        loglik = -n / 2 * (np.log(2 * np.pi * chi2 / n) + 1) - np.log(s).sum()
        p = 3  # two curve parameters and the error scale
        aicc = -2 * loglik + 2 * p + 2 * p * (p + 1) / (n - p - 1)
        f = fits[model]
        assert f.chi2 == pytest.approx(chi2, rel=1e-10)
        assert f.log_likelihood == pytest.approx(loglik, rel=1e-10) and f.aicc == pytest.approx(aicc, rel=1e-10)
        assert f.params["A"] == pytest.approx(np.exp(coef[0]), rel=1e-10)
        if model == "power":
            assert f.params["k"] == pytest.approx(-coef[1], rel=1e-12)
            np.testing.assert_allclose(f.intervals["k"], [-coef[1] - t * se[1], -coef[1] + t * se[1]], rtol=1e-10)
        else:
            assert f.params["xi"] == pytest.approx(-1 / coef[1], rel=1e-12)
            np.testing.assert_allclose(f.intervals["xi"], [-1 / (coef[1] - t * se[1]), -1 / (coef[1] + t * se[1])],
                                       rtol=1e-10)
        assert f.pointwise_loglik.sum() == pytest.approx(loglik, rel=1e-10)  # the Vuong test's inputs
    # the decay laws' Vuong test is the package's one likelihood-ratio test (ddof 0)
    from timescale_probe.mutual_info import vuong_test

    v = vuong_test(fits["power"], fits["exponential"])
    diff = fits["power"].pointwise_loglik - fits["exponential"].pointwise_loglik
    assert v.test == "vuong" and v.R == pytest.approx(diff.sum())
    assert v.z == pytest.approx(diff.sum() / (np.sqrt(n) * diff.std(ddof=0)))
    assert v.R > 0 and v.p < 1e-3  # a power law, recognised


@pytest.mark.parametrize("d", [1, 3, 40, 90])
@pytest.mark.parametrize("use_seg", [False, True])
def test_leave_one_block_out_equals_recomputation_without_the_block(small_stream, d, use_seg):
    """Every leave-one-block-out estimate of the one-sort jackknife (all three estimators) equals
    the estimator rerun from scratch on the pairs that remain when the block is removed, and the
    jackknife SEs follow from them; also through mi_curve's shared per-stream work."""
    x, seg = small_stream
    seg = seg if use_seg else None
    B = 7
    r = distance_stats(x, d, 40, boundaries=seg, se="jackknife", n_blocks=B)
    n_pos = len(x) - d
    edges = np.linspace(0, n_pos, B + 1).round().astype(int)
    loo = []
    for k in range(B):
        keep = np.ones(n_pos, bool)
        keep[edges[k]:edges[k + 1]] = False
        if seg is not None:
            keep &= seg[:n_pos] == seg[d:]
        loo.append(_direct_from_pairs(list(zip(x[:n_pos][keep].tolist(), x[d:][keep].tolist()))))
    loo = np.array(loo)
    np.testing.assert_allclose(r["loo"], loo, rtol=1e-12, atol=1e-13)
    se = np.sqrt((B - 1) / B * ((loo - loo.mean(0)) ** 2).sum(0))
    np.testing.assert_allclose([r["se_plugin"], r["se_miller-madow"], r["se_grassberger"]], se, rtol=1e-9)
    full = _direct_from_pairs([(x[i], x[i + d]) for i in range(n_pos) if seg is None or seg[i] == seg[i + d]])
    np.testing.assert_allclose([r["plugin"], r["miller-madow"], r["grassberger"]], full, rtol=1e-12, atol=1e-14)
    curve = mi_curve(x, [2, d], n_types=40, boundaries=seg, se="jackknife", n_blocks=B)
    np.testing.assert_allclose(curve.attrs["loo_bits"][1] * math.log(2), loo, rtol=1e-12, atol=1e-13)


def test_leave_one_block_out_at_far_distances_and_without_pairs(small_stream):
    """Distances so far that every block edge moves past its neighbour's (the block ids and
    marginals are rebuilt rather than patched) still equal the recomputation; a distance with no
    pair left gives NaN estimates, not an error."""
    x, seg = small_stream
    B, d = 6, 1700
    n_pos = len(x) - d
    edges = np.linspace(0, n_pos, B + 1).round().astype(int)
    curve = mi_curve(x, [1, d], n_types=40, se="jackknife", n_blocks=B)
    loo = []
    for k in range(B):
        keep = np.ones(n_pos, bool)
        keep[edges[k]:edges[k + 1]] = False
        loo.append(_direct_from_pairs(list(zip(x[:n_pos][keep].tolist(), x[d:][keep].tolist()))))
    np.testing.assert_allclose(curve.attrs["loo_bits"][1] * math.log(2), np.array(loo), rtol=1e-12, atol=1e-13)
    empty = distance_stats(x, 150, 40, boundaries=seg, se="jackknife", n_blocks=B)  # segments are 100 long
    assert empty["n_pairs"] == 0 and np.isnan(empty["plugin"]) and np.isnan(empty["loo"]).all()


def test_leave_one_block_out_with_a_tiny_vocabulary():
    """Two token types: a handful of cells with very large counts (the per-run table path instead
    of the (value, block) histograms) still equal the recomputation without each block."""
    rng = np.random.default_rng(5)
    x = (rng.random(40_000) < 0.3).astype(np.int64)
    x[1:] = np.where(rng.random(39_999) < 0.4, x[:-1], x[1:])
    B, d = 7, 5
    r = distance_stats(x, d, 2, se="jackknife", n_blocks=B)
    n_pos = len(x) - d
    edges = np.linspace(0, n_pos, B + 1).round().astype(int)
    loo = []
    for k in range(B):
        keep = np.ones(n_pos, bool)
        keep[edges[k]:edges[k + 1]] = False
        loo.append(_direct_from_pairs(list(zip(x[:n_pos][keep].tolist(), x[d:][keep].tolist()))))
    np.testing.assert_allclose(r["loo"], np.array(loo), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("chunk_size", [None, 500])
def test_delta_se_beside_the_jackknife_only_on_request(small_stream, chunk_size):
    """The jackknife alone leaves the delta SE out (NaN, no ``se_delta_bits`` column); with
    ``delta_se=True`` it is the same number as ``se='delta'`` gives, on the one-sort and on the
    chunked path, and the jackknife SEs do not change."""
    x, _ = small_stream
    kw = {} if chunk_size is None else {"chunk_size": chunk_size}
    plain = distance_stats(x, 3, 40, se="jackknife", n_blocks=7, **kw)
    both = distance_stats(x, 3, 40, se="jackknife", n_blocks=7, delta_se=True, **kw)
    delta = distance_stats(x, 3, 40, se="delta", **kw)
    assert np.isnan(plain["se_delta"])
    assert both["se_delta"] == pytest.approx(delta["se_delta"], rel=1e-12)
    for est in ESTIMATORS:
        assert both[f"se_{est}"] == plain[f"se_{est}"]
    assert "se_delta_bits" not in mi_curve(x, [1, 3], n_types=40, se="jackknife", n_blocks=7, **kw).columns
    curve = mi_curve(x, [1, 3], n_types=40, se="jackknife", n_blocks=7, delta_se=True, **kw)
    assert curve["se_delta_bits"].iloc[1] == pytest.approx(delta["se_delta"] / math.log(2), rel=1e-12)


def test_sparse_leave_one_out_marginal_terms_equal_the_dense_sums():
    """The marginals' leave-one-block-out terms patched from the distance-0 terms (the tokens
    between moved block edges, the first and last d tokens) equal the dense per-block sums at
    every distance, including ones where edges move past their neighbours, and repeated calls
    leave the shared accumulator clean; the patch declines (None) when the windows outgrow a
    dense pass."""
    from timescale_probe.mutual_info.counts import _block_edges
    from timescale_probe.mutual_info.jackknife import _JackknifeWork, _loo_terms

    rng = np.random.default_rng(11)
    V, B = 5000, 20
    x = rng.zipf(1.3, 30_000) % V
    work = _JackknifeWork(x, V, B)
    taken = []
    for d in [1, 2, 7, 64, 500, 1499, 1500, 1600, 1700, 9000] * 2:  # edges cross neighbours beyond 1500
        edges = _block_edges(x.size - d, B, x.size)
        got = work.loo_marginal_terms(d, edges)
        if got is None:
            continue
        taken.append(d)
        first, second, n_k, t_first, t_second = got
        first_kb, second_kb = work.block_marginals(d, edges)
        np.testing.assert_array_equal(first, first_kb.sum(0))
        np.testing.assert_array_equal(second, second_kb.sum(0))
        np.testing.assert_array_equal(n_k, first_kb.sum(1))
        np.testing.assert_allclose(t_first, _loo_terms(first, first_kb, work.tables), rtol=1e-13, atol=1e-8)
        np.testing.assert_allclose(t_second, _loo_terms(second, second_kb, work.tables), rtol=1e-13, atol=1e-8)
    assert 1700 in taken and len(taken) == 18 and not work._acc.any()
    assert work.loo_marginal_terms(25_000, _block_edges(x.size - 25_000, B, x.size)) is None
