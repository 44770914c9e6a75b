import numpy as np
import pytest
import torch
from PIL import Image

from ganedit.editing.edit import (
    calibrate,
    edit_images,
    move,
    move_many,
    sample_latents,
    save_gif,
    save_strip,
    split_modes,
)
from ganedit.errors import UserInputError
from ganedit.models.sources import StyleGANSource
from ganedit.models.stylegan2 import Generator
from ganedit.utils.images import labelled_grid, to_uint8
from tolerance import assert_f32_close


@pytest.fixture(scope="module")
def source():
    torch.manual_seed(0)
    g = Generator(16, style_dim=8, n_mlp=2, channel_max=8).eval()
    g.update_w_avg(n=64, generator=torch.Generator().manual_seed(0))
    return StyleGANSource(g, "tiny")


def _unit(d):
    return torch.nn.functional.normalize(torch.as_tensor(d, dtype=torch.float32), dim=-1)


def test_relative_moves_by_the_strength_and_absolute_lands_at_the_distance():
    x = torch.randn(5, 8)
    d = _unit(torch.randn(8))
    torch.testing.assert_close(move(x, d, 2.0) - x, 2.0 * d.expand(5, -1))
    # Absolute: every result sits at signed distance s from the hyperplane x.d + b = 0.
    out = move(x, d, 1.5, mode="absolute", intercept=0.3)
    torch.testing.assert_close(out @ d + 0.3, torch.full((5,), 1.5))
    # ... and only the component along d changed.
    rest = (out - x) - ((out - x) @ d)[:, None] * d
    assert rest.abs().max() < 1e-6


def test_per_sample_strengths_and_several_directions_add_up():
    x = torch.zeros(3, 4)
    a, b = torch.eye(4)[0], torch.eye(4)[1]
    out = move(x, a, torch.tensor([1.0, 2.0, 3.0]))
    assert out[:, 0].tolist() == [1.0, 2.0, 3.0]
    both = move_many(x, [a, b], [1.0, -2.0])
    assert both[0].tolist() == [1.0, -2.0, 0.0, 0.0]
    with pytest.raises(UserInputError, match="one strength per direction"):
        move_many(x, [a, b], [1.0])


def test_ws_layer_ranges_only_touch_their_layers():
    ws = torch.zeros(2, 6, 4)
    d = torch.eye(4)[2]
    out = move(ws, d, 1.0, layers=(1, 3))
    assert out[:, 1:3, 2].eq(1).all() and out[:, [0, 3, 4, 5]].eq(0).all()
    per_layer = torch.zeros(6, 4)
    per_layer[5, 0] = 1
    assert move(ws, per_layer, 2.0)[:, 5, 0].eq(2).all()
    with pytest.raises(UserInputError, match="layer range"):
        move(ws, d, 1.0, layers=(4, 9))
    with pytest.raises(UserInputError, match="direction of shape"):
        move(ws, torch.ones(5), 1.0)
    with pytest.raises(UserInputError, match="only with ws"):
        move(torch.zeros(2, 4), d, 1.0, layers=(0, 1))


def test_ws_absolute_sets_every_edited_layer():
    ws = torch.randn(3, 4, 5)
    d = _unit(torch.randn(5))
    out = move(ws, d, -0.7, mode="absolute", layers=(0, 2))
    torch.testing.assert_close(out[:, :2] @ d, torch.full((3, 2), -0.7))
    torch.testing.assert_close(out[:, 2:], ws[:, 2:])


