"""NVIDIA StyleGAN2-ADA `.pkl` files: read without running anything, rendered as NVIDIA renders.

The pickles here come from a TEST-ONLY stand-in of NVIDIA's `torch_utils.persistence`
(tests/nvidia_pkl_standin.py, shared with the other tests that need a `.pkl`): each network is
an nn.Module that pickles as NVIDIA's `@persistent_class` objects do, with random weights under
NVIDIA's names.

The expected images come from `nvidia_forward`, a direct implementation of NVIDIA's
generator on that state dict written for this test from NVIDIA's definitions (zero-insertion
upsampling, a true convolution with the unscaled weight, demodulation on raw weights): it
shares no code with ganedit's networks, so a wrong key, reshape, flip, gain or noise index
fails the comparison.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ganedit.errors import DamagedInputError, UserInputError
from ganedit.models.stylegan2 import nvidia_pkl
from ganedit.models.stylegan2.convert import load_rosinality_checkpoint
from ganedit.models.stylegan2.nvidia_pkl import (
    convert_nvidia_pickle,
    load_nvidia_pickle,
    read_nvidia_pickle,
)
from nvidia_pkl_standin import (
    CHANNELS,
    FILTER,
    N_MLP,
    SIZE,
    W_DIM,
    NvModule,
    nvidia_names,
    param,
    snapshot,
    write_pickle,
    write_tiny_nvidia_pkl,
)
from tolerance import assert_f32_close

SQRT2 = math.sqrt(2)
ADVICE = ("safe_globals", "weights_only=False", "allow_pickle=True", "add_safe_globals")


def nvidia_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ------------------------------------------------------------------------------------------
# NVIDIA's generator, written directly on its state dict (test only)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * SQRT2


def _dense(p: dict, name: str, x: torch.Tensor, lr: float = 1.0) -> torch.Tensor:
    weight, bias = p[f"{name}.weight"], p[f"{name}.bias"]
    return x @ (weight * (lr / math.sqrt(weight.shape[1]))).t() + bias * lr


def _upfirdn_up2(x: torch.Tensor, pad: tuple[int, int], gain: float = 4.0) -> torch.Tensor:
    """Zero insertion (x at even positions), padding, then a true convolution with the
    2-D filter outer(f, f) * gain."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    up = F.pad(up, [pad[0], pad[1], pad[0], pad[1]])
    f = torch.tensor(FILTER) / sum(FILTER)
    kernel = (f[:, None] * f[None, :] * gain).flip([0, 1])
    return F.conv2d(up, kernel.expand(c, 1, 4, 4), groups=c)


