"""Progressive GAN's generator as InterFaceGAN's PyTorch port saves it (`pggan_*.pth`).

InterFaceGAN (genforce/interfacegan) converts the official TensorFlow PGGAN pickles into a
plain state dict. Its layout changed once (docs/models.md) and both are read, told apart by
their keys:

- current (`models/pggan_generator_model.py` since d214bc8, 2019-08-14): `lod` (a 0-d
  parameter, 0 for a fully grown network), `layer{j}.conv.weight` [out, in, k, k] and
  `layer{j}.wscale.bias` [out] for j = 0..2k+1 (layer0 the 4x4 dense block: a 4x4 kernel,
  padding 3), and one linear RGB head per level of detail, `output{b}.conv.weight`
  [3, C_b, 1, 1] / `output{b}.wscale.bias` [3] for b = 0..k. At lod 0 the image is the last
  head's: the lower heads are computed and overwritten, so they are checked (shape, finite)
  and then dropped. A nonzero lod is refused (InterFaceGAN would render a lower level of
  detail, upsampled, without PGGAN's blend between levels).
- the "2019 layout" (the first release, 7143965, 2019-08-06, replaced eight days later):
  `layer{j}` for j = 1..2k+2 and only the final head, `output_{R}x{R}.*`; no `lod`.

The network here keeps the 2019 layout's names (a current file is renamed onto them: layer j -> j + 1,
output{k} -> output_RxR), so a state dict loads with `strict=True`; resolution and channels
come from the tensor shapes. InterFaceGAN's fused-scale variant (`layer{j}.weight`
[3, 3, in, out] for an up-convolution; never used by its released PGGAN) is refused.

Every block is: pixel norm over channels, [nearest 2x upsampling], a bias-free convolution
scaled at run time by gain / sqrt(fan_in) (equalised learning rate), a bias, leaky ReLU 0.2.
The first block sees z as a 1x1 map, so its pixel norm is PGGAN's normalisation of z and
its 4x4 kernel with padding 3 is the official dense layer. The RGB output is linear (gain 1).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganedit.errors import UserInputError, expect
from ganedit.models.io import check_state_shapes
from ganedit.models.sources import ZOnlySource, sample_z

_LAYER_KEY = re.compile(r"^layer(\d+)\.conv\.weight$")
_OUTPUT_KEY = re.compile(r"^output_(\d+)x(\d+)\.conv\.weight$")
# The current layout: every layer tensor, the heads' tensors, a fused up-convolution.
_CURRENT_KEY = re.compile(r"^layer(\d+)\.(.+)$")
_CURRENT_HEAD = re.compile(r"^output(\d+)\.(.+)$")
_HEAD_KEY = re.compile(r"^output\d+\.conv\.weight$")
_FUSED_KEY = re.compile(r"^layer\d+\.weight$")


def pixel_norm(x: torch.Tensor) -> torch.Tensor:  # [N, C, ...] -> same shape
    """Each position's channel vector scaled to unit root-mean-square (epsilon 1e-8)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class Bias(nn.Module):
    """Holds a layer's bias under the name PGGAN's and StyleGAN v1's layouts give it
    (`wscale.bias`)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))


class PGGANBlock(nn.Module):
    """pixel norm -> [upsample] -> conv * gain/sqrt(fan_in) + bias -> [leaky ReLU]."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        padding: int = 1,
        upsample: bool = False,
        gain: float = math.sqrt(2.0),
        activate: bool = True,
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.wscale = Bias(out_channels)
        self.scale = gain / math.sqrt(in_channels * kernel_size**2)
        self.upsample = upsample
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, in, H, W] -> [N, out, H', W']
        x = pixel_norm(x)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv(x) * self.scale + self.wscale.bias.view(1, -1, 1, 1)
        return F.leaky_relu(x, 0.2) if self.activate else x

    def extra_repr(self) -> str:
        return f"upsample={self.upsample}, activate={self.activate}"


