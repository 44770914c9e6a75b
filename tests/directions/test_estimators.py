import json
import logging
import tracemalloc

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.covariance import ledoit_wolf
from sklearn.svm import SVC, LinearSVC

from ganedit.directions import estimators
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
from ganedit.errors import DamagedInputError, FitError, UserInputError

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
    with pytest.raises(FitError, match="at least 2 samples"):
        InterFaceGAN("yaw", ratio=0.01).fit(x, scores)
    with pytest.raises(FitError, match="at least one training sample"):
        InterFaceGAN("yaw", ratio=2, split=0.4).fit(x, scores)  # int(2 * 0.4) = 0


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


def test_data_that_cannot_serve_a_method_raises_fit_error():
    """FitError: the data, not a parameter, is the problem; it is not a UserInputError."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    unsure = {"smile": np.full(50, 0.6), "age": np.full(50, 0.99)}
    one_class = {"smile": np.full(50, 0.99), "age": rng.choice([0.01, 0.99], 50)}
    twins = {"smile": _sigmoid(x[:, 0]), "age": _sigmoid(x[:, 0])}
    cases = [
        (MAB("smile"), unsure, "confident"),
        (MAB("smile", n=20), one_class, "both classes"),
        (Fisher("smile"), one_class, "both classes"),
        (Regression("smile"), one_class, "varying scores"),
        (Regression("smile", ridge=0), twins, "singular"),
        (Stratified("smile", min_per_class=30), twins, "nuisance cell"),
    ]
    for estimator, scores, message in cases:
        with pytest.raises(FitError, match=message) as caught:
            estimator.fit(x, scores)
        assert not isinstance(caught.value, UserInputError)
    # a singular within-class covariance: one coordinate is a copy of another
    copy = np.repeat(x[:, :1], 2, axis=1)
    labels = {"smile": np.where(x[:, 1] > 0, 0.99, 0.01)}
    with pytest.raises(FitError, match="well-conditioned"):
        Fisher("smile", shrinkage=0.0).fit(copy, labels)


def test_parameter_and_input_mistakes_stay_user_input_errors():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    scores = {"smile": _sigmoid(3 * x[:, 0]), "age": _sigmoid(3 * x[:, 1])}
    cases = [
        (Stratified("smile", attributes=["age"]), x, scores, "target among"),
        (Regression("smile"), x[:40], scores, "one per latent"),
        (Regression("smile"), x[:, 0], scores, "latents of shape"),
        (MAB("smile", threshold=0.4), x, scores, r"'threshold' as null or .* \(0.5, 1.0\)"),
        (MAB("smile", n=0), x, scores, r"mab parameter 'n' as an integer in \[1, "),
        (Stratified("smile", weighting="median"), x, scores, "weighting"),
        (InterFaceGAN("smile", solver="sgd"), x, scores, "solver"),
        (InterFaceGAN("smile", split_mode="paper"), x, scores, "'split_mode' as one of"),
        (InterFaceGAN("smile", ratio=0), x, scores, r"'ratio' as a finite number in \(0.0, "),
        (InterFaceGAN("smile", split=1.0), x, scores, r"'split' as .* \(0.0, 1.0\), received 1.0"),
        (Regression("smile", clip=0.5), x, scores, "'clip'"),
        (Fisher("smile", shrinkage="oas"), x, scores, "'shrinkage' as one of \\['auto'\\] or"),
        (Conditional("smile", np.eye(4)[:1]), x, scores, "'base_estimator' as a direction"),
    ]
    for estimator, latents, given, message in cases:
        with pytest.raises(UserInputError, match=message):
            estimator.fit(latents, given)


def test_non_finite_latents_or_scores_are_damaged_input():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    scores = {"smile": _sigmoid(3 * x[:, 0]), "age": _sigmoid(3 * x[:, 1])}
    bad_x = x.copy()
    bad_x[17, 2] = np.inf
    bad_scores = {**scores, "age": np.where(np.arange(50) == 3, np.nan, scores["age"])}
    for estimator in (MAB("smile", n=20), Regression("smile"), InterFaceGAN("smile", ratio=0.2)):
        with pytest.raises(DamagedInputError, match="finite latents"):
            clone(estimator).fit(bad_x, scores)
    with pytest.raises(DamagedInputError, match="finite scores"):
        Regression("smile").fit(x, bad_scores)
    with pytest.raises(DamagedInputError, match="finite condition"):
        project_orthogonal(np.ones(4), np.array([1.0, np.nan, 0.0, 0.0]))


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


# ---------------------------------------------------------------- exact arithmetic


@pytest.fixture(scope="module")
def many_attributes():
    """8 attributes on the first 8 coordinates, 4,000 codes: 128 nuisance cells."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(4000, 12)).astype(np.float32)
    names = ["a", "b", "c", "d", "e", "f", "g", "h"]
    scores = {k: _sigmoid(4 * x[:, i] + 0.3) for i, k in enumerate(names)}
    return x, scores


