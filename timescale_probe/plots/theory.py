"""Figures of the theory test (:mod:`timescale_probe.theory`), from its tidy tables only."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .style import new_figure

ARM_COLORS = {"baseline": "0.3", "ig-half": "tab:blue", "ig-k": "tab:orange", "single": "tab:green",
              "short-only": "tab:red", "log-uniform": "tab:purple", "mts-half": "tab:blue", "mts-k": "tab:orange"}


def _interval(v):
    from ..stats import t_interval

    ti = t_interval(v)
    return ti.mean, ti.lo, ti.hi


def figure_theory(results: pd.DataFrame, curves: pd.DataFrame, sources: pd.DataFrame, arms, labels: dict,
                  *, oracle: pd.DataFrame | None = None, title: str = ""):
    """Top row, per k: each arm's excess over the exact Bayes bound (factor study: state loss on
    slow-factor tokens; tree study: test loss), points = seeds, bar = mean with its t 95% interval,
    crosses = the oracle basis, dashed lines = the Bayes predictor that sees only the last 50 / 5
    tokens; last panel: the baseline's learned tail index a against k with the a = k/2 and a = k
    lines. Bottom row, per k: validation learning curves; last panel: measured against nominal k."""
    factor = "slow_state_loss" in results
    metric, bayes = ("slow_state_loss", "bayes_slow_state_loss") if factor else ("loss", "bayes_loss")
    ks = sorted(results["k"].unique())
    fig, axes = new_figure(ncols=len(ks) + 1, nrows=2, width=3.3, height=2.9)
    for j, k in enumerate(ks):
        ax = axes[0][j]
        sub = results[results["k"] == k]
        for i, arch in enumerate(arms):
            g = sub[sub["arch"] == arch]
            d = (g[metric] - g[bayes]).to_numpy()
            if not len(d):
                continue
            m, lo, hi = _interval(d)
            ax.scatter(np.full(len(d), i) + np.linspace(-0.15, 0.15, len(d)), d, color=ARM_COLORS.get(arch, "k"), s=10,
                       zorder=2)
            if np.isfinite(lo):
                ax.errorbar([i + 0.32], [m], yerr=[[m - lo], [hi - m]], fmt="_", color=ARM_COLORS.get(arch, "k"), lw=1.2, ms=9)
            if oracle is not None and len(oracle):
                o = oracle[(oracle["k"] == k) & (oracle["arch"] == arch)]
                if len(o):
                    ax.scatter([i + 0.32], [o["oracle_excess_slow_state"].mean()], marker="x", color="k", s=22, zorder=3)
        for w, ls in ((50, "--"), (5, ":")):
            col = f"{bayes}_n{w}"
            if col in sub:
                ax.axhline(float((sub[col] - sub[bayes]).mean()), color="0.5", lw=0.8, ls=ls, label=f"Bayes, last {w} tokens")
        ax.axhline(0, color="0.7", lw=0.8)
        ax.set_xticks(range(len(arms)), [labels[a] for a in arms], rotation=35, fontsize=7, ha="right")
        ax.set_title(f"k = {k:g}", fontsize=9)
        if j == 0:
            ax.set_ylabel(("slow-factor state loss" if factor else "test loss") + "\nabove the Bayes bound (nats)")
            ax.legend(fontsize=6)
        ax2 = axes[1][j]
        cur = curves[curves["k"] == k]
        first = cur["seed"].min()
        for (arch, seed), g in cur.groupby(["arch", "seed"]):
            ax2.plot(g["epoch"], g["valid_loss"], color=ARM_COLORS.get(arch, "k"), lw=0.7, alpha=0.6,
                     label=labels.get(arch, arch) if seed == first else None)
        ax2.set_xlabel("epoch")
        if j == 0:
            ax2.set_ylabel("validation loss (nats)")
            ax2.legend(fontsize=6)
    ax = axes[0][-1]
    base = results[results["arch"] == "baseline"]
    if "a_tail" in base:
        yerr = np.vstack([base["a_tail"] - base["a_tail_low"], base["a_tail_high"] - base["a_tail"]])
        yerr = np.where(np.isfinite(yerr), np.clip(yerr, 0, None), 0)
        ax.errorbar(base["k"], base["a_tail"], yerr=yerr, fmt="o", ms=3, color="0.2", lw=0.6, alpha=0.7,
                    label="baseline a (tail), bootstrap 95%")
        top = np.nanmax(base["a_tail"].to_numpy(dtype=float)) if len(base) else np.nan
        if np.isfinite(top):  # the per-run bootstrap intervals of a few dozen units can be very wide
            ax.set_ylim(0, max(1.3 * top, 1.3 * max(ks)))
    kk = np.linspace(0, max(ks) * 1.1, 20)
    ax.plot(kk, kk / 2, "--", color="tab:blue", label="a = k/2")
    ax.plot(kk, kk, ":", color="tab:orange", label="a = k")
    ax.set_xlabel("source k (nominal)")
    ax.set_ylabel("learned shape a (imposed layer)")
    ax.legend(fontsize=6)
    ax = axes[1][-1]
    s = sources
    yerr = np.vstack([s["k_measured"] - s["k_measured_low"], s["k_measured_high"] - s["k_measured"]])
    yerr = np.where(np.isfinite(yerr), np.clip(yerr, 0, None), 0)
    ax.errorbar(s["k"], s["k_measured"], yerr=yerr, fmt="s", ms=3, color="tab:purple", label="measured k (mi-decay)")
    if "k_exact_fit" in s:
        ax.plot(s["k"], s["k_exact_fit"], "^", ms=4, color="tab:gray", label="exact I(d), same range")
    ax.plot(kk, kk, color="0.6", lw=0.8, label="nominal")
    ax.set_xlabel("source k (nominal)")
    ax.set_ylabel("measured k")
    ax.legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
