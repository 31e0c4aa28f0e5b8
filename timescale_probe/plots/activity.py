"""Figures of timescales from activity (``tsprobe activity-timescales``), from its tables only:
the mean autocorrelation per layer with its fits, each unit's tau with its interval, and tau
against the gate timescales (T_data, T_bias)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .style import new_figure

__all__ = ["plot_population_acf", "plot_unit_taus", "plot_activity_vs_gates"]

STATE_COLORS = {"hidden": "#4C72B0", "cell": "#DD8452"}


def _layers(df: pd.DataFrame) -> list[str]:
    names = sorted({str(v) for v in df["layer"]}, key=lambda s: (s == "all", int(s) if s.isdigit() else 0))
    return names


def plot_population_acf(acf: pd.DataFrame, population: pd.DataFrame, title: str = ""):
    """One panel per layer (and all layers): the mean autocorrelation of each state against the lag,
    its bootstrap band, and the chosen fit (dashed) labelled with tau."""
    layers = _layers(acf)
    fig, axes = new_figure(ncols=len(layers), width=3.4, height=3.0, sharey=True)
    for ax, layer in zip(axes[0], layers):
        for state, sub in acf[acf["layer"].astype(str) == layer].groupby("state"):
            color = STATE_COLORS.get(state, "k")
            ax.plot(sub["lag"], sub["acf"], color=color, lw=1.4, label=state)
            if sub["acf_lo"].notna().any():
                ax.fill_between(sub["lag"], sub["acf_lo"], sub["acf_hi"], color=color, alpha=0.2, lw=0)
            row = population[(population["layer"].astype(str) == layer) & (population["state"] == state)]
            if len(row):
                row = row.iloc[0]
                curve = sub["fit_double"] if row["model"] == "double" else sub["fit_single"]
                ax.plot(sub["lag"], curve, color=color, ls="--", lw=1.0,
                        label=f"{row['model']} fit, tau {row['tau']:.3g}")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_title(f"layer {layer}")
        ax.set_xlabel("lag (steps)")
        ax.legend(fontsize=7, frameon=False)
    axes[0][0].set_ylabel("mean autocorrelation")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_unit_taus(table: pd.DataFrame, title: str = ""):
    """Per state, every unit's tau sorted within its layer, with its interval; units whose tau is not
    resolved by the lags are drawn hollow."""
    states = [s for s in ("hidden", "cell") if s in set(table["state"])]
    fig, axes = new_figure(ncols=len(states), width=4.6, height=3.2, sharey=True)
    for ax, state in zip(axes[0], states):
        sub = table[(table["state"] == state) & (table["tau"] > 0) & np.isfinite(table["tau"])]
        x0 = 0
        for layer, lay in sub.groupby("layer"):
            lay = lay.sort_values("tau")
            x = x0 + np.arange(len(lay))
            ok = lay["resolved"].astype(bool).to_numpy()
            color = f"C{int(layer) - 1}"
            lo = np.clip(lay["tau"] - lay["tau_lo"], 0, None)
            hi = np.clip(lay["tau_hi"] - lay["tau"], 0, None)
            ax.errorbar(x, lay["tau"], yerr=[lo.fillna(0), hi.fillna(0)], fmt="none", ecolor=color, alpha=0.3, lw=0.6)
            ax.scatter(x[ok], lay["tau"][ok], s=5, color=color, label=f"layer {layer}")
            ax.scatter(x[~ok], lay["tau"][~ok], s=8, facecolors="none", edgecolors=color, lw=0.6)
            x0 += len(lay) + 10
        ax.set_yscale("log")
        ax.set_title(f"{state} state")
        ax.set_xlabel("unit (sorted by tau within layer)")
        ax.legend(fontsize=7, frameon=False, markerscale=2)
    axes[0][0].set_ylabel("tau from activity (steps)")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_activity_vs_gates(merged: pd.DataFrame, summary: pd.DataFrame, title: str = ""):
    """Scatter of tau from activity against each gate timescale (log-log), one row per state and one
    column per gate timescale, with y = x and the ``factor`` band; Spearman and the share beyond the
    band in each panel (all layers)."""
    versus = [c for c in ("T_data", "T_bias") if f"ratio_{c}" in merged]
    states = [s for s in ("hidden", "cell") if s in set(merged["state"])]
    fig, axes = new_figure(ncols=len(versus), nrows=len(states), width=3.8, height=3.4)
    for i, state in enumerate(states):
        for j, col in enumerate(versus):
            ax = axes[i][j]
            sub = merged[(merged["state"] == state) & np.isfinite(merged[f"ratio_{col}"])]
            for layer, lay in sub.groupby("layer"):
                ax.scatter(lay[col], lay["tau"], s=5, alpha=0.6, color=f"C{int(layer) - 1}", label=f"layer {layer}")
            if len(sub):
                lo = float(np.nanmin([sub[col].min(), sub["tau"].min()]))
                hi = float(np.nanmax([sub[col].max(), sub["tau"].max()]))
                grid = np.geomspace(lo / 1.5, hi * 1.5, 50)
                row = summary[(summary["layer"] == "all") & (summary["state"] == state) & (summary["versus"] == col)]
                factor = float(row["factor"].iloc[0]) if len(row) else 2.0
                ax.plot(grid, grid, color="k", lw=0.8)
                ax.fill_between(grid, grid / factor, grid * factor, color="0.85", lw=0, zorder=0)
                if len(row):
                    r = row.iloc[0]
                    ax.text(0.03, 0.97, f"Spearman {r['spearman']:.2f}\n>{factor:g}x apart: {r['share_disagree']:.0%}"
                            f"\nn = {int(r['n_compared'])}", transform=ax.transAxes, va="top", fontsize=7)
                ax.set_xscale("log")
                ax.set_yscale("log")
            ax.set_xlabel(f"{col} (steps)")
            ax.set_ylabel(f"tau from activity, {state} (steps)")
            ax.legend(fontsize=7, frameon=False, loc="lower right", markerscale=2)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
