"""The editing service under `ganedit ui`: its caches, its refusals, its exports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cli_run import ok
from ganedit.directions.fit import load_latents
from ganedit.directions.io import load_boundary, save_boundary
from ganedit.editing.service import EditingService, EditState, ServiceConfig
from ganedit.errors import ProvenanceError, UserInputError

ROOT = Path(__file__).resolve().parents[2]
BOUNDARIES = ROOT / "docs" / "directions_report" / "boundaries"
REGRESSION_AGE = BOUNDARIES / "regression_age.npy"
INTERFACEGAN_AGE = BOUNDARIES / "interfacegan_age.npy"
YOUNG_SEED = 3  # a world64 face the evaluator reads as young (age ~0.1)


def _relabelled(folder: Path, name: str, **record) -> Path:
    """world64's regression age direction with a sidecar that says something else."""
    direction, _ = load_boundary(REGRESSION_AGE)
    path = folder / name
    save_boundary(path, direction, {"attribute": "age", "method": "regression", **record})
    return path


@pytest.fixture(scope="module")
def foreign(tmp_path_factory) -> dict[str, Path]:
    """A direction learned in z, and one learned on world64-v1."""
    from ganedit.models.sources import generator_identity

    folder = tmp_path_factory.mktemp("foreign")
    here, v1 = generator_identity("world64"), generator_identity("world64-v1")
    z = _relabelled(folder, "z_age.npy", space="z", generator="world64",
                    generator_sha256=here["sha256"])  # fmt: skip
    other = _relabelled(folder, "v1_age.npy", space="w", generator="world64-v1",
                        generator_sha256=v1["sha256"])  # fmt: skip
    return {"z": z, "v1": other}


@pytest.fixture(scope="module")
def service(foreign) -> EditingService:
    paths = (REGRESSION_AGE, INTERFACEGAN_AGE, foreign["v1"], foreign["z"])
    return EditingService(ServiceConfig(boundaries=tuple(str(p) for p in paths), max_faces=4))


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def test_every_direction_of_the_report_is_labelled_unambiguously():
    """The report's 24 directions: methods that share a sidecar `method` (interfacegan and
    its conditional variant, mab and its exact quota) read apart; the label carries the
    space, the title the conditions and the file."""
    usable, _ = EditingService(ServiceConfig(boundaries=(str(BOUNDARIES),))).directions("world64")
    labels = {d.id: d.describe()["label"] for d in usable}
    assert len(usable) == 24 and len(set(labels.values())) == 24, labels
    assert labels["interfacegan_age"] == "age · interfacegan · w"
    assert labels["interfacegan+conditional_age"] == "age · interfacegan+conditional · w"
    assert labels["mab_smile"] == "smile · mab · w"
    assert labels["mab-exact_smile"] == "smile · mab-exact · w"
    conditional = next(d for d in usable if d.id == "interfacegan+conditional_age").describe()
    assert conditional["method"] == "interfacegan"  # the sidecar's own field, unchanged
    assert "conditioned on interfacegan_smile, interfacegan_gender" in conditional["title"]
    assert conditional["path"] in conditional["title"]


