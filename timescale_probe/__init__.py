"""tsprobe: memory timescales in recurrent language models.

Measure unit timescales of LSTM checkpoints (from forget-gate biases or from data), fit their
distribution, impose multi-timescale (MTS) specs, ablate units by timescale, and relate all of it
to the mutual-information decay of language (Mahto et al., ICLR 2021).

Everything listed in ``__all__`` is importable from here, e.g.::

    import timescale_probe as tsp
    stack = tsp.load_checkpoint("checkpoints/ptb-mts-small.pt")
    table = stack.timescales_table()          # layer, unit, forget_bias, T_bias

Names are imported lazily on first use (module ``__getattr__``), so ``import timescale_probe``
and the command line stay fast and load torch, scipy or pandas only when they are needed.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import CheckpointError, CorpusError, InputError, OptionError, TsprobeError, UnsafeCheckpointError

# public name -> submodule (relative to this package) that defines it
_EXPORTS: dict[str, str] = {
    # checkpoints: one LSTM stack from any supported format
    "load_checkpoint": "checkpoints", "save_checkpoint": "checkpoints", "read_card": "checkpoints",
    "LSTMStack": "stack", "LSTMLayer": "stack",
    # forget bias <-> timescale, MTS specs
    "forget_bias_to_timescale": "timescales", "timescale_to_forget_bias": "timescales",
    "population_memory": "timescales", "inverse_gamma_memory": "timescales",
    "MTSSpec": "timescales", "parse_mts_spec": "timescales", "paper_lm_spec": "timescales",
    "paper_dyck_spec": "timescales", "apply_mts_spec": "timescales",
    # timescale distributions
    "fit_timescales": "distributions", "fit_table": "distributions", "load_timescales": "distributions",
    "FitReport": "distributions", "FAMILIES": "distributions",
    # corpora and language models
    "Corpus": "corpora", "load_corpus": "corpora", "frequency_bins": "corpora",
    "LanguageModel": "models", "LMConfig": "models", "load_language_model": "models",
    "train_language_model": "training",
    # evaluation
    "token_nll": "evaluation", "perplexity_by_bin": "evaluation", "paired_bootstrap": "evaluation",
    "evaluate_model": "evaluation", "head_perplexity": "evaluation",
    # gates and timescales from data
    "estimate_timescales": "gates", "timescales_table": "gates",
    "run_stream": "runner",  # the one stream runner (hooks: gates, cells, hidden states, interventions)
    # ablation by timescale
    "make_groups": "ablation", "control_groups": "ablation", "run_ablation_study": "ablation",
    "AblationStudy": "ablation",
    # mutual-information decay
    "mi_decay": "mutual_info", "MIDecayResult": "mutual_info", "load_token_stream": "mutual_info",
    "fit_decay_laws": "mutual_info",
    # Dyck-2
    "DyckGrammar": "dyck", "generate_dataset": "dyck", "train_dyck": "dyck",
    # progress reporting
    "Progress": "progress", "NullProgress": "progress", "RichProgress": "progress",
}

# subpackages reachable as attributes (``timescale_probe.dyck``) without an explicit import
_SUBMODULES = ("ablation", "checkpoints", "corpora", "distributions", "dyck", "evaluation", "gates", "models",
               "mutual_info", "plots", "progress", "timescales", "training")

__all__ = [
    "__version__", "TsprobeError", "InputError", "OptionError", "CheckpointError", "UnsafeCheckpointError",
    "CorpusError", *_EXPORTS,
]


def _package_version() -> str:
    """The installed distribution's version (pyproject.toml is the one source); ``0+unknown`` when the
    package runs from a source tree that is not installed (e.g. ``PYTHONPATH=.``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("timescale-probe")
    except PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _package_version()
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))


if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names above load lazily
    from .ablation import AblationStudy, control_groups, make_groups, run_ablation_study  # noqa: F401
    from .checkpoints import load_checkpoint, read_card, save_checkpoint  # noqa: F401
    from .corpora import Corpus, frequency_bins, load_corpus  # noqa: F401
    from .distributions import FAMILIES, FitReport, fit_table, fit_timescales, load_timescales  # noqa: F401
    from .dyck import DyckGrammar, generate_dataset, train_dyck  # noqa: F401
    from .evaluation import evaluate_model, head_perplexity, paired_bootstrap, perplexity_by_bin, token_nll  # noqa: F401
    from .gates import estimate_timescales, timescales_table  # noqa: F401
    from .models import LanguageModel, LMConfig, load_language_model  # noqa: F401
    from .mutual_info import MIDecayResult, fit_decay_laws, load_token_stream, mi_decay  # noqa: F401
    from .progress import NullProgress, Progress, RichProgress  # noqa: F401
    from .runner import run_stream  # noqa: F401
    from .stack import LSTMLayer, LSTMStack  # noqa: F401
    from .timescales import (  # noqa: F401
        MTSSpec,
        apply_mts_spec,
        forget_bias_to_timescale,
        inverse_gamma_memory,
        paper_dyck_spec,
        paper_lm_spec,
        parse_mts_spec,
        population_memory,
        timescale_to_forget_bias,
    )
    from .training import train_language_model  # noqa: F401

    __version__: str
