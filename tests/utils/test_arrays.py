import numpy as np
import pytest

from ganedit.errors import DamagedInputError, UserInputError
from ganedit.utils.arrays import load_npz


def test_npz_that_is_a_npy_or_not_a_zip_is_refused_in_one_line(tmp_path):
    disguised = tmp_path / "scores.npz"
    with open(disguised, "wb") as fh:
        np.save(fh, np.arange(3.0))  # once a TypeError (an array is no context manager)
    with pytest.raises(UserInputError, match="received a .npy array"):
        load_npz(disguised)
    truncated = tmp_path / "cut.npz"
    np.savez(truncated, a=np.arange(100.0))
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(DamagedInputError, match="unreadable"):
        load_npz(truncated)