def _stratified_by_hand(x, scores, target, threshold):
    """Brief f.1 in float64: equal-weight mean of within-cell class differences."""
    probs = np.stack([scores[k] for k in scores], 1)
    keep = np.ones(len(x), bool)
    if threshold is not None:
        keep = ((probs > threshold) | (probs < 1 - threshold)).all(1)
    labels = probs[keep] >= 0.5
    rows = x[keep].astype(np.float64)
    t = list(scores).index(target)
    cells = {}
    for row, lab in zip(rows, labels, strict=True):
        cells.setdefault(tuple(np.delete(lab, t)), {0: [], 1: []})[int(lab[t])].append(row)
    diffs = [np.mean(c[1], 0) - np.mean(c[0], 0) for c in cells.values() if c[0] and c[1]]
    vector = np.mean(diffs, 0)
    return vector / np.linalg.norm(vector)


@pytest.mark.parametrize("threshold", [0.6, None])
def test_stratified_equals_the_formula_by_hand_with_many_cells(many_attributes, threshold):
    """256 groups (2 classes x 128 cells) take the sorted path; 8 groups the one-hot path."""
    x, scores = many_attributes
    assert estimators._ONE_HOT_GROUPS < 2 * 2**7
    for names in (list(scores), ["a", "b", "c", "d"]):
        subset = {k: scores[k] for k in names}
        est = Stratified("a", threshold=threshold).fit(x, subset)
        expected = _stratified_by_hand(x, subset, "a", threshold)
        # float32 sums of up to a few thousand rows: ~1e-7 relative, far below 1e-5
        np.testing.assert_allclose(est.direction_, expected, rtol=0, atol=1e-5)


