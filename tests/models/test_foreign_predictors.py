"""Bring-your-own attribute predictors: the reference's ResNet checkpoint, its input pipeline,
Python entry points, ONNX manifests, hostile files, and `score` / `generate` with them."""

from __future__ import annotations

import json
import os
import pickle
import struct
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cli_run import ok, user_error
from ganedit.errors import DamagedInputError, UserInputError
from ganedit.models.foreign_predictors import (
    CELEBA_PIPELINE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    CheckedPredictor,
    InputPipeline,
    resized_size,
)
from ganedit.models.predictors import AttributeNet, AttributePredictor
from ganedit.models.registry import load_attribute_predictor, load_predictor
from ganedit.models.resnet import MultiHeadResNet, ResNetTrunk
from tolerance import assert_f32_close

REFERENCE_HEADS = ("smile", "age", "gender", "eyeglasses")  # the reference's fc_<name>
WIDTH = 4  # stem channels of the thin test ResNet-50 (torchvision's is 64)


# ------------------------------------------------------------------------------------------
# Writing checkpoints in the reference's layout


def _random_reference_state(width: int = WIDTH, seed: int = 0) -> dict[str, torch.Tensor]:
    """A ResNet-50 (blocks 3, 4, 6, 3) with random weights and BatchNorm statistics, named as
    the reference saves it: `features.<i>.` for torchvision's children, `fc_<attr>` heads."""
    torch.manual_seed(seed)
    net = MultiHeadResNet(REFERENCE_HEADS, width=width)
    state = {}
    for key, value in net.state_dict().items():
        value = value.clone()
        if value.ndim == 4:  # He initialisation keeps the signal alive through 16 blocks
            value.normal_(0.0, (2.0 / value[0].numel()) ** 0.5)
        elif key.endswith(("bn1.weight", "bn2.weight", "bn3.weight", "downsample.1.weight")):
            value.uniform_(0.5, 1.5)
        elif key.endswith(("running_mean", "bias")) and value.is_floating_point():
            value.normal_(0.0, 0.1)
        elif key.endswith("running_var"):
            value.uniform_(0.5, 2.0)
        state[_reference_name(key)] = value
    return state


def _calibrate_heads(state: dict, images: torch.Tensor) -> None:
    """Heads whose logits for images 0 and 1 are (0, -gain) and (0, +gain), so the softmax is
    neither saturated nor flat there (from the independent forward pass)."""
    with torch.no_grad():
        pooled = _direct_pooled(state, CELEBA_PIPELINE(images[:2]))  # [2, F]
    d = pooled[1] - pooled[0]
    for head, gain in zip(REFERENCE_HEADS, (1.0, 2.0, -1.5, 0.5), strict=True):
        weight = torch.zeros(2, d.numel())
        weight[1] = gain * 2 * d / d.dot(d)
        state[f"fc_{head}.weight"] = weight
        state[f"fc_{head}.bias"] = torch.stack([torch.tensor(0.0), -(pooled.mean(0) @ weight[1])])


def _reference_name(key: str) -> str:
    names = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}
    if key.startswith("heads."):
        _, head, rest = key.split(".", 2)
        return f"fc_{head}.{rest}"
    _, top, rest = key.split(".", 2)
    return f"features.{names[top]}.{rest}"


def _torchvision_name(key: str) -> str:
    """The reference name as torchvision spells the trunk (`conv1.`, `layer1.`, ...)."""
    names = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}
    if key.startswith("features."):
        _, index, rest = key.split(".", 2)
        return f"{names[index]}.{rest}"
    return key


def _save(state: dict, path, **extra) -> None:
    torch.save({"state_dict": state, "epoch": 7, "best_acc": 0.93, **extra}, path)


# ------------------------------------------------------------------------------------------
# An independent forward pass over the reference's names


def _bn(x, state, prefix):
    return F.batch_norm(
        x,
        state[f"{prefix}running_mean"],
        state[f"{prefix}running_var"],
        state[f"{prefix}weight"],
        state[f"{prefix}bias"],
        training=False,
        eps=1e-5,
    )


