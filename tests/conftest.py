"""Shared fixtures. ``../shared`` (corpora, reference results) is optional: tests needing it skip.

The few reference arrays the paper-number tests need are vendored in ``tests/data/`` (see its
README), so those tests run on any clone; the rest of ``../shared`` is used when present.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # ``from helpers import ...`` from any directory

from helpers import DATA, ROOT, SHARED, run_cli, run_cli_inprocess  # noqa: E402

__all__ = ["ROOT", "SHARED", "DATA", "run_cli", "run_cli_inprocess"]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "SPEC.md").is_file():
        pytest.skip(f"../shared not present at {SHARED} (reference data for regression tests)")
    return SHARED


@pytest.fixture(scope="session")
def reference_results() -> Path:
    """The authors' published arrays: the vendored subset in tests/data, else ../shared's copy."""
    vendored = DATA / "reference-results"
    if (vendored / "estimated_timescales").is_dir():
        return vendored
    path = SHARED / "reference-results"
    if not path.is_dir():
        pytest.skip(f"{path} missing and tests/data/reference-results not vendored")
    return path


@pytest.fixture(scope="session")
def corpora_dir(shared_dir) -> Path:
    path = shared_dir / "corpora"
    if not path.is_dir():
        pytest.skip(f"{path} missing")
    return path


@pytest.fixture
def cli():
    """``cli(*args)`` runs ``tsprobe`` in-process (fast); tests of the real entry point use ``run_cli``."""
    return run_cli_inprocess


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.cuda`` tests skip on machines without a CUDA GPU (CI never has one)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (benchmarks/gpu_check.py runs these on a device)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def reproduce_smoke(tmp_path_factory):
    """``tsprobe reproduce --profile smoke`` run once per session (tests/test_reproduce.py and the
    before/after comparison in tests/test_outputs_unchanged.py share it): ``(out, completed process)``."""
    from helpers import run_cli

    out = tmp_path_factory.mktemp("repro") / "out"
    r = run_cli("reproduce", "--profile", "smoke", "--out", str(out), timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, r
