"""Figures of ``tsprobe reproduce``: ours beside the published version, drawn from tidy DataFrames.

Every figure is written twice by :func:`save_pdf_png`: the PDF (the figure of record) and a PNG
twin rendered by matplotlib from the same figure (for the HTML report and the README).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..fileio import atomic_write_with, save_figure
from .style import PALETTE, new_figure

BIN_COLORS = {">10K": "#4C72B0", "1K-10K": "#DD8452", "100-1K": "#55A868", "<100": "#C44E52"}
PNG_DPI = 100


def save_pdf_png(fig, pdf_path: str | Path, dpi: int = PNG_DPI) -> list[Path]:
    """Write ``fig`` as ``X.pdf`` and its twin ``X.png`` (``dpi``), atomically; closes the figure."""
    pdf_path = Path(pdf_path)
    png_path = pdf_path.with_suffix(".png")
    atomic_write_with(png_path, lambda p: fig.savefig(p, format="png", dpi=dpi, bbox_inches="tight"))
    save_figure(fig, pdf_path)
    return [pdf_path, png_path]


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, color="0.4", wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


# ----------------------------------------------------------------------------------------------
# Fig. 1: sorted timescales of baseline models with inverse-gamma curves
# ----------------------------------------------------------------------------------------------

def figure_fig1(sorted_df: pd.DataFrame, corpora: list[str], titles: dict[str, str] | None = None):
    """Grid: one column per corpus, row 1 ours, row 2 the published arrays.

    ``sorted_df``: ``source`` (ours|published), ``corpus``, ``series`` (units|fit|reference),
    ``label``, ``rank`` (0 = longest), ``T`` (steps). Units are dots, curves lines (log y).
    """
    fig, axes = new_figure(ncols=len(corpora), nrows=2, width=3.3, height=2.7)
    styles = {"units": dict(color=PALETTE["baseline"], marker=".", ls="none", ms=2.0, alpha=0.7),
              "fit": dict(color="#C44E52", lw=1.4),
              "reference": dict(color=PALETTE["reference"], lw=1.2, ls="--")}
    for j, corpus in enumerate(corpora):
        for i, source in enumerate(("ours", "published")):
            ax = axes[i, j]
            d = sorted_df[(sorted_df["source"] == source) & (sorted_df["corpus"] == corpus)]
            name = (titles or {}).get(corpus, corpus)
            if d.empty:
                _no_data(ax, f"{name}: no {'published data' if source == 'published' else 'model here'}")
                ax.set_title(f"{name}, {source}", fontsize=8)
                continue
            for series in ("units", "fit", "reference"):
                for label, s in d[d["series"] == series].groupby("label", sort=False):
                    ok = s["T"].to_numpy(float) > 0
                    ax.plot(s["rank"].to_numpy()[ok], s["T"].to_numpy()[ok], label=label, **styles[series])
            ax.set_yscale("log")
            ax.set_title(f"{name}, {source}", fontsize=8)
            ax.set_xlabel("unit (sorted, longest T first)", fontsize=7)
            ax.set_ylabel("T_data (steps)", fontsize=7)
            ax.legend(frameon=False, fontsize=5.5)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# appendix: MTS estimated vs assigned timescales
# ----------------------------------------------------------------------------------------------

def figure_mts_layers(df: pd.DataFrame):
    """Rows ours / published, one column per assigned layer: assigned and estimated T against
    the unit's rank in assigned order (log y). ``df``: ``source, layer, rank, T_assigned, T_data``."""
    layers = sorted(df["layer"].unique()) or [1]
    fig, axes = new_figure(ncols=len(layers), nrows=2, width=3.5, height=2.7)
    for i, source in enumerate(("ours", "published")):
        for j, layer in enumerate(layers):
            ax = axes[i, j]
            d = df[(df["source"] == source) & (df["layer"] == layer)].sort_values("rank")
            if d.empty:
                _no_data(ax, f"layer {layer}: no {'published data' if source == 'published' else 'model here'}")
                ax.set_title(f"{source}, layer {layer}", fontsize=8)
                continue
            for col, color, label in (("T_data", PALETTE["baseline"], "estimated (T_data)"),
                                      ("T_assigned", "#C44E52", "assigned")):
                y = d[col].to_numpy(float)
                ok = np.isfinite(y) & (y > 0)
                ax.plot(d["rank"].to_numpy()[ok], y[ok], color=color, lw=1.2, label=label)
            ax.set_yscale("log")
            ax.set_title(f"{source}, layer {layer}", fontsize=8)
            ax.set_xlabel("unit (assigned order, longest first)", fontsize=7)
            ax.set_ylabel("timescale (steps)", fontsize=7)
            ax.legend(frameon=False, fontsize=6)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# Table 1: perplexity per bin
# ----------------------------------------------------------------------------------------------