class PGGANGenerator(nn.Module):
    """z [N, z_dim] -> images [N, 3, R, R] (about [-1, 1], not clamped).

    Args:
        channels: [z_dim, C_4, C_8, ..., C_R], the input width then the feature channels of
            each resolution from 4 px to R px (InterFaceGAN's 1024 px model: 512 x 6, 256, 128,
            64, 32, 16).
    """

    def __init__(self, channels: Sequence[int]):
        super().__init__()
        channels = [int(c) for c in channels]
        expect(
            len(channels) >= 2 and all(c > 0 for c in channels),
            "channels [z_dim, C_4, ..., C_R] (positive, at least two)",
            channels,
        )
        self.config = {"channels": channels}
        self.z_dim = channels[0]
        self.img_resolution = 2 ** (len(channels))
        self.layer1 = PGGANBlock(channels[0], channels[1], kernel_size=4, padding=3)
        self.layer2 = PGGANBlock(channels[1], channels[1])
        for i in range(2, len(channels)):
            self.add_module(
                f"layer{2 * i - 1}", PGGANBlock(channels[i - 1], channels[i], upsample=True)
            )
            self.add_module(f"layer{2 * i}", PGGANBlock(channels[i], channels[i]))
        self.num_layers = 2 * (len(channels) - 1)
        r = self.img_resolution
        self.add_module(
            f"output_{r}x{r}",
            PGGANBlock(channels[-1], 3, kernel_size=1, padding=0, gain=1.0, activate=False),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [N, z_dim] -> [N, 3, R, R]
        expect(
            z.ndim == 2 and z.shape[1] == self.z_dim,
            f"latents of shape [N, {self.z_dim}]",
            tuple(z.shape),
        )
        x = z[:, :, None, None]
        for j in range(1, self.num_layers + 1):
            x = getattr(self, f"layer{j}")(x)
        r = self.img_resolution
        return getattr(self, f"output_{r}x{r}")(x)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, resolution={self.img_resolution}"


def pggan_layout(state: dict) -> str | None:
    """Which InterFaceGAN PGGAN layout a state dict's keys are in: "current" (`layer0`,
    `output{b}` heads, `lod`), "2019" (`layer1`, one `output_RxR` head) or None."""
    if "layer0.conv.weight" in state or "lod" in state or any(_HEAD_KEY.match(k) for k in state):
        return "current"
    if "layer1.conv.weight" in state and any(_OUTPUT_KEY.match(k) for k in state):
        return "2019"
    return None


def is_pggan_state(state: dict) -> bool:
    """Whether a state dict has the keys of InterFaceGAN's PGGAN, in either layout."""
    return pggan_layout(state) is not None


def infer_pggan_channels(state: dict) -> list[int]:
    """[z_dim, C_4, ..., C_R] from an InterFaceGAN PGGAN state dict's shapes (2019 layout).

    Raises:
        UserInputError: the layers are not 2(log2(R) - 1) convolutions chained by their
        channel counts, ending in the `output_RxR` layer.
    """
    layers = sorted(int(m.group(1)) for k in state if (m := _LAYER_KEY.match(k)))
    outputs = [m for k in state if (m := _OUTPUT_KEY.match(k))]
    n = len(layers)
    expect(
        n >= 2 and n % 2 == 0 and layers == list(range(1, n + 1)) and len(outputs) == 1,
        "PGGAN layers layer1..layer2k (k >= 1) and one output_RxR layer",
        f"layers {layers[:4]}...{layers[-2:]}, {len(outputs)} output layers",
    )
    shapes = [tuple(state[f"layer{j}.conv.weight"].shape) for j in layers]
    expect(all(len(s) == 4 for s in shapes), "4-d PGGAN conv weights", shapes)
    first = state["layer1.conv.weight"]
    expect(
        tuple(first.shape[2:]) == (4, 4),
        "layer1.conv.weight of shape [C, z_dim, 4, 4]",
        tuple(first.shape),
    )
    channels = [int(first.shape[1])] + [
        int(state[f"layer{2 * i}.conv.weight"].shape[0]) for i in range(1, n // 2 + 1)
    ]
    r = 2 ** (n // 2 + 1)
    name = outputs[0].group(0)
    expect(name == f"output_{r}x{r}.conv.weight", f"output_{r}x{r} for {n} layers", name)
    return channels


def current_layout_shapes(channels: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Every tensor of InterFaceGAN's current PGGAN layout for channels [z_dim, C_4, ..., C_R],
    with its shape (`lod` aside, which is checked on its own)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for b in range(1, len(channels)):  # block b: 4 * 2^(b-1) px, layers 2b-2 and 2b-1
        c_in, c = channels[b - 1], channels[b]
        k = 4 if b == 1 else 3
        shapes[f"layer{2 * b - 2}.conv.weight"] = (c, c_in, k, k)
        shapes[f"layer{2 * b - 2}.wscale.bias"] = (c,)
        shapes[f"layer{2 * b - 1}.conv.weight"] = (c, c, 3, 3)
        shapes[f"layer{2 * b - 1}.wscale.bias"] = (c,)
        shapes[f"output{b - 1}.conv.weight"] = (3, c, 1, 1)
        shapes[f"output{b - 1}.wscale.bias"] = (3,)
    return shapes


def from_current_layout(state: dict) -> dict:
    """A current-layout InterFaceGAN PGGAN state dict under the 2019 layout's names (layer j ->
    j + 1, the last head -> output_RxR), after checking every tensor in the file's own names;
    `lod` must be 0 and the lower heads, unused at lod 0, are dropped.

    Raises:
        UserInputError: a nonzero or malformed lod, a fused up-convolution, layers not
        numbered 0..2k+1, or any missing, extra or misshapen tensor.
    """
    _check_lod(state.get("lod"))
    state = {k: v for k, v in state.items() if k != "lod"}
    channels = _current_channels(state)
    found = {k: (str(v.dtype), tuple(v.shape)) for k, v in state.items()}
    check_state_shapes(
        current_layout_shapes(channels), found, f"an InterFaceGAN PGGAN with channels {channels}"
    )
    last, r = len(channels) - 2, 2 ** len(channels)
    renamed = {}
    for key, value in state.items():
        if m := _CURRENT_KEY.match(key):
            renamed[f"layer{int(m.group(1)) + 1}.{m.group(2)}"] = value
        elif (m := _CURRENT_HEAD.match(key)) and int(m.group(1)) == last:
            renamed[f"output_{r}x{r}.{m.group(2)}"] = value
    return renamed


def _check_lod(lod: torch.Tensor | None) -> None:
    """A file without `lod` is read as fully grown (InterFaceGAN's own default, 0)."""
    if lod is None:
        return
    expect(lod.numel() == 1, "lod as one number (a 0-d tensor)", tuple(lod.shape))
    value = float(lod.reshape(()))
    if value != 0:
        raise UserInputError(
            f"expected a fully grown PGGAN (lod 0, the image of its last level of detail), "
            f"received lod {value:g} (a network still growing or fading in)"
        )


def _current_channels(state: dict) -> list[int]:
    """[z_dim, C_4, ..., C_R] from a current-layout state dict (checked afterwards)."""
    fused = sorted(k for k in state if _FUSED_KEY.match(k))
    if fused:
        raise UserInputError(
            "expected PGGAN up-convolutions as layer{j}.conv.weight (InterFaceGAN's "
            f"fused_scale=False, as in its released model), received {fused[0]} (fused_scale)"
        )
    layers = sorted({int(m.group(1)) for k in state if (m := _CURRENT_KEY.match(k))})
    n = len(layers)
    if not (n >= 2 and n % 2 == 0 and layers == list(range(n))):
        gaps = sorted(set(range(max(layers, default=-1) + 1)) - set(layers))
        shown = layers if n <= 8 else [*layers[:4], "...", *layers[-2:]]
        raise UserInputError(
            "expected PGGAN layers layer0..layer{2k+1} (two per level of detail), received "
            f"layers {shown}" + (f" (no layer{gaps[0]})" if gaps else "")
        )
    z = state.get("layer0.conv.weight")
    ok = z is not None and z.ndim == 4 and z.shape[1] > 0
    expect(
        ok,
        "layer0.conv.weight as a 4-d conv weight [C, z_dim, 4, 4]",
        "none" if z is None else tuple(z.shape),
    )
    return [int(z.shape[1])] + [_width(state, j) for j in range(1, n, 2)]


def _width(state: dict, j: int) -> int:
    """Layer j's output channels, from its bias or else its conv weight (a missing or
    misshapen one is then named by the shape check)."""
    for key, ndim in ((f"layer{j}.wscale.bias", 1), (f"layer{j}.conv.weight", 4)):
        tensor = state.get(key)
        if tensor is not None and tensor.ndim == ndim and tensor.shape[0] > 0:
            return int(tensor.shape[0])
    received = {k: tuple(v.shape) for k, v in state.items() if k.startswith(f"layer{j}.")}
    raise UserInputError(
        f"expected layer{j}'s bias [C] or conv weight [C, C, 3, 3], received {received}"
    )


def pggan_from_state(state: dict) -> PGGANGenerator:
    """An InterFaceGAN PGGAN generator (eval mode, CPU) from its state dict of tensors, in
    either layout."""
    layout = pggan_layout(state)
    expect(layout is not None, "InterFaceGAN PGGAN keys", sorted(state)[:4])
    if layout == "current":
        state = from_current_layout(state)
    g = PGGANGenerator(infer_pggan_channels(state))
    load_strict(g, state, f"an InterFaceGAN PGGAN state dict with channels {g.config['channels']}")
    return g.eval()


def load_strict(model: nn.Module, state: dict, what: str) -> None:
    """`load_state_dict(strict=True)`, its failure (missing, unexpected or misshapen tensors)
    as one line."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split()).removeprefix("Error(s) in loading state_dict for ")
        raise UserInputError(
            f"expected {what}, received one that does not load ({detail[:300]})"
        ) from None


def sphere_z(n: int, z_dim: int, seed: int, start: int = 0) -> torch.Tensor:
    """z [n, z_dim] on the sphere of radius sqrt(z_dim), as InterFaceGAN draws z for PGGAN
    and StyleGAN (standard normal, rescaled); row i depends only on (seed, start + i).
    Both generators pixel-normalise z first, so the rescaling changes no image: it makes the
    codes a bank stores match InterFaceGAN's `z.npy`."""
    z = sample_z(n, z_dim, seed, start)
    return z * (math.sqrt(z_dim) / z.norm(dim=1, keepdim=True).clamp_min(1e-12))


@dataclass(eq=False)
class PGGANSource(ZOnlySource):
    """InterFaceGAN's PGGAN as a source: z only (no w space, so no truncation)."""

    def sample_z(self, n: int, seed: int, start: int = 0) -> torch.Tensor:
        return sphere_z(n, self.z_dim, seed, start)
