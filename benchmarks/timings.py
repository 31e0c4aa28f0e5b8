"""How long the everyday things take: every duration the README and docs state, measured here.

Each item runs as its user would run it, in a fresh process from the repository root, and is
reported with its wall time and its CPU time (user + system of the process and its children, all
threads): on a loaded machine the wall time says little, and the CPU time is what an idle machine
would need spread over its cores (so ``CPU / cores`` is the least wall time an idle machine could
show). The machine (CPU model, cores available, load average at the start and end of each item) is
printed with every number. Items:

- ``demo``: ``tsprobe demo`` into a temporary folder (the README's first command);
- ``python``: the Python examples of the README and of docs/python.md, each file's blocks in one
  process, as ``tests/test_readme.py`` runs them;
- ``tutorial``: ``docs/tutorial.py``;
- ``reproduce-smoke``: ``tsprobe reproduce --profile smoke``;
- ``tests``: the default test suite, ``python -m pytest -q`` (the README's second command);
- ``train-small``: ``tsprobe train --profile small`` on PTB (about 10 epochs: long; only with ``--only``).

    .venv/bin/python benchmarks/timings.py                       # all but train-small
    .venv/bin/python benchmarks/timings.py --only demo,python     # some of them
    .venv/bin/python benchmarks/timings.py --threads 2            # TSPROBE_THREADS-style override for the commands
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ITEMS = ("demo", "python", "tutorial", "reproduce-smoke", "tests", "train-small")
DEFAULT_ITEMS = ("demo", "python", "tutorial", "reproduce-smoke", "tests")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _python_blocks(path: Path) -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return "\n".join(blocks)


def _commands(tmp: Path, threads: str | None) -> dict[str, list[str]]:
    py, tsprobe = sys.executable, [sys.executable, "-m", "timescale_probe"]
    t = ["--threads", threads] if threads else []
    return {
        "demo": [*tsprobe, "demo", "--out", str(tmp / "demo"), *t],
        "python": [py, "-c", _python_blocks(ROOT / "README.md") + "\n" + _python_blocks(ROOT / "docs" / "python.md")],
        "tutorial": [py, str(ROOT / "docs" / "tutorial.py")],
        "reproduce-smoke": [*tsprobe, "reproduce", "--profile", "smoke", "--out", str(tmp / "reproduce"), *t],
        "tests": [py, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        "train-small": [*tsprobe, "train", "--corpus", "ptb", "--arch", "mts", "--profile", "small",
                        "--out", str(tmp / "small.pt"), "--no-progress", *t],
    }


def _run(cmd: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds of the child and its children, exit code, last output line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return wall, cpu, proc.returncode, lines[-1] if lines else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(DEFAULT_ITEMS), help=f"comma-separated, of {', '.join(ITEMS)}")
    ap.add_argument("--threads", default=None, help="pass --threads to the tsprobe commands (default: their rule)")
    args = ap.parse_args()
    items = [i.strip() for i in args.only.split(",") if i.strip()]
    unknown = [i for i in items if i not in ITEMS]
    if unknown:
        ap.error(f"unknown item(s) {unknown}: use {', '.join(ITEMS)}")
    cpus = _cpus()
    print(f"machine: {_cpu_model()}, {cpus} CPUs available (of {os.cpu_count()}), {platform.platform()}, "
          f"python {platform.python_version()}")
    print("an item's least wall time on an idle machine of this many cores is about its CPU time / cores "
          "(less where it cannot use them all)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="tsprobe-timings-") as tmp:
        cmds = _commands(Path(tmp), args.threads)
        for item in items:
            load0 = os.getloadavg()[0]
            # the tutorial writes into its current folder: run it in the temporary one
            wall, cpu, rc, last = _run(cmds[item], Path(tmp) if item == "tutorial" else ROOT)
            load1 = os.getloadavg()[0]
            state = "LOADED" if max(load0, load1) > 0.5 * cpus else "idle"
            rows.append((item, wall, cpu, rc, load0, load1, state))
            print(f"{item:<16} wall {wall:8.1f} s   CPU {cpu:8.1f} s   CPU/cores {cpu / cpus:7.1f} s   exit {rc}   "
                  f"load {load0:.1f} -> {load1:.1f} ({state})   | {last[:90]}", flush=True)
    failed = [r[0] for r in rows if r[3] != 0]
    if failed:
        print(f"failed: {', '.join(failed)} (their times are not durations of a successful run)")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
