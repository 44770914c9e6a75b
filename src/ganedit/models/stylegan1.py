"""StyleGAN (v1) in the layout of InterFaceGAN's PyTorch port (`stylegan_*.pth`), as a source.

InterFaceGAN (genforce/interfacegan) converts the official TensorFlow StyleGAN pickles
(`stylegan_ffhq`, `stylegan_celebahq`, 1024 px) into a plain state dict. Its names are kept
here so that state dict loads with `strict=True`; sizes come from the tensor shapes:

- `mapping.dense{i}.linear.weight` [out, in], `.wscale.bias` [out]: 8 dense layers after a
  pixel norm of z, each leaky ReLU 0.2, weights scaled by sqrt(2)/sqrt(in) * 0.01 and biases
  by 0.01 at run time (the mapping's learning-rate multiplier, which cannot be read from
  the weights; StyleGAN always trains with 0.01).
- `truncation.w_avg` [w_dim]: the tracked mean w. InterFaceGAN's file has no
  `truncation.truncation` (it rebuilds it from its settings); one that has it is accepted
  and ignored: psi and the layer cutoff are the source's.
- `synthesis.layer{i}` for i = 0..L-1 (L = 2 log2(R) - 2 style layers): layer 0 starts from
  `first_layer` [1, C, 4, 4]; an even i > 0 doubles the resolution, either by nearest
  upsampling and `conv.weight` [out, in, 3, 3] or (from 128 px in the official models) by
  a transposed convolution of `weight` [3, 3, in, out] ("fused scale"), then a 3x3 blur
  (`blur.kernel`); an odd i is a 3x3 `conv.weight`. Each ends with its `epilogue`: per-channel
  noise (`apply_noise.weight` times the fixed map `apply_noise.noise` [1, 1, r, r]), `bias`,
  leaky ReLU 0.2, instance norm, then the style: `style_mod.dense` maps w_i to a scale and a
  shift per channel, x * (scale + 1) + shift.
- `synthesis.output{k}.conv.weight` [3, C, 1, 1] / `.bias` [3]: one RGB layer per
  resolution; only the last one draws the image. `synthesis.lod` must be 0 (fully grown).

Truncation is InterFaceGAN's (and StyleGAN's): w repeated over the L layers, and the first
`truncation_cutoff` layers (8) moved to w_avg + psi (w - w_avg).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganedit.errors import UserInputError, expect
from ganedit.models.pggan import Bias, load_strict, pixel_norm, sphere_z
from ganedit.models.sources import _MappedSource, check_truncation

SQRT2 = math.sqrt(2.0)
MAPPING_LR = 0.01
DEFAULT_CUTOFF = 8  # InterFaceGAN's STYLEGAN_TRUNCATION_LAYERS
NOISE_MODES = ("const", "random", "none")
_DENSE_KEY = re.compile(r"^mapping\.dense(\d+)\.linear\.weight$")
_LAYER_KEY = re.compile(r"^synthesis\.layer(\d+)\.epilogue\.bias$")


# ------------------------------------------------------------------------------------------
# Layers


class Dense(nn.Module):
    """x @ W.T * gain/sqrt(in) * lr + b * lr, then leaky ReLU 0.2 (or linear)."""

    def __init__(self, in_dim: int, out_dim: int, gain: float, lr: float, activate: bool):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim, bias=False)
        self.wscale = Bias(out_dim)
        self.scale, self.lr, self.activate = gain / math.sqrt(in_dim) * lr, lr, activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, in] -> [N, out]
        x = self.linear(x) * self.scale + self.wscale.bias * self.lr
        return F.leaky_relu(x, 0.2) if self.activate else x


class Mapping(nn.Module):
    """z [N, z_dim] -> w [N, w_dim]: pixel norm, then `dims`-chained dense layers."""

    def __init__(self, dims: list[int]):
        super().__init__()
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            self.add_module(f"dense{i}", Dense(a, b, SQRT2, MAPPING_LR, activate=True))
        self.num_layers = len(dims) - 1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(z)
        for i in range(self.num_layers):
            x = getattr(self, f"dense{i}")(x)
        return x


class Truncation(nn.Module):
    """Holds the tracked mean w (`w_avg` [w_dim]) under the layout's name."""

    def __init__(self, w_dim: int):
        super().__init__()
        self.register_buffer("w_avg", torch.zeros(w_dim))


class NoiseInput(nn.Module):
    """Per-channel strength (`weight` [C]) of the layer's fixed noise map (`noise`)."""

    def __init__(self, channels: int, resolution: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))
        self.register_buffer("noise", torch.randn(1, 1, resolution, resolution))


