"""Options of the MI measurement and of the Markov control corpus, each declared once and checked
on construction, before any corpus is read. Light (numpy only).

- :class:`MIDecayParams`: what :func:`.analysis.mi_decay` measures with (the library entry checks its
  keyword arguments with it);
- :class:`MIDecayOptions`: ``tsprobe mi-decay`` (the corpus and how it is read, the output folder,
  then the parameters);
- :class:`MarkovParams` / :class:`MarkovCorpusOptions`: the order-n resampling and ``tsprobe markov-corpus``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..analysis import Options, option
from ..analysis.options import out_option, seed_option
from .distances import SE_METHODS, parse_distances
from .estimators import ESTIMATORS, check_estimator

#: the band edge: the maximum of the shuffles or their 95th percentile
BANDS = ("max", "p95")
WITHIN = ("none", "lines", "documents")
#: the most shuffled copies (each costs one I(d) curve of the whole stream)
MAX_RESAMPLES = 10_000
CORPUS_HELP = ("'ptb' (embedded), a corpus directory (train.txt/valid.txt/test.txt or wiki.*.tokens, any subset "
               "for mi-decay) or a plain text file.")


def _distances(text: str) -> str:
    parse_distances(text)  # one OptionError naming distances when the list cannot be read
    return text


def _document_file(path: Path) -> Path:
    from ..fileio import require_file

    return require_file(path, "document-id file")


def _within(value: str) -> str:
    from .streams import check_within

    return check_within(value)


@dataclass(frozen=True)
class MIDecayParams(Options):
    """How I(d) is measured, its null band and the decay-law fits (:mod:`.analysis`)."""

    max_distance: int = option(1000, "Largest distance of the log-spaced grid (tokens).", ge=1, le=10**8)
    n_distances: int = option(60, "Number of distinct distances on the log-spaced grid.", ge=1, le=100_000)
    distances: Optional[str] = option(None, "Explicit distances instead of the grid, e.g. 1-10,20,50.",
                                      check=_distances)
    estimator: str = option("grassberger", "plugin, miller-madow or grassberger (Grassberger 2003).",
                            check=check_estimator, metavar="|".join(ESTIMATORS))
    n_resamples: int = option(10, "Shuffled copies of the stream (permutation resamples) for the null band; each "
                              "costs one I(d) curve.", ge=0, le=MAX_RESAMPLES, aliases=("--shuffles",))
    seed: int = seed_option(0, "Seed of the shuffles.")
    band: str = option("max", "Band edge: max (of the shuffles) or p95.", choices=BANDS)
    se: str = option("jackknife", "Standard errors: jackknife (contiguous blocks) or delta.", choices=SE_METHODS)
    n_blocks: int = option(20, "Contiguous blocks of the jackknife.", ge=2, le=10_000)
    delta_se: bool = option(False, "Also write the delta-method SE (se_delta_bits) beside the jackknife: a "
                            "design-effect check; costs ~40% more time.")
    min_z: float = option(2.0, "A distance clears the band only if its excess is >= this many SEs.", ge=0)
    fit_min_distance: int = option(1, "Smallest distance used in the fits.", ge=1)
    max_gap: int = option(1, "Consecutive failing distances tolerated before the fit range ends.", ge=0)

    def grid(self):
        """The distances (an int array): the explicit list, else the log-spaced grid."""
        return parse_distances(self.distances, self.max_distance, self.n_distances)


@dataclass(frozen=True)
class _CorpusFields(Options):
    corpus: str = option(help=CORPUS_HELP, argument=True, metavar="CORPUS")
    out: Path = out_option("out")
    split: Optional[str] = option(None, "Splits to join, comma-separated (default: train if present, else all "
                                  "present). Pairs never cross splits.")
    within: str = option("none", "Pairs only within lines, documents, or none (whole stream).", check=_within,
                         metavar="|".join(WITHIN))
    documents: Optional[Path] = option(None, "Line-aligned document-id file for a text corpus (default: "
                                       "<stem>.sentids.txt or <stem>.refs.txt beside it).", check=_document_file)
    lowercase: bool = option(False, "Lowercase a text corpus before tokenising.")
    keep_gutenberg: bool = option(False, "Keep a Project Gutenberg header/footer (stripped by default).")
    drop_eos: bool = option(False, "Remove the <eos> tokens (for hard-wrapped text whose line ends are layout, "
                            "e.g. Gutenberg books).")
    label: Optional[str] = option(None, "Title of the figure (default: the corpus).")


@dataclass(frozen=True)
class MIDecayOptions(MIDecayParams, _CorpusFields):
    """Options of ``tsprobe mi-decay``: the corpus fields, then :class:`MIDecayParams`."""

    @property
    def splits(self) -> list[str] | None:
        return [s.strip() for s in self.split.split(",") if s.strip()] if self.split else None

    def params(self) -> MIDecayParams:
        """Only the measurement parameters."""
        return MIDecayParams(**{k: getattr(self, k) for k in MIDecayParams.__dataclass_fields__})


@dataclass(frozen=True)
class MarkovParams(Options):
    """An order-n resampling of a corpus (:mod:`.resample`)."""

    order: int = option(2, "Markov order n: each token drawn given the previous n (an (n+1)-gram).", ge=0, le=16)
    seed: int = seed_option(0, "Seed of the sampler.")
    n_chains: int = option(1000, "Independent chains sampled in parallel (sentences are concatenated).", ge=1,
                           le=1_000_000)


@dataclass(frozen=True)
class _MarkovCorpusFields(Options):
    corpus: str = option(help="'ptb', a corpus directory with train/valid/test, or a text file (split 80/10/10 by "
                         "lines, as the LM commands do).", argument=True, metavar="CORPUS")
    out: Path = out_option("markov-corpus")


@dataclass(frozen=True)
class MarkovCorpusOptions(MarkovParams, _MarkovCorpusFields):
    """Options of ``tsprobe markov-corpus``."""
