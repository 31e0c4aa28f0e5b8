"""Saving one trained run, and sweeps over seeds and architectures (parallel, resumable).

A run ``runs/<arch>-<seed>.pt`` has siblings ``.history.csv`` (per epoch), ``.run.json`` and,
written last and atomically, ``.test.csv`` (per test sequence; columns ``TEST_COLUMNS``): a run is
finished exactly when its ``.test.csv`` exists, so an interrupted sweep resumes where it stopped.
"""
from __future__ import annotations

import json
import re
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..checkpoints import save_checkpoint
from ..errors import InputError, OptionError
from ..fileio import atomic_write_text, write_run_json, write_table
from .analysis import TEST_COLUMNS, results_table
from .data import load_dataset
from .train import ARCHS, TrainConfig, TrainedDyck, model_to_stack, train_dyck

SWEEP_FILE = "sweep.json"


def run_paths(checkpoint: str | Path) -> dict[str, Path]:
    """Paths of a run's files given its checkpoint path (``x.pt`` -> ``x.test.csv`` ...)."""
    p = Path(checkpoint)
    stem = p.name[:-3] if p.name.endswith(".pt") else p.name
    return {"checkpoint": p, "test": p.with_name(f"{stem}.test.csv"), "history": p.with_name(f"{stem}.history.csv"),
            "run": p.with_name(f"{stem}.run.json")}


def save_run(trained: TrainedDyck, checkpoint: str | Path, *, command: str = "tsprobe dyck train",
             profile: str | None = None, data_dir: str | Path | None = None, device: str = "cpu") -> dict[str, Path]:
    """Write checkpoint, history, run.json and (last) the test table of a trained run."""
    paths = run_paths(checkpoint)
    cfg = trained.config
    meta = trained.data_meta
    card = {
        "command": command, "task": "dyck", "arch": cfg.arch, "seed": cfg.seed, "profile": profile,
        "config": asdict(cfg), "epochs_run": int(len(trained.history)), "stopped": trained.stopped,
        "test_accuracy": trained.test_accuracy, "seconds": round(trained.seconds, 2), "device": device,
        "data": {"dir": str(data_dir) if data_dir else None, "sha256": meta.get("sha256"), "n": meta.get("n"),
                 "max_len": meta.get("max_len")},
        "mts": cfg.spec().describe(),
    }
    save_checkpoint(paths["checkpoint"], model_to_stack(trained.model, cfg, meta), card)
    write_table(trained.history, paths["history"])
    tail = trained.test[trained.test["max_span"] > 75]["correct"]
    write_run_json(paths["run"].parent, command, {**asdict(cfg), "profile": profile, "device": device},
                   seed=cfg.seed, inputs=[Path(data_dir) / f"{s}.txt" for s in ("train", "valid", "test")] if data_dir else [],
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


def parse_seeds(text: str) -> list[int]:
    """``"1-20"``, ``"1,3,5"``, ``"1-5,10"`` -> sorted unique seeds."""
    seeds: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise OptionError(f"cannot read seeds '{text}': use e.g. 1-20 or 1,2,5")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def parse_archs(text: str) -> list[str]:
    archs = [a.strip() for a in str(text).split(",") if a.strip()]
    bad = [a for a in archs if a not in ARCHS]
    if bad or not archs:
        raise OptionError(f"unknown --arch {bad or text!r}: use baseline, mts or baseline,mts")
    return list(dict.fromkeys(archs))


def _train_one(data_dir: str, cfg: dict[str, Any], checkpoint: str, device: str, threads: int | None,
               profile: str | None) -> dict[str, Any]:
    """One sweep job (a top-level function so that worker processes can run it)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    data = load_dataset(data_dir)
    trained = train_dyck(data, TrainConfig(**cfg), device)
    save_run(trained, checkpoint, command="tsprobe dyck sweep", profile=profile, data_dir=data_dir, device=device)
    return {"arch": cfg["arch"], "seed": cfg["seed"], "accuracy": trained.test_accuracy,
            "seconds": trained.seconds, "epochs": len(trained.history), "stopped": trained.stopped}


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


def run_sweep(data_dir: str | Path, out: str | Path, archs: list[str], seeds: list[int], cfg: TrainConfig, *,
              profile: str | None = None, jobs: int = 1, device: str = "cpu", threads: int | None = 1,
              on_start: Callable[[int, int], None] | None = None,
              on_done: Callable[[dict[str, Any]], None] | None = None,
              progress: Callable[[int, int, dict], None] | None = None) -> pd.DataFrame:
    """Train every (arch, seed) not yet finished in ``out``; return the tidy results table of all
    finished runs there (also written to ``out/results.csv``).

    Runs go in pairs (baseline-1, mts-1, baseline-2, ...) so a partial sweep stays paired. ``jobs``
    worker processes on CPU; one after another on a GPU. ``out/sweep.json`` records the options; a
    folder holding a sweep with other options is refused (mixing them would be silently wrong).
    """
    data_dir, out = Path(data_dir), Path(out)
    data = load_dataset(data_dir)  # validate before anything is started
    out.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in asdict(cfg).items() if k not in ("arch", "seed")}
    record = {"profile": profile, "config": base, "data_sha256": data.meta.get("sha256")}
    sweep_path = out / SWEEP_FILE
    if sweep_path.is_file():
        old = json.loads(sweep_path.read_text(encoding="utf-8"))
        if {k: old.get(k) for k in record} != json.loads(json.dumps(record)):
            raise OptionError(
                f"{out} already holds a sweep with other options or data ({sweep_path}); use another --out or remove it"
            )
    atomic_write_text(sweep_path, json.dumps(record, indent=1) + "\n")
    atomic_write_text(out / "data-meta.json", json.dumps(data.meta, indent=1) + "\n")
    if (data_dir / "spans.csv").is_file():
        shutil.copyfile(data_dir / "spans.csv", out / "spans.csv")
    todo = [(a, s) for s in seeds for a in archs if not run_paths(out / f"{a}-{s}.pt")["test"].exists()]
    if on_start is not None:
        on_start(len(todo), len(seeds) * len(archs))
    jobs = 1 if device.startswith("cuda") else max(1, int(jobs))
    args = [(str(data_dir), asdict(cfg) | {"arch": a, "seed": s}, str(out / f"{a}-{s}.pt"), device, threads, profile)
            for a, s in todo]
    if jobs == 1:
        import torch

        prev_threads = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            for d, c, ckpt, dev, _, prof in args:
                trained = train_dyck(data, TrainConfig(**c), dev, progress=progress)
                save_run(trained, ckpt, command="tsprobe dyck sweep", profile=prof, data_dir=d, device=dev)
                if on_done is not None:
                    on_done({"arch": c["arch"], "seed": c["seed"], "accuracy": trained.test_accuracy,
                             "seconds": trained.seconds, "epochs": len(trained.history), "stopped": trained.stopped})
        finally:
            torch.set_num_threads(prev_threads)
    elif args:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_train_one, *a) for a in args]
            for f in as_completed(futures):
                info = f.result()
                if on_done is not None:
                    on_done(info)
    tests = collect_tests(out)
    results = results_table(tests, max_len=data.grammar.max_len)
    write_table(results, out / "results.csv")
    return results
