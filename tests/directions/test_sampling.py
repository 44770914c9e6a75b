import itertools

import numpy as np
import pytest

from ganedit.directions.sampling import (
    ContingencyTable,
    balanced_subset,
    binary_labels,
    confident_mask,
    describe_cell,
    describe_cells,
    resolve_attributes,
)
from ganedit.errors import DamagedInputError, UserInputError

ATTRS = ["smile", "gender", "glasses"]


def _correlated_labels(n: int, seed: int = 0) -> np.ndarray:
    """uint8 [n, 3]: gender copies smile 80% of the time, glasses rare (10%)."""
    rng = np.random.default_rng(seed)
    smile = rng.random(n) < 0.5
    gender = np.where(rng.random(n) < 0.8, smile, ~smile)
    glasses = rng.random(n) < 0.1
    return np.stack([smile, gender, glasses], axis=1).astype(np.uint8)


def test_scores_helpers_skip_yaw_and_threshold_on_every_attribute():
    scores = {
        "smile": np.array([0.95, 0.05, 0.6, 0.99]),
        "age": np.array([0.97, 0.92, 0.99, 0.02]),
        "yaw": np.array([30.0, -10.0, 0.0, 80.0]),
    }
    assert resolve_attributes(scores) == ["smile", "age"]
    np.testing.assert_array_equal(confident_mask(scores, threshold=0.9), [True, True, False, True])
    assert confident_mask(scores).all()
    np.testing.assert_array_equal(binary_labels(scores), [[1, 1], [0, 1], [1, 1], [1, 0]])
    assert binary_labels(scores).dtype == np.uint8
    with pytest.raises(UserInputError, match="threshold"):
        confident_mask(scores, threshold=0.4)
    with pytest.raises(UserInputError, match="expected an attribute among"):
        binary_labels(scores, ["smile", "beard"])
    with pytest.raises(UserInputError, match="probabilities"):
        binary_labels(scores, ["yaw"])


def test_contingency_counts_match_brute_force():
    labels = _correlated_labels(3000)
    table = ContingencyTable.from_labels(labels, ATTRS)
    for cell in itertools.product((0, 1), repeat=3):
        rows = np.flatnonzero((labels == cell).all(axis=1))
        assert table.counts.get(cell, 0) == len(rows)
        if len(rows):
            np.testing.assert_array_equal(table.members[cell], rows)
    assert table.n_samples == 3000
    assert sum(table.shares.values()) == pytest.approx(1.0)
    smallest = min(table.counts.values())
    assert table.counts[table.rarest_cell] == smallest
    assert table.max_balanced_size == 8 * smallest
    assert table.max_balanced_size_all_cells == 8 * smallest


def test_contingency_empty_cells_and_original_row_ids():
    labels = np.array([[0, 0], [0, 0], [1, 1], [1, 1], [1, 1]], dtype=np.uint8)
    table = ContingencyTable.from_labels(labels, ["a", "b"], index=np.array([10, 11, 20, 21, 22]))
    assert table.empty_cells == [(0, 1), (1, 0)]
    assert table.n_empty_cells == 2
    assert table.rarest_cell == (0, 0)
    assert table.max_balanced_size == 4
    assert table.max_balanced_size_all_cells == 0
    np.testing.assert_array_equal(table.members[(1, 1)], [20, 21, 22])
    report = table.to_dict()
    assert [c["count"] for c in report["cells"]] == [2, 0, 0, 3]
    assert report["rarest_cell"] == {"key": "00", "labels": {"a": 0, "b": 0}, "count": 2}


def test_from_scores_keeps_confident_rows_by_original_index():
    scores = {"a": np.array([0.99, 0.5, 0.01, 0.95]), "b": np.array([0.99, 0.99, 0.98, 0.03])}
    table = ContingencyTable.from_scores(scores, threshold=0.9)
    assert table.counts == {(0, 1): 1, (1, 0): 1, (1, 1): 1}
    np.testing.assert_array_equal(table.members[(1, 0)], [3])


def test_exact_quota_takes_min_of_quota_and_cell_size():
    table = ContingencyTable.from_labels(_correlated_labels(3000), ATTRS)
    q = 60
    sample = balanced_subset(table, 8 * q, quota="exact", random_state=1)
    for cell, size in table.counts.items():
        assert sample.per_cell[cell] == min(q, size)
        assert sample.requested_per_cell[cell] == q
        assert sample.shortfalls.get(cell, 0) == max(q - size, 0)
    # drawn rows come from the right cells, without repeats
    assert len(np.unique(sample.indices)) == len(sample.indices) == sum(sample.per_cell.values())
    for cell in table.cells:
        assert np.isin(table.members[cell], sample.indices).sum() == sample.per_cell[cell]


def test_exact_quota_remainder_goes_to_cells_with_room():
    table = ContingencyTable.from_labels(_correlated_labels(3000), ATTRS)
    sample = balanced_subset(table, 8 * 10 + 3, quota="exact", random_state=0)
    assert sorted(sample.per_cell.values()) == [10] * 5 + [11] * 3
    assert sample.shortfalls == {} and sample.warnings == []


