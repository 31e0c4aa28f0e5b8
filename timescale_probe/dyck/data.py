"""Dyck datasets: generation (one pool, unique strings, seeded split), the on-disk format, and the
span distribution with its log-log slope.

On-disk format of a data folder (plain text, no pickles)::

    meta.json      {"format": "tsprobe-dyck", "format_version": 1, "n", "pairs", "p_types",
                    "p_concat", "p_empty", "min_len", "max_len", "seed", "sizes", "sha256", ...}
    train.txt      one sequence per line, bracket characters only (e.g. "([])[]")
    valid.txt
    test.txt
    stats.csv      split, index, length, max_span, max_depth  (index = 0-based line number)
    spans.csv      span, count, fraction  (every closing bracket of the training split)

Targets and spans are not stored: they follow from the strings (see :mod:`.grammar`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import OptionError
from ..fileio import atomic_write_text, file_sha256, write_table
from .grammar import Annotation, DyckDataError, DyckGrammar, annotate, bracket_pairs, generate_pool, strings_to_codes

FORMAT_NAME = "tsprobe-dyck"
FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")
#: The paper's split sizes (paper Fig. 2; docs/methods.md §6).
PAPER_SIZES = {"train": 10_000, "valid": 2_000, "test": 5_000}


@dataclass
class DyckSplit:
    """One split: its strings, flat token codes (see :mod:`.grammar`) and their annotation."""

    name: str
    strings: list[str]
    n: int
    codes: np.ndarray = field(repr=False)
    lengths: np.ndarray = field(repr=False)
    ann: Annotation = field(repr=False)

    @classmethod
    def from_strings(cls, name: str, strings: list[str], n: int, where: str | None = None) -> "DyckSplit":
        codes, lengths = strings_to_codes(strings, bracket_pairs(n), where=where or name)
        return cls(name, list(strings), n, codes, lengths, annotate(codes, lengths, n, where=where or name))

    def __len__(self) -> int:
        return len(self.strings)

    @property
    def max_span(self) -> np.ndarray:
        return self.ann.max_span

    def stats(self) -> pd.DataFrame:
        return pd.DataFrame({
            "split": self.name, "index": np.arange(len(self)), "length": self.lengths,
            "max_span": self.ann.max_span, "max_depth": self.ann.max_depth,
        })

    def padded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(codes (N, L) int64 padded with 0, targets (N, L, n) float32 padded with 0, lengths)``."""
        N, L = len(self), int(self.lengths.max())
        seq = np.repeat(np.arange(N), self.lengths)
        pos = np.arange(len(self.codes)) - self.ann.offsets[seq]
        x = np.zeros((N, L), dtype=np.int64)
        x[seq, pos] = self.codes
        y = np.zeros((N, L, self.n), dtype=np.float32)
        y[seq, pos] = self.ann.targets
        return x, y, self.lengths.copy()


@dataclass
class DyckDataset:
    grammar: DyckGrammar
    seed: int
    splits: dict[str, DyckSplit]
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> DyckSplit:
        return self.splits[name]

    def stats(self) -> pd.DataFrame:
        return pd.concat([self.splits[s].stats() for s in SPLITS], ignore_index=True)


def generate_dataset(grammar: DyckGrammar, sizes: dict[str, int] | None = None, seed: int = 0,
                     progress=None) -> DyckDataset:
    """Sample one pool of ``sum(sizes)`` distinct strings and split it by a seeded permutation
    (so all splits share one length distribution: no length extrapolation)."""
    sizes = dict(PAPER_SIZES if sizes is None else sizes)
    if set(sizes) != set(SPLITS) or any(v < 1 for v in sizes.values()):
        raise OptionError(f"split sizes must give train, valid and test >= 1, got {sizes}")
    total = sum(sizes.values())
    pool = generate_pool(grammar, total, seed, progress=progress)
    perm = np.random.default_rng([seed, 1]).permutation(total)
    splits, start = {}, 0
    for name in SPLITS:
        idx = perm[start:start + sizes[name]]
        start += sizes[name]
        splits[name] = DyckSplit.from_strings(name, [pool[i] for i in idx], grammar.n)
    return DyckDataset(grammar, seed, splits)


def span_table(split: DyckSplit, max_len: int | None = None) -> pd.DataFrame:
    """Distribution of spans over every closing bracket of ``split``: ``span, count, fraction``
    (even spans 2..max_len; counts may be 0)."""
    spans = split.ann.span[split.ann.span > 0]
    top = int(max_len or spans.max())
    counts = np.bincount(spans, minlength=top + 1)[2: top + 1: 2]
    s = np.arange(2, top + 1, 2)
    return pd.DataFrame({"span": s, "count": counts, "fraction": counts / max(1, counts.sum())})


