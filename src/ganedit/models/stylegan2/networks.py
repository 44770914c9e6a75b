"""StyleGAN2 generator and discriminator in pure PyTorch, read top to bottom.

The module goes from primitives (pixel norm, FIR filtering, equalised layers) to the two
models. Parameter and buffer names follow rosinality's `stylegan2-pytorch` `model.py`, so a
rosinality `g_ema`/`g`/`d` state dict loads into these classes with `strict=True`; the
public API uses the NVlabs vocabulary (`z`, `w`, `ws`, `mapping`, `synthesis`,
`truncation_psi`, `noise_mode`).

Nothing here compiles or touches a GPU at import time: the custom CUDA ops of the original
(fused bias + leaky ReLU, upfirdn2d) are replaced by their reference formulations, which run
on any device with ordinary autograd (including the double backward that R1 needs).

Synthesis has two paths (`Generator.synthesis(impl=...)`): the layers' `forward` methods,
rosinality's formulation step by step (the reference), and their `forward_fast` methods,
the same arithmetic arranged for CPU throughput (channels-last tensors, cache-sized chunks
of images, per-sample factors computed once per batch). They agree to float32 rounding, the
tests compare them, and `auto` takes the fast one on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F
from torch import nn

from ganedit.errors import expect
from ganedit.models.modes import ModeLayout

SQRT2 = math.sqrt(2.0)
MODCONV_IMPLS = ("auto", "grouped", "input")
NOISE_MODES = ("const", "random", "none")
SYNTHESIS_IMPLS = ("auto", "reference", "fast")
# The fast synthesis path's chunk: the widest activation of a chunk of images stays within
# this many bytes, so a chunk's layers run in the caches (1 MB L2 per core, 32 MB L3 on the
# 2-core machine measured). Measured at batch 256: 16 to 32 images a chunk fastest for
# world64 (16 channels at 64 px; 8 and 64 were 13-21% slower, 4 was 29% slower), 4 to 8
# images at 64 channels. This budget gives world64 16 and 64 channels 4.
FAST_CHUNK_BYTES = 4 * 2**20


# ----------------------------------------------------------------------------------------
# Primitives


class PixelNorm(nn.Module):
    """Normalise each row to unit root-mean-square (the first step of the mapping network)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C] -> [N, C]
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


def make_kernel(taps: Sequence[float]) -> torch.Tensor:
    """A normalised 2-D FIR kernel: a 1-D tap list becomes its outer product, summing to 1."""
    k = torch.as_tensor(taps, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """Upsample by zero insertion, pad, filter with `kernel` (a true convolution), decimate.

    Args:
        x: images [N, C, H, W].
        kernel: FIR filter [kh, kw], the same for every channel.
        up, down: integer factors applied to both axes.
        pad: (before, after) padding for both axes after upsampling; negative values crop.

    Returns:
        [N, C, (H*up + pad0 + pad1 - kh) // down + 1, (same for W)].
    """
    n, c, h, w = x.shape
    if up > 1:
        # Zero insertion keeps the signal's spectrum and puts images at multiples of the rate;
        # the FIR filter that follows removes them.
        spread = x.new_zeros(n, c, h * up, w * up)
        spread[:, :, ::up, ::up] = x
        x = spread
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    # conv2d is a correlation; flipping makes it the convolution upfirdn2d is defined by.
    weight = kernel.flip([0, 1]).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=c, stride=down)


class Upsample(nn.Module):
    """2x upsampling with an FIR filter (the ToRGB skip path)."""

    def __init__(self, blur_kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        # Zero insertion leaves 1/factor^2 of the energy per pixel; the gain restores it.
        self.register_buffer("kernel", make_kernel(blur_kernel) * factor**2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)

    def forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        """`forward` as one transposed depthwise conv: no zero insertion, no padding copy.

        A stride-`factor` transposed conv is zero insertion followed by a correlation; with
        padding kh - 1 - pad[0] it lines up with upfirdn2d's (pad, then true convolution).
        """
        (before, after), k, f = self.pad, self.kernel.shape[0], self.factor
        out_pad = f + after - before - 1  # makes the output exactly H * f + before + after - k + 1
        if not (k - 1 - before >= 0 and 0 <= out_pad < f):
            return self.forward(x)  # a padding the transposed conv cannot express
        c = x.shape[1]
        weight = self.kernel.to(x.dtype)[None, None].expand(c, 1, k, k).contiguous()
        return F.conv_transpose2d(
            x, weight, stride=f, padding=k - 1 - before, output_padding=out_pad, groups=c
        )


class Downsample(nn.Module):
    """2x downsampling with an FIR anti-aliasing filter."""

    def __init__(self, blur_kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(blur_kernel))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, down=self.factor, pad=self.pad)


class Blur(nn.Module):
    """FIR filtering without rate change, placed next to a strided (transposed) conv."""

    def __init__(
        self, blur_kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1
    ):
        super().__init__()
        kernel = make_kernel(blur_kernel)
        if upsample_factor > 1:
            kernel = kernel * upsample_factor**2
        self.register_buffer("kernel", kernel)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)

    def forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        """`forward` as one depthwise conv with the padding inside it (no padded copy).

        With channels-last input, oneDNN's depthwise kernel runs one vector over the channels
        per pixel, many times faster than the planar layout (measured: 4x4 blur, 16 channels).
        """
        c, (before, after) = x.shape[1], self.pad
        if before != after:
            x, before = F.pad(x, [before, after, before, after]), 0
        weight = self.kernel.flip([0, 1]).to(x.dtype)[None, None].expand(c, 1, *self.kernel.shape)
        return F.conv2d(x, weight.contiguous(), padding=before, groups=c)

    def extra_repr(self) -> str:
        return f"pad={self.pad}"


