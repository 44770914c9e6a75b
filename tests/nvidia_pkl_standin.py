"""A TEST-ONLY stand-in of NVIDIA's `torch_utils.persistence`: StyleGAN2-ADA `.pkl` files of
random weights, for every test that needs one (tests/models/test_nvidia_pkl.py,
tests/test_hostile_cli.py).

Built from the layout record (docs/models.md, "The layout of a StyleGAN2-ADA pickle"), not
from ganedit's reader: each network is an nn.Module whose `__reduce__` is NVIDIA's (a GLOBAL
of `torch_utils.persistence _reconstruct_persistent_obj` and a REDUCE on the meta dict {type,
version, module_src, class_name, state = the module's __dict__}), with the attributes
NVIDIA's objects have, of the same Python types: `_init_args` (a tuple) and `_init_kwargs` (a
plain dict holding `dnnlib.util.EasyDict`s where train.py made them), gains as numpy scalars,
`conv_clamp` a Python int, `use_fp16` per block from `num_fp16_res`, every `resample_filter`
buffer 2-D [4, 4] as `upfirdn2d.setup_filter([1, 3, 3, 1])` stores it, `noise_const` per
layer, `w_avg`, and a 'resnet' discriminator. Tensors pickle as torch pickles them with plain
`pickle`. The snapshot is the dict NVIDIA's training loop writes (`training_set_kwargs` a plain
dict, then G, D, G_ema, augment_pipe).

The defaults are what `train.py` writes (`num_fp16_res` 4, `conv_clamp` 256, minibatch-std
group 4), scaled down: 16 px, w_dim 8, two mapping layers, channel_base 128, channel_max 16.
"""

from __future__ import annotations

import contextlib
import math
import pickle
import types
import warnings
from pathlib import Path

import numpy as np
import torch

from importable import importable

