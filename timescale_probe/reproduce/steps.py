"""The steps of ``tsprobe reproduce``: each a thin composition of library calls, cached by
:func:`timescale_probe.pipeline.run_pipeline` (a finished step is not recomputed).

Every step builds a typed result (a dataclass of :mod:`.results`) and returns it as a JSON-able
dict (:func:`.results.as_results`; stored in ``<out>/.steps/<name>.json``, read back by the report
with :func:`.results.load`) with ``_files``: the outputs it wrote, relative to ``out``. Paths of outputs inside
``out`` are stored relative to it. A step that cannot run here (missing checkpoint, corpus or
reference data) raises :class:`~timescale_probe.pipeline.StepSkipped` with what is missing and
where to put it; nothing is ever faked.

Conventions: timescales in steps (tokens), the paper's convention ``T = -1/log f``; T_data from the
test split, batch 1, windows of 70 steps, hidden state carried (the paper's Sec. 4); perplexities on
the test split at batch 1 with the state carried; word-frequency bins counted over train (Table 1).

Further studies (claims the paper does not make) plug in with :func:`register_study`; their rows
appear in the report's *beyond the paper* part.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .. import locations
from ..errors import OptionError
from ..fileio import atomic_write_text, finite_or_none, write_table
from ..paper import PAPER
from ..pipeline import Step, StepContext, StepSkipped
from .config import SHIPPED, ReproduceOptions
from .results import (
    AppendixResult,
    CorporaResult,
    DyckResult,
    MIResult,
    PublishedTimescalesResult,
    RoutingResult,
    Table1Result,
    TimescaleResult,
    TrainResult,
    WT2Result,
    as_results,
    from_results,
)

#: every family the library fits (the report names the best of all, beside inverse gamma)
FIT_FAMILIES = "all"
WINDOW = 70

# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------


def fingerprint(path: Path | None) -> dict[str, Any]:
    """Cheap identity of an input file or folder (its presence, size and mtime): part of a step's
    options, so a checkpoint that appears or changes makes the step run again."""
    if path is None:
        return {"path": None}
    p = Path(path)
    if p.is_file():
        st = p.stat()
        return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if p.is_dir():
        files = sorted(q for q in p.rglob("*") if q.is_file() and ".steps" not in q.parts)
        return {"path": str(p), "files": len(files),
                "mtime_ns": max((q.stat().st_mtime_ns for q in files), default=0),
                "size": sum(q.stat().st_size for q in files)}
    return {"path": str(p), "missing": True}


def _abs(ctx: StepContext, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else ctx.out / q


def _save(ctx: StepContext, fig, name: str) -> list[str]:
    from ..plots.reproduce import save_pdf_png

    return [ctx.relative(p) for p in save_pdf_png(fig, ctx.path(name))]


def _table(ctx: StepContext, df: pd.DataFrame, name: str) -> str:
    write_table(df, ctx.path(name))
    return name


def save_npy(path: Path, array: np.ndarray) -> None:
    """``array`` as ``.npy`` at exactly ``path``, atomically, never pickled."""
    from ..fileio import atomic_write_with

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array), allow_pickle=False)

    atomic_write_with(Path(path), write)


def timescale_summary(T) -> dict[str, Any]:
    """:func:`timescale_probe.timescales.summarize_timescales` of one set of timescales."""
    from ..timescales import summarize_timescales

    return summarize_timescales(T)


def fit_summary(T, n_boot: int, seed: int) -> tuple[dict[str, Any], pd.DataFrame]:
    """Every family the library fits (location 0, free scale) and inverse gamma with its scale fixed
    at 1, with bootstrap 95% intervals (nonparametric where KS rejects the family). Returns the
    inverse-gamma parameters, the best of all families (:func:`distributions.fit_verdict`: AIC,
    ΔAIC, KS statistic and p) and whether inverse gamma beats gamma and lognormal, and the fits."""
    from ..distributions import fit_timescales, fit_verdict

    free = fit_timescales(T, FIT_FAMILIES, n_boot=n_boot, seed=seed)
    fixed = fit_timescales(T, "invgamma", fix_scale=1.0, n_boot=n_boot, seed=seed)
    f = free.fits_.set_index("family").loc["invgamma"]
    g = fixed.fits_.set_index("family").loc["invgamma"]
    fits = pd.concat([free.fits_.assign(fit="free scale"), fixed.fits_.assign(fit="scale fixed at 1")],
                     ignore_index=True)
    v = fit_verdict(free)
    aic = free.fits_.set_index("family")["aic"]
    three = aic.reindex(["invgamma", "gamma", "lognorm"]).dropna()
    out = {"a": float(f["shape"]), "a_lo": float(f["shape_lo"]), "a_hi": float(f["shape_hi"]),
           "b": float(f["scale"]), "b_lo": float(f["scale_lo"]), "b_hi": float(f["scale_hi"]),
           "ci_method": str(f.get("ci_method", "")),
           "a_scale1": float(g["shape"]), "a_scale1_lo": float(g["shape_lo"]), "a_scale1_hi": float(g["shape_hi"]),
           "a_scale1_ci_method": str(g.get("ci_method", "")),
           "best_family": v["best_family"], "best_label": v["best_label"], "families": len(v["families"]),
           "delta_aic_invgamma": v["delta_aic_invgamma"], "best_ks": v["best_ks_stat"], "best_ks_p": v["best_ks_p"],
           "invgamma_ks": v["ks_stat"], "invgamma_ks_p": v["ks_p"], "invgamma_ks_rejected": bool(v["ks_rejected"]),
           "invgamma_beats_gamma_lognorm": bool(len(three) == 3 and three.idxmin() == "invgamma"),
           "fit_text": v["text"], "n_fitted": int(f["n"]), "n_boot": int(n_boot),
           "excluded": int(f["n_excluded_zero"] + f["n_excluded_inf"] + f["n_excluded_negative"])}
    return out, fits


# ----------------------------------------------------------------------------------------------
# corpora
# ----------------------------------------------------------------------------------------------

def _wt2_dir(opts: ReproduceOptions) -> Path | None:
    return None if opts.corpus_dir is None else opts.corpus_dir / "wikitext-2"


def _split_file(directory: Path, split: str) -> Path | None:
    for name in (f"{split}.txt", f"wiki.{split}.tokens", f"ptb.{split}.txt"):
        if (directory / name).is_file():
            return directory / name
    return None


OTHER_CORPORA = {"brown": ("brown", "brown.txt"), "kjv": ("kjv", "kjv.txt"),
                 "war-and-peace": ("war-and-peace", "warandpeace.txt")}


def _write_subset(src, out_dir: Path, lines: dict[str, int]) -> None:
    for split, n in lines.items():
        atomic_write_text(out_dir / f"{split}.txt", "\n".join(src.lines(split)[:n]) + "\n")


def step_corpora(ctx: StepContext, opts: ReproduceOptions) -> dict[str, Any]:
    """PTB (a subset in smoke), its order-n Markov resample (the control corpus), and what of
    WikiText-2 and the other corpora exists under ``--corpus-dir``."""
    from ..corpora import load_corpus
    from ..mutual_info.resample import markov_corpus, write_ptb_dir

    s = opts.settings
    files: list[str] = []
    ptb = load_corpus("ptb")
    if s["ptb_lines"]:
        d = ctx.path("data", "ptb-subset", "train.txt").parent
        _write_subset(ptb, d, s["ptb_lines"])
        ptb_spec = ctx.relative(d)
        files += [ctx.relative(d / f"{x}.txt") for x in ("train", "valid", "test")]
        ptb = load_corpus(str(d))
    else:
        ptb_spec = "ptb"
    ctx.progress(f"sampling an order-{s['markov_order']} Markov version of PTB")
    streams, vocab, eos, summ = markov_corpus(str(_abs(ctx, ptb_spec)) if ptb_spec != "ptb" else "ptb",
                                              order=s["markov_order"], seed=opts.seed)
    mdir = ctx.path("data", "markov-ptb", "train.txt").parent
    files += [ctx.relative(p) for p in write_ptb_dir(mdir, streams, vocab, eos)]

    wt2 = _wt2_dir(opts)
    wt2_info: dict[str, Any] = {"dir": None, "splits": [], "missing": ["train", "valid", "test"]}
    if wt2 is not None and wt2.is_dir():
        present = [x for x in ("train", "valid", "test") if _split_file(wt2, x) is not None]
        wt2_info = {"dir": str(wt2), "splits": present, "missing": [x for x in ("train", "valid", "test") if x not in present]}
        if s["ptb_lines"] and not wt2_info["missing"]:  # smoke: a subset of WikiText-2 as well
            wsub = ctx.path("data", "wt2-subset", "train.txt").parent
            _write_subset(load_corpus(str(wt2)), wsub, s["ptb_lines"])
            wt2_info["subset"] = ctx.relative(wsub)
            files += [ctx.relative(wsub / f"{x}.txt") for x in ("train", "valid", "test")]
    others = {}
    for key, (folder, fname) in OTHER_CORPORA.items():
        p = None if opts.corpus_dir is None else opts.corpus_dir / folder / fname
        others[key] = str(p) if p is not None and p.is_file() else None
    return as_results(CorporaResult(
        ptb=ptb_spec, ptb_tokens={x: int(ptb.tokens(x).numel()) for x in ("train", "valid", "test")},
        ptb_vocab=ptb.vocab_size, markov=ctx.relative(mdir), markov_order=s["markov_order"],
        markov_tokens={k: int(len(v)) for k, v in streams.items()}, wt2=wt2_info, others=others), files)


def _corpus_spec(ctx: StepContext, opts: ReproduceOptions, key: str) -> str:
    """``ptb`` | ``markov`` | ``wt2``: a spec for :func:`corpora.load_corpus` (StepSkipped when absent)."""
    c = ctx.results.get("corpora") or {}
    if not c:
        raise StepSkipped("the corpora step did not finish")
    if key == "ptb":
        return c["ptb"] if c["ptb"] == "ptb" else str(_abs(ctx, c["ptb"]))
    if key == "markov":
        return str(_abs(ctx, c["markov"]))
    w = c["wt2"]
    if w["missing"]:
        where = opts.corpus_dir / "wikitext-2" if opts.corpus_dir is not None else Path("DIR/wikitext-2")
        have = f" ({where} has {', '.join(w['splits'])})" if w["splits"] else ""
        raise StepSkipped(
            f"WikiText-2 {', '.join(w['missing'])} split(s) missing{have}: put wiki.train.tokens or train.txt "
            f"(and valid/test) in {where} and pass --corpus-dir {where.parent}")
    return str(_abs(ctx, w["subset"])) if w.get("subset") else w["dir"]


# ----------------------------------------------------------------------------------------------
# models: train (smoke, paper) or reuse the shipped checkpoints (small)
# ----------------------------------------------------------------------------------------------

MODELS = {
    # step name: (corpus key, arch, shipped key, file stem)
    "train_ptb_baseline": ("ptb", "baseline", "ptb_baseline", "ptb-baseline"),
    "train_ptb_mts": ("ptb", "mts", "ptb_mts", "ptb-mts"),
    "train_markov_baseline": ("markov", "baseline", "markov_baseline", "markov-ptb-baseline"),
    "train_wt2_baseline": ("wt2", "baseline", None, "wt2-baseline"),
    "train_wt2_mts": ("wt2", "mts", None, "wt2-mts"),
}


def _card_summary(card: dict) -> dict[str, Any]:
    keys = ("status", "corpus", "arch", "profile", "epochs", "best_epoch", "best_valid_ppl", "test_ppl", "parameters",
            "wall_time_s", "command", "mts_spec")
    return {k: card.get(k) for k in keys if k in card}


def make_train_step(name: str, opts: ReproduceOptions) -> Callable[[StepContext], dict[str, Any]]:
    corpus_key, arch, shipped, stem = MODELS[name]

    def run(ctx: StepContext) -> dict[str, Any]:
        from ..checkpoints import read_card
        from ..corpora import load_corpus
        from ..training import companion_paths, train_language_model

        s = opts.settings
        if opts.profile == "small" and shipped is not None:
            path = opts.checkpoints_dir / SHIPPED[shipped]
            if not path.is_file():
                corpus_arg = "ptb" if corpus_key == "ptb" else "<markov-ptb dir from tsprobe markov-corpus ptb>"
                raise StepSkipped(
                    f"shipped checkpoint {path} not found: make it with 'tsprobe train --corpus {corpus_arg} "
                    f"--arch {arch} --profile small --out {path}' (or pass --checkpoints DIR)")
            return as_results(TrainResult(str(path), "shipped", _card_summary(read_card(path))))
        spec = _corpus_spec(ctx, opts, corpus_key)
        corpus = load_corpus(spec)
        out = ctx.path("models", f"{stem}.pt")
        kw = dict(arch=arch, profile=s["lm_profile"], train_overrides=s["train_overrides"], device=opts.device,
                  log=ctx.progress, final_eval=False, command=f"tsprobe reproduce --profile {opts.profile}")
        resume = companion_paths(out)["resume"].is_file()
        try:
            res = train_language_model(corpus, out, resume=resume, **kw)
        except OptionError:
            if not resume:
                raise
            res = train_language_model(corpus, out, resume=False, **kw)  # resume state of other options
        comp = companion_paths(out)
        return as_results(TrainResult(ctx.relative(out), "trained", _card_summary(res.card)),
                          [ctx.relative(out), ctx.relative(comp["card"]), ctx.relative(comp["metrics"])])

    return run


def load_model(ctx: StepContext, opts: ReproduceOptions, train_step: str, corpus_key: str):
    """(stack, model in eval mode, corpus tokenised with the model's vocabulary, notes), through
    :func:`timescale_probe.models.load_language_model` (a Markov resample drawn again here has a
    few types the checkpoint lacks: they map to ``<unk>``, and the note says how many)."""
    from ..corpora import load_corpus
    from ..fileio import resolve_device
    from ..models import load_language_model

    rec = ctx.results.get(train_step) or {}
    if "checkpoint" not in rec:
        raise StepSkipped(f"{train_step} did not finish")
    path = _abs(ctx, rec["checkpoint"])
    corpus = load_corpus(_corpus_spec(ctx, opts, corpus_key))
    stack, model, corpus = load_language_model(path, corpus, device=resolve_device(opts.device),
                                               unk_fallback=corpus_key == "markov")
    notes = [n for n in getattr(corpus, "notes", []) if "<unk>" in str(n)]
    return stack, model, corpus, notes


# ----------------------------------------------------------------------------------------------
# timescales from data (Fig. 1, appendix)
# ----------------------------------------------------------------------------------------------

TIMESCALE_STEPS = {
    # step name: (train step, corpus key, label)
    "timescales_ptb": ("train_ptb_baseline", "ptb", "ptb-baseline"),
    "timescales_markov": ("train_markov_baseline", "markov", "markov-ptb-baseline"),
    "timescales_wt2": ("train_wt2_baseline", "wt2", "wt2-baseline"),
    "timescales_mts": ("train_ptb_mts", "ptb", "ptb-mts"),
}


def make_timescale_step(name: str, opts: ReproduceOptions) -> Callable[[StepContext], dict[str, Any]]:
    train_step, corpus_key, label = TIMESCALE_STEPS[name]

    def run(ctx: StepContext) -> dict[str, Any]:
        from ..fileio import resolve_device
        from ..gates import estimate_timescales, timescales_table

        stack, model, corpus, notes = load_model(ctx, opts, train_step, corpus_key)
        tokens = corpus.tokens("test")
        ctx.progress(f"forget gates of {label} over {len(tokens):,} test tokens (batch 1, window {WINDOW})")
        est = estimate_timescales(model, tokens, batch_size=1, window=WINDOW, device=resolve_device(opts.device))
        table = timescales_table(stack, est)
        files = [_table(ctx, table, f"tables/timescales_{label}.csv")]
        res: dict[str, Any] = {"label": label, "table": files[0], "n_tokens": int(len(tokens)), "notes": notes,
                               "summary": timescale_summary(table["T_data"]),
                               "per_layer": {int(l): timescale_summary(g["T_data"]) for l, g in table.groupby("layer")}}
        if name != "timescales_mts":
            ctx.progress(f"fitting inverse gamma to {label} T_data ({opts.settings['fit_boot']} bootstrap refits)")
            fit, fits = fit_summary(table["T_data"], opts.settings["fit_boot"], opts.seed)
            res["fit"] = fit
            files.append(_table(ctx, fits, f"tables/fits_{label}.csv"))
        return as_results(from_results(TimescaleResult, res), files)

    return run


REF_BASELINES = {"ptb": "PTB", "wt2": "WT2"}


def _reference(opts: ReproduceOptions, sub: str) -> Path:
    if opts.reference_dir is None:
        raise StepSkipped(f"no reference results (looked in {locations.where_reference_results_are_looked_for()}): "
                          "pass --reference-dir DIR")
    p = opts.reference_dir / sub
    if not p.exists():
        raise StepSkipped(f"reference data {p} not found")
    return p


def load_reference_timescales(directory: Path, prefix: str) -> pd.DataFrame:
    """The authors' T_est arrays ``<prefix>_timescale_layer_{1,2,3}_output.npy`` as ``layer, unit, T``."""
    from ..distributions import load_timescales

    paths = [directory / f"{prefix}_timescale_layer_{k}_output.npy" for k in (1, 2, 3)]
    return load_timescales(paths)


def step_published_timescales(ctx: StepContext, opts: ReproduceOptions) -> dict[str, Any]:
    """Statistics and fits of the authors' estimated timescales (baseline PTB and WT2): our code on
    their data, a check that our fitter gives the published parameters."""
    d = _reference(opts, "estimated_timescales")
    out: dict[str, Any] = {}
    files = []
    for key, prefix in REF_BASELINES.items():
        df = load_reference_timescales(d, prefix)
        fit, fits = fit_summary(df["T"], opts.settings["ref_fit_boot"], opts.seed)
        out[key] = {"summary": timescale_summary(df["T"]), "fit": fit}
        files.append(_table(ctx, fits, f"tables/fits_published-{key}-baseline.csv"))
    return as_results(from_results(PublishedTimescalesResult, out), files)


def sorted_rows(T, corpus: str, source: str, fit: dict | None) -> list[pd.DataFrame]:
    """Fig. 1 tidy rows: units sorted longest first, the fitted inverse-gamma quantile curve and the
    curve the paper draws (a=1.4, b=1)."""
    from ..distributions import sorted_curve

    T = np.asarray(T, dtype=np.float64)
    T = np.sort(T[np.isfinite(T)])[::-1]
    n = T.size
    rank = np.arange(n)
    rows = [pd.DataFrame({"source": source, "corpus": corpus, "series": "units", "label": f"units (n={n})",
                          "rank": rank, "T": T})]
    curves = [("reference", PAPER["fig1_curve_a"], 1.0, f"paper's curve: inverse gamma a={PAPER['fig1_curve_a']}, b=1")]
    if fit:
        curves.insert(0, ("fit", fit["a"], fit["b"], f"ML fit: a={fit['a']:.2f}, b={fit['b']:.2f}"))
    for series, a, b, label in curves:
        rows.append(pd.DataFrame({"source": source, "corpus": corpus, "series": series, "label": label, "rank": rank,
                                  "T": sorted_curve(n, a, b)}))
    return rows


def step_fig1(ctx: StepContext, opts: ReproduceOptions) -> dict[str, Any]:
    """Fig. 1: sorted T_data of the baselines (PTB, WT2, Markov-PTB) with fits, beside the
    published arrays (PTB, WT2)."""
    from ..plots.reproduce import figure_fig1

    rows = []
    corpora = {"ptb": "PTB", "wt2": "WikiText-2", "markov": "Markov-PTB"}
    for key, step in (("ptb", "timescales_ptb"), ("wt2", "timescales_wt2"), ("markov", "timescales_markov")):
        r = ctx.results.get(step) or {}
        if r.get("table"):
            t = pd.read_csv(_abs(ctx, r["table"]))
            rows += sorted_rows(t["T_data"], key, "ours", r.get("fit"))
    pub = ctx.results.get("published_timescales") or {}
    if pub and opts.reference_dir is not None:
        for key, prefix in REF_BASELINES.items():
            df = load_reference_timescales(opts.reference_dir / "estimated_timescales", prefix)
            rows += sorted_rows(df["T"], key, "published", pub[key]["fit"])
    if not rows:
        raise StepSkipped("no timescales to draw")
    df = pd.concat(rows, ignore_index=True)
    present = [k for k in corpora if k in set(df["corpus"])]
    # the table behind the figure: every unit's T (6 significant digits) and the curves' parameters
    units = df.loc[df["series"] == "units", ["source", "corpus", "rank", "T"]].copy()
    units["T"] = [float(f"{v:.6g}") for v in units["T"]]
    curves = df.loc[df["series"] != "units", ["source", "corpus", "series", "label"]].drop_duplicates()
    files = [_table(ctx, units, "fig1_timescales.csv"), _table(ctx, curves, "fig1_curves.csv")]
    files += _save(ctx, figure_fig1(df, present, corpora), "fig1_timescales.pdf")
    return {"corpora": present, "_files": files}


def step_appendix_mts(ctx: StepContext, opts: ReproduceOptions) -> dict[str, Any]:
    """Appendix: estimated vs assigned timescales of the MTS model's constrained layers, ours and
    the published PTB MTS arrays (assigned = the paper's spec on 1150 units)."""
    from scipy.stats import spearmanr

    from ..plots.reproduce import figure_mts_layers
    from ..timescales import paper_lm_spec

    frames = []
    r = ctx.results.get("timescales_mts") or {}
    if r.get("table"):
        t = pd.read_csv(_abs(ctx, r["table"]))
        if "T_assigned" in t:
            frames.append(t.assign(source="ours")[["source", "layer", "unit", "T_assigned", "T_data"]])
    if opts.reference_dir is not None and (opts.reference_dir / "estimated_timescales").is_dir():
        pub = load_reference_timescales(opts.reference_dir / "estimated_timescales", "PTB-mts")
        sizes = [int((pub["layer"] == k).sum()) for k in (1, 2, 3)]
        assigned = paper_lm_spec().timescales(sizes)
        pub["T_assigned"] = np.concatenate([a if a is not None else np.full(n, np.nan) for a, n in zip(assigned, sizes)])
        frames.append(pub.rename(columns={"T": "T_data"}).assign(source="published")[
            ["source", "layer", "unit", "T_assigned", "T_data"]])
    if not frames:
        raise StepSkipped("neither our MTS timescales nor the published arrays are available")
    df = pd.concat(frames, ignore_index=True)
    df = df[df["T_assigned"].notna()].copy()
    df["rank"] = df.groupby(["source", "layer"])["T_assigned"].rank(ascending=False, method="first").astype(int) - 1
    stats = []
    for (source, layer), g in df.groupby(["source", "layer"]):
        ok = np.isfinite(g["T_data"]) & np.isfinite(g["T_assigned"]) & (g["T_data"] > 0) & (g["T_assigned"] > 0)
        ratio = np.log10(g.loc[ok, "T_data"] / g.loc[ok, "T_assigned"])
        stats.append({"source": source, "layer": int(layer), "units": int(len(g)),
                      "spearman": float(spearmanr(g["T_assigned"], g["T_data"]).statistic),
                      "median_abs_log10_ratio": float(np.median(np.abs(ratio))) if ok.any() else float("nan"),
                      "median_T_assigned": float(g["T_assigned"].median()), "median_T_data": float(g["T_data"].median())})
    slim = df.copy()
    for col in ("T_assigned", "T_data"):
        slim[col] = [float(f"{v:.6g}") for v in slim[col]]
    files = [_table(ctx, slim, "appendix_mts.csv"), _table(ctx, pd.DataFrame(stats), "appendix_mts_stats.csv")]
    files += _save(ctx, figure_mts_layers(df), "appendix_mts.pdf")
    return as_results(AppendixResult(stats), files)


# ----------------------------------------------------------------------------------------------
# Table 1: perplexity per bin with the paired bootstrap
# ----------------------------------------------------------------------------------------------

def _evaluate(ctx, opts, train_step, corpus_key):
    from ..evaluation import evaluate_model
    from ..fileio import resolve_device

    stack, model, corpus, notes = load_model(ctx, opts, train_step, corpus_key)
    ctx.progress(f"evaluating {train_step.removeprefix('train_')} on {corpus.tokens('test').numel():,} test tokens (batch 1)")
    table, nll, targets = evaluate_model(model, corpus, split="test", batch_size=1, device=resolve_device(opts.device))
    return table, nll, targets, corpus, notes


def step_table1(ctx: StepContext, opts: ReproduceOptions) -> dict[str, Any]:
    """Table 1 (this run's pair of models): test perplexity per frequency bin, baseline vs MTS, the
    95% chunk-bootstrap interval of each, the paired bootstrap of the difference (the reference's
    99.9% order-statistic interval) and the relative difference in NLL per token (%, same level),
    each with its direction. Saves both models' token NLLs (``tables/token_nll_*.npy``) for the
    combination over seeds, and states the bin counting."""
    from ..corpora import bin_counting_statement
    from ..evaluation import comparison_table, markdown_table, paired_bootstrap, ppl_intervals, seed_paired_comparison
    from ..plots.reproduce import figure_table1

    R = opts.settings["n_resamples"]
    tb, nb, targets, corpus, notes_b = _evaluate(ctx, opts, "train_ptb_baseline", "ptb")
    tm, nm, targets_m, _, notes_m = _evaluate(ctx, opts, "train_ptb_mts", "ptb")
    if not np.array_equal(targets, targets_m):
        raise OptionError("the two models were evaluated on different token streams (vocabularies differ)")
    bin_of, labels = corpus.bins("train")
    boot = paired_bootstrap(nb, nm, targets, bin_of, labels, n_resamples=R, seed=opts.seed)
    table = comparison_table(tb, tm, boot)
    for name, nll in (("baseline", nb), ("mts", nm)):
        iv = ppl_intervals(nll, targets, bin_of, labels, n_resamples=R, seed=opts.seed)
        table = table.merge(iv.rename(columns={"ppl_lo": f"ppl_{name}_lo", "ppl_hi": f"ppl_{name}_hi"}), on="bin")
    level = float(boot["level"].iloc[0])
    rel, _ = seed_paired_comparison([nb], [nm], targets, bin_of, labels, n_resamples=R, level=level, seed=opts.seed)
    table = table.merge(rel[["bin", "rel_nll_pct", "rel_lo", "rel_hi"]], on="bin")
    table["direction"] = [("MTS better" if lo > 0 else "MTS worse" if hi < 0 else "no clear difference")
                          if np.isfinite(lo) and np.isfinite(hi) else "not measured"
                          for lo, hi in zip(table["lo"], table["hi"])]
    table["paper_baseline"] = table["bin"].map({"overall": PAPER["ppl_baseline"]})
    table["paper_mts"] = table["bin"].map({**PAPER["ppl_mts_bins"], "overall": PAPER["ppl_mts"]})
    cols = ["bin", "tokens", "ppl_baseline", "ppl_baseline_lo", "ppl_baseline_hi", "ppl_mts", "ppl_mts_lo",
            "ppl_mts_hi", "diff", "lo", "hi", "rel_nll_pct", "rel_lo", "rel_hi", "direction", "level",
            "n_resamples", "seed", "paper_baseline", "paper_mts"]
    table = table[cols]
    files = [_table(ctx, table, "table1_perplexity.csv")]
    atomic_write_text(ctx.path("table1_perplexity.md"),
                      markdown_table(table.assign(level=table["level"].map(lambda v: f"{v:g}"))))
    files.append("table1_perplexity.md")
    paper = pd.DataFrame([{"bin": b, "model": "mts", "ppl": v} for b, v in PAPER["ppl_mts_bins"].items()]
                         + [{"bin": "overall", "model": "baseline", "ppl": PAPER["ppl_baseline"]},
                            {"bin": "overall", "model": "mts", "ppl": PAPER["ppl_mts"]}])
    files += _save(ctx, figure_table1(table, paper), "table1_perplexity.pdf")
    for name, nll in (("ptb-baseline", nb), ("ptb-mts", nm)):
        path = ctx.path("tables", f"token_nll_{name}.npy")
        save_npy(path, np.asarray(nll, dtype=np.float64))
        files.append(ctx.relative(path))
    bins = bin_counting_statement(corpus, "train")
    return as_results(Table1Result(table.to_dict(orient="records"), notes_b + notes_m, bins, int(len(targets))), files)


def step_wt2_perplexity(ctx: StepContext, opts: ReproduceOptions) -> dict[str, Any]:
    """WikiText-2 test perplexity of the MTS model (and the baseline when trained), overall and per bin."""
    out: dict[str, Any] = {}
    frames = []
    for name, step in (("mts", "train_wt2_mts"), ("baseline", "train_wt2_baseline")):
        if not (ctx.results.get(step) or {}).get("checkpoint"):
            if name == "mts":
                raise StepSkipped("no WikiText-2 MTS model (train_wt2_mts did not finish)")
            continue
        table, *_ = _evaluate(ctx, opts, step, "wt2")
        frames.append(table.assign(model=name))
        out[f"ppl_{name}"] = float(table["ppl"].iloc[-1])
    df = pd.concat(frames, ignore_index=True)
    return as_results(from_results(WT2Result, out), [_table(ctx, df, "table1_wt2_perplexity.csv")])


# ----------------------------------------------------------------------------------------------
# Fig. 3: routing by unit ablation
# ----------------------------------------------------------------------------------------------

def routing_table(ratios: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Every quantile group x bin of one ablation table with its raw interval beside the bootstrap
    one-sided p that the ratio exceeds 1 and its Holm and Benjamini-Hochberg adjustments:
    ``group, bin, ratio, ratio_lo, ratio_hi, p, p_holm, p_bh, sig_raw, sig_holm, sig_bh``."""
    from ..ablation import adjust_p_values, bootstrap_p_values

    r = ratios[(ratios["bin"] != "all") & (ratios["kind"] == "group")].reset_index(drop=True)
    if r.empty or "p_not_above_1" not in r:
        return pd.DataFrame(columns=["group", "bin", "ratio", "ratio_lo", "ratio_hi", "p", "p_holm", "p_bh",
                                     "sig_raw", "sig_holm", "sig_bh"])
    adj = adjust_p_values(bootstrap_p_values(r), alpha=alpha)
    return pd.concat([r[["group", "bin", "ratio", "ratio_lo", "ratio_hi"]], adj], axis=1)


def routing_tests(ratios: pd.DataFrame, alpha: float = 0.05) -> dict[str, Any]:
    """Multiple comparisons over every quantile group x bin of one ablation table
    (:func:`routing_table`): how many cells are significant raw / Holm / BH, and per bin the
    adjusted p of the peak group."""
    r = routing_table(ratios, alpha)
    if r.empty:
        return {"tests": 0}
    adj = r
    out: dict[str, Any] = {"tests": int(adj["p"].notna().sum()), "alpha": alpha,
                           "significant_raw": int(adj["sig_raw"].sum()), "significant_holm": int(adj["sig_holm"].sum()),
                           "significant_bh": int(adj["sig_bh"].sum()), "bins": {}}
    for b, s in r.groupby("bin", sort=False):
        if not np.isfinite(s["ratio"].to_numpy(dtype=np.float64)).any():
            continue
        top = s.loc[s["ratio"].idxmax()]
        out["bins"][str(b)] = {"peak_p": finite_or_none(top["p"]), "peak_p_holm": finite_or_none(top["p_holm"]),
                               "peak_p_bh": finite_or_none(top["p_bh"]), "n_sig_holm": int(s["sig_holm"].sum()),
                               "n_sig_bh": int(s["sig_bh"].sum()), "n_sig_raw": int(s["sig_raw"].sum())}
    return out


def step_fig3(ctx: StepContext, opts: ReproduceOptions) -> dict[str, Any]:
    """Fig. 3: ablate chunks of the MTS model's layer 2 (ordered by assigned T, longest first;
    outputs zeroed where they enter layer 3) and as many random control groups of the same size
    (the null band), perplexity ratio per bin, beside the published ratios; Holm and BH corrections
    over all groups x bins."""
    from ..ablation import control_band, load_reference_ablation, reference_chunk_timescales, routing_facts, run_ablation_study
    from ..fileio import resolve_device
    from ..plots.reproduce import figure_fig3

    s = opts.settings
    stack, model, corpus, notes = load_model(ctx, opts, "train_ptb_mts", "ptb")
    T = stack.timescales_table().query("layer == 2")["T_bias"].to_numpy()
    bin_of, labels = corpus.bins("train")
    tokens = corpus.tokens("test")
    ctx.progress(f"ablating {s['ablation_groups']} of layer 2 ({len(T)} units) and {s['ablation_controls']} random "
                 f"control groups over {len(tokens):,} test tokens")
    study = run_ablation_study(model, tokens, T, layer=2, groups=s["ablation_groups"], mode="output",
                               binnings=[("frequency", bin_of, labels)], controls=s["ablation_controls"],
                               seed=opts.seed, group_batch=s["group_batch"], n_resamples=s["n_resamples"],
                               device=resolve_device(opts.device))
    band = control_band(study.ratios_)
    files = [_table(ctx, study.ratios_, "fig3_routing.csv"), _table(ctx, study.groups_, "fig3_groups.csv"),
             _table(ctx, band, "fig3_control_band.csv"), _table(ctx, routing_table(study.ratios_), "fig3_tests.csv")]
    res: dict[str, Any] = {"ours": routing_facts(study.ratios_, study.groups_), "groups": s["ablation_groups"],
                           "controls": int(s["ablation_controls"]), "control_size": study.options["control_size"],
                           "band": {str(r["bin"]): {"lo": finite_or_none(r["control_lo"]), "hi": finite_or_none(r["control_hi"]),
                                                    "n": int(r["n_controls"])} for _, r in band.iterrows()},
                           "tests": routing_tests(study.ratios_),
                           "ppl_intact": study.options["ppl_intact"], "units": int(len(T)), "notes": notes}
    pub = pub_groups = None
    if opts.reference_dir is not None and (opts.reference_dir / "unit_ablation").is_dir():
        pub = load_reference_ablation(opts.reference_dir / "unit_ablation")
        pub_groups = reference_chunk_timescales()
        res["published"] = routing_facts(pub, pub_groups)
        files.append(_table(ctx, pub.merge(pub_groups[["group", "T_min", "T_max", "T_mean"]], on="group", how="left"),
                            "fig3_routing_published.csv"))
    files += _save(ctx, figure_fig3(study.ratios_, study.groups_, pub, pub_groups,
                                    title_ours=f"ours ({opts.profile}; layer 2 {s['ablation_groups']}; "
                                               f"band: {s['ablation_controls']} random groups)"),
                   "fig3_routing.pdf")
    return as_results(from_results(RoutingResult, res), files)


# ----------------------------------------------------------------------------------------------
# Fig. 2: Dyck-2
# ----------------------------------------------------------------------------------------------

def _find_dyck_results(root: Path) -> tuple[pd.DataFrame, pd.DataFrame | None, str]:
    """The committed Dyck results under ``root``: ``results.csv`` (tidy results table) or the runs'
    ``*.test.csv``; ``spans.csv`` when present. Returns (results, spans, where)."""
    from ..dyck import collect_tests, results_table
    from ..dyck.analysis import RESULT_COLUMNS

    cands = sorted(root.rglob("results.csv"), key=lambda p: len(p.parts))
    for p in cands:
        df = pd.read_csv(p)
        if set(RESULT_COLUMNS) <= set(df.columns):
            spans = next(iter(sorted(p.parent.glob("spans.csv"))), None) or next(iter(sorted(root.rglob("spans.csv"))), None)
            return df[RESULT_COLUMNS], (pd.read_csv(spans) if spans else None), str(p)
    tests = sorted({p.parent for p in root.rglob("*.test.csv")}, key=lambda p: len(p.parts))
    if tests:
        results = results_table(collect_tests(tests[0]))
        spans = next(iter(sorted(root.rglob("spans.csv"))), None)
        return results, (pd.read_csv(spans) if spans else None), str(tests[0])
    raise StepSkipped(f"no Dyck results in {root} (results.csv or runs' *.test.csv): run 'tsprobe dyck sweep' "
                      "with the small profile, or pass --dyck-results DIR")


def step_dyck(ctx: StepContext, opts: ReproduceOptions) -> dict[str, Any]:
    """Fig. 2: span distribution and accuracy vs max timescale, baseline vs MTS over seeds.
    smoke: a tiny sweep here; small: the committed small-profile sweep; paper: the paper's sweep."""
    from ..dyck import generate_dataset, paired_comparison, run_sweep, save_dataset, span_slope, span_table, summarize
    from ..dyck.grammar import DyckGrammar
    from ..dyck.train import PROFILES as DYCK_PROFILES
    from ..dyck.train import profile_config
    from ..plots.dyck import figure_dyck

    s = opts.settings
    files: list[str] = []
    if opts.profile == "small":
        if opts.dyck_results is None or not opts.dyck_results.is_dir():
            raise StepSkipped(f"Dyck small-profile results folder {opts.dyck_results or '(not a source checkout)'} not found "
                              "(committed as figures/dyck/; or pass --dyck-results DIR)")
        results, spans, where = _find_dyck_results(opts.dyck_results)
        source = f"committed results {where}"
    else:
        grammar = DyckGrammar.make(max_len=s["dyck_max_len"])
        data_dir = ctx.path("data", "dyck", "meta.json").parent
        if not (data_dir / "meta.json").is_file():
            ctx.progress("sampling Dyck-2 strings")
            save_dataset(generate_dataset(grammar, s["dyck_sizes"], seed=opts.seed), data_dir)
        from ..dyck import load_dataset

        ds = load_dataset(data_dir)
        spans = span_table(ds["train"], grammar.max_len)
        write_table(spans, data_dir / "spans.csv")
        seeds = s["dyck_seeds"] or list(range(1, DYCK_PROFILES[s["dyck_profile"]]["seeds"] + 1))
        cfg = profile_config(s["dyck_profile"])
        ctx.progress(f"Dyck sweep: 2 x {len(seeds)} runs, profile {s['dyck_profile']}")
        results = run_sweep(data_dir, ctx.path("dyck-runs", "x").parent, ["baseline", "mts"], seeds, cfg,
                            profile=s["dyck_profile"], device=str(opts.device))
        source = f"sweep here ({s['dyck_profile']} profile, {len(seeds)} seeds)"
    fit = None
    if spans is not None:
        try:
            fit = span_slope(spans)
        except OptionError:
            fit = None
    summary = summarize(results)
    paired = paired_comparison(results, seed=opts.seed) if {"baseline", "mts"} <= set(results["arch"]) else None
    files.append(_table(ctx, results, "fig2_dyck_results.csv"))
    files.append(_table(ctx, summary, "fig2_dyck.csv"))
    if paired is not None:
        files.append(_table(ctx, paired, "fig2_dyck_paired.csv"))
    if spans is not None:
        files.append(_table(ctx, spans, "fig2_dyck_spans.csv"))
    files += _save(ctx, figure_dyck(summary, spans, fit), "fig2_dyck.pdf")
    res: dict[str, Any] = {"source": source, "span_slope": fit}
    ov = summary[summary["kind"] == "overall"].set_index("arch")
    res["overall"] = {a: {"mean": float(ov.loc[a, "mean"]), "std": finite_or_none(ov.loc[a, "std"]), "seeds": int(ov.loc[a, "seeds"])}
                      for a in ov.index}
    if paired is not None:
        for kind in ("overall", "tail"):
            p = paired[paired["kind"] == kind]
            if len(p):
                r = p.iloc[0]
                res[f"paired_{kind}"] = {"diff": finite_or_none(r.get("diff")), "ci_lo": finite_or_none(r.get("ci_lo")),
                                         "ci_hi": finite_or_none(r.get("ci_hi")), "pairs": int(r["pairs"]),
                                         "bin": str(r["bin"]), "sign_p": finite_or_none(r.get("sign_p"))}
    return as_results(from_results(DyckResult, res), files)


# ----------------------------------------------------------------------------------------------
# mutual-information decay of the corpora
# ----------------------------------------------------------------------------------------------

def step_mi(ctx: StepContext, opts: ReproduceOptions) -> dict[str, Any]:
    """I(d) of each corpus (Grassberger estimator, shuffle band, exponential / power / combined
    fits by AICc): PTB and Markov-PTB train, WikiText-2 (train, else valid+test), Brown, KJV, War and
    Peace when ``--corpus-dir`` has them."""
    from ..mutual_info import load_token_stream, mi_decay
    from ..plots.mi import figure_mi_decay
    from ..plots.reproduce import figure_mi_corpora

    s = opts.settings
    c = ctx.results.get("corpora") or {}
    todo: list[tuple[str, str, list[str] | None]] = [("PTB", _corpus_spec(ctx, opts, "ptb"), ["train"]),
                                                     ("Markov-PTB", _corpus_spec(ctx, opts, "markov"), ["train"])]
    w = c.get("wt2", {})
    if w.get("dir"):
        splits = ["train"] if "train" in w["splits"] else w["splits"]
        todo.append(("WikiText-2", w["dir"], splits))
    names = {"brown": "Brown", "kjv": "KJV", "war-and-peace": "War and Peace"}
    for key, path in (c.get("others") or {}).items():
        if path:
            todo.append((names.get(key, key), path, None))
    skipped = [] if w.get("dir") else ["WikiText-2 (no --corpus-dir DIR/wikitext-2)"]
    skipped += [f"{k} (no --corpus-dir DIR/{OTHER_CORPORA[k][0]}/{OTHER_CORPORA[k][1]})"
                for k, v in (c.get("others") or {}).items() if not v]
    curves, fits, summaries = [], [], []
    for name, spec, splits in todo:
        stream = load_token_stream(spec, splits=splits)
        tokens = stream.tokens
        bounds = stream.doc_ids if (splits and len(splits) > 1) else None
        if s["mi_max_tokens"] and len(tokens) > s["mi_max_tokens"]:
            tokens = tokens[: s["mi_max_tokens"]]
            bounds = None if bounds is None else bounds[: s["mi_max_tokens"]]
        ctx.progress(f"I(d) of {name} ({len(tokens):,} tokens, {s['mi_shuffles']} shuffles)")
        r = mi_decay(tokens, max_distance=min(s["mi_max_distance"], len(tokens) // 4), n_distances=s["mi_distances"],
                     shuffles=s["mi_shuffles"], seed=opts.seed, n_types=stream.n_types, boundaries=bounds)
        curves.append(r.curve.assign(corpus=name))
        fits.append(r.fits.assign(corpus=name))
        keys = ("verdict", "tail", "k", "k_low", "k_high", "k_tail", "k_tail_low", "k_tail_high", "xi_tail",
                "xi_exponential",
                "a", "a_low", "a_high", "n_retained", "max_retained_distance", "n_tokens")
        summaries.append({"corpus": name, "splits": "+".join(splits) if splits else "all",
                          **{k: r.summary.get(k) for k in keys}})
        if name == "PTB":
            files_ptb = _save(ctx, figure_mi_decay(r.curve, r.fits, title="PTB train"), "mi_decay_ptb.pdf")
    curve_df = pd.concat(curves, ignore_index=True)
    keep = ["corpus", "distance", "mi_bits", "se_bits", "null_mean_bits", "null_max_bits", "band_bits",
            "excess_bits", "excess_se_bits", "clears_band", "retained"]
    summary_df = pd.DataFrame(summaries)
    files = [_table(ctx, curve_df[[k for k in keep if k in curve_df]], "mi_decay.csv"),
             _table(ctx, pd.concat(fits, ignore_index=True), "mi_fits.csv"),
             _table(ctx, summary_df, "mi_summary.csv")]
    files += _save(ctx, figure_mi_corpora(curve_df), "mi_decay.pdf") + files_ptb
    return as_results(MIResult({r["corpus"]: {k: (finite_or_none(v) if isinstance(v, (float, np.floating)) else v)
                                               for k, v in r.items()} for r in summaries}, skipped), files)


# ----------------------------------------------------------------------------------------------
# the step list
# ----------------------------------------------------------------------------------------------

#: Steps that only draw or summarise (seconds): always redone so they see every finished input.
CHEAP_STEPS = ("fig1_timescales", "appendix_mts", "seeds", "report")


# ----------------------------------------------------------------------------------------------
# further studies (beyond the paper)
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Study:
    """A study the paper does not make, run as a step; its rows form a *beyond the paper* section.

    ``run(ctx, opts)`` (or ``"module:function"``, imported when the step runs) returns a dict with
    ``rows``: a list of ``{"claim", "verdict", "evidence"}`` (optional ``expected``, ``interval``,
    ``note``; ``verdict`` is the row's outcome: ``holds``, ``does not hold``, ``inconclusive``, ``not
    run``), and optionally ``_files`` (outputs relative to ``ctx.out``) and anything else JSON-able.
    ``options(opts)``: the settings it depends on (hashed for the cache; default: seed and profile).
    """

    name: str
    title: str
    section: str
    run: Callable[..., dict[str, Any]] | str
    options: Callable[[ReproduceOptions], dict[str, Any]] | None = None
    needs: tuple[str, ...] = ()

    def callable(self) -> Callable[..., dict[str, Any]]:
        if not isinstance(self.run, str):
            return self.run
        import importlib

        module, _, fn = self.run.partition(":")
        return getattr(importlib.import_module(module), fn)


#: Registered studies, in report order (see :func:`register_study`).
STUDIES: list[Study] = []


def register_study(name: str, title: str, section: str, run: Callable[..., dict[str, Any]] | str, *,
                   options: Callable[[ReproduceOptions], dict[str, Any]] | None = None,
                   needs: tuple[str, ...] = ()) -> Study:
    """Add a *beyond the paper* study to ``tsprobe reproduce`` (a step before the report, and a
    section ``Beyond the paper: <section>`` of it). Registering a name again replaces it. E.g.::

        register_study("theory", "theory test: MTS shape vs a known MI exponent",
                       "theory test on sources of known MI exponent", "timescale_probe.theory:reproduce_step")
    """
    study = Study(name, title, section, run, options, tuple(needs))
    STUDIES[:] = [s for s in STUDIES if s.name != name] + [study]
    return study

#: Which steps each analysis script (``analyses/*.py``) runs.
FIGURES = {
    "fig1_timescales": ("timescales_ptb", "timescales_wt2", "timescales_markov", "published_timescales",
                        "fig1_timescales"),
    "fig2_dyck": ("dyck",),
    "fig3_routing": ("fig3_routing", "seeds"),
    "appendix_mts": ("timescales_mts", "appendix_mts"),
    "table1_perplexity": ("table1_perplexity", "wt2_perplexity", "seeds"),
    "mi_decay": ("mi_decay",),
    "seeds": ("seeds",),
}


def build_steps(opts: ReproduceOptions) -> list[Step]:
    """The pipeline in order. A step's ``options`` (hashed for the cache) hold the profile's
    settings it uses and fingerprints of its external inputs."""
    s = opts.settings
    base = {"seed": opts.seed, "device": str(opts.device)}
    corpus_fp = {"corpus_dir": None if opts.corpus_dir is None else {
        k: fingerprint(opts.corpus_dir / v) for k, v in
        (("wikitext-2", "wikitext-2"), ("brown", "brown/brown.txt"), ("kjv", "kjv/kjv.txt"),
         ("war-and-peace", "war-and-peace/warandpeace.txt"))}}
    ref_fp = {"reference": fingerprint(opts.reference_dir)}

    def bind(fn):
        return lambda ctx: fn(ctx, opts)

    steps = [Step("corpora", "PTB, its Markov resample, other corpora", bind(step_corpora),
                  options=base | corpus_fp | {k: s[k] for k in ("ptb_lines", "markov_order")})]
    for name, (corpus_key, _arch, shipped, stem) in MODELS.items():
        o = base | {"lm_profile": s["lm_profile"], "train_overrides": s["train_overrides"]}
        if opts.profile == "small" and shipped is not None:
            o = {"checkpoint": fingerprint(opts.checkpoints_dir / SHIPPED[shipped])}
        if corpus_key == "wt2":
            o = o | corpus_fp
        title = f"{'reuse' if opts.profile == 'small' and shipped else 'train'} {stem}"
        steps.append(Step(name, title, make_train_step(name, opts), needs=("corpora",), options=o))
    for name, (train_step, _corpus_key, label) in TIMESCALE_STEPS.items():
        steps.append(Step(name, f"T_data of {label}", make_timescale_step(name, opts), needs=(train_step,),
                          options=base | {"fit_boot": s["fit_boot"], "window": WINDOW}))
    steps += [
        Step("published_timescales", "statistics and fits of the published timescales", bind(step_published_timescales),
             options=base | ref_fp | {"ref_fit_boot": s["ref_fit_boot"]}),
        Step("fig1_timescales", "Fig. 1: timescale distributions", bind(step_fig1), needs=("timescales_ptb",),
             options=base | ref_fp),
        Step("appendix_mts", "Appendix: MTS estimated vs assigned", bind(step_appendix_mts), needs=("timescales_mts",),
             options=base | ref_fp),
        Step("table1_perplexity", "Table 1: perplexity per bin, paired bootstrap", bind(step_table1),
             needs=("train_ptb_baseline", "train_ptb_mts"), options=base | {"n_resamples": s["n_resamples"]}),
        Step("wt2_perplexity", "Table 1: WikiText-2 perplexity", bind(step_wt2_perplexity),
             needs=("train_wt2_mts",), after=("train_wt2_baseline",), options=base),
        Step("fig3_routing", "Fig. 3: routing by unit ablation", bind(step_fig3), needs=("train_ptb_mts",),
             options=base | ref_fp | {k: s[k] for k in ("ablation_groups", "n_resamples", "group_batch")}),
        Step("dyck", "Fig. 2: Dyck-2 accuracy vs timescale", bind(step_dyck),
             options=base | ({"results": fingerprint(opts.dyck_results)} if opts.profile == "small" else
                             {k: s[k] for k in ("dyck_sizes", "dyck_max_len", "dyck_profile", "dyck_seeds")})),
        Step("mi_decay", "MI decay of the corpora", bind(step_mi), needs=("corpora",),
             options=base | corpus_fp | {k: s[k] for k in ("mi_max_distance", "mi_distances", "mi_shuffles",
                                                            "mi_max_tokens")}),
    ]
    from .multiseed import step_seeds

    steps.append(Step("seeds", "seeds combined, paired by seed: Table 1, Fig. 3, Markov control, validation gap",
                      bind(step_seeds), options=base | {"seeds_dir": fingerprint(opts.seeds_dir),
                                                        "n_resamples": s["n_resamples"]}))
    studies = list(STUDIES)
    for st in studies:
        o = base | {"profile": opts.profile} | (st.options(opts) if st.options else {})
        steps.append(Step(st.name, st.title, (lambda ctx, st=st: st.callable()(ctx, opts)), needs=st.needs, options=o))
    from .report import step_report

    names = [x.name for x in steps]
    steps.append(Step("report", "report.md / report.html",
                      lambda ctx: step_report(ctx, opts, names, studies), options=base))
    return steps


# registered studies (beyond the paper): one register_study(...) line each
register_study("theory", "theory test: MTS shape vs a known MI exponent", "theory test on sources of known MI exponent",
               "timescale_probe.theory:reproduce_step", options=lambda o: {"profile": "smoke" if o.profile == "smoke" else "small"})
