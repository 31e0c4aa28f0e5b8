"""Profiles of ``tsprobe reproduce``, the paper's published numbers, and the resolved options.

Profiles (what each step does is in :mod:`.steps`):

- ``smoke``: every figure from tiny models trained here on a PTB subset (the first
  ``ptb_lines`` lines of each split), a tiny Dyck sweep, MI on the subset; minutes on 2 CPU cores.
  Numbers are meaningless; the run proves the pipeline end to end (CI).
- ``small``: the shipped ``checkpoints/*-small.pt`` models (10 epochs of a 300/300/200 AWD-LSTM on
  2 CPU cores, seed 141), the per-seed folders of further seeds (``figures/seeds/``, combined with
  the shipped models, paired by seed), the committed Dyck small-profile sweep (``figures/dyck/``),
  full corpora.
- ``paper``: paper-profile models (1150/1150/400, 1000 epochs; a GPU), the paper's Dyck sweep.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OptionError
from ..paper import PAPER as _PAPER
from ..validation import check_int

PROFILES = ("smoke", "small", "paper")

#: Numbers published in the paper: one table, :data:`timescale_probe.paper.PAPER`.
PAPER = _PAPER

#: Per-profile settings. ``lm_profile``: training profile of :mod:`timescale_probe.training`.
SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": dict(
        lm_profile="tiny", ptb_lines={"train": 1200, "valid": 150, "test": 250}, train_overrides={"epochs": 2, "batch_size": 16, "bptt": 35, "eval_batch_size": 8},
        markov_order=2, fit_boot=40, n_resamples=1000, ablation_groups="quantiles:6", ablation_controls=20, group_batch=8,
        mi_max_distance=150, mi_distances=12, mi_shuffles=3, mi_max_tokens=30_000,
        dyck_sizes={"train": 300, "valid": 60, "test": 300}, dyck_max_len=100, dyck_profile="tiny", dyck_seeds=[1, 2],
        ref_fit_boot=40, threads=1,
    ),
    "small": dict(
        lm_profile="small", ptb_lines=None, train_overrides={}, markov_order=2, fit_boot=500, n_resamples=10_000,
        ablation_groups="quantiles:23", ablation_controls=20, group_batch=8, mi_max_distance=1000, mi_distances=40, mi_shuffles=10,
        mi_max_tokens=None, dyck_sizes=None, dyck_max_len=200, dyck_profile="small", dyck_seeds=None,
        ref_fit_boot=500, threads=None,
    ),
    "paper": dict(
        lm_profile="paper", ptb_lines=None, train_overrides={}, markov_order=2, fit_boot=1000, n_resamples=10_000,
        ablation_groups="chunks:50", ablation_controls=20, group_batch=8, mi_max_distance=1000, mi_distances=60, mi_shuffles=10,
        mi_max_tokens=None, dyck_sizes={"train": 10_000, "valid": 2_000, "test": 5_000}, dyck_max_len=200,
        dyck_profile="paper", dyck_seeds=list(range(1, 21)), ref_fit_boot=1000, threads=None,
    ),
}

#: Shipped small-profile checkpoints (``checkpoints/`` of a source checkout).
SHIPPED = {
    "ptb_baseline": "ptb-baseline-small.pt",
    "ptb_mts": "ptb-mts-small.pt",
    "markov_baseline": "markov-ptb-baseline-small.pt",
}


def repo_root() -> Path:
    """The source checkout holding the package (``checkpoints/``, ``figures/`` live there)."""
    return Path(__file__).resolve().parents[2]


def default_reference_dir() -> Path | None:
    """``../shared/reference-results`` beside the checkout (or under ``$TSPROBE_SHARED``), if present."""
    shared = Path(os.environ.get("TSPROBE_SHARED", repo_root().parent / "shared"))
    p = shared / "reference-results"
    return p if p.is_dir() else None


@dataclass
class ReproduceOptions:
    """Everything a run depends on. Paths may be None (then the steps needing them are skipped)."""

    profile: str = "smoke"
    corpus_dir: Path | None = None
    checkpoints_dir: Path = field(default_factory=lambda: repo_root() / "checkpoints")
    dyck_results: Path = field(default_factory=lambda: repo_root() / "figures" / "dyck")
    reference_dir: Path | None = field(default_factory=default_reference_dir)
    device: str = "cpu"
    seed: int = 0
    #: per-seed result folders (``<corpus>-<arch>-seed<N>/``, see :mod:`timescale_probe.seeds`) whose
    #: models are combined with this run's, paired by seed; default: ``figures/seeds`` of the checkout
    #: for the small profile, none otherwise (smoke and paper models are not those folders' models)
    seeds_dir: Path | None = None
    #: CPU threads for torch during the run (None: the profile's default; smoke uses 1, which on a
    #: shared machine is several times faster for tiny models than 2 contending threads)
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise OptionError(f"unknown profile '{self.profile}': use {', '.join(PROFILES)}", param="profile")
        for name in ("corpus_dir", "reference_dir"):
            v = getattr(self, name)
            if v is not None:
                v = Path(v).expanduser()
                setattr(self, name, v)
        if self.corpus_dir is not None and not self.corpus_dir.is_dir():
            raise OptionError(f"corpus_dir {self.corpus_dir} is not a directory (expected e.g. "
                              "DIR/wikitext-2/, DIR/brown/brown.txt, DIR/kjv/kjv.txt)", param="corpus_dir")
        if self.reference_dir is not None and not self.reference_dir.is_dir():
            raise OptionError(f"reference_dir {self.reference_dir} is not a directory", param="reference_dir")
        if self.threads is not None:
            check_int(self.threads, "threads", minimum=1)
        if self.seeds_dir is None and self.profile == "small":
            self.seeds_dir = repo_root() / "figures" / "seeds"
        if self.seeds_dir is not None:
            self.seeds_dir = Path(self.seeds_dir).expanduser()
            if self.seeds_dir.exists() and not self.seeds_dir.is_dir():
                raise OptionError(f"seeds_dir {self.seeds_dir} is not a directory", param="seeds_dir")
        self.checkpoints_dir = Path(self.checkpoints_dir).expanduser()
        self.dyck_results = Path(self.dyck_results).expanduser()

    @property
    def settings(self) -> dict[str, Any]:
        return SETTINGS[self.profile]

    @property
    def comparable(self) -> bool:
        """Whether absolute numbers can be held against the paper's (only at the paper's scale)."""
        return self.profile == "paper"

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
