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
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.validation import check_is_fitted

from ganedit.directions.sampling import (
    ContingencyTable,
    balanced_subset,
    cell_key,
    check_threshold,
    resolve_attributes,
    score_matrix,
)
from ganedit.errors import UserInputError, expect

log = logging.getLogger(__name__)

SOLVERS = ("fast", "kernel")
WEIGHTINGS = ("equal", "inverse_variance")
_BLOCK_ELEMENTS = 1 << 22  # values per block when reducing over the latents (32 MB as float64)
_DEPENDENT_TOL = 1e-6  # smallest/largest singular value of the conditions below this: dependent


# ---------------------------------------------------------------- shared helpers


def _as_latents(latents) -> tuple[np.ndarray, tuple[int, ...]]:
    """View latents as [N, F] and return the trailing shape ([D] or [L, D])."""
    x = np.asarray(latents)
    expect(x.ndim in (2, 3), "latents of shape [N, D] or [N, L, D]", x.shape)
    expect(np.issubdtype(x.dtype, np.floating), "floating-point latents", x.dtype)
    expect(len(x) >= 2 and x[0].size >= 1, "at least 2 non-empty latent codes", x.shape)
    flat = x.reshape(len(x), -1)  # [N, F]
    step = _blocks(len(flat), flat.shape[1]).step
    for start in range(0, len(flat), step):
        finite = bool(np.isfinite(flat[start : start + step]).all())
        expect(finite, "finite latents", "NaN or inf values")
    return flat, tuple(x.shape[1:])


