"""Steps of ``tsprobe reproduce`` that make and describe the models: the corpora (PTB, its Markov
resample, WikiText-2 and others when present), the trained or shipped language models, their
timescales from data (Fig. 1, appendix) and the authors' published timescale arrays.

Conventions: timescales in steps (tokens), the paper's ``T = -1/log f``; T_data from the test
split, batch 1, windows of 70 steps, hidden state carried (the paper's Sec. 4).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .. import locations
from ..errors import OptionError
from ..paper import PAPER
from ..pipeline import StepContext, StepSkipped
from .common import (
    OTHER_CORPORA,
    WINDOW,
    _card_summary,
    _split_file,
    _write_subset,
    _wt2_dir,
    abs_path,
    corpus_spec,
    fit_summary,
    load_model,
    save_figure,
    timescale_summary,
    write_step_table,
)
from .config import SHIPPED, ReproduceOptions
from .results import (
    AppendixResult,
    CorporaResult,
    PublishedTimescalesResult,
    TimescaleResult,
    TrainResult,
    as_results,
    from_results,
)


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
    streams, vocab, eos, summ = markov_corpus(str(abs_path(ctx, ptb_spec)) if ptb_spec != "ptb" else "ptb",
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
        spec = corpus_spec(ctx, opts, corpus_key)
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
        files = [write_step_table(ctx, table, f"tables/timescales_{label}.csv")]
        res: dict[str, Any] = {"label": label, "table": files[0], "n_tokens": int(len(tokens)), "notes": notes,
                               "summary": timescale_summary(table["T_data"]),
                               "per_layer": {int(l): timescale_summary(g["T_data"]) for l, g in table.groupby("layer")}}
        if name != "timescales_mts":
            ctx.progress(f"fitting inverse gamma to {label} T_data ({opts.settings['fit_boot']} bootstrap refits)")
            fit, fits = fit_summary(table["T_data"], opts.settings["fit_boot"], opts.seed)
            res["fit"] = fit
            files.append(write_step_table(ctx, fits, f"tables/fits_{label}.csv"))
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
        files.append(write_step_table(ctx, fits, f"tables/fits_published-{key}-baseline.csv"))
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
            t = pd.read_csv(abs_path(ctx, r["table"]))
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
    files = [write_step_table(ctx, units, "fig1_timescales.csv"), write_step_table(ctx, curves, "fig1_curves.csv")]
    files += save_figure(ctx, figure_fig1(df, present, corpora), "fig1_timescales.pdf")
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
        t = pd.read_csv(abs_path(ctx, r["table"]))
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
    files = [write_step_table(ctx, slim, "appendix_mts.csv"), write_step_table(ctx, pd.DataFrame(stats), "appendix_mts_stats.csv")]
    files += save_figure(ctx, figure_mts_layers(df), "appendix_mts.pdf")
    return as_results(AppendixResult(stats), files)

