import json
import logging
import pickle

import numpy as np
import pytest

from ganedit.directions.estimators import MAB, Conditional, InterFaceGAN
from ganedit.directions.io import load_boundary, save_boundary, sidecar_path
from ganedit.errors import DamagedInputError, UserInputError


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 12)).astype(np.float32)
    scores = {"smile": 1 / (1 + np.exp(-4 * x[:, 0])), "age": 1 / (1 + np.exp(-4 * x[:, 1]))}
    return x, scores, InterFaceGAN("smile", ratio=0.2, random_state=3).fit(x, scores)


def test_round_trip_writes_ifg_layout_and_sidecar(tmp_path, fitted):
    _, _, est = fitted
    path = save_boundary(tmp_path / "smile_boundary.npy", est, {"generator": "g.pt", "space": "w"})
    raw = np.load(path, allow_pickle=False)
    assert raw.shape == (1, 12) and raw.dtype == np.float32
    direction, sidecar = load_boundary(path)
    assert direction.shape == (12,) and direction.dtype == np.float32
    np.testing.assert_allclose(direction, est.direction_, atol=1e-6)
    assert sidecar == json.loads(sidecar_path(path).read_text())
    assert sidecar["generator"] == "g.pt" and sidecar["space"] == "w"
    assert sidecar["method"] == "interfacegan" and sidecar["attribute"] == "smile"
    assert sidecar["params"]["ratio"] == 0.2 and sidecar["seed"] == 3
    assert sidecar["n_samples"] == est.n_samples_
    assert sidecar["val_accuracy"] == pytest.approx(est.val_accuracy_)
    assert sidecar["remaining_accuracy"] == pytest.approx(est.remaining_accuracy_)
    assert sidecar["intercept"] == pytest.approx(est.intercept_)
    assert sidecar["shape"] == [1, 12] and sidecar["ganedit_version"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "smile_boundary.npy",
        "smile_boundary.npy.json",
    ]


def test_ws_direction_is_saved_as_one_by_layers_by_dim(tmp_path):
    direction = np.random.default_rng(1).normal(size=(3, 8))
    path = save_boundary(tmp_path / "ws.npy", direction, {"space": "ws"})
    assert np.load(path).shape == (1, 3, 8)
    loaded, sidecar = load_boundary(path)
    assert loaded.shape == (3, 8)
    np.testing.assert_allclose(loaded, direction / np.linalg.norm(direction), atol=1e-6)
    assert sidecar["shape"] == [1, 3, 8] and "method" not in sidecar


def test_reference_float64_boundary_without_sidecar_loads(tmp_path):
    vector = np.random.default_rng(2).normal(size=(1, 512))
    np.save(tmp_path / "pggan_celebahq_age_boundary.npy", vector / np.linalg.norm(vector))
    direction, sidecar = load_boundary(tmp_path / "pggan_celebahq_age_boundary.npy")
    assert direction.shape == (512,) and direction.dtype == np.float32
    assert sidecar == {}


def test_non_unit_boundary_is_renormalised_with_a_warning(tmp_path, caplog):
    np.save(tmp_path / "b.npy", np.full((1, 4), 2.0))
    with caplog.at_level(logging.WARNING):
        direction, _ = load_boundary(tmp_path / "b.npy")
    np.testing.assert_allclose(direction, [0.5] * 4)
    assert "re-normalised" in caplog.text


def test_pickled_and_malformed_files_are_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with open(tmp_path / "pickle.npy", "wb") as fh:
        pickle.dump({"a": 1}, fh)
    (tmp_path / "noise.npy").write_bytes(bytes(range(7, 200)))
    cases = [
        ("obj.npy", UserInputError, "an array of pickled Python objects (not loaded"),
        ("pickle.npy", UserInputError, "received a pickle (not loaded"),
        ("noise.npy", DamagedInputError, "received a file that is not a .npy array"),
    ]
    for name, error, words in cases:
        with pytest.raises(error) as err:
            load_boundary(tmp_path / name)
        message = str(err.value)
        assert words in message and "\n" not in message
        assert "unsafe" not in message and "allow_pickle" not in message
    np.save(tmp_path / "two.npy", np.ones((2, 4)))
    with pytest.raises(UserInputError, match=r"shape \(1, D\)"):
        load_boundary(tmp_path / "two.npy")
    np.save(tmp_path / "int.npy", np.ones((1, 4), dtype=np.int64))
    with pytest.raises(UserInputError, match="floating"):
        load_boundary(tmp_path / "int.npy")
    np.save(tmp_path / "zero.npy", np.zeros((1, 4)))
    with pytest.raises(UserInputError, match="non-zero"):
        load_boundary(tmp_path / "zero.npy")
    with pytest.raises(UserInputError, match="existing"):
        load_boundary(tmp_path / "missing.npy")
    np.save(tmp_path / "ok.npy", np.ones((1, 4)))
    sidecar_path(tmp_path / "ok.npy").write_text("{not json")
    with pytest.raises(UserInputError, match="JSON"):
        load_boundary(tmp_path / "ok.npy")


