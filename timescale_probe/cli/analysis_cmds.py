"""``tsprobe estimate-timescales`` and ``tsprobe ablate``: timescales from data and routing by
timescale (thin wrappers over :mod:`timescale_probe.gates` and :mod:`timescale_probe.ablation`)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from ..errors import OptionError
from ..fileio import OutputStage
from . import app
from ._common import console, device_option, example, out_option


def _check_load_options(split: str, max_tokens: int, vocab_file: Optional[Path], *, window: int,
                        what: str) -> None:
    """Options of :func:`_load`, before any work: the split, the token budget (at least one
    ``window`` of ``what``) and the vocabulary file."""
    from ..evaluation import check_eval_options
    from ..fileio import require_file
    from ..validation import check_int

    check_eval_options(split=split)
    check_int(max_tokens, "max_tokens", minimum=0)
    if 0 < max_tokens < window + 1:
        raise OptionError(f"max_tokens {max_tokens} is less than one {what} ({window + 1} tokens): use more tokens, "
                          "or 0 for the whole split", param="max_tokens")
    if vocab_file is not None:
        require_file(vocab_file, "vocabulary file")


def _load(checkpoint: Path, corpus: str, vocab_file: Optional[Path], split: str, max_tokens: int, device):
    """Model (eval mode, on ``device``), corpus re-tokenised with the model's vocabulary, and the
    token stream of ``split`` (the first ``max_tokens`` tokens when > 0)."""
    from ..corpora import load_corpus
    from ..models import load_language_model

    stack, model, corp = load_language_model(checkpoint, load_corpus(corpus, vocab_file=vocab_file), device=device)
    tokens = corp.tokens(split)
    if max_tokens:
        tokens = tokens[:max_tokens]
    return stack, model, corp, tokens


def _inputs(*paths) -> list:
    return [p for p in paths if p is not None and Path(p).is_file()]


@app.command("estimate-timescales", epilog=example(
    "tsprobe estimate-timescales ckpt.pt --corpus ptb --out out/",
    "tsprobe estimate-timescales ckpt.pt --corpus data/wt2 --batch-size 16 --window 70 --device cuda",
))
def estimate_timescales_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint of an LSTM language model (any supported format)."),
    corpus: str = typer.Option("ptb", "--corpus", help="ptb, a corpus directory (train/valid/test.txt) or a text file."),
    vocab_file: Optional[Path] = typer.Option(None, "--vocab-file", help="Vocabulary file (one token per line) for checkpoints without one."),
    split: str = typer.Option("test", "--split", help="Split to run over: train, valid or test."),
    batch_size: int = typer.Option(1, "--batch-size", help="Parallel streams (1 = the reference procedure; more is faster, each stream starts cold)."),
    window: int = typer.Option(70, "--window", help="Steps per window: mean gate per window, averaged over windows (reference: 70)."),
    convention: str = typer.Option("paper", "--convention", help="paper: T=-1/log(f); chrono: T=1/(1-f)."),
    level: float = typer.Option(0.95, "--level", help="Coverage of the T_data_lo/T_data_hi interval."),
    all_gates: bool = typer.Option(False, "--all-gates", help="Also mean input/output gates and their histograms (about 4x the gate work)."),
    max_tokens: int = typer.Option(0, "--max-tokens", help="Use only the first N tokens of the split (0 = all)."),
    out: Path = out_option(),
    device: str = device_option(),
) -> None:
    """Timescale of every unit from its mean forget gate on real text (T_data), next to T_bias."""
    from ..fileio import resolve_device, save_figure, write_run_json, write_table
    from ..gates import check_estimate_options, estimate_timescales, timescales_table
    from ..plots.ablation import plot_data_vs_bias, plot_estimated_vs_assigned, plot_sorted_timescales

    check_estimate_options(batch_size=batch_size, window=window, convention=convention, level=level)
    _check_load_options(split, max_tokens, vocab_file, window=window, what="window")
    stage = OutputStage(out)
    dev = resolve_device(device)
    t0 = time.perf_counter()
    stack, model, corp, tokens = _load(checkpoint, corpus, vocab_file, split, max_tokens, dev)
    per_stream = len(tokens) // batch_size
    if per_stream < window + 1:
        raise OptionError(f"window {window} is longer than the {per_stream} steps each of {batch_size} parallel "
                          f"streams gets from {len(tokens):,} tokens: T_data needs one whole window per stream; use a "
                          "smaller window or batch size, or more tokens", param="window")
    est = estimate_timescales(model, tokens, batch_size=batch_size, window=window, device=dev,
                              convention=convention, level=level, all_gates=all_gates, progress=True)
    table = timescales_table(stack, est, convention)
    out_dir = stage.path
    name = f"{checkpoint.name} on {corp.name} {split}"
    write_table(table, out_dir / "timescales.csv")
    write_table(est.histograms_, out_dir / "gate_histograms.csv")
    save_figure(plot_data_vs_bias(table, title=name), out_dir / "timescales_data_vs_bias.pdf")
    save_figure(plot_sorted_timescales(table, title=name), out_dir / "timescales_sorted.pdf")
    figures = ["timescales_data_vs_bias.pdf", "timescales_sorted.pdf"]
    if "T_assigned" in table:
        save_figure(plot_estimated_vs_assigned(table, title=name), out_dir / "timescales_estimated_vs_assigned.pdf")
        figures.append("timescales_estimated_vs_assigned.pdf")
    summary = _timescale_summary(table)
    write_run_json(out_dir, "estimate-timescales", dict(
        checkpoint=checkpoint, corpus=corpus, vocab_file=vocab_file, split=split, batch_size=batch_size,
        window=window, convention=convention, level=level, all_gates=all_gates, max_tokens=max_tokens, device=str(dev),
        n_tokens=int(len(tokens)), corpus_notes=corp.notes), seed=None,
        inputs=_inputs(checkpoint, vocab_file), results=dict(summary=summary, seconds=time.perf_counter() - t0,
                                                            figures=figures, vocabulary=corp.vocab_info,
                                                            vocabulary_statement=corp.vocabulary_statement()))
    stage.commit()
    console.print(corp.vocabulary_statement(), soft_wrap=True)
    from rich.table import Table

    tab = Table(title=f"T_data ({convention} convention, {split} split, {len(tokens):,} tokens, batch {batch_size}, window {window})")
    for col in ("layer", "units", "median T_data", "max T_data", "share > 10", "median T_bias"):
        tab.add_column(col, justify="right")
    for s in summary:
        tab.add_row(str(s["layer"]), str(s["units"]), f"{s['median']:.3g}", f"{s['max']:.4g}",
                    f"{s['share_gt_10']:.1%}", f"{s['median_T_bias']:.3g}")
    console.print(tab)
    console.print(f"wrote {out / 'timescales.csv'} and {len(figures)} figures in {time.perf_counter() - t0:.1f} s")


def _timescale_summary(table) -> list[dict]:
    """:func:`timescales.summarize_timescales` of T_data over all units and per layer, with the median T_bias."""
    from ..timescales import summarize_timescales

    rows = []
    for layer, sub in [("all", table)] + list(table.groupby("layer")):
        rows.append(dict(layer=layer, **summarize_timescales(sub["T_data"]),
                         median_T_bias=float(np.median(sub["T_bias"]))))
    return rows


def _layer_timescales(by: str, timescales_csv: Optional[Path], layer: int, stack, model, tokens, dev, sizes):
    if by == "bias":
        tab = stack.timescales_table()
        return tab.loc[tab.layer == layer, "T_bias"].to_numpy(), "T_bias from the checkpoint"
    if timescales_csv is not None:
        from ..distributions import layer_timescales

        return layer_timescales(timescales_csv, layer, sizes[layer - 1], "T_data"), f"T_data from {timescales_csv}"
    from ..gates import estimate_timescales

    est = estimate_timescales(model, tokens, device=dev, progress=True)
    t = est.table_
    return t.loc[t.layer == layer, "T_data"].to_numpy(), "T_data estimated on the same tokens (batch 1, window 70)"


@app.command("ablate", epilog=example(
    "tsprobe ablate ckpt.pt --corpus ptb --layer 2 --groups chunks:50 --out out/",
    "tsprobe ablate ckpt.pt --corpus ptb --groups quantiles:8 --mode silence --controls 20 --device cuda",
    "tsprobe ablate ckpt.pt --groups units:units.txt --by data --timescales out/timescales.csv",
))
def ablate_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint of an LSTM language model."),
    corpus: str = typer.Option("ptb", "--corpus", help="ptb, a corpus directory or a text file."),
    vocab_file: Optional[Path] = typer.Option(None, "--vocab-file", help="Vocabulary file for checkpoints without one."),
    split: str = typer.Option("test", "--split", help="Split to evaluate: train, valid or test."),
    layer: int = typer.Option(2, "--layer", help="Layer whose units are ablated (from 1)."),
    groups: str = typer.Option("chunks:50", "--groups", help="chunks:N (N units each), quantiles:K, edges:a,b,... (T in steps), units:1,5,9 or units:FILE."),
    by: str = typer.Option("bias", "--by", help="Timescale that orders the units: bias (T_bias) or data (T_data)."),
    timescales: Optional[Path] = typer.Option(None, "--timescales", help="timescales.csv from estimate-timescales (for --by data, saves a pass)."),
    mode: str = typer.Option("output", "--mode", help="output: zero outputs into the next layer (paper); silence: h=0 everywhere incl. recurrence."),
    controls: int = typer.Option(0, "--controls", help="Random control groups of the same size (null band)."),
    control_size: Optional[int] = typer.Option(None, "--control-size", help="Units per control group (default: the most common group size)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the control groups and the bootstrap."),
    bptt: int = typer.Option(70, "--bptt", help="Evaluation window (steps); the hidden state is carried."),
    group_batch: int = typer.Option(8, "--group-batch", help="Groups evaluated per batched pass (output mode)."),
    bootstrap: int = typer.Option(10000, "--bootstrap", help="Bootstrap resamples of 100-token chunks."),
    chunk: int = typer.Option(100, "--chunk", help="Tokens per bootstrap chunk."),
    level: float = typer.Option(0.999, "--level", help="Coverage of the bootstrap interval."),
    bins_from: str = typer.Option("train", "--bins-from", help="Split whose counts define frequency bins (train or all = the reference's)."),
    bin_edges: Optional[str] = typer.Option(None, "--bin-edges", help="Ascending count edges, default 100,1K,10K."),
    pos_tags: Optional[Path] = typer.Option(None, "--pos-tags", help="Brown tagged/ directory: also route by function vs content words."),
    top: int = typer.Option(3, "--top", help="Groups listed per bin in the routing summary."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="reference-results dir: draw the authors' Fig. 3 numbers too."),
    max_tokens: int = typer.Option(0, "--max-tokens", help="Use only the first N tokens of the split (0 = all)."),
    out: Path = out_option(),
    device: str = device_option(),
) -> None:
    """Ablate groups of units ordered by timescale; perplexity ratio per word-frequency bin (paper Fig. 3)."""
    from ..ablation import check_ablation_options, load_reference_ablation, run_ablation_study
    from ..corpora import check_bins_from, parse_bin_edges, pos_classes_for_vocab, pos_lexicon, read_brown_tagged
    from ..errors import InputError
    from ..fileio import require_file, resolve_device, save_figure, write_run_json, write_table
    from ..plots.ablation import plot_routing
    from ..validation import check_choice

    check_ablation_options(groups=groups, layer=layer, mode=mode, controls=controls, control_size=control_size,
                           bptt=bptt, group_batch=group_batch, chunk=chunk, n_resamples=bootstrap, level=level,
                           top=top)
    check_choice(by, "by", ("bias", "data"))
    _check_load_options(split, max_tokens, vocab_file, window=2 * chunk, what="pair of bootstrap chunks")
    check_bins_from(bins_from)
    edges = parse_bin_edges(bin_edges)
    if timescales is not None:
        require_file(timescales, "timescales table")
    if pos_tags is not None and not Path(pos_tags).is_dir():
        raise InputError(f"Brown tagged directory not found: {pos_tags}")
    stage = OutputStage(out)
    dev = resolve_device(device)
    ref = load_reference_ablation(reference) if reference is not None else None
    t0 = time.perf_counter()
    stack, model, corp, tokens = _load(checkpoint, corpus, vocab_file, split, max_tokens, dev)
    sizes = stack.layer_sizes
    if not 1 <= layer <= len(sizes):
        raise OptionError(f"layer {layer} does not exist: the model has layers 1-{len(sizes)}", param="layer")
    T, T_source = _layer_timescales(by, timescales, layer, stack, model, tokens, dev, sizes)
    bin_of, labels = corp.bins(bins_from, edges)
    from ..corpora import bin_counting_statement

    counting = bin_counting_statement(corp, bins_from, edges, split)
    binnings = [("frequency", bin_of, labels)]
    pos_stats = None
    if pos_tags is not None:
        lex = pos_lexicon(read_brown_tagged(pos_tags))
        cls, pos_labels, pos_stats = pos_classes_for_vocab(corp.vocab, lex)
        binnings.append(("pos", cls, pos_labels))
    study = run_ablation_study(model, tokens, T, layer=layer, groups=groups, mode=mode, binnings=binnings,
                               controls=controls, control_size=control_size, seed=seed, bptt=bptt,
                               group_batch=group_batch, chunk=chunk, n_resamples=bootstrap, level=level,
                               top=top, device=dev, progress=True)
    out_dir = stage.path
    write_table(study.groups_, out_dir / "ablation_groups.csv")
    write_table(study.ratios_, out_dir / "ablation_ratios.csv")
    write_table(study.controls_, out_dir / "ablation_controls.csv")
    write_table(study.routing_, out_dir / "routing.csv")
    title = f"{checkpoint.name}: layer {layer}, {groups} by {by}, mode {mode}"
    save_figure(plot_routing(study.ratios_, study.groups_, study.controls_, ref, title=title), out_dir / "ablation_fig3.pdf")
    figures = ["ablation_fig3.pdf"]
    if pos_tags is not None:
        save_figure(plot_routing(study.ratios_, study.groups_, study.controls_, binning="pos", title=title),
                    out_dir / "ablation_pos.pdf")
        figures.append("ablation_pos.pdf")
    seconds = time.perf_counter() - t0
    write_run_json(out_dir, "ablate", dict(
        checkpoint=checkpoint, corpus=corpus, vocab_file=vocab_file, split=split, layer=layer, groups=groups,
        by=by, timescales_source=T_source, mode=mode, controls=controls, control_size=study.options["control_size"],
        bptt=bptt, group_batch=group_batch, bootstrap=bootstrap, chunk=chunk, level=level, bins_from=bins_from,
        bin_edges=list(edges), pos_tags=pos_tags, pos_classes=pos_stats, top=top, max_tokens=max_tokens,
        device=str(dev), n_tokens=int(len(tokens)), corpus_notes=corp.notes), seed=seed,
        inputs=_inputs(checkpoint, vocab_file, timescales),
        results=dict(ppl_intact=study.options["ppl_intact"], seconds=seconds, figures=figures,
                     vocabulary=corp.vocab_info, vocabulary_statement=corp.vocabulary_statement(),
                     bin_counting=counting))
    stage.commit()
    console.print(corp.vocabulary_statement(), soft_wrap=True)
    console.print(counting["line"], soft_wrap=True)
    _print_routing(study, title, seconds)


def _fmt_T(v: float) -> str:
    return "inf" if not np.isfinite(v) else (f"{v:.3g}" if v >= 0.01 else f"{v:.0e}")


def routing_tables(study, title: str) -> list:
    """One rich table per binning: the ``top`` groups that hurt most in every bin, with the ratio
    and its interval in separate columns (4 decimals, never cut: every column has ``no_wrap`` and
    the numbers fit 80 columns)."""
    from rich import box
    from rich.table import Table

    r = study.routing_
    level = study.options.get("level", 0.999)
    tables = []
    for binning, sub in r.groupby("binning", sort=False):
        sub = sub[sub.groupby("bin", sort=False)["ratio"].transform(lambda v: v.notna().any())]  # empty bins: a note
        tab = Table(title=f"{binning}: the groups that hurt most per bin", caption=title, box=box.SIMPLE_HEAD,
                    pad_edge=False, title_justify="left", caption_justify="left")
        for col in ("bin", "#", "group", "T mean", "T range", "ratio", f"{100 * level:.10g}% lo", "hi", "> ctl"):
            tab.add_column(col, justify="left" if col in ("bin", "group") else "right", no_wrap=True)
        for row in sub.itertuples():
            ac = "" if isinstance(row.above_controls, float) else ("yes" if row.above_controls else "no")
            tab.add_row(str(row.bin) if row.rank == 1 else "", str(row.rank), str(row.group), _fmt_T(row.T_mean),
                        f"{_fmt_T(row.T_min)}-{_fmt_T(row.T_max)}", f"{row.ratio:.4f}", f"{row.ratio_lo:.4f}",
                        f"{row.ratio_hi:.4f}", ac, end_section=False)
        tables.append(tab)
    return tables


def _print_routing(study, title: str, seconds: float) -> None:
    for tab in routing_tables(study, title):
        console.print(tab)
    ratios = study.ratios_
    empty = ratios[(ratios["kind"] == "group") & (ratios["n_tokens"] == 0)][["binning", "bin"]].drop_duplicates()
    for row in empty.itertuples():
        console.print(f"note: {row.binning} bin {row.bin} has no target tokens in this stream: its ratios are nan "
                      "(no data, not an error)", soft_wrap=True)
    console.print(f"intact perplexity {study.options['ppl_intact']:.2f}; {len(study.groups_)} groups "
                  f"({(study.groups_['kind'] == 'control').sum()} controls) in {seconds:.1f} s")
