"""Exit codes that tell the truth, end to end in real ``tsprobe`` processes (issue 19, item 1):
130 and one line "interrupted" on SIGINT with nothing left behind, 1 for a sweep with a failed run,
2 for a user error, 0 only for success."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import run_cli, write_tiny_lm


def _default_sigint() -> None:
    # a test run started in the background of a non-interactive shell inherits SIGINT ignored, and
    # so would tsprobe (Python then installs no KeyboardInterrupt handler): give it the default back
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _tsprobe(*args, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "timescale_probe", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def _wait_for_reader(fifo: Path, proc: subprocess.Popen, timeout: float = 120.0) -> int:
    """Block until ``proc`` has opened ``fifo`` for reading (it is then inside its work, reading its
    input); returns the write end, kept open and empty so that the reader waits on it."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody reads it yet
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"tsprobe ended ({proc.returncode}) before reading its input: {err}")
            time.sleep(0.05)
    proc.kill()
    pytest.fail("tsprobe did not open its input in time")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_sigint_exits_130_with_one_line_and_leaves_nothing(tmp_path):
    """SIGINT reaches a command while it reads its corpus (a named pipe that never delivers: the
    interrupt lands mid-work, deterministically): exit 130, "tsprobe: interrupted" as the one line on
    stderr, no output folder and no staging folder (before the fix: exit 0, silent)."""
    corpus, ckpt = write_tiny_lm(tmp_path, (20, 5, 5))
    fifo = corpus / "test.txt"
    fifo.unlink()
    os.mkfifo(fifo)
    work = tmp_path / "work"
    work.mkdir()
    before = sorted(p.name for p in work.iterdir())
    proc = _tsprobe("estimate-timescales", ckpt, "--corpus", corpus, "--out", work / "out", cwd=work)
    fd = _wait_for_reader(fifo, proc)
    try:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(fd)
    assert proc.returncode == 130, (out, err)
    assert err.strip().splitlines() == ["tsprobe: interrupted"], err
    assert sorted(p.name for p in work.iterdir()) == before  # no out/, no .tsprobe-stage-*


def test_failed_sweep_run_exits_1_and_others_are_reported(tmp_path):
    """A sweep whose run fails (training diverges at lr 1e30) exits 1, not 0; the failed run's log is
    written and named."""
    corpus, _ = write_tiny_lm(tmp_path, (40, 10, 10))
    out = tmp_path / "sweep"
    res = run_cli("train-sweep", "--corpus", corpus, "--seeds", "1", "--arch", "baseline", "--profile", "tiny",
                  "--lr", "1e30", "--threads", "1", "--out", out, "--storage", tmp_path / "tasks")
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "failed" in res.stdout and "1 failed" in res.stdout
    assert (out / f"{corpus.name}-baseline-seed1.log").is_file()
    assert "diverged" in (out / f"{corpus.name}-baseline-seed1.log").read_text()


def test_user_error_exits_2_and_success_exits_0(tmp_path):
    _, ckpt = write_tiny_lm(tmp_path, (20, 5, 5))
    bad = run_cli("timescales", ckpt, "--convention", "nope", "--out", tmp_path / "o")
    assert bad.returncode == 2 and bad.stderr.startswith("tsprobe: error:") and not (tmp_path / "o").exists()
    ok = run_cli("timescales", ckpt, "--out", tmp_path / "o")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "o" / "timescales.csv").is_file()


def test_returned_exit_codes_propagate_in_process(capsys):
    """The mechanism under both: typer (standalone_mode=False) *returns* Exit codes; main raises them."""
    import typer

    from timescale_probe.cli import _run, app

    @app.command("_exit-test", hidden=True)
    def _exit_test(code: int = typer.Option(0, "--code")) -> None:
        if code == 130:
            raise KeyboardInterrupt
        raise typer.Exit(code)

    try:
        for code in (1, 3, 130):
            with pytest.raises(SystemExit) as exc:
                _run(["_exit-test", "--code", str(code)])
            assert exc.value.code == code
        assert capsys.readouterr().err.strip().splitlines() == ["tsprobe: interrupted"]
        _run(["_exit-test", "--code", "0"])  # success: returns, no SystemExit
    finally:
        app.registered_commands[:] = [c for c in app.registered_commands if c.name != "_exit-test"]
