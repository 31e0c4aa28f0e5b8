"""Saving one trained run, and sweeps over seeds and architectures (parallel, resumable).

A run ``runs/<arch>-<seed>.pt`` has siblings ``.history.csv`` (per epoch), ``.run.json`` and,
written last and atomically, ``.test.csv`` (per test sequence; columns ``TEST_COLUMNS``): a run is
finished exactly when its ``.test.csv`` exists, so an interrupted sweep resumes where it stopped.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..checkpoints import save_checkpoint
from ..errors import InputError, OptionError, TsprobeError
from ..fileio import atomic_write_text, write_run_json, write_table
from ..sweeps import parse_seeds  # noqa: F401 - its home before the sweeps shared it
from .analysis import TEST_COLUMNS, results_table
from .config import ARCHS, DyckTrainConfig
from .data import load_dataset
from .train import TrainedDyck, model_to_stack, train_dyck

SWEEP_FILE = "sweep.json"


def run_paths(checkpoint: str | Path) -> dict[str, Path]:
    """Paths of a run's files given its checkpoint path (``x.pt`` -> ``x.test.csv`` ...)."""
    p = Path(checkpoint)
    stem = p.name[:-3] if p.name.endswith(".pt") else p.name
    return {"checkpoint": p, "test": p.with_name(f"{stem}.test.csv"), "history": p.with_name(f"{stem}.history.csv"),
            "run": p.with_name(f"{stem}.run.json")}


def save_run(trained: TrainedDyck, checkpoint: str | Path, *, command: str = "tsprobe dyck train",
             profile: str | None = None, data_dir: str | Path | None = None, data_label: str | None = None,
             device: str = "cpu") -> dict[str, Path]:
    """Write checkpoint, history, run.json and (last) the test table of a trained run.

    ``data_label``: how to name the data folder in the card and run.json when ``data_dir`` is a
    worker's copy of it (the data files' hashes are in the card either way)."""
    paths = run_paths(checkpoint)
    cfg = trained.config
    meta = trained.data_meta
    card = {
        "command": command, "task": "dyck", "arch": cfg.arch, "seed": cfg.seed, "profile": profile,
        "config": asdict(cfg), "epochs_run": int(len(trained.history)), "stopped": trained.stopped,
        "test_accuracy": trained.test_accuracy, "seconds": round(trained.seconds, 2), "device": device,
        "data": {"dir": data_label or (str(data_dir) if data_dir else None), "sha256": meta.get("sha256"), "n": meta.get("n"),
                 "max_len": meta.get("max_len")},
        "mts": cfg.spec().describe(),
    }
    save_checkpoint(paths["checkpoint"], model_to_stack(trained.model, cfg, meta), card)
    write_table(trained.history, paths["history"])
    tail = trained.test[trained.test["max_span"] > 75]["correct"]
    inputs = [Path(data_dir) / f"{s}.txt" for s in ("train", "valid", "test")] if data_dir and not data_label else []
    write_run_json(paths["run"].parent, command, {**asdict(cfg), "profile": profile, "device": device,
                                                  "data": data_label or (str(data_dir) if data_dir else None),
                                                  "data_sha256": meta.get("sha256")},
                   seed=cfg.seed, inputs=inputs,
                   results={"test_accuracy": trained.test_accuracy,
                            "test_accuracy_max_span_gt75": float(tail.mean()) if len(tail) else None,
                            "epochs_run": int(len(trained.history)), "stopped": trained.stopped,
                            "seconds": trained.seconds},
                   filename=paths["run"].name)
    test = trained.test.copy()
    test.insert(0, "seed", cfg.seed)
    test.insert(0, "arch", cfg.arch)
    write_table(test[TEST_COLUMNS], paths["test"])
    return paths


def parse_archs(text: str) -> list[str]:
    archs = [a.strip() for a in str(text).split(",") if a.strip()]
    bad = [a for a in archs if a not in ARCHS]
    if bad or not archs:
        raise OptionError(f"unknown arch {bad or text!r}: use baseline, mts or baseline,mts", param="arch")
    return list(dict.fromkeys(archs))


