"""Move latents along directions, calibrate edit strengths, and render the results.

Two conventions for a strength s along a unit direction d (intercept b):
- "relative" (default): x + s d, the same offset whatever the starting point; several
  directions add up;
- "absolute" (the reference's 2-D mode): x + (s - (x.d + b)) d, so every result sits at
  signed distance s from the boundary hyperplane. The reference measures that distance from a
  hyperplane through the origin; ganedit uses the boundary's own intercept when it has one.
In ws space a [D] direction moves every layer in `layers` (all by default); a [L, D] direction
is used as it is, restricted to `layers`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganedit.errors import UserInputError
from ganedit.utils.files import atomic_path
from ganedit.utils.images import grid, to_uint8

log = logging.getLogger(__name__)

MODES = ("relative", "absolute")


def _layer_mask(num_ws: int, layers: tuple[int, int] | None) -> torch.Tensor:  # [L, 1]
    start, stop = layers if layers is not None else (0, num_ws)
    if not 0 <= start < stop <= num_ws:
        raise UserInputError(
            f"expected a layer range within 0..{num_ws} (start < stop), received {start}:{stop}"
        )
    rows = torch.arange(num_ws)
    return ((rows >= start) & (rows < stop)).float()[:, None]


def _as_direction(direction, latents: torch.Tensor, layers) -> torch.Tensor:
    """The direction shaped like one latent row ([D] or [L, D]), zero outside `layers`."""
    d = torch.as_tensor(np.asarray(direction), dtype=latents.dtype, device=latents.device)
    row = latents.shape[1:]
    if latents.ndim == 2:
        if layers is not None:
            raise UserInputError("expected --layers only with ws latents, received z/w latents")
        if d.shape != row:
            raise UserInputError(
                f"expected a direction of shape {tuple(row)}, received {tuple(d.shape)}"
            )
        return d
    if d.ndim == 1:
        d = d[None].expand(row[0], -1)
    if d.shape != row:
        raise UserInputError(
            f"expected a direction of shape [{row[1]}] or {tuple(row)}, received {tuple(d.shape)}"
        )
    return d * _layer_mask(row[0], layers).to(d)


def move(
    latents: torch.Tensor,
    direction,
    strength,
    mode: str = "relative",
    intercept: float = 0.0,
    layers: tuple[int, int] | None = None,
) -> torch.Tensor:
    """latents [N, D] or [N, L, D] moved along `direction` by `strength` (scalar or [N])."""
    if mode not in MODES:
        raise UserInputError(f"expected an edit mode in {MODES}, received {mode!r}")
    d = _as_direction(direction, latents, layers)
    s = torch.as_tensor(strength, dtype=latents.dtype, device=latents.device).reshape(-1)
    s = s.reshape(-1, *([1] * (latents.ndim - 1)))  # [N or 1, 1(, 1)]
    if mode == "relative":
        return latents + s * d
    # Absolute: per edited row (one in z/w, each layer in ws), set the signed distance to s.
    unit = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    edited = (d.norm(dim=-1, keepdim=True) > 0).to(latents)
    distance = (latents * unit).sum(-1, keepdim=True) + intercept
    return latents + edited * (s - distance) * unit


def move_many(
    latents: torch.Tensor,
    directions: Sequence,
    strengths: Sequence[float],
    layers: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Relative edit along several directions at once (their offsets add up)."""
    if len(directions) != len(strengths):
        raise UserInputError(
            f"expected one strength per direction ({len(directions)}), received {len(strengths)}"
        )
    out = latents
    for direction, strength in zip(directions, strengths, strict=True):
        out = move(out, direction, strength, "relative", layers=layers)
    return out


@torch.no_grad()
def target_logit(evaluator, images: torch.Tensor, attribute: str, batch_size: int = 256):
    """The evaluator's logit for `attribute`: float32 [N] (unbounded, unlike probabilities)."""
    if attribute not in evaluator.attributes:
        raise UserInputError(
            f"expected an attribute of the evaluator {tuple(evaluator.attributes)}, received {attribute!r}"
        )
    k = list(evaluator.attributes).index(attribute)
    device = next(evaluator.parameters()).device
    parts = [
        evaluator(images[i : i + batch_size].to(device))[0][:, k].cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(parts).numpy()


def calibrate(
    source,
    direction,
    space: str,
    evaluator,
    attribute: str,
    n: int = 128,
    seed: int = 12345,
    probe: float = 1.0,
    layers: tuple[int, int] | None = None,
) -> float:
    """Evaluator logit change of `attribute` per unit latent step along `direction`.

    Central difference over n samples at +-probe; a calibrated strength c is the latent step
    c / slope, so "1 unit" means the same expected change for every attribute and method.
    """
    latents = sample_latents(source, n, seed, space)
    up = move(latents, direction, probe, layers=layers)
    down = move(latents, direction, -probe, layers=layers)
    images_up = source.synthesize(up, space)
    images_down = source.synthesize(down, space)
    change = target_logit(evaluator, images_up, attribute) - target_logit(
        evaluator, images_down, attribute
    )
    slope = float(np.mean(change) / (2 * probe))
    if abs(slope) < 1e-6:
        raise UserInputError(
            f"expected a direction that changes {attribute!r}, received one whose measured "
            f"logit slope is {slope:.2g} per unit"
        )
    log.debug("calibration: %s changes by %.3f logits per latent unit", attribute, slope)
    return slope


def sample_latents(source, n: int, seed: int, space: str) -> torch.Tensor:
    """n latents in `space` ([N, D] or [N, L, D]); row i depends only on (seed, i)."""
    z = source.sample_z(n, seed)
    if space == "z":
        return z
    if space not in source.spaces:
        raise UserInputError(f"expected a latent space in {source.spaces}, received {space!r}")
    return source.to_w(z) if space == "w" else source.to_ws(z, "z")


def edit_images(
    source,
    latents: torch.Tensor,
    space: str,
    direction,
    strengths: Sequence[float],
    mode: str = "relative",
    intercept: float = 0.0,
    layers: tuple[int, int] | None = None,
    batch_size: int = 64,
) -> torch.Tensor:  # [S, N, 3, H, W] in [-1, 1]
    frames = [
        source.synthesize(
            move(latents, direction, s, mode, intercept, layers), space, batch_size=batch_size
        )
        for s in strengths
    ]
    return torch.stack(frames)


def save_strip(frames: torch.Tensor, path: str | Path) -> Path:
    """One row per sample, one column per strength."""
    s, n = frames.shape[:2]
    images = to_uint8(frames.transpose(0, 1).reshape(s * n, *frames.shape[2:]))
    with atomic_path(path) as tmp:
        Image.fromarray(grid(images, cols=s)).save(tmp, format="png")
    return Path(path)


def save_gif(frames: torch.Tensor, path: str | Path, duration_ms: int = 120) -> Path:
    """An animation that sweeps the strengths forth and back; each frame shows every sample."""
    n = frames.shape[1]
    pictures = [Image.fromarray(grid(to_uint8(f), cols=n)) for f in frames]
    pictures = pictures + pictures[-2:0:-1]
    with atomic_path(path) as tmp:
        pictures[0].save(
            tmp,
            format="gif",
            save_all=True,
            append_images=pictures[1:],
            duration=duration_ms,
            loop=0,
        )
    return Path(path)
