"""The modes of a self-conditioned generator (SC-GAN): labels, anchor coordinates and mode
vectors, in one place.

An attribute's label v becomes an anchor coordinate t in [0, 1] by the range [lo, hi] its
data set spans (the 0.5th and 99.5th percentiles, as SC-GAN does):
t = clip((v - lo) / (hi - lo), 0, 1). The coordinate is placed on three anchors, low,
middle and high, with the hat-function weights

    t < 1/2:  (1 - 2t, 2t, 0)        t >= 1/2:  (0, 2 - 2t, 2t - 1)

`ModeLayout` is the vector layout for k attributes: M = 1 + 3k slots, slot 0 the base mode
(always 1), slots 3a+1 .. 3a+3 attribute a's (low, middle, high) weights. It has two forms:
the generator's (`generator_vector`: every middle slot zeroed, so t = 1/2 means "neutral",
the base constant alone) and the mode head's target (`target_vector`: middle kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganedit.errors import DamagedInputError, UserInputError, expect

NEUTRAL = 0.5
ANCHORS = ("low", "middle", "high")  # an attribute's slots, in order
PERCENTILES = (0.5, 99.5)
# The generator is fed each attribute's (low, high) alone: its middle slot is zeroed.
_GENERATOR_ANCHORS = (1.0, 0.0, 1.0)


def num_modes(k: int) -> int:
    """M = 1 + 3k slots for k attributes."""
    return 1 + len(ANCHORS) * k


def attribute_count(width: int) -> int | None:
    """k of a layout M = `width` slots wide; None when no k fits (width is not 1 + 3k)."""
    k, rest = divmod(width - 1, len(ANCHORS))
    return k if width >= 1 and not rest else None


def anchor_weights(t: torch.Tensor) -> torch.Tensor:
    """Hat-function weights [..., 3] (low, middle, high) of t [...] in [0, 1]."""
    t = t.clamp(0.0, 1.0)
    low = (1.0 - 2.0 * t).clamp_min(0.0)
    high = (2.0 * t - 1.0).clamp_min(0.0)
    return torch.stack([low, 1.0 - low - high, high], dim=-1)


def _as_coordinates(t) -> torch.Tensor:
    """Anchor coordinates [N, k] as float32 (numpy or torch)."""
    t = torch.as_tensor(t, dtype=torch.float32)
    if t.ndim != 2:
        raise UserInputError(
            f"expected anchor coordinates of shape [N, k], received {tuple(t.shape)}"
        )
    return t


def _position(triples: torch.Tensor) -> torch.Tensor:
    """t = (1 + high - low) / 2 of weights [..., 3]: exact for hat weights, either form."""
    return (1.0 + triples[..., 2] - triples[..., 0]) / 2.0


@dataclass(frozen=True)
class ModeLayout:
    """The mode vectors of a generator with modes for `attributes` (k names, slot order)."""

    attributes: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "attributes", tuple(self.attributes))

    @classmethod
    def unnamed(cls, k: int) -> ModeLayout:
        """k attributes named attribute_1..k, as an SC-GAN file (which names none) gets."""
        return cls(tuple(f"attribute_{i + 1}" for i in range(k)))

    @classmethod
    def of_width(cls, width: int) -> ModeLayout:
        """The unnamed layout of vectors `width` slots wide; refused unless width = 1 + 3k."""
        k = attribute_count(width)
        if k is None:
            raise UserInputError(f"expected mode vectors of length 1 + 3k, received {width}")
        return cls.unnamed(k)

    @property
    def k(self) -> int:
        return len(self.attributes)

    @property
    def num_modes(self) -> int:
        return num_modes(self.k)

    def neutral(self, n: int = 1) -> torch.Tensor:
        """Anchor coordinates [n, k], every attribute neutral."""
        return torch.full((n, self.k), NEUTRAL)

    def generator_vector(self, t) -> torch.Tensor:
        """What the generator is fed: vectors [N, M] of coordinates t [N, k], middles zeroed."""
        weights = anchor_weights(self._check(t))
        return self.vectors(weights * weights.new_tensor(_GENERATOR_ANCHORS))

    def target_vector(self, t) -> torch.Tensor:
        """The mode head's target: vectors [N, M] of coordinates t [N, k], middles kept."""
        return self.vectors(anchor_weights(self._check(t)))

    def setting_vector(self, settings: Mapping[str, float]) -> torch.Tensor:
        """The generator's vector [1, M] at `settings` ({"smile": 0.9}), the rest neutral."""
        return self.generator_vector(self.targets(self.neutral(1), settings))

    def vectors(self, triples: torch.Tensor) -> torch.Tensor:
        """Per-attribute anchor weights [N, k, 3] -> vectors [N, M] (the base slot 1)."""
        base = torch.ones(len(triples), 1, dtype=triples.dtype, device=triples.device)
        return torch.cat([base, triples.flatten(1)], dim=1)

    def triples(self, vectors: torch.Tensor) -> torch.Tensor:
        """Vectors (or mode logits) [N, M] -> their attribute slots [N, k, 3]."""
        if vectors.ndim != 2 or vectors.shape[1] != self.num_modes:
            raise UserInputError(
                f"expected mode vectors of shape [N, {self.num_modes}], received "
                f"{tuple(vectors.shape)}"
            )
        return vectors[:, 1:].reshape(len(vectors), self.k, len(ANCHORS))

    def coordinates(self, vectors: torch.Tensor) -> torch.Tensor:
        """Anchor coordinates t [N, k] back from vectors [N, M] of either form."""
        return _position(self.triples(vectors))

    def parse(self, settings: Iterable[str]) -> dict[str, float]:
        """{"smile": 0.9, ...} from ["smile=0.9", ...] (T in [0, 1], each attribute once)."""
        out: dict[str, float] = {}
        for text in settings:
            name, sep, value = str(text).partition("=")
            name = name.strip()
            try:
                t = float(value) if sep else float("nan")
            except ValueError:
                t = float("nan")
            if not sep or not 0.0 <= t <= 1.0:
                raise UserInputError(
                    f"expected a mode setting ATTR=T with T in [0, 1], received {text!r}"
                )
            if name not in self.attributes:
                raise UserInputError(
                    f"expected a mode attribute among {list(self.attributes)}, received {name!r}"
                )
            if name in out:
                raise UserInputError(f"expected each mode attribute once, received {name!r} twice")
            out[name] = t
        return out

    def targets(self, t0: torch.Tensor, settings: Mapping[str, float]) -> torch.Tensor:
        """Anchor coordinates [N, k]: t0's, with the set attributes' columns replaced."""
        unknown = sorted(set(settings) - set(self.attributes))
        if unknown:
            raise UserInputError(
                f"expected mode attributes among {list(self.attributes)}, received {unknown}"
            )
        t = t0.clone()
        for name, value in settings.items():
            t[:, self.attributes.index(name)] = value
        return t

    def _check(self, t) -> torch.Tensor:
        t = _as_coordinates(t)
        if t.shape[1] != self.k:
            raise UserInputError(
                f"expected anchor coordinates of shape [N, {self.k}], received {tuple(t.shape)}"
            )
        return t


