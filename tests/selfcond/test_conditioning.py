import numpy as np
import pytest
import torch

from ganedit.models.modes import mode_vector
from ganedit.selfcond.conditioning import ModeConditioning, mode_kl


def test_mode_kl_against_a_worked_value():
    targets = mode_vector(torch.tensor([[0.25]]), for_generator=False)  # (1, .5, .5, 0)
    logits = torch.tensor([[9.0, 0.0, 0.0, 0.0]])  # slot 0 is never read; q = 1/3 each
    expected = 0.5 * np.log(0.5 / (1 / 3)) * 2  # sum p log(p / q); the zero weight adds 0
    assert mode_kl(logits, targets).item() == pytest.approx(expected, rel=1e-6)
    # a perfect prediction of a one-hot target costs (nearly) nothing
    assert (
        mode_kl(torch.tensor([[0.0, 30.0, 0.0, 0.0]]), mode_vector(torch.zeros(1, 1), False)) < 1e-9
    )


def test_sampled_modes_pair_the_generator_form_with_the_full_target():
    cond = ModeConditioning(k=3)
    fed, target = cond.sample(64, torch.Generator().manual_seed(0), "cpu")
    assert fed.shape == target.shape == (64, 10)
    assert torch.all(fed[:, [2, 5, 8]] == 0) and torch.all(target[:, 0] == 1)
    assert torch.allclose(
        target.reshape(64, -1)[:, 1:].reshape(64, 3, 3).sum(-1), torch.ones(64, 3)
    )
    again, _ = cond.sample(64, torch.Generator().manual_seed(0), "cpu")
    assert torch.equal(fed, again)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_a_self_conditioned_gan_trains_a_few_steps(k):
    from ganedit.models.stylegan2 import Discriminator, Generator
    from ganedit.training.gan import GanConfig, gan_step, setup_gan

    cfg = GanConfig(size=16, style_dim=8, n_mlp=2, channel_max=8, batch=4, mbstd_group=2,
                    d_reg_every=2, g_reg_every=2)  # fmt: skip
    names = [f"a{i}" for i in range(k)]
    state = setup_gan(
        cfg,
        build_g=lambda c: Generator(16, style_dim=8, n_mlp=2, channel_max=8, mode_attributes=names),
        build_d=lambda c: Discriminator(16, channel_max=8, stddev_group=2, num_modes=1 + 3 * k),
        conditioning=ModeConditioning(k),
    )
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    targets = mode_vector(torch.rand(4, k, generator=torch.Generator().manual_seed(1)), False)
    before = state.g.input.mode_offsets.detach().clone()
    losses = [gan_step(state, cfg, lambda step: (images, targets)) for _ in range(4)]
    assert all(np.isfinite(s["d_mode"]) and np.isfinite(s["g_mode"]) for s in losses)
    assert not torch.equal(state.g.input.mode_offsets, before)  # the modes learn
    assert state.step == 4


def test_batches_draw_from_the_resampled_list_with_their_targets(tmp_path):
    from ganedit.cli import run
    from ganedit.datasets import ImageDataset
    from ganedit.training.gan import BatchSampler, GanConfig

    assert run(["world", "render", "-n", 6, "--size", 16, "-o", str(tmp_path / "r"),
                "--no-progress"]) == 0  # fmt: skip
    data = ImageDataset(tmp_path / "r")
    cfg = GanConfig(size=16, batch=8)
    targets = torch.arange(6, dtype=torch.float32)[:, None].repeat(1, 4)  # row i holds i
    sampler = BatchSampler(data, cfg, indices=np.array([4, 4, 1]), targets=targets)
    images, t = sampler(3)
    assert images.shape == (8, 3, 16, 16) and set(t[:, 0].tolist()) <= {1.0, 4.0}
    for image, row in zip(images, t[:, 0].long(), strict=True):  # each target is its image's
        assert torch.equal(image, _image(data, row))
    images2, t2 = sampler(3)
    assert torch.equal(images, images2) and torch.equal(t, t2)  # batch t depends on (seed, t)


