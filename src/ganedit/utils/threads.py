"""CPU threads of torch, OpenMP and BLAS: one number, set before the libraries start.

OpenMP reads OMP_NUM_THREADS and OMP_WAIT_POLICY once, when torch (or numpy's BLAS) loads,
so the command line sets them before importing any of these; torch.set_num_threads covers a
process where torch is already loaded (a caller of `ganedit.cli.run`). Nothing here imports
torch. docs/benchmarks.md ("CPU threads under load, and start-up") has the measurements behind
the default; docs/cli.md ("CPU threads") states the rule.
"""

from __future__ import annotations

import os
import sys

from ganedit.errors import UserInputError

ENV = "GANEDIT_THREADS"
MAX_THREADS = 4096
# The thread counts of OpenMP (torch, oneDNN), MKL and OpenBLAS: one number for all.
COUNT_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def use_threads(n: int | None) -> int | None:
    """Run this process's numerical work on `n` CPU threads; returns the count set.

    With `n` None, a count the user already gave OpenMP (OMP_NUM_THREADS) stands and nothing
    is changed (None is returned); otherwise the default applies. OpenMP's threads sleep
    while they wait (OMP_WAIT_POLICY=passive) unless the user chose otherwise: spinning
    threads take the cores that other processes on a shared machine need, and theirs.
    """
    if n is None:
        if "OMP_NUM_THREADS" in os.environ:
            return None
        n = default_threads()
    for name in COUNT_VARIABLES:
        os.environ[name] = str(n)
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    if "torch" in sys.modules:  # already loaded: its pool is resized, its wait policy stays
        import torch

        torch.set_num_threads(n)
    return n


def requested_threads(flag: int | None) -> int | None:
    """The count asked for: the --threads flag, else GANEDIT_THREADS, else None."""
    if flag is not None:
        return flag
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_THREADS:
        raise UserInputError(
            f"expected {ENV} as a whole number from 1 to {MAX_THREADS}, received {text[:40]!r}"
        )
    return int(text)


def default_threads() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity on this platform (macOS, Windows)
        return max(1, os.cpu_count() or 1)
