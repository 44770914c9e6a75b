"""The data's mode distribution shipped with a self-conditioned model, and how samples draw
their modes from it."""

import json

import numpy as np
import pytest
import torch

from ganedit.errors import DamagedInputError, UserInputError
from ganedit.models.modes import (
    MODE_PRIOR,
    ModeLayout,
    draw_coordinates,
    load_mode_prior,
    save_mode_prior,
)

LAYOUT = ModeLayout(["smile", "yaw"])


def _prior(n=64):
    return np.random.default_rng(0).uniform(size=(n, 2))


def test_round_trip_keeps_the_rows_to_four_decimals(tmp_path):
    t = _prior()
    save_mode_prior(tmp_path, LAYOUT, t, origin="test")
    back = load_mode_prior(tmp_path, LAYOUT)
    np.testing.assert_allclose(back, t, atol=5e-5)
    assert json.loads((tmp_path / MODE_PRIOR).read_text())["origin"] == "test"
    assert load_mode_prior(tmp_path / "none", LAYOUT) is None


@pytest.mark.parametrize(
    "record",
    [
        {"attributes": ["yaw", "smile"], "t": [[0.1, 0.2]]},  # another order
        {"attributes": ["smile", "yaw"], "t": [[0.1, 1.5]]},  # outside [0, 1]
        {"attributes": ["smile", "yaw"], "t": [[0.1]]},  # a column short
        {"attributes": ["smile", "yaw"], "t": "rows"},
        {"attributes": ["smile", "yaw"], "t": []},
        ["not", "a", "record"],
    ],
)
def test_a_damaged_prior_is_refused_in_one_line(tmp_path, record):
    (tmp_path / MODE_PRIOR).write_text(json.dumps(record))
    with pytest.raises(DamagedInputError) as err:
        load_mode_prior(tmp_path, LAYOUT)
    assert "\n" not in str(err.value)


def test_a_non_finite_prior_is_refused(tmp_path):
    (tmp_path / MODE_PRIOR).write_text('{"attributes": ["smile", "yaw"], "t": [[NaN, 0.5]]}')
    with pytest.raises(DamagedInputError, match="coordinates"):
        load_mode_prior(tmp_path, LAYOUT)


@pytest.mark.parametrize("how", ["data", "uniform", "neutral"])
def test_row_i_depends_only_on_seed_and_i(how):
    prior = _prior()
    few = draw_coordinates(how, 5, 3, LAYOUT, prior)
    many = draw_coordinates(how, 40, 3, LAYOUT, prior)
    assert torch.equal(few, many[:5]) and many.shape == (40, 2)
    assert ((many >= 0) & (many <= 1)).all()


def test_data_draws_rows_of_the_prior_and_uniform_spreads():
    prior = _prior(16)
    drawn = draw_coordinates("data", 500, 0, LAYOUT, prior).numpy().astype(np.float64)
    rows = {tuple(np.round(r, 4)) for r in prior.astype(np.float32).astype(np.float64)}
    assert all(tuple(np.round(r, 4)) in rows for r in drawn)
    assert len({tuple(r) for r in drawn}) == 16  # every row drawn at least once in 500
    uniform = draw_coordinates("uniform", 2000, 0, LAYOUT).numpy()
    assert abs(uniform.mean() - 0.5) < 0.03 and uniform.std() > 0.25
    assert torch.equal(draw_coordinates("neutral", 2, 0, LAYOUT), torch.full((2, 2), 0.5))


def test_data_without_a_prior_is_a_user_error():
    with pytest.raises(UserInputError, match="mode-prior.json"):
        draw_coordinates("data", 4, 0, LAYOUT, None)


def test_shipped_world64_sc_carries_its_data_modes():
    from ganedit.models.registry import generator_folder

    layout = ModeLayout(["smile", "glasses", "age", "yaw"])
    prior = load_mode_prior(generator_folder("world64-sc"), layout)
    assert prior.shape == (4096, 4)
    # The world's glasses are rare (6.5%): the data's glasses coordinate sits low.
    assert (prior[:, 1] > 0.5).mean() < 0.15 and 0.3 < (prior[:, 0] > 0.5).mean() < 0.7


def test_sample_draws_world64_sc_at_the_data_modes_by_default(tmp_path, capsys):
    from cli_run import ok, user_error

    text = ok(capsys, ["sample", "-g", "world64-sc", "-n", 4, "--out", tmp_path / "s.png"])
    assert "modes data" in text
    assert json.loads((tmp_path / "s.png.json").read_text())["modes_drawn"] == "data"
    text = ok(capsys, ["sample", "-g", "world64-sc", "-n", 4, "--mode", "smile=1",
                       "--out", tmp_path / "m.png"])  # fmt: skip
    assert "modes data" in text  # a fixed mode sits on top of each sample's own modes
    text = ok(capsys, ["sample", "-g", "world64-sc", "-n", 4, "--mode", "smile=1", "--modes",
                       "neutral", "--out", tmp_path / "n.png"])  # fmt: skip
    assert "modes neutral" in text
    line = user_error(capsys, ["sample", "-g", "world64", "-n", 4, "--modes", "uniform",
                               "--out", tmp_path / "t.png"])  # fmt: skip
    assert "self-conditioned" in line
