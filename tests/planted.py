"""Reference-style files with planted, correlated labels, shared by the CLI test modules.

Each attribute copies the previous one 70% of the time, and attribute k lives on coordinate k
of w alone, so a method that removes the label correlations recovers the unit vector e_k."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ATTRS = ("smile", "gender", "glasses", "age")


def write_planted_reference(folder: Path, n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Write z.npy, w.npy, scores_dict.npy and <attr>_scores.npy into `folder` (created);
    return the scores as float32 arrays by attribute."""
    rng = np.random.default_rng(seed)
    states = np.empty((n, len(ATTRS)))
    states[:, 0] = rng.choice([-1.0, 1.0], n)
    for k in range(1, len(ATTRS)):
        copy = rng.random(n) < 0.7
        states[:, k] = np.where(copy, states[:, k - 1], rng.choice([-1.0, 1.0], n))
    w = rng.normal(size=(n, dim)) * 0.3
    w[:, : len(ATTRS)] += 1.5 * states
    folder.mkdir(parents=True)
    np.save(folder / "z.npy", rng.normal(size=(n, dim)).astype(np.float32))
    np.save(folder / "w.npy", w.astype(np.float32))
    scores = {a: (1 / (1 + np.exp(-4 * w[:, k]))).astype(np.float32) for k, a in enumerate(ATTRS)}
    np.save(folder / "scores_dict.npy", scores, allow_pickle=True)
    for a, s in scores.items():
        np.save(folder / f"{a}_scores.npy", s[:, None])
    return scores
