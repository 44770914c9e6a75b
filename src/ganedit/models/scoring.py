"""Score an image data set (LMDB or folder) with an attribute predictor, in batches."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ganedit.datasets import ImageDataset
from ganedit.errors import UserInputError
from ganedit.models.predictors import AttributePredictor
from ganedit.utils.files import atomic_path
from ganedit.utils.images import from_uint8
from ganedit.utils.progress import progress_bar


def score_dataset(
    data: ImageDataset, model: AttributePredictor, batch_size: int = 256, progress: bool = True
) -> dict[str, np.ndarray]:
    """Attribute name -> float32 [N] (each of `model.attribute_kinds`: probabilities, or values
    such as yaw in degrees), like a `scores_dict`."""
    if not isinstance(model, AttributePredictor):
        raise UserInputError(f"expected an attribute predictor, received {type(model).__name__}")
    parts: list[dict[str, np.ndarray]] = []
    with progress_bar(len(data), "score", progress) as bar:
        for start in range(0, len(data), batch_size):
            stop = min(len(data), start + batch_size)
            batch = from_uint8(np.stack([data[i] for i in range(start, stop)]))
            parts.append(model.predict(batch, batch_size=batch_size))
            bar.advance(stop - start)
    return {k: np.concatenate([p[k] for p in parts]).astype(np.float32) for k in parts[0]}


# The .npz entry holding the scores' kinds: JSON {name: kind} as a 0-d string array; `.`
# cannot start a score name, so it never shadows a score (`latents.interchange` reads it).
KINDS_ENTRY = ".kinds"


def kinds_entry(kinds: Mapping[str, str]) -> np.ndarray:
    """The `.kinds` entry of a scores .npz: JSON {name: kind} as a 0-d string array."""
    return np.array(json.dumps(dict(kinds)))


def save_scores(
    scores: dict[str, np.ndarray], out: str | Path, kinds: Mapping[str, str] | None = None
) -> Path:
    """Write `scores` as an .npz, one array per attribute, with their `kinds` (name -> kind,
    the predictor's `attribute_kinds`) in its `.kinds` entry (`latents.interchange`)."""
    arrays = dict(scores)
    if kinds:
        arrays[KINDS_ENTRY] = kinds_entry({name: kinds[name] for name in scores if name in kinds})
    with atomic_path(out) as tmp, tmp.open("wb") as fh:
        np.savez(fh, **arrays)
    return Path(out)