def _image(data, i):
    from ganedit.utils.images import from_uint8

    return from_uint8(data[int(i)][None])[0]


def _twin_state(md_g: float):
    from ganedit.models.stylegan2 import Discriminator, Generator
    from ganedit.training.gan import GanConfig, setup_gan

    cfg = GanConfig(size=16, style_dim=8, n_mlp=2, channel_max=8, batch=4, mbstd_group=2)
    state = setup_gan(
        cfg,
        build_g=lambda c: Generator(16, style_dim=8, n_mlp=2, channel_max=8, mode_attributes=["a"]),
        build_d=lambda c: Discriminator(
            16, channel_max=8, stddev_group=2, num_modes=4, twin_modes=True
        ),
        conditioning=ModeConditioning(1, g_weight=md_g, twin=True),
    )
    return cfg, state


def test_twin_heads_that_agree_leave_the_generator_no_mode_term():
    """TAC-GAN's term is the mode head's loss minus the twin's: with the twin a copy of the
    mode head it is zero in value and gradient, so any md_g gives the generator the same step
    as md_g = 0; with the twin changed, md_g matters."""
    from ganedit.training.gan import g_main

    def step(md_g, same=True):
        cfg, state = _twin_state(md_g)
        with torch.no_grad():
            state.d.final_twin.load_state_dict(state.d.final_class.state_dict())
            if not same:
                state.d.final_twin[1].bias.add_(torch.tensor([0.0, 3.0, -3.0, 1.0]))
        g_main(state, cfg, None, torch.Generator().manual_seed(5))
        return state.g.input.mode_offsets.detach().clone(), state.stats

    reference, _ = step(0.0)
    offsets, stats = step(1e3)
    torch.testing.assert_close(offsets, reference, rtol=0, atol=1e-6)
    assert stats["g_mode"] == pytest.approx(stats["g_twin"], abs=1e-6)
    assert not torch.allclose(step(1e3, same=False)[0], reference, atol=1e-4)


def test_the_twin_head_learns_the_fakes_modes_and_the_mode_head_the_reals():
    from ganedit.training.gan import gan_step

    cfg, state = _twin_state(0.5)
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    targets = mode_vector(torch.rand(4, 1, generator=torch.Generator().manual_seed(1)), False)
    twin = [p.detach().clone() for p in state.d.final_twin.parameters()]
    stats = [gan_step(state, cfg, lambda step: (images, targets)) for _ in range(3)]
    assert all(np.isfinite(s["d_twin"]) and np.isfinite(s["g_twin"]) for s in stats)
    moved = [
        not torch.equal(a, b) for a, b in zip(twin, state.d.final_twin.parameters(), strict=True)
    ]
    assert all(moved)


def test_a_twin_head_needs_a_mode_head():
    from ganedit.errors import UserInputError
    from ganedit.models.stylegan2 import Discriminator

    with pytest.raises(UserInputError, match="a mode head beside a twin one"):
        Discriminator(16, channel_max=8, twin_modes=True)
    d = Discriminator(16, channel_max=8, stddev_group=2, num_modes=4)
    with pytest.raises(UserInputError, match="twin mode head"):
        d.forward_with_twin(torch.zeros(2, 3, 16, 16))


def test_fakes_drawn_from_a_pool_take_its_rows():
    pool = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    cond = ModeConditioning(2, pool=pool)
    fed, target = cond.sample(300, torch.Generator().manual_seed(0), "cpu")
    from ganedit.models.modes import ModeLayout

    t = ModeLayout.unnamed(2).coordinates(target)
    rows = {tuple(r) for r in t.tolist()}
    assert rows == {tuple(r) for r in pool.tolist()}  # every row drawn, nothing else
    counts = [(t == r).all(1).float().mean().item() for r in pool]
    assert all(abs(c - 1 / 3) < 0.1 for c in counts)
    assert torch.equal(fed, ModeLayout.unnamed(2).generator_vector(t))
