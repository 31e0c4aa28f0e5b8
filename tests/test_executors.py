"""The executor seam: local processes and a Ray cluster give the same numbers; killed workers are
retried (and resume from their work folder), failures are reported with their seed while the
others finish, reruns skip finished work. One local Ray cluster (2 CPUs) for the whole module."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from timescale_probe.dyck import DyckGrammar, generate_dataset, profile_config, save_dataset, sweep
from timescale_probe.errors import OptionError
from timescale_probe.executors import LocalExecutor, Task, TaskProgress, import_ray, make_executor, write_files

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster for the module; executors made meanwhile reuse it and leave it running."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    # functions defined in this test module travel by value (workers cannot import tests/)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("exec") / "d"
    save_dataset(generate_dataset(DyckGrammar.make(max_len=30), {"train": 80, "valid": 20, "test": 40}, seed=5), out)
    return out


# --------------------------------------------------------------------------- task functions

def square(workdir: Path, x: int, marker: str | None = None) -> dict:
    """Writes one output file; with ``marker``, its worker dies on the first attempt (os._exit)."""
    if marker is not None and not Path(marker).exists():
        Path(marker).write_text("crashed once")
        os._exit(3)
    (workdir / "out").mkdir(exist_ok=True)
    (workdir / "out" / f"sq{x}.txt").write_text(str(x * x))
    print(f"squared {x}")
    return {"x": x, "y": x * x, "_files": [f"out/sq{x}.txt"]}


def fail_on_three(workdir: Path, seed: int) -> dict:
    if seed == 3:
        print("about to fail for seed 3")
        raise ValueError("diverged (seed 3)")
    return {"seed": seed}


def resumable(workdir: Path, marker: str) -> dict:
    """Saves resume state, then dies; the retry finds the state in its work folder and finishes."""
    state = workdir / "state.txt"
    if state.exists():
        return {"resumed_from": int(state.read_text())}
    state.write_text("7")
    if not Path(marker).exists():
        Path(marker).write_text("x")
        os._exit(9)
    return {"resumed_from": None}


# --------------------------------------------------------------------------- tests

def _tasks(xs, marker=None):
    return [Task(key=f"t{x}", fn=square, args=(x,), kwargs={"marker": marker} if marker else {}, labels={"seed": x})
            for x in xs]


@pytest.mark.parametrize("kind", ["local1", "ray"])
def test_tasks_run_and_files_come_back(kind, ray_cluster, tmp_path):
    ex = LocalExecutor(jobs=1) if kind == "local1" else make_executor("ray")
    with ex:
        results = sorted(ex.run(_tasks([1, 2, 3]), namespace=str(tmp_path)), key=lambda r: r.value["x"])
    assert [r.value["y"] for r in results] == [1, 4, 9] and all(r.ok and r.attempts == 1 for r in results)
    assert results[1].files == {"out/sq2.txt": b"4"} and "squared 2" in results[1].log
    write_files(results[2].files, tmp_path / "drv")
    assert (tmp_path / "drv" / "out" / "sq3.txt").read_text() == "9"


def test_killed_worker_is_retried_and_completes(ray_cluster, tmp_path):
    marker = tmp_path / "crashed"
    progress = []

    class Recorder:
        def start(self, total, label):
            progress.append(("start", total))

        def advance(self, n=1):
            progress.append(("advance", n))

        def info(self, text):
            progress.append(("info", text))

        def done(self):
            progress.append(("done",))

    with make_executor("ray") as ex, TaskProgress(2, "tasks", Recorder()) as bar:
        results = {}
        for r in ex.run(_tasks([4]) + _tasks([5], marker=str(marker)), namespace=str(tmp_path)):
            bar.update(r)
            results[r.value["x"]] = r
    assert marker.read_text() == "crashed once"
    assert results[5].ok and results[5].value["y"] == 25 and results[5].attempts == 2
    assert results[4].attempts == 1
    assert bar.summary() == "2 finished, 0 failed, 1 retried"
    assert progress[0] == ("start", 2)
    assert progress[-2] == ("info", "finished 2, failed 0, retried 1") and progress[-1] == ("done",)


def test_local_processes_retry_a_killed_worker_and_report_a_failure(tmp_path):
    """The local executor's process pool: a dead worker's task is rerun, an exception is reported."""
    marker = tmp_path / "crashed"
    tasks = _tasks([5], marker=str(marker)) + [Task(f"s{s}", fail_on_three, (s,), labels={"seed": s}) for s in (2, 3)]
    with LocalExecutor(jobs=2, storage=tmp_path / "tasks") as ex:
        results = {r.task.key: r for r in ex.run(tasks, namespace=str(tmp_path))}
    assert marker.read_text() == "crashed once"
    assert results["t5"].ok and results["t5"].value["y"] == 25 and results["t5"].attempts >= 2
    assert results["s2"].ok and results["s2"].value == {"seed": 2}
    assert not results["s3"].ok and results["s3"].failure_line() == "seed 3: ValueError: diverged (seed 3)"


@pytest.mark.parametrize("jobs", [1, 2])
def test_work_folders_are_removed_except_a_failed_tasks(tmp_path, jobs):
    """After a run only a failed task's folder (its files, for the user to look at) stays under the
    storage folder; a run whose tasks all finished leaves nothing, not even its run folder."""
    store = tmp_path / "tasks"
    with LocalExecutor(jobs=jobs, storage=store) as ex:
        assert all(r.ok for r in ex.run(_tasks([2, 4]), namespace="all-ok"))
        assert list(store.iterdir()) == []
        results = list(ex.run([Task(f"s{s}", fail_on_three, (s,)) for s in (2, 3)], namespace="one-fails"))
    assert sorted(r.ok for r in results) == [False, True]
    (run,) = store.iterdir()
    assert [p.name for p in run.iterdir()] == ["s3"]


def test_retry_resumes_from_the_work_folder(ray_cluster, tmp_path):
    marker = str(tmp_path / "m")
    with make_executor("ray", storage=tmp_path / "store") as ex:
        (r,) = list(ex.run([Task("job", resumable, (marker,))], namespace="resume-test"))
    assert r.ok and r.value == {"resumed_from": 7} and r.attempts == 2
    assert not any((tmp_path / "store").rglob("state.txt"))  # the work folder is removed after success


def test_failure_is_reported_with_seed_and_log_while_others_finish(ray_cluster, tmp_path):
    ex = make_executor("ray")
    tasks = [Task(f"s{s}", fail_on_three, (s,), labels={"arch": "mts", "seed": s}) for s in (1, 2, 3, 4)]
    with ex:
        results = list(ex.run(tasks, namespace=str(tmp_path)))
    ok = sorted(r.value["seed"] for r in results if r.ok)
    (bad,) = [r for r in results if not r.ok]
    assert ok == [1, 2, 4]
    assert bad.failure_line() == "arch mts, seed 3: ValueError: diverged (seed 3)"
    assert "about to fail for seed 3" in bad.log and "fail_on_three" in bad.traceback
    assert bad.attempts == 1  # an exception is not retried: the same inputs give the same error


def _sweep(data, out, executor, seeds=(1,)):
    cfg = profile_config("tiny", units=8, epochs=2)
    return sweep(data, out, ["baseline", "mts"], list(seeds), cfg, profile="tiny", executor=executor)


def test_dyck_sweep_bit_identical_local_and_ray_and_rerun_skips(data, ray_cluster, tmp_path):
    from timescale_probe.checkpoints import load_checkpoint

    with LocalExecutor(jobs=1) as ex:
        local = _sweep(data, tmp_path / "local", ex)
    with make_executor("ray", cpus_per_task=1) as ex:
        remote = _sweep(data, tmp_path / "ray", ex)
        again = _sweep(data, tmp_path / "ray", ex, seeds=(1, 2))  # an interrupted driver's rerun
    assert len(local.trained) == len(remote.trained) == 2 and not local.failed and not remote.failed
    pd.testing.assert_frame_equal(local.results, remote.results)
    for run in ("baseline-1", "mts-1"):
        a, b = (load_checkpoint(tmp_path / d / f"{run}.pt") for d in ("local", "ray"))
        for la, lb in zip(a.layers, b.layers):
            for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                assert np.array_equal(getattr(la, k).numpy(), getattr(lb, k).numpy())
        assert np.array_equal(a.decoder_weight.numpy(), b.decoder_weight.numpy())
        ta, tb = (pd.read_csv(tmp_path / d / f"{run}.test.csv") for d in ("local", "ray"))
        pd.testing.assert_frame_equal(ta, tb)
    assert sorted(again.skipped) == [("baseline", 1), ("mts", 1)]
    assert sorted((i["arch"], i["seed"]) for i in again.trained) == [("baseline", 2), ("mts", 2)]
    card = load_checkpoint(tmp_path / "ray" / "mts-2.pt").config
    assert card["arch"] == "dyck"


def test_dyck_sweep_cli_on_ray(data, ray_cluster, tmp_path, capsys):
    from timescale_probe.cli import main

    out = tmp_path / "cli"
    main(["dyck", "sweep", str(data), "--seeds", "1", "--arch", "mts", "--profile", "tiny", "--units", "8",
          "--epochs", "1", "--device", "cpu", "--executor", "ray", "--cpus-per-task", "1", "--out", str(out)])
    text = " ".join(capsys.readouterr().out.split())
    assert "executor: ray" in text and "1 trained" in text
    assert set(pd.read_csv(out / "results.csv")["arch"]) == {"mts"}
    with pytest.raises(OptionError, match="cpus_per_task"):
        make_executor("ray", cpus_per_task=64)


def test_options_are_checked_and_missing_ray_is_one_line(monkeypatch):
    with pytest.raises(OptionError, match="unknown executor 'dask'"):
        make_executor("dask")
    with pytest.raises(OptionError, match="jobs must be >= 1"):
        make_executor("local", jobs=0)
    with pytest.raises(OptionError, match="address is for the ray executor"):
        make_executor("local", address="auto")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(OptionError, match=r"pip install 'tsprobe\[ray\]'") as exc:
        import_ray()
    assert exc.value.param == "executor"
    with pytest.raises(OptionError, match="tasks keys|task keys must be unique"):
        list(LocalExecutor().run([Task("a", square, (1,)), Task("a", square, (2,))]))


# --------------------------------------------------------------------------- multi-seed LM training

def train_killed_after_epoch_one(workdir: Path, marker: str, *args) -> dict:
    """First attempt: train 1 epoch (its resume state stays in the work folder), then the worker
    dies; the retry runs the real task with the full budget, which resumes from that state."""
    from timescale_probe.sweeps import _train_task

    if not Path(marker).exists():
        Path(marker).write_text("x")
        args = list(args)
        args[6] = dict(args[6], epochs=1)  # train_overrides
        _train_task(workdir, *args)
        os._exit(5)
    return _train_task(workdir, *args)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    import random

    d = tmp_path_factory.mktemp("corpus") / "toy"
    d.mkdir()
    r = random.Random(0)
    words = [f"w{i}" for i in range(40)]
    for split, n in (("train", 200), ("valid", 30), ("test", 30)):
        (d / f"{split}.txt").write_text("\n".join(" ".join(r.choice(words) for _ in range(10)) for _ in range(n)) + "\n")
    return d


def test_train_sweep_local_vs_ray_and_resume_after_a_killed_worker(corpus_dir, ray_cluster, tmp_path, monkeypatch):
    import timescale_probe.sweeps as sweeps
    from timescale_probe.checkpoints import load_checkpoint

    kw = dict(seeds=[2], archs="mts", profile="tiny", train_overrides={"epochs": 2})
    local = sweeps.train_sweep(str(corpus_dir), tmp_path / "local", **kw)
    assert [i["run"] for i in local.trained] == ["toy-mts-seed2"] and not local.failed
    # on Ray, with the worker killed after epoch 1 of its first attempt
    marker = tmp_path / "killed"
    real = Task

    def task_with_crash(key, fn, args=(), kwargs=None, labels=None):
        return real(key, train_killed_after_epoch_one, (str(marker), *args), kwargs or {}, labels or {})

    monkeypatch.setattr(sweeps, "Task", task_with_crash)
    with make_executor("ray") as ex:
        remote = sweeps.train_sweep(str(corpus_dir), tmp_path / "ray", executor=ex, **kw)
    assert marker.exists() and not remote.failed and remote.retried == 1
    (info,) = remote.trained
    assert info["resumed"] is True and info["attempts"] == 2
    names = sorted(p.name for p in (tmp_path / "ray").iterdir())
    assert names == ["toy-mts-seed2.json", "toy-mts-seed2.metrics.csv", "toy-mts-seed2.pt", "train-sweep.json"]
    a, b = (load_checkpoint(tmp_path / d / "toy-mts-seed2.pt") for d in ("local", "ray"))
    for la, lb in zip(a.layers, b.layers):
        assert np.array_equal(la.weight_hh.numpy(), lb.weight_hh.numpy())
        assert np.array_equal(la.bias_ih.numpy(), lb.bias_ih.numpy())
    ma, mb = (pd.read_csv(tmp_path / d / "toy-mts-seed2.metrics.csv") for d in ("local", "ray"))
    pd.testing.assert_frame_equal(ma.drop(columns="seconds"), mb.drop(columns="seconds"))
    again = sweeps.train_sweep(str(corpus_dir), tmp_path / "ray", **kw)
    assert again.skipped == ["toy-mts-seed2"] and not again.trained


@pytest.mark.parametrize("args, needle", [
    (["--seeds", "3-1"], "cannot read seeds"),
    (["--seeds", "-1"], "cannot read seeds"),
    (["--seeds", "1-5000000000"], "seeds must be <= 4294967295"),
    (["--jobs", "0"], "jobs must be >= 1"),
    (["--executor", "dask"], "unknown executor 'dask'"),
    (["--address", "auto"], "address is for the ray executor"),
    (["--arch", "lstm"], "arch must be baseline, mts or both"),
    (["--profile", "huge"], "unknown profile 'huge'"),
    (["--bptt", "3"], "bptt must be >= 10"),
    (["--max-retries", "-1"], "max-retries must be >= 0"),
])
def test_train_sweep_options_are_checked_before_any_work(corpus_dir, tmp_path, args, needle):
    from helpers import run_cli_inprocess

    r = run_cli_inprocess("train-sweep", "--corpus", corpus_dir, "--out", tmp_path / "o", *args)
    # (the message names the option; whether as a flag or as the parameter is the CLI's choice)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr.replace("--", ""), r.stderr
    assert list(tmp_path.iterdir()) == []


def test_train_sweep_record_is_the_one_running_sweeps_were_started_with(corpus_dir, tmp_path):
    """A folder's train-sweep.json is compared with the options of a rerun: the options of the sweep
    started before the options protocol (runs/evidence-seeds: --seeds 4-7 --arch baseline,mts
    --profile small --epochs 10 --jobs 2 --threads 1) give the same record, so the rerun resumes it."""
    from timescale_probe.sweeps import TrainSweepOptions, _sweep_record

    opts = TrainSweepOptions(out=tmp_path / "s", corpus=str(corpus_dir), seeds="4-7", arch="baseline,mts",
                             profile="small", epochs=10, jobs=2, threads=1)
    assert opts.seed_list == [4, 5, 6, 7] and opts.archs == ["baseline", "mts"]
    rec = _sweep_record(opts.corpus, opts.out, opts.seed_list, opts.archs, opts.profile, opts.train_overrides(),
                        opts.mts_spec)
    assert rec == {"corpus": "toy", "profile": "small", "train_overrides": {"epochs": 10}, "mts_spec": None,
                   "archs": ["baseline", "mts"]}


# --------------------------------------------------------------------------- concurrent pipeline steps

def _toy_a(ctx):
    rng = np.random.default_rng(11)
    p = ctx.path("data", "a.npy")
    np.save(p, rng.normal(size=50))
    return {"file": "data/a.npy", "_files": ["data/a.npy"]}


def _toy_b(ctx):
    x = np.load(ctx.out / ctx.results["a"]["file"])
    p = ctx.path("b.txt")
    p.write_text(f"{x.sum():.17g}")
    return {"sum": float(x.sum()), "_files": ["b.txt"]}


def _toy_c(ctx):
    return {"c": 3, "_files": []}


def _toy_d(ctx):
    return {"b_plus_c": ctx.results["b"]["sum"] + ctx.results.get("c", {}).get("c", 0)}


def _toy_e(ctx):
    raise ValueError("step e breaks")


def _toy_report(ctx):
    from timescale_probe.pipeline import load_record

    seen = {n: (load_record(ctx.out, n) or {}).get("status") for n in "abcdef"}
    ctx.path("report.md").write_text(repr(sorted(seen.items())))
    return {"seen": seen, "_files": ["report.md"]}


def toy_steps(tag: str):
    from timescale_probe.pipeline import Step

    return [Step("a", "a", _toy_a, options={"tag": tag}), Step("c", "c", _toy_c),
            Step("b", "b", _toy_b, needs=("a",)), Step("d", "d", _toy_d, needs=("b",), after=("c",)),
            Step("e", "e", _toy_e), Step("f", "f", _toy_c, needs=("e",)), Step("report", "report", _toy_report)]


@pytest.mark.parametrize("kind", ["local2", "ray"])
def test_concurrent_steps_give_the_sequential_records(kind, ray_cluster, tmp_path):
    from timescale_probe.pipeline import run_pipeline

    def run(out, executor):
        kw = dict(executor=executor, rebuild=(toy_steps, ("x",)), on_driver=("report",)) if executor else {}
        return run_pipeline(toy_steps("x"), out, "smoke", **kw)

    seq = run(tmp_path / "seq", None)
    ex = LocalExecutor(jobs=2) if kind == "local2" else make_executor("ray")
    with ex:
        assert ex.concurrent
        con = run(tmp_path / "con", ex)
        again = run(tmp_path / "con", ex)  # rerun: finished steps come from the cache
    keys = ("status", "results", "files", "reason")
    assert {n: {k: r.get(k) for k in keys} for n, r in seq.items()} == \
           {n: {k: r.get(k) for k in keys} for n, r in con.items()}
    assert con["d"]["results"] == {"b_plus_c": seq["b"]["results"]["sum"] + 3}
    assert con["e"]["status"] == "failed" and con["f"]["status"] == "skipped"
    assert con["report"]["results"]["seen"] == {"a": "done", "b": "done", "c": "done", "d": "done", "e": "failed",
                                                "f": "skipped"}
    for f in ("data/a.npy", "b.txt", "report.md"):
        assert (tmp_path / "seq" / f).read_bytes() == (tmp_path / "con" / f).read_bytes()
    assert again["b"] == con["b"]  # same record: not rerun


def _without_timings(x):
    """A record's results without wall-clock fields (the only thing allowed to differ)."""
    if isinstance(x, dict):
        return {k: _without_timings(v) for k, v in x.items() if k not in ("wall_time_s", "seconds")}
    if isinstance(x, list):
        return [_without_timings(v) for v in x]
    return "nan" if isinstance(x, float) and x != x else x


