"""Fitting and comparing distributions of unit timescales (paper Fig. 1 and §1).

Timescales ``T`` are in time steps (tokens). Every family is fitted by maximum likelihood with the
location fixed at 0 and named, with its parameters, in scipy's conventions (readable names such as
"Fréchet" in ``Family.label``). The package is split by concern:

- :mod:`.families`: the eight families and their fast vectorised MLEs (``FAMILIES``, ``fit_mle``);
- :mod:`.bootstrap`: KS statistics, the parametric / nonparametric bootstrap of one fit, exclusions;
- :mod:`.compare`: ``likelihood_ratio_test`` (Vuong for non-nested, Wilks for nested models), also
  used by the mutual-information decay laws;
- :mod:`.fitting`: ``fit_timescales`` / ``fit_table`` (per layer and pooled), ``FitReport`` and
  ``fit_verdict`` (the best of all fitted families, ΔAIC and KS of inverse gamma);
- :mod:`.inputs`: ``load_timescales`` (``.npy``, CSV, checkpoints) and ``parse_layers``;
- :mod:`.tables`: ``sorted_curve`` and ``figure_tables`` (what the plots draw).

With a fixed scale (``fix_scale=1`` reproduces the reference's shape-only fit) only the shape is
fitted. Units whose ``T`` is not in (0, inf) are excluded and counted, never dropped silently.
"""
from __future__ import annotations

from .bootstrap import CI_METHODS, KS_ALPHA, exclusion_counts, fit_one_family, ks_statistic
from .compare import LikelihoodRatioTest, likelihood_ratio_test
from .families import FAMILIES, FAMILY_ORDER, NESTED_PAIRS, Family, family_label, fit_mle, parse_families
from .fitting import (
    COMPARISON_COLUMNS,
    FIT_COLUMNS,
    MIN_DISTINCT,
    FitReport,
    fit_table,
    fit_timescales,
    fit_verdict,
)
from .inputs import layer_timescales, load_timescales, parse_layers
from .tables import figure_tables, sorted_curve

__all__ = [
    "FAMILIES", "FAMILY_ORDER", "NESTED_PAIRS", "Family", "family_label", "fit_mle", "parse_families",
    "CI_METHODS", "KS_ALPHA", "exclusion_counts", "fit_one_family", "ks_statistic",
    "LikelihoodRatioTest", "likelihood_ratio_test",
    "COMPARISON_COLUMNS", "FIT_COLUMNS", "MIN_DISTINCT", "FitReport", "fit_table",
    "fit_timescales", "fit_verdict",
    "layer_timescales", "load_timescales", "parse_layers", "figure_tables", "sorted_curve",
]
