"""Confidence filtering, contingency tables and multi-attribute balanced subsets.

`scores` everywhere is a mapping attribute name -> array [N]. Each score has a kind:
`probability` (P(attribute = 1), in [0, 1]) or `value` (any finite number: yaw in degrees, a
pose, an age). `Scores` carries the kinds a bank recorded (its predictor's `attribute_kinds`);
a plain mapping, or a bank written before kinds were recorded, follows the old rule: `yaw` is a
value, every other score a probability. Values ride along and are left out unless asked for;
labels, confidence and contingency tables take probabilities only.

A *cell* is one K-bit label tuple, in the order of `attributes`. Balancing draws the same
number of samples from every non-empty cell, so that in the subset each attribute is
statistically independent of the others (MAB, arXiv 2111.00909).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ganedit.choices import QUOTAS
from ganedit.errors import DamagedInputError, UserInputError, expect
from ganedit.models.kinds import (  # noqa: F401 (re-exported: the estimators' vocabulary)
    KINDS,
    LEGACY_VALUES,
    PROBABILITY,
    VALUE,
    check_kinds,
    legacy_kind,
)

log = logging.getLogger(__name__)

MAX_ATTRIBUTES = 16  # 2^16 cells is already far beyond any useful table

Cell = tuple[int, ...]


class Scores(Mapping):
    """Attribute name -> scores [N], with each score's kind in `kinds` (name -> kind).

    A kind that is missing or None (a bank written before kinds were recorded, a predictor
    that declared none) follows the old rule: `yaw` is a value, the rest probabilities.
    """

    def __init__(self, values: Mapping, kinds: Mapping | None = None):
        self._values = dict(values)
        given = dict(kinds or {})
        bad = {k: v for k, v in given.items() if v is not None and v not in KINDS}
        if bad:
            raise UserInputError(f"expected score kinds among {KINDS}, received {bad}")
        self.kinds = {name: given.get(name) or legacy_kind(name) for name in self._values}

    def __getitem__(self, name: str):
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Scores({self.kinds})"


def score_kinds(scores: Mapping) -> dict[str, str]:
    """name -> kind of every score: as recorded for `Scores`, by the old rule otherwise."""
    if isinstance(scores, Scores):
        return dict(scores.kinds)
    return {name: legacy_kind(name) for name in scores}


def probability_names(scores: Mapping) -> list[str]:
    """The scores of kind probability, in order (possibly none)."""
    return [name for name, kind in score_kinds(scores).items() if kind == PROBABILITY]


def check_probabilities(scores: Mapping, names: Sequence[str], use: str) -> None:
    """UserInputError naming the first of `names` that is not a probability, if any."""
    kinds = score_kinds(scores)
    for name in names:
        if kinds.get(name, PROBABILITY) != PROBABILITY:
            raise UserInputError(
                f"expected attributes holding probabilities for {use}, received {name!r} of "
                f"kind {kinds[name]}"
            )


def resolve_attributes(scores: Mapping, attributes: Sequence[str] | None = None) -> list[str]:
    """The attribute names to use: `attributes`, or every score of kind probability."""
    expect(isinstance(scores, Mapping) and len(scores) > 0, "a non-empty score mapping", scores)
    if attributes is None:
        names = probability_names(scores)
        if not names:
            raise UserInputError(
                f"expected at least one attribute of kind probability, received only values "
                f"{sorted(scores)}"
            )
    elif isinstance(attributes, str):
        names = [attributes]
    else:
        names = list(attributes)
    expect(len(names) > 0, "at least one attribute", names)
    expect(len(set(names)) == len(names), "distinct attribute names", names)
    for name in names:
        if name not in scores:
            raise UserInputError(f"expected an attribute among {sorted(scores)}, received {name!r}")
    return names


def score_matrix(
    scores: Mapping,
    attributes: Sequence[str],
    probabilities: bool = True,
    use: str = "labels and confidence",
) -> np.ndarray:
    """Stack the named scores into [N, K] float64, checking lengths; `probabilities`: also
    that each is of kind probability (else UserInputError naming `use`) and in [0, 1]."""
    columns = []
    names = resolve_attributes(scores, attributes)
    if probabilities:
        check_probabilities(scores, names, use)
    for name in names:
        col = np.asarray(scores[name], dtype=np.float64)
        # IFG stores scores as (N, 1); accept that layout too
        if col.ndim == 2 and col.shape[1] == 1:
            col = col[:, 0]
        expect(col.ndim == 1, f"scores[{name!r}] of shape [N]", col.shape)
        if not np.isfinite(col).all():
            raise DamagedInputError(f"expected finite scores[{name!r}], received NaN or inf values")
        if probabilities:
            inside = bool(((col >= 0) & (col <= 1)).all())
            expect(inside, f"probabilities in [0, 1] for {name!r}", (col.min(), col.max()))
        columns.append(col)
    lengths = {len(c) for c in columns}
    expect(len(lengths) == 1, "score arrays of one length", sorted(lengths))
    return np.stack(columns, axis=1)  # [N, K]


def check_threshold(threshold: float | None) -> None:
    if threshold is not None:
        ok = isinstance(threshold, int | float) and 0.5 < threshold < 1
        expect(ok, "a confidence threshold in (0.5, 1) or None", threshold)


def confident_mask(
    scores: Mapping, attributes: Sequence[str] | None = None, threshold: float | None = None
) -> np.ndarray:
    """bool [N]: confident (p > t or p < 1 - t) on every attribute; all True when t is None."""
    names = resolve_attributes(scores, attributes)
    probs = score_matrix(scores, names, use="a confidence filter")  # [N, K]
    check_threshold(threshold)
    if threshold is None:
        return np.ones(len(probs), dtype=bool)
    return ((probs > threshold) | (probs < 1 - threshold)).all(axis=1)


def binary_labels(scores: Mapping, attributes: Sequence[str] | None = None) -> np.ndarray:
    """uint8 [N, K]: 1 where p >= 0.5, columns in attribute order."""
    names = resolve_attributes(scores, attributes)
    return (score_matrix(scores, names, use="binary labels") >= 0.5).astype(np.uint8)


def cell_key(cell: Cell) -> str:
    """'0110' for (0, 1, 1, 0): the JSON name of a cell."""
    return "".join(str(int(b)) for b in cell)


def describe_cell(attributes: Sequence[str], cell: Cell) -> str:
    """'smile=1, gender=0': a cell named by its labels, for messages."""
    return ", ".join(f"{a}={int(v)}" for a, v in zip(attributes, cell, strict=True))


def describe_cells(attributes: Sequence[str], cells: Sequence[Cell], limit: int = 8) -> str:
    """Several cells for one message: '(smile=1, gender=0); (smile=0, gender=1)', then 'and N more'."""
    shown = "; ".join(f"({describe_cell(attributes, c)})" for c in cells[:limit])
    return shown + (f"; and {len(cells) - limit} more" if len(cells) > limit else "")


def _all_cells(k: int) -> list[Cell]:
    return [tuple((code >> (k - 1 - j)) & 1 for j in range(k)) for code in range(2**k)]


@dataclass(frozen=True, eq=False)
class ContingencyTable:
    """Rows grouped by their full label tuple. `members` holds only the non-empty cells."""

    attributes: tuple[str, ...]
    members: dict[Cell, np.ndarray]  # cell -> int64 row indices, ascending

    @classmethod
    def from_labels(
        cls, labels: np.ndarray, attributes: Sequence[str], index: np.ndarray | None = None
    ) -> ContingencyTable:
        """labels uint8 [N, K]; `index` [N] gives each row's id (default 0..N-1).

        Pass `index` when the labels are a filtered subset, so the members (and any balanced
        sample drawn from them) refer to rows of the unfiltered data.
        """
        labels = np.asarray(labels)
        attributes = tuple(attributes)
        expect(labels.ndim == 2, "labels of shape [N, K]", labels.shape)
        expect(labels.shape[1] == len(attributes), f"{len(attributes)} label columns", labels.shape)
        ok = 1 <= len(attributes) <= MAX_ATTRIBUTES
        expect(ok, f"between 1 and {MAX_ATTRIBUTES} attributes", attributes)
        expect(bool(np.isin(labels, (0, 1)).all()), "labels of 0 and 1 only", np.unique(labels))
        index = np.arange(len(labels)) if index is None else np.asarray(index, dtype=np.int64)
        expect(index.shape == (len(labels),), f"an index of shape ({len(labels)},)", index.shape)
        k = len(attributes)
        # integer code whose order is the lexicographic order of the bit tuples
        codes = labels.astype(np.int64) @ (1 << np.arange(k - 1, -1, -1, dtype=np.int64))
        order = np.argsort(codes, kind="stable")
        present, starts = np.unique(codes[order], return_index=True)
        groups = np.split(index[order], starts[1:]) if len(order) else []
        members = {
            tuple(int(b) for b in np.binary_repr(int(code), width=k)): np.sort(rows)
            for code, rows in zip(present, groups, strict=True)
        }
        return cls(attributes, members)

    @classmethod
    def from_scores(
        cls,
        scores: Mapping,
        attributes: Sequence[str] | None = None,
        threshold: float | None = None,
    ) -> ContingencyTable:
        """Table of the rows that pass the confidence filter, indexed by original row."""
        names = resolve_attributes(scores, attributes)
        check_probabilities(scores, names, "a contingency table")
        keep = confident_mask(scores, names, threshold)
        labels = binary_labels(scores, names)[keep]
        return cls.from_labels(labels, names, np.flatnonzero(keep))

    @property
    def n_samples(self) -> int:
        return sum(len(rows) for rows in self.members.values())

    @property
    def cells(self) -> list[Cell]:
        """Non-empty cells, in lexicographic order."""
        return sorted(self.members)

    @property
    def all_cells(self) -> list[Cell]:
        return _all_cells(len(self.attributes))

    @property
    def empty_cells(self) -> list[Cell]:
        return [c for c in self.all_cells if c not in self.members]

    @property
    def n_empty_cells(self) -> int:
        return 2 ** len(self.attributes) - len(self.members)

    @property
    def counts(self) -> dict[Cell, int]:
        return {c: len(self.members[c]) for c in self.cells}

    @property
    def shares(self) -> dict[Cell, float]:
        total = max(self.n_samples, 1)
        return {c: n / total for c, n in self.counts.items()}

    @property
    def rarest_cell(self) -> Cell | None:
        """The smallest non-empty cell (first in order on ties); None for an empty table."""
        counts = self.counts
        return min(counts, key=lambda c: (counts[c], c)) if counts else None

    @property
    def max_balanced_size(self) -> int:
        """Largest subset with an equal quota in every non-empty cell."""
        counts = self.counts
        return len(counts) * min(counts.values()) if counts else 0

    @property
    def max_balanced_size_all_cells(self) -> int:
        """Same, but 0 unless all 2^K cells are populated."""
        return 0 if self.n_empty_cells else self.max_balanced_size

    def labels_of(self, cell: Cell) -> dict[str, int]:
        return dict(zip(self.attributes, (int(b) for b in cell), strict=True))

    def to_dict(self) -> dict:
        counts, shares = self.counts, self.shares
        rarest = self.rarest_cell
        return {
            "attributes": list(self.attributes),
            "n_samples": self.n_samples,
            "n_cells": 2 ** len(self.attributes),
            "n_nonempty_cells": len(counts),
            "n_empty_cells": self.n_empty_cells,
            "rarest_cell": None
            if rarest is None
            else {
                "key": cell_key(rarest),
                "labels": self.labels_of(rarest),
                "count": counts[rarest],
            },
            "max_balanced_size": self.max_balanced_size,
            "max_balanced_size_all_cells": self.max_balanced_size_all_cells,
            "cells": [
                {
                    "key": cell_key(c),
                    "labels": self.labels_of(c),
                    "count": counts.get(c, 0),
                    "share": shares.get(c, 0.0),
                }
                for c in self.all_cells
            ],
        }


def _keyed(counts: dict[Cell, int]) -> dict[str, int]:
    return {cell_key(c): int(v) for c, v in counts.items()}


@dataclass
class BalancedSample:
    """A balanced subset: row `indices` plus how far each cell fell short of its share."""

    indices: np.ndarray  # int64 [n_drawn]
    per_cell: dict[Cell, int]
    requested_per_cell: dict[Cell, int]
    shortfalls: dict[Cell, int]  # only cells that gave fewer rows than requested
    quota: str
    n_requested: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "quota": self.quota,
            "n_requested": self.n_requested,
            "n_drawn": len(self.indices),
            "per_cell": _keyed(self.per_cell),
            "requested_per_cell": _keyed(self.requested_per_cell),
            "shortfalls": _keyed(self.shortfalls),
            "warnings": list(self.warnings),
        }


def balanced_subset(
    table: ContingencyTable,
    n: int,
    quota: str = "random",
    random_state: int | None = 0,
) -> BalancedSample:
    """Draw about `n` rows spread evenly over the non-empty cells of `table`.

    quota="random": MAB's sampler. Each of n draws picks a not-yet-exhausted cell uniformly,
    then a random unused member. Exhausted cells drop out and are reported as shortfalls
    against the expected n/#cells; when every cell is exhausted the draw stops early.
    quota="exact": min(n // #cells, |cell|) from every cell, the remainder one each to random
    cells that have room; nothing is redistributed, shortfalls are reported.
    """
    ok = isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1
    expect(ok, "a sample size n >= 1", n)
    expect(quota in QUOTAS, f"a quota among {QUOTAS}", quota)
    expect(len(table.members) > 0, "a contingency table with at least one sample", "an empty one")
    rng = np.random.default_rng(random_state)
    cells = table.cells
    sizes = np.array([len(table.members[c]) for c in cells], dtype=np.int64)
    n = int(n)
    if quota == "random":
        sequence, requested = _random_draws(sizes, n, rng), _even_share(n, len(cells))
    else:
        sequence, requested = _exact_draws(sizes, n, rng)
    drawn = np.bincount(sequence, minlength=len(cells))
    indices = _pick_members(table, cells, sequence, drawn, rng)
    return _report(table, cells, indices, drawn, requested, sizes, quota, n)


def _even_share(n: int, m: int) -> np.ndarray:
    return np.full(m, round(n / m), dtype=np.int64)


def _random_draws(sizes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Cell id of every accepted draw, in draw order.

    Drawing uniformly over the cells active at the start of a round and discarding draws
    that land on a cell exhausted during the round is the same process as drawing uniformly
    over the still-active cells each time, so a whole round is one vectorised pass.
    """
    room = sizes.copy()
    accepted: list[np.ndarray] = []
    remaining = n
    while remaining > 0 and room.any():
        active = np.flatnonzero(room)
        choice = active[rng.integers(len(active), size=2 * remaining + 16)]
        keep = _occurrence_rank(choice, len(sizes)) < room[choice]
        taken = choice[np.flatnonzero(keep)[:remaining]]
        room -= np.bincount(taken, minlength=len(sizes))
        remaining -= len(taken)
        accepted.append(taken)
    return np.concatenate(accepted) if accepted else np.zeros(0, dtype=np.int64)


def _occurrence_rank(values: np.ndarray, n_values: int) -> np.ndarray:
    """For every entry, how many earlier entries hold the same value."""
    order = np.argsort(values, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(values, minlength=n_values))[:-1]])
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values)) - starts[values[order]]
    return rank


