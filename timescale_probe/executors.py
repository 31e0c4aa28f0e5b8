"""Where independent work runs: local processes (the default) or a Ray cluster.

One seam for every fan-out of tsprobe (Dyck sweeps, multi-seed language-model training, the
independent steps of ``tsprobe reproduce``)::

    from timescale_probe.executors import Task, make_executor

    tasks = [Task(key=f"mts-seed{s}", fn=train_one, args=(s,), labels={"seed": s}) for s in (1, 2, 3)]
    with make_executor("ray", address="auto", cpus_per_task=1) as ex:
        for result in ex.run(tasks):
            result.ok, result.value, result.files, result.error, result.log, result.attempts

A task function is a module-level function ``fn(workdir, *args, **kwargs) -> dict``. It runs in
``workdir``, a folder of its own on whichever machine runs it, and returns a JSON-able dict; the
relative paths listed under its ``"_files"`` key are read back as bytes and travel to the driver
with the result (``result.files``), so **no shared filesystem is assumed**: the driver writes them
where they belong (see :func:`write_files`). ``workdir`` is
``<storage>/<run id>/<task key>`` with ``storage`` a folder the caller names (give one that every
node sees, e.g. NFS, to let a retried task resume on another node) or the node's temporary
folder; it survives a crash, so a task that keeps its resume state there continues where the
killed attempt stopped, and it is removed once the task succeeded (the run's folder too, on the local
executor, once no task is left in it; a failed task's folder stays, with whatever it wrote).

Faults:

- a task that raises is *failed for good* (no retry: the same inputs give the same error); its
  result carries the error line, the traceback and the task's log (everything it printed or
  logged through ``logging.getLogger("timescale_probe")``); the other tasks go on;
- a task whose worker process dies (killed, out of memory, ``os._exit``) is run again, up to
  ``max_retries`` times (Ray's own task retries; the local executor does the same with its
  processes); ``result.attempts`` counts the runs.

Same numbers everywhere: a task runs the same function with the same arguments whichever executor
runs it; tasks set their own torch thread count, so CPU results are bit-identical.

The local executor with ``jobs=1`` runs tasks one after another in the driver process (no
process start-up; a crash then ends the driver, and the driver's rerun skips finished work);
``jobs > 1`` runs them in a pool of ``jobs`` spawned worker processes.
``ray`` is imported only when the Ray executor is used (``pip install 'tsprobe[ray]'``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import os
import shutil
import socket
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from .analysis import Options, option
from .errors import OptionError
from .fileio import atomic_write_text

EXECUTORS = ("local", "ray")
LOGGER = logging.getLogger("timescale_probe")
_ATTEMPTS = ".attempts"


@dataclass
class Task:
    """One unit of independent work. ``key`` is unique within a run and names the task's folder;
    ``labels`` (e.g. ``{"arch": "mts", "seed": 3}``) name it in reports."""

    key: str
    fn: Callable[..., dict[str, Any]]
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.labels.items()) or self.key


@dataclass
class TaskResult:
    """What came back: ``value`` (the function's dict without ``_files``), ``files`` (relative path
    -> bytes), or ``error`` (one line) with ``traceback``; ``log`` is what the task printed."""

    task: Task
    value: dict[str, Any] | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None
    traceback: str = ""
    log: str = ""
    attempts: int = 1
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def failure_line(self) -> str:
        return f"{self.task.describe()}: {self.error}"


def write_files(files: dict[str, bytes], root: str | Path) -> list[Path]:
    """Write a task's returned files under ``root`` (atomically, each file at its relative path)."""
    from .fileio import atomic_write_bytes

    root = Path(root)
    written = []
    for rel, data in files.items():
        p = root / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise OptionError(f"task output path {rel!r} is not relative to the output folder")
        p.parent.mkdir(parents=True, exist_ok=True)
        written.append(atomic_write_bytes(p, data))
    return written


def run_id(*parts: Any) -> str:
    """A short stable id for a run's task folders, from e.g. the driver's host and output path."""
    blob = "\x00".join(str(p) for p in (socket.gethostname(), *parts))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------
# the worker side: the same wrapper runs the task in-process, in a local process or on Ray
# ------------------------------------------------------------------------------------------------

