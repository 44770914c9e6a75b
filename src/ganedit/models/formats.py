"""The generator formats `-g` reads: one table that loading, identity, help text and the docs
all read (NVlabs' `class_name` idea: a row names its loader, which is imported only when used).

A row recognises a path (by suffix or folder, the TensorFlow pickle by a peek at the first name
its pickle references, which runs nothing), names the function that loads it into a source,
the file whose sha256 identifies it, and how `--help` and docs/models.md call it. Registered
names (`world64`, `dcgan-digiface`) are not paths: `ganedit.choices` lists them. Nothing heavy
is imported here, so the CLI's help reads this table without loading torch.

Adding a format: write its loader `(path, device, truncation_psi, mode_names) -> source` (in
`ganedit.models.sources`, `ganedit.models.foreign_generators` or its own module) and add one
row below, before any row whose test would also take its files.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def _suffix(*suffixes: str) -> Callable[[Path], bool]:
    # By name alone: a missing file then gets its reader's "no such file" line.
    return lambda path: path.suffix.lower() in suffixes


def _tf_pickle(path: Path) -> bool:
    from ganedit.models.tf_pickle import is_tf_pickle

    return path.suffix.lower() == ".pkl" and path.is_file() and is_tf_pickle(path)


def _file_itself(path: Path) -> Path:
    return path


def _folder_weights(path: Path) -> Path:
    return path / "model.safetensors"


@dataclass(frozen=True)
class GeneratorFormat:
    """One row of the table.

    Attributes:
        key: a short stable name (`stylegan2-ada-pkl`).
        label: how help texts and messages name it ("an NVIDIA StyleGAN2-ADA .pkl").
        recognise: whether a path is this format (cheap; reads at most a file's first bytes).
        loader: "module:function" of `(path, device, truncation_psi, mode_names) -> source`.
        weights: the file whose sha256 is the generator's identity.
        docs: the row of docs/models.md's format table that describes it (its first cell).
    """

    key: str
    label: str
    recognise: Callable[[Path], bool]
    loader: str
    weights: Callable[[Path], Path]
    docs: str

    def load(self, path: Path, device, truncation_psi: float, mode_names=None):
        module, name = self.loader.split(":")
        return getattr(importlib.import_module(module), name)(
            path, device, truncation_psi, mode_names
        )


_SOURCES = "ganedit.models.sources"
_FOREIGN = "ganedit.models.foreign_generators"

GENERATOR_FORMATS: tuple[GeneratorFormat, ...] = (
    GeneratorFormat(
        "stylegan2-pytorch-pt",
        "a StyleGAN2-pytorch or SC-GAN .pt",
        _suffix(".pt"),
        f"{_SOURCES}:load_pt_file",
        _file_itself,
        "StyleGAN2-pytorch `.pt`",
    ),
    GeneratorFormat(  # before the ADA row: both are .pkl
        "tensorflow-pkl",
        "an NVIDIA TensorFlow PGGAN/StyleGAN/StyleGAN2 .pkl",
        _tf_pickle,
        f"{_FOREIGN}:load_tf_file",
        _file_itself,
        "TensorFlow `.pkl` (PGGAN, StyleGAN, StyleGAN2)",
    ),
    GeneratorFormat(
        "stylegan2-ada-pkl",
        "an NVIDIA StyleGAN2-ADA .pkl",
        _suffix(".pkl"),
        f"{_SOURCES}:load_ada_file",
        _file_itself,
        "NVIDIA StyleGAN2-ADA `.pkl`",
    ),
    GeneratorFormat(
        "interfacegan-pth",
        "an InterFaceGAN PGGAN/StyleGAN .pth",
        _suffix(".pth"),
        f"{_FOREIGN}:load_interfacegan_file",
        _file_itself,
        "InterFaceGAN `.pth`",
    ),
    GeneratorFormat(
        "model-folder",
        "a ganedit model folder",
        Path.is_dir,
        f"{_SOURCES}:load_model_folder",
        _folder_weights,
        "ganedit model folder",
    ),
)


def format_of(path: Path) -> GeneratorFormat | None:
    """The first row that recognises `path`, or None."""
    return next((f for f in GENERATOR_FORMATS if f.recognise(path)), None)


def generator_forms(names: tuple[str, ...]) -> str:
    """Every form `-g` takes, for help texts and messages: the names, then each format."""
    labels = [f.label for f in GENERATOR_FORMATS]
    return f"{', '.join(names)}, " + ", ".join(labels[:-1]) + f" or {labels[-1]}"
