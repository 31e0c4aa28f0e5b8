"""What a language-model training run is configured by: the optimisation settings
(:class:`TrainConfig`, AWD-LSTM names), the profiles (sizes and budgets), the MTS spec of an
architecture, and the files a run writes beside its checkpoint."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from ..analysis import Options, option
from ..analysis.options import seed_option
from ..errors import OptionError
from ..profiles import Profile, ProfileRegistry, frozen_mapping
from ..timescales import MTSSpec, paper_lm_spec, parse_mts_spec

ARCHS = ("baseline", "mts")
OPTIMIZERS = ("sgd", "adam")
#: Adam's learning rate when none is given (SGD's, 30, is the profiles')
ADAM_LR = 2e-3


@dataclass(frozen=True)
class TrainConfig(Options):
    """Optimisation options (AWD-LSTM names), checked on construction. ``epochs`` is the budget;
    ``eval_batch_size`` is used for validation, ``test_batch_size`` for the final test evaluation
    (1, as the reference). The resume file records these fields (``to_dict``), so a resumed run
    is refused when any of them but ``epochs`` differs."""

    epochs: int = option(1000, "Epoch budget.", ge=1)
    batch_size: int = option(20, "Training batch size (streams).", ge=1)
    eval_batch_size: int = option(10, "Batch size of the validation passes.", ge=1)
    test_batch_size: int = option(1, "Batch size of the final test evaluation (the reference's: 1).", ge=1)
    bptt: int = option(70, "Mean sequence length (tokens); the lengths are drawn around it.", ge=10)
    lr: float = option(30.0, "Learning rate (scaled per batch by its length / bptt).", gt=0)
    clip: float = option(0.25, "Gradient norm clip (0: none).", ge=0)
    alpha: float = option(2.0, "Activation regularisation (AR) weight.", ge=0)
    beta: float = option(1.0, "Temporal activation regularisation (TAR) weight.", ge=0)
    wdecay: float = option(1.2e-6, "Weight decay.", ge=0)
    nonmono: int = option(5, "NT-ASGD: epochs of history the non-monotone trigger skips.", ge=1)
    optimizer: str = option("sgd", "sgd (AWD NT-ASGD) or adam.", choices=OPTIMIZERS)
    seed: int = seed_option(141, "Seed of initialisation, dropout masks and sequence lengths.")
    patience: Optional[int] = option(None, "Stop after this many epochs without a better validation loss "
                                     "(none: run the whole budget); the card records stopped_early.", ge=1)
    min_epochs: int = option(0, "Never stop early before this epoch.", ge=0)


def _is_wikitext(name: str) -> bool:
    n = name.lower().replace("-", "").replace("_", "")
    return "wiki" in n or "wt2" in n or "wt103" in n


@dataclass(frozen=True)
class LMProfile(Profile):
    """Sizes and budget of a language model: ``model`` (``LMConfig`` fields except the vocabulary
    and the spec), ``train`` (:class:`TrainConfig` fields), and what changes on WikiText corpora
    (``wikitext_model``, ``wikitext_train``; the paper trains those with other dropouts, batch
    size and seed)."""

    model: Mapping[str, Any]
    train: Mapping[str, Any]
    wikitext_model: Mapping[str, Any] = field(default_factory=frozen_mapping)
    wikitext_train: Mapping[str, Any] = field(default_factory=frozen_mapping)

    def resolve(self, corpus_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(model options, train options)`` for a corpus (by its name: wiki/wt2/wt103 is WikiText)."""
        model, train = dict(self.model), dict(self.train)
        if _is_wikitext(corpus_name):
            model.update(self.wikitext_model)
            train.update(self.wikitext_train)
        return model, train


PROFILES: ProfileRegistry[LMProfile] = ProfileRegistry("training profile", [
    LMProfile("paper", "1150/1150/400, 1000 epochs; a GPU",
              model=frozen_mapping(emb_size=400, layer_sizes=(1150, 1150, 400), dropout=0.4, dropouth=0.25,
                                   dropouti=0.4, dropoute=0.1, wdrop=0.5, tie_weights=True),
              train=frozen_mapping(epochs=1000, batch_size=20, bptt=70, lr=30.0, seed=141),
              wikitext_model=frozen_mapping(dropouti=0.65, dropouth=0.2),
              wikitext_train=frozen_mapping(batch_size=80, seed=1882)),
    LMProfile("small", "PTB on 2 CPU cores: 300/300/200, 10 epochs of about 4 minutes each on an idle machine",
              model=frozen_mapping(emb_size=200, layer_sizes=(300, 300, 200), dropout=0.3, dropouth=0.15,
                                   dropouti=0.3, dropoute=0.05, wdrop=0.3, tie_weights=True),
              train=frozen_mapping(epochs=10, batch_size=20, bptt=70, lr=30.0, seed=141)),
    LMProfile("tiny", "seconds, for tests",
              model=frozen_mapping(emb_size=16, layer_sizes=(24, 24, 16), dropout=0.1, dropouth=0.1, dropouti=0.1,
                                   dropoute=0.0, wdrop=0.1, tie_weights=True),
              train=frozen_mapping(epochs=2, batch_size=4, eval_batch_size=2, bptt=12, lr=20.0, seed=141)),
])


def resolve_profile(profile: str, corpus_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model options (``LMConfig`` fields except vocab and spec) and ``TrainConfig`` fields of a
    profile (:data:`PROFILES`) for a corpus: ``paper`` is the paper's sizes and settings (PTB;
    WikiText-2 when the corpus name says wiki/wt2), ``small`` PTB on 2 CPU cores, ``tiny`` seconds."""
    return PROFILES[profile].resolve(corpus_name)


def train_config(profile: str, corpus_name: str = "", overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of a profile for a corpus with ``overrides`` (None values ignored).
    Adam without a given ``lr`` takes :data:`ADAM_LR` (the profiles' lr is SGD's)."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    settings = resolve_profile(profile, corpus_name)[1] | given
    if settings.get("optimizer") == "adam" and "lr" not in given:
        settings["lr"] = ADAM_LR
    return TrainConfig(**settings)


def default_mts_spec(arch: str, mts_spec: str | MTSSpec | dict | None) -> MTSSpec | None:
    """The spec for ``arch``: ``baseline`` -> None (unless a spec is given), ``mts`` -> the given
    spec or the paper's (layer 1 T=3/4 halves, layer 2 inverse-gamma a=0.56 quantiles of the
    layer's size, layer 3 free)."""
    if arch not in ARCHS:
        raise OptionError(f"unknown arch '{arch}': use baseline or mts", param="arch")
    if isinstance(mts_spec, dict):
        mts_spec = MTSSpec.from_dict(mts_spec)
    elif isinstance(mts_spec, str):
        mts_spec = parse_mts_spec(mts_spec)
    if mts_spec is not None:
        if arch == "baseline" and not mts_spec.is_free:
            raise OptionError("mts_spec constrains timescales, which arch 'baseline' cannot take; use arch 'mts'",
                              param="mts_spec")
        return None if mts_spec.is_free else mts_spec
    return paper_lm_spec() if arch == "mts" else None


def companion_paths(out: str | os.PathLike) -> dict[str, Path]:
    """``card`` (.json), ``metrics`` (.metrics.csv) and ``resume`` (.resume.pt) beside ``out``."""
    out = Path(out)
    return {"card": out.with_suffix(".json"), "metrics": out.with_suffix(".metrics.csv"),
            "resume": out.with_suffix(".resume.pt")}
