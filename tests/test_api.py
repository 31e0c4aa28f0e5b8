"""The public Python API (``import timescale_probe``) and the version."""
from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib

import pytest
from helpers import ROOT, run_cli, run_cli_inprocess

import timescale_probe


def test_every_public_name_resolves_to_the_object_in_its_module():
    for name in timescale_probe.__all__:
        obj = getattr(timescale_probe, name)
        if name == "__version__" or not hasattr(obj, "__module__"):
            continue
        home = importlib.import_module(obj.__module__)
        assert getattr(home, getattr(obj, "__name__", name), None) is obj or getattr(home, name, None) is obj, name
    assert len(set(timescale_probe.__all__)) == len(timescale_probe.__all__)
    assert set(timescale_probe.__all__) <= set(dir(timescale_probe))


def test_what_a_researcher_needs_is_exported():
    needed = {"load_checkpoint", "LSTMStack", "forget_bias_to_timescale", "timescale_to_forget_bias", "MTSSpec",
              "fit_timescales", "load_corpus", "LanguageModel", "token_nll", "estimate_timescales",
              "run_ablation_study", "mi_decay", "train_dyck", "Progress", "TsprobeError"}
    assert needed <= set(timescale_probe.__all__)
    assert timescale_probe.dyck.__name__ == "timescale_probe.dyck"  # subpackages as attributes
    with pytest.raises(AttributeError):
        timescale_probe.no_such_name  # noqa: B018


def test_import_is_lazy():
    """``import timescale_probe`` loads neither torch nor pandas (the CLI's start-up stays fast)."""
    code = ("import sys, timescale_probe; "
            "print(sorted(m for m in ('torch', 'pandas', 'scipy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version_is_the_pyproject_version():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert timescale_probe.__version__ == declared
    r = run_cli_inprocess("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"tsprobe {declared}"


def test_version_without_package_metadata(monkeypatch):
    """Run from a source tree that is not installed (PYTHONPATH=., as on the GPU machine)."""
    import importlib.metadata as md

    def missing(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "version", missing)
    assert timescale_probe._package_version() == "0+unknown"


def test_version_subprocess_smoke():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("tsprobe ") and r.stderr == ""


def test_py_typed_and_license_ship():
    assert (ROOT / "timescale_probe" / "py.typed").is_file()
    text = (ROOT / "LICENSE").read_text()
    assert "Redistribution and use in source and binary forms" in text and "the tsprobe authors" in text
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == {"text": "BSD-3-Clause"}
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["timescale_probe"]


def test_code_cites_only_what_the_repository_holds():
    """Citations point at docs/methods.md sections that exist; no references to a file users lack."""
    import re

    sections = set(re.findall(r"^## (\d+)\. ", (ROOT / "docs" / "methods.md").read_text(), flags=re.M))
    assert sections == {str(k) for k in range(1, 9)}
    files = [p for d in ("timescale_probe", "tests", "benchmarks", "analyses") for p in (ROOT / d).rglob("*.py")]
    cited = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert re.search(r"\bSPEC( \u00a7|\))", text) is None, path  # the design team's file, not shipped
        for group in re.findall(r"docs/methods\.md ((?:§\d+(?:, )?)+)", text):
            for n in re.findall(r"§(\d+)", group):
                assert n in sections, (path, n)
                cited += 1
    assert cited >= 20
