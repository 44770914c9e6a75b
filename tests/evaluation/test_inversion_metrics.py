import numpy as np
import pytest
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
    assert set(metrics["labeler_reads_smile"]) <= {0.0, 1.0}
    assert all(np.all(v == 1) for k, v in metrics.items() if "agrees" in k)
    alone = reconstruction_metrics(images, images.clone(), ReconstructionLoss(None), nets[0], None)
    assert "evaluator_reads_smile" in alone and not any(k.startswith("labeler") for k in alone)
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


def test_tails_kept_counts_each_tail_that_keeps_its_attribute():
    from ganedit.evaluation.inversion import tails_kept

    factors = {
        "smile_label": np.array([1, 1, 1, 0, 0.0]),
        "gender_label": np.array([1, 1, 0, 1, 0.0]),
        "glasses_label": np.array([1, 0, 0, 1, 1.0]),
        "age_label": np.zeros(5),
        "yaw": np.array([40.0, -35.0, 0.0, 50.0, 10.0]),
    }
    metrics = {
        "labeler_reads_smile": np.array([1, 0, 1, 1, 0.0]),  # men 0, 1 smile: one keeps it
        "labeler_reads_glasses": np.array([1, 1, 0, 0, 1.0]),  # 0, 3, 4 wear them: 2 keep
        "yaw_error": np.array([3.0, 12.0, 50.0, 10.0, 0.0]),  # 0, 1, 3 turned: 0 and 3 keep
    }
    kept = tails_kept(metrics, factors)
    assert kept["smiling men"] == {"n": 2, "kept": 0.5, "what": "smile"}
    assert kept["glasses"]["n"] == 3 and kept["glasses"]["kept"] == pytest.approx(2 / 3)
    assert kept["|yaw| > 30"]["kept"] == pytest.approx(2 / 3)
    assert summarise(metrics, factors)["tails_kept"] == kept
    factors["glasses_label"][:] = 0
    assert tails_kept(metrics, factors)["glasses"] == {"n": 0, "kept": None, "what": "glasses"}


def test_code_error_is_relative_to_the_distance_from_the_mean():
    w_avg = torch.zeros(8)
    true = torch.ones(2, 3, 8)
    assert np.allclose(code_error(true, true, w_avg), 0)
    assert np.allclose(code_error(2 * true, true, w_avg), 1)


class _PlantedSource:
    """Renders a code as a flat image whose value is its first coordinate plus `offset`."""

    def __init__(self, offset: float = 0.0):
        self.offset = offset

    def synthesize(self, latents, space, batch_size=None):
        value = latents[:, 0, 0] + self.offset  # ws [N, L, D] -> [N]
        return value[:, None, None, None].expand(-1, 3, 4, 4).clone()


class _PlantedEvaluator:
    """Smiling exactly when the image is positive; gender never moves."""

    attributes = ("smile", "gender")
    attribute_kinds = {"smile": "probability", "gender": "probability", "yaw": "value"}
    input_size = 1

    def predict(self, images, batch_size=None):
        value = images.mean((1, 2, 3)).double().numpy()
        return {
            "smile": 1 / (1 + np.exp(-50 * value)),
            "gender": np.full(len(value), 0.9),
            "yaw": np.zeros(len(value)),
        }


class _PlantedIdentity:
    """Embeds an image value m as (cos m, sin m): the cosine of two images is cos(dm)."""

    def embed(self, images, batch_size=None):
        value = images.mean((1, 2, 3)).double().numpy()
        return np.stack([np.cos(value), np.sin(value)], axis=1)


def _planted_codes(first: list[float]) -> torch.Tensor:
    ws = torch.zeros(len(first), 3, 4)
    ws[:, :, 0] = torch.tensor(first)[:, None]
    return ws


def test_editability_finds_the_planted_flip_step():
    from ganedit.evaluation.inversion import editability

    # |first coordinate| is the step that flips each code: half flip at the median, 0.205
    ws = _planted_codes([-0.405, -0.205, 0.105, 0.305])
    direction = np.array([1.0, 0, 0, 0], np.float32)
    alphas = np.linspace(0, 0.5, 51)
    result = editability(
        _PlantedSource(), ws, {"smile": direction}, _PlantedEvaluator(), _PlantedIdentity(), alphas
    )["smile"]
    assert abs(result["step"] - 0.205) <= 0.01  # one grid spacing
    assert result["off_target"] == 0.0  # gender is constant
    assert abs(result["identity"] - np.cos(result["step"])) < 1e-3
    assert result["flipped_at_last_step"] == 1.0


def test_editability_edits_each_code_in_its_own_source():
    from ganedit.evaluation.inversion import editability

    first, offsets = [-0.3, -0.1, 0.2, 0.4], [0.25, 0.0, -0.1, 0.3]
    direction = np.array([1.0, 0, 0, 0], np.float32)
    alphas = np.linspace(0, 1, 41)
    nets = (_PlantedEvaluator(), _PlantedIdentity())
    per_code = editability(
        [_PlantedSource(o) for o in offsets], _planted_codes(first), {"smile": direction},
        *nets, alphas,
    )  # fmt: skip
    shifted = _planted_codes([f + o for f, o in zip(first, offsets, strict=True)])
    shared = editability(_PlantedSource(), shifted, {"smile": direction}, *nets, alphas)
    assert per_code["smile"]["step"] == pytest.approx(shared["smile"]["step"], abs=1e-9)
    with pytest.raises(ValueError, match="one source per code"):
        editability([_PlantedSource()], _planted_codes(first), {"smile": direction}, *nets, alphas)


def test_editability_runs_on_real_networks():
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


def test_tails_kept_reads_with_the_chosen_network():
    from ganedit.evaluation.inversion import tails_kept

    factors = {"smile_label": np.ones(2), "gender_label": np.ones(2), "glasses_label": np.ones(2),
               "age_label": np.zeros(2), "yaw": np.array([40.0, 50.0])}  # fmt: skip
    metrics = {
        "labeler_reads_smile": np.zeros(2), "labeler_reads_glasses": np.zeros(2),
        "yaw_error": np.full(2, 30.0),
        "evaluator_reads_smile": np.ones(2), "evaluator_reads_glasses": np.ones(2),
        "evaluator_yaw_error": np.array([2.0, 11.0]),
    }  # fmt: skip
    assert [v["kept"] for v in tails_kept(metrics, factors).values()] == [0.0, 0.0, 0.0]
    by_evaluator = tails_kept(metrics, factors, reader="evaluator")
    assert [v["kept"] for v in by_evaluator.values()] == [1.0, 1.0, 0.5]
