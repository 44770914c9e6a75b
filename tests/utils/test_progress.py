"""Progress: a bar on a terminal, a plain line at least every 30 s in a log (a fake clock drives
the lines here: nothing sleeps, nothing depends on how fast the machine is)."""

import io
import re

import pytest

from ganedit.utils import progress
from ganedit.utils.progress import LINE_EVERY, progress_bar


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(total, seconds_per_step, stream, clock, description="work", **metrics):
    with progress_bar(total, description, stream=stream, clock=clock) as bar:
        for _ in range(total):
            clock.now += seconds_per_step
            bar.advance(1, **metrics)


def test_a_log_gets_a_line_at_least_every_30_seconds_with_count_rate_and_eta():
    assert LINE_EVERY <= 30
    log, clock = io.StringIO(), FakeClock()
    _run(100, 1.0, log, clock, loss=0.5)
    lines = log.getvalue().splitlines()
    counts = [int(re.match(r"work (\d+)/100", line).group(1)) for line in lines]
    # One second per step: a line at every LINE_EVERY steps, then the last word.
    assert counts[:-1] == list(range(int(LINE_EVERY), 101, int(LINE_EVERY)))
    assert max(b - a for a, b in zip([0, *counts], counts, strict=False)) <= 30
    assert lines[0] == "work 20/100 (20%), 1/s, ETA 1:20, loss 0.5"
    assert lines[-1] == "work 100/100 done in 1:40 (1/s)"


def test_slow_steps_are_reported_as_seconds_each():
    log, clock = io.StringIO(), FakeClock()
    _run(4, 47.0, log, clock)
    lines = log.getvalue().splitlines()
    assert lines[0] == "work 1/4 (25%), 47 s each, ETA 2:21"
    assert lines[-1] == "work 4/4 done in 3:08 (47 s each)"
    assert len(lines) == 5


def test_work_shorter_than_a_line_interval_writes_nothing():
    log, clock = io.StringIO(), FakeClock()
    _run(10, (LINE_EVERY - 1) / 10, log, clock)
    assert log.getvalue() == ""


def test_a_heartbeat_writes_while_one_step_runs_long():
    # The heartbeat calls tick(); a step that outlasts the interval still shows life.
    log, clock = io.StringIO(), FakeClock()
    with progress_bar(3, "slow", stream=log, clock=clock) as bar:
        clock.now += 25
        progress._open[-1].lines.tick()
        clock.now += 25
        progress._open[-1].lines.tick()
        bar.advance(3)
    lines = log.getvalue().splitlines()
    assert lines[:2] == ["slow 0/3 (0%)", "slow 0/3 (0%)"]
    assert lines[-1].startswith("slow 3/3 done in 0:50")


def test_nested_bars_share_one_line_and_only_the_outer_one_ends_it():
    log, clock = io.StringIO(), FakeClock()
    with progress_bar(2, "invert", stream=log, clock=clock) as images:
        for _ in range(2):
            with progress_bar(30, "project", stream=log, clock=clock) as steps:
                for _ in range(30):
                    clock.now += 1
                    steps.advance(1, loss=0.25)
            images.advance(1)
    lines = log.getvalue().splitlines()
    assert lines[0] == "invert 0/2 (0%) | project 20/30 (67%), 1/s, ETA 0:10, loss 0.25"
    assert (
        "invert 1/2 (50%), 40 s each, ETA 0:40 | project 10/30 (33%), 1/s, ETA 0:20, loss 0.25"
        in lines
    )
    assert lines[-1] == "invert 2/2 done in 1:00 (30 s each)"
    assert not progress._open


def test_an_error_leaves_the_error_as_the_last_word():
    log, clock = io.StringIO(), FakeClock()
    with pytest.raises(ValueError), progress_bar(10, "work", stream=log, clock=clock) as bar:
        clock.now += 25
        bar.advance(1)
        raise ValueError("refused")
    assert log.getvalue().splitlines() == ["work 1/10 (10%), 25 s each, ETA 3:45"]
    assert not progress._open


def test_a_resumed_run_counts_only_new_work_in_its_rate():
    log, clock = io.StringIO(), FakeClock()
    with progress_bar(100, "train", completed=60, stream=log, clock=clock) as bar:
        for _ in range(40):
            clock.now += 0.5
            bar.advance(1)
    lines = log.getvalue().splitlines()
    assert lines[0] == "train 100/100 (100%), 2/s, ETA 0:00"
    assert lines[-1] == "train 100/100 done in 0:20 (2/s)"


def test_extend_grows_the_total():
    log, clock = io.StringIO(), FakeClock()
    with progress_bar(2, "work", stream=log, clock=clock) as bar:
        bar.extend(2)
        clock.now += 30
        bar.advance(1)
    assert log.getvalue().splitlines()[0].startswith("work 1/4 (25%)")


def test_disabled_writes_nothing():
    log, clock = io.StringIO(), FakeClock()
    with progress_bar(5, "work", enabled=False, stream=log, clock=clock) as bar:
        clock.now += 100
        bar.advance(5)
        bar.extend(1)
    assert log.getvalue() == ""


def test_a_terminal_gets_the_bar_with_nested_bars_inside():
    screen, clock = Terminal(), FakeClock()
    with progress_bar(2, "invert", stream=screen, clock=clock) as images:
        display = progress._open[-1]
        for _ in range(2):
            with progress_bar(3, "project", stream=screen, clock=clock) as steps:
                assert [t.description for t in display.rich.tasks] == ["invert", "project"]
                for _ in range(3):
                    steps.advance(1, loss=0.25)
            assert [t.description for t in display.rich.tasks] == ["invert"]
            images.advance(1)
    text = screen.getvalue()
    assert "\x1b[" in text  # drawn with terminal control sequences, not plain lines
    assert "invert" in text and "2/2" in text
    assert "done in" not in text
    assert not progress._open
