import itertools

import numpy as np
import pytest

from ganedit.errors import UserInputError
from ganedit.world.config import BINARY_ATTRIBUTES, load_world_config

CELEBA_RATES = {"gender": 0.42, "age": 0.23, "smile": 0.48, "glasses": 0.065}


def _marginals(table):
    keys = np.array(list(table.keys()))
    probs = np.array(list(table.values()))
    return {a: float((keys[:, k] * probs).sum()) for k, a in enumerate(BINARY_ATTRIBUTES)}


@pytest.mark.parametrize("preset", ["celeba", "independent"])
def test_presets_have_celeba_marginals_exactly(preset):
    table = load_world_config(preset).joint_table()
    assert sum(table.values()) == pytest.approx(1.0)
    for name, rate in _marginals(table).items():
        assert rate == pytest.approx(CELEBA_RATES[name], abs=1e-9)


def test_independent_joint_is_product_of_marginals(independent):
    table = independent.joint_table()
    for labels in itertools.product((0, 1), repeat=4):
        expected = np.prod(
            [
                CELEBA_RATES[a] if v else 1 - CELEBA_RATES[a]
                for a, v in zip(BINARY_ATTRIBUTES, labels, strict=True)
            ]
        )
        assert table[labels] == pytest.approx(expected)


def test_bad_config_files_give_user_errors(tmp_path):
    with pytest.raises(UserInputError, match="preset name"):
        load_world_config("no-such-preset")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    with pytest.raises(UserInputError, match="valid TOML"):
        load_world_config(bad)
    cyclic = tmp_path / "cyclic.toml"
    cyclic.write_text(
        "[attributes.gender]\nrate = 0.5\neffects = { age = 1.0 }\n"
        "[attributes.age]\nrate = 0.5\n[attributes.smile]\nrate = 0.5\n[attributes.glasses]\nrate = 0.5\n"
    )
    with pytest.raises(UserInputError, match="listed before it"):
        load_world_config(cyclic)
