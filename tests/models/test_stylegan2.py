"""StyleGAN2 networks and rosinality converters, on tiny configurations (8-64 px, <= 32 ch)."""

import argparse
import itertools

import pytest
import torch

from ganedit.errors import UserInputError
from ganedit.models.registry import load_pretrained, save_pretrained
from ganedit.models.stylegan2 import (
    Discriminator,
    Generator,
    export_rosinality_checkpoint,
    load_rosinality_checkpoint,
    networks,
)
from ganedit.models.stylegan2.convert import infer_channel_config
from ganedit.models.stylegan2.networks import (
    Blur,
    ModulatedConv2d,
    StyledConv,
    ToRGB,
    Upsample,
    channel_table,
    upfirdn2d,
)
from tolerance import assert_f32_close

TINY = {"style_dim": 16, "n_mlp": 2, "channel_max": 16}


def tiny_generator(size: int = 16, **kwargs) -> Generator:
    return Generator(size, **{**TINY, **kwargs}).eval()


def with_weights_of(source: Generator, **overrides) -> Generator:
    clone = Generator(**{**source.config, **overrides}).eval()
    clone.load_state_dict(source.state_dict())
    return clone


@pytest.mark.parametrize(
    ("size", "style_dim", "n_mlp", "channel_max", "num_ws"),
    [(8, 16, 2, 16, 4), (16, 8, 1, 32, 6), (32, 32, 4, 8, 8)],
)
def test_generator_shapes(size, style_dim, n_mlp, channel_max, num_ws):
    g = Generator(size, style_dim=style_dim, n_mlp=n_mlp, channel_max=channel_max)
    assert (g.z_dim, g.w_dim, g.num_ws, g.img_resolution) == (style_dim, style_dim, num_ws, size)
    z = torch.randn(2, style_dim)
    ws = g.mapping(z)
    assert ws.shape == (2, num_ws, style_dim)
    assert g.style(z).shape == (2, style_dim)
    with torch.no_grad():
        img = g.synthesis(ws)
    assert img.shape == (2, 3, size, size)
    assert torch.isfinite(img).all()
    assert g.w_avg.shape == (style_dim,)


def test_invalid_arguments_are_user_errors():
    with pytest.raises(UserInputError, match="power of two"):
        Generator(24, **TINY)
    with pytest.raises(UserInputError, match="power of two"):
        Discriminator(4)
    g = tiny_generator(8)
    with pytest.raises(UserInputError, match="z of shape"):
        g.mapping(torch.randn(2, 3))
    with pytest.raises(UserInputError, match="ws of shape"):
        g.synthesis(torch.randn(2, 5, 16))
    with pytest.raises(UserInputError, match="noise_mode"):
        g.synthesis(g.mapping(torch.randn(1, 16)), noise_mode="fresh")


def test_upfirdn2d_upsample_keeps_constant_interior():
    x = torch.ones(1, 2, 6, 6)
    up = upfirdn2d(x, torch.ones(4, 4) / 4, up=2, pad=(2, 1))
    assert up.shape == (1, 2, 12, 12)
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.ones(1, 2, 8, 8))
    down = upfirdn2d(torch.ones(1, 1, 8, 8), torch.ones(4, 4) / 16, down=2, pad=(1, 1))
    assert down.shape == (1, 1, 4, 4)
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2))


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"upsample": True}, {"downsample": True}, {"demodulate": False}],
    ids=["plain", "upsample", "downsample", "no-demod"],
)
def test_modconv_forms_agree(kwargs):
    grouped = ModulatedConv2d(8, 12, 3, 16, impl="grouped", **kwargs)
    inputmod = ModulatedConv2d(8, 12, 3, 16, impl="input", **kwargs)
    inputmod.load_state_dict(grouped.state_dict())
    x, w = torch.randn(3, 8, 8, 8), torch.randn(3, 16)
    a, b = grouped(x, w), inputmod(x, w)
    factor = 2.0 if kwargs.get("upsample") else 0.5 if kwargs.get("downsample") else 1.0
    assert a.shape == (3, 12, int(8 * factor), int(8 * factor))
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_torgb_forms_agree():
    grouped = ToRGB(8, 16, impl="grouped")
    inputmod = ToRGB(8, 16, impl="input")
    inputmod.load_state_dict(grouped.state_dict())
    x, w, skip = torch.randn(2, 8, 8, 8), torch.randn(2, 16), torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(grouped(x, w, skip), inputmod(x, w, skip), atol=1e-4, rtol=0)


