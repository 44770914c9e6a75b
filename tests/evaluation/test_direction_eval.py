"""The direction evaluation on a planted linear world with known answers."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ganedit.errors import UserInputError
from ganedit.evaluation.directions import (
    Direction,
    DirectionEvalConfig,
    EditTrace,
    evaluate_directions,
    matched,
)
from ganedit.models.predictors import attribute_logit
from linear_world import GAIN, LinearEvaluator, LinearIdentity, LinearSource
from linear_world import unit as _unit


@pytest.fixture(scope="module")
def report():
    clean = Direction("clean", "a", _unit([1, 0, 0, 0, 0, 0]))
    drags_b = Direction("drags_b", "a", _unit([1, 1, 0, 0, 0, 0]))
    drags_identity = Direction("drags_identity", "a", _unit([1, 0, 0, 1, 0, 0]))
    cfg = DirectionEvalConfig(n=400, steps=16, bootstrap=50, calibration_n=64, seed=5)
    return evaluate_directions(
        cfg, [clean, drags_b, drags_identity], LinearSource(), LinearEvaluator(),
        LinearIdentity(), progress=False,
    )  # fmt: skip


def _result(report, name):
    return next(r for r in report["directions"] if r["name"] == name)


def test_calibration_measures_the_logit_slope(report):
    assert _result(report, "clean")["logit_slope"] == pytest.approx(GAIN, rel=1e-4)
    assert _result(report, "drags_b")["logit_slope"] == pytest.approx(GAIN / np.sqrt(2), rel=1e-4)


def test_a_clean_direction_has_no_off_target_drift_and_keeps_identity(report):
    for level in ("50", "90"):
        m = _result(report, "clean")["matched"][level]
        assert m["change"]["b"]["mean"] == pytest.approx(0, abs=1e-6)
        assert m["change"]["yaw"]["mean"] == pytest.approx(0, abs=1e-5)
        assert m["identity"] == pytest.approx(1, abs=1e-6)
        assert m["change"]["a"]["mean"] > 0.1


def test_an_entangled_direction_drags_its_partner_along(report):
    clean, dragged = _result(report, "clean"), _result(report, "drags_b")
    m = dragged["matched"]["90"]
    assert m["off_target"] > 0.1 and m["change"]["b"]["mean"] > 0.1
    # Moving along +d raises b: the signed change is positive.
    assert m["signed"]["b"]["mean"] > 0.1
    # Same target flip needs a longer step along the entangled direction (by sqrt 2).
    ratio = m["step"] / clean["matched"]["90"]["step"]
    assert ratio == pytest.approx(np.sqrt(2), rel=0.1)
    lo, hi = m["change"]["b"]["ci"]
    assert lo <= m["change"]["b"]["mean"] <= hi and hi - lo < 0.1


def test_identity_drop_is_measured(report):
    assert _result(report, "drags_identity")["matched"]["90"]["identity"] < 0.999
    assert _result(report, "drags_b")["matched"]["90"]["identity"] == pytest.approx(1, abs=1e-6)


def test_flip_curve_is_monotone_and_reaches_the_levels(report):
    for r in report["directions"]:
        flip = np.array(r["curve"]["flip_rate"])
        assert flip[0] == 0 and flip[-1] >= 0.9
        assert (np.diff(flip) >= 0).all()


def test_separability_and_cosines(report):
    assert _result(report, "clean")["separability"]["auc"] == pytest.approx(1.0)
    assert _result(report, "drags_b")["separability"]["auc"] < 0.95
    cos = np.array(report["cosines"]["matrix"])
    assert cos[0, 1] == pytest.approx(1 / np.sqrt(2), abs=1e-6)
    np.testing.assert_allclose(np.diag(cos), 1, atol=1e-6)


def test_matched_interpolates_on_the_grid():
    trace = EditTrace(
        alphas=np.array([0.0, 1.0, 2.0]),
        flipped=np.array([[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], bool),
        change=np.arange(3, dtype=float)[:, None, None] * np.ones((3, 4, 2)),
        signed=np.zeros((3, 4, 2)),
        identity=np.ones((3, 4)),
    )
    assert matched(trace, 0.5)["step"] == pytest.approx(1.0)
    m = matched(trace, 0.75)
    assert m["step"] == pytest.approx(1.5) and m["change"][0] == pytest.approx(1.5)
    never = EditTrace(
        trace.alphas, trace.flipped & False, trace.change, trace.signed, trace.identity
    )
    assert np.isnan(matched(never, 0.5)["step"])


def test_a_short_grid_is_extended_and_unreached_levels_are_nan():
    clean = Direction("clean", "a", _unit([1, 0, 0, 0, 0, 0]))
    cfg = DirectionEvalConfig(n=200, steps=4, logit_span=1.0, bootstrap=10, seed=6)
    out = evaluate_directions(
        cfg, [clean], LinearSource(), LinearEvaluator(), LinearIdentity(), progress=False
    )
    result = out["directions"][0]
    assert len(result["curve"]["step"]) == 5 + 2 + 2  # planned grid, then two extensions
    assert np.isnan(result["matched"]["90"]["step"])
    assert not np.isnan(result["matched"]["50"]["step"])


class _ForeignEvaluator:
    """Not an nn.Module and not the face world's: two probabilities, two values (no yaw)."""

    attribute_kinds = {"tilt": "value", "a": "probability", "size": "value", "b": "probability"}
    input_size = 1

    def predict(self, images, batch_size=256):
        x = images.reshape(len(images), -1).double()
        p = torch.sigmoid(GAIN * x[:, :2]).numpy()
        return {"tilt": 10 * x[:, 2].numpy(), "a": p[:, 0], "size": x[:, 3].numpy(), "b": p[:, 1]}