def _blocks(n_rows: int, n_features: int) -> range:
    """Start rows of blocks small enough to bound the temporary copies."""
    return range(0, n_rows, max(1, _BLOCK_ELEMENTS // n_features))


def _check_rows(flat: np.ndarray, probs: np.ndarray) -> None:
    expect(len(flat) == len(probs), f"{len(flat)} scores, one per latent", len(probs))


def _project(flat: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """flat [N, F] @ vector [F] in float64, block by block."""
    vector = vector.astype(np.float64)
    out = np.empty(len(flat))
    step = _blocks(len(flat), flat.shape[1]).step
    for start in range(0, len(flat), step):
        out[start : start + step] = flat[start : start + step] @ vector
    return out


def _mean_rows(flat: np.ndarray, rows: np.ndarray) -> np.ndarray:
    total = np.zeros(flat.shape[1])
    step = _blocks(len(rows), flat.shape[1]).step
    for start in range(0, len(rows), step):
        total += flat[rows[start : start + step]].sum(axis=0, dtype=np.float64)
    return total / len(rows)


def _unit(vector: np.ndarray, what: str) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if not norm > 0 or not math.isfinite(norm):
        raise UserInputError(f"expected a non-zero {what}, received norm {norm}")
    return vector / norm


def _require_both_classes(y: np.ndarray, attribute: str, where: str) -> None:
    n1 = int(y.sum())
    if n1 == 0 or n1 == len(y):
        raise UserInputError(
            f"expected both classes of {attribute!r} among the {where}, "
            f"received {n1} positive and {len(y) - n1} negative"
        )


def _confident_probabilities(
    scores: Mapping,
    attribute: str,
    attributes: Sequence[str] | None,
    threshold: float | None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Attribute names, probabilities [N, K] and the confident row indices."""
    names = resolve_attributes(scores, attributes)
    if attribute not in names:
        raise UserInputError(
            f"expected the target among attributes {names}, received {attribute!r}"
        )
    probs = score_matrix(scores, names)  # [N, K]
    check_threshold(threshold)
    if threshold is None:
        rows = np.arange(len(probs))
    else:
        rows = np.flatnonzero(((probs > threshold) | (probs < 1 - threshold)).all(axis=1))
    if len(rows) == 0:
        raise UserInputError(
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


def _check_choice(value, choices: Sequence, what: str) -> None:
    expect(value in choices, f"{what} among {tuple(choices)}", value)


# ---------------------------------------------------------------- base class


class DirectionEstimator(BaseEstimator):
    """Common fitted state and the decision function; subclasses implement `fit`."""

    method: ClassVar[str] = ""

    def fit(self, latents, scores: Mapping) -> DirectionEstimator:
        raise NotImplementedError

    def decision_function(self, latents) -> np.ndarray:
        """Signed position along the direction, relative to the hyperplane. [N]"""
        check_is_fitted(self, "direction_")
        x = np.asarray(latents)
        expect(x.ndim >= 2, "latents of shape [N, D] or [N, L, D]", x.shape)
        flat = x.reshape(len(x), -1)
        expect(flat.shape[1] == self.n_features_in_, f"{self.n_features_in_} features", x.shape)
        return _project(flat, self.direction_.ravel()) + self.intercept_

    def _finish(
        self,
        flat: np.ndarray,
        shape: tuple[int, ...],
        vector: np.ndarray,
        rows: np.ndarray,
        y: np.ndarray,
        intercept: float | None = None,
    ) -> None:
        """Store the unit direction; midpoint intercept unless given; accuracy on `rows`."""
        direction = _unit(np.asarray(vector, dtype=np.float64), f"{self.method} direction")
        self.direction_ = direction.reshape(shape)
        self.n_features_in_ = flat.shape[1]
        self.latent_shape_ = shape
        if intercept is None:
            mid = (_mean_rows(flat, rows[y == 1]) + _mean_rows(flat, rows[y == 0])) / 2
            intercept = -float(mid @ direction)
        self.intercept_ = float(intercept)
        self.sample_indices_ = np.asarray(rows, dtype=np.int64)
        self.sample_labels_ = np.asarray(y, dtype=np.uint8)
        self.n_samples_ = len(rows)
        self.accuracy_ = self._accuracy(flat, rows, y)

    def _accuracy(self, flat: np.ndarray, rows: np.ndarray, y: np.ndarray) -> float:
        if len(rows) == 0:
            return math.nan
        decision = _project(flat[rows], self.direction_.ravel()) + self.intercept_
        return float(((decision > 0) == (y == 1)).mean())

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


class InterFaceGAN(DirectionEstimator):
    """Linear SVM between the top-k and bottom-k samples by target score (IFG, b.2).

    k = int(N * ratio) for 0 < ratio <= 1, else int(ratio); at most N // 2. Each class is
    shuffled with `random_state` and split `split` / 1 - split into train / validation.
    solver="kernel" is the reference `SVC(kernel="linear")` (libsvm, slow beyond ~20k rows);
    "fast" is `LinearSVC` (liblinear, primal) on train-centred latents, so that liblinear's
    penalised intercept only has to absorb a small offset. Unlike the reference, the intercept
    is kept. `accuracy_` is the validation accuracy; `remaining_accuracy_` scores the middle
    samples, labelled positive at score >= (max + min) / 2 as in the reference.
    The target score need not be a probability (yaw in degrees works).
    """

    method = "interfacegan"

    def __init__(
        self,
        attribute: str,
        ratio: float = 0.02,
        split: float = 0.7,
        solver: str = "fast",
        C: float = 1.0,
        random_state: int = 0,
    ):
        self.attribute = attribute
        self.ratio = ratio
        self.split = split
        self.solver = solver
        self.C = C
        self.random_state = random_state

    def fit(self, latents, scores: Mapping) -> InterFaceGAN:
        _check_choice(self.solver, SOLVERS, "a solver")
        expect(0 < self.split < 1, "a train split in (0, 1)", self.split)
        expect(self.C > 0, "C > 0", self.C)
        flat, shape = _as_latents(latents)
        score = score_matrix(scores, [self.attribute], probabilities=False)[:, 0]  # [N]
        _check_rows(flat, score)
        order, train, val = self._split(score)
        y_train = np.repeat(np.array([1, 0], dtype=np.uint8), len(train) // 2)
        weights, bias = self._svm(flat[train], y_train)
        self._finish(flat, shape, weights, train, y_train, bias / np.linalg.norm(weights))
        self.train_accuracy_ = self.accuracy_
        self._score_held_out(flat, score, order, val)
        return self

    def _split(self, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Descending order, then train and validation rows (positives first, then negatives)."""
        k = self._k(len(score))
        n_train = int(k * self.split)
        expect(
            1 <= n_train < k, f"a split leaving rows for training and validation of {k}", self.split
        )
        order = np.argsort(-score, kind="stable")  # descending, like the reference
        rng = np.random.default_rng(self.random_state)
        pos, neg = rng.permutation(order[:k]), rng.permutation(order[len(score) - k :])
        self.k_ = k
        train = np.concatenate([pos[:n_train], neg[:n_train]])
        return order, train, np.concatenate([pos[n_train:], neg[n_train:]])

    def _score_held_out(
        self, flat: np.ndarray, score: np.ndarray, order: np.ndarray, val: np.ndarray
    ) -> None:
        """Validation accuracy (becomes accuracy_) and the reference's remaining accuracy."""
        k = self.k_
        self.n_samples_ = 2 * k  # _finish counted only the training rows
        self.n_train_, self.n_val_ = 2 * k - len(val), len(val)
        self.val_indices_ = val
        self.val_labels_ = np.repeat(np.array([1, 0], dtype=np.uint8), len(val) // 2)
        self.val_accuracy_ = self.accuracy_ = self._accuracy(flat, val, self.val_labels_)
        middle = order[k : len(score) - k]
        positive = (score[middle] >= (score.max() + score.min()) / 2).astype(np.uint8)
        self.n_remaining_ = len(middle)
        self.remaining_accuracy_ = self._accuracy(flat, middle, positive)

    def _k(self, n: int) -> int:
        expect(self.ratio > 0, "a positive ratio or sample count", self.ratio)
        k = int(n * self.ratio) if self.ratio <= 1 else int(self.ratio)
        k = min(k, n // 2)
        expect(k >= 2, "at least 2 samples per class (raise ratio or N)", f"k={k} of N={n}")
        return k

    def _svm(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
        """Weights [F] and bias of the fitted linear SVM (positive side = class 1)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            if self.solver == "kernel":
                svm = SVC(kernel="linear", C=self.C).fit(x, y)
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
            raise UserInputError(
                f"expected a non-zero SVM weight vector, received zeros (C={self.C})"
            )
        return weights, bias

    def _summary_extra(self) -> dict:
        return {
            "solver": self.solver,
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
    expect(bool(np.isfinite(c).all()), "finite condition directions", "NaN or inf values")
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

    def __init__(self, base_estimator: DirectionEstimator, conditions):
        self.base_estimator = base_estimator
        self.conditions = conditions

    @property
    def attribute(self) -> str:
        return self.base_estimator.attribute

    def fit(self, latents, scores: Mapping) -> Conditional:
        ok = isinstance(self.base_estimator, DirectionEstimator)
        expect(ok, "a direction estimator as base", type(self.base_estimator).__name__)
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

    Keeps rows confident on every attribute, builds the contingency table of their labels,
    draws a balanced subset of `n` rows (see `balanced_subset`) and takes
    mean(target = 1) - mean(target = 0) over it. `sample_.indices` are rows of the input.
    """

    method = "mab"

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

    def fit(self, latents, scores: Mapping) -> MAB:
        flat, shape = _as_latents(latents)
        names, probs, rows = _confident_probabilities(
            scores, self.attribute, self.attributes, self.threshold
        )
        _check_rows(flat, probs)
        labels = (probs[rows] >= 0.5).astype(np.uint8)
        self.table_ = ContingencyTable.from_labels(labels, names, rows)
        self.sample_ = balanced_subset(self.table_, self.n, self.quota, self.random_state)
        chosen = self.sample_.indices
        y = (probs[chosen, names.index(self.attribute)] >= 0.5).astype(np.uint8)
        _require_both_classes(y, self.attribute, "balanced sample")
        vector = _mean_rows(flat, chosen[y == 1]) - _mean_rows(flat, chosen[y == 0])
        self.attributes_, self.n_confident_ = names, len(rows)
        self._finish(flat, shape, vector, chosen, y)
        return self

    def _summary_extra(self) -> dict:
        return {
            "attributes": list(self.attributes_),
            "n_confident": int(self.n_confident_),
            "table": self.table_.to_dict(),
            "sample": self.sample_.to_dict(),
        }


# ---------------------------------------------------------------- stratified means


def _group_rows(groups: np.ndarray) -> dict[int, np.ndarray]:
    """Group id -> positions holding it."""
    order = np.argsort(groups, kind="stable")
    ids, starts = np.unique(groups[order], return_index=True)
    return dict(zip(ids.tolist(), np.split(order, starts[1:]), strict=True))


class Stratified(DirectionEstimator):
    """Difference of class means inside every nuisance cell, averaged over cells (brief f.1).

    A nuisance cell is a label tuple of the non-target attributes. Only cells holding at least
    `min_per_class` rows of each target class count. Weights are equal, or n1*n0/(n1+n0)
    (inverse variance of the cell's difference). `effective_n_` is the size of a balanced
    two-class sample whose plain difference of means would have the same variance.
    """

    method = "stratified"

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

    def fit(self, latents, scores: Mapping) -> Stratified:
        _check_choice(self.weighting, WEIGHTINGS, "a weighting")
        expect(int(self.min_per_class) >= 1, "min_per_class >= 1", self.min_per_class)
        flat, shape = _as_latents(latents)
        names, probs, rows = _confident_probabilities(
            scores, self.attribute, self.attributes, self.threshold
        )
        _check_rows(flat, probs)
        labels = (probs[rows] >= 0.5).astype(np.int64)  # [n, K]
        t = names.index(self.attribute)
        y, nuisance = labels[:, t], np.delete(labels, t, axis=1)
        codes = nuisance @ (1 << np.arange(nuisance.shape[1] - 1, -1, -1, dtype=np.int64))
        self.attributes_, self.n_confident_ = names, len(rows)
        diffs, inverse, used = self._cell_differences(flat, rows, y, codes, nuisance.shape[1])
        if not diffs:
            raise UserInputError(
                f"expected a nuisance cell with at least {self.min_per_class} sample(s) of each "
                f"class of {self.attribute!r}, received none among {len(self.cells_skipped_)}"
            )
        inverse = np.asarray(inverse)
        weights = inverse if self.weighting == "inverse_variance" else np.ones_like(inverse)
        share = weights / weights.sum()
        for entry, w in zip(self.cells_used_, share, strict=True):
            entry["weight"] = float(w)
        vector = share @ np.stack(diffs)
        # Var(sum_c a_c diff_c) is proportional to sum_c a_c^2 / inverse_c; a balanced
        # two-class sample of size m has 4 / m.
        self.effective_n_ = float(4 / np.sum(share**2 / inverse))
        self._finish(flat, shape, vector, rows[used], y[used].astype(np.uint8))
        return self

    def _cell_differences(
        self, flat: np.ndarray, rows: np.ndarray, y: np.ndarray, codes: np.ndarray, bits: int
    ) -> tuple[list[np.ndarray], list[float], np.ndarray]:
        """Per usable nuisance cell: mean difference [F] and n1*n0/(n1+n0); rows used."""
        nuisance_names = [a for a in self.attributes_ if a != self.attribute]
        diffs, inverse, used = [], [], np.zeros(len(rows), dtype=bool)
        self.cells_used_, self.cells_skipped_ = [], []
        for code, at in _group_rows(codes).items():
            cell = tuple((code >> (bits - 1 - j)) & 1 for j in range(bits))
            pos, neg = at[y[at] == 1], at[y[at] == 0]
            entry = {
                "key": cell_key(cell),
                "labels": dict(zip(nuisance_names, cell, strict=True)),
                "n_positive": len(pos),
                "n_negative": len(neg),
            }
            if min(len(pos), len(neg)) < self.min_per_class:
                self.cells_skipped_.append(entry)
                continue
            diffs.append(_mean_rows(flat, rows[pos]) - _mean_rows(flat, rows[neg]))
            inverse.append(len(pos) * len(neg) / (len(pos) + len(neg)))  # 1 / variance factor
            self.cells_used_.append(entry)
            used[at] = True
        return diffs, inverse, used

    def _summary_extra(self) -> dict:
        return {
            "attributes": list(self.attributes_),
            "n_confident": int(self.n_confident_),
            "weighting": self.weighting,
            "effective_n": _number(self.effective_n_),
            "cells_used": self.cells_used_,
            "cells_skipped": self.cells_skipped_,
        }


# ---------------------------------------------------------------- joint regression


def _gram_with(design: np.ndarray, flat: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """design[K1, n]^T-style product design.T @ flat[rows] in float64, block by block."""
    out = np.zeros((design.shape[1], flat.shape[1]))
    step = _blocks(len(rows), flat.shape[1]).step
    for start in range(0, len(rows), step):
        block = flat[rows[start : start + step]].astype(np.float64)
        out += design[start : start + step].T @ block
    return out


class Regression(DirectionEstimator):
    """Regress the latent on all attributes' logits jointly; the target's loading is the direction.

    x ~ B^T [logit(p_1), ..., logit(p_K), 1]: row k of B is how the code moves per unit logit
    of attribute k with the other attributes held fixed, which removes their (label or
    continuous) correlation with the target. Closed-form ridge on the logits (not the bias);
    `ridge` is absolute, a numerical safeguard rather than a prior. `loadings_` [K, D or L, D]
    holds every attribute's row, in `attributes_` order.
    """

    method = "regression"

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

    def fit(self, latents, scores: Mapping) -> Regression:
        expect(self.ridge >= 0, "ridge >= 0", self.ridge)
        expect(0 < self.clip < 0.5, "clip in (0, 0.5)", self.clip)
        flat, shape = _as_latents(latents)
        names, probs, rows = _confident_probabilities(
            scores, self.attribute, self.attributes, self.threshold
        )
        _check_rows(flat, probs)
        t = names.index(self.attribute)
        p = np.clip(probs[rows], self.clip, 1 - self.clip)
        design = np.column_stack([np.log(p) - np.log1p(-p), np.ones(len(rows))])  # [n, K+1]
        spread = float(design[:, t].std())
        expect(spread > 0, f"varying scores for {self.attribute!r}", "a constant column")
        loadings = self._solve(design, _gram_with(design, flat, rows))  # [K+1, F]
        y = (probs[rows, t] >= 0.5).astype(np.uint8)
        _require_both_classes(y, self.attribute, "rows used")
        self.attributes_, self.n_confident_ = names, len(rows)
        self.loadings_ = loadings[:-1].reshape((len(names), *shape))
        self.bias_ = loadings[-1].reshape(shape)
        self._finish(flat, shape, loadings[t], rows, y)
        return self

    def _solve(self, design: np.ndarray, cross: np.ndarray) -> np.ndarray:
        penalty = np.full(design.shape[1], float(self.ridge))
        penalty[-1] = 0.0  # the bias stays free
        normal = design.T @ design + np.diag(penalty)
        if np.linalg.cond(normal) > 1e12:
            raise UserInputError(
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

    def fit(self, latents, scores: Mapping) -> Fisher:
        auto = isinstance(self.shrinkage, str)
        ok = self.shrinkage == "auto" if auto else 0 <= float(self.shrinkage) <= 1
        expect(ok, 'shrinkage "auto" or a fraction in [0, 1]', self.shrinkage)
        flat, shape = _as_latents(latents)
        names, probs, rows = _confident_probabilities(
            scores, self.attribute, self.attributes, self.threshold
        )
        _check_rows(flat, probs)
        y = (probs[rows, names.index(self.attribute)] >= 0.5).astype(np.uint8)
        _require_both_classes(y, self.attribute, "confident rows")
        mu1, mu0 = _mean_rows(flat, rows[y == 1]), _mean_rows(flat, rows[y == 0])
        cov = self._covariance(flat, rows, y, mu1, mu0)
        self.attributes_, self.n_confident_ = names, len(rows)
        self._finish(flat, shape, np.linalg.solve(cov, mu1 - mu0), rows, y)
        return self

    def _covariance(
        self, flat: np.ndarray, rows: np.ndarray, y: np.ndarray, mu1: np.ndarray, mu0: np.ndarray
    ) -> np.ndarray:
        """Shrunk pooled within-class covariance [F, F]; sets shrinkage_."""
        if flat.shape[1] > 4096:
            log.warning("Fisher on %d features: the covariance solve is slow", flat.shape[1])
        gram, fourth = np.zeros((flat.shape[1],) * 2), 0.0
        step = _blocks(len(rows), flat.shape[1]).step
        for start in range(0, len(rows), step):
            part = slice(start, start + step)
            block = flat[rows[part]] - np.where(y[part, None] == 1, mu1, mu0)  # [b, F] float64
            gram += block.T @ block
            fourth += float(np.sum(np.sum(block**2, axis=1) ** 2))
        n, p = len(rows), flat.shape[1]
        auto = isinstance(self.shrinkage, str)
        self.shrinkage_ = _ledoit_wolf(gram, fourth, n) if auto else float(self.shrinkage)
        emp = gram / n
        target = np.trace(emp) / p
        cov = (1 - self.shrinkage_) * emp + self.shrinkage_ * target * np.eye(p)
        if not np.linalg.cond(cov) < 1e12:
            raise UserInputError(
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

METHODS: dict[str, type[DirectionEstimator]] = {
    "interfacegan": InterFaceGAN,
    "mab": MAB,
    "stratified": Stratified,
    "regression": Regression,
    "fisher": Fisher,
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
