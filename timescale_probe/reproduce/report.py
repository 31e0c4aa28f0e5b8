"""The report of ``tsprobe reproduce``: each of our numbers beside the paper's, with its interval
and a verdict (:mod:`.verdicts`: code check, reproduced / contradicted / inconclusive, not
comparable at this scale, not run, beyond the paper), as ``report.md``, ``report.html`` (figures as
``<img>`` of the PNG twins) and ``claims.csv``.

Evidence rules: our code on the authors' arrays is a *code check*; an effect of training needs at
least 3 seeds per arm, a budget that is not visibly too small, and an interval that clears the
null (models of this run and the per-seed folders are combined by the ``seeds`` step,
:mod:`.multiseed`); claims the paper does not make have their own *beyond the paper* part, to
which registered studies (:func:`timescale_probe.reproduce.steps.register_study`) add sections.
"""
from __future__ import annotations

import html
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..fileio import atomic_write_text, write_table
from ..paper import PAPER
from ..pipeline import StepContext, load_record
from .config import ReproduceOptions, repo_root
from .results import (
    AppendixResult,
    DyckResult,
    MIResult,
    PublishedTimescalesResult,
    RoutingResult,
    SeedsResult,
    Table1Result,
    TimescaleResult,
    TrainResult,
    WT2Result,
    from_results,
    load,
)
from .verdicts import (
    BEYOND,
    CODE_FAIL,
    CODE_PASS,
    CONTRADICTED,
    INCONCLUSIVE,
    MIN_SEEDS,
    NOT_COMPARABLE,
    NOT_RUN,
    OUTCOMES,
    REPRODUCED,
    VERDICTS,
    Verdict,
    beyond_outcome,
    code_check,
    code_check_holds,
    count_verdicts,
    effect_verdict,
    finite,
    published_tolerance,
    summary_line,
    value_verdict,
)

__all__ = ["Claim", "build_claims", "write_report", "step_report", "VERDICTS", "published_tolerance",
           "REPRODUCED", "CONTRADICTED", "INCONCLUSIVE", "NOT_COMPARABLE", "NOT_RUN", "CODE_PASS", "CODE_FAIL", "BEYOND"]

BEYOND_PREFIX = "Beyond the paper: "


@dataclass
class Claim:
    """One row of the report: ``paper`` and ``ours`` as display strings, ``interval`` of ours.
    ``outcome``: for a *beyond the paper* row, how it came out (:data:`.verdicts.OUTCOMES`)."""

    section: str
    claim: str
    paper: str
    ours: str
    interval: str
    verdict: str
    note: str = ""
    step: str = ""
    outcome: str = ""


_ok = finite


def fmt(x, nd: int = 2, pct: bool = False) -> str:
    if not _ok(x):
        return "-"
    if pct:
        return f"{100 * x:.{nd}f}%"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 10 ** -nd):
        return f"{x:.{nd}e}"
    return f"{x:.{nd}f}"


def interval(lo, hi, nd: int = 2, pct: bool = False, level: str = "") -> str:
    if not (_ok(lo) and _ok(hi)):
        return "-"
    return f"[{fmt(lo, nd, pct)}, {fmt(hi, nd, pct)}]" + (f" ({level})" if level else "")


def _claim(section, claim, paper, ours, iv, v: Verdict, note="", step="") -> Claim:
    reason = v.reason if not note else (f"{note}; {v.reason}" if v.reason else note)
    return Claim(section, claim, paper, ours, iv, v.verdict, reason, step)


def _status(records: dict[str, dict], step: str) -> tuple[bool, str]:
    rec = records.get(step) or {}
    if rec.get("status") == "done":
        return True, ""
    if not rec:
        return False, f"step {step} has not run"
    return False, f"step {step} {rec.get('status')}: {rec.get('reason', '')}"


def _not_run(section, claim, paper, step, reason) -> Claim:
    return Claim(section, claim, paper, "-", "-", NOT_RUN, reason, step)


def _seeds_results(records: dict) -> SeedsResult:
    """The ``seeds`` step's results; an empty one when it did not finish."""
    return load(records, "seeds", SeedsResult) or SeedsResult()


def _union(lo, hi, t_lo, t_hi) -> tuple[Any, Any]:
    """The conservative interval: it clears the null only when both intervals do."""
    if _ok(t_lo) and _ok(t_hi) and _ok(lo) and _ok(hi):
        return min(lo, t_lo), max(hi, t_hi)
    return lo, hi


# ----------------------------------------------------------------------------------------------
# Table 1
# ----------------------------------------------------------------------------------------------

def _table1_source(records: dict) -> tuple[dict[str, dict], dict[str, int], str, str]:
    """Rows by bin, seeds per arm, the interval's label and where they come from: the combination
    over seeds when the ``seeds`` step has it, else this run's pair of models."""
    sr = _seeds_results(records)
    t = sr.table1
    if t:
        rows = {r["bin"]: dict(r) for r in t["rows"]}
        for r in rows.values():
            r["v_lo"], r["v_hi"] = _union(r.get("lo"), r.get("hi"), r.get("t_lo"), r.get("t_hi"))
        n = len(t["seeds"])
        counts = sr.arm_counts
        seeds = {"baseline": min(n, counts.get("ptb-baseline", n)), "mts": min(n, counts.get("ptb-mts", n))}
        return rows, seeds, (f"95%: hierarchical bootstrap over {n} seed(s) then chunks, and t across seeds "
                             "(the verdict needs both to clear 0)"), f"seeds {', '.join(map(str, t['seeds']))}"
    t1 = load(records, "table1_perplexity", Table1Result)
    rows = {b: dict(r, v_lo=r.get("lo"), v_hi=r.get("hi")) for b, r in t1.by_bin().items()}
    return rows, {"baseline": 1, "mts": 1}, "99.9% paired chunk bootstrap, one seed", "this run's pair of models"


