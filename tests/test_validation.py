"""One validation layer: options are checked by the library before any work, in its own terms
(``OptionError.param`` names the Python parameter), and the command line prints them with the
flag, one line, exit 2, leaving nothing on disk. Commands run in-process (``cli.main(argv)``)."""
from __future__ import annotations

import pickle
import re

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import run_cli_inprocess as cli
from helpers import write_tiny_lm

from timescale_probe.cli._common import option_error_line
from timescale_probe.errors import InputError, OptionError
from timescale_probe.fileio import OutputStage, discard_open_stages, staged_output


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny corpus directory (30 words; 'rare' only in train, so one bin is empty in test) and
    a tiny MTS checkpoint on its vocabulary."""
    return write_tiny_lm(tmp_path_factory.mktemp("tiny"), (300, 30, 60))


def _one_line(r):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("tsprobe: error:"), r.stderr
    return lines[0]


# -- the seam ------------------------------------------------------------------------------------

def test_option_error_carries_the_parameter_and_survives_pickling():
    exc = OptionError("level must lie strictly between 0 and 1 (got 2)", param="level")
    back = pickle.loads(pickle.dumps(exc))
    assert back.param == "level" and str(back) == str(exc) and isinstance(back, OptionError)
    assert OptionError("plain").param is None


def test_flags_equal_parameter_names_in_every_command():
    """No map from parameters to flags: every visible flag is ``--`` + its parameter's name."""
    import typer.main

    from timescale_probe.cli import app

    def walk(group, prefix=""):
        for name, cmd in group.commands.items():
            yield from (walk(cmd, f"{prefix}{name} ") if hasattr(cmd, "commands") else [(prefix + name, cmd)])

    checked = 0
    for name, cmd in walk(typer.main.get_command(app)):
        for p in cmd.params:
            if p.param_type_name == "option" and not p.hidden and p.name != "help":
                assert "--" + p.name.replace("_", "-") in p.opts, (name, p.name, p.opts)
                checked += 1
    assert checked > 150


def test_translation_replaces_whole_words_only():
    e = OptionError("max_tokens 10 is less than one window: raise max_tokens", param="max_tokens")
    assert option_error_line(e, "estimate-timescales") == "--max-tokens 10 is less than one window: raise max_tokens"
    e = OptionError("unknown mode 'x': use output or silence", param="mode")
    assert option_error_line(e, "ablate") == "unknown --mode 'x': use output or silence"
    e = OptionError("layer 5 does not exist: the model has layers 1-3", param="layer")
    assert option_error_line(e, "ablate") == "--layer 5 does not exist: the model has layers 1-3"
    e = OptionError("cannot read 'chunks:x'", param="groups")  # not mentioned: the flag goes in front
    assert option_error_line(e, "ablate") == "--groups: cannot read 'chunks:x'"
    assert option_error_line(InputError("checkpoint not found: x.pt")) == "checkpoint not found: x.pt"


def test_library_errors_name_the_python_parameter_not_a_flag():
    from timescale_probe.ablation import check_ablation_options
    from timescale_probe.evaluation import paired_bootstrap
    from timescale_probe.gates import check_estimate_options
    from timescale_probe.mutual_info import parse_distances

    z = np.zeros(500)
    with pytest.raises(OptionError, match=r"^level must lie strictly between 0 and 1 \(got 2\)$") as info:
        paired_bootstrap(z, z, z.astype(int), np.zeros(1, dtype=int), ["all"], level=2)
    assert info.value.param == "level"
    for kwargs, param in [({"n_resamples": 0}, "n_resamples"), ({"chunk": 0}, "chunk"), ({"bptt": 0}, "bptt"),
                          ({"controls": -1}, "controls"), ({"mode": "zap"}, "mode"), ({"top": 0}, "top")]:
        with pytest.raises(OptionError) as info:
            check_ablation_options(**kwargs)
        assert info.value.param == param and "--" not in str(info.value) and param in str(info.value)
    with pytest.raises(OptionError) as info:
        check_estimate_options(convention="nope")
    assert info.value.param == "convention" and "--" not in str(info.value)
    with pytest.raises(OptionError, match="runs backwards") as info:
        parse_distances("5-1")
    assert info.value.param == "distances"


