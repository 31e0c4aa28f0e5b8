import numpy as np
import pytest
import torch

from timescale_probe.corpora import (
    EOS,
    UNK,
    bin_labels,
    check_vocab_compatible,
    frequency_bins,
    lines_to_words,
    load_corpus,
    parse_bin_edges,
    read_text_tokens,
    read_vocab_file,
    split_lines,
)
from timescale_probe.errors import CorpusError, OptionError


@pytest.fixture(scope="module")
def ptb():
    return load_corpus("ptb")


def _write(path, text, mode="w"):
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_ptb_counts_match_manifest(ptb):
    d = ptb.describe()
    assert {s: d["splits"][s]["tokens"] for s in ("train", "valid", "test")} == {
        "train": 929589, "valid": 73760, "test": 82430}
    assert {s: d["splits"][s]["lines"] for s in ("train", "valid", "test")} == {
        "train": 42068, "valid": 3370, "test": 3761}
    assert ptb.vocab_size == 10000 and EOS in ptb.stoi and UNK in ptb.stoi
    assert all(v["oov"] == 0 for v in d["splits"].values())
    # first-occurrence order of the train text, as the reference's Dictionary builds it
    assert ptb.vocab[:3] == ["aer", "banknote", "berlitz"]
    assert ptb.tokens("train").dtype == torch.int64
    assert int(ptb.tokens("train")[-1]) == ptb.stoi[EOS]
    assert any("trailing newline" in n for n in ptb.notes)


def test_ptb_equals_shared_files(ptb, corpora_dir):
    other = load_corpus(str(corpora_dir / "ptb"))
    assert other.vocab == ptb.vocab
    for s in ("train", "valid", "test"):
        assert torch.equal(other.tokens(s), ptb.tokens(s))


def test_ptb_frequency_bins(ptb):
    bins, labels = ptb.bins("train")
    assert labels == [">10K", "1K-10K", "100-1K", "<100"]
    assert np.bincount(bins, minlength=4).tolist() == [9, 80, 992, 8919]
    bins_all, _ = ptb.bins("all")
    assert np.bincount(bins_all, minlength=4).tolist() == [12, 93, 1118, 8777]
    assert ptb.counts("all").sum() == 929589 + 73760 + 82430
    test_tokens = [b["test_tokens"] for b in ptb.describe()["bins"]]
    assert sum(test_tokens) == 82430


def test_frequency_bins_edges():
    counts = np.array([10000, 9999, 1000, 999, 100, 99, 0, 123456])
    bins, labels = frequency_bins(counts)
    assert bins.tolist() == [0, 1, 1, 2, 2, 3, 3, 0]
    assert labels == [">10K", "1K-10K", "100-1K", "<100"]
    bins, labels = frequency_bins(counts, parse_bin_edges("10, 1K"))
    assert labels == [">1K", "10-1K", "<10"]
    assert bins.tolist() == [0, 0, 0, 1, 1, 1, 2, 0]
    assert bin_labels((50,)) == [">50", "<50"]
    with pytest.raises(OptionError) as info:  # a bad option, named by its parameter
        frequency_bins(counts, (1000, 100))
    assert info.value.param == "edges"
    with pytest.raises(OptionError) as info:
        parse_bin_edges("a,b")
    assert info.value.param == "bin_edges"
    with pytest.raises(OptionError, match="ascending"):  # refused, not sorted silently
        parse_bin_edges("5,3")


def test_tokenisation_conventions():
    assert split_lines("a b\r\n\nc\rd") == ["a b", "", "c", "d"]
    assert lines_to_words(["a b", "", "  ", "c"]) == ["a", "b", EOS, EOS, EOS, "c", EOS]


