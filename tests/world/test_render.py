import numpy as np
import pytest
import torch

from ganedit.errors import UserInputError
from ganedit.world.factors import sample_factors
from ganedit.world.render import SIZES, render


@pytest.mark.parametrize("size", SIZES)
def test_render_shape_range_all_sizes(celeba, size):
    images = render(sample_factors(celeba, 0, 0, 4), size)
    assert images.shape == (4, 3, size, size) and images.dtype == torch.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert images.std() > 0.1  # not blank


def test_render_is_deterministic_and_independent_of_batching(celeba):
    factors = sample_factors(celeba, 5, 0, 40)
    a = render(factors, 64, batch_size=40)
    b = render(factors, 64, batch_size=40)
    c = render(factors, 64, batch_size=7)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=1e-5)


def test_rejects_sizes_that_are_not_powers_of_two(celeba):
    with pytest.raises(UserInputError, match="image size"):
        render(sample_factors(celeba, 0, 0, 1), 48)


@pytest.mark.parametrize("name", ["smile", "gender", "glasses", "age"])
def test_each_attribute_is_plainly_visible(celeba, name):
    base = sample_factors(celeba, 1, 0, 16)
    off, on = render(base.replace(**{name: 0.05}), 64), render(base.replace(**{name: 0.95}), 64)
    changed = ((on - off).abs().amax(1) > 0.2).float().mean(dim=(1, 2))  # share of pixels
    assert (changed > 0.004).all(), changed  # at least ~16 clearly changed pixels per face


def test_yaw_moves_the_features(celeba):
    base = sample_factors(celeba, 2, 0, 8).replace(yaw=0.0)
    left, right = render(base.replace(yaw=-40.0), 64), render(base.replace(yaw=40.0), 64)
    assert ((left - right).abs().amax(1) > 0.2).float().mean() > 0.02
    # Mirror symmetry of the geometry: turning left vs right differs from the frontal face.
    front = render(base, 64)
    assert (front - left).abs().mean() > 0.01 and (front - right).abs().mean() > 0.01
    assert np.isfinite(left.numpy()).all()
