"""Progress of long work on stderr: a live bar on a terminal, plain lines in a log.

A terminal gets rich's bar. Any other stream (a log file, a pipe, a batch system's capture)
gets one plain line at least every LINE_EVERY seconds while work is open - done/total, rate,
ETA - and a last line when work that was reported on ends, so a log shows the run is
alive without filling with redraws. Work shorter than LINE_EVERY writes nothing there.

Bars opened inside another (inversion steps inside the images) join the open one: one live
display on a terminal, one line naming each open bar in a log.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

LINE_EVERY = 20.0  # seconds between plain lines (the promise is one at least every 30 s)

_open: list[_Display] = []  # the display bars join while one is open (outermost first)


@dataclass
class _Task:
    description: str
    total: int
    completed: int
    began: float  # clock time when the bar opened
    first: int  # completed when the bar opened (a resumed run's earlier work is not rate)
    metrics: str = ""


@dataclass
class _Lines:
    """Plain lines for a stream that is not a terminal, written when due."""

    stream: TextIO
    clock: Callable[[], float]
    every: float
    tasks: list[_Task] = field(default_factory=list)
    last: float | None = None  # when the last line was written (None: none yet)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, task: _Task) -> None:
        with self.lock:
            self.tasks.append(task)
            if self.last is None:
                self.last = task.began  # the first line is due `every` after work starts

    def tick(self) -> None:
        """Write a line if one is due."""
        with self.lock:
            now = self.clock()
            if self.tasks and self.last is not None and now - self.last >= self.every:
                self._write(" | ".join(_status(t, now) for t in self.tasks))
                self.last = now

    def remove(self, task: _Task, finished: bool) -> None:
        with self.lock:
            self.tasks.remove(task)
            reported = self.last is not None and self.last > task.began
            # The outermost bar says how it ended, once it has been reported on; a bar that
            # ends in an error leaves the error as the last word.
            if finished and reported and not self.tasks:
                self._write(_ending(task, self.clock()))

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe or file: progress never stops the work
            self.every = float("inf")


class _Display:
    """One open display: rich's live bar, or plain lines with a heartbeat."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] | None):
        from rich.console import Console

        console = Console(file=stream)
        self.clock = clock or time.monotonic
        self.rich = None
        self.lines = None
        self._stop = threading.Event()
        self._beat = None
        if console.is_terminal and not console.is_dumb_terminal:
            self.rich = _rich_progress(console)
            self.rich.start()
        else:
            self.lines = _Lines(stream, self.clock, LINE_EVERY)
            if clock is None:  # real time: a line is due even while one step runs long
                self._beat = threading.Thread(target=self._heartbeat, daemon=True)
                self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(1.0):
            self.lines.tick()

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.rich is not None:
            self.rich.stop()


def _rich_progress(console):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[metrics]}"),
    )
    return Progress(*columns, console=console, transient=False)


class _Bar:
    """What a loop holds: `advance` after each unit of work, `extend` when more is found."""

    def __init__(self, display: _Display | None, task: _Task | None, rich_id=None):
        self._display, self._task, self._rich_id = display, task, rich_id

    def extend(self, n: int) -> None:
        """Add `n` to the total (work found to be needed on the way)."""
        if self._task is None:
            return
        self._task.total += n
        if self._display.rich is not None:
            self._display.rich.update(self._rich_id, total=self._task.total)

    def advance(self, n: int = 1, **metrics: float) -> None:
        if self._task is None:
            return
        self._task.completed += n
        text = "  ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
        )
        self._task.metrics = text or self._task.metrics
        if self._display.rich is not None:
            self._display.rich.update(self._rich_id, advance=n, metrics=text)
        else:
            self._display.lines.tick()


@contextlib.contextmanager
def progress_bar(
    total: int,
    description: str,
    enabled: bool = True,
    completed: int = 0,
    *,
    stream: TextIO | None = None,
    clock: Callable[[], float] | None = None,
) -> Iterator[_Bar]:
    """A bar for `total` units of work (`completed` of them done before: a resumed run).

    On stderr (or `stream`), so that stdout carries only the command's summary. `clock`
    (seconds) replaces the real one and its heartbeat: the caller's advances drive the lines.
    """
    if not enabled:
        yield _Bar(None, None)
        return
    outermost = not _open
    display = _Display(stream or sys.stderr, clock) if outermost else _open[-1]
    if outermost:
        _open.append(display)
    task = _Task(description, total, completed, display.clock(), completed)
    rich_id = None
    if display.rich is not None:
        rich_id = display.rich.add_task(description, total=total, completed=completed, metrics="")
    else:
        display.lines.add(task)
    finished = False
    try:
        yield _Bar(display, task, rich_id)
        finished = True
    finally:
        if display.rich is not None and not outermost:
            display.rich.remove_task(rich_id)  # an inner bar goes; the outer one stays
        elif display.lines is not None:
            display.lines.remove(task, finished)
        if outermost:
            _open.remove(display)
            display.close()


# ------------------------------------------------------------------------------------------
# Plain-line text


def _clock_text(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _rate_text(per_second: float) -> str:
    return f"{per_second:.3g}/s" if per_second >= 1 else f"{1 / per_second:.3g} s each"


def _status(task: _Task, now: float) -> str:
    """`invert (optimize) 1/4 (25%), 47.1 s each, ETA 2:21, loss 0.01`"""
    share = f" ({100 * task.completed / task.total:.0f}%)" if task.total > 0 else ""
    text = f"{task.description} {task.completed}/{task.total}{share}"
    done, elapsed = task.completed - task.first, now - task.began
    if done > 0 and elapsed > 0:
        rate = done / elapsed
        left = max(task.total - task.completed, 0) / rate
        text += f", {_rate_text(rate)}, ETA {_clock_text(left)}"
    return text + (f", {task.metrics}" if task.metrics else "")


def _ending(task: _Task, now: float) -> str:
    elapsed = now - task.began
    done = task.completed - task.first
    rate = f" ({_rate_text(done / elapsed)})" if done > 0 and elapsed > 0 else ""
    return f"{task.description} {task.completed}/{task.total} done in {_clock_text(elapsed)}{rate}"
