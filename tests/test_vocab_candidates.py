"""Checkpoints without a vocabulary on corpora whose valid/test splits hold words train lacks:
the candidate orders (train-only, the reference's train+valid+test first-occurrence order), the
one-line statements of vocabulary and bin counting, and the reference's odd-size MTS split."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from test_checkpoints_fixtures import save_awd

from timescale_probe.corpora import (
    bin_counting_statement,
    load_corpus,
    match_model_vocabulary,
    reference_order_vocab,
    vocab_candidates,
)
from timescale_probe.errors import CorpusError
from timescale_probe.models import LanguageModel, LMConfig, load_language_model
from timescale_probe.timescales import FixedTimescales, MTSSpec, paper_lm_spec

TRAIN = ["the cat sat on the mat", "a dog saw the cat", "the dog ran", "a cat and a dog sat"] * 3
VALID = ["the bird sat on a log", "the cat saw a bird"]
TEST = ["a fox saw the bird", "the cat ran to the log", "the fox sat"]


def reference_dictionary(d) -> dict[str, int]:
    """The reference's data.Corpus dictionary, written out independently: train, valid, test files,
    ``line.split() + ['<eos>']`` per line, each new word gets the next id."""
    word2idx: dict[str, int] = {}
    for name in ("train.txt", "valid.txt", "test.txt"):
        with open(d / name) as fh:
            for line in fh:
                for w in line.split() + ["<eos>"]:
                    if w not in word2idx:
                        word2idx[w] = len(word2idx)
    return word2idx


def reference_ids(d, name: str, word2idx: dict[str, int]) -> list[int]:
    with open(d / name) as fh:
        return [word2idx[w] for line in fh for w in line.split() + ["<eos>"]]


@pytest.fixture(scope="module")
def open_corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("open_corpus")
    for name, lines in (("train", TRAIN), ("valid", VALID), ("test", TEST)):
        (d / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return d


@pytest.fixture(scope="module")
def reference_checkpoint(open_corpus, tmp_path_factory):
    """A whole pickle as the reference's train_mts.py saves it ([model, criterion, optimizer],
    model_mts.RNNModel), odd layer-1 size, decoder sized by the reference's dictionary."""
    V = len(reference_dictionary(open_corpus))
    path = tmp_path_factory.mktemp("ref") / "mts_tiny.pt"
    save_awd(path, mts=True, ninp=8, nhid=13, nlayers=3, ntoken=V)
    return path


def test_candidate_orders_on_an_open_vocabulary(open_corpus):
    word2idx = reference_dictionary(open_corpus)
    c = load_corpus(str(open_corpus))
    cands = vocab_candidates(c)
    assert cands["reference"] == list(word2idx)
    train_words = list(dict.fromkeys(w for line in TRAIN for w in line.split() + ["<eos>"]))
    assert cands["train"] == train_words + ["<unk>"] and cands["train"] == c.vocab
    assert cands["reference"] == train_words + ["bird", "log", "fox", "to"]   # valid's new words, then test's


def test_reference_checkpoint_gets_the_reference_order(open_corpus, reference_checkpoint):
    word2idx = reference_dictionary(open_corpus)
    c = load_corpus(str(open_corpus))
    stack, model, c2 = load_language_model(reference_checkpoint, c)
    assert c2.vocab_info["order"] == "reference" and c2.vocab == list(word2idx)
    assert c2.vocab_info["candidates"] == {"train": len(c.vocab), "reference": len(word2idx)}
    for split in ("train", "valid", "test"):
        assert c2.tokens(split).tolist() == reference_ids(open_corpus, f"{split}.txt", word2idx)
    assert c.vocab_info["order"] == "train" and c.vocab != c2.vocab          # the input corpus is untouched
    line = c2.vocabulary_statement()
    assert "reference order" in line and f"{len(word2idx)} words" in line and f"train-only order {len(c.vocab)}" in line
    assert any("has no vocabulary: used the reference order" in n for n in c2.notes)
    assert model.vocab == list(word2idx)


