"""The real-face networks on dlib (ganedit.models.face_measures): kinds, shapes, finite
outputs, planted answers (a head pose projected from the 3-D face model, a mirrored and a
rotated photograph, smiling and neutral renders of the same faces), the fallback box, the
registry's names and the missing extra's one line."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ganedit.errors import UserInputError
from ganedit.models.kinds import PROBABILITY, VALUE

pytest.importorskip("dlib", reason="needs ganedit[faces]")
pytest.importorskip("face_recognition_models", reason="needs ganedit[faces]")
pytest.importorskip("cv2", reason="needs ganedit[faces]")
skimage_data = pytest.importorskip("skimage.data", reason="needs ganedit[faces-test]")

from ganedit.models import face_measures as fm  # noqa: E402
from ganedit.models.face_landmarks import find_faces  # noqa: E402
from ganedit.utils.images import to_uint8  # noqa: E402
from ganedit.world.factors import sample_factors  # noqa: E402
from ganedit.world.render import render  # noqa: E402


@pytest.fixture(scope="module")
def pose():
    return fm.HeadPose()


@pytest.fixture(scope="module")
def mouth():
    return fm.MouthProxy()


@pytest.fixture(scope="module")
def identity():
    return fm.DlibIdentity()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """The astronaut's face framed as an aligned crop would be: 256 px, its HOG box where
    the fallback box sits (so the frame is what the networks expect)."""
    from PIL import Image

    photo = skimage_data.astronaut()
    x0, y0, x1, y1 = find_faces(photo)[0].box
    fx0, fy0, fx1, _ = fm.FALLBACK_BOX
    side = (x1 - x0) / (fx1 - fx0)
    left, top = x0 - fx0 * side, y0 - fy0 * side
    crop = Image.fromarray(photo).crop((left, top, left + side, top + side))
    return np.array(crop.resize((256, 256), Image.Resampling.BICUBIC))


def _rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    from PIL import Image  # positive: clockwise on screen

    return np.array(Image.fromarray(image).rotate(-degrees, Image.Resampling.BICUBIC))


def _renders(celeba, n: int = 8, **changes) -> np.ndarray:
    factors = sample_factors(celeba, 3, 0, n)
    return to_uint8(render(factors.replace(**changes) if changes else factors, 128))


# ------------------------------------------------------------------------------------------
# What each network declares


def test_each_network_declares_its_kinds_and_input_size(pose, mouth, identity):
    from ganedit.models.foreign_predictors import is_attribute_predictor

    assert pose.attribute_kinds == {"yaw": VALUE, "pitch": VALUE, "roll": VALUE}
    assert mouth.attribute_kinds == {
        "smile_proxy": PROBABILITY,
        "mouth_width": VALUE,
        "mouth_opening": VALUE,
    }
    assert pose.input_size == mouth.input_size == identity.input_size == fm.INPUT_SIZE
    assert is_attribute_predictor(pose) and is_attribute_predictor(mouth)
    assert not is_attribute_predictor(identity) and identity.dim == 128


def test_generator_images_come_out_as_finite_float32_columns(pose, mouth, celeba):
    import torch

    images = render(sample_factors(celeba, 3, 0, 3), 64)  # [-1, 1] floats, as generated
    assert images.dtype == torch.float32 and images.min() >= -1
    for net in (pose, mouth):
        out = net.predict(images, batch_size=2)
        assert list(out) == list(net.attribute_kinds)
        for column in out.values():
            assert column.dtype == np.float32 and column.shape == (3,)
            assert np.isfinite(column).all()
    assert ((out["smile_proxy"] >= 0) & (out["smile_proxy"] <= 1)).all()


# ------------------------------------------------------------------------------------------
# Head pose


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The face's rotation in camera axes (x right, y down, z away), written out here apart
    from the module's: turned towards +x by `yaw`, its chin lifted by `pitch`, then tilted
    about its nose axis by `roll` (clockwise on screen when frontal), in degrees."""
    a, b, c = np.radians([yaw, pitch, roll])
    turn = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
    lift = np.array([[1, 0, 0], [0, np.cos(b), np.sin(b)], [0, -np.sin(b), np.cos(b)]])
    spin = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return turn @ lift @ spin