def test_directions_that_would_read_alike_get_their_id_in_the_label(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for suffix in (".npy", ".json"):
            shutil.copy(REGRESSION_AGE.with_suffix(suffix), tmp_path / folder / f"age{suffix}")
    paths = (str(tmp_path / "a"), str(tmp_path / "b"))
    usable, _ = EditingService(ServiceConfig(boundaries=paths)).directions("world64")
    assert [d.label for d in usable] == [
        "age · regression · w · age",
        "age · regression · w · age-2",
    ]


def test_models_are_loaded_once_and_reused(service):
    before = service.loads
    first = service.source("world64")
    face = service.face_from_seed("world64", YOUNG_SEED)
    for strength in (0.0, 0.5, 1.0):
        service.render(face.id, [EditState.of({"regression_age": strength})])
    assert service.source("world64") is first
    assert service.loads - before <= 1
    assert service.directions("world64") is service.directions("world64")  # checked once
    evaluator = service.evaluator
    service.render(face.id, [EditState()])
    assert service.evaluator is evaluator


def test_directions_of_another_generator_or_space_are_refused_with_the_reason(service, foreign):
    usable, refused = service.directions("world64")
    assert [d.id for d in usable] == ["regression_age", "interfacegan_age"]
    reasons = {Path(r.path).name: r.reason for r in refused}
    assert "learned on 'world64-v1'" in reasons["v1_age.npy"]
    assert "learned in 'z', used in 'ws'" in reasons["z_age.npy"]
    assert all("--force" not in r.reason for r in refused)
    with pytest.raises(ProvenanceError, match="world64-v1"):
        service.check_boundary("world64", foreign["v1"])
    with pytest.raises(UserInputError, match="expected a direction loaded"):
        service.render(service.face_from_seed("world64", 0).id, [EditState.of({"z_age": 1.0})])


def test_a_direction_moves_its_attribute_and_states_render_in_one_batch(service):
    face = service.face_from_seed("world64", YOUNG_SEED)
    states = [EditState.of({"regression_age": s}) for s in (0.0, 0.6)]
    start, older = service.render(face.id, states)
    assert older.readout["age"] > start.readout["age"] + 0.3
    assert start.readout["identity_cosine"] == pytest.approx(1.0, abs=1e-4)
    assert older.readout["identity_cosine"] < start.readout["identity_cosine"]
    assert start.image.shape == (64, 64, 3) and start.image.dtype == np.uint8
    again = service.render(face.id, [states[1]])[0]
    assert _max_diff(again.image, older.image) <= 1  # batched == alone, up to rounding
    # A layer range that excludes every layer the direction could move leaves the face be.
    none = EditState.of({"regression_age": 0.6}, layers=(9, 10))
    assert service.render(face.id, [none])[0].readout["age"] < older.readout["age"]


def test_state_values_are_checked():
    with pytest.raises(UserInputError):
        EditState.of({"a": float("nan")})
    with pytest.raises(UserInputError):
        EditState.of(modes={"smile": 1.5})
    with pytest.raises(UserInputError):
        EditState.of(units="logits")


def test_faces_beyond_the_limit_are_dropped_oldest_first(service):
    faces = [service.face_from_seed("world64", s) for s in range(5)]
    with pytest.raises(UserInputError, match="dropped"):
        service.face(faces[0].id)
    assert service.face(faces[-1].id) is faces[-1]


def test_exported_code_renders_the_same_face_and_edit_reads_it(service, tmp_path, capsys):
    face = service.face_from_seed("world64", YOUNG_SEED)
    state = EditState.of({"regression_age": 0.4, "interfacegan_age": -0.2}, layers=(0, 8))
    path = service.export_latent(face.id, state, tmp_path / "code.npy")
    image = service.export_image(face.id, state, tmp_path / "face.png")
    codes, origin = load_latents(str(path), "ws")
    assert codes.shape == (1, 10, 128) and origin["space"] == "ws"
    assert origin["generator_sha256"] == service.source("world64").identity["sha256"]
    rendered = service.source("world64").synthesize(torch.from_numpy(codes), "ws")
    from ganedit.utils.images import to_uint8

    assert _max_diff(to_uint8(rendered)[0], np.asarray(Image.open(image))) <= 1
    out = tmp_path / "edit"
    ok(capsys, ["edit", "--latents", path, "--space", "ws", "-g", "world64", "-b", REGRESSION_AGE,
                "-n", 1, "--steps", 2, "-o", out, "--no-progress"])  # fmt: skip
    assert (out / "strip.png").is_file()


def test_sweeps_export_as_strip_or_gif(service, tmp_path):
    face = service.face_from_seed("world64", 1)
    state = EditState()
    gif = service.export_sweep(face.id, state, "regression_age", [-1, 0, 1], tmp_path / "s.gif")
    assert Image.open(gif).n_frames == 4  # forth and back
    strip = service.export_sweep(face.id, state, "regression_age", [-1, 1], tmp_path / "s.png")
    assert Image.open(strip).size[0] > 2 * 64
    with pytest.raises(UserInputError, match="ending in"):
        service.export_sweep(face.id, state, "regression_age", [0, 1], tmp_path / "s.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.gif", "s.png"]


def test_mode_sliders_of_a_self_conditioned_generator_round_trip(tmp_path, capsys):
    service = EditingService(ServiceConfig(boundaries=(str(REGRESSION_AGE),)))
    usable, refused = service.directions("world64-sc")
    assert not usable and "learned on 'world64'" in refused[0].reason  # not this generator's
    face = service.face_from_seed("world64-sc", 2)
    # a drawn face starts at its own modes: those `ganedit sample --seed 2` gives its first
    from ganedit.models.sources import sample_coordinates

    how, own = sample_coordinates(service.source("world64-sc"), "world64-sc", None, 1, 2)
    assert how == "data" and torch.equal(face.start_t, own)
    turned = EditState.of(modes={"yaw": 1.0})
    start, moved = service.render(face.id, [EditState(), turned])
    assert moved.readout["yaw"] > start.readout["yaw"] + 10  # t = 1 turns toward +yaw
    with pytest.raises(UserInputError, match="mode attributes"):
        service.render(face.id, [EditState.of(modes={"beard": 1.0})])
    path = service.export_latent(face.id, turned, tmp_path / "turned.npy")
    record = json.loads(path.with_name(path.name + ".json").read_text())
    assert record["modes"]["t"][0][record["modes"]["attributes"].index("yaw")] == 1.0
    plain = service.face_from_seed("world64", 2)
    with pytest.raises(UserInputError, match="self-conditioned"):
        service.render(plain.id, [turned])
    # `edit` starts from the exported modes: its strength-0 column is the UI's image.
    out = tmp_path / "edit"
    ok(capsys, ["edit", "--latents", path, "--space", "ws", "-g", "world64-sc",
                "--mode", "smile=0.5", "-n", 1, "--steps", 2, "-o", out, "--no-progress"])  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["modes"]["start"][0] == record["modes"]["t"][0]


def test_boundary_folders_and_missing_paths(tmp_path):
    folder = tmp_path / "dirs"
    folder.mkdir()
    for p in (REGRESSION_AGE, INTERFACEGAN_AGE):
        shutil.copy(p, folder / p.name)
        shutil.copy(p.with_suffix(".json"), folder / p.with_suffix(".json").name)
    service = EditingService(ServiceConfig(boundaries=(str(folder), str(REGRESSION_AGE))))
    assert len(service.boundary_files) == 3
    ids = [d.id for d in service.directions("world64")[0]]
    assert ids == ["interfacegan_age", "regression_age", "regression_age-2"]
    with pytest.raises(UserInputError, match="boundary .npy file or a folder"):
        EditingService(ServiceConfig(boundaries=(str(tmp_path / "nope"),)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="in the folder"):
        EditingService(ServiceConfig(boundaries=(str(tmp_path / "empty"),)))


def test_the_core_and_the_ui_module_import_no_web_framework():
    import subprocess
    import sys

    code = (
        "import sys, ganedit.cli, ganedit.editing.service, ganedit.ui.server; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_faces_from_a_bank_row_and_a_bank_of_another_generator_is_refused(
    service, tmp_path, capsys
):
    from ganedit.latents import LatentBank

    for name in ("world64", "world64-v1"):
        ok(capsys, ["generate", "-g", name, "-n", 3, "--seed", 7, "-p", "none",
                    "-o", tmp_path / f"{name}.zarr", "--no-progress"])  # fmt: skip
    bank = tmp_path / "world64.zarr"
    face = service.face_from_bank("world64", bank, 2)
    w = LatentBank.open(bank).latents("w", 2, 3)
    np.testing.assert_allclose(face.latents[0, 5].numpy(), w[0], rtol=0, atol=1e-6)
    assert face.origin == {"bank": str(bank), "row": 2}
    with pytest.raises(UserInputError, match="bank row"):
        service.face_from_bank("world64", bank, 3)
    with pytest.raises(ProvenanceError, match="world64-v1"):
        service.face_from_bank("world64", tmp_path / "world64-v1.zarr", 0)


def test_a_generator_given_by_path_takes_the_directions_of_its_weights(tmp_path):
    from ganedit.models.registry import weights_dir

    folder = shutil.copytree(weights_dir("world64"), tmp_path / "my_world64")
    service = EditingService(ServiceConfig(boundaries=(str(REGRESSION_AGE),)))
    usable, refused = service.directions(str(folder))
    assert [d.id for d in usable] == ["regression_age"] and not refused  # same sha256


_USER_NETWORKS = """
import torch

class Brightness:
    attribute_kinds = {"age": "probability", "brightness": "value"}
    input_size = 64

    def predict(self, images, batch_size=256):
        mean = images.mean(dim=(1, 2, 3)).double()
        return {"age": torch.sigmoid(8 * mean).numpy(), "brightness": (100 * mean).numpy()}

def make():
    return Brightness()
"""


def test_a_foreign_evaluator_and_no_identity_embedder(tmp_path, monkeypatch):
    """The read-out follows the evaluator's declared attributes and kinds; without an
    identity embedder there is no identity cosine; calibration uses the evaluator's logit."""
    (tmp_path / "ui_user_networks.py").write_text(_USER_NETWORKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = ServiceConfig(
        boundaries=(str(REGRESSION_AGE),), evaluator="py:ui_user_networks:make", identity=None
    )
    service = EditingService(config)
    assert service.readout_kinds == {"age": "probability", "brightness": "value"}
    face = service.face_from_seed("world64", YOUNG_SEED)
    plain, moved = service.render(face.id, [EditState(), EditState.of({"regression_age": 2.0})])
    assert list(plain.readout) == ["age", "brightness"]
    assert plain.readout["brightness"] != moved.readout["brightness"]
    calibration = service.calibration("world64", "regression_age")
    assert calibration is not None and np.isfinite(calibration.slope)


def test_calibrated_sliders_are_bounded_as_edit_bounds_them(service):
    """One bounding policy (`editing.core`): a calibrated slider never steps further than
    DEFAULT_BOUND x the span, as `ganedit edit --calibrated` does; within it, 1 / slope; a
    sweep scales as one edit (its largest value at the bound, the others in proportion)."""
    from ganedit.editing import core
    from ganedit.editing.edit import DEFAULT_BOUND

    face = service.face_from_seed("world64", YOUNG_SEED)
    cal = service.calibration("world64", "regression_age")
    direction = torch.from_numpy(service.direction("world64", "regression_age").vector)

    def step(strength, largest=None):  # the latent step the editor takes along the direction
        state = EditState.of({"regression_age": strength}, units="calibrated")
        moved = service.edited_latents(face, state, largest) - face.latents  # [1, L, D]
        return float((moved[0] @ direction).mean() / direction.dot(direction))

    assert step(1.0) == pytest.approx(1 / cal.slope, rel=1e-4)  # inside the bound
    far = step(1000.0)
    assert abs(far) == pytest.approx(DEFAULT_BOUND * cal.width, rel=1e-4)  # bounded
    assert far == pytest.approx(1000.0 * core.scale(cal, 1000.0).latent_per_unit, rel=1e-4)
    assert step(-1000.0) == pytest.approx(-far, rel=1e-4)
    assert step(500.0, {"regression_age": 1000.0}) == pytest.approx(far / 2, rel=1e-4)
    assert step(500.0) == pytest.approx(far, rel=1e-4)  # alone, 500 is bounded to the same
