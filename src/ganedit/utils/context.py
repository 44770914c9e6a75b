"""The settings one run shares across its steps: where it computes, on how many threads,
whether it shows progress and may replace existing outputs.

A command builds one `RunContext` from its shared options and hands it down, instead of
passing `device`, `progress` and `overwrite` one by one through every function that only
forwards them. No torch here: the CLI builds it before torch is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class RunContext:
    device: str = "cpu"  # a torch device string: cpu, cuda, cuda:1, ...
    threads: int | None = None  # CPU threads set for this process; None: OpenMP's own
    progress: bool = True  # progress bars on stderr
    overwrite: bool = False  # replace outputs that exist (folders only if ganedit wrote them)

    @classmethod
    def current(cls, device: str = "cpu", progress: bool = True, overwrite: bool = False):
        """A context for this process: the thread count as `use_threads` left it."""
        text = os.environ.get("OMP_NUM_THREADS", "")
        return cls(device, int(text) if text.isdigit() else None, progress, overwrite)
