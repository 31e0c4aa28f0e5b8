"""The report's descriptive parts beside the claims: Table 1 in full, the seeds (how many per arm,
which recipe and device, what is missing, how many more each inconclusive effect needs), the models
and the steps."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from ..analysis.claims import Claim
from .claims_base import num, seeds_results, status
from .results import Table1Result, TrainResult, from_results, load


def _f(x, nd: int = 2) -> str:
    x = num(x)
    return "-" if not math.isfinite(x) else f"{x:.{nd}f}"


def _iv(lo, hi, nd: int = 2) -> str:
    return "-" if not (math.isfinite(num(lo)) and math.isfinite(num(hi))) else f"[{_f(lo, nd)}, {_f(hi, nd)}]"


def table1_full(records: dict) -> list[str]:
    """Markdown lines: Table 1 in full (per bin perplexities, the difference and the relative NLL
    gain with their intervals), the bin counting and the validation gap."""
    sr = seeds_results(records)
    t1 = load(records, "table1_perplexity", Table1Result)
    if sr.table1:
        rows, source = sr.table1["rows"], f"seeds {', '.join(map(str, sr.table1['seeds']))}"
        how = ("mean over seeds; intervals: hierarchical bootstrap (seeds, then 100-token chunks), with the t "
               "interval across seeds beside the difference and the gain")
    elif t1:
        rows, source, how = t1.rows, "this run's pair of models", "one seed; intervals: paired chunk bootstrap"
    else:
        return []
    lines = ["", "### Table 1 in full", "",
             f"Source: {source}; {how} (95%). Difference = baseline - MTS perplexity; gain = (NLL baseline - NLL MTS) "
             "/ NLL baseline per token, %; > 0: MTS better.", "",
             "| bin | tokens | baseline | MTS | baseline - MTS | gain % |", "|---|---:|---|---|---|---|"]
    for r in rows:
        d_iv = _iv(r.get("lo"), r.get("hi")) + (f" t {_iv(r.get('t_lo'), r.get('t_hi'))}" if math.isfinite(num(r.get("t_lo"))) else "")
        g_iv = _iv(r.get("rel_lo"), r.get("rel_hi"), 3) + (
            f" t {_iv(r.get('rel_t_lo'), r.get('rel_t_hi'), 3)}" if math.isfinite(num(r.get("rel_t_lo"))) else "")
        lines.append(f"| {r['bin']} | {r.get('tokens', '')} | {_f(r.get('ppl_baseline'))} "
                     f"{_iv(r.get('ppl_baseline_lo'), r.get('ppl_baseline_hi'))} | {_f(r.get('ppl_mts'))} "
                     f"{_iv(r.get('ppl_mts_lo'), r.get('ppl_mts_hi'))} | {_f(r.get('diff'))} {d_iv} | "
                     f"{_f(r.get('rel_nll_pct'), 3)} {g_iv} |")
    if t1 and t1.bins:
        lines += ["", f"Bin counting: {t1.bins['line']}."]
    gap = sr.gap
    if gap.get("mean_by_epoch"):
        g = ", ".join(f"{x:+.1f}" for x in gap["mean_by_epoch"])
        last = ", ".join(f"seed {s}: {v:+.1f}" for s, v in gap.get("last_change", []))
        lines += ["", f"Validation gap MTS vs baseline per epoch (valid ppl MTS / baseline - 1, %, mean over seeds "
                      f"{', '.join(map(str, gap['seeds']))}): {g}; change over each seed's last epoch: {last}. "
                  + (f"Budget visibly too small: {gap['budget']}." if gap.get("budget") else
                     "The budget is not visibly too small (the changes do not move consistently by more than 1 point).")]
    return lines


#: How each planned group of seeds is trained and ingested when some are missing: (arms, commands).
RESUME = {
    "ptb": (("ptb-baseline", "ptb-mts"),
            "`tsprobe train-sweep --corpus ptb --seeds {ids} --arch baseline,mts --profile small --epochs 10 --jobs 2 "
            "--threads 1 --out runs/evidence-seeds`, then `python -m timescale_probe.seeds ingest "
            "runs/evidence-seeds/*.pt --into figures/seeds` (finished runs are skipped, killed ones resume)"),
    "markov-ptb": (("markov-ptb-baseline",),
                   "`tsprobe markov-corpus ptb --order 2 --seed 0 --out runs/markov-ptb` (the shipped seed's corpus), "
                   "`tsprobe train-sweep --corpus runs/markov-ptb --seeds {ids} --arch baseline --profile small "
                   "--epochs 10 --jobs 2 --threads 1 --out runs/markov-seeds`, then `python -m timescale_probe.seeds "
                   "ingest runs/markov-seeds/*.pt --corpus runs/markov-ptb --no-ablation --into figures/seeds`"),
}


def planned_lines(arms: dict, planned: Mapping[str, Sequence[int]]) -> list[str]:
    """Which of the planned seeds have finished per arm, and the commands that resume the rest.
    ``planned``: seeds per corpus (``{"ptb": (141, 2, ...), "markov-ptb": (...)}``, a profile's
    ``planned_seeds``; empty: no lines)."""
    lines = []
    for corpus, seeds_planned in planned.items():
        names, how = RESUME[corpus]
        done = {a: {int(s) for s in arms.get(a, [])} for a in names}
        counts = "; ".join(f"{a}: {len([s for s in seeds_planned if s in done[a]])} of {len(seeds_planned)} finished"
                           for a in names)
        lines.append(f"- planned ({corpus}): {len(seeds_planned)} seeds per arm ({', '.join(map(str, seeds_planned))}); "
                     f"{counts}")
        missing = [s for s in seeds_planned if any(s not in done[a] for a in names)]
        if missing:
            ids = ",".join(map(str, missing))
            lines.append(f"  - still to train: seeds {ids}; resume with " + how.format(ids=ids))
    return lines


def seeds_lines(records: dict, claims: Sequence[Claim], planned: Mapping[str, Sequence[int]]) -> list[str]:
    sr = seeds_results(records)
    ok, why = status(records, "seeds")
    if not ok:
        return ["", "## Seeds", "", f"Not combined: {why}."]
    lines = ["", "## Seeds", "",
             "Models combined, paired by seed (this run's and the per-seed folders"
             + (f" in {sr.seeds_dir}" if sr.seeds_dir else "") + "); every arm pools one training recipe (device and "
             "torch version may differ: CPU and GPU seeds of one recipe are pooled):", ""]
    for arm, seeds in sr.arms.items():
        rec = sr.recipes.get(arm, {})
        recipe = f"; recipe {', '.join(rec)}" if rec else ""
        devs = sorted({sr.devices.get(f"{arm}-seed{s}", "?") for s in seeds})
        lines.append(f"- {arm}: {len(seeds)} seed(s) finished: {', '.join(map(str, seeds))}{recipe}; trained on "
                     f"{', '.join(devs)}")
    lines += planned_lines(sr.arms, planned)
    for name, miss in sr.missing.items():
        lines.append(f"- {name}: missing {', '.join(miss)}")
    for w in sr.left_out:
        lines.append(f"- left out: {w}")
    if sr.fig3:
        lines.append(f"- Fig. 3 contrasts use the MTS seeds with >= 200 independently drawn controls: "
                     f"{', '.join(map(str, sr.fig3.get('seeds_controls', []))) or 'none yet'}")
        for w in sr.fig3.get("left_out", []):
            lines.append(f"  - not in the contrasts: {w}")
        if sr.fig3.get("left_out"):
            lines.append("  - a seed's controls are added by `python -m timescale_probe.seeds ingest "
                         "runs/evidence-seeds/ptb-mts-seed<N>.pt --into figures/seeds --force --threads 1` (about an hour "
                         "per seed on one CPU core; a stopped run resumes from its finished passes), or on a GPU by "
                         "`benchmarks/gpu_check.py --ablate`; a seed whose weights were not kept cannot be ablated "
                         "again")
    need = [c for c in claims if c.verdict == "inconclusive" and c.seeds_needed is not None and c.more_seeds]
    if need:
        lines += ["", "Seeds still needed for 80% power (inconclusive effects):", ""]
        lines += [f"- {c.id}: {c.n} finished, {c.seeds_needed} needed ({c.more_seeds} more)" for c in need]
    return lines


def models_and_steps(records: dict) -> list[str]:
    lines = ["", "## Models", "", "| step | source | checkpoint | seed | epochs | best epoch | best valid ppl | status |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for name, rec in records.items():
        if name.startswith("train_") and rec.get("status") == "done":
            r = from_results(TrainResult, rec["results"])
            card = r.card or {}
            lines.append(f"| {name} | {r.source} | {r.checkpoint} | {card.get('seed', '')} | {card.get('epochs', '')} "
                         f"| {card.get('best_epoch', '')} | {_f(card.get('best_valid_ppl'))} | {card.get('status', '')} |")
    lines += ["", "## Steps", "", "| step | status | seconds | note |", "|---|---|---:|---|"]
    for name, rec in records.items():
        if name == "report":
            continue
        note: Any = rec.get("reason", "") if rec.get("status") != "done" else rec.get("title", "")
        lines.append(f"| {name} | {rec.get('status', 'not run')} | {rec.get('seconds', '')} | "
                     f"{str(note).replace('|', '/')} |")
    return lines