# -- messages that name the bad option -------------------------------------------------------------

@pytest.mark.parametrize("argv, expected", [
    (["ablate", "x.pt", "--bootstrap", "0"], "--bootstrap must be >= 1 (got 0)"),
    (["ablate", "x.pt", "--chunk", "0"], "--chunk must be >= 1 (got 0)"),
    (["ablate", "x.pt", "--bptt", "0"], "--bptt must be >= 1 (got 0)"),
    (["ablate", "x.pt", "--controls", "-1"], "--controls must be >= 0 (got -1)"),
    (["ablate", "x.pt", "--level", "2"], "--level must be < 1 (got 2)"),
    (["ablate", "x.pt", "--by", "size"], "unknown --by 'size'"),
    (["compare", "a.pt", "b.pt", "--bootstrap", "0"], "--bootstrap must be >= 1 (got 0)"),
    (["estimate-timescales", "x.pt", "--level", "1"], "--level must be < 1 (got 1)"),
    (["estimate-timescales", "x.pt", "--convention", "log"], "unknown --convention 'log'"),
    (["estimate-timescales", "x.pt", "--max-tokens", "10"], "--max-tokens 10 is less than one window"),
    (["mi-decay", "ptb", "--distances", "5-1"], "--distances '5-1': the range 5-1 runs backwards"),
    (["mi-decay", "ptb", "--n-distances", "0"], "--n-distances must be >= 1 (got 0)"),
    (["evaluate", "x.pt", "--vocab-file", "missing.txt"], "vocabulary file not found: missing.txt"),
    (["evaluate", "x.pt", "--bin-edges", "5,3"], "--bin-edges '5,3' must be positive and strictly ascending"),
    (["corpus-info", "ptb", "--bins-from", "dev"], "unknown --bins-from 'dev'"),
    (["evaluate", "x.pt", "--device", "tpu"], "unknown --device 'tpu'"),
])
def test_each_bad_option_is_named_before_any_work(argv, expected, tmp_path):
    """The checkpoint x.pt does not exist: the option error comes first, so no work was done."""
    out = tmp_path / "out"
    line = _one_line(cli(*argv, "--out", out, cwd=tmp_path))
    assert expected in line, line
    assert not out.exists() and list(tmp_path.iterdir()) == []


# -- a failed run leaves nothing behind ------------------------------------------------------------

def test_error_after_loading_leaves_no_out_folder(tiny, tmp_path):
    root, ckpt = tiny
    out = tmp_path / "abl"
    line = _one_line(cli("ablate", ckpt, "--corpus", root, "--layer", "9", "--out", out))
    assert "--layer 9 does not exist" in line
    assert list(tmp_path.iterdir()) == []  # no --out folder, no staging folder
    out = tmp_path / "est"
    line = _one_line(cli("estimate-timescales", ckpt, "--corpus", root, "--batch-size", "400", "--out", out))
    assert "--window 70 is longer than the 1 steps each of 400 parallel streams" in line
    assert list(tmp_path.iterdir()) == []


def test_existing_out_folder_keeps_its_files_when_a_run_fails(tiny, tmp_path):
    root, ckpt = tiny
    out = tmp_path / "keep"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    _one_line(cli("ablate", ckpt, "--corpus", root, "--layer", "9", "--out", out))
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and len(list(tmp_path.iterdir())) == 1


