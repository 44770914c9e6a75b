import numpy as np
import pytest
import torch

from ganedit.evaluation.generator import (
    confident_shares,
    evaluate_generator,
    frechet_distance,
    label_stats,
    stat_gaps,
    world_label_stats,
)
from ganedit.world.config import BINARY_ATTRIBUTES
from ganedit.world.factors import sample_factors
from ganedit.world.render import render


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 3))
    b = rng.normal(0, 1, (20000, 3)) * 2 + np.array([1.0, 0, 0])
    # |mu|^2 + sum (1 + 4 - 2 * sqrt(1 * 4)) = 1 + 3 * 1 = 4
    assert frechet_distance(a, b) == pytest.approx(4.0, abs=0.15)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_sampled_labels_match_the_exact_world_statistics(celeba):
    f = sample_factors(celeba, 0, 0, 20000)
    sampled = label_stats(np.stack([f[f"{a}_label"] for a in BINARY_ATTRIBUTES], 1))
    exact = world_label_stats(celeba)
    for a in BINARY_ATTRIBUTES:
        assert sampled["marginals"][a] == pytest.approx(exact["marginals"][a], abs=0.012)
    for key, r in exact["correlations"].items():
        assert sampled["correlations"][key] == pytest.approx(r, abs=0.03), key
    assert exact["correlations"]["gender-glasses"] > 0.15


def test_confident_shares_count_each_attribute_and_all_together():
    probs = np.array([[0.95, 0.02, 0.5, 0.99], [0.97, 0.6, 0.01, 0.99]])
    shares = confident_shares(probs, 0.9)
    assert shares["all"] == 0.0
    assert [shares[a] for a in BINARY_ATTRIBUTES] == [1.0, 0.5, 0.5, 1.0]
    assert confident_shares(probs, 0.5)["all"] == 0.5  # 0.5 itself is not confident


def test_stat_gaps_are_the_largest_absolute_differences(celeba):
    exact = world_label_stats(celeba)
    shifted = {
        "marginals": {**exact["marginals"], "glasses": exact["marginals"]["glasses"] - 0.04},
        "correlations": {
            **exact["correlations"],
            "smile-age": exact["correlations"]["smile-age"] + 0.3,
        },
    }
    assert stat_gaps(shifted, exact) == pytest.approx((0.04, 0.3))
    assert stat_gaps(exact, exact) == (0.0, 0.0)


class _RenderSource:
    """A perfect generator of the world: latent i is the world's sample i, rendered."""

    resolution = 64

    def __init__(self, world):
        self.world = world

    def sample_z(self, n, seed, start=0):
        return torch.tensor([[seed, start + i] for i in range(n)], dtype=torch.float64)

    def synthesize(self, z, space="z", batch_size=256, modes=None):
        seed, start = int(z[0, 0]), int(z[0, 1])
        assert z[:, 1].tolist() == list(range(start, start + len(z)))  # one run of indices
        return render(sample_factors(self.world, seed, start, len(z)))


@pytest.mark.slow  # renders and reads thousands of faces: 13 s
def test_a_generator_that_draws_the_world_meets_the_bars_by_both_networks(celeba):
    report = evaluate_generator(_RenderSource(celeba), celeba, n=1500, n_fd=300, progress=False)
    # 1,500 samples: a correlation's standard error is about 0.026.
    assert report["max_marginal_gap"] < 0.04
    assert report["max_correlation_gap"] < 0.1
    assert report["evaluator_max_marginal_gap"] < 0.04
    assert report["evaluator_max_correlation_gap"] < 0.1
    assert min(report["labeler_evaluator_agreement"].values()) > 0.97
    # Two networks: near, but not the labeler's numbers copied (it errs on a few samples).
    assert report["generated_by_evaluator"] != report["generated"]
    assert report["frechet_distance"] < 5 * report["frechet_distance_floor"] + 1
    # The world drawn again is as diverse as the renders and as precise and recalled.
    d = report["diversity"]
    assert d["identity_cosine"] == pytest.approx(d["renders_identity_cosine"], abs=0.03)
    for key in ("precision", "recall"):
        assert d["precision_recall"][key] > d["precision_recall_floor"][key] - 0.1
