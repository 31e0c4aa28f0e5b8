"""``tsprobe demo``: the embedded default, end to end, on 2 CPU cores (its wall time: docs/benchmarks.md).

1. Impose: build the paper's MTS architecture (AWD-LSTM 1150/1150/400, PTB vocabulary, the
   ``paper-lm`` spec), save it in our checkpoint format (in a temporary folder: 97 MB of untrained
   weights; ``keep_checkpoint`` keeps it in the output folder), load it back, tabulate the bias
   timescales and fit their distribution: layer 2 must give back inverse-gamma shape a = 0.56.
2. Measure: evaluate the shipped small PTB checkpoints on the PTB test split (batch 1, state
   carried), compare them with the paired chunk bootstrap, and fit the timescale distributions of
   both. They are package data of a wheel and ``checkpoints/`` of a source checkout
   (:func:`timescale_probe.locations.shipped_checkpoints_dir`); when neither has them the step is
   skipped and the results say where they were looked for.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from . import locations
from .fileio import OutputStage, write_run_json, write_table
from .locations import SHIPPED_CHECKPOINTS, shipped_checkpoints_dir
from .progress import ProgressLike

#: The demo's step messages ("1/2 ...", "2/2 ..."), a child of ``logging.getLogger("timescale_probe")``.
LOG = logging.getLogger("timescale_probe.demo")

#: The two checkpoints part 2 compares (baseline first); see :mod:`timescale_probe.locations`.
SHIPPED = SHIPPED_CHECKPOINTS

__all__ = ["run_demo", "impose_and_recover", "compare_shipped", "comparison_markdown", "shipped_checkpoints_dir",
           "SHIPPED"]


def _not_found(ckpt_dir: Path | None) -> str:
    """Why part 2 cannot run: which files are missing where, and what supplies them."""
    if ckpt_dir is not None:
        missing = [f for f in SHIPPED if not (ckpt_dir / f).is_file()]
        return f"shipped checkpoints not found in {ckpt_dir}: {', '.join(missing)}"
    places = [str(locations.PACKAGE_DATA_DIR)] + [str(p) for p in [locations.checkout_path("checkpoints")] if p]
    return (f"shipped checkpoints {', '.join(SHIPPED)} not found (looked in {' and '.join(places)}); "
            "install the wheel, which ships them, or give their folder (Python: run_demo(checkpoints_dir=...))")


def _fit_and_draw(table, out_dir: Path, *, layers: str, n_boot: int, seed: int, reference_curve=None,
                  source: str | None = None):
    from .distributions import figure_tables, fit_table
    from .plots.distributions import draw_fit_figures

    report = fit_table(table, column="T_bias", layers=layers, n_boot=n_boot, seed=seed)
    write_table(report.fits_, out_dir / "fits.csv")
    write_table(report.comparisons_, out_dir / "comparisons.csv")
    draw_fit_figures(figure_tables(report, reference_curve=reference_curve, scopes=report.scopes), out_dir,
                     source=source)  # titles name the input
    return report


CHECKPOINT_NAME = "paper-mts-untrained.pt"


def paper_mts_model(seed: int = 0):
    """The paper's MTS architecture with the ``paper-lm`` spec, untrained. The imposed layers are
    fixed by the spec; the free weights (layer 3's biases among them, which the demo's
    ``paper-mts/timescales.csv`` lists) come from torch's initialisers under ``seed``, drawn in a
    forked random state so the caller's stream is untouched."""
    import torch

    from .models import LanguageModel, LMConfig
    from .timescales import paper_lm_spec

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LanguageModel(LMConfig(vocab_size=10000, mts_spec=paper_lm_spec().to_dict()))


