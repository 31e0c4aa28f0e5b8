"""What one Dyck training run is configured by (:class:`DyckTrainConfig`) and the named budgets
(:data:`PROFILES`). Light: no torch, so commands check their options before any import of it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..analysis import Options, option
from ..analysis.options import seed_option
from ..profiles import Profile, ProfileRegistry

ARCHS = ("baseline", "mts")
LOSSES = ("mse", "bce")


@dataclass(frozen=True)
class DyckTrainConfig(Options):
    """Options of one training run, checked on construction. Units: ``lr`` per Adam step,
    ``epochs`` full passes over the training split."""

    arch: str = option("baseline", "baseline or mts (inverse-gamma timescales, frozen biases).", choices=ARCHS)
    seed: int = seed_option(1, "Seed of initialisation and batch order.")
    units: int = option(256, "LSTM units.", ge=1, le=65536)
    epochs: int = option(2000, "Maximum epochs.", ge=1)
    lr: float = option(1e-4, "Adam learning rate.", gt=0)
    batch_size: int = option(32, "Sequences per batch (the paper: 32).", ge=1)
    clip: float = option(1.0, "Gradient norm clip.", gt=0)
    loss: str = option("mse", "mse (the reference: MSE on the sigmoid outputs) or bce.", choices=LOSSES)
    converge_loss: float = option(1e-4, "Stop when the validation loss is below this (the reference: 1e-4; "
                                  "0 = never).", ge=0)
    patience: int = option(0, "Stop after this many validations without a better accuracy (0 = never).", ge=0)
    eval_every: int = option(1, "Validate every this many epochs (and after the last).", ge=1)
    restore_best: bool = option(False, "Test the best-validation weights (the paper tests the final ones).")
    mts_shape: float = option(1.5, "MTS inverse-gamma shape a (the paper: 1.5).", gt=0)
    mts_scale: float = option(1.0, "MTS inverse-gamma scale b (the paper: 1).", gt=0)
    packed: bool = option(False, "Run batches as PackedSequence (same numbers; slower on CPU than the default "
                          "dense length-bucketed batches).")

    def spec(self):
        """The MTS spec of the run (the paper's Dyck spec with this shape and scale; the baseline: none)."""
        from ..timescales import BASELINE, paper_dyck_spec

        return paper_dyck_spec(self.mts_shape, self.mts_scale) if self.arch == "mts" else BASELINE


@dataclass(frozen=True)
class DyckProfile(Profile):
    """A Dyck training budget: model size, epochs, learning rate, batch size and seeds per arm."""

    units: int
    epochs: int
    lr: float
    batch_size: int
    seeds: int

    def config(self, **overrides: Any) -> DyckTrainConfig:
        """The run's config: this budget with ``overrides`` (None values ignored)."""
        base = {k: v for k, v in self.settings().items() if k != "seeds"}
        return DyckTrainConfig(**(base | {k: v for k, v in overrides.items() if v is not None}))


#: Named budgets. ``paper``: the paper's run (a GPU: about 2000 epochs x 20 seeds). ``small``: a CPU
#: budget (see the README / report for what it costs and gives). ``tiny``: for tests.
PROFILES: ProfileRegistry[DyckProfile] = ProfileRegistry("Dyck profile", [
    DyckProfile("paper", "256 units, 2000 epochs, lr 1e-4, 20 seeds; a GPU", units=256, epochs=2000, lr=1e-4,
                batch_size=32, seeds=20),
    DyckProfile("small", "CPU: 64 units, 24 epochs, lr 3e-3, 20 seeds", units=64, epochs=24, lr=3e-3, batch_size=32,
                seeds=20),
    DyckProfile("tiny", "tests: 16 units, 2 epochs, 2 seeds", units=16, epochs=2, lr=1e-2, batch_size=32, seeds=2),
])


def profile_config(profile: str, **overrides: Any) -> DyckTrainConfig:
    """A :class:`DyckTrainConfig` from a profile, with explicit ``overrides`` (None values ignored)."""
    return PROFILES[profile].config(**overrides)


def resolve_profile(profile: str, device_type: str) -> str:
    """``auto`` -> ``paper`` on a GPU, ``small`` on CPU; a named profile as it is (checked)."""
    if profile == "auto":
        return "paper" if device_type == "cuda" else "small"
    return PROFILES.check(profile)
