"""Training of the measuring networks on renders made on the fly.

Batch b of a run is a pure function of (data_seed, b), so a resumed run sees exactly the
data an uninterrupted one would. Labeler, evaluator and identity embedder draw from
different data seeds (disjoint renders) and different initialisation seeds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganedit.choices import PREDICTORS
from ganedit.errors import UserInputError
from ganedit.models.predictors import YAW_SCALE, AttributeNet, IdentityNet
from ganedit.models.registry import save_pretrained
from ganedit.training.checkpoint import load_checkpoint, same_config, save_checkpoint
from ganedit.utils.context import RunContext
from ganedit.utils.files import open_run_folder, output_lock, write_json
from ganedit.utils.progress import progress_bar
from ganedit.world.config import BINARY_ATTRIBUTES, load_world_config
from ganedit.world.factors import (
    FACE_FACTORS,
    SCENE_FACTORS,
    Factors,
    sample_attributes,
    sample_factors,
    sample_identity,
)
from ganedit.world.render import render

log = logging.getLogger(__name__)
KINDS = PREDICTORS  # every shipped measuring network can be trained again


@dataclass(frozen=True)
class PredictorTrainConfig:
    kind: str = "labeler"
    steps: int = 700
    batch_size: int = 96
    lr: float = 2e-3
    weight_decay: float = 1e-4
    arch: str = "plain"
    width: int = 24
    image_size: int = 64
    preset: str = "balanced"
    seed: int = 0  # initialisation
    data_seed: int = 101  # renders
    temperature: float = 0.1  # identity contrastive loss
    checkpoint_every: int = 250

    @classmethod
    def for_kind(cls, kind: str, **overrides) -> PredictorTrainConfig:
        """The shipped recipe for each kind; overrides replace single fields."""
        defaults = {
            "labeler": {"arch": "plain", "steps": 700, "seed": 1, "data_seed": 101},
            "evaluator": {"arch": "residual", "steps": 700, "seed": 2, "data_seed": 202},
            "identity": {
                "arch": "plain",
                "steps": 500,
                "seed": 3,
                "data_seed": 303,
                "batch_size": 128,
            },
        }
        if kind not in defaults:
            raise ValueError(f"expected kind in {KINDS}, received {kind!r}")
        return cls(kind=kind, **{**defaults[kind], **overrides})


def build_model(cfg: PredictorTrainConfig) -> torch.nn.Module:
    torch.manual_seed(cfg.seed)
    if cfg.kind == "identity":
        return IdentityNet(arch=cfg.arch, width=cfg.width, image_size=cfg.image_size)
    return AttributeNet(arch=cfg.arch, width=cfg.width, image_size=cfg.image_size)


def attribute_batch(cfg: PredictorTrainConfig, step: int) -> tuple[torch.Tensor, Factors]:
    world = load_world_config(cfg.preset)
    factors = sample_factors(world, cfg.data_seed, step * cfg.batch_size, cfg.batch_size)
    return render(factors, cfg.image_size), factors


def identity_batch(cfg: PredictorTrainConfig, step: int) -> torch.Tensor:
    """2B renders: person i twice, each time with its own attributes, pose and scene.

    Only the face factors are shared, so the embedder learns who is pictured, not where
    (background, clothes, framing and light are nuisances, as for a face-recognition net).
    """
    world = load_world_config(cfg.preset)
    index = np.arange(step * cfg.batch_size, (step + 1) * cfg.batch_size)
    face = sample_identity(cfg.data_seed, index)
    views = []
    for view in range(2):
        cols = sample_attributes(world, cfg.data_seed * 7919 + 1 + view, index)
        scene = sample_identity(cfg.data_seed * 7919 + 3 + view, index)
        cols.update({k: face[k] for k in FACE_FACTORS})
        cols.update({k: scene[k] for k in SCENE_FACTORS})
        views.append(render(Factors(cols), cfg.image_size))
    return torch.cat(views)


def attribute_loss(
    model: AttributeNet, images: torch.Tensor, factors: Factors
) -> tuple[torch.Tensor, dict]:
    labels = torch.as_tensor(np.stack([factors[f"{a}_label"] for a in BINARY_ATTRIBUTES], 1))
    yaw = torch.as_tensor(factors["yaw"])
    logits, yaw_pred = model(images)
    bce = F.binary_cross_entropy_with_logits(logits, labels)
    reg = F.smooth_l1_loss(yaw_pred / YAW_SCALE, yaw / YAW_SCALE, beta=0.05)
    acc = ((logits > 0).float() == labels).float().mean().item()
    mae = (yaw_pred - yaw).abs().mean().item()
    return bce + 4.0 * reg, {"bce": bce.item(), "acc": acc, "yaw_mae": mae}


def contrastive_loss(
    model: IdentityNet, images: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, dict]:
    """NT-Xent: each view must pick its partner view among all others in the batch."""
    emb = model(images)
    n = emb.shape[0] // 2
    sim = emb @ emb.T / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    loss = F.cross_entropy(sim, target)
    acc = (sim.argmax(1) == target).float().mean().item()
    return loss, {"ntxent": loss.item(), "top1": acc}


def _lr_at(cfg: PredictorTrainConfig, step: int) -> float:
    warmup = max(1, cfg.steps // 50)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, cfg.steps - warmup)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def train_step(model, opt, cfg: PredictorTrainConfig, step: int) -> dict:
    for group in opt.param_groups:
        group["lr"] = _lr_at(cfg, step)
    model.train()
    if cfg.kind == "identity":
        loss, stats = contrastive_loss(model, identity_batch(cfg, step), cfg.temperature)
    else:
        images, factors = attribute_batch(cfg, step)
        loss, stats = attribute_loss(model, images, factors)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return stats


def train_predictor(
    cfg: PredictorTrainConfig,
    run_dir: str | Path,
    resume: bool = True,
    *,
    ctx: RunContext = RunContext(),
) -> Path:
    """Train one measuring network in `run_dir`; returns the folder of the final model.

    Checkpoints every `checkpoint_every` steps to `run_dir/checkpoint`; with `resume`, an
    existing checkpoint is continued from its step.
    """
    run_dir = Path(run_dir)
    with output_lock(run_dir):
        open_run_folder(run_dir, "train-predictor", adopt=("train_config.json",))
        return _train(cfg, run_dir, resume, ctx.progress)


def _train(cfg: PredictorTrainConfig, run_dir: Path, resume: bool, progress: bool) -> Path:
    write_json(run_dir / "train_config.json", dataclasses.asdict(cfg))
    model = build_model(cfg)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99)
    )
    start = _maybe_resume(run_dir / "checkpoint", model, opt, cfg) if resume else 0
    started = time.perf_counter()
    with (
        (run_dir / "stats.jsonl").open("a") as stats_file,
        progress_bar(cfg.steps, f"train {cfg.kind}", progress, completed=start) as bar,
    ):
        for step in range(start, cfg.steps):
            stats = train_step(model, opt, cfg, step)
            bar.advance(1, **stats)
            if (step + 1) % 50 == 0 or step + 1 == cfg.steps:
                stats_file.write(json.dumps({"step": step + 1, **stats}) + "\n")
                stats_file.flush()
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
                meta = {"step": step + 1, "config": dataclasses.asdict(cfg)}
                save_checkpoint(run_dir / "checkpoint", {"model": model}, {"optimizer": opt}, meta)
    elapsed = time.perf_counter() - started
    log.info("trained %s for %d steps in %.0f s", cfg.kind, cfg.steps - start, elapsed)
    extra = {"kind": cfg.kind, "train_config": dataclasses.asdict(cfg)}
    return save_pretrained(model.eval(), run_dir / "model", extra=extra, overwrite=True)


def _maybe_resume(ckpt: Path, model, opt, cfg: PredictorTrainConfig) -> int:
    if not (ckpt / "state.json").is_file():
        return 0
    meta = load_checkpoint(ckpt, {"model": model}, {"optimizer": opt})
    if not same_config(meta["config"], cfg):
        raise UserInputError(
            f"expected the configuration of the checkpoint in {str(ckpt)!r} to resume it, "
            "received another one (use another run folder, or --no-resume to start afresh)"
        )
    log.info("resuming %s from step %d", cfg.kind, meta["step"])
    return int(meta["step"])
