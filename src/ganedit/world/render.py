"""Vectorised, anti-aliased renderer of the stylised faces (pure torch, CPU friendly).

Every shape is a signed distance turned into pixel coverage (distance over the pixel size),
which anti-aliases without supersampling. Each shape is evaluated only on the band of rows
that the batch can reach, which keeps the cost per face low at any resolution.
Coordinates: x in [-1, 1] left to right, y in [-1, 1] top to bottom. Positive yaw turns the
face towards +x (features slide right on a sphere of the face's width).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ganedit.errors import UserInputError
from ganedit.world.factors import Factors

SIZES = tuple(2**k for k in range(4, 9))  # 16 .. 256

_HAIR_PALETTE = ((0.08, 0.06, 0.05), (0.40, 0.24, 0.12), (0.90, 0.75, 0.45), (0.65, 0.25, 0.10))
_EYE_PALETTE = ((0.20, 0.45, 0.80), (0.25, 0.55, 0.30), (0.35, 0.20, 0.08))
_SKIN_LIGHT, _SKIN_DARK = (0.98, 0.84, 0.72), (0.42, 0.28, 0.20)
_GREY = (0.82, 0.82, 0.85)


def check_size(size: int) -> int:
    if size not in SIZES:
        raise UserInputError(f"expected an image size in {list(SIZES)}, received {size}")
    return size


def render(factors: Factors, size: int = 64, batch_size: int = 256) -> torch.Tensor:
    """Render faces. Returns float32 images [N, 3, size, size] in [-1, 1]."""
    check_size(size)
    n = len(factors)
    out = torch.empty(n, 3, size, size)
    for start in range(0, n, batch_size):
        part = factors.subset(slice(start, start + batch_size))
        out[start : start + len(part)] = _render_batch(part, size)
    return out


class _Canvas:
    """An image batch plus pixel-centre coordinates; shapes are painted on row bands."""

    def __init__(self, n: int, size: int):
        self.size = size
        self.px = 2.0 / size
        centres = (torch.arange(size, dtype=torch.float32) + 0.5) * self.px - 1.0
        self.x = centres.view(1, 1, 1, size)  # [1, 1, 1, W]
        self.y = centres.view(1, 1, size, 1)  # [1, 1, H, 1]
        self.img = torch.empty(n, 3, size, size)

    def rows(self, top: np.ndarray, bottom: np.ndarray) -> slice:
        lo = float(np.min(top)) - 2 * self.px
        hi = float(np.max(bottom)) + 2 * self.px
        r0 = max(0, int(math.floor((lo + 1.0) / self.px)))
        r1 = min(self.size, int(math.ceil((hi + 1.0) / self.px)) + 1)
        return slice(r0, max(r0, r1))

    def coverage(self, dist: torch.Tensor) -> torch.Tensor:
        return (0.5 - dist / self.px).clamp_(0.0, 1.0)

    def paint(self, band: slice, alpha: torch.Tensor, colour: torch.Tensor) -> None:
        """Composite `colour` [N, 3, 1, 1] with coverage `alpha` [N, 1, h, W] on `band`."""
        if band.stop <= band.start:
            return
        region = self.img[:, :, band]
        region.add_(alpha * (colour - region))


def _t(values: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32)).view(-1, 1, 1, 1)


def _rgb(values: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32)).view(-1, 3, 1, 1)


def _palette(palette: tuple, t: np.ndarray) -> np.ndarray:
    colours = np.asarray(palette, dtype=np.float64)
    k = np.clip(np.floor(t), 0, len(colours) - 2).astype(int)
    frac = (t - k)[:, None]
    return colours[k] * (1 - frac) + colours[k + 1] * frac


def _lerp(a, b, t: np.ndarray) -> np.ndarray:
    return np.asarray(a)[None] * (1 - t[:, None]) + np.asarray(b)[None] * t[:, None]


def _visible(t: np.ndarray) -> np.ndarray:
    """Map an attribute intensity to how strongly it is drawn (negatives stay faint)."""
    return np.clip((t - 0.2) / 0.7, 0.0, 1.0)


def _ellipse(cv: _Canvas, band: slice, cx, cy, ax, ay) -> torch.Tensor:
    """Approximate signed distance to an axis-aligned ellipse, on a row band."""
    # First-order distance (q - 1) / |grad q|: exact scale near the outline even for thin
    # ellipses, whose coverage would otherwise bleed far past their tips.
    dx = (cv.x - cx) / ax
    dy = (cv.y[:, :, band] - cy) / ay
    q2 = dx * dx + dy * dy
    gx, gy = dx / ax, dy / ay
    return (torch.sqrt(q2) - 1.0) * torch.sqrt(q2 / (gx * gx + gy * gy + 1e-12))


def _segment(cv: _Canvas, band: slice, x0, y0, x1, y1, radius) -> torch.Tensor:
    """Signed distance to a thick line segment from (x0, y0) to (x1, y1)."""
    px, py = cv.x - x0, cv.y[:, :, band] - y0
    bx, by = x1 - x0, y1 - y0
    h = ((px * bx + py * by) / (bx * bx + by * by + 1e-8)).clamp_(0.0, 1.0)
    ex, ey = px - bx * h, py - by * h
    return torch.sqrt(ex * ex + ey * ey) - radius


class _Face:
    """Per-face geometry and colours derived from the factors (numpy arrays [N])."""

    def __init__(self, f: Factors):
        yaw = np.deg2rad(f["yaw"].astype(np.float64))
        self.sin, self.cos = np.sin(yaw), np.cos(yaw)
        self.cx = f["jit_x"].astype(np.float64)
        self.cy = 0.02 + f["jit_y"].astype(np.float64)
        self.w = f["face_w"].astype(np.float64) * (1 - 0.06 * np.abs(self.sin))
        self.h = f["face_h"].astype(np.float64)
        self.jaw = f["jaw"].astype(np.float64)
        self.radius = 0.95 * f["face_w"].astype(np.float64)
        self.smile, self.male = _visible(f["smile"]), _visible(f["gender"])
        self.glasses, self.old = _visible(f["glasses"]), _visible(f["age"])
        skin = _lerp(_SKIN_LIGHT, _SKIN_DARK, f["skin"].astype(np.float64))
        self.skin = skin * (1 - 0.12 * self.old[:, None]) + 0.1 * self.old[:, None]
        hair = _palette(_HAIR_PALETTE, f["hair"].astype(np.float64))
        self.hair = (
            hair * (1 - 0.9 * self.old[:, None]) + np.asarray(_GREY) * 0.9 * self.old[:, None]
        )
        self.iris = _palette(_EYE_PALETTE, f["eye"].astype(np.float64))
        self.eye_gap, self.eye_height = (
            f["eye_gap"].astype(np.float64),
            f["eye_height"].astype(np.float64),
        )
        self.brow_gap, self.nose_len = (
            f["brow_gap"].astype(np.float64),
            f["nose_len"].astype(np.float64),
        )
        self.mouth_w = f["mouth_w"].astype(np.float64)

    def longitude_x(
        self, phi: float | np.ndarray, scale: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Screen x of a feature at longitude phi, and its foreshortening cos(phi + yaw)."""
        s = np.sin(phi) * self.cos + np.cos(phi) * self.sin
        c = np.cos(phi) * self.cos - np.sin(phi) * self.sin
        return self.cx + scale * self.radius * s, c


