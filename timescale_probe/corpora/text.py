"""Reading corpus text: lines, tokens (``line.split() + ['<eos>']``), vocabulary files.
Conventions: see :mod:`timescale_probe.corpora`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..errors import CorpusError, InputError

SPLITS = ("train", "valid", "test")
EOS = "<eos>"
UNK = "<unk>"


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` as Python's text-mode file iteration yields them (without the newline)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def decode_text(data: bytes, where: str) -> str:
    """Decode ``data`` as UTF-8 text (a byte-order mark dropped; UTF-16 with its byte-order mark, as
    some Windows editors save, decoded as such); binary or undecodable input is a one-line CorpusError."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            raise CorpusError(f"{where} starts like UTF-16 but is not valid UTF-16 (byte {exc.start}); "
                              "re-encode it as UTF-8") from None
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


def read_text_tokens(path: str | os.PathLike, what: str = "corpus file") -> list[str]:
    """Lines of a UTF-8 text file, validated: it must exist, be a regular file, not be binary,
    decode as UTF-8 and hold at least one whitespace-separated token. ``what`` names the file in
    messages ("vocabulary file")."""
    p = Path(path)
    if not p.exists():
        raise CorpusError(f"{what} not found: {p}")
    if p.is_dir():
        raise CorpusError(f"{what} is a directory, expected a text file: {p}")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read {what} {p}: {exc.strerror}") from None
    lines = split_lines(decode_text(data, str(p)))
    if not any(line.split() for line in lines):
        raise CorpusError(f"{what} {p} is empty (no tokens)")
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
    vocab = [line.split()[0] for line in read_text_tokens(path, "vocabulary file") if line.split()]
    seen: set[str] = set()
    dups = [w for w in vocab if w in seen or seen.add(w)]
    if dups:
        raise CorpusError(f"vocabulary file {path} lists {dups[0]!r} twice ({len(dups)} duplicates)")
    if EOS not in seen:
        vocab.append(EOS)
    return vocab