def fused_leaky_relu(
    x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float = 0.2, scale: float = SQRT2
) -> torch.Tensor:
    """leaky_relu(x + bias) * sqrt(2): the gain keeps the activations' second moment at 1."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    """Per-channel bias followed by a scaled leaky ReLU (name kept for the `activate.bias` key).

    `clamp` limits the output (after the sqrt(2) gain) to [-clamp, clamp]: NVIDIA's
    `conv_clamp`, applied where StyleGAN2-ADA applies it; None leaves it unlimited.
    """

    def __init__(self, channels: int, bias: bool = True, clamp: float | None = None):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.clamp = clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = fused_leaky_relu(x, self.bias)
        return out if self.clamp is None else out.clamp(-self.clamp, self.clamp)

    def extra_repr(self) -> str:
        return "" if self.clamp is None else f"clamp={self.clamp}"


class EqualConv2d(nn.Module):
    """Conv with weights stored N(0, 1) and scaled at run time (equalised learning rate)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.scale
        return F.conv2d(x, w, bias=self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        out_ch, in_ch, k, _ = self.weight.shape
        return f"{in_ch}, {out_ch}, kernel_size={k}, stride={self.stride}, padding={self.padding}"


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate, a learning-rate multiplier and optional act.

    Weights are stored divided by `lr_mul` and multiplied back at run time, so the optimiser's
    step on the stored value is `lr_mul` times smaller in effect (the mapping network uses 0.01).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: str | None = None,
    ):
        super().__init__()
        expect(activation in (None, "fused_lrelu"), "activation None or 'fused_lrelu'", activation)
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, in] -> [N, out]
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self) -> str:
        out_dim, in_dim = self.weight.shape
        return f"{in_dim}, {out_dim}, lr_mul={self.lr_mul}, activation={self.activation}"


# ----------------------------------------------------------------------------------------
# Generator layers


def resolve_modconv_impl(impl: str, device: torch.device) -> str:
    """Pick the modulated-conv form for `auto`.

    On CPU the "input" form is as fast or faster: it runs one ordinary convolution for the
    whole batch instead of a grouped one with batch-many groups, and never builds per-sample
    weights (measured on a 2-core CPU, 64 channels, 32 px, batch 8: a tie for the 3x3 conv,
    about 25% faster for the upsampling conv, forward and backward). Elsewhere "grouped" is
    used because it is the computation rosinality runs, so results track the original.
    """
    if impl != "auto":
        return impl
    return "input" if device.type == "cpu" else "grouped"


def resolve_synthesis_impl(impl: str, device: torch.device) -> str:
    """Pick the synthesis path for `auto`: the fast path on CPU, the reference elsewhere.

    The fast path was arranged and measured on CPU only (channels-last oneDNN kernels,
    cache-sized chunks), where it also trains faster (autograd through it, path-length
    double backward included). On other devices the reference layers run.
    """
    expect(impl in SYNTHESIS_IMPLS, f"synthesis impl in {SYNTHESIS_IMPLS}", impl)
    if impl == "auto":
        return "fast" if device.type == "cpu" else "reference"
    return impl


