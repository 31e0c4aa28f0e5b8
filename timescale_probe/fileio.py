"""Writing outputs safely: atomic files, output folders, and the ``run.json`` record of a run."""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import InputError, OptionError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``.

    An exception (or a kill) leaves ``path`` untouched: readers never see a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_with(path: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` (e.g. ``df.to_csv``, ``fig.savefig``, ``torch.save``) atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def exact_float32(array: Any) -> Any:
    """``array`` as float32 when that loses nothing (every float64 value is a float32 value, as the
    NLLs of a float32 model cast to float64 are), else unchanged: half the bytes on disk, the same
    numbers once read back as float64."""
    import numpy as np

    a = np.asarray(array)
    if a.dtype == np.float64:
        b = a.astype(np.float32)
        if np.array_equal(b.astype(np.float64), a, equal_nan=True):
            return b
    return a


def save_npy(path: str | os.PathLike, array: Any, *, exact_narrow: bool = False) -> Path:
    """``array`` as ``.npy`` at exactly ``path`` (no '.npy' appended), atomically, never pickled;
    ``exact_narrow``: stored as float32 where :func:`exact_float32` finds that lossless (readers
    cast back to float64)."""
    import numpy as np

    data = exact_float32(array) if exact_narrow else np.asarray(array)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, data, allow_pickle=False)

    return atomic_write_with(path, write)


def write_table(df, path: str | os.PathLike) -> Path:
    """Write a DataFrame as CSV, Parquet or JSON (by suffix), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return atomic_write_with(path, lambda p: df.to_csv(p, index=False))
    if suffix == ".parquet":
        return atomic_write_with(path, lambda p: df.to_parquet(p, index=False))
    if suffix == ".json":
        return atomic_write_with(path, lambda p: df.to_json(p, orient="records", indent=1))
    raise OptionError(f"cannot write a table as '{suffix}': use .csv, .parquet or .json ({path})")


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure atomically (format from the suffix, PDF by default) and close it.
    A PDF carries no creation date, so the same figure gives the same bytes on every run."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fmt = path.suffix.lstrip(".") or "pdf"
    meta = {"CreationDate": None} if fmt == "pdf" else None
    try:
        return atomic_write_with(path, lambda p: fig.savefig(p, format=fmt, bbox_inches="tight", metadata=meta))
    finally:
        plt.close(fig)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def require_file(path: str | os.PathLike, what: str = "file") -> Path:
    """Return ``path`` as a Path if it is a readable regular file, else raise a one-line InputError."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} not found: {p}")
    if p.is_dir():
        raise InputError(f"{what} is a directory, expected a file: {p}")
    if not os.access(p, os.R_OK):
        raise InputError(f"{what} is not readable (permissions): {p}")
    return p


def check_out_dir(out: str | os.PathLike, param: str = "out") -> Path:
    """``out`` as a Path if it can become an output folder; leaves nothing behind.

    Refused: an empty path (``--out ""`` would mean the current folder), an existing file, a path
    below a file, and a place where nothing can be written: the nearest existing folder at or above
    ``out`` (where the staging folder goes, see :class:`OutputStage`) is probed by making and
    removing a temporary folder there, so read-only and virtual file systems (``/proc``) and missing
    permissions are caught before any work, for root too (``os.access`` says yes to root).
    """
    if out is None or (isinstance(out, (str, bytes)) and not str(out).strip()):
        raise OptionError(f"{param} needs a folder name (got an empty path)", param=param)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OptionError(f"{param} must be a directory, but {out} is a file", param=param)
    anchor = out  # the nearest existing folder, as the user wrote it (relative paths end at ".")
    while not anchor.exists() and anchor != anchor.parent:
        anchor = anchor.parent
    if not anchor.is_dir():
        raise OptionError(f"{param} {out} cannot be made: {anchor} is a file", param=param)
    try:
        probe = tempfile.mkdtemp(prefix=".tsprobe-probe-", dir=anchor)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise OptionError(f"{param} {out} cannot be written: making a folder in {anchor} fails ({why}); "
                          "use another folder", param=param) from None
    os.rmdir(probe)
    return out


def prepare_out_dir(out: str | os.PathLike, param: str = "out") -> Path:
    """Create the output folder ``out`` (and its parents) now; see :func:`staged_output` to create it only on success."""
    out = check_out_dir(out, param)
    out.mkdir(parents=True, exist_ok=True)
    return out


class OutputStage:
    """A command's outputs, all or nothing.

    ``OutputStage(out)`` checks ``out`` and creates nothing. :attr:`path` is a hidden staging
    folder (made on first use, beside ``out``) to write into; :meth:`commit` moves every file in it
    into ``out`` (created only then; each file by an atomic rename, so a file of the same name is
    replaced only on success) and :meth:`discard` removes it. As a context manager it commits on
    success and discards on an error. A stage neither committed nor discarded is removed by
    :func:`discard_open_stages` (the command line calls it when a command ends) or, at the latest,
    when the object is garbage-collected: a failed run leaves nothing new on disk.
    """

    def __init__(self, out: str | os.PathLike, param: str = "out") -> None:
        self.out = check_out_dir(out, param)
        self.param = param
        self._stage: Path | None = None
        self._finalizer = None

    @property
    def path(self) -> Path:
        if self._stage is None:
            import shutil
            import weakref

            target = self.out.absolute()
            anchor = next(p for p in target.parents if p.exists())
            try:
                self._stage = Path(tempfile.mkdtemp(prefix=".tsprobe-stage-", dir=anchor))
            except OSError as exc:  # became unwritable since the check at construction
                raise OptionError(f"{self.param} {self.out} cannot be written: making a folder in {anchor} fails "
                                  f"({exc.strerror or type(exc).__name__})", param=self.param) from None
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(self._stage), True)
            _OPEN_STAGES.add(self)
        return self._stage

    def commit(self) -> Path:
        """Move the staged files into ``out``; returns ``out``."""
        import shutil

        if self._stage is None:  # nothing was written
            return self.out
        stage = self._stage
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            for src in sorted(stage.rglob("*")):
                if src.is_dir():
                    continue
                dest = self.out / src.relative_to(stage)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(src, 0o666 & ~_UMASK)
                try:
                    os.replace(src, dest)
                except OSError:  # another file system below ``out``: copy beside it, then rename
                    with atomic_path(dest) as tmp:
                        shutil.copyfile(src, tmp)
        finally:
            self.discard()
        return self.out

    def discard(self) -> None:
        """Remove the staging folder and everything in it."""
        if self._finalizer is not None:
            self._finalizer()
        self._stage = None
        _OPEN_STAGES.discard(self)

    def __enter__(self) -> "OutputStage":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


_OPEN_STAGES: set[OutputStage] = set()


def discard_open_stages() -> int:
    """Remove every staging folder not yet committed (a command failed); returns how many."""
    stages = list(_OPEN_STAGES)
    for stage in stages:
        stage.discard()
    return len(stages)


@contextlib.contextmanager
def staged_output(out: str | os.PathLike, param: str = "out") -> Iterator[Path]:
    """``with staged_output(out) as d:`` write into ``d``; on success the files move into ``out``
    (created only then), on an error nothing is left (see :class:`OutputStage`)."""
    with OutputStage(out, param) as stage:
        yield stage.path


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return jsonable(value.item())
        except (ValueError, RuntimeError):
            pass
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return jsonable(value.to_dict())
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def finite_or_none(x) -> float | None:
    """``x`` as a float when it is a finite number, else ``None`` (tables and JSON leave it empty)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("timescale_probe", "torch", "numpy", "scipy", "pandas", "matplotlib"):
        mod = sys.modules.get(name)
        if mod is None:
            try:
                mod = __import__(name)
            except ImportError:
                continue
        versions[name] = getattr(mod, "__version__", "?")
    return versions


def write_run_json(
    out_dir: str | os.PathLike,
    command: str,
    options: dict[str, Any],
    *,
    seed: int | None = None,
    inputs: list[str | os.PathLike] | None = None,
    results: dict[str, Any] | None = None,
    filename: str = "run.json",
) -> Path:
    """Record what produced an output folder: resolved options, seed, versions and input hashes."""
    record = {
        "command": command,
        "options": jsonable(options),
        "seed": seed,
        "inputs": {
            str(p): (file_sha256(p) if Path(p).is_file() else "not a file")
            for p in (inputs or [])
        },
        "versions": library_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if results is not None:
        record["results"] = jsonable(results)
    path = Path(out_dir) / filename
    return atomic_write_text(path, json.dumps(record, indent=2) + "\n")


def resolve_device(device: str = "auto"):
    """Map ``auto|cpu|cuda|cuda:N`` to a torch.device; asking for CUDA without one is a user error."""
    import torch

    device = (device or "auto").lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise OptionError("device cuda was asked for but no CUDA GPU is available; use cpu or auto",
                              param="device")
        return torch.device(device)
    raise OptionError(f"unknown device '{device}': use auto, cpu or cuda", param="device")


_TORCH_DEFAULT_THREADS: list[int] = []


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask: taskset, cgroup cpusets), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads(jobs: int = 1) -> int:
    """The one default for torch's CPU threads, in every command: the CPUs this process may use
    (:func:`available_cpus`) less the load already running on them (the 1-minute load average,
    rounded), shared by ``jobs`` processes working at once, at least 1 and at most torch's own
    default (its physical cores, or ``OMP_NUM_THREADS`` when set).

    Why: torch takes every core by default, and on a machine already busy its threads wait on each
    other (a 2-core machine under load ran 6-12x slower in wall time, CPU time 8x inflated); on an
    idle machine this is torch's default. ``benchmarks/threads.py`` measures it against 1 and 2
    threads. Where the load average is not this machine's own (some containers report the host's),
    pass ``--threads``.
    """
    import torch

    if not _TORCH_DEFAULT_THREADS:
        _TORCH_DEFAULT_THREADS.append(torch.get_num_threads())
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    free = available_cpus() - int(load + 0.5)
    return max(1, min(_TORCH_DEFAULT_THREADS[0], free // max(1, int(jobs))))


def use_threads(threads: int | None = None, jobs: int = 1) -> int:
    """Set torch's CPU threads to ``threads`` (None: :func:`default_threads`); returns the count."""
    import torch

    n = default_threads(jobs) if threads is None else int(threads)
    if n < 1:
        raise OptionError(f"threads must be >= 1 (got {n})", param="threads")
    torch.set_num_threads(n)
    return n

