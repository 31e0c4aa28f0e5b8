"""``evaluate`` and ``compare``: language models on a corpus, perplexity per frequency bin and the
paired chunk bootstrap of two models (paper Table 1), on the analysis protocol. The numerics are
:mod:`timescale_probe.evaluation`'s; this module declares the options once and gathers the outputs."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

from ..activations import GATE_ACTIVATIONS
from ..analysis import Result, option
from ..analysis.options import device_option, out_option, seed_option, threads_option
from ..corpora.options import CorpusOptions
from ..corpora.text import SPLITS
from ..errors import OptionError
from .checkpoint import checkpoint_file

__all__ = ["EvaluateOptions", "EvaluateResult", "run_evaluate", "CompareOptions", "CompareResult", "run_compare",
           "MAX_RESAMPLES", "RunOptions", "StreamOptions", "load_model"]

#: Most paired chunk-bootstrap resamples: the resample counts are one (resamples + 1) x chunks matrix
#: of float64, so 100,000 resamples of PTB test's 824 chunks hold 660 MB.
MAX_RESAMPLES = 100_000


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunOptions(CorpusOptions):
    """Where a language model runs and how it walks the stream (shared by the LM analyses)."""

    split: str = option("test", "Split to run over: train, valid or test.", choices=SPLITS)
    batch_size: int = option(1, "Parallel streams (1 = the reference: the state carried over the whole stream; "
                             "more is faster, each stream starts cold).", ge=1)
    out: Path = out_option()
    device: str = device_option()
    threads: Optional[int] = threads_option()
    gate_activation: Optional[str] = option(
        None, "Gate activation the checkpoint was trained with, where the file does not record it (e.g. a Keras "
        "weights-only file): overrides what is read or assumed.", choices=GATE_ACTIVATIONS)

    def setup(self) -> dict[str, Any]:
        """Resolve the device and set torch's threads; returns both for the provenance."""
        from ..fileio import resolve_device, use_threads

        return {"device": resolve_device(self.device), "threads": use_threads(self.threads)}


def load_model(checkpoint: Path, corpus, device, gate_activation: str | None = None):
    """``(stack, model, corpus tokenised with the model's vocabulary)``; ``gate_activation``
    overrides the gate activation read from (or assumed for) the file."""
    from ..models import load_language_model

    stack = None
    if gate_activation is not None:
        from ..checkpoints import load_checkpoint

        stack = load_checkpoint(checkpoint, gate_activation=gate_activation)
    return load_language_model(checkpoint, corpus, device=device, stack=stack)


def empty_bin_notes(table, split: str, what: str = "perplexity") -> list[str]:
    """One note per bin without tokens (its row shows nan)."""
    return [f"note: bin {b} has no tokens in the {split} split: its {what} is nan (no data, not an error)"
            for b, n in zip(table["bin"], table["tokens"]) if n == 0]


