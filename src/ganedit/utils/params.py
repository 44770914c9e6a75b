"""Declarative checks of configuration values (in the spirit of scikit-learn's
`_parameter_constraints`): each parameter names what it accepts, and one function checks a
whole mapping, so a config read from a file is refused before anything is built from it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ganedit.errors import UserInputError


@dataclass(frozen=True)
class Integer:
    """An int in [low, high] (bools are not ints here); `power_of_two` for image sizes."""

    low: int
    high: int
    power_of_two: bool = False

    def accepts(self, value) -> bool:
        ok = (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )
        return ok and (not self.power_of_two or value & (value - 1) == 0)

    def describe(self) -> str:
        kind = "a power of two" if self.power_of_two else "an integer"
        return f"{kind} in [{self.low}, {self.high}]"


@dataclass(frozen=True)
class Real:
    """A finite number in [low, high]."""

    low: float
    high: float

    def accepts(self, value) -> bool:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and self.low <= value <= self.high
        )

    def describe(self) -> str:
        return f"a finite number in [{self.low}, {self.high}]"


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
class ListOf:
    """A list of values each accepted by `item`, of length in [min_len, max_len]."""

    item: Integer | Real | Name
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
class OrNone:
    inner: Integer | Real | OneOf | ListOf

    def accepts(self, value) -> bool:
        return value is None or self.inner.accepts(value)

    def describe(self) -> str:
        return f"null or {self.inner.describe()}"


Constraint = Integer | Real | OneOf | Name | ListOf | OrNone


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