def table1_claims(records: dict, comparable: bool) -> list[Claim]:
    sec, step = "Table 1 (PTB test perplexity)", "table1_perplexity"
    ok, why = _status(records, step)
    items = [("baseline, overall", PAPER["ppl_baseline"], "baseline", "overall"),
             ("MTS, overall", PAPER["ppl_mts"], "mts", "overall")]
    items += [(f"MTS, bin {b}", v, "mts", b) for b, v in PAPER["ppl_mts_bins"].items()]
    c_all = "MTS better than baseline overall (baseline - MTS > 0)"
    c_rare = "MTS better than baseline on rare words (<100) (baseline - MTS > 0)"
    p_all = f"yes ({PAPER['ppl_baseline']} -> {PAPER['ppl_mts']})"
    if not ok and not _seeds_results(records).table1:
        out = [_not_run(sec, f"perplexity {name}", fmt(p), step, why) for name, p, _, _ in items]
        return out + [_not_run(sec, c_all, p_all, step, why),
                      _not_run(sec, c_rare, "yes (gain largest on rare words)", step, why)]
    rows, seeds, level, source = _table1_source(records)
    budget = _seeds_results(records).gap.get("budget")
    out = []
    for name, p, model, b in items:
        r = rows.get(b, {})
        v, lo, hi = r.get(f"ppl_{model}"), r.get(f"ppl_{model}_lo"), r.get(f"ppl_{model}_hi")
        out.append(_claim(sec, f"perplexity {name}", fmt(p), fmt(v), interval(lo, hi, level="95%"),
                          value_verdict(v, p, comparable=comparable, lo=lo, hi=hi, seeds=seeds[model]),
                          source, step))
    for claim, b, paper in ((c_all, "overall", p_all), (c_rare, "<100", "yes (gain largest on rare words)")):
        r = rows.get(b, {})
        v = effect_verdict(r.get("v_lo"), r.get("v_hi"), seeds=seeds, budget=budget)
        rel = f"; NLL per token {fmt(r.get('rel_nll_pct'))}% lower" if _ok(r.get("rel_nll_pct")) else ""
        iv = interval(r.get("lo"), r.get("hi"), level=level)
        if _ok(r.get("t_lo")):
            iv += f"; t {interval(r.get('t_lo'), r.get('t_hi'))}"
        out.append(_claim(sec, claim, paper, f"{fmt(r.get('diff'))}{rel}", iv, v, source, step))
    return out


def table1_full(records: dict) -> list[str]:
    """Markdown lines: Table 1 in full (per bin perplexities, difference and relative NLL
    difference with intervals and directions), the bin counting, the method, the validation gap."""
    ok, _ = _status(records, "table1_perplexity")
    sr = _seeds_results(records)
    if not ok and not sr.table1:
        return []
    rows, seeds, level, source = _table1_source(records)
    lines = ["", "### Table 1 in full", "",
             f"Source: {source}. Interval: {level}. Perplexities with 95% chunk-bootstrap intervals. "
             "Difference = baseline - MTS perplexity; relative difference = (NLL baseline - NLL MTS) / NLL "
             "baseline per token; > 0: MTS better.", "",
             "| bin | tokens | baseline | MTS | baseline - MTS | NLL diff % | direction |", "|---|---:|---|---|---|---|---|"]
    for b, r in rows.items():
        d_iv = interval(r.get("lo"), r.get("hi"))
        if _ok(r.get("t_lo")):
            d_iv += f" t {interval(r.get('t_lo'), r.get('t_hi'))}"
        rel_iv = interval(r.get("rel_lo"), r.get("rel_hi"), 3)
        if _ok(r.get("rel_t_lo")):
            rel_iv += f" t {interval(r.get('rel_t_lo'), r.get('rel_t_hi'), 3)}"
        direction = r.get("direction", "")
        if _ok(r.get("t_lo")) and _ok(r.get("t_hi")) and _ok(r.get("lo")) and _ok(r.get("hi")):
            side = (r["lo"] > 0) - (r["hi"] < 0)
            t_side = (r["t_lo"] > 0) - (r["t_hi"] < 0)
            if side != t_side:
                direction += " (the t interval across seeds " + ("includes 0)" if t_side == 0 else "disagrees)")
        lines.append(f"| {b} | {r.get('tokens', '')} | {fmt(r.get('ppl_baseline'))} "
                     f"{interval(r.get('ppl_baseline_lo'), r.get('ppl_baseline_hi'))} | {fmt(r.get('ppl_mts'))} "
                     f"{interval(r.get('ppl_mts_lo'), r.get('ppl_mts_hi'))} | {fmt(r.get('diff'))} {d_iv} | "
                     f"{fmt(r.get('rel_nll_pct'), 3)} {rel_iv} | {_md_escape(direction)} |")
    t1 = load(records, "table1_perplexity", Table1Result)
    bins = t1.bins if t1 else None
    if bins:
        lines += ["", f"Bin counting: {bins['line']}."]
    gap = sr.gap
    if gap.get("mean_by_epoch"):
        g = ", ".join(f"{x:+.1f}" for x in gap["mean_by_epoch"])
        lines += ["", f"Validation gap MTS vs baseline per epoch (valid ppl MTS / baseline - 1, %, mean over seeds "
                      f"{', '.join(map(str, gap['seeds']))}): {g}. "
                  + (f"Budget visibly too small: {gap['budget']}." if gap.get("budget") else
                     "The gap had settled by the last epoch (moved by at most 1 point).")]
    return lines


def wt2_claims(records: dict, comparable: bool) -> list[Claim]:
    sec, step = "Table 1 (WikiText-2)", "wt2_perplexity"
    ok, why = _status(records, step)
    if not ok:
        return [_not_run(sec, "perplexity MTS, WikiText-2 test", fmt(PAPER["ppl_wt2_mts"]), step, why)]
    v = load(records, step, WT2Result).ppl_mts
    return [_claim(sec, "perplexity MTS, WikiText-2 test", fmt(PAPER["ppl_wt2_mts"]), fmt(v), "-",
                   value_verdict(v, PAPER["ppl_wt2_mts"], comparable=comparable), "", step)]


# ----------------------------------------------------------------------------------------------
# Fig. 1, fits, Markov control
# ----------------------------------------------------------------------------------------------

def _fit_text(fit: dict) -> str:
    if not fit.get("best_family"):
        return ""
    return (f"best of {fit.get('families', '?')} families: {fit.get('best_label', fit['best_family'])} "
            f"(inverse gamma ΔAIC {fmt(fit.get('delta_aic_invgamma'), 1)}; KS of inverse gamma "
            f"{fmt(fit.get('invgamma_ks'), 3)}, p {fmt(fit.get('invgamma_ks_p'), 3)}"
            + ("; rejected, so its intervals come from the nonparametric bootstrap" if fit.get("invgamma_ks_rejected") else "")
            + ")")


