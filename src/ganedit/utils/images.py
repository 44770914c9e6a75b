"""Image helpers (PIL only): tensors to uint8, grids, encoding."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from functools import lru_cache
from numbers import Integral, Real

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ganedit.errors import DamagedInputError, UserInputError, expect


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3]."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def from_uint8(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] in [-1, 1]."""
    images = np.ascontiguousarray(images)
    if not images.flags.writeable:  # decoded images are read-only views; torch wants to own
        images = images.copy()
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def encode(image: np.ndarray, fmt: str = "png", quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    pil = Image.fromarray(image)
    if fmt == "png":
        pil.save(buffer, format="png", compress_level=1)
    else:
        pil.save(buffer, format="jpeg", quality=quality)
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as pil:
        return np.asarray(pil.convert("RGB"))


def grid(images: np.ndarray, cols: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile uint8 [N, H, W, 3] row-major into one uint8 image with `pad` pixels between."""
    n, h, w, c = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), fill, dtype=np.uint8)
    for k in range(n):
        r, q = divmod(k, cols)
        out[
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + q * (w + pad) : pad + q * (w + pad) + w,
        ] = images[k]
    return out


# Text sizes in pixels, the same at every `scale` so labels stay legible but never huge.
LABEL_FONT_SIZE = 13
TITLE_FONT_SIZE = 15
_MARGIN = 4  # pixels between text and the edges of its band


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font: scalable Aileron at `size` px where FreeType and Pillow >= 10.1
    allow it, otherwise the fixed ~11 px bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1, or no FreeType
        return ImageFont.load_default()


def _clean(text: object, font) -> str:
    """One line of text the font can encode (the bitmap font is Latin-1 only)."""
    line = " ".join(str(text).split())
    if not isinstance(font, ImageFont.FreeTypeFont):
        line = line.encode("latin-1", "replace").decode("latin-1")
    return line


def _width(text: str, font) -> int:
    if not text:
        return 0
    left, _, right, _ = font.getbbox(text)
    return right - left


def _shorten(text: str, font, max_width: int) -> str:
    """`text`, or its longest prefix plus an ellipsis, that is at most `max_width` px wide."""
    if _width(text, font) <= max_width:
        return text
    ellipsis = "\u2026" if isinstance(font, ImageFont.FreeTypeFont) else "..."
    if _width(ellipsis, font) > max_width:
        ellipsis = ""
    lo, hi = 0, len(text) - 1  # the longest prefix length k that fits lies in [lo, hi]
    while lo < hi:
        k = (lo + hi + 1) // 2
        if _width(text[:k].rstrip() + ellipsis, font) <= max_width:
            lo = k
        else:
            hi = k - 1
    return (text[:lo].rstrip() + ellipsis) if lo or ellipsis else ""


def _line_extent(font) -> tuple[int, int]:
    """(top offset, height) of a line of text drawn at y = 0, with ascenders and descenders."""
    _, top, _, bottom = font.getbbox("Ag|#0+-_()")
    return top, bottom - top


def _draw_cell(
    canvas: Image.Image,
    box: tuple[int, int, int, int],
    text: str,
    font,
    colour: tuple[int, int, int],
    background: tuple[int, int, int],
    align: str,
) -> None:
    """Draw `text` centred (or right-aligned) in `box` (left, top, right, bottom), shortened
    to its width and clipped to it: it cannot spill over anything outside the box."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    if width <= 0 or height <= 0:
        return
    text = _shorten(text, font, width)
    if not text:
        return
    cell = Image.new("RGB", (width, height), background)
    x0, _, x1, _ = font.getbbox(text)
    x = width - x1 if align == "right" else (width - (x1 - x0)) / 2 - x0
    line_top, line_height = _line_extent(font)
    y = (height - line_height) / 2 - line_top
    ImageDraw.Draw(cell).text((round(x), round(y)), text, fill=colour, font=font)
    canvas.paste(cell, (left, top))


def _label_list(labels: Iterable[str] | None, count: int, kind: str) -> list[str] | None:
    if labels is None:
        return None
    expect(
        not isinstance(labels, str | bytes) and isinstance(labels, Iterable),
        f"{kind} labels as a list of strings",
        labels,
    )
    labels = list(labels)
    expect(len(labels) == count, f"{count} {kind} labels (one per {kind})", len(labels))
    return labels


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def labelled_grid(
    images: np.ndarray,
    cols: int,
    *,
    col_labels: Iterable[str] | None = None,
    row_labels: Iterable[str] | None = None,
    title: str | None = None,
    scale: int = 1,
    pad: int = 2,
    fill: int = 255,
) -> np.ndarray:
    """Tile images row-major into `cols` columns, with optional column/row labels and a title.

    images: uint8 [N, H, W, 3]; every tile is upscaled `scale` times by nearest neighbour, so
    the body is exactly `grid(images scaled to [N, H*scale, W*scale, 3], cols, pad, fill)`.
    Returns uint8 [T + C + R*(H*scale + pad) + pad, L + cols*(W*scale + pad) + pad, 3] where
    R = ceil(N / cols) rows and the bands are
      T: the title, one line across the top (0 without a title),
      C: `col_labels`, one string per column centred above it (0 without them),
      L: `row_labels`, one string per row right-aligned left of it (0 without them).
    Text is drawn in Pillow's built-in font at a fixed pixel size whatever `scale` is, dark
    on the `fill` grey (light on a dark `fill`), and each label is clipped to its own cell:
    one too long is shortened with an ellipsis, and no text ever paints over a tile. Column
    cells are one tile (plus pad) wide; row cells are max(tile width, 48 px) wide.
    Without labels or title this equals `grid(images, cols, pad, fill)` at `scale` 1.

    Raises UserInputError for images that are not uint8 [N>=1, H>=1, W>=1, 3], cols < 1,
    a scale that is not a positive integer, a negative pad, fill outside 0..255, and
    label counts other than `cols` column labels and R row labels.
    """
    ok = (
        isinstance(images, np.ndarray)
        and images.dtype == np.uint8
        and images.ndim == 4
        and images.shape[-1] == 3
        and min(images.shape) >= 1
    )
    what = (
        f"{images.dtype} array of shape {images.shape}"
        if isinstance(images, np.ndarray)
        else type(images).__name__
    )
    expect(ok, "uint8 images of shape [N, H, W, 3] with N, H, W >= 1", what)
    expect(_is_int(cols) and cols >= 1, "cols an integer >= 1", cols)
    expect(_is_int(scale) and scale >= 1, "scale a positive integer", scale)
    expect(_is_int(pad) and pad >= 0, "pad an integer >= 0", pad)
    expect(_is_int(fill) and 0 <= fill <= 255, "fill an integer in 0..255", fill)
    cols, scale, pad, fill = int(cols), int(scale), int(pad), int(fill)
    n = images.shape[0]
    rows = -(-n // cols)
    col_labels = _label_list(col_labels, cols, "column")
    row_labels = _label_list(row_labels, rows, "row")
    expect(title is None or isinstance(title, str), "a title string", title)

    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    body = grid(images, cols, pad, fill)
    if col_labels is None and row_labels is None and not title:
        return body

    _, th, tw, _ = images.shape
    label_font, title_font = _font(LABEL_FONT_SIZE), _font(TITLE_FONT_SIZE)
    _, label_h = _line_extent(label_font)
    _, title_h = _line_extent(title_font)
    colour = (24, 24, 24) if fill >= 128 else (232, 232, 232)
    background = (fill, fill, fill)

    title_band = title_h + 2 * _MARGIN if title else 0
    col_band = label_h + _MARGIN if col_labels is not None else 0
    left = 0
    row_texts: list[str] = []
    if row_labels is not None:
        row_texts = [_clean(label, label_font) for label in row_labels]
        widest = max(_width(text, label_font) for text in row_texts)
        left = min(widest, max(tw, 48)) + 2 * _MARGIN
    top = title_band + col_band

    canvas = Image.new("RGB", (left + body.shape[1], top + body.shape[0]), background)
    if title:
        box = (_MARGIN, 0, canvas.width - _MARGIN, title_band)
        _draw_cell(canvas, box, _clean(title, title_font), title_font, colour, background, "")
    if col_labels is not None:
        for q, label in enumerate(col_labels):
            x = left + pad + q * (tw + pad) - pad // 2  # cells of tile + pad, 1 px apart
            box = (x + 1, title_band, x + tw + pad - 1, top)
            _draw_cell(canvas, box, _clean(label, label_font), label_font, colour, background, "")
    for r, text in enumerate(row_texts):
        y = top + pad + r * (th + pad) - pad // 2
        box = (_MARGIN, y, left - _MARGIN, y + th + pad)
        _draw_cell(canvas, box, text, label_font, colour, background, "right")

    out = np.array(canvas, dtype=np.uint8)
    out[top:, left:] = body  # the tiles exactly as `grid` lays them out
    return out


def format_strength(value: float) -> str:
    """A short signed label for an edit strength: -3 -> "-3", 1.5 -> "+1.5", 0 -> "0",
    0.75 -> "+0.75", 12 -> "+12", 1/3 -> "+0.333", 250.4 -> "+250" (3 significant digits,
    whole numbers from 100 on)."""
    expect(
        isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value),
        "a finite number",
        value,
    )
    v = float(value)
    text = f"{v:+.0f}" if abs(v) >= 99.95 else f"{v:+.3g}"
    return "0" if text in ("+0", "-0") else text


def as_image_batch(images) -> torch.Tensor:
    """Images in any common layout as float32 [N, 3, H, W] in [-1, 1].

    Accepts torch tensors or NumPy arrays: float [N, 3, H, W] (or one [3, H, W]) already in
    [-1, 1], or uint8 [N, H, W, 3] (or one [H, W, 3]) as decoded from files."""
    if isinstance(images, np.ndarray):
        if images.dtype == np.uint8:
            return _uint8_batch(torch.from_numpy(np.ascontiguousarray(images)))
        if images.dtype.kind != "f":
            raise UserInputError(
                f"expected float images [N, 3, H, W] or uint8 [N, H, W, 3], received dtype "
                f"{images.dtype}"
            )
        images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    if not isinstance(images, torch.Tensor):
        raise UserInputError(
            f"expected images as a torch tensor or NumPy array, received {type(images).__name__}"
        )
    if images.dtype == torch.uint8:
        return _uint8_batch(images)
    if not images.is_floating_point():
        raise UserInputError(
            f"expected float images [N, 3, H, W] or uint8 [N, H, W, 3], received {images.dtype}"
        )
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1] != 3:
        raise UserInputError(
            f"expected float images of shape [N, 3, H, W], received {tuple(images.shape)}"
        )
    if not bool(torch.isfinite(images).all()):
        raise DamagedInputError("expected finite pixel values, received NaN or inf")
    return images.float()


def _uint8_batch(images: torch.Tensor) -> torch.Tensor:
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise UserInputError(
            f"expected uint8 images of shape [N, H, W, 3], received {tuple(images.shape)}"
        )
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