def test_directory_corpus_oov_and_unk(tmp_path):
    d = tmp_path / "c"
    _write(d / "train.txt", "the cat sat\n\nthe dog\n")
    _write(d / "valid.txt", "the bird sat\n")
    _write(d / "test.txt", "a cat\n")
    c = load_corpus(str(d))
    assert c.vocab == ["the", "cat", "sat", EOS, "dog", UNK]  # <unk> appended for OOV
    assert c.oov == {"train": 0, "valid": 1, "test": 1}
    assert c.tokens("train").tolist() == [0, 1, 2, 3, 3, 0, 4, 3]
    assert c.tokens("valid").tolist() == [0, 5, 2, 3]
    assert any("<unk>" in n for n in c.notes)
    # a vocabulary with <unk>: OOV maps to it, nothing appended
    _write(d / "train.txt", "the <unk> sat\n")
    c = load_corpus(str(d))
    assert c.vocab == ["the", UNK, "sat", EOS]
    assert c.tokens("test").tolist() == [1, 1, 3]


def test_wikitext_loader(tmp_path, corpora_dir):
    wt = tmp_path / "wikitext-2"
    wt.mkdir()
    (wt / "wiki.train.tokens").symlink_to(corpora_dir / "wikitext-2" / "valid.txt")
    (wt / "wiki.valid.tokens").symlink_to(corpora_dir / "wikitext-2" / "valid.txt")
    (wt / "wiki.test.tokens").symlink_to(corpora_dir / "wikitext-2" / "test.txt")
    c = load_corpus(str(wt))
    assert c.tokens("valid").numel() == 217646
    assert c.tokens("test").numel() == 245569
    assert len(c.lines("test")) == 4358
    assert c.oov["valid"] == 0 and c.oov["test"] > 0
    assert "WikiText" in " ".join(c.notes)


def test_single_file_split(tmp_path):
    f = _write(tmp_path / "book.txt", "".join(f"w{i} x\n" for i in range(100)))
    c = load_corpus(str(f))
    assert [len(c.lines(s)) for s in ("train", "valid", "test")] == [80, 10, 10]
    assert c.lines("valid")[0] == "w80 x"
    assert any("lines 1-80" in n for n in c.notes)
    c = load_corpus(str(f), split_fractions=(0.5, 0.25, 0.25))
    assert [len(c.lines(s)) for s in ("train", "valid", "test")] == [50, 25, 25]


def test_vocab_file(tmp_path):
    d = tmp_path / "c"
    _write(d / "train.txt", "b a\n")
    _write(d / "valid.txt", "a\n")
    _write(d / "test.txt", "c\n")
    v = _write(tmp_path / "vocab.txt", "a 10\nb 3\n<unk>\n")
    assert read_vocab_file(v) == ["a", "b", UNK, EOS]
    c = load_corpus(str(d), vocab_file=v)
    assert c.vocab == ["a", "b", UNK, EOS]
    assert c.tokens("train").tolist() == [1, 0, 3]
    assert c.tokens("test").tolist() == [2, 3]
    _write(v, "a\na\n")
    with pytest.raises(CorpusError, match="twice"):
        read_vocab_file(v)


@pytest.mark.parametrize("kind", ["missing", "empty", "binary", "utf8", "nosplit", "nodir"])
def test_bad_input(tmp_path, kind):
    d = tmp_path / "c"
    _write(d / "train.txt", "a b\n")
    _write(d / "valid.txt", "a\n")
    _write(d / "test.txt", "b\n")
    if kind == "missing":
        (d / "test.txt").unlink()
        match = "lacks test.txt"
    elif kind == "empty":
        _write(d / "valid.txt", "\n  \n")
        match = "empty"
    elif kind == "binary":
        _write(d / "train.txt", b"\x00\x01\x02abc", mode="wb")
        match = "binary"
    elif kind == "utf8":
        _write(d / "train.txt", b"caf\xe9 au lait\n", mode="wb")
        match = "UTF-8"
    elif kind == "nosplit":
        for f in d.iterdir():
            f.unlink()
        match = "has no train.txt"
    else:
        d = tmp_path / "does-not-exist"
        match = "not found"
    with pytest.raises(CorpusError, match=match) as info:
        load_corpus(str(d))
    assert "\n" not in str(info.value)


