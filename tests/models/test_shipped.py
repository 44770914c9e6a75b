"""The measuring networks shipped in the package: present, small, and doing their job."""

import numpy as np
import pytest

from ganedit.evaluation.predictors import evaluate_attribute_net, evaluate_identity_net
from ganedit.models.registry import PREDICTORS, load_predictor, weights_dir
from ganedit.world.config import BINARY_ATTRIBUTES
from ganedit.world.factors import sample_factors
from ganedit.world.render import render


@pytest.fixture(scope="module")
def labeler():
    return load_predictor("labeler")


def test_shipped_weights_load_by_name_and_stay_small():
    total = 0
    for name in PREDICTORS:
        model = load_predictor(name)
        assert not model.training
        total += sum(p.stat().st_size for p in weights_dir(name).iterdir())
    assert total <= 10 * 2**20


@pytest.mark.parametrize("name", BINARY_ATTRIBUTES)
def test_toggling_an_attribute_moves_only_that_prediction(celeba, labeler, name):
    base = sample_factors(celeba, 11, 0, 64)
    off = labeler.predict(render(base.replace(**{name: 0.05}), 64))
    on = labeler.predict(render(base.replace(**{name: 0.95}), 64))
    assert (off[name] < 0.5).mean() >= 0.95 and (on[name] > 0.5).mean() >= 0.95
    for other in BINARY_ATTRIBUTES:
        if other != name:
            flipped = (off[other] > 0.5) != (on[other] > 0.5)
            assert flipped.mean() <= 0.05, other
            assert np.abs(on[other] - off[other]).mean() < 0.05, other


def test_labeler_reads_yaw(celeba, labeler):
    base = sample_factors(celeba, 12, 0, 32)
    for yaw in (-50.0, 0.0, 30.0):
        pred = labeler.predict(render(base.replace(yaw=yaw), 64))["yaw"]
        assert abs(np.median(pred) - yaw) < 4.0


@pytest.mark.slow  # held-out renders through every shipped network: 5 s
def test_quick_held_out_quality():
    report = evaluate_attribute_net(load_predictor("evaluator"), n=1000)
    assert min(report[f"{a}_accuracy"] for a in BINARY_ATTRIBUTES) >= 0.97
    assert (
        evaluate_identity_net(load_predictor("identity"), n_identities=300)["verification_auc"]
        >= 0.98
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["labeler", "evaluator"])
def test_model_card_attribute_bars(name):
    report = evaluate_attribute_net(load_predictor(name), n=5000)
    assert min(report[f"{a}_accuracy"] for a in BINARY_ATTRIBUTES) >= 0.98
    assert report["yaw_mae_deg"] <= 3.0


@pytest.mark.slow
def test_model_card_identity_bar():
    assert (
        evaluate_identity_net(load_predictor("identity"), n_identities=2000)["verification_auc"]
        >= 0.99
    )


@pytest.mark.parametrize("name", ["world64", "world64-v1"])
def test_embedded_generator_loads_by_name_small_and_deterministic(name):
    from ganedit.models.sources import load_generator

    source = load_generator(name)
    assert source.spaces == ("z", "w", "ws") and source.resolution == 64
    size = sum(p.stat().st_size for p in weights_dir(name).iterdir())
    assert size <= 15 * 2**20
    z = source.sample_z(4, seed=0)
    a = source.synthesize(z)
    assert a.shape == (4, 3, 64, 64) and a.abs().max() <= 1
    # Batch size changes only the convolution kernels' summation order (float noise ~1e-5).
    np.testing.assert_allclose(a.numpy(), source.synthesize(z, batch_size=1).numpy(), atol=1e-4)
    # Its faces read as faces: the labeler is confident on most samples, on every attribute.
    probs = load_predictor("labeler").predict(source.synthesize(source.sample_z(64, seed=1)))
    table = np.stack([probs[a] for a in BINARY_ATTRIBUTES], 1)
    assert ((table > 0.9) | (table < 0.1)).all(1).mean() > 0.4


def test_shipped_encoder_belongs_to_world64_small_and_reconstructs(celeba):
    from ganedit.inversion.encode import encode_images
    from ganedit.models.registry import load_encoder
    from ganedit.models.sources import load_generator

    loaded = load_encoder("world64-encoder")
    size = sum(p.stat().st_size for p in weights_dir("world64-encoder").iterdir())
    assert size <= 15 * 2**20
    source = load_generator("world64")
    assert loaded["generator"]["sha256"] == source.identity["sha256"]
    # Held-out renders (a seed training never drew): far closer than the mean face, and the
    # same person by the identity embedder (the model card's bars, with a margin).
    images = render(sample_factors(celeba, 90001, 0, 32), 64)
    recon = source.synthesize(encode_images(loaded["encoder"], images), "ws")
    mean_face = source.synthesize(source.w_avg[None].expand(32, -1), "w")
    error = (recon - images).square().flatten(1).mean(1)
    assert error.median() < 0.5 * (mean_face - images).square().flatten(1).mean(1).median()
    identity = load_predictor("identity")
    cosine = (identity.embed(recon) * identity.embed(images)).sum(1)
    assert np.median(cosine) > 0.85
