import numpy as np
import pytest

from ganedit.directions.fit import (
    BoundaryConfig,
    build_estimator,
    load_latents,
    load_scores,
    reference_n,
)
from ganedit.errors import UserInputError


def test_reference_score_files_are_named_by_attribute_or_file(tmp_path):
    path = tmp_path / "glasses_scores.npy"
    np.save(path, np.array([[0.1], [0.9]], np.float32))
    assert list(load_scores("", str(path), "")) == ["glasses"]
    np.testing.assert_allclose(load_scores("", str(path), "eyeglasses")["eyeglasses"], [0.1, 0.9])


def test_pickled_score_arrays_and_bad_latents_are_user_errors(tmp_path):
    path = tmp_path / "smile_scores.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserInputError, match="pickled Python objects"):
        load_scores("", str(path), "smile")
    codes = tmp_path / "z.npy"
    np.save(codes, np.arange(4))
    with pytest.raises(UserInputError, match="float latent codes"):
        load_latents(str(codes), "w")


def test_options_go_to_the_method_that_takes_them():
    cfg = BoundaryConfig(method="mab", attribute="smile", latents="x", n=500, quota="exact")
    est = build_estimator(cfg)
    assert (est.n, est.quota, est.threshold) == (500, "exact", 0.9)
    with pytest.raises(UserInputError, match="options of stratified"):
        build_estimator(BoundaryConfig(method="stratified", attribute="smile", latents="x", n=5))
    with pytest.raises(UserInputError, match="--conditions"):
        build_estimator(BoundaryConfig(method="conditional", attribute="smile", latents="x"))


def test_foreign_options_are_named_as_flags():
    cfg = BoundaryConfig(method="mab", attribute="smile", latents="x", split_mode="reference")
    with pytest.raises(UserInputError, match="received --split-mode"):
        build_estimator(cfg)


def test_n_means_what_it_meant_in_each_reference_script():
    # InterFaceGAN: a count or a ratio of top/bottom samples (the ratio field); MAB: a size.
    assert reference_n("interfacegan", 0.02, None) == (0.02, None)
    assert reference_n("interfacegan", 500.0, None) == (500.0, None)
    assert reference_n("mab", 40.0, None) == (None, 40)
    assert reference_n("mab", None, 0.3) == (0.3, None)
    with pytest.raises(UserInputError, match="received both"):
        reference_n("interfacegan", 0.02, 0.1)
    with pytest.raises(UserInputError, match="whole subset size"):
        reference_n("mab", 2.5, None)
