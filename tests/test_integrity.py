"""Corrupted checkpoints are caught (issue 19, item 3): zip-format files are checked against the
CRC-32 of every record; legacy-format files say that they carry no checksum."""
from __future__ import annotations

import shutil

import pytest
import torch
from helpers import ROOT, run_cli

from timescale_probe.checkpoints import load_checkpoint
from timescale_probe.checkpoints.integrity import LEGACY_NO_CHECKSUM_NOTE, check_zip_records
from timescale_probe.errors import CheckpointError

SHIPPED = ROOT / "checkpoints" / "ptb-mts-small.pt"


def _zero_middle(path, n: int = 5000) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size // 2 - n // 2)
        fh.write(b"\0" * n)


@pytest.fixture
def damaged(tmp_path):
    if not SHIPPED.is_file():
        pytest.skip("shipped checkpoints not present")
    path = tmp_path / "damaged.pt"
    shutil.copyfile(SHIPPED, path)
    _zero_middle(path)
    return path


def test_zeroed_bytes_in_a_shipped_checkpoint_are_refused_naming_the_record(damaged):
    """5000 zeroed bytes in the middle: torch loads it (1,251 embedding values silently 0 before the
    fix); now the CRC-32 of the record holding them is checked and the record is named."""
    with pytest.raises(CheckpointError, match=r"record '.*/data/\d+' does not match its CRC-32"):
        load_checkpoint(damaged)
    assert check_zip_records(SHIPPED) > 5  # the intact file: every record checked, all pass


def test_damaged_checkpoint_exits_2_in_inspect_and_analyses(damaged, tmp_path):
    for args in (("inspect", damaged), ("timescales", damaged, "--out", tmp_path / "ts")):
        res = run_cli(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "does not match its CRC-32" in lines[0], res.stderr
    assert not (tmp_path / "ts").exists()


def test_legacy_format_says_it_carries_no_checksum(tmp_path):
    from timescale_probe.checkpoints import save_checkpoint
    from timescale_probe.models import LanguageModel, LMConfig

    torch.manual_seed(0)
    stack = LanguageModel(LMConfig(vocab_size=20, emb_size=4, layer_sizes=(6, 4))).to_stack()
    zipped, legacy = tmp_path / "z.pt", tmp_path / "legacy.pt"
    save_checkpoint(zipped, stack)
    state = torch.load(zipped, weights_only=True)
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    assert LEGACY_NO_CHECKSUM_NOTE in load_checkpoint(legacy).provenance.notes
    assert LEGACY_NO_CHECKSUM_NOTE not in load_checkpoint(zipped).provenance.notes
