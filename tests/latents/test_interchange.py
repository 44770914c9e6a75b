import json
import pickle

import numpy as np
import pytest

from ganedit.errors import DamagedInputError, UserInputError
from ganedit.latents import (
    LatentBank,
    export_reference,
    import_reference,
    load_scores_and_kinds,
    load_scores_dict,
)
from ganedit.latents.bank import chunk_ranges, create_store, finalize, partial_path, write_chunk

N, CHUNK = 13, 5


@pytest.fixture
def bank(tmp_path):
    return _make_bank(tmp_path / "b.zarr", {"generator": "tiny"})


def _make_bank(path, meta) -> LatentBank:
    rng = np.random.default_rng(0)
    data = {
        "z": rng.standard_normal((N, 6)).astype(np.float32),
        "w": rng.standard_normal((N, 4)).astype(np.float32),
        "ws": rng.standard_normal((N, 3, 4)).astype(np.float32),
        "index": np.arange(N, dtype=np.int64),
        "scores/smile": rng.random(N).astype(np.float32),
        "scores/age": rng.random(N).astype(np.float32),
        "scores/yaw": (rng.random(N) * 60 - 30).astype(np.float32),
    }
    partial = partial_path(path)
    group = create_store(
        partial,
        n=N,
        chunk_size=CHUNK,
        dims={"z": (6,), "w": (4,), "ws": (3, 4)},
        score_names=["smile", "age", "yaw"],
        meta=meta,
    )
    for k, (a, b) in enumerate(chunk_ranges(N, CHUNK)):
        write_chunk(group, k, {name: v[a:b] for name, v in data.items()})
    return LatentBank.open(finalize(partial, path))


