"""World configuration: the joint distribution of the binary attributes and of pose.

The attributes form a small Bayesian network written in TOML (see presets/). For each
attribute the file gives its marginal `rate` and log-odds `effects` of parent attributes
sampled earlier. The base log-odds is solved so the marginal is exactly `rate`, so a preset
with dependencies and one without them share their marginals.
"""

from __future__ import annotations

import functools
import itertools
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ganedit.errors import UserInputError

BINARY_ATTRIBUTES = ("smile", "gender", "glasses", "age")
PRESETS = ("celeba", "independent", "balanced")


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    rate: float
    effects: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class WorldConfig:
    """Joint attribute distribution. `attributes` is in sampling (topological) order."""

    name: str
    attributes: tuple[AttributeSpec, ...]
    yaw_std: float = 20.0
    yaw_max: float = 75.0

    def __post_init__(self) -> None:
        names = [a.name for a in self.attributes]
        if sorted(names) != sorted(BINARY_ATTRIBUTES):
            raise UserInputError(
                f"expected attributes {sorted(BINARY_ATTRIBUTES)}, received {sorted(names)}"
            )
        for pos, spec in enumerate(self.attributes):
            if not 0.0 < spec.rate < 1.0:
                raise UserInputError(f"expected rate in (0, 1) for {spec.name}, got {spec.rate}")
            unknown = set(spec.effects) - set(names[:pos])
            if unknown:
                raise UserInputError(
                    f"expected effects on {spec.name} from attributes listed before it "
                    f"({names[:pos]}), received {sorted(unknown)}"
                )

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    def base_logits(self) -> dict[str, float]:
        """Base log-odds per attribute, solved so each marginal equals its `rate`."""
        return dict(self._base_logits)

    @functools.cached_property
    def _base_logits(self) -> dict[str, float]:
        return _solve_base_logits(self.attributes)

    def joint_table(self) -> dict[tuple[int, ...], float]:
        """Exact probability of every label vector, keyed in BINARY_ATTRIBUTES order."""
        base = self.base_logits()
        table = {}
        for labels in itertools.product((0, 1), repeat=len(self.attributes)):
            state = dict(zip(self.order, labels, strict=True))
            prob = 1.0
            for spec in self.attributes:
                p1 = _sigmoid(base[spec.name] + _effect(spec, state))
                prob *= p1 if state[spec.name] else 1.0 - p1
            table[tuple(state[a] for a in BINARY_ATTRIBUTES)] = prob
        return table

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "attributes": {
                a.name: {"rate": a.rate, "effects": dict(a.effects)} for a in self.attributes
            },
            "pose": {"yaw_std": self.yaw_std, "yaw_max": self.yaw_max},
        }

    @classmethod
    def from_dict(cls, data: dict) -> WorldConfig:
        try:
            specs = tuple(
                AttributeSpec(
                    name, float(v["rate"]), {k: float(e) for k, e in v.get("effects", {}).items()}
                )
                for name, v in data["attributes"].items()
            )
            pose = data.get("pose", {})
            return cls(
                name=str(data.get("name", "custom")),
                attributes=specs,
                yaw_std=float(pose.get("yaw_std", 20.0)),
                yaw_max=float(pose.get("yaw_max", 75.0)),
            )
        except (KeyError, TypeError, AttributeError) as err:
            raise UserInputError(
                f"expected a world config with [attributes.<name>] rate/effects tables, "
                f"received a file missing {err}"
            ) from err


def load_world_config(preset_or_path: str | Path = "celeba") -> WorldConfig:
    """Load a preset by name (`celeba`, `independent`, `balanced`) or a TOML file by path."""
    text = str(preset_or_path)
    if text in PRESETS:
        return _load_preset(text)
    path = Path(text)
    if not path.is_file():
        raise UserInputError(
            f"expected a preset name ({', '.join(PRESETS)}) or a TOML file, received {text!r}"
        )
    data = path.read_text()
    try:
        parsed = tomllib.loads(data)
    except tomllib.TOMLDecodeError as err:
        raise UserInputError(f"expected valid TOML in {text!r}, received: {err}") from err
    return WorldConfig.from_dict(parsed)


@functools.cache
def _load_preset(name: str) -> WorldConfig:
    # Presets are immutable and loaded in training loops: parse and solve them once.
    data = resources.files("ganedit.world").joinpath(f"presets/{name}.toml").read_text()
    return WorldConfig.from_dict(tomllib.loads(data))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _effect(spec: AttributeSpec, state: dict[str, int]) -> float:
    return sum(coef * state[parent] for parent, coef in spec.effects.items())


def _marginal(spec: AttributeSpec, base: float, names: list[str], joint: dict) -> float:
    return sum(
        p * _sigmoid(base + _effect(spec, dict(zip(names, labels, strict=True))))
        for labels, p in joint.items()
    )


def _solve_base_logits(specs: tuple[AttributeSpec, ...]) -> dict[str, float]:
    # Walk the network in order, keeping the exact joint of the attributes solved so far.
    base: dict[str, float] = {}
    joint: dict[tuple[int, ...], float] = {(): 1.0}
    names: list[str] = []
    for spec in specs:
        lo, hi = -30.0, 30.0
        for _ in range(200):  # bisection: the marginal increases with the base log-odds
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if _marginal(spec, mid, names, joint) < spec.rate else (lo, mid)
        base[spec.name] = 0.5 * (lo + hi)
        new_joint = {}
        for labels, p in joint.items():
            p1 = _sigmoid(base[spec.name] + _effect(spec, dict(zip(names, labels, strict=True))))
            new_joint[labels + (1,)] = p * p1
            new_joint[labels + (0,)] = p * (1.0 - p1)
        joint = new_joint
        names.append(spec.name)
    return base
