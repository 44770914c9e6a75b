"""NVIDIA's TensorFlow generators (read by `ganedit.models.tf_pickle`) as ganedit generators.

Which network a record is comes from its build function: `G_paper` (`tfutil.Network`,
PGGAN), `G_style` (StyleGAN, with components `mapping` = `G_mapping` and `synthesis` =
`G_synthesis`) or `G_main` (StyleGAN2, `G_mapping` and `G_synthesis_stylegan2`). Its static
kwargs, with the build function's defaults for those it leaves out, give the architecture:
from them the table of every variable the TensorFlow graph would create (name and shape) is
computed, and the pickle must hold exactly those (none missing, none extra, every shape
equal, floating point, finite). Settings ganedit cannot reproduce are refused with one line.

The variables are then renamed and reshaped into the state dict of ganedit's module:

- StyleGAN2 -> `ganedit.models.stylegan2.Generator` (rosinality's names): dense weights
  transposed ([in, out] -> [out, in]); convolutions [k, k, in, out] -> [1, out, in, k, k],
  the up-sampling ones also flipped in both spatial axes (TensorFlow's transposed
  convolution runs the kernel the other way round); `mod_bias` + 1 (TensorFlow adds the 1 at
  run time); `noise_strength` [] -> [1]; ToRGB's bias [3] -> [1, 3, 1, 1].
- StyleGAN -> `ganedit.models.stylegan1` (InterFaceGAN's names): dense and style weights
  transposed; convolutions [k, k, in, out] -> [out, in, k, k], except the fused up-sampling
  ones (from 128 px with `fused_scale='auto'`), kept as [k, k, in, out] as InterFaceGAN
  keeps them; the blur filter written into each up-sampling layer's `blur.kernel`.
- PGGAN -> `ganedit.models.pggan` (InterFaceGAN's first release's names, `layer1..`,
  `output_RxR`): the 4x4 dense layer [z, 16 C] -> a 4x4 convolution on z as a 1x1 map
  ([C, z, 4, 4], both spatial axes reversed); convolutions [k, k, in, out] -> [out, in, k,
  k]; a fused up-sampling convolution ([k, k, out, in], a transposed convolution of the
  kernel summed over 2x2 windows) -> the equal nearest-upsampling + convolution kernel,
  [out, in, k, k] flipped in both spatial axes.

`dlatent_avg` becomes the generator's w_avg. Only fully grown networks (`lod` 0) are read.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganedit.errors import UserInputError, expect
from ganedit.models.pggan import pggan_from_state
from ganedit.models.stylegan1 import MAPPING_LR, stylegan1_from_state
from ganedit.models.stylegan2.convert import export_rosinality_checkpoint, infer_channel_config
from ganedit.models.stylegan2.networks import Generator
from ganedit.models.stylegan2.nvidia_pkl import with_rosinality_lr
from ganedit.models.tf_pickle import TFNetwork, describe, read_tf_pickle
from ganedit.utils.arrays import check_finite
from ganedit.utils.files import atomic_path

log = logging.getLogger(__name__)

NETWORKS = {"G_ema": 2, "G": 0}  # Gs, NVIDIA's averaged generator, is what it renders
LABELS = {"G_ema": "Gs", "G": "G"}
INTERFACEGAN_CUTOFF = 8  # the truncation cutoff InterFaceGAN's StyleGAN .pth layout implies
ROSINALITY_TAPS = [1, 3, 3, 1]


@dataclass(frozen=True)
class TFGenerator:
    """A TensorFlow generator as ganedit's module.

    Attributes:
        kind: "pggan", "stylegan1" or "stylegan2".
        generator: the module (eval mode).
        w_avg: the tracked mean w [w_dim] (`dlatent_avg`), None for PGGAN.
        truncation_cutoff: how many leading ws rows the network truncates (its
            `truncation_cutoff`; None: all of them, StyleGAN2's default; PGGAN: None).
    """

    kind: str
    generator: nn.Module
    w_avg: torch.Tensor | None
    truncation_cutoff: int | None


# ------------------------------------------------------------------------------------------
# Static kwargs


class _Kwargs:
    """One network's static kwargs over its build function's defaults, read with checks."""

    def __init__(self, net: TFNetwork, defaults: dict, where: str):
        self.values = {**defaults, **net.static_kwargs}
        self.where = f"{where} ({net.build_func_name})"
        ignored = sorted(set(net.static_kwargs) - set(defaults))
        if ignored:  # the build functions take **kwargs and ignore these too
            log.debug("%s: static kwargs its build function ignores: %s", self.where, ignored)

    def __getitem__(self, key: str):
        return self.values[key]

    def require(self, key: str, allowed: tuple, why: str = "ganedit cannot reproduce it"):
        """The value, refused unless one of `allowed` (of the same type: True is not 1)."""
        value = self.values[key]
        ok = any(value == a and type(value) is type(a) for a in allowed)
        if not ok:
            shown = " or ".join(repr(a) for a in allowed)
            raise UserInputError(
                f"expected {key} {shown} in {self.where}, received {describe(value)}: {why}"
            )
        return value

    def whole(self, key: str, low: int = 1, high: int = 1 << 16) -> int:
        value = self.values[key]
        ok = type(value) is int and low <= value <= high
        expect(ok, f"{key} a whole number in [{low}, {high}] in {self.where}", describe(value))
        return value

    def number(self, key: str, positive: bool = True) -> float:
        value = self.values[key]
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and (value > 0 or not positive)
        expect(
            ok,
            f"{key} a finite number{' > 0' if positive else ''} in {self.where}",
            describe(value),
        )
        return float(value)

    def log2_resolution(self, low: int) -> int:
        value = self.values["resolution"]
        ok = type(value) is int and low <= value <= 1024 and value & (value - 1) == 0
        expect(ok, f"a resolution that is a power of two from {low} to 1024 in {self.where}", value)
        return value.bit_length() - 1

    def note_dtype(self) -> None:
        if self["dtype"] != "float32":
            log.info("%s computes in %s; ganedit renders in float32", self.where, self["dtype"])


def _channel_counts(kw: _Kwargs, log2: int, clipped: bool) -> Callable[[int], int]:
    """NVIDIA's nf(stage): fmap_base / 2^(stage fmap_decay), capped at fmap_max (StyleGAN2
    also clips below at fmap_min), checked >= 1 at every stage the network uses."""
    base, decay = kw.number("fmap_base"), kw.number("fmap_decay", positive=False)
    top = kw.whole("fmap_max")
    bottom = kw.whole("fmap_min") if clipped else 1

    def nf(stage: int) -> int:
        n = int(base / (2.0 ** (stage * decay)))
        return max(min(n, top), bottom) if clipped else min(n, top)

    counts = [nf(stage) for stage in range(log2)]
    expect(min(counts) >= 1, f"at least one feature map per layer in {kw.where}", counts)
    return nf


# ------------------------------------------------------------------------------------------
# Variables


def _take(net: TFNetwork, table: dict[str, tuple], where: str) -> dict[str, torch.Tensor]:
    """The network's variables as float32 tensors, which must be exactly `table`'s names
    and shapes (what its static kwargs build), floating point and finite."""
    missing = [name for name in table if name not in net.variables]
    if missing:
        shape = list(table[missing[0]])
        raise UserInputError(
            f"expected variable {missing[0]} of shape {shape} in {where}, received none "
            f"({len(missing)} missing)"
        )
    extra = sorted(set(net.variables) - set(table))
    expect(
        not extra,
        f"only the variables {net.build_func_name} builds from its static kwargs in {where}",
        f"also {extra[:3]}",
    )
    out = {}
    for name, shape in table.items():
        array = net.variables[name]
        expect(array.dtype.kind == "f", f"floating-point {name} in {where}", str(array.dtype))
        expect(array.shape == shape, f"{name} of shape {list(shape)} in {where}", list(array.shape))
        check_finite(array, f"{name} in {where}")
        out[name] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return out


def _component(top: TFNetwork, key: str, func: str, where: str) -> TFNetwork:
    comp = top.components.get(key)
    received = "none" if comp is None else comp.build_func_name
    if comp is None or comp.build_func_name != func:
        raise UserInputError(
            f"expected a {key} component built by {func} in {where}, received {received}"
        )
    return comp


def _check_grown(value: torch.Tensor, where: str) -> None:
    lod = float(value)
    if lod != 0:
        raise UserInputError(
            f"expected a fully grown network (lod 0) in {where}, received lod {lod:g}: "
            "ganedit renders only the final resolution"
        )


def _conv(weight: torch.Tensor) -> torch.Tensor:  # [k, k, in, out] -> [out, in, k, k]
    return weight.permute(3, 2, 0, 1).contiguous()


# ------------------------------------------------------------------------------------------
# The mapping network (StyleGAN and StyleGAN2 name it alike)

MAPPING_DEFAULTS = {
    "latent_size": 512,
    "label_size": 0,
    "dlatent_size": 512,
    "dlatent_broadcast": None,
    "mapping_layers": 8,
    "mapping_fmaps": 512,
    "mapping_lrmul": 0.01,
    "mapping_nonlinearity": "lrelu",
    "use_wscale": True,
    "normalize_latents": True,
    "dtype": "float32",
}
# StyleGAN2's G_mapping always scales its weights at run time: it has no use_wscale.
MAPPING2_DEFAULTS = {k: v for k, v in MAPPING_DEFAULTS.items() if k != "use_wscale"}


def _mapping(
    net: TFNetwork, where: str, w_dim: int, defaults: dict
) -> tuple[list[torch.Tensor], float]:
    """The dense layers' (weight [out, in], bias [out]) pairs, flattened, and the mapping's
    learning-rate multiplier (weights are stored divided by it)."""
    kw = _Kwargs(net, defaults, where)
    kw.require("label_size", (0,), "conditional generators are not supported")
    kw.require("mapping_nonlinearity", ("lrelu",))
    if "use_wscale" in defaults:
        kw.require("use_wscale", (True,))
    kw.require("normalize_latents", (True,))
    kw.note_dtype()
    n = kw.whole("mapping_layers", 1, 64)
    expect(
        kw.whole("dlatent_size") == w_dim, f"dlatent_size {w_dim} in {kw.where}", kw["dlatent_size"]
    )
    dims = [kw.whole("latent_size")] + [kw.whole("mapping_fmaps")] * (n - 1) + [w_dim]
    table = {}
    for i in range(n):
        table[f"Dense{i}/weight"] = (dims[i], dims[i + 1])
        table[f"Dense{i}/bias"] = (dims[i + 1],)
    v = _take(net, table, where)
    layers = []
    for i in range(n):
        layers += [v[f"Dense{i}/weight"].T.contiguous(), v[f"Dense{i}/bias"]]
    return layers, kw.number("mapping_lrmul")


# ------------------------------------------------------------------------------------------
# StyleGAN (v1): G_style -> ganedit.models.stylegan1

G_STYLE_DEFAULTS = {"truncation_psi": 0.7, "truncation_cutoff": 8}
G_SYNTHESIS_DEFAULTS = {
    "dlatent_size": 512,
    "num_channels": 3,
    "resolution": 1024,
    "fmap_base": 8192,
    "fmap_decay": 1.0,
    "fmap_max": 512,
    "use_styles": True,
    "const_input_layer": True,
    "use_noise": True,
    "randomize_noise": True,
    "nonlinearity": "lrelu",
    "use_wscale": True,
    "use_pixel_norm": False,
    "use_instance_norm": True,
    "dtype": "float32",
    "fused_scale": "auto",
    "blur_filter": [1, 2, 1],
    "structure": "auto",
}


def _sg1_scopes(log2: int) -> list[str]:
    """Each style layer's variable scope, layer 0 first."""
    scopes = ["4x4/Const", "4x4/Conv"]
    for res in range(3, log2 + 1):
        r = 2**res
        scopes += [f"{r}x{r}/Conv0_up", f"{r}x{r}/Conv1"]
    return scopes


