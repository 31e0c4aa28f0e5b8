"""The ``seeds`` step of ``tsprobe reproduce``: this run's models and the per-seed folders (e.g.
``figures/seeds/``) combined, paired by seed, into the statistics of every pre-specified claim
(:mod:`.rules`; one interval level, 95%):

- recipes: the runs of one arm must share one training recipe (:func:`timescale_probe.seeds.recipe_of`;
  device and torch version may differ); a run of another recipe is left out, with the fields that differ;
- Table 1: per seed the relative NLL gain ``100 (NLL baseline - NLL MTS) / NLL baseline`` per bin;
  overall and <100 gain by one-sided paired t across seeds; "largest on rare words" as the contrast
  of the <100 gain against every other bin; beside them the hierarchical bootstrap (seeds, then
  100-token chunks shared by the seeds) as a secondary view;
- the budget: each seed's change of the validation gap over its last epoch (:func:`.rules.budget_rule`);
- Fig. 3: the pre-specified contrasts (long-T vs short-T groups on <100; <100 vs each other bin for
  the long-T groups) against the null of k-seed means of each seed's own random controls (seeds
  with >= :data:`timescale_probe.seeds.MIN_CONTROLS` independently drawn controls); "frequent
  words never hurt" as TOST of every group's >10K log ratio within the stated margin;
- the Markov control (inverse-gamma shape at scale 1, Markov - PTB, paired by seed), the fits
  (per seed ΔAIC of the better of gamma/lognormal minus inverse gamma), the appendix (Spearman).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..pipeline import StepContext, StepSkipped
from .common import corpus_spec
from .config import ReproduceOptions
from .results import SeedsResult, as_results, from_results
from .rules import (
    Decision,
    all_of,
    budget_rule,
    contrast_rule,
    effect_rule,
    equivalence_rule,
    null_rule,
)
from .seedruns import SeedRun, collect_seed_runs, mean_gap_by_epoch, validation_gaps

#: interval level of every combination over seeds
LEVEL = 0.95
#: "frequent words are never hurt": every group's >10K log ratio within ±this (about 1% perplexity)
FREQUENT_MARGIN = 0.01
#: Monte-Carlo draws of every control null
NULL_DRAWS = 20000
BINS = (">10K", "1K-10K", "100-1K", "<100")


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
    fig3 = ctx.results.get("fig3_routing") or {}
    for step, corpus, arch, label in specs:
        rec = ctx.results.get(step) or {}
        if "checkpoint" not in rec:
            continue
        path = Path(rec["checkpoint"])
        path = path if path.is_absolute() else ctx.out / path
        cj = companion_paths(path)["card"]
        try:
            import json

            card = json.loads(cj.read_text(encoding="utf-8")) if cj.is_file() else read_card(path)
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
            run.token_nll = np.asarray(np.load(nll_file, allow_pickle=False), dtype=np.float64)
        ts = ctx.out / "tables" / f"timescales_{label}.csv"
        run.timescales = pd.read_csv(ts) if ts.is_file() else None
        if arch == "mts" and corpus == "ptb" and (ctx.out / "fig3_routing.csv").is_file():
            abl = pd.read_csv(ctx.out / "fig3_routing.csv", dtype={"group": str})
            g = ctx.out / "fig3_groups.csv"
            if g.is_file():
                abl = abl.merge(pd.read_csv(g, dtype={"group": str})[["group", "T_min", "T_max"]], on="group", how="left")
            run.ablation = abl
            run.ablation_meta = {"controls": fig3.get("controls"), "control_seed": fig3.get("control_seed")}
        expected = [("metrics.csv", run.metrics), ("timescales.csv", run.timescales)]
        if corpus == "ptb":
            expected.append(("token_nll.npy", run.token_nll))
        run.missing = [n for n, v in expected if v is None]
        runs.append(run)
    return runs


def _a_scale1(T) -> float:
    from ..distributions import fit_mle

    T = np.asarray(T, dtype=np.float64)
    T = T[np.isfinite(T) & (T > 0)]
    if T.size < 3:
        return float("nan")
    return float(fit_mle(T, "invgamma", fix_scale=1.0)[0])


def _by_recipe(runs: list[SeedRun]) -> tuple[list[SeedRun], dict[str, dict[str, list[int]]], list[str]]:
    """Keep, per arm, the runs of its most common recipe (ties: the first run's); the others are left
    out naming the fields that differ. Runs whose card holds no recipe are left out too."""
    from ..seeds import flatten_recipe, recipe_hash, recipe_of

    kept, left, recipes = [], [], {}
    arms: dict[tuple[str, str], list[SeedRun]] = {}
    for r in runs:
        arms.setdefault((r.corpus, r.arch), []).append(r)
    for (corpus, arch), rs in arms.items():
        rec = {}
        for r in rs:
            card = r.card or {}
            rec[r.seed] = recipe_of(card) if card.get("model_config") and card.get("train_config") else None
        hashes = {s: recipe_hash(v) for s, v in rec.items() if v is not None}
        if not hashes:
            kept += [r for r in rs]  # no card records a recipe (tests, old folders): nothing to compare
            continue
        count = Counter(hashes.values())
        best = max(count, key=lambda h: (count[h], -list(hashes.values()).index(h)))
        ref = flatten_recipe(next(v for s, v in rec.items() if hashes.get(s) == best))
        recipes[f"{corpus}-{arch}"] = {h: sorted(s for s, x in hashes.items() if x == h) for h in count}
        for r in rs:
            h = hashes.get(r.seed)
            if h == best:
                kept.append(r)
            elif h is None:
                left.append(f"{r.name} ({r.source}): its card records no training recipe")
            else:
                mine = flatten_recipe(rec[r.seed])
                diff = [f"{k} {mine.get(k)} vs {ref.get(k)}" for k in sorted(set(mine) | set(ref)) if mine.get(k) != ref.get(k)]
                left.append(f"{r.name} ({r.source}): another training recipe than the arm's ({'; '.join(diff[:4])})")
    return kept, recipes, left


def _qualified_ablation(run: SeedRun) -> str | None:
    """None when the run's ablation can enter the Fig. 3 contrasts, else why not."""
    from ..seeds import MIN_CONTROLS

    if run.ablation is None or "kind" not in run.ablation:
        return "no ablation table"
    n = int(run.ablation.loc[run.ablation["kind"] == "control", "group"].nunique())
    meta = run.ablation_meta or {}
    if n < MIN_CONTROLS:
        return f"{n} random control groups (needs >= {MIN_CONTROLS})"
    if meta.get("control_seed") is None or int(meta["control_seed"]) != run.seed:
        return f"controls drawn with seed {meta.get('control_seed')}, not the model's own seed (not independent per seed)"
    return None


def table1_decisions(per_seed: pd.DataFrame, budget: str | None) -> dict[str, Decision]:
    """The three Table 1 claims from the per-seed relative NLL gains (``seed, bin, rel_nll_pct``)."""
    w = per_seed.pivot_table(index="seed", columns="bin", values="rel_nll_pct")
    out = {"table1.overall_gain": effect_rule(w["overall"].to_numpy(), unit="%", budget=budget,
                                              what="relative NLL gain of MTS over the baseline, overall")}
    if "<100" in w:
        out["table1.rare_gain"] = effect_rule(w["<100"].to_numpy(), unit="%", budget=budget,
                                              what="relative NLL gain on rare words (<100)")
        others = [b for b in BINS if b != "<100" and b in w and w[b].notna().any()]  # a bin without tokens has no gain
        M = np.column_stack([w["<100"].to_numpy() - w[b].to_numpy() for b in others])
        out["table1.rare_gain_largest"] = contrast_rule(M, [f"<100 - {b}" for b in others], unit=" points",
                                                        budget=budget, what="gain on <100 minus the gain on another bin")
    return out


def fig3_decisions(tables: dict[int, pd.DataFrame], controlled: dict[int, pd.DataFrame], *, seed: int = 0
                   ) -> tuple[dict[str, Decision], dict[str, Any]]:
    """The Fig. 3 claims: contrasts of ``controlled`` seeds against k-seed means of their controls,
    and TOST of the >10K bin over every seed with an ablation table (``tables``)."""
    from ..ablation.seeds import routing_contrasts
    from ..stats import mean_of_draws_null

    per = {s: routing_contrasts(t, n_draws=NULL_DRAWS, seed=seed + s) for s, t in sorted(controlled.items())}
    per = {s: p for s, p in per.items() if p["observed"]}
    info: dict[str, Any] = {"long": [], "short": []}
    out: dict[str, Decision] = {}
    names = sorted({k for p in per.values() for k in p["observed"]})
    if per or tables:  # which groups are long and short (from any seed's groups: they are the same in all)
        first = next(iter(per.values())) if per else routing_contrasts(next(iter(tables.values())), n_draws=1)
        info.update(long=first["long"], short=first["short"])

    def decide(name: str, what: str) -> Decision:
        seeds = [s for s in per if name in per[s]["observed"]]
        obs = [per[s]["observed"][name] for s in seeds]
        if not seeds:
            return null_rule([], np.array([]), what=what)
        null = mean_of_draws_null([per[s]["null"][name] for s in seeds], n_draws=NULL_DRAWS, seed=seed)
        single = np.concatenate([per[s]["null"][name] for s in seeds])
        return null_rule(obs, null, what=what, null_single=single)

    out["fig3.rare_long_vs_short"] = decide(
        "long_vs_short", "log ratio on <100, long-T groups (all T >= 10) minus short-T groups (all T <= 1)")
    parts = [(n, decide(n, f"log ratio of the long-T groups on <100 minus on {n.removeprefix('rare_vs_')}"))
             for n in names if n.startswith("rare_vs_")]
    out["fig3.rare_vs_bins_long"] = all_of([d for _, d in parts], [n.replace("rare_vs_", "<100 vs ") for n, _ in parts],
                                          "for the long-T groups, the <100 log ratio exceeds that of every other bin, "
                                          "each against the null of k-seed means of controls at 2.5%; all must hold")
    out["fig3.rare_routed_specifically"] = all_of(
        [out["fig3.rare_long_vs_short"], out["fig3.rare_vs_bins_long"]], ["long vs short T", "<100 vs other bins"],
        "the paper's claim as one pre-specified contrast: both parts against the controls must hold")
    # "never hurt": every group's >10K log ratio within the margin, over all seeds with an ablation
    mats = {}
    for s, t in tables.items():
        g = t[(t["kind"] == "group") & (t["bin"] == ">10K")] if "kind" in t else t[t["bin"] == ">10K"]
        mats[s] = g.set_index(g["group"].astype(str))["ratio"]
    if mats:
        frame = pd.DataFrame(mats).T.dropna(axis=1)
        out["fig3.frequent_never_hurt"] = equivalence_rule(np.log(frame.to_numpy(dtype=np.float64)),
                                                           [f"group {c}" for c in frame.columns], FREQUENT_MARGIN,
                                                           what="group's >10K log ratio")
    info["seeds_contrasts"] = sorted(per)
    return out, info


def step_seeds(ctx: StepContext, opts: ReproduceOptions) -> dict[str, Any]:
    """Gather the seeds, combine them, decide the pre-specified claims, write the tables and the figure."""
    from ..ablation import combine_seed_ratios, routing_facts, seed_mean_band
    from ..corpora import load_corpus
    from ..evaluation import seed_paired_comparison
    from ..fileio import finite_or_none, write_table
    from ..plots.reproduce import figure_seeds, save_pdf_png

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
    coll.runs, recipes, left = _by_recipe(coll.runs)
    files: list[str] = []
    res: dict[str, Any] = {"arms": {f"{c}-{a}": coll.seeds(c, a) for c, a in
                                    sorted({(r.corpus, r.arch) for r in coll.runs})},
                           "sources": {r.name: r.source for r in coll.runs},
                           "missing": {r.name: r.missing for r in coll.runs if r.missing},
                           "left_out": coll.left_out + left, "seeds_dir": str(opts.seeds_dir) if opts.seeds_dir else None,
                           "level": LEVEL, "recipes": recipes,
                           "devices": {r.name: str((r.card or {}).get("device")) for r in coll.runs}}
    decisions: dict[str, Decision] = {}

    def table(df: pd.DataFrame, name: str) -> None:
        write_table(df, ctx.path(name))
        files.append(name)

    # ---- validation gap per epoch; the budget judged from each seed's last change
    pairs = coll.pairs("ptb", "baseline", "mts")
    gaps = validation_gaps(pairs)
    last = {}
    for sd, g in gaps.groupby("seed"):
        g = g.sort_values("epoch")
        if len(g) >= 2:
            last[int(sd)] = float(g["gap_pct"].iloc[-1] - g["gap_pct"].iloc[-2])
    budget = budget_rule(last)
    res["gap"] = {"seeds": sorted(int(x) for x in gaps["seed"].unique()), "mean_by_epoch": mean_gap_by_epoch(gaps),
                  "last_change": [[k, v] for k, v in sorted(last.items())], "budget": budget}
    if not gaps.empty:
        table(gaps, "validation_gap.csv")

    # ---- Table 1 over seeds
    both = [(a, b) for a, b in pairs if a.token_nll is not None and b.token_nll is not None]
    res["table1"] = None
    if both and corpora:
        corpus = load_corpus(corpus_spec(ctx, opts, "ptb"))
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
            decisions.update(table1_decisions(per, budget))
    res["arm_counts"] = {"ptb-baseline": len(coll.arm("ptb", "baseline")), "ptb-mts": len(coll.arm("ptb", "mts")),
                         "markov-ptb-baseline": len(coll.arm("markov-ptb", "baseline"))}

    # ---- Fig. 3 over seeds: descriptive table, the k-seed-mean control band, the pre-specified claims
    mts = [r for r in coll.arm("ptb", "mts") if r.ablation is not None and "kind" in r.ablation]
    abl = {r.seed: r.ablation for r in mts}
    why_not = {r.seed: _qualified_ablation(r) for r in mts}
    controlled = {sd: abl[sd] for sd, why in why_not.items() if why is None}
    res["fig3"] = None
    fig3_groups = band = None
    if abl:
        fig3_groups, _ = combine_seed_ratios(abl, level=LEVEL)
        table(fig3_groups, "fig3_seeds.csv")
        band = seed_mean_band(controlled, seed=opts.seed) if controlled else pd.DataFrame()
        if not band.empty:
            table(band, "fig3_seeds_control_band.csv")
        facts = routing_facts(fig3_groups.assign(kind="group", ratio_lo=fig3_groups["lo"], ratio_hi=fig3_groups["hi"]))
        d3, info = fig3_decisions(abl, controlled, seed=opts.seed)
        decisions.update(d3)
        res["fig3"] = {"seeds": sorted(abl), "seeds_controls": sorted(controlled), "facts": facts,
                       "left_out": [f"seed {sd}: {why}" for sd, why in sorted(why_not.items()) if why],
                       "band": {str(r["bin"]): {"lo": finite_or_none(r["null_lo"]), "hi": finite_or_none(r["null_hi"]),
                                                "n_seeds": int(r["n_seeds"]), "n_controls": int(r["n_controls"])}
                                for _, r in band.iterrows()} if band is not None and not band.empty else {},
                       "long": info["long"], "short": info["short"]}

    # ---- Markov control: lighter tail (larger a at scale 1) than PTB, paired by seed
    by_seed_ptb = {r.seed: r for r in coll.arm("ptb", "baseline") if r.timescales is not None}
    by_seed_mk = {r.seed: r for r in coll.arm("markov-ptb", "baseline") if r.timescales is not None}
    rows = []
    for sd in sorted(set(by_seed_ptb) & set(by_seed_mk)):
        ap, am = _a_scale1(by_seed_ptb[sd].timescales["T_data"]), _a_scale1(by_seed_mk[sd].timescales["T_data"])
        rows.append({"seed": sd, "a_scale1_ptb": ap, "a_scale1_markov": am, "diff": am - ap})
    res["markov"] = {"seeds_ptb": sorted(by_seed_ptb), "seeds_markov": sorted(by_seed_mk), "pairs": rows}
    if rows:
        table(pd.DataFrame(rows), "markov_control_seeds.csv")
        decisions["fig1.markov_lighter_tail"] = effect_rule(
            [r["diff"] for r in rows], what="inverse-gamma shape at scale 1, Markov-PTB minus PTB baseline")

    # ---- fits of the baselines' T_data per seed: inverse gamma vs gamma/lognormal, and the best of all
    from ..distributions import fit_timescales, fit_verdict

    fits = []
    for r in coll.arm("ptb", "baseline"):
        if r.timescales is None:
            continue
        try:
            ft = fit_timescales(r.timescales["T_data"], "all", n_boot=0, seed=opts.seed)
            v = fit_verdict(ft)
        except Exception as exc:  # noqa: BLE001 - a seed whose T cannot be fitted is reported, not fatal
            fits.append({"seed": r.seed, "error": f"{type(exc).__name__}: {exc}"})
            continue
        aic = ft.fits_.set_index("family")["aic"]
        rival = aic.reindex(["gamma", "lognorm"]).min()
        fits.append({"seed": r.seed, "best_family": v["best_family"], "best_label": v["best_label"],
                     "delta_aic_invgamma": finite_or_none(v["delta_aic_invgamma"]),
                     "aic_margin_vs_gamma_lognorm": finite_or_none(float(rival - aic.get("invgamma", np.nan))),
                     "invgamma_beats_gamma_lognorm": bool({"gamma", "lognorm"} <= set(v.get("beats", [])))})
    res["fits"] = fits
    if fits:
        table(pd.DataFrame(fits), "fits_seeds.csv")
        margins = [f["aic_margin_vs_gamma_lognorm"] for f in fits if f.get("aic_margin_vs_gamma_lognorm") is not None]
        if margins:
            decisions["fig1.ours_invgamma_beats_gamma_lognormal"] = effect_rule(
                margins, what="AIC of the better of gamma/lognormal minus AIC of inverse gamma")

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
    res["decisions"] = decisions

    fig = figure_seeds(gaps, fig3_groups, _band_for_figure(band),
                       pd.DataFrame(res["table1"]["per_seed"]) if res["table1"] else None,
                       pd.DataFrame(res["table1"]["rows"]) if res["table1"] else None)
    files += [ctx.relative(p) for p in save_pdf_png(fig, ctx.path("seeds.pdf"))]
    return as_results(from_results(SeedsResult, res), files)


def _band_for_figure(band: pd.DataFrame | None) -> pd.DataFrame | None:
    """The k-seed-mean null band in the columns the seeds figure draws (``bin, control_lo, control_hi``)."""
    if band is None or band.empty:
        return None
    return band.rename(columns={"null_lo": "control_lo", "null_hi": "control_hi", "n_controls": "n_controls"})
