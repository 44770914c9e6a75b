"""Ground-truth factors of the face world: attributes (with labels), pose and identity.

Identity factors and attribute factors are drawn from separate counter-based streams, so the
same identity can be combined with any attributes (counterfactual renders) and every value
of sample i depends only on (seed, i).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganedit.utils import rng
from ganedit.world.config import BINARY_ATTRIBUTES, WorldConfig

# Intensity ranges for a binary attribute given its label; the gap keeps labels unambiguous.
NEGATIVE_RANGE = (0.0, 0.25)
POSITIVE_RANGE = (0.65, 1.0)

# Who the person is: what an identity embedder should key on.
FACE_FACTORS = (
    "face_w", "face_h", "jaw", "skin", "hair", "eye",
    "eye_gap", "eye_height", "brow_gap", "nose_len", "mouth_w",
)  # fmt: skip
# Where and how the picture was taken: also kept by counterfactual renders.
SCENE_FACTORS = (
    "bg_r", "bg_g", "bg_b", "bg_grad", "shirt_r", "shirt_g", "shirt_b",
    "jit_x", "jit_y", "light_x", "light_amp", "ambient",
)  # fmt: skip
IDENTITY_FACTORS = FACE_FACTORS + SCENE_FACTORS
# (low, high) of each identity factor; all uniform and independent of the attributes.
IDENTITY_RANGES = {
    "face_w": (0.38, 0.48),
    "face_h": (0.50, 0.60),
    "jaw": (0.0, 0.35),
    "skin": (0.0, 1.0),
    "hair": (0.0, 3.0),
    "eye": (0.0, 2.0),
    "eye_gap": (0.36, 0.54),  # longitude of the eyes on the head, radians
    "eye_height": (0.12, 0.24),  # eyes above the head centre, in face heights
    "brow_gap": (0.08, 0.11),
    "nose_len": (0.14, 0.30),  # in face heights
    "mouth_w": (0.09, 0.13),
    "bg_r": (0.1, 0.95),
    "bg_g": (0.1, 0.95),
    "bg_b": (0.1, 0.95),
    "bg_grad": (-0.3, 0.3),
    "shirt_r": (0.05, 0.95),
    "shirt_g": (0.05, 0.95),
    "shirt_b": (0.05, 0.95),
    "jit_x": (-0.06, 0.06),
    "jit_y": (-0.05, 0.05),
    "light_x": (-1.0, 1.0),
    "light_amp": (0.0, 0.25),
    "ambient": (0.85, 1.1),
}
ATTRIBUTE_FACTORS = BINARY_ATTRIBUTES + tuple(f"{a}_label" for a in BINARY_ATTRIBUTES) + ("yaw",)
ALL_FACTORS = ATTRIBUTE_FACTORS + IDENTITY_FACTORS

_IDENTITY_STREAM = 1000
_LABEL_STREAM = 2000
_INTENSITY_STREAM = 3000
_POSE_STREAM = 4000


@dataclass(frozen=True)
class Factors:
    """Columns of ground truth for N faces: name -> float32 array [N]."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def replace(self, **values: float | np.ndarray) -> Factors:
        """A counterfactual: the same faces with some factors set (labels follow intensities)."""
        cols = dict(self.columns)
        n = len(self)
        for name, value in values.items():
            if name not in cols:
                raise KeyError(f"unknown factor {name!r}; known: {sorted(cols)}")
            cols[name] = np.broadcast_to(np.asarray(value, dtype=np.float32), (n,)).copy()
            if name in BINARY_ATTRIBUTES:
                cols[f"{name}_label"] = (cols[name] > 0.5).astype(np.float32)
        return Factors(cols)

    def subset(self, index: np.ndarray | slice) -> Factors:
        return Factors({k: v[index] for k, v in self.columns.items()})


def sample_identity(seed: int, index: np.ndarray) -> dict[str, np.ndarray]:
    """Identity factors for the given sample indices."""
    out = {}
    for k, name in enumerate(IDENTITY_FACTORS):
        lo, hi = IDENTITY_RANGES[name]
        out[name] = (lo + (hi - lo) * rng.uniform(seed, index, _IDENTITY_STREAM + k)).astype(
            np.float32
        )
    return out


def sample_attributes(config: WorldConfig, seed: int, index: np.ndarray) -> dict[str, np.ndarray]:
    """Binary labels from the config's network, their intensities, and yaw in degrees."""
    base = config.base_logits()
    labels: dict[str, np.ndarray] = {}
    for k, spec in enumerate(config.attributes):
        logit = np.full(len(index), base[spec.name])
        for parent, coef in spec.effects.items():
            logit = logit + coef * labels[parent]
        u = rng.uniform(seed, index, _LABEL_STREAM + k)
        labels[spec.name] = (u < 1.0 / (1.0 + np.exp(-logit))).astype(np.float64)
    out = {}
    for k, name in enumerate(BINARY_ATTRIBUTES):
        u = rng.uniform(seed, index, _INTENSITY_STREAM + k)
        lo = np.where(labels[name] > 0, POSITIVE_RANGE[0], NEGATIVE_RANGE[0])
        hi = np.where(labels[name] > 0, POSITIVE_RANGE[1], NEGATIVE_RANGE[1])
        out[name] = (lo + (hi - lo) * u).astype(np.float32)
        out[f"{name}_label"] = labels[name].astype(np.float32)
    yaw = config.yaw_std * rng.normal(seed, index, _POSE_STREAM)
    out["yaw"] = np.clip(yaw, -config.yaw_max, config.yaw_max).astype(np.float32)
    return out


def sample_factors(config: WorldConfig, seed: int, start: int, n: int) -> Factors:
    """Factors of samples start .. start+n-1 of the world drawn with `seed`."""
    index = np.arange(start, start + n, dtype=np.int64)
    cols = sample_attributes(config, seed, index)
    cols.update(sample_identity(seed, index))
    return Factors({name: cols[name] for name in ALL_FACTORS})
