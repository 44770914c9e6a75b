import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ganedit.errors import UserInputError
from ganedit.selfcond.resample import (
    ResampleConfig,
    balance_report,
    density_weights,
    knn_indices,
    resample,
)


def _skewed(n=4000, seed=0):
    """Two attributes: the first piled up near 0 (1 in 8 above 0.5), the second uniform."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.beta(1.0, 3.0, n), rng.uniform(0, 1, n)], axis=1)


@pytest.mark.parametrize("scheme", ["knn", "density"])
def test_resampling_flattens_a_planted_skew(scheme):
    u = _skewed()
    indices = resample(u, ResampleConfig(scheme=scheme, seed=3))
    report = balance_report(u, indices, ["skewed", "flat"])
    before = np.array(report["histograms"]["skewed"]["before"])
    after = np.array(report["histograms"]["skewed"]["after"])
    # the tail half [0.5, 1] holds 1/8 before, near half after
    assert before[5:].sum() / before.sum() < 0.15
    assert after[5:].sum() / after.sum() > 0.35
    cells = report["cells_2"]
    assert cells["after_min_over_mean"] > 3 * cells["before_min_over_mean"]
    assert report["n_drawn"] == len(u)
    assert 0 < report["unused_share"] < 1 and report["largest_repeat"] >= 2


def test_density_cap_bounds_repeats_below_knn():
    u = _skewed()
    knn = balance_report(u, resample(u, ResampleConfig("knn", seed=1)), ["a", "b"])
    config = ResampleConfig("density", max_repeat=4.0, seed=1)
    dens = balance_report(u, resample(u, config), ["a", "b"])
    assert dens["largest_repeat"] < knn["largest_repeat"]
    assert dens["unused_share"] < knn["unused_share"]
    weights = density_weights(u, max_repeat=4.0)
    assert weights.sum() == pytest.approx(1.0)
    assert weights.max() * len(u) <= 4.0 * (1 + 1e-9)


def test_draw_i_depends_only_on_seed_and_i():
    u = _skewed(500)
    long = knn_indices(u, 300, seed=7)
    short = knn_indices(u, 100, seed=7)
    assert np.array_equal(long[:100], short)
    assert not np.array_equal(knn_indices(u, 100, seed=8), short)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    k=st.integers(1, 5),
    neighbours=st.integers(1, 20),
    seed=st.integers(0, 2**32),
)
def test_any_size_and_k_gives_valid_indices(n, k, neighbours, seed):
    u = np.random.default_rng(seed).uniform(0, 1, (n, k))
    for scheme in ("knn", "density"):
        config = ResampleConfig(scheme, n=2 * n, neighbours=neighbours, seed=seed % 1000)
        indices = resample(u, config)
        assert indices.shape == (2 * n,) and indices.min() >= 0 and indices.max() < n


def test_bad_inputs_are_refused():
    with pytest.raises(UserInputError, match="in \\[0, 1\\]"):
        knn_indices(np.array([[1.5]]), 3)
    with pytest.raises(UserInputError, match="scheme"):
        ResampleConfig(scheme="uniform")
    with pytest.raises(UserInputError, match="max_repeat"):
        ResampleConfig(max_repeat=0.5)
