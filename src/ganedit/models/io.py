"""One model format: `config.json` (class name, constructor kwargs, format version) beside
`model.safetensors`. Models register their class so a folder can be loaded without knowing it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ganedit.errors import UserInputError
from ganedit.utils.files import atomic_dir

FORMAT_VERSION = 1
_REGISTRY: dict[str, type[torch.nn.Module]] = {}
log = logging.getLogger(__name__)


def register_model(cls: type[torch.nn.Module]) -> type[torch.nn.Module]:
    """Class decorator: the class must keep its constructor kwargs in `self.config`."""
    _REGISTRY[cls.__name__] = cls
    return cls


def save_pretrained(
    model: torch.nn.Module, directory: str | Path, extra: dict | None = None
) -> Path:
    """Write `config.json` and `model.safetensors` into `directory` (atomically)."""
    config = {
        "class_name": type(model).__name__,
        "kwargs": dict(model.config),
        "format_version": FORMAT_VERSION,
        **(extra or {}),
    }
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_dir(directory) as tmp:
        save_file(state, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return Path(directory)


def read_config(directory: str | Path) -> dict:
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise UserInputError(
            f"expected a model folder with config.json, received {str(directory)!r}"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserInputError(f"expected valid JSON in {str(path)!r}, received: {err}") from err


def load_pretrained(directory: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a registered model from its folder and load its weights (eval mode)."""
    config = read_config(directory)
    _register_builtin_models()
    cls = _REGISTRY.get(config.get("class_name", ""))
    if cls is None:
        raise UserInputError(
            f"expected a model class among {sorted(_REGISTRY)}, received {config.get('class_name')!r}"
        )
    model = cls(**config["kwargs"])
    weights = Path(directory) / "model.safetensors"
    if not weights.is_file():
        raise UserInputError(f"expected weights at {str(weights)!r}, received no such file")
    model.load_state_dict(load_file(str(weights)))
    return model.to(device).eval()


def _register_builtin_models() -> None:
    # Importing the modules runs their @register_model decorators.
    import ganedit.models.predictors  # noqa: F401
    import ganedit.models.stylegan2  # noqa: F401
