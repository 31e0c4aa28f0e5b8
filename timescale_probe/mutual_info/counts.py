"""Counting the pairs ``(x[i], x[i+d])`` of a token stream: joint cells and marginals.

Each pair is one integer ``a*V + b`` (int32 when ``V^2 < 2^31``); occupied cells come from
``np.bincount`` when the table is small, else from a sort (numpy's) and run lengths. Streams
longer than ``chunk_size`` pairs are counted chunk by chunk and the per-chunk (cell, count) lists
merged, so memory is O(chunk_size + distinct pairs), not O(N) per distance. Conventions: see
:mod:`.estimate`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import OptionError

DEFAULT_CHUNK = 1 << 23  # pairs per chunk (8.4M): ~100 MB of temporaries with int64 codes


@dataclass
class PairCounts:
    """Counts of the pairs at one distance. ``cells``: occupied joint codes ``a*n_types + b``
    (sorted); ``joint``: their counts; ``first``/``second``: marginal counts (length n_types)."""

    distance: int
    n_types: int
    cells: np.ndarray
    joint: np.ndarray
    first: np.ndarray
    second: np.ndarray

    @property
    def n_pairs(self) -> int:
        return int(self.first.sum())


def _code_dtype(n_types: int):
    return np.int32 if n_types * n_types < 2**31 else np.int64


def _sort(codes: np.ndarray) -> np.ndarray:
    """Sorted copy of integer codes. numpy's sort (SIMD radix/quick sorts since numpy 2) is ~8x
    faster than torch's single-threaded sort on int32 and int64 codes here (benchmarks/mi_decay.py)."""
    return np.sort(codes)


def _occupied(codes: np.ndarray, table_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct codes (sorted) and their counts."""
    if codes.size == 0:
        return codes.astype(np.int64), np.zeros(0, dtype=np.int64)
    if table_size <= max(2 * codes.size, 1 << 16):
        table = np.bincount(codes, minlength=table_size)
        cells = np.flatnonzero(table)
        return cells, table[cells]
    s = _sort(codes)
    starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    counts = np.diff(np.append(starts, s.size))
    return s[starts], counts


def _merge(cells: list[np.ndarray], counts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    c = np.concatenate(cells)
    n = np.concatenate(counts)
    if c.size == 0:
        return c, n
    order = np.argsort(c, kind="stable")
    c, n = c[order], n[order]
    starts = np.flatnonzero(np.concatenate(([True], c[1:] != c[:-1])))
    return c[starts], np.add.reduceat(n, starts)


def _block_counts(x: np.ndarray, d: int, V: int, start: int, stop: int, boundaries, code_dtype, totals=None):
    a = x[start:stop]
    b = x[start + d:stop + d]
    if boundaries is not None:
        keep = boundaries[start:stop] == boundaries[start + d:stop + d]
        a, b = a[keep], b[keep]
    if boundaries is None and start == 0 and stop + d == x.size and totals is not None:
        # the whole stream: marginals are the token counts minus the d tokens at either end
        total = totals
        first = total - np.bincount(x[stop:], minlength=V)
        second = total - np.bincount(x[:d], minlength=V)
    else:
        first = np.bincount(a, minlength=V).astype(np.int64)
        second = np.bincount(b, minlength=V).astype(np.int64)
    if a.dtype != code_dtype:
        a, b = a.astype(code_dtype), b.astype(code_dtype)
    codes = a * code_dtype(V) + b
    cells, counts = _occupied(codes, V * V)
    return cells.astype(np.int64), counts.astype(np.int64), first, second


def _block_edges(n_pos: int, n_blocks: int, chunk_size: int) -> np.ndarray:
    k = max(int(n_blocks), -(-n_pos // int(chunk_size)), 1)
    return np.linspace(0, n_pos, k + 1).round().astype(np.int64)


def pair_counts(tokens: np.ndarray, distance: int, n_types: int | None = None, *,
                boundaries: np.ndarray | None = None, chunk_size: int = DEFAULT_CHUNK) -> PairCounts:
    """Joint and marginal counts of ``(x[i], x[i+distance])`` (see the module docstring)."""
    pc, _ = _counts_with_blocks(np.asarray(tokens), distance, n_types, boundaries, 1, chunk_size, keep_blocks=False,
                                totals=None)
    return pc


def _counts_with_blocks(x, distance, n_types, boundaries, n_blocks, chunk_size, keep_blocks, totals=None):
    d = int(distance)
    if d < 1:
        raise OptionError(f"distance must be >= 1, got {d}")
    V = int(n_types if n_types is not None else (int(x.max()) + 1 if x.size else 1))
    n_pos = max(x.size - d, 0)
    code_dtype = _code_dtype(V)
    edges = _block_edges(n_pos, n_blocks, chunk_size)
    first = np.zeros(V, dtype=np.int64)
    second = np.zeros(V, dtype=np.int64)
    acc_cells: list[np.ndarray] = []
    acc_counts: list[np.ndarray] = []
    acc_len = 0
    blocks = [] if keep_blocks else None
    kept_size = 0
    for start, stop in zip(edges[:-1], edges[1:]):
        cells, counts, f, s = _block_counts(x, d, V, int(start), int(stop), boundaries, code_dtype, totals)
        first += f
        second += s
        acc_cells.append(cells)
        acc_counts.append(counts)
        acc_len += cells.size
        if blocks is not None:
            blocks.append((cells, counts, f, s))
            kept_size += cells.size
            if kept_size > 2 * chunk_size:  # too big to hold: recompute the blocks in a second pass
                blocks = None
        if blocks is None and len(acc_cells) > 1 and acc_len > 2 * chunk_size:
            merged = _merge(acc_cells, acc_counts)
            acc_cells, acc_counts, acc_len = [merged[0]], [merged[1]], merged[0].size
    if not acc_cells:
        cells, joint = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    elif len(acc_cells) == 1:
        cells, joint = acc_cells[0], acc_counts[0]
    else:
        cells, joint = _merge(acc_cells, acc_counts)
    pc = PairCounts(d, V, cells.astype(np.int64), joint.astype(np.int64), first, second)
    if not keep_blocks:
        return pc, None
    if blocks is None:
        def regenerate():
            for start, stop in zip(edges[:-1], edges[1:]):
                yield _block_counts(x, d, V, int(start), int(stop), boundaries, code_dtype)
        return pc, regenerate()
    return pc, blocks