def test_edit_images_strip_and_gif(source, tmp_path):
    w = sample_latents(source, 3, seed=1, space="w")
    d = _unit(torch.randn(8, generator=torch.Generator().manual_seed(0)))
    frames = edit_images(source, w, "w", d, [-2.0, 0.0, 2.0])
    assert frames.shape == (3, 3, 3, 16, 16)
    # Strength 0 reproduces the unedited samples exactly.
    torch.testing.assert_close(frames[1], source.synthesize(w, "w"))
    assert not torch.equal(frames[0], frames[2])
    strengths = [-2.0, 0.0, 2.0]
    path = save_strip(frames, tmp_path / "strip.png", strengths, "smile", scale=2)
    strip = np.asarray(Image.open(path))
    tiles = to_uint8(frames.transpose(0, 1).reshape(9, 3, 16, 16))
    expected = labelled_grid(
        tiles, 3, col_labels=["-2", "0", "+2"], row_labels=["#0", "#1", "#2"], title="smile",
        scale=2,
    )  # fmt: skip
    np.testing.assert_array_equal(strip, expected)
    assert strip.shape[1] > 3 * 34 and strip.shape[0] > 3 * 34  # labels around 32 px tiles
    gif = Image.open(save_gif(frames, tmp_path / "edit.gif", strengths, "smile"))
    assert gif.n_frames == 4  # forth and back: -2, 0, 2, 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edit.gif", "strip.png"]


# ---------------------------------------------------------------- calibration


def _linear():
    from linear_world import LinearEvaluator, LinearSource

    return LinearSource(), LinearEvaluator()


def test_calibration_measures_the_slope_and_a_direction_that_moves_nothing_is_refused():
    source, evaluator = _linear()
    on_a = np.eye(6, dtype=np.float32)[0]
    cal = calibrate(source, on_a, "w", evaluator, "a", n=64)
    assert cal.slope == pytest.approx(3.0, rel=1e-4) and not cal.weak and cal.auc > 0.99
    idle = np.eye(6, dtype=np.float32)[4]  # an identity coordinate: a does not change
    weak = calibrate(source, idle, "w", evaluator, "a", n=64)
    assert weak.weak and abs(weak.slope) < 1e-6
    with pytest.raises(UserInputError, match="barely"):
        weak.latent_step([3.0])


def test_a_calibrated_step_never_leaves_the_latents_span_by_more_than_the_bound():
    source, evaluator = _linear()
    d = np.eye(6, dtype=np.float32)[0]
    start = sample_latents(source, 32, seed=9, space="w")
    cal = calibrate(source, d, "w", evaluator, "a", n=64, reference=start)
    low, high = cal.span
    assert low <= float(start[:, 0].min()) and high >= float(start[:, 0].max())
    per_unit, bounded = cal.latent_step([2.0], bound=0.5)  # 2 units = 0.67 latent: inside
    assert not bounded and per_unit == pytest.approx(1 / cal.slope)
    per_unit, bounded = cal.latent_step([-60.0, 60.0], bound=0.5)  # 20 latent units: outside
    assert bounded and per_unit > 0
    for strength in (-60.0, 60.0):
        moved = move(start, d, strength * per_unit)
        assert float(moved[:, 0].min()) >= low - 0.5 * cal.width - 1e-4
        assert float(moved[:, 0].max()) <= high + 0.5 * cal.width + 1e-4
    unbounded, flag = cal.latent_step([60.0], bound=None)
    assert not flag and unbounded == pytest.approx(1 / cal.slope)


def test_sample_latents_rows_depend_only_on_seed_and_index(source):
    a = sample_latents(source, 6, seed=3, space="ws")
    assert a.shape == (6, source.generator.num_ws, 8)
    b = sample_latents(source, 4, seed=3, space="w")
    assert_f32_close(a[:4, 0], b)


def test_split_modes_takes_one_kind_and_any_mode_settings():
    assert split_modes([]) == ("relative", ())
    assert split_modes(["smile=0.8", "absolute", "age=0", "absolute"]) == (
        "absolute", ("smile=0.8", "age=0"),
    )  # fmt: skip
    with pytest.raises(UserInputError, match="received 'sideways'"):
        split_modes(["sideways"])
    with pytest.raises(UserInputError, match=r"received \['relative', 'absolute'\]"):
        split_modes(["relative", "absolute"])
