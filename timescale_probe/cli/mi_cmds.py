"""``tsprobe mi-decay`` and ``tsprobe markov-corpus``: mutual-information decay of corpora and the
Markov control corpus (docs/methods.md §7)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from . import app
from ._common import console, example, out_option

CORPUS_HELP = ("'ptb' (embedded), a corpus directory (train.txt/valid.txt/test.txt or wiki.*.tokens, any subset "
               "for mi-decay) or a plain text file.")


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


@app.command("mi-decay", epilog=example(
    "tsprobe mi-decay ptb --out out/",
    "tsprobe mi-decay corpus.txt --max-distance 2000 --estimator grassberger --shuffles 20",
    "tsprobe mi-decay ../shared/corpora/brown/brown.txt --within documents --out brown-mi/",
    "tsprobe mi-decay ../shared/corpora/wikitext-2 --split valid,test --distances 1-20,50,100 --out wt2-mi/"))
def mi_decay_cmd(
    corpus: str = typer.Argument(..., help=CORPUS_HELP),
    out: Path = out_option("out"),
    split: Optional[str] = typer.Option(None, help="Splits to join, comma-separated (default: train if present, "
                                                   "else all present). Pairs never cross splits."),
    max_distance: int = typer.Option(1000, help="Largest distance of the log-spaced grid (tokens)."),
    n_distances: int = typer.Option(60, help="Number of distinct distances on the log-spaced grid."),
    distances: Optional[str] = typer.Option(None, help="Explicit distances instead of the grid, e.g. 1-10,20,50."),
    estimator: str = typer.Option("grassberger", help="plugin, miller-madow or grassberger (Grassberger 2003)."),
    shuffles: int = typer.Option(10, help="Shuffled copies of the stream for the null band."),
    seed: int = typer.Option(0, help="Seed of the shuffles."),
    within: str = typer.Option("none", help="Pairs only within lines, documents, or none (whole stream)."),
    documents: Optional[Path] = typer.Option(None, help="Line-aligned document-id file for a text corpus (default: "
                                                        "<stem>.sentids.txt or <stem>.refs.txt beside it)."),
    lowercase: bool = typer.Option(False, help="Lowercase a text corpus before tokenising."),
    keep_gutenberg: bool = typer.Option(False, help="Keep a Project Gutenberg header/footer (stripped by default)."),
    drop_eos: bool = typer.Option(False, help="Remove the <eos> tokens (for hard-wrapped text whose line ends are "
                                              "layout, e.g. Gutenberg books)."),
    band: str = typer.Option("max", help="Band edge: max (of the shuffles) or p95."),
    se: str = typer.Option("jackknife", help="Standard errors: jackknife (20 contiguous blocks) or delta."),
    delta_se: bool = typer.Option(False, help="Also write the delta-method SE (se_delta_bits) beside the "
                                              "jackknife: a design-effect check; costs ~40% more time."),
    min_z: float = typer.Option(2.0, help="A distance clears the band only if its excess is >= this many SEs."),
    fit_min_distance: int = typer.Option(1, help="Smallest distance used in the fits."),
    max_gap: int = typer.Option(1, help="Consecutive failing distances tolerated before the fit range ends."),
    label: Optional[str] = typer.Option(None, help="Title of the figure (default: the corpus)."),
) -> None:
    """Mutual information I(d) between tokens d apart, with a shuffle null band and exponential /
    power-law / combined fits compared by AICc; suggests the inverse-gamma shape a = k/2.

    Writes mi_curve.csv (per distance), mi_null.csv (shuffles), mi_fits.csv (laws), mi_decay.pdf
    and run.json (options, input hashes, summary)."""
    from ..fileio import OutputStage, require_file, save_figure, write_run_json, write_table
    from ..mutual_info import load_token_stream, mi_decay, parse_distances
    from ..mutual_info.analysis import check_mi_options
    from ..mutual_info.streams import check_within
    from ..plots.mi import figure_mi_decay

    est = check_mi_options(distances=distances, max_distance=max_distance, n_distances=n_distances,
                           estimator=estimator, shuffles=shuffles, se=se, band=band, min_z=min_z,
                           fit_min_distance=fit_min_distance, max_gap=max_gap)
    grid = parse_distances(distances, max_distance, n_distances)
    check_within(within)
    if documents is not None:
        require_file(documents, "document-id file")
    stage = OutputStage(out)
    splits = [s.strip() for s in split.split(",") if s.strip()] if split else None
    stream = load_token_stream(corpus, splits=splits, lowercase=lowercase, documents=documents,
                               strip_gutenberg=not keep_gutenberg)
    if drop_eos:
        stream = stream.without_eos()
    bounds = stream.boundaries(within)
    if within == "none" and stream.doc_ids is not None and splits and len(splits) > 1:
        bounds = stream.doc_ids  # never pair tokens of two different splits
    result = mi_decay(stream.tokens, distances=grid, estimator=est, shuffles=shuffles, seed=seed,
                      n_types=stream.n_types, boundaries=bounds, se=se, delta_se=delta_se, band=band, min_z=min_z,
                      fit_min_distance=fit_min_distance, max_gap=max_gap, progress=_progress())
    d = stage.path
    write_table(result.curve, d / "mi_curve.csv")
    write_table(result.null, d / "mi_null.csv")
    write_table(result.fits, d / "mi_fits.csv")
    save_figure(figure_mi_decay(result.curve, result.fits, title=label or stream.source), d / "mi_decay.pdf")
    options = dict(corpus=corpus, split=splits, distances=[int(d) for d in grid], estimator=est, shuffles=shuffles,
                   within=within, documents=documents, lowercase=lowercase, strip_gutenberg=not keep_gutenberg,
                   band=band, se=se, delta_se=delta_se, min_z=min_z, fit_min_distance=fit_min_distance,
                   max_gap=max_gap, drop_eos=drop_eos)
    summary = dict(result.summary, source=stream.source, units="bits")
    write_run_json(d, "tsprobe mi-decay", options, seed=seed, inputs=stream.files, results=summary)
    stage.commit()

    s = result.summary
    table = Table(title=f"I(d) decay of {stream.source} ({len(stream):,} tokens, {stream.n_types:,} types)",
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
                  f"[{_fmt(s['a_low'])}, {_fmt(s['a_high'])}]  ({estimator}, {shuffles} shuffles; outputs in {out})")


@app.command("markov-corpus", epilog=example(
    "tsprobe markov-corpus ptb --order 2 --out markov-ptb/",
    "tsprobe markov-corpus ../shared/corpora/ptb --order 1 --seed 3 --out markov1-ptb/"))
def markov_corpus_cmd(
    corpus: str = typer.Argument(..., help="'ptb', a corpus directory with train/valid/test, or a text file "
                                           "(split 80/10/10 by lines, as the LM commands do)."),
    out: Path = out_option("markov-corpus"),
    order: int = typer.Option(2, help="Markov order n: each token drawn given the previous n (an (n+1)-gram)."),
    seed: int = typer.Option(0, help="Seed of the sampler."),
    chains: int = typer.Option(1000, help="Independent chains sampled in parallel (sentences are concatenated)."),
) -> None:
    """A Markov version of a corpus: train/valid/test of the same sizes (tokens incl. <eos>) sampled
    from an order-n n-gram model of train with backoff; its dependencies decay exponentially.

    Writes train.txt, valid.txt, test.txt (PTB form, usable as a corpus directory) and run.json."""
    from ..fileio import OutputStage, write_run_json
    from ..mutual_info.resample import check_markov_options, markov_corpus, write_ptb_dir

    check_markov_options(order=order, n_chains=chains)
    stage = OutputStage(out)
    streams, vocab, eos_id, summary = markov_corpus(corpus, order=order, seed=seed, n_chains=chains,
                                                    progress=_progress())
    paths = write_ptb_dir(stage.path, streams, vocab, eos_id)
    sources = [p for p in summary.get("sources", {}).values() if Path(p).is_file()]
    write_run_json(stage.path, "tsprobe markov-corpus", dict(corpus=corpus, order=order, chains=chains), seed=seed,
                   inputs=sorted(set(sources)), results=summary)
    stage.commit()
    table = Table(title=f"order-{order} Markov corpus of {summary['source']} in {out}", show_edge=False)
    for col in ("split", "tokens (incl. <eos>)", "lines", "original lines"):
        table.add_column(col, justify="right")
    for s in ("train", "valid", "test"):
        table.add_row(s, f"{summary['tokens'][s]:,}", f"{summary['lines'][s]:,}", f"{summary['original_lines'][s]:,}")
    console.print(table)
    console.print(f"train types: {summary['train_types_sampled']:,} sampled of {summary['train_types_original']:,}; "
                  f"files: {', '.join(p.name for p in paths)}")
