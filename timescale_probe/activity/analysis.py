"""``tsprobe activity-timescales`` on the analysis protocol: options declared once, one run, a
result whose ``save(out)`` writes every table, figure and ``run.json``::

    from timescale_probe.activity.analysis import ActivityOptions, run_activity

    result = run_activity(ActivityOptions(checkpoint="checkpoints/ptb-mts-small.pt", max_tokens=20000))
    result.tables["activity_timescales.csv"]   # per unit and state
    result.save("out/")

Imports only light modules at import time (the CLI builds its command from :class:`ActivityOptions`).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Optional

from ..analyses.checkpoint import CHECKPOINT_HELP, checkpoint_file
from ..analysis import Options, Result, option
from ..analysis.options import device_option, out_option, seed_option, threads_option
from ..corpora.text import SPLITS
from ..errors import OptionError

__all__ = ["ActivityOptions", "ActivityResult", "run_activity", "INTERVAL_NOTE"]

CORPUS_HELP = "ptb (built in), a directory with train.txt/valid.txt/test.txt, or one text file."

INTERVAL_NOTE = ("tau_lo/tau_hi: block bootstrap over non-overlapping stream blocks of `block` steps (lagged pairs "
                 "belong to the block of their first step; n_boot replicates, seed); interval exp(log tau -+ "
                 "t_{level, blocks-1} * SD(log tau*)), percentile where a replicate tau is 0. A double exponential "
                 "is kept only where AIC prefers it (margin 10), its timescales differ >= 3x, the slow one is at most "
                 "10x the longest lag, each part carries >= 1% of the amplitude, and all that holds in >= 90% of "
                 "the replicates. tau of a double is w tau_fast + (1 - w) tau_slow.")


def _vocab_file(path: Path) -> Path:
    from ..fileio import require_file

    return require_file(path, "vocabulary file")


@dataclasses.dataclass(frozen=True)
class ActivityOptions(Options):
    """Options of ``tsprobe activity-timescales`` (fields = flags)."""

    checkpoint: Path = option(help=CHECKPOINT_HELP, argument=True, check=checkpoint_file)
    corpus: str = option("ptb", CORPUS_HELP)
    vocab_file: Optional[Path] = option(None, "Vocabulary file (one token per line) for checkpoints without one.",
                                        check=_vocab_file)
    split: str = option("test", "Split to run over.", choices=SPLITS)
    max_tokens: int = option(0, "Use only the first N tokens of the split (0 = all).", ge=0)
    batch_size: int = option(1, "Parallel streams (each starts from a zero state and loses its own burn-in).", ge=1)
    max_lag: int = option(100, "Longest lag of the autocorrelation; the fits use lags 1..max_lag.", ge=5, le=100_000)
    burn_in: int = option(500, "Steps discarded at the start of every stream (the state forgets its zero start).",
                          ge=0)
    block: int = option(2048, "Steps per bootstrap block (>= max_lag; much longer than the slowest tau of interest).",
                        ge=5)
    n_boot: int = option(100, "Block-bootstrap replicates for the tau intervals (0: no intervals; cost grows "
                         "linearly).", ge=0, le=10_000)
    level: float = option(0.95, "Coverage of the tau intervals.", gt=0, lt=1)
    states: str = option("all", "Which states: all (hidden, and cell where the cell has one), hidden or cell.",
                         choices=("all", "hidden", "cell"))
    convention: str = option("paper", "paper: tau is the e-folding time, -1/log f for a linear unit with retention f; "
                             "chrono: the leaky-integrator 1/(1-f) of the same decay.", choices=("paper", "chrono"))
    compare: bool = option(True, "Also T_data (from the same pass) and T_bias, compared with tau per unit, where "
                           "every layer has a retention gate.")
    factor: float = option(2.0, "Units whose tau and gate timescale differ by more than this factor either way "
                           "count as disagreeing.", gt=1)
    seed: int = seed_option(0, "Seed of the bootstrap's block draws.")
    threads: Optional[int] = threads_option()
    device: str = device_option()
    out: Path = out_option("activity_out", "Output folder: activity_timescales.csv, activity_population.csv, "
                           "activity_acf.csv, comparisons, figures and run.json.")

    def check(self) -> None:
        if self.block < self.max_lag:
            raise OptionError(f"block must be at least max_lag ({self.max_lag}) steps (got {self.block})",
                              param="block")

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("hidden", "cell") if self.states == "all" else (self.states,)

    def check_stream(self, n_tokens: int) -> int:
        """Steps each stream keeps after its burn-in, given the token count; one line when too few."""
        per_stream = n_tokens // self.batch_size - 1
        kept = per_stream - self.burn_in
        if kept < 2 * self.max_lag:
            raise OptionError(f"each of {self.batch_size} stream(s) keeps {max(kept, 0)} steps of {n_tokens:,} tokens "
                              f"after a burn-in of {self.burn_in}: max_lag {self.max_lag} needs at least "
                              f"{2 * self.max_lag}; use more tokens, a shorter burn-in or max lag, or fewer streams",
                              param="max_lag")
        blocks = -(-kept // self.block) * self.batch_size
        if self.n_boot and blocks < 2:
            raise OptionError(f"the stream holds one bootstrap block of {self.block} steps ({kept} steps kept): "
                              "use a smaller block, more tokens, or n_boot 0 for no intervals", param="block")
        return kept


@dataclasses.dataclass
class ActivityResult(Result):
    """Tables: ``activity_timescales.csv`` (per unit and state), ``activity_population.csv`` (per
    layer and state, and all layers), ``activity_acf.csv`` (mean autocorrelation and fits per lag);
    with gate timescales: ``activity_vs_gates.csv`` (per unit) and ``activity_comparison.csv``."""

    command = "activity-timescales"

    @property
    def table(self):
        return self.tables["activity_timescales.csv"]

    @property
    def population(self):
        return self.tables["activity_population.csv"]

    @property
    def comparison(self):
        return self.tables.get("activity_comparison.csv")


UNIT_COLUMNS = ("layer", "unit", "state", "tau", "tau_lo", "tau_hi", "model", "tau_fast", "tau_slow", "weight",
                "aic_single", "aic_double", "amplitude", "tau_single", "double_support", "resolved", "r1", "mean", "sd",
                "n_boot_ok", "n_lags")


def run_activity(opts: ActivityOptions, *, progress: Any = True) -> ActivityResult:
    """Load the checkpoint and corpus, measure (:func:`.measure.activity_timescales`), compare with
    the gate timescales, and return the result (nothing written yet)."""
    from ..corpora import load_corpus
    from ..fileio import resolve_device, use_threads
    from ..models import load_language_model
    from .compare import compare_with_gates, comparison_summary
    from .measure import CONVENTION_NOTE, activity_timescales

    t0 = time.perf_counter()
    threads = use_threads(opts.threads)
    dev = resolve_device(opts.device)
    stack, model, corp = load_language_model(opts.checkpoint, load_corpus(opts.corpus, vocab_file=opts.vocab_file),
                                             device=dev)
    tokens = corp.tokens(opts.split)
    if opts.max_tokens:
        tokens = tokens[:opts.max_tokens]
    opts.check_stream(len(tokens))
    est = activity_timescales(model, tokens, max_lag=opts.max_lag, burn_in=opts.burn_in, block=opts.block,
                              batch_size=opts.batch_size, n_boot=opts.n_boot, level=opts.level, seed=opts.seed,
                              states=opts.state_names, convention=opts.convention, gates=opts.compare, device=dev,
                              progress=progress)
    table = est.table_[[c for c in UNIT_COLUMNS if c in est.table_]]
    tables: dict[str, Any] = {"activity_timescales.csv": table, "activity_population.csv": est.population_,
                              "activity_acf.csv": est.acf_}
    name = f"{Path(opts.checkpoint).name} on {corp.name} {opts.split}"
    figures = _figures(est, name)
    summary: dict[str, Any] = {
        "population": est.population_[["layer", "state", "tau", "tau_lo", "tau_hi", "model", "tau_fast", "tau_slow",
                                       "weight", "n_units", "n_constant"]].to_dict(orient="records"),
        "models": {f"{layer}/{state}": sub["model"].value_counts().to_dict()
                   for (layer, state), sub in table.groupby(["layer", "state"])},
        "unresolved": int((~table["resolved"].astype(bool)).sum()),
        "notes": [CONVENTION_NOTE, INTERVAL_NOTE],
    }
    if opts.compare and est.gates_ is not None:
        from ..gates import timescales_table

        gate_table = timescales_table(stack, est.gates_, opts.convention)
        merged = compare_with_gates(table, gate_table, factor=opts.factor)
        comp = comparison_summary(merged, factor=opts.factor)
        tables["activity_vs_gates.csv"] = merged
        tables["activity_comparison.csv"] = comp
        figures["activity_vs_gates.pdf"] = lambda: _plot_vs_gates(merged, comp, name)
        summary["comparison"] = comp.to_dict(orient="records")
    elif opts.compare:
        summary["notes"].append("no comparison with gate timescales: not every layer has a retention gate "
                                f"(cells: {', '.join(est.options['cell_types'])})")
    provenance = dict(est.options, seconds=time.perf_counter() - t0, device=str(dev), threads=threads,
                      n_tokens=int(len(tokens)), vocabulary=corp.vocab_info,
                      vocabulary_statement=corp.vocabulary_statement())
    return ActivityResult(options=opts, tables=tables, figures=figures, summary=summary, provenance=provenance,
                          inputs=[opts.checkpoint, opts.vocab_file], seed=opts.seed)


def _figures(est, name: str) -> dict[str, Any]:
    from ..plots.activity import plot_population_acf, plot_unit_taus

    return {"activity_acf.pdf": lambda: plot_population_acf(est.acf_, est.population_, title=name),
            "activity_tau.pdf": lambda: plot_unit_taus(est.table_, title=name)}


def _plot_vs_gates(merged, comp, name: str):
    from ..plots.activity import plot_activity_vs_gates

    return plot_activity_vs_gates(merged, comp, title=name)
