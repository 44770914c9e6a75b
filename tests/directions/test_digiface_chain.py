"""The workflow on dcgan-digiface through the CLI, measured by the dlib networks, at a small
size: banks scored by dlib-pose and dlib-mouth, directions with the methods that apply to each
kind of attribute, an edit, and (slow) an evaluation with dlib-identity. The shipped yaw
direction is checked against the planted answer: dlib reads the head turned its way."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from cli_run import ok, user_error
from ganedit.directions.io import load_boundary
from ganedit.directions.shipped import shipped_directions

for module in ("dlib", "face_recognition_models", "cv2", "gan_face_generate"):
    if importlib.util.find_spec(module) is None:
        pytest.skip(
            f"needs ganedit[faces] and gan-face-generate ({module})", allow_module_level=True
        )

G = ["-g", "dcgan-digiface"]
N = 48


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digiface")
    from ganedit.cli import run

    for net in ("pose", "mouth"):
        args = ["generate", *G, "-p", f"dlib-{net}", "-n", N, "-o", folder / f"{net}.zarr"]
        assert run([str(a) for a in [*args, "--no-progress"]]) == 0
    return folder


def test_yaw_takes_the_methods_for_values_and_refuses_the_labelling_ones(banks, capsys):
    bank = banks / "pose.zarr"
    for method, extra in (("regression", []), ("interfacegan", ["--ratio", "0.25"])):
        out = banks / f"yaw_{method}.npy"
        ok(capsys, ["boundary", "--method", method, "-c", bank, "--space", "z", "-a", "yaw",
                    *extra, "-o", out])  # fmt: skip
        vector, meta = load_boundary(out)
        assert vector.shape == (100,)
        assert meta["generator"] == "dcgan-digiface" and meta["space"] == "z"
        assert meta["attribute_kind"] == "value" and meta["method"] == method
    for method in ("mab", "stratified", "fisher"):
        line = user_error(capsys, ["boundary", "--method", method, "-c", bank, "--space", "z",
                                   "-a", "yaw", "-o", banks / "no.npy"])  # fmt: skip
        assert "'yaw' of kind value" in line


def test_smile_proxy_takes_every_method_and_edits(banks, capsys):
    bank = banks / "mouth.zarr"
    for method in ("interfacegan", "mab", "stratified", "regression", "fisher"):
        extra = {"interfacegan": ["--ratio", "0.25"], "mab": ["-n", "16", "-t", "0.8"]}
        extra.update(stratified=["-t", "0.8"], fisher=["-t", "0.8"])
        ok(capsys, ["boundary", "--method", method, "-c", bank, "--space", "z", "-a",
                    "smile_proxy", *extra.get(method, []), "-o", banks / f"smile_{method}.npy"])  # fmt: skip
        assert load_boundary(banks / f"smile_{method}.npy")[1]["attribute_kind"] == "probability"
    out = banks / "edit"
    ok(capsys, ["edit", "-b", banks / "smile_stratified.npy", *G, "--space", "z", "-n", 2,
                "--steps", 3, "--no-progress", "-o", out])  # fmt: skip
    assert (out / "strip.png").is_file()
    assert json.loads((out / "config.json").read_text())["generator"]["name"] == "dcgan-digiface"


def test_the_shipped_yaw_direction_turns_the_head_as_dlib_reads_it():
    from ganedit.models.registry import load_attribute_predictor
    from ganedit.models.sources import load_generator

    source = load_generator("dcgan-digiface")
    pose = load_attribute_predictor("dlib-pose", foreign=True)
    (path,) = [p for p in shipped_directions("dcgan-digiface") if p.stem == "yaw_regression"]
    d = torch.from_numpy(load_boundary(path)[0])
    z = source.sample_z(16, 99)  # a seed no bank of the report uses
    yaw = [pose.predict(source.synthesize(z + s * d, "z"), batch_size=16)["yaw"] for s in (-2, 2)]
    turned = np.asarray(yaw[1]) - np.asarray(yaw[0])
    # The report measures ~12 degrees per latent unit: 4 units turn most heads by > 10 degrees.
    assert float(np.median(turned)) > 20.0 and (turned > 0).mean() >= 0.75


@pytest.mark.slow  # dlib-identity costs ~0.25 s an image on one core
def test_evaluate_with_the_dlib_networks_on_held_out_latents(banks, capsys):
    boundary = banks / "smile_stratified.npy"
    if not boundary.is_file():
        ok(capsys, ["boundary", "-c", banks / "mouth.zarr", "--space", "z", "-a",
                    "smile_proxy", "-t", "0.8", "-o", boundary])  # fmt: skip
    out = banks / "eval"
    ok(capsys, ["evaluate", "-b", boundary, *G, "--space", "z", "--evaluator", "dlib-mouth",
                "--identity", "dlib-identity", "--eval-n", 10, "--steps", 2, "--bootstrap", 0,
                "--no-progress", "-o", out])  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["seed"] != 0  # held-out latents: not the bank's seed
    curve = report["directions"][0]["curve"]
    assert curve["flip_rate"][0] == 0 and curve["identity"][0] == pytest.approx(1.0, abs=1e-6)
    assert max(curve["flip_rate"]) > 0
    yaw = next(p for p in shipped_directions("dcgan-digiface") if p.name == "yaw_regression.npy")
    line = user_error(capsys, ["evaluate", "-b", yaw, *G, "--space",
                               "z", "--evaluator", "dlib-pose", "--identity", "none",
                               "--eval-n", 10, "-o", banks / "eval_yaw"])  # fmt: skip
    assert "value attribute" in line


def test_an_aligned_photo_is_inverted_into_z_and_edited_there(tmp_path, capsys):
    # A z-only generator: `edit -i --space z` projects into z and edits the codes in z.
    from PIL import Image
    from skimage.data import astronaut

    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut()).save(photo)
    yaw = next(p for p in shipped_directions("dcgan-digiface") if p.name == "yaw_regression.npy")
    out = tmp_path / "edited"
    ok(capsys, ["edit", *G, "--space", "z", "-i", photo, "--align", "-b", yaw,
                "--invert-steps", 3, "--steps", 2, "-o", out, "--no-progress"])  # fmt: skip
    codes = np.load(out / "edit" / "latents.npy")
    assert codes.shape[-1] == 100  # z of the DCGAN, not a w
    assert json.loads((out / "inversion" / "config.json").read_text())["align"] is True
