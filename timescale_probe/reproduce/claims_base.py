"""What every claim builder of the report shares: reading the steps' records and making a
:class:`~timescale_probe.analysis.Claim` from a :class:`~.rules.Decision`.

A claim builder is a function ``(records, ctx) -> list[Claim]`` listed in its module's
``BUILDERS``; :func:`.report.build_claims` runs the modules' builders in report order. Adding a
claim is one builder (or one more ``claim(...)`` in an existing one) in a ``claims_*`` module,
plus, when it needs a new statistic, one entry in the step that computes it (e.g. a new id in
:func:`.multiseed.step_seeds`'s ``decisions``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..analysis.claims import Claim
from .results import SeedsResult, load
from .rules import NOT_RUN, Decision

CODE, REPRO, BEYOND, BY_CONSTRUCTION = "code check", "reproduction", "beyond the paper", "by construction"


@dataclass
class Context:
    """What builders need besides the records: the profile, whether absolute numbers are
    comparable with the paper's (its scale), and the registered studies."""

    profile: str
    studies: Sequence[Any] = field(default_factory=tuple)

    @property
    def comparable(self) -> bool:
        return self.profile == "paper"


def status(records: dict[str, dict], step: str) -> tuple[bool, str]:
    """``(done, why not)`` of one step."""
    rec = records.get(step) or {}
    if rec.get("status") == "done":
        return True, ""
    if not rec:
        return False, f"step {step} has not run"
    return False, f"step {step} {rec.get('status')}: {rec.get('reason', '')}"


def seeds_results(records: dict) -> SeedsResult:
    """The ``seeds`` step's results; an empty one when it did not finish."""
    return load(records, "seeds", SeedsResult) or SeedsResult()


def decision(records: dict, claim_id: str) -> Decision | None:
    """The seeds step's decision of ``claim_id`` (None when it was not computed)."""
    return seeds_results(records).decisions.get(claim_id)


def claim(claim_id: str, statement: str, label: str, section: str, d: Decision | None, *, step: str,
          paper: float | None = None, expected: str = "", unit: str = "", note: str = "",
          why_missing: str = "not measured") -> Claim:
    """A claim from a decision (``None``: not run, with ``why_missing``); ``note`` goes before the
    decision's reason."""
    if d is None:
        d = Decision(NOT_RUN, "", why_missing, level=None)
    fields = d.claim_fields()
    reason = fields.pop("note")
    fields["note"] = "; ".join(x for x in (note, reason) if x)
    return Claim(id=claim_id, statement=statement, label=label, section=section, step=step, paper=paper,
                 expected=expected, unit=unit, **fields)


def not_run(claim_id: str, statement: str, label: str, section: str, *, step: str, why: str,
            paper: float | None = None, expected: str = "", unit: str = "") -> Claim:
    return claim(claim_id, statement, label, section, None, step=step, paper=paper, expected=expected, unit=unit,
                 why_missing=why)


def num(x: Any) -> float:
    """A stored number as a float (the step records keep non-finite values as the string 'nan')."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


BIN_IDS = {">10K": "gt10k", "1K-10K": "1k_10k", "100-1K": "100_1k", "<100": "lt100", "overall": "overall"}
