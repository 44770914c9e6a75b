"""Counter-based random numbers: value k of sample i depends only on (seed, i, k).

A stateful generator makes sample i depend on how many samples were drawn before it
(and so on the batch size). Hashing the triple instead gives every sample its own
reproducible stream, which is what resumable, chunked and multi-process work needs.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def _hash(seed: int, index: np.ndarray, stream: int) -> np.ndarray:
    key = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    key = _splitmix64(key ^ np.uint64(stream & 0xFFFFFFFFFFFFFFFF))
    idx = np.asarray(index, dtype=np.int64).astype(np.uint64)
    return _splitmix64(_splitmix64(idx ^ key[0]))


def uniform(seed: int, index: np.ndarray, stream: int) -> np.ndarray:
    """Uniform floats in [0, 1), one per entry of `index`. Shape of `index`, float64."""
    return (_hash(seed, index, stream) >> np.uint64(11)).astype(np.float64) * (2.0**-53)


def normal(seed: int, index: np.ndarray, stream: int) -> np.ndarray:
    """Standard normal floats (Box-Muller on two derived uniform streams)."""
    u1 = uniform(seed, index, 2 * stream + 1_000_003)
    u2 = uniform(seed, index, 2 * stream + 1_000_004)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def torch_generator(seed: int, index: int = 0, stream: int = 0):
    """A torch.Generator seeded from (seed, index, stream), for per-sample torch draws."""
    import torch

    value = int(_hash(seed, np.array([index]), stream)[0] >> np.uint64(1))
    return torch.Generator().manual_seed(value)
