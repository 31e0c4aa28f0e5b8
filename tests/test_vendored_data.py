"""The vendored reference arrays are the authors' files, unchanged (tests/data/README.md)."""
from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from helpers import DATA, SHARED


def _listed() -> dict[str, str]:
    text = (DATA / "README.md").read_text()
    return {path: digest for digest, path in re.findall(r"^([0-9a-f]{64})  (\S+)$", text, flags=re.M)}


def test_every_vendored_file_has_its_listed_sha256():
    listed = _listed()
    files = {p.relative_to(DATA).as_posix() for p in DATA.rglob("*.npy")}
    assert files == set(listed) and len(files) == 16
    for rel, digest in listed.items():
        assert hashlib.sha256((DATA / rel).read_bytes()).hexdigest() == digest, rel


def test_shapes_and_published_facts():
    est = DATA / "reference-results" / "estimated_timescales"
    for model in ("PTB", "WT2", "PTB-mts", "WT2-mts"):
        shapes = [np.load(est / f"{model}_timescale_layer_{k}_output.npy", allow_pickle=False).shape for k in (1, 2, 3)]
        assert shapes == [(1150,), (1150,), (400,)], model
    ptb = np.concatenate([np.load(est / f"PTB_timescale_layer_{k}_output.npy", allow_pickle=False) for k in (1, 2, 3)])
    # the data source's own summary: baseline PTB, all units, median 0.68 and maximum 88.8 steps
    assert np.median(ptb) == pytest.approx(0.68, abs=0.005) and ptb.max() == pytest.approx(88.8, abs=0.05)
    for k in (1, 2, 3, 4):
        assert np.load(DATA / "reference-results" / "unit_ablation" / f"bin{k}.txt.npy", allow_pickle=False).shape == (23,)


def test_same_bytes_as_the_shared_copy():
    shared = SHARED / "reference-results"
    if not shared.is_dir():
        pytest.skip(f"{shared} not present")
    for rel in _listed():
        assert (DATA / rel).read_bytes() == (shared / rel.removeprefix("reference-results/")).read_bytes(), rel
