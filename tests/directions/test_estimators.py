import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.covariance import ledoit_wolf

from ganedit.directions.estimators import (
    MAB,
    METHODS,
    Conditional,
    Fisher,
    InterFaceGAN,
    Regression,
    Stratified,
    _ledoit_wolf,
    make_estimator,
    project_orthogonal,
)
from ganedit.errors import UserInputError

GAIN = 2.0  # logit per unit of latent along an attribute direction


def _sigmoid(t):
    return 1 / (1 + np.exp(-t))


@pytest.fixture(scope="module")
def world_a():
    """Discrete attribute states along orthogonal e_k, strongly correlated across k.

    gender copies smile 85% of the time, glasses 80%, so the class centroids of smile also
    move along e_gender and e_glasses. The disentangled smile direction is e_smile.
    """
    rng = np.random.default_rng(0)
    n, d = 6000, 32
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0][:, :3].T  # [3, d] orthonormal
    a1 = rng.choice([-1, 1], n)
    a2 = np.where(rng.random(n) < 0.85, a1, -a1)
    a3 = np.where(rng.random(n) < 0.8, a1, -a1)
    x = 2.0 * np.stack([a1, a2, a3], axis=1) @ basis + rng.normal(size=(n, d))
    scores = {
        k: _sigmoid(GAIN * x @ basis[i]) for i, k in enumerate(["smile", "gender", "glasses"])
    }
    scores["yaw"] = rng.normal(0, 30, n)  # degrees: must be ignored by default
    return x.astype(np.float32), scores, basis


@pytest.fixture(scope="module")
def world_b():
    """Continuous attributes t_k = x . u_k with cos(u_1, u_2) = 0.5 and x ~ N(0, I).

    Raising smile with age held fixed means moving along the dual direction: the part of
    u_1 orthogonal to u_2.
    """
    rng = np.random.default_rng(1)
    n, d = 4000, 32
    q = np.linalg.qr(rng.normal(size=(d, 2)))[0].T
    u1, u2 = q[0], 0.5 * q[0] + np.sqrt(0.75) * q[1]
    x = rng.normal(size=(n, d))
    scores = {"smile": _sigmoid(GAIN * x @ u1), "age": _sigmoid(GAIN * x @ u2)}
    dual = (u1 - 0.5 * u2) / np.linalg.norm(u1 - 0.5 * u2)
    return x.astype(np.float32), scores, u1, u2, dual


@pytest.fixture(scope="module")
def separable():
    rng = np.random.default_rng(2)
    w = rng.normal(size=16)
    w /= np.linalg.norm(w)
    x = rng.normal(size=(2000, 16)).astype(np.float32)
    return x, {"smile": _sigmoid(5 * x @ w)}, w


# ---------------------------------------------------------------- planted world (a)


def test_world_a_class_centroids_are_entangled(world_a):
    x, scores, basis = world_a
    y = scores["smile"] >= 0.5
    naive = x[y].mean(0) - x[~y].mean(0)
    assert naive @ basis[0] / np.linalg.norm(naive) < 0.9


@pytest.mark.parametrize(
    "estimator",
    [
        MAB("smile", n=240),
        MAB("smile", n=240, quota="exact"),
        Stratified("smile"),
        Stratified("smile", weighting="inverse_variance"),
        Regression("smile"),
        Fisher("smile"),
    ],
    ids=["mab", "mab-exact", "stratified", "stratified-iv", "regression", "fisher"],
)
def test_world_a_disentangled_methods_recover_the_attribute_axis(world_a, estimator):
    x, scores, basis = world_a
    fitted = clone(estimator).fit(x, scores)
    assert fitted.direction_ @ basis[0] >= 0.95
    assert np.linalg.norm(fitted.direction_) == pytest.approx(1.0)
    assert fitted.accuracy_ > 0.95
    assert fitted.attributes_ == ["smile", "gender", "glasses"]  # yaw left out


def test_mab_records_its_table_and_sample(world_a):
    x, scores, _ = world_a
    mab = MAB("smile", n=240, quota="exact").fit(x, scores)
    assert mab.table_.n_samples == mab.n_confident_ < len(x)
    assert mab.n_samples_ == len(mab.sample_.indices) == 240
    assert set(mab.sample_.per_cell.values()) == {30}
    # the balanced sample makes smile independent of gender
    labels = np.stack([scores["smile"], scores["gender"]], 1)[mab.sample_.indices] >= 0.5
    assert abs(np.corrcoef(labels.T)[0, 1]) < 0.05


def test_stratified_reports_cells_and_effective_size(world_a):
    x, scores, _ = world_a
    est = Stratified("smile", min_per_class=100).fit(x, scores)
    used, skipped = est.cells_used_, est.cells_skipped_
    assert len(used) + len(skipped) == 4  # nuisance cells over (gender, glasses)
    assert all(min(c["n_positive"], c["n_negative"]) >= 100 for c in used)
    assert all(min(c["n_positive"], c["n_negative"]) < 100 for c in skipped)
    assert sum(c["weight"] for c in used) == pytest.approx(1.0)
    assert 0 < est.effective_n_ <= est.n_samples_
    json.dumps(est.summary())


