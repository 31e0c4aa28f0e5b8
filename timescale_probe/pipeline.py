"""A small cached, resumable step runner (used by ``tsprobe reproduce``).

A step is finished when ``<out>/.steps/<name>.json`` exists, records the same options hash, and all
the files the step declared still exist. A finished step is not recomputed; ``force`` redoes it (and
every step that depends on it). Each step returns a JSON-able dict of results, stored in its record,
which the report reads.

Reporting (issue 10, :mod:`timescale_probe.progress`): ``progress=`` counts the steps (started with
the number of steps to settle, advanced as each is cached, run or skipped); every event, a step's
status (``running``, ``cached``, ``done``, ``skipped``, ``failed``) or a step's message
(``progress``, from ``ctx.progress(text)``), is logged at INFO to ``timescale_probe.pipeline``
with the record attributes ``step`` and ``status``; :func:`pipeline_events` hands them to a
callable ``f(step, status, message)`` (the older ``on_event=`` argument still works too).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import OptionError, TsprobeError
from .fileio import atomic_write_text, jsonable
from .progress import ProgressLike, as_progress

#: Step events (see the module docstring), a child of ``logging.getLogger("timescale_probe")``.
LOG = logging.getLogger("timescale_probe.pipeline")


def log_event(step: str, status: str, message: str) -> None:
    """Log one step event (see the module docstring)."""
    LOG.info("%s", message, extra={"step": step, "status": status})


class _EventHandler(logging.Handler):
    def __init__(self, fn: Callable[[str, str, str], Any]) -> None:
        super().__init__(logging.INFO)
        self._fn = fn

    def emit(self, record: logging.LogRecord) -> None:
        step = getattr(record, "step", None)
        if step is None:
            return
        try:
            self._fn(step, getattr(record, "status", ""), record.getMessage())
        except Exception:  # noqa: BLE001 - logging must never break the pipeline
            self.handleError(record)


@contextlib.contextmanager
def pipeline_events(fn: Callable[[str, str, str], Any]) -> Iterator[None]:
    """Context manager: pass each step event logged while inside to ``fn(step, status, message)``."""
    handler = _EventHandler(fn)
    old_level = LOG.level
    if LOG.getEffectiveLevel() > logging.INFO:
        LOG.setLevel(logging.INFO)
    LOG.addHandler(handler)
    try:
        yield
    finally:
        LOG.removeHandler(handler)
        LOG.setLevel(old_level)


class StepSkipped(Exception):
    """Raised by a step that cannot run here (e.g. a corpus the user does not have); the reason is reported."""


@dataclass
class Step:
    name: str
    title: str
    run: Callable[["StepContext"], dict[str, Any]]
    needs: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    #: steps whose results this one reads when they exist, but can do without (ordering only:
    #: unlike ``needs``, their failure does not skip this step)
    after: tuple[str, ...] = ()


@dataclass
class StepContext:
    out: Path
    profile: str
    options: dict[str, Any]
    results: dict[str, dict[str, Any]]  # results of the steps already run (by name)
    #: ``progress(text)``: what the step is doing now; by default logged as the step's ``progress`` event
    progress: Callable[[str], None] | None = None
    step: str = ""

    def __post_init__(self) -> None:
        if self.progress is None:
            self.progress = lambda msg: log_event(self.step, "progress", msg)

    def relative(self, p: str | Path) -> str:
        """``p`` relative to the output folder when it lies inside it, else as given."""
        try:
            return str(Path(p).resolve().relative_to(self.out.resolve()))
        except ValueError:
            return str(p)

    def path(self, *parts: str) -> Path:
        p = self.out.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def _options_hash(profile: str, options: dict[str, Any]) -> str:
    blob = json.dumps({"profile": profile, "options": jsonable(options)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _record_path(out: Path, name: str) -> Path:
    return out / ".steps" / f"{name}.json"


def load_record(out: Path, name: str) -> dict[str, Any] | None:
    p = _record_path(out, name)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _is_fresh(out: Path, step: Step, profile: str) -> dict[str, Any] | None:
    rec = load_record(out, step.name)
    if rec is None or rec.get("hash") != _options_hash(profile, step.options):
        return None
    if rec.get("status") not in ("done", "skipped"):
        return None
    if any(not (out / f).exists() for f in rec.get("files", [])):
        return None
    return rec


def run_pipeline(
    steps: list[Step],
    out: Path,
    profile: str,
    *,
    force: set[str] | None = None,
    only: set[str] | None = None,
    on_event: Callable[[str, str, str], None] | None = None,
    progress: ProgressLike = None,
    executor: Any = None,
    rebuild: tuple[Callable[..., list[Step]], tuple] | None = None,
    on_driver: Iterable[str] = (),
    threads: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Run ``steps`` in order (each after its ``needs``); return every step's record by name.

    ``force``: step names to redo (their dependants are redone too). ``only``: run just these steps
    and what they need. ``progress`` counts the settled steps; the step events are logged (module
docstring) and also passed to ``on_event(step, status, message)`` when given.

    ``executor`` (:mod:`timescale_probe.executors`; one with ``concurrent`` true) runs independent
    steps at the same time: a step starts once its ``needs`` and ``after`` are settled (a step that
    reads another's results must name it in one of them), on a worker that rebuilds the steps with
    ``rebuild = (factory, args)`` (``factory(*args)`` returns the same list) and receives the files
    of the steps it depends on; its outputs come back into ``out``. Steps named in ``on_driver``
    run here, after every step listed before them. Records and the cache stay on the driver, and
    the records hold the same results as a sequential run. ``threads``: torch threads per worker.
    """
    names = [s.name for s in steps]
    by_name = {s.name: s for s in steps}
    for s in steps:
        for n in s.needs:
            if n not in by_name:
                raise OptionError(f"step {s.name} needs unknown step {n}")
    force = set(force or ())
    unknown = (force | set(only or ())) - set(names) - {"all"}
    if unknown:
        raise OptionError(f"unknown step(s) {', '.join(sorted(unknown))}: choose from {', '.join(names)}")
    if "all" in force:
        force = set(names)
    if only:
        wanted: set[str] = set()

        def add(n: str) -> None:
            if n not in wanted:
                wanted.add(n)
                for m in by_name[n].needs:
                    add(m)

        for n in only:
            add(n)
    else:
        wanted = set(names)

    records: dict[str, dict[str, Any]] = {}
    redone: set[str] = set()
    out.mkdir(parents=True, exist_ok=True)
    bar = as_progress(progress)
    bar.start(len(wanted), f"{len(wanted)} steps")
    try:
        _run_steps(steps, out, profile, force, wanted, records, redone, on_event, bar, executor, rebuild,
                   on_driver, threads)
    finally:
        bar.done()
    return records


