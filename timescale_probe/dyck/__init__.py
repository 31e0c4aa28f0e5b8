"""Dyck-n: the formal-language experiment of the paper (Fig. 2).

- :mod:`.grammar`: the PCFG sampler (vectorised, length-capped), bracket matching, targets, spans;
- :mod:`.data`: datasets (one pool of unique strings, seeded split), the text format, span statistics;
- :mod:`.train`: the 1-layer LSTM, baseline vs MTS, packed length-bucketed training, the metric;
- :mod:`.analysis`: accuracy per max-timescale bin, summaries over seeds, the paired MTS-baseline test;
- :mod:`.runs`: saving runs (checkpoint + test table) and resumable, parallel sweeps.
"""
from __future__ import annotations

from .analysis import PAPER_ACCURACY, accuracy_table, paired_comparison, results_table, summarize, timescale_bins
from .data import DyckDataset, DyckSplit, generate_dataset, load_dataset, save_dataset, span_slope, span_table
from .grammar import Annotation, DyckDataError, DyckGrammar, annotate, bracket_pairs, generate_pool, sample_derivations
from .runs import SweepOutcome, collect_tests, parse_archs, parse_seeds, run_sweep, save_run, sweep
from .train import PROFILES, DyckLSTM, TrainConfig, evaluate, model_from_stack, model_to_stack, profile_config, train_dyck

__all__ = [
    "Annotation", "DyckDataError", "DyckDataset", "DyckGrammar", "DyckLSTM", "DyckSplit", "PAPER_ACCURACY", "PROFILES",
    "TrainConfig", "accuracy_table", "annotate", "bracket_pairs", "collect_tests", "evaluate", "generate_dataset",
    "generate_pool", "load_dataset", "model_from_stack", "model_to_stack", "paired_comparison", "parse_archs",
    "parse_seeds", "profile_config", "results_table", "run_sweep", "sample_derivations", "save_dataset", "save_run",
    "span_slope", "span_table", "summarize", "sweep", "SweepOutcome", "timescale_bins", "train_dyck",
]
