"""Mode vectors of a self-conditioned generator: SC-GAN's soft 3-anchor encoding.

Each attribute's anchor coordinate t in [0, 1] (its value within the range the labels span,
`ganedit.selfcond.modes.normalise`) is placed on three anchors, low, middle and high, with
the hat-function weights

    t < 1/2:  (1 - 2t, 2t, 0)        t >= 1/2:  (0, 2 - 2t, 2t - 1)

A mode vector for k attributes has M = 1 + 3k slots: slot 0 is the base mode (always 1),
slots 3a+1 .. 3a+3 hold attribute a's (low, middle, high) weights. The generator sees the
vector with every middle slot zeroed, so t = 1/2 means "neutral" (the base constant alone);
the discriminator's mode head is trained toward the full vector, middle included.
"""

from __future__ import annotations

import torch

from ganedit.errors import UserInputError

NEUTRAL = 0.5


def num_modes(k: int) -> int:
    """M = 1 + 3k slots for k attributes."""
    return 1 + 3 * k


def anchor_weights(t: torch.Tensor) -> torch.Tensor:
    """Hat-function weights [..., 3] (low, middle, high) of t [...] in [0, 1]."""
    t = t.clamp(0.0, 1.0)
    low = (1.0 - 2.0 * t).clamp_min(0.0)
    high = (2.0 * t - 1.0).clamp_min(0.0)
    return torch.stack([low, 1.0 - low - high, high], dim=-1)


def mode_vector(t, for_generator: bool) -> torch.Tensor:
    """Mode vectors [N, 1 + 3k] of anchor coordinates t [N, k] (numpy or torch).

    for_generator=True zeroes every attribute's middle slot (what the generator is fed);
    False keeps it (the mode head's target)."""
    t = torch.as_tensor(t, dtype=torch.float32)
    if t.ndim != 2:
        raise UserInputError(
            f"expected anchor coordinates of shape [N, k], received {tuple(t.shape)}"
        )
    weights = anchor_weights(t)  # [N, k, 3]
    if for_generator:
        weights = weights * weights.new_tensor([1.0, 0.0, 1.0])
    base = torch.ones(len(t), 1, dtype=weights.dtype, device=weights.device)
    return torch.cat([base, weights.flatten(1)], dim=1)


def coordinates(modes: torch.Tensor) -> torch.Tensor:
    """Anchor coordinates t [N, k] back from mode vectors [N, 1 + 3k] (either form):
    t = (1 + high - low) / 2, exact for vectors made by `mode_vector`."""
    m = modes.shape[1] - 1
    if m % 3:
        raise UserInputError(f"expected mode vectors of length 1 + 3k, received {modes.shape[1]}")
    triples = modes[:, 1:].reshape(len(modes), m // 3, 3)
    return (1.0 + triples[..., 2] - triples[..., 0]) / 2.0


def parse_mode_settings(settings, attributes: list[str]) -> dict[str, float]:
    """{"smile": 0.9, ...} from ["smile=0.9", ...] (t in [0, 1], attributes of the model)."""
    out: dict[str, float] = {}
    for text in settings:
        name, sep, value = str(text).partition("=")
        name = name.strip()
        try:
            t = float(value) if sep else float("nan")
        except ValueError:
            t = float("nan")
        if not sep or not 0.0 <= t <= 1.0:
            raise UserInputError(
                f"expected a mode setting ATTR=T with T in [0, 1], received {text!r}"
            )
        if name not in attributes:
            raise UserInputError(f"expected a mode attribute among {attributes}, received {name!r}")
        if name in out:
            raise UserInputError(f"expected each mode attribute once, received {name!r} twice")
        out[name] = t
    return out


def mode_targets(
    t0: torch.Tensor, settings: dict[str, float], attributes: list[str]
) -> torch.Tensor:
    """Anchor coordinates [N, k]: t0's, with the set attributes' columns replaced."""
    t = t0.clone()
    for name, value in settings.items():
        t[:, attributes.index(name)] = value
    return t


@torch.no_grad()
def read_modes(d, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Anchor coordinates t [N, k] of images [N, 3, H, W] in [-1, 1], read by a
    discriminator's mode head: per attribute, the softmax over (low, middle, high) and its
    expected position, t = p_middle / 2 + p_high. Images are resized (area) to the
    discriminator's resolution."""
    import torch.nn.functional as F

    size = d.config["size"]
    parts = []
    for i in range(0, len(images), batch_size):
        batch = images[i : i + batch_size].to(next(d.parameters()).device)
        if batch.shape[-1] != size:
            batch = F.interpolate(batch, size=(size, size), mode="area")
        _, logits = d.forward_with_modes(batch)
        n, m = logits.shape
        p = F.softmax(logits[:, 1:].reshape(n, (m - 1) // 3, 3), dim=-1)  # [n, k, 3]
        parts.append(coordinates(torch.cat([logits.new_ones(n, 1), p.flatten(1)], 1)).cpu())
    return torch.cat(parts) if parts else torch.zeros(0, 0)
