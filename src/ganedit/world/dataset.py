"""Data sets of world renders: an LMDB in the StyleGAN2-pytorch layout, or an image folder
(the layouts and the reader live in `ganedit.datasets`).

Beside the images, in the same folder: `labels.npz` (one column per ground-truth factor, plus
`index`) and `world.json` (how the set was made). Writing streams in chunks (memory does not
grow with n) into a temporary folder that is renamed only when complete; an existing output
is replaced only with `overwrite`, and only when ganedit wrote it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganedit.choices import IMAGE_FORMATS
from ganedit.datasets.images import image_writer, is_lmdb_path
from ganedit.errors import UserInputError
from ganedit.utils.context import RunContext
from ganedit.utils.files import atomic_dir, check_output
from ganedit.utils.images import encode, to_uint8
from ganedit.utils.progress import progress_bar
from ganedit.world.config import WorldConfig
from ganedit.world.factors import ALL_FACTORS, sample_factors
from ganedit.world.render import check_size, render


@dataclass(frozen=True)
class RenderJob:
    n: int
    size: int = 64
    seed: int = 0
    image_format: str = "png"
    quality: int = 95
    batch_size: int = 512


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
    config: WorldConfig,
    job: RenderJob,
    out: str | Path,
    *,
    ctx: RunContext = RunContext(),
) -> Path:
    """Render samples 0..n-1 of `config` with `job.seed` into `out` (LMDB if it ends in .lmdb)."""
    check_size(job.size)
    if job.image_format not in IMAGE_FORMATS:
        raise UserInputError(
            f"expected image format in {IMAGE_FORMATS}, received {job.image_format!r}"
        )
    if job.n < 1:
        raise UserInputError(f"expected at least 1 image, received n={job.n}")
    out = check_output(out, overwrite=ctx.overwrite, kind="dir")
    with atomic_dir(out, overwrite=ctx.overwrite, what="world render") as tmp:
        images = image_writer(tmp, out, job.size, job.image_format)
        labels = _ColumnSink(tmp, job.n)
        with progress_bar(job.n, f"render {out.name}", ctx.progress) as bar:
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
