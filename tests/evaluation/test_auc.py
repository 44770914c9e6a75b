import numpy as np
import pytest

from ganedit.utils.stats import roc_auc


def test_roc_auc_known_values():
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert roc_auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5
    assert roc_auc(np.array([2.0, 0.0]), np.array([1.0])) == 0.5


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 300).round(1), rng.normal(0, 1, 200).round(1)
    pairwise = ((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])).mean()
    assert roc_auc(pos, neg) == pytest.approx(pairwise)
