"""selflabel and resample from the command line, on world renders and the shipped models."""

import json

import numpy as np
import pytest

from cli_run import ok, user_error

BOUNDARIES = "docs/directions_report/boundaries"


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    from ganedit.cli import run

    folder = tmp_path_factory.mktemp("w") / "renders"
    assert (
        run(["world", "render", "-n", "48", "--seed", "5", "-o", str(folder), "--no-progress"]) == 0
    )
    return folder


def test_selflabel_then_resample(capsys, tmp_path, renders):
    out = tmp_path / "labels"
    args = ["selflabel", "-i", renders, "-o", out, "--no-progress", "--chunk", 20]
    for attr in ("gender", "glasses", "age"):
        args += ["-b", f"{BOUNDARIES}/stratified_{attr}.npy"]
    text = ok(capsys, args)
    assert "48 images labelled by distances" in text
    record = json.loads((out / "labels.json").read_text())
    assert record["attributes"] == ["gender", "glasses", "age"]
    assert record["generator"]["name"] == "world64" and record["encoder"] == "world64-encoder"
    labels = np.load(out / "labels.npy")
    assert labels.shape == (48, 3) and np.isfinite(labels).all()
    # the gender self-labels agree with the ground truth (0.95 on 400 renders); the shipped
    # encoder drops smiles and glasses, so their distances carry no such signal
    truth = np.load(renders / "labels.npz")
    assert np.mean((labels[:, 0] > 0) == (truth["gender_label"] > 0.5)) > 0.75

    ok(capsys, args)  # the same run again: resumed, nothing left to compute
    assert np.array_equal(np.load(out / "labels.npy"), labels)
    changed = [*args[:-2], "--chunk", 30]
    assert "--overwrite" in user_error(capsys, changed)  # another run into the same folder

    sampled = tmp_path / "balanced"
    text = ok(capsys, ["resample", "-l", out, "-o", sampled, "--attributes", "gender,age"])
    assert "48 draws from 48 images over gender, age" in text
    report = json.loads((sampled / "report.json").read_text())
    indices = np.load(sampled / "indices.npy")
    assert len(indices) == 48 and indices.min() >= 0 and indices.max() < 48
    assert report["largest_repeat"] >= 1 and (sampled / "histograms.png").stat().st_size > 0


def test_labels_from_the_table_and_from_a_predictor(capsys, tmp_path, renders):
    table = tmp_path / "truth"
    ok(capsys, ["selflabel", "-i", renders, "-o", table,
                "--from-table", renders / "labels.npz", "--columns", "smile,yaw"])  # fmt: skip
    labels = np.load(table / "labels.npy")
    assert np.allclose(labels[:, 1], np.load(renders / "labels.npz")["yaw"], atol=1e-4)
    read = tmp_path / "read"
    ok(capsys, ["selflabel", "-i", renders, "-o", read, "--no-progress",
                "--from-predictor", "labeler", "--columns", "glasses,yaw"])  # fmt: skip
    probs = np.load(read / "labels.npy")
    assert probs.shape == (48, 2) and probs[:, 0].min() >= 0 and probs[:, 0].max() <= 1
    ok(capsys, ["resample", "-l", read, "-o", tmp_path / "d", "--scheme", "density",
                "--max-repeat", 3])  # fmt: skip

    # columns of both stores side by side, each keeping where it came from
    merged = tmp_path / "merged"
    ok(capsys, ["selflabel", "-i", renders, "-o", merged,
                "--merge", f"{read}:glasses", "--merge", f"{table}:yaw"])  # fmt: skip
    record = json.loads((merged / "labels.json").read_text())
    assert record["attributes"] == ["glasses", "yaw"] and record["source"] == "merged"
    assert [p["record"]["source"] for p in record["parts"]] == ["predictor", "table"]
    both = np.load(merged / "labels.npy")
    np.testing.assert_array_equal(both, np.stack([probs[:, 0], labels[:, 1]], 1))
    line = user_error(capsys, ["selflabel", "-i", renders, "-o", tmp_path / "m2",
                               "--merge", f"{read}:yaw", "--merge", f"{table}:yaw"])  # fmt: skip
    assert "more than once" in line
    line = user_error(capsys, ["selflabel", "-i", renders, "-o", tmp_path / "m3",
                               "--merge", f"{read}:age"])  # fmt: skip
    assert "columns among" in line


def test_bad_requests_get_one_line(capsys, tmp_path, renders):
    line = user_error(capsys, ["selflabel", "-i", renders, "-o", tmp_path / "x"])
    assert "one label source" in line
    user_error(capsys, ["selflabel", "-i", renders, "-o", tmp_path / "y",
                        "--from-table", renders / "labels.npz", "--columns", "nope"])  # fmt: skip
    user_error(capsys, ["resample", "-l", tmp_path / "missing", "-o", tmp_path / "z"])
    ok(capsys, ["selflabel", "-i", renders, "-o", tmp_path / "t",
                "--from-table", renders / "labels.npz", "--columns", "smile"])  # fmt: skip
    line = user_error(capsys, ["resample", "-l", tmp_path / "t", "-o", tmp_path / "r",
                               "--attributes", "age"])  # fmt: skip
    assert "attributes among" in line