def test_whole_generator_forms_agree():
    g = tiny_generator(32, modconv_impl="grouped")
    g_input = with_weights_of(g, modconv_impl="input")
    z = torch.randn(3, 16)
    with torch.no_grad():
        a = g(z, truncation_psi=0.7, impl="reference")
        b = g_input(z, truncation_psi=0.7, impl="reference")
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_auto_impl_matches_grouped_on_cpu():
    g = tiny_generator(8, modconv_impl="grouped")
    g_auto = with_weights_of(g, modconv_impl="auto")
    z = torch.randn(2, 16)
    with torch.no_grad():
        a, b = g(z, impl="reference"), g_auto(z, impl="reference")
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_const_noise_is_deterministic_and_random_noise_follows_generator():
    g = tiny_generator(16)
    with torch.no_grad():
        for conv in g.convs:  # noise weights start at 0; make noise visible
            conv.noise.weight.fill_(0.5)
        ws = g.mapping(torch.randn(2, 16))
        const_a, const_b = g.synthesis(ws), g.synthesis(ws)
        rand_a = g.synthesis(ws, "random", torch.Generator().manual_seed(1))
        rand_b = g.synthesis(ws, "random", torch.Generator().manual_seed(1))
        rand_c = g.synthesis(ws, "random", torch.Generator().manual_seed(2))
        off = g.synthesis(ws, "none")
    assert torch.equal(const_a, const_b)
    assert torch.equal(rand_a, rand_b)
    assert not torch.allclose(rand_a, rand_c)
    assert not torch.allclose(off, const_a)


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_sample_independent_of_batch_size(impl):
    g = tiny_generator(16)
    z = torch.randn(5, 16)
    with torch.no_grad():
        batch = g.synthesis(g.mapping(z), noise_mode="const", impl=impl)
        single = g.synthesis(g.mapping(z[3:4]), noise_mode="const", impl=impl)
    assert_f32_close(batch[3:4], single)


# ----------------------------------------------------------------------------------------
# The fast inference path against the reference formulation. Fresh layers have zero biases
# and noise strengths; these tests draw them at random so every term of the fast path counts.
# Tolerances are float32 round-off of each output's magnitude (tests/tolerance.py): the two
# paths run the same arithmetic in another order and memory layout (measured: < 10 ulps).