def test_output_stage_all_or_nothing(tmp_path):
    out = tmp_path / "a" / "b"
    with pytest.raises(RuntimeError):
        with staged_output(out) as d:
            (d / "x.csv").write_text("1")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with staged_output(out) as d:
        (d / "sub").mkdir()
        (d / "sub" / "y.txt").write_text("2")
        (d / "x.csv").write_text("1")
    assert (out / "x.csv").read_text() == "1" and (out / "sub" / "y.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # the staging folder is gone
    stage = OutputStage(tmp_path / "c")
    (stage.path / "z").write_text("3")
    assert discard_open_stages() == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    (tmp_path / "file").write_text("")
    with pytest.raises(OptionError) as info:
        OutputStage(tmp_path / "file")
    assert info.value.param == "out"


# -- --debug anywhere ------------------------------------------------------------------------------

def test_debug_is_accepted_after_the_command(tmp_path):
    from timescale_probe.cli import main

    with pytest.raises(InputError, match="not found"):  # the traceback (the exception) instead of one line
        main(["inspect", str(tmp_path / "x.pt"), "--debug"])
    with pytest.raises(OptionError) as info:
        main(["ablate", "x.pt", "--debug", "--level", "3"])
    assert info.value.param == "level"
    line = _one_line(cli("inspect", tmp_path / "x.pt"))  # without it: one line
    assert "not found" in line


# -- silent oddities -------------------------------------------------------------------------------

def test_empty_bin_gets_a_note(tiny, tmp_path):
    root, ckpt = tiny
    r = cli("evaluate", ckpt, "--corpus", root, "--bin-edges", "10,1M", "--out", tmp_path / "ev")
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "ev" / "perplexity.csv")
    empty = table.loc[table["tokens"] == 0, "bin"].tolist()
    assert ">1M" in empty and table.loc[table["tokens"] == 0, "ppl"].isna().all()
    for b in empty:  # one note per empty bin, none for the others
        assert f"note: bin {b} has no tokens in the test split: its perplexity is nan" in r.stdout
    assert r.stdout.count("note: bin ") == len(empty)


def test_estimate_refuses_fewer_tokens_than_one_window(tiny, tmp_path):
    root, ckpt = tiny
    line = _one_line(cli("estimate-timescales", ckpt, "--corpus", root, "--max-tokens", "50", "--out", tmp_path / "o"))
    assert "--max-tokens 50 is less than one window (71 tokens)" in line
    line = _one_line(cli("estimate-timescales", ckpt, "--corpus", root, "--max-tokens", "100", "--window", "200",
                         "--out", tmp_path / "o"))
    assert "--max-tokens 100 is less than one window (201 tokens)" in line
    assert list(tmp_path.iterdir()) == []


# -- the routing table at 80 columns ---------------------------------------------------------------

def test_ablate_table_shows_top_n_per_bin_with_whole_numbers(tiny, tmp_path):
    root, ckpt = tiny
    out = tmp_path / "abl"
    r = cli("ablate", ckpt, "--corpus", root, "--groups", "chunks:5", "--top", "3", "--bootstrap", "200",
            "--chunk", "20", "--out", out)
    assert r.returncode == 0, r.stderr
    routing = pd.read_csv(out / "routing.csv")
    assert routing.groupby("bin").size().max() == 3
    text = r.stdout
    assert "…" not in text
    lines = [line for line in text.splitlines() if re.search(r"\d\.\d{4}\s+\d\.\d{4}", line)]
    rows = [line.split() for line in lines]
    assert lines and max(len(line) for line in lines) <= 80  # rich's width off a terminal
    shown = routing[routing["ratio"].notna()]
    assert len(shown) >= 6  # at least two bins with data
    for _, sub in shown.groupby("bin", sort=False):  # top 3 of every bin with data, numbers whole
        assert sub["rank"].tolist() == [1, 2, 3]
        for row in sub.itertuples():
            want = " ".join([f"{row.ratio:.4f}", f"{row.ratio_lo:.4f}", f"{row.ratio_hi:.4f}"])
            assert any(want in " ".join(c) for c in rows), (want, text)
    for b in routing.loc[routing["ratio"].isna(), "bin"].unique():  # bins without tokens: a note, no nan rows
        assert f"frequency bin {b} has no target tokens" in text
    assert not any("nan" in c for c in rows)


# -- issue 19: every option checked before work ----------------------------------------------------

