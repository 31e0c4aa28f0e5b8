"""Perplexity ratios per group and bin with a paired chunk bootstrap, the control groups' null
band and the routing summary (see :mod:`timescale_probe.ablation`)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import OptionError
from .groups import UnitGroup


def bootstrap_chunk_counts(n_tokens: int, chunk: int = 100, n_resamples: int = 10000, seed: int = 0) -> np.ndarray:
    """Resampling weights ``(n_resamples + 1, n_chunks)`` (float64): row 0 is the original sample
    (all ones), the others count how often each of the ``n_tokens // chunk`` consecutive chunks is
    drawn (with replacement). Tokens after the last whole chunk are not resampled. The same draws
    as :func:`timescale_probe.evaluation.resample_counts` for the same seed."""
    from ..evaluation import resample_counts

    n_chunks = n_tokens // chunk
    if n_chunks < 2:
        raise OptionError(f"{n_tokens} tokens make fewer than 2 bootstrap chunks of {chunk}")
    return resample_counts(n_chunks, n_resamples, seed).astype(np.float64)


def _order_stat_interval(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Interval from order statistics over axis 0, all samples including the original one, with
    the reference's ranks (:func:`timescale_probe.evaluation.order_statistic_ranks`: 10,001
    values at level 0.999 -> sorted indices 4 and 9995)."""
    from ..evaluation import order_statistic_ranks

    lo_i, hi_i = order_statistic_ranks(values.shape[0], level)
    s = np.sort(values, axis=0)
    return s[lo_i], s[hi_i]


