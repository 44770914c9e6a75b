"""The shared training loop: phases as data, resumption, stats truncation and upkeep."""

import json

import pytest
import torch

from ganedit.inversion.train_encoder import EncoderTrainConfig, encoder_phases
from ganedit.training.gan import GanConfig, gan_phases
from ganedit.training.loop import (
    Checkpointing,
    Loop,
    Phase,
    run_phases,
    train_loop,
    upkeep,
)


def test_a_phase_runs_from_its_start_at_the_steps_its_interval_divides():
    phase = Phase("p", 3, lambda: None, start=4)
    assert [s for s in range(13) if phase.due(s)] == [6, 9, 12]
    assert not any(Phase("off", 0, lambda: None).due(s) for s in range(5))


def test_due_phases_run_in_their_declared_order():
    seen = []
    phases = [Phase(name, every, lambda log, n=name: log.append(n)) for name, every in
              (("a", 1), ("b", 2), ("c", 1))]  # fmt: skip
    for step in range(3):
        run_phases(phases, step, seen)
    assert seen == ["a", "b", "c", "a", "c", "a", "b", "c"]


def test_the_trainers_declare_their_phases():
    assert [p.name for p in gan_phases(GanConfig())] == ["Dmain", "Dreg", "Gmain", "Greg", "Gema"]
    assert all(p.start == 7 for p in gan_phases(GanConfig(d_warmup=7))[2:])
    assert not gan_phases(GanConfig(path_regularize=0.0))[3].due(4)  # Greg off
    assert [p.name for p in encoder_phases(EncoderTrainConfig())] == ["Dmain", "Dreg", "Emain"]
    assert [p.name for p in encoder_phases(EncoderTrainConfig(adversarial=0.0))] == ["Emain"]


class _Toy:
    """A linear model fitted by SGD on batches drawn from (step): a trainer in miniature."""

    def __init__(self, total: int, run_dir, crash_at: int | None = None):
        torch.manual_seed(0)
        self.net = torch.nn.Linear(3, 1)
        self.optim = torch.optim.Adam(self.net.parameters(), lr=0.1, betas=(0.9, 0.999))
        self.step_count, self.crash_at, self.drawn = 0, crash_at, []
        self.checkpoints = Checkpointing(
            {"net": self.net},
            {"optim": self.optim},
            lambda: {"step": self.step_count},
            lambda meta: setattr(self, "step_count", int(meta["step"])),
        )
        self.loop = Loop(
            what="toy",
            total=total,
            step=self.step,
            position=lambda: self.step_count,
            checkpoints=self.checkpoints,
            upkeep=upkeep(run_dir, self.checkpoints, self.drawn.append, (1, 0, 3)),
            shown=lambda record: {"loss": record["loss"]},
        )

    def step(self) -> dict:
        if self.step_count == self.crash_at:
            raise KeyboardInterrupt
        x = torch.randn(4, 3, generator=torch.Generator().manual_seed(self.step_count))
        loss = (self.net(x) - x.sum(1, keepdim=True)).square().mean()
        self.optim.zero_grad()
        loss.backward()
        self.optim.step()
        self.step_count += 1
        return {"step": self.step_count, "loss": loss.item()}


def _lines(run_dir) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "stats.jsonl").read_text().splitlines()]


def test_a_crashed_run_resumes_from_its_checkpoint_as_an_uninterrupted_one(tmp_path):
    full_dir, part_dir = tmp_path / "full", tmp_path / "part"
    for folder in (full_dir, part_dir):
        folder.mkdir()
    full = _Toy(8, full_dir)
    train_loop(full.loop, full_dir, resume=True, progress=False, writes=True)
    with pytest.raises(KeyboardInterrupt):  # after the step-6 checkpoint and step 7's line
        train_loop(_Toy(8, part_dir, crash_at=7).loop, part_dir, True, False, True)
    assert [r["step"] for r in _lines(part_dir)] == list(range(1, 8))
    resumed = _Toy(8, part_dir)
    train_loop(resumed.loop, part_dir, resume=True, progress=False, writes=True)
    assert resumed.step_count == 8
    assert resumed.drawn == [part_dir / "samples" / "0000008.png"]  # interval 0: the last only
    assert [r["step"] for r in _lines(part_dir)] == list(range(1, 9))  # step 7 logged once
    assert [r["loss"] for r in _lines(part_dir)] == [r["loss"] for r in _lines(full_dir)]
    for key, value in full.net.state_dict().items():
        assert torch.equal(resumed.net.state_dict()[key], value)


def test_a_refused_resume_and_a_fresh_start(tmp_path):
    toy = _Toy(4, tmp_path)
    train_loop(toy.loop, tmp_path, resume=True, progress=False, writes=True)
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text())["meta"]["step"] == 4

    def refuse(meta):
        raise ValueError(f"saved at {meta['step']}")

    with pytest.raises(ValueError, match="saved at 4"):
        train_loop(_Toy(6, tmp_path).loop, tmp_path, True, False, True, check=refuse)
    fresh = _Toy(2, tmp_path)  # not resuming: starts at 0 and its stats replace the old ones
    train_loop(fresh.loop, tmp_path, resume=False, progress=False, writes=True)
    assert fresh.step_count == 2 and [r["step"] for r in _lines(tmp_path)] == [1, 2]
