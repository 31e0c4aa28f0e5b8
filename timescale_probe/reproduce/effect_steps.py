"""Steps of ``tsprobe reproduce`` that measure the paper's effects on this run's models: Table 1
(perplexity per frequency bin, paired bootstrap), WikiText-2 perplexity, Fig. 3 (routing by unit
ablation with random control groups), Fig. 2 (Dyck-2) and the corpora's mutual-information decay.
Effects over several seeds are combined by the ``seeds`` step (:mod:`.multiseed`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import OptionError
from ..fileio import atomic_write_text, finite_or_none, save_npy, write_table
from ..paper import PAPER
from ..pipeline import StepContext, StepSkipped
from .common import OTHER_CORPORA, corpus_spec, load_model, save_figure, write_step_table
from .config import ReproduceOptions
from .results import DyckResult, MIResult, RoutingResult, Table1Result, WT2Result, as_results, from_results
from .rules import LEVEL

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
    95% chunk-bootstrap interval of each, the paired bootstrap of the difference (order statistics
    as the reference ranks them, at the report's one level, 95%, where the reference uses 99.9%)
    and the relative difference in NLL per token (%, same level),
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
    boot = paired_bootstrap(nb, nm, targets, bin_of, labels, n_resamples=R, level=LEVEL, seed=opts.seed)
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
    files = [write_step_table(ctx, table, "table1_perplexity.csv")]
    atomic_write_text(ctx.path("table1_perplexity.md"),
                      markdown_table(table.assign(level=table["level"].map(lambda v: f"{v:g}"))))
    files.append("table1_perplexity.md")
    paper = pd.DataFrame([{"bin": b, "model": "mts", "ppl": v} for b, v in PAPER["ppl_mts_bins"].items()]
                         + [{"bin": "overall", "model": "baseline", "ppl": PAPER["ppl_baseline"]},
                            {"bin": "overall", "model": "mts", "ppl": PAPER["ppl_mts"]}])
    files += save_figure(ctx, figure_table1(table, paper), "table1_perplexity.pdf")
    for name, nll in (("ptb-baseline", nb), ("ptb-mts", nm)):
        path = ctx.path("tables", f"token_nll_{name}.npy")
        save_npy(path, np.asarray(nll, dtype=np.float64), exact_narrow=True)  # float32 NLLs: stored exactly in half
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
    return as_results(from_results(WT2Result, out), [write_step_table(ctx, df, "table1_wt2_perplexity.csv")])


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
    outputs zeroed where they enter layer 3) and random control groups taking the groups' sizes in
    turn, drawn with the model's own training seed (the null), perplexity ratio per bin at the one
    95% level, beside the published ratios. The claims over seeds are decided by the seeds step."""
    from ..ablation import control_band, load_reference_ablation, reference_chunk_timescales, routing_facts, run_ablation_study
    from ..fileio import resolve_device
    from ..plots.reproduce import figure_fig3
    from ..seeds import LEVEL, _ablation_groups

    s = opts.settings
    stack, model, corpus, notes = load_model(ctx, opts, "train_ptb_mts", "ptb")
    control_seed = _train_seed(ctx)
    T = stack.timescales_table().query("layer == 2")["T_bias"].to_numpy()
    bin_of, labels = corpus.bins("train")
    tokens = corpus.tokens("test")
    ctx.progress(f"ablating {s['ablation_groups']} of layer 2 ({len(T)} units) and {s['ablation_controls']} random "
                 f"control groups over {len(tokens):,} test tokens")
    main, ctl = _ablation_groups(s["ablation_groups"], T, 2, s["ablation_controls"], control_seed)
    study = run_ablation_study(model, tokens, T, layer=2, groups=main + ctl, mode="output",
                               binnings=[("frequency", bin_of, labels)], controls=0,
                               seed=opts.seed, group_batch=s["group_batch"], n_resamples=s["n_resamples"],
                               level=LEVEL, device=resolve_device(opts.device))
    band = control_band(study.ratios_)
    files = [write_step_table(ctx, study.ratios_, "fig3_routing.csv"), write_step_table(ctx, study.groups_, "fig3_groups.csv"),
             write_step_table(ctx, band, "fig3_control_band.csv"), write_step_table(ctx, routing_table(study.ratios_), "fig3_tests.csv")]
    res: dict[str, Any] = {"ours": routing_facts(study.ratios_, study.groups_), "groups": s["ablation_groups"],
                           "controls": int(s["ablation_controls"]), "control_seed": control_seed,
                           "control_size": int(np.median([g.size for g in ctl])) if ctl else None,
                           "band": {str(r["bin"]): {"lo": finite_or_none(r["control_lo"]), "hi": finite_or_none(r["control_hi"]),
                                                    "n": int(r["n_controls"])} for _, r in band.iterrows()},
                           "tests": routing_tests(study.ratios_),
                           "ppl_intact": study.options["ppl_intact"], "units": int(len(T)), "notes": notes}
    pub = pub_groups = None
    if opts.reference_dir is not None and (opts.reference_dir / "unit_ablation").is_dir():
        pub = load_reference_ablation(opts.reference_dir / "unit_ablation")
        pub_groups = reference_chunk_timescales()
        res["published"] = routing_facts(pub, pub_groups)
        files.append(write_step_table(ctx, pub.merge(pub_groups[["group", "T_min", "T_max", "T_mean"]], on="group", how="left"),
                            "fig3_routing_published.csv"))
    files += save_figure(ctx, figure_fig3(study.ratios_, study.groups_, pub, pub_groups,
                                    title_ours=f"ours ({opts.profile}; layer 2 {s['ablation_groups']}; "
                                               f"band: {s['ablation_controls']} random groups)"),
                   "fig3_routing.pdf")
    return as_results(from_results(RoutingResult, res), files)


