"""Multi-seed language-model training: every (arch, seed) of a sweep as one executor task.

    from timescale_probe.sweeps import train_sweep
    outcome = train_sweep("ptb", "seeds/", seeds=[1, 2, 3], archs=["baseline", "mts"], profile="small")

Run ``<corpus>-<arch>-seed<N>`` writes ``DIR/<corpus>-<arch>-seed<N>.pt`` (best-validation
checkpoint), ``.json`` (model card) and ``.metrics.csv`` (per-epoch curve), the names the
per-seed result folders of :mod:`timescale_probe.seeds` use. The tasks run wherever the executor
puts them (:mod:`timescale_probe.executors`); a corpus folder or file travels to the worker as
bytes (``ptb`` is built into tsprobe), and the run's files travel back and are written into
``DIR``, the card last: a run is finished exactly when its card is there, so a rerun skips it.
A worker that dies is retried and resumes from its ``.resume.pt`` (kept in the task's work
folder), giving the same weights as an uninterrupted run. ``DIR/train-sweep.json`` records the
options; a folder holding a sweep with other options is refused.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .analysis import Options, Result, option
from .analysis.options import SEED_MAX, device_option, threads_option
from .errors import InputError, OptionError
from .executors import ExecutorOptions, Task, collect_results, make_executor
from .fileio import atomic_write_text, check_out_dir

SWEEP_FILE = "train-sweep.json"
#: training options a sweep passes on (``training.train_language_model``'s ``train_overrides``)
TRAIN_OPTIONS = ("epochs", "optimizer", "lr", "batch_size", "bptt", "patience", "min_epochs")


def run_name(corpus: str, arch: str, seed: int) -> str:
    return f"{corpus}-{arch}-seed{seed}"


def _corpus_payload(spec: str) -> tuple[str, dict[str, bytes] | None]:
    """``(name, files)``: what a worker needs to load ``spec`` without this machine's disk."""
    p = Path(spec).expanduser()
    if p.is_dir():
        return p.name, {f.name: f.read_bytes() for f in sorted(p.iterdir()) if f.is_file()}
    if p.is_file():
        return p.name, {p.name: p.read_bytes()}
    return spec, None


def _train_task(workdir: Path, corpus: str, corpus_files: dict[str, bytes] | None, corpus_is_dir: bool, arch: str,
                seed: int, profile: str, overrides: dict[str, Any], mts_spec: str | None, device: str,
                threads: int | None, stem: str) -> dict[str, Any]:
    """One run as an executor task (a module-level function, so every executor can ship it)."""
    import torch

    from .corpora import load_corpus
    from .training import companion_paths, train_language_model

    if threads:
        torch.set_num_threads(int(threads))
    spec = corpus
    if corpus_files is not None:
        root = workdir / "corpus" / (corpus if corpus_is_dir else "")
        root.mkdir(parents=True, exist_ok=True)
        for name, blob in corpus_files.items():
            (root / name).write_bytes(blob)
        spec = str(root if corpus_is_dir else root / corpus)
    c = load_corpus(spec)
    out = workdir / f"{stem}.pt"
    paths = companion_paths(out)
    resume = paths["resume"].is_file()  # left by a killed attempt of this task: continue it
    res = train_language_model(c, out, arch=arch, profile=profile, mts_spec=mts_spec,
                               train_overrides=dict(overrides, seed=seed), device=device, resume=resume,
                               command=f"tsprobe train-sweep ({stem})")
    card = res.card
    return {"arch": arch, "seed": seed, "run": stem, "resumed": resume, "epochs": card.get("epochs"),
            "best_valid_ppl": card.get("best_valid_ppl"), "test_ppl": card.get("test_ppl"),
            "_files": [out.name, paths["metrics"].name, paths["card"].name]}  # the card last: the finished mark


@dataclass
class TrainSweepOutcome:
    runs: list[str]
    trained: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    retried: int = 0


def _archs(archs) -> list[str]:
    from .training import ARCHS

    archs = [a.strip() for a in (archs.split(",") if isinstance(archs, str) else archs) if str(a).strip()]
    bad = [a for a in archs if a not in ARCHS]
    if bad or not archs:
        raise OptionError(f"arch must be baseline, mts or both, got {bad or archs}", param="arch")
    return list(dict.fromkeys(archs))


