"""Checks of option values, shared by the library's entry points.

Each check names the Python parameter in its message and in ``OptionError.param``
(``n_resamples must be an integer >= 1 (got 0)``); the command line turns the parameter into its
flag in one place (:mod:`timescale_probe.cli._common`). Library functions call these at entry, and
the commands call the same library functions' validators before any work or any write.
"""
from __future__ import annotations

import math
import numbers
from typing import Iterable

from .errors import OptionError

__all__ = ["check_int", "check_fraction", "check_positive", "check_choice", "check_ascending"]


def check_int(value, param: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int within ``[minimum, maximum]``; else ``OptionError(param=param)``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            value = int(value)
        else:
            raise OptionError(f"{param} must be a whole number (got {value!r})", param=param)
    value = int(value)
    if minimum is not None and value < minimum:
        raise OptionError(f"{param} must be >= {minimum} (got {value})", param=param)
    if maximum is not None and value > maximum:
        raise OptionError(f"{param} must be <= {maximum} (got {value})", param=param)
    return value


def _real(value, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OptionError(f"{param} must be a number (got {value!r})", param=param)
    return float(value)


def check_fraction(value, param: str = "level") -> float:
    """A level or probability strictly between 0 and 1."""
    v = _real(value, param)
    if not 0.0 < v < 1.0:
        raise OptionError(f"{param} must lie strictly between 0 and 1 (got {value:g})", param=param)
    return v


def check_positive(value, param: str, *, allow_zero: bool = False) -> float:
    """A finite number > 0 (``>= 0`` with ``allow_zero``)."""
    v = _real(value, param)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise OptionError(f"{param} must be a finite number {'>=' if allow_zero else '>'} 0 (got {value:g})",
                          param=param)
    return v


def check_choice(value, param: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``; else one line listing them."""
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(choices[:-1]) + (" or " if len(choices) > 1 else "") + choices[-1]
        raise OptionError(f"unknown {param} '{value}': use {listed}", param=param)
    return value


def check_ascending(values: Iterable[float], param: str, given: str | None = None) -> tuple[float, ...]:
    """``values`` as a tuple if strictly ascending; else one line (edges are never sorted silently:
    ``100,1`` is more likely a typo than a wish). ``given`` is the text the values came from."""
    vals = tuple(float(v) for v in values)
    if any(b <= a for a, b in zip(vals, vals[1:])):
        shown = given if given is not None else ",".join(f"{v:g}" for v in vals)
        raise OptionError(f"{param} '{shown}' must be strictly ascending, e.g. 1,10,100", param=param)
    return vals

