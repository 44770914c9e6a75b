"""Faces in photographs aligned as the FFHQ data set was made, before inversion.

The procedure is NVlabs/ffhq-dataset's `recreate_aligned_images` (download_ffhq.py, read at
commit 193deb624543e54d93b54a296fcfc9a68a3ed8ce), rewritten here as pure functions:

1. `ffhq_quad`: from the 68 iBUG landmarks, the eye centres (mean of each eye's six points),
   the mouth corners (points 48 and 54), an oriented square: its x axis is
   eye_to_eye - rot90(eye_to_mouth), normalised and scaled to max(2.0 |eye_to_eye|,
   1.8 |eye_to_mouth|) (the half side); y is x turned a quarter (down); its centre is
   eye_avg + 0.1 eye_to_mouth.
2. `warp_quad`: shrink the photo (Lanczos) by floor(side / size / 2) when that is over 1;
   crop to the square's bounds plus a border of max(rint(0.1 side), 3); where the square
   still leaves the photo by more than border - 4 px, pad every side by at least
   rint(0.3 side), reflecting, blur the padding (Gaussian, sigma 0.02 side, weighted by
   3 * distance-into-the-pad + 1) and fade it to the photo's median colour (weighted by the
   distance); resample the square (PIL's bilinear QUAD transform) to 4096 px, then Lanczos
   down to the output size.

Points are pixel indices (x right, y down; pixel i's centre at i), as dlib gives them; PIL's
continuous coordinates put that centre at i + 0.5, hence the half pixel the quad is moved by.
The geometry needs numpy, PIL and scipy only; dlib (`ganedit[faces]`) only finds landmarks
(`align_photo`). Pillow 10 names upstream's ANTIALIAS filter LANCZOS (the same filter).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ganedit.errors import UserInputError

log = logging.getLogger(__name__)

UPSTREAM = "NVlabs/ffhq-dataset download_ffhq.py @ 193deb624543e54d93b54a296fcfc9a68a3ed8ce"
TRANSFORM_SIZE = 4096  # upstream resamples the square at this size, then resizes down
FACE_CHOICES = ("largest", "all")  # or a face's index, largest first


@dataclass(frozen=True)
class AlignedFace:
    """One face of a photo, aligned: `image` [size, size, 3] uint8, which face (`index`,
    largest first, of `found`), its 68 landmarks [68, 2] and the square `quad` [4, 2]
    (top-left, bottom-left, bottom-right, top-right) in the photo's pixels."""

    image: np.ndarray
    index: int
    found: int
    landmarks: np.ndarray
    quad: np.ndarray

    def record(self) -> dict:
        """What a JSON summary keeps of it."""
        return {
            "face": self.index,
            "faces_found": self.found,
            "quad": np.round(self.quad, 3).tolist(),
            "landmarks": np.round(self.landmarks, 2).tolist(),
        }


# ------------------------------------------------------------------------------------------
# Geometry (numpy only)


def key_points(landmarks: np.ndarray) -> np.ndarray:
    """Eye centres and mouth corners [4, 2] (left eye, right eye, mouth left, mouth right,
    as the image shows them) of 68 iBUG landmarks [68, 2]."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise UserInputError(
            f"expected 68 finite landmarks [68, 2], received {_describe(landmarks)}"
        )
    return np.stack([points[36:42].mean(0), points[42:48].mean(0), points[48], points[54]])


def quad_from_points(points: np.ndarray) -> np.ndarray:
    """The FFHQ square [4, 2] from eye centres and mouth corners [4, 2] (`key_points`)."""
    eye_left, eye_right, mouth_left, mouth_right = np.asarray(points, dtype=np.float64)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) * 0.5 - eye_avg
    # The face's horizontal: eye to eye, and the eye-to-mouth line turned a quarter back.
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    length = np.hypot(*x)
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    if not (np.isfinite(length) and length > 0 and half >= 1.0):
        raise UserInputError(
            "expected eyes and a mouth at least a pixel apart, received eye-to-eye "
            f"{np.hypot(*eye_to_eye):.3g} px and eye-to-mouth {np.hypot(*eye_to_mouth):.3g} px"
        )
    x = x / length * half
    y = np.array([-x[1], x[0]])  # x turned a quarter, pointing down the face
    centre = eye_avg + eye_to_mouth * 0.1
    return np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ crop square [4, 2] (top-left, bottom-left, bottom-right, top-right) of a face
    with 68 iBUG landmarks [68, 2] (x, y pixels)."""
    return quad_from_points(key_points(landmarks))


