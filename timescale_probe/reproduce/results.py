"""Typed results of the ``tsprobe reproduce`` steps: what each step hands to the report.

A step builds one of these dataclasses and returns :func:`as_results` of it (the pipeline stores it
as JSON in ``<out>/.steps/<name>.json``); the report reads it back with :func:`load`, so both sides
name the same fields and neither imports the other. Every pre-specified claim's statistics are a
typed :class:`~.rules.Decision` keyed by the claim's id; descriptive numbers (a summary of
timescales, one fit, table rows) stay plain dicts whose keys are documented on the field.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from ..errors import InputError

T = TypeVar("T")


def as_results(obj: Any, files: list[str] | None = None) -> dict[str, Any]:
    """The JSON-able dict a step returns: the dataclass's fields plus ``_files`` (outputs)."""
    d = asdict(obj)
    if files is not None:
        d["_files"] = list(files)
    return d


def from_results(cls: type[T], results: dict[str, Any]) -> T:
    """A dataclass of ``cls`` from a stored results dict (``_files`` aside). A key the class does
    not know is an error, never dropped in silence: a stored result of another version says so
    (rerun that step with ``--force``). Fields typed as :class:`~.rules.Decision` mappings are
    rebuilt from their dicts."""
    from .rules import Decision

    names = {f.name for f in fields(cls)}
    data = {k: v for k, v in (results or {}).items() if k != "_files"}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"stored {cls.__name__} has field(s) {', '.join(unknown)} this version does not know: "
                         "redo the step (--force STEP)")
    if "decisions" in data and isinstance(data["decisions"], dict):
        data["decisions"] = {k: v if isinstance(v, Decision) else Decision(**v) for k, v in data["decisions"].items()}
    return cls(**data)


def load(records: dict[str, dict], step: str, cls: type[T]) -> T | None:
    """The typed results of ``step`` when it finished (status ``done``), else None."""
    rec = records.get(step) or {}
    if rec.get("status") != "done":
        return None
    return from_results(cls, rec.get("results") or {})


@dataclass
class CorporaResult:
    ptb: str  # "ptb" or a folder relative to the output (smoke subset)
    ptb_tokens: dict[str, int]
    ptb_vocab: int
    markov: str
    markov_order: int
    markov_tokens: dict[str, int]
    wt2: dict[str, Any]  # dir, splits, missing (, subset)
    others: dict[str, str | None]


@dataclass
class TrainResult:
    checkpoint: str
    source: str  # shipped | trained
    card: dict[str, Any] = field(default_factory=dict)  # status, epochs, best_epoch, best_valid_ppl, ...


@dataclass
class TimescaleResult:
    """T_data of one model. ``summary`` / ``per_layer``: :func:`timescales.summarize_timescales`
    (units, median, q90, max, share_gt_10, share_gt_100, share_lt_1); ``fit``: :func:`.steps.fit_summary`
    (a, a_lo, a_hi, b, ..., a_scale1, best_family, best_label, delta_aic_invgamma, invgamma_ks, ...)."""

    label: str
    table: str
    n_tokens: int
    summary: dict[str, Any]
    per_layer: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    fit: dict[str, Any] | None = None


@dataclass
class PublishedTimescalesResult:
    """The authors' arrays through our code: per corpus ``{"summary": ..., "fit": ...}`` as above."""

    ptb: dict[str, Any]
    wt2: dict[str, Any]


@dataclass
class AppendixResult:
    stats: list[dict[str, Any]]  # source, layer, units, spearman, median_abs_log10_ratio, ...


@dataclass
class Table1Result:
    """This run's pair of models. ``rows``: per bin and overall (``bin, tokens, ppl_baseline(_lo/_hi),
    ppl_mts(_lo/_hi), diff, lo, hi, rel_nll_pct, rel_lo, rel_hi, direction, level, ...``);
    ``bins``: :func:`corpora.bin_counting_statement`."""

    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    bins: dict[str, Any] | None = None
    n_targets: int | None = None

    def by_bin(self) -> dict[str, dict[str, Any]]:
        return {r["bin"]: dict(r) for r in self.rows}


@dataclass
class WT2Result:
    ppl_mts: float | None = None
    ppl_baseline: float | None = None


@dataclass
class RoutingResult:
    """Fig. 3 of this run's MTS model. ``ours`` / ``published``: per bin :func:`ablation.routing_facts`;
    ``band``: per bin ``{lo, hi, n}`` of the random groups; ``tests``: :func:`.steps.routing_tests`."""

    ours: dict[str, Any]
    groups: str
    units: int
    ppl_intact: float | None = None
    controls: int = 0
    control_size: int | None = None
    control_seed: int | None = None
    band: dict[str, Any] = field(default_factory=dict)
    tests: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    published: dict[str, Any] | None = None


@dataclass
class DyckResult:
    source: str
    span_slope: dict[str, Any] | None = None  # slope, stderr, ...
    overall: dict[str, Any] = field(default_factory=dict)  # arch -> {mean, std, seeds}
    paired_overall: dict[str, Any] | None = None  # diff, ci_lo, ci_hi, pairs, bin, sign_p
    paired_tail: dict[str, Any] | None = None
    #: per seed pair, MTS - baseline accuracy: ``{"overall": {seed: diff}, "tail": {seed: diff}}``
    paired_by_seed: dict[str, dict[str, float]] = field(default_factory=dict)
    #: per arch, the overall test accuracy of every seed: ``{"mts": {seed: accuracy}}``
    accuracy_by_seed: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class MIResult:
    corpora: dict[str, dict[str, Any]]  # name -> tail, k_tail(_low/_high), xi_tail, a, ...
    skipped: list[str] = field(default_factory=list)


@dataclass
class SeedsResult:
    """The ``seeds`` step (:mod:`.multiseed`). ``decisions``: the pre-specified claims' statistics
    by claim id (:class:`~.rules.Decision`); ``table1``: ``{seeds, rows, per_seed}`` (rows as
    :func:`evaluation.seed_paired_comparison`); ``gap``: ``{seeds, mean_by_epoch, last_change,
    budget}``; ``fig3``: ``{seeds, seeds_controls, left_out, facts, band, long, short}``;
    ``recipes``: arm -> recipe hash -> seeds; ``markov``, ``fits``, ``appendix``: one dict per seed."""

    arms: dict[str, list[int]] = field(default_factory=dict)
    arm_counts: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)
    seeds_dir: str | None = None
    level: float = 0.95
    recipes: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)
    gap: dict[str, Any] = field(default_factory=dict)
    table1: dict[str, Any] | None = None
    fig3: dict[str, Any] | None = None
    markov: dict[str, Any] = field(default_factory=dict)
    fits: list[dict[str, Any]] = field(default_factory=list)
    appendix: list[dict[str, Any]] = field(default_factory=list)
    decisions: dict[str, Any] = field(default_factory=dict)
