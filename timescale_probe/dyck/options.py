"""Options of the Dyck commands (``dyck generate | train | sweep | plot``), each declared once and
checked on construction, before any work or write. Light: no torch (the runs are in :mod:`.commands`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..analysis import Options, option
from ..analysis.options import device_option, out_option, seed_option, threads_option
from ..errors import InputError, OptionError
from ..executors import ExecutorOptions
from .config import ARCHS, LOSSES, PROFILES, DyckTrainConfig, profile_config, resolve_profile
from .grammar import MAX_TYPES, DyckGrammar

#: the largest split we sample (each string is kept in memory as text and codes)
MAX_SEQUENCES = 10_000_000
DATA_HELP = "Data folder from 'tsprobe dyck generate'."
PROFILE_HELP = ("Training budget: " + PROFILES.help() + "; auto = paper on a GPU, small on CPU. The options below "
                "override it.")


def _data_dir(path: Path) -> Path:
    if not path.is_dir():
        raise InputError(f"Dyck data folder not found: {path} (make one with 'tsprobe dyck generate')")
    return path


def _runs_dir(path: Path) -> Path:
    if not path.is_dir():
        raise InputError(f"runs folder not found: {path} (from 'tsprobe dyck sweep')")
    return path


def _checkpoint_path(path: Path) -> Path:
    from ..fileio import check_out_dir

    if path.is_dir():
        raise OptionError(f"out is a checkpoint file path (e.g. runs/mts-1.pt), but {path} is a folder", param="out")
    check_out_dir(path.parent if str(path.parent) else Path("."))
    return path


@dataclass(frozen=True)
class DyckGenerateOptions(Options):
    """Options of ``dyck generate``: the grammar, the split sizes, the seed and the span fit."""

    out: Path = out_option("dyck2")
    types: int = option(2, "Number of bracket types (the n of Dyck-n).", ge=1, le=MAX_TYPES)
    p_bracket: float = option(0.5, "P(S -> b S c), split equally over the bracket types.", gt=0, lt=1)
    p_concat: float = option(0.25, "P(S -> S S); the rest is P(S -> empty).", ge=0, lt=1)
    min_len: int = option(2, "Shortest sequence kept (bracket characters).", ge=2)
    max_len: int = option(200, "Longest sequence kept (bracket characters).", ge=2, le=100_000)
    train: int = option(10_000, "Training sequences.", ge=1, le=MAX_SEQUENCES)
    valid: int = option(2_000, "Validation sequences.", ge=1, le=MAX_SEQUENCES)
    test: int = option(5_000, "Test sequences.", ge=1, le=MAX_SEQUENCES)
    seed: int = seed_option(0, "Random seed of the sampler and the split.")
    fit_lo: int = option(4, "Smallest span in the log-log slope fit.", ge=2)
    fit_hi: Optional[int] = option(None, "Largest span in the fit (default: max_len/2).", ge=2)

    def grammar(self) -> DyckGrammar:
        return DyckGrammar.make(n=self.types, p_bracket=self.p_bracket, p_concat=self.p_concat,
                                min_len=self.min_len, max_len=self.max_len)

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": self.train, "valid": self.valid, "test": self.test}

    @property
    def fit_range(self) -> tuple[int, int]:
        """The spans of the slope fit: ``fit_lo`` .. ``fit_hi`` (default ``max_len // 2``)."""
        return self.fit_lo, self.max_len // 2 if self.fit_hi is None else self.fit_hi

    def check(self) -> None:
        if self.max_len < self.min_len:
            raise OptionError(f"max_len must be >= min_len ({self.min_len}), got {self.max_len}", param="max_len")
        grammar = self.grammar()  # S -> empty needs probability > 0
        total = sum(self.sizes.values())
        available = grammar.count_strings()
        if available < total:
            raise OptionError(
                f"only {available} distinct Dyck-{grammar.n} strings have {grammar.min_len}..{grammar.max_len} "
                f"characters, fewer than the {total} asked for: raise max_len or ask for fewer sequences",
                param="max_len")
        lo, hi = self.fit_range
        if hi > self.max_len:
            raise OptionError(f"fit_hi must be <= max_len ({self.max_len}), got {hi}", param="fit_hi")
        if len(range(lo + lo % 2, hi + 1, 2)) < 3:
            raise OptionError(f"fit_hi ({hi}) must leave at least 3 even spans from fit_lo ({lo}) for the slope fit",
                              param="fit_hi")


#: the training settings a command line may override (None: the profile's)
TRAIN_OVERRIDES = ("units", "epochs", "lr", "batch_size", "loss", "patience", "converge_loss", "eval_every",
                   "mts_shape", "mts_scale")


@dataclass(frozen=True, kw_only=True)
class DyckTrainingOptions(Options):
    """The budget and recipe options ``dyck train`` and ``dyck sweep`` share (:class:`DyckTrainConfig`
    with the profile's values where a field is None)."""

    profile: str = option("auto", PROFILE_HELP, choices=("auto",) + PROFILES.names)
    units: Optional[int] = option(None, "LSTM units (default: the profile's).", ge=1, le=65536)
    epochs: Optional[int] = option(None, "Maximum epochs (default: the profile's).", ge=1)
    lr: Optional[float] = option(None, "Adam learning rate (default: the profile's).", gt=0)
    batch_size: Optional[int] = option(None, "Sequences per batch (default: the profile's; the paper: 32).", ge=1)
    loss: Optional[str] = option(None, "mse (the reference: MSE on the sigmoid outputs) or bce.", choices=LOSSES)
    patience: Optional[int] = option(None, "Stop after this many validations without a better accuracy (0 = never).",
                                     ge=0)
    converge_loss: Optional[float] = option(None, "Stop when the validation loss is below this (the reference: "
                                            "1e-4; 0 = never).", ge=0)
    eval_every: Optional[int] = option(None, "Validate every this many epochs.", ge=1)
    restore_best: bool = option(False, "Test the best-validation weights (the paper tests the final ones).")
    mts_shape: Optional[float] = option(None, "MTS inverse-gamma shape a (the paper: 1.5).", gt=0)
    mts_scale: Optional[float] = option(None, "MTS inverse-gamma scale b (the paper: 1).", gt=0)
    packed: bool = option(False, "Run batches as PackedSequence (same numbers; slower on CPU than the default "
                          "dense length-bucketed batches).")
    device: str = device_option()

    def overrides(self) -> dict[str, Any]:
        """The recipe settings given on the command line (``restore_best``/``packed`` only when set)."""
        out = {k: getattr(self, k) for k in TRAIN_OVERRIDES if getattr(self, k) is not None}
        out.update({k: True for k in ("restore_best", "packed") if getattr(self, k)})
        return out

    def config(self, device_type: str, **run: Any) -> DyckTrainConfig:
        """The run's :class:`DyckTrainConfig` (``run``: its arch and seed) on a device of ``device_type``."""
        return profile_config(resolve_profile(self.profile, device_type), **self.overrides(), **run)

    def check(self) -> None:
        self.config("cpu")  # the recipe's bounds with the profile's values filled in


@dataclass(frozen=True, kw_only=True)
class _DyckRunFields(Options):
    data: Path = option(help=DATA_HELP, argument=True, check=_data_dir, metavar="DATA")
    arch: str = option("mts", "baseline or mts (inverse-gamma a=1.5 timescales, frozen biases).", choices=ARCHS)
    seed: int = seed_option(1, "Seed of initialisation and batch order.")
    out: Path = option(Path("runs/run.pt"), "Checkpoint path; <stem>.test.csv, .history.csv and .run.json go "
                       "beside it.", check=_checkpoint_path, short="-o", metavar="X.pt")
    threads: Optional[int] = threads_option()


@dataclass(frozen=True, kw_only=True)
class DyckTrainOptions(DyckTrainingOptions, _DyckRunFields):
    """Options of ``dyck train``: one run (its own fields, then the budget and recipe)."""


def _archs(text: str) -> str:
    archs = [a.strip() for a in str(text).split(",") if a.strip()]
    bad = [a for a in archs if a not in ARCHS]
    if bad or not archs:
        raise OptionError(f"unknown arch {bad or text!r}: use baseline, mts or baseline,mts", param="arch")
    return ",".join(dict.fromkeys(archs))


def _seeds(text: Optional[str]) -> Optional[str]:
    from ..sweeps import parse_seeds

    parse_seeds(text)
    return text


@dataclass(frozen=True, kw_only=True)
class _DyckSweepFields(Options):
    data: Path = option(help=DATA_HELP, argument=True, check=_data_dir, metavar="DATA")
    seeds: Optional[str] = option(None, "Seeds, e.g. 1-20 or 1,2,5 (default: 1..the profile's count).", check=_seeds)
    arch: str = option("baseline,mts", "Architectures, comma separated.", check=_archs)
    out: Path = out_option("runs")
    threads: Optional[int] = threads_option(help="torch CPU threads per training process (default: the one rule, "
                                            "timescale_probe.fileio.default_threads, shared by --jobs runs).")


@dataclass(frozen=True, kw_only=True)
class DyckSweepOptions(ExecutorOptions, DyckTrainingOptions, _DyckSweepFields):
    """Options of ``dyck sweep``: every (arch, seed) (its own fields, the budget and recipe, then
    where the runs go)."""

    def check(self) -> None:
        ExecutorOptions.check(self)
        DyckTrainingOptions.check(self)

    @property
    def archs(self) -> list[str]:
        return self.arch.split(",")

    def seed_list(self, profile: str) -> list[int]:
        """The seeds (default ``1..`` the resolved profile's count)."""
        from ..sweeps import parse_seeds

        return parse_seeds(self.seeds if self.seeds else f"1-{PROFILES[profile].seeds}")


@dataclass(frozen=True)
class DyckPlotOptions(Options):
    """Options of ``dyck plot``: Fig. 2 from finished runs."""

    runs: Path = option(help="Folder of finished runs (*.test.csv), e.g. from 'tsprobe dyck sweep'.", argument=True,
                        check=_runs_dir, metavar="RUNS")
    out: Path = out_option("figures")
    data: Optional[Path] = option(None, "Data folder for the span panel (default: RUNS/spans.csv from the sweep).",
                                  check=_data_dir)
    max_len: Optional[int] = option(None, "Upper end of the max-timescale bins (default: the data's max length).",
                                    ge=3)
    tail: float = option(75.0, "Report accuracy on sequences whose max timescale exceeds this.", ge=0)
    n_resamples: int = option(10_000, "Bootstrap resamples (over seeds) of the mean paired difference.", ge=1,
                              le=1_000_000)
    seed: int = seed_option(0, "Seed of the bootstrap.")
