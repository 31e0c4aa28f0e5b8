"""Training word-level LSTM language models with the AWD-LSTM recipe (docs/methods.md §2), resumable.

Modules: :mod:`.config` (:class:`TrainConfig`, the profiles, the MTS spec of an architecture, the
files beside a checkpoint), :mod:`.loop` (the recipe: :func:`train_language_model`), :mod:`.command`
(``tsprobe train`` as an analysis: :class:`TrainOptions`, :func:`run_train`). Every name imports
from ``timescale_probe.training``. The recipe, the checkpoint and the resume file are described in
:mod:`.loop`.
"""
from .._lazy import lazy_exports

#: where each public name lives; loaded on first use, so reading the options does not import torch
_EXPORTS = {
    "command": ["OVERRIDES", "LMTrainResult", "TrainOptions", "run_train"],
    "config": ["ADAM_LR", "ARCHS", "OPTIMIZERS", "PROFILES", "LMProfile", "TrainConfig", "companion_paths",
               "default_mts_spec", "resolve_profile", "train_config"],
    "loop": ["TrainedLM", "_Averager", "awd_loss", "command_line", "should_switch_to_asgd", "train_language_model"],
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