def test_random_quota_is_roughly_even_with_plenty_of_samples():
    table = ContingencyTable.from_labels(_correlated_labels(8000), ATTRS)
    assert min(table.counts.values()) > 70
    sample = balanced_subset(table, 400, quota="random", random_state=0)
    counts = np.array(list(sample.per_cell.values()))
    assert counts.sum() == 400 and len(np.unique(sample.indices)) == 400
    assert counts.min() >= 25 and counts.max() <= 75  # expectation 50, multinomial noise
    assert sample.shortfalls == {}


def test_random_quota_reports_small_cells_and_spreads_their_draws():
    table = ContingencyTable.from_labels(_correlated_labels(3000), ATTRS)
    rare = table.rarest_cell
    n = 8 * 2 * table.counts[rare]  # the rarest cell cannot give its expected share
    sample = balanced_subset(table, n, quota="random", random_state=0)
    assert sample.per_cell[rare] == table.counts[rare]
    assert sample.shortfalls[rare] == round(n / 8) - table.counts[rare]
    assert any(rare_key in w for w in sample.warnings for rare_key in ["".join(map(str, rare))])
    assert len(sample.indices) == n  # MAB's semantics: other cells absorb the draws


@pytest.mark.parametrize("quota", ["random", "exact"])
def test_n_beyond_the_pool_stops_early_without_crashing(quota):
    table = ContingencyTable.from_labels(_correlated_labels(200), ATTRS)
    sample = balanced_subset(table, 10_000, quota=quota, random_state=0)
    if quota == "random":
        assert sorted(sample.indices) == list(range(200))
    assert any("ran out" in w for w in sample.warnings)
    assert sample.to_dict()["n_drawn"] == len(sample.indices)


@pytest.mark.parametrize("quota", ["random", "exact"])
def test_same_seed_same_indices(quota):
    table = ContingencyTable.from_labels(_correlated_labels(2000), ATTRS)
    a = balanced_subset(table, 300, quota=quota, random_state=7)
    b = balanced_subset(table, 300, quota=quota, random_state=7)
    c = balanced_subset(table, 300, quota=quota, random_state=8)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)
    assert a.indices.dtype == np.int64


def test_random_quota_matches_sequential_reference_in_distribution():
    """Vectorised draws against a plain loop of MAB's sampler: same mean per-cell counts."""
    sizes = [5, 40, 200]
    labels = np.repeat(np.array([[0, 0], [0, 1], [1, 0]], dtype=np.uint8), sizes, axis=0)
    table = ContingencyTable.from_labels(labels, ["a", "b"])
    n, trials = 120, 300
    ours = np.mean(
        [list(balanced_subset(table, n, "random", s).per_cell.values()) for s in range(trials)],
        axis=0,
    )
    rng = np.random.default_rng(123)
    loop = np.zeros(3)
    for _ in range(trials):
        room = np.array(sizes)
        for _ in range(n):
            cell = rng.choice(np.flatnonzero(room))
            room[cell] -= 1
        loop += np.array(sizes) - room
    np.testing.assert_allclose(ours, loop / trials, atol=1.5)


def test_bad_requests_raise_user_input_errors():
    table = ContingencyTable.from_labels(_correlated_labels(100), ATTRS)
    with pytest.raises(UserInputError, match="quota"):
        balanced_subset(table, 10, quota="uniform")
    with pytest.raises(UserInputError, match="n >= 1"):
        balanced_subset(table, 0)
    with pytest.raises(UserInputError, match="label columns"):
        ContingencyTable.from_labels(np.zeros((4, 2), np.uint8), ATTRS)


def test_non_finite_scores_are_damaged_input():
    scores = {"smile": np.array([0.9, np.nan, 0.1]), "age": np.array([0.2, 0.3, np.inf])}
    with pytest.raises(DamagedInputError, match="finite scores\\['smile'\\]"):
        confident_mask(scores, threshold=0.9)
    with pytest.raises(DamagedInputError, match="finite scores\\['age'\\]"):
        binary_labels(scores, ["age"])
    with pytest.raises(UserInputError, match="probabilities"):  # a range mistake, not damage
        binary_labels({"smile": np.array([0.5, 1.5])})


def test_cells_are_named_by_their_labels_in_messages():
    assert describe_cell(ATTRS, (1, 0, 1)) == "smile=1, gender=0, glasses=1"
    cells = [(0, 0, 1), (1, 1, 1)]
    assert describe_cells(ATTRS, cells) == (
        "(smile=0, gender=0, glasses=1); (smile=1, gender=1, glasses=1)"
    )
    many = list(itertools.product((0, 1), repeat=3))
    assert describe_cells(ATTRS, many, limit=2).endswith("; and 6 more")
    labels = np.array([[0, 0, 0], [1, 1, 1]], dtype=np.uint8)
    table = ContingencyTable.from_labels(labels, ATTRS)
    assert len(table.empty_cells) == 6 and table.to_dict()["n_empty_cells"] == 6