@pytest.mark.slow
def test_reproduce_smoke_on_ray_gives_the_sequential_records(ray_cluster, tmp_path):
    """``tsprobe reproduce --profile smoke`` with its independent steps on the Ray cluster: every
    step record and every table equal the sequential run's (about 1 min each on 2 busy cores)."""
    from timescale_probe.checkpoints import load_checkpoint
    from timescale_probe.reproduce import ReproduceOptions, run_reproduce

    seq = run_reproduce(tmp_path / "seq", ReproduceOptions(profile="smoke"))
    with make_executor("ray") as ex:
        con = run_reproduce(tmp_path / "ray", ReproduceOptions(profile="smoke"), executor=ex)
    assert set(seq) == set(con)
    for name in seq:
        a, b = ({k: r[name].get(k) for k in ("status", "results", "files", "reason")} for r in (seq, con))
        assert _without_timings(a) == _without_timings(b), name
    tables = sorted(p.relative_to(tmp_path / "seq") for p in (tmp_path / "seq").rglob("*.csv")
                    if "dyck" not in p.parts[-2] and not p.name.endswith("metrics.csv"))
    assert len(tables) > 10
    for rel in tables:
        assert (tmp_path / "seq" / rel).read_bytes() == (tmp_path / "ray" / rel).read_bytes(), rel
    a, b = (load_checkpoint(tmp_path / d / "models" / "ptb-mts.pt") for d in ("seq", "ray"))
    assert all(np.array_equal(la.weight_hh.numpy(), lb.weight_hh.numpy()) for la, lb in zip(a.layers, b.layers))


def test_reproduce_cli_runs_steps_on_ray(ray_cluster, tmp_path, capsys):
    from timescale_probe.cli import main

    out = tmp_path / "repro"
    main(["reproduce", "--profile", "smoke", "--only", "corpora", "--executor", "ray", "--out", str(out)])
    text = " ".join(capsys.readouterr().out.split())
    assert "independent steps run at the same time: ray" in text
    rec = json.loads((out / ".steps" / "corpora.json").read_text())
    assert rec["status"] == "done" and rec["files"]
    for f in rec["files"]:  # the step ran on a worker; its outputs came back into --out
        assert (out / f).is_file(), f
    assert (out / "report.md").is_file()


def test_core_does_not_import_ray():
    import subprocess

    code = ("import sys, timescale_probe.cli, timescale_probe.executors, timescale_probe.sweeps, "
            "timescale_probe.pipeline, timescale_probe.dyck.runs; print('ray' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
