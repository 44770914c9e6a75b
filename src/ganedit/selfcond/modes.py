"""Normalising labels into anchor coordinates (the mode encoding itself is
`ganedit.models.modes`).

Each attribute's label v is mapped onto [0, 1] by the range [lo, hi] its data set spans
(the 0.5th and 99.5th percentiles, as SC-GAN does): t = clip((v - lo) / (hi - lo), 0, 1).
"""

from __future__ import annotations

import numpy as np

from ganedit.errors import UserInputError

PERCENTILES = (0.5, 99.5)


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