# The functional forms, for callers that hold arrays but no layout (the layout follows from
# their width).


def mode_vector(t, for_generator: bool) -> torch.Tensor:
    """`ModeLayout.generator_vector` (True) or `target_vector` (False) of t [N, k]."""
    layout = ModeLayout.unnamed(_as_coordinates(t).shape[1])
    return layout.generator_vector(t) if for_generator else layout.target_vector(t)


@torch.no_grad()
def read_modes(d, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Anchor coordinates t [N, k] of images [N, 3, H, W] in [-1, 1], read by a
    discriminator's mode head: per attribute, the softmax over (low, middle, high) and its
    expected position, t = p_middle / 2 + p_high. Images are resized (area) to the
    discriminator's resolution."""
    import torch.nn.functional as F

    size = d.config["size"]
    parts = []
    for i in range(0, len(images), batch_size):
        batch = images[i : i + batch_size].to(next(d.parameters()).device)
        if batch.shape[-1] != size:
            batch = F.interpolate(batch, size=(size, size), mode="area")
        _, logits = d.forward_with_modes(batch)
        triples = ModeLayout.of_width(logits.shape[1]).triples(logits)
        p = F.softmax(triples, dim=-1)  # [n, k, 3]
        parts.append(_position(p).cpu())
    return torch.cat(parts) if parts else torch.zeros(0, 0)


def label_ranges(values: np.ndarray, percentiles: tuple[float, float] = PERCENTILES) -> np.ndarray:
    """Per-attribute (lo, hi) ranges [k, 2] of labels [N, k]: their percentiles."""
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or len(values) == 0:
        raise UserInputError(f"expected labels of shape [N, k] with N > 0, received {values.shape}")
    if not np.isfinite(values).all():
        raise UserInputError("expected finite labels, received NaN or infinite values")
    lo, hi = np.percentile(values, percentiles, axis=0)
    flat = hi <= lo
    hi = np.where(flat, lo + 1.0, hi)  # a constant attribute maps to t = 0, not to a NaN
    return np.stack([lo, hi], axis=1)


def normalise(values: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """t = clip((v - lo) / (hi - lo), 0, 1): labels [N, k] -> [N, k] in [0, 1]."""
    values = np.asarray(values, np.float64)
    ranges = np.asarray(ranges, np.float64)
    if values.shape[-1] != len(ranges):
        raise UserInputError(
            f"expected {len(ranges)} attribute columns, received {values.shape[-1]}"
        )
    return np.clip((values - ranges[:, 0]) / (ranges[:, 1] - ranges[:, 0]), 0.0, 1.0)


def sampled_modes(n: int, k: int, seed: int) -> np.ndarray:
    """Anchor coordinates t [n, k] ~ U(0, 1), as the self-conditioned fine-tune draws them
    for fakes; for a given k, row i depends only on (seed, i) (NumPy's generator fills rows
    in order; the committed reports were drawn this way)."""
    return np.random.default_rng(seed).uniform(size=(n, k))


# The data's mode distribution, shipped in a self-conditioned model folder: anchor
# coordinates of the training data, drawn from when samples should look like the data.
MODE_PRIOR = "mode-prior.json"
_PRIOR_ROWS = (1, 100_000)


def save_mode_prior(folder: str | Path, layout: ModeLayout, t, origin: str) -> Path:
    """Write coordinates t [N, k] (the data's modes) as `folder`/mode-prior.json, with the
    attribute order and where they come from."""
    import json

    from ganedit.utils.files import atomic_path

    coords = layout._check(t).numpy().astype(np.float64)
    expect(_PRIOR_ROWS[0] <= len(coords) <= _PRIOR_ROWS[1], "1 to 100,000 rows", len(coords))
    record = {"attributes": list(layout.attributes), "origin": origin,
              "t": np.round(coords, 4).tolist()}  # fmt: skip
    path = Path(folder) / MODE_PRIOR
    with atomic_path(path, overwrite=True) as tmp:  # compact: one row of numbers per line
        tmp.write_text(json.dumps(record, separators=(",", ":")).replace("],[", "],\n[") + "\n")
    return path


def load_mode_prior(folder: str | Path | None, layout: ModeLayout) -> np.ndarray | None:
    """The coordinates [N, k] of `folder`/mode-prior.json (None: no such file); refused
    when its attributes are not the layout's or its values are not coordinates."""
    from ganedit.utils.bounded import load_json_bounded

    path = None if folder is None else Path(folder) / MODE_PRIOR
    if path is None or not path.is_file():
        return None
    record = load_json_bounded(path, what="a mode prior")
    where = f"{str(path)!r}"
    if not isinstance(record, dict) or record.get("attributes") != list(layout.attributes):
        got = record.get("attributes") if isinstance(record, dict) else type(record).__name__
        raise DamagedInputError(
            f"expected a mode prior for the modes {list(layout.attributes)} in {where}, "
            f"received one for {got}"
        )
    try:
        t = np.asarray(record.get("t"), dtype=np.float64)
    except (TypeError, ValueError):
        t = np.zeros(0)
    ok = t.ndim == 2 and t.shape[1] == layout.k and _PRIOR_ROWS[0] <= len(t) <= _PRIOR_ROWS[1]
    if not ok or not np.isfinite(t).all() or t.min() < 0.0 or t.max() > 1.0:
        raise DamagedInputError(
            f"expected {_PRIOR_ROWS[0]} to {_PRIOR_ROWS[1]} rows of {layout.k} coordinates in "
            f"[0, 1] in {where}, received an array of shape {t.shape} (or values outside)"
        )
    return t


def draw_coordinates(
    how: str,
    n: int,
    seed: int,
    layout: ModeLayout,
    prior: np.ndarray | None = None,
    start: int = 0,
) -> torch.Tensor:
    """Anchor coordinates [n, k] for samples start, ..., start + n - 1: rows of the data's
    `prior` ("data"), every attribute neutral ("neutral"), or U(0, 1) as the fine-tune draws
    fakes ("uniform"). Row i depends only on (seed, start + i)."""
    from ganedit.utils import rng

    index = np.arange(start, start + n)
    if how == "neutral":
        return layout.neutral(n)
    if how == "uniform":
        cols = [rng.uniform(seed, index, _UNIFORM_STREAM + a) for a in range(layout.k)]
        return torch.from_numpy(np.stack(cols, axis=1).astype(np.float32).reshape(n, layout.k))
    if how != "data":
        raise UserInputError(f"expected modes in ('data', 'neutral', 'uniform'), received {how!r}")
    if prior is None:
        raise UserInputError(
            "expected a generator that ships its data's mode distribution (mode-prior.json) "
            "for --modes data, received one without it (use --modes neutral or uniform)"
        )
    pick = np.floor(rng.uniform(seed, index, _PRIOR_STREAM) * len(prior)).astype(int)
    return torch.from_numpy(prior[np.minimum(pick, len(prior) - 1)].astype(np.float32))


_PRIOR_STREAM = 7000
_UNIFORM_STREAM = 7100
