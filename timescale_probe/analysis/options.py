"""Options declared once: a frozen dataclass whose fields carry their constraints and help.

An analysis's options are one :class:`Options` subclass::

    @dataclass(frozen=True)
    class AblateOptions(Options):
        layer: int = option(2, "Layer whose units are ablated (from 1).", ge=1)
        mode: str = option("output", "output: zero the units' outputs; silence: ...", choices=("output", "silence"))
        n_controls: int = option(20, "Random control groups per timescale group.", ge=0, le=10_000)

Constructing it validates every field (type, bounds, choices, a field's own ``check``) and then
the cross-field rules of :meth:`Options.check`; a bad value raises :class:`~timescale_probe.errors.OptionError`
naming the field (``OptionError.param``), which is also the command-line flag (``--n-controls``):
parameter names and flag names are the same thing. The same object is what the library runs
with, what ``run.json`` records (:meth:`Options.to_dict`) and what the CLI is generated from
(:mod:`timescale_probe.analysis.cli`), so a default or a bound is written in one place only.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import OptionError

__all__ = ["Options", "option", "OptionSpec", "flag_name", "seed_option", "out_option", "device_option",
           "threads_option", "SEED_MAX"]

#: Largest seed: numpy's legacy ``RandomState`` range (``default_rng`` and torch take it too), so one
#: seed means the same thing to every generator a run uses.
SEED_MAX = 2**32 - 1

_MISSING = dataclasses.MISSING


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """What a field declares: help text and constraints (all optional but ``help``)."""

    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], Any] | None = None
    short: str | None = None
    metavar: str | None = None
    cli: bool = True
    #: former flags kept as hidden aliases (``("--shuffles",)``) where docs or scripts still use them
    aliases: tuple[str, ...] = ()
    #: a positional argument of the command (an input file) rather than a flag
    argument: bool = False

    def constraint_text(self) -> str:
        """The bounds and choices in words (``>= 1``, ``one of: a, b``), for help and docs."""
        parts = []
        for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt)):
            if v is not None:
                parts.append(f"{op} {v:g}" if isinstance(v, float) else f"{op} {v}")
        if self.choices:
            parts.append("one of: " + ", ".join(self.choices))
        return "; ".join(parts)


def option(default: Any = _MISSING, help: str = "", *, ge=None, gt=None, le=None, lt=None,
           choices: Iterable[str] | None = None, check: Callable[[Any], Any] | None = None,
           short: str | None = None, metavar: str | None = None, cli: bool = True,
           aliases: Iterable[str] = (), argument: bool = False,
           default_factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field of an :class:`Options` class with its help and constraints.

    ``check(value)`` may return a normalised value (kept) or raise :class:`OptionError` (its
    ``param`` is filled in with the field's name when missing). ``cli=False`` keeps a field out of
    the generated command line (library-only options such as callbacks). ``aliases``: former flag
    names the generated command still accepts, hidden from ``--help``. ``argument=True`` makes the
    field a positional argument of the command (an input file; a tuple field takes one or more);
    declare argument fields first, in the order they are given.
    """
    if not help:
        raise TypeError("every option needs its help text")
    spec = OptionSpec(help=help, ge=ge, gt=gt, le=le, lt=lt, choices=tuple(choices) if choices else None,
                      check=check, short=short, metavar=metavar, cli=cli, aliases=tuple(aliases),
                      argument=argument)
    kw: dict[str, Any] = {"metadata": {"option": spec}}
    if default_factory is not None:
        kw["default_factory"] = default_factory
    elif default is not _MISSING:
        kw["default"] = default
    return dataclasses.field(**kw)


def seed_option(default: int | None = 0, help: str = "Random seed.", **kw: Any) -> Any:
    """A seed field: a whole number in ``0 .. SEED_MAX`` (numpy refuses negative seeds with a
    traceback, and the legacy generator anything past 2**32 - 1)."""
    return option(default, help, ge=0, le=SEED_MAX, **kw)


def _out_dir(value: Path) -> Path:
    from ..fileio import check_out_dir

    return check_out_dir(value)


def out_option(default: str | None = "out", help: str = "Output folder: tables, figures and run.json with the "
               "resolved options.", **kw: Any) -> Any:
    """An output-folder field, checked on construction, before any work: not empty, not a file,
    creatable and writable (:func:`timescale_probe.fileio.check_out_dir`)."""
    kw.setdefault("short", "-o")
    kw.setdefault("metavar", "DIR")
    return option(None if default is None else Path(default), help, check=_out_dir, **kw)


def _device_name(value: str) -> str:
    v = value.strip().lower()
    if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
        return v
    raise OptionError(f"unknown device '{value}': use auto, cpu, cuda or cuda:N")


def device_option(default: str = "auto", help: str = "auto (a GPU when present), cpu, cuda or cuda:N.",
                  **kw: Any) -> Any:
    """A torch device field (whether CUDA is there is checked when the run resolves it)."""
    return option(default, help, check=_device_name, **kw)


def threads_option(help: str = "CPU threads for torch; default: the CPUs this process may use less the load already "
                   "running on them, at least 1 (see timescale_probe.fileio.default_threads).", **kw: Any) -> Any:
    """The ``threads`` field every torch-heavy analysis has, with the one default rule
    (:func:`timescale_probe.fileio.default_threads`) when None."""
    return option(None, help, ge=1, le=1024, **kw)


