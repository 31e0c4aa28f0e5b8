"""The reference's Fig. 3 data, routing facts, several seeds combined and multiple-comparison
corrections (see :mod:`timescale_probe.ablation`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, OptionError
from ..fileio import finite_or_none
from .groups import groups_table, make_groups
from .tables import control_band

REFERENCE_BINS = (">10K", "1K-10K", "100-1K", "<100")


def load_reference_ablation(directory: str | Path) -> pd.DataFrame:
    """The authors' Fig. 3 numbers (``unit_ablation/bin{1,2,3,4}.txt.npy``; PTB MTS, layer 2,
    23 chunks of 50 units) as a tidy table ``binning, group, kind, bin, ratio, source``
    (group = chunk number from 1, longest timescales first)."""
    d = Path(directory)
    if (d / "unit_ablation").is_dir():
        d = d / "unit_ablation"
    frames = []
    for i, lab in enumerate(REFERENCE_BINS, 1):
        p = d / f"bin{i}.txt.npy"
        if not p.is_file():
            raise InputError(f"reference ablation file not found: {p}")
        try:
            arr = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"{p} is not a plain .npy array: {exc}") from None
        arr = np.asarray(arr, dtype=np.float64).ravel()
        frames.append(pd.DataFrame({"binning": "frequency", "group": [str(k) for k in range(1, len(arr) + 1)],
                                    "kind": "group", "bin": lab, "ratio": arr, "source": "reference"}))
    return pd.concat(frames, ignore_index=True)


def reference_chunk_timescales(n_units: int = 1150, chunk: int = 50, shape: float = 0.56) -> pd.DataFrame:
    """Group table for the reference's chunks: the paper's layer-2 timescales
    (``invgamma.isf(linspace(0, 1, n+1))[1:]``) in consecutive chunks."""
    from scipy.stats import invgamma

    T = invgamma.isf(np.linspace(0, 1, n_units + 1), shape, scale=1.0)[1:]
    return groups_table(make_groups(f"chunks:{chunk}", T, 2))




def routing_facts(ratios: pd.DataFrame, groups: pd.DataFrame | None = None) -> dict[str, Any]:
    """Per bin: the group whose ablation hurts most (1-based position in longest-first order, its
    ratio and interval, its T range) and the largest ratio of the bin. Only ``kind == group`` rows
    count (control groups are the null, not candidates); a bin without test tokens is ``empty``."""
    r = ratios[ratios["bin"] != "all"]
    if "kind" in r:
        r = r[r["kind"] == "group"]
    order = list(dict.fromkeys(r["group"]))
    out: dict[str, Any] = {}
    for b, s in r.groupby("bin", sort=False):
        if not np.isfinite(s["ratio"].to_numpy(dtype=np.float64)).any():
            out[str(b)] = {"empty": True, "n_groups": len(order)}
            continue
        i = int(np.nanargmax(s["ratio"].to_numpy()))
        row = s.iloc[i]
        d = {"peak_group": str(row["group"]), "peak_ratio": float(row["ratio"]),
             "peak_position": order.index(row["group"]) + 1, "n_groups": len(order),
             "max_ratio": float(s["ratio"].max()), "any_above_1": bool((s["ratio"] > 1).any())}
        if "ratio_lo" in s:
            d.update(peak_lo=finite_or_none(row["ratio_lo"]), peak_hi=finite_or_none(row["ratio_hi"]),
                     any_significantly_above_1=bool((s["ratio_lo"] > 1).any()))
        src = groups.set_index("group") if groups is not None and "T_max" in groups else None
        if src is not None and row["group"] in src.index:
            d["peak_T_max"] = finite_or_none(src.loc[row["group"], "T_max"])
            d["peak_T_min"] = finite_or_none(src.loc[row["group"], "T_min"])
        elif "T_max" in s:
            d["peak_T_max"], d["peak_T_min"] = finite_or_none(row["T_max"]), finite_or_none(row.get("T_min"))
        out[str(b)] = d
    return out


def bootstrap_p_values(ratios: pd.DataFrame) -> np.ndarray:
    """One-sided p-values that a ratio exceeds 1, from the bootstrap column ``p_not_above_1`` (share
    of resamples with ratio <= 1) and ``n_resamples``: ``(k + 1) / (R + 1)`` so no p is 0."""
    R = ratios["n_resamples"].to_numpy(dtype=np.float64)
    k = np.rint(ratios["p_not_above_1"].to_numpy(dtype=np.float64) * R)
    return (k + 1.0) / (R + 1.0)


def adjust_p_values(p: np.ndarray, alpha: float = 0.05) -> pd.DataFrame:
    """Holm (family-wise error) and Benjamini-Hochberg (false discovery rate) adjustments of ``p``
    (:func:`timescale_probe.stats.holm` / :func:`~timescale_probe.stats.benjamini_hochberg`):
    columns ``p, p_holm, p_bh, sig_raw, sig_holm, sig_bh`` at ``alpha``. NaN p-values (empty bins)
    stay NaN and are not counted as tests."""
    from ..stats import benjamini_hochberg, holm

    p = np.asarray(p, dtype=np.float64)
    out = pd.DataFrame({"p": p, "p_holm": holm(p), "p_bh": benjamini_hochberg(p)})
    for col, src in (("sig_raw", "p"), ("sig_holm", "p_holm"), ("sig_bh", "p_bh")):
        out[col] = out[src] < alpha
    return out


def _frames(tables: dict[int, pd.DataFrame], binning: str) -> pd.DataFrame:
    frames = []
    for s, t in tables.items():
        t = t[(t["binning"] == binning) & (t["bin"] != "all")] if "binning" in t else t[t["bin"] != "all"]
        frames.append(t.assign(seed=s, kind=t["kind"] if "kind" in t else "group"))
    return pd.concat(frames, ignore_index=True)


def combine_seed_ratios(tables: dict[int, pd.DataFrame], *, level: float = 0.95, binning: str = "frequency",
                        alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. 3 over several seeds, descriptive: ``tables[seed]`` is one model's ablation ratio table
    (:func:`ratio_table` rows, ``kind`` group/control; e.g. a per-seed ``ablation.csv``).

    Per quantile group and bin: ``seeds``, the geometric mean of the ratios, and with >= 2 seeds a t
    interval (``df = seeds - 1``) and a one-sided t test (ratio > 1) on the log ratios across seeds
    (:mod:`timescale_probe.stats`); with one seed that seed's bootstrap interval and bootstrap p.
    Holm and Benjamini-Hochberg over all groups x bins are kept as columns for a reader; the report
    decides Fig. 3 by its pre-specified contrasts against the controls, not by these. Returns
    ``(groups, band)``: ``groups`` has ``group, position, bin, seeds, ratio, lo, hi, p, p_holm,
    p_bh, sig_raw, sig_holm, sig_bh, interval`` (and ``T_min, T_max`` when the tables carry them);
    ``band`` is the single-seed band of the control groups pooled over seeds (:func:`control_band`)
    with ``n_seeds`` (the null of a k-seed mean is :func:`seed_mean_band`)."""
    from ..stats import t_test

    if not tables:
        raise OptionError("no ablation tables to combine")
    allr = _frames(tables, binning)
    main = allr[allr["kind"] == "group"].copy()
    order = list(dict.fromkeys(main["group"].astype(str)))
    main["group"] = main["group"].astype(str)
    rows = []
    for (g, b), sub in main.groupby(["group", "bin"], sort=False):
        lr = np.log(sub["ratio"].to_numpy(dtype=np.float64))
        lr = lr[np.isfinite(lr)]
        n = lr.size
        row = {"group": g, "position": order.index(g) + 1, "bin": b, "seeds": int(n)}
        if n == 0:
            row.update(ratio=np.nan, lo=np.nan, hi=np.nan, p=np.nan, interval="none")
        elif n == 1:
            one = sub.iloc[0]
            p1 = bootstrap_p_values(sub.iloc[:1])[0] if {"p_not_above_1", "n_resamples"} <= set(sub) else np.nan
            row.update(ratio=float(np.exp(lr[0])), lo=finite_or_none(one.get("ratio_lo")) or np.nan,
                       hi=finite_or_none(one.get("ratio_hi")) or np.nan, p=float(p1),
                       interval=f"bootstrap over chunks ({one.get('level', 'n/a')}), one seed")
        else:
            tt = t_test(lr, alternative="greater", level=level)
            row.update(ratio=float(np.exp(tt.estimate)), lo=float(np.exp(tt.lo)), hi=float(np.exp(tt.hi)),
                       p=tt.p if np.isfinite(tt.p) else (0.0 if tt.estimate > 0 else 1.0),
                       interval=f"t across {n} seeds ({level:g})")
        for col in ("T_min", "T_max"):
            known = sub[col].dropna() if col in sub else ()
            if len(known):
                row[col] = float(known.iloc[0])  # the same groups in every seed (units sorted by assigned T)
        rows.append(row)
    res = pd.DataFrame(rows)
    adj = adjust_p_values(res["p"].to_numpy(), alpha=alpha)
    res = pd.concat([res, adj.drop(columns=["p"])], axis=1)
    band = control_band(allr.assign(binning=binning))
    if not band.empty:
        band["n_seeds"] = allr[allr["kind"] == "control"].groupby("bin")["seed"].nunique().reindex(band["bin"]).to_numpy()
    return res, band


