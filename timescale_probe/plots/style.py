"""Shared matplotlib setup: a non-interactive backend and one consistent style."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

PALETTE = {"baseline": "#4C72B0", "mts": "#DD8452", "reference": "#55A868", "null": "#BBBBBB"}


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.5, height: float = 3.4, **kw):
    """A figure with ``nrows x ncols`` axes in the package style (returns fig, axes)."""
    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "savefig.dpi": 150})
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