def timescale_claims(records: dict, comparable: bool) -> list[Claim]:
    out: list[Claim] = []
    sec = "Fig. 1 (timescales of the baseline)"
    step = "published_timescales"
    ok, why = _status(records, step)
    checks = [("ptb", "median T", "median", PAPER["T_median"], False), ("ptb", "max T", "max", PAPER["T_max"], False),
              ("ptb", "share of units with T > 10", "share_gt_10", PAPER["T_share_gt_10"], True),
              ("ptb", "inverse gamma a (free scale)", "a", PAPER["invgamma_a"], False),
              ("ptb", "inverse gamma b (free scale)", "b", PAPER["invgamma_b"], False),
              ("ptb", "inverse gamma a (scale 1)", "a_scale1", PAPER["invgamma_a_scale1"], False),
              ("wt2", "median T", "median", PAPER["T_wt2_median"], False),
              ("wt2", "max T", "max", PAPER["T_wt2_max"], False),
              ("wt2", "inverse gamma a (free scale)", "a", PAPER["invgamma_wt2_a"], False),
              ("wt2", "inverse gamma b (free scale)", "b", PAPER["invgamma_wt2_b"], False),
              ("wt2", "inverse gamma a (scale 1)", "a_scale1", PAPER["invgamma_wt2_a_scale1"], False)]
    note = "our estimator and fitter on the published T_est arrays"
    for corpus, what, key, paper, pct in checks:
        claim = f"{corpus.upper()} baseline (authors' arrays, our code): {what}"
        ptxt = fmt(paper, 1, True) if pct else (f"{paper:.2f}" if key in ("a", "b", "a_scale1") else str(paper))
        if not ok:
            out.append(_not_run(sec, claim, ptxt, step, why))
            continue
        r = getattr(load(records, step, PublishedTimescalesResult), corpus)
        src = r["summary"] if key in r["summary"] else r["fit"]
        v = src.get(key)
        method = r["fit"].get(f"{key}_ci_method") or r["fit"].get("ci_method") or ""  # nonparametric where KS rejects
        iv = (interval(src.get(f"{key}_lo"), src.get(f"{key}_hi"), level=f"95% {method} bootstrap".replace("  ", " "))
              if key in r["fit"] else "-")
        # the inverse-gamma parameters are printed with two decimals (1.40 reads as 1.4 here)
        tol = 0.01 if key in ("a", "b", "a_scale1") else None
        out.append(_claim(sec, claim, ptxt, fmt(v, 3, pct) if not pct else fmt(v, 2, True), iv,
                          code_check(v, paper, tol=tol), note, step))
    if ok:
        for corpus in ("ptb", "wt2"):
            fit = getattr(load(records, step, PublishedTimescalesResult), corpus)["fit"]
            if "invgamma_beats_gamma_lognorm" in fit:
                out.append(_claim(sec, f"{corpus.upper()} baseline (authors' arrays, our code): inverse gamma fits "
                                       "better than gamma and lognormal (AIC)", "yes",
                                  f"{'yes' if fit['invgamma_beats_gamma_lognorm'] else 'no'}; {_fit_text(fit)}", "-",
                                  code_check_holds(bool(fit["invgamma_beats_gamma_lognorm"])),
                                  "the paper's comparison of three families; the best of all is named beside it", step))
    sr = _seeds_results(records)
    for corpus, step, name in (("ptb", "timescales_ptb", "PTB"), ("wt2", "timescales_wt2", "WT2")):
        ok, why = _status(records, step)
        pre = "" if corpus == "ptb" else "wt2_"
        items = [("median T_data", "median", PAPER[f"T_{pre}median"], False),
                 ("max T_data", "max", PAPER[f"T_{pre}max"], False)]
        if corpus == "ptb":
            items.append(("share of units with T_data > 10", "share_gt_10", PAPER["T_share_gt_10"], True))
        fa = "invgamma_a" if corpus == "ptb" else "invgamma_wt2_a"
        items += [("inverse gamma a (free scale)", "a", PAPER[fa], False),
                  ("inverse gamma b (free scale)", "b", PAPER[fa.replace("_a", "_b")], False),
                  ("inverse gamma a (scale 1)", "a_scale1", PAPER[fa + "_scale1"], False)]
        for what, key, paper, pct in items:
            claim = f"our {name} baseline: {what}"
            ptxt = fmt(paper, 1, True) if pct else (f"{paper:.2f}" if key in ("a", "b", "a_scale1") else str(paper))
            if not ok:
                out.append(_not_run(sec, claim, ptxt, step, why))
                continue
            r = load(records, step, TimescaleResult)
            src = r.summary if key in r.summary else (r.fit or {})
            v = src.get(key)
            lo, hi = src.get(f"{key}_lo"), src.get(f"{key}_hi")
            out.append(_claim(sec, claim, ptxt, fmt(v, 2, pct) if pct else fmt(v, 3),
                              interval(lo, hi, 3, level=f"95% {src.get(f'{key}_ci_method') or src.get('ci_method') or ''} "
                                                          "bootstrap".replace("  ", " ")),
                              value_verdict(v, paper, comparable=comparable, lo=lo, hi=hi), "", step))
        if ok:
            fit = load(records, step, TimescaleResult).fit or {}
            claim = f"our {name} baseline: inverse gamma fits better than gamma and lognormal (AIC)"
            per_seed = [f for f in sr.fits if "best_family" in f] if corpus == "ptb" else []
            if per_seed:
                wins = [f["invgamma_beats_gamma_lognorm"] for f in per_seed]
                n = len(wins)
                if n < MIN_SEEDS:
                    v = Verdict(INCONCLUSIVE, f"only {n} seed(s) (needs >= {MIN_SEEDS})")
                elif all(wins):
                    v = Verdict(REPRODUCED, f"in all {n} seeds")
                elif not any(wins):
                    v = Verdict(CONTRADICTED, f"in none of {n} seeds")
                else:
                    v = Verdict(INCONCLUSIVE, f"in {sum(wins)} of {n} seeds")
                best = "; ".join(f"seed {f['seed']}: best {f['best_label']} (inverse gamma ΔAIC "
                                 f"{fmt(f['delta_aic_invgamma'], 1)})" for f in per_seed)
                out.append(_claim(sec, claim, "yes (authors' arrays)",
                                  f"{sum(wins)} of {n} seeds; {best}", "-", v, _fit_text(fit), step))
            else:
                beats = fit.get("invgamma_beats_gamma_lognorm")
                v = Verdict(INCONCLUSIVE, "only 1 seed (needs >= 3)") if beats is not None else Verdict(NOT_RUN, "no fit")
                out.append(_claim(sec, claim, "yes (authors' arrays)",
                                  f"{'yes' if beats else 'no'}; {_fit_text(fit)}", "-", v, "", step))
    out.append(markov_claim(records))
    return out


