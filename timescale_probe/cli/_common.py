"""Options and helpers shared by the command modules."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)

OUT_HELP = "Output folder: tables, figures and run.json with the resolved options."
DEVICE_HELP = "auto (GPU when present), cpu or cuda."


def checked_out_dir(text: str) -> Path:
    """``--out`` as given (before click turns ``""`` into ``.``), checked before any work: non-empty,
    creatable and writable (:func:`timescale_probe.fileio.check_out_dir`)."""
    from ..fileio import check_out_dir

    return check_out_dir(text)


def out_option(default: str = "out", help: str = OUT_HELP) -> Path:
    return typer.Option(Path(default), "--out", "-o", help=help, parser=checked_out_dir, metavar="DIR")


def device_option() -> str:
    return typer.Option("auto", "--device", help=DEVICE_HELP)


def example(*lines: str) -> str:
    """Epilog text with examples, shown at the end of ``--help``, one command per line as written
    (``\\b`` keeps click from reflowing a paragraph)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {l}" for l in lines)


# ----------------------------------------------------------------------------------------------
# Python parameter -> command-line flag: the ONE place where the library's names meet the CLI's.
# The library raises ``OptionError(..., param="n_resamples")`` with a message naming the Python
# parameter; the error handler (``cli.main``) prints it with the flag instead.
# ----------------------------------------------------------------------------------------------

#: Parameters whose flag is not simply ``--`` + the name with ``_`` -> ``-``, for every command.
PARAM_FLAGS: dict[str, str] = {
    "n_resamples": "--bootstrap",
    "n_boot": "--bootstrap",
    "edges": "--bin-edges",
    "ci_method": "--ci-bootstrap",
    "ci_level": "--ci-level",
    "vocab_file": "--vocab-file",
    "timescales_csv": "--timescales",
    "mts_spec": "--mts-spec",
    "n": "--n",
    "out_dir": "--out",
    "archs": "--arch",
    "splits": "--split",
}

#: Per command (first word(s) of the command line), where a parameter maps to another flag there.
COMMAND_PARAM_FLAGS: dict[str, dict[str, str]] = {
    "mi-decay": {"n": "--n-distances", "strip_gutenberg": "--keep-gutenberg", "splits": "--split",
                 "n_resamples": "--n-resamples"},
    "ablate": {"window": "--bptt", "timescales_csv": "--timescales"},
    "evaluate": {"window": "--bptt"},
    "compare": {"window": "--bptt"},
    "dyck generate": {"n": "--types"},
    "dyck plot": {"n_resamples": "--n-resamples"},
    "demo": {"n_resamples": "--resamples", "n_boot": "--bootstrap"},
}


def flag_for(param: str, command: str | None = None) -> str:
    """The command-line flag of Python parameter ``param`` (``n_resamples`` -> ``--bootstrap``)."""
    if command:
        for key in (command, command.split(" ")[0]):
            flag = COMMAND_PARAM_FLAGS.get(key, {}).get(param)
            if flag:
                return flag
    return PARAM_FLAGS.get(param) or "--" + param.replace("_", "-")


def option_error_line(exc: BaseException, command: str | None = None) -> str:
    """``str(exc)`` with the Python parameter it names (``exc.param``) written as its flag.

    The first whole-word mention of the parameter becomes the flag (``level must lie ...`` ->
    ``--level must lie ...``); a message that does not mention it gets the flag in front. (Later
    mentions stay words: messages say "raise it", not the name twice.)
    """
    import re

    text = str(exc)
    param = getattr(exc, "param", None)
    if not param:
        return text
    flag = flag_for(param, command)
    pattern = re.compile(r"(?<![\w\-'\"./])" + re.escape(param) + r"(?![\w\-])")
    new, n = pattern.subn(flag, text, count=1)
    return new if n else f"{flag}: {text}"
