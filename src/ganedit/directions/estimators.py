"""Linear attribute directions in a latent space, with the scikit-learn estimator contract.

Every estimator takes latents [N, D] (Z or W) or [N, L, D] (W+, flattened to [N, L*D] for
fitting) and a score mapping (see `sampling`), and learns:

* `direction_`: unit vector, shape [D] or [L, D], pointing towards attribute = 1;
* `intercept_`: offset so that `flat @ direction_.ravel() + intercept_` is the decision
  function; for the closed-form methods it places the hyperplane halfway between the two
  class centroids of the rows used;
* `n_samples_`, `n_features_in_`, `accuracy_` (sign of the decision vs. the label p >= 0.5,
  on a held-out split where the method has one, else on the rows used);
* `sample_indices_` / `sample_labels_`: the rows the direction was computed from.

Parameters follow scikit-learn's contract: the constructor stores each argument unchanged
(so `get_params`, `set_params` and `sklearn.base.clone` work), and each class declares what
every parameter accepts once, in `_param_checks` (ganedit.utils.params), checked when `fit`
starts. `METHODS` is the table of methods: `ganedit boundary`'s per-method options and the
direction study's runs are read from it (a new method is one class and one row there, and
its name in ganedit.choices).

Errors: parameter mistakes and malformed input raise `UserInputError` (non-finite latents or
scores: `DamagedInputError`); data that cannot serve the method (one class absent, no
confident sample, no usable cell, a singular design) raises `FitError`.

Cost at scale: the latents are read block by block and never copied whole, nor converted to
float64 as a whole. Sums of rows are one matrix product per block in the latents' precision
(float32 GEMM for float32 codes), accumulated across blocks in float64; projections onto a
direction cast each small block to float64 first, so they equal `decision_function`'s.
These skinny products run on one BLAS thread: on two cores that was as fast as two threads
when idle, and OpenBLAS's two-thread split of a [k, b] @ [b, F] product was up to 10x slower.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ganedit.choices import QUOTAS, SOLVERS, SPLIT_MODES
from ganedit.directions.sampling import (
    VALUE,
    ContingencyTable,
    balanced_subset,
    cell_key,
    describe_cell,
    describe_cells,
    probability_names,
    resolve_attributes,
    score_kinds,
    score_matrix,
)
from ganedit.errors import DamagedInputError, FitError, UserInputError, expect
from ganedit.utils.params import (
    AnyOf,
    Constraint,
    InstanceOf,
    Integer,
    ListOf,
    OneOf,
    OrNone,
    Real,
    Text,
    check_params,
)

log = logging.getLogger(__name__)

WEIGHTINGS = ("equal", "inverse_variance")
_BLOCK_ELEMENTS = 1 << 22  # values per block of rows in products (16 MB as float32)
_CAST_ELEMENTS = 1 << 19  # values per block cast to float64 for a projection (stays in cache)
_ONE_HOT_GROUPS = 64  # up to this many groups, group sums are one product per block
_DEPENDENT_TOL = 1e-6  # smallest/largest singular value of the conditions below this: dependent

# Parameter checks most estimators share.
_ATTRIBUTE = Text()
_ATTRIBUTES = OrNone(AnyOf((Text(), ListOf(Text(), 1, 1_000_000))))
_THRESHOLD = OrNone(Real(0.5, 1.0, open_low=True, open_high=True))
_SEED = OrNone(Integer(0, 2**32 - 1))  # what numpy's RandomState and scikit-learn accept
_POSITIVE = Real(0.0, math.inf, open_low=True)


# ---------------------------------------------------------------- shared helpers


def _as_latents(latents) -> tuple[np.ndarray, tuple[int, ...]]:
    """View latents as [N, F] and return the trailing shape ([D] or [L, D])."""
    x = np.asarray(latents)
    expect(x.ndim in (2, 3), "latents of shape [N, D] or [N, L, D]", x.shape)
    expect(np.issubdtype(x.dtype, np.floating), "floating-point latents", x.dtype)
    expect(len(x) >= 2 and x[0].size >= 1, "at least 2 non-empty latent codes", x.shape)
    flat = x.reshape(len(x), -1)  # [N, F]
    for _, _, block in _row_blocks(flat, None):
        if not np.isfinite(block).all():
            raise DamagedInputError("expected finite latents, received NaN or inf values")
    return flat, tuple(x.shape[1:])


def _check_rows(flat: np.ndarray, probs: np.ndarray) -> None:
    expect(len(flat) == len(probs), f"{len(flat)} scores, one per latent", len(probs))


def _one_blas_thread():
    return threadpool_limits(limits=1, user_api="blas")


def _run_start(rows: np.ndarray | None) -> int | None:
    """First row when `rows` are consecutive (None: all rows), so blocks can be slices."""
    if rows is None:
        return 0
    if len(rows) == 0 or int(rows[-1]) - int(rows[0]) != len(rows) - 1:
        return None
    return int(rows[0]) if bool(np.all(np.diff(rows) == 1)) else None


def _row_blocks(flat: np.ndarray, rows: np.ndarray | None, elements: int = _BLOCK_ELEMENTS):
    """(start, stop, flat[rows[start:stop]]) block by block; rows None: every row.

    Consecutive rows are sliced (no copy); scattered rows are gathered one block at a time.
    """
    n = len(flat) if rows is None else len(rows)
    step = max(1, elements // max(flat.shape[1], 1))
    first = _run_start(rows)
    for start in range(0, n, step):
        stop = min(start + step, n)
        if first is not None:
            yield start, stop, flat[first + start : first + stop]
        else:
            yield start, stop, flat[rows[start:stop]]


def _work_dtype(flat: np.ndarray) -> type:
    return np.float64 if flat.dtype == np.float64 else np.float32


def _left_products(
    flat: np.ndarray,
    rows: np.ndarray | None,
    left_of: Callable[[int, int], np.ndarray],
    n_out: int,
) -> np.ndarray:
    """sum_i left[:, i] * flat[rows[i]]: [n_out, F] float64.

    `left_of(start, stop)` gives the coefficients [n_out, stop - start] of rows[start:stop].
    One product per block in the latents' precision, blocks summed in float64.
    """
    dtype = _work_dtype(flat)
    out = np.zeros((n_out, flat.shape[1]))
    with _one_blas_thread():
        for start, stop, block in _row_blocks(flat, rows):
            left = np.ascontiguousarray(left_of(start, stop), dtype=dtype)
            out += left @ block.astype(dtype, copy=False)
    return out


def _group_sums(
    flat: np.ndarray, rows: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of flat[rows[i]] over the i with groups[i] == g, [n_groups, F], and the counts.

    Group ids are 0..n_groups-1 (some may be absent). Up to _ONE_HOT_GROUPS groups: one
    product per block with the [G, b] one-hot matrix; more: the rows sorted by group, so that
    each block's one-hot spans only the groups it meets.
    """
    groups = np.asarray(groups, dtype=np.intp)
    counts = np.bincount(groups, minlength=n_groups)
    if n_groups <= _ONE_HOT_GROUPS:
        ids = np.arange(n_groups)[:, None]
        return _left_products(flat, rows, lambda a, b: groups[a:b] == ids, n_groups), counts
    order = np.argsort(groups, kind="stable")
    ordered, sorted_groups = rows[order], groups[order]
    dtype = _work_dtype(flat)
    sums = np.zeros((n_groups, flat.shape[1]))
    with _one_blas_thread():
        for start, stop, block in _row_blocks(flat, ordered):
            local = sorted_groups[start:stop]
            lo, hi = int(local[0]), int(local[-1])
            left = (local == np.arange(lo, hi + 1)[:, None]).astype(dtype)
            sums[lo : hi + 1] += left @ block.astype(dtype, copy=False)
    return sums, counts


