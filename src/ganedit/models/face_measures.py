"""Measuring networks for real faces, built on dlib (`ganedit.models.face_landmarks`): none of
them was trained here, so they check ganedit's claims independently of its own networks.

- `HeadPose` (`dlib-pose`): yaw, pitch and roll in degrees (VALUE kinds) from the 68
  landmarks and a generic 3-D face through `cv2.solvePnP`. Positive yaw turns the face
  towards the image's right (+x), as the face world's yaw does; positive pitch lifts the
  chin; positive roll turns the face clockwise on screen.
- `MouthProxy` (`dlib-mouth`): the mouth's width and inner-lip opening over the distance
  between the eye centres (VALUE kinds), and `smile_proxy`, a logistic of their sum
  (PROBABILITY). It is a geometric proxy for a wide or open mouth, not a smile classifier
  for photographs.
- `DlibIdentity` (`dlib-identity`): dlib's 128-D face-recognition embedding, unit length,
  with the `embed(images, batch_size)` of ganedit's identity embedders.

All take images as ganedit's predictors do (float [N, 3, H, W] in [-1, 1], or uint8
[N, H, W, 3]) and scale smaller ones up so their longer side is `input_size` before dlib
sees them (a 64 px generator image is too small for the HOG detector, which wants faces of
~80 px); larger ones are read as they are.
Where the detector finds no face, the landmarks are read in a fixed box of the frame
(`FALLBACK_BOX`: generator images and aligned crops are framed faces), so every output stays
finite; each network counts those fallbacks and logs their share.

Measured accuracy, licences and limits: docs/models.md ("Real-face networks").
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ganedit.choices import FACE_NETWORKS
from ganedit.errors import UserInputError
from ganedit.models import face_landmarks as fl
from ganedit.models.kinds import PROBABILITY, VALUE
from ganedit.utils.images import as_image_batch, to_uint8

log = logging.getLogger(__name__)

POSE_NAME, MOUTH_NAME, IDENTITY_NAME = FACE_NETWORKS
INPUT_SIZE = 256  # the face world's faces are ~110 px there: HOG finds them at upsample 0
# Where dlib's HOG box falls in a framed face, as fractions (x0, y0, x1, y1) of the frame:
# the mean detected box on 100 face-world renders at 256 px was (0.27, 0.31, 0.71, 0.75).
FALLBACK_BOX = (0.27, 0.31, 0.71, 0.75)
MAX_INPUT_SIZE = 2048


@dataclass(frozen=True)
class FaceReading:
    """The faces read in a batch: landmarks [N, 68, 2] (pixels of the scaled frames), boxes
    [N, 4] (x0, y0, x1, y1) and whether the detector found each face (False: fallback box)."""

    landmarks: np.ndarray
    boxes: np.ndarray
    detected: np.ndarray


class _DlibNetwork:
    """What the three networks share: input scaling, detection with the fallback box, and
    the count of fallbacks (`images_read`, `fallbacks`, `fallback_share`)."""

    name = ""

    def __init__(self, input_size: int = INPUT_SIZE, upsample: int = 0):
        if not (isinstance(input_size, int) and 64 <= input_size <= MAX_INPUT_SIZE):
            raise UserInputError(
                f"expected an input size in 64..{MAX_INPUT_SIZE} pixels, received {input_size!r}"
            )
        if upsample not in (0, 1, 2):
            raise UserInputError(f"expected upsample 0, 1 or 2 doublings, received {upsample!r}")
        fl.require_dlib()
        self._input_size = input_size
        self.upsample = int(upsample)
        self.images_read = 0
        self.fallbacks = 0
        self._this_call: list[np.ndarray] = []

    @property
    def input_size(self) -> int:
        """The longer side, in pixels, smaller images are scaled up to before dlib reads them."""
        return self._input_size

    @property
    def last_detected(self) -> np.ndarray:
        """Whether the detector found each face of the last call (bool [N]; False: the
        landmarks came from the fallback box)."""
        return np.concatenate([np.zeros(0, dtype=bool), *self._this_call])

    @property
    def fallback_share(self) -> float:
        """The share of all images read so far whose landmarks came from the fallback box."""
        return self.fallbacks / self.images_read if self.images_read else 0.0

    def frames(self, images, batch_size: int) -> Iterator[np.ndarray]:
        """uint8 frames [B, h, w, 3], the longer side at least `input_size`, batch by batch."""
        images = as_image_batch(images)
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise UserInputError(f"expected a batch size >= 1, received {batch_size!r}")
        if len(images) == 0:
            raise UserInputError("expected at least one image, received none")
        self._this_call = []
        for start in range(0, len(images), batch_size):
            yield to_uint8(_scaled(images[start : start + batch_size], self._input_size))

    def read_faces(self, frames: np.ndarray) -> FaceReading:
        """The largest detected face of each frame, or the landmarks in the fallback box."""
        marks, boxes, detected = [], [], []
        for frame in frames:
            faces = fl.find_faces(frame, upsample=self.upsample)
            if faces:
                box, points = faces[0].box, faces[0].landmarks
            else:
                box = fallback_box(frame.shape[1], frame.shape[0])
                points = fl.landmarks_in(frame, box)
            marks.append(points)
            boxes.append(box)
            detected.append(bool(faces))
        reading = FaceReading(np.stack(marks), np.asarray(boxes, np.float64), np.array(detected))
        self._count(reading.detected)
        return reading

    def per_face(self, images, batch_size: int, read) -> np.ndarray:
        """`read(landmarks [68, 2], width, height)` of every image's face, stacked [N, ...]."""
        rows = []
        for frames in self.frames(images, batch_size):
            h, w = frames.shape[1:3]
            rows += [read(points, w, h) for points in self.read_faces(frames).landmarks]
        return np.asarray(rows, np.float64)

    def _count(self, detected: np.ndarray) -> None:
        self._this_call.append(detected)
        missed = int((~detected).sum())
        self.images_read += len(detected)
        self.fallbacks += missed
        if missed:
            log.info(
                "%s: no face detected in %d of %d images; landmarks read in the frame's fixed "
                "box (%.0f%% of %d images so far)",
                self.name, missed, len(detected), 100 * self.fallback_share, self.images_read,
            )  # fmt: skip

    def __repr__(self) -> str:
        return f"{type(self).__name__}(input_size={self._input_size})"


