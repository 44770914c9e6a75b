"""Banks of a self-conditioned generator: every row rendered at its own modes, stored with it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from cli_run import ok, user_error
from ganedit.errors import DamagedInputError, UserInputError
from ganedit.latents import GenerateConfig, LatentBank, generate_bank
from ganedit.models.modes import ModeLayout, save_mode_prior
from ganedit.models.sources import load_generator, sample_coordinates
from ganedit.utils.images import to_uint8
from tiny_generators import save_tiny_generators

LAYOUT = ModeLayout(["smile", "yaw"])
# The data's modes, as a model folder ships them: two clusters far from neutral.
PRIOR = np.array([[0.0, 0.1], [1.0, 0.9], [0.0, 0.8], [1.0, 0.2]] * 4)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("bankmodes")
    save_tiny_generators(root)
    shutil.copytree(root / "sc", root / "sc-prior")
    save_mode_prior(root / "sc-prior", LAYOUT, PRIOR, origin="test")
    return root


def _from_prior(t):
    """Whether each row [k] of t is one of PRIOR's rows (to the prior file's 4 decimals)."""
    return np.abs(t[:, None, :] - PRIOR[None]).max(-1).min(1) < 1e-4


def _bank(models, tmp_path, name="b.zarr", **kw):
    cfg = GenerateConfig(generator=str(models / "sc-prior"), predictor="none", **kw)
    return LatentBank.open(generate_bank(cfg, tmp_path / name))


def test_rows_are_drawn_from_the_shipped_modes_as_sample_draws_them(models, tmp_path):
    bank = _bank(models, tmp_path, n=10, seed=4, chunk_size=3, batch_size=2)
    source = load_generator(str(models / "sc-prior"))
    how, t = sample_coordinates(source, str(models / "sc-prior"), None, 10, 4)
    assert how == "data" and bank.meta["modes"] == {"drawn": "data", "set": {}}
    assert bank.mode_attributes == ("smile", "yaw") and bank.meta["format_version"] == 2
    np.testing.assert_array_equal(bank.modes(), t.numpy())
    assert _from_prior(bank.modes()).all()
    # row i depends only on (seed, i): another chunking gives the same rows
    other = _bank(models, tmp_path, "c.zarr", n=10, seed=4, chunk_size=7, batch_size=5)
    np.testing.assert_array_equal(other.modes(), bank.modes())
    np.testing.assert_array_equal(other.latents("z"), bank.latents("z"))
    np.testing.assert_array_equal(bank.modes(3, 5), bank.modes()[3:5])


def test_each_image_is_rendered_at_its_rows_modes_with_the_settings_on_top(models, tmp_path):
    bank = _bank(models, tmp_path, n=4, seed=1, modes=("smile=0.25",), save_images=True)
    t = bank.modes()
    assert (t[:, 0] == 0.25).all() and (np.abs(t[:, 1:] - PRIOR[:4, 1]).min(1) < 1e-4).all()
    assert len(np.unique(t[:, 1])) > 1  # the others stay each sample's own
    source = load_generator(str(models / "sc-prior"))
    w = torch.from_numpy(bank.latents("w"))
    own = to_uint8(source.synthesize(w, "w", modes=LAYOUT.generator_vector(torch.from_numpy(t))))
    neutral = to_uint8(source.synthesize(w, "w"))
    for i in range(4):
        saved = np.asarray(Image.open(bank.image_path(i)))
        assert np.abs(saved.astype(int) - own[i].astype(int)).max() <= 1
        assert np.abs(saved.astype(int) - neutral[i].astype(int)).max() > 1


@pytest.mark.parametrize("how", ["neutral", "uniform"])
def test_modes_can_be_drawn_otherwise(models, tmp_path, how):
    bank = _bank(models, tmp_path, n=6, seed=2, sample_modes=how)
    assert bank.meta["modes"]["drawn"] == how
    if how == "neutral":
        np.testing.assert_array_equal(bank.modes(), np.full((6, 2), 0.5, np.float32))
    else:
        t = bank.modes()
        assert len(np.unique(t)) == 12 and ((t >= 0) & (t <= 1)).all()


def test_a_model_without_a_prior_is_drawn_at_neutral_and_refuses_data(capsys, models, tmp_path):
    out = ok(capsys, ["generate", "-g", models / "sc", "-n", 3, "-p", "none",
                      "-o", tmp_path / "n.zarr", "--no-progress"])  # fmt: skip
    assert "modes neutral" in out
    np.testing.assert_array_equal(
        LatentBank.open(tmp_path / "n.zarr").modes(), np.full((3, 2), 0.5)
    )
    line = user_error(capsys, ["generate", "-g", models / "sc", "-n", 3, "-p", "none",
                               "--modes", "data", "-o", tmp_path / "d.zarr"])  # fmt: skip
    assert "mode-prior.json" in line and not (tmp_path / "d.zarr").exists()
    line = user_error(capsys, ["generate", "-g", models / "plain", "-n", 3, "-p", "none",
                               "--modes", "uniform", "-o", tmp_path / "p.zarr"])  # fmt: skip
    assert "self-conditioned" in line
    plain = _plain_bank(capsys, models, tmp_path)
    assert (
        plain.modes() is None and plain.mode_record() is None and plain.meta["format_version"] == 1
    )


def _plain_bank(capsys, models, tmp_path):
    ok(capsys, ["generate", "-g", models / "plain", "-n", 2, "-p", "none",
                "-o", tmp_path / "plain.zarr", "--no-progress"])  # fmt: skip
    return LatentBank.open(tmp_path / "plain.zarr")


def test_an_interrupted_bank_resumes_with_the_same_rows(models, tmp_path):
    from ganedit.latents.bank import open_store, partial_path

    whole = _bank(models, tmp_path, "whole.zarr", n=7, seed=3, chunk_size=3)
    cfg = GenerateConfig(str(models / "sc-prior"), predictor="none", n=7, seed=3, chunk_size=3)
    out = tmp_path / "cut.zarr"
    generate_bank(cfg, out)
    shutil.move(out, partial_path(out))  # as if the last chunk had never been written
    group = open_store(partial_path(out))
    group.attrs.update({"complete": False})
    group["done"][2] = 0
    generate_bank(cfg, out)
    np.testing.assert_array_equal(LatentBank.open(out).modes(), whole.modes())
    changed = GenerateConfig(str(models / "sc-prior"), "none", n=7, seed=3, chunk_size=3,
                             sample_modes="uniform")  # fmt: skip
    shutil.move(out, partial_path(out))
    with pytest.raises(UserInputError, match="sample_modes"):
        generate_bank(changed, out)


def test_damaged_modes_are_detected(models, tmp_path):
    bank = _bank(models, tmp_path, n=5, seed=0, chunk_size=2)
    (bank.path / "modes" / "c" / "1" / "0").unlink()
    with pytest.raises(DamagedInputError, match="modes"):
        LatentBank.open(bank.path)
    other = _bank(models, tmp_path, "o.zarr", n=5, seed=0)
    meta = json.loads((other.path / "zarr.json").read_text())
    meta["attributes"]["mode_attributes"] = ["smile", "smile"]
    (other.path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(DamagedInputError, match="mode_attributes"):
        LatentBank.open(other.path)


def test_codes_from_the_bank_start_edits_and_fits_at_their_own_modes(capsys, models, tmp_path):
    from ganedit.directions.fit import load_latents
    from ganedit.editing.core import start_coordinates

    cfg = GenerateConfig(str(models / "sc-prior"), predictor="labeler", n=40, seed=5)
    bank = LatentBank.open(generate_bank(cfg, tmp_path / "s.zarr"))
    source = load_generator(str(models / "sc-prior"))
    codes, origin = load_latents(str(bank.path), "w", stop=6)
    np.testing.assert_array_equal(start_coordinates(source, origin, 6).numpy(), bank.modes(0, 6))
    # edit by a mode from the bank's codes: each starts at its own row's modes
    out = tmp_path / "e"
    ok(capsys, ["edit", "-g", models / "sc-prior", "--latents", bank.path, "-n", 3, "--mode",
                "yaw=1", "--steps", 2, "-o", out, "--no-progress"])  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    np.testing.assert_allclose(config["modes"]["start"], bank.modes(0, 3), atol=1e-6)
    # a boundary fitted on the bank records how the modes were drawn, not every row
    boundary = tmp_path / "yaw.npy"
    ok(capsys, ["boundary", "--method", "regression", "--latents", bank.path, "-a", "yaw",
                "--space", "w", "-o", boundary])  # fmt: skip
    record = json.loads((tmp_path / "yaw.npy.json").read_text())
    assert record["modes"] == {"drawn": "data", "set": {}, "attributes": ["smile", "yaw"]}


def test_the_editor_starts_a_bank_face_at_its_rows_modes(models, tmp_path):
    from ganedit.editing.service import EditingService, ServiceConfig

    bank = _bank(models, tmp_path, n=4, seed=6)
    face = EditingService(ServiceConfig()).face_from_bank(str(models / "sc-prior"), bank.path, 2)
    np.testing.assert_array_equal(face.start_t.numpy(), bank.modes(2, 3))


def test_a_version_1_bank_with_one_setting_is_still_read(models, tmp_path):
    from ganedit.directions.fit import load_latents
    from ganedit.editing.core import start_coordinates
    from ganedit.latents.bank import create_store, finalize, partial_path, write_chunk

    source = load_generator(str(models / "sc"))
    out = tmp_path / "v1.zarr"
    meta = {"generator_identity": source.identity, "modes": {"smile": 0.0, "yaw": 0.5}}
    group = create_store(partial_path(out), n=2, chunk_size=2, dims={"z": [16]},
                         score_names=[], meta=meta)  # fmt: skip
    write_chunk(group, 0, {"z": np.zeros((2, 16), np.float32), "index": np.arange(2)})
    finalize(partial_path(out), out)
    bank = LatentBank.open(out)
    assert bank.meta["format_version"] == 1 and bank.modes() is None
    assert bank.mode_record() == {"smile": 0.0, "yaw": 0.5}
    _, origin = load_latents(str(out), "z")
    np.testing.assert_array_equal(start_coordinates(source, origin, 2).numpy(), [[0, 0.5]] * 2)


def test_export_and_import_keep_the_rows_modes(capsys, models, tmp_path):
    bank = _bank(models, tmp_path, n=5, seed=8)
    ok(capsys, ["bank", "export", bank.path, "-o", tmp_path / "ref"])
    assert json.loads((tmp_path / "ref" / "modes.json").read_text())["attributes"] == [
        "smile",
        "yaw",
    ]
    ok(capsys, ["bank", "import", tmp_path / "ref", "-o", tmp_path / "back.zarr",
                "-g", models / "sc-prior"])  # fmt: skip
    back = LatentBank.open(tmp_path / "back.zarr")
    np.testing.assert_array_equal(back.modes(), bank.modes())
    assert back.mode_attributes == ("smile", "yaw") and back.meta["modes"]["drawn"] == "data"
    # hostile: modes without their record, out of range, or the wrong shape
    (tmp_path / "ref" / "modes.json").rename(tmp_path / "modes.json")
    line = user_error(capsys, ["bank", "import", tmp_path / "ref", "-o", tmp_path / "x.zarr"])
    assert "modes.json" in line
    (tmp_path / "modes.json").rename(tmp_path / "ref" / "modes.json")
    for bad in (np.full((5, 2), 1.5, np.float32), np.zeros((4, 2), np.float32),
                np.full((5, 2), np.nan, np.float32)):  # fmt: skip
        np.save(tmp_path / "ref" / "modes.npy", bad)
        code_line = user_error(capsys, ["bank", "import", tmp_path / "ref",
                                        "-o", tmp_path / "x.zarr"])  # fmt: skip
        assert "modes" in code_line and not (tmp_path / "x.zarr").exists()