# ---------------------------------------------------------------- planted world (b)


def test_world_b_regression_and_conditional_ifg_find_the_dual(world_b):
    x, scores, _, u2, dual = world_b
    assert Regression("smile").fit(x, scores).direction_ @ dual >= 0.95
    conditional = Conditional(InterFaceGAN("smile", ratio=0.1), [u2]).fit(x, scores)
    assert conditional.direction_ @ dual >= 0.95
    assert abs(conditional.direction_ @ u2) < 1e-6
    assert conditional.cosine_to_base_ < 0.95  # the base IFG direction was near u_1


def test_world_b_mab_stays_near_the_correlated_axis(world_b):
    """Balancing the labels leaves the continuous correlation of t_1 and t_2 inside each cell."""
    x, scores, u1, _, dual = world_b
    mab = MAB("smile", n=1000).fit(x, scores)
    assert mab.direction_ @ u1 > 0.8
    assert mab.direction_ @ dual < 0.8


# ---------------------------------------------------------------- projection


def _unit_rows(rng, k, d):
    v = rng.normal(size=(k, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_project_orthogonal_matches_the_reference_closed_forms():
    rng = np.random.default_rng(3)
    n, c1, c2 = _unit_rows(rng, 3, 24)
    one = n - (n @ c1) * c1
    np.testing.assert_allclose(project_orthogonal(n, c1), one / np.linalg.norm(one), atol=1e-10)
    p1, p2, r = n @ c1, n @ c2, c1 @ c2
    alpha = (p1 - p2 * r) / (1 - r**2 + 1e-8)
    beta = (p2 - p1 * r) / (1 - r**2 + 1e-8)
    two = n - alpha * c1 - beta * c2
    got = project_orthogonal(n[None], np.stack([c1, c2]))
    assert got.shape == (1, 24)
    np.testing.assert_allclose(got[0], two / np.linalg.norm(two), atol=1e-7)


def test_project_orthogonal_is_orthogonal_to_every_condition():
    rng = np.random.default_rng(4)
    n, conditions = rng.normal(size=(3, 8)), rng.normal(size=(4, 3, 8))  # ws-shaped
    out = project_orthogonal(n, conditions)
    assert out.shape == (3, 8)
    assert np.linalg.norm(out) == pytest.approx(1.0)
    assert np.abs(conditions.reshape(4, -1) @ out.ravel()).max() < 1e-6


def test_project_orthogonal_rejects_dependent_conditions_and_directions_in_their_span():
    rng = np.random.default_rng(5)
    n, c1, c2 = _unit_rows(rng, 3, 16)
    with pytest.raises(UserInputError, match="linearly independent"):
        project_orthogonal(n, np.stack([c1, c2, 0.3 * c1 - 2 * c2]))
    with pytest.raises(UserInputError, match="linearly independent"):
        project_orthogonal(n, np.stack([c1, c1]))
    with pytest.raises(UserInputError, match="span"):
        project_orthogonal(0.5 * c1 + c2, np.stack([c1, c2]))
    with pytest.raises(UserInputError, match="features"):
        project_orthogonal(n, rng.normal(size=(2, 15)))


# ---------------------------------------------------------------- InterFaceGAN


def test_interfacegan_separable_solvers_agree(separable):
    x, scores, w = separable
    fast = InterFaceGAN("smile", ratio=0.2, solver="fast").fit(x, scores)
    kernel = InterFaceGAN("smile", ratio=0.2, solver="kernel").fit(x, scores)
    for est in (fast, kernel):
        assert est.val_accuracy_ > 0.95 and est.accuracy_ == est.val_accuracy_
        assert np.linalg.norm(est.direction_) == pytest.approx(1.0)
        assert est.direction_ @ w > 0.95
    assert fast.direction_ @ kernel.direction_ > 0.99
    assert fast.k_ == 400 and fast.n_train_ == 560 and fast.n_val_ == 240
    assert fast.n_remaining_ == 1200 and 0.5 < fast.remaining_accuracy_ <= 1


def test_interfacegan_ratio_above_one_is_a_count_and_k_is_capped():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(100, 4)).astype(np.float32)
    scores = {"yaw": 40 * x[:, 0]}  # any monotone score works, not only probabilities
    assert InterFaceGAN("yaw", ratio=30).fit(x, scores).k_ == 30
    assert InterFaceGAN("yaw", ratio=500).fit(x, scores).k_ == 50
    with pytest.raises(UserInputError, match="at least 2 samples"):
        InterFaceGAN("yaw", ratio=0.01).fit(x, scores)


def test_interfacegan_keeps_the_intercept(separable):
    x, scores, w = separable
    shifted = x + 3.0 * w.astype(np.float32)  # hyperplane no longer through the origin
    est = InterFaceGAN("smile", ratio=0.2).fit(shifted, scores)
    assert est.intercept_ == pytest.approx(-3.0, abs=0.3)
    assert est.val_accuracy_ > 0.95


# ---------------------------------------------------------------- shared contract


@pytest.fixture(scope="module")
def small_ws():
    """[N, L, D] latents; attributes live on layer 1."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(1500, 3, 8)).astype(np.float32)
    scores = {
        "smile": _sigmoid(3 * x[:, 1, 0]),
        "age": _sigmoid(3 * x[:, 1, 1]),
        "yaw": 20 * x[:, 0, 0],
    }
    return x, scores


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_follows_the_estimator_contract(small_ws, method):
    x, scores = small_ws
    params = {"ratio": 0.2} if method == "interfacegan" else {}
    est = make_estimator(method, "smile", **params).fit(x, scores)
    assert est.direction_.shape == (3, 8)
    assert np.linalg.norm(est.direction_) == pytest.approx(1.0)
    assert est.direction_[1, 0] > 0.9
    assert est.n_features_in_ == 24 and est.n_samples_ > 0
    flat = x.reshape(len(x), -1)
    np.testing.assert_allclose(
        est.decision_function(x), flat @ est.direction_.ravel() + est.intercept_, rtol=1e-5
    )
    np.testing.assert_allclose(est.decision_function(flat), est.decision_function(x))
    assert 0.9 < est.accuracy_ <= 1
    assert est.get_params()["attribute"] == "smile"
    json.dumps(est.summary())
    again = clone(est).fit(x, scores)
    np.testing.assert_array_equal(again.direction_, est.direction_)


def test_make_estimator_rejects_unknown_names_and_parameters():
    with pytest.raises(UserInputError, match="interfacegan"):
        make_estimator("svm", "smile")
    with pytest.raises(UserInputError, match="ratio"):
        make_estimator("interfacegan", "smile", ration=0.1)
    assert make_estimator("mab", "smile", n=50).n == 50


def test_clear_errors_for_unusable_scores():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    unsure = {"smile": np.full(50, 0.6), "age": np.full(50, 0.99)}
    with pytest.raises(UserInputError, match="confident"):
        MAB("smile").fit(x, unsure)
    one_class = {"smile": np.full(50, 0.99), "age": rng.choice([0.01, 0.99], 50)}
    with pytest.raises(UserInputError, match="both classes"):
        MAB("smile", n=20).fit(x, one_class)
    with pytest.raises(UserInputError, match="target among"):
        Stratified("smile", attributes=["age"]).fit(x, one_class)
    with pytest.raises(UserInputError, match="one per latent"):
        Regression("smile").fit(x[:40], one_class)
    with pytest.raises(UserInputError, match="latents of shape"):
        Regression("smile").fit(x[:, 0], one_class)
    twins = {"smile": _sigmoid(x[:, 0]), "age": _sigmoid(x[:, 0])}
    with pytest.raises(UserInputError, match="singular"):
        Regression("smile", ridge=0).fit(x, twins)


def test_fisher_shrinkage_matches_sklearn_ledoit_wolf():
    rng = np.random.default_rng(9)
    centred = rng.normal(size=(400, 6)) * [1, 2, 3, 1, 1, 5]
    expected_cov, expected = ledoit_wolf(centred, assume_centered=True)
    fourth = float(np.sum(np.sum(centred**2, axis=1) ** 2))
    assert _ledoit_wolf(centred.T @ centred, fourth, 400) == pytest.approx(expected)
    assert expected_cov.shape == (6, 6)


def test_fisher_whitens_an_anisotropic_nuisance():
    """Classes differ along e_0 only, but a high-variance axis leaks into mu1 - mu0 noise."""
    rng = np.random.default_rng(10)
    n = 3000
    y = rng.random(n) < 0.5
    noise = rng.normal(size=(n, 6)) * [0.5, 1, 1, 1, 1, 1]
    noise[:, 1] += 3 * noise[:, 0] / 0.5  # correlated with the class axis
    x = noise + np.outer(np.where(y, 1.0, -1.0), np.eye(6)[0])
    scores = {"smile": np.where(y, 0.99, 0.01)}
    fisher = Fisher("smile", shrinkage=0.0).fit(x.astype(np.float32), scores)
    # Sigma^-1 (mu1 - mu0) with Sigma = cov(noise): the analytic Bayes direction
    bayes = np.linalg.solve(np.cov(noise.T), np.eye(6)[0])
    assert fisher.direction_ @ (bayes / np.linalg.norm(bayes)) > 0.99
    assert fisher.shrinkage_ == 0.0
    assert Fisher("smile").fit(x, scores).shrinkage_ >= 0.0