def randomized(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(("bias", "noise.weight")) and "modulation" not in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return module.eval()


FAST_CASES = list(
    itertools.product(
        [8, 16, 32, 64], ["grouped", "input"], ["const", "random", "none"], [(1, 3, 3, 1)]
    )
) + [(16, "input", "const", (1, 2, 1)), (32, "grouped", "random", (1, 2, 1))]


@pytest.mark.parametrize(("size", "modconv", "noise_mode", "blur"), FAST_CASES)
def test_fast_synthesis_matches_reference(size, modconv, noise_mode, blur):
    table = [24, 16, 12, 8, 8][: size.bit_length() - 2]
    g = Generator(
        size, style_dim=16, n_mlp=2, channels=table, modconv_impl=modconv, blur_kernel=blur
    )
    randomized(g, seed=size)
    ws = torch.randn(5, g.num_ws, 16)  # a different w per layer, as with style mixing
    with torch.no_grad():
        ref = g.synthesis(ws, noise_mode, torch.Generator().manual_seed(1), impl="reference")
        fast = g.synthesis(ws, noise_mode, torch.Generator().manual_seed(1), impl="fast")
    assert fast.shape == ref.shape == (5, 3, size, size) and fast.is_contiguous()
    assert_f32_close(fast, ref)


def test_fast_synthesis_chunks_match_one_batch(monkeypatch):
    g = randomized(Generator(32, style_dim=16, n_mlp=2, channels=[16, 16, 8, 8]))
    ws = g.mapping(torch.randn(7, 16)).detach()
    with torch.no_grad():
        ref = g.synthesis(ws, "random", torch.Generator().manual_seed(2), impl="reference")
        whole = g.synthesis(ws, "random", torch.Generator().manual_seed(2), impl="fast")
        # 3 images per chunk: chunks of 3, 3 and 1, each with its own slice of the noise
        monkeypatch.setattr(networks, "FAST_CHUNK_BYTES", 3 * 8 * 32 * 32 * 4)
        assert networks.fast_chunk(8 * 32 * 32) == 3
        chunked = g.synthesis(ws, "random", torch.Generator().manual_seed(2), impl="fast")
    assert_f32_close(whole, ref)
    assert_f32_close(chunked, ref)


@pytest.mark.parametrize("conv_clamp", [None, 0.3])
def test_fast_synthesis_gradients_match_reference(conv_clamp):
    # impl="fast" also runs with autograd, through the path-length regulariser's double
    # backward: gradients of the images w.r.t. ws, then of a loss on those w.r.t. weights.
    # A clamp of 0.3 bites in every layer and ToRGB (NVIDIA's conv_clamp, set that low here).
    g = randomized(Generator(16, style_dim=16, n_mlp=2, channels=[16, 8, 8], conv_clamp=conv_clamp))
    z = torch.randn(4, 16)
    grads = {}
    for impl in ("reference", "fast"):
        g.zero_grad()
        ws = g.mapping(z).detach().requires_grad_(True)
        img = g.synthesis(ws, "random", torch.Generator().manual_seed(0), impl=impl)
        probe = torch.randn(img.shape, generator=torch.Generator().manual_seed(1))
        (grad_ws,) = torch.autograd.grad((img * probe).sum(), ws, create_graph=True)
        (grad_ws.square().sum() + img.square().mean()).backward()
        grads[impl] = [img.detach(), grad_ws.detach()] + [p.grad for p in g.parameters()]
    for fast, ref in zip(grads["fast"], grads["reference"], strict=True):
        assert (fast is None) == (ref is None)
        if ref is not None:
            assert_f32_close(fast, ref, ulps=1024)  # gradients: longer sums than the images


def test_fast_synthesis_on_threads_keeps_modes_and_thread_count(monkeypatch):
    g = randomized(Generator(16, style_dim=16, n_mlp=2, channels=[16, 8, 8]))
    ws = g.mapping(torch.randn(5, 16)).detach()
    monkeypatch.setattr(networks, "FAST_CHUNK_BYTES", 8 * 16 * 16 * 4)  # 1 image a chunk
    workers = []
    real = networks.ThreadPoolExecutor
    monkeypatch.setattr(
        networks, "ThreadPoolExecutor", lambda n, **kw: workers.append(n) or real(n, **kw)
    )

    def fail(a, b):
        raise ValueError("chunk failed")

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # chunks on 2 worker threads, whatever the machine
    try:
        with torch.inference_mode():  # writes into an inference tensor from the workers
            threaded = g.synthesis(ws, "random", torch.Generator().manual_seed(3))
        assert torch.get_num_threads() == 2 and workers == [2]
        with pytest.raises(ValueError, match="chunk failed"):
            networks.run_in_threads(fail, [(0, 1), (1, 2), (2, 3), (3, 4)])
        assert torch.get_num_threads() == 2 and workers == [2, 2]
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        ref = g.synthesis(ws, "random", torch.Generator().manual_seed(3), impl="reference")
    assert_f32_close(threaded, ref)


def test_synthesis_impl_auto_is_fast_on_cpu(monkeypatch):
    g = tiny_generator(8)
    ws = g.mapping(torch.randn(2, 16))
    calls = []
    real = Generator._synthesis_fast
    monkeypatch.setattr(
        Generator, "_synthesis_fast", lambda self, *a: calls.append(1) or real(self, *a)
    )
    assert g.synthesis(ws).requires_grad and calls == [1]  # training runs it too
    with torch.no_grad():
        g.synthesis(ws)
        g.synthesis(ws, impl="reference")
    assert calls == [1, 1]
    assert networks.resolve_synthesis_impl("auto", torch.device("cuda")) == "reference"
    with pytest.raises(UserInputError, match="synthesis impl"):
        g.synthesis(ws, impl="fused")


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"upsample": True}, {"downsample": True}, {"demodulate": False}],
    ids=["plain", "upsample", "downsample", "no-demod"],
)
@pytest.mark.parametrize("modconv", ["grouped", "input"])
@pytest.mark.parametrize("blur", [(1, 3, 3, 1), (1, 2, 1)])
def test_fast_modconv_matches_reference(kwargs, modconv, blur):
    conv = randomized(ModulatedConv2d(8, 12, 3, 16, impl=modconv, blur_kernel=blur, **kwargs))
    x, w = torch.randn(3, 8, 8, 8), torch.randn(3, 16)
    with torch.no_grad():
        ref = conv(x, w)
        in_scale, demod = conv.fast_factors(conv.modulation(w), gain=2.0)
        out = conv.forward_fast(x.contiguous(memory_format=torch.channels_last) / 2, in_scale)
    assert (demod is None) == ("demodulate" in kwargs)
    if demod is not None:
        out = out * demod
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert_f32_close(out, ref)