def span_slope(spans: pd.DataFrame, lo: int = 4, hi: int | None = None) -> dict[str, float]:
    """Least-squares slope of ``log fraction`` vs ``log span`` over ``lo <= span <= hi`` (nonzero
    counts only); ``hi`` defaults to half the largest span in the table (the length cap bends the
    tail down near the maximum; span 2 sits off the line because of the lattice).

    Returns ``slope, intercept, stderr, lo, hi, points``."""
    from scipy.stats import linregress

    hi = int(hi if hi is not None else spans["span"].max() // 2)
    m = (spans["span"] >= lo) & (spans["span"] <= hi) & (spans["count"] > 0)
    if m.sum() < 3:
        raise OptionError(f"too few span values in {lo}..{hi} to fit a slope")
    fit = linregress(np.log(spans.loc[m, "span"]), np.log(spans.loc[m, "fraction"]))
    return {"slope": float(fit.slope), "intercept": float(fit.intercept), "stderr": float(fit.stderr),
            "lo": lo, "hi": hi, "points": int(m.sum())}


def save_dataset(ds: DyckDataset, out: str | Path) -> dict[str, Path]:
    """Write the folder described in the module docstring (atomic files). Returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in SPLITS:
        paths[name] = atomic_write_text(out / f"{name}.txt", "\n".join(ds[name].strings) + "\n")
    g = ds.grammar
    meta = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
        "n": g.n, "pairs": g.pairs, "p_types": list(g.p_types), "p_concat": g.p_concat, "p_empty": g.p_empty,
        "min_len": g.min_len, "max_len": g.max_len, "seed": ds.seed,
        "sizes": {s: len(ds[s]) for s in SPLITS},
        "sha256": {f"{s}.txt": file_sha256(paths[s]) for s in SPLITS},
        "targets": "per position, the innermost open bracket type after reading it, as n bits; column k is "
                   "bracket type n-1-k (Dyck-2: '(' -> 01, '[' -> 10, empty stack -> 00)",
        "span": "closing position - opening position + 1 ('()' = 2); max_span = a sequence's max timescale",
    }
    paths["meta"] = atomic_write_text(out / "meta.json", json.dumps(meta, indent=1) + "\n")
    paths["stats"] = write_table(ds.stats(), out / "stats.csv")
    paths["spans"] = write_table(span_table(ds["train"], g.max_len), out / "spans.csv")
    ds.meta = meta
    return paths


def load_dataset(folder: str | Path, splits: tuple[str, ...] = SPLITS) -> DyckDataset:
    """Read a data folder written by :func:`save_dataset`, checking format and balance."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not folder.is_dir():
        raise DyckDataError(f"Dyck data folder not found: {folder} (make one with 'tsprobe dyck generate')")
    if not meta_path.is_file():
        raise DyckDataError(f"{folder} has no meta.json: not a Dyck data folder (make one with 'tsprobe dyck generate')")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DyckDataError(f"{meta_path} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise DyckDataError(f"{meta_path} is not a tsprobe Dyck metadata file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DyckDataError(f"{meta_path}: format version {meta.get('format_version')} is not supported")
    try:
        grammar = DyckGrammar(n=int(meta["n"]), p_types=tuple(float(p) for p in meta["p_types"]),
                              p_concat=float(meta["p_concat"]), min_len=int(meta["min_len"]),
                              max_len=int(meta["max_len"]))
        grammar.validate()
        if list(meta["pairs"]) != grammar.pairs:
            raise DyckDataError(f"{meta_path}: bracket characters {meta['pairs']} differ from this tsprobe's {grammar.pairs}")
    except (KeyError, TypeError, ValueError, OptionError) as exc:
        raise DyckDataError(f"{meta_path}: malformed metadata ({exc})") from None
    out = {}
    for name in splits:
        path = folder / f"{name}.txt"
        if not path.is_file():
            raise DyckDataError(f"{folder} has no {name}.txt")
        try:
            lines = path.read_text(encoding="ascii").splitlines()
        except UnicodeDecodeError:
            raise DyckDataError(f"{path} is not plain ASCII bracket text") from None
        lines = [l.strip() for l in lines]
        if not lines or any(not l for l in lines):
            raise DyckDataError(f"{path} is empty or has an empty line")
        split = DyckSplit.from_strings(name, lines, grammar.n, where=str(path))
        too_long = split.lengths > grammar.max_len
        if too_long.any():
            i = int(np.argmax(too_long))
            raise DyckDataError(f"{path}: line {i + 1} has {split.lengths[i]} characters, more than max_len {grammar.max_len}")
        out[name] = split
    return DyckDataset(grammar, int(meta.get("seed", 0)), out, meta)
