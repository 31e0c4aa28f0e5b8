"""Commands generated from an :class:`~timescale_probe.analysis.options.Options` class.

::

    @options_command(app, "ablate", AblateOptions, arguments={"checkpoint": (Path, "Checkpoint ...")},
                     epilog=example("tsprobe ablate ckpt.pt --groups chunks:50"))
    def ablate_cmd(opts: AblateOptions, checkpoint: Path) -> None:
        result = run_ablation(opts, checkpoint)
        result.save(opts.out)
        print_summary(result)

Every field of the options class becomes one flag named after the field (``n_controls`` ->
``--n-controls``) with the field's default, help text and constraints (shown in ``--help``);
``bool`` fields become ``--name/--no-name`` switches. The typed values are passed to the options
class, which validates them before the body runs, so a command does no work and writes nothing
when an option is bad. Positional arguments are declared in ``arguments``.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from pathlib import Path
from typing import Any, Callable

from .options import Options, _unwrap_optional, flag_name

__all__ = ["options_command", "typer_parameters"]


def _help_text(spec) -> str:
    extra = spec.constraint_text()
    return f"{spec.help} [{extra}]" if extra else spec.help


def _cli_type(tp: Any) -> Any:
    """The annotation typer sees: tuples become lists (a repeatable flag); paths are read as text
    (click would turn ``""`` into ``.``; the options class refuses an empty path); the rest as declared."""
    inner, optional = _unwrap_optional(tp)
    if typing.get_origin(inner) is tuple:
        inner = list[str]  # each value as text: "1.4,1" is two values, checked by the options class
    elif inner is Path:
        inner = str
    return typing.Optional[inner] if optional else inner


def typer_parameters(options_cls: type[Options]) -> list[inspect.Parameter]:
    """One ``inspect.Parameter`` with a ``typer.Option`` default per CLI field of ``options_cls``."""
    import typer

    hints = typing.get_type_hints(options_cls)
    params = []
    for f, spec in options_cls.specs():
        if not spec.cli:
            continue
        tp = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else ...)
        if isinstance(default, tuple):
            default = list(default)
        if isinstance(default, Path):
            default = str(default)
        names = [flag_name(f.name)]
        if _unwrap_optional(tp)[0] is bool:
            names = [f"{flag_name(f.name)}/--no-{f.name.replace('_', '-')}"]
        if spec.short:
            names.append(spec.short)
        kw: dict[str, Any] = {"help": _help_text(spec), "show_default": True}
        if spec.metavar:
            kw["metavar"] = spec.metavar
        elif spec.argument:
            pass  # an argument is shown by its name
        elif _unwrap_optional(tp)[0] is Path:
            kw["metavar"] = "PATH"
        elif typing.get_origin(_unwrap_optional(tp)[0]) is tuple:
            kw["metavar"] = "A,B,..."  # comma-separated, or the flag repeated
        if spec.argument:  # positional, before every option, in declaration order
            kw["show_default"] = default is not ...
            params.insert(sum(1 for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD),
                          inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                            default=typer.Argument(default, **kw), annotation=_cli_type(tp)))
            continue
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=typer.Option(default, *names, **kw),
                                        annotation=_cli_type(tp)))
        for i, alias in enumerate(spec.aliases):  # a former flag: hidden, same type, no default of its own
            inner = _unwrap_optional(_cli_type(tp))[0]
            params.append(inspect.Parameter(_alias_name(f.name, i), inspect.Parameter.KEYWORD_ONLY,
                                            default=typer.Option(None, alias, hidden=True, help=f"Former name of {names[0]}."),
                                            annotation=typing.Optional[inner]))
    return params


_CTX = "typer_context__"


def _alias_name(field: str, i: int) -> str:
    return f"alias{i}__{field}"


def _merge_aliases(options_cls: type[Options], values: dict[str, Any],
                   explicit: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Fold the values given under former flag names into their fields (one line when a field was
    given under both names with different values; ``explicit(name)``: whether the field's own flag
    was on the command line, else a value other than the default counts as given)."""
    from ..errors import OptionError

    for f, spec in options_cls.specs():
        for i, alias in enumerate(spec.aliases):
            given = values.pop(_alias_name(f.name, i), None)
            if given is None:
                continue
            given = tuple(given) if isinstance(given, list) else given
            default = f.default if f.default is not dataclasses.MISSING else None
            both = explicit(f.name) if explicit is not None else values.get(f.name, default) != default
            if both and values.get(f.name, default) != given:
                raise OptionError(f"{flag_name(f.name)} and {alias} (its former name) disagree: give one",
                                  param=f.name)
            values[f.name] = given
    return values


def options_command(app, name: str, options_cls: type[Options], *, arguments: dict[str, tuple[Any, str]] | None = None,
                    epilog: str | None = None, help: str | None = None, **command_kw: Any) -> Callable:
    """Register ``body(opts, **arguments)`` on ``app`` as command ``name`` whose flags are the fields
    of ``options_cls``; ``arguments`` maps positional argument names to ``(type, help)``."""
    import typer

    arguments = arguments or {}

    def register(body: Callable) -> Callable:
        arg_params = [inspect.Parameter(a, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=typer.Argument(..., help=h),
                                        annotation=tp) for a, (tp, h) in arguments.items()]
        opt_params = typer_parameters(options_cls)
        opt_names = [p.name for p in opt_params]
        n_pos = sum(1 for p in opt_params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)
        params = opt_params[:n_pos] + arg_params + opt_params[n_pos:]  # the options' own arguments first

        ctx_param = inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)

        @functools.wraps(body)
        def command(**kwargs: Any) -> Any:
            ctx = kwargs.pop(_CTX)
            args = {a: kwargs.pop(a) for a in arguments}
            values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items() if k in opt_names}

            def explicit(name: str) -> bool:
                source = ctx.get_parameter_source(name)
                return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

            opts = options_cls(**_merge_aliases(options_cls, values, explicit))
            return body(opts, **args)

        params = params + [ctx_param]
        command.__signature__ = inspect.Signature(params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        doc = help or inspect.getdoc(body) or ""
        app.command(name, help=doc, epilog=epilog, **command_kw)(command)
        return body

    return register