@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 2, 1), (1, 1)])
def test_fast_resampling_matches_upfirdn2d(taps):
    x = torch.randn(2, 3, 7, 7).contiguous(memory_format=torch.channels_last)
    assert_f32_close(Upsample(taps).forward_fast(x), Upsample(taps)(x))
    for pad in [(1, 1), (2, 1), (0, 2)]:
        blur = Blur(taps, pad=pad, upsample_factor=2)
        assert_f32_close(blur.forward_fast(x), blur(x))


def test_fast_torgb_matches_reference():
    rgb = randomized(ToRGB(8, 16, impl="input"))
    first = randomized(ToRGB(8, 16, upsample=False))
    x, w, skip = torch.randn(2, 8, 8, 8), torch.randn(2, 16), torch.randn(2, 3, 4, 4)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fast = rgb.forward_fast(x_cl, rgb.fast_weights(rgb.conv.modulation(w)), skip)
        fast_first = first.forward_fast(x_cl, first.fast_weights(first.conv.modulation(w)), None)
        assert_f32_close(fast, rgb(x, w, skip))
        assert_f32_close(fast_first, first(x, w))


@pytest.mark.parametrize("noise_mode", ["const", "random", "none"])
def test_fast_styled_conv_matches_reference(noise_mode):
    conv = randomized(StyledConv(8, 12, 3, 16, upsample=True))
    x, w = torch.randn(3, 8, 8, 8), torch.randn(3, 16)
    noise = {"const": torch.randn(1, 1, 16, 16), "random": torch.randn(3, 1, 16, 16)}
    noise = noise.get(noise_mode)
    with torch.no_grad():
        ref = conv(x, w, torch.zeros(1, 1, 16, 16) if noise is None else noise)
        in_scale, demod = conv.conv.fast_factors(conv.conv.modulation(w))
        fast = conv.forward_fast(
            x.contiguous(memory_format=torch.channels_last),
            in_scale,
            demod,
            conv.fast_shift(noise),
        )
    assert_f32_close(fast * 2**0.5, ref)  # the fast form leaves the activation gain out


def test_truncation():
    g = tiny_generator(16)
    w_avg = g.update_w_avg(n=256, generator=torch.Generator().manual_seed(0))
    assert torch.equal(g.w_avg, w_avg)
    assert w_avg.abs().sum() > 0
    z = torch.randn(3, 16)
    with torch.no_grad():
        collapsed = g.mapping(z, truncation_psi=0.0)
        plain = g.mapping(z)
        cut = g.mapping(z, truncation_psi=0.0, truncation_cutoff=2)
    torch.testing.assert_close(collapsed, w_avg.expand(3, g.num_ws, -1))
    torch.testing.assert_close(cut[:, :2], w_avg.expand(3, 2, -1))
    torch.testing.assert_close(cut[:, 2:], plain[:, 2:])


