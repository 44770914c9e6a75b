import numpy as np
import pytest

from ganedit.errors import DamagedInputError, UserInputError
from ganedit.latents import LatentBank, partial_path
from ganedit.latents.bank import (
    chunk_ranges,
    create_store,
    done_chunks,
    finalize,
    open_store,
    write_chunk,
)

N, CHUNK = 11, 4


def _data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "z": rng.standard_normal((n, 6)).astype(np.float32),
        "w": rng.standard_normal((n, 5)).astype(np.float32),
        "index": np.arange(n, dtype=np.int64),
        "scores/smile": rng.random(n).astype(np.float32),
        "scores/yaw": (rng.random(n) * 60 - 30).astype(np.float32),
    }


def _create(path, n=N):
    return create_store(
        path,
        n=n,
        chunk_size=CHUNK,
        dims={"z": (6,), "w": (5,)},
        score_names=["smile", "yaw"],
        meta={"generator": "test", "seed": 0},
    )


def _write_all(group, data, chunks=None):
    n = len(data["z"])
    for k, (a, b) in enumerate(chunk_ranges(n, CHUNK)):
        if chunks is None or k in chunks:
            write_chunk(group, k, {name: v[a:b] for name, v in data.items()})


@pytest.fixture
def bank(tmp_path):
    data = _data()
    partial = partial_path(tmp_path / "b.zarr")
    _write_all(_create(partial), data)
    return LatentBank.open(finalize(partial, tmp_path / "b.zarr")), data


def test_chunk_ranges_cover_the_rows():
    assert chunk_ranges(11, 4) == [(0, 4), (4, 8), (8, 11)]
    assert chunk_ranges(4, 4) == [(0, 4)] and chunk_ranges(3, 10) == [(0, 3)]


def test_reads_return_what_was_written(bank):
    bank, data = bank
    assert bank.n == N and bank.spaces == ("z", "w") and bank.score_names == ("smile", "yaw")
    assert bank.dims("z") == (6,) and bank.chunk_size == CHUNK and bank.config is None
    np.testing.assert_array_equal(bank.latents("z"), data["z"])
    np.testing.assert_array_equal(bank.latents("w", 3, 9), data["w"][3:9])
    np.testing.assert_array_equal(bank.index(), np.arange(N))
    scores = bank.scores(["yaw"], start=2, stop=5)
    assert list(scores) == ["yaw"]
    np.testing.assert_array_equal(scores["yaw"], data["scores/yaw"][2:5])
    meta = bank.meta
    assert meta["generator"] == "test" and meta["complete"] is True and meta["n_chunks"] == 3
    assert meta["dims"] == {"z": [6], "w": [5]} and meta["spaces"] == ["z", "w"]
    assert bank.image_path(0) is None
    assert "n=11" in repr(bank)


def test_iter_chunks_streams_every_row_once(bank):
    bank, data = bank
    chunks = list(bank.iter_chunks(spaces=("w",), scores=None, rows=3, start=1))
    assert [(c.start, c.stop) for c in chunks] == [(1, 4), (4, 7), (7, 10), (10, 11)]
    np.testing.assert_array_equal(np.concatenate([c.latents["w"] for c in chunks]), data["w"][1:])
    np.testing.assert_array_equal(np.concatenate([c.index for c in chunks]), np.arange(1, N))
    smile = np.concatenate([c.scores["smile"] for c in chunks])
    np.testing.assert_array_equal(smile, data["scores/smile"][1:])
    default = list(bank.iter_chunks())
    assert [(c.start, c.stop) for c in default] == chunk_ranges(N, CHUNK)
    assert set(default[0].latents) == {"z"} and default[0].scores == {}


def test_bad_requests_are_user_errors(bank):
    bank, _ = bank
    with pytest.raises(UserInputError, match="latent space"):
        bank.latents("ws")
    with pytest.raises(UserInputError, match="score name"):
        bank.scores(["glasses"])
    with pytest.raises(UserInputError, match="start <= stop"):
        bank.latents("z", 5, 20)
    with pytest.raises(UserInputError, match="latent space"):
        next(bank.iter_chunks(spaces=("ws",)))


def test_open_explains_missing_foreign_and_incomplete_banks(tmp_path):
    with pytest.raises(UserInputError, match="no such path"):
        LatentBank.open(tmp_path / "nothing.zarr")
    (tmp_path / "folder").mkdir()
    with pytest.raises(UserInputError, match="no zarr.json"):
        LatentBank.open(tmp_path / "folder")
    partial = partial_path(tmp_path / "b.zarr")
    _write_all(_create(partial), _data(), chunks={0, 2})
    with pytest.raises(UserInputError, match="resume"):
        LatentBank.open(tmp_path / "b.zarr")
    with pytest.raises(UserInputError, match=r"incomplete one \(2 of 3 chunks"):
        LatentBank.open(partial)


def test_done_markers_track_exactly_the_written_chunks(tmp_path):
    partial = partial_path(tmp_path / "b.zarr")
    group = _create(partial)
    data = _data()
    _write_all(group, data, chunks={1})
    assert done_chunks(open_store(partial, "r")).tolist() == [False, True, False]
    with pytest.raises(RuntimeError, match="2 missing"):
        finalize(partial, tmp_path / "b.zarr")
    assert not (tmp_path / "b.zarr").exists()
    _write_all(group, data, chunks={0, 2})
    finalize(partial, tmp_path / "b.zarr")
    assert not partial.exists() and LatentBank.open(tmp_path / "b.zarr").meta["complete"]


