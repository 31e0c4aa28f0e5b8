"""Dyck figures (paper Fig. 2), drawn from tidy DataFrames only (no computation here).

- ``spans``: table ``span, count, fraction`` (see ``timescale_probe.dyck.data.span_table``) and a
  fit dict ``slope, intercept, lo, hi`` (``span_slope``);
- ``summary``: table ``arch, kind, bin, bin_lo, bin_hi, seeds, mean, std, ...``
  (``timescale_probe.dyck.analysis.summarize``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .style import PALETTE, new_figure

LABELS = {"baseline": "Baseline", "mts": "Multi-timescale"}


def draw_spans(ax, spans: pd.DataFrame, fit: dict | None = None) -> None:
    """Log-log distribution of spans with the fitted line and a -3/2 guide."""
    s = spans[spans["count"] > 0]
    ax.loglog(s["span"], s["fraction"], "o", ms=2.5, color="black", label="training spans")
    if fit:
        x = np.array([fit["lo"], fit["hi"]], dtype=float)
        ax.loglog(x, np.exp(fit["intercept"]) * x ** fit["slope"], "-", color=PALETTE["mts"], lw=1.5,
                  label=f"fit {fit['lo']}-{fit['hi']}: slope {fit['slope']:.2f}")
        x0 = float(fit["lo"])
        y0 = float(np.exp(fit["intercept"]) * x0 ** fit["slope"])
        xx = np.array([x0, float(s["span"].max())])
        ax.loglog(xx, y0 * (xx / x0) ** -1.5, "--", color=PALETTE["null"], lw=1, label="slope -3/2 (critical branching)")
    ax.set_xlabel("span = timescale T (characters)")
    ax.set_ylabel("P(T)")
    ax.legend(frameon=False, fontsize=7)


def draw_accuracy(ax, summary: pd.DataFrame) -> None:
    """Fraction of test sequences right vs max timescale (bin centres), mean +- std over seeds."""
    bins = summary[summary["kind"] == "bin"]
    for arch in [a for a in ("baseline", "mts") if a in set(bins["arch"])] + sorted(set(bins["arch"]) - {"baseline", "mts"}):
        b = bins[bins["arch"] == arch].sort_values("bin_lo")
        x = (b["bin_lo"] + b["bin_hi"]) / 2
        mean, std = b["mean"].to_numpy(), b["std"].fillna(0).to_numpy()
        color = PALETTE.get(arch, None)
        seeds = int(b["seeds"].max()) if len(b) else 0
        ax.plot(x, mean, "-o", ms=3, color=color, label=f"{LABELS.get(arch, arch)} ({seeds} seeds)")
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, lw=0)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("max timescale in sequence (bin centre)")
    ax.set_ylabel("fraction of sequences correct")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=7, loc="best")


def figure_spans(spans: pd.DataFrame, fit: dict | None = None):
    fig, axes = new_figure()
    draw_spans(axes[0, 0], spans, fit)
    axes[0, 0].set_title("Dyck span distribution", fontsize=9)
    return fig


def figure_dyck(summary: pd.DataFrame, spans: pd.DataFrame | None = None, fit: dict | None = None):
    """Paper Fig. 2: (left) span distribution, when given; (right) accuracy vs max timescale."""
    ncols = 2 if spans is not None else 1
    fig, axes = new_figure(ncols=ncols)
    if spans is not None:
        draw_spans(axes[0, 0], spans, fit)
        axes[0, 0].set_title("(a) spans in the training data", fontsize=9)
    draw_accuracy(axes[0, ncols - 1], summary)
    axes[0, ncols - 1].set_title("(b) test accuracy vs max timescale", fontsize=9)
    fig.tight_layout()
    return fig
