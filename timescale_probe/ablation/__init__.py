"""Grouped unit ablations of an LSTM language model and the routing of information by timescale.

The question (paper Fig. 3): which units, grouped by timescale, carry what a model needs to
predict words of each frequency bin? Silence a group, measure per-bin perplexity, compare with the
intact model.

Groups (:func:`make_groups`) are built on one layer's units, ordered by timescale, longest first
(``T`` from the biases or from data; ties keep unit order):

- ``chunks:N``: consecutive runs of ``N`` units in that order (the paper: 23 x 50 on layer 2);
  the last chunk holds the remainder;
- ``quantiles:K``: ``K`` groups of (nearly) equal size in that order (``np.array_split``);
- ``edges:a,b,...``: ``T`` ranges ``[.., a), [a, b), ..., [z, ..]`` (empty ranges are left out),
  longest range first;
- ``units:1,5,9`` (one group) or ``units:FILE`` (one group per non-empty line; ``#`` comments).

Units are numbered from 0 within a layer, layers from 1.

Two ablation semantics, both hooks on the one stream runner (:mod:`timescale_probe.runner`),
both keeping the fused recurrent kernel:

- ``output`` (the paper's): the group's outputs are zeroed where they enter the next layer (or the
  decoder for the last layer); the layer's own recurrence still sees them
  (:func:`~timescale_probe.runner.mask_output`).
- ``silence`` (Lakretz et al. 2019): the unit's output is zero everywhere, into the next layer or
  decoder *and* into its own layer's recurrence: its output-gate pre-activation gets ``-1e4``, so
  ``o = sigmoid(-1e4 + ...) = 0`` and ``h = o tanh(c) = 0`` exactly
  (:func:`~timescale_probe.runner.silence`: a per-copy gate offset inside the fused kernel).

``G`` groups run as ``G`` parallel copies of the same token stream in one batched pass, each copy
with its own intervention; the layers below the ablated one are the same for every copy and run
once. The cost of a study is about (groups + 1) / group_batch batched passes of the upper layers
and the decoder.

Results per group and bin (frequency bins of the target word, or any other per-vocabulary class
such as function vs content words): perplexity intact and ablated, their ratio, and a paired
bootstrap interval of the ratio over consecutive chunks of 100 target tokens (the same resamples
for every group). Random control groups of the same size give a null band.
"""
from __future__ import annotations

# parts of speech (Brown tags) live in corpora.py; names kept here for existing imports
from ..corpora import (  # noqa: F401
    POS_LABELS,
    brown_tag_class,
    normalize_brown_tag,
    pos_classes_for_vocab,
    pos_lexicon,
    read_brown_tagged,
    read_tagged_sentences,
)
from .groups import UnitGroup, check_group_spec, control_groups, groups_table, make_groups, timescale_order
from .passes import MODES, SILENCE_BIAS, ablated_nll, ablation_hooks
from .seeds import (
    REFERENCE_BINS,
    adjust_p_values,
    bootstrap_p_values,
    combine_seed_ratios,
    load_reference_ablation,
    reference_chunk_timescales,
    routing_facts,
    seed_mean_band,
)
from .study import ORDER_BY, AblationStudy, check_ablation_options, run_ablation_study
from .tables import bootstrap_chunk_counts, control_band, ratio_table, routing_summary

__all__ = [
    "MODES", "ORDER_BY", "SILENCE_BIAS", "REFERENCE_BINS", "AblationStudy", "UnitGroup", "ablated_nll",
    "ablation_hooks",
    "adjust_p_values", "bootstrap_chunk_counts", "bootstrap_p_values", "check_ablation_options",
    "check_group_spec", "combine_seed_ratios", "control_band", "control_groups",
    "groups_table", "load_reference_ablation", "make_groups", "ratio_table",
    "reference_chunk_timescales", "routing_facts", "routing_summary", "run_ablation_study", "seed_mean_band", "timescale_order",
    "POS_LABELS", "brown_tag_class", "normalize_brown_tag", "pos_classes_for_vocab", "pos_lexicon",
    "read_brown_tagged", "read_tagged_sentences",
]
