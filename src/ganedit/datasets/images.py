"""Image data sets: an LMDB in the StyleGAN2-pytorch layout, or a folder of images.

LMDB layout (as rosinality's prepare_data.py writes it): key `{size}-{index:05d}` holds the
encoded image bytes, key `length` the count as text. Reading checks what it reads: a store
that does not open, a missing or non-numeric `length`, a missing key, bytes that do not decode
as an image, or an image of another size than the first are reported as damaged input naming
the key or file, never passed on.
"""

from __future__ import annotations

from pathlib import Path

import lmdb
import numpy as np
import torch

from ganedit.errors import DamagedInputError, UserInputError
from ganedit.utils.images import decode

# The writer's first map size; it doubles whenever a write needs more. (A fixed 1 TiB map
# reserves that much address space, which a memory limit such as `ulimit -v` refuses.)
LMDB_INITIAL_MAP_SIZE = 64 << 20
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def is_lmdb_path(path: str | Path) -> bool:
    return str(path).rstrip("/").endswith(".lmdb")


def lmdb_key(size: int, index: int) -> bytes:
    return f"{size}-{str(index).zfill(5)}".encode()


# ------------------------------------------------------------------------------------------
# Writing


class LmdbWriter:
    """Encoded images into an LMDB folder; `close(n)` writes the `length` key. The map grows
    on demand (doubling), so the address space reserved follows the data written."""

    def __init__(self, folder: Path, size: int, map_size: int = LMDB_INITIAL_MAP_SIZE):
        self.env = lmdb.open(str(folder), map_size=map_size, readahead=False, meminit=False)
        self.size = size

    def write(self, start: int, encoded: list[bytes]) -> None:
        self._put({lmdb_key(self.size, start + k): data for k, data in enumerate(encoded)})

    def close(self, n: int) -> None:
        self._put({b"length": str(n).encode()})
        self.env.close()

    def _put(self, items: dict[bytes, bytes]) -> None:
        """Write `items` in one transaction, doubling the map until they fit (a full map
        aborts the transaction, so nothing is half written)."""
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    for key, data in items.items():
                        txn.put(key, data)
                return
            except lmdb.MapFullError:
                self.env.set_mapsize(2 * self.env.info()["map_size"])


class FolderWriter:
    """Encoded images as `{index:06d}.png` (or `.jpg`) files in a folder."""

    def __init__(self, folder: Path, image_format: str):
        self.folder, self.ext = folder, "png" if image_format == "png" else "jpg"

    def write(self, start: int, encoded: list[bytes]) -> None:
        for k, data in enumerate(encoded):
            (self.folder / f"{start + k:06d}.{self.ext}").write_bytes(data)

    def close(self, n: int) -> None:
        pass


def image_writer(folder: Path, out: str | Path, size: int, image_format: str):
    """The writer for output path `out` (an LMDB when it ends in .lmdb) writing into `folder`."""
    return LmdbWriter(folder, size) if is_lmdb_path(out) else FolderWriter(folder, image_format)


# ------------------------------------------------------------------------------------------
# Reading


def decode_image(data: bytes, where: str) -> np.ndarray:
    """Decoded RGB uint8 [H, W, 3]; bytes that are not a whole image are damaged input."""
    from PIL import Image

    try:
        return decode(data)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        raise DamagedInputError(
            f"expected an encoded PNG or JPEG image at {where!r}, received bytes that do not "
            f"decode ({type(err).__name__}: {err})"
        ) from None


_READERS: dict[tuple, lmdb.Environment] = {}


def _open_readonly(path: Path) -> lmdb.Environment:
    # LMDB allows one environment per file and process, so readers share it; the key holds
    # the file's identity, so a data set rewritten at the same path is opened afresh.
    stat = (path / "data.mdb").stat()
    key = (str(path.resolve()), stat.st_ino, stat.st_mtime_ns)
    if key not in _READERS:
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False)
        _check_whole(env, path, stat.st_size)
        _READERS[key] = env
    return _READERS[key]


def _check_whole(env: lmdb.Environment, path: Path, size: int) -> None:
    """LMDB maps the file and trusts its meta page: reading a page past the end of a truncated
    data.mdb kills the process (SIGBUS) instead of raising. Compare sizes before any read."""
    needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    if size < needed:
        env.close()
        raise DamagedInputError(
            f"expected an LMDB data.mdb of at least {needed} bytes (its last page) at "
            f"{str(path)!r}, received {size} bytes (truncated)"
        )