def _render_batch(f: Factors, size: int) -> torch.Tensor:
    n = len(f)
    cv = _Canvas(n, size)
    face = _Face(f)
    _paint_background(cv, f)
    _paint_body(cv, face, f)
    _paint_hair_back(cv, face)
    face_cov = _paint_face(cv, face)
    _paint_ears(cv, face)
    _paint_beard(cv, face, face_cov)
    _paint_fringe_and_wrinkles(cv, face, face_cov)
    eyes = _paint_eyes(cv, face)
    _paint_nose(cv, face)
    _paint_mouth(cv, face)
    _paint_glasses(cv, face, eyes)
    _apply_light(cv, f)
    return cv.img.mul_(2.0).sub_(1.0)


def _paint_background(cv: _Canvas, f: Factors) -> None:
    bg = _rgb(np.stack([f["bg_r"], f["bg_g"], f["bg_b"]], 1))
    cv.img.copy_(bg * (1.0 + _t(f["bg_grad"]) * cv.y))


def _paint_body(cv: _Canvas, face: _Face, f: Factors) -> None:
    n = len(f)
    band = cv.rows(face.cy - 0.4 * face.w, np.ones(n))
    neck = _segment(
        cv, band, _t(face.cx), _t(face.cy), _t(face.cx), _t(face.cy + 0.9), _t(0.4 * face.w)
    )
    cv.paint(band, cv.coverage(neck), _rgb(face.skin * 0.85))
    band = cv.rows(np.full(n, 0.72), np.ones(n))
    shoulders = _ellipse(
        cv, band, _t(face.cx), _t(np.full(n, 1.2)), _t(np.full(n, 0.95)), _t(np.full(n, 0.45))
    )
    shirt = np.stack([f["shirt_r"], f["shirt_g"], f["shirt_b"]], 1)
    cv.paint(band, cv.coverage(shoulders), _rgb(shirt))


