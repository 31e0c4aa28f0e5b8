"""One progress bar for the library's long loops (rich, transient, on stderr); a no-op when off."""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator


class _NoBar:
    def advance(self, n: int = 1) -> None:
        pass


class _Bar:
    def __init__(self, progress, task) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)


@contextlib.contextmanager
def progress_bar(total: int, description: str, enabled: bool = True) -> Iterator[_Bar | _NoBar]:
    """Context manager yielding an object with ``advance(n=1)``; shows nothing when ``enabled`` is false."""
    if not enabled:
        yield _NoBar()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))


def track(items: Iterable, total: int, description: str, enabled: bool = True) -> Iterator:
    """Yield ``items``, advancing a progress bar after each one."""
    with progress_bar(total, description, enabled) as bar:
        for item in items:
            yield item
            bar.advance()
