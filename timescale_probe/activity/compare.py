"""Timescales from activity beside the paper's timescales from gates (``T_data``) and biases (``T_bias``).

Per unit (and state), the ratio of ``tau`` to each gate timescale; per layer and state, Spearman's
rank correlation and the share of units where the two disagree by more than ``factor`` (2x) either
way. Only units where both numbers are usable enter: ``tau`` resolved by the lags (see
:class:`~timescale_probe.activity.fit.FitRules`), finite and > 0, and a finite gate timescale > 0
(a saturated gate has an infinite timescale; such units are counted, not compared). All
timescales must be in one convention.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["GATE_COLUMNS", "compare_with_gates", "comparison_summary"]

GATE_COLUMNS = ("T_data", "T_bias")


def compare_with_gates(activity: pd.DataFrame, gate_table: pd.DataFrame, *, factor: float = 2.0) -> pd.DataFrame:
    """Per unit and state: ``layer, unit, state, tau, tau_lo, tau_hi, model, resolved`` and the gate
    columns present in ``gate_table`` (``T_data``, ``T_bias``), with ``ratio_<col> = tau / col`` and
    ``disagree_<col>`` (ratio beyond ``factor`` either way; NaN where not comparable)."""
    cols = [c for c in GATE_COLUMNS if c in gate_table]
    keep = ["layer", "unit", *cols] + [c for c in ("T_data_lo", "T_data_hi", "forget_bias") if c in gate_table]
    base = activity[["layer", "unit", "state", "tau", "tau_lo", "tau_hi", "model", "resolved"]]
    df = base.merge(gate_table[keep], on=["layer", "unit"], how="left", validate="many_to_one")
    usable_tau = df["resolved"].astype(bool) & np.isfinite(df["tau"]) & (df["tau"] > 0)
    for c in cols:
        ok = usable_tau & np.isfinite(df[c]) & (df[c] > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(ok, df["tau"] / df[c], np.nan)
        df[f"ratio_{c}"] = ratio
        df[f"disagree_{c}"] = np.where(ok, (ratio > factor) | (ratio < 1.0 / factor), np.nan)
    return df


def _spearman(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    res = stats.spearmanr(a, b)
    return float(res.statistic), float(res.pvalue)


def comparison_summary(merged: pd.DataFrame, *, factor: float = 2.0) -> pd.DataFrame:
    """Per layer and state (and ``layer = "all"``) and gate column: ``n_units``, ``n_compared``,
    ``n_unresolved`` (tau not resolved), ``n_gate_infinite``, ``spearman``, ``spearman_p``,
    ``share_disagree`` (more than ``factor`` apart), ``median_ratio`` (tau / gate timescale)."""
    rows = []
    cols = [c for c in GATE_COLUMNS if c in merged]
    groups = [(str(layer), state, sub) for (layer, state), sub in merged.groupby(["layer", "state"], sort=True)]
    groups += [("all", state, sub) for state, sub in merged.groupby("state", sort=True)]
    for layer, state, sub in groups:
        for c in cols:
            ratio = sub[f"ratio_{c}"].to_numpy()
            ok = np.isfinite(ratio)
            rho, p = _spearman(sub["tau"].to_numpy()[ok], sub[c].to_numpy()[ok])
            rows.append({
                "layer": layer, "state": state, "versus": c, "n_units": len(sub), "n_compared": int(ok.sum()),
                "n_unresolved": int((~sub["resolved"].astype(bool)).sum()),
                "n_gate_infinite": int((~np.isfinite(sub[c].to_numpy())).sum()),
                "spearman": rho, "spearman_p": p,
                "share_disagree": float(np.mean(sub[f"disagree_{c}"].to_numpy()[ok])) if ok.any() else float("nan"),
                "median_ratio": float(np.median(ratio[ok])) if ok.any() else float("nan"),
                "factor": factor,
            })
    return pd.DataFrame(rows)