@pytest.mark.parametrize("angles", [(25.0, 0.0, 0.0), (-30.0, 10.0, 0.0), (10.0, -15.0, 8.0)])
def test_a_pose_projected_from_the_face_model_is_read_back(angles):
    size, distance = 256.0, 600.0
    model = np.array(list(fm.FACE_MODEL.values()))
    camera = model @ _rotation(*angles).T + [0.0, 0.0, distance]
    landmarks = np.zeros((68, 2))
    landmarks[list(fm.FACE_MODEL)] = size * camera[:, :2] / camera[:, 2:] + size / 2
    if angles[0] > 0:  # the planted turn towards +x moves the nose tip right of the chin
        assert landmarks[30, 0] > landmarks[8, 0]
    np.testing.assert_allclose(fm.head_pose(landmarks, 256, 256), angles, atol=0.05)


def test_a_mirrored_photograph_flips_yaw_and_roll(pose, astronaut):
    tilted = _rotated(astronaut, 15)  # a clear roll, so its sign is not noise
    out = pose.predict(np.stack([tilted, tilted[:, ::-1]]))
    assert pose.last_detected.all()
    assert 10 < out["roll"][0] < 25 and -25 < out["roll"][1] < -10
    np.testing.assert_allclose(out["roll"][1], -out["roll"][0], atol=2.0)
    np.testing.assert_allclose(out["yaw"][1], -out["yaw"][0], atol=2.0)
    np.testing.assert_allclose(out["pitch"][1], out["pitch"][0], atol=3.0)


def test_an_in_plane_rotation_shifts_roll_by_its_angle(pose, astronaut):
    out = pose.predict(np.stack([astronaut, _rotated(astronaut, 10), _rotated(astronaut, -10)]))
    np.testing.assert_allclose(out["roll"][1:] - out["roll"][0], [10, -10], atol=3.0)


def test_pose_follows_the_face_worlds_yaw_sign(pose, celeba):
    # The same faces turned either way; compared where dlib found both (the fallback box's
    # landmarks hardly follow a cartoon's turn: docs/models.md).
    right = pose.predict(_renders(celeba, yaw=35.0))["yaw"]
    found = pose.last_detected
    left = pose.predict(_renders(celeba, yaw=-35.0))["yaw"]
    found = found & pose.last_detected
    assert found.sum() >= 3
    assert (right - left)[found].mean() > 15


# ------------------------------------------------------------------------------------------
# Mouth proxy


def test_smiling_renders_read_higher_than_neutral_ones(mouth, celeba):
    smiling = mouth.predict(_renders(celeba, smile=0.9, yaw=0.0))
    neutral = mouth.predict(_renders(celeba, smile=0.0, yaw=0.0))
    assert smiling["smile_proxy"].mean() > neutral["smile_proxy"].mean() + 0.3
    assert (smiling["mouth_opening"] > neutral["mouth_opening"]).mean() >= 0.75


def test_the_proxy_is_the_stated_logistic_of_the_two_ratios(mouth, astronaut):
    out = mouth.predict(astronaut)
    z = (out["mouth_width"] + out["mouth_opening"] - fm.MOUTH_CENTRE) / fm.MOUTH_SCALE
    np.testing.assert_allclose(out["smile_proxy"], 1 / (1 + np.exp(-z)), rtol=1e-5)


# ------------------------------------------------------------------------------------------
# Identity


def test_identity_keeps_a_mirrored_photograph_and_parts_from_a_render(identity, astronaut, celeba):
    world = _renders(celeba, n=2)
    world_256 = np.stack([np.array(_upscaled(im)) for im in world])
    vectors = identity.embed(np.stack([astronaut, astronaut[:, ::-1]]))
    others = identity.embed(world_256)
    assert vectors.shape == (2, 128) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    mirrored = float(vectors[1] @ vectors[0])
    assert mirrored > 0.97
    assert (others @ vectors[0]).max() < mirrored - 0.05