def impose_and_recover(out: Path, *, n_boot: int = 200, seed: int = 0, keep_checkpoint: bool = False) -> dict[str, Any]:
    """Part 1: the paper-lm spec on the paper's architecture, saved, reloaded and fitted. The
    untrained checkpoint (97 MB) is written to a temporary folder and removed, unless
    ``keep_checkpoint`` (then ``out/paper-mts-untrained.pt``)."""
    import tempfile

    from .checkpoints import load_checkpoint, save_checkpoint
    from .timescales import paper_lm_spec

    spec = paper_lm_spec()
    model = paper_mts_model(seed)
    card = {"made_by": "tsprobe demo", "trained": False, "note": "paper architecture with the paper-lm spec, untrained"}
    if keep_checkpoint:
        ckpt = Path(out) / CHECKPOINT_NAME
        save_checkpoint(ckpt, model.to_stack(), card=card)
        stack = load_checkpoint(ckpt)
        kept = str(ckpt)
    else:
        with tempfile.TemporaryDirectory(prefix="tsprobe-demo-") as tmp:
            save_checkpoint(Path(tmp) / CHECKPOINT_NAME, model.to_stack(), card=card)
            stack = load_checkpoint(Path(tmp) / CHECKPOINT_NAME)
        kept = None
    table = stack.timescales_table()
    sub = out / "paper-mts"
    sub.mkdir(exist_ok=True)
    write_table(table, sub / "timescales.csv")
    report = _fit_and_draw(table[table["layer"] == 2], sub, layers="2", n_boot=n_boot, seed=seed,
                           source=f"{CHECKPOINT_NAME} (T_bias)",
                           reference_curve=(0.56, 1.0))
    row = report.fits_[report.fits_["family"] == "invgamma"].iloc[0]
    return {
        "checkpoint": kept or "not kept (temporary; keep_checkpoint / --keep-checkpoint keeps it)",
        "parameters": stack.num_parameters(), "layer_sizes": stack.layer_sizes,
        "spec": spec.describe(), "a": float(row["shape"]), "a_lo": float(row["shape_lo"]), "a_hi": float(row["shape_hi"]),
        "b": float(row["scale"]), "b_lo": float(row["scale_lo"]), "b_hi": float(row["scale_hi"]),
        "units_used": int(row["n"]), "units_excluded_zero": int(row["n_excluded_zero"]),
        "ci_level": float(row["ci_level"]), "n_boot": n_boot,
    }


def compare_shipped(out: Path, ckpt_dir: Path, *, n_resamples: int = 10000, n_boot: int = 200, seed: int = 0,
                    batch_size: int = 1, device: str = "cpu", progress: ProgressLike = True,
                    max_tokens: int | None = None) -> dict[str, Any]:
    """Part 2: evaluate the shipped baseline and MTS checkpoints on PTB and compare them. With
    ``max_tokens`` only the first ``max_tokens`` targets of the test split are scored (the first
    ``max_tokens + 1`` tokens, as the model cards' ``test_ppl_head``): a quick check, not the table."""
    from .corpora import load_corpus
    from .evaluation import comparison_table, evaluate_model, paired_bootstrap, perplexity_by_bin, token_nll
    from .fileio import atomic_write_text, save_figure
    from .models import load_language_model
    from .plots.lm import plot_comparison

    corpus = load_corpus("ptb")
    tables, nlls = {}, {}
    results: dict[str, Any] = {"checkpoints": {}}
    for name, fname in zip(("baseline", "mts"), SHIPPED):
        stack, model, corpus = load_language_model(ckpt_dir / fname, corpus, device=device)
        if max_tokens is None:
            ppl, nll, targets = evaluate_model(model, corpus, split="test", batch_size=batch_size, device=device,
                                               progress=progress)
        else:
            nll, targets = token_nll(model, corpus.tokens("test")[: max_tokens + 1], batch_size=batch_size,
                                     device=device, progress=progress, description=f"test, first {max_tokens:,} tokens")
            ppl = perplexity_by_bin(nll, targets, *corpus.bins("train"))
        tables[name], nlls[name] = ppl, nll
        sub = out / name
        sub.mkdir(exist_ok=True)
        ts = stack.timescales_table()
        write_table(ts, sub / "timescales.csv")
        write_table(ppl, sub / "perplexity.csv")
        report = _fit_and_draw(ts, sub, layers="all", n_boot=n_boot, seed=seed, source=f"{fname} (T_bias)")
        pooled = report.fits_[(report.fits_["scope"] == "pooled") & (report.fits_["family"] == "invgamma")].iloc[0]
        results["checkpoints"][name] = {
            "path": str(ckpt_dir / fname),
            "test_tokens": int(ppl.loc[ppl["bin"] == "overall", "tokens"].iloc[0]),
            "test_ppl": float(ppl.loc[ppl["bin"] == "overall", "ppl"].iloc[0]),
            "best_family_pooled": report.best("pooled"),
            "invgamma_pooled": {"a": float(pooled["shape"]), "b": float(pooled["scale"])},
        }
    bin_of, labels = corpus.bins("train")
    boot = paired_bootstrap(nlls["baseline"], nlls["mts"], targets, bin_of, labels, n_resamples=n_resamples, seed=seed)
    table = comparison_table(tables["baseline"], tables["mts"], boot)
    write_table(table, out / "comparison.csv")
    atomic_write_text(out / "comparison.md", comparison_markdown(table))
    save_figure(plot_comparison(table, title=f"{SHIPPED[0]} - {SHIPPED[1]} on PTB test"), out / "comparison.pdf")
    results["comparison"] = table.to_dict(orient="records")
    return results


