"""Figures of timescales from data and of unit ablations, drawn from tidy DataFrames only.

- :func:`plot_data_vs_bias`: ``T_data`` against ``T_bias`` per layer (log-log, the diagonal drawn);
- :func:`plot_sorted_timescales`: every unit's timescale sorted longest first (paper Fig. 1 view);
- :func:`plot_estimated_vs_assigned`: MTS layers, estimated vs assigned (the paper's appendix);
- :func:`plot_routing`: paper Fig. 3, perplexity ratio per bin against the ablated group, with
  bootstrap intervals, the control band and optionally the authors' numbers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .style import PALETTE, new_figure

BIN_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3")


def _positive_finite(x: pd.Series) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64)
    return np.isfinite(v) & (v > 0)


def _readable_log_axis(axis, lo: float, hi: float) -> None:
    """Log axis whose tick labels never collide: over less than ~1.5 decades (e.g. an MTS layer 1
    with T in {3, 4}) a few plain-number ticks instead of matplotlib's crowded minor labels."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    axis.set_minor_formatter(NullFormatter())
    if hi / lo < 30:
        axis.set_major_locator(MaxNLocator(nbins=4))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))


def plot_data_vs_bias(table: pd.DataFrame, x: str = "T_bias", y: str = "T_data", title: str = ""):
    """One panel per layer: ``y`` vs ``x`` on log-log axes with the line y = x. Units with a zero
    or infinite timescale cannot be drawn on log axes; their number is given in the panel title.
    ``title`` (e.g. the checkpoint's name) heads the figure."""
    layers = sorted(table["layer"].unique())
    fig, axes = new_figure(ncols=len(layers), width=3.4, height=3.2)
    for ax, layer in zip(axes[0], layers):
        sub = table[table["layer"] == layer]
        ok = _positive_finite(sub[x]) & _positive_finite(sub[y])
        xs, ys = sub[x].to_numpy()[ok], sub[y].to_numpy()[ok]
        ax.scatter(xs, ys, s=5, alpha=0.5, color=PALETTE["baseline"], linewidths=0)
        if ok.any():
            lo, hi = min(xs.min(), ys.min()), max(xs.max(), ys.max())
            ax.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--", label="y = x")
            ax.set_xscale("log")
            ax.set_yscale("log")
            _readable_log_axis(ax.xaxis, xs.min(), xs.max())
            _readable_log_axis(ax.yaxis, ys.min(), ys.max())
        left_out = int((~ok).sum())
        ax.set_title(f"layer {layer}" + (f" ({left_out} units not drawn: T=0 or inf)" if left_out else ""), fontsize=8)
        ax.set_xlabel(f"{x} (steps)")
        ax.set_ylabel(f"{y} (steps)")
    axes[0][0].legend(frameon=False, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_sorted_timescales(table: pd.DataFrame, column: str = "T_data", curve: pd.DataFrame | None = None,
                           title: str = ""):
    """All units' ``column`` sorted longest first (log y), coloured by layer; ``curve`` (columns
    ``rank, T, label``) is drawn over it, e.g. inverse-gamma quantiles. ``title`` heads the figure."""
    fig, axes = new_figure(width=5.0, height=3.4)
    ax = axes[0][0]
    values = table[column].to_numpy(dtype=np.float64)
    order = np.argsort(-np.where(np.isnan(values), -np.inf, values), kind="stable")
    ranks = np.arange(len(values))
    sorted_vals = values[order]
    layer_of = table["layer"].to_numpy()[order]
    ok = _positive_finite(sorted_vals)
    ax.plot(ranks[ok], sorted_vals[ok], color="0.3", lw=1.0, label=f"{column}, all units")
    for k, layer in enumerate(sorted(np.unique(layer_of))):
        m = ok & (layer_of == layer)
        ax.scatter(ranks[m], sorted_vals[m], s=3, color=BIN_COLORS[k % len(BIN_COLORS)], label=f"layer {layer}", zorder=3)
    if curve is not None and len(curve):
        for label, c in curve.groupby("label", sort=False):
            okc = _positive_finite(c["T"])
            ax.plot(c["rank"].to_numpy()[okc], c["T"].to_numpy()[okc], color=PALETTE["mts"], lw=1.2, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("units (sorted, longest timescale first)")
    ax.set_ylabel(f"{column} (steps)")
    ax.legend(frameon=False, fontsize=7, markerscale=3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_estimated_vs_assigned(table: pd.DataFrame, estimated: str = "T_data", assigned: str = "T_assigned",
                               title: str = ""):
    """For every layer with assigned timescales: both against the unit's rank in assigned order.
    ``title`` heads the figure."""
    layers = [l for l in sorted(table["layer"].unique())
              if table.loc[table["layer"] == l, assigned].notna().any()]
    fig, axes = new_figure(ncols=max(len(layers), 1), width=3.8, height=3.2)
    for ax, layer in zip(axes[0], layers):
        sub = table[table["layer"] == layer]
        a = sub[assigned].to_numpy(dtype=np.float64)
        e = sub[estimated].to_numpy(dtype=np.float64)
        order = np.argsort(-a, kind="stable")
        r = np.arange(len(a))
        oka, oke = _positive_finite(a[order]), _positive_finite(e[order])
        ax.plot(r[oke], e[order][oke], color=PALETTE["baseline"], lw=1.4, label="estimated")
        ax.plot(r[oka], a[order][oka], color="#C44E52", lw=1.4, label="assigned")
        ax.set_yscale("log")
        ax.set_title(f"layer {layer}", fontsize=9)
        ax.set_xlabel("units (assigned order)")
        ax.set_ylabel("timescale (steps)")
        ax.legend(frameon=False, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _tick_label(row) -> str:
    def f(v: float) -> str:
        if not np.isfinite(v):
            return "inf"
        return f"{v:.3g}" if v >= 0.01 else f"{v:.1e}"

    return f(row.T_mean)  # one short line, readable at 8 pt; the ranges are in the groups table


def plot_routing(ratios: pd.DataFrame, groups: pd.DataFrame | None = None, controls: pd.DataFrame | None = None,
                 reference: pd.DataFrame | None = None, binning: str = "frequency", bins: list[str] | None = None,
                 title: str | None = None):
    """Paper Fig. 3: ``ratio`` (ablated / intact perplexity) per bin against the ablated group.

    ``ratios``: rows ``binning, group, kind, bin, ratio`` (``ratio_lo``/``ratio_hi`` drawn as
    error bars when present); only ``kind == 'group'`` rows are drawn as lines. ``groups``:
    ``group, T_mean, T_min, T_max`` to label the x ticks "mean T [min, max]" (the group's mean
    timescale and its range). ``controls``: ``binning, bin, control_lo, control_hi`` drawn as a
    band per bin. ``reference``: the authors' ratios (same columns) drawn dashed.
    """
    fig, axes = new_figure(width=7.5, height=3.8)
    ax = axes[0][0]
    r = ratios[(ratios["binning"] == binning) & (ratios["kind"] == "group")]
    if bins is None:
        bins = [b for b in r["bin"].unique() if b != "all"]
    order = list(dict.fromkeys(r["group"]))
    xpos = {g: i for i, g in enumerate(order)}
    for k, b in enumerate(bins):
        color = BIN_COLORS[k % len(BIN_COLORS)]
        sub = r[r["bin"] == b]
        x = np.array([xpos[g] for g in sub["group"]])
        y = sub["ratio"].to_numpy()
        ax.plot(x, y, marker="o", ms=3, lw=1.2, color=color, label=b)
        if "ratio_lo" in sub and sub["ratio_lo"].notna().any():
            ax.vlines(x, sub["ratio_lo"], sub["ratio_hi"], color=color, lw=0.8, alpha=0.6)
        if controls is not None and len(controls):
            c = controls[(controls["binning"] == binning) & (controls["bin"] == b)]
            if len(c):
                ax.axhspan(float(c["control_lo"].iloc[0]), float(c["control_hi"].iloc[0]), color=color, alpha=0.12, lw=0,
                           label=f"{b}: random-control band")
        if reference is not None and len(reference):
            ref = reference[(reference["binning"] == binning) & (reference["bin"] == b)]
            xr = [xpos.get(g, int(g) - 1 if str(g).isdigit() else None) for g in ref["group"]]
            keep = [i for i, v in enumerate(xr) if v is not None]
            ax.plot(np.array(xr, dtype=object)[keep].astype(float), ref["ratio"].to_numpy()[keep], ls="--", lw=1.0,
                    marker="x", ms=3, color=color, alpha=0.7, label=f"{b} (reference)")
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.set_xticks(range(len(order)))
    if groups is not None and len(groups):
        g = groups.set_index("group")
        labels = [_tick_label(g.loc[name]) if name in g.index else str(name) for name in order]
        ax.set_xticklabels(labels, rotation=90, fontsize=8)
        ax.set_xlabel("ablated group: mean T (steps), longest first")
    else:
        ax.set_xticklabels(order, fontsize=8)
        ax.set_xlabel("ablated group")
    ax.set_ylabel("perplexity ratio (ablated / intact)")
    ax.legend(frameon=False, fontsize=7, ncol=2, title=binning, title_fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
