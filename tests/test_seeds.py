"""Per-seed result folders (``timescale_probe.seeds``) on a tiny trained model, checked against
independent computations: a token-by-token forward pass, the bias formula, group sizes and order."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from timescale_probe.corpora import load_corpus
from timescale_probe.seeds import SEED_FILES, main, read_seed_folder, seed_folder_name, write_seed_tables
from timescale_probe.timescales import forget_bias_to_timescale


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from timescale_probe.training import train_language_model

    d = tmp_path_factory.mktemp("seedcorpus")
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    p = 1.0 / np.arange(1, 41)
    p /= p.sum()
    for split, n in (("train", 300), ("valid", 40), ("test", 60)):
        lines = [" ".join(rng.choice(words, size=rng.integers(3, 10), p=p)) for _ in range(n)]
        (d / f"{split}.txt").write_text("\n".join(lines) + "\n")
    corpus = load_corpus(str(d))
    ckpt = d / "tiny-mts.pt"
    train_language_model(corpus, ckpt, arch="mts", profile="tiny", train_overrides={"epochs": 2, "seed": 7},
                         final_eval=False)
    return corpus, ckpt, d


def _manual_nll(model, tokens: torch.Tensor) -> np.ndarray:
    """NLL one token at a time with the state carried (no windows, no batching)."""
    model.eval()
    hidden = model.init_hidden(1)
    out = []
    with torch.no_grad():
        for t in range(len(tokens) - 1):
            logits, hidden, _ = model(tokens[t:t + 1].view(1, 1), hidden)
            out.append(-torch.log_softmax(logits.view(-1).double(), 0)[tokens[t + 1]].item())
    return np.array(out)


def test_folder_contents(trained, tmp_path):
    from timescale_probe.models import load_language_model

    corpus, ckpt, _ = trained
    out = tmp_path / seed_folder_name("toy", "mts", 7)
    assert out.name == "toy-mts-seed7"
    res = write_seed_tables(ckpt, corpus, out, controls=20, n_resamples=100)
    assert sorted(p.name for p in out.iterdir()) == sorted(SEED_FILES)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch folder left
    f = read_seed_folder(out)
    assert f["missing"] == []
    # token NLL: batch 1, state carried; the same as a token-by-token pass
    stack, model, corp = load_language_model(ckpt, corpus)
    tokens = corp.tokens("test")
    ref = _manual_nll(model, tokens)
    assert f["token_nll"].dtype == np.float64 and f["token_nll"].shape == ref.shape
    np.testing.assert_allclose(f["token_nll"], ref, atol=2e-5, rtol=0)
    # per-bin perplexity from the NLL and the train counts
    ppl = f["perplexity"]
    bin_of, labels = corpus.bins("train")
    b = bin_of[tokens.numpy()[1:]]
    for i, lab in enumerate(labels):
        row = ppl[ppl.bin == lab].iloc[0]
        assert row.tokens == int((b == i).sum())
        if row.tokens:
            assert math.isclose(row.ppl, math.exp(ref[b == i].mean()), rel_tol=1e-5)
    assert math.isclose(ppl.iloc[-1].ppl, math.exp(ref.mean()), rel_tol=1e-5) and ppl.iloc[-1].bin == "overall"
    assert math.isclose(res["test_ppl"], math.exp(f["token_nll"].mean()), rel_tol=1e-12)
    # timescales: T_bias from the biases by the paper's formula; T_data finite and positive
    ts = f["timescales"]
    fb = np.concatenate([l.forget_bias.numpy() for l in stack.layers])
    np.testing.assert_allclose(ts["T_bias"], forget_bias_to_timescale(fb), rtol=1e-9)
    assert (ts["T_data"] > 0).all() and len(ts) == sum(stack.layer_sizes)
    # ablation: 23 quantile groups of layer 2, longest T first, + 20 controls of the modal size
    abl = f["ablation"]
    g = abl[abl.kind == "group"].drop_duplicates("group")
    c = abl[abl.kind == "control"].drop_duplicates("group")
    H2 = stack.layer_sizes[1]
    assert len(g) == 23 and g["size"].sum() == H2 and len(c) == 20
    assert (c["size"] == g["size"].mode()[0]).all()
    assert (np.diff(g["T_median"].to_numpy()) <= 1e-9).all()
    assert (abl["layer"] == 2).all() and set(abl["mode"]) == {"output"} and set(abl["order_by"]) == {"T_bias"}
    assert set(abl["bin"]) == set(labels) | {"all"}
    intact = abl[abl.bin == "all"]["ppl_intact"].to_numpy()
    np.testing.assert_allclose(intact, math.exp(ref.mean()), rtol=1e-5)
    # card and curve come from the checkpoint and its metrics file
    card = json.loads((out / "card.json").read_text())
    assert card["seed"] == 7 and card["epochs"] == 2 and card["seed_tables"]["ablation"]["controls"] == 20
    m = pd.read_csv(ckpt.with_suffix(".metrics.csv"))
    pd.testing.assert_frame_equal(f["metrics"], m)


def test_missing_files_are_reported(trained, tmp_path):
    corpus, ckpt, _ = trained
    out = tmp_path / "x"
    write_seed_tables(ckpt, corpus, out, ablation=False, metrics=None, max_tokens=150, n_resamples=10)
    (out / "metrics.csv").unlink()
    f = read_seed_folder(out)
    assert sorted(f["missing"]) == ["ablation.csv", "metrics.csv"]
    assert f["ablation"] is None and f["token_nll"].size == 149


def test_command_line(trained, tmp_path, capsys):
    corpus, ckpt, corpus_dir = trained
    out = tmp_path / "cli"
    rc = main([str(ckpt), "--corpus", str(corpus_dir),
               "--out", str(out), "--device", "cpu", "--controls", "3", "--bootstrap", "20", "--groups", "quantiles:4"])
    assert rc == 0 and (out / "ablation.csv").is_file()
    assert "test ppl" in capsys.readouterr().out
    # a bad checkpoint: one line, exit 2, nothing written
    rc = main([str(tmp_path / "nope.pt"), "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "not found" in err
    assert not (tmp_path / "bad").exists()
    rc = main([str(ckpt), "--corpus", str(tmp_path / "no-such-corpus"), "--out", str(tmp_path / "bad2")])
    assert rc == 2 and not (tmp_path / "bad2").exists()
