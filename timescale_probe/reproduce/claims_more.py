"""Claims of Fig. 2 (Dyck-2), of the corpora's mutual-information decay (beyond the paper) and of
the registered studies (beyond the paper)."""
from __future__ import annotations

import re

from ..analysis.claims import Claim
from ..paper import PAPER
from .claims_base import BEYOND, BY_CONSTRUCTION, CODE, REPRO, Context, claim, not_run, num, status
from .results import DyckResult, MIResult, load
from .rules import FAILS, HOLDS, INCONCLUSIVE, NOT_RUN, Decision, effect_rule
from .verdicts import code_check, condition, value_rule

FIG2 = "Fig. 2 (Dyck-2)"
MI = "MI decay of the corpora"


def dyck_claims(records: dict, ctx: Context) -> list[Claim]:
    step = "dyck"
    ok, why = status(records, step)
    items = [("fig2.accuracy_mts", "test accuracy of the MTS model", PAPER["dyck_mts"], "mts"),
             ("fig2.accuracy_baseline", "test accuracy of the baseline", PAPER["dyck_baseline"], "baseline")]
    effects = [("fig2.mts_more_accurate", "MTS more accurate than the baseline (paired by seed)", "overall",
                f"yes: {PAPER['dyck_mts']:.2%} vs {PAPER['dyck_baseline']:.2%}"),
               ("fig2.tail_gain", "MTS more accurate for sequences whose max timescale exceeds 75 (paired by seed)", "tail",
                f"yes: +{PAPER['dyck_tail_gap'][0]:.0%} to +{PAPER['dyck_tail_gap'][1]:.0%}")]
    span = ("fig2.span_slope", "the span distribution of our generator's training data is a power law with slope about -1.6")
    if not ok:
        return ([not_run(c, t, REPRO, FIG2, step=step, why=why, paper=p) for c, t, p, _ in items]
                + [not_run(c, t, REPRO, FIG2, step=step, why=why, expected=e) for c, t, _, e in effects]
                + [not_run(span[0], span[1], CODE, FIG2, step=step, why=why, paper=PAPER["dyck_span_slope"])])
    r = load(records, step, DyckResult)
    out = []
    for cid, text, paper, arch in items:
        per_seed = list((r.accuracy_by_seed or {}).get(arch, {}).values())
        d = value_rule(per_seed or [num(r.overall.get(arch, {}).get("mean"))], paper, comparable=ctx.comparable)
        out.append(claim(cid, text, REPRO, FIG2, d, step=step, paper=paper, unit=" (fraction)", note=r.source))
    for cid, text, kind, expected in effects:
        diffs = list((r.paired_by_seed or {}).get(kind, {}).values())
        d = effect_rule(diffs, what=f"accuracy difference MTS - baseline ({kind})") if diffs else None
        out.append(claim(cid, text, REPRO, FIG2, d, step=step, expected=expected, unit=" (fraction)",
                         why_missing="no test sequences in this range for both models"))
    fit = r.span_slope
    if fit:
        out.append(claim(span[0], span[1], CODE, FIG2, code_check(num(fit["slope"]), PAPER["dyck_span_slope"], tol=0.15,
                                                                    what="log-log least squares"),
                         step=step, paper=PAPER["dyck_span_slope"],
                         note="our generator against the slope the paper prints for its own (critical branching: -1.5)"))
    return out


def mi_claims(records: dict, ctx: Context) -> list[Claim]:
    step = "mi_decay"
    ok, why = status(records, step)
    if not ok:
        return [not_run("mi.ptb.power_law", "PTB: I(d) decays as a power law", BEYOND, MI, step=step, why=why,
                        expected="power law (Lin & Tegmark)"),
                not_run("mi.markov_ptb.exponential", "Markov-PTB (our resampler): I(d) decays exponentially",
                        BY_CONSTRUCTION, MI, step=step, why=why, expected="exponential")]
    out = []
    rule = ("the tail law chosen by AICc among exponential, power law and combined, fitted on the distances where "
            "I(d) clears the shuffle band (95%)")
    for name, s in load(records, step, MIResult).corpora.items():
        slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
        markov = name == "Markov-PTB"
        tail = s.get("tail")
        xi = num(s.get("xi_tail")) if s.get("xi_tail") is not None else num(s.get("xi_exponential"))
        k = (f"k_tail {num(s.get('k_tail')):.3f} [{num(s.get('k_tail_low')):.3f}, "
             f"{num(s.get('k_tail_high')):.3f}]") if tail == "power" else f"decay length xi {xi:.1f} tokens"
        where = f"tail {tail}; {k} (d <= {s.get('max_retained_distance')})"
        if markov:
            d = (Decision(INCONCLUSIVE, rule, "too few distances above the shuffle band") if tail == "insufficient"
                 else condition(tail == "exponential", rule, where))
            out.append(claim("mi.markov_ptb.exponential", "Markov-PTB (our resampler): I(d) decays exponentially",
                             BY_CONSTRUCTION, MI, d, step=step, expected="exponential (an order-2 Markov chain, by construction)",
                             note="checks the resampler and the estimator, not a claim about language"))
            continue
        d = (Decision(INCONCLUSIVE, rule, f"too few distances above the shuffle band; {where}") if tail == "insufficient"
             else condition(tail == "power", rule, where, estimate=num(s.get("k_tail"))))
        out.append(claim(f"mi.{slug}.power_law", f"{name}: I(d) decays as a power law", BEYOND, MI, d, step=step,
                         expected="power law (the paper assumes it, after Lin & Tegmark; it measures no corpus)"))
    return out


def study_claims(records: dict, ctx: Context) -> list[Claim]:
    """Rows of registered studies (:func:`.steps.register_study`): each step's results hold ``rows``,
    each a dict with ``claim``, ``verdict`` (``holds``, ``does not hold``/``fails``, ``inconclusive``,
    ``not run``) and ``evidence`` (optional ``id``, ``expected``, ``note``, ``estimate``, ``lo``,
    ``hi``, ``n``, ``sd``, ``seeds_needed``, ``rule``)."""
    out = []
    words = {"holds": HOLDS, "does not hold": FAILS, "fails": FAILS, "inconclusive": INCONCLUSIVE, "not run": NOT_RUN}
    for st in ctx.studies:
        section = f"{st.section}"
        ok, why = status(records, st.name)
        if not ok:
            out.append(not_run(f"study.{st.name}", st.title, BEYOND, section, step=st.name, why=why))
            continue
        for i, row in enumerate(records[st.name]["results"].get("rows", []), 1):
            v = words.get(str(row.get("verdict", "")).lower(), INCONCLUSIVE)
            num = {k: row.get(k) for k in ("estimate", "lo", "hi", "n", "sd", "seeds_needed") if row.get(k) is not None}
            d = Decision(v, str(row.get("rule", "")), str(row.get("evidence", "")), **num)
            out.append(claim(str(row.get("id") or f"study.{st.name}.{i}"), str(row.get("claim", "")), BEYOND, section, d,
                             step=st.name, expected=str(row.get("expected", "")),
                             note="; ".join(str(row[k]) for k in ("interval", "note") if row.get(k) not in (None, "", "-"))))
    return out


BUILDERS = [dyck_claims, mi_claims, study_claims]
