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


def _help(capsys, *words) -> str:
    try:
        main([*words, "--help"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    return capsys.readouterr().out


def test_help_nits_flags_without_type_and_text_as_written(capsys):
    """Issue 19: flags showed a ``<bool>`` type; rich markup ate ``[f]`` (``bias_ih[f]``) and
    bracketed constraint text; the command list cut lines mid-sentence ("tokens incl.", "paper Fig.")."""
    for name in _commands():
        text = _help(capsys, *name.split())
        assert "<bool>" not in text, name
        # every example command stays on one line, as written
        epilog = text.split("Examples:")[-1]
        for line in epilog.strip().splitlines():
            assert line.strip().startswith("tsprobe "), (name, line)
    assert "bias_ih[f] + bias_hh[f]" in " ".join(_help(capsys, "timescales").split())
    listing = "".join(_help(capsys).split())  # compared without whitespace: lines may wrap at a hyphen
    import inspect

    import typer.main

    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        first = "".join(inspect.cleandoc(cmd.help or "").split("\n\n")[0].split())
        assert f"{name}{first}" in listing, name  # the whole first paragraph, not cut at "incl." or "Fig."


TORCH_HEAVY = ("demo", "evaluate", "compare", "estimate-timescales", "ablate", "activity-timescales", "train",
               "train-sweep", "dyck train", "dyck sweep", "reproduce", "theory-test")


def test_every_torch_heavy_command_takes_threads(capsys):
    """Issue 19: demo, ablate and estimate-timescales had no --threads."""
    names = set(_commands())
    for name in TORCH_HEAVY:
        if name in names:
            assert "--threads" in _help(capsys, *name.split()), name


def test_one_default_thread_rule(monkeypatch):
    """The default: the CPUs this process may use less the load already running on them (rounded),
    shared by the jobs, at least 1, at most torch's own default; --threads wins."""
    import os

    import torch

    from timescale_probe import fileio

    n = torch.get_num_threads()
    try:
        monkeypatch.setattr(fileio, "_TORCH_DEFAULT_THREADS", [8])
        monkeypatch.setattr(fileio, "available_cpus", lambda: 8)
        for load, jobs, want in ((0.0, 1, 8), (0.2, 1, 8), (2.6, 1, 5), (7.9, 1, 1), (15.0, 1, 1), (0.0, 2, 4),
                                 (4.0, 3, 1)):
            monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
            assert fileio.default_threads(jobs) == want, (load, jobs)
        monkeypatch.setattr(fileio, "_TORCH_DEFAULT_THREADS", [2])  # torch's own default caps it
        monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
        assert fileio.default_threads() == 2
        assert fileio.use_threads(3) == 3 and torch.get_num_threads() == 3
        assert fileio.use_threads(None) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(n)
