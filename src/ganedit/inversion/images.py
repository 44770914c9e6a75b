"""Images in, as every inversion front-end reads them: `ganedit invert`, `ganedit edit
--images` and the editor's upload (which checks an upload's header before decoding it here).

Decoding rules, one place: grey and palette images become RGB, transparent pixels are
composited on white, non-square images are centre-cropped to a square and resized (area) to
the generator's resolution; the result is float [3, R, R] in [-1, 1]. With `align` (the
front-ends' `--align`), the largest face is instead cropped as FFHQ was made, at the
generator's resolution (ganedit.inversion.align; needs `ganedit[faces]`). A self-conditioned
generator's images are also read for their modes (`image_modes`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganedit.datasets.images import IMAGE_SUFFIXES
from ganedit.errors import UserInputError
from ganedit.utils.images import from_uint8


def image_files(paths: list[str | Path]) -> list[tuple[str, Path | None, int | None]]:
    """(label, file, dataset index) per image of the given files, folders and LMDBs."""
    from ganedit.datasets import ImageDataset

    if not paths:
        raise UserInputError("expected --images (files, a folder or an LMDB), received none")
    items: list[tuple[str, Path | None, int | None]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            data = ImageDataset(path)
            if data.is_lmdb:
                items += [(data.label(i), path, i) for i in range(len(data))]
            else:  # a user's folder: each file on its own (sizes may differ)
                items += [(f.name, f, None) for f in data.files]
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise UserInputError(
                    f"expected an image file ({', '.join(IMAGE_SUFFIXES)}), a folder or an LMDB, "
                    f"received {str(path)!r}"
                )
            items.append((path.name, path, None))
        else:
            raise UserInputError(f"expected an image file, folder or LMDB, received {str(raw)!r}")
    return items


def load_images(
    items: list[tuple[str, Path | None, int | None]], resolution: int, align: bool = False
) -> tuple[torch.Tensor, list[str]]:
    """Images [N, 3, R, R] in [-1, 1] and the sha256 of each one's bytes.

    Converted as documented: grayscale and palette images to RGB, RGBA composited on white,
    non-square images centre-cropped to a square, then resized (area) to R; or, with
    `align`, each one's largest face FFHQ-aligned at R (`to_target`)."""
    images, digests = [], []
    for array, data, where in read_images(items):
        images.append(to_target(array, resolution, align, where))
        digests.append(hashlib.sha256(data).hexdigest())
    return torch.stack(images), digests


def read_images(items: list[tuple[str, Path | None, int | None]]):
    """Each image of `image_files` decoded: (RGB uint8 [H, W, 3], the bytes it came from,
    where it came from, for messages)."""
    from ganedit.datasets import ImageDataset

    datasets: dict[Path, ImageDataset] = {}  # one reader per LMDB: it checks sizes agree
    for _, path, index in items:
        if index is not None and path not in datasets:
            datasets[path] = ImageDataset(path)
        array, data = read_image(path, index, datasets.get(path))
        yield array, data, str(path) if index is None else f"{path}[{index}]"


def load_image(
    path: Path, index: int | None, resolution: int, dataset=None, align: bool = False
) -> tuple[torch.Tensor, bytes]:
    """One image as float [3, R, R] in [-1, 1] (as `load_images` converts it) and the bytes
    it came from (for its sha256)."""
    array, data = read_image(path, index, dataset)
    where = str(path) if index is None else f"{path}[{index}]"
    return to_target(array, resolution, align, where), data


def to_target(
    array: np.ndarray, resolution: int, align: bool = False, where: str = ""
) -> torch.Tensor:
    """A decoded RGB uint8 image [H, W, 3] as the generator's target, float [3, R, R] in
    [-1, 1]: its centre square resized (`square`), or with `align` its largest face
    FFHQ-aligned at R (a photo without a face is refused with one line naming `where`)."""
    if align:
        from ganedit.inversion.align import aligned_square

        array = aligned_square(array, resolution, where or "the image")
    return square(array, resolution)


def read_image(path: Path, index: int | None, dataset=None) -> tuple[np.ndarray, bytes]:
    """One image of `image_files` as RGB uint8 [H, W, 3] and the bytes it came from: a file
    (decoded by `decode_file`) or row `index` of an LMDB (`dataset`, its open reader)."""
    from ganedit.datasets import ImageDataset

    if index is not None:
        array = (dataset or ImageDataset(path))[index]
        return array, array.tobytes()
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserInputError(
            f"expected a readable image file, received {str(path)!r} ({err.strerror})"
        ) from None
    return decode_file(data, str(path)), data


def decode_file(data: bytes, where: str) -> np.ndarray:
    """An image file's bytes as RGB uint8 [H, W, 3] (transparent pixels on white); bytes that
    do not decode are damaged input, named by `where`."""
    import io

    from PIL import Image

    from ganedit.datasets import decode_image

    try:
        with Image.open(io.BytesIO(data)) as pil:
            return rgb_on_white(pil)
    except Exception:  # noqa: BLE001 - the data set's decoder reports damage with its message
        return decode_image(data, where)


def rgb_on_white(pil) -> np.ndarray:
    """An opened PIL image, decoded, as RGB uint8 [H, W, 3]; transparent pixels would
    otherwise take whatever colour they store (often black), so they are put on white."""
    from PIL import Image

    if pil.mode not in ("RGBA", "LA", "PA") and "transparency" not in pil.info:
        return np.asarray(pil.convert("RGB"))
    rgba = pil.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))


def square(array: np.ndarray, resolution: int) -> torch.Tensor:
    """RGB uint8 [H, W, 3] as float [3, R, R] in [-1, 1]: the centre square, resized (area)."""
    image = from_uint8(array[None])[0]
    _, h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = image[:, top : top + side, left : left + side]
    if side != resolution:
        image = F.interpolate(image[None], size=(resolution, resolution), mode="area")[0]
    return image


# ------------------------------------------------------------------------------------------
# Their modes (self-conditioned generators)


def mode_reader(generator: str, source, device) -> torch.nn.Module | None:
    """The discriminator whose mode head reads a self-conditioned generator's image modes
    (SC-GAN's B8, B9); None for any other generator."""
    from ganedit.models.registry import load_mode_reader

    attributes = source.mode_attributes
    return load_mode_reader(generator, attributes, device).eval() if attributes else None


def image_modes(source, images: torch.Tensor, how: str, reader=None) -> torch.Tensor | None:
    """Anchor coordinates [N, k] of images [N, 3, H, W] for a self-conditioned generator:
    read by `reader` (`how` "read", see `mode_reader`) or neutral; None for any other."""
    from ganedit.models.modes import NEUTRAL, read_modes

    attributes = source.mode_attributes
    if not attributes:
        return None
    if how == "neutral":
        return torch.full((len(images), len(attributes)), NEUTRAL)
    return read_modes(reader, images)
