"""InterFaceGAN's PGGAN and StyleGAN `.pth` files as generator sources.

The files here are written by hand (tests/interfacegan_standin.py): plain state dicts of
random tensors under InterFaceGAN's key names, as its converters save them (PGGAN in its
current layout, with `lod` and every level of detail's head, and in its 2019 layout), never
through ganedit's modules. The expected outputs come from `pggan_reference` (current layout,
run as InterFaceGAN's forward runs it: every head drawn, the last one kept),
`pggan_reference_2019` and the `stylegan_*` references, direct implementations of
InterFaceGAN's generators on those state dicts written for this test: they share no code with
`ganedit.models.pggan` / `stylegan1`, and compute some steps another way (the PGGAN's first
layer as the dense layer it is, nearest upsampling by repetition, the blur as a sum of shifted
copies, StyleGAN's fused up-convolution as upsampling followed by the flipped 3x3 kernel), so a
wrong key, transpose, flip, gain or noise index fails the comparison.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cli_run import ok, user_error
from ganedit.errors import DamagedInputError, UserInputError
from ganedit.models.sources import GeneratorSource, generator_identity, load_generator
from interfacegan_standin import (
    N_MAPPING,
    PGGAN_CHANNELS,
    PGGAN_DAMAGE,
    Z,
    current_as_2019,
    damaged_pggan_state,
    pggan_state,
    pggan_state_2019,
    stylegan_state,
)
from tolerance import assert_f32_close

SQRT2 = math.sqrt(2.0)
PGGAN32_CHANNELS = [Z, 16, 16, 16, 16]


# ------------------------------------------------------------------------------------------
# Direct implementations of InterFaceGAN's forward passes


def _pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt((x**2).mean(dim=1, keepdim=True) + 1e-8)


def _nearest2x(x: torch.Tensor) -> torch.Tensor:
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, x, 0.2 * x)


def _pggan_layer(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, up: bool) -> torch.Tensor:
    """pixel norm, [nearest 2x], 3x3 conv * sqrt(2) / sqrt(fan_in), bias, leaky ReLU."""
    x = _nearest2x(_pixel_norm(x)) if up else _pixel_norm(x)
    x = F.conv2d(x, w, padding=1) * SQRT2 / math.sqrt(w.shape[1] * 9)
    return _lrelu(x + b[None, :, None, None])


def _pggan_dense(z: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # The official first layer is dense to a 4x4 map; the port's 4x4 conv (padding 3) of a
    # 1x1 input reads its kernel flipped: out[o, i, j] = sum_c W[o, c, 3 - i, 3 - j] z[c].
    x = torch.einsum("ocij,nc->noij", w.flip(2, 3), _pixel_norm(z))
    return _lrelu(x * SQRT2 / math.sqrt(w.shape[1] * 16) + b[None, :, None, None])


def _pggan_rgb(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """pixel norm, then the linear 1x1 head (gain 1)."""
    rgb = torch.einsum("nchw,oc->nohw", _pixel_norm(x), w[:, :, 0, 0]) / math.sqrt(w.shape[1])
    return rgb + b[None, :, None, None]


def pggan_reference(state: dict, z: torch.Tensor) -> torch.Tensor:
    """The current layout as InterFaceGAN's forward runs it at lod 0: every level of detail
    draws its head's image and the next level replaces it, so the last head's is returned."""
    x = _pggan_dense(z, state["layer0.conv.weight"], state["layer0.wscale.bias"])
    b = 0
    while f"output{b}.conv.weight" in state:
        for j in (2 * b, 2 * b + 1):
            if j:
                w, bias = state[f"layer{j}.conv.weight"], state[f"layer{j}.wscale.bias"]
                x = _pggan_layer(x, w, bias, up=j % 2 == 0)
        image = _pggan_rgb(x, state[f"output{b}.conv.weight"], state[f"output{b}.wscale.bias"])
        b += 1
    return image


def pggan_reference_2019(state: dict, z: torch.Tensor) -> torch.Tensor:
    """The 2019 layout: layer1 (dense) .. layer2k+2, then output_RxR."""
    x = _pggan_dense(z, state["layer1.conv.weight"], state["layer1.wscale.bias"])
    j = 2
    while f"layer{j}.conv.weight" in state:
        x = _pggan_layer(x, state[f"layer{j}.conv.weight"], state[f"layer{j}.wscale.bias"], j % 2)
        j += 1
    r = x.shape[-1]
    return _pggan_rgb(x, state[f"output_{r}x{r}.conv.weight"], state[f"output_{r}x{r}.wscale.bias"])


def stylegan_mapping_reference(state: dict, z: torch.Tensor) -> torch.Tensor:
    x = _pixel_norm(z)
    for i in range(N_MAPPING):
        w, b = state[f"mapping.dense{i}.linear.weight"], state[f"mapping.dense{i}.wscale.bias"]
        x = _lrelu(x @ w.T * (SQRT2 / math.sqrt(w.shape[1]) * 0.01) + b * 0.01)
    return x


def stylegan_truncation_reference(
    w: torch.Tensor, w_avg: torch.Tensor, num_ws: int, psi: float, cutoff: int
) -> torch.Tensor:
    rows = [w_avg + psi * (w - w_avg) if i < cutoff else w for i in range(num_ws)]
    return torch.stack(rows, dim=1)


def _blur(x: torch.Tensor) -> torch.Tensor:
    taps = [1.0, 2.0, 1.0]
    padded = F.pad(x, (1, 1, 1, 1))
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    for u in range(3):
        for v in range(3):
            out = out + taps[u] * taps[v] / 16 * padded[:, :, u : u + h, v : v + w]
    return out


def _style_epilogue(state: dict, i: int, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    p = f"synthesis.layer{i}.epilogue."
    x = x + state[p + "apply_noise.noise"] * state[p + "apply_noise.weight"][None, :, None, None]
    x = _lrelu(x + state[p + "bias"][None, :, None, None])
    x = x - x.mean(dim=(2, 3), keepdim=True)
    x = x / torch.sqrt((x**2).mean(dim=(2, 3), keepdim=True) + 1e-8)
    a, b = state[p + "style_mod.dense.linear.weight"], state[p + "style_mod.dense.wscale.bias"]
    style = w @ a.T / math.sqrt(a.shape[1]) + b
    c = x.shape[1]
    return x * (style[:, :c, None, None] + 1) + style[:, c:, None, None]


def stylegan_synthesis_reference(state: dict, ws: torch.Tensor) -> torch.Tensor:
    num_ws = ws.shape[1]
    x = state["synthesis.layer0.first_layer"].repeat(len(ws), 1, 1, 1)
    x = _style_epilogue(state, 0, x, ws[:, 0])
    for i in range(1, num_ws):
        p = f"synthesis.layer{i}."
        if i % 2 == 0:
            # The fused transposed conv is upsampling then a 3x3 conv with the flipped kernel.
            fused = state.get(p + "weight")
            kernel = fused.permute(3, 2, 0, 1).flip(2, 3) if fused is not None else None
            kernel = state[p + "conv.weight"] if kernel is None else kernel
            x = _nearest2x(x)
            x = _blur(F.conv2d(x, kernel, padding=1) * SQRT2 / math.sqrt(kernel.shape[1] * 9))
        else:
            kernel = state[p + "conv.weight"]
            x = F.conv2d(x, kernel, padding=1) * SQRT2 / math.sqrt(kernel.shape[1] * 9)
        x = _style_epilogue(state, i, x, ws[:, i])
    last = num_ws // 2 - 1
    w, b = state[f"synthesis.output{last}.conv.weight"], state[f"synthesis.output{last}.bias"]
    return (
        torch.einsum("nchw,oc->nohw", x, w[:, :, 0, 0]) / math.sqrt(w.shape[1])
        + b[None, :, None, None]
    )


# ------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("ifg")
    torch.save(pggan_state(PGGAN_CHANNELS), root / "pggan.pth")
    torch.save(pggan_state(PGGAN32_CHANNELS, seed=1), root / "pggan32.pth")
    torch.save(pggan_state_2019(PGGAN_CHANNELS, seed=2), root / "pggan2019.pth")
    torch.save(stylegan_state(), root / "stylegan.pth")
    return root


def _z(n: int, seed: int = 5) -> torch.Tensor:
    return torch.randn(n, Z, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------
# PGGAN


@pytest.mark.parametrize(
    ("name", "channels", "reference"),
    [("pggan.pth", PGGAN_CHANNELS, pggan_reference),
     ("pggan32.pth", PGGAN32_CHANNELS, pggan_reference),
     ("pggan2019.pth", PGGAN_CHANNELS, pggan_reference_2019)],
)  # fmt: skip
def test_pggan_renders_what_interfacegan_renders(files, name, channels, reference):
    source = load_generator(files / name)
    state = torch.load(files / name, weights_only=True)
    assert isinstance(source, GeneratorSource)
    assert source.spaces == ("z",) and source.z_dim == Z
    assert source.resolution == 2 ** len(channels)
    z = _z(4)
    expected = reference(state, z)
    assert expected.shape == (4, 3, source.resolution, source.resolution)
    rendered = source.render(z)
    assert_f32_close(rendered, expected)
    np.testing.assert_allclose(rendered.detach().numpy(), expected.numpy(), rtol=0, atol=1e-4)
    images = source.synthesize(z, "z", batch_size=4)
    assert images.dtype == torch.float32 and images.abs().max() <= 1
    assert torch.equal(images, rendered.clamp(-1, 1))  # one batch, the same operations
    # Only z's direction matters (pixel norm), as InterFaceGAN's rescaling assumes.
    assert_f32_close(source.render(3 * z), expected)


def test_both_pggan_layouts_of_the_same_weights_render_the_same(files, tmp_path):
    """The current layout renamed onto the 2019 names (as the bug report checked by hand): the
    same network, and the lower heads play no part at lod 0."""
    state = pggan_state(PGGAN_CHANNELS)
    torch.save(current_as_2019(state), tmp_path / "old.pth")
    heads = {k: v.neg() if k.startswith(("output0.", "output1.")) else v for k, v in state.items()}
    torch.save(heads, tmp_path / "other_heads.pth")
    z = _z(5)
    current = load_generator(files / "pggan.pth").render(z)
    assert torch.equal(load_generator(tmp_path / "old.pth").render(z), current)
    assert torch.equal(load_generator(tmp_path / "other_heads.pth").render(z), current)
    assert_f32_close(current, pggan_reference_2019(current_as_2019(state), z))


def test_a_file_without_lod_is_read_as_fully_grown(files, tmp_path):
    state = pggan_state(PGGAN_CHANNELS)
    del state["lod"]
    torch.save(state, tmp_path / "no_lod.pth")
    z = _z(3)
    expected = load_generator(files / "pggan.pth").render(z)
    assert torch.equal(load_generator(tmp_path / "no_lod.pth").render(z), expected)


def test_pggan_is_z_only_and_refuses_truncation(files, capsys):
    source = load_generator(files / "pggan.pth")
    for call in (lambda: source.to_w(_z(1)), lambda: source.synthesize(_z(1), "w")):
        with pytest.raises(UserInputError):
            call()
    with pytest.raises(UserInputError, match="truncation psi 1 for the PGGAN"):
        load_generator(files / "pggan.pth", truncation_psi=0.7)
    line = user_error(capsys, ["sample", "-g", files / "pggan.pth", "--trunc", 0.7,
                               "-o", files / "x.png"])  # fmt: skip
    assert "no w space" in line


# ------------------------------------------------------------------------------------------
# StyleGAN


def test_stylegan_renders_what_interfacegan_renders_in_every_space(files):
    source = load_generator(files / "stylegan.pth", truncation_psi=0.7)
    state = torch.load(files / "stylegan.pth", weights_only=True)
    assert isinstance(source, GeneratorSource)
    assert source.spaces == ("z", "w", "ws") and source.resolution == 64
    assert source.num_ws == 10 and source.truncation_cutoff == 8
    assert torch.equal(source.w_avg, state["truncation.w_avg"])
    z = _z(3)
    w = stylegan_mapping_reference(state, z)
    ws = stylegan_truncation_reference(w, state["truncation.w_avg"], 10, 0.7, 8)
    expected = stylegan_synthesis_reference(state, ws)
    assert_f32_close(source.to_w(z), w)  # InterFaceGAN's w.npy: before truncation
    assert_f32_close(source.to_ws(z, "z"), ws)  # its wp.npy: after
    assert_f32_close(source.to_ws(w, "w"), ws)
    for latents, space in ((z, "z"), (w, "w"), (ws, "ws")):
        assert_f32_close(source.render(latents, space), expected)
    images = source.synthesize(w, "w", batch_size=3)
    assert images.shape == (3, 3, 64, 64) and images.abs().max() <= 1
    assert torch.equal(images, source.render(w, "w").clamp(-1, 1))


def test_truncation_at_psi_0_collapses_the_cutoff_layers_to_the_average(files):
    source = load_generator(files / "stylegan.pth", truncation_psi=0.0)
    w = source.to_w(_z(4))
    ws = source.to_ws(w, "w")
    assert torch.equal(ws[:, :8], source.w_avg.expand(4, 8, -1))
    assert torch.equal(ws[:, 8:], w[:, None].expand(-1, 2, -1))
    cut3 = dataclasses.replace(source, truncation_cutoff=3)
    assert torch.equal(cut3.to_ws(w, "w")[:, 3:], w[:, None].expand(-1, 7, -1))
    untruncated = load_generator(files / "stylegan.pth")
    assert torch.equal(untruncated.to_ws(w, "w"), w[:, None].expand(-1, 10, -1))


def test_noise_maps_are_the_files(files):
    source = load_generator(files / "stylegan.pth")
    state = torch.load(files / "stylegan.pth", weights_only=True)
    noise = source.make_noise(2, "const")
    assert len(noise) == 10 and noise[9].shape == (2, 1, 64, 64)
    assert torch.equal(noise[9][1:], state["synthesis.layer9.epilogue.apply_noise.noise"])
    z = _z(2)
    assert torch.equal(source.render(z, noise=noise), source.render(z))
    assert not torch.allclose(
        source.render(z, noise=source.make_noise(2, "none")), source.render(z)
    )


# ------------------------------------------------------------------------------------------
# Both: sampling, determinism, identity


@pytest.mark.parametrize("name", ["pggan.pth", "stylegan.pth"])
def test_sample_i_depends_only_on_seed_and_i(files, name):
    source = load_generator(files / name)
    z = source.sample_z(6, seed=3)
    assert torch.equal(source.sample_z(2, seed=3, start=4), z[4:])
    # InterFaceGAN's z: standard normal rescaled to radius sqrt(z_dim).
    np.testing.assert_allclose(z.norm(dim=1).numpy(), math.sqrt(Z), rtol=1e-5)
    whole = source.render(z)  # unclamped, so the tolerance scales with the computation
    rows = torch.cat([source.render(z[i : i + 1]) for i in range(6)])
    assert_f32_close(rows, whole)
    assert_f32_close(source.synthesize(z, "z", batch_size=4), whole.clamp(-1, 1))
    again = load_generator(files / name).synthesize(z, "z", batch_size=6)
    assert torch.equal(again, source.synthesize(z, "z", batch_size=6))  # same file, same ops


@pytest.mark.parametrize("name", ["pggan.pth", "pggan2019.pth", "stylegan.pth"])
def test_identity_is_the_file_name_and_its_sha256(files, name):
    digest = hashlib.sha256((files / name).read_bytes()).hexdigest()
    assert generator_identity(files / name) == {"name": name, "sha256": digest}
    assert load_generator(files / name).identity == {"name": name, "sha256": digest}


def test_an_extra_truncation_buffer_is_ignored(files, tmp_path):
    state = stylegan_state()
    state["truncation.truncation"] = torch.full((1, 10, 1), 0.5)  # a stale setting
    torch.save(state, tmp_path / "with_buffer.pth")
    a = load_generator(tmp_path / "with_buffer.pth", truncation_psi=1.0)
    b = load_generator(files / "stylegan.pth", truncation_psi=1.0)
    assert torch.equal(a.to_ws(_z(2), "z"), b.to_ws(_z(2), "z"))


# ------------------------------------------------------------------------------------------
# Refusals


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and text.startswith("expected") and "received" in text, text
    return text


def test_a_hostile_pth_is_refused_without_running(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    torch.save({"layer1.conv.weight": _Evil(marker)}, tmp_path / "evil.pth")
    with pytest.raises(UserInputError) as err:
        load_generator(tmp_path / "evil.pth")
    text = _one_line(err)
    assert "pickled Python objects" in text and "not loaded" in text
    assert "weights_only" not in text and "safe_globals" not in text
    user_error(capsys, ["sample", "-g", tmp_path / "evil.pth", "-o", tmp_path / "x.png"])
    assert not marker.exists()


def _damaged(tmp_path, state, name="bad.pth"):
    torch.save(state, tmp_path / name)
    return tmp_path / name


def test_damaged_files_are_refused_in_one_line(files, tmp_path):
    data = (files / "stylegan.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pth").write_bytes(b"")
    for name in ("cut.pth", "empty.pth"):
        with pytest.raises(DamagedInputError) as err:
            load_generator(tmp_path / name)
        _one_line(err)
    state = stylegan_state()
    state["synthesis.layer3.conv.weight"][0, 0, 1, 1] = float("nan")
    with pytest.raises(DamagedInputError, match="synthesis.layer3.conv.weight") as err:
        load_generator(_damaged(tmp_path, state))
    _one_line(err)
    # PGGAN: the final head, a lower head that plays no part in the image, lod, and the 2019
    # layout's head; damage is reported even where it would change no image.
    for key, index in [("output2.wscale.bias", 1), ("output0.conv.weight", (1, 3, 0, 0)),
                       ("lod", ()), ("output_16x16.wscale.bias", 1)]:  # fmt: skip
        state = pggan_state_2019(PGGAN_CHANNELS) if "_" in key else pggan_state(PGGAN_CHANNELS)
        state[key][index] = float("nan") if "0" in key else float("inf")
        with pytest.raises(DamagedInputError, match=key) as err:
            load_generator(_damaged(tmp_path, state))
        _one_line(err)


def _without(state: dict, key: str) -> dict:
    return {k: v for k, v in state.items() if k != key}


def _with(state: dict, **tensors: torch.Tensor) -> dict:
    """`state` with tensors replaced or added (keyword names use __ for dots)."""
    return {**state, **{k.replace("__", "."): v for k, v in tensors.items()}}


def _pg() -> dict:
    return pggan_state(PGGAN_CHANNELS)


def _pg2019() -> dict:
    return pggan_state_2019(PGGAN_CHANNELS)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: {"conv1.conv.weight": torch.ones(2)}, "InterFaceGAN's PGGAN keys"),
        (lambda: {"conv1.conv.weight": torch.ones(2)}, "2019 layout's layer1.conv.weight"),
        (lambda: torch.ones(3), "named tensors"),
        (lambda: {"g_ema": {"a": torch.ones(1)}}, "named tensors"),
        (lambda: _without(stylegan_state(), "synthesis.layer5.epilogue.bias"), "style layers"),
        (lambda: _without(stylegan_state(), "synthesis.output2.bias"), "does not load"),
        (lambda: {**stylegan_state(), "synthesis.lod": torch.tensor(1.0)}, "fully grown"),
        # PGGAN, current layout: lod, layers, heads, each in the file's own names
        (lambda: _with(_pg(), lod=torch.tensor(1.0)), "fully grown PGGAN (lod 0"),
        (lambda: _with(_pg(), lod=torch.tensor(0.5)), "received lod 0.5"),
        (lambda: _with(_pg(), lod=torch.zeros(2)), "lod as one number"),
        (lambda: _without(_pg(), "layer3.conv.weight"), "missing layer3.conv.weight"),
        (lambda: _without(_pg(), "layer4.wscale.bias"), "missing layer4.wscale.bias"),
        (
            lambda: _without(_without(_pg(), "layer2.conv.weight"), "layer2.wscale.bias"),
            "layers layer0..layer{2k+1}",
        ),
        (lambda: _without(_pg(), "output1.conv.weight"), "missing output1.conv.weight"),
        (
            lambda: _with(_pg(), output1__conv__weight=torch.ones(3, 9, 1, 1)),
            "output1.conv.weight: [3, 9, 1, 1] where the config gives [3, 8, 1, 1]",
        ),
        (lambda: _with(_pg(), output2__conv__weight=torch.ones(1, 8, 1, 1)), "other shapes"),
        (lambda: _with(_pg(), output2__wscale__bias=torch.ones(4)), "other shapes"),
        (lambda: _with(_pg(), output3__conv__weight=torch.ones(3, 8, 1, 1)), "unexpected output3"),
        (lambda: _with(_pg(), layer0__conv__weight=torch.ones(8, 8)), "layer0.conv.weight as a"),
        (lambda: _with(_pg(), layer3__conv__weight=torch.ones(8, 7, 3, 3)), "layer3.conv.weight"),
        (
            lambda: _with(
                _without(_pg(), "layer2.conv.weight"), layer2__weight=torch.ones(3, 3, 8, 8)
            ),
            "fused_scale",
        ),
        (lambda: _with(_pg2019(), lod=torch.tensor(0.0)), "layers layer0..layer{2k+1}"),
        # PGGAN, 2019 layout
        (lambda: _without(_pg2019(), "layer4.wscale.bias"), "does not load"),
        (lambda: _without(_pg2019(), "layer6.conv.weight"), "layers"),
        (
            lambda: _with(_pg2019(), layer2__conv__weight=torch.tensor(1.0)),
            "4-d PGGAN conv weights",
        ),
        (
            lambda: {**stylegan_state(), "mapping.dense3.linear.weight": torch.ones(3)},
            "2-d mapping weights",
        ),
        (
            lambda: {**stylegan_state(), "synthesis.layer3.conv.weight": torch.tensor(1.0)},
            "conv.weight",
        ),
        (lambda: _with(_pg2019(), layer3__conv__weight=torch.ones(6, 7, 3, 3)), "does not load"),
    ],
)
def test_foreign_or_broken_state_dicts_are_refused(tmp_path, make, words):
    with pytest.raises(UserInputError) as err:
        load_generator(_damaged(tmp_path, make()))
    assert words in _one_line(err)


@pytest.mark.parametrize("kind", sorted(PGGAN_DAMAGE))
def test_a_damaged_pggan_is_refused_by_the_cli_in_one_line(tmp_path, capsys, kind):
    torch.save(damaged_pggan_state(kind), tmp_path / "bad.pth")
    for argv in (["sample", "-o", tmp_path / "x.png"],
                 ["generate", "-p", "labeler", "-n", 4, "-o", tmp_path / "b.zarr"]):  # fmt: skip
        line = user_error(capsys, [*argv, "-g", tmp_path / "bad.pth"])
        assert PGGAN_DAMAGE[kind] in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pth"]


def test_a_missing_pth_is_refused(tmp_path):
    with pytest.raises(UserInputError) as err:
        load_generator(tmp_path / "nothing.pth")
    assert "no such file" in _one_line(err)
    with pytest.raises(UserInputError):
        generator_identity(tmp_path / "nothing.pth")


# ------------------------------------------------------------------------------------------
# The directions workflow through the CLI


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    from ganedit.models.predictors import AttributeNet
    from ganedit.models.registry import save_pretrained

    folder = tmp_path_factory.mktemp("pred") / "pred"
    torch.manual_seed(0)
    save_pretrained(AttributeNet("plain", width=8, hidden=8, image_size=16).eval(), folder)
    return folder


def _check_bank(path, gen, trunc) -> None:
    """The bank holds InterFaceGAN's codes: z of norm sqrt(z_dim); for StyleGAN, w before
    truncation and ws after it."""
    from ganedit.latents import LatentBank

    bank = LatentBank.open(path)
    z = torch.from_numpy(bank.latents("z"))
    np.testing.assert_allclose(z.norm(dim=1).numpy(), math.sqrt(Z), rtol=1e-5)
    if "ws" not in bank.spaces:
        return
    source = load_generator(gen, truncation_psi=trunc)
    w, ws = torch.from_numpy(bank.latents("w")), torch.from_numpy(bank.latents("ws"))
    assert_f32_close(w, source.to_w(z))
    assert_f32_close(ws, stylegan_truncation_reference(w, source.w_avg, source.num_ws, trunc, 8))


@pytest.mark.parametrize(
    ("state", "space", "trunc", "extra"),
    [
        (lambda: pggan_state(PGGAN_CHANNELS), "z", 1.0, []),
        (lambda: stylegan_state([8, 8, 4], fused=(2,)), "w", 0.7, ["--store-ws"]),
    ],
    ids=["pggan", "stylegan"],
)
def test_generate_boundary_edit_through_the_cli(
    tmp_path, capsys, predictor, state, space, trunc, extra
):
    gen = tmp_path / "tiny.pth"
    torch.save(state(), gen)
    bank = tmp_path / "bank.zarr"
    ok(capsys, ["generate", "-g", gen, "-p", predictor, "-n", 120, "--seed", 1, "--trunc", trunc,
                "-o", bank, "--batch-size", 64, "--no-progress", *extra])  # fmt: skip
    ok(capsys, ["boundary", "--method", "interfacegan", "-c", bank, "--space", space,
                "-a", "smile", "-n", 0.2, "-o", tmp_path / "smile.npy"])  # fmt: skip
    direction = np.load(tmp_path / "smile.npy")
    assert direction.shape == (1, Z)
    sidecar = json.loads((tmp_path / "smile.npy.json").read_text())
    assert sidecar["space"] == space
    _check_bank(bank, gen, trunc)
    digest = hashlib.sha256(gen.read_bytes()).hexdigest()
    assert digest in json.dumps(sidecar) and "tiny.pth" in json.dumps(sidecar)
    ok(capsys, ["edit", "-b", tmp_path / "smile.npy", "-g", gen, "--space", space,
                "-o", tmp_path / "edit", "-n", 2, "--steps", 3, "--no-progress"])  # fmt: skip
    assert (tmp_path / "edit" / "strip.png").stat().st_size > 100
    edited = np.load(tmp_path / "edit" / "latents.npy")
    assert edited.shape[-1] == Z and np.isfinite(edited).all()


# ------------------------------------------------------------------------------------------
# The whole study on foreign generators with foreign networks

_STUDY_NETWORKS = """
import torch

