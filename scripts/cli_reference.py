"""Print the command reference (Markdown) of ``tsprobe``, from the same command objects and help
records that ``tsprobe COMMAND --help`` prints.

    python scripts/cli_reference.py > docs/cli.md

``tests/test_readme.py`` regenerates it and fails when ``docs/cli.md`` differs, so a changed flag
or help text shows up as a one-command fix. The output depends on no terminal width.
"""
from __future__ import annotations

import re
import sys

HEADER = """# tsprobe command reference

Generated from the commands' own help (`tsprobe COMMAND --help`) by
`python scripts/cli_reference.py > docs/cli.md`; `tests/test_readme.py` fails when this file is not
current. Every command also takes `-h`/`--help`, and `--debug` anywhere on the line shows a
traceback instead of the one-line error. What the commands are for: [README](../README.md);
the same analyses from Python: [python.md](python.md).
"""


def _paragraphs(text: str) -> list[tuple[str, str]]:
    """Help text as ``("text", joined paragraph)`` / ``("code", verbatim lines)`` pieces: click's
    ``\\b`` marks a paragraph it must not reflow (examples), everything else is reflowed prose."""
    pieces: list[tuple[str, str]] = []
    for block in re.split(r"\n\s*\n", (text or "").strip()):
        if block.startswith("\b"):
            lines = block.split("\n")[1:]
            pieces.append(("code", "\n".join(line.strip() for line in lines if line.strip())))
        elif block.strip():
            pieces.append(("text", " ".join(line.strip() for line in block.splitlines())))
    return pieces


def _render_text(text: str) -> list[str]:
    out: list[str] = []
    for kind, body in _paragraphs(text):
        if kind == "code":
            out += ["```bash", body, "```", ""]
        else:
            out += [_prose(body), ""]
    return out


def _prose(text: str) -> str:
    """Help prose for Markdown: ``<eos>``, ``OUT/<arch>-<seed>.log`` must not read as HTML tags."""
    return text.replace("<", "&lt;")


def _cell(text: str) -> str:
    return _prose(text).replace("|", "\\|").replace("\n", " ").strip()


def _command_lines(cmd, ctx, path: str) -> list[str]:
    lines = [f"## `{path}`", ""]
    lines += ["```", cmd.get_usage(ctx).strip(), "```", ""]
    lines += _render_text(cmd.help or "")
    records = [(p, p.get_help_record(ctx)) for p in cmd.params if not getattr(p, "hidden", False)]
    records = [(p, r) for p, r in records if r is not None]
    if records:
        lines += ["| argument / option | help |", "|---|---|"]
        for _, (names, help_text) in records:
            lines.append(f"| `{names.replace('|', '¦')}` | {_cell(help_text)} |")
        lines.append("")
    lines += _render_text(cmd.epilog or "")
    return lines


def _walk(group, ctx, prefix: str):
    """(path, command, context) for every command under ``group``, in ``--help`` order."""
    import typer

    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None or getattr(cmd, "hidden", False):
            continue
        sub = typer.Context(cmd, info_name=name, parent=ctx)
        path = f"{prefix} {name}"
        yield path, cmd, sub
        if hasattr(cmd, "list_commands"):
            yield from _walk(cmd, sub, path)


def reference() -> str:
    """The whole reference as one Markdown string."""
    import typer

    from timescale_probe.cli import app

    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="tsprobe")
    entries = list(_walk(root, ctx, "tsprobe"))
    lines = [HEADER, "| command | what it does |", "|---|---|"]
    for path, cmd, _ in entries:
        anchor = re.sub(r"[^a-z0-9 -]", "", path.lower()).replace(" ", "-")
        summary = _cell(cmd.get_short_help_str(limit=10_000))
        lines.append(f"| [`{path}`](#{anchor}) | {summary} |")
    lines.append("")
    lines += _command_lines(root, ctx, "tsprobe")
    for path, cmd, sub in entries:
        lines += _command_lines(cmd, sub, path)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference())