def _run_steps(steps, out, profile, force, wanted, records, redone, on_event, bar, executor, rebuild, on_driver,
               threads) -> None:
    def event(step: str, status: str, message: str) -> None:
        log_event(step, status, message)
        if on_event is not None:
            on_event(step, status, message)

    def settle(step: Step, rec: dict[str, Any], started: float) -> None:
        rec.update({"step": step.name, "title": step.title, "hash": _options_hash(profile, step.options),
                    "profile": profile, "seconds": round(time.time() - started, 2)})
        rec.setdefault("files", [])
        atomic_write_text(_record_path(out, step.name), json.dumps(jsonable(rec), indent=1) + "\n")
        records[step.name] = rec
        redone.add(step.name)
        event(step.name, rec["status"], rec.get("reason", step.title))
        bar.advance(1)

    def prepare(step: Step) -> tuple[str, dict[str, Any] | None]:
        """``("cached" | "skip" | "run", record)`` for a step whose dependencies are settled."""
        if step.name not in wanted:
            rec = load_record(out, step.name)
            if rec is not None:
                records[step.name] = rec
            return "unwanted", None
        stale_dep = any(n in redone for n in step.needs)
        rec = None if (step.name in force or stale_dep) else _is_fresh(out, step, profile)
        if rec is not None:
            records[step.name] = rec
            event(step.name, "cached", step.title)
            bar.advance(1)
            return "cached", rec
        failed_dep = [n for n in step.needs if records.get(n, {}).get("status") not in ("done",)]
        if failed_dep:
            return "skip", {"status": "skipped", "reason": f"needs {', '.join(failed_dep)}, which did not finish",
                            "results": {}}
        return "run", None

    if executor is None or not getattr(executor, "concurrent", False):
        for step in steps:
            started = time.time()
            what, rec = prepare(step)
            if what in ("unwanted", "cached"):
                continue
            if what == "run":
                event(step.name, "running", step.title)
                ctx = StepContext(out=out, profile=profile, options=step.options,
                                  results={k: v.get("results", {}) for k, v in records.items()},
                                  progress=lambda msg, n=step.name: event(n, "progress", msg), step=step.name)
                rec = run_step(step, ctx)
            settle(step, rec, started)
        return
    _run_concurrently(steps, out, profile, executor, rebuild, set(on_driver), prepare, settle, records, event,
                      threads)


