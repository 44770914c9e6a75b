import math

import pytest
import torch

from ganedit.errors import UserInputError
from ganedit.inversion.perceptual import LossWeights, ReconstructionLoss
from ganedit.inversion.projector import (
    ProjectorConfig,
    lr_at,
    noise_regularization,
    project,
)
from ganedit.models.sources import StyleGANSource, ZOnlySource
from ganedit.models.stylegan2 import Generator

PIXEL_ONLY = LossWeights(pixel=1.0, perceptual=0.0, identity=0.0)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(1)
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16).eval()
    g.update_w_avg(n=512, generator=torch.Generator().manual_seed(0))
    return StyleGANSource(g, "tiny")


def _planted(source, n=3, seed=11):
    # Unclamped: a random tiny generator leaves [-1, 1], and a clamped target would not be
    # rendered exactly by its own code.
    w = source.to_w(source.sample_z(n, seed))
    with torch.no_grad():
        return w, source.render(w, "w")


def test_projector_recovers_a_planted_w(tiny):
    w, target = _planted(tiny)
    config = ProjectorConfig(
        space="w", steps=150, optimize_noise=False, weights=PIXEL_ONLY, stats_n=512
    )
    found = project(tiny, target, ReconstructionLoss(None), config)
    with torch.no_grad():
        start_error = (target - tiny.render(tiny.w_avg[None].expand(3, -1), "w")).square()
    assert found.terms["pixel"].max() < 1e-3 * start_error.mean()
    code_error = (found.latents - w).norm(dim=1) / (w - tiny.w_avg).norm(dim=1)
    assert code_error.max() < 0.05, code_error
    assert found.latents.shape == (3, 16) and found.images.shape == (3, 3, 16, 16)


def test_projection_is_deterministic_and_images_do_not_influence_each_other(tiny):
    _, target = _planted(tiny, n=3)
    config = ProjectorConfig(space="ws", steps=20, stats_n=256, weights=PIXEL_ONLY)
    loss = ReconstructionLoss(None)
    both = project(tiny, target, loss, config)
    again = project(tiny, target, loss, config)
    assert torch.equal(both.latents, again.latents)
    # Image 2 alone, numbered as in the batch: the same code up to float32 rounding of
    # batched convolutions, amplified a little by 20 optimiser steps.
    alone = project(tiny, target[2:], loss, config, start=2)
    scale = both.latents[2].abs().max()
    assert (alone.latents[0] - both.latents[2]).abs().max() <= 1e-3 * scale
    assert both.latents.shape == (3, tiny.generator.num_ws, 16)
    assert len(both.noise) == tiny.generator.num_layers and both.noise[0].shape[0] == 3


def test_noise_maps_stay_normalised(tiny):
    _, target = _planted(tiny, n=2)
    found = project(tiny, target, ReconstructionLoss(None), ProjectorConfig(steps=5, stats_n=64))
    for maps in found.noise:
        flat = maps.flatten(1)
        assert flat.mean(1).abs().max() < 1e-4
        assert (flat.std(1) - 1).abs().max() < 1e-4


def test_noise_regularization_penalises_structure():
    gen = torch.Generator().manual_seed(0)
    white = [torch.randn(2, 1, 32, 32, generator=gen)]
    smooth = [torch.ones(2, 1, 32, 32)]
    assert noise_regularization(white).max() < 0.01
    assert noise_regularization(smooth).min() > 1.0


def test_learning_rate_schedule():
    config = ProjectorConfig(lr=0.1, lr_rampup=0.05, lr_rampdown=0.25)
    assert lr_at(0.0, config) == 0.0
    assert math.isclose(lr_at(0.5, config), 0.1)
    assert 0 < lr_at(0.9, config) < 0.1
    assert lr_at(0.025, config) == pytest.approx(0.05)


class ToyZGenerator(torch.nn.Module):
    """A z-only generator (like a DCGAN): z [N, 8] -> images [N, 3, 8, 8]."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 3 * 8 * 8), torch.nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, 3, 8, 8)


def test_z_only_sources_are_projected_in_z():
    torch.manual_seed(2)
    source = ZOnlySource(ToyZGenerator(), "toy", z_dim=8, resolution=8)
    z = source.sample_z(2, seed=3)
    target = source.synthesize(z, "z")
    config = ProjectorConfig(space="z", steps=300, weights=PIXEL_ONLY, latent_noise=0.0)
    found = project(source, target, ReconstructionLoss(None), config)
    assert found.terms["pixel"].max() < 1e-4
    assert found.noise == []
    with pytest.raises(UserInputError, match="latent space"):
        project(source, target, ReconstructionLoss(None), ProjectorConfig(space="w"))


@pytest.mark.parametrize(
    "images",
    [
        torch.zeros(2, 1, 16, 16),
        torch.zeros(0, 3, 16, 16),
        torch.full((1, 3, 16, 16), float("nan")),
        torch.zeros(1, 3, 16, 16, dtype=torch.uint8),
    ],
)
def test_bad_images_are_refused(tiny, images):
    with pytest.raises(UserInputError):
        project(tiny, images, ReconstructionLoss(None), ProjectorConfig(steps=1))


def test_other_sizes_are_resized_and_bad_settings_refused(tiny):
    found = project(
        tiny, torch.zeros(1, 3, 32, 32), ReconstructionLoss(None), ProjectorConfig(steps=1)
    )
    assert found.images.shape == (1, 3, 16, 16)
    with pytest.raises(UserInputError, match="steps"):
        ProjectorConfig(steps=0)
    with pytest.raises(UserInputError, match="space"):
        ProjectorConfig(space="wp")
    with pytest.raises(UserInputError, match="starting codes"):
        project(tiny, torch.zeros(1, 3, 16, 16), ReconstructionLoss(None), init=torch.zeros(1, 5))