def test_a_sidecar_of_the_older_name_is_read_and_the_own_one_wins(tmp_path, fitted):
    """Boundaries written before sidecars carried the whole file name have `x.json`."""
    _, _, est = fitted
    path = save_boundary(tmp_path / "x.npy", est, {"generator": "g.pt", "space": "w"})
    assert sidecar_path(path).name == "x.npy.json"
    sidecar_path(path).rename(tmp_path / "x.json")
    assert load_boundary(path)[1]["generator"] == "g.pt"
    save_boundary(path, est, {"generator": "other.pt", "space": "w"})  # writes x.npy.json
    assert load_boundary(path)[1]["generator"] == "other.pt"


def test_save_checks_path_and_metadata(tmp_path, fitted):
    _, _, est = fitted
    with pytest.raises(UserInputError, match=".npy"):
        save_boundary(tmp_path / "b.txt", est, {})
    with pytest.raises(UserInputError, match="attribute"):
        save_boundary(tmp_path / "b.npy", est, {"attribute": "age"})
    assert not (tmp_path / "b.npy").exists()


def test_conditional_sidecar_names_the_base_method(tmp_path, fitted):
    x, scores, _ = fitted
    condition = np.eye(12)[1]
    est = Conditional(MAB("smile", n=100, random_state=4), [condition]).fit(x, scores)
    path = save_boundary(tmp_path / "smile_c_age.npy", est, {"conditions": ["age"]})
    _, sidecar = load_boundary(path)
    assert sidecar["method"] == "mab" and sidecar["seed"] == 4
    assert sidecar["fit"]["conditional"]["n_conditions"] == 1
    assert sidecar["params"]["base_estimator"]["params"]["n"] == 100
    assert sidecar["params"]["conditions"] == [{"array_shape": [12], "dtype": "float64"}]
    assert sidecar["conditions"] == ["age"]


@pytest.mark.parametrize(
    "key, value",
    [("attribute", 7), ("intercept", "nan"), ("intercept", {"a": 1}), ("space", "wp"),
     ("generator_sha256", {"a": 1}), ("params", [1]), ("shape", 3)],
)  # fmt: skip
def test_sidecar_fields_of_the_wrong_type_are_damage_not_tracebacks(tmp_path, fitted, key, value):
    from ganedit.errors import DamagedInputError

    _, _, est = fitted
    path = save_boundary(tmp_path / "b.npy", est, {"generator": "g", "space": "w"})
    sidecar = json.loads(sidecar_path(path).read_text())
    sidecar[key] = value
    sidecar_path(path).write_text(json.dumps(sidecar))
    with pytest.raises(DamagedInputError, match=key):
        load_boundary(path)
    sidecar[key] = float("nan") if key == "intercept" else sidecar[key]
    sidecar_path(path).write_text(json.dumps(sidecar))  # JSON's NaN literal
    with pytest.raises(DamagedInputError):
        load_boundary(path)


def test_committed_boundaries_name_the_shipped_generator_they_were_learned_on():
    """The study boundaries in docs/ are used as they are (`ganedit ui -b ...`, `edit -b`):
    each sidecar must carry the name and sha256 of a shipped generator, so the provenance
    check refuses it on any other."""
    import json
    from pathlib import Path

    from ganedit.models.sources import generator_identity

    docs = Path(__file__).resolve().parents[2] / "docs"
    sidecars = sorted(docs.glob("*/boundaries/*.json"))
    assert len(sidecars) >= 48
    for path in sidecars:
        meta = json.loads(path.read_text())
        assert meta["generator_sha256"] == generator_identity(meta["generator"])["sha256"], path