def markov_claim(records: dict) -> Claim:
    sec = "Fig. 1 (timescales of the baseline)"
    claim = "Markov-PTB baseline has a narrower (lighter-tailed) timescale distribution than the PTB baseline"
    okp, whyp = _status(records, "timescales_ptb")
    okm, whym = _status(records, "timescales_markov")
    mk = _seeds_results(records).markov
    note = "larger inverse-gamma shape at scale 1 = lighter tail; difference Markov - PTB, paired by seed"
    if mk.get("pairs") and len(mk["pairs"]) >= 2:
        seeds = {"PTB": len(mk["seeds_ptb"]), "Markov-PTB": len(mk["seeds_markov"])}
        v = effect_verdict(mk.get("lo"), mk.get("hi"), seeds=seeds)
        per = "; ".join(f"seed {p['seed']}: {fmt(p['a_scale1_markov'])} vs {fmt(p['a_scale1_ptb'])}" for p in mk["pairs"])
        return _claim(sec, claim, "yes", f"a(scale 1) Markov - PTB {fmt(mk.get('diff'))} ({per})",
                      interval(mk.get("lo"), mk.get("hi"), level=f"95% t across {len(mk['pairs'])} seed pairs"),
                      v, note, "seeds")
    if not (okp and okm):
        return _not_run(sec, claim, "yes", "timescales_markov", whym or whyp)
    tp, tm = load(records, "timescales_ptb", TimescaleResult), load(records, "timescales_markov", TimescaleResult)
    fp, fm, p_sum, m_sum = tp.fit, tm.fit, tp.summary, tm.summary
    d = fm["a_scale1"] - fp["a_scale1"]
    # one pair: the difference's interval from the two bootstrap intervals (normal approximation)
    se = math.hypot((fm["a_scale1_hi"] - fm["a_scale1_lo"]) / 3.92, (fp["a_scale1_hi"] - fp["a_scale1_lo"]) / 3.92)
    v = effect_verdict(d - 1.96 * se, d + 1.96 * se, seeds={"PTB": 1, "Markov-PTB": 1})
    return _claim(sec, claim, "yes",
                  f"a(scale 1) {fmt(fm['a_scale1'])} vs {fmt(fp['a_scale1'])} (difference {fmt(d)}); 90th pct T "
                  f"{fmt(m_sum['q90'])} vs {fmt(p_sum['q90'])}",
                  interval(d - 1.96 * se, d + 1.96 * se, level="95%, from the two bootstrap intervals"), v, note,
                  "timescales_markov")


def appendix_claims(records: dict) -> list[Claim]:
    sec, step = "Appendix (MTS: estimated vs assigned)", "appendix_mts"
    ok, why = _status(records, step)
    claim = "layer-2 estimated timescales follow the assigned ones (Spearman rank correlation >= 0.9)"
    if not ok:
        return [_not_run(sec, claim, "yes", step, why)]
    stats = {(s["source"], s["layer"]): s for s in load(records, step, AppendixResult).stats}
    pub, ours = stats.get(("published", 2)), stats.get(("ours", 2))
    out = []
    if pub:
        out.append(_claim(sec, "published MTS arrays (our code): " + claim, "yes", f"rho {fmt(pub['spearman'], 3)}", "-",
                          code_check_holds(_ok(pub["spearman"]) and pub["spearman"] >= 0.9, "rule: rho >= 0.9"),
                          "our estimator's ranks on the authors' PTB MTS arrays", step))
    per_seed = _seeds_results(records).appendix
    if per_seed:
        rhos = [a["spearman"] for a in per_seed]
        n = len(rhos)
        hold = [r >= 0.9 for r in rhos]
        v = (Verdict(INCONCLUSIVE, f"only {n} seed(s) (needs >= {MIN_SEEDS})") if n < MIN_SEEDS else
             Verdict(REPRODUCED, f"rho >= 0.9 in all {n} seeds") if all(hold) else
             Verdict(CONTRADICTED, f"rho < 0.9 in all {n} seeds") if not any(hold) else
             Verdict(INCONCLUSIVE, f"rho >= 0.9 in {sum(hold)} of {n} seeds"))
        out.append(_claim(sec, "our MTS models: " + claim, "yes",
                          "; ".join(f"seed {a['seed']}: rho {fmt(a['spearman'], 3)}" for a in per_seed), "-", v,
                          "rank agreement of all layer-2 units", "seeds"))
    elif ours is not None:
        v = Verdict(INCONCLUSIVE, "only 1 seed (needs >= 3)")
        out.append(_claim(sec, "our MTS model: " + claim, "yes",
                          f"rho {fmt(ours['spearman'], 3)}; median |log10(est/assigned)| "
                          f"{fmt(ours['median_abs_log10_ratio'], 2)}", "-", v, "", step))
    return out or [_not_run(sec, claim, "yes", "timescales_mts", "no MTS model here")]


# ----------------------------------------------------------------------------------------------
# Fig. 3
# ----------------------------------------------------------------------------------------------

