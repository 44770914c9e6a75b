"""scikit-learn's estimator contract on every direction estimator, and the method table.

`check_estimator` cannot run here: its fit checks pass (X, y) arrays, and a direction
estimator fits (latents, score mapping). scikit-learn's checks that only touch parameters
run as they are; the fit-side ones are written out for ganedit's inputs (clone, get/set
params, unfitted state, a seed's determinism, inputs left unchanged, n_features_in_, and
parameter checks raised by fit, not by the constructor).
"""

import dataclasses
import inspect

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks

from ganedit import choices
from ganedit.directions.estimators import (
    METHODS,
    Conditional,
    DirectionEstimator,
    InterFaceGAN,
    make_estimator,
)
from ganedit.directions.fit import (
    OPTION_FIELDS,
    BoundaryConfig,
    build_estimator,
    method_options,
)
from ganedit.errors import UserInputError
from ganedit.utils.params import OneOf, OrNone, Real

# Parameters that scikit-learn's parameter checks run on as they are.
SKLEARN_PARAMETER_CHECKS = (
    "check_no_attributes_set_in_init",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_repr",
    "check_parameters_default_constructible",
    "check_estimator_cloneable",
    "check_do_not_raise_errors_in_init_or_set_params",
)
# Valid values other than the defaults, to see that set_params reaches the fit.
OTHER_VALUES = {
    "interfacegan": {"ratio": 0.3, "split": 0.6, "C": 0.5, "random_state": 3},
    "mab": {"n": 60, "quota": "exact", "threshold": 0.8, "random_state": 3},
    "stratified": {"weighting": "inverse_variance", "threshold": 0.8},
    "regression": {"ridge": 0.1, "threshold": 0.7},
    "fisher": {"shrinkage": 0.2},
}


def _sigmoid(t):
    return 1 / (1 + np.exp(-t))


