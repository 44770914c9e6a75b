"""Small statistics shared by layers that must not import each other."""

from __future__ import annotations

import numpy as np


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores[np.diff(np.sort(scores), prepend=np.nan) == 0]):
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


__all__ = ["roc_auc"]