def _workdir(storage: str | None, rid: str, key: str) -> Path:
    root = Path(storage) if storage else Path(tempfile.gettempdir()) / "tsprobe-tasks"
    return root / rid / key


def execute_task(fn: Callable[..., dict[str, Any]], args: tuple, kwargs: dict[str, Any], key: str, rid: str,
                 storage: str | None) -> dict[str, Any]:
    """Run one task in its work folder (see the module docstring); never raises for the task's own errors.

    Returns ``{"value", "files", "error", "traceback", "log", "attempts", "seconds"}``."""
    t0 = time.perf_counter()
    work = _workdir(storage, rid, key)
    work.mkdir(parents=True, exist_ok=True)
    counter = work / _ATTEMPTS
    try:
        attempts = int(counter.read_text()) + 1 if counter.is_file() else 1
    except ValueError:
        attempts = 1
    counter.write_text(str(attempts))
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    LOGGER.addHandler(handler)
    old_level = LOGGER.level
    if LOGGER.getEffectiveLevel() > logging.INFO:
        LOGGER.setLevel(logging.INFO)
    out = {"value": None, "files": {}, "error": None, "traceback": "", "log": "", "attempts": attempts}
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            value = dict(fn(work, *args, **kwargs) or {})
        rels = [str(r) for r in value.pop("_files", [])]
        files = {}
        for rel in rels:
            p = work / rel
            if not p.is_file():
                raise OptionError(f"task {key} listed {rel} among its outputs but did not write it")
            files[rel] = p.read_bytes()
        out.update(value=value, files=files)
    except Exception as exc:  # noqa: BLE001 - reported to the driver, which goes on with the others
        out.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(old_level)
    out["log"] = buf.getvalue()
    out["seconds"] = time.perf_counter() - t0
    if out["error"] is None:
        shutil.rmtree(work, ignore_errors=True)
    else:  # failed for good: a later rerun starts counting afresh (it is not a retry of a dead worker)
        counter.unlink(missing_ok=True)
    return out


def _result(task: Task, raw: dict[str, Any]) -> TaskResult:
    return TaskResult(task, value=raw["value"], files=raw["files"], error=raw["error"], traceback=raw["traceback"],
                      log=raw["log"], attempts=raw["attempts"], seconds=raw.get("seconds", 0.0))


def _ray_entry(fn, key, rid, storage, kwargs, *args) -> dict[str, Any]:  # pragma: no cover - runs on a Ray worker
    # top-level arguments: Ray resolves object references passed here (shared data, put once)
    return execute_task(fn, args, kwargs, key, rid, storage)


# ------------------------------------------------------------------------------------------------
# executors
# ------------------------------------------------------------------------------------------------

class Executor:
    """Base: ``run(tasks)`` yields a :class:`TaskResult` per task as tasks finish (any order)."""

    name = "base"
    #: whether tasks run at the same time (callers keep a sequential path for executors that don't)
    concurrent = False

    def __init__(self, *, cpus_per_task: float = 1, gpus_per_task: float = 0, max_retries: int = 3,
                 storage: str | Path | None = None, run_key: str = "") -> None:
        self.cpus_per_task, self.gpus_per_task = cpus_per_task, gpus_per_task
        self.max_retries = int(max_retries)
        self.storage = None if storage is None else str(Path(storage).expanduser().resolve())
        self.run_key = run_key

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return self.name

    def run(self, tasks: Iterable[Task], namespace: str = "") -> Iterator[TaskResult]:
        """Run ``tasks``; ``namespace`` (e.g. the driver's output folder) keeps the work folders of
        different runs apart (and the same for a rerun of the same run, so it can resume)."""
        raise NotImplementedError


