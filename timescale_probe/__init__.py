"""tsprobe: memory timescales in recurrent language models.

Measure unit timescales of LSTM checkpoints (from forget-gate biases or from data), fit their
distribution, impose multi-timescale (MTS) specs, ablate units by timescale, and relate all of it
to the mutual-information decay of language (Mahto et al., ICLR 2021).
"""
__version__ = "0.1.0"

from .errors import TsprobeError  # noqa: F401