def _paint_hair_back(cv: _Canvas, face: _Face) -> None:
    # Short hair: a cap behind the head. Long hair (female presentation): hangs to the shoulders.
    cap_y, cap_h = face.cy - 0.12 * face.h, face.h * 0.98
    band = cv.rows(cap_y - cap_h, cap_y + cap_h)
    cap = _ellipse(cv, band, _t(face.cx - 0.05 * face.sin), _t(cap_y), _t(face.w + 0.06), _t(cap_h))
    cv.paint(band, cv.coverage(cap), _rgb(face.hair))
    top, bottom = face.cy - 0.3 * face.h, face.cy + 1.45 * face.h
    band = cv.rows(top - face.w - 0.08, bottom + face.w)
    half = _t(face.w + 0.08)
    long = _segment(cv, band, _t(face.cx), _t(top), _t(face.cx), _t(bottom - 0.1), half)
    cv.paint(band, cv.coverage(long) * _t(1.0 - face.male), _rgb(face.hair))


def _face_distance(cv: _Canvas, face: _Face, band: slice) -> torch.Tensor:
    # The jaw narrows the lower half of the face ellipse.
    y = cv.y[:, :, band]
    t = ((y - _t(face.cy)) / _t(face.h)).clamp(0.0, 1.0)
    ax = _t(face.w) * (1.0 - _t(face.jaw) * t * t)
    dx = (cv.x - _t(face.cx + 0.04 * face.sin)) / ax
    dy = (y - _t(face.cy)) / _t(face.h)
    return (torch.sqrt(dx * dx + dy * dy) - 1.0) * _t(face.w)


def _paint_face(cv: _Canvas, face: _Face) -> tuple[slice, torch.Tensor]:
    band = cv.rows(face.cy - face.h, face.cy + face.h)
    cov = cv.coverage(_face_distance(cv, face, band))
    cv.paint(band, cov, _rgb(face.skin))
    return band, cov


def _within(band: slice, face_cov: tuple[slice, torch.Tensor]) -> torch.Tensor:
    outer, cov = face_cov
    return cov[:, :, band.start - outer.start : band.stop - outer.start]


def _paint_ears(cv: _Canvas, face: _Face) -> None:
    # With yaw the ear on the far side of the turn comes round to face the viewer.
    for phi in (-math.pi / 2, math.pi / 2):
        x, c = face.longitude_x(phi)
        y = face.cy - 0.05 * face.h
        band = cv.rows(y - 0.1, y + 0.1)
        ear = _ellipse(
            cv, band, _t(x), _t(y), _t(0.01 + 0.05 * np.clip(c, 0, 1)), _t(np.full(len(x), 0.09))
        )
        alpha = _t(np.clip(3.0 * c, 0.0, 1.0))
        cv.paint(band, cv.coverage(ear) * alpha, _rgb(face.skin * 0.82))


def _paint_beard(cv: _Canvas, face: _Face, face_cov) -> None:
    top = face.cy + 0.22 * face.h
    band = cv.rows(top, face.cy + face.h)
    rise = ((cv.y[:, :, band] - _t(top)) / cv.px + 0.5).clamp(0.0, 1.0)
    alpha = rise * _within(band, face_cov) * _t(0.8 * face.male)
    cv.paint(band, alpha, _rgb(face.hair * 0.55))