def _sg1_blur(kw: _Kwargs) -> torch.Tensor:  # [3, 3]
    """The blur after each up-sampling (`blur_filter`, normalised to sum 1; None: none)."""
    f = kw["blur_filter"]
    if f is None:
        f = [1]
    ok = isinstance(f, list | tuple) and len(f) in (1, 3)
    ok = ok and all(isinstance(t, int | float) and not isinstance(t, bool) for t in f)
    expect(
        ok and math.isfinite(sum(f)) and sum(f) != 0,
        f"blur_filter None or 1 or 3 numbers in {kw.where}",
        describe(f),
    )
    taps = torch.tensor([float(t) for t in f], dtype=torch.float32)
    kernel = taps[:, None] * taps[None, :]
    kernel = kernel / kernel.sum()
    return kernel if len(f) == 3 else nn.functional.pad(kernel, (1, 1, 1, 1))


def _sg1_fused(kw: _Kwargs, log2: int) -> list[bool]:
    """Per resolution from 4 px, whether its up-sampling layer is a transposed convolution
    (`fused_scale`; 'auto': from 128 px)."""
    setting = kw.require("fused_scale", ("auto", True, False))
    return [
        res >= 3 and (2**res >= 128 if setting == "auto" else setting) for res in range(2, log2 + 1)
    ]