@dataclasses.dataclass(frozen=True, kw_only=True)
class StreamOptions(RunOptions):
    """:class:`RunOptions` with the evaluation window (evaluate, compare, ablate)."""

    bptt: int = option(70, "Window length (steps); the hidden state is carried across windows.", ge=1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluateOptions(StreamOptions):
    checkpoint: Path = option(help="Checkpoint (any supported format with embedding and decoder).", argument=True,
                              check=checkpoint_file)


@dataclasses.dataclass
class EvaluateResult(Result):
    command = "evaluate"
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def table(self):
        return self.tables["perplexity.csv"]


def run_evaluate(opts: EvaluateOptions, *, progress: Any = None) -> EvaluateResult:
    """Perplexity overall and per word-frequency bin (by the target word's count), with token counts."""
    from ..corpora import bin_counting_statement
    from ..evaluation import evaluate_model
    from ..plots.lm import plot_ppl_by_bin

    env = opts.setup()
    _, model, c = load_model(opts.checkpoint, opts.load_corpus(), env["device"], opts.gate_activation)
    counting = bin_counting_statement(c, opts.bins_from, opts.edges, opts.split)
    table, _, _ = evaluate_model(model, c, split=opts.split, batch_size=opts.batch_size, bptt=opts.bptt,
                                 device=env["device"], bins_from=opts.bins_from, edges=opts.edges, progress=progress)
    table.insert(0, "model", opts.checkpoint.stem)
    title = f"{opts.checkpoint.name} on {c.name} {opts.split}"
    return EvaluateResult(
        options=opts, tables={"perplexity.csv": table},
        figures={"perplexity_by_bin.pdf": lambda: plot_ppl_by_bin(table, title=title)},
        inputs=[opts.checkpoint, opts.vocab_file],
        summary={"ppl": float(table["ppl"].iloc[-1]), "vocabulary": c.vocab_info,
                 "vocabulary_statement": c.vocabulary_statement(), "bin_counting": counting},
        provenance={"device": str(env["device"]), "threads": env["threads"]},
        notes=[c.vocabulary_statement(), counting["line"]] + empty_bin_notes(table, opts.split))


def _names(value: str) -> str:
    pair = [n.strip() for n in value.split(",")]
    if len(pair) != 2 or not all(pair) or pair[0] == pair[1]:
        raise OptionError(f"names needs two different names separated by a comma, got '{value}'")
    return ",".join(pair)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CompareOptions(StreamOptions):
    checkpoint_a: Path = option(help="First model (the baseline in Table 1).", argument=True, check=checkpoint_file)
    checkpoint_b: Path = option(help="Second model (the MTS model in Table 1).", argument=True, check=checkpoint_file)
    bootstrap: int = option(10000, "Paired bootstrap resamples (the original order is added; memory: resamples x "
                            "chunks x 8 bytes).", ge=1, le=MAX_RESAMPLES)
    chunk: int = option(100, "Tokens per bootstrap chunk (consecutive).", ge=1)
    level: float = option(0.999, "Interval level (0.999 = the reference's ranks 4 and 9995 of 10,001).", gt=0, lt=1)
    seed: int = seed_option(0, "Bootstrap seed.")
    names: str = option("baseline,mts", "Column names of the two models, comma-separated.", check=_names)

    @property
    def name_pair(self) -> tuple[str, str]:
        a, b = self.names.split(",")
        return a, b


@dataclasses.dataclass
class CompareResult(Result):
    command = "compare"
    notes: list[str] = dataclasses.field(default_factory=list)
    markdown: str = ""

    @property
    def table(self):
        return self.tables["comparison.csv"]


def run_compare(opts: CompareOptions, *, progress: Any = None) -> CompareResult:
    """Table 1: perplexity per frequency bin of two models and the paired chunk bootstrap of their
    difference (a - b), with an order-statistic interval."""
    from ..corpora import bin_counting_statement
    from ..evaluation import comparison_table, markdown_table, paired_bootstrap, perplexity_by_bin, token_nll
    from ..plots.lm import plot_comparison

    env = opts.setup()
    dev = env["device"]
    names = opts.name_pair
    c0 = opts.load_corpus()
    _, model_a, ca = load_model(opts.checkpoint_a, c0, dev, opts.gate_activation)
    _, model_b, cb = load_model(opts.checkpoint_b, c0, dev, opts.gate_activation)
    if ca.vocab != cb.vocab:
        raise OptionError("the two checkpoints use different vocabularies: a paired comparison needs the same token ids")
    counting = bin_counting_statement(ca, opts.bins_from, opts.edges, opts.split)
    bin_of, labels = ca.bins(opts.bins_from, opts.edges)
    stream = ca.tokens(opts.split)
    nll_a, targets = token_nll(model_a, stream, batch_size=opts.batch_size, bptt=opts.bptt, device=dev,
                               progress=progress, description=f"{names[0]} on {opts.split}")
    nll_b, _ = token_nll(model_b, stream, batch_size=opts.batch_size, bptt=opts.bptt, device=dev, progress=progress,
                         description=f"{names[1]} on {opts.split}")
    pa, pb = perplexity_by_bin(nll_a, targets, bin_of, labels), perplexity_by_bin(nll_b, targets, bin_of, labels)
    boot = paired_bootstrap(nll_a, nll_b, targets, bin_of, labels, chunk=opts.chunk, n_resamples=opts.bootstrap,
                            level=opts.level, seed=opts.seed)
    table = comparison_table(pa, pb, boot, names)
    shown = markdown_table(table.drop(columns=["level", "n_resamples", "seed"]))
    md = (f"Test perplexity per frequency bin ({opts.split}, counts over {opts.bins_from}); diff = {names[0]} - "
          f"{names[1]}, mean over {opts.bootstrap:,} paired resamples of {opts.chunk}-token chunks + the original "
          f"order, {100 * opts.level:.10g}% order-statistic interval (level {opts.level:g}), seed {opts.seed}.\n\n")
    title = f"{opts.checkpoint_a.name} - {opts.checkpoint_b.name} on {ca.name} {opts.split}"
    notes = [f"{who}: {cx.vocabulary_statement()}" for who, cx in zip(names, (ca, cb))] + [counting["line"]]
    return CompareResult(
        options=opts, tables={"comparison.csv": table, "bootstrap.csv": boot, "comparison.md": md + shown},
        figures={"comparison.pdf": lambda: plot_comparison(table, names, title=title)},
        inputs=[opts.checkpoint_a, opts.checkpoint_b, opts.vocab_file], seed=opts.seed,
        summary={"table": table.to_dict(orient="records"), "vocabulary": {"a": ca.vocab_info, "b": cb.vocab_info},
                 "vocabulary_statement": {"a": ca.vocabulary_statement(), "b": cb.vocabulary_statement()},
                 "bin_counting": counting},
        provenance={"device": str(dev), "threads": env["threads"]},
        notes=notes, markdown=shown)
