"""``tsprobe``: thin commands over the library. Each command module registers its commands on ``app``.

User errors (``TsprobeError``) print one line ``tsprobe: error: ...`` on stderr and exit 2;
``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import sys

import typer

from ..errors import TsprobeError

app = typer.Typer(
    name="tsprobe",
    help="Measure, impose and explain memory timescales in recurrent language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_STATE = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    """Measure, impose and explain memory timescales in recurrent language models.

    Example: tsprobe demo
    """
    _STATE["debug"] = debug


def _register() -> None:
    from . import (  # noqa: F401  (each module adds its commands to ``app``, in this order in --help)
        demo_cmds,
        checkpoint_cmds,
        fit_cmds,
        lm_cmds,
        analysis_cmds,
        mi_cmds,
        reproduce_cmds,
        dyck_cmds,
    )


_register()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        app(args=args, prog_name="tsprobe", standalone_mode=False)
    except TsprobeError as exc:
        if _STATE["debug"] or "--debug" in args:
            raise
        print(f"tsprobe: error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("tsprobe: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:  # click usage errors and aborts
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        if isinstance(exc, click.exceptions.Abort):
            print("tsprobe: aborted", file=sys.stderr)
            raise SystemExit(1) from None
        raise
    else:
        return None
