"""What the figures draw is what the tables hold: the arrays on the axes, checked against data
computed independently of the plotting code (raw arrays, scipy quantiles)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from timescale_probe.ablation import load_reference_ablation
from timescale_probe.distributions import figure_tables, fit_timescales
from timescale_probe.plots.ablation import plot_routing
from timescale_probe.plots.distributions import plot_sorted_units
from timescale_probe.plots.lm import plot_comparison


def _lines_by_label(ax) -> dict[str, np.ndarray]:
    return {ln.get_label(): np.asarray(ln.get_ydata(), dtype=float) for ln in ax.get_lines()}


def test_fig1_draws_the_sorted_units_and_the_quantile_curves(reference_results):
    est = reference_results / "estimated_timescales"
    T = np.concatenate([np.load(est / f"PTB_timescale_layer_{k}_output.npy", allow_pickle=False) for k in (1, 2, 3)])
    report = fit_timescales(T, ["invgamma"], n_boot=0)
    fig = plot_sorted_units(figure_tables(report, reference_curve=(1.4, 1.0))["sorted"], "pooled")
    try:
        lines = list(fig.axes[0].get_lines())
        ys = [np.asarray(ln.get_ydata(), dtype=float) for ln in lines]
        units = next(y for y in ys if y.size == T.size)
        np.testing.assert_array_equal(units, np.sort(T)[::-1])  # every unit, longest first
        n = T.size
        a, b = report.params("invgamma")
        for shape, scale in ((a, b), (1.4, 1.0)):  # the fitted curve and the paper's a = 1.4 reference
            q = stats.invgamma.isf(np.linspace(0, 1, n + 1)[1:], shape, scale=scale)
            q = q[q > 0]  # the last quantile is 0: not drawable on a log axis
            assert any(y.size == q.size and np.allclose(y, q, rtol=1e-10) for y in ys), (shape, scale)
    finally:
        plt.close(fig)


def test_fig3_draws_the_published_ratios(reference_results):
    ratios = load_reference_ablation(reference_results / "unit_ablation")
    fig = plot_routing(ratios)
    try:
        drawn = _lines_by_label(fig.axes[0])
        for k, label in enumerate((">10K", "1K-10K", "100-1K", "<100"), 1):
            raw = np.load(reference_results / "unit_ablation" / f"bin{k}.txt.npy", allow_pickle=False)
            np.testing.assert_array_equal(drawn[label], raw)
        assert drawn["<100"].max() == pytest.approx(1.058, abs=5e-4)  # the published peak (docs/methods.md §5)
    finally:
        plt.close(fig)


def test_comparison_figure_draws_the_table():
    table = pd.DataFrame({"bin": [">10K", "1K-10K", "100-1K", "<100", "overall"],
                          "ppl_baseline": [10.7, 47.8, 250.0, 1800.0, 166.9],
                          "ppl_mts": [10.4, 51.1, 260.0, 1700.0, 169.7],
                          "diff": [0.3, -3.3, -10.0, 100.0, -2.8], "lo": [0.2, -4.0, -15.0, 40.0, -3.5],
                          "hi": [0.4, -2.5, -5.0, 160.0, -2.1], "level": 0.999})
    fig = plot_comparison(table)
    try:
        left, right = fig.axes[0], fig.axes[1]
        heights = [p.get_height() for p in left.patches]
        assert heights == table["ppl_baseline"].tolist() + table["ppl_mts"].tolist()
        points = next(ln for ln in right.get_lines() if len(ln.get_ydata()) == len(table))
        np.testing.assert_array_equal(points.get_ydata(), table["diff"].to_numpy())
        segments = right.collections[0].get_segments()  # the error bars: one vertical segment per bin
        np.testing.assert_allclose([s[:, 1].min() for s in segments], table["lo"])
        np.testing.assert_allclose([s[:, 1].max() for s in segments], table["hi"])
    finally:
        plt.close(fig)


def test_fig1_draws_only_panels_with_data():
    """Issue 11: Fig. 1 drew empty placeholder panels (no WikiText-2 model, no published Markov-PTB)."""
    import pandas as pd

    from timescale_probe.plots.reproduce import figure_fig1

    rows = []
    for source, corpus in (("ours", "ptb"), ("ours", "markov"), ("published", "ptb"), ("published", "wt2")):
        for r in range(5):
            rows.append(dict(source=source, corpus=corpus, series="units", label="units", rank=r, T=10.0 / (r + 1)))
    fig = figure_fig1(pd.DataFrame(rows), ["ptb", "wt2", "markov"], titles={"ptb": "PTB", "wt2": "WikiText-2", "markov": "Markov-PTB"})
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["PTB, ours", "Markov-PTB, ours", "PTB, published", "WikiText-2, published"]
    for ax in fig.axes:  # every panel drew its 5 units
        assert len(ax.lines) == 1 and len(ax.lines[0].get_xdata()) == 5
