"""The editing core: one unit convention and one bounding policy for `edit` and the editor."""

from __future__ import annotations

import pytest
import torch

from ganedit.editing import core
from ganedit.editing.edit import Calibration, move, move_many
from ganedit.errors import UserInputError

# 2 logits per latent unit, latents spanning 4 latent units along the direction.
STRONG = Calibration("age", slope=2.0, t=40.0, auc=0.9, span=(-1.0, 3.0), n=128)


def test_latent_units_are_never_bounded():
    assert core.scale(None, 1e5) == core.Scale(1.0, False, None)
    assert core.scale(None, 1e5).record("age") == {
        "attribute": "age",
        "latent_per_unit": 1.0,
        "bounded": False,
    }


def test_calibrated_steps_stop_at_the_bound_times_the_span():
    inside = core.scale(STRONG, 1.0)  # 0.5 latent units, within 0.5 x 4
    assert (inside.latent_per_unit, inside.bounded) == (0.5, False)
    beyond = core.scale(STRONG, 10.0)  # 5 latent units: scaled to 2 for the largest
    assert beyond.bounded and 10.0 * beyond.latent_per_unit == pytest.approx(2.0)
    assert core.scale(STRONG, 10.0, bound=None).latent_per_unit == 0.5
    record = beyond.record("age")
    assert record["unbounded_latent_per_unit"] == 0.5 and record["calibration"]["span"] == [
        -1.0,
        3.0,
    ]
    weak = Calibration("smile", slope=0.01, t=0.5, auc=0.52, span=(-1.0, 1.0), n=128)
    with pytest.raises(UserInputError, match="barely"):
        core.scale(weak, 1.0)


def test_moves_are_edits_own_and_several_directions_add_up():
    gen = torch.Generator().manual_seed(0)
    x, a, b = torch.randn(3, 8, generator=gen), torch.randn(8, generator=gen), torch.randn(8)
    assert core.moved(x, [], []) is x
    assert torch.equal(core.moved(x, [a], [1.5], "absolute", 0.2), move(x, a, 1.5, "absolute", 0.2))
    assert torch.equal(core.moved(x, [a, b], [1.0, -2.0]), move_many(x, [a, b], [1.0, -2.0]))
    with pytest.raises(UserInputError, match="attribute"):
        core.measure(None, a, "w", None, None)
