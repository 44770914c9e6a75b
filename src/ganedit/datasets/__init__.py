"""Image data sets on disk: read and write LMDBs in the StyleGAN2-pytorch layout and image
folders. Used by training, scoring and the world renderer; depends only on `utils`."""

from ganedit.datasets.images import (
    FolderWriter,
    ImageDataset,
    LmdbWriter,
    decode_image,
    image_writer,
    is_lmdb_path,
    lmdb_key,
)

__all__ = [
    "FolderWriter",
    "ImageDataset",
    "LmdbWriter",
    "decode_image",
    "image_writer",
    "is_lmdb_path",
    "lmdb_key",
]
