"""FFHQ alignment (ganedit.inversion.align): the crop square on planted landmarks, the warp on
planted pictures, the face world's renders (whose eyes and mouth the world knows), the
astronaut photograph and its rotated and shifted copies, and `ganedit align` / `--align`."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

from cli_run import ok, user_error
from ganedit.errors import UserInputError
from ganedit.inversion.align import (
    align_face,
    ffhq_quad,
    key_points,
    quad_from_points,
    quad_points,
    warp_quad,
)
from ganedit.world.config import load_world_config
from ganedit.world.factors import sample_factors
from ganedit.world.render import feature_points, render


def planted(points: np.ndarray) -> np.ndarray:
    """68 landmarks [68, 2] whose eyes (all six points) and mouth corners are `points`
    [4, 2] (left eye, right eye, mouth left, mouth right); the rest at their centroid."""
    lm = np.tile(points.mean(0), (68, 1))
    lm[36:42], lm[42:48], lm[48], lm[54] = points[0], points[1], points[2], points[3]
    return lm


def rotation(degrees: float) -> np.ndarray:
    """The matrix of PIL's `rotate(degrees)` in pixel coordinates (y down)."""
    t = np.deg2rad(degrees)
    return np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])


def rotated(image: np.ndarray, points: np.ndarray, degrees: float, shift=(0.0, 0.0)):
    """`image` turned by `degrees` about its centre and moved by `shift` (PIL), and where
    `points` [K, 2] (pixel indices) went."""
    h, w = image.shape[:2]
    centre = np.array([w / 2, h / 2])
    out = Image.fromarray(image).rotate(
        degrees, Image.Resampling.BICUBIC, center=tuple(centre), translate=shift
    )
    moved = (points + 0.5 - centre) @ rotation(degrees).T + centre + np.asarray(shift) - 0.5
    return np.asarray(out), moved


# ------------------------------------------------------------------------------------------
# The square (numpy only)


def test_the_square_of_planted_landmarks_is_upstreams():
    # Eyes 20 px apart, mouth 30 px below: 1.8 x 30 = 54 beats 2 x 20 = 40 as the half side;
    # the centre sits a tenth of the way from the eyes to the mouth.
    points = np.array([[40.0, 50.0], [60.0, 50.0], [42.0, 80.0], [58.0, 80.0]])
    quad = ffhq_quad(planted(points))
    np.testing.assert_allclose(quad, [[-4, -1], [-4, 107], [104, 107], [104, -1]], atol=1e-9)
    # Eyes 40 px apart, mouth 20 px below: 2 x 40 = 80 beats 36.
    points = np.array([[30.0, 50.0], [70.0, 50.0], [45.0, 70.0], [55.0, 70.0]])
    quad = quad_from_points(points)
    np.testing.assert_allclose(quad, [[-30, -28], [-30, 132], [130, 132], [130, -28]], atol=1e-9)


def test_eye_centres_are_the_mean_of_six_points_and_the_mouth_corners_48_and_54():
    rng = np.random.default_rng(0)
    lm = rng.uniform(0, 100, (68, 2))
    points = key_points(lm)
    np.testing.assert_allclose(points[0], lm[36:42].mean(0))
    np.testing.assert_allclose(points[1], lm[42:48].mean(0))
    np.testing.assert_allclose(points[2:], lm[[48, 54]])


@pytest.mark.parametrize("degrees, scale, shift", [(30.0, 1.5, (7.0, -3.0)), (-75.0, 0.5, (0, 0))])
def test_the_square_turns_scales_and_moves_with_the_face(degrees, scale, shift):
    rng = np.random.default_rng(1)
    points = np.array([[40.0, 50.0], [60.0, 51.0], [43.0, 79.0], [57.0, 80.0]])
    lm = planted(points) + rng.normal(0, 0.5, (68, 2))
    move = rotation(degrees) * scale
    lm2 = lm @ move.T + shift
    np.testing.assert_allclose(ffhq_quad(lm2), ffhq_quad(lm) @ move.T + shift, atol=1e-9)


def test_an_upright_face_lands_level_and_centred():
    points = np.array([[40.0, 50.0], [60.0, 50.0], [42.0, 80.0], [58.0, 80.0]])
    quad = quad_from_points(points)
    out = quad_points(points, quad, 108)  # the square is 108 px: one output px per photo px
    np.testing.assert_allclose(out, points - [-4, -1] - 0.5, atol=1e-9)
    assert out[0, 1] == pytest.approx(out[1, 1]) and out[:, 0].mean() == pytest.approx(53.5)


