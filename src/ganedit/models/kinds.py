"""The kinds of attribute scores, shared by predictors, score files, banks and estimators.

A score is of kind `probability` (P(attribute = 1), in [0, 1]) or `value` (any finite number:
yaw in degrees, an age in years). Files and banks written before kinds were recorded follow
the old rule (`legacy_kind`): `yaw` is a value, every other score a probability.

This module sits low (numpy and ganedit.errors only), so that `latents` and `models` can check
kinds without importing the estimators above them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ganedit.errors import DamagedInputError

PROBABILITY = "probability"  # a binary attribute: its probability, in [0, 1]
VALUE = "value"  # a continuous attribute: any finite value (yaw in degrees, an age in years)
KINDS = (PROBABILITY, VALUE)
LEGACY_VALUES = ("yaw",)  # without recorded kinds: the scores that are values, not probabilities


def legacy_kind(name: str) -> str:
    """The kind of a score whose kind was not recorded: yaw is a value, the rest probabilities."""
    return VALUE if name in LEGACY_VALUES else PROBABILITY


def check_kinds(values: Mapping, kinds: Mapping, where: str) -> dict[str, str]:
    """The kinds a file or bank records for its scores `values`, checked against them:
    name -> kind for every recorded (not None) kind. DamagedInputError, in one line naming
    `where`, for a kind of a name that is not among the scores, a kind not in KINDS, or a
    score of kind probability outside [0, 1]."""
    strays = sorted(str(name) for name in kinds if name not in values)
    if strays:
        raise DamagedInputError(
            f"expected score kinds of the scores in {where} {_few(sorted(values))}, received "
            f"kinds of {_few(strays)}"
        )
    bad = {k: v for k, v in kinds.items() if v is not None and v not in KINDS}
    if bad:
        raise DamagedInputError(
            f"expected score kinds among {KINDS} in {where}, received {dict(list(bad.items())[:4])}"
        )
    for name, kind in kinds.items():
        column = np.asarray(values[name], dtype=np.float64)
        if kind == PROBABILITY and column.size and not ((column >= 0) & (column <= 1)).all():
            raise DamagedInputError(
                f"expected probabilities in [0, 1] for {name!r} (of kind probability) in "
                f"{where}, received values from {column.min():g} to {column.max():g}"
            )
    return {name: kind for name, kind in kinds.items() if kind is not None}


def _few(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"
