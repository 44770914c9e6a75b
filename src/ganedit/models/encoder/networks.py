"""The e4e encoder (encoder4editing, Tov et al. 2021) in pure PyTorch, read top to bottom.

An image becomes a W+ code as one base code plus per-layer offsets:

    ws[:, i] = w0 + delta_i + latent_avg      (delta_0 = 0; delta_i = 0 for i > progressive_stage)

so a code starts in W (every row equal) and leaves it only by the offsets switched on so far,
which keeps it editable. Parameter and buffer names follow the official
`models/encoders/psp_encoders.py` (`Encoder4Editing`) and `helpers.py` (the IR-SE units), so
the `encoder.*` weights of an official checkpoint load with `strict=True`; `latent_avg` is
ours (the official code keeps it beside the encoder, as the checkpoint's `latent_avg`).

Layout and shapes (official sizes, 256 px input; other configs scale the same way):

    input_layer  conv3x3 3 -> C0, BN, PReLU                              [N,  64, 256, 256]
    body         IR-SE units in 4 stages; each stage's first unit has stride 2
                 c1 = end of stage 2                                     [N, 128,  64,  64]
                 c2 = end of stage 3                                     [N, 256,  32,  32]
                 c3 = end of stage 4                                     [N, 512,  16,  16]
    FPN          p2 = up(c3) + latlayer1(c2)                             [N, 512,  32,  32]
                 p1 = up(p2) + latlayer2(c1)                             [N, 512,  64,  64]
    styles[i]    stride-2 3x3 convs + LeakyReLU down to 1x1, EqualLinear [N, w_dim]
                 rows < coarse_ind read c3, rows < middle_ind p2, the rest p1
    w0           styles[0](c3); delta_i = styles[i](...) for i = 1..progressive_stage

Weights are initialised by torch's default initialisers, which draw from the global RNG:
seed it (or build under `torch.random.fork_rng()`) for reproducible weights. The offset
heads' final linear layers start at exactly zero, so a freshly built encoder's offsets are
zero and switching a stage on does not move the codes; loaded weights replace this.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganedit.errors import expect
from ganedit.models.stylegan2.networks import EqualLinear

log = logging.getLogger(__name__)

# The official architecture: IR-SE50 at 256 px for an 18-style (1024 px) StyleGAN2.
OFFICIAL_CONFIG = {
    "image_size": 256,
    "w_dim": 512,
    "num_ws": 18,
    "stage_units": [3, 4, 14, 3],
    "stage_channels": [64, 128, 256, 512],
    "style_channels": 512,
    "coarse_ind": 3,
    "middle_ind": 7,
    "se_reduction": 16,
    "start_from_latent_avg": True,
}


# ------------------------------------------------------------------------------------------
# Backbone: IR-SE bottleneck units (ArcFace's IR-SE50 layout)


class SqueezeExcite(nn.Module):
    """Channel gates from the global average: x * sigmoid(fc2(relu(fc1(mean(x)))))."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> same
        gate = self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        return x * torch.sigmoid(gate)


class Subsample(nn.Module):
    """Every `stride`-th pixel: the parameter-free shortcut of a unit that keeps its width
    (the official code writes it as a 1x1 max pool, which is the same operation)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.stride == 1 else x[:, :, :: self.stride, :: self.stride]


class BottleneckIRSE(nn.Module):
    """Pre-activation residual unit: BN, conv3x3, PReLU, conv3x3 (strided), BN, SE; plus a
    shortcut (subsampling, or a strided 1x1 conv + BN where the width changes)."""

    def __init__(self, in_channels: int, depth: int, stride: int, se_reduction: int):
        super().__init__()
        if in_channels == depth:
            self.shortcut_layer = Subsample(stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SqueezeExcite(depth, se_reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, Cin, H, W] -> [N, D, H/s, W/s]
        return self.res_layer(x) + self.shortcut_layer(x)


# ------------------------------------------------------------------------------------------
# Heads


class MapToStyle(nn.Module):
    """A feature map [N, C, S, S] to one style vector [N, w_dim] ("map2style").

    log2(S) stride-2 3x3 convs (each followed by LeakyReLU, slope 0.01 as in the official
    code) reduce S to 1; an equalised linear layer maps the channels to w_dim."""

    def __init__(self, in_channels: int, channels: int, spatial: int, w_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        for k in range(max(1, int(math.log2(spatial)))):
            layers += [nn.Conv2d(in_channels if k == 0 else channels, channels, 3, 2, 1)]
            layers += [nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(channels, w_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, S, S] -> [N, w_dim]
        return self.linear(self.convs(x).flatten(1))


def upsample_add(top: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
    """FPN merge: `top` resized bilinearly (align_corners=True, as the official code) to the
    lateral map's size, plus the lateral map."""
    size = lateral.shape[-2:]
    return F.interpolate(top, size=size, mode="bilinear", align_corners=True) + lateral