def test_read_text_tokens_validation(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        read_text_tokens(tmp_path / "nope.txt")
    with pytest.raises(CorpusError, match="directory"):
        read_text_tokens(tmp_path)
    assert read_text_tokens(_write(tmp_path / "ok.txt", "\ufeffa b\nc")) == ["a b", "c"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_byte_order_marks_and_utf16_read_as_the_same_text(tmp_path, encoding):
    """Editors on Windows save a BOM (UTF-8) or UTF-16 with one; both readers (corpora and the MI
    streams) give the same tokens as plain UTF-8, and no BOM glued to the first word."""
    from timescale_probe.mutual_info import load_token_stream

    text = "the cat sat\r\non the mat\n"
    p = tmp_path / "t.txt"
    data = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):  # these codecs write no BOM: add the one an editor writes
        data = ("\ufeff" + text).encode(encoding)
    p.write_bytes(data)
    assert read_text_tokens(p) == ["the cat sat", "on the mat"]
    stream = load_token_stream(str(p))
    words = [stream.vocab[i] for i in stream.tokens]
    assert [w for w in words if w != "<eos>"] == "the cat sat on the mat".split()


def test_utf16_without_its_mark_is_still_refused_as_binary(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes("the cat".encode("utf-16-le"))
    with pytest.raises(CorpusError, match="looks binary"):
        read_text_tokens(p)


def test_vocab_compatibility(tmp_path):
    d = tmp_path / "c"
    _write(d / "train.txt", "a b c\n")
    _write(d / "valid.txt", "a\n")
    _write(d / "test.txt", "b\n")
    c = load_corpus(str(d))
    same = check_vocab_compatible(c, None, 4, "m")
    assert same.vocab == c.vocab and same.tokens("test") is c.tokens("test") and same.vocab_info["order"] == "train"
    own = check_vocab_compatible(c, list(c.vocab), None, "m")
    assert own.vocab == c.vocab and own.vocab_info["order"] == "checkpoint" and c.vocab_info["order"] == "train"
    re = check_vocab_compatible(c, ["c", "b", "a", EOS], None, "m")  # same words, other ids
    assert re.tokens("test").tolist() == [1, 3]
    with pytest.raises(CorpusError, match="vocabulary mismatch"):
        check_vocab_compatible(c, None, 10000, "checkpoint m.pt")
    with pytest.raises(CorpusError, match="vocabulary mismatch"):
        check_vocab_compatible(c, ["x", "y", "z", EOS], None, "checkpoint m.pt")


def test_brown_pos_reading_lives_in_corpora(tmp_path):
    """Brown tagged files are read by corpora (the old ablation names still work)."""
    from timescale_probe import ablation, corpora

    d = tmp_path / "tagged"
    d.mkdir()
    (d / "ca01").write_text("\n\tThe/at jury/nn said/vbd ./.\n\n\tIt/pps ran/vbd quickly/rb ./.\n")
    (d / "cb02").write_text("\tA/at dog/nn-tl barked/vbd\n")
    sents = corpora.read_brown_tagged(d)
    assert [len(s) for s in sents] == [4, 4, 3] and sents[2][1] == ("dog", "nn-tl")
    lex = corpora.pos_lexicon(sents)
    assert lex["the"] == "function" and lex["dog"] == "content" and lex["."] == "other"
    cls, labels, stats = corpora.pos_classes_for_vocab(["the", "dog", "<eos>", "zebra"], lex)
    assert [labels[c] for c in cls] == ["function", "content", "other", "content"] and stats["unseen"] == 1
    assert ablation.read_brown_tagged is corpora.read_brown_tagged
    import inspect

    assert inspect.getmodule(corpora.pos_lexicon).__name__.startswith("timescale_probe.corpora")
    with pytest.raises(OptionError) as exc:
        corpora.pos_classes_for_vocab(["a"], lex, unseen="verb")
    assert exc.value.param == "unseen"
