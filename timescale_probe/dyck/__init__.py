"""Dyck-n: the formal-language experiment of the paper (Fig. 2).

- :mod:`.grammar`: the PCFG sampler (vectorised, length-capped), bracket matching, targets, spans;
- :mod:`.data`: datasets (one pool of unique strings, seeded split), the text format, span statistics;
- :mod:`.config`: a run's options (:class:`DyckTrainConfig`) and the named budgets (profiles);
- :mod:`.train`: the 1-layer LSTM, baseline vs MTS, length-bucketed training, the metric;
- :mod:`.analysis`: accuracy per max-timescale bin, summaries over seeds, the paired MTS-baseline test;
- :mod:`.runs`: saving runs (checkpoint + test table) and resumable, parallel sweeps.
"""
from .._lazy import lazy_exports

#: where each public name lives; loaded on first use, so reading the options (``dyck.config``,
#: ``dyck.options``) does not import torch
_EXPORTS = {
    "analysis": ["PAPER_ACCURACY", "accuracy_table", "paired_comparison", "results_table", "summarize",
                 "timescale_bins"],
    "config": ["PROFILES", "DyckProfile", "DyckTrainConfig", "profile_config"],
    "data": ["DyckDataset", "DyckSplit", "generate_dataset", "load_dataset", "save_dataset", "span_slope", "span_table"],
    "grammar": ["Annotation", "DyckDataError", "DyckGrammar", "annotate", "bracket_pairs", "generate_pool",
                "sample_derivations"],
    "runs": ["SweepOutcome", "collect_tests", "parse_archs", "parse_seeds", "run_sweep", "save_run", "sweep"],
    "train": ["DyckLSTM", "TrainedDyck", "evaluate", "model_from_stack", "model_to_stack", "train_dyck"],
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
