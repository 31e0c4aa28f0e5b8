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

Modules: :mod:`.counts` (vectorised pair counting, chunked for long streams), :mod:`.estimators`
(the three estimators and the delta-method SE from counts), :mod:`.jackknife` (every
leave-one-block-out estimate of a distance from one sort); this module puts them together per
distance (:func:`distance_stats`), per curve (:func:`mi_curve`) and for the shuffle null.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import OptionError
from ..progress import ProgressLike, advance_only, as_progress
from .counts import DEFAULT_CHUNK, PairCounts, _counts_with_blocks, pair_counts
from .distances import SE_METHODS, log_distances, parse_distances
from .estimators import (
    ESTIMATORS,
    TermTables,
    _mi_all,
    check_estimator,
    delta_se,
    entropy_from_counts,
    estimator_column,
    grassberger_g,
    mi_from_counts,
)
from .jackknife import _jackknife_in_memory, _JackknifeWork, _with_jackknife, jackknife_se

__all__ = ["DEFAULT_CHUNK", "ESTIMATORS", "SE_METHODS", "PairCounts", "TermTables", "block_shuffle", "check_estimator",
           "delta_se", "distance_stats", "entropy_from_counts", "estimator_column", "grassberger_g", "jackknife_se",
           "log_distances", "mi_curve", "mi_from_counts", "pair_counts", "parse_distances", "shuffle_null"]

LN2 = float(np.log(2.0))




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