def test_none_or_several_matching_is_one_line(open_corpus, tmp_path):
    c = load_corpus(str(open_corpus))
    n_train, n_ref = len(c.vocab), len(reference_order_vocab(c.split_lines_))
    with pytest.raises(CorpusError) as exc:
        match_model_vocabulary(c, None, 7, "checkpoint x.pt")
    msg = str(exc.value)
    assert "\n" not in msg and "none matches" in msg
    assert f"train-only order {n_train}" in msg and f"reference order {n_ref}" in msg
    # valid/test add exactly one word and train has no <unk>: both orders have |train|+1 words
    d = tmp_path / "one_new"
    d.mkdir()
    (d / "train.txt").write_text("a b c\nb c a\n")
    (d / "valid.txt").write_text("a b\n")
    (d / "test.txt").write_text("c zebra\n")
    c1 = load_corpus(str(d))
    cands = vocab_candidates(c1)
    assert len(cands["train"]) == len(cands["reference"]) == 5 and cands["train"] != cands["reference"]
    with pytest.raises(CorpusError, match="several match"):
        match_model_vocabulary(c1, None, 5, "checkpoint y.pt")


def test_closed_vocabulary_keeps_the_train_order(tmp_path):
    d = tmp_path / "closed"
    d.mkdir()
    (d / "train.txt").write_text("the cat sat\nthe dog ran\n")
    (d / "valid.txt").write_text("the cat ran\n")
    (d / "test.txt").write_text("the dog sat\n")
    c = load_corpus(str(d))
    out = match_model_vocabulary(c, None, len(c.vocab), "checkpoint z.pt")
    assert out.vocab == c.vocab and out.vocab_info["order"] == "train"
    assert "coincide" in out.vocabulary_statement()


def test_vocab_file_is_checked_by_size_only(open_corpus, tmp_path):
    vf = tmp_path / "vocab.txt"
    vf.write_text("\n".join(reference_dictionary(open_corpus)) + "\n")
    c = load_corpus(str(open_corpus), vocab_file=vf)
    assert c.vocab_info["order"] == "file"
    assert match_model_vocabulary(c, None, len(c.vocab), "ckpt").vocab == c.vocab
    with pytest.raises(CorpusError, match="vocabulary file"):
        match_model_vocabulary(c, None, len(c.vocab) + 1, "ckpt")


def test_unk_fallback_retokenises_with_the_checkpoint_vocabulary(open_corpus):
    c = load_corpus(str(open_corpus))
    model_vocab = ["<unk>", "the", "cat", "<eos>", "a"]
    with pytest.raises(CorpusError, match="vocabulary mismatch"):
        match_model_vocabulary(c, model_vocab, None, "ckpt")
    out = match_model_vocabulary(c, model_vocab, None, "ckpt", unk_fallback=True)
    assert out.vocab == model_vocab and out.vocab_info["order"] == "checkpoint"
    words = [w for line in TEST for w in line.split() + ["<eos>"]]
    want = [model_vocab.index(w) if w in model_vocab else 0 for w in words]
    assert out.tokens("test").tolist() == want
    assert out.oov["test"] == sum(w not in model_vocab for w in words)


def test_bin_counting_statement_counts_moved_tokens(tmp_path):
    d = tmp_path / "bins"
    d.mkdir()
    # 'x' occurs 3 times in train and 2 more in valid/test: bins with edge 4 differ for it only
    (d / "train.txt").write_text("x x x y\n" + "z " * 10 + "\n")
    (d / "valid.txt").write_text("x y\n")
    (d / "test.txt").write_text("x z y\n")
    c = load_corpus(str(d))
    st = bin_counting_statement(c, "train", (4,), "test")
    # independent count: train counts x=3 (<4), all counts x=5 (>=4); y 1 vs 3, z 10 vs 11, <eos> 2 vs 4
    test_words = ["x", "z", "y", "<eos>"]
    tr = {"x": 3, "y": 1, "z": 10, "<eos>": 2}
    al = {"x": 5, "y": 3, "z": 11, "<eos>": 4}
    want = sum((tr[w] >= 4) != (al[w] >= 4) for w in test_words)
    assert st["n_changed"] == want == 2 and st["n_tokens"] == 4 and st["other"] == "all"
    assert "2 of 4 test tokens" in st["line"] and "--bins-from all" in st["line"] and "\n" not in st["line"]
    st2 = bin_counting_statement(c, "all", (4,), "test")
    assert st2["n_changed"] == 2 and "reference's counting" in st2["line"]


# -- the reference's split of layer 1 on odd sizes -----------------------------------------------