class StyleMod(nn.Module):
    """w [N, w_dim] -> per-channel scale and shift of x: x * (scale + 1) + shift."""

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.dense = Dense(w_dim, 2 * channels, gain=1.0, lr=1.0, activate=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.dense(w).view(len(w), 2, -1, 1, 1)
        return x * (style[:, 0] + 1) + style[:, 1]


class Epilogue(nn.Module):
    """noise, bias, leaky ReLU, instance norm, style (AdaIN)."""

    def __init__(self, channels: int, resolution: int, w_dim: int):
        super().__init__()
        self.apply_noise = NoiseInput(channels, resolution)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.style_mod = StyleMod(channels, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        x = x + noise * self.apply_noise.weight.view(1, -1, 1, 1)
        x = F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2)
        x = x - x.mean(dim=(2, 3), keepdim=True)
        x = x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + 1e-8)
        return self.style_mod(x, w)


def blur_kernel(channels: int) -> torch.Tensor:  # [C, 1, 3, 3]
    """StyleGAN's [1, 2, 1] x [1, 2, 1] / 16 filter, one copy per channel (depthwise)."""
    taps = torch.tensor([1.0, 2.0, 1.0])
    k = taps[:, None] * taps[None, :]
    return (k / k.sum()).expand(channels, 1, 3, 3).clone()


