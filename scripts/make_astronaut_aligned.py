"""Regenerate docs/astronaut_aligned.png: scikit-image's astronaut (a public-domain photograph)
with the FFHQ square dlib's landmarks give (drawn in), and the face aligned at 64 px (shown
4x, nearest neighbour) and at 256 px, by `ganedit.inversion.align`.

Usage (needs the `faces` and `faces-test` extras):
    python scripts/make_astronaut_aligned.py [--out docs/astronaut_aligned.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ganedit.inversion.align import align_photo, warp_quad
from ganedit.utils.images import encode, labelled_grid

ROOT = Path(__file__).resolve().parents[1]


def figure() -> np.ndarray:
    from skimage import data

    photo = data.astronaut()  # 512 px
    face = align_photo(photo, 256)[0]
    small = warp_quad(photo, face.quad, 64)
    shown = Image.fromarray(photo).resize((256, 256), Image.Resampling.LANCZOS)
    corners = [tuple(p) for p in (face.quad + 0.5) * 256 / photo.shape[1]]
    ImageDraw.Draw(shown).polygon(corners, outline=(255, 220, 0), width=2)
    tiles = [np.asarray(shown), np.kron(small, np.ones((4, 4, 1), np.uint8)), face.image]
    labels = ["photo + FFHQ square", "aligned, 64 px", "aligned, 256 px"]
    return labelled_grid(np.stack(tiles), 3, col_labels=labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "astronaut_aligned.png")
    args = parser.parse_args()
    args.out.write_bytes(encode(figure()))
    print(args.out)


if __name__ == "__main__":
    main()
