"""``tsprobe mi-decay`` and ``tsprobe markov-corpus``: mutual-information decay of corpora and the
Markov control corpus (docs/methods.md §7). Thin commands over :mod:`timescale_probe.mutual_info`
(options in :mod:`timescale_probe.mutual_info.options`)."""
from __future__ import annotations

from rich.table import Table

from ..analysis.cli import options_command
from ..mutual_info.options import MarkovCorpusOptions, MIDecayOptions
from . import app
from ._common import console, example


def _progress():
    """The transient bar the commands show (the library starts and advances it)."""
    from ..progress import RichProgress

    return RichProgress(console=console)


def _fmt(x, nd=3) -> str:
    if x is None:
        return "-"
    try:
        return "-" if x != x else f"{x:.{nd}f}"
    except (TypeError, ValueError):
        return str(x)


@options_command(app, "mi-decay", MIDecayOptions, epilog=example(
    "tsprobe mi-decay ptb --out out/",
    "tsprobe mi-decay corpus.txt --max-distance 2000 --estimator grassberger --n-resamples 20",
    "tsprobe mi-decay ../shared/corpora/brown/brown.txt --within documents --out brown-mi/",
    "tsprobe mi-decay ../shared/corpora/wikitext-2 --split valid,test --distances 1-20,50,100 --out wt2-mi/"))
def mi_decay_cmd(opts: MIDecayOptions) -> None:
    """Mutual information I(d) between tokens d apart, with a shuffle null band and exponential /
    power-law / combined fits compared by AICc; suggests the inverse-gamma shape a = k/2.

    Writes mi_curve.csv (per distance), mi_null.csv (shuffles), mi_fits.csv (laws), mi_decay.pdf
    and run.json (options, input hashes, summary)."""
    from ..mutual_info.analysis import run_mi_decay

    result = run_mi_decay(opts, progress=_progress())
    result.save(opts.out)
    s = result.summary
    table = Table(title=f"I(d) decay of {s['source']} ({s['n_tokens']:,} tokens, {s['n_types']:,} types)",
                  show_edge=False)
    for col in ("law", "dAICc", "k [95%]", "xi (tokens)"):
        table.add_column(col, justify="right")
    for row in result.fits.itertuples():
        k = f"{_fmt(row.k)} [{_fmt(row.k_low)}, {_fmt(row.k_high)}]" if row.k == row.k else "-"
        table.add_row(row.model, _fmt(row.delta_aicc, 1), k, _fmt(row.xi, 2))
    console.print(table)
    console.print(f"verdict (AICc, d <= {s['max_retained_distance']}, {s['n_retained']} distances): "
                  f"[bold]{s['verdict']}[/bold]; tail ({s.get('tail_method')}, d >= {s.get('tail_from_distance', '-')}): "
                  f"[bold]{s['tail']}[/bold], k_tail = {_fmt(s.get('k_tail'))} "
                  f"[{_fmt(s.get('k_tail_low'))}, {_fmt(s.get('k_tail_high'))}], xi_tail = {_fmt(s.get('xi_tail'), 2)}")
    console.print(f"suggested inverse-gamma shape a = k_tail/2 = {_fmt(s['a'])} "
                  f"[{_fmt(s['a_low'])}, {_fmt(s['a_high'])}]  ({s['estimator']}, {s['n_resamples']} shuffles; "
                  f"outputs in {opts.out})")


@options_command(app, "markov-corpus", MarkovCorpusOptions, epilog=example(
    "tsprobe markov-corpus ptb --order 2 --out markov-ptb/",
    "tsprobe markov-corpus ../shared/corpora/ptb --order 1 --seed 3 --out markov1-ptb/"))
def markov_corpus_cmd(opts: MarkovCorpusOptions) -> None:
    """A Markov version of a corpus: train/valid/test of the same sizes (tokens incl. <eos>) sampled
    from an order-n n-gram model of train with backoff; its dependencies decay exponentially.

    Writes train.txt, valid.txt, test.txt (PTB form, usable as a corpus directory) and run.json."""
    from ..mutual_info.resample import run_markov_corpus

    result = run_markov_corpus(opts, progress=_progress())
    result.save(opts.out)
    summary = result.summary
    table = Table(title=f"order-{opts.order} Markov corpus of {summary['source']} in {opts.out}", show_edge=False)
    for col in ("split", "tokens (incl. <eos>)", "lines", "original lines"):
        table.add_column(col, justify="right")
    for s in ("train", "valid", "test"):
        table.add_row(s, f"{summary['tokens'][s]:,}", f"{summary['lines'][s]:,}", f"{summary['original_lines'][s]:,}")
    console.print(table)
    console.print(f"train types: {summary['train_types_sampled']:,} sampled of {summary['train_types_original']:,}; "
                  f"files: {', '.join(f'{s}.txt' for s in result.streams)}")
