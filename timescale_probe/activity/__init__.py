"""Timescales from activity (the LevinaLab measure), beside the paper's timescales from gates.

Per unit, the autocorrelation of its hidden state (and cell state where the cell has one) over a
long stream, fitted by one or two exponentials (AIC, with a block-bootstrap check), tau with a
block-bootstrap interval, and the network timescale from the layer's mean autocorrelation.

Modules: :mod:`.acf` (streaming FFT autocorrelation in blocks, block bootstrap), :mod:`.fit`
(single/double exponential fits vectorised over units, model choice, intervals), :mod:`.measure`
(one :func:`~timescale_probe.runner.run_stream` pass over a model: tables per unit, layer and
lag), :mod:`.compare` (tau against T_data and T_bias), :mod:`.analysis` (the command's options
and result). Every name imports from ``timescale_probe.activity`` (loaded on first use, so reading
the options does not import torch or scipy). Method and conventions: ``docs/activity.md``.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    "acf": ["autocorrelation", "AutocorrelationAccumulator", "AutocorrelationBlocks"],
    "fit": ["FitRules", "fit_exponentials", "fit_table", "bootstrap_fits"],
    "measure": ["ActivityEstimate", "activity_timescales", "activity_hooks", "timescales_from_blocks",
                "to_convention", "CONVENTION_NOTE"],
    "compare": ["compare_with_gates", "comparison_summary"],
    "analysis": ["ActivityOptions", "ActivityResult", "run_activity"],
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
