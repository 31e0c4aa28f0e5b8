"""Claims as data: what a result says, with its numbers, rule and verdict.

A :class:`Claim` has a stable ``id`` (``table1.overall_gain``) that tests and the report look it
up by; its numbers (estimate, interval and level, n, between-seed SD, seeds needed for 80% power);
the ``rule`` that decided it, in words; the ``verdict``; and a ``label`` that says what kind of
evidence it is (DESIGN.md, Conventions):

- ``code check``: our code on numbers the paper prints;
- ``reproduction``: an effect the paper reports, re-measured on models we trained;
- ``beyond the paper``: a re-analysis or a question the paper does not print an answer to;
- ``by construction``: true because of how the experiment is built (not counted as evidence).

Verdicts: ``holds`` / ``fails`` (the rule decided), ``inconclusive`` (it could not decide: the
note says why and, for an effect of training, how many more seeds 80% power needs), ``not
comparable`` (an absolute number of a model below the paper's scale), ``not run``.

Display strings are made by the report from these fields, never stored in them. Adding a claim
is one builder function returning a :class:`Claim` plus one line registering it in the report's
list (``timescale_probe/reproduce/claims_*.py``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

__all__ = ["Claim", "LABELS", "VERDICTS", "claims_table", "find_claim"]

LABELS = ("code check", "reproduction", "beyond the paper", "by construction")
VERDICTS = ("holds", "fails", "inconclusive", "not comparable", "not run")
#: what a claim's ``lo``/``hi`` bound: an interval of the estimate, or the null range of controls
INTERVALS = ("estimate", "controls")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim and its evidence. ``estimate``/``lo``/``hi`` are in ``unit``; ``paper`` is the
    number the paper prints for it (None when it prints none) and ``expected`` what the paper (or,
    beyond the paper, the hypothesis) says in words. For an effect over seeds: ``n`` seeds,
    ``sd`` the between-seed SD, ``effect`` the standardised effect ``(estimate - null) / sd``,
    ``p`` the p value of the rule's test and ``seeds_needed`` the seeds 80% power needs.
    ``interval_of`` says what ``lo``/``hi`` bound: ``estimate`` (an interval of ours) or
    ``controls`` (the range of the null that decides, e.g. k-seed means of random control groups)."""

    id: str
    statement: str
    label: str
    verdict: str
    rule: str = ""
    estimate: float | None = None
    lo: float | None = None
    hi: float | None = None
    level: float | None = None
    n: int | None = None
    sd: float | None = None
    seeds_needed: int | None = None
    paper: float | None = None
    unit: str = ""
    section: str = ""
    note: str = ""
    step: str = ""
    expected: str = ""
    effect: float | None = None
    p: float | None = None
    interval_of: str = "estimate"

    def __post_init__(self) -> None:
        if not self.id or any(c.isspace() for c in self.id):
            raise ValueError(f"a claim id is one word with no spaces (got {self.id!r})")
        if self.label not in LABELS:
            raise ValueError(f"claim {self.id}: label must be one of {LABELS} (got {self.label!r})")
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.id}: verdict must be one of {VERDICTS} (got {self.verdict!r})")
        if self.interval_of not in INTERVALS:
            raise ValueError(f"claim {self.id}: interval_of must be one of {INTERVALS} (got {self.interval_of!r})")

    @property
    def is_evidence(self) -> bool:
        """Whether the claim counts as evidence (rows true by construction do not)."""
        return self.label != "by construction"

    @property
    def more_seeds(self) -> int | None:
        """Seeds still missing for 80% power (0 when there are enough; None when unknown)."""
        if self.seeds_needed is None or self.n is None:
            return None
        return max(int(self.seeds_needed) - int(self.n), 0)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for k, v in out.items():
            if isinstance(v, float) and not math.isfinite(v):
                out[k] = None
        return out


def claims_table(claims: Iterable[Claim]):
    """The claims as a tidy DataFrame, one row each, columns = the :class:`Claim` fields."""
    import pandas as pd

    rows = [c.to_dict() for c in claims]
    cols = [f.name for f in dataclasses.fields(Claim)]
    return pd.DataFrame(rows, columns=cols)


def find_claim(claims: Iterable[Claim], claim_id: str) -> Claim:
    """The claim with ``claim_id`` (KeyError naming the ids present otherwise)."""
    claims = list(claims)
    for c in claims:
        if c.id == claim_id:
            return c
    raise KeyError(f"no claim {claim_id!r}; ids: {', '.join(c.id for c in claims)}")
