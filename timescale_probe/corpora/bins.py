"""Word-frequency bins: edges, labels, and which split's counts define them (how many tokens the
other counting would move: :func:`.corpus.bin_counting_statement`). Conventions: see
:mod:`timescale_probe.corpora`."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import OptionError
from .text import SPLITS

DEFAULT_BIN_EDGES = (100, 1000, 10000)


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
