"""The ``seeds`` step of ``tsprobe reproduce``: this run's models and the per-seed folders (e.g.
``figures/seeds/``) combined, paired by seed, for Table 1, Fig. 3, the Markov control, the fits and
the appendix, with the validation gap MTS vs baseline per epoch beside Table 1.

Methods (stated in the report):

- Table 1: per seed the chunk bootstrap (100-token chunks) of the baseline - MTS difference; over
  seeds a hierarchical bootstrap (seeds drawn with replacement, then chunks, shared by the seeds
  because they are scored on the same text), 95% percentile interval; beside it the t interval
  across the per-seed estimates. A verdict needs both to clear 0 (the t interval alone ignores the
  sampling of the text; the bootstrap over only 3 seeds understates the between-seed spread).
- Fig. 3: per group and bin the geometric mean ratio over seeds, t interval on the log ratios
  (one seed: that seed's bootstrap interval), one-sided p, Holm and Benjamini-Hochberg over the
  groups x bins; the null band pools the random control groups of every seed.
- Markov control and fits: per seed the statistic, the difference paired by seed, a t interval
  across seed pairs.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..fileio import finite_or_none
from ..pipeline import StepContext, StepSkipped
from .config import ReproduceOptions
from .results import SeedsResult, as_results, from_results
from .seedruns import SeedRun, collect_seed_runs, mean_gap_by_epoch, validation_gaps
from .verdicts import budget_check

#: interval level of every combination over seeds
LEVEL = 0.95


def _seed_of(card: dict | None) -> int | None:
    if not card:
        return None
    s = card.get("seed", (card.get("train_config") or {}).get("seed"))
    return None if s is None else int(s)


def own_runs(ctx: StepContext) -> list[SeedRun]:
    """This run's models as :class:`SeedRun` objects, from the finished steps' outputs."""
    from ..checkpoints import read_card
    from ..training import companion_paths

    runs = []
    specs = [("train_ptb_baseline", "ptb", "baseline", "ptb-baseline"), ("train_ptb_mts", "ptb", "mts", "ptb-mts"),
             ("train_markov_baseline", "markov-ptb", "baseline", "markov-ptb-baseline")]
    t1 = ctx.results.get("table1_perplexity") or {}
    for step, corpus, arch, label in specs:
        rec = ctx.results.get(step) or {}
        if "checkpoint" not in rec:
            continue
        path = Path(rec["checkpoint"])
        path = path if path.is_absolute() else ctx.out / path
        try:
            card = read_card(path)
        except Exception:  # noqa: BLE001 - a card we cannot read: the run still counts, with its seed unknown
            card = {}
        seed = _seed_of(card)
        if seed is None:
            continue
        run = SeedRun(corpus, arch, seed, "this run", card=card)
        mpath = companion_paths(path)["metrics"]
        run.metrics = pd.read_csv(mpath) if mpath.is_file() else None
        nll_file = ctx.out / "tables" / f"token_nll_{label}.npy"
        if t1 and nll_file.is_file():
            run.token_nll = np.load(nll_file, allow_pickle=False)
        ts = ctx.out / "tables" / f"timescales_{label}.csv"
        run.timescales = pd.read_csv(ts) if ts.is_file() else None
        if arch == "mts" and corpus == "ptb" and (ctx.out / "fig3_routing.csv").is_file():
            abl = pd.read_csv(ctx.out / "fig3_routing.csv", dtype={"group": str})
            g = ctx.out / "fig3_groups.csv"
            if g.is_file():
                abl = abl.merge(pd.read_csv(g, dtype={"group": str})[["group", "T_min", "T_max"]], on="group", how="left")
            run.ablation = abl
        expected = [("metrics.csv", run.metrics), ("timescales.csv", run.timescales)]
        if corpus == "ptb":
            expected.append(("token_nll.npy", run.token_nll))
        run.missing = [n for n, v in expected if v is None]
        runs.append(run)
    return runs


def _t_interval(x: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(x.mean())
    if x.size < 2:
        return m, float("nan"), float("nan")
    h = stats.t.ppf((1 + level) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return m, m - h, m + h


def _a_scale1(T) -> float:
    from ..distributions import fit_mle

    T = np.asarray(T, dtype=np.float64)
    T = T[np.isfinite(T) & (T > 0)]
    if T.size < 3:
        return float("nan")
    return float(fit_mle(T, "invgamma", fix_scale=1.0)[0])


def step_seeds(ctx: StepContext, opts: ReproduceOptions) -> dict[str, Any]:
    """Gather the seeds, combine them, write the tables and the multi-seed figure."""
    from ..ablation import combine_seed_ratios
    from ..corpora import load_corpus
    from ..evaluation import seed_paired_comparison
    from ..fileio import write_table
    from ..plots.reproduce import figure_seeds, save_pdf_png
    from .common import corpus_spec as _corpus_spec

    s = opts.settings
    own = own_runs(ctx)
    n_targets = (ctx.results.get("table1_perplexity") or {}).get("n_targets")
    corpora = ctx.results.get("corpora") or {}
    if n_targets is None and corpora.get("ptb_tokens"):
        n_targets = int(corpora["ptb_tokens"]["test"]) - 1
    coll = collect_seed_runs(own, [opts.seeds_dir], profile=s["lm_profile"],
                             test_lengths={"ptb": int(n_targets)} if n_targets else None)
    if not coll.runs:
        raise StepSkipped("no trained models: neither this run's nor per-seed folders"
                          + (f" in {opts.seeds_dir}" if opts.seeds_dir else ""))
    files: list[str] = []
    res: dict[str, Any] = {"arms": {f"{c}-{a}": coll.seeds(c, a) for c, a in
                                    sorted({(r.corpus, r.arch) for r in coll.runs})},
                           "sources": {r.name: r.source for r in coll.runs},
                           "missing": {r.name: r.missing for r in coll.runs if r.missing},
                           "left_out": coll.left_out, "seeds_dir": str(opts.seeds_dir) if opts.seeds_dir else None,
                           "level": LEVEL}

    def table(df: pd.DataFrame, name: str) -> None:
        write_table(df, ctx.path(name))
        files.append(name)

    # ---- validation gap per epoch (MTS vs baseline), from the trainers' metrics
    pairs = coll.pairs("ptb", "baseline", "mts")
    gaps = validation_gaps(pairs)
    mean_gap = mean_gap_by_epoch(gaps)
    res["gap"] = {"seeds": sorted(int(x) for x in gaps["seed"].unique()), "mean_by_epoch": mean_gap,
                  "budget": budget_check(mean_gap)}
    if not gaps.empty:
        table(gaps, "validation_gap.csv")

    # ---- Table 1 over seeds
    both = [(a, b) for a, b in pairs if a.token_nll is not None and b.token_nll is not None]
    res["table1"] = None
    if both and corpora:
        corpus = load_corpus(_corpus_spec(ctx, opts, "ptb"))
        bin_of, labels = corpus.bins("train")
        targets = corpus.tokens("test").numpy()[1:]
        ok = [(a, b) for a, b in both if len(a.token_nll) == len(targets) == len(b.token_nll)]
        if ok:
            comb, per = seed_paired_comparison([a.token_nll for a, _ in ok], [b.token_nll for _, b in ok], targets,
                                               bin_of, labels, seeds=[a.seed for a, _ in ok],
                                               n_resamples=s["n_resamples"], level=LEVEL, seed=opts.seed)
            table(comb, "table1_seeds.csv")
            table(per, "table1_per_seed.csv")
            res["table1"] = {"seeds": [a.seed for a, _ in ok], "rows": comb.to_dict(orient="records"),
                             "per_seed": per.to_dict(orient="records")}
    res["arm_counts"] = {"ptb-baseline": len(coll.arm("ptb", "baseline")), "ptb-mts": len(coll.arm("ptb", "mts")),
                         "markov-ptb-baseline": len(coll.arm("markov-ptb", "baseline"))}

    # ---- Fig. 3 over seeds (quantile groups and the pooled control band)
    abl = {r.seed: r.ablation for r in coll.arm("ptb", "mts") if r.ablation is not None and "kind" in r.ablation}
    res["fig3"] = None
    fig3_groups = band = None
    if abl:
        from ..ablation import routing_facts

        fig3_groups, band = combine_seed_ratios(abl, level=LEVEL)
        table(fig3_groups, "fig3_seeds.csv")
        if not band.empty:
            table(band, "fig3_seeds_control_band.csv")
        facts = routing_facts(fig3_groups.assign(kind="group", ratio_lo=fig3_groups["lo"], ratio_hi=fig3_groups["hi"]))
        tests = {}
        for b, sub in fig3_groups.groupby("bin", sort=False):
            if sub["ratio"].notna().any():
                top = sub.loc[sub["ratio"].idxmax()]
                tests[str(b)] = {"peak_p": finite_or_none(top["p"]), "peak_p_holm": finite_or_none(top["p_holm"]), "peak_p_bh": finite_or_none(top["p_bh"]),
                                 "n_sig_raw": int(sub["sig_raw"].sum()), "n_sig_holm": int(sub["sig_holm"].sum()),
                                 "n_sig_bh": int(sub["sig_bh"].sum())}
        res["fig3"] = {"seeds": sorted(abl), "facts": facts, "tests": tests,
                       "tests_total": int(fig3_groups["p"].notna().sum()),
                       "band": {str(r["bin"]): {"lo": finite_or_none(r["control_lo"]), "hi": finite_or_none(r["control_hi"]),
                                                "n": int(r["n_controls"])} for _, r in band.iterrows()}}

    # ---- Markov control: lighter tail (larger a at scale 1) than PTB, paired by seed
    by_seed_ptb = {r.seed: r for r in coll.arm("ptb", "baseline") if r.timescales is not None}
    by_seed_mk = {r.seed: r for r in coll.arm("markov-ptb", "baseline") if r.timescales is not None}
    rows = []
    for sd in sorted(set(by_seed_ptb) & set(by_seed_mk)):
        ap, am = _a_scale1(by_seed_ptb[sd].timescales["T_data"]), _a_scale1(by_seed_mk[sd].timescales["T_data"])
        rows.append({"seed": sd, "a_scale1_ptb": ap, "a_scale1_markov": am, "diff": am - ap})
    res["markov"] = {"seeds_ptb": sorted(by_seed_ptb), "seeds_markov": sorted(by_seed_mk), "pairs": rows}
    if rows:
        m, lo, hi = _t_interval(np.array([r["diff"] for r in rows]))
        res["markov"].update(diff=m, lo=finite_or_none(lo), hi=finite_or_none(hi))
        table(pd.DataFrame(rows), "markov_control_seeds.csv")

    # ---- fits of the baselines' T_data per seed: best of all families, inverse gamma vs gamma/lognormal
    from ..distributions import fit_timescales, fit_verdict

    fits = []
    for r in coll.arm("ptb", "baseline"):
        if r.timescales is None:
            continue
        try:
            v = fit_verdict(fit_timescales(r.timescales["T_data"], "all", n_boot=0, seed=opts.seed))
        except Exception as exc:  # noqa: BLE001 - a seed whose T cannot be fitted is reported, not fatal
            fits.append({"seed": r.seed, "error": f"{type(exc).__name__}: {exc}"})
            continue
        fits.append({"seed": r.seed, "best_family": v["best_family"], "best_label": v["best_label"],
                     "delta_aic_invgamma": finite_or_none(v["delta_aic_invgamma"]),
                     "invgamma_beats_gamma_lognorm": bool({"gamma", "lognorm"} <= set(v.get("beats", [])))})
    res["fits"] = fits
    if fits:
        table(pd.DataFrame(fits), "fits_seeds.csv")

    # ---- appendix: layer-2 estimated vs assigned (T_bias of the frozen MTS layer) per seed
    from scipy.stats import spearmanr

    app = []
    for r in coll.arm("ptb", "mts"):
        t = r.timescales
        if t is None or not {"layer", "T_bias", "T_data"} <= set(t):
            continue
        l2 = t[t["layer"] == 2]
        if len(l2) > 2:
            app.append({"seed": r.seed, "spearman": float(spearmanr(l2["T_bias"], l2["T_data"]).statistic)})
    res["appendix"] = app

    fig = figure_seeds(gaps, fig3_groups, band,
                       pd.DataFrame(res["table1"]["per_seed"]) if res["table1"] else None,
                       pd.DataFrame(res["table1"]["rows"]) if res["table1"] else None)
    files += [ctx.relative(p) for p in save_pdf_png(fig, ctx.path("seeds.pdf"))]
    return as_results(from_results(SeedsResult, res), files)
