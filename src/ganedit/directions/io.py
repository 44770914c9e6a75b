"""Boundary files: an InterFaceGAN-compatible .npy plus a JSON sidecar.

`<name>.npy` holds one unit direction as float32:

* shape (1, D) for a Z or W direction: exactly what IFG's `edit.py` reads;
* shape (1, L, D) for a W+ direction (one [D] block per synthesis layer). IFG ships no W+
  boundaries and its tools would not read this layout; it is ours.

`<name>.npy.json` records how the direction was made (caller metadata such as generator,
space and conditions, plus the estimator's method, parameters, sample count, accuracies,
intercept and seed), so a file can be traced back and reproduced. Boundaries written before
sidecars carried the whole file name have `<name>.json`, which is still read.
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ganedit.directions.estimators import DirectionEstimator
from ganedit.errors import DamagedInputError, UserInputError, expect
from ganedit.utils import files
from ganedit.utils.arrays import load_npy
from ganedit.utils.bounded import describe, load_json_bounded
from ganedit.utils.files import atomic_path, sidecar_path, write_json

log = logging.getLogger(__name__)

FORMAT = "ganedit.boundary"
FORMAT_VERSION = 1
UNIT_TOLERANCE = 1e-4  # |norm - 1| beyond this is re-normalised with a warning


def save_boundary(
    path: str | Path,
    estimator_or_direction: DirectionEstimator | np.ndarray,
    metadata: dict | None = None,
) -> Path:
    """Write the float32 (1, D) or (1, L, D) boundary and its sidecar, both atomically.

    An array may be [D], (1, D), [L, D] (L > 1: W+) or (1, L, D). `metadata` keys go into the
    sidecar unchanged; one that contradicts a fitted estimator's own record raises.
    """
    path = Path(path)
    expect(path.suffix == ".npy", "a boundary path ending in .npy", str(path))
    if isinstance(estimator_or_direction, DirectionEstimator):
        check_is_fitted(estimator_or_direction, "direction_")
        direction, facts = (
            estimator_or_direction.direction_,
            _estimator_facts(estimator_or_direction),
        )
    else:
        direction, facts = _direction_from_array(estimator_or_direction), {}
    array = _unit(np.asarray(direction, dtype=np.float64), str(path))[None].astype(np.float32)
    sidecar = {"format": FORMAT, "format_version": FORMAT_VERSION, **_merge(metadata, facts)}
    sidecar.update(
        shape=list(array.shape),
        dtype="float32",
        layout="(1, D)" if array.ndim == 2 else "(1, L, D): one block per W+ layer",
        ganedit_version=_version(),
    )
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)
    write_json(sidecar_path(path), sidecar)
    log.info("saved boundary %s %s", path, array.shape)
    return path


def load_boundary(path: str | Path) -> tuple[np.ndarray, dict]:
    """Unit float32 direction, [D] or [L, D], and the sidecar dict ({} when there is none).

    Reads IFG's float64 (1, D) files and MAB's float32 ones. Pickled or object arrays are
    refused; a direction that is not unit norm is re-normalised with a warning.
    """
    path = Path(path)
    expect(path.is_file(), "an existing boundary .npy file", str(path))
    array = load_npy(path, "a boundary")  # pickled arrays refused, never unpickled
    expect(np.issubdtype(array.dtype, np.floating), "a floating-point boundary", str(array.dtype))
    shape_ok = array.ndim == 1 or (array.ndim in (2, 3) and array.shape[0] == 1)
    expect(shape_ok and array.size > 0, "a boundary of shape (1, D) or (1, L, D)", array.shape)
    direction = array.reshape(array.shape[1:] if array.ndim > 1 else array.shape)
    direction = _unit(direction.astype(np.float64), str(path)).astype(np.float32)
    return direction, _read_sidecar(path, array.shape)


def method_label(sidecar: dict) -> str:
    """A boundary's method as its sidecar records it, with the variants that share a method
    name spelled out: `mab-exact` (quota exact), `interfacegan+conditional` (projected off
    its conditions)."""
    label = sidecar.get("method") or "direction"
    if (sidecar.get("params") or {}).get("quota") == "exact":
        label += "-exact"
    if "conditional" in (sidecar.get("fit") or {}) or sidecar.get("conditions"):
        label += "+conditional"
    return label


def _direction_from_array(value) -> np.ndarray:
    array = np.asarray(value)
    expect(np.issubdtype(array.dtype, np.floating), "a floating-point direction", str(array.dtype))
    if array.ndim in (2, 3) and array.shape[0] == 1:
        array = array[0]
    expect(array.ndim in (1, 2) and array.size > 0, "a direction [D] or [L, D]", np.shape(value))
    return array


def _unit(direction: np.ndarray, where: str) -> np.ndarray:
    expect(bool(np.isfinite(direction).all()), f"a finite direction in {where}", "NaN or inf")
    norm = float(np.linalg.norm(direction))
    expect(norm > 0, f"a non-zero direction in {where}", "all zeros")
    if abs(norm - 1) > UNIT_TOLERANCE:
        log.warning("direction in %s has norm %.6g; re-normalised to 1", where, norm)
    return direction / norm


def _read_sidecar(path: Path, shape: tuple[int, ...]) -> dict:
    side = files.read_sidecar_path(path)
    if not side.is_file():
        return {}
    data = load_json_bounded(side, what="a boundary's JSON sidecar")
    expect(isinstance(data, dict), f"a JSON object in {side}", type(data).__name__)
    for key, (kinds, what) in _SIDECAR_FIELDS.items():
        value = data.get(key)
        if value is not None and not (isinstance(value, kinds) and not isinstance(value, bool)):
            raise DamagedInputError(
                f"expected {key} as {what} in {side}, received {describe(value)}"
            )
    if data.get("space") not in (None, "z", "w", "ws"):
        raise DamagedInputError(
            f"expected space z, w or ws in {side}, received {describe(data['space'])}"
        )
    if not math.isfinite(data.get("intercept") or 0.0):
        raise DamagedInputError(f"expected a finite intercept in {side}, received NaN or inf")
    if "shape" in data and list(data["shape"]) != list(shape):
        log.warning("sidecar %s says shape %s, the .npy has %s", side, data["shape"], shape)
    return data


# Sidecar fields that edit, evaluate and the provenance check read: (types, what they are).
_SIDECAR_FIELDS = {
    "attribute": (str, "a name"),
    "method": (str, "a name"),
    "space": (str, "a latent space"),
    "generator": (str, "a name"),
    "generator_sha256": (str, "a hex digest"),
    "generator_class": (int, "a class index"),
    "intercept": ((int, float), "a number"),
    "params": (dict, "an object"),
    "fit": (dict, "an object"),
    "conditions": (list, "a list"),
    "shape": (list, "a list"),
}


def _estimator_facts(estimator: DirectionEstimator) -> dict:
    summary = estimator.summary()
    return {
        "method": summary["method"],
        "attribute": summary["attribute"],
        "params": _jsonable(estimator.get_params(deep=False)),
        "seed": _seed(estimator),
        "n_samples": summary["n_samples"],
        "accuracy": summary["accuracy"],
        "val_accuracy": _plain(getattr(estimator, "val_accuracy_", None)),
        "remaining_accuracy": _plain(getattr(estimator, "remaining_accuracy_", None)),
        "intercept": summary["intercept"],
        "fit": summary,
    }


def _merge(metadata: dict | None, facts: dict) -> dict:
    metadata = dict(metadata or {})
    for key in ("method", "attribute"):
        if key in metadata and key in facts and metadata[key] != facts[key]:
            raise UserInputError(
                f"expected metadata {key} {facts[key]!r} (the estimator's), received {metadata[key]!r}"
            )
    return _jsonable({**metadata, **facts})


def _seed(estimator: BaseEstimator) -> int | None:
    """random_state of the estimator or of the one it wraps."""
    params = estimator.get_params(deep=True)
    seeds = [v for k, v in params.items() if k.split("__")[-1] == "random_state"]
    return _plain(seeds[0]) if seeds else None


def _plain(value):
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return value


def _jsonable(value):
    """Parameters and summaries as JSON: estimators by method and params, arrays by shape."""
    if isinstance(value, DirectionEstimator):
        return {"method": value.method, "params": _jsonable(value.get_params(deep=False))}
    if isinstance(value, np.ndarray):
        return {"array_shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return _plain(value)


def _version() -> str:
    try:
        return importlib.metadata.version("ganedit")
    except importlib.metadata.PackageNotFoundError:
        from ganedit import __version__

        return __version__