class ImageDataset(torch.utils.data.Dataset):
    """Read an LMDB (StyleGAN2-pytorch layout) or an image folder; items are uint8 [H, W, 3].

    Every image must have the size of the first one (a training set or a scored set has one
    size); another size is reported as damaged input."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise UserInputError(
                f"expected an image LMDB or folder, received missing path {str(path)!r}"
            )
        if not self.path.is_dir():
            raise UserInputError(
                f"expected an image LMDB or folder (a directory), received the file {str(path)!r}"
            )
        self._env = None
        self._shape: tuple[int, ...] | None = None
        if (self.path / "data.mdb").is_file():
            self._open_lmdb()
        else:
            self._open_folder()

    def _open_folder(self) -> None:
        try:
            entries = list(self.path.iterdir())
        except OSError as err:
            raise UserInputError(
                f"expected a readable image folder, received {str(self.path)!r} ({err.strerror})"
            ) from None
        self.files = sorted(p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise UserInputError(f"expected .png/.jpg images in {str(self.path)!r}, received none")
        self.length = len(self.files)

    def _open_lmdb(self) -> None:
        try:
            self._env = _open_readonly(self.path)
            with self._env.begin() as txn:
                length = txn.get(b"length")
                first = next((k for k, _ in txn.cursor() if k != b"length"), None)
        except lmdb.Error as err:
            raise DamagedInputError(
                f"expected a readable LMDB at {str(self.path)!r}, received a corrupt one ({err})"
            ) from None
        if length is None or first is None or b"-" not in first:
            raise DamagedInputError(
                f"expected an LMDB with a 'length' key and '{{size}}-{{index}}' image keys, "
                f"received a corrupt or foreign LMDB at {str(self.path)!r}"
            )
        try:
            self.length = int(length.decode())
            self.size = int(first.split(b"-")[0])
        except (ValueError, UnicodeDecodeError):
            raise DamagedInputError(
                f"expected a numeric 'length' and '{{size}}-{{index}}' keys in {str(self.path)!r}, "
                f"received length {length[:20]!r} and key {first[:20]!r}"
            ) from None
        if self.length < 1:
            raise DamagedInputError(
                f"expected at least one image in {str(self.path)!r}, received length {self.length}"
            )
        with self._env.begin() as txn:
            if txn.get(lmdb_key(self.size, self.length - 1)) is None:
                raise DamagedInputError(
                    f"expected {self.length} images in {str(self.path)!r} (its 'length'), "
                    f"received no image under the last key "
                    f"{lmdb_key(self.size, self.length - 1).decode()!r}"
                )

    def __len__(self) -> int:
        return self.length

    @property
    def is_lmdb(self) -> bool:
        return self._env is not None

    def label(self, index: int) -> str:
        """A name for image `index`: its file name, or `<lmdb folder>:<index>`."""
        return self.files[index].name if self._env is None else f"{self.path.name}:{index}"

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self.length:
            raise IndexError(index)
        if self._env is None:
            where = str(self.files[index])
            try:
                data = self.files[index].read_bytes()
            except OSError as err:
                raise DamagedInputError(
                    f"expected a readable image file, received {where!r} ({err.strerror})"
                ) from None
        else:
            key = lmdb_key(self.size, index)
            where = f"{self.path}:{key.decode()}"
            with self._env.begin() as txn:
                data = txn.get(key)
            if data is None:
                raise DamagedInputError(
                    f"expected image key {key.decode()!r} in {str(self.path)!r}, received none"
                )
        return self._checked(decode_image(data, where), where)

    def _checked(self, image: np.ndarray, where: str) -> np.ndarray:
        if self._shape is None:
            self._shape = image.shape
        elif image.shape != self._shape:
            raise DamagedInputError(
                f"expected every image of {str(self.path)!r} to be {self._shape[1]}x"
                f"{self._shape[0]} like the first, received {image.shape[1]}x{image.shape[0]} "
                f"at {where!r}"
            )
        return image

    def labels(self) -> dict[str, np.ndarray]:
        """Ground-truth columns written beside the images (world renders only)."""
        path = self.path / "labels.npz"
        if not path.is_file():
            raise UserInputError(
                f"expected labels.npz beside the images in {str(self.path)!r}, received none"
            )
        from ganedit.utils.arrays import load_npz

        return load_npz(path)