def _upscaled(image: np.ndarray):
    from PIL import Image

    return Image.fromarray(image).resize((256, 256), Image.Resampling.BICUBIC)


# ------------------------------------------------------------------------------------------
# No face found


def test_a_blank_image_falls_back_to_the_fixed_box_and_is_counted(astronaut):
    net = fm.HeadPose()
    blank = np.full((64, 64, 3), 128, dtype=np.uint8)
    out = net.predict(np.stack([blank, blank]))
    assert all(np.isfinite(column).all() for column in out.values())
    assert net.last_detected.tolist() == [False, False]
    assert (net.images_read, net.fallbacks, net.fallback_share) == (2, 2, 1.0)
    net.predict(astronaut)
    assert net.last_detected.tolist() == [True]
    assert (net.images_read, net.fallbacks) == (3, 2)


def test_a_blank_image_still_gets_a_finite_unit_embedding(identity):
    vector = identity.embed(np.zeros((1, 64, 64, 3), np.uint8))
    assert np.isfinite(vector).all()
    np.testing.assert_allclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    assert identity.last_detected.tolist() == [False]


def test_the_fallback_box_is_in_pixels_of_the_frame():
    assert fm.fallback_box(200, 100) == pytest.approx((54.0, 31.0, 142.0, 75.0))


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8"])
def test_a_bad_batch_size_is_one_line(pose, bad):
    with pytest.raises(UserInputError, match="batch size"):
        pose.predict(np.zeros((1, 64, 64, 3), np.uint8), batch_size=bad)


# ------------------------------------------------------------------------------------------
# Registry and the missing extra


def test_the_registry_serves_each_name_where_it_belongs():
    from ganedit.choices import FACE_NETWORKS
    from ganedit.cli_paths import _registered_names
    from ganedit.models import registry

    assert isinstance(registry.load_predictor("dlib-pose"), fm.HeadPose)
    assert isinstance(registry.load_attribute_predictor("dlib-mouth", foreign=True), fm.MouthProxy)
    assert isinstance(registry.load_identity_embedder("dlib-identity"), fm.DlibIdentity)
    assert set(FACE_NETWORKS) <= _registered_names()
    with pytest.raises(UserInputError, match="expected an identity embedder"):
        registry.load_identity_embedder("dlib-pose")
    with pytest.raises(UserInputError, match="expected an attribute predictor"):
        registry.load_attribute_predictor("dlib-identity", foreign=True)
    with pytest.raises(UserInputError, match="expected an attribute predictor"):
        registry.load_attribute_predictor("dlib-pose")  # self-labelling wants its own kind


@pytest.mark.parametrize("name", ["dlib-pose", "dlib-mouth", "dlib-identity"])
def test_without_the_extra_each_name_is_one_line_naming_it(monkeypatch, name):
    from ganedit.models import registry

    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib now raises ImportError
    loader = registry.load_identity_embedder if name == "dlib-identity" else registry.load_predictor
    with pytest.raises(UserInputError) as err:
        loader(name)
    message = str(err.value)
    assert "pip install 'ganedit[faces]'" in message and "\n" not in message


def test_without_the_extra_the_cli_answers_one_line(monkeypatch, capsys, tmp_path):
    from cli_run import user_error

    monkeypatch.setitem(sys.modules, "dlib", None)
    line = user_error(capsys, ["generate", "-n", "4", "-p", "dlib-pose", "-o", tmp_path / "b"])
    assert "ganedit[faces]" in line


@pytest.mark.parametrize(
    ("kwargs", "says"), [({"input_size": 32}, "input size"), ({"upsample": 5}, "upsample")]
)
def test_a_bad_setting_is_one_line(kwargs, says):
    with pytest.raises(UserInputError, match=says):
        fm.HeadPose(**kwargs)
