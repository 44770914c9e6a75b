"""Progressive GAN's generator in the layout of InterFaceGAN's PyTorch port (`pggan_*.pth`).

InterFaceGAN (genforce/interfacegan) converts the official TensorFlow PGGAN pickles into a
plain state dict: `layer{j}.conv.weight` [out, in, k, k] and `layer{j}.wscale.bias` [out]
for the convolutions j = 1..2(log2(R) - 1), and `output_{R}x{R}.conv.weight` [3, C, 1, 1] /
`.wscale.bias` [3] for the RGB output. The network here uses the same names so that state
dict loads with `strict=True`; resolution and channels come from the tensor shapes.

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
from ganedit.models.sources import ZOnlySource, sample_z

_LAYER_KEY = re.compile(r"^layer(\d+)\.conv\.weight$")
_OUTPUT_KEY = re.compile(r"^output_(\d+)x(\d+)\.conv\.weight$")


def pixel_norm(x: torch.Tensor) -> torch.Tensor:  # [N, C, ...] -> same shape
    """Each position's channel vector scaled to unit root-mean-square (epsilon 1e-8)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class _Bias(nn.Module):
    """Holds a block's bias under the name the layout gives it (`wscale.bias`)."""

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
        self.wscale = _Bias(out_channels)
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


def is_pggan_state(state: dict) -> bool:
    """Whether a state dict has the keys of InterFaceGAN's PGGAN (`layer1.conv.weight`, an
    `output_RxR` layer)."""
    return "layer1.conv.weight" in state and any(_OUTPUT_KEY.match(k) for k in state)


def infer_pggan_channels(state: dict) -> list[int]:
    """[z_dim, C_4, ..., C_R] from an InterFaceGAN PGGAN state dict's shapes.

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


def pggan_from_state(state: dict) -> PGGANGenerator:
    """An InterFaceGAN PGGAN generator (eval mode, CPU) from its state dict of tensors."""
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