def _class_means(flat: np.ndarray, rows: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """(mean of the rows labelled 1, mean of the rows labelled 0), float64 [F] each."""
    sums, counts = _group_sums(flat, rows, y, 2)
    return sums[1] / counts[1], sums[0] / counts[0]


def _project_rows(flat: np.ndarray, rows: np.ndarray | None, vector: np.ndarray) -> np.ndarray:
    """flat[rows] @ vector in float64, [n]; rows None: every row.

    Each block is cast to float64 in a small buffer, then multiplied: the float64 product of
    the stored values, without a float64 copy of the rows. More than half of the rows,
    scattered: every row is projected (slices, no gather) and the projections indexed.
    """
    vector = np.asarray(vector, dtype=np.float64)
    if rows is not None and len(rows) > len(flat) // 2 and _run_start(rows) is None:
        return _project_rows(flat, None, vector)[rows]
    n = len(flat) if rows is None else len(rows)
    out = np.empty(n)
    buffer = np.empty((min(n, max(1, _CAST_ELEMENTS // flat.shape[1])), flat.shape[1]))
    with _one_blas_thread():
        for start, stop, block in _row_blocks(flat, rows, _CAST_ELEMENTS):
            if block.dtype != np.float64:
                buffer[: stop - start] = block
                block = buffer[: stop - start]
            np.matmul(block, vector, out=out[start:stop])
    return out


def _unit(vector: np.ndarray, what: str, error: type[Exception] = UserInputError) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if not norm > 0 or not math.isfinite(norm):
        raise error(f"expected a non-zero {what}, received norm {norm}")
    return vector / norm


def _require_both_classes(y: np.ndarray, attribute: str, where: str) -> None:
    n1 = int(y.sum())
    if n1 == 0 or n1 == len(y):
        raise FitError(
            f"expected both classes of {attribute!r} among the {where}, "
            f"received {n1} positive and {len(y) - n1} negative"
        )


def _confident_probabilities(
    scores: Mapping,
    attribute: str,
    attributes: Sequence[str] | None,
    threshold: float | None,
    method: str,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Attribute names, probabilities [N, K] and the confident row indices.

    Methods that label rows (p >= 0.5) take probabilities only: a target or attribute of kind
    value is refused in one line naming its kind."""
    kind = score_kinds(scores).get(attribute)
    if kind == VALUE:
        raise UserInputError(
            f"expected a target holding probabilities for method {method} (interfacegan and "
            f"regression take values), received {attribute!r} of kind value"
        )
    names = resolve_attributes(scores, attributes)
    if attribute not in names:
        raise UserInputError(
            f"expected the target among attributes {names}, received {attribute!r}"
        )
    probs = score_matrix(scores, names, use=f"method {method}")  # [N, K]
    if threshold is None:
        rows = np.arange(len(probs))
    else:
        rows = np.flatnonzero(((probs > threshold) | (probs < 1 - threshold)).all(axis=1))
    if len(rows) == 0:
        raise FitError(
            f"expected samples confident on all of {names} at threshold {threshold}, received none"
        )
    return names, probs, rows


def _number(value) -> float | int | None:
    """JSON-friendly scalar: NaN becomes None."""
    if value is None:
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    value = float(value)
    return None if math.isnan(value) else value


# ---------------------------------------------------------------- base class


class DirectionEstimator(BaseEstimator):
    """Common fitted state and the decision function; subclasses implement `_fit`.

    A subclass's `__init__` only stores its arguments; `_param_checks` names what each of
    them accepts (every constructor parameter, no other), checked by `fit` before `_fit`.
    """

    method: ClassVar[str] = ""
    _param_checks: ClassVar[dict[str, Constraint]] = {}
    # The direction study's runs of this method: label -> options that run fixes. The study
    # gives its subset size `n` and confidence `threshold` to every run whose method takes
    # them and does not fix them. No entry: the study does not run the method.
    study_runs: ClassVar[dict[str, dict]] = {}

    def fit(self, latents, scores: Mapping) -> DirectionEstimator:
        """Learn the direction from latents [N, D] or [N, L, D] and a score mapping; self."""
        check_params(self.get_params(deep=False), self._param_checks, self.method)
        return self._fit(latents, scores)

    def _fit(self, latents, scores: Mapping) -> DirectionEstimator:
        raise NotImplementedError

    def _confident(self, latents, scores: Mapping):
        """The labelling methods' inputs: latents [N, F] and their trailing shape, attribute
        names, probabilities [N, K] and the confident rows."""
        flat, shape = _as_latents(latents)
        names, probs, rows = _confident_probabilities(
            scores, self.attribute, self.attributes, self.threshold, self.method
        )
        _check_rows(flat, probs)
        return flat, shape, names, probs, rows

    def decision_function(self, latents) -> np.ndarray:
        """Signed position along the direction, relative to the hyperplane. [N]"""
        check_is_fitted(self, "direction_")
        x = np.asarray(latents)
        expect(x.ndim >= 2, "latents of shape [N, D] or [N, L, D]", x.shape)
        flat = x.reshape(len(x), -1)
        expect(flat.shape[1] == self.n_features_in_, f"{self.n_features_in_} features", x.shape)
        return _project_rows(flat, None, self.direction_.ravel()) + self.intercept_

    def _finish(
        self,
        flat: np.ndarray,
        shape: tuple[int, ...],
        vector: np.ndarray,
        rows: np.ndarray,
        y: np.ndarray,
        intercept: float | None = None,
        class_means: tuple[np.ndarray, np.ndarray] | None = None,
        project_all: bool = False,
    ) -> np.ndarray | None:
        """Store the unit direction; midpoint intercept unless given; accuracy on `rows`.

        The midpoint uses `class_means` (mean of class 1, of class 0 over `rows`) when the
        caller has them. project_all: project every row once and return the projections, for
        callers that score other rows too.
        """
        direction = _unit(
            np.asarray(vector, dtype=np.float64), f"{self.method} direction", FitError
        )
        self.direction_ = direction.reshape(shape)
        self.n_features_in_ = flat.shape[1]
        self.latent_shape_ = shape
        if intercept is None:
            mu1, mu0 = class_means if class_means is not None else _class_means(flat, rows, y)
            intercept = -float((mu1 + mu0) / 2 @ direction)
        self.intercept_ = float(intercept)
        self.sample_indices_ = np.asarray(rows, dtype=np.int64)
        self.sample_labels_ = np.asarray(y, dtype=np.uint8)
        self.n_samples_ = len(rows)
        projections = _project_rows(flat, None, direction) if project_all else None
        self.accuracy_ = self._accuracy(flat, rows, y, projections)
        return projections

    def _accuracy(
        self,
        flat: np.ndarray | None,
        rows: np.ndarray,
        y: np.ndarray,
        projections: np.ndarray | None = None,
    ) -> float:
        """Share of `rows` on the side of their label; `projections`: every row's, if known."""
        if len(rows) == 0:
            return math.nan
        if projections is None:
            projections = _project_rows(flat, rows, self.direction_.ravel())
        else:
            projections = projections[rows]
        return float(((projections + self.intercept_ > 0) == (y == 1)).mean())

    def summary(self) -> dict:
        """What the fit did, as JSON-friendly values (for the boundary sidecar)."""
        check_is_fitted(self, "direction_")
        return {
            "method": self.method,
            "attribute": self.attribute,
            "n_samples": int(self.n_samples_),
            "n_features": int(self.n_features_in_),
            "latent_shape": list(self.latent_shape_),
            "accuracy": _number(self.accuracy_),
            "intercept": _number(self.intercept_),
            **self._summary_extra(),
        }

    def _summary_extra(self) -> dict:
        return {}


# ---------------------------------------------------------------- InterFaceGAN


def _score_column(values) -> np.ndarray:
    """One attribute's scores as given ([N] or the reference's [N, 1]), dtype kept."""
    column = np.asarray(values)
    return column[:, 0] if column.ndim == 2 else column


class InterFaceGAN(DirectionEstimator):
    """Linear SVM between the top-k and bottom-k samples by target score (IFG, b.2).

    k = int(N * ratio) for 0 < ratio <= 1, else int(ratio); at most N // 2. Each class is
    shuffled and split `split` / 1 - split into train / validation.
    split_mode="ganedit": a stable descending sort of the scores, and both shuffles drawn
    from `np.random.default_rng(random_state)`. split_mode="reference": genforce/interfacegan
    `train_boundary`'s own selection and split, row for row: an ascending `np.argsort` of the
    scores as given (default kind, their dtype), reversed, then the positives' and the
    negatives' index shuffles from `np.random.RandomState(random_state)`, the generator that
    `np.random.seed(random_state)` seeds for the reference (the global one is never touched).
    solver="kernel" is the reference `SVC(kernel="linear")` (libsvm, slow beyond ~20k rows);
    "fast" is `LinearSVC` (liblinear, primal) on train-centred latents, so that liblinear's
    penalised intercept only has to absorb a small offset. Unlike the reference, the intercept
    is kept. `accuracy_` is the validation accuracy; `remaining_accuracy_` scores the middle
    samples, labelled positive at score >= (max + min) / 2 as in the reference.
    The target score need not be a probability: a score of kind value (yaw in degrees) works.
    """

    method = "interfacegan"
    _param_checks = {
        "attribute": _ATTRIBUTE,
        "ratio": _POSITIVE,
        "split": Real(0.0, 1.0, open_low=True, open_high=True),
        "solver": OneOf(SOLVERS),
        "C": _POSITIVE,
        "split_mode": OneOf(SPLIT_MODES),
        "random_state": _SEED,
    }
    study_runs = {"interfacegan": {}}

    def __init__(
        self,
        attribute: str,
        ratio: float = 0.02,
        split: float = 0.7,
        solver: str = "fast",
        C: float = 1.0,
        split_mode: str = "ganedit",
        random_state: int = 0,
    ):
        self.attribute = attribute
        self.ratio = ratio
        self.split = split
        self.solver = solver
        self.C = C
        self.split_mode = split_mode
        self.random_state = random_state

    def _fit(self, latents, scores: Mapping) -> InterFaceGAN:
        flat, shape = _as_latents(latents)
        score = score_matrix(scores, [self.attribute], probabilities=False)[:, 0]  # [N]
        _check_rows(flat, score)
        if self.split_mode == "reference":
            score = _score_column(scores[self.attribute])  # sorted and compared as given
        order, train, val = self._split(score)
        y_train = np.repeat(np.array([1, 0], dtype=np.uint8), len(train) // 2)
        weights, bias = self._svm(flat[train], y_train)
        norm = float(np.linalg.norm(weights))
        projections = self._finish(
            flat, shape, weights, train, y_train, bias / norm, project_all=True
        )
        self.train_accuracy_ = self.accuracy_
        self._score_held_out(score, order, val, projections)
        return self

    def _split(self, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Descending order, then train and validation rows (positives first, then negatives)."""
        k = self._k(len(score))
        n_train = int(k * self.split)
        if n_train < 1:
            raise FitError(
                f"expected at least one training sample per class, received k={k} with "
                f"split {self.split} (raise ratio or N)"
            )
        if self.split_mode == "reference":
            order = np.argsort(score)[::-1]  # not a stable sort: ties as the reference has them
            rng = np.random.RandomState(self.random_state)
            positive, negative = np.arange(k), np.arange(k)
            rng.shuffle(positive)
            rng.shuffle(negative)
            pos, neg = order[:k][positive], order[len(score) - k :][negative]
        else:
            order = np.argsort(-score, kind="stable")  # descending, ties in row order
            rng = np.random.default_rng(self.random_state)
            pos, neg = rng.permutation(order[:k]), rng.permutation(order[len(score) - k :])
        self.k_ = k
        train = np.concatenate([pos[:n_train], neg[:n_train]])
        return order, train, np.concatenate([pos[n_train:], neg[n_train:]])

    def _score_held_out(
        self, score: np.ndarray, order: np.ndarray, val: np.ndarray, projections: np.ndarray
    ) -> None:
        """Validation accuracy (becomes accuracy_) and the reference's remaining accuracy."""
        k = self.k_
        self.n_samples_ = 2 * k  # _finish counted only the training rows
        self.n_train_, self.n_val_ = 2 * k - len(val), len(val)
        self.val_indices_ = val
        self.val_labels_ = np.repeat(np.array([1, 0], dtype=np.uint8), len(val) // 2)
        self.val_accuracy_ = self._accuracy(None, val, self.val_labels_, projections)
        self.accuracy_ = self.val_accuracy_
        middle = order[k : len(score) - k]
        cut = (score[order[0]] + score[order[-1]]) / 2  # mid-range, in the scores' dtype
        positive = (score[middle] >= cut).astype(np.uint8)
        self.n_remaining_ = len(middle)
        self.remaining_accuracy_ = self._accuracy(None, middle, positive, projections)

    def _k(self, n: int) -> int:
        k = int(n * self.ratio) if self.ratio <= 1 else int(self.ratio)
        k = min(k, n // 2)
        if k < 2:
            raise FitError(
                f"expected at least 2 samples per class (raise ratio or N), received k={k} of N={n}"
            )
        return k

    def _svm(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        """Weights [F] and bias of the fitted linear SVM (positive side = class 1)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            if self.solver == "kernel":
                # a seed of its own: with random_state=None, SVC draws one from the global
                # generator (unused without probability estimates, so the fit is the same)
                svm = SVC(kernel="linear", C=self.C, random_state=self.random_state).fit(x, y)
                weights, bias = svm.coef_[0].astype(np.float64), float(svm.intercept_[0])
            else:
                mean = x.mean(axis=0, dtype=np.float64)
                svm = LinearSVC(C=self.C, dual="auto", random_state=self.random_state)
                svm.fit(x - mean, y)
                weights = svm.coef_[0].astype(np.float64)
                bias = float(svm.intercept_[0]) - float(weights @ mean)
        for w in caught:
            log.warning("%s solver: %s", self.solver, w.message)
        if not np.linalg.norm(weights) > 0:
            raise FitError(f"expected a non-zero SVM weight vector, received zeros (C={self.C})")
        return weights, bias

    def _summary_extra(self) -> dict:
        return {
            "solver": self.solver,
            "split_mode": self.split_mode,
            "k": int(self.k_),
            "n_train": int(self.n_train_),
            "n_val": int(self.n_val_),
            "n_remaining": int(self.n_remaining_),
            "train_accuracy": _number(self.train_accuracy_),
            "val_accuracy": _number(self.val_accuracy_),
            "remaining_accuracy": _number(self.remaining_accuracy_),
        }


# ---------------------------------------------------------------- conditional projection


def _as_conditions(conditions, n_features: int) -> np.ndarray:
    """Conditions as [k, F] float64; accepts [F], [k, D], [k, L, D] or a list of boundaries."""
    c = np.asarray(conditions, dtype=np.float64)
    ok = c.size % n_features == 0 and (c.ndim == 1 or c[0].size % n_features == 0)
    expect(ok, f"condition directions with {n_features} features each", c.shape)
    c = c.reshape(-1, n_features)  # [k, F]
    if not np.isfinite(c).all():
        raise DamagedInputError("expected finite condition directions, received NaN or inf values")
    return c


def project_orthogonal(direction, conditions) -> np.ndarray:
    """Unit `direction` with its component in span(conditions) removed.

    Least squares: solve (C C^T) a = C n, n' = n - a^T C, then normalise. For one or two unit
    conditions this is IFG's closed form (b.3); any number works. Unlike IFG, the result is
    always normalised, also with zero conditions. Returns the shape of `direction`.
    """
    d = np.asarray(direction, dtype=np.float64)
    n = _unit(d.ravel(), "direction")  # [F]
    cond = _as_conditions(conditions, n.size)  # [k, F]
    if len(cond) == 0:
        return n.reshape(d.shape)
    singular = np.linalg.svd(cond, compute_uv=False)
    rank = int((singular > _DEPENDENT_TOL * max(singular[0], 1e-300)).sum())
    if singular[0] == 0 or rank < len(cond):
        raise UserInputError(
            f"expected linearly independent condition directions, received {len(cond)} "
            f"spanning only {rank} dimension(s)"
        )
    coef = np.linalg.solve(cond @ cond.T, cond @ n)  # [k]
    rest = n - coef @ cond
    if np.linalg.norm(rest) <= _DEPENDENT_TOL:
        raise UserInputError(
            "expected a direction outside the span of the conditions, received one inside it"
        )
    return (rest / np.linalg.norm(rest)).reshape(d.shape)


class Conditional(DirectionEstimator):
    """Fit a copy of `base_estimator`, then project its direction off `conditions` (IFG b.3).

    The base is cloned (scikit-learn meta-estimator convention), so a fitted or unfitted
    estimator may be passed and is left untouched; the fitted copy is `base_estimator_`.
    The intercept is re-placed at the class midpoint of the base's rows; `accuracy_` uses the
    base's validation rows where it has them.
    """

    method = "conditional"
    _param_checks = {
        "base_estimator": InstanceOf(DirectionEstimator, "a direction estimator"),
        "conditions": InstanceOf((list, tuple, np.ndarray), "an array of condition directions"),
    }

    def __init__(self, base_estimator: DirectionEstimator, conditions):
        self.base_estimator = base_estimator
        self.conditions = conditions

    @property
    def attribute(self) -> str:
        return self.base_estimator.attribute

    def _fit(self, latents, scores: Mapping) -> Conditional:
        base = clone(self.base_estimator).fit(latents, scores)
        flat, shape = _as_latents(latents)
        vector = project_orthogonal(base.direction_.ravel(), self.conditions)
        self.base_estimator_ = base
        self.n_conditions_ = len(_as_conditions(self.conditions, flat.shape[1]))
        self.cosine_to_base_ = float(vector @ base.direction_.ravel())
        self._finish(flat, shape, vector, base.sample_indices_, base.sample_labels_)
        if hasattr(base, "val_indices_"):
            self.val_accuracy_ = self._accuracy(flat, base.val_indices_, base.val_labels_)
            self.accuracy_ = self.val_accuracy_
        return self

    def _summary_extra(self) -> dict:
        return {
            "method": self.base_estimator_.method,
            "conditional": {
                "n_conditions": int(self.n_conditions_),
                "cosine_to_base": _number(self.cosine_to_base_),
            },
            "base": self.base_estimator_.summary(),
        }


# ---------------------------------------------------------------- MAB


class MAB(DirectionEstimator):
    """Multi-attribute balanced sampling, then the class-centroid difference (MAB, b.6-b.8).

    Keeps rows confident on every attribute (threshold=None: every row, the reference's
    default), builds the contingency table of their labels, draws a balanced subset of `n`
    rows (see `balanced_subset`) and takes mean(target = 1) - mean(target = 0) over it.
    `sample_.indices` are rows of the input. Cells of the 2^K table with no sample are
    logged as a warning and listed in `empty_cells_`: the balanced sample cannot hold those
    label combinations, so the target cannot be made independent of them.
    """

    method = "mab"
    _param_checks = {
        "attribute": _ATTRIBUTE,
        "n": Integer(1, 10**12),
        "threshold": _THRESHOLD,
        "quota": OneOf(QUOTAS),
        "attributes": _ATTRIBUTES,
        "random_state": _SEED,
    }
    study_runs = {"mab": {}, "mab-exact": {"quota": "exact"}}

    def __init__(
        self,
        attribute: str,
        n: int = 1000,
        threshold: float | None = 0.9,
        quota: str = "random",
        attributes: Sequence[str] | None = None,
        random_state: int = 0,
    ):
        self.attribute = attribute
        self.n = n
        self.threshold = threshold
        self.quota = quota
        self.attributes = attributes
        self.random_state = random_state

    def _fit(self, latents, scores: Mapping) -> MAB:
        flat, shape, names, probs, rows = self._confident(latents, scores)
        labels = (probs[rows] >= 0.5).astype(np.uint8)
        self.attributes_, self.n_confident_ = names, len(rows)
        self.table_ = ContingencyTable.from_labels(labels, names, rows)
        self._report_empty_cells()
        self.sample_ = balanced_subset(self.table_, self.n, self.quota, self.random_state)
        chosen = self.sample_.indices
        y = (probs[chosen, names.index(self.attribute)] >= 0.5).astype(np.uint8)
        _require_both_classes(y, self.attribute, "balanced sample")
        mu1, mu0 = _class_means(flat, chosen, y)
        self._finish(flat, shape, mu1 - mu0, chosen, y, class_means=(mu1, mu0))
        return self

    def _report_empty_cells(self) -> None:
        table = self.table_
        empty = table.empty_cells
        self.empty_cells_ = [{"key": cell_key(c), "labels": table.labels_of(c)} for c in empty]
        if empty:
            where = "" if self.threshold is None else f" confident at threshold {self.threshold}"
            log.warning(
                "mab %r: %d of %d cells of (%s) have no sample%s: %s. "
                "The balanced sample cannot hold them, so %r cannot be made independent "
                "of those label combinations",
                self.attribute, len(empty), 2 ** len(table.attributes),
                ", ".join(table.attributes), where,
                describe_cells(table.attributes, empty), self.attribute,
            )  # fmt: skip

    def _summary_extra(self) -> dict:
        return {
            "attributes": list(self.attributes_),
            "n_confident": int(self.n_confident_),
            "empty_cells": self.empty_cells_,
            "table": self.table_.to_dict(),
            "sample": self.sample_.to_dict(),
        }


# ---------------------------------------------------------------- stratified means


class Stratified(DirectionEstimator):
    """Difference of class means inside every nuisance cell, averaged over cells (brief f.1).

    A nuisance cell is a label tuple of the non-target attributes. Only cells holding at least
    `min_per_class` rows of each target class count. Weights are equal, or n1*n0/(n1+n0)
    (inverse variance of the cell's difference). `effective_n_` is the size of a balanced
    two-class sample whose plain difference of means would have the same variance.
    Cells left out (too few of one class: `cells_skipped_`; no sample: `empty_cells_`) are
    logged as a warning: the direction is not adjusted for those combinations.
    """

    method = "stratified"
    _param_checks = {
        "attribute": _ATTRIBUTE,
        "threshold": _THRESHOLD,
        "weighting": OneOf(WEIGHTINGS),
        "min_per_class": Integer(1, 10**12),
        "attributes": _ATTRIBUTES,
        "random_state": _SEED,
    }
    study_runs = {"stratified": {}}

    def __init__(
        self,
        attribute: str,
        threshold: float | None = 0.9,
        weighting: str = "equal",
        min_per_class: int = 1,
        attributes: Sequence[str] | None = None,
        random_state: int = 0,
    ):
        self.attribute = attribute
        self.threshold = threshold
        self.weighting = weighting
        self.min_per_class = min_per_class
        self.attributes = attributes
        self.random_state = random_state

    def _fit(self, latents, scores: Mapping) -> Stratified:
        flat, shape, names, probs, rows = self._confident(latents, scores)
        labels = (probs[rows] >= 0.5).astype(np.int64)  # [n, K]
        t = names.index(self.attribute)
        y, nuisance = labels[:, t], np.delete(labels, t, axis=1)
        codes = nuisance @ (1 << np.arange(nuisance.shape[1] - 1, -1, -1, dtype=np.int64))
        self.attributes_, self.n_confident_ = names, len(rows)
        present, cell_of = np.unique(codes, return_inverse=True)  # present nuisance cells
        sums, counts = _group_sums(flat, rows, 2 * cell_of + y, 2 * len(present))
        usable = self._record_cells(present, counts[1::2], counts[0::2], nuisance.shape[1])
        if not usable.any():
            raise FitError(
                f"expected a nuisance cell with at least {self.min_per_class} sample(s) of each "
                f"class of {self.attribute!r}, received none among {len(self.cells_skipped_)}"
            )
        n1, n0 = counts[1::2][usable], counts[0::2][usable]
        pos, neg = sums[1::2][usable], sums[0::2][usable]
        diffs = pos / n1[:, None] - neg / n0[:, None]
        inverse = n1 * n0 / (n1 + n0)  # 1 / variance factor of each difference
        weights = inverse if self.weighting == "inverse_variance" else np.ones_like(inverse)
        share = weights / weights.sum()
        for entry, w in zip(self.cells_used_, share, strict=True):
            entry["weight"] = float(w)
        # Var(sum_c a_c diff_c) is proportional to sum_c a_c^2 / inverse_c; a balanced
        # two-class sample of size m has 4 / m.
        self.effective_n_ = float(4 / np.sum(share**2 / inverse))
        used = usable[cell_of]
        means = (pos.sum(axis=0) / n1.sum(), neg.sum(axis=0) / n0.sum())
        self._finish(flat, shape, share @ diffs, rows[used], y[used].astype(np.uint8), None, means)
        return self

    def _record_cells(
        self, present: np.ndarray, n_pos: np.ndarray, n_neg: np.ndarray, bits: int
    ) -> np.ndarray:
        """cells_used_, cells_skipped_, empty_cells_ and the warning; bool [#present] usable."""
        nuisance_names = [a for a in self.attributes_ if a != self.attribute]
        usable = np.minimum(n_pos, n_neg) >= self.min_per_class
        self.cells_used_, self.cells_skipped_ = [], []
        for code, ok, n1, n0 in zip(present.tolist(), usable, n_pos, n_neg, strict=True):
            cell = tuple((code >> (bits - 1 - j)) & 1 for j in range(bits))
            entry = {
                "key": cell_key(cell),
                "labels": dict(zip(nuisance_names, cell, strict=True)),
                "n_positive": int(n1),
                "n_negative": int(n0),
            }
            (self.cells_used_ if ok else self.cells_skipped_).append(entry)
        missing = sorted(set(range(2**bits)) - set(present.tolist()))
        empty = [tuple((code >> (bits - 1 - j)) & 1 for j in range(bits)) for code in missing]
        self.empty_cells_ = [
            {"key": cell_key(c), "labels": dict(zip(nuisance_names, c, strict=True))} for c in empty
        ]
        self._warn_left_out(nuisance_names, empty)
        return usable

    def _warn_left_out(self, nuisance_names: list[str], empty: list[tuple[int, ...]]) -> None:
        if not (self.cells_skipped_ or empty):
            return
        parts = []
        if self.cells_skipped_:
            few = "; ".join(
                f"({describe_cell(nuisance_names, tuple(c['labels'].values()))}: "
                f"{c['n_positive']} positive, {c['n_negative']} negative)"
                for c in self.cells_skipped_[:8]
            )
            more = len(self.cells_skipped_) - 8
            parts.append(
                f"fewer than {self.min_per_class} of one class in {few}"
                + (f"; and {more} more" if more > 0 else "")
            )
        if empty:
            parts.append(f"no sample in {describe_cells(nuisance_names, empty)}")
        log.warning(
            "stratified %r: %d of %d nuisance cells of (%s) are left out, so the direction is "
            "not adjusted for those label combinations: %s",
            self.attribute, len(self.cells_skipped_) + len(empty), 2 ** len(nuisance_names),
            ", ".join(nuisance_names), "; ".join(parts),
        )  # fmt: skip

    def _summary_extra(self) -> dict:
        return {
            "attributes": list(self.attributes_),
            "n_confident": int(self.n_confident_),
            "weighting": self.weighting,
            "effective_n": _number(self.effective_n_),
            "cells_used": self.cells_used_,
            "cells_skipped": self.cells_skipped_,
            "empty_cells": self.empty_cells_,
        }


# ---------------------------------------------------------------- joint regression


class Regression(DirectionEstimator):
    """Regress the latent on all attributes' logits jointly; the target's loading is the direction.

    x ~ B^T [logit(p_1), ..., logit(p_K), 1]: row k of B is how the code moves per unit logit
    of attribute k with the other attributes held fixed, which removes their (label or
    continuous) correlation with the target. Closed-form ridge on the logits (not the bias);
    `ridge` is absolute, a numerical safeguard rather than a prior. `loadings_` [K, D or L, D]
    holds every attribute's row, in `attributes_` order.

    Continuous attributes (scores of kind value: `yaw` in degrees, a pose) enter the design as
    their values, not logits, and can be the target: its row is how the code moves per unit. A continuous target's
    two sides, for the intercept and the accuracy, are its values above and below their
    median over the rows used. The confidence threshold applies to probabilities only.
    """

    method = "regression"
    _param_checks = {
        "attribute": _ATTRIBUTE,
        "threshold": _THRESHOLD,
        "ridge": Real(0.0, math.inf),
        "attributes": _ATTRIBUTES,
        "clip": Real(0.0, 0.5, open_low=True, open_high=True),
        "random_state": _SEED,
    }
    study_runs = {"regression": {"threshold": None}}  # every row, the method's default

    def __init__(
        self,
        attribute: str,
        threshold: float | None = None,
        ridge: float = 1e-3,
        attributes: Sequence[str] | None = None,
        clip: float = 1e-4,
        random_state: int = 0,
    ):
        self.attribute = attribute
        self.threshold = threshold
        self.ridge = ridge
        self.attributes = attributes
        self.clip = clip
        self.random_state = random_state

    def _fit(self, latents, scores: Mapping) -> Regression:
        flat, shape = _as_latents(latents)
        names, values, rows, continuous = self._inputs(scores)
        _check_rows(flat, values)
        t = names.index(self.attribute)
        design = np.ones((len(rows), len(names) + 1))  # [n, K+1]: the logits, then the bias
        for k in range(len(names)):  # column by column: no [n, K] temporaries
            if continuous[k]:
                design[:, k] = values[rows, k]
                continue
            p = np.clip(values[rows, k], self.clip, 1 - self.clip)
            design[:, k] = np.log(p) - np.log1p(-p)
        if not float(np.ptp(design[:, t])) > 0:  # std() of a constant can be 1e-16
            raise FitError(f"expected varying scores for {self.attribute!r}, received a constant")
        split = float(np.median(values[rows, t])) if continuous[t] else 0.5
        y = (values[rows, t] >= split).astype(np.uint8)
        _require_both_classes(y, self.attribute, "rows used")
        products = self._products(flat, rows, design, y)  # [K+3, F]
        loadings = self._solve(design, products[:-2])  # [K+1, F]
        class_means = (products[-2] / y.sum(), products[-1] / (len(y) - y.sum()))
        self.attributes_, self.n_confident_ = names, len(rows)
        self.continuous_ = [n for n, c in zip(names, continuous, strict=True) if c]
        self.loadings_ = loadings[:-1].reshape((len(names), *shape))
        self.bias_ = loadings[-1].reshape(shape)
        self._finish(flat, shape, loadings[t], rows, y, None, class_means)
        return self

    def _inputs(self, scores: Mapping):
        """Names, values [N, K] (probabilities, or continuous values), the rows confident on
        every probability, and which columns are continuous."""
        attributes, kinds = self.attributes, score_kinds(scores)
        if attributes is None and kinds.get(self.attribute) == VALUE:
            attributes = [*probability_names(scores), self.attribute]
        names = resolve_attributes(scores, attributes)
        if self.attribute not in names:
            raise UserInputError(
                f"expected the target among attributes {names}, received {self.attribute!r}"
            )
        continuous = [kinds[n] == VALUE for n in names]
        columns = [score_matrix(scores, [n], probabilities=not c)[:, 0]
                   for n, c in zip(names, continuous, strict=True)]  # fmt: skip
        lengths = {n: len(c) for n, c in zip(names, columns, strict=True)}
        expect(len(set(lengths.values())) == 1, "one score per sample for every attribute", lengths)
        values = np.stack(columns, axis=1)
        binary = values[:, ~np.asarray(continuous)]
        rows = np.arange(len(values))
        if self.threshold is not None and binary.size:
            t = self.threshold
            rows = np.flatnonzero(((binary > t) | (binary < 1 - t)).all(axis=1))
        if len(rows) == 0:
            raise FitError(
                f"expected samples confident on all of {names} at threshold {self.threshold}, "
                "received none"
            )
        return names, values, rows, continuous

    @staticmethod
    def _products(flat: np.ndarray, rows: np.ndarray, design: np.ndarray, y: np.ndarray):
        """design^T flat[rows] and the two class sums, in one pass over the rows."""

        def left(start: int, stop: int) -> np.ndarray:
            part = np.empty((design.shape[1] + 2, stop - start))
            part[:-2] = design[start:stop].T
            part[-2] = y[start:stop]
            part[-1] = 1 - part[-2]
            return part

        return _left_products(flat, rows, left, design.shape[1] + 2)

    def _solve(self, design: np.ndarray, cross: np.ndarray) -> np.ndarray:
        penalty = np.full(design.shape[1], float(self.ridge))
        penalty[-1] = 0.0  # the bias stays free
        normal = design.T @ design + np.diag(penalty)
        if np.linalg.cond(normal) > 1e12:
            raise FitError(
                "expected attribute scores that are not linear copies of each other, received "
                f"a singular design (condition number {np.linalg.cond(normal):.3g}); drop one "
                "attribute or raise ridge"
            )
        return np.linalg.solve(normal, cross)

    def _summary_extra(self) -> dict:
        flat = self.loadings_.reshape(len(self.attributes_), -1)
        unit = flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-300)
        return {
            "attributes": list(self.attributes_),
            "continuous": list(self.continuous_),
            "n_confident": int(self.n_confident_),
            "loading_norms": {
                a: _number(v)
                for a, v in zip(self.attributes_, np.linalg.norm(flat, axis=1), strict=True)
            },
            "loading_cosines": {
                a: _number(unit[self.attributes_.index(self.attribute)] @ u)
                for a, u in zip(self.attributes_, unit, strict=True)
            },
        }


# ---------------------------------------------------------------- Fisher / LDA


def _ledoit_wolf(gram: np.ndarray, fourth: float, n: int) -> float:
    """Ledoit-Wolf shrinkage from X^T X and sum_i ||x_i||^4 of centred data (sklearn's formula)."""
    p = gram.shape[0]
    emp = gram / n
    mu = np.trace(emp) / p
    delta_ = float(np.sum(emp**2))
    beta = (fourth / n - delta_) / (p * n)
    delta = (delta_ - 2 * mu * np.trace(emp) + p * mu**2) / p
    beta = min(beta, delta)
    return 0.0 if beta <= 0 or delta <= 0 else float(beta / delta)


class Fisher(DirectionEstimator):
    """Sigma^-1 (mu1 - mu0) over confident rows: LDA with a shrunk pooled covariance.

    The within-class covariance (each row centred on its class mean) is shrunk towards
    trace/p * I, by the Ledoit-Wolf amount with shrinkage="auto" or by the given fraction.
    Accounts for the anisotropy of W that a centroid difference ignores (brief f.4).
    """

    method = "fisher"
    _param_checks = {
        "attribute": _ATTRIBUTE,
        "threshold": _THRESHOLD,
        "shrinkage": AnyOf((OneOf(("auto",)), Real(0.0, 1.0))),
        "attributes": _ATTRIBUTES,
        "random_state": _SEED,
    }
    # Not in the direction study: its committed report predates the method (a run here,
    # e.g. {"fisher": {}}, adds it to the next study).

    def __init__(
        self,
        attribute: str,
        threshold: float | None = 0.9,
        shrinkage: str | float = "auto",
        attributes: Sequence[str] | None = None,
        random_state: int = 0,
    ):
        self.attribute = attribute
        self.threshold = threshold
        self.shrinkage = shrinkage
        self.attributes = attributes
        self.random_state = random_state

    def _fit(self, latents, scores: Mapping) -> Fisher:
        flat, shape, names, probs, rows = self._confident(latents, scores)
        y = (probs[rows, names.index(self.attribute)] >= 0.5).astype(np.uint8)
        _require_both_classes(y, self.attribute, "confident rows")
        mu1, mu0 = _class_means(flat, rows, y)
        cov = self._covariance(flat, rows, y, mu1, mu0)
        self.attributes_, self.n_confident_ = names, len(rows)
        direction = np.linalg.solve(cov, mu1 - mu0)
        self._finish(flat, shape, direction, rows, y, None, (mu1, mu0))
        return self

    def _covariance(
        self, flat: np.ndarray, rows: np.ndarray, y: np.ndarray, mu1: np.ndarray, mu0: np.ndarray
    ) -> np.ndarray:
        """Shrunk pooled within-class covariance [F, F]; sets shrinkage_."""
        if flat.shape[1] > 4096:
            log.warning("Fisher on %d features: the covariance solve is slow", flat.shape[1])
        gram, fourth = np.zeros((flat.shape[1],) * 2), 0.0
        for start, stop, rows_block in _row_blocks(flat, rows):
            block = rows_block - np.where(y[start:stop, None] == 1, mu1, mu0)  # [b, F] float64
            gram += block.T @ block
            fourth += float(np.sum(np.sum(block**2, axis=1) ** 2))
        n, p = len(rows), flat.shape[1]
        auto = isinstance(self.shrinkage, str)
        self.shrinkage_ = _ledoit_wolf(gram, fourth, n) if auto else float(self.shrinkage)
        emp = gram / n
        target = np.trace(emp) / p
        cov = (1 - self.shrinkage_) * emp + self.shrinkage_ * target * np.eye(p)
        if not np.linalg.cond(cov) < 1e12:
            raise FitError(
                f"expected a well-conditioned covariance, received condition number "
                f"{np.linalg.cond(cov):.3g} (use shrinkage='auto' or > 0)"
            )
        return cov

    def _summary_extra(self) -> dict:
        return {
            "attributes": list(self.attributes_),
            "n_confident": int(self.n_confident_),
            "shrinkage": _number(self.shrinkage_),
        }


# ---------------------------------------------------------------- registry

# The table of methods, keyed by each class's own `method`: the names the command line
# offers (ganedit.choices.DIRECTION_METHODS, in this order; tests/test_startup.py checks).
METHODS: dict[str, type[DirectionEstimator]] = {
    cls.method: cls for cls in (InterFaceGAN, MAB, Stratified, Regression, Fisher)
}


def make_estimator(method: str, attribute: str, **params) -> DirectionEstimator:
    """Build a registered estimator by name; unknown names or parameters raise UserInputError."""
    if method not in METHODS:
        raise UserInputError(f"expected a method among {sorted(METHODS)}, received {method!r}")
    cls = METHODS[method]
    valid = set(cls._get_param_names()) - {"attribute"}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise UserInputError(
            f"expected parameters of {method} among {sorted(valid)}, received {unknown}"
        )
    return cls(attribute=attribute, **params)
