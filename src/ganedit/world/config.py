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

from ganedit.choices import BINARY_ATTRIBUTES
from ganedit.errors import UserInputError
from ganedit.utils.bounded import load_toml_bounded

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
            if not 0.0 < spec.rate < 1.0:  # NaN fails this too
                raise UserInputError(
                    f"expected rate in (0, 1) for {spec.name}, received {spec.rate}"
                )
            unknown = set(spec.effects) - set(names[:pos])
            if unknown:
                raise UserInputError(
                    f"expected effects on {spec.name} from attributes listed before it "
                    f"({names[:pos]}), received {sorted(unknown)}"
                )
            for parent, coef in spec.effects.items():
                if not abs(coef) <= MAX_EFFECT:  # NaN fails this too
                    raise UserInputError(
                        f"expected the effect of {parent} on {spec.name} as log-odds in "
                        f"[-{MAX_EFFECT}, {MAX_EFFECT}], received {coef}"
                    )
        if not (0.0 <= self.yaw_std <= 180.0 and 0.0 <= self.yaw_max <= 90.0):
            raise UserInputError(
                f"expected pose yaw_std in [0, 180] and yaw_max in [0, 90] degrees, received "
                f"yaw_std {self.yaw_std}, yaw_max {self.yaw_max}"
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
        """From the parsed TOML: every key known, every number a number (a string rate, a
        misspelt key or a table where a number goes is refused, not read as a default)."""
        _known_keys(data, ("name", "attributes", "pose"), "the world config")
        attributes, pose = data.get("attributes"), data.get("pose", {})
        if not isinstance(attributes, dict) or not isinstance(pose, dict):
            raise UserInputError(
                "expected a world config with [attributes.<name>] tables and a [pose] table, "
                f"received attributes {_kind(attributes)} and pose {_kind(pose)}"
            )
        specs = []
        for name, spec in attributes.items():
            where = f"[attributes.{name}]"
            if not isinstance(spec, dict):
                raise UserInputError(f"expected a table {where}, received {_kind(spec)}")
            _known_keys(spec, ("rate", "effects"), where)
            effects = spec.get("effects", {})
            if "rate" not in spec or not isinstance(effects, dict):
                raise UserInputError(
                    f"expected a rate and an effects table in {where}, received "
                    f"{sorted(spec)} with effects {_kind(effects)}"
                )
            specs.append(
                AttributeSpec(
                    name,
                    _number(spec["rate"], f"rate in {where}"),
                    {k: _number(e, f"effect of {k} in {where}") for k, e in effects.items()},
                )
            )
        _known_keys(pose, ("yaw_std", "yaw_max"), "[pose]")
        return cls(
            name=str(data.get("name", "custom")),
            attributes=tuple(specs),
            yaw_std=_number(pose.get("yaw_std", 20.0), "yaw_std in [pose]"),
            yaw_max=_number(pose.get("yaw_max", 75.0), "yaw_max in [pose]"),
        )


MAX_EFFECT = 100.0  # log-odds; beyond it an effect is not a dependency but an override


def _kind(value) -> str:
    return f"a {type(value).__name__} {value!r}"[:80]


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserInputError(f"expected a number for {what}, received {_kind(value)}")
    return float(value)


def _known_keys(table: dict, known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(known)) if isinstance(table, dict) else []
    if unknown:
        raise UserInputError(f"expected keys among {list(known)} in {where}, received {unknown}")


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
    try:
        parsed = load_toml_bounded(path.read_text(encoding="utf-8"), where=repr(text))
    except UnicodeDecodeError as err:
        raise UserInputError(f"expected valid TOML in {text!r}, received: {err}") from None
    except OSError as err:
        raise UserInputError(
            f"expected a readable TOML file at {text!r}, received {err.strerror}"
        ) from None
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
