"""Truncation is used consistently: `edit` renders a bank's codes at the psi the bank was
generated and scored at, and a boundary learned on a truncated bank records that psi."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cli_run import ok, user_error
from ganedit.models.predictors import AttributeNet
from ganedit.models.registry import save_pretrained
from ganedit.models.stylegan2 import Generator

PSI = 0.7


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A tiny generator, a tiny predictor, a bank generated at psi 0.7 and a z boundary."""
    from ganedit.cli import run

    root = tmp_path_factory.mktemp("trunc")
    torch.manual_seed(0)
    g = Generator(16, style_dim=8, n_mlp=2, channel_max=8).eval()
    g.update_w_avg(n=64, generator=torch.Generator().manual_seed(0))
    save_pretrained(g, root / "tiny")
    save_pretrained(AttributeNet("plain", width=8, hidden=8, image_size=16).eval(), root / "pred")
    for args in (
        ["generate", "-g", root / "tiny", "-p", root / "pred", "-n", 48, "--chunk-size", 16,
         "--trunc", PSI, "-o", root / "bank.zarr", "--no-progress"],
        ["boundary", "--method", "interfacegan", "--ratio", 0.25, "-c", root / "bank.zarr",
         "--space", "z", "-a", "smile", "-o", root / "z_smile.npy"],
    ):  # fmt: skip
        assert run([str(a) for a in args]) == 0
    return root


def _edit(work, out, *extra) -> list:
    return ["edit", "-b", work / "z_smile.npy", "-g", work / "tiny", "--space", "z", "-n", 2,
            "--steps", 2, "-o", out, "--no-progress", *extra]  # fmt: skip


def _strip(folder) -> np.ndarray:
    return np.asarray(Image.open(folder / "strip.png"))


def test_a_boundary_learned_on_a_truncated_bank_records_its_psi(work):
    sidecar = json.loads((work / "z_smile.npy.json").read_text())
    assert sidecar["space"] == "z" and sidecar["truncation_psi"] == PSI


def test_edit_renders_a_banks_codes_at_the_banks_psi(work, tmp_path, capsys):
    text = ok(capsys, _edit(work, tmp_path / "bank_edit", "-c", work / "bank.zarr"))
    assert f"rendered at truncation psi {PSI} (the bank's)" in text
    config = json.loads((tmp_path / "bank_edit" / "config.json").read_text())
    assert config["rendered_truncation_psi"] == PSI
    assert config["rendered_truncation_psi_from"] == "bank"
    # The same z codes from a plain .npy render the same at --trunc 0.7, otherwise at psi 1.
    codes = tmp_path / "bank_edit" / "latents.npy"
    ok(capsys, _edit(work, tmp_path / "npy_at_psi", "-c", codes, "--trunc", PSI))
    ok(capsys, _edit(work, tmp_path / "npy_at_1", "-c", codes))
    np.testing.assert_array_equal(_strip(tmp_path / "bank_edit"), _strip(tmp_path / "npy_at_psi"))
    assert not np.array_equal(_strip(tmp_path / "bank_edit"), _strip(tmp_path / "npy_at_1"))
    # The bank's own psi, given explicitly, is accepted.
    ok(capsys, _edit(work, tmp_path / "same", "-c", work / "bank.zarr", "--trunc", PSI))


def test_a_psi_other_than_the_banks_is_refused_in_one_line(work, tmp_path, capsys):
    out = tmp_path / "edit"
    line = user_error(capsys, _edit(work, out, "-c", work / "bank.zarr", "--trunc", 0.5))
    assert f"expected --trunc {PSI}" in line and "bank.zarr" in line and "received 0.5" in line
    assert not out.exists()


def test_sampled_codes_render_at_psi_1_unless_told(work, tmp_path, capsys):
    text = ok(capsys, _edit(work, tmp_path / "default"))
    assert "truncation" not in text  # the default says nothing new
    config = json.loads((tmp_path / "default" / "config.json").read_text())
    assert config["rendered_truncation_psi"] == 1.0
    assert config["rendered_truncation_psi_from"] == "default"
    assert config["truncation_psi"] is None
    text = ok(capsys, _edit(work, tmp_path / "given", "--trunc", 0.5))
    assert "rendered at truncation psi 0.5 (--trunc)" in text
    assert not np.array_equal(_strip(tmp_path / "default"), _strip(tmp_path / "given"))


def test_a_boundary_learned_at_another_psi_is_named_in_a_warning(work, tmp_path, capsys):
    from ganedit.cli import run

    assert run([str(a) for a in _edit(work, tmp_path / "e")]) == 0
    err = capsys.readouterr().err
    assert f"learned on codes rendered at truncation psi {PSI}; these render at 1" in err
    assert run([str(a) for a in _edit(work, tmp_path / "f", "--trunc", PSI)]) == 0
    assert "truncation" not in capsys.readouterr().err


def test_trunc_with_images_is_refused(work, tmp_path, capsys):
    (tmp_path / "photos").mkdir()  # beside the output: an output inside an input is refused
    args = _edit(work, tmp_path / "e", "-i", tmp_path / "photos", "--trunc", 0.5)
    line = user_error(capsys, args)
    assert "--trunc with --images" in line
