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
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganedit.choices import EDIT_MODES
from ganedit.errors import UserInputError
from ganedit.models.predictors import attribute_logit
from ganedit.utils.files import atomic_path
from ganedit.utils.images import format_strength, labelled_grid, to_uint8
from ganedit.utils.stats import roc_auc

log = logging.getLogger(__name__)

MODES = EDIT_MODES


def split_modes(values: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """`--mode` values: at most one of relative/absolute (default relative), and any number
    of ATTR=T settings of a self-conditioned generator's modes, kept in their order."""
    kinds = [v for v in values if "=" not in v]
    settings = tuple(v for v in values if "=" in v)
    for kind in kinds:
        if kind not in MODES:
            raise UserInputError(
                f"expected --mode among {list(MODES)} or ATTR=T, received {kind!r}"
            )
    if len(set(kinds)) > 1:
        raise UserInputError(f"expected one of {list(MODES)} for --mode, received {kinds}")
    return (kinds[0] if kinds else "relative"), settings


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


def restrict_to_layers(direction, num_ws: int, layers: tuple[int, int]) -> np.ndarray:
    """A [D] or [num_ws, D] direction as the [num_ws, D] one `--layers START:STOP` moves ws
    codes by: the direction in rows START..STOP-1, zero elsewhere (no renormalisation, so a
    step moves each of those rows as far as an unrestricted edit moves it)."""
    d = np.asarray(direction, np.float32)
    if d.ndim == 1:
        d = np.broadcast_to(d, (num_ws, d.shape[0]))
    if d.ndim != 2 or d.shape[0] != num_ws:
        raise UserInputError(
            f"expected a direction of shape [D] or [{num_ws}, D], received {list(d.shape)}"
        )
    return d * _layer_mask(num_ws, layers).numpy()


def check_fits(directions, latents: torch.Tensor, layers: tuple[int, int] | None) -> None:
    """Refuse, before any work, directions of another shape than a latent row of `latents`
    [N, D] or [N, L, D], and a `layers` range outside its rows (or without ws latents)."""
    for direction in directions:
        _as_direction(direction, latents, layers)
    if layers is not None:
        if latents.ndim == 2:
            raise UserInputError("expected --layers only with ws latents, received z/w latents")
        _layer_mask(latents.shape[1], layers)


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


WEAK_AUC = 0.6  # |AUC - 0.5| below 0.1: the direction hardly separates its attribute
WEAK_T = 3.0  # the mean logit change is within 3 standard errors of zero
DEFAULT_BOUND = 0.5  # a calibrated step moves at most this share of the latents' span


@dataclass(frozen=True)
class Calibration:
    """How strongly a direction moves its attribute, measured with the evaluator.

    slope: evaluator logit change of the target per latent unit along the direction (central
    difference over the probe samples); t: its mean over its standard error; auc: held-out
    ROC AUC of the probe samples' position along the direction against the evaluator's labels
    (nan when a class has fewer than 5 samples); span: (min, max) of the position along the
    direction over the reference latents, which bounds calibrated steps.
    """

    attribute: str
    slope: float
    t: float
    auc: float
    span: tuple[float, float]
    n: int

    @property
    def weak(self) -> bool:
        """The direction barely moves its target: calibrated units would amplify noise."""
        auc_weak = math.isfinite(self.auc) and abs(self.auc - 0.5) < WEAK_AUC - 0.5
        return auc_weak or abs(self.t) < WEAK_T

    @property
    def width(self) -> float:
        return self.span[1] - self.span[0]

    def latent_step(self, strengths, bound: float | None = DEFAULT_BOUND) -> tuple[float, bool]:
        """Latent units per calibrated unit for edits up to max |strengths|, and whether the
        bound (a step of at most `bound` x the span width) made it smaller than 1 / slope."""
        if self.weak:
            raise UserInputError(self.weak_message())
        per_unit = 1.0 / self.slope
        largest = max((abs(float(s)) for s in strengths), default=0.0)
        if bound is None or largest == 0 or largest * abs(per_unit) <= bound * self.width:
            return per_unit, False
        return math.copysign(bound * self.width / largest, per_unit), True

    def weak_message(self) -> str:
        auc = f"AUC {self.auc:.2f}, " if math.isfinite(self.auc) else ""
        return (
            f"expected a direction that moves {self.attribute!r} for calibrated units, received "
            f"one that barely does ({auc}{self.slope:+.3g} logits per latent unit, t = "
            f"{self.t:.1f}); calibrating it would amplify noise. Edit in latent units without "
            "--calibrated, or learn the direction from more or more confident samples"
        )

    def to_dict(self) -> dict:
        return {
            "attribute": self.attribute,
            "logit_slope": self.slope,
            "t": self.t,
            "auc": self.auc if math.isfinite(self.auc) else None,
            "span": list(self.span),
            "n": self.n,
            "weak": self.weak,
        }


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
    reference=None,
    progress: bool = False,
) -> Calibration:
    """Measure `direction` on n probe latents: logit slope (so a calibrated strength c is the
    latent step c / slope: "1 unit" is the same expected change for every attribute and
    method), its significance, the direction's AUC, and the span of the latents along it.

    `reference`: latents that the span must also cover (e.g. the ones about to be edited);
    the span is taken over them and 2,048 latents drawn with `seed`, whose mapping is cheap.
    """
    latents = sample_latents(source, n, seed, space)
    up = move(latents, direction, probe, layers=layers)
    down = move(latents, direction, -probe, layers=layers)
    images = source.synthesize(torch.cat([latents, up, down]), space, progress=progress)
    logits = attribute_logit(evaluator, images, attribute).reshape(3, n)
    change = (logits[1] - logits[2]) / (2 * probe)  # [n]
    slope = float(change.mean())
    spread = float(change.std(ddof=1)) if n > 1 else 0.0
    t = slope / (spread / math.sqrt(n)) if spread > 0 else math.copysign(math.inf, slope)
    position = _position(latents, direction, layers)
    auc = _auc(position, logits[0] >= 0)
    span_set = [sample_latents(source, 2048, seed + 1, space)]
    if reference is not None:
        span_set.append(torch.as_tensor(reference))
    everywhere = np.concatenate([_position(x, direction, layers) for x in span_set])
    log.debug("calibration: %s %.3f logits per unit (t %.1f, AUC %.3f)", attribute, slope, t, auc)
    span = (float(everywhere.min()), float(everywhere.max()))
    return Calibration(attribute, slope, float(t), auc, span, n)


