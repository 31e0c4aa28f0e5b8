"""The entry point itself: help with examples everywhere, usage errors as one line with exit 2."""
import re

import pytest

from timescale_probe.cli import app, main


def _commands():
    import typer.main

    group = typer.main.get_command(app)
    names = []
    for name, cmd in group.commands.items():
        sub = getattr(cmd, "commands", None)
        names += [f"{name} {s}" for s in sub] if sub else [name]
    return names


def test_every_command_has_help_with_an_example(capsys):
    names = _commands()
    assert {"demo", "inspect", "timescales", "fit-distribution", "train", "evaluate", "compare",
            "estimate-timescales", "ablate", "mi-decay", "markov-corpus", "dyck train"} <= set(names)
    for name in names:
        try:
            main([*name.split(), "--help"])
        except SystemExit as exc:
            assert exc.code in (0, None)
        text = capsys.readouterr().out
        assert re.search(r"tsprobe " + re.escape(name), text.split("Example")[-1]), f"no example in {name} --help"


@pytest.mark.parametrize("argv, fragment", [
    (["nosuch"], "No such command"),
    (["inspect"], "Missing argument"),
    (["inspect", "x.pt", "--bogus"], "No such option"),
    (["fit-distribution", "--bootstrap", "abc", "x.npy"], "--bootstrap"),
    (["inspect", "/nonexistent/ckpt.pt"], "not found"),
])
def test_user_errors_are_one_line_and_exit_2(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tsprobe: error:") and fragment in err


def test_library_warnings_reach_the_terminal_as_one_line(capsys):
    """The library logs to ``timescale_probe`` (silent by itself); the command line shows warnings."""
    import logging

    from timescale_probe.progress import LOGGER

    def ours():
        return [h for h in logging.getLogger("timescale_probe").handlers if type(h).__name__ == "_WarningsToStderr"]

    for _ in range(2):  # installed once, however often main runs
        try:
            main(["--version"])
        except SystemExit as exc:
            assert exc.code in (0, None)
    capsys.readouterr()
    LOGGER.warning("a worker process died; retrying")
    LOGGER.info("not shown")
    assert capsys.readouterr().err == "tsprobe: warning: a worker process died; retrying\n"
    assert len(ours()) == 1
