import pytest
import torch

from ganedit.errors import UserInputError
from ganedit.inversion.perceptual import (
    FeatureDistance,
    LossWeights,
    ReconstructionLoss,
    as_image_distance,
    default_loss,
    network_feature_distance,
    trunk_taps,
)
from ganedit.models.predictors import AttributeNet


def _images(n, seed):
    return torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("arch", ["plain", "residual"])
def test_feature_distance_is_a_per_image_distance(arch):
    net = AttributeNet(arch=arch, width=8, hidden=16)
    distance = network_feature_distance(net)
    assert len(distance.taps) >= 4
    a, b = _images(3, 0), _images(3, 1)
    d = distance(a, b)
    assert d.shape == (3,) and (d > 0).all()
    assert torch.equal(distance(a, a), torch.zeros(3))
    # Symmetric, and each image's distance does not depend on the others in the batch.
    torch.testing.assert_close(distance(b, a), d)
    torch.testing.assert_close(distance(a[1:2], b[1:2]), d[1:2], rtol=1e-4, atol=1e-7)
    # The measuring network is frozen: only the images receive gradients.
    assert all(not p.requires_grad for p in distance.parameters())


def test_gradients_reach_the_images_not_the_network():
    net = AttributeNet(arch="residual", width=8, hidden=16)
    distance = network_feature_distance(net)
    a = _images(2, 0).requires_grad_(True)
    distance(a, _images(2, 1)).sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_taps_and_bad_networks():
    net = AttributeNet(arch="plain", width=8, hidden=16)
    assert trunk_taps(net.features) == [2, 6, 10, 14]
    with pytest.raises(ValueError):
        FeatureDistance(net.features, [99], 64)
    with pytest.raises(UserInputError, match="trunk"):
        network_feature_distance(torch.nn.Linear(2, 2))


def test_a_users_distance_plugs_in():
    lpips_like = torch.nn.Conv2d(3, 1, 1)  # stands in for lpips.LPIPS: [N, 1, 1, 1] out

    def lpips_shaped(a, b):
        return (lpips_like(a) - lpips_like(b)).square().mean((1, 2, 3), keepdim=True)

    loss = ReconstructionLoss(lpips_shaped)
    terms = loss.terms(_images(2, 0), _images(2, 1))
    assert terms["perceptual"].shape == (2,)
    broken = ReconstructionLoss(lambda a, b: torch.zeros(5))
    with pytest.raises(UserInputError, match="one value per image"):
        broken.terms(_images(2, 0), _images(2, 1))
    with pytest.raises(UserInputError, match="callable"):
        as_image_distance(3)


def test_weights_and_the_shipped_loss():
    loss = default_loss()
    a, b = _images(2, 0), _images(2, 1)
    weights = LossWeights(pixel=1.0, perceptual=0.0, identity=0.5)
    terms = loss.terms(a, b, weights)
    assert set(terms) == {"pixel", "identity"}
    torch.testing.assert_close(
        loss.weighted(a, b, weights), terms["pixel"] + 0.5 * terms["identity"]
    )
    assert set(loss.terms(a, b)) == {"pixel", "perceptual", "identity"}
    with pytest.raises(UserInputError, match="weight"):
        LossWeights(pixel=float("nan"))
    with pytest.raises(UserInputError, match="perceptual network"):
        default_loss(perceptual="vgg")
