"""The direction report on a real (small) comparison from the planted linear world."""

import copy
import json

import numpy as np
import pytest
from PIL import Image

from ganedit.evaluation.direction_report import (
    json_safe,
    method_ranking,
    render_markdown,
    write_direction_report,
)
from ganedit.evaluation.directions import Direction, DirectionEvalConfig, evaluate_directions
from linear_world import LinearEvaluator, LinearIdentity, LinearSource
from linear_world import unit as _unit

PLOTS = ("tradeoff.png", "identity.png", "rescoring_50.png", "rescoring_90.png", "cosines.png")


@pytest.fixture(scope="module")
def report():
    # Two methods on two attributes: "clean" moves only the target coordinate, "entangled"
    # also moves the other attribute's coordinate.
    directions = [
        Direction("clean", "a", _unit([1, 0, 0, 0, 0, 0])),
        Direction("entangled", "a", _unit([1, 1, 0, 0, 0, 0])),
        Direction("clean", "b", _unit([0, 1, 0, 0, 0, 0])),
        Direction("entangled", "b", _unit([1, 1, 0, 0, 0, 0])),
    ]
    cfg = DirectionEvalConfig(n=200, steps=10, bootstrap=20, calibration_n=32, seed=7)
    return evaluate_directions(
        cfg, directions, LinearSource(), LinearEvaluator(), LinearIdentity(), progress=False
    )