def test_write_chunk_checks_names_and_rows(tmp_path):
    group = _create(tmp_path / "b.zarr")
    data = _data()
    with pytest.raises(UserInputError, match="arrays"):
        write_chunk(group, 0, {k: v[:4] for k, v in data.items() if k != "w"})
    with pytest.raises(UserInputError, match="3 rows of z"):
        write_chunk(group, 2, {k: v[:4] for k, v in data.items()})
    assert not done_chunks(group).any()


def test_create_store_checks_its_arguments(tmp_path):
    with pytest.raises(UserInputError, match="score names"):
        create_store(
            tmp_path / "a", n=2, chunk_size=2, dims={"z": (2,)}, score_names=["a/b"], meta={}
        )
    with pytest.raises(UserInputError, match="spaces"):
        create_store(tmp_path / "a", n=2, chunk_size=2, dims={"w": (2,)}, score_names=[], meta={})


def test_finalize_refuses_to_replace_a_bank_unless_overwrite(tmp_path, bank):
    bank, data = bank
    partial = partial_path(bank.path)
    _write_all(_create(partial, n=N), _data(seed=1))
    with pytest.raises(UserInputError, match="pass --overwrite"):
        finalize(partial, bank.path)
    np.testing.assert_array_equal(LatentBank.open(bank.path).latents("z"), data["z"])
    finalize(partial, bank.path, overwrite=True)
    np.testing.assert_array_equal(LatentBank.open(bank.path).latents("z"), _data(seed=1)["z"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.zarr"]


# ---------------------------------------------------------------- damage is found, not read


def _chunk_file(bank_path, name="z", k=1):
    return bank_path / name / "c" / str(k) / "0"


def test_a_missing_chunk_file_is_damage_not_zeros(bank):
    bank, _ = bank
    _chunk_file(bank.path).unlink()
    with pytest.raises(DamagedInputError, match="chunk 1 of 'z'.*missing"):
        LatentBank.open(bank.path)


def test_a_truncated_chunk_file_is_damage(bank):
    bank, _ = bank
    path = _chunk_file(bank.path, "w", 2)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DamagedInputError, match="chunk 2 of 'w'.*truncated"):
        LatentBank.open(bank.path)


def test_a_flipped_byte_fails_its_checksum_when_read(bank):
    bank, data = bank
    path = _chunk_file(bank.path, "z", 0)
    raw = bytearray(path.read_bytes())
    raw[20] ^= 0xFF  # same size: the frame header still agrees, the CRC32C does not
    path.write_bytes(bytes(raw))
    opened = LatentBank.open(bank.path)
    np.testing.assert_array_equal(opened.latents("z", 4, N), data["z"][4:])
    with pytest.raises(DamagedInputError, match="'z' rows 0..4"):
        opened.latents("z", 0, 4)


def test_a_score_chunk_of_zeros_is_still_a_file(tmp_path):
    data = _data()
    data["scores/smile"][:] = 0.0  # zarr skips chunks equal to the fill value unless told not to
    partial = partial_path(tmp_path / "b.zarr")
    _write_all(_create(partial), data)
    bank = LatentBank.open(finalize(partial, tmp_path / "b.zarr"))
    np.testing.assert_array_equal(bank.scores(["smile"])["smile"], np.zeros(N))


def test_damaged_metadata_is_reported(bank):
    bank, _ = bank
    (bank.path / "zarr.json").write_text("{not json")
    with pytest.raises(DamagedInputError, match="metadata"):
        LatentBank.open(bank.path)


@pytest.mark.parametrize(
    "key, value",
    [("n", "11"), ("n", 3.5), ("chunk_size", 0), ("n_chunks", 7), ("spaces", ["q"]),
     ("dims", {"z": "x"}), ("score_names", None), ("generator_identity", "x"),
     ("score_kinds", {"smile": "binary"}), ("score_kinds", {"ghost": "value"}),
     ("score_kinds", "x"), ("truncation_psi", 1.5), ("truncation_psi", "0.7"),
     ("truncation_psi", True)],
)  # fmt: skip
def test_damaged_bank_metadata_is_refused_not_read_with_wrong_counts(tmp_path, key, value):
    import json

    path = tmp_path / "b.zarr"
    _write_all(_create(path), _data())
    finalize(path, tmp_path / "bank.zarr")
    meta_path = tmp_path / "bank.zarr" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"][key] = value
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DamagedInputError, match=key):
        LatentBank.open(tmp_path / "bank.zarr")


@pytest.mark.parametrize("change", ["shape", "dtype", "chunks"])
def test_array_metadata_that_disagrees_with_the_bank_is_damage(tmp_path, change):
    import json

    path = tmp_path / "b.zarr"
    _write_all(_create(path), _data())
    bank = finalize(path, tmp_path / "bank.zarr")
    meta_path = bank / "w" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    if change == "shape":
        meta["shape"][0] *= 2
    elif change == "dtype":
        meta["data_type"] = "float64"  # the same bytes, read as other numbers
    else:
        meta["chunk_grid"]["configuration"]["chunk_shape"] = [0, 5]  # was ZeroDivisionError
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DamagedInputError, match="'w'"):
        LatentBank.open(bank)