def comparison_markdown(table) -> str:
    """``comparison.md``: a sentence with the bootstrap's level as a percentage (0.999 -> 99.9%,
    never the 2-decimal "1.00" of a table cell), then the table without the constant columns."""
    from .evaluation import markdown_table

    level, n_resamples, seed = float(table["level"].iloc[0]), int(table["n_resamples"].iloc[0]), table["seed"].iloc[0]
    header = (f"PTB test perplexity per frequency bin (batch 1, counts over train); diff = baseline - mts, mean over "
              f"{n_resamples:,} paired resamples of 100-token chunks + the original order, {100 * level:.10g}% "
              f"order-statistic interval (level {level:g}), seed {seed}.\n\n")
    return header + markdown_table(table.drop(columns=["level", "n_resamples", "seed"]))


def run_demo(out: str | Path = "tsprobe-demo", *, n_boot: int = 200, n_resamples: int = 10000, seed: int = 0,
             checkpoints_dir: str | Path | None = None, device: str = "cpu", keep_checkpoint: bool = False,
             max_tokens: int | None = None, options: dict[str, Any] | None = None, progress: ProgressLike = True,
             say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run both parts; returns the numbers the command prints. Outputs appear in ``out`` only
    when everything succeeded (a failed run leaves nothing); with ``options`` a ``run.json``
    records them and the results. ``checkpoints_dir`` overrides where the shipped checkpoints are
    found; ``max_tokens`` (at least 100, one bootstrap chunk) scores only the first ``max_tokens``
    test targets in part 2: the smoke path (CI runs it from an installed wheel), not the demo's table.

    The step messages go to the logger ``timescale_probe.demo`` at INFO (``say``, an older
    callable ``say(text)``, receives them instead when given); ``progress`` (see
    :mod:`timescale_probe.progress`) shows the evaluation of the shipped checkpoints."""
    from .validation import check_int

    check_int(n_boot, "n_boot", minimum=1)
    check_int(n_resamples, "n_resamples", minimum=1)
    if max_tokens is not None:
        max_tokens = check_int(max_tokens, "max_tokens", minimum=100)
    stage = OutputStage(out)
    try:
        results = _run_demo(stage.path, n_boot=n_boot, n_resamples=n_resamples, seed=seed,
                            checkpoints_dir=checkpoints_dir, device=device, keep_checkpoint=keep_checkpoint,
                            max_tokens=max_tokens, say=say if say is not None else LOG.info, progress=progress)
        if keep_checkpoint:  # where it will be once the outputs are in place
            results["impose"]["checkpoint"] = str(Path(out) / CHECKPOINT_NAME)
        if options is not None:
            write_run_json(stage.path, "demo", options, seed=seed, results=results)
    except BaseException:
        stage.discard()
        raise
    stage.commit()
    return results


def _run_demo(out: Path, *, n_boot: int, n_resamples: int, seed: int, checkpoints_dir, device: str,
              keep_checkpoint: bool, max_tokens: int | None, say: Callable[[str], None],
              progress: ProgressLike) -> dict[str, Any]:
    t0 = time.time()
    say("1/2 building the paper's MTS architecture (paper-lm spec), saving, reloading, fitting layer 2")
    results: dict[str, Any] = {"impose": impose_and_recover(out, n_boot=n_boot, seed=seed,
                                                            keep_checkpoint=keep_checkpoint)}
    ckpt_dir = Path(checkpoints_dir).expanduser() if checkpoints_dir is not None else shipped_checkpoints_dir()
    if ckpt_dir is None or any(not (ckpt_dir / f).is_file() for f in SHIPPED):
        results["compare"] = {"skipped": _not_found(ckpt_dir)}
        say(f"2/2 skipped: {results['compare']['skipped']}")
    else:
        part = "test split" if max_tokens is None else f"first {max_tokens:,} test tokens only"
        say(f"2/2 evaluating the shipped PTB checkpoints in {ckpt_dir} ({part}, batch 1) and comparing them")
        results["compare"] = compare_shipped(out, ckpt_dir, n_resamples=n_resamples, n_boot=n_boot, seed=seed,
                                             device=device, progress=progress, max_tokens=max_tokens)
    results["seconds"] = round(time.time() - t0, 1)
    return results
