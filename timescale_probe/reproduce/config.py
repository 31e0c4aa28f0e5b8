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

Where inputs come from (:mod:`timescale_probe.locations`; nothing else is searched): what the
options name (``checkpoints_dir``, ``dyck_results``, ``seeds_dir``, ``reference_dir``,
``corpus_dir``); else, in a source checkout, ``checkpoints/``, ``figures/dyck``, ``figures/seeds``
and ``../shared/reference-results`` (or ``$TSPROBE_SHARED/reference-results``). An installed
wheel has only the two PTB checkpoints it ships: the Markov-PTB baseline, the Dyck sweep, the
per-seed folders and the reference arrays must be passed, and each step that needs a missing one
is skipped with a line that names it and the option that supplies it (:meth:`ReproduceOptions.inputs`
lists them all before a run).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .. import locations
from ..errors import OptionError
from ..paper import PAPER as _PAPER
from ..profiles import Profile, ProfileRegistry, frozen_mapping
from ..validation import check_int

#: Numbers published in the paper: one table, :data:`timescale_probe.paper.PAPER`.
PAPER = _PAPER


@dataclass(frozen=True)
class ReproduceProfile(Profile):
    """What one ``tsprobe reproduce`` profile does (the one profile pattern, :mod:`timescale_probe.profiles`).

    ``lm_profile``: training profile of :mod:`timescale_probe.training`; ``ptb_lines``: the first lines
    of each PTB split (None: all); ``ablation_controls``: random control groups of this run's Fig. 3
    (>= 200 enter the claims over seeds; the small profile's shipped seed-141 model takes its 230
    from ``figures/seeds/ptb-mts-seed141``, made once by ``python -m timescale_probe.seeds ingest``,
    so its figure keeps 20 and stays cheap); ``threads``: the profile's pin (None: the one default
    rule); ``planned_seeds``: per corpus, the seeds per arm the evidence needs (PTB: >= 7 for Table 1
    and >= 7 MTS seeds with >= 200 controls for Fig. 3: seeds 2 and 3 were trained on a GPU that
    kept their tables and not their weights, so they cannot be ablated again and Fig. 3's seven are
    141 and 4-9; Markov-PTB: >= 3 for the Markov control; issue 21), the report saying which have
    finished and how the sweeps resume."""

    lm_profile: str
    ptb_lines: Mapping[str, int] | None
    train_overrides: Mapping[str, Any]
    markov_order: int
    fit_boot: int
    n_resamples: int
    ablation_groups: str
    ablation_controls: int
    group_batch: int
    mi_max_distance: int
    mi_distances: int
    mi_shuffles: int
    mi_max_tokens: int | None
    dyck_sizes: Mapping[str, int] | None
    dyck_max_len: int
    dyck_profile: str
    dyck_seeds: tuple[int, ...] | None
    ref_fit_boot: int
    threads: int | None = None
    planned_seeds: Mapping[str, tuple[int, ...]] = field(default_factory=frozen_mapping)


REPRODUCE_PROFILES: ProfileRegistry[ReproduceProfile] = ProfileRegistry("reproduce profile", [
    ReproduceProfile(
        "smoke", "minutes on 2 cores: tiny models on a PTB subset, every figure; numbers meaningless",
        lm_profile="tiny", ptb_lines=frozen_mapping(train=1200, valid=150, test=250),
        train_overrides=frozen_mapping(epochs=2, batch_size=16, bptt=35, eval_batch_size=8),
        markov_order=2, fit_boot=40, n_resamples=1000, ablation_groups="quantiles:6", ablation_controls=200, group_batch=8,
        mi_max_distance=150, mi_distances=12, mi_shuffles=3, mi_max_tokens=30_000,
        dyck_sizes=frozen_mapping(train=300, valid=60, test=300), dyck_max_len=100, dyck_profile="tiny", dyck_seeds=(1, 2),
        ref_fit_boot=40, threads=1,
    ),
    ReproduceProfile(
        "small", "the shipped small checkpoints, the per-seed folders and the committed Dyck sweep",
        lm_profile="small", ptb_lines=None, train_overrides=frozen_mapping(), markov_order=2, fit_boot=500,
        n_resamples=10_000, ablation_groups="quantiles:23", ablation_controls=20, group_batch=8, mi_max_distance=1000,
        mi_distances=40, mi_shuffles=10, mi_max_tokens=None, dyck_sizes=None, dyck_max_len=200, dyck_profile="small",
        dyck_seeds=None, ref_fit_boot=500, threads=None,
        planned_seeds=frozen_mapping(ptb=(141, 2, 3, 4, 5, 6, 7, 8, 9), **{"markov-ptb": (141, 2, 3)}),
    ),
    ReproduceProfile(
        "paper", "paper-size models (1150/1150/400, 1000 epochs; a GPU) and the paper's Dyck sweep",
        lm_profile="paper", ptb_lines=None, train_overrides=frozen_mapping(), markov_order=2, fit_boot=1000,
        n_resamples=10_000, ablation_groups="chunks:50", ablation_controls=230, group_batch=8, mi_max_distance=1000,
        mi_distances=60, mi_shuffles=10, mi_max_tokens=None,
        dyck_sizes=frozen_mapping(train=10_000, valid=2_000, test=5_000), dyck_max_len=200,
        dyck_profile="paper", dyck_seeds=tuple(range(1, 21)), ref_fit_boot=1000, threads=None,
    ),
])