def routing_claims(records: dict, comparable: bool) -> list[Claim]:
    sec, step = "Fig. 3 (routing by ablation of layer-2 chunks)", "fig3_routing"
    ok, why = _status(records, step)
    c1 = "rare words (<100) hurt most by ablating long-timescale units"
    c2 = "frequent words (>10K) never hurt (ratio never above 1)"
    p1 = f"peak {PAPER['fig3_rare_peak']} at chunk {PAPER['fig3_rare_peak_chunk']} of {PAPER['fig3_chunks']} (T about 94)"
    p2 = "max ratio <= 1.0"
    sr = _seeds_results(records).fig3 or {}
    if not ok and not sr:
        return [_not_run(sec, c1, p1, step, why), _not_run(sec, c2, p2, step, why)]
    out = []
    rr = load(records, step, RoutingResult)
    pub = rr.published if rr else None
    if pub:
        rare, freq = pub.get("<100", {}), pub.get(">10K", {})
        pos_ok = rare.get("peak_position") == PAPER["fig3_rare_peak_chunk"]
        v = code_check(rare.get("peak_ratio"), PAPER["fig3_rare_peak"])
        if v.verdict == CODE_PASS and not pos_ok:
            v = Verdict(CODE_FAIL, f"peak at chunk {rare.get('peak_position')}")
        out.append(_claim(sec, "published ratios (authors' arrays, our loader): <100 peak", p1,
                          f"{fmt(rare.get('peak_ratio'), 3)} at chunk {rare.get('peak_position')} (T_max "
                          f"{fmt(rare.get('peak_T_max'), 1)})", "-", v, "our loader on unit_ablation/bin4.txt.npy", step))
        out.append(_claim(sec, "published ratios (authors' arrays, our loader): >10K maximum", p2,
                          fmt(freq.get("max_ratio"), 4), "-",
                          code_check_holds(freq["max_ratio"] <= 1.0 if _ok(freq.get("max_ratio")) else None), "", step))
    if sr:
        facts, tests, band, n = sr["facts"], sr.get("tests", {}), sr.get("band", {}), len(sr["seeds"])
        source = f"{n} seed(s) ({', '.join(map(str, sr['seeds']))}); interval: t across seeds on log ratios (one seed: its bootstrap)"
        n_tests = sr.get("tests_total")
    else:
        facts, tests, band, n = rr.ours, rr.tests.get("bins", {}), rr.band, 1
        source = "this run's MTS model; interval: 99.9% chunk bootstrap"
        n_tests = rr.tests.get("tests")
    rare, freq = facts.get("<100", {}), facts.get(">10K", {})
    # claim 1: the peak lies among the longest-timescale third and clears the random-group band
    pos, ng = rare.get("peak_position"), rare.get("n_groups") or 1
    long_third = pos is not None and pos <= math.ceil(ng / 3)
    bh = band.get("<100", {})
    null = bh.get("hi") if _ok(bh.get("hi")) else 1.0
    null_txt = f"the controls' band top {fmt(null, 4)}" if _ok(bh.get("hi")) else "1 (no controls)"
    t = tests.get("<100", {})
    v = effect_verdict(rare.get("peak_lo"), rare.get("peak_hi"), seeds=n, null=null)
    holm = t.get("peak_p_holm")
    extra = ""
    if not long_third and pos is not None:
        # the peak sits outside the longest third: a clear peak there runs against the paper
        reason = f"peak at group {pos}, outside the longest-T third; " + v.reason.replace(
            "(the paper's direction)", "(above the band)")
        v = Verdict(CONTRADICTED if v.verdict == REPRODUCED else
                    INCONCLUSIVE if v.verdict == CONTRADICTED else v.verdict, reason)
    elif v.verdict == CONTRADICTED:  # the peak's interval lies below the band: indistinguishable from random groups
        v = Verdict(INCONCLUSIVE, "the peak does not clear the random groups' band; " + v.reason.replace(
            " (opposite to the paper)", ""))
    elif v.verdict == REPRODUCED and _ok(holm) and holm >= 0.05:
        v = Verdict(INCONCLUSIVE, f"not significant after Holm's correction over {n_tests} tests (p {fmt(holm, 4)}); {v.reason}")
    if _ok(holm):
        extra = f"; peak p raw {fmt(t.get('peak_p'), 4)}, Holm {fmt(holm, 4)}, BH {fmt(t.get('peak_p_bh'), 4)} ({n_tests} tests)"
    out.append(_claim(sec, c1, p1,
                      f"peak {fmt(rare.get('peak_ratio'), 4)} at group {pos} of {ng} (T {fmt(rare.get('peak_T_min'), 2)}-"
                      f"{fmt(rare.get('peak_T_max'), 2)}); band of random groups "
                      f"{interval(bh.get('lo'), bh.get('hi'), 4)}{extra}",
                      interval(rare.get("peak_lo"), rare.get("peak_hi"), 4), v,
                      f"{source}; rule: the peak group lies in the longest-T third and its interval clears {null_txt}",
                      "seeds" if sr else step))
    # claim 2: no group of the >10K bin significantly above 1 after Holm's correction
    tf = tests.get(">10K", {})
    n_sig = tf.get("n_sig_holm")
    if n_sig is None and freq.get("any_significantly_above_1") is not None:  # no p-values: the raw intervals
        n_sig = int(bool(freq["any_significantly_above_1"]))
    if freq.get("empty"):
        v = Verdict(NOT_RUN, "no test token in this bin")
    elif n_sig is None:
        v = Verdict(NOT_RUN, "no p-values")
    elif n_sig > 0:
        v = Verdict(CONTRADICTED if n >= MIN_SEEDS else INCONCLUSIVE,
                    f"{n_sig} group(s) significantly above 1 after Holm" +
                    ("" if n >= MIN_SEEDS else f"; only {n} seed(s) (needs >= {MIN_SEEDS})"))
    else:
        v = Verdict(REPRODUCED if n >= MIN_SEEDS else INCONCLUSIVE,
                    "no group significantly above 1 after Holm" +
                    ("" if n >= MIN_SEEDS else f"; only {n} seed(s) (needs >= {MIN_SEEDS})"))
    out.append(_claim(sec, c2, p2,
                      f"max ratio {fmt(freq.get('max_ratio'), 4)}; groups above 1: raw {tf.get('n_sig_raw', '-')}, Holm "
                      f"{tf.get('n_sig_holm', '-')}, BH {tf.get('n_sig_bh', '-')}", "-", v,
                      f"{source}; rule: no group's ratio significantly above 1 after Holm's correction", "seeds" if sr else step))
    return out