@pytest.fixture(scope="module")
def data():
    """Latents [N, L, D] whose smile follows x[:, 1, 0], age x[:, 1, 1]; yaw is a value."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(400, 3, 4)).astype(np.float32)
    scores = {
        "smile": _sigmoid(3 * x[:, 1, 0]),
        "age": _sigmoid(3 * x[:, 1, 1]),
        "yaw": 20 * x[:, 0, 0],
    }
    return x, scores


def _estimators() -> dict[str, DirectionEstimator]:
    made = {name: cls("smile") for name, cls in METHODS.items()}
    made["conditional"] = Conditional(InterFaceGAN("smile", ratio=0.3), np.eye(12)[6:7])
    return made


ESTIMATORS = sorted(_estimators())


def _read_only(x, scores):
    x = x.copy()
    x.flags.writeable = False
    frozen = {}
    for name, values in scores.items():
        values = values.copy()
        values.flags.writeable = False
        frozen[name] = values
    return x, frozen


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("check", SKLEARN_PARAMETER_CHECKS)
def test_sklearn_parameter_checks(name, check):
    getattr(estimator_checks, check)(name, _estimators()[name])


@pytest.mark.parametrize("name", ESTIMATORS)
def test_constructor_stores_its_arguments_unchanged_and_checks_nothing(name):
    est = _estimators()[name]
    params = est.get_params(deep=False)
    sentinels = {key: object() for key in params}
    odd = type(est)(**sentinels)  # no check in the constructor, however wrong the values
    assert odd.get_params(deep=False) == sentinels
    assert all(getattr(odd, key) is value for key, value in sentinels.items())
    assert set(vars(odd)) == set(params)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_every_parameter_is_declared_once_and_checked_by_fit(name, data):
    est = _estimators()[name]
    params = est.get_params(deep=False)
    assert set(type(est)._param_checks) == set(params)
    for key, value in params.items():
        assert type(est)._param_checks[key].accepts(value), (key, value)  # defaults pass
    for key in params:
        wrong = clone(est).set_params(**{key: object()})
        with pytest.raises(UserInputError, match=f"{est.method} parameter {key!r}"):
            wrong.fit(*data)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_unfitted_state_fit_returns_self_and_clone_starts_unfitted(name, data):
    est = _estimators()[name]
    x, scores = data
    for call in (lambda: est.decision_function(x), est.summary):
        with pytest.raises(NotFittedError):
            call()
    assert est.fit(x, scores) is est
    assert [a for a in vars(est) if a not in est.get_params(deep=False)] == [
        a for a in vars(est) if a.endswith("_")
    ]  # everything fit adds is a fitted attribute
    copy = clone(est)
    assert not [a for a in vars(copy) if a.endswith("_")]
    assert copy.get_params(deep=False).keys() == est.get_params(deep=False).keys()
    np.testing.assert_array_equal(copy.fit(x, scores).direction_, est.direction_)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_a_seed_determines_the_fit_and_inputs_are_left_unchanged(name, data):
    x, scores = data
    frozen_x, frozen_scores = _read_only(*data)  # an in-place write would raise
    first = _estimators()[name].fit(frozen_x, frozen_scores)
    second = _estimators()[name].fit(x.copy(), {k: v.copy() for k, v in scores.items()})
    np.testing.assert_array_equal(first.direction_, second.direction_)
    np.testing.assert_array_equal(first.sample_indices_, second.sample_indices_)
    assert first.intercept_ == second.intercept_
    np.testing.assert_array_equal(frozen_x, x)
    for key in scores:
        np.testing.assert_array_equal(frozen_scores[key], scores[key])


@pytest.mark.parametrize("name", ESTIMATORS)
def test_n_features_in_and_decision_function_shape(name, data):
    x, scores = data
    est = _estimators()[name].fit(x, scores)
    assert est.n_features_in_ == 12 and est.direction_.shape == (3, 4)
    assert est.decision_function(x).shape == (len(x),)
    with pytest.raises(UserInputError, match="12 features"):
        est.decision_function(np.zeros((2, 13), np.float32))


@pytest.mark.parametrize("method", sorted(OTHER_VALUES))
def test_set_params_reaches_the_fit(method, data):
    x, scores = data
    other = OTHER_VALUES[method]
    est = make_estimator(method, "smile").set_params(**other)
    assert {k: est.get_params()[k] for k in other} == other
    fitted = clone(est).fit(x, scores)
    expected = make_estimator(method, "smile", **other).fit(x, scores)
    np.testing.assert_array_equal(fitted.direction_, expected.direction_)
    with pytest.raises(ValueError, match="Invalid parameter"):
        est.set_params(not_a_parameter=1)


def test_conditional_exposes_its_base_parameters_deeply(data):
    est = _estimators()["conditional"]
    assert est.get_params()["base_estimator__ratio"] == 0.3
    est.set_params(base_estimator__ratio=0.25)
    assert est.base_estimator.ratio == 0.25
    base = est.base_estimator
    est.fit(*data)
    assert est.base_estimator is base and not hasattr(base, "direction_")  # cloned, untouched
    assert est.base_estimator_.ratio == 0.25


# ---------------------------------------------------------------- the method table


def test_the_table_serves_the_command_line_names():
    assert tuple(METHODS) == choices.DIRECTION_METHODS
    assert all(cls.method == name for name, cls in METHODS.items())


def test_each_boundary_option_is_an_estimator_parameter_and_a_flag():
    from ganedit import cli

    takers = {o: [m for m in METHODS if o in method_options(m)] for o in OPTION_FIELDS}
    assert all(takers.values()), takers  # no option that no method takes
    flags = inspect.signature(cli.boundary_cmd).parameters
    assert set(OPTION_FIELDS) <= set(flags)
    assert method_options("interfacegan") == ("ratio", "solver", "split_mode")
    assert method_options("mab") == ("n", "threshold", "quota")


def test_the_study_runs_what_its_committed_report_shows():
    from ganedit.pipeline import METHOD_LABELS, _study_plans

    assert METHOD_LABELS == (
        "interfacegan", "interfacegan+conditional", "mab", "mab-exact", "stratified",
        "regression",
    )  # fmt: skip
    assert _study_plans({"n": 40, "threshold": 0.9}) == {
        "interfacegan": {"method": "interfacegan"},
        "mab": {"method": "mab", "n": 40, "threshold": 0.9},
        "mab-exact": {"method": "mab", "n": 40, "threshold": 0.9, "quota": "exact"},
        "stratified": {"method": "stratified", "threshold": 0.9},
        "regression": {"method": "regression", "threshold": None},
    }


class _Median(DirectionEstimator):
    """A toy method: the difference of the two classes' medians over confident rows."""

    method = "median"
    _param_checks = {
        "attribute": OneOf(("smile",)),
        "threshold": OrNone(Real(0.5, 1.0, open_low=True, open_high=True)),
        "random_state": OrNone(Real(0, 2**32 - 1)),
    }
    study_runs = {"median": {}}

    def __init__(self, attribute, threshold=0.9, random_state=0):
        self.attribute = attribute
        self.threshold = threshold
        self.random_state = random_state

    def _fit(self, latents, scores):
        flat = np.asarray(latents).reshape(len(latents), -1).astype(np.float64)
        p = np.asarray(scores[self.attribute])
        rows = np.flatnonzero((p > self.threshold) | (p < 1 - self.threshold))
        y = (p[rows] >= 0.5).astype(np.uint8)
        vector = np.median(flat[rows][y == 1], 0) - np.median(flat[rows][y == 0], 0)
        self._finish(flat, np.asarray(latents).shape[1:], vector, rows, y)
        return self


def test_a_new_method_is_one_class_and_one_table_row(monkeypatch, data):
    from ganedit.pipeline import _study_plans

    monkeypatch.setitem(METHODS, "median", _Median)
    cfg = BoundaryConfig(method="median", attribute="smile", latents="x", threshold=0.8, seed=2)
    est = build_estimator(cfg)
    assert (type(est), est.threshold, est.random_state) == (_Median, 0.8, 2)
    assert est.fit(*data).direction_[1, 0] > 0.9
    with pytest.raises(UserInputError, match=r"options of median among \['threshold'\]"):
        build_estimator(dataclasses.replace(cfg, ratio=0.1))
    assert _study_plans({"n": 5, "threshold": 0.9})["median"] == {
        "method": "median", "threshold": 0.9,
    }  # fmt: skip