def _sweep_task(workdir: Path, data_files: dict[str, bytes], cfg: dict[str, Any], device: str,
                threads: int | None, profile: str | None, data_label: str) -> dict[str, Any]:
    """One sweep run as an executor task (see :mod:`timescale_probe.executors`): the data folder
    travels as bytes, is written into ``workdir`` and loaded there; the run's files come back."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, blob in data_files.items():
        (data_dir / name).write_bytes(blob)
    data = load_dataset(data_dir)
    trained = train_dyck(data, DyckTrainConfig(**cfg), device)
    stem = f"{cfg['arch']}-{cfg['seed']}"
    paths = save_run(trained, workdir / f"{stem}.pt", command="tsprobe dyck sweep", profile=profile,
                     data_dir=data_dir, data_label=data_label, device=device)
    files = [paths[k].name for k in ("checkpoint", "history", "run", "test")]  # test table last: the finished mark
    return {"arch": cfg["arch"], "seed": cfg["seed"], "accuracy": trained.test_accuracy,
            "seconds": trained.seconds, "epochs": len(trained.history), "stopped": trained.stopped, "_files": files}


def collect_tests(runs_dir: str | Path) -> pd.DataFrame:
    """Every finished run's test table in ``runs_dir`` (``*.test.csv``), concatenated."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise InputError(f"runs folder not found: {runs_dir}")
    frames = []
    for p in sorted(runs_dir.glob("*.test.csv")):
        try:
            df = pd.read_csv(p)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise InputError(f"cannot read run results {p}: {exc}") from None
        missing = [c for c in TEST_COLUMNS if c not in df.columns]
        if missing:
            raise InputError(f"{p} is not a Dyck run result (missing columns {missing})")
        frames.append(df[TEST_COLUMNS])
    if not frames:
        raise InputError(f"no finished Dyck runs (*.test.csv) in {runs_dir}: run 'tsprobe dyck sweep' first")
    return pd.concat(frames, ignore_index=True)


def sweep_max_len(runs_dir: str | Path, default: int = 200) -> int:
    """The data's max length recorded by a sweep (``data-meta.json``), else ``default``."""
    p = Path(runs_dir) / "data-meta.json"
    if p.is_file():
        try:
            return int(json.loads(p.read_text(encoding="utf-8"))["max_len"])
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            pass
    return default