@pytest.fixture(scope="module")
def written(report, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "nested"
    md = write_direction_report(report, out, title="Test report", extra_markdown="## Notes\nhi\n")
    return out, md


def _strict_json(text):
    def reject(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=reject)


def _section(md_text, level, target):
    """The table lines of one target attribute at one matched level."""
    level_part = md_text.split(f"## Matched at {level}% target flip rate")[1].split("\n## ")[0]
    table = level_part.split(f"### {target}\n")[1].split("\n### ")[0]
    return [line for line in table.splitlines() if line.startswith("| ")]


def test_all_files_exist(written):
    out, md = written
    assert md == out / "report.md"
    for name in ("report.json", "report.md", *PLOTS):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*tmp-*"))  # no leftover temporary files


def test_json_is_strict_and_round_trips(report, written):
    out, _ = written
    data = _strict_json((out / "report.json").read_text())
    assert data["attributes"] == report["attributes"]
    assert data["directions"][0]["matched"]["90"]["step"] == pytest.approx(
        report["directions"][0]["matched"]["90"]["step"]
    )


def test_nan_becomes_null(report, tmp_path):
    broken = copy.deepcopy(report)
    broken["directions"][1]["matched"]["90"]["step"] = float("nan")
    broken["directions"][1]["matched"]["90"]["off_target"] = np.float64("nan")
    broken["directions"][1]["matched"]["90"]["step_ci"] = None
    broken["cosines"]["matrix"] = np.array(broken["cosines"]["matrix"])  # numpy is accepted too
    write_direction_report(broken, tmp_path)
    data = _strict_json((tmp_path / "report.json").read_text())
    m = data["directions"][1]["matched"]["90"]
    assert m["step"] is None and m["off_target"] is None and m["step_ci"] is None
    assert "n/a" in (tmp_path / "report.md").read_text()


def test_markdown_has_methods_tables_and_extra(written):
    _, md = written
    text = md.read_text()
    assert text.startswith("# Test report\n")
    assert "n=200" in text and "bootstrap=20" in text
    for name in ("clean", "entangled", "clean:a", "entangled:b"):
        assert name in text
    for image in PLOTS:
        assert f"]({image})" in text
    assert text.endswith("## Notes\nhi\n")


def test_lowest_off_target_is_bold_and_belongs_to_the_clean_method(written):
    text = written[1].read_text()
    for level in ("50", "90"):
        for target in ("a", "b"):
            header, _, *rows = _section(text, level, target)
            assert header.split(" | ")[0] == "| method" and "off-target" in header
            bold = [row for row in rows if "**" in row]
            assert len(bold) == 1 and bold[0].startswith("| clean |")
            assert "**0.000**" in bold[0]
    # Means carry their bootstrap interval: `0.123 [0.101, 0.140]`.
    entangled = next(r for r in _section(text, "90", "a") if r.startswith("| entangled"))
    assert " [" in entangled.split(" | ")[2]


def test_ranking_puts_clean_before_entangled(report):
    ranking = method_ranking(report)
    assert [name for name, _ in ranking] == ["clean", "entangled"]
    assert ranking[0][1] == pytest.approx(0, abs=1e-6) and ranking[1][1] > 0.1
    assert method_ranking(report, 0.9) == ranking == method_ranking(report, 90)


def test_ranking_puts_a_method_that_missed_the_level_last(report):
    broken = copy.deepcopy(report)
    broken["directions"][2]["matched"]["90"]["off_target"] = float("nan")  # clean:b
    ranking = method_ranking(broken)
    assert [name for name, _ in ranking] == ["entangled", "clean"]
    assert ranking[1][1] == pytest.approx(0, abs=1e-6)  # mean of what was reached


def test_summary_ranks_methods(written):
    text = written[1].read_text()
    summary = text.split("## Summary")[1].split("\n## ")[0]
    rows = [line for line in summary.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert rows[0].startswith("| 1 | 1 | clean |") and rows[1].startswith("| 2 | 1 | entangled |")


def test_pngs_open_with_sensible_sizes(written):
    out, _ = written
    for name in PLOTS:
        with Image.open(out / name) as image:
            image.verify()
        with Image.open(out / name) as image:
            assert image.format == "PNG"
            width, height = image.size
            assert 200 <= width <= 4000 and 150 <= height <= 4000, (name, image.size)


def test_a_report_read_back_from_json_renders_the_same(report, written):
    data = _strict_json((written[0] / "report.json").read_text())
    assert render_markdown(data, "T") == render_markdown(report, "T")


def test_json_safe_converts_numpy_and_non_finite():
    value = {1: (np.float32(0.5), np.inf, [np.nan]), "b": np.arange(2), "c": np.bool_(True)}
    assert json_safe(value) == {"1": [0.5, None, [None]], "b": [0, 1], "c": True}


def _planted(figures: dict) -> dict:
    """A report whose directions have the given {(method, attribute): (identity, off)} at
    50% (None: the level was never reached)."""
    directions = []
    for (name, attribute), pair in figures.items():
        step = None if pair is None else 1.0
        identity, off = (None, None) if pair is None else pair
        matched = {"step": step, "identity": identity, "off_target": off}
        directions.append({"name": name, "attribute": attribute,
                           "matched": {"50": matched, "90": dict(matched)}})  # fmt: skip
    return {"directions": directions}


def test_the_default_rule_weighs_identity_and_drift_together():
    from ganedit.evaluation.direction_report import method_scores, recommended_methods

    report = _planted({
        ("drifts_least", "a"): (0.2, 0.05), ("drifts_least", "b"): (0.3, 0.05),
        ("keeps_face", "a"): (0.9, 0.15), ("keeps_face", "b"): (0.8, 0.20),
        ("a+projected", "a"): (0.95, 0.02), ("a+projected", "b"): (0.9, 0.02),
        ("keeps_face", "c"): (0.1, 0.5), ("drifts_least", "c"): None,
    })  # fmt: skip
    rows = method_scores(report)
    assert [r["method"] for r in rows] == ["a+projected", "keeps_face", "drifts_least"]
    keeps = rows[1]
    assert keeps["attributes"] == ["a", "b"]  # c is not reached by every method
    assert keeps["kept"] == pytest.approx((0.75 + 0.6) / 2)
    assert keeps["identity"] == pytest.approx(0.85) and keeps["off_target"] == pytest.approx(0.175)
    assert keeps["per_attribute"]["c"] == pytest.approx(-0.4) and not rows[0]["standalone"]
    pick = recommended_methods(report)
    assert pick["default"] == "keeps_face"  # the projection needs other boundaries
    assert pick["by_attribute"] == {"a": "a+projected", "b": "a+projected", "c": None}


def test_the_rule_falls_back_to_the_lowest_level_and_renders(report):
    from ganedit.evaluation.direction_report import method_scores

    only_90 = copy.deepcopy(report)
    for d in only_90["directions"]:
        d["matched"].pop("50")
    assert method_scores(only_90)[0]["level"] == "90"
    text = render_markdown(report)
    section = text.split("## Recommendation: identity and drift together")[1].split("\n## ")[0]
    assert "By this rule: default `clean`" in section
