"""Mutual-information decay figures, drawn from the tidy tables of ``mutual_info.mi_decay`` only."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .style import PALETTE, new_figure

FIT_STYLE = {"exponential": ("#C44E52", "--"), "power": ("#4C72B0", "-"), "combined": ("#8172B2", ":")}


def figure_mi_decay(curve: pd.DataFrame, fits: pd.DataFrame | None = None, title: str = ""):
    """I(d) vs d, log-log: the excess over the shuffle mean with its SE (filled: retained for the
    fits; open: not), the raw estimate and the shuffle band (min..max of the shuffles) on a second
    axis-aligned scale of the same units, and the fitted laws over the retained range.

    ``curve``: columns ``distance``, ``mi_bits``, ``excess_bits``, ``excess_se_bits``, ``retained``,
    optional ``null_max_bits``/``null_mean_bits``/``band_bits`` and ``fit_<model>_bits``.
    ``fits``: the fits table (``model``, ``aicc``, ``delta_aicc``, ``k``, ``xi``) for the legend.
    """
    fig, axes = new_figure(ncols=2, width=4.4, height=3.4)
    ax, ax_raw = axes[0, 0], axes[0, 1]
    d = curve["distance"].to_numpy(float)
    y = curve["excess_bits"].to_numpy(float)
    se = curve["excess_se_bits"].to_numpy(float)
    kept = curve["retained"].to_numpy(bool)
    pos = y > 0
    for mask, face, label in ((kept & pos, PALETTE["baseline"], "retained"), (~kept & pos, "white", "not retained")):
        if mask.any():
            ax.errorbar(d[mask], y[mask], yerr=np.minimum(se[mask], 0.999 * y[mask]), fmt="o", ms=3.2,
                        mfc=face, mec=PALETTE["baseline"], ecolor="#9AA9C8", elinewidth=0.7, lw=0, label=label)
    if kept.any():
        dd = np.geomspace(d[kept].min(), d[kept].max(), 200)
        for _, row in (fits if fits is not None else pd.DataFrame()).iterrows():
            model = row["model"]
            col = f"fit_{model}_bits"
            if col not in curve or not np.isfinite(row["aicc"]):
                continue
            yy = _law(model, dd, row)
            color, ls = FIT_STYLE.get(model, ("k", "-"))
            extra = f"k={row['k']:.2f}" if model == "power" else (
                f"xi={row['xi']:.1f}" if model == "exponential" else f"k={row['k']:.2f}, xi={row['xi']:.1f}")
            ax.plot(dd, yy, color=color, ls=ls, lw=1.3, label=f"{model} ({extra}; dAICc={row['delta_aicc']:.1f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("distance d (tokens)")
    ax.set_ylabel("I(d) - shuffle mean (bits)")
    ax.legend(fontsize=6.5, frameon=False, loc="lower left")
    if title:
        ax.set_title(title, fontsize=9)
    # raw estimate with the band
    ax_raw.plot(d, curve["mi_bits"], "o-", ms=2.5, lw=0.8, color=PALETTE["baseline"], label="I(d) estimate")
    if "null_max_bits" in curve and curve["null_max_bits"].notna().any():
        lo = curve["null_min_bits"] if "null_min_bits" in curve else curve["null_mean_bits"] - curve["null_sd_bits"]
        ax_raw.fill_between(d, lo, curve["null_max_bits"], color=PALETTE["null"], alpha=0.8, lw=0,
                            label="shuffles (band)")
        ax_raw.plot(d, curve["band_bits"], color="#777777", lw=0.8, ls="--", label="band edge")
    ax_raw.set_xscale("log")
    if (curve["mi_bits"] > 0).all():
        ax_raw.set_yscale("log")
    ax_raw.set_xlabel("distance d (tokens)")
    ax_raw.set_ylabel("I(d), raw estimate (bits)")
    ax_raw.legend(fontsize=6.5, frameon=False)
    fig.tight_layout()
    return fig


def _law(model: str, d: np.ndarray, row) -> np.ndarray:
    if model == "exponential":
        return row["A"] * np.exp(-d / row["xi"])
    if model == "power":
        return row["A"] * d ** (-row["k"])
    return row["A"] * d ** (-row["k"]) + row["B"] * np.exp(-d / row["xi"])
