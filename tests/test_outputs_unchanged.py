"""Wave 3 reshaped the code (analysis protocol, stream runner, recurrent stack); the outputs must not
move. The demo's tables of the pre-wave code (commit d88061b, ``tsprobe demo`` with its defaults:
200 fit bootstraps, 10,000 paired resamples, seed 0, CPU) are vendored under
``tests/data/golden/demo``; this test reruns the demo and compares every shared numeric column.

Tolerance: relative 1e-9 (the pre-wave and current numbers agree to float64 rounding where a sum
was regrouped; the perplexities, bootstrap intervals and fits are otherwise bit-identical).
Columns added since (e.g. the count of infinite timescales) are not compared; a column or a row
that disappeared fails the test.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

GOLDEN = Path(__file__).parent / "data" / "golden" / "demo"
TABLES = sorted(p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*.csv"))


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    from timescale_probe.demo import SHIPPED, run_demo, shipped_checkpoints_dir

    ckpts = shipped_checkpoints_dir()
    if ckpts is None or not all((ckpts / f).is_file() for f in SHIPPED):
        pytest.skip("shipped checkpoints missing")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("demo") / "d"
        run_demo(out, n_boot=200, n_resamples=10000, seed=0, progress=False, say=lambda m: None)
    finally:
        torch.set_num_threads(threads)
    return out


def _compare(old: pd.DataFrame, new: pd.DataFrame, where: str) -> None:
    missing = [c for c in old.columns if c not in new.columns]
    assert not missing, f"{where}: columns gone: {missing}"
    assert len(old) == len(new), f"{where}: {len(old)} rows before, {len(new)} now"
    for col in old.columns:
        a, b = old[col], new[col]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            np.testing.assert_allclose(b.to_numpy(float), a.to_numpy(float), rtol=1e-9, atol=0, equal_nan=True,
                                       err_msg=f"{where}: column {col}")
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), f"{where}: column {col}"


def test_golden_tables_are_vendored():
    assert "comparison.csv" in TABLES and "baseline/timescales.csv" in TABLES and len(TABLES) >= 8


@pytest.mark.parametrize("name", TABLES)
def test_demo_tables_unchanged_since_before_the_wave(demo_out, name):
    _compare(pd.read_csv(GOLDEN / name), pd.read_csv(demo_out / name), name)
