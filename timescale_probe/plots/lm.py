"""Figures of language-model training and evaluation, drawn from tidy DataFrames only."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .style import PALETTE, new_figure


def plot_training_curves(metrics: pd.DataFrame | dict[str, pd.DataFrame], title: str = ""):
    """Train and validation perplexity per epoch (log y) from one or more metrics tables
    (columns ``epoch, train_ppl, valid_ppl, asgd``); the NT-ASGD switch is marked."""
    runs = metrics if isinstance(metrics, dict) else {"": metrics}
    fig, axes = new_figure()
    ax = axes[0, 0]
    for i, (name, m) in enumerate(runs.items()):
        color = PALETTE.get(name, f"C{i}")
        label = f"{name} " if name else ""
        ax.plot(m["epoch"], m["train_ppl"], "--", color=color, label=f"{label}train")
        ax.plot(m["epoch"], m["valid_ppl"], "-o", ms=3, color=color, label=f"{label}valid")
        if "asgd" in m and m["asgd"].astype(bool).any():
            first = m.loc[m["asgd"].astype(bool), "epoch"].iloc[0]
            ax.axvline(first, color=color, lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    return fig


def plot_ppl_by_bin(table: pd.DataFrame, title: str = ""):
    """Bar chart of perplexity per frequency bin (columns ``bin, ppl``; ``overall`` included), log y."""
    fig, axes = new_figure()
    ax = axes[0, 0]
    x = np.arange(len(table))
    ax.bar(x, table["ppl"], color=PALETTE["baseline"])
    ax.set_xticks(x, table["bin"])
    ax.set_yscale("log")
    ax.set_xlabel("target word frequency bin")
    ax.set_ylabel("perplexity")
    if title:
        ax.set_title(title)
    return fig


def plot_comparison(table: pd.DataFrame, names: Sequence[str] = ("baseline", "mts"), title: str = ""):
    """Left: perplexity per bin of both models (columns ``ppl_<name>``), log y. Right: the
    bootstrap difference ``diff`` with its interval ``lo..hi`` per bin. ``title`` (e.g. the two
    checkpoints and the corpus) heads the figure."""
    a, b = names
    fig, axes = new_figure(ncols=2)
    ax = axes[0, 0]
    x = np.arange(len(table))
    w = 0.4
    ax.bar(x - w / 2, table[f"ppl_{a}"], w, label=a, color=PALETTE.get(a, "C0"))
    ax.bar(x + w / 2, table[f"ppl_{b}"], w, label=b, color=PALETTE.get(b, "C1"))
    ax.set_xticks(x, table["bin"])
    ax.set_yscale("log")
    ax.set_ylabel("perplexity")
    ax.set_xlabel("target word frequency bin")
    ax.legend(frameon=False)
    ax = axes[0, 1]
    diff = table["diff"].to_numpy(dtype=float)
    err = np.vstack([diff - table["lo"].to_numpy(dtype=float), table["hi"].to_numpy(dtype=float) - diff])
    ax.errorbar(x, diff, yerr=err, fmt="o", color="k", capsize=3)
    ax.axhline(0, color=PALETTE["null"], lw=1)
    ax.set_xticks(x, table["bin"])
    ax.set_ylabel(f"ppl {a} - ppl {b}")
    level = table["level"].iloc[0] if "level" in table else None
    ax.set_title(f"paired bootstrap{'' if level is None else f', {_level_text(level)} interval'}")
    if title:
        fig.suptitle(title)
    return fig


def _level_text(level: float) -> str:
    """0.999 -> '99.9%', 0.95 -> '95%' (never rounded up to 100%)."""
    return f"{100 * float(level):.10g}%"
