"""Directions ganedit ships for a registered generator, offered by the editor by default.

They live in the package as `ganedit/data/directions/<generator>/*.npy`, each with the JSON
sidecar `ganedit boundary` wrote (generator name and weights sha256, space, method,
attribute), so they are checked against the generator like any boundary file and refused for
another one. Today only `dcgan-digiface` has a folder (its yaw and smile_proxy directions,
learned on banks scored by the dlib networks: docs/dcgan_digiface_report.md); the world64
generators have none, and their directions stay in docs/directions_report.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

# A registered generator's name: never a path, so a user's `-g some/folder` finds nothing here.
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def shipped_root() -> Path:
    """The package folder holding one sub-folder of directions per generator."""
    return Path(str(resources.files("ganedit").joinpath("data", "directions")))


def shipped_directions(generator: str) -> list[Path]:
    """The boundary files shipped for `generator` (a registered name), sorted; [] for a
    path, an unknown name or a generator without shipped directions."""
    name = str(generator)
    if not _NAME.fullmatch(name) or ".." in name:
        return []
    folder = shipped_root() / name
    return sorted(folder.glob("*.npy")) if folder.is_dir() else []