def _scaled(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images [B, 3, H, W] scaled up (aspect kept) so the longer side is at least `size`."""
    h, w = images.shape[-2:]
    k = max(1.0, size / max(h, w))
    shape = (max(1, round(h * k)), max(1, round(w * k)))
    if shape == (h, w):
        return images
    return F.interpolate(images.float(), size=shape, mode="bilinear", antialias=True)


def fallback_box(width: int, height: int) -> tuple[float, float, float, float]:
    """`FALLBACK_BOX` in pixels of a frame of that size."""
    x0, y0, x1, y1 = FALLBACK_BOX
    return (x0 * width, y0 * height, x1 * width, y1 * height)


# ------------------------------------------------------------------------------------------
# Head pose


# A generic adult face, millimetres, in the camera's axes when it faces the camera (x to the
# image's right, y down, z away from the camera), origin at the subnasale. Widths and heights
# are of the order of Farkas's adult norms (sexes averaged, rounded): biocular width ex-ex
# 90, intercanthal en-en 32, mouth width ch-ch 52, subnasale-to-menton 68, subnasale-to-
# stomion 21, the eye corners 42 above the subnasale (nasal height n-sn 52 less ~10 from the
# nasion down to the canthi), the nasal tip 20 in front (sn-prn). The depths of the canthi,
# mouth corners and menton behind the subnasale are rounded estimates of an average profile
# (docs/models.md says how much they matter).
FACE_MODEL = {
    36: (-45.0, -42.0, 14.0),  # exocanthion on the image's left
    39: (-16.0, -42.0, 2.0),  # endocanthion
    42: (16.0, -42.0, 2.0),
    45: (45.0, -42.0, 14.0),
    30: (0.0, -4.0, -20.0),  # pronasale (nose tip)
    33: (0.0, 0.0, 0.0),  # subnasale
    48: (-26.0, 21.0, 6.0),  # cheilion (mouth corner)
    54: (26.0, 21.0, 6.0),
    8: (0.0, 68.0, 8.0),  # menton (chin)
}


@functools.cache
def _cv2():
    try:
        import cv2
    except ImportError:
        raise UserInputError(
            f"expected OpenCV for head pose ({fl.FACES_HINT}), received none installed"
        ) from None
    return cv2


def head_pose(landmarks: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of one face's 68 landmarks [68, 2] in a frame of that
    size, through `cv2.solvePnP` on `FACE_MODEL` with a pinhole camera whose focal length is
    the frame's width (about 53 degrees of view) and no distortion."""
    cv2 = _cv2()
    index = list(FACE_MODEL)
    world = np.array([FACE_MODEL[i] for i in index], np.float64)
    image = np.ascontiguousarray(landmarks[index], np.float64)
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], np.float64)
    # Start from a frontal face in front of the camera at the distance its eye corners'
    # spread implies: from the default start, Levenberg-Marquardt can land on the mirror
    # solution behind the camera (a face upside down at negative depth).
    spread = max(float(np.linalg.norm(image[3] - image[0])), 1.0)
    rvec = np.zeros((3, 1))
    tvec = np.array([[0.0], [0.0], [width * (world[3, 0] - world[0, 0]) / spread]])
    ok, rvec, tvec = cv2.solvePnP(
        world, image, camera, None, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
    )
    if not ok or not np.isfinite(rvec).all():
        raise RuntimeError("cv2.solvePnP found no head pose for a set of 68 landmarks")
    return _angles(cv2.Rodrigues(rvec)[0])


