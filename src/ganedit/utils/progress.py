"""Progress bars for long work (rich, on stderr), silent when disabled."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class _Bar:
    def __init__(self, progress: Progress | None, task):
        self._progress, self._task = progress, task

    def extend(self, n: int) -> None:
        """Add `n` to the total (work found to be needed on the way)."""
        if self._progress is None:
            return
        task = next(t for t in self._progress.tasks if t.id == self._task)
        total = task.total or 0
        self._progress.update(self._task, total=total + n)

    def advance(self, n: int = 1, **metrics: float) -> None:
        if self._progress is None:
            return
        text = "  ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
        )
        self._progress.update(self._task, advance=n, metrics=text)


@contextlib.contextmanager
def progress_bar(
    total: int, description: str, enabled: bool = True, completed: int = 0
) -> Iterator[_Bar]:
    if not enabled:
        yield _Bar(None, None)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[metrics]}"),
    )
    # On stderr, so that stdout carries only the command's summary.
    with Progress(*columns, transient=False, console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=total, completed=completed, metrics="")
        yield _Bar(progress, task)