def test_conv_clamp_limits_layers_and_torgbs():
    plain = randomized(Generator(16, style_dim=16, n_mlp=2, channels=[16, 8, 8]))
    clamped = Generator(16, style_dim=16, n_mlp=2, channels=[16, 8, 8], conv_clamp=0.3).eval()
    clamped.load_state_dict(plain.state_dict())
    ws = plain.mapping(torch.randn(3, 16)).detach()
    with torch.no_grad():
        x = plain.conv1(plain.input.input.expand(3, -1, -1, -1), ws[:, 0])
        assert x.abs().max() > 0.3  # the clamp bites
        assert clamped.conv1(plain.input.input.expand(3, -1, -1, -1), ws[:, 0]).abs().max() <= 0.3
        assert clamped.to_rgb1(x, ws[:, 1]).abs().max() <= 0.3
        for impl in ("reference", "fast"):
            diff = clamped.synthesis(ws, impl=impl) - plain.synthesis(ws, impl=impl)
            assert diff.abs().max() > 0.05
    assert clamped.config["conv_clamp"] == 0.3 and "conv_clamp" not in plain.config
    with pytest.raises(UserInputError, match="conv_clamp as a positive number"):
        Generator(16, style_dim=16, n_mlp=2, conv_clamp=float("nan"))


def test_class_conditional_mapping():
    g = randomized(Generator(16, style_dim=16, n_mlp=2, channels=[16, 8, 8], c_dim=3))
    z = torch.randn(4, 16)
    assert g.style[1].weight.shape == (16, 32) and g.embed.weight.shape == (16, 3)
    with torch.no_grad():
        w0, w2 = g.mapping(z, c=g.one_hot(0, 4)), g.mapping(z, c=g.one_hot(2, 4))
        assert (w0 - w2).abs().max() > 1e-3
        # z and the embedding are normalised separately before the first layer
        norm = lambda x: x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()  # noqa: E731
        joined = torch.cat([norm(z), norm(g.embed(g.one_hot(2, 4)))], dim=1)
        torch.testing.assert_close(w2[:, 0], g.style[1:](joined))
        assert g.update_w_avg(n=32, generator=torch.Generator().manual_seed(0)).shape == (16,)
    with pytest.raises(UserInputError, match=r"class labels c of shape \[4, 3\]"):
        g.mapping(z)
    with pytest.raises(UserInputError, match=r"a class index in \[0, 2\]"):
        g.one_hot(3)
    with pytest.raises(UserInputError, match="no class label for an unconditional"):
        Generator(16, style_dim=16, n_mlp=2).mapping(z, c=g.one_hot(0, 4))


def test_conditional_and_clamped_models_round_trip(tmp_path):
    g = randomized(Generator(16, style_dim=16, n_mlp=2, channel_max=16, c_dim=3, conv_clamp=256))
    save_pretrained(g, tmp_path / "g")
    loaded = load_pretrained(tmp_path / "g")
    assert loaded.config == g.config and loaded.c_dim == 3 and loaded.conv_clamp == 256
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.equal(g(z, c=g.one_hot(1, 2)), loaded(z, c=g.one_hot(1, 2)))
    d = Discriminator(16, channel_max=16, conv_clamp=0.5).eval()
    save_pretrained(d, tmp_path / "d")
    d2 = load_pretrained(tmp_path / "d")
    assert d2.config["conv_clamp"] == 0.5
    x = torch.randn(4, 3, 16, 16)
    unclamped = Discriminator(16, channel_max=16).eval()
    unclamped.load_state_dict(d.state_dict())
    with torch.no_grad():
        assert torch.equal(d(x), d2(x)) and (d(x) - unclamped(x)).abs().max() > 1e-4


