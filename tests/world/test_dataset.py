import lmdb
import numpy as np
import pytest

from ganedit.datasets import ImageDataset, lmdb_key
from ganedit.errors import DamagedInputError, UserInputError
from ganedit.utils.context import RunContext
from ganedit.utils.images import to_uint8
from ganedit.world.dataset import RenderJob, write_world_dataset
from ganedit.world.factors import sample_factors
from ganedit.world.render import render

QUIET = RunContext(progress=False)


def _no_temp_left(folder):
    return not [p for p in folder.iterdir() if ".tmp-" in p.name]


def test_lmdb_round_trip_is_lossless_and_in_stylegan2_pytorch_layout(celeba, tmp_path):
    out = write_world_dataset(
        celeba, RenderJob(n=37, size=32, seed=4, batch_size=16), tmp_path / "w.lmdb", ctx=QUIET
    )
    env = lmdb.open(str(out), readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.get(b"length") == b"37"
        assert txn.get(lmdb_key(32, 36)) is not None and lmdb_key(32, 7) == b"32-00007"
    env.close()
    data = ImageDataset(out)
    expected = to_uint8(render(sample_factors(celeba, 4, 0, 37), 32))
    assert len(data) == 37 and data.size == 32
    for i in (0, 15, 16, 36):
        np.testing.assert_array_equal(data[i], expected[i])
    labels = data.labels()
    np.testing.assert_array_equal(labels["index"], np.arange(37))
    np.testing.assert_array_equal(labels["glasses"], sample_factors(celeba, 4, 0, 37)["glasses"])
    assert _no_temp_left(tmp_path)


def test_image_folder_round_trip(celeba, tmp_path):
    out = write_world_dataset(celeba, RenderJob(n=5, size=16), tmp_path / "faces", ctx=QUIET)
    data = ImageDataset(out)
    assert len(data) == 5 and data[4].shape == (16, 16, 3)
    np.testing.assert_array_equal(data[2], to_uint8(render(sample_factors(celeba, 0, 0, 5), 16))[2])
    assert (out / "world.json").is_file()


def test_bad_inputs_are_user_errors(celeba, tmp_path):
    with pytest.raises(UserInputError, match="missing path"):
        ImageDataset(tmp_path / "nope")
    corrupt = tmp_path / "corrupt.lmdb"
    corrupt.mkdir()
    (corrupt / "data.mdb").write_bytes(b"this is not an lmdb file" * 100)
    with pytest.raises(UserInputError, match="LMDB"):
        ImageDataset(corrupt)
    empty = tmp_path / "empty.lmdb"
    lmdb.open(str(empty)).close()
    with pytest.raises(UserInputError, match="length"):
        ImageDataset(empty)
    with pytest.raises(UserInputError, match="image format"):
        write_world_dataset(celeba, RenderJob(n=2, image_format="gif"), tmp_path / "x", ctx=QUIET)


def test_interrupted_write_leaves_nothing_that_looks_complete(celeba, tmp_path, monkeypatch):
    import ganedit.world.dataset as dataset

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset, "encode", fail)
    with pytest.raises(KeyboardInterrupt):
        write_world_dataset(celeba, RenderJob(n=4, size=16), tmp_path / "w.lmdb", ctx=QUIET)
    assert list(tmp_path.iterdir()) == []


def test_two_readers_of_one_lmdb_in_one_process(celeba, tmp_path):
    out = write_world_dataset(celeba, RenderJob(n=3, size=16), tmp_path / "w.lmdb", ctx=QUIET)
    a, b = ImageDataset(out), ImageDataset(out)
    np.testing.assert_array_equal(a[1], b[1])


def test_rewritten_lmdb_is_read_afresh(celeba, tmp_path):
    out = write_world_dataset(
        celeba, RenderJob(n=3, size=16, seed=0), tmp_path / "w.lmdb", ctx=QUIET
    )
    first = ImageDataset(out)[0]
    again = RunContext(progress=False, overwrite=True)
    write_world_dataset(celeba, RenderJob(n=3, size=16, seed=1), out, ctx=again)
    assert not np.array_equal(first, ImageDataset(out)[0])


def test_existing_outputs_are_refused_and_only_ganedit_folders_replaced(celeba, tmp_path):
    job = RenderJob(n=2, size=16)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UserInputError, match="--overwrite"):
        write_world_dataset(celeba, job, mine, ctx=QUIET)
    with pytest.raises(UserInputError, match="only its own outputs"):
        write_world_dataset(celeba, job, mine, ctx=RunContext(progress=False, overwrite=True))
    assert (mine / "notes.txt").read_text() == "keep me"
    a_file = tmp_path / "file.lmdb"
    a_file.write_text("x")
    with pytest.raises(UserInputError, match="existing file"):
        write_world_dataset(celeba, job, a_file, ctx=RunContext(progress=False, overwrite=True))
    with pytest.raises(UserInputError, match="a file"):
        write_world_dataset(celeba, job, a_file / "inside", ctx=QUIET)


def test_damaged_images_are_reported_not_read(celeba, tmp_path):
    out = write_world_dataset(celeba, RenderJob(n=3, size=16), tmp_path / "f", ctx=QUIET)
    (out / "000001.png").write_bytes((out / "000001.png").read_bytes()[:40])
    data = ImageDataset(out)
    assert data[0].shape == (16, 16, 3)
    with pytest.raises(DamagedInputError, match="000001.png"):
        data[1]
    (out / "000002.png").write_bytes(b"")
    with pytest.raises(DamagedInputError, match="000002.png"):
        data[2]
    lm = write_world_dataset(celeba, RenderJob(n=3, size=16), tmp_path / "w.lmdb", ctx=QUIET)
    env = lmdb.open(str(lm))
    with env.begin(write=True) as txn:
        txn.put(lmdb_key(16, 1), b"\x89PNG garbage")
        txn.put(b"length", b"4")
    env.close()
    with pytest.raises(DamagedInputError, match="length"):
        ImageDataset(lm)


def test_truncated_lmdb_is_damaged_input_not_a_crash(celeba, tmp_path):
    """LMDB maps data.mdb: a page past the end of a truncated file was SIGBUS, not an error."""
    lm = write_world_dataset(celeba, RenderJob(n=3, size=16), tmp_path / "t.lmdb", ctx=QUIET)
    data_mdb = lm / "data.mdb"
    data_mdb.write_bytes(data_mdb.read_bytes()[: 2 * 4096 + 100])
    with pytest.raises(DamagedInputError, match="truncated"):
        ImageDataset(lm)
