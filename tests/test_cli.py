"""Every subcommand run in a temp dir, and user mistakes: one line, exit code 2, no traceback.

The end-to-end `demo` and `study` at their committed sizes are `slow`; a small demo runs in
the default suite."""

import json

import numpy as np
import pytest

from cli_run import in_subprocess, ok, user_error


def test_world_render_lmdb_and_folder(tmp_path, capsys):
    out = ok(capsys, ["world", "render", "-n", 6, "--size", 16, "-o", tmp_path / "a.lmdb",
                      "--no-progress"])  # fmt: skip
    assert "6 renders" in out
    assert (tmp_path / "a.lmdb" / "data.mdb").is_file()
    assert (tmp_path / "a.lmdb" / "labels.npz").is_file()
    ok(capsys, ["world", "render", "-n", 3, "--size", 32, "--preset", "independent",
                "-o", tmp_path / "f", "--format", "jpeg", "--no-progress"])  # fmt: skip
    assert len(list((tmp_path / "f").glob("*.jpg"))) == 3
    meta = json.loads((tmp_path / "f" / "world.json").read_text())
    assert meta["world"]["name"] == "independent" and meta["n"] == 3


def test_outputs_are_never_replaced_without_overwrite_nor_if_not_ganedits(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep")
    args = ["world", "render", "-n", 2, "--size", 16, "--no-progress"]
    assert "--overwrite" in user_error(capsys, [*args, "-o", mine])
    assert "only its own outputs" in user_error(capsys, [*args, "-o", mine, "--overwrite"])
    assert (mine / "thesis.tex").read_text() == "keep"
    ok(capsys, [*args, "-o", tmp_path / "r"])
    assert "--overwrite" in user_error(capsys, [*args, "-o", tmp_path / "r"])
    ok(capsys, [*args, "-o", tmp_path / "r", "--overwrite", "--seed", 1])
    (tmp_path / "taken.png").write_bytes(b"x")
    assert "--overwrite" in user_error(capsys, ["world", "sheet", "-o", tmp_path / "taken.png"])
    assert (tmp_path / "taken.png").read_bytes() == b"x"


def test_world_sheet(tmp_path, capsys):
    ok(capsys, ["world", "sheet", "--rows", 2, "--size", 32, "-o", tmp_path / "s.png"])
    assert (tmp_path / "s.png").stat().st_size > 1000 and (tmp_path / "s.png.json").is_file()


def test_train_and_evaluate_predictor(tmp_path, capsys):
    out = ok(capsys, ["train-predictor", "--kind", "labeler", "--steps", 2, "--batch-size", 4,
                      "-o", tmp_path / "run", "--no-progress"])  # fmt: skip
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file() and "model" in out
    out = ok(capsys, ["evaluate-predictor", "-p", tmp_path / "run" / "model", "--eval-n", 20,
                      "-o", tmp_path / "r.json"])  # fmt: skip
    assert "accuracy smile" in out and "{" not in out  # a summary, not the JSON
    assert "smile_accuracy" in json.loads((tmp_path / "r.json").read_text())


def test_demo_small(tmp_path, capsys):
    """The whole main job at toy sizes (the full one is test_demo_full, slow)."""
    args = ["demo", "-o", tmp_path / "d", "-n", 8, "--eval-n", 20, "--study-n", 300,
            "--study-eval-n", 10, "--study-bootstrap", 2, "--study-steps", 2, "--selfcond-n", 16,
            "--no-progress"]  # fmt: skip
    out = ok(capsys, args)
    assert "report:" in out and "Directions on the embedded generator" in out
    assert "self-conditioned generator `world64-sc`" in out and "| yaw (deg) |" in out
    # world64-sc ships its data's modes: its faces are drawn there and edited from them
    assert "faces at the data's modes" in out and "starts at each face's own modes" in out
    assert (tmp_path / "d" / "selfcond_modes.png").is_file()
    assert "| rank | tier | method |" in out and "attributes reached" in out
    d = tmp_path / "d"
    assert (d / "report.md").is_file() and (d / "sheet.png").is_file()
    assert (d / "directions" / "report" / "report.md").is_file()
    # Another configuration in the same folder needs --overwrite (the same one resumes).
    assert "--overwrite" in user_error(capsys, [*args[:4], 9, *args[5:]])
    line = user_error(capsys, [*args[:-1], "--selfcond-generator", "world64", "-o", tmp_path / "e"])
    assert "self-conditioned generator" in line


@pytest.mark.slow
def test_demo_full(tmp_path, capsys):
    out = ok(capsys, ["demo", "-o", tmp_path / "d", "--no-progress"])
    assert "| rank | tier | method |" in out
    assert len(list((tmp_path / "d" / "directions" / "boundaries").glob("*.npy"))) >= 20


@pytest.mark.slow
def test_study_learns_evaluates_and_resumes_only_its_own_folder(tmp_path, capsys):
    args = ["study", "-o", tmp_path / "s", "-g", "world64", "-n", 1200, "--mab-n", 40,
            "--eval-n", 10, "--bootstrap", 2, "--steps", 2, "--no-progress"]  # fmt: skip
    report = tmp_path / "s" / "report" / "report.md"
    assert str(report) in ok(capsys, args) and report.is_file()
    fitted = json.loads((tmp_path / "s" / "fitting.json").read_text())
    assert fitted["mab_n"] == 40 and fitted["contingency"]["n_samples"] <= 1200
    assert len(list((tmp_path / "s" / "boundaries").glob("*.npy"))) + len(fitted["skipped"]) == 24
    assert "--overwrite" in user_error(capsys, [*args[:6], 1300, *args[7:]])
    assert "one of z, w for --space" in user_error(capsys, [*args, "--space", "ws"])


def test_sample_from_the_embedded_generator(tmp_path, capsys):
    ok(capsys, ["sample", "-g", "world64", "-n", 4, "--scale", 2, "-o", tmp_path / "g.png"])
    assert (tmp_path / "g.png").is_file()
    assert json.loads((tmp_path / "g.png.json").read_text())["generator"]["sha256"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["world", "render", "-n", "2", "--preset", "nope", "-o", "x.lmdb"], "preset name"),
        (["world", "render", "-n", "2", "--size", "48", "-o", "x.lmdb"], "image size"),
        (["world", "sheet", "-o", "sheet.jpg"], ".png"),
        (["train-predictor", "--kind", "cat", "-o", "run"], "--kind"),
        (["evaluate-predictor", "-p", "missing-folder"], "predictor name"),
        (["train-gan", "-i", "missing.lmdb", "-o", "run"], "missing path"),
        (["sample", "-g", "nope", "-o", "g.png"], "expected a generator: world64"),
        (["sample", "--trunc", "nan"], "finite number"),
        (["sample", "-n", "inf"], "whole number"),
        (["sample", "--device", "cuda:7"], "device this machine has"),
        (["demo", "-g", "nope"], "expected a generator: world64"),
        (["edit", "-b", "x.npy", "-o", "e", "--space", "wp"], "one of z, w, ws"),
    ],
)
def test_user_mistakes_get_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys, args, words):
    monkeypatch.chdir(tmp_path)
    assert words in user_error(capsys, args)
    assert list(tmp_path.iterdir()) == []