def _modulated(x, weight, styles, demodulate: bool, up: bool) -> torch.Tensor:
    out = []
    for xi, si in zip(x, styles, strict=True):
        w = weight * si[None, :, None, None]
        if demodulate:
            w = w * (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).rsqrt()
        xi = xi[None]
        if up:  # padding 1 + the filter's (4 + 2 - 1) // 2 before and (4 - 2) // 2 after
            out.append(F.conv2d(_upfirdn_up2(xi, (3, 2)), w.flip([2, 3])))
        else:
            out.append(F.conv2d(xi, w, padding=w.shape[-1] // 2))
    return torch.cat(out)


def _synthesis_layer(p, name, x, w, up) -> torch.Tensor:
    styles = _dense(p, f"{name}.affine", w)
    x = _modulated(x, p[f"{name}.weight"], styles, demodulate=True, up=up)
    x = x + p[f"{name}.noise_const"] * p[f"{name}.noise_strength"]
    return _lrelu(x + p[f"{name}.bias"][None, :, None, None])


def _torgb_layer(p, name, x, w) -> torch.Tensor:
    weight = p[f"{name}.weight"]
    styles = _dense(p, f"{name}.affine", w) / math.sqrt(weight.shape[1])
    return _modulated(x, weight, styles, False, False) + p[f"{name}.bias"][None, :, None, None]


def nvidia_mapping(p: dict, z: torch.Tensor, psi: float = 1.0, lr: float = 0.01) -> torch.Tensor:
    x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
    for i in range(N_MLP):
        x = _lrelu(_dense(p, f"mapping.fc{i}", x, lr))
    ws = x[:, None].repeat(1, 2 * int(math.log2(SIZE)) - 2, 1)
    return p["mapping.w_avg"].lerp(ws, psi) if psi != 1 else ws


def nvidia_synthesis(p: dict, ws: torch.Tensor) -> torch.Tensor:
    """Block r reads ws[i .. i + 2] (conv0, conv1, torgb), i advancing by its convs."""
    x = p["synthesis.b4.const"][None].repeat(len(ws), 1, 1, 1)
    x = _synthesis_layer(p, "synthesis.b4.conv1", x, ws[:, 0], up=False)
    img = _torgb_layer(p, "synthesis.b4.torgb", x, ws[:, 1])
    i = 1
    for res in sorted(CHANNELS)[1:]:
        b = f"synthesis.b{res}"
        x = _synthesis_layer(p, f"{b}.conv0", x, ws[:, i], up=True)
        x = _synthesis_layer(p, f"{b}.conv1", x, ws[:, i + 1], up=False)
        img = _upfirdn_up2(img, (2, 1)) + _torgb_layer(p, f"{b}.torgb", x, ws[:, i + 2])
        i += 2
    return img


def nvidia_forward(p: dict, z: torch.Tensor, psi: float = 1.0, lr: float = 0.01):
    return nvidia_synthesis(p, nvidia_mapping(p, z, psi, lr))


# ------------------------------------------------------------------------------------------
# Benign files


@pytest.fixture
def snap() -> dict:
    return snapshot(0)


def _z(n: int = 3) -> torch.Tensor:
    return torch.randn(n, W_DIM, generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("protocol", [3, 4])
def test_images_match_a_direct_nvidia_forward(tmp_path, snap, protocol):
    path = write_pickle(tmp_path / "net.pkl", snap, protocol)
    g = load_nvidia_pickle(path)["generator"]
    p = nvidia_state(snap["G_ema"])
    z = _z()
    with torch.no_grad():
        expected = nvidia_forward(p, z)
        assert expected.abs().max() > 0.1  # the comparison is not between two near-zero images
        for impl in ("reference", "fast"):
            ours = g.synthesis(g.mapping(z), noise_mode="const", impl=impl)
            assert_f32_close(ours, expected)
        # Truncation pulls toward NVIDIA's tracked w_avg.
        assert_f32_close(g.mapping(z, truncation_psi=0.5), nvidia_mapping(p, z, psi=0.5))


def test_tensors_are_read_exactly(tmp_path, snap):
    loaded = load_nvidia_pickle(write_pickle(tmp_path / "net.pkl", snap))
    g, p = loaded["generator"], nvidia_state(snap["G_ema"])
    state = g.state_dict()
    assert torch.equal(loaded["w_avg"], p["mapping.w_avg"])
    assert torch.equal(state["style.2.weight"], p["mapping.fc1.weight"])
    assert torch.equal(state["input.input"][0], p["synthesis.b4.const"])
    assert torch.equal(state["convs.2.conv.weight"][0], p["synthesis.b16.conv0.weight"])
    assert torch.equal(state["convs.3.conv.modulation.bias"], p["synthesis.b16.conv1.affine.bias"])
    assert torch.equal(state["noises.noise_4"][0, 0], p["synthesis.b16.conv1.noise_const"])
    assert torch.equal(state["convs.1.noise.weight"][0], p["synthesis.b8.conv1.noise_strength"])
    assert torch.equal(
        state["to_rgbs.1.conv.weight"][0, :, :, 0, 0], p["synthesis.b16.torgb.weight"][:, :, 0, 0]
    )
    assert torch.equal(state["to_rgb1.bias"].reshape(3), p["synthesis.b4.torgb.bias"])
    assert g.config["channels"] == [16, 16, 8] and g.config["lr_mlp"] == 0.01


def test_g_only_when_asked(tmp_path, snap):
    path = write_pickle(tmp_path / "net.pkl", snap)
    g = load_nvidia_pickle(path, network="G")["generator"]
    assert torch.equal(g.state_dict()["style.1.weight"], snap["G"].mapping.fc0.weight)
    with pytest.raises(UserInputError, match="a generator network of the pickle in"):
        load_nvidia_pickle(path, network="D")


def test_pkl_to_pt_and_back_renders_the_same(tmp_path, snap):
    path = write_pickle(tmp_path / "net.pkl", snap)
    g = load_nvidia_pickle(path)["generator"]
    out = convert_nvidia_pickle(path, tmp_path / "net.pt")
    again = load_rosinality_checkpoint(out)
    z = _z()
    with torch.no_grad():
        assert torch.equal(again["g_ema"](z), g(z))  # the same tensors through the same code
    assert torch.equal(again["latent_avg"], snap["G_ema"].mapping.w_avg)


def test_another_mapping_lr_is_rescaled_for_the_pt(tmp_path):
    snap = snapshot(0, lr=0.05)
    path = write_pickle(tmp_path / "net.pkl", snap)
    g = load_nvidia_pickle(path)["generator"]
    assert g.config["lr_mlp"] == 0.05
    again = load_rosinality_checkpoint(convert_nvidia_pickle(path, tmp_path / "net.pt"))["g_ema"]
    z = _z()
    with torch.no_grad():
        expected = nvidia_forward(nvidia_state(snap["G_ema"]), z, lr=0.05)
        assert_f32_close(g(z), expected)
        assert_f32_close(again(z), expected)


def test_load_generator_takes_a_pkl(tmp_path, snap):
    from ganedit.models.sources import file_sha256, generator_identity, load_generator

    path = write_pickle(tmp_path / "ffhq.pkl", snap)
    source = load_generator(path)
    assert source.identity == {"name": "ffhq.pkl", "sha256": file_sha256(path)}
    assert generator_identity(path) == source.identity
    images = source.synthesize(_z(2), "z")
    assert images.shape == (2, 3, SIZE, SIZE)
    assert_f32_close(images, nvidia_forward(nvidia_state(snap["G_ema"]), _z(2)).clamp(-1, 1))


# ------------------------------------------------------------------------------------------
# Generators ganedit cannot be yet


def _refused(path: Path, kind=UserInputError) -> str:
    with pytest.raises(kind) as info:
        load_nvidia_pickle(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith("expected ") and "received" in message
    assert not any(advice in message for advice in ADVICE), message
    return message


def test_conditional_stylegan3_and_resnet_generators_are_refused(tmp_path):
    snap = snapshot(0)
    snap["G_ema"].c_dim = 10
    assert "conditional generators are not supported yet" in _refused(
        write_pickle(tmp_path / "cond.pkl", snap)
    )
    snap = snapshot(0)
    synthesis = snap["G_ema"].synthesis
    synthesis.input = NvModule("SynthesisInput")
    synthesis.L0_36_512 = NvModule("SynthesisLayer")
    assert "StyleGAN3" in _refused(write_pickle(tmp_path / "sg3.pkl", snap))
    snap = snapshot(0)
    snap["G_ema"].synthesis.b8.architecture = "resnet"
    assert "'resnet'" in _refused(write_pickle(tmp_path / "resnet.pkl", snap))
    snap = snapshot(0)
    snap["G_ema"].synthesis.b16.conv1.weight = param(torch.zeros(8, 8, 5, 5))
    assert "synthesis.b16.conv1.weight" in _refused(write_pickle(tmp_path / "k5.pkl", snap))
    assert "'G_ema'" in _refused(write_pickle(tmp_path / "none.pkl", {"G": None}))


def test_non_finite_weights_are_damage(tmp_path, snap):
    snap["G_ema"].synthesis.b8.conv0.bias.data[1] = float("nan")
    assert "NaN" in _refused(write_pickle(tmp_path / "nan.pkl", snap), DamagedInputError)


# ------------------------------------------------------------------------------------------
# Hostile files: refused in one line, nothing run


class _System:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _BigView:
    """A tensor claiming 10**9 elements of a 4-element storage."""

    def __reduce__(self):
        storage = torch.zeros(4)._typed_storage()
        return (torch._utils._rebuild_tensor_v2, (storage, 0, (10**9,), (1,), False, OrderedDict()))


def test_os_system_via_reduce_is_refused(tmp_path, snap):
    marker = tmp_path / "PWNED"
    snap["G_ema"].synthesis.b8.note = _System(marker)
    message = _refused(write_pickle(tmp_path / "evil.pkl", snap))
    assert f"received a reference to {os.system.__module__}.system" in message
    assert not marker.exists()


@pytest.mark.parametrize("builtin", ["exec", "eval"])
def test_exec_and_eval_globals_are_refused(tmp_path, builtin):
    marker = tmp_path / "PWNED"
    code = f"open({str(marker)!r}, 'w').close()"
    if builtin == "eval":
        code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"cbuiltins\n" + builtin.encode() + b"\n(V" + code.encode() + b"\ntR.")
    assert f"received a reference to builtins.{builtin}" in _refused(path)
    assert not marker.exists()


def test_embedded_module_source_is_never_run(tmp_path):
    marker = tmp_path / "PWNED"
    source = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    path = write_pickle(tmp_path / "net.pkl", snapshot(0, module_src=source))
    with nvidia_names():  # NVIDIA's loader importable: resolving it would run the source
        g = load_nvidia_pickle(path)["generator"]
    assert not marker.exists()
    assert g.size == SIZE  # the weights were read all the same


def test_a_tensor_beyond_its_storage_is_refused(tmp_path, snap):
    snap["D"].big = _BigView()
    assert "inside their storage" in _refused(
        write_pickle(tmp_path / "big.pkl", snap), DamagedInputError
    )


class _ZipStorage:
    """Storage bytes in torch's zip format (whose records may be compressed), not the legacy
    format `Storage.__reduce__` writes."""

    def __reduce__(self):
        import io

        buffer = io.BytesIO()
        torch.save(torch.zeros(4), buffer)
        return (torch.storage._load_from_bytes, (buffer.getvalue(),))


def test_storages_must_be_in_the_legacy_format(tmp_path, snap):
    snap["D"].zipped = _ZipStorage()
    message = _refused(write_pickle(tmp_path / "zip.pkl", snap), DamagedInputError)
    assert "legacy format" in message


def test_an_oversized_storage_is_refused(tmp_path, snap, monkeypatch):
    path = write_pickle(tmp_path / "net.pkl", snap)
    monkeypatch.setattr(nvidia_pkl, "MAX_STORAGE_BYTES", 256)
    assert "of at most 256 bytes" in _refused(path)


@pytest.mark.parametrize("keep", [0.5, -1, 0])
def test_a_truncated_file_is_damage(tmp_path, snap, keep):
    data = write_pickle(tmp_path / "net.pkl", snap).read_bytes()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(data[: int(len(data) * keep)] if keep >= 0 else data[:-1])
    _refused(cut, DamagedInputError)


def test_persistent_ids_are_refused(tmp_path):
    path = tmp_path / "pid.pkl"
    path.write_bytes(b"\x80\x03X\x01\x00\x00\x00xQ.")  # BINPERSID
    assert "persistent-id" in _refused(path)


def test_read_returns_records_without_source(tmp_path, snap):
    top = read_nvidia_pickle(write_pickle(tmp_path / "net.pkl", snap))
    assert sorted(top) == sorted(snap) and type(top["training_set_kwargs"]) is dict
    record = top["G_ema"]
    assert record.class_name == "Generator" and "module_src" not in record.state
    assert type(record.state["_init_kwargs"]["mapping_kwargs"]) is dict
    fc = record.state["_modules"]["mapping"].state["_modules"]["fc0"]
    assert type(fc.state["weight_gain"]) is float


# ------------------------------------------------------------------------------------------
# The command


def test_convert_command(tmp_path, capsys):
    from cli_run import ok, user_error

    path = write_tiny_nvidia_pkl(tmp_path / "net.pkl")
    out = tmp_path / "net.pt"
    ok(capsys, ["convert", "-g", path, "-o", out])
    assert load_rosinality_checkpoint(out)["g_ema"].size == SIZE
    line = user_error(capsys, ["convert", "-g", path, "-o", out])
    assert "pass --overwrite" in line
    ok(capsys, ["convert", "-g", path, "-o", out, "--overwrite"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.pkl", "net.pt"]
