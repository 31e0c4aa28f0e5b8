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
    """One panel per (corpus, source) that has data: ours first, then the published arrays, in
    ``corpora`` order, at most 3 panels a row (no empty placeholder panels).

    ``sorted_df``: ``source`` (ours|published), ``corpus``, ``series`` (units|fit|reference),
    ``label``, ``rank`` (0 = longest), ``T`` (steps). Units are dots, curves lines (log y).
    """
    panels = [(corpus, source) for source in ("ours", "published") for corpus in corpora
              if not sorted_df[(sorted_df["source"] == source) & (sorted_df["corpus"] == corpus)].empty]
    ncols = max(1, min(3, len(panels)))
    nrows = max(1, -(-len(panels) // ncols))
    fig, axes = new_figure(ncols=ncols, nrows=nrows, width=3.3, height=2.7)
    flat = list(axes.ravel())
    styles = {"units": dict(color=PALETTE["baseline"], marker=".", ls="none", ms=2.0, alpha=0.7),
              "fit": dict(color="#C44E52", lw=1.4),
              "reference": dict(color=PALETTE["reference"], lw=1.2, ls="--")}
    if not panels:
        _no_data(flat[0], "no timescales to draw")
    for ax, (corpus, source) in zip(flat, panels):
        d = sorted_df[(sorted_df["source"] == source) & (sorted_df["corpus"] == corpus)]
        name = (titles or {}).get(corpus, corpus)
        for series in ("units", "fit", "reference"):
            for label, s in d[d["series"] == series].groupby("label", sort=False):
                ok = s["T"].to_numpy(float) > 0
                ax.plot(s["rank"].to_numpy()[ok], s["T"].to_numpy()[ok], label=label, **styles[series])
        ax.set_yscale("log")
        ax.set_title(f"{name}, {source}", fontsize=8)
        ax.set_xlabel("unit (sorted, longest T first)", fontsize=7)
        ax.set_ylabel("T_data (steps)", fontsize=7)
        ax.legend(frameon=False, fontsize=5.5)
    for ax in flat[max(1, len(panels)):]:
        fig.delaxes(ax)
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
    """Ratios of the quantile groups per bin (lines, with intervals) and, when ``r`` holds control
    groups (``kind == control``), their null band per bin (2.5-97.5% of the control ratios, shaded)."""
    from ..ablation import control_band

    ctl = r[r["kind"] == "control"] if "kind" in r else r.iloc[:0]
    r = r[r["kind"] == "group"] if "kind" in r else r
    order = list(dict.fromkeys(r["group"]))
    pos = {g: i for i, g in enumerate(order)}
    if not ctl.empty:
        band = control_band(ctl.assign(binning=ctl["binning"] if "binning" in ctl else "frequency"))
        for _, row in band.iterrows():
            if row["bin"] in BIN_COLORS:
                ax.fill_between([-0.4, len(order) - 0.6], row["control_lo"], row["control_hi"],
                                color=BIN_COLORS[row["bin"]], alpha=0.12, lw=0)
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


# ----------------------------------------------------------------------------------------------
# several seeds: validation gap per epoch, Table 1 per seed, Fig. 3 over seeds (seaborn)
# ----------------------------------------------------------------------------------------------

def figure_seeds(gaps: pd.DataFrame | None, fig3: pd.DataFrame | None, band: pd.DataFrame | None,
                 per_seed: pd.DataFrame | None, combined: pd.DataFrame | None):
    """Three panels over the training seeds (seaborn):

    - the validation gap MTS vs baseline per epoch (``gaps``: ``seed, epoch, gap_pct``): one thin
      line per seed and their mean with a 95% bootstrap band across seeds;
    - Table 1: relative difference in NLL per token per bin (``per_seed``: ``seed, bin,
      rel_nll_pct``, dots) and the combined estimate with its interval (``combined``: ``bin,
      rel_nll_pct, rel_lo, rel_hi``);
    - Fig. 3 over seeds (``fig3``: ``position, bin, ratio, lo, hi``): ratio per ablated group, a band
      for the interval across seeds, and the controls' null band (``band``: ``bin, control_lo,
      control_hi``) shaded.
    """
    import seaborn as sns

    fig, axes = new_figure(ncols=3, width=3.9, height=3.1)
    ax = axes[0, 0]
    if gaps is not None and not gaps.empty:
        sns.lineplot(data=gaps, x="epoch", y="gap_pct", units="seed", estimator=None, color="0.6", lw=0.7, ax=ax)
        if gaps["seed"].nunique() > 1:
            sns.lineplot(data=gaps, x="epoch", y="gap_pct", errorbar=("ci", 95), seed=0, color=PALETTE["mts"], lw=1.6,
                         marker="o", ms=3, ax=ax, label=f"mean of {gaps['seed'].nunique()} seeds")
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set_xlabel("epoch")
        ax.set_ylabel("valid ppl MTS / baseline - 1 (%)")
        ax.set_title("validation gap per epoch (> 0: MTS worse)", fontsize=8)
    else:
        _no_data(ax, "no metrics of paired seeds")
    ax = axes[0, 1]
    if per_seed is not None and not per_seed.empty:
        order = list(dict.fromkeys(per_seed["bin"]))
        # per-seed points spread evenly around their bin (a fixed spread, so the figure is the same every run)
        for i, b in enumerate(order):
            v = per_seed.loc[per_seed["bin"] == b].sort_values("seed")["rel_nll_pct"].to_numpy(float)
            ax.scatter(i + (np.linspace(-0.08, 0.08, len(v)) if len(v) > 1 else np.zeros(len(v))), v, s=12, color="0.35")
        ax.set_xticks(range(len(order)), order)
        ax.scatter([], [], color="0.35", s=12, label=f"per seed ({per_seed['seed'].nunique()})")
        if combined is not None and not combined.empty:
            c = combined.set_index("bin").reindex(order)
            x = np.arange(len(order))
            y = c["rel_nll_pct"].to_numpy(float)
            ax.errorbar(x + 0.25, y, yerr=[y - c["rel_lo"].to_numpy(float), c["rel_hi"].to_numpy(float) - y], fmt="D",
                        color=PALETTE["mts"], ms=4, lw=1, label="combined (95%)")
            ax.legend(frameon=False, fontsize=6)
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set_xlabel("target frequency bin")
        ax.set_ylabel("NLL baseline - MTS (% of baseline)")
        ax.set_title("Table 1 per seed (> 0: MTS better)", fontsize=8)
    else:
        _no_data(ax, "no paired token NLLs")
    ax = axes[0, 2]
    if fig3 is not None and not fig3.empty:
        d = fig3.sort_values("position")
        bins = [b for b in BIN_COLORS if b in set(d["bin"])]
        sns.lineplot(data=d[d["bin"].isin(bins)], x="position", y="ratio", hue="bin", hue_order=bins,
                     palette=BIN_COLORS, marker="o", ms=3, lw=1.1, ax=ax)
        n_pos = int(d["position"].max())
        for b in bins:
            s = d[d["bin"] == b]
            ax.fill_between(s["position"], s["lo"], s["hi"], color=BIN_COLORS[b], alpha=0.2, lw=0)
        if band is not None and not band.empty:
            for _, row in band.iterrows():
                if row["bin"] in BIN_COLORS:
                    ax.fill_between([0.6, n_pos + 0.4], row["control_lo"], row["control_hi"], color=BIN_COLORS[row["bin"]],
                                    alpha=0.1, lw=0, hatch="//")
        ax.axhline(1.0, color="0.4", lw=0.8)
        seeds = int(d["seeds"].max())
        ax.set_xlabel("ablated group (1 = longest T)")
        ax.set_ylabel("ppl ablated / intact")
        ax.set_title(f"Fig. 3 over {seeds} seed(s); hatched: random-group band", fontsize=8)
        ax.legend(frameon=False, fontsize=6, title="target frequency", title_fontsize=6)
    else:
        _no_data(ax, "no ablation tables")
    fig.tight_layout()
    return fig