class _Blur(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("kernel", blur_kernel(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel, padding=1, groups=x.shape[1])


class StyleLayer(nn.Module):
    """One style layer: "const" (4x4 start), "up" (2x, nearest + conv, then blur), "fused"
    (2x by a transposed conv, then blur) or "conv" (3x3); then the epilogue."""

    def __init__(self, kind: str, c_in: int, c_out: int, resolution: int, w_dim: int):
        super().__init__()
        self.kind = kind
        self.scale = SQRT2 / math.sqrt(c_in * 9)
        if kind == "const":
            self.first_layer = nn.Parameter(torch.ones(1, c_out, 4, 4))
        elif kind == "fused":
            self.weight = nn.Parameter(torch.randn(3, 3, c_in, c_out))
        else:
            self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        if kind in ("up", "fused"):
            self.blur = _Blur(c_out)
        self.epilogue = Epilogue(c_out, resolution, w_dim)

    def forward(self, x: torch.Tensor | None, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        if self.kind == "const":
            x = self.first_layer.expand(len(w), -1, -1, -1)
        elif self.kind == "fused":
            x = F.conv_transpose2d(x, self._fused_kernel(), stride=2, padding=1)
        else:
            if self.kind == "up":
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = self.conv(x) * self.scale
        if self.kind in ("up", "fused"):
            x = self.blur(x)
        return self.epilogue(x, w, noise)

    def _fused_kernel(self) -> torch.Tensor:  # [in, out, 4, 4]
        # Nearest 2x upsampling then a 3x3 conv touches each input pixel with the sum of the
        # kernel taps over a 2x2 window: one 4x4 stride-2 transposed conv does both at once.
        k = F.pad(self.weight * self.scale, (0, 0, 0, 0, 1, 1, 1, 1))
        k = k[1:, 1:] + k[:-1, 1:] + k[1:, :-1] + k[:-1, :-1]
        return k.permute(2, 3, 0, 1)

    def extra_repr(self) -> str:
        return f"kind={self.kind}"


class ToRGB(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, 3, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(3))
        self.scale = 1 / math.sqrt(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> [N, 3, H, W]
        return self.conv(x) * self.scale + self.bias.view(1, -1, 1, 1)


class Synthesis(nn.Module):
    """ws [N, L, w_dim] -> images [N, 3, R, R]."""

    def __init__(self, channels: list[int], fused: list[bool], w_dim: int):
        super().__init__()
        self.lod = nn.Parameter(torch.zeros(()))
        self.num_layers = 2 * len(channels)
        for b, c in enumerate(channels):  # block b: resolution 4 * 2^b, layers 2b and 2b + 1
            res = 4 * 2**b
            kind = "const" if b == 0 else "fused" if fused[b] else "up"
            c_in = c if b == 0 else channels[b - 1]
            self.add_module(f"layer{2 * b}", StyleLayer(kind, c_in, c, res, w_dim))
            self.add_module(f"layer{2 * b + 1}", StyleLayer("conv", c, c, res, w_dim))
            self.add_module(f"output{b}", ToRGB(c))

    def layers(self) -> list[StyleLayer]:
        return [getattr(self, f"layer{i}") for i in range(self.num_layers)]

    def forward(self, ws: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        x = None
        for i, layer in enumerate(self.layers()):
            x = layer(x, ws[:, i], noise[i])
        return getattr(self, f"output{self.num_layers // 2 - 1}")(x)


# ------------------------------------------------------------------------------------------
# The generator


class StyleGAN1Generator(nn.Module):
    """StyleGAN v1: `mapping` z [N, z_dim] -> w [N, w_dim]; `truncate` w -> ws [N, L, w_dim];
    `synthesis` ws -> images [N, 3, R, R] (about [-1, 1], not clamped).

    Args:
        mapping_dims: [z_dim, hidden..., w_dim], the widths through the dense layers.
        channels: feature channels per resolution, 4 px to R px.
        fused: per resolution, whether its upsampling layer is a transposed conv (index 0,
            the 4 px start, is ignored).
    """

    def __init__(self, mapping_dims: list[int], channels: list[int], fused: list[bool]):
        super().__init__()
        expect(len(mapping_dims) >= 2, "at least one mapping layer", mapping_dims)
        expect(len(channels) == len(fused) >= 1, "one fused flag per resolution", fused)
        self.config = {"mapping_dims": mapping_dims, "channels": channels, "fused": fused}
        self.z_dim, self.w_dim = mapping_dims[0], mapping_dims[-1]
        self.img_resolution = 4 * 2 ** (len(channels) - 1)
        self.num_ws = 2 * len(channels)
        self.mapping = Mapping(mapping_dims)
        self.truncation = Truncation(self.w_dim)
        self.synthesis = Synthesis(channels, fused, self.w_dim)

    @property
    def w_avg(self) -> torch.Tensor:  # [w_dim]
        return self.truncation.w_avg

    def truncate(self, w: torch.Tensor, psi: float, cutoff: int) -> torch.Tensor:
        """w [N, w_dim] -> ws [N, L, w_dim], layers below `cutoff` pulled towards w_avg."""
        ws = w[:, None, :].expand(-1, self.num_ws, -1)
        if psi == 1 or cutoff <= 0:
            return ws
        coarse = (torch.arange(self.num_ws, device=w.device) < cutoff)[None, :, None]
        avg = self.w_avg.to(w.dtype)
        return torch.where(coarse, avg + psi * (ws - avg), ws)

    def stored_noise(self) -> list[torch.Tensor]:  # L maps [1, 1, r, r]
        return [layer.epilogue.apply_noise.noise for layer in self.synthesis.layers()]

    def make_noise(
        self, n: int = 1, mode: str = "const", generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Fresh noise maps [n, 1, r, r] per layer: the stored ones ("const"), standard
        normal from `generator` ("random") or zeros ("none")."""
        expect(mode in NOISE_MODES, f"a noise mode in {NOISE_MODES}", mode)
        stored = self.stored_noise()
        if mode == "const":
            return [m.expand(n, -1, -1, -1).clone() for m in stored]
        if mode == "none":
            return [m.new_zeros(n, *m.shape[1:]) for m in stored]
        return [torch.randn(n, *m.shape[1:], generator=generator, device=m.device) for m in stored]

    def render(self, ws: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """ws [N, L, w_dim] -> images [N, 3, R, R]; `noise`: L maps [1 or N, 1, r, r]
        (default: the stored ones, as InterFaceGAN renders)."""
        expect(
            ws.ndim == 3 and tuple(ws.shape[1:]) == (self.num_ws, self.w_dim),
            f"ws of shape [N, {self.num_ws}, {self.w_dim}]",
            tuple(ws.shape),
        )
        noise = self.stored_noise() if noise is None else self._check_noise(noise, len(ws))
        return self.synthesis(ws, noise)

    def _check_noise(self, noise: list[torch.Tensor], n: int) -> list[torch.Tensor]:
        want = [tuple(m.shape[1:]) for m in self.stored_noise()]
        got = [tuple(m.shape) for m in noise]
        ok = len(got) == len(want) and all(
            g[0] in (1, n) and g[1:] == s for g, s in zip(got, want, strict=True)
        )
        expect(ok, f"{len(want)} noise maps of shapes [1 or {n}, *{want}]", got)
        return list(noise)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, w_dim={self.w_dim}, resolution={self.img_resolution}"


# ------------------------------------------------------------------------------------------
# Reading InterFaceGAN's state dict


def is_stylegan1_state(state: dict) -> bool:
    """Whether a state dict has the keys of InterFaceGAN's StyleGAN."""
    return "synthesis.layer0.first_layer" in state and "mapping.dense0.linear.weight" in state


def _indices(state: dict, pattern: re.Pattern) -> list[int]:
    return sorted(int(m.group(1)) for k in state if (m := pattern.match(k)))


def infer_stylegan1_config(state: dict) -> dict:
    """`StyleGAN1Generator` kwargs from an InterFaceGAN StyleGAN state dict's shapes.

    Raises:
        UserInputError: the dense or style layers are not numbered 0..n-1, or the number of
        style layers is not 2 per resolution from 4 px.
    """
    dense, layers = _indices(state, _DENSE_KEY), _indices(state, _LAYER_KEY)
    expect(
        bool(dense) and dense == list(range(len(dense))),
        "mapping layers mapping.dense0..dense{n-1}",
        dense,
    )
    n = len(layers)
    expect(
        n >= 2 and n % 2 == 0 and layers == list(range(n)),
        "style layers synthesis.layer0..layer{2k-1}",
        layers,
    )
    weights = [state[f"mapping.dense{i}.linear.weight"] for i in dense]
    expect(all(w.ndim == 2 for w in weights), "2-d mapping weights", [w.ndim for w in weights])
    mapping_dims = [int(weights[0].shape[1])] + [int(w.shape[0]) for w in weights]
    channels, fused = [], []
    for b in range(n // 2):
        conv = state.get(f"synthesis.layer{2 * b + 1}.conv.weight")
        expect(
            conv is not None and conv.ndim == 4,
            f"synthesis.layer{2 * b + 1}.conv.weight [C, C, 3, 3]",
            None if conv is None else tuple(conv.shape),
        )
        channels.append(int(conv.shape[0]))
        fused.append(f"synthesis.layer{2 * b}.weight" in state)
    return {"mapping_dims": mapping_dims, "channels": channels, "fused": fused}


def stylegan1_from_state(state: dict) -> StyleGAN1Generator:
    """An InterFaceGAN StyleGAN generator (eval mode, CPU) from its state dict of tensors."""
    state = {k: v for k, v in state.items() if k != "truncation.truncation"}
    config = infer_stylegan1_config(state)
    g = StyleGAN1Generator(**config)
    load_strict(g, state, f"an InterFaceGAN StyleGAN state dict matching {config}")
    lod = float(g.synthesis.lod.detach())
    if lod != 0:
        raise UserInputError(
            f"expected a fully grown StyleGAN (synthesis.lod 0), received lod {lod:g}"
        )
    return g.eval()


# ------------------------------------------------------------------------------------------
# As a generator source


@dataclass(eq=False)
class StyleGAN1Source(_MappedSource):
    """InterFaceGAN's StyleGAN as a source: spaces z, w (before truncation, InterFaceGAN's
    `w.npy`) and ws (after it, InterFaceGAN's `wp.npy`); `synthesize(to_w(z), "w")` renders
    what `synthesize(z, "z")` does."""

    generator: StyleGAN1Generator
    name: str
    truncation_psi: float = 1.0
    truncation_cutoff: int = DEFAULT_CUTOFF
    noise_mode: str = "const"
    spaces: tuple[str, ...] = ("z", "w", "ws")
    weights_sha256: str | None = None

    def __post_init__(self):
        check_truncation(self.truncation_psi)
        expect(self.noise_mode in NOISE_MODES, f"a noise mode in {NOISE_MODES}", self.noise_mode)

    @property
    def num_ws(self) -> int:
        return self.generator.num_ws

    def sample_z(self, n: int, seed: int, start: int = 0) -> torch.Tensor:
        return sphere_z(n, self.z_dim, seed, start)

    @torch.no_grad()
    def to_w(self, z: torch.Tensor) -> torch.Tensor:  # [N, z_dim] -> [N, w_dim]
        """The mapping's w, before truncation (which `w`'s synthesis applies, as InterFaceGAN
        does), so `w` reproduces the image."""
        self.check_space("z")
        return self.generator.mapping(torch.as_tensor(z).to(self.device))

    def _to_ws(self, latents: torch.Tensor, space: str) -> torch.Tensor:
        # With autograd as the caller has it: `render` differentiates through it.
        self.check_space(space)
        latents = torch.as_tensor(latents).to(self.device)
        if space == "ws":
            return latents
        w = self.generator.mapping(latents) if space == "z" else latents
        return self.generator.truncate(w, self.truncation_psi, self.truncation_cutoff)

    def _render(
        self,
        latents: torch.Tensor,
        space: str,
        noise: list[torch.Tensor] | None = None,
        modes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        ws = self._to_ws(latents, space)
        if noise is None and self.noise_mode != "const":
            noise = self.generator.make_noise(len(ws), self.noise_mode)
        return self.generator.render(ws, noise)
