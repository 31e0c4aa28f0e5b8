"""``corpus-info``: a corpus's splits, vocabulary and frequency bins, on the analysis protocol."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from ..analysis import Result, option
from ..analysis.options import out_option
from ..corpora.options import CORPUS_HELP, CorpusOptions

__all__ = ["CorpusInfoOptions", "CorpusInfoResult", "run_corpus_info"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class CorpusInfoOptions(CorpusOptions):
    corpus: str = option(help=CORPUS_HELP, argument=True)
    out: Optional[Path] = out_option(None, "Also write corpus_info.json, bins.csv and run.json here.")


@dataclasses.dataclass
class CorpusInfoResult(Result):
    command = "corpus-info"

    @property
    def info(self) -> dict:
        return self.tables["corpus_info.json"]


def run_corpus_info(opts: CorpusInfoOptions) -> CorpusInfoResult:
    """Splits (lines, tokens incl. <eos>, out-of-vocabulary), vocabulary size and frequency-bin sizes."""
    import pandas as pd

    info = opts.load_corpus().describe(opts.bins_from, opts.edges)
    return CorpusInfoResult(options=opts, tables={"corpus_info.json": info, "bins.csv": pd.DataFrame(info["bins"])},
                            inputs=[opts.vocab_file], summary={"bin_edges": list(opts.edges)})
