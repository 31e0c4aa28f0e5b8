"""Helpers shared by the steps of ``tsprobe reproduce`` (:mod:`.lm_steps`, :mod:`.effect_steps`,
:mod:`.multiseed`): paths inside the output folder, tables and figures written into it, the
corpus a step needs, a trained model loaded, timescale summaries and fits. Nothing here imports a
step module, so the step modules import this one and not each other.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd

from ..fileio import atomic_write_text, write_table
from ..pipeline import StepContext, StepSkipped
from .config import ReproduceOptions

#: every family the library fits (the report names the best of all, beside inverse gamma)
FIT_FAMILIES = "all"
WINDOW = 70

# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------


def fingerprint(path: Path | None) -> dict[str, Any]:
    """Identity of an input file or folder by content (SHA-256 of each file, with its path inside a
    folder): part of a step's options, so a checkpoint or corpus that appears or changes makes the
    step run again, and one that is only copied, touched or checked out again (new modification
    times, as a fresh ``../shared`` has) keeps the cache. A few tens of MB: well under a second."""
    from ..fileio import file_sha256

    if path is None:
        return {"path": None}
    p = Path(path)
    if p.is_file():
        return {"path": str(p), "size": p.stat().st_size, "sha256": file_sha256(p)}
    if p.is_dir():
        files = sorted(q for q in p.rglob("*") if q.is_file() and ".steps" not in q.relative_to(p).parts)
        h = hashlib.sha256()
        for q in files:
            h.update(f"{q.relative_to(p).as_posix()}\x00{file_sha256(q)}\n".encode())
        return {"path": str(p), "files": len(files), "size": sum(q.stat().st_size for q in files),
                "sha256": h.hexdigest()}
    return {"path": str(p), "missing": True}


def abs_path(ctx: StepContext, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else ctx.out / q


def save_figure(ctx: StepContext, fig, name: str) -> list[str]:
    from ..plots.reproduce import save_pdf_png

    return [ctx.relative(p) for p in save_pdf_png(fig, ctx.path(name))]


def write_step_table(ctx: StepContext, df: pd.DataFrame, name: str) -> str:
    write_table(df, ctx.path(name))
    return name


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


def corpus_spec(ctx: StepContext, opts: ReproduceOptions, key: str) -> str:
    """``ptb`` | ``markov`` | ``wt2``: a spec for :func:`corpora.load_corpus` (StepSkipped when absent)."""
    c = ctx.results.get("corpora") or {}
    if not c:
        raise StepSkipped("the corpora step did not finish")
    if key == "ptb":
        return c["ptb"] if c["ptb"] == "ptb" else str(abs_path(ctx, c["ptb"]))
    if key == "markov":
        return str(abs_path(ctx, c["markov"]))
    w = c["wt2"]
    if w["missing"]:
        where = opts.corpus_dir / "wikitext-2" if opts.corpus_dir is not None else Path("DIR/wikitext-2")
        have = f" ({where} has {', '.join(w['splits'])})" if w["splits"] else ""
        raise StepSkipped(
            f"WikiText-2 {', '.join(w['missing'])} split(s) missing{have}: put wiki.train.tokens or train.txt "
            f"(and valid/test) in {where} and pass --corpus-dir {where.parent}")
    return str(abs_path(ctx, w["subset"])) if w.get("subset") else w["dir"]


def _card_summary(card: dict) -> dict[str, Any]:
    keys = ("status", "corpus", "arch", "profile", "seed", "epochs", "best_epoch", "best_valid_ppl", "test_ppl", "parameters",
            "wall_time_s", "command", "mts_spec")
    return {k: card.get(k) for k in keys if k in card}


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
    path = abs_path(ctx, rec["checkpoint"])
    corpus = load_corpus(corpus_spec(ctx, opts, corpus_key))
    stack, model, corpus = load_language_model(path, corpus, device=resolve_device(opts.device),
                                               unk_fallback=corpus_key == "markov")
    notes = [n for n in getattr(corpus, "notes", []) if "<unk>" in str(n)]
    return stack, model, corpus, notes