class LocalExecutor(Executor):
    """Tasks on this machine: in the driver (``jobs=1``) or in ``jobs`` spawned processes at a time."""

    name = "local"

    def __init__(self, jobs: int = 1, **kw: Any) -> None:
        super().__init__(**kw)
        self.jobs = int(jobs)
        self._pool = None

    @property
    def concurrent(self) -> bool:
        return self.jobs > 1

    def describe(self) -> str:
        return f"local ({self.jobs} {'process' if self.jobs == 1 else 'processes'})"

    def run(self, tasks: Iterable[Task], namespace: str = "") -> Iterator[TaskResult]:
        tasks = list(tasks)
        _check_keys(tasks)
        rid = run_id(self.run_key, namespace)
        try:
            if self.jobs == 1:
                for t in tasks:
                    yield _result(t, execute_task(t.fn, t.args, t.kwargs, t.key, rid, self.storage))
            else:
                yield from self._run_processes(tasks, rid)
        finally:  # the run's folder goes once no task left one (a failed task keeps its folder for its files)
            with contextlib.suppress(OSError):
                _workdir(self.storage, rid, "").rmdir()

    def _run_processes(self, tasks: list[Task], rid: str) -> Iterator[TaskResult]:
        """A pool of ``jobs`` spawned worker processes (started once, reused until :meth:`close`). When a worker dies
        the pool breaks and every task that was running then is charged one attempt and
        resubmitted to a fresh pool, until it has used up ``max_retries``."""
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        pending = list(tasks)
        crashes: dict[str, int] = {}
        while pending:
            pool = self._get_pool()
            futures = {pool.submit(execute_task, t.fn, t.args, t.kwargs, t.key, rid, self.storage): t for t in pending}
            pending = []
            broken: list[Task] = []
            todo = set(futures)
            try:
                while todo:
                    done, todo = wait(todo, return_when=FIRST_COMPLETED)
                    for f in done:
                        t = futures[f]
                        try:
                            raw = f.result()
                        except BrokenProcessPool:
                            broken.append(t)
                            continue
                        raw["attempts"] = max(raw["attempts"], crashes.get(t.key, 0) + 1)
                        yield _result(t, raw)
            except BaseException:
                self._drop_pool()
                raise
            if broken:
                self._drop_pool()
            for t in broken:
                if not _started(self.storage, rid, t.key):
                    pending.append(t)  # never began: resubmit without charging an attempt
                    continue
                crashes[t.key] = crashes.get(t.key, 0) + 1
                if crashes[t.key] <= self.max_retries:
                    LOGGER.warning("task %s: a worker process died; retrying", t.describe())
                    pending.append(t)
                else:
                    yield TaskResult(t, error=f"worker process died {crashes[t.key]} times; gave up after "
                                              f"{self.max_retries} retries", attempts=crashes[t.key])

    def _get_pool(self):
        if self._pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=mp.get_context("spawn"))
        return self._pool

    def _drop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        self._drop_pool()


def _started(storage: str | None, rid: str, key: str) -> bool:
    return (_workdir(storage, rid, key) / _ATTEMPTS).is_file()


