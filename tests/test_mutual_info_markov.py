"""Markov resampling (tsprobe markov-corpus): sizes, vocabulary, determinism, exponential MI decay."""
from __future__ import annotations

import numpy as np
import pytest

from timescale_probe.mutual_info import mi_decay, sample_tree_grammar
from timescale_probe.mutual_info.resample import fit_ngram, ids_to_lines_text, markov_resample, write_ptb_dir
from timescale_probe.mutual_info.streams import load_token_stream
from timescale_probe.mutual_info.synthetic import markov_decay_length


def tree_corpus(depth=17, lam=0.95, seed=0, line=40):
    """A power-law source as a corpus: tree-grammar symbols as words, a line break every ``line`` words."""
    sym = sample_tree_grammar(depth, lam=lam, seed=seed)
    n_lines = sym.size // line
    vocab = ["<eos>", "w0", "w1", "w2", "w3"]
    body = (sym[: n_lines * line] + 1).reshape(n_lines, line)
    ids = np.concatenate([body, np.zeros((n_lines, 1), np.int64)], axis=1).reshape(-1)
    return ids, vocab


def test_ngram_tables_count_contexts():
    x = np.array([0, 1, 2, 1, 2, 0, 1, 3, 0])  # 0 = <eos>
    m = fit_ngram(x, 2, 4, eos_id=0)
    assert m.levels[0].count.tolist() == [7]  # targets x[2:]
    lv1 = m.levels[1]  # contexts of one token (the previous one)
    assert dict(zip(lv1.keys.tolist(), lv1.count.tolist())) == {0: 1, 1: 3, 2: 2, 3: 1}
    # after "1" the train stream continues with 2, 2, 3
    c = int(np.searchsorted(lv1.keys, 1))
    assert sorted(lv1.nexts[lv1.start[c]:lv1.start[c] + lv1.count[c]].tolist()) == [2, 2, 3]
    assert m.starts.tolist() == [[2, 0], [3, 0]]  # the two tokens ending at each <eos> with a full context


def test_resampled_corpus_shape_vocab_and_determinism(tmp_path):
    ids, vocab = tree_corpus(depth=14)
    cut = ids.size * 8 // 10
    cut = int(np.flatnonzero(ids[:cut] == 0)[-1]) + 1
    splits = {"train": ids[:cut], "valid": ids[cut:cut + 1230], "test": ids[cut + 1230:]}
    splits["valid"][-1] = 0
    out, summary = markov_resample(splits, vocab, 0, order=2, seed=5, n_chains=50)
    again, _ = markov_resample(splits, vocab, 0, order=2, seed=5, n_chains=50)
    other, _ = markov_resample(splits, vocab, 0, order=2, seed=6, n_chains=50)
    for k in splits:
        assert out[k].size == splits[k].size and out[k][-1] == 0
        np.testing.assert_array_equal(out[k], again[k])
    assert not np.array_equal(out["train"], other["train"])
    train_types = set(np.unique(out["train"]).tolist())
    assert set(np.unique(out["valid"]).tolist()) <= train_types
    assert summary["tokens"] == {k: v.size for k, v in splits.items()}
    write_ptb_dir(tmp_path, out, vocab, 0)
    back = load_token_stream(str(tmp_path), splits=["train"])
    assert len(back) == splits["train"].size
    text = ids_to_lines_text(out["test"], vocab, 0)
    assert text.count("\n") == int(np.count_nonzero(out["test"] == 0)) and "<eos>" not in text


def test_markov_resample_turns_power_law_into_exponential():
    """The tree corpus has a power-law MI tail; its order-1 resampling decays exponentially with the
    length set by the empirical bigram matrix: xi = -1/(2 ln|lambda_2|)."""
    ids, vocab = tree_corpus(depth=18, lam=0.95)
    orig = mi_decay(ids, n_types=5, max_distance=300, n_distances=30, n_resamples=3, seed=0)
    assert orig.summary["tail"] == "power"
    out, _ = markov_resample({"train": ids}, vocab, 0, order=1, seed=1, n_chains=200)
    res = mi_decay(out["train"], n_types=5, max_distance=300, n_distances=30, n_resamples=3, seed=0)
    assert res.summary["tail"] == "exponential"
    assert res.summary["max_retained_distance"] < orig.summary["max_retained_distance"]
    P = np.zeros((5, 5))
    np.add.at(P, (ids[:-1], ids[1:]), 1)
    P /= P.sum(1, keepdims=True)
    assert res.summary["xi"] == pytest.approx(markov_decay_length(P), rel=0.15)


@pytest.mark.slow
def test_markov_ptb_decays_exponentially(corpora_dir):
    s = load_token_stream(str(corpora_dir / "ptb"), splits=["train", "valid", "test"])
    streams = {k: s.tokens[s.doc_ids == i] for i, k in enumerate(["train", "valid", "test"])}
    out, _ = markov_resample(streams, s.vocab, s.eos_id, order=2, seed=0)
    r = mi_decay(out["train"], n_types=s.n_types, n_resamples=3, seed=0)
    assert r.summary["tail"] == "exponential"
