"""Outputs never touch inputs, and --overwrite replaces only what ganedit wrote.

For every command with an output: an output that is an input, lies inside one or holds one
is refused in one line (exit 2) before any work, with --overwrite too, and every byte of the
case folder is left as it was. The same holds however the path is spelt (relative,
absolute, `..`, a trailing slash, through a symlink): hypothesis draws the spelling. A file a
user put into an output folder stops --overwrite (the file is named and kept); a symlinked
output has its target replaced, the link kept and no debris left; `-o ''` is a mistake; two
outputs that share a stem keep their own sidecars.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import os
import shutil
from pathlib import Path
from typing import get_type_hints

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_run import assert_one_error_line, ok, user_error
from ganedit.cli import run
from ganedit.utils.files import MARKER, record_files
from planted import write_planted_reference

D = 8  # w width of the tiny generator


# ------------------------------------------------------------------------------------------
# Small valid inputs, built once


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> dict[str, Path]:
    from importlib import resources

    from ganedit.models.predictors import AttributeNet
    from ganedit.models.registry import save_pretrained
    from ganedit.models.stylegan2 import Generator
    from nvidia_pkl_standin import write_tiny_nvidia_pkl

    root = tmp_path_factory.mktemp("apart")
    torch.manual_seed(0)
    g = Generator(16, style_dim=D, n_mlp=2, channel_max=8).eval()
    g.update_w_avg(n=64, generator=torch.Generator().manual_seed(0))
    save_pretrained(g, root / "tiny")
    save_pretrained(AttributeNet("plain", width=8, hidden=8, image_size=16).eval(), root / "pred")
    write_tiny_nvidia_pkl(root / "tiny.pkl")
    write_planted_reference(root / "ref", 80, D)
    preset = resources.files("ganedit.world").joinpath("presets/celeba.toml").read_text()
    (root / "world.toml").write_text(preset)
    _fixture(["bank", "import", root / "ref", "-o", root / "bank.zarr", "-g", root / "tiny"])
    _fixture(["boundary", "--method", "regression", "-c", root / "bank.zarr", "-a", "smile",
            "-o", root / "b.npy"])  # fmt: skip
    for name in ("images", "set.lmdb"):
        _fixture(["world", "render", "-n", 2, "--size", 16, "-o", root / name, "--no-progress"])
    _fixture(["selflabel", "-i", root / "images", "-o", root / "labels", "--from-table",
            root / "images" / "labels.npz", "--columns", "smile,age"])  # fmt: skip
    return {
        "tiny": root / "tiny", "pred": root / "pred", "pkl": root / "tiny.pkl",
        "ref": root / "ref", "toml": root / "world.toml", "bank": root / "bank.zarr",
        "boundary": root / "b.npy", "images": root / "images", "lmdb": root / "set.lmdb",
        "labels": root / "labels",
    }  # fmt: skip


def _fixture(args) -> None:
    assert _quiet(args) == 0, args


def _quiet(args) -> int:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run([str(a) for a in args])
    assert code in (0, 2), f"{args}: exit {code}\n{err.getvalue()}"
    return code


# ------------------------------------------------------------------------------------------
# Each command with an output: its command line for an input `i` and an output `o`, and the
# fixture its input `i` copies (the cheapest command lines; the check comes before any work)

COMMANDS = {
    "world render": ("toml", lambda i, o, f: ["world", "render", "-n", 2, "--size", 16,
                                              "--preset", i, "-o", o, "--no-progress"]),
    "world sheet": ("toml", lambda i, o, f: ["world", "sheet", "--rows", 1, "--size", 16,
                                             "--preset", i, "-o", o]),
    "evaluate-predictor": ("pred", lambda i, o, f: ["evaluate-predictor", "-p", i,
                                                    "--eval-n", 10, "-o", o]),
    "train-gan": ("lmdb", lambda i, o, f: ["train-gan", "-i", i, "-o", o, "--size", 16,
                                           "--iter", 1, "--no-progress"]),
    "sample": ("tiny", lambda i, o, f: ["sample", "-g", i, "-n", 2, "-o", o]),
    "evaluate-generator": ("tiny", lambda i, o, f: ["evaluate-generator", "-g", i, "-n", 4,
                                                    "--n-fd", 2, "-o", o, "--no-progress"]),
    "score": ("lmdb", lambda i, o, f: ["score", "-i", i, "-p", f["pred"], "-o", o,
                                       "--no-progress"]),
    "generate": ("tiny", lambda i, o, f: ["generate", "-g", i, "-p", "none", "-n", 2,
                                          "-o", o, "--no-progress"]),
    "bank export": ("bank", lambda i, o, f: ["bank", "export", i, "-o", o]),
    "bank import": ("ref", lambda i, o, f: ["bank", "import", i, "-o", o, "-g", f["tiny"]]),
    "contingency": ("bank", lambda i, o, f: ["contingency", "--bank", i, "-o", o]),
    "boundary": ("bank", lambda i, o, f: ["boundary", "-c", i, "-a", "smile", "-o", o]),
    "train-encoder": ("tiny", lambda i, o, f: ["train-encoder", "-g", i, "-o", o, "--steps", 1,
                                               "--no-progress"]),
    "invert": ("images", lambda i, o, f: ["invert", "-i", i, "-g", f["tiny"], "-o", o,
                                          "--steps", 1, "--no-progress"]),
    "selflabel": ("images", lambda i, o, f: ["selflabel", "-i", i, "-o", o, "--from-table",
                                             f["images"] / "labels.npz", "--columns", "smile"]),
    "resample": ("labels", lambda i, o, f: ["resample", "-l", i, "-o", o]),
    "train-selfcond": ("labels", lambda i, o, f: ["train-selfcond", "-i", f["images"], "-l", i,
                                                  "-g", f["tiny"], "-o", o, "--iter", 1,
                                                  "--no-progress"]),
    "edit": ("boundary", lambda i, o, f: ["edit", "-b", i, "-g", f["tiny"], "-o", o, "-n", 1,
                                          "--steps", 2, "--no-progress"]),
    "evaluate": ("boundary", lambda i, o, f: ["evaluate", "-b", i, "-g", f["tiny"], "-o", o,
                                              "--eval-n", 10, "--no-progress"]),
    "study": ("tiny", lambda i, o, f: ["study", "-g", i, "-o", o, "-n", 100, "--no-progress"]),
    "demo": ("tiny", lambda i, o, f: ["demo", "-g", i, "-o", o, "-n", 2, "--no-progress"]),
    "convert": ("pkl", lambda i, o, f: ["convert", "-g", i, "-o", o]),
    "align": ("images", lambda i, o, f: ["align", i, "-o", o, "--size", 16, "--no-progress"]),
}  # fmt: skip
# A command without a path input (its renders are made on the fly): only `-o ''` applies.
NO_INPUT = {"train-predictor": ["train-predictor", "--kind", "labeler", "--steps", 1]}


def _callbacks() -> dict[str, object]:
    from ganedit.cli import app

    found = {c.name: c.callback for c in app.registered_commands}
    for group in app.registered_groups:
        for c in group.typer_instance.registered_commands:
            found[f"{group.name} {c.name}"] = c.callback
    return found


def _overwrites(command: str) -> list[str]:
    params = inspect.signature(_callbacks()[command]).parameters
    return ["--overwrite"] if "overwrite" in params else []


def snapshot(root: Path) -> dict[str, object]:
    """Every path under `root`: links with their target, folders, files with their bytes."""
    found = {}
    for path in sorted([root, *root.rglob("*")]):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = ("link", os.readlink(path))
        elif path.is_dir():
            found[key] = "dir"
        else:
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)
    return dst


def refused_and_intact(capsys, d: Path, args: list) -> str:
    before = snapshot(d)
    line = user_error(capsys, args)
    assert snapshot(d) == before, "a refused command changed the case folder"
    return line


# ------------------------------------------------------------------------------------------
# An output that is, lies inside or holds an input


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_output_apart_from_every_input(fx, tmp_path, capsys, command):
    name, argv = COMMANDS[command]
    overwrite = _overwrites(command)
    src = fx[name]
    # The output is the input: with --overwrite it would be replaced.
    same = copy(src, tmp_path / "same" / src.name)
    line = refused_and_intact(capsys, tmp_path, [*argv(same, same, fx), *overwrite])
    assert "which is the input" in line and str(same) in line
    # The output lies inside the input (or under an input file).
    inside = copy(src, tmp_path / "inside" / src.name)
    line = refused_and_intact(capsys, tmp_path, [*argv(inside, inside / "x", fx), *overwrite])
    assert "which lies inside the input" in line
    # The output holds the input: a folder ganedit wrote, with the input among its files.
    outer = tmp_path / "outer"
    held = copy(src, outer / src.name)
    record_files(outer, "an earlier run")
    line = refused_and_intact(capsys, tmp_path, [*argv(held, outer, fx), *overwrite])
    assert "which holds the input" in line


@pytest.mark.parametrize("command", sorted([*COMMANDS, *NO_INPUT]))
def test_an_empty_output_path_is_a_mistake(fx, tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    for out in ("", ".", ".."):
        if command in NO_INPUT:
            args = [*NO_INPUT[command], "-o", out]
        else:
            name, argv = COMMANDS[command]
            args = argv(fx[name], out, fx)
        line = refused_and_intact(capsys, tmp_path, [*args, *_overwrites(command)])
        assert "to name a new file or folder" in line


def test_every_path_parameter_is_an_input_or_an_output():
    """A path option added later is checked too, once it is named in cli_paths."""
    from ganedit import cli_paths

    known = {*cli_paths.INPUTS, *cli_paths.OUTPUTS}
    for command, callback in _callbacks().items():
        hints = get_type_hints(inspect.unwrap(callback))
        for param, hint in hints.items():
            if "Path" in str(hint):
                assert param in known, f"{command}: --{param} is neither an input nor an output"
        assert getattr(callback, "_paths_checked", False), command
    assert set(_callbacks()) == {*COMMANDS, *NO_INPUT, "ui"}  # ui writes nothing


def _spelt(path: Path, how: str, d: Path) -> str:
    """`path` (under the working folder `d`) written another way that names the same place."""
    relative = path.relative_to(d)
    if how == "relative":
        return str(relative)
    if how == "dot-dot":
        return str(Path(relative.parts[0]) / ".." / relative)
    if how == "dot":
        return f"./{relative}"
    if how == "slash":
        return f"{path}/"
    if how == "link":
        link = d / f"link-{len(list(d.glob('link-*')))}"
        link.symlink_to(path)
        return str(link)
    if how == "linked-parent":
        link = d / f"up-{len(list(d.glob('up-*')))}"
        link.symlink_to(path.parent)
        return str(link / path.name)
    return str(path)


SPELLINGS = ["absolute", "relative", "dot-dot", "dot", "slash", "link", "linked-parent"]


@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(
    relation=st.sampled_from(["is", "lies inside", "holds"]),
    out_how=st.sampled_from(SPELLINGS),
    in_how=st.sampled_from(SPELLINGS),
)
def test_however_the_paths_are_spelt(fx, tmp_path_factory, relation, out_how, in_how):
    d = tmp_path_factory.mktemp("spelt")
    if relation == "holds":
        out = d / "outer"
        bank = copy(fx["bank"], out / "bank.zarr")
        record_files(out, "an earlier run")
    else:
        bank = copy(fx["bank"], d / "bank.zarr")
        out = bank if relation == "is" else bank / "sub"
    here = Path.cwd()
    os.chdir(d)
    try:
        args = ["bank", "export", _spelt(bank, in_how, d), "-o", _spelt(out, out_how, d)]
        before = snapshot(d)
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = run([*args, "--overwrite"])
        assert code == 2 and f"which {relation} the input" in err.getvalue(), (args, err)
        assert snapshot(d) == before, args
    finally:
        os.chdir(here)


# ------------------------------------------------------------------------------------------
# --overwrite replaces only what ganedit wrote


FOLDER_OUTPUTS = {
    "world render": lambda f: ["world", "render", "-n", 2, "--size", 16, "--no-progress"],
    "bank export": lambda f: ["bank", "export", f["bank"]],
    "bank import": lambda f: ["bank", "import", f["ref"], "-g", f["tiny"]],
    "generate": lambda f: ["generate", "-g", f["tiny"], "-p", "none", "-n", 2, "--no-progress"],
    "resample": lambda f: ["resample", "-l", f["labels"]],
    "selflabel": lambda f: ["selflabel", "-i", f["images"], "--from-table",
                            f["images"] / "labels.npz", "--columns", "smile"],
    "edit": lambda f: ["edit", "-b", f["boundary"], "-g", f["tiny"], "-n", 1, "--steps", 2,
                       "--no-progress"],
    "invert": lambda f: ["invert", "-i", f["images"] / "000000.png", "-g", f["tiny"],
                         "--steps", 1, "--no-progress"],
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(FOLDER_OUTPUTS))
def test_overwrite_refuses_a_folder_holding_a_file_ganedit_did_not_write(
    fx, tmp_path, capsys, command
):
    args = [*FOLDER_OUTPUTS[command](fx), "-o", tmp_path / "out"]
    ok(capsys, args)
    marker = json.loads((tmp_path / "out" / MARKER).read_text())
    assert marker["files"] and MARKER not in marker["files"]  # what ganedit wrote, listed
    notes = tmp_path / "out" / "notes.txt"
    notes.write_text("mine")
    line = refused_and_intact(capsys, tmp_path, [*args, "--overwrite"])
    assert "holds 'notes.txt', which ganedit did not write; move or delete it" in line
    assert notes.read_text() == "mine"
    notes.unlink()
    ok(capsys, [*args, "--overwrite"])  # the listed files alone: replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no debris beside it


def test_a_symlinked_output_folder_has_its_target_replaced(fx, tmp_path, capsys):
    args = ["edit", "-b", fx["boundary"], "-g", fx["tiny"], "-n", 1, "--steps", 2,
            "--no-progress"]  # fmt: skip
    ok(capsys, [*args, "-o", tmp_path / "e"])
    (tmp_path / "e" / "config.json").write_text("{}")  # so that the replacement shows
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "e")
    ok(capsys, [*args, "-o", link, "--overwrite"])
    assert link.is_symlink() and os.readlink(link) == str(tmp_path / "e")
    assert json.loads((tmp_path / "e" / "config.json").read_text())["n"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e", "link"]  # no .old-* debris
    (tmp_path / "e" / "notes.txt").write_text("mine")
    line = refused_and_intact(capsys, tmp_path, [*args, "-o", link, "--overwrite"])
    assert "notes.txt" in line


def test_symlinked_banks_and_files_are_replaced_where_they_point(fx, tmp_path, capsys):
    ok(capsys, ["generate", "-g", fx["tiny"], "-p", "none", "-n", 2, "-o", tmp_path / "g.zarr",
                "--no-progress"])  # fmt: skip
    (tmp_path / "g-link").symlink_to(tmp_path / "g.zarr")
    ok(capsys, ["generate", "-g", fx["tiny"], "-p", "none", "-n", 3, "-o", tmp_path / "g-link",
                "--no-progress", "--overwrite"])  # fmt: skip
    zarr_meta = json.loads((tmp_path / "g.zarr" / "zarr.json").read_text())
    assert zarr_meta["attributes"]["n"] == 3 and (tmp_path / "g-link").is_symlink()
    from PIL import Image

    ok(capsys, ["sample", "-g", fx["tiny"], "-n", 1, "-o", tmp_path / "s.png"])
    one = Image.open(tmp_path / "s.png").size
    (tmp_path / "s-link.png").symlink_to(tmp_path / "s.png")
    ok(capsys, ["sample", "-g", fx["tiny"], "-n", 4, "-o", tmp_path / "s-link.png",
                "--overwrite"])  # fmt: skip
    assert (tmp_path / "s-link.png").is_symlink()
    assert json.loads((tmp_path / "s-link.png.json").read_text())["n"] == 4
    assert Image.open(tmp_path / "s.png").size[0] > one[0]  # the 2 x 2 grid, at the target
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["g-link", "g.zarr", "s-link.png", "s-link.png.json", "s.png", "s.png.json"]
    (tmp_path / "gone.png").symlink_to(tmp_path / "missing.png")
    line = refused_and_intact(capsys, tmp_path, ["sample", "-g", fx["tiny"], "-n", 1,
                                                 "-o", tmp_path / "gone.png", "--overwrite"])  # fmt: skip
    assert "a link to the missing" in line


# ------------------------------------------------------------------------------------------
# Sidecars and messages


def test_outputs_that_share_a_stem_keep_their_own_sidecars(fx, tmp_path, capsys):
    ok(capsys, ["sample", "-g", fx["tiny"], "-n", 1, "-o", tmp_path / "s.png"])
    ok(capsys, ["score", "-i", fx["lmdb"], "-p", fx["pred"], "-o", tmp_path / "s.npz",
                "--no-progress"])  # fmt: skip
    grid, scores = tmp_path / "s.png.json", tmp_path / "s.npz.json"
    assert json.loads(grid.read_text())["n"] == 1 and json.loads(scores.read_text())["n"] == 2
    kept = scores.read_bytes()
    ok(capsys, ["sample", "-g", fx["tiny"], "-n", 4, "-o", tmp_path / "s.png", "--overwrite"])
    assert json.loads(grid.read_text())["n"] == 4 and scores.read_bytes() == kept
    assert not (tmp_path / "s.json").exists()


def test_codes_with_an_older_sidecar_keep_their_provenance(fx, tmp_path, capsys):
    """`x.json` beside `x.npy` (written before sidecars carried the whole name) is still read:
    codes it says come from another generator are refused; without it they are used."""
    codes = tmp_path / "codes.npy"
    np.save(codes, np.zeros((1, D), np.float32))
    older = tmp_path / "codes.json"
    older.write_text(
        json.dumps({"space": "w", "generator": "other", "generator_sha256": "ab" * 32})
    )
    args = ["edit", "-b", fx["boundary"], "-g", fx["tiny"], "-c", codes, "-n", 1, "--steps", 2,
            "-o", tmp_path / "e", "--no-progress"]  # fmt: skip
    assert "learned on 'other'" in user_error(capsys, args)
    older.unlink()
    ok(capsys, args)


def test_conditions_and_layers_are_refused_before_any_work(fx, tmp_path, capsys):
    base = ["boundary", "--method", "conditional", "-c", fx["bank"], "-a", "age",
            "-o", tmp_path / "c.npy"]  # fmt: skip
    for args in ([*base, "--conditions"], [*base[:3], "--conditions", *base[3:]]):
        assert "after --conditions, received none" in user_error(capsys, args)
    other = ["boundary", "-c", fx["bank"], "-a", "age", "-o", tmp_path / "c.npy",
             "--conditions", fx["boundary"]]  # fmt: skip
    assert "only with --method conditional" in user_error(capsys, other)
    code = run(["edit", "-b", fx["boundary"], "-g", fx["tiny"], "--space", "ws", "--layers",
                "4:99", "-o", tmp_path / "e"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 2
    assert_one_error_line(err)  # the progress bar never started
    assert "4:99" in err and not (tmp_path / "e").exists()
