"""``tsprobe dyck generate | train | sweep | plot`` through the real entry point."""
from __future__ import annotations

import json

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from helpers import run_cli

    out = tmp_path_factory.mktemp("cli_dyck") / "d"
    r = run_cli("dyck", "generate", "--out", out, "--train", 150, "--valid", 40, "--test", 80, "--max-len", 40,
                "--seed", 2)
    assert r.returncode == 0, r.stderr
    assert "span distribution slope" in " ".join(r.stdout.split())
    return out


def test_generate_writes_documented_files(data_dir):
    for f in ("train.txt", "valid.txt", "test.txt", "meta.json", "stats.csv", "spans.csv", "spans.pdf", "run.json"):
        assert (data_dir / f).is_file(), f
    run = json.loads((data_dir / "run.json").read_text())
    assert run["seed"] == 2 and run["options"]["max_len"] == 40 and "slope" in run["results"]["span_slope"]
    assert len((data_dir / "test.txt").read_text().splitlines()) == 80


def test_train_sweep_plot_and_timescales(cli, data_dir, tmp_path):
    ckpt = tmp_path / "runs1" / "mts-1.pt"
    r = cli("dyck", "train", data_dir, "--arch", "mts", "--seed", 1, "--profile", "tiny", "--epochs", 1,
            "--units", 8, "--device", "cpu", "--threads", 1, "--out", ckpt)
    assert r.returncode == 0, r.stderr
    assert "test sequence accuracy" in " ".join(r.stdout.split())  # rich wraps lines
    for suffix in (".test.csv", ".history.csv", ".run.json"):
        assert (ckpt.parent / f"mts-1{suffix}").is_file()

    runs = tmp_path / "runs"
    r = cli("dyck", "sweep", data_dir, "--seeds", "1-2", "--arch", "baseline,mts", "--profile", "tiny",
            "--epochs", 1, "--units", 8, "--device", "cpu", "--out", runs)
    assert r.returncode == 0, r.stderr
    res = pd.read_csv(runs / "results.csv")
    assert sorted(set(zip(res.arch, res.seed))) == [("baseline", 1), ("baseline", 2), ("mts", 1), ("mts", 2)]
    assert "MTS - baseline" in " ".join(r.stdout.split())

    figs = tmp_path / "figs"
    r = cli("dyck", "plot", runs, "--out", figs, "--n-resamples", 500)
    assert r.returncode == 0, r.stderr
    assert json.loads((figs / "run.json").read_text())["options"]["n_resamples"] == 500
    for f in ("fig2_dyck.pdf", "results.csv", "summary.csv", "paired.csv", "spans.csv", "run.json"):
        assert (figs / f).is_file(), f
    paired = pd.read_csv(figs / "paired.csv")
    assert paired.loc[paired.kind == "overall", "pairs"].item() == 2


@pytest.mark.parametrize("args,needle", [
    (("dyck", "train", "no-such-folder/", "--profile", "tiny"), "not found"),
    (("dyck", "sweep", "no-such-folder/", "--seeds", "x"), "seeds"),  # a bad flag is named before a missing input
])
def test_bad_input_is_one_line_exit_2(cli, tmp_path, args, needle):
    r = cli(*args, "--out", tmp_path / "o")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


@pytest.mark.parametrize("args,needle", [
    (("sweep", "--seeds", "x"), "cannot read seeds"),
    (("sweep", "--jobs", "0"), "jobs must be >= 1"),
    (("sweep", "--arch", "gru"), "unknown arch"),
    (("sweep", "--executor", "local", "--address", "auto"), "address is for the ray executor"),
    (("train", "--seed", "-1"), "seed must be >= 0"),
    (("train", "--threads", "0"), "threads must be >= 1"),
    (("train", "--lr", "0"), "lr must be > 0"),
    (("train", "--profile", "huge"), "unknown profile 'huge'"),
    (("train", "--loss", "hinge"), "unknown loss 'hinge'"),
])
def test_train_and_sweep_options_are_checked_before_any_work(cli, data_dir, tmp_path, args, needle):
    cmd, *rest = args
    r = cli("dyck", cmd, data_dir, *rest, "--out", tmp_path / ("o" if cmd == "sweep" else "o.pt"))
    # (the message names the option; whether as a flag or as the parameter is the CLI's choice)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr.replace("--", ""), r.stderr
    assert list(tmp_path.iterdir()) == []


def test_plot_without_runs_is_one_line_exit_2(cli, tmp_path):
    r = cli("dyck", "plot", tmp_path, "--out", tmp_path / "f")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "no finished Dyck runs" in r.stderr
    # (too few distinct strings for the asked sizes, unbalanced files, ...: see tests/test_dyck.py)


@pytest.mark.parametrize("args,needle", [
    (("--types", "0"), "types must be >= 1 (got 0)"),  # was a ZeroDivisionError traceback
    (("--types", "31"), "types must be <= 30 (got 31)"),
    (("--fit-lo", "100", "--fit-hi", "4"), "fit-hi (4) must leave at least 3 even spans"),  # wrote the data, then failed
    (("--fit-hi", "500"), "fit-hi must be <= max_len (200)"),
    (("--train", "0"), "train must be >= 1"),
    (("--max-len", "10", "--train", "5000"), "only 1618 distinct Dyck-2 strings"),
    (("--p-bracket", "1.5"), "p-bracket must be < 1 (got 1.5)"),
    (("--n", "3"), "No such option: --n"),  # renamed --types; the old name is gone (CHANGELOG)
    (("--seed", "-1"), "seed must be >= 0 (got -1)"),  # was numpy's traceback
    (("--seed", str(2**32)), "seed must be <= 4294967295"),
])
def test_generate_checks_every_option_first_and_writes_nothing(args, needle, tmp_path):
    from timescale_probe.cli import main

    out = tmp_path / "d"
    r = _run(main, ["dyck", "generate", *args, "--out", str(out)])
    assert r.code == 2, r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.err
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing new on disk, not even a staging folder


def test_generate_types(tmp_path):
    from timescale_probe.cli import main
    from timescale_probe.dyck import load_dataset

    out = tmp_path / "types"
    r = _run(main, ["dyck", "generate", "--types", "3", "--max-len", "30", "--train", "60", "--valid", "10", "--test",
                    "10", "--fit-hi", "14", "--out", str(out)])
    assert r.code == 0, r.err
    ds = load_dataset(out)
    assert ds.grammar.n == 3 and set("".join(ds["train"].strings)) <= set("()[]{}")
    assert json.loads((out / "run.json").read_text())["options"]["types"] == 3


class _R:
    def __init__(self, code, err):
        self.code, self.err = code, err


def _run(main, argv):
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code
    return _R(code, err.getvalue())