def _paint_fringe_and_wrinkles(cv: _Canvas, face: _Face, face_cov) -> None:
    hairline = face.cy - 0.68 * face.h
    band = cv.rows(face.cy - face.h, hairline + 0.04)
    dx = (cv.x - _t(face.cx)) / _t(face.w)
    line = _t(hairline) + 0.06 * dx * dx
    above = ((line - cv.y[:, :, band]) / cv.px + 0.5).clamp(0.0, 1.0)
    cv.paint(band, above * _within(band, face_cov), _rgb(face.hair))
    x_mid, c = face.longitude_x(0.0)
    for k in range(3):
        y = face.cy - (0.42 + 0.08 * k) * face.h
        band = cv.rows(y - 0.02, y + 0.02)
        half = 0.16 * np.clip(c, 0.3, 1.0)
        crease = _segment(
            cv, band, _t(x_mid - half), _t(y), _t(x_mid + half), _t(y), _t(np.full(len(y), 0.008))
        )
        cv.paint(band, cv.coverage(crease) * _t(0.7 * face.old), _rgb(face.skin * 0.55))


def _paint_eyes(cv: _Canvas, face: _Face) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    eyes = []
    y = face.cy - face.eye_height * face.h
    band = cv.rows(y - 0.16, y + 0.12)
    for phi in (-face.eye_gap, face.eye_gap):
        x, c = face.longitude_x(phi)
        shown = np.clip(c, 0.0, 1.0)
        vis = _t(np.clip(5.0 * c, 0.0, 1.0))
        white = _ellipse(
            cv, band, _t(x), _t(y), _t(0.005 + 0.07 * shown), _t(np.full(len(x), 0.042))
        )
        cv.paint(band, cv.coverage(white) * vis, _rgb(np.full((len(x), 3), 0.96)))
        iris = _ellipse(
            cv, band, _t(x), _t(y), _t(0.004 + 0.032 * shown), _t(np.full(len(x), 0.032))
        )
        cv.paint(band, cv.coverage(iris) * vis, _rgb(face.iris))
        pupil = _ellipse(
            cv, band, _t(x), _t(y), _t(0.002 + 0.014 * shown), _t(np.full(len(x), 0.014))
        )
        cv.paint(band, cv.coverage(pupil) * vis, _rgb(np.full((len(x), 3), 0.03)))
        bag = _ellipse(
            cv, band, _t(x), _t(y + 0.055), _t(0.004 + 0.05 * shown), _t(np.full(len(x), 0.012))
        )
        cv.paint(band, cv.coverage(bag) * vis * _t(0.6 * face.old), _rgb(face.skin * 0.6))
        brow_y = y - face.brow_gap
        brow = _ellipse(
            cv, band, _t(x), _t(brow_y), _t(0.006 + 0.075 * shown), _t(0.011 + 0.013 * face.male)
        )
        cv.paint(band, cv.coverage(brow) * vis, _rgb(face.hair * 0.7))
        eyes.append((x, y, shown))
    return eyes


def _paint_nose(cv: _Canvas, face: _Face) -> None:
    x_root, _ = face.longitude_x(0.0)
    x_tip, _ = face.longitude_x(0.0, scale=1.18)
    top, bottom = face.cy - 0.1 * face.h, face.cy + face.nose_len * face.h
    band = cv.rows(top, bottom + 0.03)
    ridge = _segment(
        cv, band, _t(x_root), _t(top), _t(x_tip), _t(bottom), _t(np.full(len(top), 0.012))
    )
    cv.paint(band, cv.coverage(ridge) * 0.8, _rgb(face.skin * 0.72))
    nostril = _ellipse(
        cv,
        band,
        _t(x_tip),
        _t(bottom + 0.01),
        _t(np.full(len(top), 0.03)),
        _t(np.full(len(top), 0.012)),
    )
    cv.paint(band, cv.coverage(nostril) * 0.8, _rgb(face.skin * 0.55))


