"""Shipped measuring networks, loadable by name from package data (no hub, no download)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from ganedit.errors import UserInputError
from ganedit.models import predictors  # noqa: F401  (registers the classes)
from ganedit.models.io import load_pretrained

PREDICTORS = ("labeler", "evaluator", "identity")


def weights_dir(name: str) -> Path:
    return Path(str(resources.files("ganedit").joinpath(f"data/weights/{name}")))


def load_predictor(name_or_dir: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load `labeler`, `evaluator` or `identity` from the package, or a model folder by path."""
    text = str(name_or_dir)
    if text in PREDICTORS:
        folder = weights_dir(text)
        if not (folder / "model.safetensors").is_file():
            raise UserInputError(
                f"expected shipped weights for {text!r} in {folder}, received none "
                f"(train them with `ganedit train-predictor --kind {text}`)"
            )
        return load_pretrained(folder, device)
    if not Path(text).is_dir():
        raise UserInputError(
            f"expected a predictor name {PREDICTORS} or a model folder, received {text!r}"
        )
    return load_pretrained(text, device)