def test_regression_and_mab_equal_their_formulas_in_float64():
    """The float32 block products against float64 normal equations and plain means."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=(30_000, 24)).astype(np.float32)
    x[:, :3] += rng.normal(size=(30_000, 1))  # correlated attributes
    scores = {k: _sigmoid(2 * x[:, i]) for i, k in enumerate(["smile", "age", "gender"])}
    for threshold in (None, 0.6):  # consecutive rows (slices), then scattered rows (gathers)
        est = Regression("smile", threshold=threshold).fit(x, scores)
        p = np.stack(list(scores.values()), 1)
        keep = np.ones(len(x), bool) if threshold is None else ((p > 0.6) | (p < 0.4)).all(1)
        q = np.clip(p[keep], 1e-4, 1 - 1e-4)
        design = np.column_stack([np.log(q / (1 - q)), np.ones(keep.sum())])
        normal = design.T @ design + np.diag([1e-3] * 3 + [0.0])
        loadings = np.linalg.solve(normal, design.T @ x[keep].astype(np.float64))
        expected = loadings[0] / np.linalg.norm(loadings[0])
        np.testing.assert_allclose(est.direction_, expected, rtol=0, atol=1e-5)
        y = p[keep, 0] >= 0.5
        decision = x[keep].astype(np.float64) @ est.direction_ + est.intercept_
        assert abs(est.accuracy_ - np.mean((decision > 0) == y)) <= 2 / keep.sum()
        mid = (x[keep][y].mean(0, dtype=np.float64) + x[keep][~y].mean(0, dtype=np.float64)) / 2
        assert est.intercept_ == pytest.approx(-mid @ est.direction_, abs=1e-5)
    mab = MAB("smile", n=3000, threshold=None).fit(x, scores)
    rows, y = mab.sample_indices_, mab.sample_labels_ == 1
    chosen = x[rows].astype(np.float64)
    diff = chosen[y].mean(0) - chosen[~y].mean(0)
    np.testing.assert_allclose(mab.direction_, diff / np.linalg.norm(diff), rtol=0, atol=1e-5)


# ---------------------------------------------------------------- reference parity


def test_mab_without_a_confidence_filter_uses_every_row(world_a):
    """threshold=None is the reference's default: every sample, labelled p >= 0.5."""
    x, scores, basis = world_a
    mab = MAB("smile", n=1000, threshold=None).fit(x, scores)
    assert mab.n_confident_ == len(x) == mab.table_.n_samples
    assert mab.empty_cells_ == [] and mab.summary()["empty_cells"] == []
    assert mab.direction_ @ basis[0] >= 0.95
    filtered = MAB("smile", n=1000).fit(x, scores)
    assert filtered.n_confident_ < len(x)


def test_mab_warns_about_and_records_empty_cells(caplog):
    """No confident sample wears glasses and smiles: that combination cannot be balanced."""
    rng = np.random.default_rng(13)
    x = rng.normal(size=(4000, 8)).astype(np.float32)
    smile, glasses = x[:, 0] > 0, x[:, 1] > 0
    glasses &= ~smile  # (smile=1, glasses=1) never happens
    scores = {
        "smile": np.where(smile, 0.97, 0.03),
        "gender": _sigmoid(4 * x[:, 2]),
        "glasses": np.where(glasses, 0.98, 0.02),
    }
    with caplog.at_level(logging.WARNING, logger="ganedit.directions.estimators"):
        mab = MAB("smile", n=800).fit(x, scores)
    assert mab.empty_cells_ == [
        {"key": "101", "labels": {"smile": 1, "gender": 0, "glasses": 1}},
        {"key": "111", "labels": {"smile": 1, "gender": 1, "glasses": 1}},
    ]
    assert mab.summary()["empty_cells"] == mab.empty_cells_
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "2 of 8 cells" in text
    assert "smile=1, gender=0, glasses=1" in text and "smile=1, gender=1, glasses=1" in text
    assert "cannot be made independent" in text


def test_stratified_warns_about_cells_it_leaves_out(world_a, caplog):
    x, scores, _ = world_a
    with caplog.at_level(logging.WARNING, logger="ganedit.directions.estimators"):
        est = Stratified("smile", min_per_class=100).fit(x, scores)
    assert est.cells_skipped_ and est.empty_cells_ == []
    text = " ".join(r.getMessage() for r in caplog.records)
    assert f"{len(est.cells_skipped_)} of 4 nuisance cells" in text
    assert "not adjusted" in text
    for cell in est.cells_skipped_:
        assert f"gender={cell['labels']['gender']}, glasses={cell['labels']['glasses']}" in text
    # a nuisance combination with no sample at all
    no_glasses = {**scores, "glasses": np.full(len(x), 0.01)}
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganedit.directions.estimators"):
        est = Stratified("smile").fit(x, no_glasses)
    assert [c["key"] for c in est.empty_cells_] == ["01", "11"]
    assert "no sample in (gender=0, glasses=1); (gender=1, glasses=1)" in caplog.text


