"""NVIDIA's TensorFlow generators written directly from their graph definitions (test only).

Each function evaluates a network the way its TensorFlow build function does (PGGAN's
`networks.G_paper`, StyleGAN's `G_style`/`G_mapping`/`G_synthesis`, StyleGAN2's
`G_main`/`G_mapping`/`G_synthesis_stylegan2`), on the variables exactly as pickled: TensorFlow
layouts ([k, k, in, out] kernels, [in, out] dense weights), run-time weight scaling, TF's
transposed convolution (`conv2d_transpose`, whose filter is [k, k, out, in]), the
zero-insertion FIR up-sampling of `upfirdn_2d`, modulation with `mod_bias + 1`. Nothing here
is shared with ganedit's modules, so a wrong key, transpose, flip, gain or noise index in the
reader fails the comparison.

Torch is used only as an array library; TensorFlow's ops map onto it as:
- `tf.nn.conv2d(x, w [k, k, in, out], SAME)`: `F.conv2d(x, w.permute(3, 2, 0, 1), padding=k//2)`;
- `tf.nn.conv2d_transpose(x, f [k, k, out, in], stride 2)`: `F.conv_transpose2d(x,
  f.permute(3, 2, 0, 1), stride=2)`, padding 1 for SAME with k = 4 (output 2H), 0 for VALID.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2)


def t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def variables(net) -> dict[str, torch.Tensor]:
    return {k: t(v) for k, v in net.variables.items()}


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return torch.maximum(x, x * 0.2)


def conv2d(x, w):  # tf.nn.conv2d, SAME, w [k, k, in, out]
    return F.conv2d(x, w.permute(3, 2, 0, 1), padding=w.shape[0] // 2)


def conv2d_same(x, w, gain=SQRT2):  # conv2d with the run-time scale gain / sqrt(fan_in)
    k, c_in = w.shape[0], w.shape[2]
    return conv2d(x, w * gain / math.sqrt(k * k * c_in))


def conv2d_transpose_same(x, f):  # f [4, 4, out, in], stride 2, output 2H
    return F.conv_transpose2d(x, f.permute(3, 2, 0, 1), stride=2, padding=1)


def upscale2d(x):  # reshape + tile, as TF's nearest upscaling
    n, c, h, w = x.shape
    return x.reshape(n, c, h, 1, w, 1).expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


def pad_and_sum(w):  # [3, 3, a, b] -> [4, 4, a, b]: TF's pad by 1, add the 4 shifts
    w = F.pad(w.permute(2, 3, 0, 1), (1, 1, 1, 1)).permute(2, 3, 0, 1)
    return w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]


def mapping(v, z, lrmul, gain, post_gain, layers):
    x = pixel_norm(z)
    for i in range(layers):
        w, b = v[f"Dense{i}/weight"], v[f"Dense{i}/bias"]
        x = x @ (w * gain / math.sqrt(w.shape[0]) * lrmul) + b * lrmul
        x = lrelu(x) * post_gain
    return x


def truncate(ws, avg, psi, cutoff):
    rows = torch.arange(ws.shape[1])[None, :, None]
    coefs = torch.where(rows < (ws.shape[1] if cutoff is None else cutoff), psi, 1.0)
    return avg + (ws - avg) * coefs


# ------------------------------------------------------------------------------------------
# PGGAN: G_paper at lod 0


def pggan(net, z: torch.Tensor) -> torch.Tensor:
    v, kw = variables(net), net.static_kwargs
    log2, fused = int(np.log2(kw["resolution"])), kw.get("fused_scale", True)
    x = pixel_norm(z.double())
    w = v["4x4/Dense/weight"]
    x = x @ (w * (SQRT2 / 4) / math.sqrt(w.shape[0]))
    x = x.reshape(len(z), -1, 4, 4)
    x = pixel_norm(lrelu(x + v["4x4/Dense/bias"].view(1, -1, 1, 1)))
    x = pixel_norm(
        lrelu(conv2d_same(x, v["4x4/Conv/weight"]) + v["4x4/Conv/bias"].view(1, -1, 1, 1))
    )
    for res in range(3, log2 + 1):
        r = 2**res
        if fused:  # upscale2d_conv2d: w [k, k, out, in], fan_in 9 * in
            w = v[f"{r}x{r}/Conv0_up/weight"]
            w = w * SQRT2 / math.sqrt(9 * w.shape[3])
            x = conv2d_transpose_same(x, pad_and_sum(w)) + v[f"{r}x{r}/Conv0_up/bias"].view(
                1, -1, 1, 1
            )
        else:
            x = conv2d_same(upscale2d(x), v[f"{r}x{r}/Conv0/weight"]) + v[
                f"{r}x{r}/Conv0/bias"
            ].view(1, -1, 1, 1)
        x = pixel_norm(lrelu(x))
        x = conv2d_same(x, v[f"{r}x{r}/Conv1/weight"]) + v[f"{r}x{r}/Conv1/bias"].view(1, -1, 1, 1)
        x = pixel_norm(lrelu(x))
    return conv2d_same(x, v["ToRGB_lod0/weight"], gain=1) + v["ToRGB_lod0/bias"].view(1, -1, 1, 1)


# ------------------------------------------------------------------------------------------
# StyleGAN: G_style, noise read from the variables (randomize_noise=False)


def _epilogue(x, v, scope, w, i, w_dim):
    x = x + v[f"noise{i}"] * v[f"{scope}/Noise/weight"].view(1, -1, 1, 1)
    x = lrelu(x + v[f"{scope}/bias"].view(1, -1, 1, 1))
    x = x - x.mean(dim=(2, 3), keepdim=True)
    x = x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + 1e-8)
    style = w @ (v[f"{scope}/StyleMod/weight"] / math.sqrt(w_dim)) + v[f"{scope}/StyleMod/bias"]
    style = style.view(len(w), 2, -1, 1, 1)
    return x * (style[:, 0] + 1) + style[:, 1]


def _blur(x, taps=(1.0, 2.0, 1.0)):
    f = t(taps)
    k = f[:, None] * f[None, :]
    k = k / k.sum()
    return F.conv2d(x, k.expand(x.shape[1], 1, 3, 3), padding=1, groups=x.shape[1])


def stylegan1(gs, z: torch.Tensor, psi: float = 1.0, cutoff: int | None = 8) -> torch.Tensor:
    top, mp, syn = (
        variables(gs),
        variables(gs.components["mapping"]),
        variables(gs.components["synthesis"]),
    )
    kw, mkw = gs.static_kwargs, gs.components["mapping"].static_kwargs
    log2, w_dim = int(np.log2(kw["resolution"])), kw["dlatent_size"]
    fused_setting = kw.get("fused_scale", "auto")
    w = mapping(mp, z.double(), mkw.get("mapping_lrmul", 0.01), SQRT2, 1.0, mkw["mapping_layers"])
    ws = w[:, None].expand(-1, 2 * log2 - 2, -1)
    if psi != 1 and cutoff is not None:
        ws = truncate(ws, top["dlatent_avg"], psi, cutoff)
    x = syn["4x4/Const/const"].expand(len(z), -1, -1, -1)
    x = _epilogue(x, syn, "4x4/Const", ws[:, 0], 0, w_dim)
    x = _epilogue(conv2d_same(x, syn["4x4/Conv/weight"]), syn, "4x4/Conv", ws[:, 1], 1, w_dim)
    for res in range(3, log2 + 1):
        r, i = 2**res, 2 * res - 4
        w0 = syn[f"{r}x{r}/Conv0_up/weight"]
        fused = r >= 128 if fused_setting == "auto" else fused_setting
        if fused:  # [k, k, in, out] -> [k, k, out, in], padded and summed, transposed conv
            scaled = w0 * SQRT2 / math.sqrt(9 * w0.shape[2])
            x = conv2d_transpose_same(x, pad_and_sum(scaled.permute(0, 1, 3, 2)))
        else:
            x = conv2d_same(upscale2d(x), w0)
        x = _epilogue(_blur(x), syn, f"{r}x{r}/Conv0_up", ws[:, i], i, w_dim)
        x = conv2d_same(x, syn[f"{r}x{r}/Conv1/weight"])
        x = _epilogue(x, syn, f"{r}x{r}/Conv1", ws[:, i + 1], i + 1, w_dim)
    return conv2d_same(x, syn["ToRGB_lod0/weight"], gain=1) + syn["ToRGB_lod0/bias"].view(
        1, -1, 1, 1
    )


# ------------------------------------------------------------------------------------------
# StyleGAN2: G_main with G_synthesis_stylegan2 ('skip'), noise from the variables


def _kernel(taps=(1.0, 3.0, 3.0, 1.0)):
    f = t(taps)
    k = f[:, None] * f[None, :]
    return k / k.sum()


def upfirdn(x, k, up, pad0, pad1):
    """TF's `upfirdn_2d` reference: insert zeros, pad, convolve with k (flipped: a true
    convolution)."""
    n, c, h, w = x.shape
    y = x.new_zeros(n, c, h * up, w * up)
    y[:, :, ::up, ::up] = x
    y = F.pad(y, (pad0, pad1, pad0, pad1))
    out = F.conv2d(y.reshape(n * c, 1, *y.shape[2:]), k.flip(0, 1)[None, None])
    return out.reshape(n, c, *out.shape[2:])


def upsample_2d(x):
    k = _kernel() * 4
    p = k.shape[0] - 2
    return upfirdn(x, k, 2, (p + 1) // 2 + 1, p // 2)


def upsample_conv_2d(x, w):  # w [3, 3, in, out]
    k = _kernel() * 4
    p = (k.shape[0] - 2) - (w.shape[0] - 1)
    f = w.flip(0, 1).permute(0, 1, 3, 2)  # TF: w[::-1, ::-1], transposed to [k, k, out, in]
    x = F.conv_transpose2d(x, f.permute(3, 2, 0, 1), stride=2)  # VALID
    return upfirdn(x, k, 1, (p + 1) // 2 + 1, p // 2 + 1)


def _modconv(x, w, v, scope, demodulate=True, up=False):
    """modulated_conv2d_layer, unfused form: scale inputs by s, convolve, scale outputs by d."""
    weight = v[f"{scope}/weight"]
    k, c_in = weight.shape[0], weight.shape[2]
    weight = weight / math.sqrt(k * k * c_in)
    s = w @ (v[f"{scope}/mod_weight"] / math.sqrt(w.shape[1])) + v[f"{scope}/mod_bias"] + 1
    x = x * s[:, :, None, None]
    x = upsample_conv_2d(x, weight) if up else conv2d(x, weight)
    if demodulate:
        ww = weight[None] * s[:, None, None, :, None]
        d = torch.rsqrt(ww.square().sum(dim=(1, 2, 3)) + 1e-8)
        x = x * d[:, :, None, None]
    return x


def _sg2_layer(x, w, v, scope, noise_index, up=False):
    x = _modconv(x, w, v, scope, up=up)
    x = x + v[f"noise{noise_index}"] * v[f"{scope}/noise_strength"]
    return lrelu(x + v[f"{scope}/bias"].view(1, -1, 1, 1)) * SQRT2


def _torgb(x, w, v, scope):
    return _modconv(x, w, v, scope, demodulate=False) + v[f"{scope}/bias"].view(1, -1, 1, 1)


def stylegan2(gs, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
    top, mp, syn = (
        variables(gs),
        variables(gs.components["mapping"]),
        variables(gs.components["synthesis"]),
    )
    kw, mkw = gs.static_kwargs, gs.components["mapping"].static_kwargs
    log2 = int(np.log2(kw["resolution"]))
    w = mapping(mp, z.double(), mkw.get("mapping_lrmul", 0.01), 1.0, SQRT2, mkw["mapping_layers"])
    ws = w[:, None].expand(-1, 2 * log2 - 2, -1)
    if psi != 1:
        ws = truncate(ws, top["dlatent_avg"], psi, kw.get("truncation_cutoff"))
    x = syn["4x4/Const/const"].expand(len(z), -1, -1, -1)
    x = _sg2_layer(x, ws[:, 0], syn, "4x4/Conv", 0)
    y = _torgb(x, ws[:, 1], syn, "4x4/ToRGB")
    for res in range(3, log2 + 1):
        r = 2**res
        x = _sg2_layer(x, ws[:, 2 * res - 5], syn, f"{r}x{r}/Conv0_up", 2 * res - 5, up=True)
        x = _sg2_layer(x, ws[:, 2 * res - 4], syn, f"{r}x{r}/Conv1", 2 * res - 4)
        y = upsample_2d(y) + _torgb(x, ws[:, 2 * res - 3], syn, f"{r}x{r}/ToRGB")
    return y
