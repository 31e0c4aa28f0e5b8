"""What a checkpoint holds (``inspect``) and its units' timescales from their forget biases
(``timescales``), on the analysis protocol (:mod:`timescale_probe.analysis`)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

from ..activations import GATE_ACTIVATIONS
from ..analysis import Options, Result, option
from ..analysis.options import out_option
from ..errors import OptionError
from ..timescale_math import CONVENTIONS

__all__ = ["InspectOptions", "InspectResult", "run_inspect", "TimescalesOptions", "TimescalesResult",
           "run_timescales", "FORMAT_HELP", "checkpoint_file"]

FORMAT_HELP = ("Force a loader: auto, tsprobe, state-dict, pickle (whole pickled models, read safely), safetensors, "
               "keras (.keras, .weights.h5, legacy .h5), keras-npz, tf1-npz.")
DIRECTION_HELP = "Direction of a Keras Bidirectional LSTM to read: forward or backward (the notes report both)."
TF_BIAS_HELP = "Forget bias TensorFlow-1 LSTMCell adds at run time (not stored in its weights); added back for tf1-npz."
CHECKPOINT_HELP = ("Checkpoint: tsprobe, state dict, whole pickled AWD-LSTM or word_language_model (read without "
                   "running its code), safetensors, Keras .keras/.weights.h5/.h5 (read with h5py), Keras/TF1 .npz.")


def checkpoint_file(path: Path) -> Path:
    """An input file that must exist and be readable (one line naming it otherwise)."""
    from ..fileio import require_file

    return require_file(path, "checkpoint")


def _format(value: str) -> str:
    from ..checkpoints.loader import FORMATS  # torch: imported when an options object is made, not with the CLI

    v = value.lower()
    if v not in FORMATS:
        raise OptionError(f"unknown format '{value}': use one of {', '.join(FORMATS)}")
    return v


@dataclasses.dataclass(frozen=True)
class _ReadOptions(Options):
    """How a checkpoint is read (shared by inspect and timescales)."""

    checkpoint: Path = option(help=CHECKPOINT_HELP, argument=True, check=checkpoint_file)
    format: str = option("auto", FORMAT_HELP, check=_format)
    tf_forget_bias: float = option(1.0, TF_BIAS_HELP)
    direction: str = option("forward", DIRECTION_HELP, choices=("forward", "backward"))
    gate_activation: Optional[str] = option(
        None, "Gate activation the checkpoint was trained with, where the file does not record it (e.g. a Keras "
        "weights-only file): overrides what is read or assumed.", choices=GATE_ACTIVATIONS)

    def load(self):
        from ..checkpoints import load_checkpoint

        return load_checkpoint(self.checkpoint, format=self.format, tf_forget_bias=self.tf_forget_bias,
                               direction=self.direction, gate_activation=self.gate_activation)


@dataclasses.dataclass(frozen=True)
class InspectOptions(_ReadOptions):
    out: Optional[Path] = out_option(None, "Also write inspect.json and run.json into this folder.")
    json: bool = option(False, "Print machine-readable JSON instead of tables.")


@dataclasses.dataclass
class InspectResult(Result):
    command = "inspect"

    @property
    def info(self) -> dict[str, Any]:
        return self.tables["inspect.json"]


def run_inspect(opts: InspectOptions) -> InspectResult:
    """Everything ``tsprobe inspect`` shows (:func:`checkpoints.report.describe_stack`)."""
    from ..checkpoints.report import describe_stack

    info = describe_stack(opts.load())
    return InspectResult(options=opts, tables={"inspect.json": info}, inputs=[opts.checkpoint],
                         summary={"source_format": info["source_format"], "parameters": info["parameters"]})


@dataclasses.dataclass(frozen=True)
class TimescalesOptions(_ReadOptions):
    out: Path = out_option("timescales_out", "Output folder: timescales.csv, timescales_summary.csv and run.json.")
    convention: str = option("paper", "paper: T = -1/log(sigmoid(b_f)) (Mahto et al.); chrono: T = 1/(1 - sigmoid(b_f)) "
                             "(Tallec & Ollivier).", choices=CONVENTIONS)


@dataclasses.dataclass
class TimescalesResult(Result):
    command = "timescales"

    @property
    def table(self):
        """``layer, unit, forget_bias, T_bias`` (layers from 1, T in time steps)."""
        return self.tables["timescales.csv"]


def run_timescales(opts: TimescalesOptions) -> TimescalesResult:
    """Timescale of every unit from its effective forget bias ``b_f = bias_ih[f] + bias_hh[f]``, and
    per layer the median, maximum and share of units with T > 10 steps."""
    from ..checkpoints.report import timescale_summary

    stack = opts.load()
    table = stack.timescales_table(opts.convention)
    summary = timescale_summary(table)
    return TimescalesResult(
        options=opts, tables={"timescales.csv": table, "timescales_summary.csv": summary}, inputs=[opts.checkpoint],
        summary={"source_format": stack.provenance.source_format, "notes": list(stack.provenance.notes),
                 "summary": summary.to_dict(orient="records")})