def validate_sweep(data_dir: str | Path, out: str | Path, archs: list[str], seeds: list[int], cfg: DyckTrainConfig,
                   profile: str | None = None):
    """Check everything a sweep needs before any work or write: the data folder, the options and
    that ``out`` does not hold a sweep with other options. Returns ``(dataset, sweep record)``."""
    from ..fileio import check_out_dir

    if not archs:
        raise OptionError("archs must name at least one architecture", param="archs")
    if not seeds:
        raise OptionError("seeds must name at least one seed", param="seeds")
    out = check_out_dir(out)
    data = load_dataset(data_dir)
    base = {k: v for k, v in asdict(cfg).items() if k not in ("arch", "seed")}
    record = {"profile": profile, "config": base, "data_sha256": data.meta.get("sha256")}
    sweep_path = out / SWEEP_FILE
    if sweep_path.is_file():
        try:
            old = json.loads(sweep_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            old = {}
        if not isinstance(old, dict) or {k: old.get(k) for k in record} != json.loads(json.dumps(record)):
            raise OptionError(
                f"out {out} already holds a sweep with other options or data ({sweep_path}); use another folder or "
                "remove it", param="out")
    return data, record


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did: the tidy results of every finished run in ``out``, the runs it
    trained now, the ones it skipped (finished before), and the failures (with their logs)."""

    results: pd.DataFrame
    trained: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, int]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    retried: int = 0


def run_sweep(data_dir: str | Path, out: str | Path, archs: list[str], seeds: list[int], cfg: DyckTrainConfig,
              **kw: Any) -> pd.DataFrame:
    """:func:`sweep`, returning the results table; raises :class:`~timescale_probe.errors.TsprobeError`
    naming the failed runs (and their logs) when any failed (after the others finished)."""
    outcome = sweep(data_dir, out, archs, seeds, cfg, **kw)
    if outcome.failed:
        raise SweepError(outcome.failed)
    return outcome.results


class SweepError(TsprobeError):
    """Some runs of a sweep failed for good (the others finished and were written)."""

    def __init__(self, failed: list[dict[str, Any]]) -> None:
        self.failed = failed
        first = failed[0]
        names = ", ".join(f"{f['arch']} seed {f['seed']}" for f in failed)
        super().__init__(f"{len(failed)} run(s) failed ({names}); "
                         f"first: {first['error']} (log: {first['log']})")

    def __reduce__(self):
        return (SweepError, (self.failed,))


def sweep(data_dir: str | Path, out: str | Path, archs: list[str], seeds: list[int], cfg: DyckTrainConfig, *,
          profile: str | None = None, jobs: int = 1, device: str = "cpu", threads: int | None = 1,
          executor: Any = None, on_start: Callable[[int, int], None] | None = None,
          on_done: Callable[[dict[str, Any]], None] | None = None, progress: Any = False) -> SweepOutcome:
    """Train every (arch, seed) not yet finished in ``out``; return a :class:`SweepOutcome` whose
    ``results`` is the tidy table of all finished runs there (also written to ``out/results.csv``).

    Runs are submitted in pairs (baseline-1, mts-1, baseline-2, ...) so a partial sweep stays
    paired. Where they run: ``executor`` (a :class:`~timescale_probe.executors.Executor`), else a
    local one with ``jobs`` processes (one at a time on a GPU). Each run's files come back to the
    driver and are written to ``out`` (no shared filesystem needed); the test table is written
    last, so a run is finished exactly when its ``.test.csv`` exists and a rerun skips it. A run
    that fails is reported in ``failed`` (with its seed, error and log, also written to
    ``out/<arch>-<seed>.log``) while the others finish. ``out/sweep.json`` records the options; a
    folder holding a sweep with other options is refused (mixing them would be silently wrong).
    ``on_done(info)`` is called per finished or failed run (``info['error']`` set when failed);
    ``progress``: one bar over runs (see :mod:`timescale_probe.progress`).
    """
    from ..executors import Task, collect_results, make_executor

    data_dir, out = Path(data_dir), Path(out)
    data, record = validate_sweep(data_dir, out, archs, seeds, cfg, profile)
    owned = executor is None
    if owned:
        jobs = 1 if device.startswith("cuda") else max(1, int(jobs))
        executor = make_executor("local", jobs=jobs)
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / SWEEP_FILE, json.dumps(record, indent=1) + "\n")
        atomic_write_text(out / "data-meta.json", json.dumps(data.meta, indent=1) + "\n")
        if (data_dir / "spans.csv").is_file():
            shutil.copyfile(data_dir / "spans.csv", out / "spans.csv")
        pairs = [(a, s) for s in seeds for a in archs]
        todo = [(a, s) for a, s in pairs if not run_paths(out / f"{a}-{s}.pt")["test"].exists()]
        outcome = SweepOutcome(results=pd.DataFrame(), skipped=[p for p in pairs if p not in todo])
        if on_start is not None:
            on_start(len(todo), len(pairs))
        data_files = {f"{s}.txt": (data_dir / f"{s}.txt").read_bytes() for s in ("train", "valid", "test")}
        data_files["meta.json"] = (data_dir / "meta.json").read_bytes()
        tasks = [Task(key=f"{a}-{s}", fn=_sweep_task,
                      args=(data_files, asdict(cfg) | {"arch": a, "seed": s}, device, threads, profile, str(data_dir)),
                      labels={"arch": a, "seed": s}) for a, s in todo]
        collect_results(executor, tasks, out, outcome, label="runs", progress=progress,
                        failed_info=lambda res: dict(res.task.labels), on_done=on_done)
    finally:
        if owned:
            executor.close()
    try:
        tests = collect_tests(out)
    except InputError:
        tests = pd.DataFrame(columns=TEST_COLUMNS)
    outcome.results = results_table(tests, max_len=data.grammar.max_len)
    write_table(outcome.results, out / "results.csv")
    return outcome
