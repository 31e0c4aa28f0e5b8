"""Sequence accuracy overall, in the long tail and per max-timescale bin; summaries over seeds;
the paired comparison of MTS against the baseline (seed i vs seed i).

Tables (tidy):

- per-run test table (``<run>.test.csv``): ``arch, seed, index, length, max_span, max_depth, correct``;
- results (``results.csv``): ``arch, seed, kind, bin, bin_lo, bin_hi, n, correct, accuracy`` with
  ``kind`` = ``overall`` (every test sequence), ``tail`` (max_span > ``tail``, bin ``>75``) or ``bin``
  (max-timescale bins from ``linspace(2, max_len, 10)``, numpy-histogram semantics: ``[lo, hi)``,
  the last bin ``[lo, hi]``); accuracy = correct / n (NaN when n = 0);
- summary: ``arch, kind, bin, bin_lo, bin_hi, seeds, mean, std, min, max, n`` (std over seeds, ddof=1);
- paired: ``kind, bin, bin_lo, bin_hi, pairs, baseline, mts, diff, ci_lo, ci_hi, wins, losses, ties,
  sign_p, wilcoxon_p`` with ``diff`` = mean over seeds of (MTS - baseline) accuracy, a percentile
  bootstrap interval over seeds, the two-sided sign test (binomial, ties dropped) and the two-sided
  Wilcoxon signed-rank test (exact for small samples; NaN when every difference is 0).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import OptionError
from ..paper import PAPER_DYCK_ACCURACY

RESULT_COLUMNS = ["arch", "seed", "kind", "bin", "bin_lo", "bin_hi", "n", "correct", "accuracy"]
TEST_COLUMNS = ["arch", "seed", "index", "length", "max_span", "max_depth", "correct"]
#: The paper's headline numbers (overall test sequence accuracy), from :data:`timescale_probe.paper.PAPER`.
PAPER_ACCURACY = dict(PAPER_DYCK_ACCURACY)


def timescale_bins(max_len: int = 200, count: int = 10) -> np.ndarray:
    """Bin edges of max timescale: ``linspace(2, max_len, count)`` (the reference's Fig. 2)."""
    return np.linspace(2.0, float(max_len), count)


def _label(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}"


def accuracy_table(test: pd.DataFrame, edges: np.ndarray, tail: float = 75.0) -> pd.DataFrame:
    """Rows ``kind, bin, bin_lo, bin_hi, n, correct, accuracy`` for one run's test table."""
    x = test["max_span"].to_numpy(dtype=np.float64)
    ok = test["correct"].to_numpy(dtype=bool)
    k = len(edges) - 1
    idx = np.searchsorted(edges, x, side="right") - 1
    idx[x == edges[-1]] = k - 1
    inside = (idx >= 0) & (idx < k)
    n = np.bincount(idx[inside], minlength=k)
    c = np.bincount(idx[inside], weights=ok[inside], minlength=k).astype(np.int64)
    tail_m = x > tail
    rows = [("overall", "all", np.nan, np.nan, len(ok), int(ok.sum())),
            ("tail", f">{tail:g}", float(tail), float(edges[-1]), int(tail_m.sum()), int(ok[tail_m].sum()))]
    rows += [("bin", _label(edges[i], edges[i + 1]), float(edges[i]), float(edges[i + 1]), int(n[i]), int(c[i]))
             for i in range(k)]
    df = pd.DataFrame(rows, columns=["kind", "bin", "bin_lo", "bin_hi", "n", "correct"])
    with np.errstate(invalid="ignore", divide="ignore"):
        df["accuracy"] = np.where(df["n"] > 0, df["correct"] / df["n"].where(df["n"] > 0, 1), np.nan)
    return df


def results_table(tests: pd.DataFrame, max_len: int = 200, tail: float = 75.0, bins: int = 10) -> pd.DataFrame:
    """The tidy results table of many runs' test tables concatenated (``TEST_COLUMNS``)."""
    missing = [c for c in TEST_COLUMNS if c not in tests.columns]
    if missing:
        raise OptionError(f"test tables lack the columns {missing}")
    edges = timescale_bins(max_len, bins)
    parts = []
    for (arch, seed), g in tests.groupby(["arch", "seed"], sort=True):
        t = accuracy_table(g, edges, tail)
        t.insert(0, "seed", int(seed))
        t.insert(0, "arch", arch)
        parts.append(t)
    if not parts:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    return pd.concat(parts, ignore_index=True)[RESULT_COLUMNS]


def _key_cols() -> list[str]:
    return ["kind", "bin", "bin_lo", "bin_hi"]


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof=1), min, max of accuracy over seeds per arch and bin; ``n`` = sequences per
    seed (mean); bins with no sequences in a seed are left out of that bin's statistics."""
    r = results.dropna(subset=["accuracy"])
    order = {k: i for i, k in enumerate(results["bin"].drop_duplicates())}
    g = r.groupby(["arch"] + _key_cols(), dropna=False, sort=False)
    out = g["accuracy"].agg(seeds="count", mean="mean", std="std", min="min", max="max").reset_index()
    out["n"] = g["n"].mean().to_numpy()
    out["_o"] = out["bin"].map(order)
    return out.sort_values(["arch", "_o"]).drop(columns="_o").reset_index(drop=True)


