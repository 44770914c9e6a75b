"""The one training loop of every ganedit trainer (GAN, self-conditioned fine-tune, encoder).

As in NVlabs' `training_loop`, an iteration is data: a list of `Phase` records (name,
interval, the function), run in order at the steps their interval divides. The loop around
the iterations is shared: resumption from the run folder's `checkpoint/`, the progress bar,
and the upkeep after a step on the writing process (stats lines, sample grids, checkpoints),
itself a list of phases that also run at the last step.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ganedit.errors import UserInputError
from ganedit.training.checkpoint import load_checkpoint, same_config, save_checkpoint
from ganedit.utils.files import atomic_path
from ganedit.utils.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    """One part of an iteration: `run(*args)` at steps >= `start` that `interval` divides
    (an interval of 0 never runs)."""

    name: str
    interval: int
    run: Callable[..., None]
    start: int = 0

    def due(self, step: int) -> bool:
        return step >= self.start and self.interval > 0 and step % self.interval == 0


def run_phases(phases: Sequence[Phase], step: int, *args) -> None:
    """Run the phases due at `step`, in their order."""
    for phase in phases:
        if phase.due(step):
            phase.run(*args)


@dataclass(frozen=True)
class Checkpointing:
    """What a trainer's checkpoint holds: named modules and optimizers, and the JSON meta
    `meta()` (step, config...) that `restore(meta)` reads back into the trainer."""

    modules: dict
    optimizers: dict
    meta: Callable[[], dict]
    restore: Callable[[dict], None]

    def save(self, directory: Path) -> None:
        save_checkpoint(directory, self.modules, self.optimizers, self.meta())

    def load(self, directory: Path) -> dict:
        meta = load_checkpoint(directory, self.modules, self.optimizers)
        self.restore(meta)
        return meta


def _as_is(stats: dict, rate: float) -> dict:
    return stats


@dataclass(frozen=True)
class Loop:
    """One trainer as the loop sees it.

    `step()` runs one iteration and returns its stats; `position()` is the number of finished
    iterations; `record(stats, rate)` is the line logged (and shown) for a step, `rate` its
    iterations a second so far; `shown(record)` the progress bar's fields; `upkeep` phases
    run after a step with (step, record) on the writing process, and all of them after the
    last step."""

    what: str
    total: int
    step: Callable[[], dict]
    position: Callable[[], int]
    checkpoints: Checkpointing
    upkeep: tuple[Phase, ...] = ()
    shown: Callable[[dict], dict] = dict
    record: Callable[[dict, float], dict] = _as_is


def train_loop(
    loop: Loop,
    run_dir: Path,
    resume: bool,
    progress: bool,
    writes: bool,
    check: Callable[[dict], None] | None = None,
) -> None:
    """Resume from run_dir/checkpoint (when asked and present; `check(meta)` may refuse it),
    then iterate to `loop.total`. Stats lines after the starting step are dropped first:
    they are computed again, so a resumed run logs each step once."""
    ckpt = run_dir / "checkpoint"
    if resume and (ckpt / "state.json").is_file():
        meta = loop.checkpoints.load(ckpt)
        if check is not None:
            check(meta)
        log.info("resuming %s from step %d", run_dir, loop.position())
    if writes:
        truncate_stats(run_dir / "stats.jsonl", loop.position())
    started, start_step = time.perf_counter(), loop.position()
    completed = min(start_step, loop.total)
    with progress_bar(loop.total, loop.what, progress, completed=completed) as bar:
        while loop.position() < loop.total:
            stats = loop.step()
            step = loop.position()
            record = loop.record(stats, (step - start_step) / (time.perf_counter() - started))
            bar.advance(1, **loop.shown(record))
            if writes:
                for task in loop.upkeep:
                    if task.due(step) or step == loop.total:
                        task.run(step, record)
    log.info("trained to step %d (pid %d)", loop.position(), os.getpid())


def upkeep(
    run_dir: Path,
    checkpoints: Checkpointing,
    draw: Callable[[Path], None],
    every: tuple[int, int, int],
) -> tuple[Phase, ...]:
    """The usual upkeep, at `every` = (stats, samples, checkpoint) intervals: a line of
    run_dir/stats.jsonl, a sample grid `draw(run_dir/samples/{step:07d}.png)`, run_dir/checkpoint."""

    def stats(step: int, record: dict) -> None:
        with (run_dir / "stats.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def samples(step: int, record: dict) -> None:
        draw(run_dir / "samples" / f"{step:07d}.png")

    def checkpoint(step: int, record: dict) -> None:
        checkpoints.save(run_dir / "checkpoint")

    return tuple(
        map(Phase, ("stats", "samples", "checkpoint"), every, (stats, samples, checkpoint))
    )


def refuse_another_config(meta: dict, cfg, free: tuple[str, ...], run_dir: Path, hint="") -> None:
    """A checkpoint's config must be `cfg` (a dataclass) but for the `free` fields."""
    if not same_config(meta["config"], cfg, free=free):
        raise UserInputError(
            f"expected the config of the run in {str(run_dir)!r}, received a different one{hint}"
        )


def truncate_stats(path: Path, step: int) -> None:
    """Keep the lines up to `step`: those after it are computed again."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError, TypeError, KeyError):
            if int(json.loads(line)["step"]) <= step:
                kept.append(line)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{line}\n" for line in kept))
