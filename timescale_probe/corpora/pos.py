"""Parts of speech: Brown-format tagged text (``word/TAG``), tags mapped to function / content /
other words, a lexicon and per-vocabulary classes."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import InputError, OptionError

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