def _direct_pooled(state: dict, x: torch.Tensor) -> torch.Tensor:  # [N, F]
    """pool(features(x)), written from the reference's key names with torch.nn.functional."""
    h = F.conv2d(x, state["features.0.weight"], stride=2, padding=3)
    h = F.max_pool2d(F.relu(_bn(h, state, "features.1.")), 3, stride=2, padding=1)
    for stage, blocks in zip((4, 5, 6, 7), (3, 4, 6, 3), strict=True):
        for b in range(blocks):
            p = f"features.{stage}.{b}."
            stride = 2 if (b == 0 and stage > 4) else 1
            out = F.relu(_bn(F.conv2d(h, state[p + "conv1.weight"]), state, p + "bn1."))
            out = F.conv2d(out, state[p + "conv2.weight"], stride=stride, padding=1)
            out = F.relu(_bn(out, state, p + "bn2."))
            out = _bn(F.conv2d(out, state[p + "conv3.weight"]), state, p + "bn3.")
            skip = h
            if p + "downsample.0.weight" in state:
                skip = F.conv2d(h, state[p + "downsample.0.weight"], stride=stride)
                skip = _bn(skip, state, p + "downsample.1.")
            h = F.relu(out + skip)
    return h.mean(dim=(2, 3))


def _direct_probabilities(state: dict, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """softmax(fc_<attr>(pool(features(x))))[:, 1] per attribute, in ganedit's names."""
    pooled = _direct_pooled(state, x)
    out = {}
    for head in REFERENCE_HEADS:
        logits = pooled @ state[f"fc_{head}.weight"].T + state[f"fc_{head}.bias"]
        out["glasses" if head == "eyeglasses" else head] = torch.softmax(logits, 1)[:, 1]
    return out


def _images(n: int = 2, size: int = 48, seed: int = 1) -> torch.Tensor:  # [N, 3, s, s]
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ------------------------------------------------------------------------------------------
# The network


def test_full_width_trunk_is_torchvision_resnet50_sized():
    with torch.device("meta"):
        trunk = ResNetTrunk()
        net = MultiHeadResNet(("smile", "age", "gender", "glasses"))
    assert sum(p.numel() for p in trunk.parameters()) == 23_508_032  # torchvision's minus fc
    assert trunk.features == 2048
    assert tuple(net.heads["glasses"].weight.shape) == (2, 2048)
    assert len(trunk.layer3) == 6 and trunk.layer2[0].conv2.stride == (2, 2)


def test_trunk_runs_on_small_images():
    trunk = ResNetTrunk(width=WIDTH).eval()
    with torch.no_grad():
        assert trunk(_images(2, 32)).shape == (2, 32 * WIDTH)


@pytest.mark.parametrize("layout", ["reference", "module.", "torchvision"])
def test_reference_checkpoint_matches_a_direct_computation(tmp_path, layout):
    state = _random_reference_state()
    images = _images(2)
    _calibrate_heads(state, images)
    saved = state
    if layout == "module.":  # DataParallel's prefix
        saved = {f"module.{k}": v for k, v in state.items()}
    elif layout == "torchvision":
        saved = {_torchvision_name(k): v for k, v in state.items()}
    path = tmp_path / "celeba.pth.tar"
    _save(saved, path)
    predictor = load_predictor(path)
    assert isinstance(predictor, AttributePredictor)
    assert predictor.attribute_kinds == dict.fromkeys(
        ("smile", "age", "gender", "glasses"), "probability"
    )
    assert predictor.input_size == 224
    got = predictor.predict(images, batch_size=1)
    with torch.no_grad():
        x = CELEBA_PIPELINE(images)
        want = _direct_probabilities(state, x)
        assert_f32_close(predictor.network.trunk(x), _direct_pooled(state, x), ulps=1024)
    for name, value in want.items():
        assert got[name].dtype == np.float32 and got[name].shape == (2,)
        assert_f32_close(got[name], value.numpy(), ulps=4096)
    # The check can fail: the heads are not saturated and the two images differ.
    for name, gain in zip(
        ("smile", "age", "gender", "glasses"), (1.0, 2.0, -1.5, 0.5), strict=True
    ):
        np.testing.assert_allclose(got[name], 1 / (1 + np.exp([gain, -gain])), atol=1e-3)


def test_checkpoint_without_batchnorm_counters_or_wrapper_loads(tmp_path):
    state = {k: v for k, v in _random_reference_state().items() if "num_batches" not in k}
    torch.save(state, tmp_path / "bare.pth")  # a bare state dict, no {"state_dict": ...}
    out = load_predictor(tmp_path / "bare.pth").predict(_images(1))
    assert set(out) == {"smile", "age", "gender", "glasses"}


def test_shipped_attribute_net_satisfies_the_protocol():
    net = AttributeNet("plain", width=8, hidden=8, image_size=16).eval()
    assert isinstance(net, AttributePredictor)
    assert net.attribute_kinds == {
        "smile": "probability",
        "gender": "probability",
        "glasses": "probability",
        "age": "probability",
        "yaw": "value",
    }
    assert net.input_size == 16
    assert list(net.predict(_images(2, 16))) == list(net.attribute_kinds)


# ------------------------------------------------------------------------------------------
# Input pipeline


def _levels_image(levels_by_column: list[int], rows: int) -> torch.Tensor:
    """A grey image [1, 3, rows, len(levels)] whose 8-bit level depends on the column only."""
    levels = torch.tensor(levels_by_column, dtype=torch.float32).expand(rows, -1)
    return (levels / 127.5 - 1.0).expand(1, 3, -1, -1).contiguous()


def test_pipeline_worked_example_square():
    # Shrinking 8 -> 4 px, PIL's bilinear weighs output pixel i with input pixels 2i-1..2i+2
    # as 1/8, 3/8, 3/8, 1/8. The centre 2 x 2 crop keeps columns 1 and 2:
    #   column 1: (22 + 3*40 + 3*80 + 160) / 8 = 67.75 -> 68 as a uint8 level
    #   column 2: (80 + 3*160 + 3*200 + 100) / 8 = 157.5 -> 158 (rounded half up)
    image = _levels_image([10, 22, 40, 80, 160, 200, 100, 52], rows=8)
    pipe = InputPipeline(resize=4, crop=2, quantize=True)
    out = pipe(image)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    want = (torch.tensor([68.0, 158.0]).expand(1, 3, 2, 2) / 255 - mean) / std
    assert out.shape == (1, 3, 2, 2)
    assert_f32_close(out, want, ulps=64)
    # Without quantisation the exact means stay; rows (the height pass) work the same way.
    raw = InputPipeline(resize=4, crop=2, value_range=(0, 255), mean=(0, 0, 0), std=(1, 1, 1))
    assert_f32_close(raw(image)[0, 0], torch.tensor([[67.75, 157.5], [67.75, 157.5]]))
    assert_f32_close(raw(image.transpose(2, 3))[0, 0], torch.tensor([[67.75] * 2, [157.5] * 2]))


def test_pipeline_worked_example_oblong_crop_offsets():
    # 8 x 16 -> shorter side 4: 4 x 8; the 2 x 2 centre crop starts at row 1, column 3.
    # Column levels j * j: column 3 = (25 + 3*36 + 3*49 + 64) / 8 = 43, column 4 = 73.
    assert resized_size(8, 16, 4) == (4, 8) and resized_size(16, 8, 4) == (8, 4)
    assert resized_size(100, 70, 33) == (47, 33)  # int(33 * 100 / 70), as torchvision
    image = _levels_image([j * j for j in range(16)], rows=8)
    raw = InputPipeline(resize=4, crop=2, value_range=(0, 1), mean=(0, 0, 0), std=(1, 1, 1))
    assert_f32_close(raw(image)[0, 1], torch.tensor([[43.0, 73.0], [43.0, 73.0]]) / 255)


@pytest.mark.parametrize(("height", "width", "shorter"), [(64, 64, 256), (100, 70, 33)])
def test_pipeline_resize_matches_pil_bilinear(height, width, shorter):
    rng = np.random.default_rng(height)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    size = resized_size(height, width, shorter)
    pil = np.asarray(Image.fromarray(image).resize(size[::-1], Image.BILINEAR), np.float64)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
    pipe = InputPipeline(resize=shorter, crop=min(size), value_range=(0, 255), quantize=True)
    ours = pipe._resize(((x + 1) * 127.5).round())[0].permute(1, 2, 0).numpy()
    diff = np.abs(ours - pil)
    # One level at most, on under 1 % of pixels (rounding after one 2-D pass instead of
    # PIL's two would differ on 10-20 %).
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_pipeline_refuses_nonsense():
    with pytest.raises(UserInputError, match="crop <= resize"):
        InputPipeline(resize=8, crop=16)
    with pytest.raises(UserInputError, match="positive std"):
        InputPipeline(resize=8, crop=8, std=(1.0, 0.0, 1.0))


# ------------------------------------------------------------------------------------------
# Hostile and damaged checkpoints


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("container", ["torch-zip", "raw-pickle"])
def test_pickle_that_runs_code_is_refused_and_never_run(tmp_path, capsys, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "celeba.pth.tar"
    payload = {"state_dict": {"features.0.weight": torch.zeros(1)}, "x": _Payload(marker)}
    if container == "torch-zip":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UserInputError, match="pickled Python objects") as err:
        load_predictor(path)
    assert "\n" not in str(err.value) and "weights_only" not in str(err.value)
    images = tmp_path / "imgs"
    images.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "a.png")
    line = user_error(capsys, ["score", "-i", images, "-p", path, "-o", tmp_path / "s.npz"])
    assert "pickled Python objects" in line
    assert not marker.exists()