def parse_seeds(text: str) -> list[int]:
    """``"1-20"``, ``"1,3,5"``, ``"1-5,10"`` -> sorted unique seeds (each within ``0..SEED_MAX``)."""
    seeds: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise OptionError(f"cannot read seeds '{text}': use e.g. 1-20 or 1,2,5", param="seeds")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi > SEED_MAX:
            raise OptionError(f"seeds must be <= {SEED_MAX} (got {hi})", param="seeds")
        if hi - lo >= 100_000:
            raise OptionError(f"seeds '{text}' names {hi - lo + 1:,} seeds; give at most 100,000", param="seeds")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def _seeds(text: str) -> str:
    parse_seeds(text)
    return text


@dataclass(frozen=True, kw_only=True)
class _SweepFields(Options):
    out: Path = option(help="Folder of the runs: <corpus>-<arch>-seed<N>.pt, .json (card), .metrics.csv; "
                       "train-sweep.json records the options.", check=check_out_dir, short="-o", metavar="DIR")
    corpus: str = option("ptb", "ptb (built in), a folder with train/valid/test.txt, or a text file.")
    seeds: str = option("1-3", "Seeds, e.g. 1-3 or 1,2,5 (>= 3 per arm for a claim about training).", check=_seeds)
    arch: str = option("baseline,mts", "Architectures, comma separated: baseline, mts.", check=lambda a: ",".join(_archs(a)))
    profile: str = option("small", "Sizes and budget (see 'tsprobe train --help'): paper, small or tiny.")
    mts_spec: Optional[str] = option(None, "MTS spec for the mts runs (default paper-lm).")
    epochs: Optional[int] = option(None, "Epoch budget (default: the profile's).", ge=1)
    optimizer: Optional[str] = option(None, "sgd (AWD NT-ASGD) or adam (default: sgd).", choices=("sgd", "adam"))
    lr: Optional[float] = option(None, "Learning rate (default: the profile's for sgd, 2e-3 for adam).", gt=0)
    batch_size: Optional[int] = option(None, "Training batch size (default: the profile's).", ge=1)
    bptt: Optional[int] = option(None, "Mean sequence length (default: the profile's).", ge=10)
    patience: Optional[int] = option(None, "Stop a run after this many epochs without a better validation loss.", ge=1)
    min_epochs: Optional[int] = option(None, "Never stop a run early before this epoch.", ge=0)
    threads: Optional[int] = threads_option(help="torch CPU threads per run (default: the one rule, "
                                            "timescale_probe.fileio.default_threads, shared by --jobs runs).")
    device: str = device_option()


@dataclass(frozen=True, kw_only=True)
class TrainSweepOptions(ExecutorOptions, _SweepFields):
    """Options of ``tsprobe train-sweep`` (the executor's after the sweep's own), checked before any work."""

    def check(self) -> None:
        super().check()
        from .training import PROFILES, default_mts_spec, train_config

        PROFILES.check(self.profile)
        train_config(self.profile, "", self.train_overrides())
        for a in self.archs:
            default_mts_spec(a, self.mts_spec)

    @property
    def archs(self) -> list[str]:
        return self.arch.split(",")

    @property
    def seed_list(self) -> list[int]:
        return parse_seeds(self.seeds)

    def train_overrides(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in TRAIN_OPTIONS if getattr(self, k) is not None}


def _sweep_record(corpus: str, out: str | Path, seeds: list[int], archs, profile: str,
                  train_overrides: dict[str, Any] | None, mts_spec: str | None) -> dict[str, Any]:
    """Check what :func:`train_sweep` is given and the folder before any work or write (the library
    entry: the command's options are checked by :class:`TrainSweepOptions`); returns the sweep record."""
    from .corpora import load_corpus
    from .training import default_mts_spec, train_config

    archs = _archs(archs)
    if not seeds or any(int(s) < 0 for s in seeds):
        raise OptionError(f"seeds must be one or more integers >= 0, got {seeds}", param="seeds")
    overrides = {k: v for k, v in (train_overrides or {}).items() if v is not None}
    unknown = set(overrides) - set(TRAIN_OPTIONS)
    if unknown:
        raise OptionError(f"train_overrides has unknown options {sorted(unknown)}", param="train_overrides")
    out = check_out_dir(out)
    c = load_corpus(corpus)
    train_config(profile, c.name, overrides)  # raises OptionError naming the bad option
    for a in archs:
        default_mts_spec(a, mts_spec)
    record = {"corpus": c.name, "profile": profile, "train_overrides": overrides, "mts_spec": mts_spec,
              "archs": archs}
    path = out / SWEEP_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(f"{path} is not valid JSON: remove it or use another out") from None
        same = {k: old.get(k) for k in record if k != "archs"} == {k: v for k, v in record.items() if k != "archs"}
        if not same:
            raise OptionError(f"{out} already holds a train sweep with other options ({path}); use another out "
                              "or remove it", param="out")
    return record