def test_any_attribute_predictor_evaluates_with_its_own_attributes_and_no_identity():
    from ganedit.evaluation.direction_report import write_direction_report

    clean = Direction("clean", "a", _unit([1, 0, 0, 0, 0, 0]))
    tilts = Direction("tilts", "a", _unit([1, 0, 1, 0, 0, 0]))
    cfg = DirectionEvalConfig(n=200, steps=8, bootstrap=20, seed=7, identity=None)
    out = evaluate_directions(
        cfg, [clean, tilts], LinearSource(), _ForeignEvaluator(), None, progress=False
    )
    # Probabilities first (flip targets, nuisance), then the values in their own units.
    assert out["attributes"] == ["a", "b", "tilt", "size"]
    assert set(out["base_label_share"]) == {"a", "b"}
    assert out["identity_measured"] is False
    assert _result(out, "clean")["logit_slope"] == pytest.approx(GAIN, rel=1e-4)
    m = _result(out, "tilts")["matched"]["90"]
    # off-target is over the other probabilities only: b does not move, whatever tilt does.
    assert m["off_target"] == pytest.approx(0, abs=1e-6)
    assert m["change"]["tilt"]["mean"] > 1.0 and m["signed"]["tilt"]["mean"] != 0
    assert m["change"]["size"]["mean"] == pytest.approx(0, abs=1e-6)
    assert np.isnan(m["identity"])
    with tempfile.TemporaryDirectory() as tmp:
        write_direction_report(out, Path(tmp), title="foreign")
        text = (Path(tmp) / "report.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| method | step"))
    assert header.split(" | ")[2:5] == ["b", "tilt", "size"]
    assert "yaw (deg)" not in text
    row = next(line for line in text.splitlines() if line.startswith("| tilts |"))
    assert row.split(" | ")[-2] == "n/a"  # identity: not measured


def test_a_value_attribute_is_no_flip_target():
    with pytest.raises(UserInputError, match=r"probability attribute .*tilts:tilt \(a value"):
        evaluate_directions(
            DirectionEvalConfig(n=20, bootstrap=0),
            [Direction("tilts", "tilt", _unit([0, 0, 1, 0, 0, 0]))],
            LinearSource(), _ForeignEvaluator(), None, progress=False,
        )  # fmt: skip
    with pytest.raises(UserInputError, match="probability attribute of the evaluator"):
        attribute_logit(_ForeignEvaluator(), torch.zeros(2, 1, 1, 6), "size")


def test_a_direction_restricted_to_rows_is_measured_as_edit_moves_it():
    """Planted: the attribute lives in ws row 0, the person in row 1. A direction that drags
    the identity coordinates keeps the person when it moves row 0 alone (`--layers 0:1`),
    and the report names the restricted direction apart."""
    from linear_world import LayeredSource

    drags = Direction("drags_identity", "a", _unit([1, 0, 0, 1, 0, 0]))
    cfg = DirectionEvalConfig(n=200, steps=12, bootstrap=0, calibration_n=64, seed=3, space="ws")
    args = ([drags], LayeredSource(), LinearEvaluator(), LinearIdentity())
    whole = evaluate_directions(cfg, *args, progress=False)["directions"][0]
    cfg = DirectionEvalConfig(**{**cfg.__dict__, "layers": (0, 1)})
    report = evaluate_directions(cfg, *args, progress=False)
    row0 = report["directions"][0]
    assert row0["name"] == "drags_identity@0:1" and report["config"]["layers"] == (0, 1)
    # a w direction on ws codes separates as it does on w (it once failed on the shapes)
    in_w = DirectionEvalConfig(n=200, steps=12, bootstrap=0, calibration_n=64, seed=3)
    flat = evaluate_directions(in_w, *args, progress=False)["directions"][0]
    assert whole["separability"] == row0["separability"] == flat["separability"]
    assert row0["matched"]["90"]["identity"] == pytest.approx(1, abs=1e-6)
    assert whole["matched"]["90"]["identity"] < 0.99
    # a step moves row 0 as far as the unrestricted edit does: the same flips per step
    assert row0["matched"]["50"]["step"] == pytest.approx(whole["matched"]["50"]["step"], rel=1e-3)
    with pytest.raises(UserInputError, match="--space ws"):
        evaluate_directions(DirectionEvalConfig(layers=(0, 1)), *args, progress=False)
    with pytest.raises(UserInputError, match="layer range"):
        evaluate_directions(DirectionEvalConfig(space="ws", layers=(1, 5)), *args, progress=False)
