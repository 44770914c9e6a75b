"""Image helpers (PIL only): tensors to uint8, grids, encoding."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3]."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def from_uint8(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


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
