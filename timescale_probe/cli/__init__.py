"""``tsprobe``: thin commands over the library. Each command module registers its commands on ``app``.

User errors (``TsprobeError``) print one line ``tsprobe: error: ...`` on stderr and exit 2;
``--debug`` (anywhere on the command line) shows the traceback instead. An ``OptionError`` names the
Python parameter, which is the flag's name (``cli._common.option_error_line`` writes it as the flag).
Ctrl-C exits 130 with one line "interrupted" (no outputs left: staged outputs are discarded); a
command's ``typer.Exit(1)`` (a sweep with a failed run) exits 1; success exits 0.
"""
from __future__ import annotations

import logging
import sys

import typer

from ..errors import TsprobeError

app = typer.Typer(
    name="tsprobe",
    help="Measure, impose and explain memory timescales in recurrent language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: text reflowed to the terminal (no line breaks mid-sentence), flags without a
    # type (no ``<bool>``), brackets in help shown as written (rich markup would eat ``[f]`` and
    # ``[one of: ...]``).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)

_STATE = {"debug": False}


def _show_version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"tsprobe {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Measure, impose and explain memory timescales in recurrent language models.

    Example: tsprobe demo
    """
    _STATE["debug"] = _STATE["debug"] or debug


def _register() -> None:
    from . import (  # noqa: F401, I001  (each module adds its commands to ``app``, in this order in --help)
        demo_cmds,
        checkpoint_cmds,
        fit_cmds,
        lm_cmds,
        eval_cmds,
        sweep_cmds,
        analysis_cmds,
        activity_cmds,
        mi_cmds,
        reproduce_cmds,
        dyck_cmds,
        theory_cmds,
    )


def _first_paragraph(doc: str | None) -> str | None:
    if not doc:
        return None
    import inspect

    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def _short_helps(typer_app: typer.Typer) -> None:
    """Each command's line in a command list is its docstring's whole first paragraph (click's
    default cuts at the first period, e.g. after "incl.", and at 45 characters)."""
    for info in typer_app.registered_commands:
        if info.short_help is None:
            info.short_help = _first_paragraph(info.help or (info.callback.__doc__ if info.callback else None))
    for group in typer_app.registered_groups:
        sub = group.typer_instance
        if sub is None:
            continue
        _short_helps(sub)
        if _plain(group.short_help) is None and _plain(sub.info.short_help) is None:
            cb = sub.registered_callback.callback if sub.registered_callback else None
            sub.info.short_help = _first_paragraph(_plain(group.help) or _plain(sub.info.help)
                                                   or (cb.__doc__ if cb else None))


def _plain(value):
    """A typer info value without its DefaultPlaceholder wrapper."""
    return getattr(value, "value", value)


_register()
_short_helps(app)


def _command_of(args: list[str]) -> str | None:
    """The command a command line runs: its first word, or the first two for a group (``dyck generate``)."""
    words = [a for a in args if not a.startswith("-")]
    if not words:
        return None
    groups = {g.name or (g.typer_instance.info.name if g.typer_instance else None) for g in app.registered_groups}
    if words[0] in groups and len(words) > 1:
        return f"{words[0]} {words[1]}"
    return words[0]


def _split_debug(args: list[str]) -> tuple[list[str], bool]:
    """Take ``--debug`` out of the command line wherever it stands (before a ``--`` separator)."""
    cut = args.index("--") if "--" in args else len(args)
    head = [a for a in args[:cut] if a != "--debug"]
    return head + args[cut:], len(head) != cut


class _WarningsToStderr(logging.Handler):
    """The library's warnings (logger ``timescale_probe``) as ``tsprobe: warning: ...`` lines on the
    current stderr (the library itself only attaches a NullHandler, as libraries should)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"tsprobe: {record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never break a command
            self.handleError(record)


def _show_library_warnings() -> None:
    logger = logging.getLogger("timescale_probe")
    if not any(isinstance(h, _WarningsToStderr) for h in logger.handlers):
        logger.addHandler(_WarningsToStderr(logging.WARNING))


def main(argv: list[str] | None = None) -> None:
    _show_library_warnings()
    args = sys.argv[1:] if argv is None else list(argv)
    args, debug = _split_debug(args)
    _STATE["debug"] = debug
    try:
        _run(args)
    finally:
        from ..fileio import discard_open_stages

        discard_open_stages()  # a command that failed leaves no staged outputs behind


def _run(args: list[str]) -> None:
    from ._common import option_error_line

    try:
        # typer's non-standalone mode *returns* the code of a ``typer.Exit`` (a command's ``Exit(1)``
        # for a failed run, and ``Exit(130)`` it makes of a KeyboardInterrupt) instead of raising it;
        # commands return None, so anything else returned is an exit code.
        code = app(args=args, prog_name="tsprobe", standalone_mode=False)
    except TsprobeError as exc:
        if _STATE["debug"]:
            raise
        print(f"tsprobe: error: {option_error_line(exc, _command_of(args))}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:  # outside typer's own handling (its Exit(130) is returned, above)
        print("tsprobe: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except typer.Exit as exc:
        if exc.exit_code == 130:
            print("tsprobe: interrupted", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        print("tsprobe: aborted", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception as exc:
        # Usage errors of typer's bundled click (unknown command/option, bad value). Duck-typed:
        # typer vendors click under a private module path that changes between releases.
        if not (hasattr(exc, "exit_code") and hasattr(exc, "format_message") and hasattr(exc, "show")):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()
            raise SystemExit(exc.exit_code) from None
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "tsprobe"
        print(f"tsprobe: error: {exc.format_message()} (see '{where} --help')", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        if code == 130:
            print("tsprobe: interrupted", file=sys.stderr)
        raise SystemExit(code)
