"""Mutual information between the tokens at distance d, with bias-corrected estimators.

Convention: for a stream ``x`` of N integer ids and a distance ``d >= 1``, the pairs are
``(x[i], x[i+d])`` for every ``i`` in ``[0, N-d)`` (pooled over positions), restricted to pairs
whose two tokens share a segment when ``boundaries`` (segment ids, e.g. lines or documents) are
given. ``I(d) = H(A) + H(B) - H(A,B)`` over those pairs, where A is the first and B the second
token (their marginals differ slightly at the stream ends, so both are counted exactly).

Estimators (all from the same counts, in nats internally, reported in **bits**):
- ``plugin``: maximum-likelihood entropies. Biased up by about (#joint cells - #A cells -
  #B cells + 1) / (2 n ln 2) bits.
- ``miller-madow``: each entropy gets + (m - 1)/(2n), m = number of occupied cells.
- ``grassberger``: Grassberger (2003) ``H = ln n - (1/n) sum_i n_i G(n_i)`` with
  ``G(k) = psi(k) + (-1)^k/2 * (psi((k+1)/2) - psi(k/2))`` (``G(1) = -gamma - ln 2``).

Standard errors: by default a delete-one-block jackknife over 20 contiguous blocks of positions
(honest under the serial dependence of text); alternatively the delta-method (asymptotic normal)
SE of the plug-in MI, ``sqrt((sum_ab p_ab pmi_ab^2 - I^2) / n)``, ``pmi_ab = ln(p_ab/(p_a p_b))``,
which treats pairs as independent; beside the jackknife only on request (``delta_se=True``), as
a design-effect check (jackknife SE / delta SE). See :func:`distance_stats`.

Counting is vectorised: each pair is one integer ``a*V + b`` (int32 when ``V^2 < 2^31``);
occupied cells come from ``np.bincount`` when the table is small, else from a sort (numpy's) and run
lengths. Streams longer than ``chunk_size`` pairs are counted chunk by chunk and the per-chunk
(cell, count) lists merged, so memory is O(chunk_size + distinct pairs), not O(N) per distance.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.special import digamma

from ..errors import OptionError
from ..progress import ProgressLike, advance_only, as_progress
from ..validation import check_int

LN2 = float(np.log(2.0))
ESTIMATORS = ("plugin", "miller-madow", "grassberger")
DEFAULT_CHUNK = 1 << 23  # pairs per chunk (8.4M): ~100 MB of temporaries with int64 codes


def check_estimator(name: str) -> str:
    key = (name or "").lower().replace("_", "-")
    aliases = {"plug-in": "plugin", "ml": "plugin", "mm": "miller-madow", "millermadow": "miller-madow",
               "g": "grassberger", "grassberger2003": "grassberger"}
    key = aliases.get(key, key)
    if key not in ESTIMATORS:
        raise OptionError(f"unknown estimator '{name}': use {', '.join(ESTIMATORS)}", param="estimator")
    return key


def log_distances(max_distance: int = 1000, n: int = 60, min_distance: int = 1) -> np.ndarray:
    """About ``n`` distinct integer distances, log-spaced from ``min_distance`` to ``max_distance``.

    Rounding merges the small distances, so the number of log-spaced points is raised until ``n``
    distinct integers exist (or every integer in the range is used).
    """
    check_int(n, "n", minimum=1)
    check_int(min_distance, "min_distance", minimum=1)
    if check_int(max_distance, "max_distance") < min_distance:
        raise OptionError(f"max_distance must be >= {min_distance} (got {max_distance})", param="max_distance")
    span = max_distance - min_distance + 1
    if span <= n:
        return np.arange(min_distance, max_distance + 1, dtype=np.int64)
    m = n
    while True:
        d = np.unique(np.round(np.logspace(np.log10(min_distance), np.log10(max_distance), m)).astype(np.int64))
        if len(d) >= n:
            return d
        m += 1


def parse_distances(text: str | None, max_distance: int = 1000, n: int = 60) -> np.ndarray:
    """``None`` -> :func:`log_distances`; else a comma list with ranges, e.g. ``1,2,5,10-20``."""
    if text is None or str(text).strip() == "":
        return log_distances(max_distance, n)
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                lo, hi = (int(p) for p in part.split("-", 1))
                if hi < lo:
                    raise OptionError(f"distances '{text}': the range {part} runs backwards (write {hi}-{lo})",
                                      param="distances")
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise OptionError(f"distances '{text}': cannot read '{part}'; use integers and ranges like "
                              "1,2,5,10-20", param="distances") from None
    if not out:
        raise OptionError(f"distances '{text}' lists no distance", param="distances")
    d = np.unique(np.asarray(out, dtype=np.int64))
    if d[0] < 1:
        raise OptionError(f"distances '{text}': every distance must be >= 1 (got {int(d[0])})", param="distances")
    return d


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


def grassberger_g(n: np.ndarray) -> np.ndarray:
    """Grassberger (2003) G(n) = psi(n) + (-1)^n/2 (psi((n+1)/2) - psi(n/2)), n >= 1."""
    n = np.asarray(n, dtype=np.float64)
    sign = np.where(np.mod(n, 2) == 0, 1.0, -1.0)
    return digamma(n) + 0.5 * sign * (digamma((n + 1) / 2) - digamma(n / 2))


class TermTables:
    """Lookup tables ``n ln n`` and ``n G(n)`` for n = 0..n_max (both 0 at n = 0), so that the
    sums over cells are gathers, not digamma calls. ``n_max``: the largest count that can occur
    (the most frequent token's count bounds every marginal and joint count)."""

    def __init__(self, n_max: int):
        n = np.arange(int(n_max) + 1, dtype=np.float64)
        safe = np.where(n > 0, n, 1.0)
        self.n_log_n = np.where(n > 0, n * np.log(safe), 0.0)
        self.n_g_n = np.where(n > 0, n * grassberger_g(safe), 0.0)

    @classmethod
    def for_tokens(cls, tokens: np.ndarray) -> "TermTables":
        x = np.asarray(tokens)
        return cls(int(np.bincount(x).max()) if x.size else 1)

    def terms(self, counts: np.ndarray) -> np.ndarray:
        """(sum n ln n, sum n G(n), occupied cells) of a histogram."""
        return np.array([self.n_log_n[counts].sum(), self.n_g_n[counts].sum(), np.count_nonzero(counts)],
                        dtype=np.float64)


def _terms(counts: np.ndarray) -> np.ndarray:
    return TermTables(int(counts.max()) if counts.size else 1).terms(counts)


def _entropies(n, terms: np.ndarray) -> np.ndarray:
    """Entropies (nats) by plug-in, Miller-Madow, Grassberger from :func:`_terms` (last axis);
    ``n`` and ``terms`` may carry leading axes (one row per leave-one-out sample)."""
    terms = np.asarray(terms, dtype=np.float64)
    log_n = np.log(n)
    plugin = log_n - terms[..., 0] / n
    return np.stack([plugin, plugin + (terms[..., 2] - 1) / (2.0 * n), log_n - terms[..., 1] / n], axis=-1)


def entropy_from_counts(counts: np.ndarray, estimator: str = "plugin") -> float:
    """Entropy (nats) of a histogram with the named estimator."""
    est = check_estimator(estimator)
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    if n == 0:
        return float("nan")
    return float(_entropies(n, _terms(counts))[ESTIMATORS.index(est)])


def _mi_all(n, t_first: np.ndarray, t_second: np.ndarray, t_joint: np.ndarray) -> np.ndarray:
    """MI (nats) by every estimator; with an array ``n`` (rows of terms), one row per entry,
    NaN where ``n <= 0``."""
    if np.ndim(n) == 0:
        if n <= 0:
            return np.full(3, np.nan)
        return _entropies(n, t_first) + _entropies(n, t_second) - _entropies(n, t_joint)
    n = np.asarray(n, dtype=np.float64)
    ok = n > 0
    safe = np.where(ok, n, 1.0)[:, None]
    mi = _entropies(safe[:, 0], t_first) + _entropies(safe[:, 0], t_second) - _entropies(safe[:, 0], t_joint)
    mi[~ok] = np.nan
    return mi


def delta_se(pc: PairCounts) -> float:
    """Delta-method SE (nats) of the plug-in MI: sqrt((sum p pmi^2 - I^2) / n)."""
    return _delta_se_cells(pc.cells, pc.joint, pc.first, pc.second, pc.n_types, pc.n_pairs)


def _delta_se_cells(cells, joint, first, second, n_types: int, n: int, work=None) -> float:
    """:func:`delta_se` of occupied cells ``a * n_types + b`` (any integer dtype; the arithmetic
    stays in it) with their counts. ``work``: a :class:`_JackknifeWork` whose buffers hold the
    temporaries. The two sums are einsum passes: no BLAS threads spinning for a dot product, no
    temporary for ``n pmi^2``."""
    if n == 0:
        return float("nan")
    C = cells.size
    kd = cells.dtype.type

    def buf(name, dtype):
        return None if work is None else work.buffer(name, C, dtype)

    a = np.floor_divide(cells, kd(n_types), out=buf("delta_a", cells.dtype))
    b = np.multiply(a, kd(n_types), out=buf("delta_b", cells.dtype))
    np.subtract(cells, b, out=b)
    with np.errstate(divide="ignore"):  # tokens absent from one side never index these tables
        log_first = np.log(first.astype(np.float64))
        log_second = np.log(second.astype(np.float64))
    log_first -= np.log(float(n))
    if work is None:
        jf = joint.astype(np.float64)
    else:
        jf = work.buffer("delta_j", C, np.float64)
        np.copyto(jf, joint)
    pmi = np.log(jf, out=buf("delta_pmi", np.float64))
    tmp = buf("delta_tmp", np.float64)
    pmi -= np.take(log_first, a, out=tmp, mode="clip")
    pmi -= np.take(log_second, b, out=tmp, mode="clip")
    mi = float(np.einsum("i,i->", jf, pmi)) / n
    var = (float(np.einsum("i,i,i->", jf, pmi, pmi)) / n - mi * mi) / n
    return float(np.sqrt(max(var, 0.0)))


def mi_from_counts(pc: PairCounts, tables: TermTables | None = None, *, with_delta: bool = True) -> dict[str, float]:
    """MI (nats) of one distance by every estimator, and the delta-method SE of the plug-in MI."""
    n = pc.n_pairs
    tables = tables or TermTables(int(max(pc.first.max(initial=1), pc.second.max(initial=1))))
    mi = _mi_all(n, tables.terms(pc.first), tables.terms(pc.second), tables.terms(pc.joint))
    out = {"distance": pc.distance, "n_pairs": n, "occupied_cells": int(pc.cells.size)}
    out.update(dict(zip(ESTIMATORS, map(float, mi))))
    out["se_delta"] = delta_se(pc) if with_delta else float("nan")
    return out


SE_METHODS = ("jackknife", "delta")


def distance_stats(tokens: np.ndarray, distance: int, n_types: int | None = None, *,
                   boundaries: np.ndarray | None = None, se: str = "jackknife", n_blocks: int = 20,
                   chunk_size: int = DEFAULT_CHUNK, tables: TermTables | None = None,
                   totals: np.ndarray | None = None, delta_se: bool = False,
                   _work: "_JackknifeWork | None" = None) -> dict[str, float]:
    """MI (nats) at one distance by every estimator, with standard errors.

    ``se='jackknife'``: delete-one-block jackknife over ``n_blocks`` contiguous blocks of pair
    positions (captures the serial dependence of text up to the block length, ~N/n_blocks tokens),
    per estimator: ``se = sqrt((B-1)/B * sum_k (I_(-k) - mean)^2)``. Each leave-one-out estimate
    is exact (full counts minus the block's counts). ``se='delta'``: the delta-method SE of the
    plug-in MI for every estimator (cheaper; assumes independent pairs). ``se_delta`` holds the
    delta-method SE with ``se='delta'``, or beside the jackknife when ``delta_se`` is true (it
    costs about a third of the jackknife again), else NaN. Keys: ``plugin``, ``miller-madow``,
    ``grassberger``, ``se_<estimator>``, ``se_delta``, ``n_pairs``, ``occupied_cells``.
    """
    if se not in SE_METHODS + ("none",):
        raise OptionError(f"unknown SE method '{se}': use {', '.join(SE_METHODS)}")
    x = np.asarray(tokens)
    jack = se == "jackknife" and n_blocks >= 2
    if jack and x.size - int(distance) <= chunk_size:
        return _jackknife_in_memory(x, int(distance), n_types, boundaries, int(n_blocks), tables, _work,
                                    delta=bool(delta_se))
    pc, blocks = _counts_with_blocks(x, distance, n_types, boundaries, n_blocks if jack else 1, chunk_size,
                                     keep_blocks=jack, totals=totals)
    tables = tables or TermTables(int(max(pc.first.max(initial=1), pc.second.max(initial=1))))
    out = mi_from_counts(pc, tables, with_delta=se == "delta" or (se == "jackknife" and bool(delta_se)))
    if se == "none":
        return out
    if not jack:
        for est in ESTIMATORS:
            out[f"se_{est}"] = out["se_delta"]
        return out
    n = pc.n_pairs
    t_joint = tables.terms(pc.joint)
    t_first, t_second = tables.terms(pc.first), tables.terms(pc.second)
    loo = []
    for cells_k, counts_k, first_k, second_k in blocks:
        n_k = int(first_k.sum())
        if n_k == 0:
            loo.append(_mi_all(n, t_first, t_second, t_joint))
            continue
        nc = pc.joint[np.searchsorted(pc.cells, cells_k)]
        rest = nc - counts_k
        t_j = t_joint - tables.terms(nc) + tables.terms(rest)
        loo.append(_mi_all(n - n_k, tables.terms(pc.first - first_k), tables.terms(pc.second - second_k), t_j))
    return _with_jackknife(out, loo)


def _with_jackknife(out: dict, loo) -> dict:
    """Add the leave-one-block-out estimates (``loo``, rows = blocks) and their jackknife SE per
    estimator (``se_<estimator>``) to a distance's results."""
    loo = np.asarray(loo)
    out["loo"] = loo
    for est, v in zip(ESTIMATORS, jackknife_se(loo)):
        out[f"se_{est}"] = float(v)
    return out


def jackknife_se(loo: np.ndarray) -> np.ndarray:
    """Delete-one jackknife SE per column from leave-one-out estimates (rows; NaN rows = empty
    blocks, ignored): ``sqrt((m-1)/m * sum_k (theta_k - mean)^2)``."""
    loo = np.asarray(loo, dtype=np.float64)
    ok = np.all(np.isfinite(loo), axis=1) if loo.ndim == 2 else np.zeros(0, bool)
    m = int(ok.sum())
    if m < 2:
        return np.full(loo.shape[1] if loo.ndim == 2 else 3, np.nan)
    v = loo[ok]
    return np.sqrt((m - 1) / m * np.sum((v - v.mean(axis=0)) ** 2, axis=0))


class _JackknifeWork:
    """What every distance of one stream shares in the one-sort jackknife (built once by
    :func:`mi_curve`, or per call by :func:`distance_stats`).

    Sort key of the pair at position i: ``(x[i]*V + x[i+d]) << shift | block(i)``, i.e.
    ``high[i] + low[i+d]`` with ``high = x*V << shift | block0`` and ``low = x << shift``;
    ``block0`` are the blocks of the longest pair range (``edges0``, distance 0). At distance d the
    block edges move left by at most about ``d``, so only the few positions between an edge and
    its ``edges0`` counterpart need their block id raised. The key is unsigned 32-bit when
    ``V^2 << shift`` fits (PTB: V = 10,000 and 20 blocks), else int64. ``first0``: the token
    counts of each ``edges0`` block (B, V), from which the per-block marginals of any distance
    follow by a few edge windows."""

    def __init__(self, x: np.ndarray, V: int, B: int, tables: "TermTables | None" = None):
        self.x, self.V, self.B = x, int(V), int(B)
        self._buffers: dict[str, np.ndarray] = {}
        self._rest0: np.ndarray | None = None
        self.shift = max(1, (self.B - 1).bit_length())
        self.kd = np.uint32 if (self.V * self.V) << self.shift <= 2**32 else np.int64
        kd = self.kd
        self.edges0 = _block_edges(x.size, self.B, x.size + 1)
        self.high = x.astype(kd)
        self.high *= kd(self.V << self.shift)
        self.low = x.astype(kd)
        self.low <<= kd(self.shift)
        self.first0 = np.empty((self.B, self.V), dtype=np.int64)
        for k in range(self.B):
            lo, hi = self.edges0[k], self.edges0[k + 1]
            self.high[lo:hi] |= kd(k)
            self.first0[k] = np.bincount(x[lo:hi], minlength=self.V)
        self.totals = self.first0.sum(0)
        top = int(self.totals.max(initial=1))
        self.tables = tables if tables is not None and tables.n_log_n.size > top else TermTables(top)

    def serves(self, x: np.ndarray, V: int, B: int) -> bool:
        return x is self.x and V == self.V and B == self.B

    def buffer(self, name: str, size: int, dtype) -> np.ndarray:
        """A reusable array of at least ``size`` items (its first ``size``): the large temporaries
        of every distance live in the same memory, not in fresh allocations that the kernel has to
        map again for each distance (page faults cost as much CPU time as the counting)."""
        buf = self._buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != np.dtype(dtype):
            buf = np.empty(max(int(size), self.x.size + 1), dtype=dtype)
            self._buffers[name] = buf
        return buf[:size]

    def keys(self, d: int, edges: np.ndarray) -> np.ndarray:
        """The (unsorted) keys of the pairs at distance d, blocks ``edges``."""
        n = int(edges[-1])
        key = np.add(self.high[:n], self.low[d:d + n], out=self.buffer("key", n, self.kd))
        moved = [(int(edges[k]), min(int(self.edges0[k]), n)) for k in range(1, self.B)]
        if sum(hi - lo for lo, hi in moved) <= n // 4:
            one = self.kd(1)
            for lo, hi in moved:  # these positions belong to one block later than in edges0
                if hi > lo:
                    key[lo:hi] += one
        else:  # far distances: rewrite every block id
            key >>= self.kd(self.shift)
            key <<= self.kd(self.shift)
            for k in range(1, self.B):
                key[edges[k]:edges[k + 1]] |= self.kd(k)
        return key

    def _window_changes(self, d: int, edges: np.ndarray, limit: int):
        """Per-block marginal counts at distance d minus ``first0``'s, as sparse changes: rows
        0..B-1 the first tokens of the pairs starting in each block (``x[e_k:e_{k+1}]``), rows
        B..2B-1 their second tokens (``x[e_k+d:e_{k+1}+d]``), both against ``first0``. Each edge of
        ``edges`` (or ``edges + d``) and its ``edges0`` counterpart bound a window of tokens that
        one block gains and its neighbour loses. Returns ``(flat index row * V + token, +-1 per
        token)``, or ``None`` when the windows hold more than ``limit`` tokens."""
        B, V, x = self.B, self.V, self.x
        e, e0 = np.asarray(edges, dtype=np.int64), self.edges0
        k = np.arange(B, dtype=np.int64)
        row = np.concatenate([k, k, B + k, B + k])
        lo = np.concatenate([e[:-1], e[1:], e0[:-1], e0[1:]])
        hi = np.concatenate([e0[:-1], e0[1:], e[:-1] + d, e[1:] + d])
        sign = np.repeat(np.array([1, -1, -1, 1], dtype=np.int64), B)
        back = hi < lo
        lo, hi, sign = np.where(back, hi, lo), np.where(back, lo, hi), np.where(back, -sign, sign)
        length = hi - lo
        total = int(length.sum())
        if total > limit:
            return None
        pos = np.arange(total, dtype=np.int64)
        pos += np.repeat(lo - (np.cumsum(length) - length), length)
        return x[pos].astype(np.int64) + np.repeat(row * V, length), np.repeat(sign, length)

    def block_marginals(self, d: int, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Counts (B, V) of the first and second tokens of the pairs starting in each block, from
        ``first0`` and :meth:`_window_changes` (far distances: the blocks counted directly)."""
        changes = self._window_changes(d, edges, limit=int(edges[-1]))
        if changes is None:
            return _block_marginals(self.x, d, self.V, edges, None)
        out = np.concatenate([self.first0, self.first0])
        np.add.at(out.reshape(-1), *changes)
        return out[:self.B], out[self.B:]

    def loo_marginal_terms(self, d: int, edges: np.ndarray):
        """The marginals of the pairs at distance d (no segment boundaries) and, for each block k
        left out, the :meth:`TermTables.terms` of both marginals, without a (B, V) pass per distance.

        With block k left out, the first tokens are those of ``x[:e_k]`` and ``x[e_{k+1}:N-d]``
        (``e = edges``, N tokens); at distance 0 (``edges0``) they are ``rest0_k = totals -
        first0_k``, whose terms ``Z0_k`` are computed once per stream. The two differ only by the
        tokens between each edge and its ``edges0`` counterpart (:meth:`_window_changes`, with the
        sign turned: what block k gains, the rest loses) and by the last d tokens; the second
        tokens likewise, with the first d tokens. So the terms at distance d are
        ``Z0_k + sum over the changed (k, v) of T(rest_kv) - T(rest0_kv)``.
        Returns ``(first, second, n_k, terms_first (B, 3), terms_second (B, 3))``, or ``None``
        when the changed windows hold more tokens than a dense pass would read."""
        x, B, V, N, d = self.x, self.B, self.V, self.x.size, int(d)
        k = np.arange(B, dtype=np.int64)
        tail = np.bincount(x[N - d:], minlength=V)
        head = np.bincount(x[:d], minlength=V)
        tail_at, head_at = np.flatnonzero(tail), np.flatnonzero(head)
        windows = self._window_changes(d, edges, limit=B * (V - tail_at.size - head_at.size))
        if windows is None:
            return None
        tables = self.tables
        if self._rest0 is None:
            self._rest0 = np.concatenate([self.totals - self.first0] * 2).reshape(-1)  # (2B, V), flat
            self._z0 = np.stack([tables.terms(r) for r in self._rest0.reshape(2 * B, V)])
            self._acc = np.zeros(2 * B * V, dtype=np.int64)  # zero again after every call
            self._mark = np.empty(2 * B * V, dtype=np.int64)
        # every changed (row, token) as a flat index, with its change: the windows' tokens, then
        # the last d tokens (first-token rows) and the first d tokens (second-token rows)
        at = np.concatenate([windows[0], (tail_at[None, :] + (k * V)[:, None]).reshape(-1),
                             (head_at[None, :] + ((B + k) * V)[:, None]).reshape(-1)])
        change = np.concatenate([-windows[1], np.tile(-tail[tail_at], B), np.tile(-head[head_at], B)])
        acc, mark = self._acc, self._mark
        np.add.at(acc, at, change)
        order = np.arange(at.size, dtype=np.int64)
        mark[at] = order
        at = at[mark[at] == order]  # each changed index once
        moved = acc[at]
        acc[at] = 0
        at, moved = at[moved != 0], moved[moved != 0]
        old = self._rest0[at]
        new = old + moved
        rows = at // V
        dz = np.stack([np.bincount(rows, weights=tab[new] - tab[old], minlength=2 * B)
                       for tab in (tables.n_log_n, tables.n_g_n)]
                      + [np.bincount(rows, weights=(new > 0).astype(np.float64) - (old > 0), minlength=2 * B)], axis=1)
        terms = self._z0 + dz
        return self.totals - tail, self.totals - head, np.diff(np.asarray(edges, dtype=np.int64)), terms[:B], terms[B:]


def _block_marginals(x, d, V, edges, keep):
    """Marginal counts (B, V) of the first and second tokens of the pairs starting in each block
    (``keep``: which pairs count)."""
    B = len(edges) - 1
    first = np.empty((B, V), dtype=np.int64)
    second = np.empty((B, V), dtype=np.int64)
    a, b = x[:edges[-1]], x[d:d + edges[-1]]
    for k in range(B):
        lo, hi = int(edges[k]), int(edges[k + 1])
        ak, bk = a[lo:hi], b[lo:hi]
        if keep is not None:
            mk = keep[lo:hi]
            ak, bk = ak[mk], bk[mk]
        first[k] = np.bincount(ak, minlength=V)
        second[k] = np.bincount(bk, minlength=V)
    return first, second


def _loo_terms(total: np.ndarray, per_block: np.ndarray, tables: TermTables) -> np.ndarray:
    """:meth:`TermTables.terms` of ``total - per_block[k]`` for every block k, shape (B, 3)."""
    rest = total - per_block
    return np.stack([tables.n_log_n[rest].sum(axis=1), tables.n_g_n[rest].sum(axis=1),
                     np.count_nonzero(rest, axis=1).astype(np.float64)], axis=1)


def _jackknife_in_memory(x, d, n_types, boundaries, B, tables, work=None, delta: bool = True):
    """One sort of ``cell << shift | block`` gives the full counts, the per-(cell, block) counts
    and so every leave-one-block-out estimate at once (same numbers as the chunked path in
    :func:`distance_stats`). ``delta``: also the delta-method SE of the plug-in MI (``se_delta``;
    NaN without it).

    Leaving block k out lowers the count of each cell c present in k from ``N_c`` to
    ``N_c - m_ck``, so the joint terms (``sum T(count)`` for T = ``n ln n``, ``n G(n)``,
    ``[n > 0]``) drop by ``sum over the runs (c, k) of T(N_c) - T(N_c - m_ck)``. Rather than
    looking T up per run, two bincounts histogram the runs by (value, block), for the values
    ``N_c`` and ``N_c - m_ck``, and one product with the tables gives every block's drop: no loop
    over blocks and no second sort. The point estimate's joint terms come from the histogram of
    the cell counts the same way. The marginals' leave-one-out terms come from :meth:`_JackknifeWork.loo_marginal_terms`
    (no segment boundaries) or from the per-block marginal counts."""
    if d < 1:
        raise OptionError(f"distance must be >= 1, got {d}", param="distance")
    V = int(n_types if n_types is not None else int(x.max()) + 1)
    n_pos = max(x.size - d, 0)
    edges = _block_edges(n_pos, B, n_pos + 1)
    B = len(edges) - 1
    if work is None or not work.serves(x, V, B):
        work = _JackknifeWork(x, V, B, tables)
    kd, shift = work.kd, work.shift
    marginals = work.loo_marginal_terms(d, edges) if boundaries is None else None
    if marginals is not None:
        first, second, n_k, t_first_loo, t_second_loo = marginals
        key = work.keys(d, edges)
    else:
        if boundaries is None:
            first_kb, second_kb = work.block_marginals(d, edges)
            key = work.keys(d, edges)
        else:
            keep = boundaries[:n_pos] == boundaries[d:d + n_pos]
            first_kb, second_kb = _block_marginals(x, d, V, edges, keep)
            key = work.keys(d, edges)[keep]
        first, second = first_kb.sum(0), second_kb.sum(0)
        n_k = first_kb.sum(1)
    tables = tables or work.tables
    key.sort()
    n = key.size
    if n == 0:
        pc = PairCounts(d, V, np.zeros(0, np.int64), np.zeros(0, np.int64), first, second)
        return _with_jackknife(mi_from_counts(pc, tables, with_delta=delta), np.full((B, 3), np.nan))
    if marginals is None:
        t_first_loo, t_second_loo = _loo_terms(first, first_kb, tables), _loo_terms(second, second_kb, tables)
    # runs of equal keys = (cell, block) pairs; runs of equal cells = occupied cells
    flag = work.buffer("flag", n + 1, bool)
    flag[0] = True
    np.not_equal(key[1:], key[:-1], out=flag[1:n])
    run_start = np.flatnonzero(flag[:n])
    R = run_start.size
    run_key = np.take(key, run_start, out=work.buffer("run_key", R, kd), mode="clip")
    run_count = work.buffer("run_count", R, np.int64)
    np.subtract(run_start[1:], run_start[:-1], out=run_count[:-1])
    run_count[-1] = n - run_start[-1]
    run_cell = np.right_shift(run_key, kd(shift), out=work.buffer("run_cell", R, kd))
    new_cell = flag[:R + 1]
    new_cell[0] = new_cell[R] = True
    np.not_equal(run_cell[1:], run_cell[:-1], out=new_cell[1:R])
    first_run = np.flatnonzero(new_cell)  # C + 1 entries, the last = R
    C = first_run.size - 1
    cell_pos = np.take(run_start, first_run, out=work.buffer("cell_pos", C + 1, np.int64), mode="clip")
    cell_pos[C] = n
    joint = np.subtract(cell_pos[1:], cell_pos[:-1], out=work.buffer("joint", C, np.int64))
    runs_per_cell = np.subtract(first_run[1:], first_run[:-1], out=work.buffer("rpc", C, np.int64))
    # the tables over the values that occur: rows n ln n, n G(n), [n > 0]
    top = int(joint.max())
    T = np.stack([tables.n_log_n[:top + 1], tables.n_g_n[:top + 1], (np.arange(top + 1) > 0).astype(np.float64)])
    # the cells by count: most are single pairs, counted apart (a bincount that hits one bin again
    # and again waits on itself)
    several = np.flatnonzero(joint > 1)
    value_hist = np.bincount(np.take(joint, several), minlength=top + 1).astype(np.float64)
    value_hist[1] += C - several.size
    slots = 1 << shift
    blk = np.bitwise_and(run_key, kd(slots - 1), out=run_key)
    if (top + 1) * slots <= 4 * R + (1 << 16):
        # histogram of the runs by (N_c, block) and by (N_c - m_ck, block)
        joint <<= shift
        idx = np.repeat(joint, runs_per_cell)
        joint >>= shift
        idx |= blk
        hist = np.bincount(idx, minlength=(top + 1) * slots)
        run_count <<= shift
        idx -= run_count
        hist -= np.bincount(idx, minlength=(top + 1) * slots)
        drop = np.einsum("tv,vk->tk", T, hist.reshape(top + 1, slots)[:, :B].astype(np.float64))  # (3, B)
    else:  # few, very frequent cells (tiny vocabularies): look the tables up per run instead
        nc = np.repeat(joint, runs_per_cell)
        rest = np.subtract(nc, run_count, out=run_count)
        blk = blk.astype(np.intp)
        drop = np.stack([np.bincount(blk, weights=tab[nc] - tab[rest], minlength=B)
                         for tab in (tables.n_log_n, tables.n_g_n)]
                        + [np.bincount(blk[rest == 0], minlength=B).astype(np.float64)])
    t_joint = np.einsum("tv,v->t", T, value_hist)
    mi = _mi_all(n, tables.terms(first), tables.terms(second), t_joint)
    out = {"distance": d, "n_pairs": n, "occupied_cells": int(C)}
    out.update(dict(zip(ESTIMATORS, map(float, mi))))
    if delta:
        cells = np.take(run_cell, first_run[:-1], out=work.buffer("cells", C, kd), mode="clip")
        out["se_delta"] = _delta_se_cells(cells, joint, first, second, V, n, work)
    else:
        out["se_delta"] = float("nan")
    t_joint_loo = t_joint - drop.T
    loo = _mi_all(n - n_k, t_first_loo, t_second_loo, t_joint_loo)
    loo[(n_k == 0) | (n_k == n)] = np.nan
    return _with_jackknife(out, loo)


def mi_curve(tokens: np.ndarray, distances: Iterable[int], *, n_types: int | None = None,
             boundaries: np.ndarray | None = None, se: str = "jackknife", n_blocks: int = 20,
             chunk_size: int = DEFAULT_CHUNK, delta_se: bool = False, progress: ProgressLike = None) -> pd.DataFrame:
    """I(d) for each distance by every estimator. One row per distance.

    ``progress`` (:mod:`timescale_probe.progress`): started with the number of distances and
    advanced once per distance (an older zero-argument callback is called once per distance).

    Columns: ``distance``; ``n_pairs`` (pairs counted); ``occupied_cells`` (distinct pairs);
    ``mi_plugin_bits``, ``mi_miller_madow_bits``, ``mi_grassberger_bits``; their standard errors
    ``se_plugin_bits``, ``se_miller_madow_bits``, ``se_grassberger_bits`` (method ``se``, see
    :func:`distance_stats`; absent with ``se='none'``); ``se_delta_bits`` (delta method, plug-in;
    only with ``se='delta'``, or beside the jackknife with ``delta_se=True``).
    With the jackknife, ``df.attrs['loo_bits']`` holds the leave-one-block-out estimates, shape
    (distances, blocks, estimators in ``ESTIMATORS`` order).
    """
    x = np.asarray(tokens)
    if x.ndim != 1:
        raise OptionError(f"token stream must be one-dimensional, got shape {x.shape}")
    if x.size and x.min() < 0:
        raise OptionError("token ids must be >= 0")
    if not np.issubdtype(x.dtype, np.integer):
        raise OptionError(f"token ids must be integers, got {x.dtype}")
    V = int(n_types if n_types is not None else (int(x.max()) + 1 if x.size else 1))
    if x.size and int(x.max()) >= V:
        raise OptionError(f"token id {int(x.max())} >= n_types {V}")
    if boundaries is not None and np.shape(boundaries) != x.shape:
        raise OptionError(f"boundaries must have the stream's shape {x.shape}, got {np.shape(boundaries)}")
    distances = [int(d) for d in distances]
    bar = as_progress(progress)
    bar.start(len(distances), f"I(d) at {len(distances)} distances")
    try:
        df = _mi_rows(x, distances, V, boundaries, se, n_blocks, chunk_size, bar, bool(delta_se))
    finally:
        bar.done()
    return df


def _mi_rows(x, distances, V, boundaries, se, n_blocks, chunk_size, bar, delta_se) -> pd.DataFrame:
    rows = []
    loos = []
    totals = np.bincount(x, minlength=V)
    tables = TermTables(int(totals.max()) if x.size else 1)
    work = None
    if se == "jackknife" and n_blocks >= 2 and any(0 < x.size - d <= chunk_size for d in distances):
        work = _JackknifeWork(x, V, int(n_blocks), tables)  # shared by the distances of the one-sort path
    for d in distances:
        r = distance_stats(x, d, V, boundaries=boundaries, se=se, n_blocks=n_blocks,
                           chunk_size=chunk_size, tables=tables, totals=totals, delta_se=delta_se, _work=work)
        row = {"distance": int(d), "n_pairs": r["n_pairs"], "occupied_cells": r["occupied_cells"]}
        for est in ESTIMATORS:
            row[f"mi_{est.replace('-', '_')}_bits"] = r[est] / LN2
        if se != "none":
            for est in ESTIMATORS:
                row[f"se_{est.replace('-', '_')}_bits"] = r[f"se_{est}"] / LN2
        if se == "delta" or (se == "jackknife" and delta_se):
            row["se_delta_bits"] = r["se_delta"] / LN2
        rows.append(row)
        if "loo" in r:
            loos.append(r["loo"] / LN2)
        bar.advance(1)
    df = pd.DataFrame(rows)
    if loos and len({l.shape for l in loos}) == 1:
        df.attrs["loo_bits"] = np.stack(loos)  # (distance, block, estimator) leave-one-block-out MI
    return df


def estimator_column(estimator: str) -> str:
    return f"mi_{check_estimator(estimator).replace('-', '_')}_bits"


def block_shuffle(tokens: np.ndarray, n_blocks: int, seed: int = 0) -> np.ndarray:
    """Permute tokens within each of ``n_blocks`` contiguous blocks (``linspace`` edges): the
    dependence at distances much shorter than a block is destroyed, the composition of every
    block is kept. Vectorised: one argsort of ``block_id + uniform``."""
    x = np.asarray(tokens)
    edges = np.linspace(0, x.size, int(n_blocks) + 1).round().astype(np.int64)
    block = np.repeat(np.arange(len(edges) - 1), np.diff(edges))
    order = np.argsort(block + np.random.default_rng(seed).random(x.size), kind="stable")
    return x[order]


def shuffle_null(tokens: np.ndarray, distances: Sequence[int], n_shuffles: int, *, seed: int = 0,
                 n_types: int | None = None, boundaries: np.ndarray | None = None,
                 chunk_size: int = DEFAULT_CHUNK, progress: ProgressLike = None) -> pd.DataFrame:
    """I(d) of ``n_shuffles`` random permutations of the whole stream (the estimator's floor).

    A permutation keeps the marginal counts and (with ``boundaries`` held in place) the number of
    pairs at each distance, and destroys every dependence. Permutation k uses
    ``np.random.default_rng([seed, k])``, so adding shuffles never changes the earlier ones.
    Columns: ``shuffle`` (0-based) and those of :func:`mi_curve`. ``progress``: started with
    ``n_shuffles * len(distances)``, advanced once per distance and shuffle.
    """
    x = np.asarray(tokens)
    V = int(n_types if n_types is not None else int(x.max()) + 1)
    frames = []
    bar = as_progress(progress)
    distances = [int(d) for d in distances]
    bar.start(int(n_shuffles) * len(distances), f"I(d) of {int(n_shuffles)} shuffles")
    try:
        for k in range(int(n_shuffles)):
            perm = np.random.default_rng([int(seed), k]).permutation(x)
            df = mi_curve(perm, distances, n_types=V, boundaries=boundaries, se="none", chunk_size=chunk_size,
                          progress=advance_only(bar))
            df.insert(0, "shuffle", k)
            frames.append(df)
    finally:
        bar.done()
    if not frames:
        return pd.DataFrame(columns=["shuffle", "distance", "n_pairs", "occupied_cells", "mi_plugin_bits",
                                     "mi_miller_madow_bits", "mi_grassberger_bits"])
    return pd.concat(frames, ignore_index=True)
