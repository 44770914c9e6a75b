"""NVIDIA StyleGAN2-ADA `.pkl` files: read without running anything, rendered as NVIDIA renders.

The pickles here come from a TEST-ONLY stand-in of NVIDIA's `torch_utils.persistence`
(tests/nvidia_pkl_standin.py, shared with the other tests that need a `.pkl`), built from
the layout record in docs/models.md: each network pickles as NVIDIA's `@persistent_class`
objects do, with random weights under NVIDIA's names, 2-D resample filters, `conv_clamp`,
float16 block flags and a 'resnet' discriminator.

The expected images and logits come from `nvidia_forward` and `nvidia_d_forward`, direct
implementations of NVIDIA's networks on their state dicts, written for this test from the
record (zero-insertion upsampling with the stored 2-D filter, a true convolution with the
unscaled weight, demodulation on raw weights, bias + activation + gain + clamp, the label
embedding, NVIDIA's minibatch std and conditional projection): they share no code with
ganedit's networks, so a wrong key, reshape, flip, gain, clamp or noise index fails the
comparison.
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
from ganedit.models.stylegan2.nvidia_discriminator import load_nvidia_discriminator
from ganedit.models.stylegan2.nvidia_pkl import (
    convert_nvidia_pickle,
    load_nvidia_pickle,
    read_nvidia_pickle,
)
from nvidia_pkl_standin import (
    SIZE,
    W_DIM,
    NvModule,
    nvidia_names,
    param,
    setup_filter,
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
# NVIDIA's generator, written directly on its state dict from the record (test only)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * SQRT2


def _clamp(x: torch.Tensor, clamp: float | None) -> torch.Tensor:
    return x if clamp is None else x.clamp(-clamp, clamp)


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


def _dense(p: dict, name: str, x: torch.Tensor, lr: float = 1.0) -> torch.Tensor:
    weight, bias = p[f"{name}.weight"], p[f"{name}.bias"]
    return x @ (weight * (lr / math.sqrt(weight.shape[1]))).t().to(x.dtype) + (bias * lr).to(
        x.dtype
    )


def _upfirdn(x: torch.Tensor, f: torch.Tensor, up: int, pad: tuple[int, int], gain: float):
    """Zero insertion (x at multiples of `up`), padding, then a true convolution with the
    filter (2-D as NVIDIA stores it, or 1-D applied to both axes) times `gain`."""
    n, c, h, w = x.shape
    spread = x.new_zeros(n, c, up * h, up * w)
    spread[:, :, ::up, ::up] = x
    x = F.pad(spread, [pad[0], pad[1], pad[0], pad[1]])
    if f.ndim == 1:
        f = torch.outer(f, f)
    kernel = (f * gain).flip([0, 1]).to(x.dtype)
    return F.conv2d(x, kernel.expand(c, 1, *f.shape), groups=c)


def _upsample2d(img: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    fw = f.shape[-1]
    return _upfirdn(img, f, 2, ((fw + 1) // 2, (fw - 2) // 2), 4.0)


def _modulated(x, weight, styles, demodulate: bool, up: bool, f=None) -> torch.Tensor:
    out = []
    for xi, si in zip(x, styles, strict=True):
        w = weight * si[None, :, None, None].to(weight.dtype)
        if demodulate:
            w = w * (w.float().square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).rsqrt().to(w.dtype)
        xi = xi[None]
        if up:  # conv2d_resample's generic path: upfirdn with padding 1 + the filter's, a conv
            fw = f.shape[-1]
            xi = _upfirdn(xi, f, 2, (1 + (fw + 1) // 2, 1 + (fw - 2) // 2), 4.0)
            out.append(F.conv2d(xi, w.flip([2, 3]).to(xi.dtype)))
        else:
            out.append(F.conv2d(xi, w.to(xi.dtype), padding=w.shape[-1] // 2))
    return torch.cat(out)


def _synthesis_layer(p, name, x, w, up, clamp) -> torch.Tensor:
    styles = _dense(p, f"{name}.affine", w)
    f = p[f"{name}.resample_filter"]
    x = _modulated(x, p[f"{name}.weight"], styles, demodulate=True, up=up, f=f)
    x = x + (p[f"{name}.noise_const"] * p[f"{name}.noise_strength"]).to(x.dtype)
    return _clamp(_lrelu(x + p[f"{name}.bias"][None, :, None, None].to(x.dtype)), clamp)


def _torgb_layer(p, name, x, w, clamp) -> torch.Tensor:
    weight = p[f"{name}.weight"]
    styles = _dense(p, f"{name}.affine", w) / math.sqrt(weight.shape[1])
    y = _modulated(x, weight, styles, False, False) + p[f"{name}.bias"][None, :, None, None].to(
        x.dtype
    )
    return _clamp(y, clamp)


def _resolutions(p: dict) -> list[int]:
    """The synthesis blocks' resolutions, 4 up, from the state dict's names."""
    return sorted({int(k.split(".")[1][1:]) for k in p if k.startswith("synthesis.b")})


def nvidia_mapping(p: dict, z, c=None, psi: float = 1.0, lr: float = 0.01) -> torch.Tensor:
    """z (and one-hot labels c) -> ws [N, num_ws, w_dim], truncated toward w_avg."""
    x = _normalize(z)
    if c is not None:
        x = torch.cat([x, _normalize(_dense(p, "mapping.embed", c))], dim=1)
    n_layers = len({k.split(".")[1] for k in p if k.startswith("mapping.fc")})
    for i in range(n_layers):
        x = _lrelu(_dense(p, f"mapping.fc{i}", x, lr))
    ws = x[:, None].repeat(1, 2 * int(math.log2(_resolutions(p)[-1])) - 2, 1)
    return p["mapping.w_avg"].lerp(ws, psi) if psi != 1 else ws


def nvidia_synthesis(p: dict, ws, clamp=None, rgb_clamp=None, fp16_from=None, dtype=None):
    """Block r reads ws[i .. i + 2] (conv0, conv1, torgb), i advancing by its convs; `clamp`
    is the synthesis layers' conv_clamp, `rgb_clamp` the ToRGBs' (NVIDIA gives both the same
    one). With `fp16_from`, blocks of that resolution and up run their activations in
    `dtype` (NVIDIA's float16 blocks, emulated); the running image stays float32."""
    img, i = None, 0
    x = p["synthesis.b4.const"][None].repeat(len(ws), 1, 1, 1)
    for res in _resolutions(p):
        b = f"synthesis.b{res}"
        half = fp16_from is not None and res >= fp16_from
        x = x.to(dtype) if half else x.float()
        if res > 4:
            x = _synthesis_layer(p, f"{b}.conv0", x, ws[:, i], up=True, clamp=clamp)
            i += 1
        x = _synthesis_layer(p, f"{b}.conv1", x, ws[:, i], up=False, clamp=clamp)
        y = _torgb_layer(p, f"{b}.torgb", x, ws[:, i + 1], rgb_clamp).float()
        img = y if img is None else _upsample2d(img, p[f"{b}.resample_filter"]) + y
        i += 1
    return img


def nvidia_forward(p: dict, z, c=None, psi: float = 1.0, lr: float = 0.01, clamp=256):
    return nvidia_synthesis(p, nvidia_mapping(p, z, c, psi, lr), clamp, clamp)


# ------------------------------------------------------------------------------------------
# NVIDIA's 'resnet' discriminator on its state dict (test only)


def _conv_layer(p, name, x, act=True, down=False, gain=1.0, clamp=None) -> torch.Tensor:
    weight = p[f"{name}.weight"]
    w = weight / math.sqrt(weight[0].numel())
    if down:  # padding 1 + the filter's ((fw - 1) // 2 each side for 4 taps), stride 2
        f = p[f"{name}.resample_filter"]
        fw = f.shape[-1]
        pad = (weight.shape[-1] // 2 + (fw - 1) // 2, weight.shape[-1] // 2 + (fw - 2) // 2)
        x = _upfirdn(x, f, 1, pad, 1.0)
        x = F.conv2d(x, w, stride=2) if weight.shape[-1] > 1 else F.conv2d(x[:, :, ::2, ::2], w)
    else:
        x = F.conv2d(x, w, padding=weight.shape[-1] // 2)
    if f"{name}.bias" in p:
        x = x + p[f"{name}.bias"][None, :, None, None]
    x = _lrelu(x) * gain if act else x * gain
    return _clamp(x, None if clamp is None else clamp * gain)


def _mbstd(x: torch.Tensor, group: int) -> torch.Tensor:
    n, c, h, w = x.shape
    g = min(group, n)
    y = x.reshape(g, -1, 1, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0)
    y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, 1, 1, 1)
    return torch.cat([x, y.repeat(g, 1, h, w)], dim=1)


def nvidia_d_forward(p: dict, img, c=None, clamp=256, group: int = 4) -> torch.Tensor:
    """Logits [N, 1] of NVIDIA's D(img, c)."""
    half = math.sqrt(0.5)
    x = _conv_layer(p, f"b{SIZE}.fromrgb", img, clamp=clamp)
    for res in (16, 8):
        y = _conv_layer(p, f"b{res}.skip", x, act=False, down=True, gain=half)
        x = _conv_layer(p, f"b{res}.conv0", x, clamp=clamp)
        x = y + _conv_layer(p, f"b{res}.conv1", x, down=True, gain=half, clamp=clamp)
    x = _conv_layer(p, "b4.conv", _mbstd(x, group), clamp=clamp)
    x = _lrelu(_dense(p, "b4.fc", x.flatten(1)))
    out = _dense(p, "b4.out", x)
    if c is None:
        return out
    cmap = _normalize(_dense(p, "mapping.embed", c))
    for i in range(8):
        cmap = _lrelu(_dense(p, f"mapping.fc{i}", cmap, 0.01))
    return (out * cmap).sum(dim=1, keepdim=True) / math.sqrt(cmap.shape[1])


# ------------------------------------------------------------------------------------------
# Benign files


@pytest.fixture
def snap() -> dict:
    return snapshot(0)


def _z(n: int = 3) -> torch.Tensor:
    return torch.randn(n, W_DIM, generator=torch.Generator().manual_seed(5))


def _one_hot(k: int, n: int = 3, c_dim: int = 4) -> torch.Tensor:
    return F.one_hot(torch.full((n,), k), c_dim).float()


def _images(g, z, c=None, impl="reference"):
    return g.synthesis(g.mapping(z, c=c), noise_mode="const", impl=impl)


@pytest.mark.parametrize("protocol", [3, 4])
def test_images_match_a_direct_nvidia_forward(tmp_path, snap, protocol):
    p = nvidia_state(snap["G_ema"])
    assert p["synthesis.b8.resample_filter"].shape == (4, 4)  # as setup_filter stores it
    assert p["synthesis.b8.conv1.resample_filter"].shape == (4, 4)
    g = load_nvidia_pickle(write_pickle(tmp_path / "net.pkl", snap, protocol))["generator"]
    z = _z()
    with torch.no_grad():
        expected = nvidia_forward(p, z)
        assert expected.abs().max() > 0.1  # the comparison is not between two near-zero images
        for impl in ("reference", "fast"):
            ours = _images(g, z, impl=impl)
            assert_f32_close(ours, expected)
            assert (ours - expected).abs().max() < 1e-4  # the bound, absolute
        # Truncation pulls toward NVIDIA's tracked w_avg.
        assert_f32_close(g.mapping(z, truncation_psi=0.5), nvidia_mapping(p, z, psi=0.5))


def test_conv_clamp_is_applied_where_nvidia_applies_it(tmp_path):
    """A clamp that bites (0.5: most activations reach it) in every synthesis layer, after
    bias, activation and gain, and on each ToRGB's own output, in both synthesis paths."""
    snap = snapshot(0, conv_clamp=0.5)
    g = load_nvidia_pickle(write_pickle(tmp_path / "net.pkl", snap))["generator"]
    assert g.config["conv_clamp"] == 0.5
    p, z = nvidia_state(snap["G_ema"]), _z()
    with torch.no_grad():
        expected = nvidia_forward(p, z, clamp=0.5)
        assert (expected - nvidia_forward(p, z, clamp=None)).abs().max() > 0.1
        # Each place matters: clamping only the ToRGBs (or only the layers) is another image.
        ws = nvidia_mapping(p, z)
        assert (expected - nvidia_synthesis(p, ws, 0.5, None)).abs().max() > 0.01
        assert (expected - nvidia_synthesis(p, ws, None, 0.5)).abs().max() > 0.01
        for impl in ("reference", "fast"):
            assert_f32_close(_images(g, z, impl=impl), expected)


@pytest.mark.parametrize("form", ["1-D", "2-D [1, 2, 1]"])
def test_other_filter_forms_read_as_stored(tmp_path, form):
    """A 1-D buffer (setup_filter keeps 8+ taps 1-D; other writers store 1-D) reads as the
    same filter; another separable 2-D filter is read as its taps and rendered with them."""
    taps = [1.0, 3.0, 3.0, 1.0] if form == "1-D" else [1.0, 2.0, 1.0]
    snap = snapshot(0, taps=taps)
    if form == "1-D":
        for module in snap["G_ema"].modules():
            if "resample_filter" in module._buffers:
                module.resample_filter = torch.tensor(taps) / sum(taps)
    g = load_nvidia_pickle(write_pickle(tmp_path / "net.pkl", snap))["generator"]
    assert g.config["blur_kernel"] == ([1, 3, 3, 1] if form == "1-D" else [0.25, 0.5, 0.25])
    p, z = nvidia_state(snap["G_ema"]), _z()
    with torch.no_grad():
        for impl in ("reference", "fast"):
            assert_f32_close(_images(g, z, impl=impl), nvidia_forward(p, z))


def test_float16_blocks_are_rounding_away_from_float32(snap):
    """What ganedit does not reproduce, measured: NVIDIA's float16 blocks (`use_fp16`, here
    b8 and b16 as num_fp16_res 4 gives them), emulated on CPU, move the images by float16
    rounding only: about 1e-3 of their largest value (ganedit renders the float32 result)."""
    p = nvidia_state(snap["G_ema"])
    assert [snap["G_ema"].synthesis.get_submodule(f"b{r}").use_fp16 for r in (4, 8, 16)] == [
        False, True, True,
    ]  # fmt: skip
    ws = nvidia_mapping(p, _z(8))
    with torch.no_grad():
        full = nvidia_synthesis(p, ws, 256, 256)
        half = nvidia_synthesis(p, ws, 256, 256, fp16_from=8, dtype=torch.float16)
    gap = float((half - full).abs().max() / full.abs().max())
    assert 1e-5 < gap < 1e-2, gap


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
    assert g.config["blur_kernel"] == [1, 3, 3, 1] and g.config["conv_clamp"] == 256
    assert "c_dim" not in g.config


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
    with torch.no_grad():  # the clamp at 256 is not reached: the same images to rounding
        assert_f32_close(again["g_ema"](z), g(z))
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
# Class-conditional generators


@pytest.fixture
def cond() -> dict:
    return snapshot(0, c_dim=4)


def test_a_class_conditional_generator_renders_each_class(tmp_path, cond):
    g = load_nvidia_pickle(write_pickle(tmp_path / "cond.pkl", cond))["generator"]
    assert g.c_dim == 4 and g.config["c_dim"] == 4
    p, z = nvidia_state(cond["G_ema"]), _z()
    with torch.no_grad():
        images = []
        for k in (0, 3):
            expected = nvidia_forward(p, z, _one_hot(k))
            for impl in ("reference", "fast"):
                assert_f32_close(_images(g, z, _one_hot(k), impl), expected)
            psi = nvidia_mapping(p, z, _one_hot(k), psi=0.7)
            assert_f32_close(g.mapping(z, truncation_psi=0.7, c=_one_hot(k)), psi)
            images.append(expected)
        assert (images[0] - images[1]).abs().max() > 0.1  # the label matters
    with pytest.raises(UserInputError, match=r"class labels c of shape \[3, 4\]"):
        g.mapping(z)


def test_a_source_renders_the_class_asked_for(tmp_path, cond):
    from ganedit.models.sources import file_sha256, load_generator

    path = write_pickle(tmp_path / "cond.pkl", cond)
    source = load_generator(path, class_index=2)
    assert source.identity == {"name": "cond.pkl", "sha256": file_sha256(path), "class": 2}
    expected = nvidia_forward(nvidia_state(cond["G_ema"]), _z(2), _one_hot(2, 2)).clamp(-1, 1)
    assert_f32_close(source.synthesize(_z(2), "z"), expected)
    assert_f32_close(source.to_w(_z(2)), nvidia_mapping(nvidia_state(cond["G_ema"]), _z(2),
                                                        _one_hot(2, 2))[:, 0])  # fmt: skip
    for given, fragment in [(None, "received none"), (4, "received 4"), (-1, "received -1")]:
        with pytest.raises(UserInputError, match=fragment) as info:
            load_generator(path, class_index=given)
        assert "class" in str(info.value) and "[0, 3]" in str(info.value)
    plain = write_pickle(tmp_path / "plain.pkl", snapshot(0))
    with pytest.raises(UserInputError, match="class-conditional generator for --class"):
        load_generator(plain, class_index=0)


def test_convert_writes_a_conditional_generator_as_a_folder_only(tmp_path, cond):
    from ganedit.models.io import read_config
    from ganedit.models.sources import load_generator

    path = write_pickle(tmp_path / "cond.pkl", cond)
    with pytest.raises(UserInputError, match="no label embedding") as info:
        convert_nvidia_pickle(path, tmp_path / "cond.pt")
    assert "model folder" in str(info.value) and not (tmp_path / "cond.pt").exists()
    folder = convert_nvidia_pickle(path, tmp_path / "cond")
    config = read_config(folder)
    assert config["kwargs"]["c_dim"] == 4 and config["kwargs"]["conv_clamp"] == 256
    assert config["converted_from"]["file"] == "cond.pkl"
    source = load_generator(folder, class_index=1)
    expected = nvidia_forward(nvidia_state(cond["G_ema"]), _z(2), _one_hot(1, 2)).clamp(-1, 1)
    assert_f32_close(source.synthesize(_z(2), "z"), expected)


# ------------------------------------------------------------------------------------------
# The discriminator


def _img(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(9))


@pytest.mark.parametrize("clamp", [256, 0.5])
def test_discriminator_logits_match_a_direct_nvidia_forward(tmp_path, clamp):
    snap = snapshot(0, conv_clamp=clamp)
    d = load_nvidia_discriminator(write_pickle(tmp_path / "net.pkl", snap))
    p = nvidia_state(snap["D"])
    assert p["b16.resample_filter"].shape == (4, 4) and p["b8.skip.resample_filter"].shape == (4, 4)
    assert d.stddev_group == 4 and d.config["conv_clamp"] == clamp
    with torch.no_grad():
        expected = nvidia_d_forward(p, _img(), clamp=clamp)
        if clamp < 1:
            assert (expected - nvidia_d_forward(p, _img(), clamp=None)).abs().max() > 0.01
        assert_f32_close(d(_img()), expected)
        assert (d(_img()) - expected).abs().max() < 1e-4


def test_a_conditional_discriminator_at_one_class(tmp_path, cond):
    path = write_pickle(tmp_path / "cond.pkl", cond)
    p = nvidia_state(cond["D"])
    with torch.no_grad():
        logits = []
        for k in (1, 3):
            d = load_nvidia_discriminator(path, class_index=k)
            expected = nvidia_d_forward(p, _img(), _one_hot(k, 4))
            assert_f32_close(d(_img()), expected)
            logits.append(expected)
        assert (logits[0] - logits[1]).abs().max() > 1e-3
    for given, fragment in [(None, "received 'none'"), (4, "received 4")]:
        with pytest.raises(UserInputError, match=fragment):
            load_nvidia_discriminator(path, class_index=given)


def test_discriminators_ganedit_cannot_be_are_refused(tmp_path):
    for change, fragment in [
        (lambda d: setattr(d.b8, "architecture", "orig"), "'resnet' architecture"),
        (lambda d: setattr(d.b4.mbstd, "group_size", None), "minibatch-std group size"),
        (lambda d: setattr(d.b4.mbstd, "num_channels", 2), "1 channel"),
        (lambda d: setattr(d, "c_dim", 3), "label mapping"),
    ]:
        snap = snapshot(0)
        change(snap["D"])
        with pytest.raises(UserInputError, match=fragment) as info:
            load_nvidia_discriminator(write_pickle(tmp_path / "d.pkl", snap))
        assert "\n" not in str(info.value)
    snap = snapshot(0)
    snap["D"] = None
    assert load_nvidia_discriminator(write_pickle(tmp_path / "none.pkl", snap)) is None


# ------------------------------------------------------------------------------------------
# Generators ganedit cannot be, filters and labels it cannot read


def _refused(path: Path, kind=UserInputError) -> str:
    with pytest.raises(kind) as info:
        load_nvidia_pickle(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith("expected ") and "received" in message
    assert not any(advice in message for advice in ADVICE), message
    return message


def test_stylegan3_and_resnet_generators_are_refused(tmp_path):
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


def _filters(snap: dict):
    return [m for m in snap["G_ema"].modules() if "resample_filter" in m._buffers]


def test_filters_that_are_not_one_separable_filter_are_refused(tmp_path, snap):
    # Rank 2: a sum of two outer products, still summing to 1.
    a, b = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8, torch.tensor([1.0, 1.0, 1.0, 1.0]) / 4
    _filters(snap)[2].resample_filter = 0.5 * torch.outer(a, a) + 0.5 * torch.outer(b, b)
    assert "not rank 1" in _refused(write_pickle(tmp_path / "rank2.pkl", snap))
    snap = snapshot(0)
    _filters(snap)[0].resample_filter = setup_filter([1.0, 2.0, 1.0])  # one layer differs
    assert "one resample filter for every layer" in _refused(write_pickle(tmp_path / "2.pkl", snap))
    snap = snapshot(0)
    _filters(snap)[1].resample_filter = torch.ones(4, 3) / 12
    assert "square 2-D" in _refused(write_pickle(tmp_path / "4x3.pkl", snap))
    snap = snapshot(0)
    _filters(snap)[1].resample_filter[1, 2] = float("nan")
    assert "NaN" in _refused(write_pickle(tmp_path / "nan.pkl", snap), DamagedInputError)


def test_a_label_width_without_its_embedding_is_refused(tmp_path):
    snap = snapshot(0)
    snap["G_ema"].c_dim = 10
    assert "a label embedding (mapping.embed) for c_dim 10" in _refused(
        write_pickle(tmp_path / "cond.pkl", snap)
    )
    snap = snapshot(0, c_dim=4)
    del snap["G_ema"].mapping.embed
    assert "mapping.embed" in _refused(write_pickle(tmp_path / "noembed.pkl", snap))
    snap = snapshot(0, c_dim=4)
    snap["G_ema"].c_dim = snap["G_ema"].mapping.c_dim = 0
    assert "no label embedding" in _refused(write_pickle(tmp_path / "extra.pkl", snap))


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


def test_convert_command_writes_a_folder_for_a_conditional_pickle(tmp_path, capsys, cond):
    from cli_run import ok, user_error

    path = write_pickle(tmp_path / "cond.pkl", cond)
    line = user_error(capsys, ["convert", "-g", path, "-o", tmp_path / "cond.pt"])
    assert "class-conditional" in line and "model folder" in line
    assert "model folder" in ok(capsys, ["convert", "-g", path, "-o", tmp_path / "cond"])
    assert "pass --overwrite" in user_error(
        capsys, ["convert", "-g", path, "-o", tmp_path / "cond"]
    )
    ok(capsys, ["convert", "-g", path, "-o", tmp_path / "cond", "--overwrite"])
    ok(capsys, ["sample", "-g", tmp_path / "cond", "--class", 3, "-n", 2, "-o", tmp_path / "g.png"])


def test_class_option_threads_through_sample_generate_and_edit(tmp_path, capsys, cond):
    """--class renders that class, is recorded in the generator's identity (the grid's JSON,
    the bank), and a boundary learned on one class is refused on another unless forced."""
    import json

    import numpy as np

    from cli_run import ok, user_error
    from ganedit.directions.io import save_boundary
    from ganedit.latents import LatentBank
    from ganedit.models.sources import file_sha256

    path = write_pickle(tmp_path / "cond.pkl", cond)
    sha = file_sha256(path)
    ok(capsys, ["sample", "-g", path, "--class", 2, "-n", 2, "-o", tmp_path / "grid.png"])
    record = json.loads((tmp_path / "grid.png.json").read_text())
    assert record["generator"] == {"name": "cond.pkl", "sha256": sha, "class": 2}
    assert "--class" in user_error(capsys, ["sample", "-g", path, "-o", tmp_path / "x.png"])
    ok(capsys, ["generate", "-g", path, "--class", 1, "-p", "none", "-n", 4,
                "-o", tmp_path / "bank.zarr", "--no-progress"])  # fmt: skip
    bank = LatentBank.open(tmp_path / "bank.zarr")
    assert bank.generator_identity["class"] == 1
    source_z = torch.as_tensor(bank.latents("z", 0, 4))
    expected = nvidia_mapping(nvidia_state(cond["G_ema"]), source_z, _one_hot(1, 4))[:, 0]
    assert_f32_close(torch.as_tensor(bank.latents("w", 0, 4)), expected)
    boundary = save_boundary(
        tmp_path / "b.npy", np.eye(1, W_DIM)[0],
        {"generator": "cond.pkl", "generator_sha256": sha, "generator_class": 1, "space": "w"},
    )  # fmt: skip
    edit = ["edit", "-b", boundary, "-g", path, "-n", 1, "--steps", 2, "--no-progress"]
    ok(capsys, [*edit, "--class", 1, "-o", tmp_path / "e1"])
    line = user_error(capsys, [*edit, "--class", 3, "-o", tmp_path / "e3"])
    assert "learned on class 1, used on class 3" in line
    ok(capsys, [*edit, "--class", 3, "-o", tmp_path / "e3", "--force"])
    # codes of a class-1 bank edited at class 3
    line = user_error(capsys, [*edit, "--class", 3, "-c", tmp_path / "bank.zarr", "-o",
                               tmp_path / "e4"])  # fmt: skip
    assert "class 1" in line and "class 3" in line