@pytest.mark.parametrize(
    "landmarks, needle",
    [
        (np.zeros((5, 2)), "68 finite landmarks"),
        (np.full((68, 2), np.nan), "68 finite landmarks"),
        (np.zeros((68, 2)), "at least a pixel apart"),
    ],
)
def test_landmarks_that_make_no_square_are_refused(landmarks, needle):
    with pytest.raises(UserInputError, match=needle):
        ffhq_quad(landmarks)


def test_images_and_sizes_that_cannot_be_warped_are_refused():
    quad = quad_from_points(np.array([[4.0, 5], [6, 5], [4, 8], [6, 8]]))
    with pytest.raises(UserInputError, match="RGB uint8 image"):
        warp_quad(np.zeros((10, 10, 3), np.float32), quad, 8)
    with pytest.raises(UserInputError, match="RGB uint8 image"):
        warp_quad(np.zeros((10, 10), np.uint8), quad, 8)
    with pytest.raises(UserInputError, match="output size"):
        warp_quad(np.zeros((10, 10, 3), np.uint8), quad, 0)


# ------------------------------------------------------------------------------------------
# The warp, on planted pictures


def dotted(h: int, w: int, dots: np.ndarray, sigma: float) -> np.ndarray:
    """A grey picture with bright Gaussian dots at `dots` [K, 2] (x, y pixel indices)."""
    ys, xs = np.mgrid[:h, :w]
    light = sum(np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)) for x, y in dots)
    return np.repeat((60 + 190 * np.clip(light, 0, 1))[..., None], 3, 2).round().astype(np.uint8)


def bright_centre(image: np.ndarray, near: np.ndarray, radius: int = 4) -> np.ndarray:
    """The brightness-weighted centre of the window of `image` around `near` (x, y)."""
    x0, y0 = (int(round(v)) - radius for v in near)
    window = image[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1, 0].astype(np.float64)
    weight = np.clip(window - np.median(image[..., 0]) - 20, 0, None)
    ys, xs = np.mgrid[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1]
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