def test_save_pretrained_round_trip(tmp_path):
    g = tiny_generator(16)
    g.update_w_avg(n=64, generator=torch.Generator().manual_seed(0))
    save_pretrained(g, tmp_path / "g")
    loaded = load_pretrained(tmp_path / "g")
    assert isinstance(loaded, Generator)
    assert loaded.config == g.config
    assert torch.equal(loaded.w_avg, g.w_avg)
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.equal(g(z, truncation_psi=0.5), loaded(z, truncation_psi=0.5))
    d = Discriminator(16, channel_max=16).eval()
    save_pretrained(d, tmp_path / "d")
    d2 = load_pretrained(tmp_path / "d")
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(d(x), d2(x))


def test_rosinality_export_load_round_trip(tmp_path):
    g_ema = Generator(32, style_dim=24, n_mlp=3, channel_max=16).eval()
    g_ema.update_w_avg(n=64, generator=torch.Generator().manual_seed(0))
    g = Generator(**g_ema.config)
    d = Discriminator(32, channel_max=16)
    path = export_rosinality_checkpoint(tmp_path / "ckpt" / "model.pt", g_ema, g=g, d=d)
    assert path.is_file() and not list(path.parent.glob(".*tmp*"))

    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) == {"g_ema", "g", "d", "latent_avg"}
    assert "w_avg" not in raw["g_ema"]

    out = load_rosinality_checkpoint(path)
    loaded = out["g_ema"]
    assert (loaded.config["size"], loaded.config["style_dim"], loaded.config["n_mlp"]) == (
        32,
        24,
        3,
    )
    assert loaded.config["channel_max"] == 16
    torch.testing.assert_close(out["latent_avg"], g_ema.w_avg)
    assert torch.equal(loaded.w_avg, g_ema.w_avg)
    z = torch.randn(2, 24)
    with torch.no_grad():
        assert torch.equal(g_ema(z, truncation_psi=0.5), loaded(z, truncation_psi=0.5))
        assert torch.equal(g(z), out["g"](z))
        x = torch.randn(2, 3, 32, 32)
        assert torch.equal(d(x), out["d"](x))


def test_rosinality_dict_loads_strictly_without_w_avg():
    g = tiny_generator(8)
    state = {k: v for k, v in g.state_dict().items() if k != "w_avg"}
    other = Generator(**g.config)
    other.load_state_dict(state, strict=True)
    assert torch.equal(other.input.input, g.input.input)


def test_checkpoint_without_g_ema_or_file_is_refused(tmp_path):
    with pytest.raises(UserInputError, match="no such file"):
        load_rosinality_checkpoint(tmp_path / "missing.pt")
    path = tmp_path / "only_g.pt"
    torch.save({"g": tiny_generator(8).state_dict()}, path)
    with pytest.raises(UserInputError, match="g_ema"):
        load_rosinality_checkpoint(path)


class Payload:
    """Stands for any pickled object a checkpoint could smuggle in."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    state = {k: v for k, v in tiny_generator(8).state_dict().items() if k != "w_avg"}
    torch.save({"g_ema": state, "extra": Payload()}, path)
    with pytest.raises(UserInputError, match="plain state-dict checkpoint"):
        load_rosinality_checkpoint(path)


def _adam_state(model: torch.nn.Module) -> dict:
    """An optimizer state dict after one step, as train.py's `g_optim` / `d_optim`."""
    optim = torch.optim.Adam(model.parameters(), lr=0.002, betas=(0.0, 0.99))
    sum(p.square().sum() for p in model.parameters()).backward()
    optim.step()
    return optim.state_dict()


