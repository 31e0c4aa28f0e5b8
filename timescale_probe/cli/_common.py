"""Options and helpers shared by the command modules."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)

OUT_HELP = "Output folder: tables, figures and run.json with the resolved options."
DEVICE_HELP = "auto (GPU when present), cpu or cuda."


def out_option(default: str = "out") -> Path:
    return typer.Option(Path(default), "--out", "-o", help=OUT_HELP)


def device_option() -> str:
    return typer.Option("auto", "--device", help=DEVICE_HELP)


def example(*lines: str) -> str:
    """Epilog text with examples, shown at the end of ``--help``."""
    return "Examples:\n\n" + "\n\n".join(f"  {l}" for l in lines)
