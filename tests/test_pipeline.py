import json

import pytest

from timescale_probe.errors import InputError, OptionError
from timescale_probe.pipeline import Step, StepSkipped, run_pipeline


def make_steps(calls, fail_b=False):
    def a(ctx):
        calls.append("a")
        ctx.path("a.txt").write_text("A")
        return {"value": 1, "_files": ["a.txt"]}

    def b(ctx):
        calls.append("b")
        if fail_b:
            raise InputError("corpus missing")
        return {"twice": ctx.results["a"]["value"] * 2}

    def c(ctx):
        calls.append("c")
        raise StepSkipped("WikiText-2 train split not found")

    return [Step("a", "first", a), Step("b", "second", b, needs=("a",)), Step("c", "third", c)]


def test_steps_are_cached_and_forced(tmp_path):
    calls = []
    recs = run_pipeline(make_steps(calls), tmp_path, "smoke")
    assert calls == ["a", "b", "c"]
    assert recs["b"]["results"]["twice"] == 2
    assert recs["c"]["status"] == "skipped" and "WikiText" in recs["c"]["reason"]
    calls.clear()
    run_pipeline(make_steps(calls), tmp_path, "smoke")
    assert calls == []  # everything cached (a skipped step is remembered too)
    run_pipeline(make_steps(calls), tmp_path, "smoke", force={"a"})
    assert calls == ["a", "b"]  # forcing a redoes its dependant b
    calls.clear()
    (tmp_path / "a.txt").unlink()  # a declared output vanished -> a is stale
    run_pipeline(make_steps(calls), tmp_path, "smoke")
    assert calls == ["a", "b"]
    calls.clear()
    run_pipeline(make_steps(calls), tmp_path, "small")  # another profile is not the same result
    assert calls == ["a", "b", "c"]


def test_failures_are_recorded_and_dependants_skipped(tmp_path):
    calls = []
    steps = make_steps(calls, fail_b=True)
    steps.append(Step("d", "needs b", lambda ctx: {"x": 1}, needs=("b",)))
    recs = run_pipeline(steps, tmp_path, "smoke")
    assert recs["b"]["status"] == "failed" and "corpus missing" in recs["b"]["reason"]
    assert recs["d"]["status"] == "skipped" and "needs b" in recs["d"]["reason"]
    on_disk = json.loads((tmp_path / ".steps" / "b.json").read_text())
    assert on_disk["status"] == "failed"


def test_only_and_unknown_steps(tmp_path):
    calls = []
    run_pipeline(make_steps(calls), tmp_path, "smoke", only={"b"})
    assert calls == ["a", "b"]
    with pytest.raises(OptionError):
        run_pipeline(make_steps(calls), tmp_path, "smoke", force={"nope"})


def test_atomic_writes_have_normal_permissions_and_survive_errors(tmp_path):
    import os
    import stat

    from timescale_probe.fileio import atomic_path, atomic_write_text

    p = atomic_write_text(tmp_path / "a.txt", "x")
    mode = stat.S_IMODE(os.stat(p).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert (tmp_path / "a.txt").read_text() == "x"
    assert [f.name for f in tmp_path.iterdir()] == ["a.txt"]


class _Recorder:
    def __init__(self):
        self.calls = []

    def start(self, total, label):
        self.calls.append(("start", total))

    def advance(self, n=1):
        self.calls.append(("advance", n))

    def done(self):
        self.calls.append(("done",))


def test_progress_counts_settled_steps_and_events_are_logged(tmp_path, caplog):
    from timescale_probe.pipeline import StepContext, pipeline_events

    def talk(ctx):
        ctx.progress("half way")
        return {}

    steps = make_steps([]) + [Step("d", "talks", talk)]
    rec, seen, old = _Recorder(), [], []
    with pipeline_events(lambda *e: seen.append(e)), caplog.at_level("INFO", logger="timescale_probe"):
        run_pipeline(steps, tmp_path, "p", progress=rec, on_event=lambda *e: old.append(e))
    assert rec.calls[0] == ("start", 4) and rec.calls[-1] == ("done",)
    assert sum(c[1] for c in rec.calls if c[0] == "advance") == 4
    assert ("d", "progress", "half way") in seen and ("a", "running", "first") in seen
    assert seen == old  # the older on_event= gets the same events
    assert any(getattr(r, "step", None) == "a" and r.status == "done" for r in caplog.records)
    rec = _Recorder()  # a second run: every step cached, still counted
    run_pipeline(steps, tmp_path, "p", progress=rec, only={"a"})
    assert rec.calls == [("start", 1), ("advance", 1), ("done",)]
    ctx = StepContext(out=tmp_path, profile="p", options={}, results={}, step="x")
    with pipeline_events(lambda *e: seen.append(e)):
        ctx.progress("hello")  # the default ctx.progress logs the step's message
    assert seen[-1] == ("x", "progress", "hello")