@pytest.mark.parametrize("attributes", [None, ["glasses", "age", "yaw"]], ids=["plain", "sc-gan"])
def test_a_training_checkpoint_loads_as_train_py_writes_it(tmp_path, attributes):
    """rosinality's train.py (and SC-GAN's train_mmd.py) saves {g, d, g_ema, g_optim, d_optim,
    args (an argparse Namespace), ada_aug_p} and no latent_avg."""
    from ganedit.models.stylegan2.convert import _rosinality_state

    g_ema = tiny_generator(8, mode_attributes=attributes)
    g = tiny_generator(8, mode_attributes=attributes)
    d = Discriminator(8, channel_max=16, **({"num_modes": 10} if attributes else {}))
    args = argparse.Namespace(
        path="lmdb/ffhq", iter=800000, batch=16, size=8, r1=10.0, latent=16, n_mlp=2,
        channel_multiplier=2, augment=False, ada_target=0.6, wandb=False, local_rank=0,
        distributed=False, start_iter=0, ckpt=None,
    )  # fmt: skip
    optimizers = {"g_optim": _adam_state(g), "d_optim": _adam_state(d)}  # steps g and d
    ckpt = {
        "g": _rosinality_state(g),
        "d": _rosinality_state(d),
        "g_ema": _rosinality_state(g_ema),
        **optimizers,
        "args": args,
        "ada_aug_p": 0.0,
    }
    torch.save(ckpt, tmp_path / "010000.pt")
    loaded = load_rosinality_checkpoint(tmp_path / "010000.pt", mode_attributes=attributes)
    assert loaded["g_ema"].img_resolution == 8 and loaded["latent_avg"] is None
    assert loaded["g_ema"].mode_attributes == (attributes or [])
    ws = g_ema.mapping(torch.randn(2, 16))
    modes = g_ema.input.neutral(2) if attributes else None
    with torch.no_grad():
        assert torch.equal(
            loaded["g_ema"].synthesis(ws, modes=modes), g_ema.synthesis(ws, modes=modes)
        )
        x = torch.randn(4, 3, 8, 8)
        assert torch.equal(loaded["d"](x), d(x))


def test_explicit_channel_table_builds_round_trips_and_exports(tmp_path):
    table = [32, 32, 24, 16]  # 4, 8, 16, 32 px
    g_ema = Generator(32, style_dim=16, n_mlp=2, channels=table).eval()
    d = Discriminator(32, channels=table)
    assert g_ema.channels == {4: 32, 8: 32, 16: 24, 32: 16} == d.channels
    assert g_ema.conv1.conv.weight.shape[1:3] == (32, 32)
    assert d(torch.randn(4, 3, 32, 32)).shape == (4, 1)
    save_pretrained(g_ema, tmp_path / "own")
    own = load_pretrained(tmp_path / "own")
    assert own.config["channels"] == table
    out = load_rosinality_checkpoint(
        export_rosinality_checkpoint(tmp_path / "model.pt", g_ema, d=d)
    )
    assert out["g_ema"].channels == g_ema.channels and out["d"].channels == d.channels
    z = torch.randn(3, 16)
    with torch.no_grad():
        assert torch.equal(g_ema(z), own(z)) and torch.equal(g_ema(z), out["g_ema"](z))
    with pytest.raises(UserInputError, match="4 positive channel counts"):
        Generator(32, channels=[32, 32, 16])


def test_channel_multiplier_inference():
    assert infer_channel_config(channel_table(1024, 2, 512), 1024) == (2, 512)
    assert infer_channel_config(channel_table(256, 1, 512), 256) == (1, 512)
    assert infer_channel_config(channel_table(128, 4, 1024), 128) == (4, 1024)
    assert infer_channel_config(channel_table(32, 2, 16), 32) == (2, 16)  # below 64: default
    with pytest.raises(UserInputError, match="rosinality's table"):
        infer_channel_config({4: 512, 8: 512, 16: 300}, 16)


def test_discriminator_shape_gradients_and_batch_rule():
    d = Discriminator(16, channel_max=16)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    logits = d(x)
    assert logits.shape == (4, 1)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)  # R1 needs 2nd order
    assert grad.shape == x.shape and grad.abs().sum() > 0
    grad.square().sum().backward()
    assert d.convs[0][0].weight.grad.abs().sum() > 0
    d.zero_grad(set_to_none=True)
    torch.nn.functional.softplus(-d(x)).mean().backward()
    assert all(p.grad is not None for p in d.parameters())
    assert d(torch.randn(2, 3, 16, 16)).shape == (2, 1)
    with pytest.raises(UserInputError, match="divisible by 4"):
        d(torch.randn(6, 3, 16, 16))


