import numpy as np
import torch

from ganedit.evaluation.inversion import code_error, reconstruction_metrics, summarise
from ganedit.inversion.perceptual import ReconstructionLoss
from ganedit.models.predictors import AttributeNet


def test_perfect_reconstructions_agree_everywhere():
    torch.manual_seed(0)
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    nets = [AttributeNet(width=8, hidden=16, image_size=16).eval() for _ in range(2)]
    metrics = reconstruction_metrics(images, images.clone(), ReconstructionLoss(None), *nets)
    assert np.all(metrics["pixel_mse"] == 0) and np.all(metrics["yaw_error"] == 0)
    assert all(np.all(v == 1) for k, v in metrics.items() if "agrees" in k)
    flipped = reconstruction_metrics(images, -images, ReconstructionLoss(None), *nets)
    assert np.all(flipped["pixel_mse"] > 0)


def test_summary_by_ground_truth_cells():
    metrics = {"pixel_mse": np.array([1.0, 2.0, 3.0, 4.0]), "x_agrees_y": np.array([1, 0, 1, 1.0])}
    factors = {
        "smile_label": np.array([1, 1, 0, 0.0]),
        "gender_label": np.array([1, 0, 0, 1.0]),
        "glasses_label": np.array([0, 0, 0, 0.0]),
        "age_label": np.array([1, 1, 1, 1.0]),
        "yaw": np.array([40.0, -35.0, 0.0, 10.0]),
    }
    report = summarise(metrics, factors)
    assert report["all"] == {"n": 4, "pixel_mse": 2.5, "x_agrees_y": 0.75}
    assert report["smiling men"] == {"n": 1, "pixel_mse": 1.0, "x_agrees_y": 1.0}
    assert report["glasses"] == {"n": 0}
    assert report["|yaw| > 30"]["n"] == 2 and report["|yaw| > 30"]["x_agrees_y"] == 0.5


def test_code_error_is_relative_to_the_distance_from_the_mean():
    w_avg = torch.zeros(8)
    true = torch.ones(2, 3, 8)
    assert np.allclose(code_error(true, true, w_avg), 0)
    assert np.allclose(code_error(2 * true, true, w_avg), 1)


def test_editability_of_ws_codes():
    from ganedit.evaluation.inversion import editability
    from ganedit.models.predictors import IdentityNet
    from ganedit.models.sources import StyleGANSource
    from ganedit.models.stylegan2 import Generator

    torch.manual_seed(0)
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16).eval()
    source = StyleGANSource(g, "tiny")
    ws = source.to_ws(source.sample_z(6, seed=1), "z")
    evaluator = AttributeNet(width=8, hidden=16, image_size=16).eval()
    identity = IdentityNet(width=8, dim=8, image_size=16).eval()
    direction = np.zeros(16, np.float32)
    direction[0] = 1.0
    alphas = np.linspace(0, 40, 5)
    result = editability(source, ws, {"smile": direction}, evaluator, identity, alphas)
    record = result["smile"]
    assert set(record) == {"step", "off_target", "identity", "flipped_at_last_step"}
    assert 0 <= record["flipped_at_last_step"] <= 1
    if np.isfinite(record["step"]):
        assert 0 <= record["step"] <= 40 and -1 <= record["identity"] <= 1
