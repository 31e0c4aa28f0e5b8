"""Figures a reader can read: tick labels that do not collide, the control band in the legend,
titles that name the checkpoint. Checked on the drawn figure (text extents after a render)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from timescale_probe.plots.ablation import plot_data_vs_bias, plot_routing  # noqa: E402
from timescale_probe.plots.lm import plot_comparison, plot_ppl_by_bin  # noqa: E402


def _labels(ax, which: str):
    ax.figure.canvas.draw()
    axis = ax.xaxis if which == "x" else ax.yaxis
    renderer = ax.figure.canvas.get_renderer()
    ticks = axis.get_majorticklabels() + axis.get_minorticklabels()
    lo, hi = sorted(axis.get_view_interval())
    shown = []
    for t in ticks:
        pos = t.get_position()[0 if which == "x" else 1]
        if t.get_visible() and t.get_text() and lo <= pos <= hi:
            shown.append(t)
    return shown, [t.get_window_extent(renderer) for t in shown]


def _overlaps(boxes) -> list:
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


def _mts_table():
    """Layer 1 of an MTS model: T_bias only 3 or 4 (the paper's fixed units), T_data near them;
    layer 2: timescales over five decades."""
    rng = np.random.default_rng(0)
    t1 = np.r_[np.full(20, 3.0), np.full(20, 4.0)]
    t2 = np.exp(rng.uniform(np.log(0.5), np.log(5e4), 60))
    return pd.DataFrame({"layer": [1] * 40 + [2] * 60, "unit": list(range(40)) + list(range(60)),
                         "T_bias": np.r_[t1, t2], "T_data": np.r_[t1 * rng.uniform(0.8, 1.3, 40), t2 * 1.1]})


def test_data_vs_bias_ticks_do_not_collide_and_say_plain_numbers():
    fig = plot_data_vs_bias(_mts_table(), title="ckpt.pt on ptb test")
    for ax in fig.axes:
        for which in ("x", "y"):
            shown, boxes = _labels(ax, which)
            assert len(shown) >= 2, f"{which} axis of {ax.get_title()} has fewer than 2 labelled ticks"
            assert not _overlaps(boxes), [t.get_text() for t in shown]
    layer1 = fig.axes[0]
    texts = [t.get_text() for t in _labels(layer1, "x")[0]]
    assert all("times" not in s and "^" not in s for s in texts), texts  # 3.5, not 3.5x10^0
    assert fig._suptitle is not None and fig._suptitle.get_text() == "ckpt.pt on ptb test"


def _routing_inputs(n_groups=23):
    bins = [">10K", "1K-10K", "100-1K", "<100"]
    T = np.geomspace(5e4, 0.05, n_groups)
    groups = pd.DataFrame({"group": [str(i + 1) for i in range(n_groups)], "T_mean": T, "T_min": T / 2,
                           "T_max": T * 2})
    rows = [{"binning": "frequency", "group": str(i + 1), "kind": "group", "bin": b, "ratio": 1 + 0.01 * k / (i + 1),
             "ratio_lo": 1, "ratio_hi": 1.02} for i in range(n_groups) for k, b in enumerate(bins)]
    controls = pd.DataFrame({"binning": "frequency", "bin": bins, "n_controls": 20, "control_mean": 1.0,
                             "control_lo": 0.999, "control_hi": 1.003})
    return pd.DataFrame(rows), groups, controls


def test_routing_figure_ticks_legend_and_title():
    ratios, groups, controls = _routing_inputs()
    fig = plot_routing(ratios, groups, controls, title="ckpt.pt: layer 2")
    ax = fig.axes[0]
    shown, boxes = _labels(ax, "x")
    assert len(shown) == 23 and not _overlaps(boxes)
    assert min(t.get_fontsize() for t in shown) >= 8  # readable at the printed size
    assert all("\n" not in t.get_text() for t in shown)
    # the drawn tick labels are the groups' mean timescales, longest first
    assert [float(t.get_text()) for t in shown] == pytest.approx(groups["T_mean"].to_numpy(), rel=5e-3)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sum("control" in s for s in legend) == 4, legend
    assert ax.get_title() == "ckpt.pt: layer 2"


def test_lm_figures_name_the_checkpoints():
    table = pd.DataFrame({"bin": [">10K", "overall"], "tokens": [10, 20], "ppl_baseline": [5.0, 6.0],
                          "ppl_mts": [4.5, 5.5], "diff": [0.5, 0.5], "lo": [0.1, 0.2], "hi": [0.9, 0.8],
                          "level": [0.999, 0.999]})
    fig = plot_comparison(table, title="a.pt - b.pt on ptb test")
    assert fig._suptitle.get_text() == "a.pt - b.pt on ptb test"
    assert "99.9% interval" in fig.axes[1].get_title()  # not "100.0%"
    fig = plot_ppl_by_bin(pd.DataFrame({"bin": [">10K", "overall"], "ppl": [5.0, 6.0]}), title="a.pt on ptb test")
    assert fig.axes[0].get_title() == "a.pt on ptb test"


def _points_under_legend(ax) -> dict[str, int]:
    """Per drawn line, how many of its points (in the view) lie inside the legend's box."""
    fig = ax.figure
    fig.canvas.draw()
    box = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    lo, hi = sorted(ax.get_ylim())
    counts = {}
    for ln in ax.get_lines():
        x, y = np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float)
        keep = np.isfinite(x) & np.isfinite(y) & (y >= lo) & (y <= hi)
        xy = ax.transData.transform(np.c_[x[keep], y[keep]])
        counts[ln.get_label()] = int(((xy[:, 0] >= box.x0) & (xy[:, 0] <= box.x1)
                                      & (xy[:, 1] >= box.y0) & (xy[:, 1] <= box.y1)).sum())
    return counts