def _angles(rotation: np.ndarray) -> tuple[float, float, float]:
    # rotation = turn(yaw) @ lift(pitch) @ spin(roll): the head turns about the vertical,
    # nods about its own ear-to-ear axis, then tilts about its nose axis. The face's forward
    # direction (towards the camera when frontal) gives yaw and pitch; what is left is roll.
    fx, fy, fz = rotation @ np.array([0.0, 0.0, -1.0])
    yaw = np.arctan2(fx, -fz)
    pitch = np.arctan2(-fy, np.hypot(fx, fz))
    spin = (_turn(yaw) @ _lift(pitch)).T @ rotation
    roll = np.arctan2(spin[1, 0], spin[0, 0])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))


def _turn(yaw: float) -> np.ndarray:
    """Rotation about the vertical that turns the face towards +x by `yaw` radians."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])


def _lift(pitch: float) -> np.ndarray:
    """Rotation about the ear-to-ear axis that lifts the chin by `pitch` radians."""
    c, s = np.cos(pitch), np.sin(pitch)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


class HeadPose(_DlibNetwork):
    """`dlib-pose`: yaw, pitch and roll in degrees (see the module docstring for signs)."""

    name = POSE_NAME

    @property
    def attribute_kinds(self) -> dict[str, str]:
        return {"yaw": VALUE, "pitch": VALUE, "roll": VALUE}

    def predict(self, images, batch_size: int = 64) -> dict[str, np.ndarray]:
        """Images [N, 3, H, W] in [-1, 1] (or uint8 [N, H, W, 3]) -> name -> float32 [N]."""
        out = self.per_face(images, batch_size, head_pose).astype(np.float32)
        return {name: out[:, k] for k, name in enumerate(self.attribute_kinds)}


# ------------------------------------------------------------------------------------------
# Mouth


# smile_proxy = sigmoid((mouth_width + mouth_opening - CENTRE) / SCALE). Fitted once on
# labelled face-world renders (benchmarks/real_face_networks.py --fit-mouth, docs/models.md):
# CENTRE is the midpoint between the smiling and the neutral faces' median sums, SCALE a
# quarter of the gap between them, so those medians read 0.88 and 0.12.
MOUTH_CENTRE = 1.01
MOUTH_SCALE = 0.065
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))  # upper and lower inner-lip points


def mouth_ratios(landmarks: np.ndarray) -> tuple[float, float]:
    """(width, opening) of one face's mouth [68, 2] over the distance between its eye
    centres: corner to corner, and the mean gap between the inner lips."""
    left = landmarks[list(fl.LEFT_EYE)].mean(0)
    right = landmarks[list(fl.RIGHT_EYE)].mean(0)
    eyes = max(float(np.linalg.norm(right - left)), 1.0)  # a collapsed face reads as 1 px
    a, b = fl.MOUTH_CORNERS
    width = float(np.linalg.norm(landmarks[b] - landmarks[a]))
    gaps = [np.linalg.norm(landmarks[u] - landmarks[v]) for u, v in INNER_LIP_PAIRS]
    opening = float(np.mean(gaps))
    return width / eyes, opening / eyes


class MouthProxy(_DlibNetwork):
    """`dlib-mouth`: the mouth's width and opening over the eye distance, and `smile_proxy`,
    a logistic of their sum (a wide or open mouth; not a smile classifier for photographs)."""

    name = MOUTH_NAME

    @property
    def attribute_kinds(self) -> dict[str, str]:
        return {"smile_proxy": PROBABILITY, "mouth_width": VALUE, "mouth_opening": VALUE}

    def predict(self, images, batch_size: int = 64) -> dict[str, np.ndarray]:
        """Images [N, 3, H, W] in [-1, 1] (or uint8 [N, H, W, 3]) -> name -> float32 [N]."""
        width, opening = self.per_face(images, batch_size, lambda p, w, h: mouth_ratios(p)).T
        z = (width + opening - MOUTH_CENTRE) / MOUTH_SCALE
        proxy = 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))
        return {
            "smile_proxy": proxy.astype(np.float32),
            "mouth_width": width.astype(np.float32),
            "mouth_opening": opening.astype(np.float32),
        }


# ------------------------------------------------------------------------------------------
# Identity


class DlibIdentity(_DlibNetwork):
    """`dlib-identity`: dlib's face-recognition ResNet, unit vectors [N, 128] (a dot product
    is the cosine, as for the shipped `identity`)."""

    name = IDENTITY_NAME
    dim = 128

    def embed(self, images, batch_size: int = 64) -> np.ndarray:
        """Images [N, 3, H, W] in [-1, 1] (or uint8 [N, H, W, 3]) -> float32 [N, 128]."""
        rows = []
        for frames in self.frames(images, batch_size):
            reading = self.read_faces(frames)
            for frame, box, points in zip(frames, reading.boxes, reading.landmarks, strict=True):
                face = fl.FoundFace(tuple(map(float, box)), float("nan"), points)
                rows.append(fl.face_descriptor(frame, face))
        return np.stack(rows).astype(np.float32)


NETWORKS = {POSE_NAME: HeadPose, MOUTH_NAME: MouthProxy, IDENTITY_NAME: DlibIdentity}


def load_face_network(name: str, device=None):
    """A real-face network by name (`FACE_NETWORKS`); dlib runs on the CPU, so `device` is
    accepted and unused. One line naming the extra when `ganedit[faces]` is missing."""
    if name not in NETWORKS:
        raise UserInputError(f"expected a real-face network in {FACE_NETWORKS}, received {name!r}")
    if name == POSE_NAME:
        _cv2()
    return NETWORKS[name]()
