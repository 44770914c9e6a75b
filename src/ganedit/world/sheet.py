"""Contact sheet: each row one identity; columns turn one attribute off and on, then a yaw sweep."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ganedit.utils.images import grid, to_uint8
from ganedit.world.config import BINARY_ATTRIBUTES, WorldConfig
from ganedit.world.factors import Factors, sample_factors
from ganedit.world.render import check_size, render

OFF, ON = 0.05, 0.95
YAW_SWEEP = (-60.0, -30.0, 0.0, 30.0, 60.0)


def sheet_columns() -> list[tuple[str, dict[str, float]]]:
    """(title, factor overrides) per column: every attribute off/on, then the yaw sweep."""
    cols = []
    for name in BINARY_ATTRIBUTES:
        cols += [(f"{name} off", {name: OFF}), (f"{name} on", {name: ON})]
    cols += [(f"yaw {yaw:+.0f}", {"yaw": yaw}) for yaw in YAW_SWEEP]
    return cols


def sheet_images(
    config: WorldConfig, rows: int, size: int, seed: int
) -> tuple[np.ndarray, list[str]]:
    """uint8 [rows * cols, size, size, 3] in row-major order, and the column titles."""
    check_size(size)
    base = sample_factors(config, seed, 0, rows)
    # Frontal, everything else as drawn, so each toggle is seen on its own.
    base = base.replace(yaw=0.0)
    columns = sheet_columns()
    variants = [base.replace(**overrides) for _, overrides in columns]
    cols = len(columns)
    interleaved = Factors(
        {k: np.stack([v[k] for v in variants], 1).reshape(-1) for k in base.columns}
    )
    images = to_uint8(render(interleaved, size))
    return images.reshape(rows * cols, size, size, 3), [title for title, _ in columns]


def make_sheet(
    config: WorldConfig, rows: int = 6, size: int = 64, seed: int = 0, scale: int = 2
) -> Image.Image:
    images, titles = sheet_images(config, rows, size, seed)
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    tile = size * scale
    body = Image.fromarray(grid(images, cols=len(titles)))
    header = 18
    sheet = Image.new("RGB", (body.width, body.height + header), "white")
    sheet.paste(body, (0, header))
    draw = ImageDraw.Draw(sheet)
    for k, title in enumerate(titles):
        draw.text((2 + k * (tile + 2) + 3, 3), title, fill="black")
    return sheet