@pytest.mark.parametrize("scale", [1, 6])  # 6: the photo is shrunk first (upstream's shrink)
def test_the_warp_puts_each_point_where_quad_points_says(scale):
    # A tilted square that leaves the picture on the left: crop, padding and transform.
    points = np.array([[30.0, 60.0], [70.0, 52.0], [38.0, 100.0], [72.0, 94.0]]) * scale
    dots = np.array([[50.0, 75.0], [35.0, 50.0], [80.0, 110.0]]) * scale
    picture = dotted(150 * scale, 130 * scale, dots, 2.5 * scale)
    quad = quad_from_points(points)
    assert quad[:, 0].min() < 0  # partly outside: padded
    out = warp_quad(picture, quad, 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    for want in quad_points(dots, quad, 64):
        np.testing.assert_allclose(bright_centre(out, want), want, atol=0.5)


def test_padding_reflects_and_fades_where_the_square_leaves_the_photo():
    rng = np.random.default_rng(2)
    photo = np.clip(rng.normal([200, 100, 50], 4, (120, 120, 3)), 0, 255).astype(np.uint8)
    inside = quad_from_points(np.array([[50.0, 50], [70, 50], [52, 72], [68, 72]]))

    def warp(quad, padding=True):  # a small canvas: the padding is what is tested here
        return warp_quad(photo, quad, 32, padding=padding, transform_size=256)

    a, b = warp(inside), warp(inside, padding=False)
    np.testing.assert_array_equal(a, b)  # well inside: nothing padded
    outside = inside + [-50, -45]
    padded, bare = warp(outside), warp(outside, padding=False)
    assert bare[:4, :4].max() == 0  # PIL fills what lies outside with black
    np.testing.assert_allclose(padded.reshape(-1, 3).mean(0), [200, 100, 50], atol=3)
    assert np.abs(padded.astype(float) - [200, 100, 50]).max() < 25


# ------------------------------------------------------------------------------------------
# The face world: the renderer knows where it draws the eyes and the mouth


@pytest.fixture(scope="module")
def renders():
    factors = sample_factors(load_world_config("celeba"), 5, 0, 4)
    factors = factors.replace(
        glasses=0.0, gender=0.0, smile=0.0, yaw=np.array([0.0, 15.0, -25.0, 40.0])
    )
    images = ((render(factors, 256).permute(0, 2, 3, 1).numpy() + 1) * 127.5).round()
    return images.astype(np.uint8), feature_points(factors, 256)


def test_feature_points_are_where_the_renderer_draws_pupils_and_mouth_corners(renders):
    images, points = renders
    assert points.shape == (4, 4, 2)
    for image, (eye_l, eye_r, mouth_l, mouth_r) in zip(images, points, strict=True):
        for eye in (eye_l, eye_r):  # the pupil: near black
            x, y = np.rint(eye).astype(int)
            assert image[y, x].max() < 30, (eye, image[y, x])
        middle = (mouth_l + mouth_r) / 2
        for corner in (mouth_l, mouth_r):
            inside = np.rint(middle + 0.8 * (corner - middle)).astype(int)
            outside = np.rint(middle + 1.4 * (corner - middle)).astype(int)
            lips, skin = image[inside[1], inside[0]].astype(int), image[outside[1], outside[0]]
            assert lips[0] - lips[1] > 80, lips  # the lips' red
            assert int(skin[0]) - int(skin[1]) < 60, skin


def test_world_renders_align_with_their_pupils_where_the_square_puts_them(renders):
    images, points = renders
    for image, pts in zip(images[[0, 3]], points[[0, 3]], strict=True):  # yaw 0 and 40
        quad = quad_from_points(pts)
        out = align_face(image, planted(pts), 128).astype(int).sum(2)
        for eye in quad_points(pts[:2], quad, 128):
            x, y = np.rint(eye).astype(int)
            window = out[y - 3 : y + 4, x - 3 : x + 4]
            darkest = np.array(np.unravel_index(window.argmin(), window.shape))[::-1] - 3
            assert np.abs(darkest).max() <= 1, (eye, darkest)


def test_a_turned_and_moved_render_aligns_to_the_same_crop(renders):
    images, points = renders
    for image, pts in zip(images[1:2], points[1:2], strict=True):  # yaw 15
        base = align_face(image, planted(pts), 64)
        moved_image, moved_pts = rotated(image, pts, 12.0, shift=(9.0, -6.0))
        again = align_face(moved_image, planted(moved_pts), 64)
        centre = (slice(12, 52), slice(12, 52))  # the face; corners differ by the fill
        diff = np.abs(base[centre].astype(float) - again[centre]).mean()
        assert diff < 4.0, diff


# ------------------------------------------------------------------------------------------
# A photograph: scikit-image's astronaut, found by dlib (the faces extra)


@pytest.fixture(scope="module")
def astronaut():
    pytest.importorskip("dlib", reason="needs the ganedit[faces] extra")
    data = pytest.importorskip("skimage.data", reason="needs ganedit[faces-test]")
    return data.astronaut()


@pytest.fixture(scope="module")
def aligned_copies(astronaut):
    from ganedit.inversion.align import align_photo

    h, w = astronaut.shape[:2]
    turned = np.asarray(
        Image.fromarray(astronaut).rotate(
            10, Image.Resampling.BICUBIC, center=(220, 130), translate=(-30, 25)
        )
    )
    moved = np.zeros_like(astronaut)
    moved[17:, :-23] = astronaut[:-17, 23:]  # shifted 23 px left, 17 px down
    return {name: align_photo(image, 128)[0] for name, image in
            {"original": astronaut, "turned": turned, "moved": moved}.items()}  # fmt: skip


def test_the_astronaut_aligns_with_level_eyes(aligned_copies):
    face = aligned_copies["original"]
    assert face.image.shape == (128, 128, 3) and face.index == 0
    eyes = quad_points(key_points(face.landmarks)[:2], face.quad, 128)
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1.0
    assert 25 < eyes[1, 0] - eyes[0, 0] < 40  # FFHQ's framing: eyes about a quarter apart


@pytest.mark.parametrize("copy, tolerance", [("moved", 4.0), ("turned", 6.0)])
def test_turned_and_moved_copies_of_the_astronaut_align_alike(aligned_copies, copy, tolerance):
    from ganedit.models.face_landmarks import find_faces

    base, other = aligned_copies["original"], aligned_copies[copy]
    diff = np.abs(base.image.astype(float) - other.image).mean()
    assert diff < tolerance, diff
    # dlib finds the same landmarks in both crops, and the crops put the eyes and mouth at
    # the same places.
    a, b = find_faces(base.image)[0].landmarks, find_faces(other.image)[0].landmarks
    assert np.abs(a - b).mean() < 1.0
    where = [quad_points(key_points(f.landmarks), f.quad, 128) for f in (base, other)]
    np.testing.assert_allclose(where[0], where[1], atol=1.0)


# ------------------------------------------------------------------------------------------
# `ganedit align`, `--align` and the missing extra


@pytest.fixture(scope="module")
def photos(astronaut, tmp_path_factory):
    """The astronaut at 256 px (a quick find) and a picture without a face."""
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(astronaut).resize((256, 256), Image.Resampling.LANCZOS).save(
        folder / "astronaut.png"
    )
    Image.new("RGB", (96, 80), (40, 90, 140)).save(folder / "wall.png")
    return folder


def test_align_writes_aligned_faces_and_refuses_what_it_cannot(photos, tmp_path, capsys):
    out = tmp_path / "aligned"
    report = tmp_path / "aligned.json"
    line = ok(capsys, ["align", photos / "astronaut.png", "-o", out, "--size", 48,
                       "--json", report, "--no-progress"])  # fmt: skip
    assert "1 faces aligned at 48 px" in line
    assert Image.open(out / "00000.png").size == (48, 48)
    summary = json.loads((out / "alignment.json").read_text())
    assert summary["procedure"].endswith("193deb624543e54d93b54a296fcfc9a68a3ed8ce")
    assert json.loads(report.read_text())["images"][0]["faces"][0]["face"] == 0
    assert "pass --overwrite" in user_error(
        capsys, ["align", photos / "astronaut.png", "-o", out, "--no-progress"]
    )
    ok(capsys, ["align", photos / "astronaut.png", "-o", out, "-g", "world64", "--face", "all",
                "--overwrite", "--no-progress"])  # fmt: skip
    summary = json.loads((out / "alignment.json").read_text())
    found = summary["images"][0]["faces"][0]["faces_found"]
    assert summary["size"] == 64 and summary["n"] == found
    assert Image.open(out / "00000_0.png").size == (64, 64)
    error = user_error(capsys, ["align", photos / "wall.png", "-o", tmp_path / "x"])
    assert "expected a face in" in error and "wall.png" in error
    assert not (tmp_path / "x").exists()
    error = user_error(capsys, ["align", photos / "astronaut.png", "-o", tmp_path / "y",
                                "--face", str(found)])  # fmt: skip
    assert f"received {found} faces found" in error
    assert "received both" in user_error(
        capsys, ["align", photos, "-o", tmp_path / "z", "--size", 8, "-g", "world64"]
    )


def test_align_option_feeds_inversion_the_aligned_face(photos, tmp_path, capsys):
    from ganedit.inversion.align import align_photo
    from ganedit.inversion.images import decode_file, to_target
    from ganedit.utils.images import from_uint8

    photo = decode_file((photos / "astronaut.png").read_bytes(), "astronaut.png")
    expected = from_uint8(align_photo(photo, 64)[0].image[None])[0]
    assert np.array_equal(to_target(photo, 64, align=True).numpy(), expected.numpy())
    out = tmp_path / "inv"
    ok(capsys, ["invert", "-i", photos / "astronaut.png", "--align", "-g", "world64",
                "--steps", 1, "-o", out, "--no-progress"])  # fmt: skip
    assert json.loads((out / "config.json").read_text())["align"] is True
    error = user_error(capsys, ["invert", "-i", photos / "wall.png", "--align", "-g", "world64",
                                "--steps", 1, "-o", tmp_path / "no", "--no-progress"])  # fmt: skip
    assert "expected a face in" in error


def test_without_the_faces_extra_alignment_names_what_to_install(monkeypatch, tmp_path, capsys):
    from ganedit.inversion.align import align_photo

    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` now fails
    with pytest.raises(UserInputError, match=r"pip install 'ganedit\[faces\]'"):
        align_photo(np.zeros((32, 32, 3), np.uint8), 16)
    picture = tmp_path / "p.png"
    Image.new("RGB", (32, 32)).save(picture)
    for args in (["align", picture, "-o", tmp_path / "a"],
                 ["invert", "-i", picture, "--align", "-o", tmp_path / "b"]):  # fmt: skip
        assert "pip install 'ganedit[faces]'" in user_error(capsys, args)
    # The geometry needs no dlib.
    quad = quad_from_points(np.array([[10.0, 10], [20, 10], [11, 25], [19, 25]]))
    assert warp_quad(np.full((40, 40, 3), 7, np.uint8), quad, 8).shape == (8, 8, 3)
