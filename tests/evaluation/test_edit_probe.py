import math

import numpy as np
import pytest

from ganedit.evaluation.edit_probe import (
    EditProbeConfig,
    _bin_identity,
    _yaw_slope,
    edit_probe,
    summary_line,
)
from ganedit.models.registry import load_identity_embedder, load_predictor
from ganedit.models.sources import load_generator


def test_yaw_slope_recovers_a_planted_slope():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(500, 8))
    vector = np.eye(8)[2]
    yaw = 7.5 * w[:, 2] + 0.1 * rng.normal(size=500)
    assert _yaw_slope(w, yaw, vector) == pytest.approx(7.5, abs=0.05)


def test_bin_identity_reads_the_bin_holding_the_angle():
    bins = [{"bin": [0.0, 10.0], "identity": {"mean": 0.9}},
            {"bin": [10.0, 20.0], "identity": {"mean": 0.7}},
            {"bin": [20.0, math.inf], "identity": {"mean": None}}]  # fmt: skip
    assert _bin_identity(bins, 12.0) == 0.7
    assert _bin_identity(bins, 25.0) is None


@pytest.fixture(scope="module")
def world64_probe():
    nets = (load_predictor("labeler"), load_predictor("evaluator"),
            load_identity_embedder("identity"))  # fmt: skip
    cfg = EditProbeConfig(n_fit=400, n=32, steps=6, yaw_steps=(1.0, 3.0))
    return edit_probe(load_generator("world64"), *nets, cfg)


def test_world64_edits_lose_part_of_the_person(world64_probe):
    # Issue 28's finding, read by the probe: no attribute edit keeps the face whole at 50%
    # flips (full-size probe: smile 0.64, gender 0.53, age 0.10), none loses it entirely.
    identity = world64_probe["identity_at_50"]
    assert set(identity) == {"smile", "gender", "age"}
    assert all(-1.0 <= v <= 0.97 for v in identity.values())
    assert identity["smile"] > identity["age"]
    yaw = world64_probe["yaw"]
    assert yaw["reach"] in (0.0, 10.0, 20.0, 30.0, 45.0) and yaw["max_degrees"] > 10
    assert sum(b["count"] for b in yaw["bins"]) == 32 * 4
    assert summary_line(world64_probe).startswith("identity at 50% flips: smile ")


def test_evaluate_generator_n_edit_runs_the_probe_into_its_report(tmp_path, capsys, monkeypatch):
    # The command's wiring: --n-edit hands the generator and the count to the probe, prints
    # its summary and stores it as "edit_identity" (the probe itself is measured above).
    import json

    import ganedit.evaluation.edit_probe as probe_mod
    from cli_run import ok

    seen = {}
    canned = {"identity_at_50": {"smile": 0.5}, "off_target_at_50": {"smile": 0.1},
              "yaw": {"reach": 10.0, "identity_at_degrees": 0.7}}  # fmt: skip

    def fake(source, n, device="cpu"):
        seen.update(name=source.name, n=n)
        return canned

    monkeypatch.setattr(probe_mod, "world_probe", fake)
    out = tmp_path / "r.json"
    text = ok(capsys, ["evaluate-generator", "-g", "world64", "-n", 64, "--n-fd", 32,
                       "--n-identity", 16, "--n-edit", 24, "-o", out, "--no-progress"])  # fmt: skip
    assert seen == {"name": "world64", "n": 24}
    assert "edits (24 faces): identity at 50% flips: smile 0.50, yaw reach 10 deg" in text
    assert json.loads(out.read_text())["edit_identity"] == canned
