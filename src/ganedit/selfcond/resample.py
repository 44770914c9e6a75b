"""Re-sampling a labelled data set toward a uniform joint distribution of its attributes.

Two schemes over anchor coordinates u [N, k] in [0, 1] (labels clipped to their
0.5/99.5 percentiles, `ganedit.models.modes.normalise`):

- `knn_indices`: SC-GAN's scheme. Draw Q query points uniformly in [0, 1]^k; for each,
  take one of its `neighbours` nearest images at random. The index list is the new
  training set. Near regions the data barely covers, a few images answer many queries.
- `density_weights`: each image weighted by the inverse of its k-nearest-neighbour density
  estimate (distance to its k-th neighbour to the power k), normalised, then capped so that
  no image is expected more than `max_repeat` times among the draws (the excess goes to the
  others in proportion). Sampling with these weights flattens the joint distribution
  where the data has support, and the cap bounds how often one image repeats: where the
  data is too thin for the cap, that region stays under-represented rather than being
  filled with copies of a handful of images.

Query i and draw i depend only on (seed, i).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ganedit.choices import RESAMPLE_SCHEMES
from ganedit.errors import UserInputError
from ganedit.utils import rng
from ganedit.utils.params import Integer, OneOf, OrNone, Real, check_fields

SCHEMES = RESAMPLE_SCHEMES


@dataclass(frozen=True)
class ResampleConfig:
    """Settings of `resample`."""

    scheme: str = "knn"  # knn | density
    n: int | None = None  # indices drawn; None: as many as the data set has images
    neighbours: int = 10  # knn: one of this many nearest images per query
    density_k: int = 10  # density: the k of the kNN density estimate
    max_repeat: float = 10.0  # density: the most draws expected of one image
    seed: int = 0

    _CONSTRAINTS = {
        "scheme": OneOf(SCHEMES),
        "n": OrNone(Integer(1, 1_000_000_000)),
        "neighbours": Integer(1, 10_000),
        "density_k": Integer(1, 10_000),
        "max_repeat": Real(1.0, 1e12),
        "seed": Integer(0, 2**63 - 1),
    }

    def __post_init__(self):
        check_fields(self, self._CONSTRAINTS, "resample")

    def to_dict(self) -> dict:
        return asdict(self)


def _check_coordinates(u: np.ndarray) -> np.ndarray:
    u = np.asarray(u, np.float64)
    if u.ndim != 2 or len(u) == 0:
        raise UserInputError(f"expected coordinates of shape [N, k] with N > 0, received {u.shape}")
    if not np.isfinite(u).all() or u.min() < 0 or u.max() > 1:
        raise UserInputError("expected coordinates in [0, 1] (normalised labels)")
    return u


def knn_indices(u: np.ndarray, n: int, neighbours: int = 10, seed: int = 0) -> np.ndarray:
    """n image indices [n]: for query i (uniform in [0, 1]^k), one of its nearest images."""
    from sklearn.neighbors import NearestNeighbors

    u = _check_coordinates(u)
    k = u.shape[1]
    neighbours = min(neighbours, len(u))
    index = np.arange(n)
    queries = np.stack([rng.uniform(seed, index, stream) for stream in range(k)], axis=1)
    tree = NearestNeighbors(n_neighbors=neighbours, algorithm="ball_tree").fit(u)
    _, nearest = tree.kneighbors(queries)  # [n, neighbours], closest first
    pick = np.minimum((rng.uniform(seed, index, k) * neighbours).astype(np.int64), neighbours - 1)
    return nearest[index, pick]


def density_weights(
    u: np.ndarray, k: int = 10, max_repeat: float = 10.0, n_draws: int | None = None
) -> np.ndarray:
    """Sampling weights [N] summing to 1, proportional to the inverse kNN density, with no
    image expected more than `max_repeat` times in `n_draws` draws (default N)."""
    from sklearn.neighbors import NearestNeighbors

    u = _check_coordinates(u)
    n = len(u)
    k = min(k, n - 1)
    n_draws = n_draws or n
    limit = max_repeat / n_draws
    if k < 1 or limit * n <= 1.0:  # a cap every image reaches: uniform
        return np.full(n, 1.0 / n)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(u).kneighbors(u)
    radius = np.maximum(distances[:, -1], 1e-12)  # column 0 is the image itself
    weights = radius ** u.shape[1]  # 1 / density, up to a constant
    return _cap(weights / weights.sum(), limit)


def _cap(weights: np.ndarray, limit: float) -> np.ndarray:
    """Clip weights at `limit`, handing the excess to the unclipped in proportion, until
    none exceeds it (each round clips at least one more weight)."""
    weights = weights.copy()
    for _ in range(len(weights)):
        over = weights > limit
        if not over.any():
            break
        excess = (weights[over] - limit).sum()
        weights[over] = limit
        free = weights < limit
        weights[free] += excess * weights[free] / weights[free].sum()
    return weights


def weighted_indices(weights: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n indices [n] drawn with replacement by `weights`; draw i depends on (seed, i)."""
    cumulative = np.cumsum(weights)
    cumulative /= cumulative[-1]
    draws = rng.uniform(seed, np.arange(n), 0)
    return np.minimum(np.searchsorted(cumulative, draws, side="right"), len(weights) - 1)


def resample(u: np.ndarray, config: ResampleConfig) -> np.ndarray:
    """The re-sampled index list [n] under `config`."""
    n = config.n or len(u)
    if config.scheme == "knn":
        return knn_indices(u, n, config.neighbours, config.seed)
    weights = density_weights(u, config.density_k, config.max_repeat, n)
    return weighted_indices(weights, n, config.seed)


def balance_report(u: np.ndarray, indices: np.ndarray, names: list[str], bins: int = 10) -> dict:
    """How balanced a re-sampled index list is, beside the data set it came from:
    per-attribute histograms over [0, 1], joint occupancy of the 2^k and 3^k cells (counts
    and their spread), the share of images never used and the largest repeat count."""
    u = _check_coordinates(u)
    chosen = u[indices]
    edges = np.linspace(0, 1, bins + 1)
    report = {
        "n_images": len(u),
        "n_drawn": len(indices),
        "histograms": {
            name: {
                "edges": edges.tolist(),
                "before": np.histogram(u[:, a], edges)[0].tolist(),
                "after": np.histogram(chosen[:, a], edges)[0].tolist(),
            }
            for a, name in enumerate(names)
        },
    }
    for per_axis in (2, 3):
        before, after = _cells(u, per_axis), _cells(chosen, per_axis)
        report[f"cells_{per_axis}"] = {
            "before": before.tolist(),
            "after": after.tolist(),
            "after_min_over_mean": float(after.min() / max(after.mean(), 1e-12)),
            "before_min_over_mean": float(before.min() / max(before.mean(), 1e-12)),
        }
    counts = np.bincount(indices, minlength=len(u))
    report["unused_share"] = float((counts == 0).mean())
    report["largest_repeat"] = int(counts.max())
    return report


def _cells(u: np.ndarray, per_axis: int) -> np.ndarray:
    """Counts [per_axis ** k] of rows in each joint cell of an even grid on [0, 1]^k."""
    cell = np.minimum((u * per_axis).astype(np.int64), per_axis - 1)
    flat = np.ravel_multi_index(cell.T, (per_axis,) * u.shape[1])
    return np.bincount(flat, minlength=per_axis ** u.shape[1])