def test_the_contract_holds_in_a_real_process(tmp_path):
    proc = in_subprocess(["sample", "-g", "nope"], tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert (
        proc.stderr.startswith("error: expected a generator: world64")
        and "Traceback" not in proc.stderr
    )
    assert proc.stderr.count("\n") == 1
    empty = tmp_path / "z.npy"
    empty.write_bytes(b"")  # once ended in typer's "Aborted." with exit code 1
    proc = in_subprocess(
        ["boundary", "-c", empty, "-s", empty, "-a", "smile", "-o", "b.npy"], tmp_path
    )
    assert proc.returncode == 2 and "empty file" in proc.stderr and proc.stderr.count("\n") == 1


def test_score_with_a_trained_predictor_folder(tmp_path, capsys):
    ok(
        capsys,
        ["world", "render", "-n", 4, "--size", 32, "-o", tmp_path / "a.lmdb", "--no-progress"],
    )
    ok(capsys, ["train-predictor", "--kind", "evaluator", "--steps", 1, "--batch-size", 4,
                "-o", tmp_path / "run", "--no-progress"])  # fmt: skip
    ok(capsys, ["score", "-i", tmp_path / "a.lmdb", "-p", tmp_path / "run" / "model",
                "-o", tmp_path / "s.npz", "--no-progress"])  # fmt: skip
    kinds = {**dict.fromkeys(("smile", "gender", "glasses", "age"), "probability"), "yaw": "value"}
    with np.load(tmp_path / "s.npz") as scores:
        assert set(scores.files) == {*kinds, ".kinds"}  # the scores, and their kinds
        assert scores["age"].shape == (4,)
        assert json.loads(str(scores[".kinds"])) == kinds
    sidecar = json.loads((tmp_path / "s.npz.json").read_text())
    assert sidecar["n"] == 4 and sidecar["kinds"] == kinds
    from ganedit.directions.fit import load_scores

    assert load_scores("", str(tmp_path / "s.npz"), "").kinds == kinds


def test_corrupt_or_missing_lmdb_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.lmdb"
    bad.mkdir()
    (bad / "data.mdb").write_bytes(b"garbage" * 1000)
    line = user_error(capsys, ["score", "-i", bad, "-o", tmp_path / "s.npz", "-p", "labeler"])
    assert "corrupt" in line and "LMDB" in line
    line = user_error(capsys, ["score", "-i", tmp_path / "missing.lmdb", "-o", tmp_path / "s.npz"])
    assert "missing path" in line
    line = user_error(
        capsys, ["score", "-i", tmp_path / "a", "-o", tmp_path / "s.npz", "-p", "identity"]
    )
    assert "missing path" in line
