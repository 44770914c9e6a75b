"""Image data sets of world renders: LMDB in the StyleGAN2-pytorch layout, or an image folder.

LMDB layout (as rosinality's prepare_data.py writes it): key `{size}-{index:05d}` holds the
encoded image bytes, key `length` the count as text. Beside the images, in the same folder:
`labels.npz` (one column per ground-truth factor, plus `index`) and `world.json` (how the set
was made). Writing streams in chunks (memory does not grow with n) into a temporary folder
that is renamed only when complete.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import lmdb
import numpy as np
import torch

from ganedit.errors import UserInputError
from ganedit.utils.files import atomic_dir
from ganedit.utils.images import decode, encode, to_uint8
from ganedit.utils.progress import progress_bar
from ganedit.world.config import WorldConfig
from ganedit.world.factors import ALL_FACTORS, sample_factors
from ganedit.world.render import check_size, render

LMDB_MAP_SIZE = 1 << 40  # sparse on Linux; only what is written takes space
IMAGE_FORMATS = ("png", "jpeg")


@dataclass(frozen=True)
class RenderJob:
    n: int
    size: int = 64
    seed: int = 0
    image_format: str = "png"
    quality: int = 95
    batch_size: int = 512


def is_lmdb_path(path: str | Path) -> bool:
    return str(path).rstrip("/").endswith(".lmdb")


def lmdb_key(size: int, index: int) -> bytes:
    return f"{size}-{str(index).zfill(5)}".encode()


class _LmdbSink:
    def __init__(self, folder: Path, size: int):
        self.env = lmdb.open(str(folder), map_size=LMDB_MAP_SIZE, readahead=False, meminit=False)
        self.size = size

    def write(self, start: int, encoded: list[bytes]) -> None:
        with self.env.begin(write=True) as txn:
            for k, data in enumerate(encoded):
                txn.put(lmdb_key(self.size, start + k), data)

    def close(self, n: int) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(b"length", str(n).encode())
        self.env.close()


class _FolderSink:
    def __init__(self, folder: Path, image_format: str):
        self.folder, self.ext = folder, "png" if image_format == "png" else "jpg"

    def write(self, start: int, encoded: list[bytes]) -> None:
        for k, data in enumerate(encoded):
            (self.folder / f"{start + k:06d}.{self.ext}").write_bytes(data)

    def close(self, n: int) -> None:
        pass


class _ColumnSink:
    """Ground-truth columns streamed to memory-mapped .npy files, zipped at the end."""

    def __init__(self, folder: Path, n: int):
        self.folder = folder / ".columns"
        self.folder.mkdir()
        names = ("index",) + ALL_FACTORS
        self.columns = {
            name: np.lib.format.open_memmap(
                self.folder / f"{name}.npy",
                mode="w+",
                dtype=np.int64 if name == "index" else np.float32,
                shape=(n,),
            )
            for name in names
        }

    def write(self, start: int, columns: dict[str, np.ndarray]) -> None:
        for name, values in columns.items():
            self.columns[name][start : start + len(values)] = values

    def close(self, path: Path) -> None:
        for col in self.columns.values():
            col.flush()
        np.savez(path, **self.columns)
        self.columns.clear()
        shutil.rmtree(self.folder)


def write_world_dataset(
    config: WorldConfig, job: RenderJob, out: str | Path, progress: bool = True
) -> Path:
    """Render samples 0..n-1 of `config` with `job.seed` into `out` (LMDB if it ends in .lmdb)."""
    check_size(job.size)
    if job.image_format not in IMAGE_FORMATS:
        raise UserInputError(
            f"expected image format in {IMAGE_FORMATS}, received {job.image_format!r}"
        )
    if job.n < 1:
        raise UserInputError(f"expected at least 1 image, received n={job.n}")
    out = Path(out)
    with atomic_dir(out) as tmp:
        images = (
            _LmdbSink(tmp, job.size) if is_lmdb_path(out) else _FolderSink(tmp, job.image_format)
        )
        labels = _ColumnSink(tmp, job.n)
        with progress_bar(job.n, f"render {out.name}", progress) as bar:
            for start in range(0, job.n, job.batch_size):
                count = min(job.batch_size, job.n - start)
                factors = sample_factors(config, job.seed, start, count)
                pixels = to_uint8(render(factors, job.size))
                images.write(start, [encode(p, job.image_format, job.quality) for p in pixels])
                labels.write(start, {"index": np.arange(start, start + count), **factors.columns})
                bar.advance(count)
        images.close(job.n)
        labels.close(tmp / "labels.npz")
        meta = {
            "world": config.to_dict(),
            **job.__dict__,
            "layout": "lmdb" if is_lmdb_path(out) else "folder",
        }
        (tmp / "world.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


_READERS: dict[tuple, lmdb.Environment] = {}


def _open_readonly(path: Path) -> lmdb.Environment:
    # LMDB allows one environment per file and process, so readers share it; the key holds
    # the file's identity, so a data set rewritten at the same path is opened afresh.
    stat = (path / "data.mdb").stat()
    key = (str(path.resolve()), stat.st_ino, stat.st_mtime_ns)
    if key not in _READERS:
        _READERS[key] = lmdb.open(
            str(path), readonly=True, lock=False, readahead=False, meminit=False
        )
    return _READERS[key]


class ImageDataset(torch.utils.data.Dataset):
    """Read an LMDB (StyleGAN2-pytorch layout) or an image folder; items are uint8 [H, W, 3]."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise UserInputError(
                f"expected an image LMDB or folder, received missing path {str(path)!r}"
            )
        self._env = None
        if (self.path / "data.mdb").is_file():
            self._open_lmdb()
        else:
            self.files = sorted(
                p for p in self.path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")
            )
            if not self.files:
                raise UserInputError(f"expected .png/.jpg images in {str(path)!r}, received none")
            self.length = len(self.files)

    def _open_lmdb(self) -> None:
        try:
            self._env = _open_readonly(self.path)
            with self._env.begin() as txn:
                length = txn.get(b"length")
                first = next((k for k, _ in txn.cursor() if k != b"length"), None)
        except lmdb.Error as err:
            raise UserInputError(
                f"expected a readable LMDB at {str(self.path)!r}, received a corrupt one ({err})"
            ) from err
        if length is None or first is None or b"-" not in first:
            raise UserInputError(
                f"expected an LMDB with a 'length' key and '{{size}}-{{index}}' image keys, "
                f"received a corrupt or foreign LMDB at {str(self.path)!r}"
            )
        self.length = int(length.decode())
        self.size = int(first.split(b"-")[0])

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self.length:
            raise IndexError(index)
        if self._env is None:
            return decode(self.files[index].read_bytes())
        with self._env.begin() as txn:
            data = txn.get(lmdb_key(self.size, index))
        if data is None:
            raise UserInputError(
                f"expected image key {lmdb_key(self.size, index)!r} in {str(self.path)!r}, received none"
            )
        return decode(data)

    def labels(self) -> dict[str, np.ndarray]:
        """Ground-truth columns written beside the images (world renders only)."""
        path = self.path / "labels.npz"
        if not path.is_file():
            raise UserInputError(
                f"expected labels.npz beside the images in {str(self.path)!r}, received none"
            )
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