def run_step(step: Step, ctx: StepContext) -> dict[str, Any]:
    """Run one step; its record (``status``, ``results``, ``files`` or ``reason``). Never raises
    for the step's own errors: a failed step is reported and the pipeline goes on."""
    try:
        results = step.run(ctx) or {}
        files = [str(f) for f in results.pop("_files", [])]
        return {"status": "done", "results": results, "files": files}
    except StepSkipped as exc:
        return {"status": "skipped", "reason": str(exc), "results": {}}
    except TsprobeError as exc:
        return {"status": "failed", "reason": str(exc), "results": {}}
    except Exception as exc:  # noqa: BLE001 - a failed step is reported, the pipeline goes on
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                "results": {}}


def _step_task(workdir: Path, rebuild: tuple[Callable[..., list[Step]], tuple], name: str, profile: str,
               results: dict[str, dict[str, Any]], inputs: dict[str, bytes], threads: int | None) -> dict[str, Any]:
    """One step as an executor task: rebuild the steps (closures do not travel), unpack the files
    of the steps it reads into ``workdir``, run it there; its outputs travel back."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    for rel, blob in inputs.items():
        p = workdir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(blob)
    factory, args = rebuild
    step = next(s for s in factory(*args) if s.name == name)
    ctx = StepContext(out=workdir, profile=profile, options=step.options, results=results, step=name)
    rec = run_step(step, ctx)
    local = [f for f in rec.get("files", []) if not Path(f).is_absolute() and (workdir / f).is_file()]
    return {"record": rec, "_files": local}


def _closure(step: Step, by_name: dict[str, Step]) -> set[str]:
    seen: set[str] = set()
    todo = list(step.needs) + list(step.after)
    while todo:
        n = todo.pop()
        if n in seen or n not in by_name:
            continue
        seen.add(n)
        todo += list(by_name[n].needs) + list(by_name[n].after)
    return seen


def _run_concurrently(steps, out, profile, executor, rebuild, on_driver, prepare, settle, records, on_event,
                      threads) -> None:
    """Waves: every step whose dependencies are settled starts; steps in ``on_driver`` run here,
    after every step listed before them (they read many records: drawing, the report); the others
    go to the executor with the files of the steps they depend on, and their outputs come back
    into ``out``. The cache (``out/.steps``) lives here, on the driver."""
    from .executors import Task, write_files

    if rebuild is None:
        raise OptionError("running steps on an executor needs rebuild=(factory, args) to rebuild them on workers")
    by_name = {s.name: s for s in steps}
    order = {s.name: i for i, s in enumerate(steps)}
    deps = {s.name: {x.name for x in steps[:order[s.name]]} if s.name in on_driver
            else {n for n in (*s.needs, *s.after) if n in by_name} for s in steps}
    pending = [s.name for s in steps]
    settled: set[str] = set()
    while pending:
        ready = [n for n in pending if deps[n] <= settled]
        if not ready:
            raise OptionError(f"steps {', '.join(pending)} wait on each other (a dependency cycle)")
        remote: list[Task] = []
        started: dict[str, float] = {}
        for n in ready:
            pending.remove(n)
            step = by_name[n]
            started[n] = time.time()
            what, rec = prepare(step)
            if what in ("unwanted", "cached"):
                settled.add(n)
                continue
            if what == "skip":
                settle(step, rec, started[n])
                settled.add(n)
                continue
            on_event(n, "running", step.title)
            if n in on_driver:
                ctx = StepContext(out=out, profile=profile, options=step.options,
                                  results={k: v.get("results", {}) for k, v in records.items()},
                                  progress=lambda msg, n=n: on_event(n, "progress", msg), step=n)
                settle(step, run_step(step, ctx), started[n])
                settled.add(n)
                continue
            inputs: dict[str, bytes] = {}
            for d in sorted(_closure(step, by_name)):
                for f in (records.get(d) or {}).get("files", []):
                    p = out / f
                    if not Path(f).is_absolute() and p.is_file():
                        inputs[f] = p.read_bytes()
            results = {k: v.get("results", {}) for k, v in records.items()}
            remote.append(Task(key=n, fn=_step_task, args=(rebuild, n, profile, results, inputs, threads),
                               labels={"step": n}))
        for res in executor.run(remote, namespace=str(out.resolve())):
            n = res.task.key
            if res.ok:
                write_files(res.files, out)
                rec = res.value["record"]
            else:
                rec = {"status": "failed", "reason": f"worker: {res.error}", "traceback": res.traceback,
                       "log": res.log[-4000:], "results": {}}
            if res.attempts > 1:
                rec["attempts"] = res.attempts
            settle(by_name[n], rec, started[n])
            settled.add(n)