def flag_name(param: str) -> str:
    """The command-line flag of a parameter: ``n_controls`` -> ``--n-controls``."""
    return "--" + param.replace("_", "-")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``(T, True)`` for ``Optional[T]`` / ``T | None``; ``(tp, False)`` otherwise."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """``value`` as ``tp`` (bool, int, float, str, Path, tuple[...] of those); else OptionError."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise OptionError(f"{name} must be true or false (got {value!r})", param=name)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise OptionError(f"{name} must be a whole number (got {value!r})", param=name)
        if not isinstance(value, numbers.Integral):
            if not (math.isfinite(float(value)) and float(value).is_integer()):
                raise OptionError(f"{name} must be a whole number (got {value!r})", param=name)
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise OptionError(f"{name} must be a number (got {value!r})", param=name)
        v = float(value)
        if not math.isfinite(v):
            raise OptionError(f"{name} must be a finite number (got {value!r})", param=name)
        return v
    if tp is str:
        if not isinstance(value, str):
            raise OptionError(f"{name} must be text (got {value!r})", param=name)
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise OptionError(f"{name} must be a path (got {value!r})", param=name)
        if isinstance(value, str) and not value.strip():  # Path("") would silently mean "."
            raise OptionError(f"{name} needs a path (got an empty one)", param=name)
        return Path(value)
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        item = args[0] if args else Any
        if isinstance(value, str) and item is not Path:
            value = (value,)
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise OptionError(f"{name} must be a list of values (got {value!r})", param=name)
        if item is not Path:  # "1.4,1" (one flag, or one string from Python) is two values
            value = [p for v in value for p in (
                [t.strip() for t in v.split(",") if t.strip()] if isinstance(v, str) else [v])]
        return tuple(_coerce(_number(v, item, name), item, name) if item is not Any else v for v in value)
    return value  # other annotations (Any, callables, dicts) are taken as given


def _number(value: Any, tp: Any, name: str) -> Any:
    """A list item given as text (from the command line or a comma-separated string) as a number."""
    if isinstance(value, str) and tp in (int, float):
        try:
            return tp(value) if tp is float else int(value)
        except ValueError:
            kind = "a whole number" if tp is int else "a number"
            raise OptionError(f"{name} must be a list of numbers ('{value}' is not {kind})", param=name) from None
    return value


def _num(v: float) -> str:
    """A bound or value in a message: whole numbers in full (4294967295, not 4.29497e+09)."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e16 else f"{v:g}"


def _check_bounds(value: Any, spec: OptionSpec, name: str) -> None:
    items = value if isinstance(value, tuple) else (value,)
    for v in items:
        if isinstance(v, numbers.Real) and not isinstance(v, bool):
            for ok, op, bound in ((spec.ge is None or v >= spec.ge, ">=", spec.ge),
                                  (spec.gt is None or v > spec.gt, ">", spec.gt),
                                  (spec.le is None or v <= spec.le, "<=", spec.le),
                                  (spec.lt is None or v < spec.lt, "<", spec.lt)):
                if not ok:
                    raise OptionError(f"{name} must be {op} {_num(bound)} (got {_num(v)})", param=name)
        if spec.choices is not None and v not in spec.choices:
            listed = ", ".join(spec.choices[:-1]) + (" or " if len(spec.choices) > 1 else "") + spec.choices[-1]
            raise OptionError(f"unknown {name} '{v}': use {listed}", param=name)


@dataclasses.dataclass(frozen=True)
class Options:
    """Base of every analysis's options. Subclasses are ``@dataclass(frozen=True)`` with
    :func:`option` fields; construction validates; instances are immutable and hashable-free data."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        fields = dataclasses.fields(self)
        is_input = {f.name: bool(getattr(f.metadata.get("option"), "argument", False)) for f in fields}
        # the flags (each, then the rules across them) before the input arguments' own checks (a file
        # that must exist): a bad flag is named even when an input is missing too
        for f in fields:
            self._validate(f, hints, checks=not is_input[f.name])
        self.check()
        for f in fields:
            if is_input[f.name]:
                self._validate(f, hints, checks=True)

    def _validate(self, f: dataclasses.Field, hints: dict[str, Any], *, checks: bool) -> None:
        """Coerce field ``f`` to its type; with ``checks``, its bounds, choices and ``check`` too."""
        spec: OptionSpec | None = f.metadata.get("option")
        value = getattr(self, f.name)
        tp, optional = _unwrap_optional(hints.get(f.name, Any))
        if value is None:
            if optional:
                return
            if spec is not None:
                raise OptionError(f"{f.name} needs a value", param=f.name)
            return
        value = _coerce(value, tp, f.name)
        if spec is not None and checks:
            _check_bounds(value, spec, f.name)
            if spec.check is not None:
                try:
                    checked = spec.check(value)
                except OptionError as exc:
                    if exc.param is None:
                        exc.param = f.name
                    raise
                if checked is not None:
                    value = checked
        object.__setattr__(self, f.name, value)

    def check(self) -> None:
        """Rules across fields (override; raise :class:`OptionError` with ``param=``). Runs after
        every flag field is checked, and before the argument fields' own checks (their values are
        already of their types)."""

    @classmethod
    def specs(cls) -> list[tuple[dataclasses.Field, OptionSpec]]:
        """The declared fields with their :class:`OptionSpec`, in declaration order."""
        return [(f, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata]

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON-able data (what ``run.json`` records under ``options``)."""
        from ..fileio import jsonable

        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Options from :meth:`to_dict` output (unknown keys refused by name)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise OptionError(f"unknown option(s) for {cls.__name__}: {', '.join(unknown)}", param=unknown[0])
        return cls(**data)

    def replace(self, **changes: Any):
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)
