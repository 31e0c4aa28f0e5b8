"""Per-seed result folders (``timescale_probe.seeds``) on a tiny trained model, checked against
independent computations: a token-by-token forward pass, the bias formula, group sizes and order."""
from __future__ import annotations

import hashlib
import json
import math
import os

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
    assert f.missing == []
    # token NLL: batch 1, state carried; the same as a token-by-token pass
    stack, model, corp = load_language_model(ckpt, corpus)
    tokens = corp.tokens("test")
    ref = _manual_nll(model, tokens)
    assert f.token_nll.dtype == np.float64 and f.token_nll.shape == ref.shape
    np.testing.assert_allclose(f.token_nll, ref, atol=2e-5, rtol=0)
    # per-bin perplexity from the NLL and the train counts
    ppl = f.perplexity
    bin_of, labels = corpus.bins("train")
    b = bin_of[tokens.numpy()[1:]]
    for i, lab in enumerate(labels):
        row = ppl[ppl.bin == lab].iloc[0]
        assert row.tokens == int((b == i).sum())
        if row.tokens:
            assert math.isclose(row.ppl, math.exp(ref[b == i].mean()), rel_tol=1e-5)
    assert math.isclose(ppl.iloc[-1].ppl, math.exp(ref.mean()), rel_tol=1e-5) and ppl.iloc[-1].bin == "overall"
    assert math.isclose(res["test_ppl"], math.exp(f.token_nll.mean()), rel_tol=1e-12)
    # timescales: T_bias from the biases by the paper's formula; T_data finite and positive
    ts = f.timescales
    fb = np.concatenate([l.forget_bias.numpy() for l in stack.layers])
    np.testing.assert_allclose(ts["T_bias"], forget_bias_to_timescale(fb), rtol=1e-9)
    assert (ts["T_data"] > 0).all() and len(ts) == sum(stack.layer_sizes)
    # ablation: 23 quantile groups of layer 2, longest T first, + 20 controls taking the groups' sizes in turn
    abl = f.ablation
    g = abl[abl.kind == "group"].drop_duplicates("group")
    c = abl[abl.kind == "control"].drop_duplicates("group")
    H2 = stack.layer_sizes[1]
    assert len(g) == 23 and g["size"].sum() == H2 and len(c) == 20
    assert c["size"].tolist() == g["size"].tolist()[:20]
    assert set(abl["level"]) == {0.95}  # the report's one interval level
    assert (np.diff(g["T_median"].to_numpy()) <= 1e-9).all()
    assert (abl["layer"] == 2).all() and set(abl["mode"]) == {"output"} and set(abl["order_by"]) == {"T_bias"}
    assert set(abl["bin"]) == set(labels) | {"all"}
    intact = abl[abl.bin == "all"]["ppl_intact"].to_numpy()
    np.testing.assert_allclose(intact, math.exp(ref.mean()), rtol=1e-5)
    # card and curve come from the checkpoint and its metrics file
    card = json.loads((out / "card.json").read_text())
    assert card["seed"] == 7 and card["epochs"] == 2 and card["seed_tables"]["ablation"]["controls"] == 20
    # controls are drawn with the model's own training seed (independent draws per seed)
    assert card["seed_tables"]["ablation"]["control_seed"] == 7
    # the card says how many batched passes its ablation_s timed (none read back from a stopped run here)
    a = card["seed_tables"]["ablation"]
    assert a["passes"] == math.ceil((23 + 20 + 1) / a["group_batch"]) and a["passes_resumed"] == 0
    # device, torch version and recipe recorded
    st = card["seed_tables"]
    assert st["device"] == "cpu" and st["torch"] == torch.__version__ and st["recipe"]["arch"] == "mts"
    assert "seed" not in st["recipe"]["train_config"] and len(st["recipe_hash"]) == 12
    m = pd.read_csv(ckpt.with_suffix(".metrics.csv"))
    pd.testing.assert_frame_equal(f.metrics, m)