def fast_chunk(widest_image: int, element_size: int = 4) -> int:
    """Images per chunk of the fast synthesis path: as many as keep the widest activation
    (channels x pixels of one image, `widest_image` elements) within FAST_CHUNK_BYTES."""
    return max(1, FAST_CHUNK_BYTES // (widest_image * element_size))


def run_in_threads(fn: Callable[..., None], jobs: list[tuple]) -> None:
    """Run `fn(*job)` for every job, on up to torch's intra-op thread count of threads.

    Each thread takes whole jobs (chunks of images) with one intra-op thread of its own,
    instead of every op of every chunk being split over all threads. Many ops of a chunk are
    small; a split op waits at its end for its slowest thread, and on a shared machine a
    thread that lost its core makes the others wait for a scheduler tick, op after op
    (measured on the 2-core machine at batch 256: under load 5-10x faster this way, idle
    about 10%). Whole chunks per thread also keep each chunk in one core's cache. The ops
    release the GIL. Threads start only with two jobs or more each (starting them costs
    milliseconds). For inference only: grad mode, which is per thread, is off in the workers.
    """
    threads = torch.get_num_threads()
    workers = min(threads, len(jobs) // 2)
    if workers <= 1:
        for job in jobs:
            fn(*job)
        return
    inference = torch.is_inference_mode_enabled()

    def work(job: tuple) -> None:
        with torch.inference_mode(inference), torch.no_grad():
            fn(*job)

    # torch.set_num_threads sets the calling thread's OpenMP count and the process default
    # that new threads start from; the workers set theirs, the default is put back after.
    with ThreadPoolExecutor(
        workers, initializer=torch.set_num_threads, initargs=(max(1, threads // workers),)
    ) as pool:
        try:
            list(pool.map(work, jobs))  # re-raises the first failure
        finally:
            torch.set_num_threads(threads)


class ModulatedConv2d(nn.Module):
    """Style-modulated (and optionally demodulated) convolution, StyleGAN2's core layer.

    Two mathematically equivalent forms are available (`impl`):
    - "grouped": scale the shared weight by each sample's style, demodulate per output filter,
      and run one grouped convolution with the batch as groups (rosinality's fused path).
    - "input": scale the input channels by the style, convolve with the shared weight, then
      multiply each output channel by the sample's demodulation factor.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        downsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        impl: str = "auto",
    ):
        super().__init__()
        expect(impl in MODCONV_IMPLS, f"modconv impl in {MODCONV_IMPLS}", impl)
        expect(not (upsample and downsample), "upsample or downsample, not both", "both")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.upsample = upsample
        self.downsample = downsample
        self.demodulate = demodulate
        self.impl = impl
        if upsample or downsample:
            self.blur = self._make_blur(blur_kernel, kernel_size, upsample)
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size)
        )
        # Bias 1 so a fresh layer starts as an unmodulated conv.
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)

    @staticmethod
    def _make_blur(blur_kernel: Sequence[float], kernel_size: int, upsample: bool) -> Blur:
        factor = 2
        if upsample:
            # Pads chosen so transposed conv (2H + 1) followed by the blur gives exactly 2H.
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            return Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=2)
        p = (len(blur_kernel) - factor) + (kernel_size - 1)
        return Blur(blur_kernel, pad=((p + 1) // 2, p // 2))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # x: [N, in, H, W], w: [N, style_dim] -> [N, out, H', W']
        style = self.modulation(w)  # [N, in]
        if resolve_modconv_impl(self.impl, x.device) == "grouped":
            return self._forward_grouped(x, style)
        return self._forward_input(x, style)

    def _demod_factors(self, style: torch.Tensor) -> torch.Tensor:  # [N, in] -> [N, out]
        # sum_{i,k} (s_i w_oik)^2 = sum_i s_i^2 (sum_k w_oik^2): no per-sample weights needed.
        w_sq = (self.weight[0] * self.scale).square().sum(dim=(2, 3))  # [out, in]
        return torch.rsqrt(style.square() @ w_sq.t() + 1e-8)

    def _forward_input(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        weight = self.weight[0] * self.scale  # [out, in, k, k]
        x = x * style[:, :, None, None]
        if self.upsample:
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
            x = self.blur(x)
        elif self.downsample:
            x = F.conv2d(self.blur(x), weight, stride=2)
        else:
            x = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            x = x * self._demod_factors(style)[:, :, None, None]
        return x

    def _forward_grouped(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        n, in_ch, h, w_ = x.shape
        k = self.kernel_size
        weight = self.scale * self.weight * style[:, None, :, None, None]  # [N, out, in, k, k]
        if self.demodulate:
            demod = torch.rsqrt(weight.square().sum(dim=(2, 3, 4)) + 1e-8)  # [N, out]
            weight = weight * demod[:, :, None, None, None]
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(n * in_ch, self.out_channels, k, k)
            out = F.conv_transpose2d(x.reshape(1, n * in_ch, h, w_), weight, stride=2, groups=n)
            return self.blur(out.reshape(n, self.out_channels, *out.shape[2:]))
        weight = weight.reshape(n * self.out_channels, in_ch, k, k)
        if self.downsample:
            x = self.blur(x)
        stride, padding = (2, 0) if self.downsample else (1, self.padding)
        out = F.conv2d(
            x.reshape(1, n * in_ch, *x.shape[2:]), weight, stride=stride, padding=padding, groups=n
        )
        return out.reshape(n, self.out_channels, *out.shape[2:])

    # The fast inference path (Generator._synthesis_fast) runs the "input" form on
    # channels-last tensors, split in two: per-sample factors for the whole batch at once
    # (`fast_factors`), then the convolution chunk by chunk (`forward_fast`), demodulation
    # left to the caller, which applies it together with its bias and noise.

    def fast_factors(
        self, style: torch.Tensor, gain: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Input scales [N, in, 1, 1] (style x `gain`, the activation gain of the layer before,
        which so costs no pass of its own) and demodulation factors [N, out, 1, 1] or None."""
        demod = self._demod_factors(style)[:, :, None, None] if self.demodulate else None
        return (style * gain)[:, :, None, None], demod

    def forward_fast(self, x: torch.Tensor, in_scale: torch.Tensor) -> torch.Tensor:
        """Convolve x * in_scale (channels-last in and out), without demodulation."""
        weight = self.weight[0] * self.scale  # [out, in, k, k]
        x = x * in_scale
        if self.upsample:
            return self.blur.forward_fast(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        if self.downsample:
            return F.conv2d(self.blur.forward_fast(x), weight, stride=2)
        return F.conv2d(x, weight, padding=self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"upsample={self.upsample}, downsample={self.downsample}, "
            f"demodulate={self.demodulate}, impl={self.impl!r}"
        )


class NoiseInjection(nn.Module):
    """Add per-pixel noise, shared across channels, scaled by one learned scalar."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        # x: [N, C, H, W], noise: [N or 1, 1, H, W]; None draws fresh noise from the global RNG
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, *x.shape[2:]).normal_()
        return x + self.weight * noise


class ConstantInput(nn.Module):
    """The learned 4x4 tensor the synthesis network starts from."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, like: torch.Tensor) -> torch.Tensor:  # -> [N, C, 4, 4], N = len(like)
        return self.input.expand(like.shape[0], -1, -1, -1)


class ModeInput(nn.Module):
    """A self-conditioned generator's input: a mixture of learned 4x4 constants.

    For mode vectors c [N, M] (slot 0 the base mode, 1 in every vector SC-GAN builds), the
    input is c_0 * input + sum over m >= 1 of c_m * mode_offsets[m - 1]. The base keeps
    rosinality's name `input.input`, so a pretrained generator's constant loads into it;
    the offsets start at zero, so the new model renders exactly as the pretrained one for
    every mode vector (SC-GAN instead copies the constant into every mode, which scales the
    input by 1 + sum |2t - 1| until training separates them: `copy_base_into_modes`). In
    SC-GAN's layout the M constants are input (mode 0) and the offsets (modes 1..M-1).
    """

    def __init__(self, channels: int, num_modes: int, size: int = 4):
        super().__init__()
        self.num_modes = num_modes
        self.input = nn.Parameter(torch.randn(1, channels, size, size))
        self.mode_offsets = nn.Parameter(torch.zeros(num_modes - 1, channels, size, size))

    def forward(self, modes: torch.Tensor) -> torch.Tensor:  # [N, M] -> [N, C, 4, 4]
        base = modes[:, :1, None, None] * self.input
        return base + torch.einsum("nm,mchw->nchw", modes[:, 1:], self.mode_offsets)

    @torch.no_grad()
    def copy_base_into_modes(self) -> None:
        """SC-GAN's initialisation: every mode's constant a copy of the base."""
        self.mode_offsets.copy_(self.input.expand_as(self.mode_offsets))

    def neutral(self, n: int) -> torch.Tensor:
        """Mode vectors [n, M] of the neutral mode: the base alone."""
        modes = self.input.new_zeros(n, self.num_modes)
        modes[:, 0] = 1.0
        return modes


class StyledConv(nn.Module):
    """Modulated conv, noise, bias and activation: one synthesis layer."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        demodulate: bool = True,
        impl: str = "auto",
        conv_clamp: float | None = None,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels,
            out_channels,
            kernel_size,
            style_dim,
            demodulate=demodulate,
            upsample=upsample,
            blur_kernel=blur_kernel,
            impl=impl,
        )
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels, clamp=conv_clamp)

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, w), noise=noise))

    def fast_shift(self, noise: torch.Tensor | None) -> torch.Tensor:
        """Bias plus scaled noise, the addend of `forward_fast`: [1, C, H, W] for the stored
        noise (once per batch), [N, C, H, W] for random noise, [1, C, 1, 1] without noise."""
        shift = self.activate.bias.view(1, -1, 1, 1)
        if noise is None:
            return shift
        return (shift + self.noise.weight * noise).contiguous(memory_format=torch.channels_last)

    def forward_fast(
        self,
        x: torch.Tensor,
        in_scale: torch.Tensor,
        demod: torch.Tensor | None,
        shift: torch.Tensor,
    ) -> torch.Tensor:
        """`forward(x, w, noise) / sqrt(2)` for the fast path, channels-last, from the factors
        of `conv.fast_factors` and `fast_shift`.

        The activation's sqrt(2) gain is left to the consumers of the output (both modulated
        convs, which fold it into their input scales): leaky ReLU commutes with a positive
        factor, so this only moves a rounding. The rest runs in place on the conv's output
        (two in-place passes were faster than one `addcmul` with these broadcasts).
        """
        out = self.conv.forward_fast(x, in_scale)
        if demod is not None:
            out = out.mul_(demod)
        out = F.leaky_relu_(out.add_(shift), 0.2)
        clamp = self.activate.clamp
        if clamp is not None:  # `forward` clamps after the gain: here, before it (out of
            out = out.clamp(-clamp / SQRT2, clamp / SQRT2)  # place: leaky_relu_'s grad reads out)
        return out


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation), added to the upsampled running image.

    `conv_clamp` limits this layer's own output (conv + bias) to [-conv_clamp, conv_clamp]
    before the running image is added, as NVIDIA's ToRGB does; None leaves it unlimited.
    """

    def __init__(
        self,
        in_channels: int,
        style_dim: int,
        upsample: bool = True,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        impl: str = "auto",
        conv_clamp: float | None = None,
    ):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False, impl=impl)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.conv_clamp = conv_clamp

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.conv(x, w) + self.bias  # [N, 3, H, W]
        if self.conv_clamp is not None:
            out = out.clamp(-self.conv_clamp, self.conv_clamp)
        if skip is not None:
            out = out + self.upsample(skip)
        return out

    def fast_weights(self, style: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """Per-sample 1x1 weights [N, 3, C] for `forward_fast` (weight x style x `gain`)."""
        weight = self.conv.weight[0, :, :, 0, 0] * self.conv.scale  # [3, C]
        return weight * (style * gain)[:, None, :]

    def forward_fast(
        self, x: torch.Tensor, per_sample: torch.Tensor, skip: torch.Tensor | None
    ) -> torch.Tensor:
        """`forward` for the fast path: channels-last x, planar skip and output [N, 3, H, W].

        The 1x1 conv is a batched matrix product [N, 3, C] x [N, C, H*W] (a view of the
        channels-last x): the style scales the small weights instead of the large input, the
        upsampled skip plus the bias is the product's addend, and the product comes out
        planar, the layout of the final images (twice as fast as [N, H*W, C] x [N, C, 3]).
        """
        n, c, h, w = x.shape
        pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c).transpose(1, 2)  # [N, C, H*W]
        base = self.bias.view(1, 3, 1)
        if self.conv_clamp is not None:  # the clamp comes between the product and the skip
            own = torch.baddbmm(base, per_sample, pixels).view(n, 3, h, w)
            own = own.clamp(-self.conv_clamp, self.conv_clamp)
            if skip is None:
                return own
            up = self.upsample.forward_fast(skip.contiguous(memory_format=torch.channels_last))
            return own + up
        if skip is not None:
            # oneDNN's depthwise transposed conv is several times faster channels-last.
            up = self.upsample.forward_fast(skip.contiguous(memory_format=torch.channels_last))
            base = up.add_(self.bias).permute(0, 2, 3, 1).reshape(n, h * w, 3).transpose(1, 2)
        return torch.baddbmm(base, per_sample, pixels).view(n, 3, h, w)


# ----------------------------------------------------------------------------------------
# Generator


def channel_table(
    size: int,
    channel_multiplier: int = 2,
    channel_max: int = 512,
    channels: Sequence[int] | None = None,
) -> dict[int, int]:
    """Feature channels per resolution: rosinality's table capped at `channel_max`, or, when
    `channels` is given, that list read from 4 px up to `size` (one entry per resolution)."""
    if channels is not None:
        resolutions = [2**k for k in range(2, check_size(size) + 1)]
        ok = len(channels) == len(resolutions) and all(
            isinstance(c, int) and c > 0 for c in channels
        )
        expect(ok, f"{len(resolutions)} positive channel counts (4 to {size} px)", channels)
        return dict(zip(resolutions, channels, strict=True))
    table = {4: 512, 8: 512, 16: 512, 32: 512}
    table.update({r: (16384 // r) * channel_multiplier for r in (64, 128, 256, 512, 1024)})
    return {r: min(c, channel_max) for r, c in table.items() if r <= size}


def check_size(size: int) -> int:
    """Return log2(size) for a power of two from 8 to 1024, else raise UserInputError."""
    ok = isinstance(size, int) and 8 <= size <= 1024 and size & (size - 1) == 0
    expect(ok, "an image size that is a power of two from 8 to 1024", size)
    return size.bit_length() - 1


def _taps_list(taps: Sequence[float]) -> list:
    # A JSON-friendly copy for `config`: whole numbers stay ints ([1, 3, 3, 1]).
    return [int(t) if float(t).is_integer() else float(t) for t in taps]


def _check_positive_int(name: str, value: object) -> None:
    expect(isinstance(value, int) and value > 0, f"{name} as a positive integer", value)


class Generator(nn.Module):
    """StyleGAN2 generator (config-f layout) with rosinality state-dict names.

    `w_avg` [w_dim] is a persistent buffer, so `save_pretrained`/`load_pretrained` keep it, but
    it is not a rosinality key: loading a rosinality state dict without it is tolerated
    (`w_avg` keeps its value; set it from the checkpoint's `latent_avg` or `update_w_avg()`),
    and the rosinality exporter stores it as `latent_avg` instead.

    Feature channels follow rosinality's table (`channel_multiplier`, capped at
    `channel_max`) unless `channels` lists them per resolution from 4 px up, e.g. wide
    low-resolution layers and a narrow top for cheap small models (`[96, 96, 96, 48, 32]`).

    `mode_attributes` (k names) makes it self-conditioned (SC-GAN): its input is a
    `ModeInput` of M = 1 + 3k constants mixed by a mode vector (`ganedit.models.modes`),
    which `synthesis` and `forward` take as `modes` [N, M] (None: the neutral mode).

    `c_dim` > 0 makes it class-conditional as StyleGAN2-ADA's generators are: `embed`
    (c_dim -> style_dim) maps a label c [N, c_dim] (one-hot for a class), z and the embedding
    are each normalised to unit second moment and concatenated before the first mapping layer
    (`style.1`, 2 * style_dim inputs); `mapping` and `forward` then take `c`.

    `conv_clamp` clamps each synthesis layer's output (after bias, activation and gain) and
    each ToRGB's own output to [-conv_clamp, conv_clamp], as StyleGAN2-ADA does (256 in its
    mixed-precision configs); None (the default) clamps nothing.
    """

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        lr_mlp: float = 0.01,
        channel_max: int = 512,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        modconv_impl: str = "auto",
        channels: Sequence[int] | None = None,
        mode_attributes: Sequence[str] | None = None,
        c_dim: int = 0,
        conv_clamp: float | None = None,
    ):
        super().__init__()
        self.log_size = check_size(size)
        expect(isinstance(c_dim, int) and c_dim >= 0, "c_dim as an integer >= 0", c_dim)
        ok = conv_clamp is None or (
            isinstance(conv_clamp, int | float) and math.isfinite(conv_clamp) and conv_clamp > 0
        )
        expect(ok, "conv_clamp as a positive number or None", conv_clamp)
        for name, value in [
            ("style_dim", style_dim),
            ("n_mlp", n_mlp),
            ("channel_multiplier", channel_multiplier),
            ("channel_max", channel_max),
        ]:
            _check_positive_int(name, value)
        expect(modconv_impl in MODCONV_IMPLS, f"modconv_impl in {MODCONV_IMPLS}", modconv_impl)
        blur_kernel = _taps_list(blur_kernel)
        self.config = {
            "size": size,
            "style_dim": style_dim,
            "n_mlp": n_mlp,
            "channel_multiplier": channel_multiplier,
            "lr_mlp": lr_mlp,
            "channel_max": channel_max,
            "blur_kernel": blur_kernel,
            "modconv_impl": modconv_impl,
        }
        if channels is not None:  # an explicit table overrides multiplier and cap
            self.config["channels"] = list(channels)
        self.mode_attributes = list(mode_attributes or [])
        if self.mode_attributes:
            self.config["mode_attributes"] = self.mode_attributes
        # Recorded only when set, so the configs of other generators stay as they were.
        if c_dim:
            self.config["c_dim"] = c_dim
        if conv_clamp is not None:
            self.config["conv_clamp"] = conv_clamp
        self.c_dim, self.conv_clamp = c_dim, conv_clamp
        self.num_modes = ModeLayout(self.mode_attributes).num_modes if self.mode_attributes else 0
        self.size = self.img_resolution = size
        self.style_dim = self.z_dim = self.w_dim = style_dim
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.num_ws = self.n_latent = self.log_size * 2 - 2
        self.channels = channel_table(size, channel_multiplier, channel_max, channels)
        self._build_mapping(n_mlp, lr_mlp)
        self._build_synthesis(blur_kernel, modconv_impl)
        self.register_buffer("w_avg", torch.zeros(style_dim))

    def _build_mapping(self, n_mlp: int, lr_mlp: float) -> None:
        # Index 0 is the parameter-free PixelNorm, so dense layers are `style.1` .. `style.n_mlp`.
        layers: list[nn.Module] = [PixelNorm()]
        sd = self.style_dim
        for i in range(n_mlp):
            fan_in = 2 * sd if i == 0 and self.c_dim else sd  # z and the label's embedding
            layers.append(EqualLinear(fan_in, sd, lr_mul=lr_mlp, activation="fused_lrelu"))
        self.style = nn.Sequential(*layers)
        if self.c_dim:
            self.embed = EqualLinear(self.c_dim, sd)

    def _build_synthesis(self, blur_kernel: list, impl: str) -> None:
        ch, sd, clamp = self.channels, self.style_dim, self.conv_clamp
        if self.num_modes:
            self.input = ModeInput(ch[4], self.num_modes)
        else:
            self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(
            ch[4], ch[4], 3, sd, blur_kernel=blur_kernel, impl=impl, conv_clamp=clamp
        )
        self.to_rgb1 = ToRGB(ch[4], sd, upsample=False, impl=impl, conv_clamp=clamp)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(self.num_layers):
            r = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))
        in_ch = ch[4]
        layer = {"blur_kernel": blur_kernel, "impl": impl, "conv_clamp": clamp}
        for res in (2**k for k in range(3, self.log_size + 1)):
            out_ch = ch[res]
            self.convs.append(StyledConv(in_ch, out_ch, 3, sd, upsample=True, **layer))
            self.convs.append(StyledConv(out_ch, out_ch, 3, sd, **layer))
            self.to_rgbs.append(ToRGB(out_ch, sd, **layer))
            in_ch = out_ch

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # rosinality dicts have no `w_avg`; its absence must not fail a strict load.
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if prefix + "w_avg" in missing_keys:
            missing_keys.remove(prefix + "w_avg")

    def mapping(
        self,
        z: torch.Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        *,
        c: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Map z [N, z_dim] (and, if class-conditional, labels c [N, c_dim]) to ws
        [N, num_ws, w_dim], truncated toward `w_avg`.

        `truncation_cutoff` is the number of leading ws rows that are truncated (None: all).
        """
        expect(z.ndim == 2 and z.shape[1] == self.z_dim, f"z of shape [N, {self.z_dim}]", z.shape)
        w = self._w(z, c)  # [N, w_dim]
        ws = w[:, None, :].expand(-1, self.num_ws, -1)  # [N, num_ws, w_dim]
        if truncation_psi == 1:
            return ws
        truncated = self.w_avg.lerp(ws, truncation_psi)
        if truncation_cutoff is None:
            return truncated
        rows = torch.arange(self.num_ws, device=ws.device) < truncation_cutoff
        return torch.where(rows[None, :, None], truncated, ws)

    def _w(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """The mapping network's w [N, w_dim] of z [N, z_dim] and labels c [N, c_dim]."""
        if not self.c_dim:
            expect(c is None, "no class label for an unconditional generator", "a label c")
            return self.style(z)
        expect(
            c is not None and c.ndim == 2 and tuple(c.shape) == (len(z), self.c_dim),
            f"class labels c of shape [{len(z)}, {self.c_dim}] for a class-conditional generator",
            "none" if c is None else tuple(c.shape),
        )
        norm = self.style[0]  # z and the embedding are normalised separately, then joined
        x = torch.cat([norm(z), norm(self.embed(c.to(z.dtype)))], dim=1)
        return self.style[1:](x)

    def one_hot(self, class_index: int, n: int = 1) -> torch.Tensor:
        """The label c [n, c_dim] of one class (what NVIDIA's scripts feed for `--class`)."""
        ok = self.c_dim > 0 and isinstance(class_index, int) and 0 <= class_index < self.c_dim
        expect(ok, f"a class index in [0, {self.c_dim - 1}]", class_index)
        c = self.w_avg.new_zeros(n, self.c_dim)
        c[:, class_index] = 1
        return c

    def synthesis(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        generator: torch.Generator | None = None,
        impl: str = "auto",
        noise: Sequence[torch.Tensor] | None = None,
        modes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Render ws [N, num_ws, w_dim] to images [N, 3, size, size] (not clamped, ~[-1, 1]).

        noise_mode: "const" uses the stored `noises.noise_*` buffers (deterministic), "random"
        draws fresh noise from `generator` (or the global RNG), "none" disables noise.
        noise: explicit noise maps instead, one per layer, [1 or N, 1, r, r] (see
        `make_noise`); they may require gradients (the projector optimises them).
        impl: "reference" runs the layers' `forward` (rosinality's formulation, with the
        configured modulated-conv form), "fast" `_synthesis_fast` (the same computation
        arranged for CPU throughput), "auto" the fast path on CPU, else the reference. Both
        give the same images and gradients up to float32 rounding.
        modes: a self-conditioned generator's mode vectors [N or 1, M] (None: neutral).
        """
        expect(
            ws.ndim == 3 and tuple(ws.shape[1:]) == (self.num_ws, self.w_dim),
            f"ws of shape [N, {self.num_ws}, {self.w_dim}]",
            tuple(ws.shape),
        )
        start = self._start(ws, modes)
        impl = resolve_synthesis_impl(impl, ws.device)
        if noise is None:
            noise = self._noise_inputs(ws, noise_mode, generator)
            fast_noise = None if noise_mode == "none" else noise
        else:
            noise = fast_noise = self._check_noise(noise, ws.shape[0])
        if impl == "fast":
            return self._synthesis_fast(ws, fast_noise, start)
        x = self.conv1(start.expand(len(ws), -1, -1, -1), ws[:, 0], noise=noise[0])
        img = self.to_rgb1(x, ws[:, 1])
        for j, to_rgb in enumerate(self.to_rgbs):
            i = 2 * j + 1  # consecutive resolutions share one ws row (ToRGB then next conv)
            x = self.convs[2 * j](x, ws[:, i], noise=noise[i])
            x = self.convs[2 * j + 1](x, ws[:, i + 1], noise=noise[i + 1])
            img = to_rgb(x, ws[:, i + 2], skip=img)
        return img

    def _start(self, ws: torch.Tensor, modes: torch.Tensor | None) -> torch.Tensor:
        """The synthesis input: [1, C, 4, 4] shared, or [N, C, 4, 4] mixed per sample's modes."""
        if not self.num_modes:
            expect(modes is None, "no modes for a generator that is not self-conditioned", "modes")
            return self.input.input
        if modes is None:
            return self.input(self.input.neutral(1))
        expect(
            modes.ndim == 2 and modes.shape[0] in (1, len(ws)) and modes.shape[1] == self.num_modes,
            f"modes of shape [1 or {len(ws)}, {self.num_modes}]",
            tuple(modes.shape),
        )
        return self.input(modes.to(ws.dtype))

    def _synthesis_fast(
        self, ws: torch.Tensor, noise: list[torch.Tensor] | None, start: torch.Tensor
    ) -> torch.Tensor:
        """`synthesis`, the same computation arranged for CPU throughput.

        - Channels-last activations: oneDNN's convolutions, and above all its depthwise
          blur and transposed convolutions, run several times faster on them than planar.
        - Chunks of `fast_chunk(...)` images: each chunk's activations stay in the CPU
          caches from one layer to the next, where a 256-image batch of 64 px activations
          (64 MB at 16 channels) would stream through memory on every pass. Without
          autograd the chunks run on worker threads (`run_in_threads`).
        - Per layer: modulate the input, the conv (and blur), demodulation, bias + noise
          and the activation in place; the activation's sqrt(2) goes into the next layers'
          input scales. ToRGB scales its small weights, not its input.
        Styles, demodulation and the stored noise's maps are computed once per batch.
        """
        n = ws.shape[0]
        convs, rgbs = [self.conv1, *self.convs], [self.to_rgb1, *self.to_rgbs]
        # Whole-batch work first: styles, input scales, demodulation, ToRGB weights, and the
        # bias + noise maps of the stored noise (shared by every sample).
        factors = [
            conv.conv.fast_factors(conv.conv.modulation(ws[:, i]), 1.0 if i == 0 else SQRT2)
            for i, conv in enumerate(convs)
        ]
        rgb_weights = [  # ToRGB j reads ws row 2j + 1, like the conv after it
            rgb.fast_weights(rgb.conv.modulation(ws[:, 2 * j + 1]), SQRT2)
            for j, rgb in enumerate(rgbs)
        ]
        noise = noise or [None] * len(convs)
        per_sample_noise = [t is not None and len(t) > 1 for t in noise]
        shifts = [
            None if per_sample else conv.fast_shift(t)
            for conv, t, per_sample in zip(convs, noise, per_sample_noise, strict=True)
        ]
        const = start.contiguous(memory_format=torch.channels_last)
        per_sample_start = len(const) > 1
        out = ws.new_empty(n, 3, self.size, self.size)

        def render(a: int, b: int) -> None:  # images a..b-1, start to end
            x, img = (const[a:b] if per_sample_start else const), None
            for i, conv in enumerate(convs):
                in_scale, demod = factors[i]
                shift = conv.fast_shift(noise[i][a:b]) if per_sample_noise[i] else shifts[i]
                demod = None if demod is None else demod[a:b]
                x = conv.forward_fast(x, in_scale[a:b], demod, shift)
                if i % 2 == 0:  # conv1, then each resolution's second conv, feeds a ToRGB
                    img = rgbs[i // 2].forward_fast(x, rgb_weights[i // 2][a:b], img)
            out[a:b] = img

        chunk = fast_chunk(max(c * r * r for r, c in self.channels.items()), ws.element_size())
        if torch.is_grad_enabled():  # one graph, built in this thread
            for a in range(0, n, chunk):
                render(a, min(a + chunk, n))
            return out
        run_in_threads(render, [(a, min(a + chunk, n)) for a in range(0, n, chunk)])
        return out

    def noise_shapes(self) -> list[tuple[int, int, int, int]]:
        """Shape of each layer's noise map for one sample: [(1, 1, r, r), ...]."""
        return [tuple(getattr(self.noises, f"noise_{i}").shape) for i in range(self.num_layers)]

    def make_noise(
        self,
        n: int = 1,
        mode: str = "random",
        generator: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """Noise maps for `synthesis(noise=...)`: [n, 1, r, r] per layer, standard normal
        drawn from `generator` ("random"), copies of the stored maps ("const", broadcast to
        n) or zeros ("none"). Fresh tensors, so they can be optimised in place."""
        expect(mode in NOISE_MODES, f"noise mode in {NOISE_MODES}", mode)
        stored = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if mode == "const":
            return [b.expand(n, -1, -1, -1).clone() for b in stored]
        if mode == "none":
            return [b.new_zeros(n, *b.shape[1:]) for b in stored]
        return [
            torch.randn(n, *b.shape[1:], generator=generator, device=b.device, dtype=b.dtype)
            for b in stored
        ]

    def _check_noise(self, noise: Sequence[torch.Tensor], n: int) -> list[torch.Tensor]:
        shapes = self.noise_shapes()
        got = [tuple(t.shape) for t in noise]
        ok = len(got) == len(shapes) and all(
            g[0] in (1, n) and g[1:] == s[1:] for g, s in zip(got, shapes, strict=False)
        )
        expect(ok, f"{len(shapes)} noise maps of shapes [1 or {n}, 1, r, r] {shapes}", got)
        return list(noise)

    def _noise_inputs(
        self, ws: torch.Tensor, noise_mode: str, generator: torch.Generator | None
    ) -> list[torch.Tensor]:
        expect(noise_mode in NOISE_MODES, f"noise_mode in {NOISE_MODES}", noise_mode)
        stored = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if noise_mode == "const":
            return stored
        if noise_mode == "none":
            return [torch.zeros_like(b) for b in stored]
        n = ws.shape[0]
        return [
            torch.randn(n, 1, *b.shape[2:], generator=generator, device=ws.device, dtype=ws.dtype)
            for b in stored
        ]

    def forward(
        self,
        z: torch.Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        generator: torch.Generator | None = None,
        impl: str = "auto",
        modes: torch.Tensor | None = None,
        c: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """z [N, z_dim] (and modes [N, M] if self-conditioned, labels c [N, c_dim] if
        class-conditional) -> images [N, 3, size, size]."""
        ws = self.mapping(z, truncation_psi, truncation_cutoff, c=c)
        return self.synthesis(
            ws, noise_mode=noise_mode, generator=generator, impl=impl, modes=modes
        )

    @torch.no_grad()
    def update_w_avg(
        self, n: int = 10000, generator: torch.Generator | None = None, batch_size: int = 1000
    ) -> torch.Tensor:
        """Set `w_avg` to the mean w of `n` z ~ N(0, I) samples and return it ([w_dim]); a
        class-conditional generator's samples draw their classes uniformly (one mean over
        all classes, as NVIDIA tracks over its training labels)."""
        _check_positive_int("n", n)
        device = self.w_avg.device
        total = torch.zeros(self.w_dim, dtype=torch.float64, device=device)
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            z = torch.randn(count, self.z_dim, generator=generator, device=device)
            c = None
            if self.c_dim:
                classes = torch.randint(self.c_dim, (count,), generator=generator, device=device)
                c = F.one_hot(classes, self.c_dim).to(z.dtype)
            total += self._w(z, c).double().sum(dim=0)
        self.w_avg.copy_(total / n)
        return self.w_avg.clone()

    def extra_repr(self) -> str:
        modes = (
            f", modes={self.num_modes} ({', '.join(self.mode_attributes)})"
            if self.num_modes
            else ""
        )
        classes = f", c_dim={self.c_dim}" if self.c_dim else ""
        clamp = f", conv_clamp={self.conv_clamp}" if self.conv_clamp is not None else ""
        return f"size={self.size}, w_dim={self.w_dim}, num_ws={self.num_ws}{modes}{classes}{clamp}"


# ----------------------------------------------------------------------------------------
# Discriminator layers


class ConvLayer(nn.Sequential):
    """[Blur] + EqualConv2d + [bias + leaky ReLU, clamped to +-clamp when given]; Sequential
    so keys read `0.weight` etc."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        downsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        bias: bool = True,
        activate: bool = True,
        clamp: float | None = None,
    ):
        layers: list[nn.Module] = []
        if downsample:
            # Blur first so the stride-2 conv samples an anti-aliased signal.
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(
            EqualConv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                bias=bias and not activate,
            )
        )
        if activate:
            layers.append(FusedLeakyReLU(out_channels, bias=bias, clamp=clamp))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Two convs (the second halves the resolution) plus a 1x1 skip, summed with 1/sqrt(2).

    `conv_clamp` clamps both convs' outputs (NVIDIA clamps its second conv at conv_clamp
    times its sqrt(1/2) gain, the same values before the sum's 1/sqrt(2)); never the skip.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ):
        super().__init__()
        self.conv1 = ConvLayer(
            in_channels, in_channels, 3, blur_kernel=blur_kernel, clamp=conv_clamp
        )
        self.conv2 = ConvLayer(
            in_channels, out_channels, 3, downsample=True, blur_kernel=blur_kernel,
            clamp=conv_clamp,
        )  # fmt: skip
        self.skip = ConvLayer(
            in_channels,
            out_channels,
            1,
            downsample=True,
            blur_kernel=blur_kernel,
            activate=False,
            bias=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # 1/sqrt(2) keeps the variance of the sum equal to that of each branch.
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_features: int = 1) -> torch.Tensor:
    """Append the feature std over sample groups as extra channels: [N, C, H, W] -> [N, C+F, H, W].

    Groups are strided (sample i is grouped with i + N/G, i + 2N/G, ...), as in rosinality, so
    the batch size must be a multiple of the group size (min(N, group_size)).
    """
    n, c, h, w = x.shape
    group = min(n, group_size)
    expect(n % group == 0, f"a batch size divisible by {group}", n)
    y = x.view(group, -1, num_features, c // num_features, h, w)
    y = torch.sqrt(y.var(dim=0, unbiased=False) + 1e-8)  # [N/G, F, C/F, H, W]
    y = y.mean(dim=(2, 3, 4), keepdim=True).squeeze(2)  # [N/G, F, 1, 1]
    y = y.repeat(group, 1, h, w)  # [N, F, H, W]
    return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator with rosinality state-dict names; logits [N, 1].

    `conv_clamp` clamps the FromRGB, every block's two convs and the final conv to
    [-conv_clamp, conv_clamp] after their activation, as StyleGAN2-ADA's does; None: no clamp.
    """

    def __init__(
        self,
        size: int,
        channel_multiplier: int = 2,
        channel_max: int = 512,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        channels: Sequence[int] | None = None,
        stddev_group: int = 4,
        num_modes: int = 0,
        conv_clamp: float | None = None,
        twin_modes: bool = False,
    ):
        super().__init__()
        log_size = check_size(size)
        expect(not twin_modes or num_modes > 0, "a mode head beside a twin one", "num_modes=0")
        ok = conv_clamp is None or (
            isinstance(conv_clamp, int | float) and math.isfinite(conv_clamp) and conv_clamp > 0
        )
        expect(ok, "conv_clamp as a positive number or None", conv_clamp)
        _check_positive_int("channel_multiplier", channel_multiplier)
        _check_positive_int("channel_max", channel_max)
        _check_positive_int("stddev_group", stddev_group)
        blur_kernel = _taps_list(blur_kernel)
        self.config = {
            "size": size,
            "channel_multiplier": channel_multiplier,
            "channel_max": channel_max,
            "blur_kernel": blur_kernel,
            "stddev_group": stddev_group,
        }
        if channels is not None:
            self.config["channels"] = list(channels)
        if num_modes:
            self.config["num_modes"] = num_modes
        if twin_modes:
            self.config["twin_modes"] = True
        if conv_clamp is not None:
            self.config["conv_clamp"] = conv_clamp
        self.num_modes = num_modes
        self.size = self.img_resolution = size
        ch = self.channels = channel_table(size, channel_multiplier, channel_max, channels)
        convs: list[nn.Module] = [ConvLayer(3, ch[size], 1, clamp=conv_clamp)]  # FromRGB
        in_ch = ch[size]
        for k in range(log_size, 2, -1):
            convs.append(ResBlock(in_ch, ch[2 ** (k - 1)], blur_kernel, conv_clamp))
            in_ch = ch[2 ** (k - 1)]
        self.convs = nn.Sequential(*convs)
        # Larger groups give the minibatch-std feature a better estimate of the batch's
        # diversity (StyleGAN2-ADA uses 32 for CIFAR); the group must divide the batch.
        self.stddev_group = stddev_group
        self.stddev_feat = 1
        self.final_conv = ConvLayer(in_ch + self.stddev_feat, ch[4], 3, clamp=conv_clamp)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 4 * 4, ch[4], activation="fused_lrelu"),
            EqualLinear(ch[4], 1),
        )
        if num_modes:  # SC-GAN's mode head, beside the real/fake head on the same feature
            self.final_class = self._mode_head(ch[4], num_modes)
        self.twin_modes = bool(twin_modes)
        if twin_modes:  # TAC-GAN's twin: reads the modes fakes were drawn with (training only)
            self.final_twin = self._mode_head(ch[4], num_modes)

    @staticmethod
    def _mode_head(channels: int, num_modes: int) -> nn.Sequential:
        return nn.Sequential(
            EqualLinear(channels * 4 * 4, channels, activation="fused_lrelu"),
            EqualLinear(channels, num_modes),
        )

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """Images [N, 3, size, size] -> the heads' shared feature [N, C * 16]."""
        expect(
            img.ndim == 4 and tuple(img.shape[1:]) == (3, self.size, self.size),
            f"images of shape [N, 3, {self.size}, {self.size}]",
            tuple(img.shape),
        )
        x = self.convs(img)  # [N, C, 4, 4]
        x = minibatch_stddev(x, self.stddev_group, self.stddev_feat)
        return self.final_conv(x).flatten(1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Images [N, 3, size, size] -> real/fake logits [N, 1]."""
        return self.final_linear(self.features(img))

    def forward_with_modes(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images -> real/fake logits [N, 1] and mode logits [N, M] (one trunk pass)."""
        expect(self.num_modes > 0, "a discriminator with a mode head", "num_modes=0")
        feature = self.features(img)
        return self.final_linear(feature), self.final_class(feature)

    def forward_with_twin(
        self, img: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images -> real/fake logits [N, 1], mode logits [N, M] and the twin head's mode
        logits [N, M] (one trunk pass)."""
        expect(self.twin_modes, "a discriminator with a twin mode head", "twin_modes=False")
        feature = self.features(img)
        return self.final_linear(feature), self.final_class(feature), self.final_twin(feature)

    def extra_repr(self) -> str:
        return f"size={self.size}"


__all__ = [
    "Blur",
    "ConstantInput",
    "ConvLayer",
    "Discriminator",
    "Downsample",
    "EqualConv2d",
    "EqualLinear",
    "FusedLeakyReLU",
    "Generator",
    "ModeInput",
    "ModulatedConv2d",
    "NoiseInjection",
    "PixelNorm",
    "ResBlock",
    "StyledConv",
    "ToRGB",
    "Upsample",
    "channel_table",
    "fused_leaky_relu",
    "make_kernel",
    "minibatch_stddev",
    "upfirdn2d",
]