def test_fit_legends_cover_no_curve_in_the_demos_layer2_figures():
    """Issue 19: in the demo's log_density_layer2.pdf the legend covered the exponential curve. The
    demo's layer 2 (the paper-lm spec on 1150 units), all eight families fitted."""
    import matplotlib.pyplot as plt

    from timescale_probe.distributions import figure_tables, fit_table
    from timescale_probe.mts_specs import paper_lm_spec
    from timescale_probe.plots.distributions import plot_ccdf, plot_log_density
    from timescale_probe.timescale_math import forget_bias_to_timescale

    T = np.asarray(forget_bias_to_timescale(np.asarray(paper_lm_spec().forget_biases([1150, 1150, 400])[1])), float)
    report = fit_table(pd.DataFrame({"layer": 2, "unit": np.arange(T.size), "T_bias": T}), column="T_bias",
                       layers="2", n_boot=0)
    tables = figure_tables(report, scopes=report.scopes)
    for fig in (plot_log_density(tables["hist"], tables["density"], "layer 2", source="paper-mts-untrained.pt"),
                plot_ccdf(tables["ccdf"], "layer 2", source="paper-mts-untrained.pt")):
        try:
            covered = _points_under_legend(fig.axes[0])
            assert len(covered) >= 8 and not any(covered.values()), covered
            assert "paper-mts-untrained.pt" in fig.axes[0].get_title()
        finally:
            plt.close(fig)


def test_demo_fit_figures_name_their_input(tmp_path, monkeypatch):
    """Issue 19: the demo's fit figures had no input in their titles (the README says titles name it)."""
    import matplotlib.pyplot as plt

    import timescale_probe.plots.distributions as pd_plots
    from timescale_probe import demo

    titles = []

    def keep_title(fig, path):  # instead of writing the PDF: what its title says
        titles.append(" ".join(ax.get_title() for ax in fig.axes)
                      + (fig._suptitle.get_text() if fig._suptitle is not None else ""))
        plt.close(fig)
        return path

    monkeypatch.setattr(pd_plots, "save_figure", keep_title)
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"layer": 2, "unit": np.arange(200), "T_bias": np.exp(rng.normal(1, 1, 200))})
    demo._fit_and_draw(table, tmp_path, layers="2", n_boot=0, seed=0, source=f"{demo.CHECKPOINT_NAME} (T_bias)")
    assert len(titles) == 4 and all(demo.CHECKPOINT_NAME in t for t in titles), titles