class RayExecutor(Executor):
    """Tasks as Ray remote tasks, each with ``num_cpus=cpus_per_task``, ``num_gpus=gpus_per_task``
    and ``max_retries`` (Ray retries a task whose worker died; exceptions are not retried).

    ``address``: an existing cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); default
    ``$RAY_ADDRESS``, else a local cluster with ``num_cpus`` CPUs (default: all) is started and
    stopped again at :meth:`close`. When Ray is already initialised in this process, that
    session is used as it is."""

    name = "ray"
    concurrent = True

    def __init__(self, address: str | None = None, num_cpus: int | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.ray = import_ray()
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self._owns = False
        if not self.ray.is_initialized():
            init_kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "configure_logging": False}
            if self.address:
                init_kw["address"] = self.address
            elif num_cpus is not None:
                init_kw["num_cpus"] = int(num_cpus)
            try:
                self.ray.init(**init_kw)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray cluster"
                raise OptionError(f"cannot start or reach {where}: {exc}", param="address") from None
            self._owns = True
        total = self.ray.cluster_resources()
        if self.cpus_per_task > total.get("CPU", 0) or self.gpus_per_task > total.get("GPU", 0):
            self.close()
            raise OptionError(
                f"cpus_per_task {self.cpus_per_task:g} and gpus_per_task {self.gpus_per_task:g}: more than the Ray "
                f"cluster has in all ({total.get('CPU', 0):g} CPU, {total.get('GPU', 0):g} GPU), so no task could start",
                param="cpus_per_task" if self.cpus_per_task > total.get("CPU", 0) else "gpus_per_task")

    def describe(self) -> str:
        res = self.ray.cluster_resources()
        return (f"ray ({len(self.ray.nodes())} node(s), {res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU; "
                f"{self.cpus_per_task:g} CPU, {self.gpus_per_task:g} GPU per task)")

    def close(self) -> None:
        if self._owns and self.ray.is_initialized():
            self.ray.shutdown()
        self._owns = False

    def run(self, tasks: Iterable[Task], namespace: str = "") -> Iterator[TaskResult]:
        ray = self.ray
        tasks = list(tasks)
        _check_keys(tasks)
        rid = run_id(self.run_key, namespace)
        remote = ray.remote(_ray_entry).options(num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task,
                                                max_retries=self.max_retries, retry_exceptions=False)
        shared: dict[int, Any] = {}  # an argument object shared by several tasks goes to the object store once

        def put(arg: Any) -> Any:
            if isinstance(arg, (bytes, dict, list)) and sum(a is arg for t in tasks for a in t.args) > 1:
                if id(arg) not in shared:
                    shared[id(arg)] = ray.put(arg)
                return shared[id(arg)]
            return arg

        refs = {remote.remote(t.fn, t.key, rid, self.storage, t.kwargs, *[put(a) for a in t.args]): t for t in tasks}
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    t = refs.pop(ref)
                    try:
                        raw = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        yield TaskResult(t, error=f"{type(exc).__name__} after {self.max_retries} retries: {first}",
                                         traceback=str(exc), attempts=self.max_retries + 1)
                        continue
                    yield _result(t, raw)
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)


def import_ray():
    """The ``ray`` module, or one clear line saying how to install it."""
    try:
        import ray  # noqa: PLC0415 - lazily: the core works without Ray
    except ImportError:
        raise OptionError("the ray executor needs Ray: pip install 'tsprobe[ray]' (or pip install ray)",
                          param="executor") from None
    return ray


def _check_keys(tasks: list[Task]) -> None:
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise OptionError("task keys must be unique within a run")


def make_executor(executor: str = "local", *, jobs: int = 1, address: str | None = None,
                  cpus_per_task: float = 1, gpus_per_task: float = 0, num_cpus: int | None = None,
                  max_retries: int = 3, storage: str | Path | None = None, run_key: str = "") -> Executor:
    """``local`` or ``ray`` (see the classes). Options are checked (:class:`ExecutorOptions`) before
    anything starts."""
    opts = ExecutorOptions(executor=executor, jobs=jobs, address=address, cpus_per_task=cpus_per_task,
                           gpus_per_task=gpus_per_task, max_retries=max_retries, storage=storage)
    return opts.make(num_cpus=num_cpus, run_key=run_key)


