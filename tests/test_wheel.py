"""A built wheel works away from the checkout: ``pip wheel`` builds it, a fresh environment gets it,
and ``tsprobe demo`` run from another folder finds the shipped checkpoints in the installed package.

The fresh environment is a venv without pip whose site-packages holds the wheel and one ``.pth``
line pointing at this interpreter's site-packages for the dependencies (torch etc.): installing
them again would take minutes and test nothing of ours. A ``.pth`` path line does not run the
``.pth`` files of the folder it adds, so this interpreter's editable install of tsprobe stays
invisible there (checked: the demo must report package paths inside the fresh venv).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT

from timescale_probe import locations

#: what a build needs from the source tree (a copy is built, so parallel work in the checkout is not disturbed)
BUILD_FILES = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "scripts/build_hooks.py",
               *(f"checkpoints/{name}" for name in locations.SHIPPED_CHECKPOINTS))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _source_tree(root: Path, files=BUILD_FILES) -> Path:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, root / rel)
    shutil.copytree(ROOT / "timescale_probe", root / "timescale_probe",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "shipped"))
    return root


def _pip_wheel(src: Path, dist: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "--no-index", "-q", "-w", str(dist)], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    r = _pip_wheel(_source_tree(tmp_path_factory.mktemp("src")), dist)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = dist.glob("timescale_probe-*.whl")
    return whl


def test_a_tree_without_the_checkpoints_builds_no_wheel(tmp_path):
    """A wheel whose demo could not run is not built: the build stops and names the missing file."""
    src = _source_tree(tmp_path / "src", [f for f in BUILD_FILES if not f.startswith("checkpoints/")])
    r = _pip_wheel(src, tmp_path / "dist")
    assert r.returncode != 0
    assert f"{locations.SHIPPED_CHECKPOINTS[0]} is missing" in r.stdout + r.stderr
    assert not list((tmp_path / "dist").glob("*.whl"))


def test_the_wheel_ships_the_checkpoints_byte_for_byte(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for name in locations.SHIPPED_CHECKPOINTS:
            inside = f"timescale_probe/shipped/{name}"
            assert inside in names
            assert _sha256(z.read(inside)) == _sha256((ROOT / "checkpoints" / name).read_bytes())
        assert "timescale_probe/locations.py" in names and "timescale_probe/cli/__init__.py" in names
        # only the package: no tests, scripts or benchmarks in site-packages
        assert {n.split("/")[0] for n in names} == {"timescale_probe", f"{wheel.name.split('-py3')[0]}.dist-info"}
        assert "tsprobe = timescale_probe.cli:main" in z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()


def test_installed_wheel_runs_the_demo_from_another_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    deps = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (site / "_tsprobe_test_deps.pth").write_text("\n".join(deps) + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                        "--no-compile", "-q", str(wheel)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr

    work = tmp_path / "elsewhere"  # not the checkout: nothing of it on the path
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TSPROBE_SHARED")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", COLUMNS="100")
    r = subprocess.run([str(venv / "bin" / "tsprobe"), "demo", "--out", "demo", "--bootstrap", "5", "--resamples", "100",
                        "--max-tokens", "2000", "--device", "cpu"], cwd=work, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    results = json.loads((work / "demo" / "run.json").read_text())["results"]
    assert "skipped" not in results["compare"], results["compare"]
    shipped = site / "timescale_probe" / "shipped"
    assert results["impose"]["layer_sizes"] == [1150, 1150, 400]
    for name, fname in zip(("baseline", "mts"), locations.SHIPPED_CHECKPOINTS):
        got = results["compare"]["checkpoints"][name]
        assert Path(got["path"]) == shipped / fname  # the package data of the fresh venv, not the checkout
        card = json.loads((ROOT / "checkpoints" / fname).with_suffix(".json").read_text())
        assert got["test_tokens"] == card["test_ppl_head"]["tokens"] == 2000
        # the cards of the shipped models were written on this CPU recipe: the same numbers to float32 rounding
        assert got["test_ppl"] == pytest.approx(card["test_ppl_head"]["ppl"], rel=1e-5)
    for f in ("comparison.csv", "comparison.md", "baseline/fits.csv", "mts/perplexity.csv", "paper-mts/fits.csv"):
        assert (work / "demo" / f).stat().st_size > 0, f


def test_outside_a_checkout_reproduce_names_what_it_lacks(monkeypatch, tmp_path):
    """Simulates an installed wheel (no checkout, $TSPROBE_SHARED unset): the small profile defaults to the
    package data for checkpoints and says which inputs are missing and which option supplies each."""
    from timescale_probe.reproduce.config import ReproduceOptions

    shipped = tmp_path / "site" / "timescale_probe" / "shipped"
    shipped.mkdir(parents=True)
    for name in locations.SHIPPED_CHECKPOINTS:
        (shipped / name).write_bytes(b"x")
    monkeypatch.setattr(locations, "source_checkout", lambda: None)
    monkeypatch.setattr(locations, "PACKAGE_DATA_DIR", shipped)
    monkeypatch.delenv("TSPROBE_SHARED", raising=False)
    assert locations.shipped_checkpoints_dir() == shipped and locations.reference_results_dir() is None
    opts = ReproduceOptions(profile="small")
    assert opts.checkpoints_dir == shipped and opts.dyck_results is None and opts.seeds_dir is None
    missing = "\n".join(opts.missing_inputs())
    assert "checkpoint markov_baseline" in missing and "--checkpoints-dir DIR" in missing
    assert "ptb_mts" not in missing  # the wheel ships it
    assert "Dyck small-profile sweep: not given; pass dyck_results (tsprobe reproduce --dyck-results DIR)" in missing
    assert "per-seed folders: not given; pass seeds_dir (tsprobe reproduce --seeds-dir DIR)" in missing
    assert "reference results: looked in nowhere by default outside a source checkout" in missing
    # told where: found there
    ref = tmp_path / "shared" / "reference-results"
    ref.mkdir(parents=True)
    monkeypatch.setenv("TSPROBE_SHARED", str(tmp_path / "shared"))
    assert locations.reference_results_dir() == ref
    assert ReproduceOptions(profile="smoke").reference_dir == ref


def test_demo_outside_a_checkout_without_package_data_says_where_it_looked(monkeypatch, tmp_path):
    from timescale_probe.demo import _not_found

    monkeypatch.setattr(locations, "source_checkout", lambda: None)
    monkeypatch.setattr(locations, "PACKAGE_DATA_DIR", tmp_path / "nothing")
    assert locations.shipped_checkpoints_dir() is None
    msg = _not_found(None)
    assert "ptb-baseline-small.pt" in msg and str(tmp_path / "nothing") in msg and "checkpoints_dir" in msg
