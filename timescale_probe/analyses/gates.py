"""``estimate-timescales``: every unit's timescale from its mean forget gate on real text (T_data),
beside T_bias, on the analysis protocol (the gate statistics are :mod:`timescale_probe.gates`')."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..analysis import Result, option
from ..errors import OptionError
from ..timescale_math import CONVENTIONS
from .checkpoint import checkpoint_file
from .lm import RunOptions, load_model

__all__ = ["EstimateOptions", "EstimateResult", "run_estimate", "corpus_tokens", "timescale_summary_rows"]


def corpus_tokens(opts, checkpoint: Path, device):
    """``(stack, model, corpus, tokens)``: the model, the corpus re-tokenised with its vocabulary,
    and the token stream of ``opts.split`` (the first ``opts.max_tokens`` when > 0)."""
    stack, model, corp = load_model(checkpoint, opts.load_corpus(), device, opts.gate_activation)
    tokens = corp.tokens(opts.split)
    if opts.max_tokens:
        tokens = tokens[:opts.max_tokens]
    return stack, model, corp, tokens


@dataclasses.dataclass(frozen=True, kw_only=True)
class EstimateOptions(RunOptions):
    checkpoint: Path = option(help="Checkpoint of an LSTM language model (any supported format).", argument=True,
                              check=checkpoint_file)
    window: int = option(70, "Steps per window: mean gate per window, averaged over windows (reference: 70).", ge=1)
    convention: str = option("paper", "paper: T=-1/log(f); chrono: T=1/(1-f).", choices=CONVENTIONS)
    level: float = option(0.95, "Coverage of the T_data_lo/T_data_hi interval.", gt=0, lt=1)
    all_gates: bool = option(False, "Also mean input/output gates and their histograms (about 4x the gate work).")
    max_tokens: int = option(0, "Use only the first N tokens of the split (0 = all).", ge=0)

    def check(self) -> None:
        if 0 < self.max_tokens < self.window + 1:
            raise OptionError(f"max_tokens {self.max_tokens} is less than one window ({self.window + 1} tokens): use "
                              "more tokens, or 0 for the whole split", param="max_tokens")


@dataclasses.dataclass
class EstimateResult(Result):
    command = "estimate-timescales"
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def table(self):
        return self.tables["timescales.csv"]


def timescale_summary_rows(table) -> list[dict]:
    """``timescales.summarize_timescales`` of T_data over all units and per layer, with the median T_bias."""
    import numpy as np

    from ..timescales import summarize_timescales

    rows = []
    for layer, sub in [("all", table)] + list(table.groupby("layer")):
        rows.append(dict(layer=layer, **summarize_timescales(sub["T_data"]),
                         median_T_bias=float(np.median(sub["T_bias"]))))
    return rows


def run_estimate(opts: EstimateOptions, *, progress: Any = None) -> EstimateResult:
    """T_data of every unit (the reference procedure at batch 1, window 70) joined with T_bias."""
    import time

    from ..gates import estimate_timescales, timescales_table
    from ..plots.ablation import plot_data_vs_bias, plot_estimated_vs_assigned, plot_sorted_timescales

    t0 = time.perf_counter()
    env = opts.setup()
    stack, model, corp, tokens = corpus_tokens(opts, opts.checkpoint, env["device"])
    stack.require_retention_gate("estimate-timescales")  # a plain RNN: one CheckpointError pointing to activity-timescales
    per_stream = len(tokens) // opts.batch_size
    if per_stream < opts.window + 1:
        raise OptionError(f"window {opts.window} is longer than the {per_stream} steps each of {opts.batch_size} parallel "
                          f"streams gets from {len(tokens):,} tokens: T_data needs one whole window per stream; use a "
                          "smaller window or batch size, or more tokens", param="window")
    est = estimate_timescales(model, tokens, batch_size=opts.batch_size, window=opts.window, device=env["device"],
                              convention=opts.convention, level=opts.level, all_gates=opts.all_gates,
                              progress=progress)
    table = timescales_table(stack, est, opts.convention)
    name = f"{opts.checkpoint.name} on {corp.name} {opts.split}"
    figures = {"timescales_data_vs_bias.pdf": lambda: plot_data_vs_bias(table, title=name),
               "timescales_sorted.pdf": lambda: plot_sorted_timescales(table, title=name)}
    if "T_assigned" in table:
        figures["timescales_estimated_vs_assigned.pdf"] = lambda: plot_estimated_vs_assigned(table, title=name)
    return EstimateResult(
        options=opts, tables={"timescales.csv": table, "gate_histograms.csv": est.histograms_},
        figures=figures, inputs=[opts.checkpoint, opts.vocab_file],
        summary={"summary": timescale_summary_rows(table), "n_tokens": int(len(tokens)), "corpus_notes": corp.notes,
                 "vocabulary": corp.vocab_info, "vocabulary_statement": corp.vocabulary_statement(),
                 "figures": list(figures)},
        provenance={"device": str(env["device"]), "threads": env["threads"], "seconds": time.perf_counter() - t0},
        notes=[corp.vocabulary_statement()])
