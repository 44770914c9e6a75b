"""Declarative checks of configuration values (in the spirit of scikit-learn's
`_parameter_constraints`): each parameter names what it accepts, and one function checks a
whole mapping, so a config read from a file is refused before anything is built from it."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ganedit.errors import UserInputError


def _integral(value) -> bool:
    """An int or a numpy integer; bools are not integers here."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Integer:
    """An int in [low, high] (bools are not ints here); `power_of_two` for image sizes."""

    low: int
    high: int
    power_of_two: bool = False

    def accepts(self, value) -> bool:
        ok = _integral(value) and self.low <= value <= self.high
        return ok and (not self.power_of_two or value & (value - 1) == 0)

    def describe(self) -> str:
        kind = "a power of two" if self.power_of_two else "an integer"
        return f"{kind} in [{self.low}, {self.high}]"


@dataclass(frozen=True)
class Real:
    """A finite number in [low, high]; `open_low` / `open_high` leave a bound out."""

    low: float
    high: float
    open_low: bool = False
    open_high: bool = False

    def accepts(self, value) -> bool:
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            return False
        above = self.low < value if self.open_low else self.low <= value
        below = value < self.high if self.open_high else value <= self.high
        return math.isfinite(value) and above and below

    def describe(self) -> str:
        left = "(" if self.open_low else "["
        right = ")" if self.open_high or math.isinf(self.high) else "]"
        return f"a finite number in {left}{self.low}, {self.high}{right}"


@dataclass(frozen=True)
class OneOf:
    options: tuple

    def accepts(self, value) -> bool:
        return any(value == o and type(value) is type(o) for o in self.options)

    def describe(self) -> str:
        return f"one of {list(self.options)}"


@dataclass(frozen=True)
class Name:
    """A short name: letters, digits, '_', '-' and '.', starting with a letter."""

    max_len: int = 64

    def accepts(self, value) -> bool:
        return (
            isinstance(value, str)
            and 0 < len(value) <= self.max_len
            and value[0].isascii()
            and value[0].isalpha()
            and all(c.isascii() and (c.isalnum() or c in "_-.") for c in value)
        )

    def describe(self) -> str:
        return f"a name of at most {self.max_len} letters, digits, '_', '-' or '.'"


@dataclass(frozen=True)
class Text:
    """Any non-empty string (names chosen elsewhere, such as an attribute's)."""

    def accepts(self, value) -> bool:
        return isinstance(value, str) and len(value) > 0

    def describe(self) -> str:
        return "a non-empty string"


@dataclass(frozen=True)
class InstanceOf:
    """An instance of `kinds` (a type or a tuple of types), described as `what`."""

    kinds: type | tuple[type, ...]
    what: str

    def accepts(self, value) -> bool:
        return isinstance(value, self.kinds)

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True)
class ListOf:
    """A list of values each accepted by `item`, of length in [min_len, max_len]."""

    item: Integer | Real | Name | Text
    min_len: int
    max_len: int
    unique: bool = False

    def accepts(self, value) -> bool:
        return (
            isinstance(value, Sequence)
            and not isinstance(value, str)
            and self.min_len <= len(value) <= self.max_len
            and all(self.item.accepts(v) for v in value)
            and (not self.unique or len(set(value)) == len(value))
        )

    def describe(self) -> str:
        each = f"each {self.item.describe()}" + (", all different" if self.unique else "")
        return f"a list of {self.min_len} to {self.max_len} values, {each}"


@dataclass(frozen=True)
class AnyOf:
    """A value that one of `options` accepts."""

    options: tuple

    def accepts(self, value) -> bool:
        return any(option.accepts(value) for option in self.options)

    def describe(self) -> str:
        return " or ".join(option.describe() for option in self.options)


@dataclass(frozen=True)
class OrNone:
    inner: Integer | Real | OneOf | ListOf | AnyOf | Text

    def accepts(self, value) -> bool:
        return value is None or self.inner.accepts(value)

    def describe(self) -> str:
        return f"null or {self.inner.describe()}"


Constraint = Integer | Real | OneOf | Name | Text | InstanceOf | ListOf | AnyOf | OrNone


def check_params(values: Mapping, constraints: Mapping[str, Constraint], owner: str) -> None:
    """UserInputError for an unknown key or a value its constraint does not accept."""
    if not isinstance(values, Mapping):
        raise UserInputError(f"expected a mapping of {owner} parameters, received {values!r}")
    unknown = sorted(set(values) - set(constraints))
    if unknown:
        raise UserInputError(
            f"expected {owner} parameters among {sorted(constraints)}, received unknown {unknown}"
        )
    for name, value in values.items():
        if not constraints[name].accepts(value):
            raise UserInputError(
                f"expected {owner} parameter {name!r} as {constraints[name].describe()}, "
                f"received {value!r}"
            )


def check_fields(config, constraints: Mapping[str, Constraint], owner: str) -> None:
    """`check_params` on the attributes of `config` (a config dataclass) that `constraints` names."""
    check_params({k: getattr(config, k) for k in constraints}, constraints, owner)
