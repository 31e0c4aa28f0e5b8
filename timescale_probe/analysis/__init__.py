"""The analysis protocol: options declared once, results that save and judge themselves.

- :class:`Options` / :func:`option`: a frozen dataclass per analysis; fields carry help and
  constraints; construction validates (``OptionError`` naming the field = the flag).
- :class:`Result`: tables, figures, summary, provenance; :meth:`Result.save` is the one writer;
  :meth:`Result.claims` gives :class:`Claim` data.
- :func:`options_command`: a typer command generated from an options class.
"""
from .claims import LABELS, VERDICTS, Claim, claims_table, find_claim
from .options import Options, OptionSpec, flag_name, option
from .result import Result, save_into

__all__ = ["Options", "OptionSpec", "option", "flag_name", "Result", "save_into", "Claim", "claims_table",
           "find_claim", "LABELS", "VERDICTS", "options_command"]


def __getattr__(name):  # the CLI generator imports typer; load it only when asked for
    if name == "options_command":
        from .cli import options_command

        return options_command
    raise AttributeError(name)
