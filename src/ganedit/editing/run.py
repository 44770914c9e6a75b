"""`ganedit edit`: latents in, strip + GIF + edited codes out."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganedit.directions.io import load_boundary
from ganedit.editing.edit import (
    calibrate,
    edit_images,
    move_many,
    sample_latents,
    save_gif,
    save_strip,
)
from ganedit.errors import UserInputError
from ganedit.utils.files import atomic_dir, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EditConfig:
    boundaries: tuple[str, ...]
    generator: str = "world64"
    space: str = "w"
    n: int = 4
    seed: int = 0
    latents: str | None = None  # a bank or .npy; None: sample n
    start: float = -3.0
    end: float = 3.0
    steps: int = 7
    strengths: tuple[float, ...] = field(default_factory=tuple)  # several boundaries at once
    mode: str = "relative"
    layers: tuple[int, int] | None = None
    calibrated: bool = False  # strengths in evaluator-logit units of each target attribute
    evaluator: str = "evaluator"


def _input_latents(cfg: EditConfig, source) -> torch.Tensor:
    if cfg.latents is None:
        return sample_latents(source, cfg.n, cfg.seed, cfg.space)
    from ganedit.directions.fit import load_latents

    codes, _ = load_latents(cfg.latents, cfg.space, stop=cfg.n)
    return torch.from_numpy(codes)


def _unit_scale(cfg: EditConfig, source, direction, sidecar: dict) -> float:
    """Latent units per strength unit: 1, or 1 / (evaluator logit slope) when calibrated."""
    if not cfg.calibrated:
        return 1.0
    from ganedit.models.registry import load_predictor

    attribute = sidecar.get("attribute")
    if attribute is None:
        raise UserInputError(
            "expected a boundary with a JSON sidecar naming its attribute for --calibrated, "
            "received one without"
        )
    evaluator = load_predictor(cfg.evaluator).eval()
    slope = calibrate(source, direction, cfg.space, evaluator, attribute, layers=cfg.layers)
    return 1.0 / slope


def run_edit(cfg: EditConfig, out: str | Path, device: str = "cpu") -> Path:
    """Write strip.png, edit.gif, latents.npy (unedited) and config.json into `out`."""
    from ganedit.models.sources import load_generator

    source = load_generator(cfg.generator, device)
    loaded = [load_boundary(b) for b in cfg.boundaries]
    latents = _input_latents(cfg, source)
    scales = [_unit_scale(cfg, source, d, meta) for d, meta in loaded]
    with atomic_dir(out) as tmp:
        if len(loaded) == 1:
            frames = _single(cfg, source, latents, loaded[0], scales[0])
        else:
            frames = _combined(cfg, source, latents, loaded, scales)
        save_strip(frames, tmp / "strip.png")
        save_gif(frames, tmp / "edit.gif")
        np.save(tmp / "latents.npy", latents.numpy())
        write_json(tmp / "config.json", {**dataclasses.asdict(cfg), "latent_units": scales})
    return Path(out)


def _single(cfg, source, latents, loaded, scale) -> torch.Tensor:
    direction, meta = loaded
    strengths = np.linspace(cfg.start, cfg.end, cfg.steps) * scale
    intercept = float(meta.get("intercept") or 0.0)
    return edit_images(
        source, latents, cfg.space, direction, strengths.tolist(), cfg.mode, intercept, cfg.layers
    )


def _combined(cfg, source, latents, loaded, scales) -> torch.Tensor:
    """Several directions: sweep from 0 to the given strengths (relative offsets add up)."""
    if len(cfg.strengths) != len(loaded):
        raise UserInputError(
            f"expected one --strength per boundary ({len(loaded)}), received {len(cfg.strengths)}"
        )
    if cfg.mode != "relative":
        raise UserInputError(
            f"expected --mode relative with several boundaries, received {cfg.mode}"
        )
    frames = []
    for t in np.linspace(0.0, 1.0, cfg.steps):
        strengths = [t * s * k for s, k in zip(cfg.strengths, scales, strict=True)]
        moved = move_many(latents, [d for d, _ in loaded], strengths, cfg.layers)
        frames.append(source.synthesize(moved, cfg.space))
    return torch.stack(frames)
