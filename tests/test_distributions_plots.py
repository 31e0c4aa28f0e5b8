"""Figures of timescale fits: what is drawn equals the tables, titles name the input, and the
Fig. 1 style multi-panel figure draws only scopes that have data."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from timescale_probe.distributions import figure_tables, fit_table
from timescale_probe.plots.distributions import (
    draw_fit_figures,
    plot_qq,
    plot_sorted_units,
    plot_sorted_units_panels,
)


def _report():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"layer": [1] * 30 + [2] * 150 + [3] * 120,
                       "T": [3.0] * 15 + [4.0] * 15 + list(stats.invgamma.rvs(1.5, size=150, random_state=rng))
                       + list(stats.lognorm.rvs(0.7, size=120, random_state=rng))})
    return fit_table(df, "T", layers="all", families=["invgamma", "lognorm"], n_boot=0)


def test_sorted_units_draws_the_table_and_names_the_input():
    rep = _report()
    t = figure_tables(rep, reference_curve=(1.4, 1.0))
    fig = plot_sorted_units(t["sorted"], "layer 2", source="model.pt (T_bias)")
    ax = fig.axes[0]
    assert "model.pt (T_bias)" in ax.get_title() and "layer 2" in ax.get_title()
    units = t["sorted"].query("scope == 'layer 2' and series == 'units'")
    drawn = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(drawn[units["label"].iloc[0]].get_ydata(), units["T"].to_numpy())
    fit = t["sorted"].query("scope == 'layer 2' and series == 'fit'")
    np.testing.assert_array_equal(drawn[fit["label"].iloc[0]].get_ydata(), fit["T"].to_numpy())
    qq = plot_qq(t["qq"], "pooled", source="model.pt")
    assert "model.pt" in qq.axes[0].get_title()


def test_panels_only_for_scopes_with_data(tmp_path):
    rep = _report()
    assert [s for s, _ in rep.skipped_] == ["layer 1"]  # two values: no continuous fit
    t = figure_tables(rep)
    fig = plot_sorted_units_panels(t["sorted"], ["layer 1", "layer 2", "layer 3", "pooled"], source="x.npy")
    assert [ax.get_title() for ax in fig.axes] == ["layer 2", "layer 3", "pooled"]
    assert all(ax.get_lines() for ax in fig.axes)  # no empty placeholder panel
    assert "x.npy" in fig._suptitle.get_text()
    assert plot_sorted_units_panels(t["sorted"], ["layer 1"]) is None
    paths = draw_fit_figures(t, tmp_path, source="x.npy")
    assert sorted(p.name for p in paths if p.name.startswith("sorted_units")) == [
        "sorted_units_all.pdf", "sorted_units_layer2.pdf", "sorted_units_layer3.pdf", "sorted_units_pooled.pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