def _exact_draws(
    sizes: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    m = len(sizes)
    requested = np.full(m, n // m, dtype=np.int64)
    with_room = np.flatnonzero(sizes > n // m)
    extra = rng.permutation(with_room)[: n % m]
    requested[extra] += 1
    take = np.minimum(requested, sizes)
    sequence = rng.permutation(np.repeat(np.arange(m), take))
    return sequence, requested


def _pick_members(
    table: ContingencyTable,
    cells: list[Cell],
    sequence: np.ndarray,
    drawn: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Row index for every draw: the j-th draw of a cell takes its j-th random member."""
    picks = [
        rng.choice(table.members[c], size=int(k), replace=False) if k else np.zeros(0, np.int64)
        for c, k in zip(cells, drawn, strict=True)
    ]
    flat = np.concatenate(picks).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(drawn)[:-1]])
    return flat[offsets[sequence] + _occurrence_rank(sequence, len(cells))]


def _report(
    table: ContingencyTable,
    cells: list[Cell],
    indices: np.ndarray,
    drawn: np.ndarray,
    requested: np.ndarray,
    sizes: np.ndarray,
    quota: str,
    n: int,
) -> BalancedSample:
    warnings = []
    shortfalls = {}
    for i, cell in enumerate(cells):
        # a random-quota cell that still has members is not short, only noisy
        short = requested[i] - drawn[i]
        if short > 0 and drawn[i] == sizes[i]:
            shortfalls[cell] = int(short)
            warnings.append(
                f"cell {cell_key(cell)} ({describe_cell(table.attributes, cell)}) has only "
                f"{sizes[i]} samples, {short} short of its share {requested[i]}"
            )
    if len(indices) < n:
        warnings.append(f"drew {len(indices)} of the {n} samples requested: the cells ran out")
    for line in warnings:
        log.warning(line)
    return BalancedSample(
        indices=indices,
        per_cell={c: int(k) for c, k in zip(cells, drawn, strict=True)},
        requested_per_cell={c: int(k) for c, k in zip(cells, requested, strict=True)},
        shortfalls=shortfalls,
        quota=quota,
        n_requested=n,
        warnings=warnings,
    )