def figure_table1(table: pd.DataFrame, paper: pd.DataFrame | None = None):
    """Left: perplexity per bin, baseline vs MTS, with intervals (log y) and the paper's MTS values
    as crosses. Right: difference baseline - MTS with its paired-bootstrap interval (> 0: MTS better).

    ``table``: ``bin, ppl_baseline, ppl_baseline_lo, ppl_baseline_hi, ppl_mts, ppl_mts_lo,
    ppl_mts_hi, diff, lo, hi``. ``paper``: ``bin, model, ppl``.
    """
    fig, axes = new_figure(ncols=2, width=3.8, height=3.0)
    ax, axd = axes[0, 0], axes[0, 1]
    x = np.arange(len(table))
    for k, (name, color) in enumerate((("baseline", PALETTE["baseline"]), ("mts", PALETTE["mts"]))):
        y = table[f"ppl_{name}"].to_numpy(float)
        lo = table[f"ppl_{name}_lo"].to_numpy(float)
        hi = table[f"ppl_{name}_hi"].to_numpy(float)
        ax.bar(x + (k - 0.5) * 0.38, y, width=0.38, color=color, label=name)
        ax.errorbar(x + (k - 0.5) * 0.38, y, yerr=[y - lo, hi - y], fmt="none", ecolor="0.2", lw=0.8)
    if paper is not None and len(paper):
        pos = {b: i for i, b in enumerate(table["bin"])}
        for k, name in enumerate(("baseline", "mts")):
            p = paper[(paper["model"] == name) & paper["bin"].isin(pos)]
            if len(p):
                ax.plot([pos[b] + (k - 0.5) * 0.38 for b in p["bin"]], p["ppl"], "kx", ms=5,
                        label="paper" if k == 1 or not (paper["model"] == "mts").any() else None)
    ax.set_xticks(x)
    ax.set_xticklabels(table["bin"], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("test perplexity")
    ax.set_title("perplexity per frequency bin", fontsize=8)
    ax.legend(frameon=False, fontsize=7)
    d = table["diff"].to_numpy(float)
    axd.errorbar(x, d, yerr=[d - table["lo"].to_numpy(float), table["hi"].to_numpy(float) - d], fmt="o",
                 color=PALETTE["mts"], ms=4, lw=1)
    axd.axhline(0, color="0.5", lw=0.8)
    axd.set_xticks(x)
    axd.set_xticklabels(table["bin"], fontsize=7)
    axd.set_yscale("symlog", linthresh=1.0)
    axd.set_ylabel("baseline - MTS perplexity")
    axd.set_title("paired bootstrap (> 0: MTS better)", fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# Fig. 3: routing
# ----------------------------------------------------------------------------------------------

def _draw_routing(ax, r: pd.DataFrame, groups: pd.DataFrame | None, title: str) -> None:
    order = list(dict.fromkeys(r["group"]))
    pos = {g: i for i, g in enumerate(order)}
    for b in [b for b in BIN_COLORS if b in set(r["bin"])]:
        s = r[r["bin"] == b]
        x = np.array([pos[g] for g in s["group"]])
        ax.plot(x, s["ratio"], "-o", ms=2.5, lw=1.1, color=BIN_COLORS[b], label=b)
        if "ratio_lo" in s and s["ratio_lo"].notna().any():
            ax.vlines(x, s["ratio_lo"], s["ratio_hi"], color=BIN_COLORS[b], lw=0.7, alpha=0.6)
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.set_xticks(range(len(order)))
    if groups is not None and len(groups):
        g = groups.set_index("group")
        labels = [f"{g.loc[n, 'T_max']:.3g}" if n in g.index else str(n) for n in order]
        ax.set_xticklabels(labels, rotation=90, fontsize=5.5)
        ax.set_xlabel("ablated chunk: its largest T (steps), longest first", fontsize=7)
    else:
        ax.set_xticklabels(order, fontsize=6)
        ax.set_xlabel("ablated chunk", fontsize=7)
    ax.set_ylabel("ppl ablated / intact", fontsize=7)
    ax.set_title(title, fontsize=8)
    ax.legend(frameon=False, fontsize=6, title="target frequency", title_fontsize=6)


def figure_fig3(ours: pd.DataFrame | None, ours_groups: pd.DataFrame | None, published: pd.DataFrame | None,
                published_groups: pd.DataFrame | None, title_ours: str = "ours"):
    """Paper Fig. 3 side by side: per-bin perplexity ratio against the ablated chunk of layer 2
    (chunks ordered longest timescale first; the tick is the chunk's largest T). ``ours`` /
    ``published``: ``group, bin, ratio`` (+ ``ratio_lo``/``ratio_hi``); groups: ``group, T_max``."""
    fig, axes = new_figure(ncols=2, width=4.6, height=3.3)
    for ax, r, g, title in ((axes[0, 0], ours, ours_groups, title_ours),
                            (axes[0, 1], published, published_groups, "published (PTB MTS, 23 x 50 units)")):
        if r is None or r.empty:
            _no_data(ax, "no data")
            ax.set_title(title, fontsize=8)
        else:
            _draw_routing(ax, r[r["bin"] != "all"], g, title)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# MI decay of several corpora
# ----------------------------------------------------------------------------------------------

def figure_mi_corpora(curves: pd.DataFrame):
    """I(d) excess over the shuffle mean vs d, log-log, one line per corpus (retained distances
    filled, others open); ``curves``: ``corpus, distance, excess_bits, retained``."""
    fig, axes = new_figure(width=5.2, height=3.6)
    ax = axes[0, 0]
    for k, (name, g) in enumerate(curves.groupby("corpus", sort=False)):
        g = g[g["excess_bits"] > 0]
        color = f"C{k}"
        kept = g["retained"].astype(bool)
        ax.plot(g.loc[kept, "distance"], g.loc[kept, "excess_bits"], "o-", ms=2.5, lw=0.9, color=color, label=str(name))
        ax.plot(g.loc[~kept, "distance"], g.loc[~kept, "excess_bits"], "o", ms=2.5, mfc="white", color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("distance d (tokens)")
    ax.set_ylabel("I(d) - shuffle mean (bits)")
    ax.set_title("mutual information decay (filled: above the shuffle band)", fontsize=8)
    ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig
