import pytest
import torch

from ganedit.errors import UserInputError
from ganedit.inversion.perceptual import LossWeights, ReconstructionLoss
from ganedit.inversion.pti import PTIConfig, pivotal_tuning
from ganedit.models.sources import StyleGANSource
from ganedit.models.stylegan2 import Generator

PIXEL_ONLY = LossWeights(pixel=1.0, perceptual=0.0, identity=0.0)


@pytest.fixture(scope="module")
def setting():
    torch.manual_seed(1)
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16).eval()
    g.update_w_avg(n=512, generator=torch.Generator().manual_seed(0))
    source = StyleGANSource(g, "tiny")
    w = source.to_w(source.sample_z(4, 11))
    # Tune code 1 to render the image of code 0: an image its own code cannot make.
    return source, source.synthesize(w[:1], "w")[0], w[1], w[2:]


def _tune(setting, locality_weight):
    source, image, pivot, _ = setting
    config = PTIConfig(
        steps=100, lr=3e-3, locality_weight=locality_weight, stats_n=256, weights=PIXEL_ONLY
    )
    return pivotal_tuning(source, image, pivot, ReconstructionLoss(None), config)


def test_tuning_reconstructs_and_leaves_the_source_alone(setting):
    source, _, pivot, others = setting
    before = {k: v.clone() for k, v in source.generator.state_dict().items()}
    tuning = _tune(setting, 1.0)
    assert tuning.history[-1]["pixel"] < 0.05 * tuning.history[0]["pixel"]
    assert all(torch.equal(v, source.generator.state_dict()[k]) for k, v in before.items())
    assert tuning.pivot.shape == (source.generator.num_ws, 16)
    # The mapping is not tuned: z -> w is the original's.
    z = source.sample_z(2, seed=5)
    assert torch.equal(tuning.source.to_w(z), source.to_w(z))


def test_locality_keeps_distant_latents_as_they_were(setting):
    source, _, _, others = setting
    with torch.no_grad():
        before = source.render(others, "w")
        free = _tune(setting, 0.0).source.render(others, "w")
        kept = _tune(setting, 1.0).source.render(others, "w")
    moved_free = (free - before).square().mean()
    moved_kept = (kept - before).square().mean()
    assert moved_kept < 0.3 * moved_free, (moved_kept, moved_free)


def test_early_stop_and_determinism(setting):
    source, image, pivot, _ = setting
    loss = ReconstructionLoss(None)
    weights = LossWeights(pixel=1.0, perceptual=1.0, identity=0.0)
    perceptual = ReconstructionLoss(lambda a, b: (a - b).abs().flatten(1).mean(1))
    config = PTIConfig(steps=200, lr=3e-3, stats_n=64, weights=weights, stop_perceptual=0.2)
    tuning = pivotal_tuning(source, image, pivot, perceptual, config)
    assert tuning.steps < 200 and tuning.history[-1]["perceptual"] <= 0.2
    config = PTIConfig(steps=5, lr=3e-3, stats_n=64, weights=PIXEL_ONLY)
    a = pivotal_tuning(source, image, pivot, loss, config, index=3)
    b = pivotal_tuning(source, image, pivot, loss, config, index=3)
    pairs = zip(a.source.generator.parameters(), b.source.generator.parameters(), strict=True)
    assert all(torch.equal(x, y) for x, y in pairs)


def test_bad_pivots_and_images_are_refused(setting):
    source, image, pivot, _ = setting
    loss = ReconstructionLoss(None)
    with pytest.raises(UserInputError, match="pivot"):
        pivotal_tuning(source, image, torch.zeros(3, 16), loss)
    with pytest.raises(UserInputError, match="pivot"):
        pivotal_tuning(source, image, torch.full((16,), float("nan")), loss)
    with pytest.raises(UserInputError, match="one image"):
        pivotal_tuning(source, image[None].expand(2, -1, -1, -1), pivot, loss)
    with pytest.raises(UserInputError):
        PTIConfig(locality_weight=-1.0)
