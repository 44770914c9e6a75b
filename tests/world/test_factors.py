import numpy as np
import pytest

from ganedit.world.config import BINARY_ATTRIBUTES
from ganedit.world.factors import NEGATIVE_RANGE, POSITIVE_RANGE, sample_factors

N = 20_000


@pytest.fixture(scope="module")
def celeba_factors(celeba):
    return sample_factors(celeba, 0, 0, N)


def _corr(f, a, b):
    return np.corrcoef(f[f"{a}_label"], f[f"{b}_label"])[0, 1]


def test_sample_i_depends_only_on_seed_and_i(celeba):
    whole = sample_factors(celeba, 3, 0, 300)
    part = sample_factors(celeba, 3, 100, 50)
    for name in whole.columns:
        np.testing.assert_array_equal(whole[name][100:150], part[name])


def test_independent_preset_has_no_dependencies(independent):
    f = sample_factors(independent, 0, 0, N)
    for a in BINARY_ATTRIBUTES:
        for b in BINARY_ATTRIBUTES:
            if a < b:
                # 4 standard errors of a correlation on 20k samples.
                assert abs(_corr(f, a, b)) < 4 / np.sqrt(N), (a, b)


def test_celeba_preset_has_configured_dependencies(celeba, celeba_factors):
    f, table = celeba_factors, celeba.joint_table()
    keys = np.array(list(table.keys()))
    probs = np.array(list(table.values()))

    def exact(a, b, value):
        i, j = BINARY_ATTRIBUTES.index(a), BINARY_ATTRIBUTES.index(b)
        mask = keys[:, j] == value
        return (keys[mask, i] * probs[mask]).sum() / probs[mask].sum()

    def sampled(a, b, value):
        return f[f"{a}_label"][f[f"{b}_label"] == value].mean()

    for a, b in [("glasses", "gender"), ("glasses", "age"), ("smile", "gender"), ("gender", "age")]:
        for value in (0, 1):
            assert sampled(a, b, value) == pytest.approx(exact(a, b, value), abs=0.02), (
                a,
                b,
                value,
            )
    # The dependencies go the way CelebA's do.
    assert sampled("glasses", "gender", 1) > 3 * sampled("glasses", "gender", 0)
    assert sampled("glasses", "age", 1) > 3 * sampled("glasses", "age", 0)
    assert sampled("smile", "gender", 0) > sampled("smile", "gender", 1) + 0.1
    assert sampled("gender", "age", 1) > sampled("gender", "age", 0) + 0.2
    for name, rate in {"gender": 0.42, "age": 0.23, "smile": 0.48, "glasses": 0.065}.items():
        assert f[f"{name}_label"].mean() == pytest.approx(rate, abs=0.012)


def test_intensities_match_labels_and_yaw_is_mostly_frontal(celeba_factors):
    f = celeba_factors
    for name in BINARY_ATTRIBUTES:
        pos = f[f"{name}_label"] > 0.5
        assert f[name][pos].min() >= POSITIVE_RANGE[0] and f[name][pos].max() <= POSITIVE_RANGE[1]
        assert f[name][~pos].min() >= NEGATIVE_RANGE[0] and f[name][~pos].max() <= NEGATIVE_RANGE[1]
    yaw = np.abs(f["yaw"])
    assert (yaw < 20).mean() > 0.6 and 0.0 < (yaw > 45).mean() < 0.05 and yaw.max() <= 75


def test_replace_keeps_identity_and_updates_labels(celeba_factors):
    f = celeba_factors.subset(slice(0, 10))
    g = f.replace(glasses=0.9)
    assert (g["glasses_label"] == 1).all()
    np.testing.assert_array_equal(g["skin"], f["skin"])
    np.testing.assert_array_equal(g["smile"], f["smile"])
