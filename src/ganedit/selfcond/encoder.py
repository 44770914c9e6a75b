"""The encoder of a self-conditioned generator (SC-GAN, B7), with no ground truth.

An e4e encoder for a self-conditioned generator learns codes that reconstruct each image at
that image's own modes. The modes of the training images come from their labels store (the
one the generator was fine-tuned on, or any store of the same images with its attribute
columns), normalised by the ranges recorded in the generator's config, so an image has the
same anchor coordinates for the encoder as it had for the fine-tune.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ganedit.errors import UserInputError
from ganedit.models.modes import normalise
from ganedit.selfcond.labels import load_labels
from ganedit.utils.context import RunContext

log = logging.getLogger(__name__)


def generator_ranges(name_or_path: str) -> tuple[list[str], np.ndarray]:
    """A self-conditioned generator's mode attributes and the label ranges [k, 2] its
    fine-tune normalised by (its config's `selfcond` record)."""
    from ganedit.models.io import read_config
    from ganedit.models.registry import generator_folder

    folder = generator_folder(name_or_path)
    record = (read_config(folder).get("selfcond") or {}) if folder is not None else {}
    attributes, ranges = record.get("attributes"), record.get("ranges")
    try:
        ranges = np.asarray(ranges, np.float64)
    except (TypeError, ValueError):
        ranges = None
    if not isinstance(attributes, list) or ranges is None or ranges.shape != (len(attributes), 2):
        raise UserInputError(
            f"expected a self-conditioned generator folder whose config records its attributes "
            f"and label ranges (train-selfcond's g_ema), received {name_or_path!r}"
        )
    return attributes, ranges


def modes_from_labels(labels: str | Path, generator: str) -> np.ndarray:
    """Anchor coordinates t [N, k] of a labels store's images for the generator's mode
    attributes, normalised by the generator's recorded ranges."""
    values, record = load_labels(labels)
    attributes, ranges = generator_ranges(generator)
    missing = [a for a in attributes if a not in record["attributes"]]
    if missing:
        raise UserInputError(
            f"expected label columns {attributes} (the generator's modes) in {str(labels)!r}, "
            f"received {record['attributes']}"
        )
    columns = [record["attributes"].index(a) for a in attributes]
    return normalise(values[:, columns], ranges).astype(np.float32)


def train_conditional_encoder(config, out, resume=True, *, ctx: RunContext = RunContext()):
    """`train_encoder` for a self-conditioned generator: the real images (config.data) are
    decoded at their modes from config.labels. Returns the encoder folder."""
    from ganedit.inversion.train_encoder import train_encoder

    if config.labels is None or config.data is None:
        raise UserInputError(
            "expected --data and --labels (a selflabel store of the data) to train an encoder "
            "for a self-conditioned generator"
        )
    t = modes_from_labels(config.labels, config.generator)
    return train_encoder(config, out, resume, real_modes=t, ctx=ctx)