@pytest.mark.parametrize("argv, expected", [
    (["fit-distribution", "x.npy", "--seed", "-1"], "--seed must be >= 0 (got -1)"),
    (["fit-distribution", "x.npy", "--seed", str(2**32)], "--seed must be <= 4294967295"),
    (["ablate", "x.pt", "--seed", "-1"], "--seed must be >= 0 (got -1)"),
    (["demo", "--seed", "-1"], "--seed must be >= 0 (got -1)"),
    (["compare", "a.pt", "b.pt", "--seed", "-1"], "--seed must be >= 0 (got -1)"),
    (["fit-distribution", "x.npy", "--bootstrap", "1000000000000"], "--bootstrap must be <= 100000"),
    (["demo", "--resamples", "1000000000000"], "--resamples must be <= 100000"),
    (["compare", "a.pt", "b.pt", "--bootstrap", "1000000000000"], "--bootstrap must be <= 100000"),
    (["ablate", "x.pt", "--bootstrap", "1000000000000"], "--bootstrap must be <= 100000"),
    (["ablate", "x.pt", "--groups", "edges:100,1"], "--groups 'edges:100,1' must be strictly ascending"),
    (["ablate", "x.pt", "--bin-edges", "5,3"], "--bin-edges '5,3' must be positive and strictly ascending"),
    (["demo", "--threads", "0"], "--threads must be >= 1 (got 0)"),
])
def test_issue19_bad_values_refused_before_work(argv, expected, tmp_path):
    """Before the fix: --seed -1 gave numpy's traceback (the demo after its whole first step),
    --bootstrap 1e12 ran until killed, edges:100,1 was sorted silently."""
    line = _one_line(cli(*argv, "--out", tmp_path / "out", cwd=tmp_path))
    assert expected in line, line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["timescales", "x.pt"], ["fit-distribution", "x.npy"], ["ablate", "x.pt"],
                                     ["estimate-timescales", "x.pt"], ["evaluate", "x.pt"], ["demo"],
                                     ["compare", "a.pt", "b.pt"], ["inspect", "x.pt"]])
@pytest.mark.parametrize("out, expected", [("", "--out needs a"), ("/proc/x", "--out /proc/x cannot be written"),
                                           ("f/sub", "--out f/sub cannot be made: f is a file")])
def test_out_checked_before_work(command, out, expected, tmp_path):
    """``--out ""`` wrote into the current folder and ``--out /proc/x`` gave a traceback after the
    work; both are refused at once (the inputs do not even exist: no work was possible)."""
    (tmp_path / "f").write_text("")
    inputs = [a for a in command[1:] if "." in a]
    for name in inputs:  # present (empty: any work on them would fail later, differently)
        (tmp_path / name).write_text("")
    line = _one_line(cli(*command, "--out", out, cwd=tmp_path))
    assert expected in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["f", *inputs])  # nothing written, no probe left


def test_empty_vocab_file_is_called_a_vocabulary_file(tiny, tmp_path):
    """Issue 19: an empty --vocab-file was reported as an empty "corpus file"."""
    root, ckpt = tiny
    (tmp_path / "vocab.txt").write_text("\n")
    line = _one_line(cli("evaluate", ckpt, "--corpus", root, "--vocab-file", tmp_path / "vocab.txt",
                         "--out", tmp_path / "o"))
    assert "vocabulary file" in line and "is empty" in line and "corpus file" not in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vocab.txt"]


def test_npy_files_are_narrowed_only_where_nothing_is_lost(tmp_path):
    """Token NLLs of a float32 model (float32 values held as float64) are stored as float32, half
    the bytes, and read back to the same float64 numbers; a float64 value that float32 cannot hold
    keeps the file float64; nothing is ever pickled."""
    from timescale_probe.fileio import save_npy

    exact = np.random.default_rng(0).random(1000).astype(np.float32).astype(np.float64)
    exact[3] = np.nan
    p = save_npy(tmp_path / "nll.npy", exact, exact_narrow=True)
    back = np.load(p, allow_pickle=False)
    assert back.dtype == np.float32 and p.stat().st_size < 0.6 * exact.nbytes
    np.testing.assert_array_equal(back.astype(np.float64), exact)
    fine = exact.copy()
    fine[0] = 0.1  # not a float32 value
    assert np.load(save_npy(tmp_path / "f.npy", fine, exact_narrow=True)).dtype == np.float64
    assert np.load(save_npy(tmp_path / "g.npy", exact)).dtype == np.float64  # only when asked
    assert sorted(q.name for q in tmp_path.iterdir()) == ["f.npy", "g.npy", "nll.npy"]  # no temporary left
