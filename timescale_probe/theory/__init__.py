"""The theory test (beyond the paper): on sources whose long-range structure is known and worth
predicting, do imposed long timescales help where memory matters, does the inverse-gamma shape
matched to the source's MI exponent k (``a = k/2``) beat the mismatched one (``a = k``), and does
a freely trained LSTM's timescale shape follow k?

The paper's argument (docs/methods.md §1, §8): language MI decays as a power law ``I(d) ~ d^-k``;
units with inverse-gamma timescales of shape ``a`` give a population memory ``(1 + t/b)^-a``; so
impose inverse-gamma timescales. Whether the right shape is ``a = k/2`` or ``a = k`` is open.

Modules, one concern each:

- :mod:`~timescale_probe.theory.sources`: the factor source (J binary latent factors, persistence
  2..6000 steps, usage ~ tau^(-k/2), noisy emission, tokens labelled by factor; exact I(d)) and
  the first study's tree source;
- :mod:`~timescale_probe.theory.bayes`: exact Bayes predictors of both, with the whole past or the
  last n tokens (the bound every model is measured against, and the *headroom*);
- :mod:`~timescale_probe.theory.oracle`: frozen timescale bases with a fitted readout;
- :mod:`~timescale_probe.theory.profiles`: the arms and the profiles (frozen dataclasses);
- :mod:`~timescale_probe.theory.study`: training runs, their measurements, the run cache, the loop;
- :mod:`~timescale_probe.theory.shape`: the learned shape (tail index, inverse-gamma fit);
- :mod:`~timescale_probe.theory.verdicts`: verdicts with their power, ``no power`` below the headroom;
- :mod:`~timescale_probe.theory.analysis`: :class:`TheoryOptions` -> :func:`run_theory` ->
  :class:`TheoryResult` (``.save``), the ``reproduce`` step, the tree study relabelled.

docs/theory.md describes the design and what the studies found.
"""
from .analysis import TABLES, TheoryOptions, TheoryResult, headroom_table, relabel_tree_study, reproduce_step, run_theory
from .bayes import factor_bayes_distribution, factor_bayes_logp, tree_bayes_logp
from .profiles import (
    ARM_LABELS,
    FACTOR_ARMS,
    PROFILES,
    TREE_ARMS,
    FactorProfile,
    TreeProfile,
    factor_arm_specs,
    resolve_profile,
    tree_arm_specs,
)
from .shape import hill_tail_index, learned_shape
from .sources import FactorSource, lam_for_k
from .verdicts import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NO_POWER,
    OUTCOMES,
    mapping_outcome,
    paired_differences,
    slope_interval,
    theory_summary,
    theory_verdicts,
)

__all__ = ["TABLES", "TheoryOptions", "TheoryResult", "headroom_table", "relabel_tree_study", "reproduce_step",
           "run_theory", "factor_bayes_distribution", "factor_bayes_logp", "tree_bayes_logp", "ARM_LABELS",
           "FACTOR_ARMS", "PROFILES", "TREE_ARMS", "FactorProfile", "TreeProfile", "factor_arm_specs",
           "resolve_profile", "tree_arm_specs", "hill_tail_index", "learned_shape", "FactorSource", "lam_for_k",
           "FAILS", "HOLDS", "INCONCLUSIVE", "NO_POWER", "OUTCOMES", "mapping_outcome", "paired_differences",
           "slope_interval", "theory_summary", "theory_verdicts"]
