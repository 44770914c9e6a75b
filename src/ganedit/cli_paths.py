"""Every command's inputs and outputs, checked apart before the command starts.

The CLI names its paths with one vocabulary (`cli_options`), so the parameter names say what
a path is: `out`, `json_out` and `heatmap` are written; `images`, `latents`, `boundary`, a
generator, a predictor... are read. `guard(app)` wraps every registered command so that,
once its flags are parsed and before its body runs, `check_outputs_apart` refuses an output
that is an input, lies inside one or holds one (symlinks resolved): a command can never
write over what it reads, with or without --overwrite. A new command is covered by naming
its path parameters as below (tests/test_outputs_apart.py checks that every path parameter
is classified).
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path

# Parameters that name what a command writes.
OUTPUTS = ("out", "json_out", "heatmap")
# Parameters that name what a command reads: paths, or names that may be paths (a generator,
# a predictor, a world preset...: registered names are not paths).
INPUTS = (
    "images", "data", "latents", "scores", "boundary", "boundaries", "conditions", "labels",
    "resample", "ckpt", "table", "bank", "folder", "source", "generator", "selfcond_generator",
    "predictor", "evaluator", "identity", "encoder", "init_encoder", "preset", "merge",
)  # fmt: skip
# Commands whose -o has a JSON record beside it (`utils.files.sidecar_path`).
WITH_SIDECAR = ("world sheet", "sample", "score", "boundary")


def guard(app) -> None:
    """Wrap every command of the typer `app` (its groups' too) in the path check."""
    for name, info in _commands(app):
        if not getattr(info.callback, "_paths_checked", False):
            info.callback = _checked(name, info.callback)


def _commands(app, prefix: str = "") -> Iterator[tuple[str, object]]:
    for info in app.registered_commands:
        yield f"{prefix}{info.name or info.callback.__name__}", info
    for group in app.registered_groups:
        yield from _commands(group.typer_instance, f"{prefix}{group.name} ")


def _checked(command: str, func: Callable) -> Callable:
    flags = _flags(func)

    @functools.wraps(func)  # typer reads the parameters through __wrapped__
    def checked(**params):
        check_command_paths(command, params, flags)
        return func(**params)

    checked._paths_checked = True
    return checked


def _flags(func: Callable) -> dict[str, str]:
    """Each parameter's name on the command line: its first long flag, or its metavar."""
    flags = {}
    for name, param in inspect.signature(func).parameters.items():
        decls = getattr(param.default, "param_decls", None) or ()
        long = [d for d in decls if d.startswith("--")]
        flags[name] = long[0] if long else (decls[0] if decls else name.upper())
    return flags


def check_command_paths(command: str, params: dict, flags: dict[str, str]) -> None:
    """Refuse (UserInputError) outputs of `command` that are, hold or lie inside its inputs."""
    from ganedit.utils.files import check_named, check_outputs_apart, sidecar_path

    outputs = [(flags.get(n, n), Path(p)) for n in OUTPUTS for p in _values(params.get(n))]
    for flag, path in outputs:
        check_named(path, flag)
    if command in WITH_SIDECAR and params.get("out") is not None:
        outputs.append(("--out's sidecar", sidecar_path(params["out"])))
    inputs = [
        (flags.get(n, n), path)
        for n in INPUTS
        for value in _values(params.get(n))
        for path in _input_paths(n, value)
    ]
    check_outputs_apart(inputs, outputs)


def _values(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _input_paths(name: str, value) -> list[Path]:
    """The paths an input value names: none for a registered name; a .npy's sidecars too."""
    text = str(value)
    if name == "merge":  # STORE or STORE:col,col
        text = text.partition(":")[0]
    if not text or not os.path.lexists(text):
        return []
    if isinstance(value, str) and os.sep not in text and text in _registered_names():
        return []  # the loaders take a registered name before a path
    path = Path(text)
    if path.suffix == ".npy":  # codes and boundaries are read with their JSON record
        return [path, path.with_name(path.name + ".json"), path.with_suffix(".json")]
    return [path]


@functools.cache
def _registered_names() -> frozenset[str]:
    from ganedit.models.registry import (
        EMBEDDED_ENCODERS,
        FACE_NETWORKS,
        GENERATOR_NAMES,
        PREDICTORS,
    )
    from ganedit.world.config import PRESETS

    names = (*GENERATOR_NAMES, *PREDICTORS, *FACE_NETWORKS, *EMBEDDED_ENCODERS, *PRESETS)
    return frozenset((*names, "none"))
