"""``tsprobe evaluate | compare``: perplexity per frequency bin of a language model, and two models
compared with the paired chunk bootstrap (thin commands over :mod:`timescale_probe.analyses.lm`)."""
from __future__ import annotations

from ..analyses.lm import CompareOptions, EvaluateOptions
from ..analysis import options_command
from . import app
from ._common import console, example


@options_command(app, "evaluate", EvaluateOptions, epilog=example(
    "tsprobe evaluate checkpoints/ptb-mts-small.pt --corpus ptb --out out/",
    "tsprobe evaluate awd_ptb.pt --corpus data/penn --bins-from all --batch-size 10 --out out/",
))
def evaluate_cmd(opts: EvaluateOptions) -> None:
    """Perplexity overall and per word-frequency bin (by the target word's count), with token counts."""
    from ..analyses.lm import run_evaluate

    result = run_evaluate(opts, progress=True)
    result.save(opts.out)
    notes = result.notes
    for line in notes[:2]:  # the vocabulary and the bin counting
        console.print(line, soft_wrap=True)
    console.print(result.table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for line in notes[2:]:  # empty bins
        console.print(line, soft_wrap=True)
    console.print(f"wrote {opts.out / 'perplexity.csv'}")


@options_command(app, "compare", CompareOptions, epilog=example(
    "tsprobe compare checkpoints/ptb-baseline-small.pt checkpoints/ptb-mts-small.pt --corpus ptb --out out/",
    "tsprobe compare base.pt mts.pt --corpus ptb --bootstrap 2000 --level 0.99 --bins-from all --out out/",
))
def compare_cmd(opts: CompareOptions) -> None:
    """Table 1: test perplexity per frequency bin of two models and the paired chunk bootstrap of
    their difference (a - b), with an order-statistic interval."""
    from ..analyses.lm import empty_bin_notes, run_compare

    result = run_compare(opts, progress=True)
    result.save(opts.out)
    for line in result.notes:
        console.print(line, soft_wrap=True)
    console.print(result.markdown)
    for note in empty_bin_notes(result.table, opts.split):
        console.print(note, soft_wrap=True)
    console.print(f"wrote {opts.out / 'comparison.csv'}, comparison.md, bootstrap.csv, comparison.pdf")
