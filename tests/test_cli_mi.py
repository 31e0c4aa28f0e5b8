"""``tsprobe mi-decay`` and ``tsprobe markov-corpus`` through the real entry point."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from timescale_probe.mutual_info import sample_tree_grammar


@pytest.fixture(scope="module")
def text_corpus(tmp_path_factory):
    """A tree-grammar text (power-law MI) as words, 30 words a line, with a Gutenberg frame."""
    d = tmp_path_factory.mktemp("corpus")
    sym = sample_tree_grammar(15, lam=0.95, seed=1, n_symbols=6)
    words = np.array(["alpha", "beta", "gamma", "delta", "eps", "zeta"])[sym]
    lines = [" ".join(words[i:i + 30]) for i in range(0, words.size, 30)]
    path = d / "tree.txt"
    path.write_text("junk header\n*** START OF THIS BOOK ***\n" + "\n".join(lines) + "\n*** END OF THIS BOOK ***\nlicense\n")
    return path


@pytest.fixture(scope="module")
def ptb_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ptbform")
    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(30)])
    for split, n in (("train", 600), ("valid", 80), ("test", 90)):
        lines = [" ".join(vocab[rng.integers(0, 30, rng.integers(3, 15))]) for _ in range(n)]
        (d / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return d


def test_mi_decay_writes_tables_figure_and_run_json(cli, text_corpus, tmp_path):
    out = tmp_path / "mi"
    r = cli("mi-decay", text_corpus, "--max-distance", "200", "--n-distances", "20", "--n-resamples", "3",
            "--seed", "4", "--out", out)
    assert r.returncode == 0, r.stderr
    for name in ("mi_curve.csv", "mi_null.csv", "mi_fits.csv", "mi_decay.pdf", "run.json"):
        assert (out / name).is_file(), name
    curve = pd.read_csv(out / "mi_curve.csv")
    assert len(curve) == 20 and curve["distance"].iloc[-1] == 200
    assert {"mi_bits", "se_bits", "band_bits", "excess_bits", "retained", "fit_power_bits"} <= set(curve.columns)
    null = pd.read_csv(out / "mi_null.csv")
    assert sorted(null["shuffle"].unique()) == [0, 1, 2]
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 4 and run["options"]["estimator"] == "grassberger" and run["options"]["n_resamples"] == 3
    assert str(text_corpus) in run["inputs"]
    res = run["results"]
    assert res["n_tokens"] == 2 ** 15 + len(range(0, 2 ** 15, 30))  # Gutenberg frame stripped
    assert res["tail"] == "power" and 0 < res["a"] < 2
    assert "verdict" in r.stdout and "suggested inverse-gamma shape" in r.stdout


def test_mi_decay_within_lines_and_explicit_distances(cli, ptb_dir, tmp_path):
    r = cli("mi-decay", ptb_dir, "--split", "train,valid", "--distances", "1-5,8", "--within", "lines",
            "--estimator", "plugin", "--shuffles", "2", "--se", "delta", "--out", tmp_path / "o")  # the former name
    assert r.returncode == 0, r.stderr
    curve = pd.read_csv(tmp_path / "o" / "mi_curve.csv")
    assert curve["distance"].tolist() == [1, 2, 3, 4, 5, 8]
    assert json.loads((tmp_path / "o" / "run.json").read_text())["options"]["n_resamples"] == 2
    assert (curve["mi_bits"] == curve["mi_plugin_bits"]).all()
    # pairs only inside lines: fewer pairs at longer distances
    assert curve["n_pairs"].is_monotonic_decreasing and curve["n_pairs"].iloc[-1] < 7000
    assert (curve["se_plugin_bits"] == curve["se_delta_bits"]).all()  # --se delta: the delta SE is the SE


def test_mi_decay_delta_se_beside_the_jackknife_only_on_request(cli, ptb_dir, tmp_path):
    """The default jackknife run has no delta-SE column; --delta-se adds it (recorded in run.json)
    and leaves the jackknife SEs as they were."""
    args = ("mi-decay", ptb_dir, "--distances", "1-4", "--n-resamples", "1", "--estimator", "plugin")
    assert cli(*args, "--out", tmp_path / "plain").returncode == 0
    r = cli(*args, "--delta-se", "--out", tmp_path / "both")
    assert r.returncode == 0, r.stderr
    plain = pd.read_csv(tmp_path / "plain" / "mi_curve.csv")
    both = pd.read_csv(tmp_path / "both" / "mi_curve.csv")
    assert "se_delta_bits" not in plain.columns and (both["se_delta_bits"] > 0).all()
    pd.testing.assert_series_equal(plain["se_plugin_bits"], both["se_plugin_bits"])
    assert json.loads((tmp_path / "both" / "run.json").read_text())["options"]["delta_se"] is True


@pytest.mark.parametrize("args, needle", [
    (["mi-decay", "no-such-corpus.txt"], "not found"),
    (["mi-decay", "{ptb}", "--estimator", "magic"], "estimator"),
    (["mi-decay", "{ptb}", "--within", "paragraphs"], "within"),
    (["markov-corpus", "{ptb}", "--order", "-1"], "order"),
    (["mi-decay", "{ptb}", "--seed", "-1"], "seed must be >= 0 (got -1)"),  # was numpy's traceback
    (["mi-decay", "{ptb}", "--n-resamples", "1000000000000"], "n-resamples must be <= 10000"),  # ran until killed
    (["mi-decay", "{ptb}", "--n-resamples", "3", "--shuffles", "4"], "disagree"),
    (["mi-decay", "{ptb}", "--distances", "5-1"], "runs backwards"),
    (["mi-decay", "{ptb}", "--documents", "no-such-file"], "not found"),
    (["markov-corpus", "{ptb}", "--seed", "-1"], "seed must be >= 0"),
    (["markov-corpus", "{ptb}", "--n-chains", "0"], "n-chains must be >= 1"),
])
def test_bad_input_exits_2_with_one_line(cli, ptb_dir, tmp_path, args, needle):
    args = [a.replace("{ptb}", str(ptb_dir)) for a in args]
    r = cli(*args, "--out", tmp_path / "x")
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tsprobe: error:") and needle in lines[0].lower()
    assert not (tmp_path / "x").exists() and [p.name for p in tmp_path.iterdir()] == []  # checked before any work


def test_out_is_checked_before_the_corpus_is_read(cli, tmp_path):
    """An output folder that cannot be made is refused at once (before reading, sampling or fitting)."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for args in (["mi-decay", "no-such-corpus.txt"], ["markov-corpus", "no-such-corpus.txt"]):
        for out in (blocker / "sub", ""):
            r = cli(*args, "--out", out)
            assert r.returncode == 2 and "out" in r.stderr and "not found" not in r.stderr, r.stderr


def test_markov_corpus_writes_a_ptb_form_directory(cli, ptb_dir, tmp_path):
    out = tmp_path / "markov"
    r = cli("markov-corpus", ptb_dir, "--order", "2", "--seed", "1", "--n-chains", "20", "--out", out)
    assert r.returncode == 0, r.stderr
    from timescale_probe.corpora import load_corpus

    orig, new = load_corpus(str(ptb_dir)), load_corpus(str(out))
    for s in ("train", "valid", "test"):
        assert new.tokens(s).numel() == orig.tokens(s).numel()
    assert set(new.vocab) <= set(orig.vocab)
    assert sum(new.oov.values()) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["order"] == 2 and run["seed"] == 1
    assert run["results"]["tokens"]["train"] == orig.tokens("train").numel()