def _sg1_table(log2: int, nf, w_dim: int, noise: bool) -> dict[str, tuple]:
    table: dict[str, tuple] = {"lod": ()}
    scopes = _sg1_scopes(log2)
    if noise:
        for i in range(len(scopes)):
            r = 2 ** (i // 2 + 2)
            table[f"noise{i}"] = (1, 1, r, r)
    table["4x4/Const/const"] = (1, nf(1), 4, 4)
    for i, scope in enumerate(scopes):
        c = nf(i // 2 + 1)
        if i > 0:
            table[f"{scope}/weight"] = (3, 3, nf(i // 2) if i % 2 == 0 else c, c)
        if noise:
            table[f"{scope}/Noise/weight"] = (c,)
        table[f"{scope}/bias"] = (c,)
        table[f"{scope}/StyleMod/weight"] = (w_dim, 2 * c)
        table[f"{scope}/StyleMod/bias"] = (2 * c,)
    for res in range(2, log2 + 1):
        table[f"ToRGB_lod{log2 - res}/weight"] = (1, 1, nf(res - 1), 3)
        table[f"ToRGB_lod{log2 - res}/bias"] = (3,)
    return table


def _sg1_layer(v: dict, i: int, scope: str, c: int, fused: bool, blur) -> dict:
    """InterFaceGAN's names for style layer i."""
    p = f"synthesis.layer{i}"
    r = 2 ** (i // 2 + 2)
    out = {
        f"{p}.epilogue.apply_noise.weight": v.get(f"{scope}/Noise/weight", torch.zeros(c)),
        f"{p}.epilogue.apply_noise.noise": v.get(f"noise{i}", torch.zeros(1, 1, r, r)),
        f"{p}.epilogue.bias": v[f"{scope}/bias"],
        f"{p}.epilogue.style_mod.dense.linear.weight": v[f"{scope}/StyleMod/weight"].T.contiguous(),
        f"{p}.epilogue.style_mod.dense.wscale.bias": v[f"{scope}/StyleMod/bias"],
    }
    if i == 0:
        out[f"{p}.first_layer"] = v["4x4/Const/const"]
    elif fused:  # kept as [k, k, in, out], as InterFaceGAN's fused layers hold it
        out[f"{p}.weight"] = v[f"{scope}/weight"]
    else:
        out[f"{p}.conv.weight"] = _conv(v[f"{scope}/weight"])
    if i > 0 and i % 2 == 0:
        out[f"{p}.blur.kernel"] = blur.expand(c, 1, 3, 3).clone()
    return out


def _sg1_synthesis(net: TFNetwork, where: str) -> tuple[dict, int]:
    """InterFaceGAN's `synthesis.*` state and w_dim."""
    kw = _Kwargs(net, G_SYNTHESIS_DEFAULTS, where)
    kw.require("num_channels", (3,))
    for key, value in [("use_styles", True), ("const_input_layer", True), ("use_wscale", True),
                       ("use_pixel_norm", False), ("use_instance_norm", True)]:  # fmt: skip
        kw.require(key, (value,))
    kw.require("nonlinearity", ("lrelu",))
    noise = kw.require("use_noise", (True, False))
    kw.note_dtype()
    log2, w_dim = kw.log2_resolution(4), kw.whole("dlatent_size")
    nf = _channel_counts(kw, log2, clipped=False)
    fused, blur = _sg1_fused(kw, log2), _sg1_blur(kw)
    v = _take(net, _sg1_table(log2, nf, w_dim, noise), where)
    _check_grown(v["lod"], where)
    state = {"synthesis.lod": v["lod"]}
    for i, scope in enumerate(_sg1_scopes(log2)):
        state.update(_sg1_layer(v, i, scope, nf(i // 2 + 1), fused[i // 2] and i % 2 == 0, blur))
    for b in range(log2 - 1):
        state[f"synthesis.output{b}.conv.weight"] = _conv(v[f"ToRGB_lod{log2 - 2 - b}/weight"])
        state[f"synthesis.output{b}.bias"] = v[f"ToRGB_lod{log2 - 2 - b}/bias"]
    return state, w_dim


def _sg1_cutoff(kw: _Kwargs) -> int:
    """G_style's truncation cutoff (None or <= 0: no truncation, as 0)."""
    cutoff = kw["truncation_cutoff"]
    if cutoff is None:
        log.info("%s truncates no layer (truncation_cutoff None): psi has no effect", kw.where)
        return 0
    return max(kw.whole("truncation_cutoff", -(1 << 16)), 0)


def _stylegan1(top: TFNetwork, where: str) -> TFGenerator:
    kw = _Kwargs(top, G_STYLE_DEFAULTS, where)
    mapping = _component(top, "mapping", "G_mapping", where)
    synthesis = _component(top, "synthesis", "G_synthesis", where)
    state, w_dim = _sg1_synthesis(synthesis, f"{where}/synthesis")
    layers, lr = _mapping(mapping, f"{where}/mapping", w_dim, MAPPING_DEFAULTS)
    factor = lr / MAPPING_LR  # ganedit's StyleGAN applies StyleGAN's 0.01: rescaled to match
    for i in range(len(layers) // 2):
        state[f"mapping.dense{i}.linear.weight"] = layers[2 * i] * factor
        state[f"mapping.dense{i}.wscale.bias"] = layers[2 * i + 1] * factor
    own = _take(top, {"lod": (), "dlatent_avg": (w_dim,)}, where)
    _check_grown(own["lod"], where)
    state["truncation.w_avg"] = own["dlatent_avg"]
    g = stylegan1_from_state(state)
    return TFGenerator("stylegan1", g, g.w_avg.clone(), _sg1_cutoff(kw))


# ------------------------------------------------------------------------------------------
# StyleGAN2: G_main -> ganedit.models.stylegan2.Generator

G_MAIN_DEFAULTS = {
    "truncation_psi": 0.5,
    "truncation_cutoff": None,
    "mapping_func": "G_mapping",
    "synthesis_func": "G_synthesis_stylegan2",
}
G_SYNTHESIS2_DEFAULTS = {
    "dlatent_size": 512,
    "num_channels": 3,
    "resolution": 1024,
    "fmap_base": 16 << 10,
    "fmap_decay": 1.0,
    "fmap_min": 1,
    "fmap_max": 512,
    "randomize_noise": True,
    "architecture": "skip",
    "nonlinearity": "lrelu",
    "dtype": "float32",
    "resample_kernel": [1, 3, 3, 1],
    "fused_modconv": True,
}


def _sg2_layers(log2: int) -> list[tuple[str, str, int, int]]:
    """(TensorFlow scope, ganedit prefix, resolution, noise index) of every convolution."""
    layers = [("4x4/Conv", "conv1", 4, 0)]
    for j, res in enumerate(range(3, log2 + 1)):
        r = 2**res
        layers += [(f"{r}x{r}/Conv0_up", f"convs.{2 * j}", r, 2 * j + 1)]
        layers += [(f"{r}x{r}/Conv1", f"convs.{2 * j + 1}", r, 2 * j + 2)]
    return layers


def _sg2_rgbs(log2: int) -> list[tuple[str, str]]:
    rgbs = [("4x4/ToRGB", "to_rgb1")]
    return rgbs + [(f"{2**res}x{2**res}/ToRGB", f"to_rgbs.{res - 3}") for res in range(3, log2 + 1)]


def _sg2_table(log2: int, nf, w_dim: int) -> dict[str, tuple]:
    table: dict[str, tuple] = {"4x4/Const/const": (1, nf(1), 4, 4)}
    for scope, _, r, n in _sg2_layers(log2):
        c_out = nf(r.bit_length() - 2)
        c_in = nf(r.bit_length() - 3) if scope.endswith("Conv0_up") else c_out
        table.update(_modconv_table(scope, c_in, c_out, 3, w_dim))
        table[f"{scope}/noise_strength"] = ()
        table[f"noise{n}"] = (1, 1, r, r)
    for res, (scope, _) in enumerate(_sg2_rgbs(log2), start=2):
        table.update(_modconv_table(scope, nf(res - 1), 3, 1, w_dim))
    return table


def _modconv_table(scope: str, c_in: int, c_out: int, k: int, w_dim: int) -> dict:
    return {
        f"{scope}/weight": (k, k, c_in, c_out),
        f"{scope}/mod_weight": (w_dim, c_in),
        f"{scope}/mod_bias": (c_in,),
        f"{scope}/bias": (c_out,),
    }


def _modulation(v: dict, scope: str, prefix: str) -> dict:
    return {
        f"{prefix}.conv.modulation.weight": v[f"{scope}/mod_weight"].T.contiguous(),
        f"{prefix}.conv.modulation.bias": v[f"{scope}/mod_bias"] + 1,  # added at run time in TF
    }


def _sg2_state(v: dict, log2: int) -> dict:
    """rosinality's synthesis state from the TensorFlow variables."""
    state = {"input.input": v["4x4/Const/const"]}
    for scope, prefix, _, n in _sg2_layers(log2):
        weight = v[f"{scope}/weight"]
        if scope.endswith("Conv0_up"):  # TF's transposed convolution runs the kernel flipped
            weight = weight.flip(0, 1)
        state[f"{prefix}.conv.weight"] = _conv(weight)[None]
        state.update(_modulation(v, scope, prefix))
        state[f"{prefix}.noise.weight"] = v[f"{scope}/noise_strength"].reshape(1)
        state[f"{prefix}.activate.bias"] = v[f"{scope}/bias"]
        state[f"noises.noise_{n}"] = v[f"noise{n}"]
    for scope, prefix in _sg2_rgbs(log2):
        state[f"{prefix}.conv.weight"] = _conv(v[f"{scope}/weight"])[None]
        state.update(_modulation(v, scope, prefix))
        state[f"{prefix}.bias"] = v[f"{scope}/bias"].reshape(1, 3, 1, 1)
    return state


def _sg2_taps(kw: _Kwargs) -> list:
    """The separable resample filter (`resample_kernel`; None: [1, 1], as NVIDIA's ops)."""
    taps = kw["resample_kernel"]
    taps = [1, 1] if taps is None else taps
    ok = isinstance(taps, list | tuple) and 1 <= len(taps) <= 16
    ok = ok and all(isinstance(t, int | float) and not isinstance(t, bool) for t in taps)
    ok = ok and math.isfinite(sum(taps)) and sum(taps) > 0
    expect(ok, f"resample_kernel a list of 1 to 16 numbers (sum > 0) in {kw.where}", describe(taps))
    return list(taps)


def _sg2_synthesis(net: TFNetwork, where: str) -> tuple[dict, dict]:
    """rosinality's synthesis state and the Generator kwargs it implies."""
    kw = _Kwargs(net, G_SYNTHESIS2_DEFAULTS, where)
    kw.require("num_channels", (3,))
    kw.require("architecture", ("skip",), "ganedit's StyleGAN2 has the 'skip' generator only")
    kw.require("nonlinearity", ("lrelu",))
    kw.note_dtype()
    log2, w_dim = kw.log2_resolution(8), kw.whole("dlatent_size")
    nf = _channel_counts(kw, log2, clipped=True)
    v = _take(net, _sg2_table(log2, nf, w_dim), where)
    channels = {2**res: nf(res - 1) for res in range(2, log2 + 1)}
    config = {"size": 2**log2, "style_dim": w_dim, "blur_kernel": _sg2_taps(kw)}
    return _sg2_state(v, log2), {**config, **_channel_kwargs(channels, 2**log2)}


def _channel_kwargs(channels: dict[int, int], size: int) -> dict:
    try:
        multiplier, cap = infer_channel_config(channels, size)
    except UserInputError:  # NVIDIA's fmap_base / fmap_max need not fit rosinality's table
        return {"channels": [channels[r] for r in sorted(channels)]}
    return {"channel_multiplier": multiplier, "channel_max": cap}


def _load_weights(g: nn.Module, state: dict) -> None:
    """Every parameter and the noise maps from `state`; only the resample filters, which
    the Generator builds from its `blur_kernel`, keep their own values."""
    missing, unexpected = g.load_state_dict(state, strict=False)
    left = [k for k in missing if not k.endswith("kernel")]
    if unexpected or left:  # a bug in the table above, not the file's fault
        raise RuntimeError(f"StyleGAN2 state mismatch: {unexpected[:3]} {left[:3]}")


def _sg2_cutoff(kw: _Kwargs) -> int | None:
    cutoff = kw["truncation_cutoff"]
    return None if cutoff is None else kw.whole("truncation_cutoff", 0)


def _stylegan2(top: TFNetwork, where: str) -> TFGenerator:
    kw = _Kwargs(top, G_MAIN_DEFAULTS, where)
    kw.require("mapping_func", ("G_mapping",))
    revised = "the StyleGAN2 paper's configs B-D (progressive growing) are not supported"
    kw.require("synthesis_func", ("G_synthesis_stylegan2",), revised)
    mapping = _component(top, "mapping", "G_mapping", where)
    synthesis = _component(top, "synthesis", "G_synthesis_stylegan2", where)
    state, config = _sg2_synthesis(synthesis, f"{where}/synthesis")
    w_dim = config["style_dim"]
    layers, lr = _mapping(mapping, f"{where}/mapping", w_dim, MAPPING2_DEFAULTS)
    widths = {tuple(w.shape) for w in layers[0::2]}
    expect(
        widths == {(w_dim, w_dim)},
        f"mapping layers of {w_dim} x {w_dim} (z_dim = w_dim) in {where}",
        sorted(widths),
    )
    for i in range(len(layers) // 2):
        state[f"style.{i + 1}.weight"], state[f"style.{i + 1}.bias"] = layers[2 * i : 2 * i + 2]
    state["w_avg"] = _take(top, {"lod": (), "dlatent_avg": (w_dim,)}, where)["dlatent_avg"]
    g = Generator(**config, n_mlp=len(layers) // 2, lr_mlp=lr)
    _load_weights(g, state)
    return TFGenerator("stylegan2", g.eval(), g.w_avg.clone(), _sg2_cutoff(kw))


# ------------------------------------------------------------------------------------------
# PGGAN: G_paper -> ganedit.models.pggan.PGGANGenerator

G_PAPER_DEFAULTS = {
    "num_channels": 1,
    "resolution": 32,
    "label_size": 0,
    "fmap_base": 8192,
    "fmap_decay": 1.0,
    "fmap_max": 512,
    "latent_size": None,
    "normalize_latents": True,
    "use_wscale": True,
    "use_pixelnorm": True,
    "pixelnorm_epsilon": 1e-8,
    "use_leakyrelu": True,
    "dtype": "float32",
    "fused_scale": True,
    "structure": None,
}


def _pggan_table(log2: int, nf, z_dim: int, fused: bool) -> dict[str, tuple]:
    table: dict[str, tuple] = {"lod": ()}
    table["4x4/Dense/weight"], table["4x4/Dense/bias"] = (z_dim, nf(1) * 16), (nf(1),)
    table["4x4/Conv/weight"], table["4x4/Conv/bias"] = (3, 3, nf(1), nf(1)), (nf(1),)
    for res in range(3, log2 + 1):
        r, c_in, c = 2**res, nf(res - 2), nf(res - 1)
        up = f"{r}x{r}/Conv0_up" if fused else f"{r}x{r}/Conv0"
        table[f"{up}/weight"] = (3, 3, c, c_in) if fused else (3, 3, c_in, c)
        table[f"{up}/bias"] = (c,)
        table[f"{r}x{r}/Conv1/weight"], table[f"{r}x{r}/Conv1/bias"] = (3, 3, c, c), (c,)
    for res in range(2, log2 + 1):
        table[f"ToRGB_lod{log2 - res}/weight"] = (1, 1, nf(res - 1), 3)
        table[f"ToRGB_lod{log2 - res}/bias"] = (3,)
    return table


def _pggan_state(v: dict, log2: int, fused: bool) -> dict:
    dense = v["4x4/Dense/weight"]  # [z, 16 C]: reshaped to C maps of 4x4
    z_dim, c = dense.shape[0], dense.shape[1] // 16
    state = {
        # z as a 1x1 map padded by 3: output pixel (y, x) meets kernel tap (3 - y, 3 - x).
        "layer1.conv.weight": dense.reshape(z_dim, c, 4, 4).permute(1, 0, 2, 3).flip(2, 3),
        "layer1.wscale.bias": v["4x4/Dense/bias"],
        "layer2.conv.weight": _conv(v["4x4/Conv/weight"]),
        "layer2.wscale.bias": v["4x4/Conv/bias"],
    }
    for res in range(3, log2 + 1):
        r, i = 2**res, res - 1
        if fused:  # [k, k, out, in] of a transposed conv -> nearest upsampling + conv
            weight = v[f"{r}x{r}/Conv0_up/weight"].flip(0, 1).permute(2, 3, 0, 1)
            bias = v[f"{r}x{r}/Conv0_up/bias"]
        else:
            weight, bias = _conv(v[f"{r}x{r}/Conv0/weight"]), v[f"{r}x{r}/Conv0/bias"]
        state[f"layer{2 * i - 1}.conv.weight"], state[f"layer{2 * i - 1}.wscale.bias"] = (
            weight,
            bias,
        )
        state[f"layer{2 * i}.conv.weight"] = _conv(v[f"{r}x{r}/Conv1/weight"])
        state[f"layer{2 * i}.wscale.bias"] = v[f"{r}x{r}/Conv1/bias"]
    size = 2**log2
    state[f"output_{size}x{size}.conv.weight"] = _conv(v["ToRGB_lod0/weight"])
    state[f"output_{size}x{size}.wscale.bias"] = v["ToRGB_lod0/bias"]
    return {k: t.contiguous() for k, t in state.items()}


def _pggan(top: TFNetwork, where: str) -> TFGenerator:
    kw = _Kwargs(top, G_PAPER_DEFAULTS, where)
    kw.require("num_channels", (3,))
    kw.require("label_size", (0,), "conditional generators are not supported")
    for key in ("normalize_latents", "use_wscale", "use_pixelnorm", "use_leakyrelu"):
        kw.require(key, (True,))
    kw.require("pixelnorm_epsilon", (1e-8,))
    fused = kw.require("fused_scale", (True, False))
    kw.note_dtype()
    log2 = kw.log2_resolution(4)
    nf = _channel_counts(kw, log2, clipped=False)
    z_dim = nf(0) if kw["latent_size"] is None else kw.whole("latent_size")
    v = _take(top, _pggan_table(log2, nf, z_dim, fused), where)
    _check_grown(v["lod"], where)
    log.debug("%s: the lower resolutions' ToRGB layers are not used at lod 0", where)
    g = pggan_from_state(_pggan_state(v, log2, fused))
    return TFGenerator("pggan", g, None, None)


# ------------------------------------------------------------------------------------------
# Public entry points

BUILDERS = {
    ("tfutil", "G_paper"): _pggan,
    ("dnnlib", "G_style"): _stylegan1,
    ("dnnlib", "G_main"): _stylegan2,
}


def check_network(network: str) -> None:
    """Refuse a network name other than G_ema (the pickle's Gs) or G."""
    expect(network in NETWORKS, f"a generator network of the pickle in {tuple(NETWORKS)}", network)


def tf_generator(nets: tuple[TFNetwork, ...], network: str, where: str) -> TFGenerator:
    """The tuple's G (`network` "G") or Gs ("G_ema") as a ganedit generator."""
    check_network(network)
    top = nets[NETWORKS[network]]
    build = BUILDERS.get((top.origin, top.build_func_name))
    if build is None:
        raise UserInputError(
            f"expected a generator built by G_paper (PGGAN), G_style (StyleGAN) or G_main "
            f"(StyleGAN2) in {where}, received {top.build_func_name!r} ({top.origin})"
        )
    return build(top, f"{where} {LABELS[network]}")


@torch.no_grad()
def load_tf_pickle(
    path: str | Path, device: str | torch.device = "cpu", *, network: str = "G_ema"
) -> TFGenerator:
    """Read a TensorFlow PGGAN, StyleGAN or StyleGAN2 pickle into ganedit's module, safely
    (nothing in the file is run; see `ganedit.models.tf_pickle`).

    Args:
        path: the `.pkl` file (NVIDIA's (G, D, Gs) tuple).
        network: "G_ema" (Gs, the averaged generator NVIDIA renders) or "G".

    Raises:
        UserInputError: a reference outside the allow-list, an architecture or setting
            ganedit cannot reproduce, or variables that do not match the static kwargs.
        DamagedInputError: a truncated or corrupt file, non-finite weights.
    """
    check_network(network)
    where = repr(str(path))
    loaded = tf_generator(read_tf_pickle(path), network, where)
    log.info("read %s of %s: %s", LABELS[network], where, loaded.generator.extra_repr())
    w_avg = None if loaded.w_avg is None else loaded.w_avg.to(device)
    return TFGenerator(loaded.kind, loaded.generator.to(device), w_avg, loaded.truncation_cutoff)


def _save_state_dict(module: nn.Module, out: Path) -> None:
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    with atomic_path(out) as tmp:
        torch.save(state, tmp)


def convert_tf_pickle(path: str | Path, out: str | Path, *, network: str = "G_ema") -> str:
    """Write a TensorFlow pickle's generator as a file ganedit (and its source's tools)
    read: StyleGAN2 -> a StyleGAN2-pytorch `.pt` (`g_ema` + `latent_avg`); StyleGAN and
    PGGAN -> an InterFaceGAN `.pth` state dict. Tensors only, written atomically.

    Returns:
        The written layout, in words.

    Raises:
        UserInputError: `out`'s suffix is not the layout's, or the network has a setting the
            layout cannot hold (a truncation cutoff, a resample filter other than [1, 3, 3, 1]).
    """
    out = Path(out)
    loaded = load_tf_pickle(path, network=network)
    suffix = ".pt" if loaded.kind == "stylegan2" else ".pth"
    expect(out.suffix.lower() == suffix, f"a {suffix} path for a {loaded.kind} network", str(out))
    if loaded.kind == "stylegan2":
        return _write_stylegan2(loaded, out)
    if loaded.kind == "stylegan1":
        cutoff = loaded.truncation_cutoff
        expect(
            cutoff == INTERFACEGAN_CUTOFF,
            f"truncation_cutoff {INTERFACEGAN_CUTOFF}, the only one InterFaceGAN's .pth layout implies (read the .pkl directly instead)",
            cutoff,
        )
    _save_state_dict(loaded.generator, out)
    return "an InterFaceGAN state dict"


def _write_stylegan2(loaded: TFGenerator, out: Path) -> str:
    g = loaded.generator
    expect(  # the layout has no field for these: its readers rebuild the defaults
        g.config["blur_kernel"] == ROSINALITY_TAPS,
        "the [1, 3, 3, 1] resample filter, the only one StyleGAN2-pytorch files can hold",
        g.config["blur_kernel"],
    )
    expect(
        loaded.truncation_cutoff is None,
        "truncation_cutoff None (all layers), the only one StyleGAN2-pytorch files imply",
        loaded.truncation_cutoff,
    )
    export_rosinality_checkpoint(out, with_rosinality_lr(g))
    return "a StyleGAN2-pytorch checkpoint"