def ratio_table(intact: np.ndarray, ablated: np.ndarray, targets: np.ndarray, category_of_vocab: np.ndarray,
                labels: Sequence[str], groups: Sequence[UnitGroup], *, binning: str = "frequency",
                chunk: int = 100, n_resamples: int = 10000, level: float = 0.999, seed: int = 0,
                counts: np.ndarray | None = None) -> pd.DataFrame:
    """Perplexity ratios ablated / intact per group and bin, with paired bootstrap intervals.

    ``targets``: the ``N-1`` target ids; a token's bin is ``category_of_vocab[target]`` (values
    ``0..len(labels)-1``; negative = no bin). Rows for every group and bin plus bin ``all``.
    The interval comes from order statistics over the original sample and the resamples (the
    reference's ranks), the same resamples for every group and bin.
    Columns: ``binning, group, kind, bin, n_tokens, ppl_intact, ppl_ablated, ratio, ratio_lo,
    ratio_hi, p_not_above_1`` (share of resamples with ratio <= 1), ``level, n_resamples, chunk``.
    ``ratio = exp(mean NLL ablated - mean NLL intact)`` over the bin's tokens = ppl_ablated / ppl_intact.
    """
    n = len(targets)
    cat = np.asarray(category_of_vocab)[np.asarray(targets)]
    B = len(labels)
    # one-hot bins plus "all": (n, B+1)
    onehot = np.zeros((n, B + 1), dtype=np.float64)
    ok = cat >= 0
    onehot[np.nonzero(ok)[0], cat[ok]] = 1.0
    onehot[:, B] = 1.0
    diff = ablated - intact[None, :]  # (G, n)
    tok_count = onehot.sum(0)
    sum_intact = intact @ onehot
    sum_ablated = ablated @ onehot  # (G, B+1)
    if counts is None:
        counts = bootstrap_chunk_counts(n, chunk, n_resamples, seed)
    n_chunks = counts.shape[1]
    used = n_chunks * chunk
    # per chunk sums: (n_chunks, B+1) counts and (G, n_chunks, B+1) differences
    oh_c = onehot[:used].reshape(n_chunks, chunk, B + 1)
    chunk_n = oh_c.sum(1)
    chunk_d = np.matmul(diff[:, :used].reshape(len(diff), n_chunks, 1, chunk), oh_c[None]).squeeze(2)  # (G, C, B+1)
    denom = counts @ chunk_n  # (R+1, B+1)
    G = len(diff)
    num = (counts @ chunk_d.transpose(1, 0, 2).reshape(n_chunks, G * (B + 1))).reshape(-1, G, B + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.exp(num / denom[:, None, :])  # (R+1, G, B+1)
    lo, hi = _order_stat_interval(boot, level)
    p_le = np.mean(boot[1:] <= 1.0, axis=0) if len(boot) > 1 else np.full(lo.shape, np.nan)
    all_labels = list(labels) + ["all"]
    rows = []
    for gi, g in enumerate(groups):
        for b, lab in enumerate(all_labels):
            cnt = tok_count[b]
            with np.errstate(invalid="ignore", divide="ignore"):
                ppl_i = math.exp(sum_intact[b] / cnt) if cnt else float("nan")
                ppl_a = math.exp(sum_ablated[gi, b] / cnt) if cnt else float("nan")
                ratio = math.exp((sum_ablated[gi, b] - sum_intact[b]) / cnt) if cnt else float("nan")
            rows.append({
                "binning": binning, "group": g.name, "kind": g.kind, "bin": lab, "n_tokens": int(cnt),
                "ppl_intact": ppl_i, "ppl_ablated": ppl_a, "ratio": ratio,
                "ratio_lo": float(lo[gi, b]), "ratio_hi": float(hi[gi, b]), "p_not_above_1": float(p_le[gi, b]),
            })
    df = pd.DataFrame(rows)
    df["level"] = level
    df["n_resamples"] = counts.shape[0] - 1
    df["chunk"] = chunk
    return df


def control_band(ratios: pd.DataFrame, quantiles: tuple[float, float] = (0.025, 0.975)) -> pd.DataFrame:
    """Null band per binning and bin from the control groups' ratios: ``binning, bin, n_controls,
    control_mean, control_lo, control_hi`` (``quantiles`` of the control ratios, linear interpolation)."""
    ctl = ratios[ratios.kind == "control"]
    if ctl.empty:
        return pd.DataFrame(columns=["binning", "bin", "n_controls", "control_mean", "control_lo", "control_hi"])
    g = ctl.groupby(["binning", "bin"], sort=False)["ratio"]
    return pd.DataFrame({
        "n_controls": g.size(), "control_mean": g.mean(),
        "control_lo": g.quantile(quantiles[0]), "control_hi": g.quantile(quantiles[1]),
    }).reset_index()


def routing_summary(ratios: pd.DataFrame, groups: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """For each binning and bin, the ``top`` groups whose ablation hurts most (largest ratio).

    Columns: ``binning, bin, rank, group, T_mean, T_min, T_max, ratio, ratio_lo, ratio_hi,
    significant`` (interval above 1), ``above_controls`` (ratio above the control band's upper
    end; NaN without controls).
    """
    band = control_band(ratios)
    main = ratios[ratios.kind == "group"].merge(groups[["group", "T_mean", "T_min", "T_max"]], on="group", how="left")
    if not band.empty:
        main = main.merge(band[["binning", "bin", "control_hi"]], on=["binning", "bin"], how="left")
    else:
        main["control_hi"] = np.nan
    rows = []
    for (binning, b), sub in main.groupby(["binning", "bin"], sort=False):
        sub = sub.sort_values("ratio", ascending=False).head(top)
        for rank, r in enumerate(sub.itertuples(), 1):
            rows.append({
                "binning": binning, "bin": b, "rank": rank, "group": r.group, "T_mean": r.T_mean,
                "T_min": r.T_min, "T_max": r.T_max, "ratio": r.ratio, "ratio_lo": r.ratio_lo, "ratio_hi": r.ratio_hi,
                "significant": bool(r.ratio_lo > 1.0),
                "above_controls": (bool(r.ratio > r.control_hi) if not np.isnan(r.control_hi) else np.nan),
            })
    return pd.DataFrame(rows)
