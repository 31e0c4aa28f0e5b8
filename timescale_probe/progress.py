"""Progress reporting and logging: one protocol for the library's long loops.

A long-running library function takes ``progress=`` and reports through a :class:`Progress`:
``start(total, label)`` when a loop begins, ``advance(n)`` as it goes, ``done()`` when it ends
(calls may nest: a loop may start another inside its own). What ``progress=`` accepts:

- ``False`` / ``None``: nothing is shown (:class:`NullProgress`);
- ``True``: a transient rich bar on stderr (:class:`RichProgress`), as the command line shows;
- any object with ``start``, ``advance`` and ``done`` (your own bar, a logger, a test recorder);
- a plain callable ``f(n)``: called with each ``advance`` step (the older callback style; a callable
  taking no argument, ``f()``, is called once per ``advance`` call).

Messages (what a step is doing, notes) go to the standard logger ``logging.getLogger("timescale_probe")``
(``LOGGER`` here), silent unless the application configures logging; e.g.
``logging.basicConfig(level=logging.INFO)`` shows them. The ``tsprobe`` command shows warnings as
``tsprobe: warning: ...`` lines on stderr.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Iterable, Iterator, Protocol, TypeAlias, runtime_checkable

LOGGER = logging.getLogger("timescale_probe")
LOGGER.addHandler(logging.NullHandler())

__all__ = ["LOGGER", "Progress", "ProgressLike", "NullProgress", "RichProgress", "CallbackProgress", "as_progress",
           "progress_bar", "track", "advance_only", "log_messages"]


@runtime_checkable
class Progress(Protocol):
    """What the library calls while it works (see the module docstring)."""

    def start(self, total: int | None, label: str) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def done(self) -> None: ...


#: What a ``progress=`` parameter accepts (see the module docstring).
ProgressLike: TypeAlias = "bool | Progress | Callable[[int], Any] | None"


class NullProgress:
    """Shows nothing."""

    def start(self, total: int | None, label: str) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def done(self) -> None:
        pass


class CallbackProgress:
    """Adapts a callable ``f(n)`` (called with each ``advance`` step) to :class:`Progress`."""

    def __init__(self, fn: Callable[[int], Any]) -> None:
        self._fn = fn
        self._zero_arg = _takes_no_argument(fn)

    def start(self, total: int | None, label: str) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        if self._zero_arg:
            self._fn()
        else:
            self._fn(n)

    def done(self) -> None:
        pass


def _takes_no_argument(fn: Callable) -> bool:
    """Whether ``fn`` cannot be called with one positional argument (an older ``f()`` callback)."""
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    try:
        sig.bind(0)
    except TypeError:
        try:
            sig.bind()
        except TypeError:
            return False
        return True
    return False


class RichProgress:
    """A transient rich progress bar on stderr: one line per started (nested) loop, gone when done.

    ``info(text)`` sets a short status text (e.g. the running loss) on the innermost line, and
    ``console`` prints lines above the live bar without tearing it (``None`` when no bar is shown).
    """

    def __init__(self, console: Any = None) -> None:
        self._console = console
        self._live: Any = None
        self._tasks: list[Any] = []

    @property
    def console(self) -> Any:
        return None if self._live is None else self._live.console

    def start(self, total: int | None, label: str) -> None:
        if self._live is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._live = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                  console=self._console, transient=True)
            self._live.start()
        self._tasks.append(self._live.add_task(label, total=total, info=""))

    def advance(self, n: int = 1) -> None:
        if self._tasks:
            self._live.advance(self._tasks[-1], n)

    def info(self, text: str) -> None:
        if self._tasks:
            self._live.update(self._tasks[-1], info=text)

    def done(self) -> None:
        if self._tasks:
            self._live.remove_task(self._tasks.pop())
        if not self._tasks and self._live is not None:
            self._live.stop()
            self._live = None


def as_progress(progress: ProgressLike) -> Progress:
    """The :class:`Progress` for a ``progress=`` argument (see the module docstring)."""
    if progress is None or progress is False:
        return NullProgress()
    if progress is True:
        return RichProgress()
    if all(callable(getattr(progress, name, None)) for name in ("start", "advance", "done")):
        return progress  # type: ignore[return-value]
    if callable(progress):
        return CallbackProgress(progress)
    from .errors import OptionError

    raise OptionError(f"progress must be a bool, a Progress (start/advance/done) or a callable, "
                      f"not {type(progress).__name__}", param="progress")


@contextlib.contextmanager
def progress_bar(total: int | None, description: str,
                 enabled: ProgressLike = True) -> Iterator[Progress]:
    """Context manager: ``start(total, description)`` on ``as_progress(enabled)``, yield it (call
    ``advance(n)``), ``done()`` on exit, also when the loop raises."""
    bar = as_progress(enabled)
    bar.start(total, description)
    try:
        yield bar
    finally:
        bar.done()


def track(items: Iterable, total: int | None, description: str,
          enabled: ProgressLike = True) -> Iterator:
    """Yield ``items``, advancing the progress by one after each."""
    with progress_bar(total, description, enabled) as bar:
        for item in items:
            yield item
            bar.advance()


class _AdvanceOnly:
    """Passes ``advance`` through to ``inner``; ``start``/``done`` do nothing (see :func:`advance_only`)."""

    def __init__(self, inner: Progress) -> None:
        self._inner = inner

    def start(self, total: int | None, label: str) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        self._inner.advance(n)

    def done(self) -> None:
        pass


def advance_only(progress: Progress) -> Progress:
    """A view of ``progress`` for a sub-loop whose steps are already counted in the caller's total:
    its ``advance`` reaches ``progress``, its ``start``/``done`` are ignored (one bar, not nested ones)."""
    return _AdvanceOnly(progress)


class _CallHandler(logging.Handler):
    def __init__(self, fn: Callable[[str], Any], level: int) -> None:
        super().__init__(level)
        self._fn = fn

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._fn(record.getMessage())
        except Exception:  # noqa: BLE001 - logging must never break the caller
            self.handleError(record)


@contextlib.contextmanager
def log_messages(fn: Callable[[str], Any], name: str = "timescale_probe",
                 level: int = logging.INFO) -> Iterator[logging.Logger]:
    """Context manager: pass each message of logger ``name`` (and its children) at ``level`` or
    above to ``fn(text)`` while inside; lowers the logger's level to ``level`` if needed, restores it."""
    logger = logging.getLogger(name)
    handler = _CallHandler(fn, level)
    old_level = logger.level
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