# ----------------------------------------------------------------------------------------------
# Fig. 2 (Dyck)
# ----------------------------------------------------------------------------------------------

def dyck_claims(records: dict, comparable: bool) -> list[Claim]:
    sec, step = "Fig. 2 (Dyck-2)", "dyck"
    ok, why = _status(records, step)
    items = [("test accuracy, MTS", PAPER["dyck_mts"], "mts"), ("test accuracy, baseline", PAPER["dyck_baseline"], "baseline")]
    c_dir, c_tail = "MTS more accurate than baseline (paired over seeds)", "MTS gain for max timescale > 75"
    c_span = "span distribution of our generator's training data is a power law, slope about -1.6"
    if not ok:
        return ([_not_run(sec, w, fmt(p, 2, True), step, why) for w, p, _ in items]
                + [_not_run(sec, c_dir, "yes (+2.16 points)", step, why), _not_run(sec, c_tail, "+5 to +10 points", step, why)])
    r = load(records, step, DyckResult)
    out = []
    for what, p, arch in items:
        o = r.overall.get(arch, {})
        out.append(_claim(sec, what, fmt(p, 2, True), f"{fmt(o.get('mean'), 2, True)} +- {fmt(o.get('std'), 2, True)} "
                                                      f"({o.get('seeds')} seeds)", "-",
                          value_verdict(o.get("mean"), p, comparable=comparable, seeds=o.get("seeds")),
                          "" if comparable else "smaller network and far fewer epochs than the paper", step))
    for claim, key, paper in ((c_dir, "paired_overall", "yes (+2.16 points)"), (c_tail, "paired_tail", "+5 to +10 points")):
        pr = getattr(r, key) or {}
        if not pr.get("pairs") or not _ok(pr.get("diff")):
            out.append(_not_run(sec, claim, paper, step, "no test sequences in this range for both models"))
            continue
        v = effect_verdict(pr.get("ci_lo"), pr.get("ci_hi"), seeds=pr.get("pairs"))
        out.append(_claim(sec, claim, paper, f"{fmt(pr.get('diff'), 2, True)} ({pr.get('pairs')} seed pairs)",
                          interval(pr.get("ci_lo"), pr.get("ci_hi"), 2, True, "95% bootstrap over seeds"), v,
                          "direction of the effect", step))
    fit = r.span_slope
    if fit:
        s, se = fit["slope"], fit.get("stderr")
        out.append(_claim(sec, c_span, f"{PAPER['dyck_span_slope']} (critical branching: -1.5)", fmt(s),
                          interval(s - 2 * se, s + 2 * se) if _ok(se) else "-",
                          code_check(s, PAPER["dyck_span_slope"], tol=0.15),
                          "a property of our data generator (rule: within 0.15; log-log least squares)", step))
    return out


# ----------------------------------------------------------------------------------------------
# beyond the paper: corpus MI decay, registered studies
# ----------------------------------------------------------------------------------------------

def _beyond(section: str, claim: str, expected: str, ours: str, iv: str, v: Verdict, note: str = "",
            step: str = "") -> Claim:
    return Claim(BEYOND_PREFIX + section, claim, expected, ours, iv, BEYOND,
                 v.reason if not note else (f"{note}; {v.reason}" if v.reason else note), step, v.verdict)


def mi_claims(records: dict) -> list[Claim]:
    sec, step = "MI decay of the corpora", "mi_decay"
    ok, why = _status(records, step)
    if not ok:
        return [_beyond(sec, "PTB: I(d) decays as a power law", "power law (Lin & Tegmark)", "-", "-",
                        Verdict(NOT_RUN, why), step=step),
                Claim(BEYOND_PREFIX + sec, "Markov-PTB (our resampler): I(d) decays exponentially", "exponential", "-",
                      "-", NOT_RUN, why, step)]
    out = []
    for name, s in load(records, step, MIResult).corpora.items():
        markov = name == "Markov-PTB"
        expected = "exponential" if markov else "power"
        tail = s.get("tail")
        xi = s.get("xi_tail") if _ok(s.get("xi_tail")) else s.get("xi_exponential")
        k = f"k_tail {fmt(s.get('k_tail'))}" if tail == "power" else f"decay length xi {fmt(xi, 1)} tokens"
        iv = interval(s.get("k_tail_low"), s.get("k_tail_high"), level="95%") if tail == "power" else "-"
        a = f"; suggested a = k/2 = {fmt(s.get('a'))}" if _ok(s.get("a")) else ""
        ours = f"{tail}; {k}{a} (d <= {s.get('max_retained_distance')})"
        claim = f"{name}: I(d) decays {'exponentially' if markov else 'as a power law'} (tail law, AICc)"
        if markov:  # by construction: checks the resampler and the estimator, not a claim about language
            v = (Verdict(INCONCLUSIVE, "too few distances above the shuffle band") if tail == "insufficient"
                 else code_check_holds(tail == expected, "an order-2 Markov chain has exponentially decaying MI by construction"))
            if v.verdict == INCONCLUSIVE:
                v = Verdict(NOT_RUN, v.reason)
            out.append(Claim(BEYOND_PREFIX + sec, f"{name} (our resampler): I(d) decays exponentially (tail law, AICc)",
                             "exponential (by construction)", ours, iv, v.verdict, v.reason, step))
            continue
        v = beyond_outcome(tail == expected, inconclusive="too few distances above the shuffle band"
                           if tail == "insufficient" else None)
        out.append(_beyond(sec, claim, "power law (not measured in the paper)", ours, iv, v,
                           "the paper assumes it (Lin & Tegmark) and measures no corpus", step))
    return out


def study_claims(records: dict, studies: Sequence[Any]) -> list[Claim]:
    """Rows of registered studies (:func:`.steps.register_study`): each step's results hold
    ``rows``, a list of ``{claim, verdict, evidence}`` (optional ``expected``, ``interval``); the
    verdict is the row's outcome (``holds``, ``does not hold``, ``inconclusive``, ``not run`` or the
    study's own word)."""
    out = []
    for st in studies:
        ok, why = _status(records, st.name)
        if not ok:
            out.append(Claim(BEYOND_PREFIX + st.section, f"{st.title}", "-", "-", "-", BEYOND, why, st.name, NOT_RUN))
            continue
        for row in records[st.name]["results"].get("rows", []):
            out.append(Claim(BEYOND_PREFIX + st.section, str(row.get("claim", "")), str(row.get("expected", "-")),
                             str(row.get("evidence", "")), str(row.get("interval", "-")), BEYOND,
                             str(row.get("note", "")), st.name, str(row.get("verdict", ""))))
    return out


