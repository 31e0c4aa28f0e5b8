"""Options and helpers shared by the command modules."""
from __future__ import annotations

from rich.console import Console

console = Console(stderr=False, highlight=False)


def example(*lines: str) -> str:
    """Epilog text with examples, shown at the end of ``--help``, one command per line as written
    (``\\b`` keeps click from reflowing a paragraph)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {l}" for l in lines)


def option_error_line(exc: BaseException, command: str | None = None) -> str:
    """``str(exc)`` with the parameter it names (``exc.param``) written as its flag.

    Flags equal parameter names (``n_controls`` -> ``--n-controls``: every command's options are
    the fields of its options class), so no map is needed. The first whole-word mention of the
    parameter becomes the flag (``level must be < 1 ...`` -> ``--level must be < 1 ...``); a message
    that does not mention it gets the flag in front. ``command`` is accepted for older callers.
    """
    import re

    from ..analysis import flag_name

    text = str(exc)
    param = getattr(exc, "param", None)
    if not param:
        return text
    flag = flag_name(param)
    pattern = re.compile(r"(?<![\w\-'\"./])" + re.escape(param) + r"(?![\w\-])")
    new, n = pattern.subn(flag, text, count=1)
    return new if n else f"{flag}: {text}"
