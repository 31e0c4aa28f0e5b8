"""The report of ``tsprobe reproduce``: each of our numbers beside the paper's, with its interval
and a one-line verdict, as ``report.md``, ``report.html`` (figures as ``<img>`` of the PNG twins)
and ``claims.csv``.

Verdicts (:data:`VERDICTS`):

- ``reproduced`` / ``not reproduced``: for an absolute number, only at the paper's scale (profile
  ``paper``) or when our code runs on the authors' own arrays; for a direction of effect (MTS
  better than baseline, peak on long-timescale units, power vs exponential decay), at any scale,
  decided by the interval (an interval including 0 is *not reproduced*, with the reason said);
- ``not comparable at this scale``: an absolute number of a smaller model (a 3-epoch CPU model
  cannot reach the paper's perplexity; say so instead of pretending);
- ``not run``: the step that measures it was skipped or failed (the reason is given).
"""
from __future__ import annotations

import html
import math
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..fileio import atomic_write_text, write_table
from ..pipeline import StepContext, load_record
from .config import PAPER, ReproduceOptions, repo_root

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_COMPARABLE = "not comparable at this scale"
NOT_RUN = "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE, NOT_RUN)

#: Relative tolerance for an absolute number of ours against the paper's, at the paper's scale,
#: when our interval does not cover it (perplexities, accuracies, fitted shapes).
REL_TOL = 0.03


@dataclass
class Claim:
    """One row of the report: ``paper`` and ``ours`` as display strings, ``interval`` of ours."""

    section: str
    claim: str
    paper: str
    ours: str
    interval: str
    verdict: str
    note: str = ""
    step: str = ""


# ----------------------------------------------------------------------------------------------
# verdict logic (pure functions)
# ----------------------------------------------------------------------------------------------

