import numpy as np

from ganedit.utils import rng


def test_uniform_depends_only_on_seed_index_stream():
    a = rng.uniform(7, np.arange(100), 3)
    b = rng.uniform(7, np.arange(50, 100), 3)
    np.testing.assert_array_equal(a[50:], b)
    assert not np.array_equal(a, rng.uniform(8, np.arange(100), 3))
    assert not np.array_equal(a, rng.uniform(7, np.arange(100), 4))


def test_uniform_and_normal_statistics():
    u = rng.uniform(0, np.arange(200_000), 0)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    z = rng.normal(0, np.arange(200_000), 0)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    # Neighbouring streams must not be correlated.
    assert abs(np.corrcoef(u, rng.uniform(0, np.arange(200_000), 1))[0, 1]) < 0.01