def test_paper_lm_split_follows_the_reference_on_odd_sizes():
    T = paper_lm_spec().timescales([47, 10, 4])[0]
    assert (T[:23] == 3).all() and (T[23:] == 4).all()            # int(0.5*47) = 23 units T=3
    T_even = paper_lm_spec().timescales([1150, 10, 4])[0]
    assert (T_even[:575] == 3).all() and (T_even[575:] == 4).all()
    assert list(FixedTimescales((3.0, 4.0)).timescales(47)).count(3.0) == 24   # larger-first stays available
    d = paper_lm_spec().to_dict()
    assert MTSSpec.from_dict(d).timescales([47])[0].tolist() == T.tolist()


def test_reference_odd_split_is_detected(reference_checkpoint):
    from timescale_probe.checkpoints import load_checkpoint

    stack = load_checkpoint(reference_checkpoint)
    assert stack.layer_sizes == [13, 13, 8]
    assert stack.mts_spec is not None and stack.mts_spec["name"] == "paper-lm"
    T1 = stack.timescales_table().query("layer == 1")["T_bias"].to_numpy()
    np.testing.assert_allclose(T1, [3.0] * 6 + [4.0] * 7, rtol=1e-5)
    assert any("split 6 x T=3 then 7 x T=4 as the reference" in n for n in stack.provenance.notes)


def test_tsprobe_odd_split_is_detected_too():
    from timescale_probe.checkpoints.loader import _reference_mts_spec

    spec = MTSSpec(layers=(FixedTimescales((3.0, 4.0), split="larger-first"),) + paper_lm_spec().layers[1:])
    torch.manual_seed(0)
    m = LanguageModel(LMConfig(vocab_size=20, emb_size=6, layer_sizes=(47, 10, 6), mts_spec=spec))
    notes: list[str] = []
    got = _reference_mts_spec("model_mts.RNNModel", SimpleNamespace(layers=m.to_stack().layers), notes)
    assert got is not None and got["layers"][0]["split"] == "larger-first"
    assert MTSSpec.from_dict(got).timescales([47])[0].tolist() == [3.0] * 24 + [4.0] * 23
    assert "24 x T=3 then 23 x T=4" in notes[-1]


# -- the commands, with no --vocab-file --------------------------------------------------------------

def test_commands_on_a_reference_pickle_without_vocab_file(open_corpus, reference_checkpoint, tmp_path, cli):
    V = len(reference_dictionary(open_corpus))
    r = cli("evaluate", reference_checkpoint, "--corpus", open_corpus, "--out", tmp_path / "ev",
            "--device", "cpu", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "reference order" in r.stdout and f"{V} words" in r.stdout and "--bins-from all" in r.stdout
    rj = json.loads((tmp_path / "ev" / "run.json").read_text())
    res = rj.get("results", rj)
    assert res["vocabulary"]["order"] == "reference" and res["bin_counting"]["bins_from"] == "train"

    r = cli("estimate-timescales", reference_checkpoint, "--corpus", open_corpus,
            "--window", "5", "--out", tmp_path / "ts", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "reference order" in r.stdout
    table = pd.read_csv(tmp_path / "ts" / "timescales.csv")
    l1 = table[table.layer == 1].sort_values("unit")
    assert l1["T_assigned"].tolist() == [3.0] * 6 + [4.0] * 7
    res = json.loads((tmp_path / "ts" / "run.json").read_text())
    assert res.get("results", res)["vocabulary"]["order"] == "reference"

    r = cli("ablate", reference_checkpoint, "--corpus", open_corpus, "--groups", "chunks:5",
            "--bootstrap", "20", "--chunk", "5", "--out", tmp_path / "ab", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "reference order" in r.stdout and "frequency bins: word counts over train" in r.stdout
    res = json.loads((tmp_path / "ab" / "run.json").read_text())
    assert res.get("results", res)["vocabulary"]["order"] == "reference"


def test_command_error_lists_candidate_sizes(open_corpus, tmp_path, cli):
    path = tmp_path / "wrong.pt"
    save_awd(path, mts=False, ninp=8, nhid=12, nlayers=3, ntoken=7)
    r = cli("evaluate", path, "--corpus", open_corpus, "--out", tmp_path / "ev",
            "--device", "cpu")
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "train-only order" in lines[0] and "reference order" in lines[0]
    assert not (tmp_path / "ev").exists()


def test_inspect_note_names_the_candidate_orders(reference_checkpoint, cli):
    r = cli("inspect", reference_checkpoint)
    assert r.returncode == 0, r.stderr
    assert "train-only order" in r.stdout and "reference's order" in r.stdout