def _train_seed(ctx: StepContext) -> int:
    """The MTS model's training seed from its card (the draw of its random control groups)."""
    import json

    from ..training import companion_paths
    from .common import abs_path

    rec = ctx.results.get("train_ptb_mts") or {}
    card = (rec.get("card") or {})
    if card.get("seed") is not None:
        return int(card["seed"])
    cj = companion_paths(abs_path(ctx, rec["checkpoint"]))["card"] if rec.get("checkpoint") else None
    if cj is not None and cj.is_file():
        return int(json.loads(cj.read_text(encoding="utf-8")).get("seed", 0))
    return 0


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
        seeds = s["dyck_seeds"] or list(range(1, DYCK_PROFILES[s["dyck_profile"]].seeds + 1))
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
    files.append(write_step_table(ctx, results, "fig2_dyck_results.csv"))
    files.append(write_step_table(ctx, summary, "fig2_dyck.csv"))
    if paired is not None:
        files.append(write_step_table(ctx, paired, "fig2_dyck_paired.csv"))
    if spans is not None:
        files.append(write_step_table(ctx, spans, "fig2_dyck_spans.csv"))
    files += save_figure(ctx, figure_dyck(summary, spans, fit), "fig2_dyck.pdf")
    res: dict[str, Any] = {"source": source, "span_slope": fit}
    ov = summary[summary["kind"] == "overall"].set_index("arch")
    res["overall"] = {a: {"mean": float(ov.loc[a, "mean"]), "std": finite_or_none(ov.loc[a, "std"]), "seeds": int(ov.loc[a, "seeds"])}
                      for a in ov.index}
    if {"baseline", "mts"} <= set(results["arch"]):
        w = results.pivot_table(index=["kind", "seed"], columns="arch", values="accuracy", aggfunc="first")
        res["accuracy_by_seed"] = {a: {str(int(sd)): float(v) for sd, v in w.loc["overall", a].items() if np.isfinite(v)}
                                   for a in ("baseline", "mts")} if "overall" in w.index.get_level_values(0) else {}
        res["paired_by_seed"] = {kind: {str(int(sd)): float(r["mts"] - r["baseline"]) for sd, r in w.loc[kind].iterrows()
                                        if np.isfinite(r["mts"] - r["baseline"])}
                                 for kind in ("overall", "tail") if kind in w.index.get_level_values(0)}
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
    todo: list[tuple[str, str, list[str] | None]] = [("PTB", corpus_spec(ctx, opts, "ptb"), ["train"]),
                                                     ("Markov-PTB", corpus_spec(ctx, opts, "markov"), ["train"])]
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
            files_ptb = save_figure(ctx, figure_mi_decay(r.curve, r.fits, title="PTB train"), "mi_decay_ptb.pdf")
    curve_df = pd.concat(curves, ignore_index=True)
    keep = ["corpus", "distance", "mi_bits", "se_bits", "null_mean_bits", "null_max_bits", "band_bits",
            "excess_bits", "excess_se_bits", "clears_band", "retained"]
    summary_df = pd.DataFrame(summaries)
    files = [write_step_table(ctx, curve_df[[k for k in keep if k in curve_df]], "mi_decay.csv"),
             write_step_table(ctx, pd.concat(fits, ignore_index=True), "mi_fits.csv"),
             write_step_table(ctx, summary_df, "mi_summary.csv")]
    files += save_figure(ctx, figure_mi_corpora(curve_df), "mi_decay.pdf") + files_ptb
    return as_results(MIResult({r["corpus"]: {k: (finite_or_none(v) if isinstance(v, (float, np.floating)) else v)
                                               for k, v in r.items()} for r in summaries}, skipped), files)

