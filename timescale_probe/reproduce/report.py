"""The report of ``tsprobe reproduce``: every claim as data (:class:`~timescale_probe.analysis.Claim`,
built by the ``claims_*`` modules from the steps' records), rendered as ``report.md``,
``report.html`` (figures as ``<img>`` of the PNG twins) and ``claims.csv`` (one row per claim, the
Claim's fields as columns; tests and comparisons look claims up by ``id``).

Each claim has a label (code check | reproduction | beyond the paper | by construction) and a
verdict (holds | fails | inconclusive | not comparable | not run); rows true by construction are
shown but not counted as evidence. Every interval is 95% (two-sided) and every one-sided test is at
2.5%, stated once at the top.
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Sequence

from ..analysis.claims import Claim, claims_table
from ..fileio import atomic_write_text, write_table
from ..pipeline import StepContext, load_record
from . import claims_lm, claims_more, claims_timescales
from .claims_base import BEYOND, BY_CONSTRUCTION, Context
from .config import ReproduceOptions, repo_root
from .report_extra import models_and_steps, seeds_lines, table1_full
from .verdicts import count_claims, summary_line

__all__ = ["build_claims", "write_report", "step_report", "render_markdown", "render_html", "MODULES"]

#: the claim modules, in report order; each has ``BUILDERS``
MODULES = (claims_lm, claims_timescales, claims_more)

FIGURES = [
    ("fig1_timescales", "Fig. 1: unit timescales (T_data) of the baselines, sorted, with inverse-gamma curves; top ours, bottom published"),
    ("fig2_dyck", "Fig. 2: Dyck-2 span distribution and accuracy vs max timescale, baseline vs MTS"),
    ("fig3_routing", "Fig. 3: perplexity ratio when a chunk of layer-2 units is ablated, per word-frequency bin, "
                     "with the band of random groups of the same sizes (shaded); ours and published"),
    ("seeds", "Seeds: validation gap MTS vs baseline per epoch, Table 1 per seed and combined, Fig. 3 over seeds "
              "with the null band of k-seed means of the controls"),
    ("appendix_mts", "Appendix: MTS model, estimated vs assigned timescales per constrained layer; ours and published"),
    ("table1_perplexity", "Table 1: perplexity per frequency bin, baseline vs MTS, and the paired difference (this run's pair)"),
    ("mi_decay", "MI decay: I(d) above the shuffle band for each corpus"),
    ("mi_decay_ptb", "MI decay of PTB with the exponential / power / combined fits"),
]

PROFILE_NOTES = {
    "smoke": ("**smoke profile**: tiny models (24/24/16 units, 2 epochs) trained here on the first lines of PTB, a "
              "tiny Dyck sweep. The numbers only show that every step runs; none of them is evidence."),
    "small": ("**small profile**: AWD-LSTM 300/300/200 trained 10 epochs (the shipped seed-141 checkpoints with the "
              "per-seed folders of further seeds, one recipe, CPU or GPU), Dyck with 64 units and 24 epochs. Absolute "
              "numbers are *not comparable* with the paper's 1150/1150/400 models trained 1000 epochs; effects are "
              "tested as the paper states them instead."),
    "paper": "**paper profile**: the paper's architectures and budgets; absolute numbers are compared.",
}

RULES = [
    "One interval level everywhere: **95%** (two-sided); every one-sided test runs at 2.5%, so a verdict agrees "
    "with the interval shown. Seeds are the unit of replication: n = seeds, SD = between-seed SD, and '80% power' "
    "= the seeds a one-sided t test at 2.5% needs for 80% power at the effect and SD measured (noncentral t).",
    "*code check*: our code on a number the paper prints; *reproduction*: an effect the paper reports, re-measured on "
    "models trained here (effects need >= 3 seeds per arm); *beyond the paper*: a re-analysis (e.g. of the authors' "
    "arrays) or a question the paper does not answer, with its outcome; *by construction*: true because of how the "
    "experiment is built, shown but not counted as evidence.",
    "Claims are pre-specified as the paper states them: a gain is a one-sided paired t over seeds; 'largest' a "
    "contrast against every alternative (all must hold); 'never' an equivalence test (TOST) with its margin stated; "
    "'specifically' a comparison against random control groups, the null of a k-seed mean being the distribution of "
    "k-seed means of controls; such rows show that null's 95% range as 'controls [lo, hi]' where other rows show "
    "the interval of ours. No claim is decided by a correction over tests it does not need.",
    "*inconclusive* says why and how many more seeds 80% power needs; *not comparable*: an absolute number of a "
    "smaller / shorter-trained model than the paper's; *not run*: the step was skipped or failed (the reason is given).",
]


def build_claims(records: dict[str, dict], profile: str, studies: Sequence[Any] = ()) -> list[Claim]:
    """Every claim of the report, in report order (ids unique)."""
    ctx = Context(profile, tuple(studies))
    out: list[Claim] = []
    for mod in MODULES:
        for builder in mod.BUILDERS:
            out += builder(records, ctx)
    seen: set[str] = set()
    for c in out:
        if c.id in seen:
            raise ValueError(f"two claims share the id {c.id}")
        seen.add(c.id)
    return out


def fmt(x, nd: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    x = float(x)
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.{nd - 1}e}"
    return f"{x:.{nd}g}"


def _md(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def cells(c: Claim) -> dict[str, str]:
    """The display strings of one claim (made here, never stored in it)."""
    unit = c.unit or ""
    printed = f"{c.paper:.6g}" if c.paper is not None else ""  # as the paper prints it (1902.37, 0.9382)
    paper = printed or c.expected or "-"
    if c.paper is not None and c.expected:
        paper = f"{printed} ({c.expected})"
    iv = f"[{fmt(c.lo)}, {fmt(c.hi)}]" if c.lo is not None and c.hi is not None else "-"
    if iv != "-" and c.interval_of == "controls":
        iv = f"controls {iv}"  # the null's range that decides, not an interval of ours
    power = "-"
    if c.seeds_needed is not None:
        more = c.more_seeds
        power = f"{c.seeds_needed}" + (f" ({more} more)" if more else " (enough)")
    return {"id": c.id, "claim": c.statement, "label": c.label, "paper": paper,
            "ours": (fmt(c.estimate) + unit) if c.estimate is not None else "-", "interval": iv,
            "n": "-" if c.n is None else str(c.n), "sd": fmt(c.sd), "d": fmt(c.effect, 3), "power": power,
            "verdict": c.verdict, "rule": c.rule, "note": c.note}


COLUMNS = [("id", "id"), ("claim", "claim"), ("label", "kind"), ("paper", "paper"), ("ours", "ours"),
           ("interval", "95% interval"), ("n", "n"), ("sd", "SD"), ("d", "d"), ("power", "seeds for 80% power"),
           ("verdict", "verdict"), ("note", "rule; why")]


def _sections(claims: Sequence[Claim]) -> tuple[list[str], list[str]]:
    """Section names in order: those of the paper, then those wholly beyond the paper."""
    order = list(dict.fromkeys(c.section for c in claims))
    beyond = [s for s in order if all(c.label in (BEYOND, BY_CONSTRUCTION) for c in claims if c.section == s)
              and any(c.label == BEYOND for c in claims if c.section == s)]
    return [s for s in order if s not in beyond], beyond


def render_markdown(claims: Sequence[Claim], records: dict[str, dict], opts: ReproduceOptions,
                    figures: Sequence[tuple[str, str]]) -> str:
    lines = [f"# tsprobe reproduce: report ({opts.profile} profile)", "", PROFILE_NOTES[opts.profile], "",
             "Paper: Mahto et al., *Multi-timescale Representation Learning in LSTM Language Models*, ICLR 2021.", "",
             "How to read it:", ""] + [f"- {r}" for r in RULES] + ["", summary_line(count_claims(claims))]
    paper_secs, beyond_secs = _sections(claims)

    def section(name: str) -> None:
        lines.extend(["", f"## {name}", "", "| " + " | ".join(h for _, h in COLUMNS) + " |",
                      "|" + "---|" * len(COLUMNS)])
        for c in claims:
            if c.section == name:
                d = cells(c)
                d["verdict"] = f"**{d['verdict']}**"
                d["note"] = "; ".join(x for x in (f"rule: {c.rule}" if c.rule else "", c.note) if x)
                lines.append("| " + " | ".join(_md(d[k]) for k, _ in COLUMNS) + " |")
        if name.startswith("Table 1 (PTB"):
            lines.extend(table1_full(records))

    for name in paper_secs:
        section(name)
    if beyond_secs:
        lines += ["", "# Beyond the paper", "", "Claims the paper does not make: an outcome, not a verdict on the paper."]
        for name in beyond_secs:
            section(name)
    lines += seeds_lines(records, claims, opts.settings["planned_seeds"])
    lines += models_and_steps(records)
    lines += ["", "## Figures", ""]
    for stem, caption in figures:
        lines += [f"**{stem}.pdf** - {caption}", "", f"![{stem}]({stem}.png)", ""]
    lines += [f"Options: `{_md(str(opts.to_dict()))}`", ""]
    return "\n".join(lines)


COLORS = {"holds": "#d9f2d9", "fails": "#f8d7d7", "inconclusive": "#fff3cd", "not comparable": "#eeeeee",
          "not run": "#f3e6ff"}


def render_html(claims: Sequence[Claim], records: dict[str, dict], opts: ReproduceOptions,
                figures: Sequence[tuple[str, str]]) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>tsprobe reproduce report</title>",
             "<style>body{font-family:sans-serif;max-width:1300px;margin:auto}table{border-collapse:collapse;"
             "font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}img{max-width:100%}</style>",
             "</head><body>", f"<h1>tsprobe reproduce: report ({e(opts.profile)} profile)</h1>",
             f"<p>{e(PROFILE_NOTES[opts.profile].replace('**', '').replace('*', ''))}</p>",
             "<ul>" + "".join(f"<li>{e(r.replace('*', ''))}</li>" for r in RULES) + "</ul>",
             f"<p><b>{e(summary_line(count_claims(claims)))}</b></p>"]
    paper_secs, beyond_secs = _sections(claims)
    for name in paper_secs + beyond_secs:
        if name == (beyond_secs or [None])[0]:
            parts.append("<h1>Beyond the paper</h1>")
        parts.append(f"<h2>{e(name)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for _, h in COLUMNS) + "</tr>")
        for c in claims:
            if c.section != name:
                continue
            d = cells(c)
            d["note"] = "; ".join(x for x in (f"rule: {c.rule}" if c.rule else "", c.note) if x)
            parts.append("<tr>" + "".join(
                f"<td style='background:{COLORS.get(c.verdict, '#fff')}'>{e(d[k])}</td>" if k == "verdict"
                else f"<td>{e(d[k])}</td>" for k, _ in COLUMNS) + "</tr>")
        parts.append("</table>")
    extra = table1_full(records) + seeds_lines(records, claims, opts.settings["planned_seeds"]) + models_and_steps(records)
    parts.append("<pre style='white-space:pre-wrap'>" + e("\n".join(extra)) + "</pre>")
    parts.append("<h2>Figures</h2>")
    for stem, caption in figures:
        parts.append(f"<h3>{e(stem)}</h3><p>{e(caption)} (<a href='{e(stem)}.pdf'>PDF</a>)</p>"
                     f"<img src='{e(stem)}.png' alt='{e(stem)}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out: Path, records: dict[str, dict], opts: ReproduceOptions, studies: Sequence[Any] = ()) -> dict[str, Any]:
    claims = build_claims(records, opts.profile, studies)
    figures = [(stem, cap) for stem, cap in FIGURES if (out / f"{stem}.png").is_file()]
    root = str(repo_root()) + "/"  # paths inside the source checkout are shown relative to it

    def short(text: str) -> str:
        return text.replace(root, "")

    atomic_write_text(out / "report.md", short(render_markdown(claims, records, opts, figures)))
    atomic_write_text(out / "report.html", short(render_html(claims, records, opts, figures)))
    table = claims_table(claims)
    table["note"] = table["note"].map(lambda s: short(str(s)) if isinstance(s, str) else s)
    write_table(table, out / "claims.csv")
    counts = count_claims(claims)
    return {"verdicts": counts, "summary": summary_line(counts), "claims": len(claims),
            "ids": [c.id for c in claims], "_files": ["report.md", "report.html", "claims.csv"]}


def step_report(ctx: StepContext, opts: ReproduceOptions, names: Sequence[str], studies: Sequence[Any] = ()) -> dict[str, Any]:
    """The report from the records of ``names`` (every other step of this pipeline); a record of
    another profile is not this run's and counts as not run."""
    records = {}
    for n in names:
        rec = load_record(ctx.out, n) or {}
        records[n] = rec if rec.get("profile") == opts.profile else {}
    return write_report(ctx.out, records, opts, studies)