def build_claims(records: dict[str, dict], profile: str, studies: Sequence[Any] = ()) -> list[Claim]:
    comparable = profile == "paper"
    return (table1_claims(records, comparable) + wt2_claims(records, comparable)
            + timescale_claims(records, comparable) + appendix_claims(records)
            + routing_claims(records, comparable) + dyck_claims(records, comparable) + mi_claims(records)
            + study_claims(records, studies))


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------

FIGURES = [
    ("fig1_timescales", "Fig. 1: unit timescales (T_data) of the baselines, sorted, with inverse-gamma curves; top ours, bottom published"),
    ("fig2_dyck", "Fig. 2: Dyck-2 span distribution and accuracy vs max timescale, baseline vs MTS"),
    ("fig3_routing", "Fig. 3: perplexity ratio when a chunk of layer-2 units is ablated, per word-frequency bin, "
                     "with the band of random groups of the same size (shaded); ours and published"),
    ("seeds", "Seeds: validation gap MTS vs baseline per epoch, Table 1 per seed and combined, Fig. 3 over seeds "
              "with the random-group band"),
    ("appendix_mts", "Appendix: MTS model, estimated vs assigned timescales per constrained layer; ours and published"),
    ("table1_perplexity", "Table 1: perplexity per frequency bin, baseline vs MTS, and the paired difference (this run's pair)"),
    ("mi_decay", "MI decay: I(d) above the shuffle band for each corpus"),
    ("mi_decay_ptb", "MI decay of PTB with the exponential / power / combined fits"),
]

PROFILE_NOTES = {
    "smoke": ("**smoke profile**: tiny models (24/24/16 units, 2 epochs) trained here on the first lines of PTB, a "
              "tiny Dyck sweep. The numbers only show that every step runs; none of them is evidence."),
    "small": ("**small profile**: AWD-LSTM 300/300/200 trained 10 epochs on 2 CPU cores (the shipped seed-141 "
              "checkpoints, with the per-seed folders of further seeds), Dyck with 64 units and 24 epochs. Absolute "
              "numbers are *not comparable* with the paper's 1150/1150/400 models trained 1000 epochs; directions of "
              "effects are compared instead."),
    "paper": "**paper profile**: the paper's architectures and budgets; absolute numbers are compared.",
}

VERDICT_RULES = [
    "*code check: pass / fail*: our code on the authors' published arrays (or a property our code has by "
    "construction) gives the printed number; it shows the code is right, not that the claim holds.",
    f"*reproduced / contradicted*: an effect measured on models trained here, with >= {MIN_SEEDS} seeds per arm, "
    "whose interval clears the null in the paper's / the opposite direction.",
    "*inconclusive*: the interval includes the null, or fewer than 3 seeds, or the budget is visibly too small "
    "(the validation gap still moving by more than 1 point at the last epoch); the note says which, with the numbers.",
    "*not comparable at this scale*: an absolute number of a smaller / shorter-trained model than the paper's.",
    "*not run*: the step was skipped or failed (the reason is given).",
    "*beyond the paper*: a claim the paper does not make; its own section, with an outcome (holds / does not hold / "
    "inconclusive) instead of a verdict on the paper.",
]


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _counts(claims: Sequence[Claim]) -> dict[str, int]:
    return count_verdicts([c.verdict for c in claims], [c.outcome for c in claims if c.verdict == BEYOND])


def seeds_lines(records: dict) -> list[str]:
    sr = _seeds_results(records)
    ok, why = _status(records, "seeds")
    if not ok:
        return ["", "## Seeds", "", f"Not combined: {why}."]
    lines = ["", "## Seeds", "",
             "Models combined, paired by seed (this run's and the per-seed folders"
             + (f" in {sr.seeds_dir}" if sr.seeds_dir else "") + "):", ""]
    for arm, seeds in sr.arms.items():
        lines.append(f"- {arm}: {len(seeds)} seed(s): {', '.join(map(str, seeds))}")
    for name, miss in sr.missing.items():
        lines.append(f"- {name}: missing {', '.join(miss)}")
    for why in sr.left_out:
        lines.append(f"- left out: {why}")
    lines += ["", "Methods: Table 1 per seed by the chunk bootstrap (100-token chunks) of the paired difference; over "
                  "seeds by a hierarchical bootstrap (seeds with replacement, then chunks shared by the seeds, which are "
                  "scored on the same text), 95% percentile interval, with the t interval across the per-seed "
                  "estimates beside it; a verdict needs both to clear 0 (the t interval ignores the sampling of the "
                  "text, a bootstrap over 3 seeds understates the spread between seeds). Fig. 3: geometric mean ratio "
                  "over seeds with a t interval on the log ratios, one-sided p, Holm and Benjamini-Hochberg over all "
                  "groups x bins (statsmodels); the null band pools every seed's random control groups (2.5-97.5%). "
                  "Markov control: the inverse-gamma shape at scale 1 per seed, Markov - PTB paired by seed, t interval."]
    return lines