def quad_points(points: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """Where photo points [K, 2] land in the `size` px image `warp_quad` makes of `quad`."""
    quad = np.asarray(quad, dtype=np.float64)
    origin, across, down = quad[0], quad[3] - quad[0], quad[1] - quad[0]
    basis = np.stack([across, down], 1)  # the square is a parallelogram: affine
    uv = np.linalg.solve(basis, (np.asarray(points, np.float64) - origin).T).T
    return uv * size - 0.5


def warp_quad(
    image: np.ndarray,
    quad: np.ndarray,
    size: int,
    padding: bool = True,
    transform_size: int = TRANSFORM_SIZE,
) -> np.ndarray:
    """The square `quad` [4, 2] of `image` [H, W, 3] uint8 as a `size` px image [size, size, 3]
    uint8, by upstream's shrink, crop, blurred padding, transform and resize."""
    if not (isinstance(size, int | np.integer) and 1 <= size <= 16384):
        raise UserInputError(f"expected an output size from 1 to 16384 px, received {size!r}")
    size = int(size)
    quad = np.asarray(quad, dtype=np.float64).copy()
    side = np.hypot(*(quad[3] - quad[0]))
    img = Image.fromarray(_rgb(image))
    img, quad, side = _shrink(img, quad, side, size)
    border = max(int(np.rint(side * 0.1)), 3)
    img, quad = _crop(img, quad, border)
    if padding:
        img, quad = _pad(img, quad, side, border)
    canvas = max(transform_size, size)
    img = img.transform(
        (canvas, canvas),
        Image.Transform.QUAD,
        (quad + 0.5).flatten().tolist(),
        Image.Resampling.BILINEAR,
    )
    if size < canvas:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img)


def _shrink(img: Image.Image, quad: np.ndarray, side: float, size: int):
    """A photo much larger than the output is first resized down by a whole factor."""
    shrink = int(np.floor(side / size * 0.5))
    if shrink <= 1:
        return img, quad, side
    resized = (int(np.rint(img.size[0] / shrink)), int(np.rint(img.size[1] / shrink)))
    return img.resize(resized, Image.Resampling.LANCZOS), quad / shrink, side / shrink


def _bounds(quad: np.ndarray) -> tuple[int, int, int, int]:
    return (
        int(np.floor(quad[:, 0].min())),
        int(np.floor(quad[:, 1].min())),
        int(np.ceil(quad[:, 0].max())),
        int(np.ceil(quad[:, 1].max())),
    )


def _crop(img: Image.Image, quad: np.ndarray, border: int):
    x0, y0, x1, y1 = _bounds(quad)
    w, h = img.size
    box = (max(x0 - border, 0), max(y0 - border, 0), min(x1 + border, w), min(y1 + border, h))
    if box[2] - box[0] < w or box[3] - box[1] < h:
        img = img.crop(box)
        quad = quad - np.array(box[:2], dtype=np.float64)
    return img, quad


