import numpy as np
import pytest
import torch

from ganedit.errors import UserInputError
from ganedit.models.modes import (
    ModeLayout,
    anchor_weights,
    attribute_count,
    label_ranges,
    mode_vector,
    normalise,
    num_modes,
)


def test_anchor_weights_at_worked_values():
    t = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0, -3.0, 7.0])
    expected = torch.tensor(
        [
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.5, 0.5],
            [0.0, 0.0, 1.0],
            [1.0, 0.0, 0.0],  # clipped below
            [0.0, 0.0, 1.0],  # clipped above
        ]
    )
    assert torch.equal(anchor_weights(t), expected)


def test_mode_vector_zeroes_the_middle_for_the_generator_and_keeps_it_for_the_target():
    t = torch.tensor([[0.25, 0.5, 1.0]])  # k = 3, M = 10
    target = mode_vector(t, for_generator=False)
    fed = mode_vector(t, for_generator=True)
    assert target.shape == (1, num_modes(3)) == (1, 10)
    assert target.tolist() == [[1.0, 0.5, 0.5, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]]
    assert fed.tolist() == [[1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]]
    # neutral: the generator sees the base constant alone
    assert mode_vector(torch.full((2, 4), 0.5), True)[:, 1:].abs().sum() == 0


def test_coordinates_invert_either_form():
    t = torch.rand(50, 4, generator=torch.Generator().manual_seed(0))
    for form in (True, False):
        back = ModeLayout.of_width(13).coordinates(mode_vector(t, form))
        assert torch.allclose(back, t, atol=1e-6)


def test_ranges_and_normalisation_clip_to_percentiles():
    values = np.stack([np.arange(1001.0), np.full(1001, 3.0)], axis=1)
    ranges = label_ranges(values)
    assert ranges[0].tolist() == pytest.approx([5.0, 995.0])
    u = normalise(values, ranges)
    assert u.min() == 0 and u.max() == 1
    assert u[500, 0] == pytest.approx(0.5)
    assert np.all(u[:, 1] == 0)  # a constant attribute: t = 0, never NaN


def test_bad_labels_are_refused():
    with pytest.raises(UserInputError, match="finite"):
        label_ranges(np.array([[1.0], [np.nan]]))
    with pytest.raises(UserInputError, match="shape"):
        label_ranges(np.zeros(4))
    with pytest.raises(UserInputError, match="columns"):
        normalise(np.zeros((3, 2)), np.zeros((3, 2)))


def test_mode_settings_parse_and_replace_columns():
    names = ["smile", "yaw"]
    settings = ModeLayout(names).parse(["yaw=1", "smile=0.25"])
    assert settings == {"yaw": 1.0, "smile": 0.25}
    t = ModeLayout(names).targets(torch.full((2, 2), 0.5), {"yaw": 0.75})  # exact in float32
    assert t.tolist() == [[0.5, 0.75], [0.5, 0.75]]
    for bad in (["yaw"], ["yaw=1.5"], ["yaw=x"], ["age=0.2"], ["yaw=0", "yaw=1"], ["yaw=nan"]):
        with pytest.raises(UserInputError, match="mode"):
            ModeLayout(names).parse(bad)


def test_a_layout_spells_both_forms_its_settings_and_its_coordinates():
    layout = ModeLayout(["smile", "yaw"])
    assert layout.k == 2 and layout.num_modes == num_modes(2) == 7
    t = torch.tensor([[0.25, 1.0]])
    assert layout.generator_vector(t).tolist() == [[1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 1.0]]
    assert layout.target_vector(t).tolist() == [[1.0, 0.5, 0.5, 0.0, 0.0, 0.0, 1.0]]
    assert torch.equal(layout.generator_vector(t), mode_vector(t, True))  # the one formula
    assert torch.equal(layout.coordinates(layout.target_vector(t)), t)
    at_yaw = layout.setting_vector(layout.parse(["yaw=1"]))
    assert torch.equal(at_yaw, layout.generator_vector(torch.tensor([[0.5, 1.0]])))
    with pytest.raises(UserInputError, match=r"\[N, 2\]"):
        layout.generator_vector(torch.zeros(1, 3))
    with pytest.raises(UserInputError, match=r"\[N, 7\]"):
        layout.coordinates(torch.zeros(1, 10))
    with pytest.raises(UserInputError, match="mode attributes among"):
        layout.targets(layout.neutral(1), {"age": 1.0})


def test_a_width_is_a_layout_only_when_it_is_one_plus_three_k():
    assert [attribute_count(m) for m in (0, 1, 2, 4, 7, 8)] == [None, 0, None, 1, 2, None]
    assert ModeLayout.of_width(10).attributes == ("attribute_1", "attribute_2", "attribute_3")
    with pytest.raises(UserInputError, match="1 \\+ 3k"):
        ModeLayout.of_width(5)
    with pytest.raises(UserInputError, match="1 \\+ 3k"):
        ModeLayout.of_width(6)