def paired_comparison(results: pd.DataFrame, a: str = "baseline", b: str = "mts", n_resamples: int = 10_000,
                      seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Seed-paired comparison of arch ``b`` against ``a`` per bin (see the module docstring);
    ``n_resamples`` bootstrap resamples over seeds, seeded by ``seed``."""
    from scipy.stats import binomtest, wilcoxon

    cols = _key_cols()
    if not {a, b} <= set(results["arch"]):
        raise OptionError(f"paired comparison needs runs of both '{a}' and '{b}'")
    keys = ["kind", "bin", "seed"]
    left = results.loc[results["arch"] == a, keys + ["accuracy"]].rename(columns={"accuracy": a})
    right = results.loc[results["arch"] == b, keys + ["accuracy"]].rename(columns={"accuracy": b})
    wide = left.merge(right, on=keys, how="inner")
    bounds = results.drop_duplicates("bin").set_index("bin")[["bin_lo", "bin_hi"]]
    rng = np.random.default_rng(seed)
    order = {k: i for i, k in enumerate(results["bin"].drop_duplicates())}
    rows = []
    for (kind, bin_), g in wide.groupby(["kind", "bin"], sort=False):
        key = (kind, bin_, bounds.loc[bin_, "bin_lo"], bounds.loc[bin_, "bin_hi"])
        g = g[[a, b]].dropna()
        d = (g[b] - g[a]).to_numpy()
        row = dict(zip(cols, key), pairs=len(d))
        row.update({a: float(g[a].mean()) if len(d) else np.nan, b: float(g[b].mean()) if len(d) else np.nan})
        if len(d):
            boot = d[rng.integers(0, len(d), size=(n_resamples, len(d)))].mean(axis=1)
            lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
            wins, losses = int((d > 0).sum()), int((d < 0).sum())
            sign_p = binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else np.nan
            wil_p = float(wilcoxon(d).pvalue) if np.any(d != 0) else np.nan
            row.update(diff=float(d.mean()), ci_lo=float(lo), ci_hi=float(hi), wins=wins, losses=losses,
                       ties=int((d == 0).sum()), sign_p=float(sign_p), wilcoxon_p=wil_p)
        rows.append(row)
    out = pd.DataFrame(rows)
    out["_o"] = out["bin"].map(order)
    out = out.sort_values("_o").drop(columns="_o").reset_index(drop=True)
    out.attrs.update(n_resamples=n_resamples, seed=seed, level=level)
    return out