def _pad(img: Image.Image, quad: np.ndarray, side: float, border: int):
    """Pad (reflected, blurred, faded to the median colour) where the square leaves the photo."""
    from scipy.ndimage import gaussian_filter

    x0, y0, x1, y1 = _bounds(quad)
    w, h = img.size
    pad = np.array([-x0 + border, -y0 + border, x1 - w + border, y1 - h + border]).clip(0)
    if pad.max() <= border - 4:
        return img, quad
    left, top, right, bottom = (int(p) for p in np.maximum(pad, int(np.rint(side * 0.3))))
    arr = np.pad(np.float32(img), ((top, bottom), (left, right), (0, 0)), "reflect")
    ph, pw, _ = arr.shape
    ys, xs = np.ogrid[:ph, :pw]
    # 0 inside the photo, rising to 1 at the padded edge (the nearer of the two axes' edges).
    across = 1.0 - np.minimum(np.float32(xs) / left, np.float32(pw - 1 - xs) / right)
    down = 1.0 - np.minimum(np.float32(ys) / top, np.float32(ph - 1 - ys) / bottom)
    mask = np.maximum(across, down)[..., None]
    blur = side * 0.02
    arr += (gaussian_filter(arr, [blur, blur, 0]) - arr) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(mask, 0.0, 1.0)
    padded = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB")
    return padded, quad + np.array([left, top], dtype=np.float64)


def _rgb(image: np.ndarray) -> np.ndarray:
    ok = (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and min(image.shape[:2]) >= 1
    )
    if not ok:
        raise UserInputError(f"expected an RGB uint8 image [H, W, 3], received {_describe(image)}")
    return np.ascontiguousarray(image)


def _describe(value) -> str:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", type(value).__name__)
    return f"{dtype} {list(shape)}" if shape is not None else str(dtype)


def align_face(
    image: np.ndarray, landmarks: np.ndarray, size: int, padding: bool = True
) -> np.ndarray:
    """The face with 68 landmarks [68, 2] in `image` [H, W, 3] uint8, FFHQ-aligned at
    `size` px: [size, size, 3] uint8."""
    return warp_quad(image, ffhq_quad(landmarks), size, padding=padding)


# ------------------------------------------------------------------------------------------
# Photographs (dlib finds the landmarks)


def parse_face(text: str | int) -> str | int:
    """A face choice: `largest`, `all` or an index (0: the largest face)."""
    if isinstance(text, int) or str(text).isdigit():
        return int(text)
    if text in FACE_CHOICES:
        return text
    raise UserInputError(
        f"expected a face choice ({', '.join(FACE_CHOICES)} or an index from 0), received {text!r}"
    )


def align_photo(
    image: np.ndarray,
    size: int,
    face: str | int = "largest",
    upsample: int = 1,
    detector: str = "hog",
    where: str = "the image",
) -> list[AlignedFace]:
    """The chosen faces of a photo [H, W, 3] uint8, FFHQ-aligned at `size` px: one face
    (`largest`, or an index into the faces found, largest first) or `all` of them.

    A photo without a face, or without the face asked for, is refused with one line naming
    `where` (a file name)."""
    from ganedit.models.face_landmarks import find_faces, require_dlib

    require_dlib()  # asked each time: the detectors, once loaded, are cached
    choice = parse_face(face)
    faces = find_faces(_rgb(image), upsample=upsample, detector=detector)
    if not faces:
        raise UserInputError(
            f"expected a face in {where} (dlib's {detector} detector, upsample {upsample}), "
            "received none found"
        )
    if choice == "all":
        picked = list(range(len(faces)))
    else:
        index = 0 if choice == "largest" else int(choice)
        if index >= len(faces):
            raise UserInputError(
                f"expected face {index} in {where}, received {len(faces)} faces found "
                f"(indices 0 to {len(faces) - 1}, largest first)"
            )
        picked = [index]
        if len(faces) > 1 and choice == "largest":
            log.info("%s: %d faces found, aligning the largest", where, len(faces))
    return [_aligned(image, faces[i].landmarks, i, len(faces), size) for i in picked]


def _aligned(image, landmarks, index: int, found: int, size: int) -> AlignedFace:
    quad = ffhq_quad(landmarks)
    return AlignedFace(warp_quad(image, quad, size), index, found, landmarks, quad)


def aligned_square(image: np.ndarray, size: int, where: str = "the image") -> np.ndarray:
    """The largest face of a photo, FFHQ-aligned at `size` px [size, size, 3] uint8: what
    inversion's `--align` feeds the generator."""
    return align_photo(image, size, "largest", where=where)[0].image
