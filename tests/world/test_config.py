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


@pytest.mark.parametrize(
    "edit, words",
    [
        (("rate = 0.48", 'rate = "often"'), "number for rate"),  # was a ValueError traceback
        (("rate = 0.42", "rate = nan"), "rate in (0, 1)"),
        (("gender = -0.8", 'gender = "strong"'), "number for effect"),
        (("gender = -0.8", "gender = inf"), "log-odds"),
        (("gender = -0.8", "gender = -1e308"), "log-odds"),  # was an OverflowError
        (("yaw_std = 20.0", "yaw_std = -5.0"), "yaw_std"),
        (("yaw_max = 75.0", "yaw_max = 1e308"), "yaw_max"),
        (("[pose]", "pose = 3\n[unused]"), "keys among"),  # a misspelt table was ignored
        (("rate = 0.23", "rat = 0.23\nrate = 0.23"), "keys among"),
        (("[attributes.smile]", "[unused.smile]"), "unused"),
    ],
)
def test_world_configs_with_wrong_types_unknown_keys_or_ranges_are_refused(tmp_path, edit, words):
    from importlib import resources

    text = resources.files("ganedit.world").joinpath("presets/celeba.toml").read_text()
    assert edit[0] in text
    path = tmp_path / "w.toml"
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(UserInputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load_world_config(path)
    path.write_bytes(text.encode() + b"# \xff\n")
    with pytest.raises(UserInputError, match="valid TOML"):  # was a UnicodeDecodeError
        load_world_config(path)