def test_truncated_checkpoint_is_damaged(tmp_path):
    path = tmp_path / "celeba.pth.tar"
    _save(_random_reference_state(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedInputError, match="cannot read"):
        load_predictor(path)


def test_nan_weights_are_damage(tmp_path):
    state = _random_reference_state()
    state["features.5.1.conv2.weight"][0, 0, 0, 0] = float("nan")
    _save(state, tmp_path / "nan.pth.tar")
    with pytest.raises(DamagedInputError, match=r"NaN or inf in features\.5\.1\.conv2"):
        load_predictor(tmp_path / "nan.pth.tar")


def test_other_layouts_are_refused_with_one_line(tmp_path):
    state = _random_reference_state()
    cases = {
        "extra": {**state, "fc.weight": torch.zeros(1000, 32 * WIDTH)},
        "missing": {k: v for k, v in state.items() if "features.6.2." not in k},
        "shape": {**state, "fc_smile.weight": torch.zeros(2, 7)},
        "classes": {
            **state,
            **{f"fc_{h}.weight": torch.zeros(3, 32 * WIDTH) for h in REFERENCE_HEADS},
            **{f"fc_{h}.bias": torch.zeros(3) for h in REFERENCE_HEADS},
        },
        "no-heads": {k: v for k, v in state.items() if not k.startswith("fc_")},
    }
    for name, bad in cases.items():
        _save(bad, tmp_path / f"{name}.pth")
        with pytest.raises(UserInputError) as err:
            load_predictor(tmp_path / f"{name}.pth")
        assert str(err.value).startswith("expected ") and "\n" not in str(err.value), name
    torch.save({"g_ema": {}}, tmp_path / "g.pth")
    with pytest.raises(UserInputError, match="state_dict"):
        load_predictor(tmp_path / "g.pth")
    with pytest.raises(UserInputError, match="no such file"):
        load_predictor(tmp_path / "absent.pth.tar")
    with pytest.raises(UserInputError, match="py:module:callable"):
        load_predictor(tmp_path / "weights.bin")


# ------------------------------------------------------------------------------------------
# Python entry points

_USER_MODULE = """
import torch

class BaldAndPose:
    attribute_kinds = {"bald": "probability", "pose": "value"}
    input_size = 16

    def __init__(self, device):
        self.device = device

    def predict(self, images, batch_size=256):
        # bald: the sigmoid of mean brightness; pose: left half minus right half, x 10.
        w = images.shape[-1]
        bald = torch.sigmoid(images.mean(dim=(1, 2, 3)))
        pose = 10 * (images[..., : w // 2].mean(dim=(1, 2, 3)) - images[..., w // 2 :].mean(dim=(1, 2, 3)))
        return {"bald": bald, "pose": pose.numpy()}

def make_predictor(device):
    return BaldAndPose(device)

def wrong_shape():
    p = BaldAndPose("cpu")
    p.predict = lambda images, batch_size=256: {"bald": torch.zeros(len(images), 1), "pose": torch.zeros(len(images))}
    return p

def not_probability():
    p = BaldAndPose("cpu")
    p.predict = lambda images, batch_size=256: {"bald": torch.full((len(images),), 2.0), "pose": torch.zeros(len(images))}
    return p

def not_finite():
    p = BaldAndPose("cpu")
    p.predict = lambda images, batch_size=256: {"bald": torch.zeros(len(images)), "pose": torch.full((len(images),), float("nan"))}
    return p

def undeclared():
    class P:
        input_size = 16
        def predict(self, images, batch_size=256):
            return {}
    return P()

def bad_kind():
    p = BaldAndPose("cpu")
    p.attribute_kinds = {"bald": "binary"}
    return p

NOT_CALLABLE = 3
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = "byo_predictor_mod"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(_USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_entry_point_predictor_is_checked_and_runs(user_module):
    predictor = load_attribute_predictor(f"py:{user_module}:make_predictor", foreign=True)
    assert isinstance(predictor, CheckedPredictor)
    assert predictor.attribute_kinds == {"bald": "probability", "pose": "value"}
    assert predictor.input_size == 16 and predictor.inner.device == torch.device("cpu")
    images = torch.full((5, 3, 8, 8), -1.0)
    images[1, ..., :4] = 1.0  # bright left half: mean 0, pose 10 * (1 - -1) = 20
    out = predictor.predict(images, batch_size=2)  # three calls of 2, 2 and 1 images
    assert out["bald"].shape == (5,) and out["pose"].dtype == np.float32
    assert_f32_close(out["bald"][:2], [1 / (1 + np.e), 0.5])
    assert_f32_close(out["pose"][:2], [0.0, 20.0])


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ("wrong_shape", r"bald of shape \[5\], received \[5, 1\]"),
        ("not_probability", r"probabilities in \[0, 1\]"),
        ("not_finite", "finite pose"),
    ],
)
def test_entry_point_outputs_are_held_to_the_protocol(user_module, target, match):
    predictor = load_predictor(f"py:{user_module}:{target}")
    with pytest.raises(UserInputError, match=match):
        predictor.predict(torch.zeros(5, 3, 8, 8))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("py:{m}:undeclared", "declare attribute_kinds"),
        ("py:{m}:bad_kind", "attribute names"),
        ("py:{m}:NOT_CALLABLE", "expected a callable"),
        ("py:{m}:absent", "to define absent"),
        ("py:{m}", "py:package.module:callable"),
        ("py:no_such_module_xyz:make", "importable module"),
    ],
)
def test_entry_point_mistakes_are_one_line(user_module, spec, match):
    with pytest.raises(UserInputError, match=match) as err:
        load_predictor(spec.format(m=user_module))
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------
# The CLI


def _image_folder(path, n: int = 2, size: int = 16):
    path.mkdir()
    rng = np.random.default_rng(0)
    for k in range(n):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path / f"{k:03d}.png")
    return path


def test_score_with_a_reference_checkpoint(tmp_path, capsys):
    _save(_random_reference_state(), tmp_path / "celeba.pth.tar")
    images = _image_folder(tmp_path / "imgs")
    out = ok(capsys, ["score", "-i", images, "-p", tmp_path / "celeba.pth.tar",
                      "-o", tmp_path / "s.npz", "--no-progress"])  # fmt: skip
    assert "age, gender, glasses, smile" in out
    from ganedit.latents import load_scores_and_kinds

    scores, kinds = load_scores_and_kinds(tmp_path / "s.npz")  # the .npz's `.kinds` entry
    assert kinds == dict.fromkeys(("smile", "age", "gender", "glasses"), "probability")
    assert set(scores) == set(kinds) and scores["glasses"].shape == (2,)


def test_score_and_generate_with_an_entry_point(tmp_path, capsys, user_module):
    from ganedit.latents.bank import LatentBank
    from ganedit.models.registry import save_pretrained
    from ganedit.models.stylegan2 import Generator

    spec = f"py:{user_module}:make_predictor"
    images = _image_folder(tmp_path / "imgs", n=3)
    ok(capsys, ["score", "-i", images, "-p", spec, "-o", tmp_path / "s.npz", "--no-progress"])
    from ganedit.latents import load_scores_and_kinds

    scores, kinds = load_scores_and_kinds(tmp_path / "s.npz")
    assert kinds == {"bald": "probability", "pose": "value"} and scores["pose"].shape == (3,)
    torch.manual_seed(0)
    g = Generator(16, style_dim=8, n_mlp=2, channel_max=8).eval()
    g.update_w_avg(n=64, generator=torch.Generator().manual_seed(0))
    save_pretrained(g, tmp_path / "tiny")
    ok(capsys, ["generate", "-g", tmp_path / "tiny", "-p", spec, "-n", 4, "--chunk-size", 2,
                "-o", tmp_path / "bank.zarr", "--no-progress"])  # fmt: skip
    bank = LatentBank.open(tmp_path / "bank.zarr")
    assert set(bank.score_names) == {"bald", "pose"}
    assert bank.meta["score_kinds"] == {"bald": "probability", "pose": "value"}
    pose = bank.scores(["pose"])["pose"]
    assert pose.shape == (4,) and np.isfinite(pose).all() and np.ptp(pose) > 0


def test_a_calibrated_edit_with_a_foreign_evaluator(tmp_path, capsys, user_module):
    """`edit --calibrated --evaluator py:...`: the step is set by the user network's logit of
    its probability attribute; a value attribute has no logit and is refused in one line."""
    import json

    spec = f"py:{user_module}:make_predictor"
    bald = np.zeros(128, np.float32)  # world64: w_dim 128
    bald[:8] = 1.0  # any direction: calibration measures what it does to `bald`
    np.save(tmp_path / "bald.npy", bald[None] / np.linalg.norm(bald))
    from ganedit.models.sources import generator_identity

    sha = generator_identity("world64")["sha256"]
    side = {"attribute": "bald", "space": "w", "generator": "world64", "generator_sha256": sha}
    (tmp_path / "bald.json").write_text(json.dumps(side))
    args = ["edit", "-b", tmp_path / "bald.npy", "-g", "world64", "-n", 2, "--steps", 3,
            "--calibrated", "--evaluator", spec, "--no-progress"]  # fmt: skip
    out = ok(capsys, [*args, "-o", tmp_path / "edit"])
    assert "calibrated" in out
    config = json.loads((tmp_path / "edit" / "config.json").read_text())
    calibration = config["boundaries"][0]["calibration"]
    assert calibration["attribute"] == "bald" and np.isfinite(calibration["logit_slope"])
    side["attribute"] = "pose"
    (tmp_path / "bald.json").write_text(json.dumps(side))
    line = user_error(capsys, [*args, "-o", tmp_path / "edit2"])
    assert "probability attribute" in line and "'pose' (a value attribute)" in line


# ------------------------------------------------------------------------------------------
# ONNX (optional: onnxruntime)
#
# The tiny model is written as ONNX protobuf bytes by hand (no `onnx` package needed):
# images [N, 3, 8, 8] -> Flatten -> MatMul W [192, 3] -> Add b [3] -> "logits" [N, 3].


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _tensor(name: str, array: np.ndarray) -> bytes:
    dims = b"".join(_field(1, d) for d in array.shape)
    return dims + _field(2, 1) + _field(8, name) + _field(9, array.astype("<f4").tobytes())


def _value_info(name: str, dims: list) -> bytes:
    shape = b"".join(_field(1, _field(2, d) if isinstance(d, str) else _field(1, d)) for d in dims)
    return _field(1, name) + _field(2, _field(1, _field(1, 1) + _field(2, shape)))


def _node(op: str, inputs: list[str], outputs: list[str], attrs: bytes = b"") -> bytes:
    body = b"".join(_field(1, i) for i in inputs) + b"".join(_field(2, o) for o in outputs)
    return body + _field(4, op) + attrs


def _write_onnx(path, weight: np.ndarray, bias: np.ndarray) -> None:
    flatten_axis = _field(5, _field(1, "axis") + _field(3, 1) + _field(20, 2))
    graph = b"".join(
        [
            _field(1, _node("Flatten", ["images"], ["flat"], flatten_axis)),
            _field(1, _node("MatMul", ["flat", "W"], ["mm"])),
            _field(1, _node("Add", ["mm", "b"], ["logits"])),
            _field(2, "tiny"),
            _field(5, _tensor("W", weight)),
            _field(5, _tensor("b", bias)),
            _field(11, _value_info("images", ["N", 3, 8, 8])),
            _field(12, _value_info("logits", ["N", 3])),
        ]
    )
    opset = _field(1, "") + _field(2, 13)
    path.write_bytes(_field(1, 7) + _field(2, "ganedit-test") + _field(7, graph) + _field(8, opset))


ONNX_MANIFEST = {
    "format": "ganedit-onnx-predictor",
    "format_version": 1,
    "model": "tiny.onnx",
    "input": {
        "name": "images",
        "size": 8,
        "resize": 8,
        "range": [0, 1],
        "mean": [0.5, 0.4, 0.3],
        "std": [0.2, 0.25, 0.3],
    },  # fmt: skip
    "attributes": {
        "bald": {"kind": "probability", "output": "logits", "index": 0, "activation": "sigmoid"},
        "pose": {"kind": "value", "output": "logits", "index": 2},
        "hat": {"kind": "probability", "output": "logits", "index": 1, "activation": "softmax"},
    },
}


@pytest.fixture
def onnx_model(tmp_path):
    pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.05, (192, 3)).astype(np.float32)
    bias = np.array([0.1, -0.2, 0.3], np.float32)
    _write_onnx(tmp_path / "tiny.onnx", weight, bias)
    (tmp_path / "tiny.json").write_text(json.dumps(ONNX_MANIFEST))
    return tmp_path / "tiny.json", weight, bias


def test_onnx_manifest_predictor_matches_numpy(onnx_model):
    manifest, weight, bias = onnx_model
    predictor = load_attribute_predictor(manifest, foreign=True)
    assert predictor.attribute_kinds == {
        "bald": "probability",
        "pose": "value",
        "hat": "probability",
    }
    images = _images(3, 8)
    out = predictor.predict(images, batch_size=2)
    x = (images + 1) / 2  # range [0, 1]
    x = (x - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.2, 0.25, 0.3]).view(
        1, 3, 1, 1
    )
    logits = x.reshape(3, -1).double().numpy() @ weight.astype(np.float64) + bias
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert_f32_close(out["bald"], 1 / (1 + np.exp(-logits[:, 0])), ulps=1024)
    assert_f32_close(out["pose"], logits[:, 2], ulps=1024)
    assert_f32_close(out["hat"], softmax[:, 1], ulps=1024)


def test_onnx_mistakes_are_refused(onnx_model):
    manifest, _, _ = onnx_model
    data = json.loads(manifest.read_text())
    bad = {
        "unknown key": {**data, "labels": []},
        "wrong output": {**data, "attributes": {"x": {"kind": "value", "output": "nope"}}},
        "wrong size": {**data, "input": {**data["input"], "size": 16, "resize": 16}},
        "softmax without index": {
            **data,
            "attributes": {"x": {"kind": "value", "output": "logits", "activation": "softmax"}},
        },
    }
    for name, content in bad.items():
        manifest.write_text(json.dumps(content))
        with pytest.raises(UserInputError) as err:
            load_predictor(manifest)
        assert "\n" not in str(err.value), name
    manifest.write_text(json.dumps(data))
    (manifest.parent / "tiny.onnx").write_bytes(b"\x08\x07garbage" + struct.pack("<I", 99))
    with pytest.raises(DamagedInputError, match="onnxruntime cannot load"):
        load_predictor(manifest)
    manifest.write_text("{not json")
    with pytest.raises(DamagedInputError, match="valid JSON"):
        load_predictor(manifest)


def test_paths_that_need_the_shipped_kind_refuse_a_foreign_predictor(tmp_path, user_module):
    """Self-labelling and evaluate-predictor read AttributeNet internals: a foreign predictor
    is refused there in one line rather than failing deep inside."""
    with pytest.raises(UserInputError, match="foreign predictors: score, generate"):
        load_attribute_predictor(f"py:{user_module}:make_predictor")


def test_evaluate_predictor_refuses_a_foreign_predictor(capsys, user_module):
    line = user_error(capsys, ["evaluate-predictor", "-p", f"py:{user_module}:make_predictor"])
    assert "face-world network" in line and "CheckedPredictor" in line