def _reference_train_boundary(latents, scores_n1, ratio, split_ratio=0.7):
    """genforce/interfacegan train_boundary as the brief describes it (b.2), written here.

    Uses NumPy's legacy global generator, as the reference does; returns the unit boundary
    (float32, bias dropped), and the training and validation rows as input row numbers.
    """
    n = len(latents)
    order = np.argsort(scores_n1, axis=0)[::-1, 0]  # ascending argsort, reversed
    k = min(int(n * ratio) if 0 < ratio <= 1 else ratio, n // 2)
    n_train = int(k * split_ratio)
    positives = np.arange(k)
    np.random.shuffle(positives)
    negatives = np.arange(k)
    np.random.shuffle(negatives)
    top, bottom = order[:k], order[-k:]
    train = np.concatenate([top[positives[:n_train]], bottom[negatives[:n_train]]])
    val = np.concatenate([top[positives[n_train:]], bottom[negatives[n_train:]]])
    labels = np.concatenate([np.ones(n_train, np.int64), np.zeros(n_train, np.int64)])
    svm = SVC(kernel="linear").fit(latents[train], labels)
    boundary = svm.coef_.reshape(1, -1).astype(np.float32)
    val_labels = np.concatenate([np.ones(k - n_train), np.zeros(k - n_train)])
    middle, sorted_scores = order[k:-k], scores_n1[order]
    middle_labels = np.ones(len(middle))
    middle_labels[scores_n1[middle, 0] < (sorted_scores[0] + sorted_scores[-1]) / 2] = 0
    accuracies = {
        "val": np.mean(svm.predict(latents[val]) == val_labels),
        "remaining": np.mean(svm.predict(latents[middle]) == middle_labels),
    }
    return boundary / np.linalg.norm(boundary), train, val, accuracies


@pytest.mark.parametrize("seed", [0, 5, 2024])
def test_interfacegan_reference_split_reproduces_the_reference(seed):
    """Same rows, same order, same libsvm: the same boundary and the same split."""
    rng = np.random.default_rng(100 + seed)
    x = rng.normal(size=(1500, 12)).astype(np.float32)
    # two decimals: many tied scores, where argsort-then-reverse differs from a stable sort
    raw = np.round(_sigmoid(1.5 * x[:, 0] + 0.5 * rng.normal(size=1500)), 2)
    scores_n1 = raw.astype(np.float32)[:, None]  # the reference's (N, 1) score file
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        boundary, train, val, accuracies = _reference_train_boundary(x, scores_n1, ratio=0.1)
        np.random.seed(seed)
        before = np.random.get_state()
        est = InterFaceGAN(
            "smile", ratio=0.1, solver="kernel", split_mode="reference", random_state=seed
        ).fit(x, {"smile": scores_n1})
        after = np.random.get_state()
    finally:
        np.random.set_state(saved)
    assert before[1].tolist() == after[1].tolist() and before[2:] == after[2:]  # untouched
    np.testing.assert_array_equal(est.sample_indices_, train)
    np.testing.assert_array_equal(est.val_indices_, val)
    # unit vectors; the reference's differs only by its float32 cast (~1e-7)
    np.testing.assert_allclose(est.direction_, boundary[0], rtol=0, atol=1e-6)
    assert est.summary()["split_mode"] == "reference"
    # the reference only logs these; a sample on the hyperplane could flip on round-off
    assert est.val_accuracy_ == pytest.approx(accuracies["val"], abs=1.5 / len(val))
    n_middle = len(x) - 2 * est.k_
    assert est.remaining_accuracy_ == pytest.approx(accuracies["remaining"], abs=1.5 / n_middle)
    default = InterFaceGAN("smile", ratio=0.1, solver="kernel", random_state=seed).fit(
        x, {"smile": scores_n1}
    )
    assert not np.array_equal(np.sort(default.sample_indices_), np.sort(train))


def test_interfacegan_fast_solver_matches_liblinear_on_centred_data(separable):
    """The fast solver is LinearSVC on train-centred codes; the intercept moved back."""
    x, scores, _ = separable
    est = InterFaceGAN("smile", ratio=0.2, random_state=3).fit(x, scores)
    train, y = x[est.sample_indices_], est.sample_labels_
    mean = train.mean(0, dtype=np.float64)
    svm = LinearSVC(C=1.0, dual="auto", random_state=3).fit(train - mean, y)
    w = svm.coef_[0] / np.linalg.norm(svm.coef_[0])
    np.testing.assert_allclose(est.direction_, w, rtol=0, atol=1e-12)
    expected = (svm.intercept_[0] - svm.coef_[0] @ mean) / np.linalg.norm(svm.coef_[0])
    assert est.intercept_ == pytest.approx(expected, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------- memory


@pytest.mark.parametrize(
    "estimator",
    [MAB("smile", n=2000), Stratified("smile"), Regression("smile"), InterFaceGAN("smile")],
    ids=["mab", "stratified", "regression", "interfacegan"],
)
def test_fits_allocate_well_under_the_latents_size(estimator):
    """No float64 copy of the latents and no gather of every row (each would be >= 1x)."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal((100_000, 256), dtype=np.float32)  # 102 MB
    scores = {"smile": _sigmoid(3 * x[:, 0]), "age": _sigmoid(3 * x[:, 1])}
    tracemalloc.start()
    try:
        clone(estimator).fit(x, scores)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * x.nbytes


def test_regression_learns_a_continuous_target_apart_from_correlated_binaries():
    """yaw (degrees) moves the code along e_yaw; smile along e_smile, and smile and yaw are
    correlated. Regressing on both finds e_yaw for yaw; a naive class-mean split does not."""
    rng = np.random.default_rng(3)
    n, d = 20_000, 16
    smile_logit = rng.normal(0, 2, n)
    yaw = 10 * rng.normal(size=n) + 6 * smile_logit  # smiling faces turn right, here
    x = rng.normal(0, 0.3, (n, d))
    x[:, 0] += yaw / 20  # e_yaw: 1 unit per 20 degrees
    x[:, 1] += smile_logit / GAIN  # e_smile
    scores = {"smile": _sigmoid(smile_logit), "yaw": yaw}
    est = Regression("yaw").fit(x.astype(np.float32), scores)
    assert est.attributes_ == ["smile", "yaw"] and est.continuous_ == ["yaw"]
    assert est.direction_[0] > 0.99  # e_yaw, smile's share removed
    assert est.loadings_[1, 0] == pytest.approx(1 / 20, rel=0.02)  # code per degree
    # the two sides split at the median yaw: the decision crosses 0 there
    median = np.median(yaw)
    assert abs(-est.intercept_ / est.direction_[0] * 20 - median) < 1.5
    assert est.summary()["continuous"] == ["yaw"]
    naive = x[yaw >= median].mean(0) - x[yaw < median].mean(0)
    assert abs(naive[1]) / np.linalg.norm(naive) > 0.2  # what the regression removed
    # a threshold filters on the probabilities only; continuous values are never "confident"
    assert Regression("yaw", threshold=0.9).fit(x, scores).n_confident_ < n
    with pytest.raises(UserInputError, match="probabilities"):
        Regression("smile", attributes=["smile", "age"]).fit(x, {**scores, "age": yaw})


def test_scores_of_unequal_lengths_are_refused_in_one_line():
    """An edited scores_dict with one attribute short: a user mistake, not a crash."""
    from ganedit.directions.estimators import Regression

    rng = np.random.default_rng(0)
    latents = rng.normal(size=(40, 4)).astype(np.float32)
    scores = {"smile": rng.uniform(size=40), "age": rng.uniform(size=39)}
    with pytest.raises(UserInputError, match="one score per sample") as err:
        Regression(attribute="smile").fit(latents, scores)
    assert "\n" not in str(err.value)