PROFILES = REPRODUCE_PROFILES.names

#: Each profile's settings as plain read-only data (``opts.settings[...]``; lists for tuples).
SETTINGS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {p.name: MappingProxyType(p.settings()) for p in REPRODUCE_PROFILES.values()})

#: Shipped small-profile checkpoints (``checkpoints/`` of a source checkout).
SHIPPED = {
    "ptb_baseline": "ptb-baseline-small.pt",
    "ptb_mts": "ptb-mts-small.pt",
    "markov_baseline": "markov-ptb-baseline-small.pt",
}


def repo_root() -> Path:
    """The folder above the package: the source checkout when there is one (paths inside it are
    shown relative to it in the report); for an installed wheel, site-packages. Use
    :func:`timescale_probe.locations.source_checkout` to know whether there is a checkout."""
    return Path(__file__).resolve().parents[2]


def default_reference_dir() -> Path | None:
    """The authors' reference results where documented: ``$TSPROBE_SHARED/reference-results``, else
    ``../shared/reference-results`` beside a source checkout; None when that folder is absent."""
    return locations.reference_results_dir()


def default_checkpoints_dir() -> Path:
    """``checkpoints/`` of the source checkout; for an installed wheel, its package data (the two PTB
    checkpoints; the Markov-PTB baseline is not shipped there)."""
    return locations.checkout_path("checkpoints") or locations.PACKAGE_DATA_DIR


@dataclass
class ReproduceOptions:
    """Everything a run depends on. Paths may be None (then the steps needing them are skipped)."""

    profile: str = "smoke"
    corpus_dir: Path | None = None
    checkpoints_dir: Path = field(default_factory=default_checkpoints_dir)
    #: the committed Dyck small-profile sweep (``figures/dyck`` of a checkout; None outside one)
    dyck_results: Path | None = field(default_factory=lambda: locations.checkout_path("figures", "dyck"))
    reference_dir: Path | None = field(default_factory=default_reference_dir)
    device: str = "cpu"
    seed: int = 0
    #: per-seed result folders (``<corpus>-<arch>-seed<N>/``, see :mod:`timescale_probe.seeds`) whose
    #: models are combined with this run's, paired by seed; default: ``figures/seeds`` of the checkout
    #: for the small profile, none otherwise (smoke and paper models are not those folders' models)
    seeds_dir: Path | None = None
    #: CPU threads for torch during the run (None: the profile's pin, smoke 1 so that its outputs are
    #: the same on any machine; small and paper pin none and take the one default rule,
    #: :func:`timescale_probe.fileio.default_threads`)
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
            self.seeds_dir = locations.checkout_path("figures", "seeds")
        if self.seeds_dir is not None:
            self.seeds_dir = Path(self.seeds_dir).expanduser()
            if self.seeds_dir.exists() and not self.seeds_dir.is_dir():
                raise OptionError(f"seeds_dir {self.seeds_dir} is not a directory", param="seeds_dir")
        self.checkpoints_dir = Path(self.checkpoints_dir).expanduser()
        if self.dyck_results is not None:
            self.dyck_results = Path(self.dyck_results).expanduser()

    def inputs(self) -> list[tuple[str, str, Path | None, bool]]:
        """The external inputs this profile reads: ``(what, option, path or None, present)`` each,
        so a run can say up front what is missing and which option supplies it."""
        rows: list[tuple[str, str, Path | None, bool]] = []
        if self.profile == "small":
            for key, name in SHIPPED.items():
                p = self.checkpoints_dir / name
                rows.append((f"checkpoint {key}", "checkpoints_dir", p, p.is_file()))
            rows.append(("Dyck small-profile sweep", "dyck_results", self.dyck_results,
                         self.dyck_results is not None and self.dyck_results.is_dir()))
            rows.append(("per-seed folders", "seeds_dir", self.seeds_dir,
                         self.seeds_dir is not None and self.seeds_dir.is_dir()))
        rows.append(("authors' reference results", "reference_dir", self.reference_dir, self.reference_dir is not None))
        rows.append(("corpora beyond PTB (WikiText-2, Brown, KJV, War and Peace)", "corpus_dir", self.corpus_dir,
                     self.corpus_dir is not None))
        return rows

    def missing_inputs(self) -> list[str]:
        """One line per missing input of :meth:`inputs`: what, where it was looked for, the option."""
        lines = []
        for what, option, path, present in self.inputs():
            if present:
                continue
            if option == "reference_dir" and path is None:
                where = f"looked in {locations.where_reference_results_are_looked_for()}"
            else:
                where = "not given" if path is None else f"{path} not found"
            lines.append(f"{what}: {where}; pass {option} (tsprobe reproduce --{option.replace('_', '-')} DIR)")
        return lines

    @property
    def settings(self) -> dict[str, Any]:
        return SETTINGS[self.profile]

    @property
    def comparable(self) -> bool:
        """Whether absolute numbers can be held against the paper's (only at the paper's scale)."""
        return self.profile == "paper"

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