SIZE, W_DIM, N_MLP = 16, 8, 2
CHANNEL_BASE, CHANNEL_MAX = 128, 16
CHANNELS = {r: min(CHANNEL_BASE // r, CHANNEL_MAX) for r in (4, 8, 16)}  # 16, 16, 8
FILTER = [1.0, 3.0, 3.0, 1.0]
CONV_CLAMP = 256  # train.py's, a Python int
NUM_FP16_RES = 4
MBSTD_GROUP = 4
HARMLESS_SOURCE = "# the source of NVIDIA's training/networks.py travels here\n"


def _reconstruct_persistent_obj(meta):
    """What NVIDIA's loader does with a record: run its module source. A loader that resolves
    this name instead of refusing or replacing it runs the file's code."""
    exec(compile(meta["module_src"], "<module_src>", "exec"), types.ModuleType("nv").__dict__)  # noqa: S102
    raise AssertionError("a loader called the pickled persistence function")


class EasyDict(dict):
    """Pickles as `dnnlib.util.EasyDict`."""


@contextlib.contextmanager
def nvidia_names():
    """`torch_utils.persistence` and `dnnlib.util` importable while it lasts (pickle writes a
    GLOBAL only for a name it can look up); removed afterwards."""
    persistence = types.ModuleType("torch_utils.persistence")
    util = types.ModuleType("dnnlib.util")
    _reconstruct_persistent_obj.__module__ = persistence.__name__
    EasyDict.__module__ = util.__name__
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util.EasyDict = EasyDict
    added = {
        "torch_utils": types.ModuleType("torch_utils"),
        "torch_utils.persistence": persistence,
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.util": util,
    }
    with importable(added):
        yield


class NvModule(torch.nn.Module):
    """An nn.Module that pickles as NVIDIA's `@persistent_class` objects do (eval mode, as the
    training loop snapshots them)."""

    def __init__(self, class_name: str, args: tuple = (), kwargs: dict | None = None,
                 module_src: str = HARMLESS_SOURCE, **attributes):  # fmt: skip
        super().__init__()
        self._nv_class, self._nv_src = class_name, module_src
        for name, value in attributes.items():
            setattr(self, name, value)
        self._init_args, self._init_kwargs = tuple(args), dict(kwargs or {})

    def __reduce__(self):
        state = {k: v for k, v in self.__getstate__().items() if not k.startswith("_nv_")}
        meta = dict(
            type="class", version=6, module_src=self._nv_src, class_name=self._nv_class,
            state=state,
        )  # fmt: skip
        return (_reconstruct_persistent_obj, (meta,))


def param(t: torch.Tensor) -> torch.nn.Parameter:
    return torch.nn.Parameter(t.float(), requires_grad=False)


def setup_filter(taps=FILTER) -> torch.Tensor:
    """NVIDIA's `upfirdn2d.setup_filter` for a list of taps: under 8 taps, the outer product,
    normalised to sum 1 (a [k, k] buffer); 8 taps or more stay 1-D."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.numel() < 8:
        f = torch.outer(f, f)
    return f / f.sum()


class Builder:
    """Random NVIDIA-layout networks: every layer draws from one seeded generator."""

    def __init__(self, seed: int, module_src: str = HARMLESS_SOURCE, taps=FILTER):
        self.rng = torch.Generator().manual_seed(seed)
        self.src, self.taps = module_src, taps

    def randn(self, *shape) -> torch.Tensor:
        return torch.randn(*shape, generator=self.rng)

    def module(self, class_name: str, args=(), kwargs=None, **attributes) -> NvModule:
        return NvModule(class_name, args, kwargs, self.src, **attributes)

    def fc(self, n_in, n_out, activation="linear", lr=1, bias_init=0.0) -> NvModule:
        """FullyConnectedLayer: weights stored / lr, gains lr / sqrt(n_in) and lr."""
        kwargs = {"activation": activation} if activation != "linear" else {}
        if lr != 1:
            kwargs["lr_multiplier"] = lr
        if bias_init:
            kwargs["bias_init"] = bias_init
        m = self.module("FullyConnectedLayer", (n_in, n_out), kwargs, activation=activation)
        m.weight = param(self.randn(n_out, n_in) / lr)
        m.bias = param(bias_init + 0.2 * self.randn(n_out))
        m.weight_gain = np.float64(lr / np.sqrt(n_in))
        m.bias_gain = lr  # the Python value given: int 1, or a float such as 0.01
        return m

    def conv(self, c_in, c_out, k, activation="lrelu", down=1, bias=True, clamp=None):
        """Conv2dLayer (the discriminator's)."""
        m = self.module(
            "Conv2dLayer", (c_in, c_out), {"kernel_size": k, "activation": activation,
                                           "down": down, "conv_clamp": clamp},
            activation=activation, up=1, down=down, conv_clamp=clamp,
        )  # fmt: skip
        m.register_buffer("resample_filter", setup_filter(self.taps))
        m.padding = k // 2
        m.weight_gain = np.float64(1 / np.sqrt(c_in * k * k))
        m.act_gain = np.float64(np.sqrt(2)) if activation == "lrelu" else 1
        m.weight = param(self.randn(c_out, c_in, k, k))
        m.bias = param(0.2 * self.randn(c_out)) if bias else None
        return m

    def layer(self, c_in, c_out, res, up, clamp) -> NvModule:
        """SynthesisLayer."""
        kwargs = {"w_dim": W_DIM, "resolution": res, "conv_clamp": clamp, "channels_last": False}
        m = self.module("SynthesisLayer", (c_in, c_out), {**kwargs, "up": up}, resolution=res,
                        up=up, use_noise=True, activation="lrelu", conv_clamp=clamp)  # fmt: skip
        m.register_buffer("resample_filter", setup_filter(self.taps))
        m.padding = 1
        m.act_gain = np.float64(np.sqrt(2))
        m.affine = self.fc(W_DIM, c_in, bias_init=1)
        m.weight = param(self.randn(c_out, c_in, 3, 3))
        m.register_buffer("noise_const", self.randn(res, res))
        m.noise_strength = param(0.3 * self.randn([]))
        m.bias = param(0.2 * self.randn(c_out))
        return m

    def torgb(self, c_in, clamp) -> NvModule:
        """ToRGBLayer."""
        m = self.module("ToRGBLayer", (c_in, 3), {"w_dim": W_DIM, "conv_clamp": clamp,
                                                  "channels_last": False}, conv_clamp=clamp)  # fmt: skip
        m.affine = self.fc(W_DIM, c_in, bias_init=1)
        m.weight = param(self.randn(3, c_in, 1, 1))
        m.bias = param(0.2 * self.randn(3))
        m.weight_gain = np.float64(1 / np.sqrt(c_in))
        return m


def _fp16_resolution(num_fp16_res: int, size: int = SIZE) -> int:
    return max(2 ** (int(math.log2(size)) + 1 - num_fp16_res), 8)


def tiny_generator(
    seed: int,
    lr: float = 0.01,
    module_src: str = HARMLESS_SOURCE,
    c_dim: int = 0,
    conv_clamp: int | float | None = CONV_CLAMP,
    num_fp16_res: int = NUM_FP16_RES,
    taps=FILTER,
) -> NvModule:
    """An NVIDIA-layout StyleGAN2 generator of random weights (16 px, w_dim 8, 2 fc layers;
    class-conditional with `c_dim` > 0)."""
    b = Builder(seed, module_src, taps)
    num_ws = 2 * int(math.log2(SIZE)) - 2
    mapping_kwargs = EasyDict(num_layers=N_MLP)
    synthesis_kwargs = EasyDict(channel_base=CHANNEL_BASE, channel_max=CHANNEL_MAX,
                                num_fp16_res=num_fp16_res, conv_clamp=conv_clamp)  # fmt: skip
    common = {"z_dim": W_DIM, "c_dim": c_dim, "w_dim": W_DIM, "img_resolution": SIZE,
              "img_channels": 3}  # fmt: skip
    g = b.module("Generator", (), {**common, "mapping_kwargs": mapping_kwargs,
                                   "synthesis_kwargs": synthesis_kwargs}, **common)  # fmt: skip
    g.synthesis = _synthesis(b, synthesis_kwargs, num_ws)
    g.num_ws = num_ws
    g.mapping = _mapping(b, c_dim, num_ws, lr)
    return g.eval()


def _synthesis(b: Builder, kwargs: dict, num_ws: int) -> NvModule:
    clamp, fp16_from = kwargs["conv_clamp"], _fp16_resolution(kwargs["num_fp16_res"])
    resolutions = sorted(CHANNELS)
    synthesis = b.module(
        "SynthesisNetwork", (), {"w_dim": W_DIM, "img_resolution": SIZE, "img_channels": 3,
                                 **kwargs},
        w_dim=W_DIM, img_resolution=SIZE, img_resolution_log2=int(math.log2(SIZE)),
        img_channels=3, block_resolutions=resolutions,
    )  # fmt: skip
    for res in resolutions:
        c_in = CHANNELS[res // 2] if res > 4 else 0
        use_fp16 = res >= fp16_from
        block = b.module(
            "SynthesisBlock", (c_in, CHANNELS[res]),
            {"w_dim": W_DIM, "resolution": res, "img_channels": 3, "is_last": res == SIZE,
             "use_fp16": use_fp16, "conv_clamp": clamp},
            in_channels=c_in, w_dim=W_DIM, resolution=res, img_channels=3, is_last=res == SIZE,
            architecture="skip", use_fp16=use_fp16, channels_last=False,
        )  # fmt: skip
        block.register_buffer("resample_filter", setup_filter(b.taps))
        block.num_conv = block.num_torgb = 0
        if res == 4:
            block.const = param(b.randn(CHANNELS[4], 4, 4))
        else:
            block.conv0 = b.layer(c_in, CHANNELS[res], res, up=2, clamp=clamp)
            block.num_conv += 1
        block.conv1 = b.layer(CHANNELS[res], CHANNELS[res], res, up=1, clamp=clamp)
        block.num_conv += 1
        block.torgb = b.torgb(CHANNELS[res], clamp)
        block.num_torgb += 1
        setattr(synthesis, f"b{res}", block)
    synthesis.num_ws = num_ws
    return synthesis


def _mapping(b: Builder, c_dim: int, num_ws: int | None, lr: float, w_avg: bool = True,
             n_layers: int = N_MLP, w_dim: int = W_DIM, z_dim: int = W_DIM) -> NvModule:  # fmt: skip
    kwargs = {"z_dim": z_dim, "c_dim": c_dim, "w_dim": w_dim, "num_ws": num_ws,
              "num_layers": n_layers}  # fmt: skip
    beta = 0.995 if w_avg else None
    m = b.module("MappingNetwork", (), kwargs, **kwargs, w_avg_beta=beta)
    embed = w_dim if c_dim else 0
    if c_dim:
        m.embed = b.fc(c_dim, embed)
    features = [z_dim + embed] + [w_dim] * n_layers
    for i in range(n_layers):
        setattr(m, f"fc{i}", b.fc(features[i], features[i + 1], "lrelu", lr))
    if w_avg:
        m.register_buffer("w_avg", 0.3 * b.randn(w_dim))
    return m


def tiny_discriminator(
    seed: int,
    module_src: str = HARMLESS_SOURCE,
    c_dim: int = 0,
    conv_clamp: int | float | None = CONV_CLAMP,
    num_fp16_res: int = NUM_FP16_RES,
    mbstd_group: int | None = MBSTD_GROUP,
    taps=FILTER,
) -> NvModule:
    """An NVIDIA-layout 'resnet' discriminator of random weights (16 px; conditional, with its
    label mapping of 8 fc layers at lr 0.01, when `c_dim` > 0)."""
    b = Builder(seed, module_src, taps)
    resolutions = [16, 8]
    channels = {r: min(CHANNEL_BASE // r, CHANNEL_MAX) for r in [*resolutions, 4]}
    cmap_dim = channels[4] if c_dim else 0
    common = {"c_dim": c_dim, "img_resolution": SIZE, "img_channels": 3}
    d = b.module("Discriminator", (), {**common, "channel_base": CHANNEL_BASE,
                                       "channel_max": CHANNEL_MAX, "num_fp16_res": num_fp16_res,
                                       "conv_clamp": conv_clamp,
                                       "epilogue_kwargs": EasyDict(mbstd_group_size=mbstd_group)},
                 **common, img_resolution_log2=int(math.log2(SIZE)),
                 block_resolutions=resolutions)  # fmt: skip
    fp16_from, layer_idx = _fp16_resolution(num_fp16_res), 0
    for res in resolutions:
        c_in = channels[res] if res < SIZE else 0
        tmp, out = channels[res], channels[res // 2]
        use_fp16 = res >= fp16_from
        block = b.module(
            "DiscriminatorBlock", (c_in, tmp, out),
            {"resolution": res, "first_layer_idx": layer_idx, "use_fp16": use_fp16},
            in_channels=c_in, resolution=res, img_channels=3, first_layer_idx=layer_idx,
            architecture="resnet", use_fp16=use_fp16, channels_last=False,
        )  # fmt: skip
        block.register_buffer("resample_filter", setup_filter(taps))
        if c_in == 0:
            block.fromrgb = b.conv(3, tmp, 1, clamp=conv_clamp)
        block.conv0 = b.conv(tmp, tmp, 3, clamp=conv_clamp)
        block.conv1 = b.conv(tmp, out, 3, down=2, clamp=conv_clamp)
        block.skip = b.conv(tmp, out, 1, "linear", down=2, bias=False)
        block.num_layers = 4 if c_in == 0 else 3
        layer_idx += block.num_layers
        setattr(d, f"b{res}", block)
    if c_dim:
        d.mapping = _mapping(b, c_dim, None, 0.01, w_avg=False, n_layers=8, w_dim=cmap_dim,
                             z_dim=0)  # fmt: skip
    d.b4 = _epilogue(b, channels[4], cmap_dim, conv_clamp, mbstd_group)
    return d.eval()


def _epilogue(b: Builder, c: int, cmap_dim: int, clamp, group) -> NvModule:
    e = b.module("DiscriminatorEpilogue", (c,), {"cmap_dim": cmap_dim, "resolution": 4},
                 in_channels=c, cmap_dim=cmap_dim, resolution=4, img_channels=3,
                 architecture="resnet")  # fmt: skip
    e.mbstd = b.module("MinibatchStdLayer", (), {"group_size": group, "num_channels": 1},
                       group_size=group, num_channels=1)  # fmt: skip
    e.conv = b.conv(c + 1, c, 3, clamp=clamp)
    e.fc = b.fc(c * 16, c, "lrelu")
    e.out = b.fc(c, cmap_dim or 1)
    return e


def snapshot(seed: int = 0, c_dim: int = 0, **kw) -> dict:
    """The dict NVIDIA's training loop pickles, in its order; `kw` go to both generators
    (and `module_src`, `conv_clamp`, `num_fp16_res`, `taps` to the discriminator too)."""
    d_kw = {k: v for k, v in kw.items() if k in ("module_src", "conv_clamp", "num_fp16_res",
                                                  "taps")}  # fmt: skip
    return {
        "training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset",
                                "path": "~/datasets/tiny.zip", "use_labels": c_dim > 0,
                                "max_size": 70, "xflip": False, "resolution": SIZE},
        "G": tiny_generator(seed + 1, c_dim=c_dim, **kw),
        "D": tiny_discriminator(seed + 7, c_dim=c_dim, **d_kw),
        "G_ema": tiny_generator(seed, c_dim=c_dim, **kw),
        "augment_pipe": None,
    }  # fmt: skip


def write_pickle(path: Path, data, protocol: int = 3) -> Path:
    """Pickle as NVIDIA's training loop does (Python 3.7's default protocol: 3)."""
    with nvidia_names(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage's deprecation notice
        path.write_bytes(pickle.dumps(data, protocol=protocol))
    return path


def write_tiny_nvidia_pkl(path: Path, seed: int = 0, protocol: int = 3, **kw) -> Path:
    return write_pickle(path, snapshot(seed, **kw), protocol)