def test_missing_files_are_reported(trained, tmp_path):
    corpus, ckpt, _ = trained
    out = tmp_path / "x"
    write_seed_tables(ckpt, corpus, out, ablation=False, metrics=None, max_tokens=150, n_resamples=10)
    (out / "metrics.csv").unlink()
    f = read_seed_folder(out)
    assert sorted(f.missing) == ["ablation.csv", "metrics.csv"]
    assert f.ablation is None and f.token_nll.size == 149


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


def test_ingest_names_the_folder_from_the_card_and_refuses_unfinished_runs(trained, tmp_path):
    import shutil

    from timescale_probe.errors import InputError
    from timescale_probe.seeds import ingest

    corpus, ckpt, corpus_dir = trained
    run = tmp_path / "runs"
    run.mkdir()
    for suffix in (".pt", ".json", ".metrics.csv"):
        shutil.copy(ckpt.with_suffix(suffix), run / f"x{suffix}")
    card = json.loads((run / "x.json").read_text())
    card["corpus"] = "ptb"  # named like a sweep's PTB run; evaluated on the toy corpus given
    (run / "x.json").write_text(json.dumps(card))
    path, res = ingest(run / "x.pt", tmp_path / "seeds", corpus=str(corpus_dir), controls=3, groups="quantiles:4",
                       n_resamples=10, max_tokens=301)
    assert path.name == "ptb-mts-seed7" and res is not None and (path / "ablation.csv").is_file()
    again, res2 = ingest(run / "x.pt", tmp_path / "seeds", corpus=str(corpus_dir))
    assert again == path and res2 is None  # same checkpoint file: kept
    os.utime(run / "x.pt", ns=(1, 1))  # copied or touched, same bytes: still kept (an ablation is an hour on a CPU)
    assert ingest(run / "x.pt", tmp_path / "seeds", corpus=str(corpus_dir))[1] is None
    # a folder stamped before stamps held a hash (size and mtime) is kept while those match
    cj = path / "card.json"
    data = json.loads(cj.read_text())
    st = (run / "x.pt").stat()
    data["seed_tables"]["checkpoint_stamp"] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    cj.write_text(json.dumps(data))
    assert ingest(run / "x.pt", tmp_path / "seeds", corpus=str(corpus_dir))[1] is None
    # a folder made from other bytes (another stamp) is made again
    data["seed_tables"]["checkpoint_stamp"] = {"size": st.st_size, "sha256": "0" * 64}
    cj.write_text(json.dumps(data))
    assert ingest(run / "x.pt", tmp_path / "seeds", corpus=str(corpus_dir), controls=3, groups="quantiles:4",
                  n_resamples=10, max_tokens=301)[1] is not None
    stamp = json.loads(cj.read_text())["seed_tables"]["checkpoint_stamp"]
    assert stamp == {"size": st.st_size, "sha256": hashlib.sha256((run / "x.pt").read_bytes()).hexdigest()}
    card["status"] = "training"
    (run / "x.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="still training"):
        ingest(run / "x.pt", tmp_path / "seeds2", corpus=str(corpus_dir))
    assert not (tmp_path / "seeds2").exists()


def _card(seed, device="cpu", **tc):
    return {"corpus": "ptb", "arch": "mts", "profile": "small", "seed": seed, "device": device,
            "model_config": {"layer_sizes": [300, 300, 200],
                             "mts_spec": {"layers": [{"kind": "fixed", "values": [3.0, 4.0]}, {"kind": "free"}]}},
            "train_config": {"epochs": 10, "seed": seed, "min_epochs": None} | tc}


def test_recipes_of_pooled_seeds_must_be_identical_device_may_differ():
    from timescale_probe.errors import InputError
    from timescale_probe.seeds import check_recipes, recipe_of

    # an older card without the explicit defaults ('split', min_epochs None) equals a newer one that has them
    new = _card(3, device="cuda", min_epochs=0)
    new["model_config"]["mts_spec"]["layers"][0]["split"] = "smaller-first"
    assert recipe_of(_card(141)) == recipe_of(new)
    groups = check_recipes({"ptb-mts-seed141": _card(141), "ptb-mts-seed3": new})
    assert list(groups.values()) == [["ptb-mts-seed141", "ptb-mts-seed3"]]
    # a different budget is a different recipe: refused, naming the field
    with pytest.raises(InputError, match="train_config.epochs"):
        check_recipes({"ptb-mts-seed141": _card(141), "ptb-mts-seed4": _card(4, epochs=9)})


def test_reconcile_card_agrees_with_the_metrics_when_the_best_epoch_is_the_checkpoint():
    from timescale_probe.errors import InputError
    from timescale_probe.seeds import reconcile_card

    metrics = pd.DataFrame({"epoch": range(1, 11), "valid_ppl": [300, 200, 170, 150, 137, 126, 119, 114, 110.85, 111.83]})
    snap = _card(2, epochs=9) | {"status": "training", "epochs": 9, "epochs_planned": 9, "best_epoch": 9}
    new = reconcile_card(snap, metrics)
    assert new["status"] == "complete" and new["epochs"] == 10 and new["train_config"]["epochs"] == 10
    assert new["best_epoch"] == 9 and new["reconciled"]["before"]["epochs"] == 9
    # a checkpoint that is not the metrics' best epoch cannot be reconciled: it must be evaluated again
    bad = metrics.assign(valid_ppl=[300, 200, 170, 150, 137, 126, 119, 114, 110.85, 109.0])
    with pytest.raises(InputError, match="not the metrics' best epoch"):
        reconcile_card(snap, bad)


def test_check_and_reconcile_commands(tmp_path, capsys):
    for name, card in (("ptb-mts-seed141", _card(141)), ("ptb-mts-seed4", _card(4, epochs=9))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "card.json").write_text(json.dumps(card))
    assert main(["check", str(tmp_path)]) == 2
    assert "different recipes" in capsys.readouterr().err


def test_committed_seeds_pool_one_recipe_per_arm_across_devices():
    """The seeds the report pools (the shipped seed-141 models, trained on a CPU, and every folder under
    figures/seeds, e.g. seeds 2 and 3 trained on a GPU) share one training recipe per arm; only the
    device and torch version differ. Each folder records both."""
    from pathlib import Path

    from timescale_probe.seeds import check_recipes, seed_folders

    root = Path(__file__).resolve().parents[1]
    cards = {f"ptb-{a}-seed141": json.loads((root / "checkpoints" / f"ptb-{a}-small.json").read_text())
             for a in ("baseline", "mts")}
    for q in seed_folders(root / "figures" / "seeds"):
        if q.name.startswith("ptb-"):
            cards[q.name] = json.loads((q / "card.json").read_text())
            st = cards[q.name]["seed_tables"]
            assert st["device"] and st["torch"] and st["recipe"]["arch"] == cards[q.name]["arch"], q.name
    groups = check_recipes(cards)  # raises, naming the fields, when an arm holds two recipes
    assert len(groups) == 2 and sum(len(v) for v in groups.values()) == len(cards)
    devices = {str(c.get("device")).split()[0] for c in cards.values()}
    assert len(cards) >= 6 and {"cpu", "cuda"} <= devices  # CPU and GPU seeds of one recipe, pooled


def test_cards_written_before_and_after_a_model_field_was_added_share_a_recipe():
    """Seed 4 was trained after wave 3 added cell/gate_activation/activation/layer_cells to the model
    config; its card spells them out at their defaults, the older seeds' cards lack them. Same recipe
    (the report left seed 4 out before); a different cell is a different recipe."""
    import copy

    from timescale_probe.seeds import recipe_hash, recipe_of

    old = {"corpus": "ptb", "arch": "mts", "profile": "small",
           "model_config": {"vocab_size": 10000, "layer_sizes": [300, 300, 200], "mts_spec": None},
           "train_config": {"epochs": 10, "seed": 2}}
    new = copy.deepcopy(old)
    new["model_config"].update(cell="lstm", gate_activation="sigmoid", activation=None, layer_cells=None)
    new["train_config"]["seed"] = 4
    assert recipe_hash(recipe_of(old)) == recipe_hash(recipe_of(new))
    gru = copy.deepcopy(new)
    gru["model_config"]["cell"] = "gru"
    assert recipe_hash(recipe_of(gru)) != recipe_hash(recipe_of(old))
