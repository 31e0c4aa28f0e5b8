"""Mutual-information decay of token streams, decay-law fits, synthetic sources, Markov resampling.

Modules: ``streams`` (reading corpora into id streams), ``estimate`` (I(d) by plug-in,
Miller-Madow and Grassberger estimators, standard errors, shuffle null; built on ``counts``,
``estimators``, ``jackknife`` and ``distances``), ``options`` (the options of the commands), ``fits`` (exponential,
power-law and combined decay, AICc, the a = k/2 mapping), ``analysis`` (the whole measurement),
``synthetic`` (Markov chains and a Lin & Tegmark tree grammar with exact I(d)), ``resample``
(order-n Markov resampling of a corpus into a PTB-form directory).
"""
from .._lazy import lazy_exports

#: where each public name lives; loaded on first use, so reading the options (``mutual_info.options``)
#: needs neither pandas nor scipy
_EXPORTS = {
    "analysis": ["MIDecayResult", "mi_decay", "run_mi_decay"],
    "estimate": ["ESTIMATORS", "PairCounts", "distance_stats", "entropy_from_counts", "grassberger_g", "log_distances",
                 "mi_curve", "mi_from_counts", "pair_counts", "parse_distances", "shuffle_null"],
    "fits": ["MODELS", "DecayFit", "decay_law", "fit_decay_laws", "fits_table", "suggested_shape", "vuong_test"],
    "options": ["MIDecayOptions", "MIDecayParams", "MarkovCorpusOptions", "MarkovParams"],
    "resample": ["MarkovCorpusResult", "markov_corpus", "run_markov_corpus"],
    "streams": ["EOS", "TokenStream", "load_token_stream", "read_token_stream"],
    "synthetic": ["markov_decay_length", "markov_exact_mi", "mi_of_joint", "random_reversible_matrix",
                  "sample_markov_chain", "sample_tree_grammar", "second_eigenvalue_modulus", "stationary_distribution",
                  "tree_exact_mi", "tree_exponent"],
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
