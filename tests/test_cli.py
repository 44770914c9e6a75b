"""Every subcommand run in a temp dir, and user mistakes: one line, exit code 2, no traceback."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ganedit.cli import app

runner = CliRunner()


def _ok(args):
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _user_error(args, cwd):
    proc = subprocess.run(
        [sys.executable, "-m", "ganedit", *args], cwd=cwd, capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_world_render_lmdb_and_folder(tmp_path):
    _ok(
        [
            "world",
            "render",
            "--n",
            "6",
            "--size",
            "16",
            "--out",
            str(tmp_path / "a.lmdb"),
            "--no-progress",
        ]
    )
    assert (tmp_path / "a.lmdb" / "data.mdb").is_file() and (
        tmp_path / "a.lmdb" / "labels.npz"
    ).is_file()
    _ok(
        [
            "world",
            "render",
            "--n",
            "3",
            "--size",
            "32",
            "--preset",
            "independent",
            "--out",
            str(tmp_path / "f"),
            "--format",
            "jpeg",
        ]
    )
    assert len(list((tmp_path / "f").glob("*.jpg"))) == 3
    meta = json.loads((tmp_path / "f" / "world.json").read_text())
    assert meta["world"]["name"] == "independent" and meta["n"] == 3


def test_world_sheet(tmp_path):
    _ok(["world", "sheet", "--rows", "2", "--size", "32", "--out", str(tmp_path / "s.png")])
    assert (tmp_path / "s.png").stat().st_size > 1000 and (tmp_path / "s.json").is_file()


def test_train_and_evaluate_predictor(tmp_path):
    out = _ok(
        [
            "train-predictor",
            "--kind",
            "labeler",
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file() and "model" in out
    out = _ok(
        [
            "evaluate-predictor",
            "--model",
            str(tmp_path / "run" / "model"),
            "--n",
            "20",
            "--out",
            str(tmp_path / "r.json"),
        ]
    )
    assert "smile_accuracy" in json.loads((tmp_path / "r.json").read_text())


def test_demo_small(tmp_path):
    out = _ok(
        ["demo", "--out", str(tmp_path / "d"), "--n-render", "8", "--n-eval", "20",
         "--study-n", "3000", "--study-eval-n", "20", "--study-bootstrap", "5",
         "--study-steps", "3", "--no-progress"]
    )  # fmt: skip
    assert "report:" in out and "Directions on the embedded generator" in out
    d = tmp_path / "d"
    assert (d / "report.md").is_file() and (d / "sheet.png").is_file()
    assert (d / "directions" / "report" / "report.md").is_file()
    assert len(list((d / "directions" / "boundaries").glob("*.npy"))) >= 20


def test_study_learns_evaluates_and_reuses_only_its_own_bank(tmp_path):
    args = ["study", "-o", str(tmp_path / "s"), "-m", "world64", "-n", "1200", "--mab-n", "40",
            "--eval-n", "10", "--bootstrap", "2", "--steps", "2", "--no-progress"]  # fmt: skip
    report = tmp_path / "s" / "report" / "report.md"
    assert _ok(args).strip() == str(report) and report.is_file()
    fitted = json.loads((tmp_path / "s" / "fitting.json").read_text())
    assert fitted["mab_n"] == 40 and fitted["contingency"]["n_samples"] <= 1200
    assert len(list((tmp_path / "s" / "boundaries").glob("*.npy"))) + len(fitted["skipped"]) == 24
    err = _user_error([*args[:6], "1300", *args[7:]], cwd=tmp_path)
    assert "study's bank" in err and "'n': 1200" in err
    err = _user_error([*args, "--space", "ws"], cwd=tmp_path)
    assert "study space of z or w" in err


def test_sample_from_the_embedded_generator(tmp_path):
    _ok(["sample", "--generator", "world64", "--n", "4", "--out", str(tmp_path / "g.png")])
    assert (tmp_path / "g.png").is_file() and (tmp_path / "g.json").is_file()


@pytest.mark.parametrize(
    "args, words",
    [
        (["world", "render", "--n", "2", "--preset", "nope", "--out", "x.lmdb"], "preset name"),
        (["world", "render", "--n", "2", "--size", "48", "--out", "x.lmdb"], "image size"),
        (["world", "sheet", "--out", "sheet.jpg"], ".png"),
        (["train-predictor", "--kind", "cat", "--out", "run"], "--kind"),
        (["evaluate-predictor", "--model", "missing-folder"], "predictor name"),
        (["train-gan", "--data", "missing.lmdb", "--out", "run"], "missing path"),
        (["sample", "--generator", "nope", "--out", "g.png"], "generator name"),
    ],
)
def test_user_mistakes_get_one_line_and_exit_code_2(tmp_path, args, words):
    stderr = _user_error(args, tmp_path)
    assert words in stderr and stderr.strip().count("\n") == 0
    assert list(tmp_path.iterdir()) == []


def test_score_needs_shipped_predictor_or_folder(tmp_path):
    _ok(
        [
            "world",
            "render",
            "--n",
            "4",
            "--size",
            "32",
            "--out",
            str(tmp_path / "a.lmdb"),
            "--no-progress",
        ]
    )
    _ok(
        [
            "train-predictor",
            "--kind",
            "evaluator",
            "--steps",
            "1",
            "--batch-size",
            "4",
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    _ok(
        [
            "score",
            "--images",
            str(tmp_path / "a.lmdb"),
            "--model",
            str(tmp_path / "run" / "model"),
            "--out",
            str(tmp_path / "s.npz"),
            "--no-progress",
        ]
    )
    import numpy as np

    with np.load(tmp_path / "s.npz") as scores:
        assert set(scores.files) == {"smile", "gender", "glasses", "age", "yaw"}
        assert scores["age"].shape == (4,)
    assert json.loads((tmp_path / "s.json").read_text())["n"] == 4


def test_corrupt_or_missing_lmdb_is_one_line(tmp_path):
    bad = tmp_path / "bad.lmdb"
    bad.mkdir()
    (bad / "data.mdb").write_bytes(b"garbage" * 1000)
    stderr = _user_error(
        ["score", "--images", "bad.lmdb", "--out", "s.npz", "--model", "labeler"], tmp_path
    )
    assert "corrupt" in stderr and "LMDB" in stderr
    stderr = _user_error(["score", "--images", "missing.lmdb", "--out", "s.npz"], tmp_path)
    assert "missing path" in stderr