def _paint_mouth(cv: _Canvas, face: _Face) -> None:
    # A smile bends the mouth into a U, widens it and opens it to show teeth.
    xm, c = face.longitude_x(0.0)
    ym = face.cy + 0.45 * face.h
    half_w = (face.mouth_w + 0.05 * face.smile) * np.clip(c, 0.25, 1.0)
    bend = 0.07 * face.smile
    thick = 0.011 + 0.03 * face.smile
    band = cv.rows(ym - 0.02, ym + bend + thick + 0.02)
    u = ((cv.x - _t(xm)) / _t(half_w)).clamp(-1.0, 1.0)
    centre = _t(ym) + _t(bend) * (1.0 - u * u)
    taper = _t(thick) * torch.sqrt(1.0 - u * u) + 0.004
    dy = (cv.y[:, :, band] - centre).abs() - taper
    dx = (cv.x - _t(xm)).abs() - _t(half_w)
    lips = cv.coverage(torch.maximum(dx, dy))
    cv.paint(band, lips, _rgb(np.tile([0.55, 0.12, 0.14], (len(xm), 1))))
    teeth = cv.coverage(torch.maximum(dx + 0.015, dy + 0.008 + 0.35 * _t(thick)))
    cv.paint(band, teeth * _t(face.smile), _rgb(np.full((len(xm), 3), 0.97)))


def _paint_glasses(cv: _Canvas, face: _Face, eyes) -> None:
    ink = _rgb(np.full((len(face.cx), 3), 0.06))
    y = eyes[0][1]
    band = cv.rows(y - 0.1, y + 0.1)
    strength = _t(face.glasses)
    for x, _, shown in eyes:
        rim = _ellipse(
            cv, band, _t(x), _t(y), _t(0.006 + 0.095 * shown), _t(np.full(len(x), 0.075))
        )
        vis = _t(np.clip(5.0 * shown, 0.0, 1.0))
        cv.paint(
            band,
            cv.coverage(rim) * vis * strength * 0.25,
            _rgb(np.tile([0.55, 0.7, 0.85], (len(x), 1))),
        )
        cv.paint(band, cv.coverage(rim.abs() - 0.014) * vis * strength, ink)
    (xl, _, sl), (xr, _, sr) = eyes
    bridge = _segment(
        cv,
        band,
        _t(xl + 0.095 * sl),
        _t(y - 0.01),
        _t(xr - 0.095 * sr),
        _t(y - 0.01),
        _t(np.full(len(y), 0.01)),
    )
    cv.paint(band, cv.coverage(bridge) * strength, ink)


def _apply_light(cv: _Canvas, f: Factors) -> None:
    shade = _t(f["ambient"]) + _t(f["light_amp"] * f["light_x"]) * cv.x
    cv.img.mul_(shade).clamp_(0.0, 1.0)


def feature_points(factors: Factors, size: int) -> np.ndarray:
    """Where the renderer draws each face's eye centres and mouth corners, in pixels of a
    `size` px render: [N, 4, 2] (x, y) as left eye, right eye, mouth left, mouth right (as
    the image shows them). Pixel i's centre is at i, as landmark detectors count.

    The same geometry `_paint_eyes` and `_paint_mouth` draw with: the eyes at longitudes
    -/+ eye_gap on the turned head, the mouth corners at the mouth's half width (a smile's
    bend leaves its ends in place)."""
    check_size(size)
    face = _Face(factors)
    eye_y = face.cy - face.eye_height * face.h
    (left, _), (right, _) = face.longitude_x(-face.eye_gap), face.longitude_x(face.eye_gap)
    mouth_x, c = face.longitude_x(0.0)
    half_w = (face.mouth_w + 0.05 * face.smile) * np.clip(c, 0.25, 1.0)
    mouth_y = face.cy + 0.45 * face.h
    xs = np.stack([left, right, mouth_x - half_w, mouth_x + half_w], 1)
    ys = np.stack([eye_y, eye_y, mouth_y, mouth_y], 1)
    world = np.stack([xs, ys], 2)  # [-1, 1] coordinates
    return (world + 1.0) * (size / 2.0) - 0.5
