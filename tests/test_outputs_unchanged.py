"""Wave 3 reshaped the code (analysis protocol, stream runner, recurrent stack); the outputs must not
move. The demo's tables of the pre-wave code (commit d88061b, ``tsprobe demo`` with its defaults:
200 fit bootstraps, 10,000 paired resamples, seed 0, CPU) are vendored under
``tests/data/golden/demo``; this test reruns the demo and compares every shared numeric column.
Likewise ``tests/data/golden/smoke`` holds the tables and claims of ``tsprobe reproduce --profile
smoke`` at d88061b (with ``../shared`` beside the checkout): the tables the wave did not mean to
change are compared column by column, and the claims by their numbers and verdicts, old prose
mapped to the new ids; what changed by design is listed with its reason (:data:`CHANGED_BY_DESIGN`).

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


def _compare(old: pd.DataFrame, new: pd.DataFrame, where: str, *, rtol: dict[str, float] | None = None,
             ignored: frozenset[str] = frozenset()) -> None:
    """Every column of ``old`` in ``new``, same rows; numbers at relative 1e-9 (``rtol`` per column
    where looser), other values as strings; ``ignored`` columns are not compared."""
    missing = [c for c in old.columns if c not in new.columns]
    assert not missing, f"{where}: columns gone: {missing}"
    assert len(old) == len(new), f"{where}: {len(old)} rows before, {len(new)} now"
    for col in old.columns:
        if col in ignored:
            continue
        a, b = old[col], new[col]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            np.testing.assert_allclose(b.to_numpy(float), a.to_numpy(float), rtol=(rtol or {}).get(col, 1e-9), atol=0,
                                       equal_nan=True, err_msg=f"{where}: column {col}")
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), f"{where}: column {col}"


def test_golden_tables_are_vendored():
    assert "comparison.csv" in TABLES and "baseline/timescales.csv" in TABLES and len(TABLES) >= 8


@pytest.mark.parametrize("name", TABLES)
def test_demo_tables_unchanged_since_before_the_wave(demo_out, name):
    _compare(pd.read_csv(GOLDEN / name), pd.read_csv(demo_out / name), name)


# ---------------------------------------------------------------------------------------------
# reproduce --profile smoke, before and after
# ---------------------------------------------------------------------------------------------

SMOKE = Path(__file__).parent / "data" / "golden" / "smoke"
SMOKE_TABLES = sorted(p.relative_to(SMOKE).as_posix() for p in SMOKE.rglob("*.csv") if p.name != "claims.csv")
#: columns compared more loosely, and why
SMOKE_RTOL = {"f_sd": 1e-7}  # SD over windows from float64 sums of squares the runner regroups (was within 2.3e-8)
SMOKE_IGNORED = frozenset({"seconds"})  # wall-clock time of each epoch

#: pre-wave claim (its prose) -> (new id, which number of the old 'ours' text, scale of the new estimate)
SAME_CLAIMS = {
    "perplexity baseline, overall": ("table1.ppl_baseline.overall", 0, 1),
    "perplexity MTS, overall": ("table1.ppl_mts.overall", 0, 1),
    "perplexity MTS, bin >10K": ("table1.ppl_mts.gt10k", None, 1),
    "perplexity MTS, bin 1K-10K": ("table1.ppl_mts.1k_10k", 0, 1),
    "perplexity MTS, bin 100-1K": ("table1.ppl_mts.100_1k", 0, 1),
    "perplexity MTS, bin <100": ("table1.ppl_mts.lt100", 0, 1),
    "MTS better than baseline overall (baseline - MTS > 0)": ("table1.overall_gain", 1, 1),
    "MTS better than baseline on rare words (<100) (baseline - MTS > 0)": ("table1.rare_gain", 1, 1),
    "perplexity MTS, WikiText-2 test": ("table1.wt2_ppl_mts", None, 1),
    "PTB baseline (authors' arrays, our code): median T": ("fig1.published.ptb.median", 0, 1),
    "PTB baseline (authors' arrays, our code): max T": ("fig1.published.ptb.max", 0, 1),
    "PTB baseline (authors' arrays, our code): share of units with T > 10": ("fig1.published.ptb.share_gt_10", 0, 100),
    "PTB baseline (authors' arrays, our code): inverse gamma a (free scale)": ("fig1.published.ptb.a", 0, 1),
    "PTB baseline (authors' arrays, our code): inverse gamma b (free scale)": ("fig1.published.ptb.b", 0, 1),
    "PTB baseline (authors' arrays, our code): inverse gamma a (scale 1)": ("fig1.published.ptb.a_scale1", 0, 1),
    "WT2 baseline (authors' arrays, our code): median T": ("fig1.published.wt2.median", 0, 1),
    "WT2 baseline (authors' arrays, our code): max T": ("fig1.published.wt2.max", 0, 1),
    "WT2 baseline (authors' arrays, our code): inverse gamma a (free scale)": ("fig1.published.wt2.a", 0, 1),
    "WT2 baseline (authors' arrays, our code): inverse gamma b (free scale)": ("fig1.published.wt2.b", 0, 1),
    "WT2 baseline (authors' arrays, our code): inverse gamma a (scale 1)": ("fig1.published.wt2.a_scale1", 0, 1),
    "our PTB baseline: median T_data": ("fig1.ours.ptb.median", 0, 1),
    "our PTB baseline: max T_data": ("fig1.ours.ptb.max", 0, 1),
    "our PTB baseline: share of units with T_data > 10": ("fig1.ours.ptb.share_gt_10", 0, 100),
    "our PTB baseline: inverse gamma a (free scale)": ("fig1.ours.ptb.a", 0, 1),
    "our PTB baseline: inverse gamma b (free scale)": ("fig1.ours.ptb.b", 0, 1),
    "our PTB baseline: inverse gamma a (scale 1)": ("fig1.ours.ptb.a_scale1", 0, 1),
    "our WT2 baseline: median T_data": ("fig1.ours.wt2.median", None, 1),
    "our WT2 baseline: max T_data": ("fig1.ours.wt2.max", None, 1),
    "our WT2 baseline: inverse gamma a (free scale)": ("fig1.ours.wt2.a", None, 1),
    "our WT2 baseline: inverse gamma b (free scale)": ("fig1.ours.wt2.b", None, 1),
    "our WT2 baseline: inverse gamma a (scale 1)": ("fig1.ours.wt2.a_scale1", None, 1),
    "published ratios (authors' arrays, our loader): <100 peak": ("fig3.published.rare_peak", 0, 1),
    "published ratios (authors' arrays, our loader): >10K maximum": ("fig3.published.frequent_max", 0, 1),
    "test accuracy, MTS": ("fig2.accuracy_mts", 0, 100),
    "test accuracy, baseline": ("fig2.accuracy_baseline", 0, 100),
    "MTS more accurate than baseline (paired over seeds)": ("fig2.mts_more_accurate", 0, 100),
    "MTS gain for max timescale > 75": ("fig2.tail_gain", 0, 100),
}
#: the first words of pre-wave claims whose rule or source changed on purpose, and why (not compared)
CHANGED_BY_DESIGN = {
    "PTB baseline (authors' arrays, our code): inverse gamma fits better": "issue 21: a re-analysis of the authors' "
    "arrays (beyond the paper), now two claims: inverse gamma vs gamma/lognormal, and the best of 8 families",
    "WT2 baseline (authors' arrays, our code): inverse gamma fits better": "issue 21: as for PTB",
    "our PTB baseline: inverse gamma fits better": "issue 21: one signed AIC difference with its own rule",
    "Markov-PTB baseline has a narrower": "issue 21: one pre-specified difference of a(scale 1)",
    "published MTS arrays (our code)": "issue 21: appendix.published_rho (same rho, now labelled code check)",
    "our MTS models: layer-2 estimated": "issue 21: true by construction (layer-2 biases are frozen)",
    "rare words (<100) hurt most": "issue 21: one pre-specified contrast against k-seed means of >= 200 controls",
    "frequent words (>10K) never hurt": "issue 21: an equivalence test (TOST) with a stated margin",
    "span distribution of our generator": "issue 21: fig2.span_slope (same slope, now a stated rule)",
    "PTB: I(d) decays as a power law": "issue 21: mi.ptb.power_law with a stated rule",
    "Markov-PTB (our resampler): I(d) decays": "issue 21: mi.markov_ptb.exponential, labelled by construction",
    "learned": "issue 22: the theory study moved to the factor source with an exact Bayes bound",
    "MTS a=k": "issue 22: as above", "single-T control": "issue 22: as above", "matched shape": "issue 22: as above",
    "inverse-gamma a=k": "issue 22: as above",
}
OLD_VERDICT = {"code check: pass": "holds", "code check: fail": "fails", "not comparable at this scale": "not comparable",
               "inconclusive": "inconclusive", "not run": "not run"}


def test_golden_smoke_is_vendored():
    assert "tables/timescales_ptb-mts.csv" in SMOKE_TABLES and (SMOKE / "claims.csv").is_file()
    assert len(SMOKE_TABLES) >= 20


@pytest.mark.parametrize("name", SMOKE_TABLES)
def test_reproduce_smoke_tables_unchanged_since_before_the_wave(reproduce_smoke, shared_dir, name):
    # shared_dir: the golden run had ../shared beside the checkout (the published arrays' rows)
    out, _ = reproduce_smoke
    _compare(pd.read_csv(SMOKE / name), pd.read_csv(out / name), name, rtol=SMOKE_RTOL, ignored=SMOKE_IGNORED)


def _number(text: str, index: int) -> tuple[float, int]:
    """The ``index``-th number in a pre-wave 'ours' text and its decimals."""
    import re

    found = re.findall(r"(-?\d+(?:\.(\d+))?)", str(text))[index]
    return float(found[0]), len(found[1])


def test_reproduce_smoke_claims_unchanged_since_before_the_wave(reproduce_smoke, shared_dir):
    out, _ = reproduce_smoke
    old = pd.read_csv(SMOKE / "claims.csv", keep_default_na=False)
    new = pd.read_csv(out / "claims.csv").set_index("id")
    compared = 0
    for row in old.itertuples():
        if row.claim in SAME_CLAIMS:
            cid, index, scale = SAME_CLAIMS[row.claim]
            assert cid in new.index, f"{row.claim}: no claim {cid} now"
            assert new.loc[cid, "verdict"] == OLD_VERDICT[row.verdict], f"{cid}: {row.verdict} -> {new.loc[cid, 'verdict']}"
            if index is not None:
                value, decimals = _number(row.ours, index)
                assert round(float(new.loc[cid, "estimate"]) * scale, decimals) == pytest.approx(value, abs=1e-12), \
                    f"{cid}: {row.ours} -> {new.loc[cid, 'estimate']}"
            compared += 1
        else:
            assert any(row.claim.startswith(k) for k in CHANGED_BY_DESIGN), f"unaccounted pre-wave claim: {row.claim}"
    assert compared == len(SAME_CLAIMS)
    # the theory study is a registered step of reproduce again (its registration was lost in a split)
    assert new["step"].eq("theory").sum() >= 10
