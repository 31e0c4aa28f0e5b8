"""``ablate``: ablate groups of units ordered by timescale and tabulate the perplexity ratio per
word-frequency bin (paper Fig. 3), on the analysis protocol (the ablation semantics and statistics
are :mod:`timescale_probe.ablation`'s)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

from ..analysis import Result, option
from ..analysis.options import seed_option
from ..errors import InputError, OptionError
from .checkpoint import checkpoint_file
from .gates import corpus_tokens
from .lm import MAX_RESAMPLES, StreamOptions

__all__ = ["AblateOptions", "AblateResult", "run_ablate"]


def _groups(spec: str) -> str:
    from ..ablation import check_group_spec

    check_group_spec(spec)
    return spec


def _mode(value: str) -> str:
    from ..ablation.passes import MODES

    if value not in MODES:
        raise OptionError(f"unknown mode '{value}': use {' or '.join(MODES)}")
    return value


def _timescales_file(path: Path) -> Path:
    from ..fileio import require_file

    return require_file(path, "timescales table")


def _directory(path: Path) -> Path:
    if not path.is_dir():
        raise InputError(f"Brown tagged directory not found: {path}")
    return path


@dataclasses.dataclass(frozen=True, kw_only=True)
class AblateOptions(StreamOptions):
    checkpoint: Path = option(help="Checkpoint of an LSTM language model.", argument=True, check=checkpoint_file)
    layer: int = option(2, "Layer whose units are ablated (from 1).", ge=1)
    groups: str = option("chunks:50", "chunks:N (N units each), quantiles:K, edges:a,b,... (T in steps, ascending), "
                         "units:1,5,9 or units:FILE.", check=_groups)
    by: str = option("bias", "Timescale that orders the units: bias (T_bias) or data (T_data).",
                     choices=("bias", "data"))
    timescales: Optional[Path] = option(None, "timescales.csv from estimate-timescales (for --by data, saves a pass).",
                                        check=_timescales_file)
    mode: str = option("output", "output: zero outputs into the next layer (paper); silence: h=0 everywhere incl. "
                       "recurrence.", check=_mode)
    controls: int = option(0, "Random control groups of the same size (null band).", ge=0, le=10_000)
    control_size: Optional[int] = option(None, "Units per control group (default: the most common group size).", ge=1)
    seed: int = seed_option(0, "Seed of the control groups and the bootstrap.")
    group_batch: int = option(8, "Groups evaluated per batched pass (output mode).", ge=1)
    bootstrap: int = option(10000, "Bootstrap resamples of the chunks (memory: resamples x chunks x 8 bytes).", ge=1,
                            le=MAX_RESAMPLES)
    chunk: int = option(100, "Tokens per bootstrap chunk.", ge=1)
    level: float = option(0.999, "Coverage of the bootstrap interval.", gt=0, lt=1)
    pos_tags: Optional[Path] = option(None, "Brown tagged/ directory: also route by function vs content words.",
                                      check=_directory)
    top: int = option(3, "Groups listed per bin in the routing summary.", ge=1)
    reference: Optional[Path] = option(None, "reference-results dir: draw the authors' Fig. 3 numbers too.")
    max_tokens: int = option(0, "Use only the first N tokens of the split (0 = all).", ge=0)
    resume_dir: Optional[Path] = option(None, "Keep each finished batched pass here; a stopped run started again "
                                              "with the same options resumes after them.")

    def check(self) -> None:
        window = 2 * self.chunk
        if 0 < self.max_tokens < window + 1:
            raise OptionError(f"max_tokens {self.max_tokens} is less than one pair of bootstrap chunks ({window + 1} "
                              "tokens): use more tokens, or 0 for the whole split", param="max_tokens")


@dataclasses.dataclass
class AblateResult(Result):
    command = "ablate"
    study: Any = None
    title: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)


def _layer_timescales(opts: AblateOptions, stack, model, tokens, device, sizes):
    if opts.by == "bias":
        tab = stack.timescales_table()
        return tab.loc[tab.layer == opts.layer, "T_bias"].to_numpy(), "T_bias from the checkpoint"
    if opts.timescales is not None:
        from ..distributions import layer_timescales

        return (layer_timescales(opts.timescales, opts.layer, sizes[opts.layer - 1], "T_data"),
                f"T_data from {opts.timescales}")
    from ..gates import estimate_timescales

    est = estimate_timescales(model, tokens, device=device, progress=True)
    t = est.table_
    return t.loc[t.layer == opts.layer, "T_data"].to_numpy(), "T_data estimated on the same tokens (batch 1, window 70)"


def run_ablate(opts: AblateOptions, *, progress: Any = None) -> AblateResult:
    """Ablate the groups of ``opts.layer`` (and random controls) and compare per-bin perplexity
    with the intact model (paired chunk bootstrap; :func:`ablation.run_ablation_study`)."""
    import time

    from ..ablation import load_reference_ablation, run_ablation_study
    from ..corpora import bin_counting_statement, pos_classes_for_vocab, pos_lexicon, read_brown_tagged
    from ..plots.ablation import plot_routing

    t0 = time.perf_counter()
    env = opts.setup()
    ref = load_reference_ablation(opts.reference) if opts.reference is not None else None
    stack, model, corp, tokens = corpus_tokens(opts, opts.checkpoint, env["device"])
    sizes = stack.layer_sizes
    if not 1 <= opts.layer <= len(sizes):
        raise OptionError(f"layer {opts.layer} does not exist: the model has layers 1-{len(sizes)}", param="layer")
    T, T_source = _layer_timescales(opts, stack, model, tokens, env["device"], sizes)
    bin_of, labels = corp.bins(opts.bins_from, opts.edges)
    counting = bin_counting_statement(corp, opts.bins_from, opts.edges, opts.split)
    binnings = [("frequency", bin_of, labels)]
    pos_stats = None
    if opts.pos_tags is not None:
        cls, pos_labels, pos_stats = pos_classes_for_vocab(corp.vocab, pos_lexicon(read_brown_tagged(opts.pos_tags)))
        binnings.append(("pos", cls, pos_labels))
    study = run_ablation_study(model, tokens, T, layer=opts.layer, groups=opts.groups, mode=opts.mode,
                               binnings=binnings, controls=opts.controls, control_size=opts.control_size,
                               seed=opts.seed, bptt=opts.bptt, group_batch=opts.group_batch, chunk=opts.chunk,
                               n_resamples=opts.bootstrap, level=opts.level, top=opts.top, device=env["device"],
                               progress=progress, resume_dir=opts.resume_dir)
    title = f"{opts.checkpoint.name}: layer {opts.layer}, {opts.groups} by {opts.by}, mode {opts.mode}"
    figures = {"ablation_fig3.pdf": lambda: plot_routing(study.ratios_, study.groups_, study.controls_, ref,
                                                         title=title)}
    if opts.pos_tags is not None:
        figures["ablation_pos.pdf"] = lambda: plot_routing(study.ratios_, study.groups_, study.controls_,
                                                           binning="pos", title=title)
    return AblateResult(
        options=opts, tables={"ablation_groups.csv": study.groups_, "ablation_ratios.csv": study.ratios_,
                              "ablation_controls.csv": study.controls_, "routing.csv": study.routing_},
        figures=figures, inputs=[opts.checkpoint, opts.vocab_file, opts.timescales], seed=opts.seed,
        summary={"ppl_intact": study.options["ppl_intact"], "timescales_source": T_source,
                 "control_size": study.options["control_size"], "bin_edges": list(opts.edges),
                 "pos_classes": pos_stats, "n_tokens": int(len(tokens)), "corpus_notes": corp.notes,
                 "vocabulary": corp.vocab_info, "vocabulary_statement": corp.vocabulary_statement(),
                 "bin_counting": counting, "figures": list(figures)},
        provenance={"device": str(env["device"]), "threads": env["threads"], "seconds": time.perf_counter() - t0},
        study=study, title=title, notes=[corp.vocabulary_statement(), counting["line"]])