def _ok(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def published_tolerance(paper: float) -> float:
    """One unit in the last digit the paper prints (2.16 -> 0.01, 88.8 -> 0.1, 0.041 -> 0.001): the
    printed numbers were rounded from fits whose last digit can differ by one with the optimiser."""
    exp = Decimal(repr(float(paper))).normalize().as_tuple().exponent
    return 10.0 ** min(int(exp), 0) + 1e-12


def value_verdict(ours: float | None, paper: float, *, comparable: bool, lo: float | None = None,
                  hi: float | None = None, rel_tol: float = REL_TOL) -> str:
    """An absolute number against the paper's: not comparable below the paper's scale; otherwise
    reproduced when our interval covers the paper's value or we are within ``rel_tol`` of it."""
    if not _ok(ours):
        return NOT_RUN
    if not comparable:
        return NOT_COMPARABLE
    if _ok(lo) and _ok(hi) and lo <= paper <= hi:
        return REPRODUCED
    return REPRODUCED if abs(ours - paper) <= rel_tol * abs(paper) else NOT_REPRODUCED


def published_verdict(ours: float | None, paper: float) -> str:
    """Our code on the authors' own data must give the printed number to its last digit."""
    if not _ok(ours):
        return NOT_RUN
    return REPRODUCED if abs(ours - paper) <= published_tolerance(paper) else NOT_REPRODUCED


def direction_verdict(lo: float | None, hi: float | None) -> tuple[str, str]:
    """A claimed positive effect judged by its interval: ``(verdict, answer)`` where the answer is
    ``yes`` (interval above 0), ``no, the opposite`` (below 0) or ``no clear difference``."""
    if not (_ok(lo) and _ok(hi)):
        return NOT_RUN, "not measured"
    if lo > 0:
        return REPRODUCED, "yes"
    if hi < 0:
        return NOT_REPRODUCED, "no, the opposite (interval below 0)"
    return NOT_REPRODUCED, "no clear difference (interval includes 0)"


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


# ----------------------------------------------------------------------------------------------
# claims from the step results
# ----------------------------------------------------------------------------------------------

def _status(records: dict[str, dict], step: str) -> tuple[bool, str]:
    rec = records.get(step) or {}
    if rec.get("status") == "done":
        return True, ""
    if not rec:
        return False, f"step {step} has not run"
    return False, f"step {step} {rec.get('status')}: {rec.get('reason', '')}"


def _not_run(section, claim, paper, step, reason) -> Claim:
    return Claim(section, claim, paper, "-", "-", NOT_RUN, reason, step)


def table1_claims(records: dict, comparable: bool) -> list[Claim]:
    sec, step = "Table 1 (PTB test perplexity)", "table1_perplexity"
    ok, why = _status(records, step)
    items = [("baseline, overall", PAPER["ppl_baseline"], "baseline", "overall"),
             ("MTS, overall", PAPER["ppl_mts"], "mts", "overall")]
    items += [(f"MTS, bin {b}", v, "mts", b) for b, v in PAPER["ppl_mts_bins"].items()]
    out = []
    if not ok:
        out += [_not_run(sec, f"perplexity {name}", fmt(p), step, why) for name, p, _, _ in items]
        out += [_not_run(sec, "MTS better than baseline overall", "yes (58.98 -> 57.58)", step, why),
                _not_run(sec, "MTS better than baseline on rare words (<100)", "yes (gain largest on rare words)", step, why)]
        return out
    rows = {r["bin"]: r for r in records[step]["results"]["rows"]}
    for name, p, model, b in items:
        r = rows.get(b, {})
        v, lo, hi = r.get(f"ppl_{model}"), r.get(f"ppl_{model}_lo"), r.get(f"ppl_{model}_hi")
        note = "a small model after a few epochs cannot reach the paper's perplexity" if not comparable else ""
        out.append(Claim(sec, f"perplexity {name}", fmt(p), fmt(v), interval(lo, hi, level="95%"),
                         value_verdict(v, p, comparable=comparable, lo=lo, hi=hi), note, step))
    for label, b, paper in (("overall", "overall", "yes (58.98 -> 57.58)"),
                            ("on rare words (<100)", "<100", "yes (gain largest on rare words)")):
        r = rows.get(b, {})
        verdict, answer = direction_verdict(r.get("lo"), r.get("hi"))
        out.append(Claim(sec, f"MTS better than baseline {label} (baseline - MTS > 0)", paper,
                         f"{answer}: {fmt(r.get('diff'))}", interval(r.get("lo"), r.get("hi"), level="99.9% paired bootstrap"),
                         verdict, "direction of the effect, comparable at any scale", step))
    return out


def wt2_claims(records: dict, comparable: bool) -> list[Claim]:
    sec, step = "Table 1 (WikiText-2)", "wt2_perplexity"
    ok, why = _status(records, step)
    if not ok:
        return [_not_run(sec, "perplexity MTS, WikiText-2 test", fmt(PAPER["ppl_wt2_mts"]), step, why)]
    v = records[step]["results"].get("ppl_mts")
    return [Claim(sec, "perplexity MTS, WikiText-2 test", fmt(PAPER["ppl_wt2_mts"]), fmt(v), "-",
                  value_verdict(v, PAPER["ppl_wt2_mts"], comparable=comparable), "", step)]


def timescale_claims(records: dict, comparable: bool) -> list[Claim]:
    out: list[Claim] = []
    sec = "Fig. 1 (timescales of the baseline)"
    # our code on the authors' arrays
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
    for corpus, what, key, paper, pct in checks:
        claim = f"{corpus.upper()} baseline (authors' arrays, our code): {what}"
        ptxt = fmt(paper, 1, True) if pct else str(paper)
        if not ok:
            out.append(_not_run(sec, claim, ptxt, step, why))
            continue
        r = records[step]["results"][corpus]
        src = r["summary"] if key in r["summary"] else r["fit"]
        v = src.get(key)
        iv = interval(src.get(f"{key}_lo"), src.get(f"{key}_hi"), level="95% bootstrap") if key in r["fit"] else "-"
        out.append(Claim(sec, claim, ptxt, fmt(v, 3, pct) if not pct else fmt(v, 2, True), iv,
                         published_verdict(v, paper), "our estimator and fitter on the published T_est arrays", step))
    # our baselines
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
            ptxt = fmt(paper, 1, True) if pct else str(paper)
            if not ok:
                out.append(_not_run(sec, claim, ptxt, step, why))
                continue
            r = records[step]["results"]
            src = r["summary"] if key in r["summary"] else r["fit"]
            v = src.get(key)
            lo, hi = src.get(f"{key}_lo"), src.get(f"{key}_hi")
            out.append(Claim(sec, claim, ptxt, fmt(v, 2, pct) if pct else fmt(v, 3), interval(lo, hi, 3, level="95% bootstrap"),
                             value_verdict(v, paper, comparable=comparable, lo=lo, hi=hi), "", step))
        if ok:
            best = records[step]["results"]["fit"].get("best_family")
            out.append(Claim(sec, f"our {name} baseline: inverse gamma fits better than gamma and lognormal (AIC)",
                             "yes (authors' arrays)", f"{'yes' if best == 'invgamma' else 'no'} (best: {best})", "-",
                             REPRODUCED if best == "invgamma" else NOT_REPRODUCED, "lowest AIC of the three families",
                             step))
    # Markov control: narrower distribution
    okp, whyp = _status(records, "timescales_ptb")
    okm, whym = _status(records, "timescales_markov")
    claim = "Markov-PTB baseline has a narrower (lighter-tailed) timescale distribution than the PTB baseline"
    if not (okp and okm):
        out.append(_not_run(sec, claim, "yes", "timescales_markov", whym or whyp))
    else:
        p = records["timescales_ptb"]["results"]
        m = records["timescales_markov"]["results"]
        fp, fm = p["fit"], m["fit"]
        if fm["a_scale1_lo"] > fp["a_scale1_hi"]:
            verdict, answer = REPRODUCED, "yes"
        elif fm["a_scale1_hi"] < fp["a_scale1_lo"]:
            verdict, answer = NOT_REPRODUCED, "no, the opposite"
        else:
            verdict, answer = NOT_REPRODUCED, "no clear difference (intervals overlap)"
        out.append(Claim(sec, claim, "yes",
                         f"{answer}: a(scale 1) {fmt(fm['a_scale1'])} vs {fmt(fp['a_scale1'])}; 90th pct T "
                         f"{fmt(m['summary']['q90'])} vs {fmt(p['summary']['q90'])}",
                         f"Markov {interval(fm['a_scale1_lo'], fm['a_scale1_hi'])}, PTB "
                         f"{interval(fp['a_scale1_lo'], fp['a_scale1_hi'])} (95%)",
                         verdict, "larger inverse-gamma shape = lighter tail; decided by non-overlapping intervals",
                         "timescales_markov"))
    return out


def appendix_claims(records: dict) -> list[Claim]:
    sec, step = "Appendix (MTS: estimated vs assigned)", "appendix_mts"
    ok, why = _status(records, step)
    claim = "layer-2 estimated timescales follow the assigned ones (Spearman rank correlation >= 0.9)"
    if not ok:
        return [_not_run(sec, claim, "yes", step, why)]
    stats = {(s["source"], s["layer"]): s for s in records[step]["results"]["stats"]}
    pub = stats.get(("published", 2))
    ours = stats.get(("ours", 2))
    ptxt = f"yes (published arrays: rho {fmt(pub['spearman'], 3)})" if pub else "yes"
    if ours is None:
        return [_not_run(sec, claim, ptxt, "timescales_mts", "no MTS model here")]
    v = ours["spearman"]
    return [Claim(sec, claim, ptxt, f"rho {fmt(v, 3)}; median |log10(est/assigned)| {fmt(ours['median_abs_log10_ratio'], 2)}",
                  "-", REPRODUCED if _ok(v) and v >= 0.9 else NOT_REPRODUCED, "rank agreement of all layer-2 units", step)]


def routing_claims(records: dict, comparable: bool) -> list[Claim]:
    sec, step = "Fig. 3 (routing by ablation of layer-2 chunks)", "fig3_routing"
    ok, why = _status(records, step)
    c1 = "rare words (<100) hurt most by ablating long-timescale units"
    c2 = "frequent words (>10K) never hurt (ratio never above 1)"
    p1 = f"peak {PAPER['fig3_rare_peak']} at chunk {PAPER['fig3_rare_peak_chunk']} of 23 (T about 94)"
    p2 = "max ratio <= 1.0"
    if not ok:
        return [_not_run(sec, c1, p1, step, why), _not_run(sec, c2, p2, step, why)]
    r = records[step]["results"]
    out = []
    pub = r.get("published")
    if pub:
        rare, freq = pub.get("<100", {}), pub.get(">10K", {})
        ok1 = (published_verdict(rare.get("peak_ratio"), PAPER["fig3_rare_peak"]) == REPRODUCED
               and rare.get("peak_position") == PAPER["fig3_rare_peak_chunk"])
        out.append(Claim(sec, "published ratios (authors' arrays): <100 peak", p1,
                         f"{fmt(rare.get('peak_ratio'), 3)} at chunk {rare.get('peak_position')} (T_max {fmt(rare.get('peak_T_max'), 1)})",
                         "-", REPRODUCED if ok1 else NOT_REPRODUCED, "our loader on unit_ablation/bin4.txt.npy", step))
        out.append(Claim(sec, "published ratios (authors' arrays): >10K maximum", p2, fmt(freq.get("max_ratio"), 4), "-",
                         REPRODUCED if _ok(freq.get("max_ratio")) and freq["max_ratio"] <= 1.0 else NOT_REPRODUCED,
                         "", step))
    rare, freq = r["ours"].get("<100", {}), r["ours"].get(">10K", {})
    n = rare.get("n_groups") or 1
    pos = rare.get("peak_position")
    long_third = pos is not None and pos <= math.ceil(n / 3)
    significant = _ok(rare.get("peak_lo")) and rare["peak_lo"] > 1
    verdict = REPRODUCED if (long_third and significant) else NOT_REPRODUCED
    why1 = ("" if verdict == REPRODUCED else
            ("peak not among the longest-timescale third" if not long_third else "peak interval includes 1"))
    out.append(Claim(sec, c1, p1,
                     f"peak {fmt(rare.get('peak_ratio'), 3)} at group {pos} of {n} (T {fmt(rare.get('peak_T_min'), 2)}-{fmt(rare.get('peak_T_max'), 2)})",
                     interval(rare.get("peak_lo"), rare.get("peak_hi"), 3, level="99.9%"), verdict,
                     "rule: the peak group lies in the longest-T third and its interval is above 1" + (f"; {why1}" if why1 else ""),
                     step))
    above = freq.get("any_significantly_above_1")
    out.append(Claim(sec, c2, p2, f"max ratio {fmt(freq.get('max_ratio'), 4)}", "-",
                     NOT_RUN if above is None else (NOT_REPRODUCED if above else REPRODUCED),
                     "no test token in this bin" if freq.get("empty") else
                     "rule: no group's 99.9% interval lies entirely above 1", step))
    return out


def dyck_claims(records: dict, comparable: bool) -> list[Claim]:
    sec, step = "Fig. 2 (Dyck-2)", "dyck"
    ok, why = _status(records, step)
    items = [("test accuracy, MTS", PAPER["dyck_mts"], "mts"), ("test accuracy, baseline", PAPER["dyck_baseline"], "baseline")]
    c_dir, c_tail = "MTS more accurate than baseline (paired over seeds)", "MTS gain for max timescale > 75"
    if not ok:
        return ([_not_run(sec, w, fmt(p, 2, True), step, why) for w, p, _ in items]
                + [_not_run(sec, c_dir, "yes (+2.16 points)", step, why), _not_run(sec, c_tail, "+5 to +10 points", step, why)])
    r = records[step]["results"]
    out = []
    for what, p, arch in items:
        o = r.get("overall", {}).get(arch, {})
        std = o.get("std")
        out.append(Claim(sec, what, fmt(p, 2, True), f"{fmt(o.get('mean'), 2, True)} +- {fmt(std, 2, True)} ({o.get('seeds')} seeds)",
                         "-", value_verdict(o.get("mean"), p, comparable=comparable),
                         "" if comparable else "smaller network and far fewer epochs than the paper", step))
    for claim, key, paper in ((c_dir, "paired_overall", "yes (+2.16 points)"), (c_tail, "paired_tail", "+5 to +10 points")):
        pr = r.get(key) or {}
        if not pr.get("pairs") or not _ok(pr.get("diff")):
            out.append(Claim(sec, claim, paper, "-", "-", NOT_RUN, "no test sequences in this range for both models", step))
            continue
        verdict, answer = direction_verdict(pr.get("ci_lo"), pr.get("ci_hi"))
        out.append(Claim(sec, claim, paper, f"{answer}: {fmt(pr.get('diff'), 2, True)} ({pr.get('pairs')} seed pairs)",
                         interval(pr.get("ci_lo"), pr.get("ci_hi"), 2, True, "95% bootstrap over seeds"), verdict,
                         "direction of the effect", step))
    fit = r.get("span_slope")
    if fit:
        s, se = fit["slope"], fit.get("stderr")
        verdict = REPRODUCED if abs(s + 1.6) <= 0.15 else NOT_REPRODUCED
        out.append(Claim(sec, "span distribution of the training data is a power law, slope about -1.6", "-1.6 (critical branching: -1.5)",
                         fmt(s), interval(s - 2 * se, s + 2 * se) if _ok(se) else "-", verdict,
                         "rule: within 0.15 of -1.6; log-log least squares", step))
    return out


def mi_claims(records: dict) -> list[Claim]:
    sec, step = "MI decay of the corpora", "mi_decay"
    ok, why = _status(records, step)
    if not ok:
        return [_not_run(sec, "PTB: I(d) decays as a power law", "power law (Lin & Tegmark)", step, why),
                _not_run(sec, "Markov-PTB: I(d) decays exponentially", "exponential", step, why)]
    out = []
    for name, s in records[step]["results"]["corpora"].items():
        expected = "exponential" if name == "Markov-PTB" else "power"
        tail = s.get("tail")
        if tail == "insufficient":
            verdict = NOT_COMPARABLE
        else:
            verdict = REPRODUCED if tail == expected else NOT_REPRODUCED
        xi = s.get("xi_tail") if _ok(s.get("xi_tail")) else s.get("xi_exponential")
        k = f"k_tail {fmt(s.get('k_tail'))}" if tail == "power" else f"decay length xi {fmt(xi, 1)} tokens"
        iv = interval(s.get("k_tail_low"), s.get("k_tail_high"), level="95%") if tail == "power" else "-"
        a = f"; suggested a = k/2 = {fmt(s.get('a'))}" if _ok(s.get("a")) else ""
        out.append(Claim(sec, f"{name}: I(d) decays {'exponentially' if expected == 'exponential' else 'as a power law'} (tail law, AICc)",
                         "exponential (Markov control)" if expected == "exponential" else "power law",
                         f"{tail}; {k}{a} (d <= {s.get('max_retained_distance')})", iv, verdict,
                         "too few distances above the shuffle band" if tail == "insufficient" else "", step))
    return out


def build_claims(records: dict[str, dict], profile: str) -> list[Claim]:
    comparable = profile == "paper"
    return (table1_claims(records, comparable) + wt2_claims(records, comparable)
            + timescale_claims(records, comparable) + appendix_claims(records)
            + routing_claims(records, comparable) + dyck_claims(records, comparable) + mi_claims(records))


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------

FIGURES = [
    ("fig1_timescales", "Fig. 1: unit timescales (T_data) of the baselines, sorted, with inverse-gamma curves; top ours, bottom published"),
    ("fig2_dyck", "Fig. 2: Dyck-2 span distribution and accuracy vs max timescale, baseline vs MTS"),
    ("fig3_routing", "Fig. 3: perplexity ratio when a chunk of layer-2 units is ablated, per word-frequency bin; ours and published"),
    ("appendix_mts", "Appendix: MTS model, estimated vs assigned timescales per constrained layer; ours and published"),
    ("table1_perplexity", "Table 1: perplexity per frequency bin, baseline vs MTS, and the paired difference"),
    ("mi_decay", "MI decay: I(d) above the shuffle band for each corpus"),
    ("mi_decay_ptb", "MI decay of PTB with the exponential / power / combined fits"),
]

PROFILE_NOTES = {
    "smoke": ("**smoke profile**: tiny models (24/24/16 units, 2 epochs) trained here on the first lines of PTB, a "
              "tiny Dyck sweep. The numbers only show that every step runs; none of them is evidence."),
    "small": ("**small profile**: AWD-LSTM 300/300/200 trained 3 epochs on 2 CPU cores (the shipped checkpoints), "
              "Dyck with 64 units and 24 epochs. Absolute numbers are *not comparable* with the paper's "
              "1150/1150/400 models trained 1000 epochs; directions of effects are compared instead."),
    "paper": "**paper profile**: the paper's architectures and budgets; absolute numbers are compared.",
}


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def render_markdown(claims: Sequence[Claim], records: dict[str, dict], opts: ReproduceOptions,
                    figures: Sequence[tuple[str, str]]) -> str:
    lines = [f"# tsprobe reproduce: report ({opts.profile} profile)", "",
             PROFILE_NOTES[opts.profile], "",
             "Paper: Mahto et al., *Multi-timescale Representation Learning in LSTM Language Models*, ICLR 2021. "
             "Verdicts: *reproduced* / *not reproduced* / *not comparable at this scale* / *not run* (see the "
             "`timescale_probe.reproduce.report` docstring for the rules).", ""]
    counts = pd.Series([c.verdict for c in claims]).value_counts()
    lines.append("Summary: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + ".")
    section = None
    for c in claims:
        if c.section != section:
            section = c.section
            lines += ["", f"## {section}", "", "| claim | paper | ours | interval | verdict | note |",
                      "|---|---|---|---|---|---|"]
        lines.append("| " + " | ".join(_md_escape(x) for x in (c.claim, c.paper, c.ours, c.interval,
                                                                  f"**{c.verdict}**", c.note)) + " |")
    lines += ["", "## Models", "", "| step | source | checkpoint | epochs | best valid ppl | status |", "|---|---|---|---:|---:|---|"]
    for name, rec in records.items():
        if name.startswith("train_") and rec.get("status") == "done":
            r = rec["results"]
            card = r.get("card") or {}
            lines.append(f"| {name} | {r.get('source', '')} | {_md_escape(r.get('checkpoint', ''))} | {card.get('epochs', '')} "
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


def render_html(claims: Sequence[Claim], records: dict[str, dict], opts: ReproduceOptions,
                figures: Sequence[tuple[str, str]]) -> str:
    e = html.escape
    colors = {REPRODUCED: "#d9f2d9", NOT_REPRODUCED: "#f8d7d7", NOT_COMPARABLE: "#eeeeee", NOT_RUN: "#fff3cd"}
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>tsprobe reproduce report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
             "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}img{max-width:100%}</style>",
             "</head><body>", f"<h1>tsprobe reproduce: report ({e(opts.profile)} profile)</h1>",
             f"<p>{e(PROFILE_NOTES[opts.profile].replace('**', '').replace('*', ''))}</p>"]
    section = None
    for c in claims:
        if c.section != section:
            if section is not None:
                parts.append("</table>")
            section = c.section
            parts.append(f"<h2>{e(section)}</h2><table><tr><th>claim</th><th>paper</th><th>ours</th>"
                         "<th>interval</th><th>verdict</th><th>note</th></tr>")
        parts.append("<tr>" + "".join(f"<td>{e(x)}</td>" for x in (c.claim, c.paper, c.ours, c.interval))
                     + f"<td style='background:{colors.get(c.verdict, '#fff')}'>{e(c.verdict)}</td><td>{e(c.note)}</td></tr>")
    if section is not None:
        parts.append("</table>")
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


def write_report(out: Path, records: dict[str, dict], opts: ReproduceOptions) -> dict[str, Any]:
    claims = build_claims(records, opts.profile)
    figures = [(stem, cap) for stem, cap in FIGURES if (out / f"{stem}.png").is_file()]
    root = str(repo_root()) + "/"  # paths inside the source checkout are shown relative to it

    def short(text: str) -> str:
        return text.replace(root, "")

    atomic_write_text(out / "report.md", short(render_markdown(claims, records, opts, figures)))
    atomic_write_text(out / "report.html", short(render_html(claims, records, opts, figures)))
    write_table(pd.DataFrame([asdict(c) for c in claims]), out / "claims.csv")
    counts = pd.Series([c.verdict for c in claims]).value_counts().to_dict()
    return {"verdicts": {v: int(counts.get(v, 0)) for v in VERDICTS}, "claims": len(claims),
            "_files": ["report.md", "report.html", "claims.csv"]}


def step_report(ctx: StepContext, opts: ReproduceOptions) -> dict[str, Any]:
    from .steps import build_steps

    names = [s.name for s in build_steps(opts) if s.name != "report"]
    records = {}
    for n in names:
        rec = load_record(ctx.out, n) or {}
        records[n] = rec if rec.get("profile") == opts.profile else {}  # another profile's record: not this run's
    return write_report(ctx.out, records, opts)
