"""Errors a user can cause. The CLI prints ``str(error)`` as one line and exits with code 2.

Messages say what went wrong, where, and what to do, in one sentence each where possible.
"""
from __future__ import annotations


class TsprobeError(Exception):
    """Base class of every user-facing error (bad file, bad option value, bad corpus)."""

    exit_code = 2


class InputError(TsprobeError):
    """An input file is missing, unreadable or of the wrong kind."""


class OptionError(TsprobeError):
    """An option has a value we cannot use.

    ``param`` names the Python parameter at fault (``"level"``, ``"n_resamples"``); the message
    names it the same way (``level must lie strictly between 0 and 1 (got 2)``). The command line
    translates the parameter to its flag (``--level``) in one place, :mod:`timescale_probe.cli._common`.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param

    def __reduce__(self):  # keep ``param`` through pickling (multiprocessing, ray)
        return (_rebuild_option_error, (type(self), str(self), self.param))


def _rebuild_option_error(cls, message, param):
    return cls(message, param=param)


class CheckpointError(InputError):
    """A checkpoint file cannot be read as any supported LSTM format."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint asks to import or call something outside the allow-list (possible code execution)."""


class CorpusError(InputError):
    """A corpus is missing a split, is empty, binary, or not valid UTF-8."""
