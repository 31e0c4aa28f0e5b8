"""The delete-one-block jackknife of I(d): leave-one-out estimates from one sort per distance.

:class:`_JackknifeWork` holds what the distances of one stream share; :func:`_jackknife_in_memory`
gives every leave-one-block-out estimate of a distance at once; :func:`jackknife_se` turns them
into standard errors. See :func:`.estimate.distance_stats` for the definition.
"""
from __future__ import annotations

import numpy as np

from ..errors import OptionError
from .counts import PairCounts, _block_edges
from .estimators import ESTIMATORS, TermTables, _delta_se_cells, _mi_all, mi_from_counts


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