@dataclass(frozen=True)
class ExecutorOptions(Options):
    """Where the tasks of a fan-out run and what each asks for: the options every command that
    fans work out shares (``dyck sweep``, ``train-sweep``, ``reproduce``), declared once. Checked on
    construction, before anything starts (the ray executor: whether Ray is installed)."""

    jobs: int = option(1, "Tasks at a time with the local executor (1: one after another, in this process; a GPU "
                       "runs one at a time).", ge=1, le=1024)
    executor: str = option("local", "Where tasks run: local (processes on this machine) or ray (a Ray cluster: "
                           "--address, or $RAY_ADDRESS, else a local one).", choices=EXECUTORS)
    address: Optional[str] = option(None, "Ray cluster address (e.g. auto, ray://head:10001); default $RAY_ADDRESS, "
                                    "else a local Ray cluster is started for the run.")
    cpus_per_task: float = option(1.0, "CPUs each task reserves on the cluster (ray).", gt=0)
    gpus_per_task: float = option(0.0, "GPUs each task reserves on the cluster (ray; e.g. 1, or 0.5 to put two "
                                  "tasks on one GPU).", ge=0)
    storage: Optional[Path] = option(None, "A folder every worker can reach (e.g. NFS) for tasks' working files and "
                                     "resume state; default each node's temporary folder. Outputs always come back "
                                     "to --out.")
    max_retries: int = option(3, "Reruns of a task whose worker died (killed, out of memory).", ge=0, le=100)

    def check(self) -> None:
        if self.executor == "local" and self.address:
            raise OptionError("address is for the ray executor; drop it or choose the ray executor", param="address")
        if self.executor == "ray":
            import_ray()

    def executor_options(self) -> "ExecutorOptions":
        """Only these options (from a command's options that derive from this class)."""
        return ExecutorOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ExecutorOptions)})

    def make(self, *, num_cpus: int | None = None, run_key: str = "", jobs: int | None = None) -> Executor:
        """The executor (``jobs`` overrides the field, e.g. 1 for a GPU)."""
        kw = dict(cpus_per_task=self.cpus_per_task, gpus_per_task=self.gpus_per_task, max_retries=self.max_retries,
                  storage=self.storage, run_key=run_key)
        if self.executor == "local":
            if self.gpus_per_task:
                LOGGER.info("gpus_per_task is a Ray resource; the local executor ignores it")
            return LocalExecutor(jobs=self.jobs if jobs is None else jobs, **kw)
        return RayExecutor(address=self.address, num_cpus=num_cpus, **kw)

    def task_device(self, device: str):
        """The torch device tasks use. Local: checked here (``auto`` -> a GPU when present). Ray: the
        workers' machines decide, not the driver's (a head node often has no GPU): ``auto`` means
        ``cuda`` when tasks reserve GPUs, else ``cpu``; an explicit device is passed on unchecked."""
        import torch

        from .fileio import resolve_device

        if self.executor != "ray":
            return resolve_device(device)
        d = (device or "auto").lower()
        if d == "auto":
            return torch.device("cuda" if self.gpus_per_task > 0 else "cpu")
        try:
            return torch.device(d)
        except RuntimeError:
            return resolve_device(d)  # its one-line error for a device name torch does not know


class TaskProgress:
    """The driver's one bar over tasks: ``finished/total`` with finished, failed and retried counts."""

    def __init__(self, total: int, label: str, progress: Any = True) -> None:
        from .progress import as_progress

        self.bar = as_progress(progress)
        self.total, self.label = total, label
        self.finished = self.failed = self.retried = 0

    def __enter__(self) -> "TaskProgress":
        self.bar.start(self.total, self.label)
        self._info()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.done()

    def _info(self) -> None:
        info = getattr(self.bar, "info", None)
        if callable(info):
            info(f"finished {self.finished}, failed {self.failed}, retried {self.retried}")

    def update(self, result: TaskResult) -> None:
        if result.ok:
            self.finished += 1
        else:
            self.failed += 1
        if result.attempts > 1:
            self.retried += 1
        self.bar.advance(1)
        self._info()

    def summary(self) -> str:
        return f"{self.finished} finished, {self.failed} failed, {self.retried} retried"


def collect_results(executor: Executor, tasks: list[Task], out: Path, outcome: Any, *, label: str, progress: Any,
                    failed_info: Callable[[TaskResult], dict[str, Any]],
                    on_done: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Run ``tasks`` on ``executor`` under one :class:`TaskProgress` bar and gather what comes back.

    A finished task's files are written under ``out`` and ``dict(result.value, attempts=...)`` goes
    to ``outcome.trained``; a failed one's error, traceback and log go to ``out/<key>.log`` and
    ``dict(failed_info(result), error=..., log=..., attempts=...)`` goes to ``outcome.failed``;
    ``outcome.retried`` counts tasks run more than once. ``on_done(info)`` is called per task.
    """
    with TaskProgress(len(tasks), label, progress) as bar:
        for res in executor.run(tasks, namespace=str(out.resolve())):
            bar.update(res)
            outcome.retried += res.attempts > 1
            if res.ok:
                write_files(res.files, out)
                info = dict(res.value, attempts=res.attempts)
                outcome.trained.append(info)
            else:
                log = out / f"{res.task.key}.log"
                atomic_write_text(log, f"{res.error}\n\n{res.traceback}\n{res.log}")
                info = dict(failed_info(res), error=res.error, log=str(log), attempts=res.attempts)
                outcome.failed.append(info)
            if on_done is not None:
                on_done(info)
