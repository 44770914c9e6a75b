"""ganedit: controllable editing of pretrained GANs.

The library path, generator -> bank -> boundary -> edit -> evaluate (docs/api.md):

    import ganedit
    source = ganedit.load_generator("world64")            # a GeneratorSource
    ganedit.generate_bank(ganedit.GenerateConfig("world64", n=20_000), "bank.zarr")
    ganedit.fit_boundary(ganedit.BoundaryConfig("regression", "age", "bank.zarr"), "age.npy")
    direction, sidecar = ganedit.load_boundary("age.npy")
    frames = ganedit.edit_images(source, source.to_w(source.sample_z(4, 0)), "w", direction, [-2, 0, 2])

Names are imported on first use, so `import ganedit` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_generator": "ganedit.models.sources",
    "GeneratorSource": "ganedit.models.sources",
    "load_predictor": "ganedit.models.registry",
    "load_pretrained": "ganedit.models.registry",
    "save_pretrained": "ganedit.models.registry",
    "GenerateConfig": "ganedit.latents",
    "generate_bank": "ganedit.latents",
    "LatentBank": "ganedit.latents",
    "BoundaryConfig": "ganedit.directions.fit",
    "fit_boundary": "ganedit.directions.fit",
    "make_estimator": "ganedit.directions",
    "load_boundary": "ganedit.directions",
    "save_boundary": "ganedit.directions",
    "move": "ganedit.editing.edit",
    "calibrate": "ganedit.editing.edit",
    "edit_images": "ganedit.editing.edit",
    "save_strip": "ganedit.editing.edit",
    "EditConfig": "ganedit.editing.run",
    "run_edit": "ganedit.editing.run",
    "DirectionEvalConfig": "ganedit.evaluation.directions",
    "evaluate_boundary_files": "ganedit.pipeline",
    "StudyConfig": "ganedit.pipeline",
    "run_direction_study": "ganedit.pipeline",
    "RunContext": "ganedit.utils.context",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ganedit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