def seed_mean_band(tables: dict[int, pd.DataFrame], *, binning: str = "frequency", n_draws: int = 20000,
                   seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """The null band of a k-seed mean ratio per bin: the central ``level`` range of the geometric
    mean over the k seeds of one random control group drawn from each seed's own controls
    (:func:`timescale_probe.stats.mean_of_draws_null`), the null a k-seed mean of a timescale
    group is compared with. Columns ``bin, n_seeds, n_controls (fewest per seed), null_mean,
    null_lo, null_hi``."""
    from ..stats import mean_of_draws_null

    allr = _frames(tables, binning)
    ctl = allr[allr["kind"] == "control"]
    rows = []
    for b, sub in ctl.groupby("bin", sort=False):
        per = [np.log(g["ratio"].to_numpy(dtype=np.float64)) for _, g in sub.groupby("seed")]
        per = [x[np.isfinite(x)] for x in per]
        per = [x for x in per if x.size]
        if not per:
            continue
        null = np.exp(mean_of_draws_null(per, n_draws=n_draws, seed=seed))
        lo, hi = np.quantile(null, [(1 - level) / 2, (1 + level) / 2])
        rows.append({"bin": b, "n_seeds": len(per), "n_controls": int(min(x.size for x in per)),
                     "null_mean": float(np.exp(np.mean([x.mean() for x in per]))), "null_lo": float(lo),
                     "null_hi": float(hi)})
    return pd.DataFrame(rows, columns=["bin", "n_seeds", "n_controls", "null_mean", "null_lo", "null_hi"])


#: pre-specified Fig. 3 contrast: groups whose units all have T >= LONG_T are "long", T <= SHORT_T "short"
LONG_T = 10.0
SHORT_T = 1.0
RARE_BIN = "<100"


def routing_contrasts(table: pd.DataFrame, *, n_draws: int = 20000, seed: int = 0, long_t: float = LONG_T,
                      short_t: float = SHORT_T, rare: str = RARE_BIN, binning: str = "frequency") -> dict[str, Any]:
    """One seed's pre-specified Fig. 3 statistics and their single-seed nulls from its own controls.

    ``table``: one model's ablation ratio table with ``kind`` group/control and ``T_min, T_max`` per
    group. On log ratios ``L`` (log of ppl ablated / intact):

    - ``long_vs_short`` = mean over long-T groups (``T_min >= long_t``) of ``L[rare]`` minus the mean
      over short-T groups (``T_max <= short_t``); null: the same difference for disjoint random sets
      of as many control groups, drawn ``n_draws`` times;
    - ``rare_vs_<bin>`` for every other bin = mean over long-T groups of ``L[rare] - L[bin]``; null:
      the same mean over as many random control groups.

    Returns ``{"observed": {name: value}, "null": {name: array (n_draws,)}, "long": [groups],
    "short": [groups], "controls": m}``; ``observed`` is empty when the table lacks long or short
    groups, controls or the rare bin.
    """
    t = table[(table["binning"] == binning) & (table["bin"] != "all")] if "binning" in table else table[table["bin"] != "all"]
    t = t.assign(L=np.log(t["ratio"].to_numpy(dtype=np.float64)), group=t["group"].astype(str))
    wide = t.pivot_table(index=["kind", "group"], columns="bin", values="L", aggfunc="first")
    bins = [b for b in dict.fromkeys(t["bin"]) if b in wide.columns]
    out: dict[str, Any] = {"observed": {}, "null": {}, "long": [], "short": [], "controls": 0}
    if rare not in bins or "group" not in wide.index.get_level_values(0):
        return out
    g = t[t["kind"] == "group"].drop_duplicates("group").set_index("group")
    longs = [x for x in g.index if np.isfinite(g.loc[x, "T_min"]) and g.loc[x, "T_min"] >= long_t] if "T_min" in g else []
    shorts = [x for x in g.index if np.isfinite(g.loc[x, "T_max"]) and g.loc[x, "T_max"] <= short_t] if "T_max" in g else []
    ctl = wide.loc["control"] if "control" in wide.index.get_level_values(0) else None
    out.update(long=longs, short=shorts, controls=0 if ctl is None else int(len(ctl)))
    if not longs or ctl is None or len(ctl) < len(longs) + len(shorts):
        return out
    G = wide.loc["group"]
    C = ctl[bins].to_numpy(dtype=np.float64)  # (m, bins)
    r = bins.index(rare)
    rng = np.random.default_rng(seed)
    order = rng.random((n_draws, C.shape[0])).argsort(axis=1)  # disjoint random control sets per draw
    a, b = len(longs), len(shorts)
    first = C[order[:, :a]]  # (n_draws, a, bins)
    if shorts:
        out["observed"]["long_vs_short"] = float(G.loc[longs, rare].mean() - G.loc[shorts, rare].mean())
        out["null"]["long_vs_short"] = first[:, :, r].mean(1) - C[order[:, a:a + b]][:, :, r].mean(1)
    for k, other in enumerate(bins):
        if other == rare:
            continue
        name = f"rare_vs_{other}"
        out["observed"][name] = float((G.loc[longs, rare] - G.loc[longs, other]).mean())
        out["null"][name] = (first[:, :, r] - first[:, :, k]).mean(1)
    return out