def test_discriminator_stddev_group_is_configurable():
    torch.manual_seed(0)
    d4 = Discriminator(16, channel_max=16)
    d8 = Discriminator(16, channel_max=16, stddev_group=8)
    d8.load_state_dict(d4.state_dict())  # same weights: only the grouping differs
    assert d8.config["stddev_group"] == 8 and d4.config["stddev_group"] == 4
    x = torch.randn(8, 3, 16, 16)
    assert not torch.allclose(d4(x), d8(x))
    with pytest.raises(UserInputError, match="divisible by 8"):
        d8(torch.randn(12, 3, 16, 16))
    with pytest.raises(UserInputError, match="stddev_group"):
        Discriminator(16, stddev_group=0)


def test_exporting_a_discriminator_with_other_stddev_groups_warns(tmp_path, caplog):
    g_ema = Generator(16, style_dim=16, n_mlp=1, channel_max=16)
    d = Discriminator(16, channel_max=16, stddev_group=8)
    with caplog.at_level("WARNING", logger="ganedit.models.stylegan2.convert"):
        export_rosinality_checkpoint(tmp_path / "a.pt", g_ema, d=Discriminator(16, channel_max=16))
        assert not caplog.records
        export_rosinality_checkpoint(tmp_path / "b.pt", g_ema, d=d)
    assert "groups of 8" in caplog.text


def test_generator_gradients_flow():
    g = Generator(8, **TINY)
    g(torch.randn(2, 16), noise_mode="random").square().mean().backward()
    assert g.style[1].weight.grad is not None
    assert g.input.input.grad is not None
    assert g.to_rgbs[0].conv.modulation.weight.grad is not None


def test_rosinality_key_names():
    g = Generator(16, **TINY)
    keys = set(g.state_dict())
    expected = {
        "style.1.weight",
        "style.1.bias",
        "style.2.weight",
        "input.input",
        "conv1.conv.weight",
        "conv1.conv.modulation.weight",
        "conv1.conv.modulation.bias",
        "conv1.noise.weight",
        "conv1.activate.bias",
        "to_rgb1.conv.weight",
        "to_rgb1.conv.modulation.weight",
        "to_rgb1.conv.modulation.bias",
        "to_rgb1.bias",
        "convs.0.conv.weight",
        "convs.0.conv.blur.kernel",
        "convs.0.conv.modulation.weight",
        "convs.0.noise.weight",
        "convs.0.activate.bias",
        "convs.3.conv.weight",
        "to_rgbs.0.conv.weight",
        "to_rgbs.0.conv.modulation.bias",
        "to_rgbs.0.bias",
        "to_rgbs.1.upsample.kernel",
        "noises.noise_0",
        "noises.noise_4",
        "w_avg",
    }
    assert expected <= keys
    assert not any(
        k.startswith(("style.0.", "to_rgb1.upsample", "convs.1.conv.blur")) for k in keys
    )
    assert sum(k.startswith("noises.") for k in keys) == g.num_layers == 5
    assert g.state_dict()["noises.noise_4"].shape == (1, 1, 16, 16)
    assert g.state_dict()["conv1.conv.weight"].shape == (1, 16, 16, 3, 3)
    assert g.state_dict()["to_rgb1.bias"].shape == (1, 3, 1, 1)

    d_keys = set(Discriminator(16, channel_max=16).state_dict())
    d_expected = {
        "convs.0.0.weight",
        "convs.0.1.bias",
        "convs.1.conv1.0.weight",
        "convs.1.conv1.1.bias",
        "convs.1.conv2.0.kernel",
        "convs.1.conv2.1.weight",
        "convs.1.conv2.2.bias",
        "convs.1.skip.0.kernel",
        "convs.1.skip.1.weight",
        "convs.2.skip.1.weight",
        "final_conv.0.weight",
        "final_conv.1.bias",
        "final_linear.0.weight",
        "final_linear.0.bias",
        "final_linear.1.weight",
        "final_linear.1.bias",
    }
    assert d_expected <= d_keys
    assert not any(
        k.startswith(("convs.3.", "convs.1.skip.1.bias", "convs.1.conv2.1.bias")) for k in d_keys
    )
