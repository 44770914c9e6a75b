"""The run context: one frozen value for a run's device, threads, progress and overwrite."""

from __future__ import annotations

import dataclasses

import pytest

from ganedit.utils.context import RunContext


def test_current_reads_the_thread_count_the_process_uses(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    run = RunContext.current("cuda:1", progress=False, overwrite=True)
    assert run == RunContext(device="cuda:1", threads=3, progress=False, overwrite=True)


def test_current_without_a_count_leaves_threads_unset(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert RunContext.current().threads is None


def test_the_context_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunContext().overwrite = True  # type: ignore[misc]
