"""Progress bars for long work (rich), silent when disabled or when nothing is interactive."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=total, completed=completed, metrics="")
        yield _Bar(progress, task)