def _position(latents: torch.Tensor, direction, layers) -> np.ndarray:
    """Where each latent sits along the direction, in the units a relative step moves: [N].

    A [D] direction applied to several ws rows moves each row by the step, so the position
    is the mean over the edited rows; a z/w or per-layer [L, D] direction is one vector."""
    latents = torch.as_tensor(latents)
    d = _as_direction(direction, latents, layers).double()
    total = (latents.double() * d).reshape(len(latents), -1).sum(1)
    if latents.ndim == 3 and np.ndim(np.asarray(direction)) == 1:
        total = total / (d.norm(dim=-1) > 0).sum()
    return total.numpy()


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    positive, negative = score[label], score[~label]
    if min(len(positive), len(negative)) < 5:
        return float("nan")
    return roc_auc(positive, negative)


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


def save_strip(
    frames: torch.Tensor,
    path: str | Path,
    strengths: Sequence[float] | None = None,
    title: str | None = None,
    scale: int = 1,
    row_labels: Sequence[str] | None = None,
) -> Path:
    """One row per sample, one column per strength, labelled with the strength per column,
    the sample per row and a title. frames: [S, N, 3, H, W]."""
    s, n = frames.shape[:2]
    images = to_uint8(frames.transpose(0, 1).reshape(s * n, *frames.shape[2:]))
    labels = None if strengths is None else [format_strength(v) for v in strengths]
    rows = list(row_labels) if row_labels is not None else [f"#{i}" for i in range(n)]
    picture = labelled_grid(images, s, col_labels=labels, row_labels=rows, title=title, scale=scale)
    with atomic_path(path) as tmp:
        Image.fromarray(picture).save(tmp, format="png")
    return Path(path)


def save_gif(
    frames: torch.Tensor,
    path: str | Path,
    strengths: Sequence[float] | None = None,
    title: str | None = None,
    scale: int = 1,
    duration_ms: int = 120,
) -> Path:
    """An animation that sweeps the strengths forth and back; each frame shows every sample,
    titled with its strength. frames: [S, N, 3, H, W]."""
    n = frames.shape[1]
    pictures = []
    for k, frame in enumerate(frames):
        caption = None
        if strengths is not None:
            caption = (
                f"{title}: {format_strength(strengths[k])}"
                if title
                else format_strength(strengths[k])
            )
        picture = labelled_grid(to_uint8(frame), n, title=caption, scale=scale)
        pictures.append(Image.fromarray(picture))
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


def mode_sweep_grid(
    source, per_attribute: int, seed: int, t_grid=(0.0, 0.25, 0.5, 0.75, 1.0), own=None
):
    """uint8 image grid [H, W, 3]: per mode attribute, `per_attribute` faces (z of seed) in a
    row each, across `t_grid` for that attribute with the others neutral, or at each face's
    own coordinates `own` [per_attribute, k] (say, the data's modes `sample` draws)."""
    from ganedit.utils.images import grid, to_uint8

    layout = source.require_modes()
    w = source.to_w(source.sample_z(per_attribute, seed))
    rows = []
    for k in range(layout.k):
        for i in range(per_attribute):
            start = layout.neutral(1) if own is None else torch.as_tensor(own[i : i + 1])
            coords = start.float().repeat(len(t_grid), 1)
            coords[:, k] = torch.as_tensor(t_grid, dtype=torch.float32)
            modes = layout.generator_vector(coords)
            latents = w[i : i + 1].expand(len(t_grid), -1)
            rows.append(source.synthesize(latents, "w", modes=modes))
    return grid(to_uint8(torch.cat(rows)), cols=len(t_grid))
