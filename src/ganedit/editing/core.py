"""The one editing core: latents, directions and/or mode targets, and an amount in one
declared unit, in; edited latents and images out. `ganedit edit` (`editing.run`) and the
editor (`editing.service`, and through it `ganedit ui`) both edit through it.

Units: a strength is in latent units (a step of s along a direction moves the code by s) or
in calibrated units (evaluator-logit units of the direction's attribute: a step of c moves
c / slope latent units, the slope measured once by `measure`).

Bounding (one policy, the CLI's): a calibrated step never exceeds `bound` (DEFAULT_BOUND,
0.5) times the width of the span that the calibration's latents cover along the direction.
When the largest |strength| of one edit (a CLI sweep's columns, or one editor render) would
go further, every step of that edit is scaled by the same factor so that the largest is
exactly `bound` x the width; the edit is reported as bounded. Latent units are never bounded.
The span covers 2,048 codes drawn with the calibration's seed and, where given, the codes
being edited (`reference`; the CLI passes them, the editor calibrates once per direction
for every face and so does not).

Mode targets (self-conditioned generators) move the anchor coordinates of the set
attributes a share of the way from the codes' own coordinates to the targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ganedit.editing.edit import DEFAULT_BOUND, Calibration, calibrate, move, move_many
from ganedit.errors import DamagedInputError, UserInputError

UNITS = ("latent", "calibrated")


@dataclass(frozen=True)
class Scale:
    """Latent units per strength unit of one direction in one edit; `bounded` when the bound
    made it smaller than 1 / slope; `calibration` when in calibrated units."""

    latent_per_unit: float = 1.0
    bounded: bool = False
    calibration: Calibration | None = None

    def record(self, attribute: str | None) -> dict:
        """What `ganedit edit`'s summary records per boundary."""
        record = {"attribute": attribute, "latent_per_unit": self.latent_per_unit}
        record["bounded"] = self.bounded
        if self.calibration is not None:
            record["calibration"] = self.calibration.to_dict()
            record["unbounded_latent_per_unit"] = 1.0 / self.calibration.slope
        return record


def measure(
    source,
    direction,
    space: str,
    evaluator,
    attribute: str | None,
    *,
    layers: tuple[int, int] | None = None,
    reference=None,
    n: int = 128,
    seed: int = 12345,
    progress: bool = False,
) -> Calibration:
    """The calibration of `direction` (`edit.calibrate`); UserInputError for a direction
    whose sidecar names no attribute."""
    if attribute is None:
        raise UserInputError(
            "expected a boundary with a JSON sidecar naming its attribute for calibrated "
            "units, received one without"
        )
    return calibrate(
        source,
        direction,
        space,
        evaluator,
        attribute,
        n=n,
        seed=seed,
        layers=layers,
        reference=reference,
        progress=progress,
    )


def scale(
    calibration: Calibration | None, largest: float, bound: float | None = DEFAULT_BOUND
) -> Scale:
    """The scale of an edit whose largest |strength| is `largest`: latent units without a
    calibration, else calibrated units under the bound (the module's policy; None: none).
    UserInputError for a direction too weak to calibrate. The caller says when it bounded
    (the CLI warns; the editor's read-out shows it)."""
    if calibration is None:
        return Scale()
    per_unit, bounded = calibration.latent_step([largest], bound)
    return Scale(per_unit, bounded, calibration)


def moved(
    latents: torch.Tensor,
    directions: Sequence,
    steps: Sequence[float],
    mode: str = "relative",
    intercept: float = 0.0,
    layers: tuple[int, int] | None = None,
) -> torch.Tensor:
    """latents [N, ...] moved `steps` latent units along each direction: one direction in
    `mode` (absolute measures from its `intercept`), several relative, adding up."""
    if not directions:
        return latents
    if len(directions) == 1:
        return move(latents, directions[0], steps[0], mode, intercept, layers)
    return move_many(latents, directions, steps, layers)


def start_coordinates(source, origin: dict, n: int) -> torch.Tensor | None:
    """The anchor coordinates [n, k] the codes start from on a self-conditioned generator:
    the samples' own (a bank's modes, or inverted images' modes read by the generator's mode
    reader), neutral for attributes they do not record; None for a generator without modes."""
    layout = source.mode_layout
    if layout is None:
        return None
    t = layout.neutral(n)
    record = origin.get("modes")
    if not isinstance(record, dict):
        return t
    columns = _per_code_modes(record, n) if "t" in record else _bank_modes(record, n)
    for j, name in enumerate(source.mode_attributes):
        if name in columns:
            t[:, j] = torch.as_tensor(np.clip(columns[name], 0.0, 1.0), dtype=torch.float32)
    return t


def _per_code_modes(record: dict, n: int) -> dict[str, np.ndarray]:
    """{attribute: t [n]} of a sidecar's or a bank's {"attributes": [...], "t": [[...], ...]}."""
    names, values = record.get("attributes"), record.get("t")
    rows = np.asarray(values, np.float64) if isinstance(values, list | np.ndarray) else None
    if (
        not isinstance(names, list)
        or rows is None
        or rows.ndim != 2
        or rows.shape[1] != len(names)
        or len(rows) < n
        or not np.isfinite(rows).all()
    ):
        raise DamagedInputError(
            "expected per-code modes {attributes, t [N, k]} in the codes' sidecar, "
            f"received {str(record)[:120]}"
        )
    return {name: rows[:n, j] for j, name in enumerate(names)}


def _bank_modes(record: dict, n: int) -> dict[str, np.ndarray]:
    """{attribute: t [n]} of a version-1 bank's one setting for every sample, {attribute: t}."""
    bad = {k: v for k, v in record.items() if not isinstance(v, (int, float)) or v != v}
    if bad:
        raise DamagedInputError(
            f"expected the bank's modes as {{attribute: t}} numbers, received {bad}"
        )
    return {name: np.full(n, float(value)) for name, value in record.items()}


def mode_vector(layout, start, targets: dict | None, share: float = 1.0) -> torch.Tensor | None:
    """Mode vectors [n, M] of `layout` a share of the way from the codes' own coordinates
    `start` [n, k] to `targets` ({attribute: t}); at `start` without targets; None for a
    generator without modes (`start` None)."""
    if start is None:
        return None
    if not targets:
        return layout.generator_vector(start)
    end = layout.targets(start, targets)
    return layout.generator_vector(start + share * (end - start))


def render(source, latents: torch.Tensor, space: str, modes: torch.Tensor | None = None):
    """Images [N, 3, H, W] of `latents` in `space`, with the mode vectors [N, M] of a
    self-conditioned generator when given."""
    if modes is None:
        return source.synthesize(latents, space)
    return source.synthesize(latents, space, modes=modes)