class Reader:
    # Probabilities of brightness and redness, and a value; 'scale' makes the evaluator
    # another network than the predictor.
    attribute_kinds = {"bright": "probability", "red": "probability", "contrast": "value"}
    input_size = 16

    def __init__(self, scale):
        self.scale = scale

    def predict(self, images, batch_size=256):
        mean = images.mean(dim=(1, 2, 3))
        red = images[:, 0].mean(dim=(1, 2)) - images[:, 2].mean(dim=(1, 2))
        return {
            "bright": torch.sigmoid(self.scale * 8 * mean),
            "red": torch.sigmoid(self.scale * 8 * red),
            "contrast": images.std(dim=(1, 2, 3)),
        }

class Embedder:
    def embed(self, images, batch_size=256):
        return torch.nn.functional.avg_pool2d(images, images.shape[-1] // 4).flatten(1) + 3.0

def predictor():
    return Reader(1.0)

def evaluator():
    return Reader(1.3)

def embedder():
    return Embedder()
"""


@pytest.fixture
def study_networks(tmp_path, monkeypatch):
    name = "byo_study_networks"
    (tmp_path / f"{name}.py").write_text(_STUDY_NETWORKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def _write_pth(state):
    def write(folder):
        torch.save(state(), folder / "tiny.pth")
        return folder / "tiny.pth"

    return write


def _write_pkl(folder):
    from nvidia_pkl_standin import write_tiny_nvidia_pkl

    return write_tiny_nvidia_pkl(folder / "tiny.pkl")


@pytest.mark.parametrize(
    ("write", "space", "trunc", "identity", "attributes"),
    [
        (_write_pth(lambda: pggan_state(PGGAN_CHANNELS)), "z", 1.0, "none", ()),
        (_write_pth(lambda: stylegan_state([8, 8, 4], fused=(2,))), "w", 0.7, "embedder", ("red",)),
        (_write_pkl, "w", 0.5, "none", ("bright",)),
    ],
    ids=["pggan", "stylegan", "nvidia-pkl"],
)
def test_study_through_the_cli_with_foreign_networks(
    tmp_path, capsys, study_networks, write, space, trunc, identity, attributes
):
    """`study` on an InterFaceGAN or NVIDIA file, scored and evaluated by user networks: the
    attributes are the networks' own, the bank and the evaluation use the same truncation."""
    gen = write(tmp_path)
    ident = "none" if identity == "none" else f"py:{study_networks}:{identity}"
    out = tmp_path / "study"
    ok(capsys, ["study", "-g", gen, "-o", out, "-n", 300, "--space", space, "--trunc", trunc,
                "-p", f"py:{study_networks}:predictor", "--evaluator",
                f"py:{study_networks}:evaluator", "--identity", ident, "--eval-n", 40,
                "--steps", 3, "--bootstrap", 0, "--mab-n", 0, "-t", 0.6, "--no-progress",
                *[x for a in attributes for x in ("-a", a)]])  # fmt: skip
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["attributes"] == ["bright", "red", "contrast"]
    assert report["config"]["truncation_psi"] == trunc
    assert {d["attribute"] for d in report["directions"]} == set(attributes or ("bright", "red"))
    assert "interfacegan" in {d["name"] for d in report["directions"]}
    skipped = json.loads((out / "fitting.json").read_text())["skipped"]
    alone = len(attributes) == 1  # nothing to condition on: recorded, not a failure
    assert any(k.startswith("interfacegan+conditional") for k in skipped) == alone
    identities = [d["matched"]["50"]["identity"] for d in report["directions"]]
    if identity == "none":  # not measured: nan, written to JSON as null
        assert identities == [None] * len(identities) and report["identity_measured"] is False
    else:
        assert all(-1 <= v <= 1 for v in identities) and report["identity_measured"] is True
    from ganedit.latents import LatentBank

    bank = LatentBank.open(out / "bank.zarr")
    assert bank.score_kinds == {"bright": "probability", "red": "probability", "contrast": "value"}
    assert bank.config["truncation_psi"] == trunc
    text = (out / "report" / "report.md").read_text()
    assert f"scored by `py:{study_networks}:predictor`" in text


def test_study_refuses_networks_without_a_shared_probability(tmp_path, capsys, study_networks):
    line = user_error(capsys, ["study", "-o", tmp_path / "s", "-n", 100,
                               "-p", f"py:{study_networks}:predictor", "--no-progress"])  # fmt: skip
    assert "in common" in line and "smile" in line and "bright" in line
    assert not (tmp_path / "s").exists()
    line = user_error(capsys, ["study", "-o", tmp_path / "s", "-n", 100, "-a", "contrast",
                               "-p", f"py:{study_networks}:predictor", "--evaluator",
                               f"py:{study_networks}:evaluator", "--no-progress"])  # fmt: skip
    assert "'contrast'" in line
