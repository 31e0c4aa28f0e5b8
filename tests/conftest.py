"""Shared fixtures. ``../shared`` (corpora, reference results) is optional: tests needing it skip."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TSPROBE_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "SPEC.md").is_file():
        pytest.skip(f"../shared not present at {SHARED} (reference data for regression tests)")
    return SHARED


@pytest.fixture(scope="session")
def reference_results(shared_dir) -> Path:
    path = shared_dir / "reference-results"
    if not path.is_dir():
        pytest.skip(f"{path} missing")
    return path


@pytest.fixture(scope="session")
def corpora_dir(shared_dir) -> Path:
    path = shared_dir / "corpora"
    if not path.is_dir():
        pytest.skip(f"{path} missing")
    return path


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``tsprobe`` in a subprocess (the real entry point, as a user would)."""
    return subprocess.run(
        [sys.executable, "-m", "timescale_probe", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.cuda`` tests skip on machines without a CUDA GPU (CI never has one)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (benchmarks/gpu_check.py runs these on a device)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