def train_sweep(corpus: str, out: str | Path, *, seeds: list[int], archs=("baseline", "mts"), profile: str = "small",
                train_overrides: dict[str, Any] | None = None, mts_spec: str | None = None, device: str = "cpu",
                threads: int | None = 1, executor=None, jobs: int = 1, progress: Any = False,
                on_done: Callable[[dict[str, Any]], None] | None = None) -> TrainSweepOutcome:
    """Train every (arch, seed) not yet finished in ``out`` (see the module docstring)."""
    record = _sweep_record(corpus, out, seeds, archs, profile, train_overrides, mts_spec)
    out = Path(out)
    archs = record["archs"]
    name, files = _corpus_payload(corpus)
    is_dir = Path(corpus).expanduser().is_dir()
    runs = [(a, int(s), run_name(record["corpus"], a, int(s))) for s in seeds for a in archs]
    outcome = TrainSweepOutcome(runs=[r for _, _, r in runs])
    todo = []
    for a, s, stem in runs:
        if (out / f"{stem}.json").is_file() and (out / f"{stem}.pt").is_file():
            outcome.skipped.append(stem)
        else:
            todo.append(Task(key=stem, fn=_train_task, labels={"arch": a, "seed": s},
                             args=(name, files, is_dir, a, s, profile, record["train_overrides"], mts_spec, device,
                                   threads, stem)))
    owned = executor is None
    if owned:
        executor = make_executor("local", jobs=1 if str(device).startswith("cuda") else jobs)
    try:
        out.mkdir(parents=True, exist_ok=True)
        old = {}
        if (out / SWEEP_FILE).is_file():
            old = json.loads((out / SWEEP_FILE).read_text(encoding="utf-8"))
        record["archs"] = list(dict.fromkeys(list(old.get("archs", [])) + archs))
        atomic_write_text(out / SWEEP_FILE, json.dumps(record, indent=1) + "\n")
        collect_results(executor, todo, out, outcome, label="training runs", progress=progress,
                        failed_info=lambda res: dict(res.task.labels, run=res.task.key), on_done=on_done)
    finally:
        if owned:
            executor.close()
    return outcome


@dataclass(kw_only=True)
class TrainSweepResult(Result):
    """A finished ``train-sweep`` call: ``outcome`` (runs trained, skipped, failed). Every run's
    files and ``train-sweep.json`` are written as the runs finish (so a sweep resumes); :meth:`save`
    has nothing left to write."""

    command = "train-sweep"

    outcome: TrainSweepOutcome

    def __post_init__(self) -> None:
        o = self.outcome
        self.summary = {"runs": list(o.runs), "trained": [t.get("run") for t in o.trained], "skipped": list(o.skipped),
                        "failed": [f.get("run") for f in o.failed], "retried": o.retried}

    def save(self, out: str | Path | None = None, *, figures: bool = True) -> Path:
        return Path(self.options.out if out is None else out)

    def written_files(self, figures: bool = True) -> list[str]:
        return [SWEEP_FILE] + [f"{r}{ext}" for r in self.outcome.runs for ext in (".pt", ".metrics.csv", ".json")]


def run_train_sweep(opts: TrainSweepOptions, *, progress: Any = False,
                    on_done: Callable[[dict[str, Any]], None] | None = None,
                    on_start: Callable[[Any], None] | None = None) -> TrainSweepResult:
    """:func:`train_sweep` as ``opts`` say, on the executor they name (``on_start(executor)`` is
    called once it is up). The thread count per run is the one default rule shared by the runs at
    a time when ``opts.threads`` is None."""
    from .fileio import default_threads

    _sweep_record(opts.corpus, opts.out, opts.seed_list, opts.archs, opts.profile, opts.train_overrides(),
                  opts.mts_spec)  # the corpus and the folder, before the executor starts
    device = opts.task_device(opts.device)
    jobs = 1 if device.type == "cuda" and opts.executor == "local" else opts.jobs
    threads = opts.threads if opts.threads is not None else default_threads(jobs)
    with opts.make(jobs=jobs) as ex:
        if on_start is not None:
            on_start(ex)
        outcome = train_sweep(opts.corpus, opts.out, seeds=opts.seed_list, archs=opts.archs, profile=opts.profile,
                              train_overrides=opts.train_overrides(), mts_spec=opts.mts_spec, device=str(device),
                              threads=threads, executor=ex, progress=progress, on_done=on_done)
    return TrainSweepResult(options=opts, outcome=outcome)
