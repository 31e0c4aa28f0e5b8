"""``tsprobe corpus-info | train``: a corpus described, and a language model trained on it (thin
commands over :mod:`timescale_probe.analyses.corpus` and :mod:`timescale_probe.training`)."""
from __future__ import annotations

from ..analyses.corpus import CorpusInfoOptions
from ..analysis.cli import options_command
from ..training.command import TrainOptions
from . import app
from ._common import console, example


@options_command(app, "corpus-info", CorpusInfoOptions, epilog=example(
    "tsprobe corpus-info ptb",
    "tsprobe corpus-info path/to/wikitext-2 --bins-from all --out out/",
))
def corpus_info_cmd(opts: CorpusInfoOptions) -> None:
    """Splits (lines, tokens incl. <eos>, out-of-vocabulary), vocabulary size and frequency-bin sizes."""
    from rich import box
    from rich.table import Table

    from ..analyses.corpus import run_corpus_info

    result = run_corpus_info(opts)
    if opts.out is not None:
        result.save(opts.out)
    info, bins_from = result.info, opts.bins_from
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
