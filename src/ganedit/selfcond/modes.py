"""Mode vectors: SC-GAN's soft 3-anchor encoding of k attribute values.

Each attribute's value v is placed on three anchors at the low end, the middle and the high
end of its range [lo, hi] (the 0.5th and 99.5th percentiles of the data set's labels), as
t = clip((v - lo) / (hi - lo), 0, 1) and the hat-function weights

    t < 1/2:  (1 - 2t, 2t, 0)        t >= 1/2:  (0, 2 - 2t, 2t - 1)

A mode vector for k attributes has M = 1 + 3k slots: slot 0 is the base mode (always 1),
slots 3a+1 .. 3a+3 hold attribute a's (low, middle, high) weights. The generator sees the
vector with every middle slot zeroed, so t = 1/2 means "neutral" (the base constant alone);
the discriminator's mode head is trained toward the full vector, middle included.
"""

from __future__ import annotations

import numpy as np
import torch

from ganedit.errors import UserInputError

PERCENTILES = (0.5, 99.5)


def num_modes(k: int) -> int:
    """M = 1 + 3k slots for k attributes."""
    return 1 + 3 * k


def label_ranges(values: np.ndarray, percentiles: tuple[float, float] = PERCENTILES) -> np.ndarray:
    """Per-attribute (lo, hi) ranges [k, 2] of labels [N, k]: their percentiles."""
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or len(values) == 0:
        raise UserInputError(f"expected labels of shape [N, k] with N > 0, received {values.shape}")
    if not np.isfinite(values).all():
        raise UserInputError("expected finite labels, received NaN or infinite values")
    lo, hi = np.percentile(values, percentiles, axis=0)
    flat = hi <= lo
    hi = np.where(flat, lo + 1.0, hi)  # a constant attribute maps to t = 0, not to a NaN
    return np.stack([lo, hi], axis=1)


def normalise(values: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """t = clip((v - lo) / (hi - lo), 0, 1): labels [N, k] -> [N, k] in [0, 1]."""
    values = np.asarray(values, np.float64)
    ranges = np.asarray(ranges, np.float64)
    if values.shape[-1] != len(ranges):
        raise UserInputError(
            f"expected {len(ranges)} attribute columns, received {values.shape[-1]}"
        )
    return np.clip((values - ranges[:, 0]) / (ranges[:, 1] - ranges[:, 0]), 0.0, 1.0)


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