def render_markdown(claims: Sequence[Claim], records: dict[str, dict], opts: ReproduceOptions,
                    figures: Sequence[tuple[str, str]]) -> str:
    lines = [f"# tsprobe reproduce: report ({opts.profile} profile)", "",
             PROFILE_NOTES[opts.profile], "",
             "Paper: Mahto et al., *Multi-timescale Representation Learning in LSTM Language Models*, ICLR 2021.", "",
             "Verdicts:", ""] + [f"- {r}" for r in VERDICT_RULES] + ["", summary_line(_counts(claims))]
    section = None
    beyond_started = False
    for c in claims:
        if c.section != section:
            if section == "Table 1 (PTB test perplexity)":
                lines += table1_full(records)
            section = c.section
            beyond = c.section.startswith(BEYOND_PREFIX)
            if beyond and not beyond_started:
                lines += ["", "# Beyond the paper", "", "Claims the paper does not make: an outcome, not a verdict on "
                          "the paper."]
                beyond_started = True
            if beyond:
                lines += ["", f"## {section.removeprefix(BEYOND_PREFIX)}", "",
                          "| claim | expected | ours | interval | outcome | note |", "|---|---|---|---|---|---|"]
            else:
                lines += ["", f"## {section}", "", "| claim | paper | ours | interval | verdict | note |",
                          "|---|---|---|---|---|---|"]
        shown = c.outcome if c.verdict == BEYOND else c.verdict
        lines.append("| " + " | ".join(_md_escape(x) for x in (c.claim, c.paper, c.ours, c.interval, f"**{shown}**",
                                                                  c.note)) + " |")
    if section == "Table 1 (PTB test perplexity)":
        lines += table1_full(records)
    lines += seeds_lines(records)
    lines += ["", "## Models", "", "| step | source | checkpoint | epochs | best valid ppl | status |", "|---|---|---|---:|---:|---|"]
    for name, rec in records.items():
        if name.startswith("train_") and rec.get("status") == "done":
            r = from_results(TrainResult, rec["results"])
            card = r.card or {}
            lines.append(f"| {name} | {r.source} | {_md_escape(r.checkpoint)} | {card.get('epochs', '')} "
                         f"| {fmt(card.get('best_valid_ppl'))} | {card.get('status', '')} |")
    lines += ["", "## Figures", ""]
    for stem, caption in figures:
        lines += [f"**{stem}.pdf** - {caption}", "", f"![{stem}]({stem}.png)", ""]
    lines += ["## Steps", "", "| step | status | seconds | note |", "|---|---|---:|---|"]
    for name, rec in records.items():
        if name == "report":
            continue
        note = rec.get("reason", "") if rec.get("status") != "done" else rec.get("title", "")
        lines.append(f"| {name} | {rec.get('status', 'not run')} | {rec.get('seconds', '')} | {_md_escape(note)} |")
    lines += ["", f"Options: `{_md_escape(str(opts.to_dict()))}`", ""]
    return "\n".join(lines)


COLORS = {CODE_PASS: "#dfe9f7", CODE_FAIL: "#f8d7d7", REPRODUCED: "#d9f2d9", CONTRADICTED: "#f8d7d7",
          INCONCLUSIVE: "#fff3cd", NOT_COMPARABLE: "#eeeeee", NOT_RUN: "#f3e6ff", BEYOND: "#ffffff"}


def render_html(claims: Sequence[Claim], records: dict[str, dict], opts: ReproduceOptions,
                figures: Sequence[tuple[str, str]]) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>tsprobe reproduce report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
             "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}img{max-width:100%}</style>",
             "</head><body>", f"<h1>tsprobe reproduce: report ({e(opts.profile)} profile)</h1>",
             f"<p>{e(PROFILE_NOTES[opts.profile].replace('**', '').replace('*', ''))}</p>",
             "<ul>" + "".join(f"<li>{e(r.replace('*', ''))}</li>" for r in VERDICT_RULES) + "</ul>",
             f"<p><b>{e(summary_line(_counts(claims)))}</b></p>"]
    section = None
    for c in claims:
        if c.section != section:
            if section is not None:
                parts.append("</table>")
            section = c.section
            parts.append(f"<h2>{e(section)}</h2><table><tr><th>claim</th><th>paper</th><th>ours</th>"
                         "<th>interval</th><th>verdict</th><th>note</th></tr>")
        shown = c.outcome if c.verdict == BEYOND else c.verdict
        parts.append("<tr>" + "".join(f"<td>{e(x)}</td>" for x in (c.claim, c.paper, c.ours, c.interval))
                     + f"<td style='background:{COLORS.get(c.verdict, '#fff')}'>{e(shown)}</td><td>{e(c.note)}</td></tr>")
    if section is not None:
        parts.append("</table>")
    md_extra = table1_full(records) + seeds_lines(records)
    if md_extra:
        parts.append("<pre style='white-space:pre-wrap'>" + e("\n".join(md_extra)) + "</pre>")
    parts.append("<h2>Figures</h2>")
    for stem, caption in figures:
        parts.append(f"<h3>{e(stem)}</h3><p>{e(caption)} (<a href='{e(stem)}.pdf'>PDF</a>)</p>"
                     f"<img src='{e(stem)}.png' alt='{e(stem)}'>")
    parts.append("<h2>Steps</h2><table><tr><th>step</th><th>status</th><th>seconds</th><th>note</th></tr>")
    for name, rec in records.items():
        if name == "report":
            continue
        note = rec.get("reason", "") if rec.get("status") != "done" else rec.get("title", "")
        parts.append(f"<tr><td>{e(name)}</td><td>{e(str(rec.get('status', 'not run')))}</td>"
                     f"<td>{e(str(rec.get('seconds', '')))}</td><td>{e(note)}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def write_report(out: Path, records: dict[str, dict], opts: ReproduceOptions, studies: Sequence[Any] = ()) -> dict[str, Any]:
    claims = build_claims(records, opts.profile, studies)
    figures = [(stem, cap) for stem, cap in FIGURES if (out / f"{stem}.png").is_file()]
    root = str(repo_root()) + "/"  # paths inside the source checkout are shown relative to it

    def short(text: str) -> str:
        return text.replace(root, "")

    atomic_write_text(out / "report.md", short(render_markdown(claims, records, opts, figures)))
    atomic_write_text(out / "report.html", short(render_html(claims, records, opts, figures)))
    write_table(pd.DataFrame([asdict(c) for c in claims]), out / "claims.csv")
    counts = _counts(claims)
    return {"verdicts": {k: int(v) for k, v in counts.items()}, "summary": summary_line(counts), "claims": len(claims),
            "outcomes": list(OUTCOMES), "_files": ["report.md", "report.html", "claims.csv"]}


def step_report(ctx: StepContext, opts: ReproduceOptions, names: Sequence[str], studies: Sequence[Any] = ()) -> dict[str, Any]:
    """The report from the records of ``names`` (every other step of this pipeline); a record of
    another profile is not this run's and counts as not run."""
    records = {}
    for n in names:
        rec = load_record(ctx.out, n) or {}
        records[n] = rec if rec.get("profile") == opts.profile else {}
    return write_report(ctx.out, records, opts, studies)