# ------------------------------------------------------------------------------------------
# The encoder


class Encoder4Editing(nn.Module):
    """e4e encoder: images [N, 3, H, W] in [-1, 1] -> ws [N, num_ws, w_dim].

    The constructor arguments are the config (JSON types; `OFFICIAL_CONFIG` is the official
    IR-SE50 encoder). The defaults are a small encoder for ganedit's 64 px `world64`
    generator (w_dim 128, 10 styles) that runs fast on a CPU.

    Args:
        image_size: the input size the backbone runs at; other sizes are resized inside
            `forward` (bilinear with antialiasing, like the PIL resize e4e's data loading does
            to reach 256 px). A power of two in [32, 1024].
        w_dim, num_ws: the generator's latent width and number of style rows.
        stage_units: IR-SE units in each of the 4 stages.
        stage_channels: the width of each stage (the input layer has the first one).
        style_channels: the width of the map2style convs (the official encoder: w_dim).
        coarse_ind, middle_ind: rows < coarse_ind read c3, rows < middle_ind p2, others p1.
        se_reduction: the squeeze-excitation bottleneck divides each width by this.
        start_from_latent_avg: add the `latent_avg` buffer [w_dim] to every code.

    `progressive_stage` (0 .. num_ws - 1, default num_ws - 1: every offset on) is training
    state, not config. Call `.eval()` for inference: the backbone has batch norms.
    """

    def __init__(
        self,
        image_size: int = 64,
        w_dim: int = 128,
        num_ws: int = 10,
        stage_units: Sequence[int] = (1, 2, 3, 1),
        stage_channels: Sequence[int] = (16, 32, 64, 96),
        style_channels: int = 96,
        coarse_ind: int = 3,
        middle_ind: int = 7,
        se_reduction: int = 16,
        start_from_latent_avg: bool = True,
    ):
        super().__init__()
        _check_config(locals())
        self.config = {
            "image_size": image_size,
            "w_dim": w_dim,
            "num_ws": num_ws,
            "stage_units": list(stage_units),
            "stage_channels": list(stage_channels),
            "style_channels": style_channels,
            "coarse_ind": coarse_ind,
            "middle_ind": middle_ind,
            "se_reduction": se_reduction,
            "start_from_latent_avg": start_from_latent_avg,
        }
        self.image_size, self.w_dim, self.num_ws = image_size, w_dim, num_ws
        self.coarse_ind, self.middle_ind = coarse_ind, middle_ind
        self.start_from_latent_avg = start_from_latent_avg
        self._build_backbone(list(stage_units), list(stage_channels), se_reduction)
        self._build_heads(list(stage_channels), style_channels)
        self.register_buffer("latent_avg", torch.zeros(w_dim))
        self._stage = num_ws - 1

    def _build_backbone(self, units: list[int], channels: list[int], se_reduction: int) -> None:
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, channels[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.PReLU(channels[0]),
        )
        body: list[nn.Module] = []
        in_ch = channels[0]
        for count, depth in zip(units, channels, strict=True):
            for k in range(count):
                body.append(BottleneckIRSE(in_ch, depth, 2 if k == 0 else 1, se_reduction))
                in_ch = depth
        self.body = nn.Sequential(*body)
        ends = [sum(units[: k + 1]) - 1 for k in range(4)]
        self._taps = tuple(ends[1:])  # body indices whose outputs are c1, c2, c3

    def _build_heads(self, channels: list[int], style_channels: int) -> None:
        width, c3_size = channels[3], self.image_size // 16
        self.styles = nn.ModuleList()
        for i in range(self.num_ws):
            spatial = c3_size * 2 ** self._level(i)
            self.styles.append(MapToStyle(width, style_channels, spatial, self.w_dim))
        self.latlayer1 = nn.Conv2d(channels[2], width, 1)
        self.latlayer2 = nn.Conv2d(channels[1], width, 1)
        with torch.no_grad():  # offsets start at exactly zero (see the module docstring)
            for head in self.styles[1:]:
                head.linear.weight.zero_()
                head.linear.bias.zero_()

    def _level(self, row: int) -> int:
        """The feature map style row `row` reads: 0 c3 (coarse), 1 p2 (middle), 2 p1 (fine)."""
        return 0 if row < self.coarse_ind else 1 if row < self.middle_ind else 2

    @property
    def progressive_stage(self) -> int:
        """Offsets delta_1 .. delta_stage are on; 0 is pure W, num_ws - 1 all of W+."""
        return self._stage

    @progressive_stage.setter
    def progressive_stage(self, stage: int) -> None:
        ok = isinstance(stage, int) and not isinstance(stage, bool) and 0 <= stage < self.num_ws
        expect(ok, f"a progressive stage in [0, {self.num_ws - 1}]", stage)
        self._stage = stage

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images [N, 3, H, W] in [-1, 1] -> ws [N, num_ws, w_dim]."""
        return self.compose(*self.w0_and_deltas(images))

    def w0_and_deltas(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images [N, 3, H, W] -> (w0 [N, w_dim], deltas [N, num_ws - 1, w_dim]).

        w0 is the base code before `latent_avg`; deltas[:, i - 1] is delta_i, exactly 0 (and
        not computed) for i > progressive_stage. ||delta_i|| is e4e's delta regulariser."""
        c1, c2, c3 = self.features(images)
        w0 = self.styles[0](c3)  # [N, w_dim]
        levels, rows = [c3], []  # c3, p2, p1; the FPN levels are computed on first use
        for i in range(1, self._stage + 1):
            level = self._level(i)
            while len(levels) <= level:
                lateral = self.latlayer1(c2) if len(levels) == 1 else self.latlayer2(c1)
                levels.append(upsample_add(levels[-1], lateral))  # [N, C3, 2S, 2S], [.., 4S, 4S]
            rows.append(self.styles[i](levels[level]))
        off = w0.new_zeros(w0.shape[0], self.num_ws - 1 - len(rows), self.w_dim)
        deltas = torch.cat([torch.stack(rows, dim=1), off], dim=1) if rows else off
        return w0, deltas

    def compose(self, w0: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
        """(w0 [N, w_dim], deltas [N, num_ws - 1, w_dim]) -> ws [N, num_ws, w_dim].

        The official order of sums: (w0 + delta_i) + latent_avg, so at stage 0 every row is
        the same number."""
        zero = deltas.new_zeros(deltas.shape[0], 1, self.w_dim)
        ws = w0[:, None, :] + torch.cat([zero, deltas], dim=1)
        return ws + self.latent_avg if self.start_from_latent_avg else ws

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images [N, 3, H, W] -> (c1, c2, c3): the ends of stages 2, 3 and 4, at 1/4, 1/8
        and 1/16 of `image_size`."""
        x = self.input_layer(self._fit(images))
        taps = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in self._taps:
                taps.append(x)
        return taps[0], taps[1], taps[2]

    def _fit(self, images: torch.Tensor) -> torch.Tensor:
        expect(
            images.ndim == 4 and images.shape[1] == 3 and images.is_floating_point(),
            "float images of shape [N, 3, H, W]",
            f"{images.dtype} {list(images.shape)}",
        )
        if tuple(images.shape[-2:]) == (self.image_size, self.image_size):
            return images
        size = (self.image_size, self.image_size)
        return F.interpolate(images, size=size, mode="bilinear", antialias=True)


def _check_config(args: dict) -> None:
    """UserInputError for a config that cannot build (single values are also checked by the
    registry's schema; these are the relations between them)."""
    for name in ("image_size", "w_dim", "num_ws", "style_channels", "se_reduction"):
        value = args[name]
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        expect(ok, f"{name} as a positive integer", value)
    size = args["image_size"]
    ok = 32 <= size <= 1024 and size & (size - 1) == 0
    expect(ok, "image_size as a power of two in [32, 1024]", size)
    for name in ("stage_units", "stage_channels"):
        value = args[name]
        ok = isinstance(value, Sequence) and len(value) == 4
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
        expect(ok, f"{name} as 4 positive integers", value)
    ok = 1 <= args["coarse_ind"] <= args["middle_ind"] <= args["num_ws"]
    expect(ok, "1 <= coarse_ind <= middle_ind <= num_ws", (args["coarse_ind"], args["middle_ind"]))
    smallest = min(args["stage_channels"])
    expect(
        smallest >= args["se_reduction"],
        f"stage_channels of at least se_reduction ({args['se_reduction']})",
        args["stage_channels"],
    )
    flag = args["start_from_latent_avg"]
    expect(isinstance(flag, bool), "start_from_latent_avg as true or false", flag)
