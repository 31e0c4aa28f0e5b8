"""scripts/device_tree.py: what a device call sends, slimmed for the call and restored exactly."""
from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT

SCRIPT = ROOT / "scripts" / "device_tree.py"


def _run(repo, *args):
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--root", str(repo)], capture_output=True, text=True)


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)


@pytest.fixture()
def repo(tmp_path):
    r = tmp_path / "r"
    (r / "figures").mkdir(parents=True)
    (r / "pkg").mkdir()
    (r / "figures" / "big.bin").write_bytes(b"x" * 300_000)
    (r / "pkg" / "code.py").write_text("x = 1\n")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        assert _git(r, *args).returncode == 0
    return r


def test_slim_leaves_folders_behind_and_restore_puts_the_index_back(repo):
    before = _run(repo, "size")
    assert before.returncode == 0 and "0.3 MiB in 2 files" in before.stdout
    out = _run(repo, "slim", "figures")
    assert out.returncode == 0, out.stderr
    assert "0.0 MiB in 1 files" in out.stdout  # only pkg/code.py travels
    assert (repo / "figures" / "big.bin").is_file()  # nothing deleted on disk
    assert _run(repo, "status").stdout.strip() == "slim"
    refused = _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "oops")
    assert refused.returncode != 0 and "slimmed for a device call" in refused.stderr
    assert _run(repo, "slim", "figures").returncode != 0  # not twice
    back = _run(repo, "restore")
    assert back.returncode == 0 and "0.3 MiB in 2 files" in back.stdout
    assert _git(repo, "status", "--porcelain").stdout == ""
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    assert "device_tree" not in (repo / ".git" / "info" / "exclude").read_text()
    assert _run(repo, "status").stdout.strip() == "not slim"


def test_slim_refuses_staged_changes_it_would_lose(repo):
    (repo / "figures" / "new.txt").write_text("new\n")
    _git(repo, "add", "figures/new.txt")
    out = _run(repo, "slim", "figures")
    assert out.returncode != 0 and "staged changes" in out.stderr
    assert _git(repo, "diff", "--cached", "--name-only").stdout.strip() == "figures/new.txt"


def test_size_fails_over_the_limit(repo, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_device_tree", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "LIMIT", 100_000)
    assert mod.main(["size", "--root", str(repo)]) == 1