def _npy_with_pickle(path, payload: bytes):
    """A .npy whose header announces a 0-d object array and whose body is `payload`."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "|O", "fortran_order": False, "shape": ()}
        )
        fh.write(payload)
    return path


def test_export_writes_the_reference_files(bank, tmp_path):
    folder = export_reference(bank, tmp_path / "ref")
    names = sorted(p.name for p in folder.iterdir() if p.name != ".ganedit.json")
    assert names == sorted(
        ["z.npy", "w.npy", "wp.npy", "scores_dict.npy"]
        + [f"{a}_scores.npy" for a in ("smile", "age", "yaw")]
    )
    z = np.load(folder / "z.npy")
    assert z.dtype == np.float32 and z.shape == (N, 6)
    np.testing.assert_array_equal(z, bank.latents("z"))
    np.testing.assert_array_equal(np.load(folder / "wp.npy"), bank.latents("ws"))
    smile = np.load(folder / "smile_scores.npy")
    assert smile.shape == (N, 1) and smile.dtype == np.float32
    # The MAB reference reads it this way (our own file, so allow_pickle is fine here).
    scores = np.load(folder / "scores_dict.npy", allow_pickle=True)[()]
    assert sorted(scores) == ["age", "smile", "yaw"] and scores["age"].shape == (N,)
    np.testing.assert_array_equal(scores["yaw"], bank.scores(["yaw"])["yaw"])


def test_round_trip_bank_to_reference_to_bank(bank, tmp_path):
    folder = export_reference(bank.path, tmp_path / "ref")
    back = LatentBank.open(import_reference(folder, tmp_path / "back.zarr", chunk_size=4))
    assert back.spaces == bank.spaces and set(back.score_names) == set(bank.score_names)
    assert back.meta["generator"] == "imported" and back.meta["n_chunks"] == 4
    for space in bank.spaces:
        np.testing.assert_array_equal(back.latents(space), bank.latents(space))
    np.testing.assert_array_equal(back.index(), np.arange(N))
    for name, values in bank.scores().items():
        np.testing.assert_array_equal(back.scores([name])[name], values)


def test_import_from_files_with_column_or_flat_scores(bank, tmp_path):
    folder = export_reference(bank, tmp_path / "ref")
    np.save(folder / "glasses_scores.npy", np.arange(N, dtype=np.int64))  # (N,), integer labels
    files = [folder / "z.npy", folder / "smile_scores.npy", folder / "glasses_scores.npy"]
    back = LatentBank.open(import_reference(files, tmp_path / "b2.zarr", generator="g"))
    assert back.spaces == ("z",) and back.score_names == ("smile", "glasses")
    assert back.meta["generator"] == "g" and back.meta["predictor"] == "imported"
    np.testing.assert_array_equal(back.scores()["glasses"], np.arange(N, dtype=np.float32))
    np.testing.assert_array_equal(back.scores()["smile"], bank.scores(["smile"])["smile"])


def test_import_checks_files_and_shapes(bank, tmp_path):
    folder = export_reference(bank, tmp_path / "ref")
    with pytest.raises(UserInputError, match="z.npy"):
        import_reference([folder / "w.npy"], tmp_path / "x.zarr")
    np.save(tmp_path / "w.npy", np.zeros((N + 1, 4), np.float32))
    with pytest.raises(UserInputError, match=rf"{N} rows in w.npy"):
        import_reference([folder / "z.npy", tmp_path / "w.npy"], tmp_path / "x.zarr")
    np.save(tmp_path / "age_scores.npy", np.zeros((N, 2), np.float32))
    with pytest.raises(UserInputError, match="age_scores.npy"):
        import_reference([folder / "z.npy", tmp_path / "age_scores.npy"], tmp_path / "x.zarr")
    np.save(tmp_path / "notes.npy", np.zeros(3))
    with pytest.raises(UserInputError, match="reference files named"):
        import_reference([folder / "z.npy", tmp_path / "notes.npy"], tmp_path / "x.zarr")
    np.save(folder / "smile_scores.npy", np.zeros((N, 1), np.float32))  # disagrees with the dict
    with pytest.raises(UserInputError, match="agree"):
        import_reference(folder, tmp_path / "x.zarr")
    assert not (tmp_path / "x.zarr").exists()
    with pytest.raises(UserInputError, match="pass --overwrite"):
        import_reference([folder / "z.npy"], bank.path)


def test_load_scores_dict_reads_np_save_of_a_dict(tmp_path):
    scores = {"Smile": np.linspace(0, 1, 7, dtype=np.float32), "Age": np.arange(7)}
    np.save(tmp_path / "scores_dict.npy", scores, allow_pickle=True)
    loaded = load_scores_dict(tmp_path / "scores_dict.npy")
    assert sorted(loaded) == ["Age", "Smile"]
    np.testing.assert_array_equal(loaded["Smile"], scores["Smile"])
    np.testing.assert_array_equal(loaded["Age"], scores["Age"])


def test_load_scores_dict_reads_protocol_2_pickles(tmp_path):
    scores = {"Glasses": np.array([0.25, 0.75])}
    payload = pickle.dumps(np.asanyarray(scores, dtype=object), protocol=2)
    loaded = load_scores_dict(_npy_with_pickle(tmp_path / "old.npy", payload))
    np.testing.assert_array_equal(loaded["Glasses"], scores["Glasses"])


def test_load_scores_dict_reads_npz_and_structured_arrays(tmp_path):
    np.savez(tmp_path / "s.npz", smile=np.ones(3), age=np.zeros(3))
    assert sorted(load_scores_dict(tmp_path / "s.npz")) == ["age", "smile"]
    table = np.zeros(4, dtype=[("smile", "f4"), ("yaw", "f8")])
    table["yaw"] = [1, 2, 3, 4]
    np.save(tmp_path / "t.npy", table)
    loaded = load_scores_dict(tmp_path / "t.npy")
    np.testing.assert_array_equal(loaded["yaw"], [1, 2, 3, 4])
    np.save(tmp_path / "plain.npy", np.zeros((4, 2)))
    with pytest.raises(UserInputError, match="plain float64 array"):
        load_scores_dict(tmp_path / "plain.npy")


@pytest.mark.parametrize(
    "template",
    [
        # protocol 0: GLOBAL os.system, then REDUCE with one string argument
        b"cos\nsystem\n(S'touch {marker}'\ntR.",
        b"cposix\nsystem\n(S'touch {marker}'\ntR.",
        b'cbuiltins\neval\n(S\'open("{marker}", "w")\'\ntR.',
        # protocol 4: STACK_GLOBAL
        b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x00\x85R.",
    ],
)
def test_load_scores_dict_refuses_code_in_the_pickle(tmp_path, template):
    marker = tmp_path / "pwned"
    payload = template.replace(b"{marker}", str(marker).encode())
    path = _npy_with_pickle(tmp_path / "scores_dict.npy", payload)
    with pytest.raises(
        UserInputError, match=r"received a pickle referencing (os|posix|builtins)\."
    ):
        load_scores_dict(path)
    assert not marker.exists()


def test_load_scores_dict_refuses_non_numeric_content(tmp_path):
    np.save(tmp_path / "obj.npy", {"a": np.array([1, "x"], dtype=object)}, allow_pickle=True)
    with pytest.raises(UserInputError, match="plain numeric arrays.*'a': object"):
        load_scores_dict(tmp_path / "obj.npy")
    np.save(tmp_path / "list.npy", np.asanyarray([np.zeros(2)] * 2 + [None], dtype=object))
    with pytest.raises(UserInputError, match="0-d object array"):
        load_scores_dict(tmp_path / "list.npy")
    np.save(tmp_path / "str.npy", {"a": "text"}, allow_pickle=True)
    with pytest.raises(UserInputError, match="'a': str"):
        load_scores_dict(tmp_path / "str.npy")
    np.save(tmp_path / "keys.npy", {1: np.zeros(2)}, allow_pickle=True)
    with pytest.raises(UserInputError, match="string keys"):
        load_scores_dict(tmp_path / "keys.npy")
    _npy_with_pickle(tmp_path / "cut.npy", pickle.dumps(np.asanyarray({}, dtype=object))[:-5])
    with pytest.raises(UserInputError, match="not a whole pickle"):
        load_scores_dict(tmp_path / "cut.npy")
    (tmp_path / "junk.npy").write_bytes(b"not an npy file at all")
    with pytest.raises(UserInputError, match=".npy array"):
        load_scores_dict(tmp_path / "junk.npy")


def test_legacy_byte_strings_may_only_use_latin1(tmp_path):
    payload = b"c_codecs\nencode\n(Vabc\nVrot13\ntR."
    with pytest.raises(UserInputError, match="rot13"):
        load_scores_dict(_npy_with_pickle(tmp_path / "codec.npy", payload))


# ------------------------------------------------------------------------------------------
# Score kinds through the files

KINDS = {"smile": "probability", "age": "value", "yaw": "value"}  # age: a value in [0, 1]


def test_kinds_travel_through_export_and_import(tmp_path):
    bank = _make_bank(tmp_path / "k.zarr", {"generator": "tiny", "score_kinds": KINDS})
    folder = export_reference(bank, tmp_path / "ref")
    assert json.loads((folder / "score_kinds.json").read_text()) == KINDS
    assert load_scores_and_kinds(folder / "scores_dict.npy")[1] == KINDS
    back = LatentBank.open(import_reference(folder, tmp_path / "back.zarr"))
    assert back.score_kinds == KINDS
    # The kinds file may also be named among explicit files.
    files = [folder / "z.npy", folder / "age_scores.npy", folder / "score_kinds.json"]
    with pytest.raises(DamagedInputError, match=r"kinds of \['smile', 'yaw'\]"):
        import_reference(files, tmp_path / "some.zarr")  # it names scores not imported
    (folder / "score_kinds.json").write_text('{"age": "value"}')
    some = LatentBank.open(import_reference(files, tmp_path / "some.zarr"))
    assert some.score_kinds == {"age": "value"}


def test_a_bank_without_kinds_exports_none_and_imports_without_them(bank, tmp_path):
    folder = export_reference(bank, tmp_path / "ref")
    assert not (folder / "score_kinds.json").exists()
    assert load_scores_and_kinds(folder / "scores_dict.npy")[1] == {}
    back = LatentBank.open(import_reference(folder, tmp_path / "back.zarr"))
    assert back.score_kinds == {"smile": None, "age": None, "yaw": None}  # the old rule


def test_a_partial_kinds_file_leaves_the_others_to_the_old_rule(bank, tmp_path):
    from ganedit.directions.fit import load_scores

    folder = export_reference(bank, tmp_path / "ref")
    (folder / "score_kinds.json").write_text('{"age": "value"}')
    back = import_reference(folder, tmp_path / "back.zarr")
    assert LatentBank.open(back).score_kinds == {"smile": None, "age": "value", "yaw": None}
    kinds = load_scores(str(back), None, "smile").kinds
    assert kinds == {"smile": "probability", "age": "value", "yaw": "value"}


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"beard": "value"}', "kinds of ['beard']"),
        ('{"age": "binary"}', "score kinds among"),
        ('{"yaw": "probability"}', "probabilities in [0, 1] for 'yaw'"),
        ("[1]", "a JSON object"),
        ('{"age": null}', "a JSON object"),
        ("{not json", "unreadable JSON"),
    ],
)
def test_a_damaged_kinds_file_is_refused_in_one_line(bank, tmp_path, text, words):
    folder = export_reference(bank, tmp_path / "ref")
    (folder / "score_kinds.json").write_text(text)
    with pytest.raises(DamagedInputError) as caught:
        import_reference(folder, tmp_path / "x.zarr")
    message = str(caught.value)
    assert words in message and "score_kinds.json" in message and "\n" not in message
    assert not (tmp_path / "x.zarr").exists()


def test_an_npz_carries_its_kinds_in_an_entry_that_is_not_a_score(tmp_path):
    from ganedit.models.scoring import save_scores

    scores = {"smile": np.array([0.2, 0.9], np.float32), "yaw": np.array([-20.0, 5.0], np.float32)}
    path = save_scores(scores, tmp_path / "s.npz", {"smile": "probability", "yaw": "value"})
    assert sorted(load_scores_dict(path)) == ["smile", "yaw"]
    loaded, kinds = load_scores_and_kinds(path)
    assert kinds == {"smile": "probability", "yaw": "value"}
    np.testing.assert_array_equal(loaded["yaw"], scores["yaw"])
    np.savez(tmp_path / "old.npz", **scores)  # written before kinds were recorded
    assert load_scores_and_kinds(tmp_path / "old.npz")[1] == {}


@pytest.mark.parametrize(
    "entry, words",
    [
        (np.array([1.0, 2.0]), "one JSON string"),
        (np.array('{"beard": "value"}'), "kinds of ['beard']"),
        (np.array('{"yaw": "probability"}'), "probabilities in [0, 1] for 'yaw'"),
        (np.array('{"smile": "likely"}'), "score kinds among"),
    ],
)
def test_a_damaged_kinds_entry_is_refused_in_one_line(tmp_path, entry, words):
    scores = {"smile": np.array([0.2, 0.9]), "yaw": np.array([-20.0, 5.0])}
    np.savez(tmp_path / "s.npz", **scores, **{".kinds": entry})
    with pytest.raises(DamagedInputError) as caught:
        load_scores_and_kinds(tmp_path / "s.npz")
    assert words in str(caught.value) and "\n" not in str(caught.value)
