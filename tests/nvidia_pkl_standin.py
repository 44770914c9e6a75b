"""A TEST-ONLY stand-in of NVIDIA's `torch_utils.persistence`: StyleGAN2-ADA `.pkl` files of
random weights, for every test that needs one (tests/models/test_nvidia_pkl.py,
tests/test_hostile_cli.py).

Each network is an nn.Module whose `__reduce__` is NVIDIA's (a GLOBAL of
`torch_utils.persistence _reconstruct_persistent_obj` and a REDUCE on the meta dict {type,
version, module_src, class_name, state = the module's __dict__}); tensors pickle as torch
pickles them with plain `pickle`; hyper-parameters are numpy scalars and `dnnlib.util.EasyDict`s,
as in NVIDIA's files. Its weights are random, under NVIDIA's names: a 16 px generator, w_dim 8,
two mapping layers (`tiny_generator`, `snapshot`, `write_tiny_nvidia_pkl`).
"""

from __future__ import annotations

import contextlib
import math
import pickle
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import torch

SIZE, W_DIM, N_MLP = 16, 8, 2
CHANNELS = {4: 16, 8: 16, 16: 8}  # NVIDIA's min(channel_base // res, channel_max), 128 and 16
FILTER = [1.0, 3.0, 3.0, 1.0]
HARMLESS_SOURCE = "# the source of NVIDIA's training/networks.py travels here\n"


def _reconstruct_persistent_obj(meta):
    """What NVIDIA's loader does with a record: run its module source. A loader that resolves
    this name instead of refusing or replacing it runs the file's code."""
    exec(compile(meta["module_src"], "<module_src>", "exec"), types.ModuleType("nv").__dict__)  # noqa: S102
    raise AssertionError("a loader called the pickled persistence function")


class EasyDict(dict):
    """Pickles as `dnnlib.util.EasyDict` (NVIDIA's init_kwargs)."""


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
    assert not set(added) & set(sys.modules)
    sys.modules.update(added)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


class NvModule(torch.nn.Module):
    """An nn.Module that pickles as NVIDIA's `@persistent_class` objects do."""

    def __init__(self, class_name: str, module_src: str = HARMLESS_SOURCE, **attributes):
        super().__init__()
        self._nv_class, self._nv_src = class_name, module_src
        self._init_args, self._init_kwargs = (), EasyDict()
        for name, value in attributes.items():
            setattr(self, name, value)

    def __reduce__(self):
        state = {k: v for k, v in self.__getstate__().items() if not k.startswith("_nv_")}
        meta = dict(
            type="class",
            version=6,
            module_src=self._nv_src,
            class_name=self._nv_class,
            state=state,
        )
        return (_reconstruct_persistent_obj, (meta,))


def param(t: torch.Tensor) -> torch.nn.Parameter:
    return torch.nn.Parameter(t.float(), requires_grad=False)


def _fc(rng, n_in, n_out, lr=1.0, bias_init=0.0, activation="lrelu", **kw) -> NvModule:
    m = NvModule("FullyConnectedLayer", activation=activation, **kw)
    m.weight = param(torch.randn(n_out, n_in, generator=rng) / lr)
    m.bias = param(bias_init + 0.2 * torch.randn(n_out, generator=rng))
    m.weight_gain = np.float64(lr / np.sqrt(n_in))  # numpy scalars, as NVIDIA keeps them
    m.bias_gain = lr
    return m


def _resample_filter() -> torch.Tensor:
    f = torch.tensor(FILTER)
    return f / f.sum()


def _layer(rng, c_in, c_out, res, up, **kw) -> NvModule:
    m = NvModule("SynthesisLayer", resolution=res, up=up, use_noise=True, activation="lrelu",
                 conv_clamp=None, padding=1, act_gain=np.float64(np.sqrt(2)), **kw)  # fmt: skip
    m.affine = _fc(rng, W_DIM, c_in, bias_init=1.0, activation="linear")
    m.weight = param(torch.randn(c_out, c_in, 3, 3, generator=rng))
    m.register_buffer("resample_filter", _resample_filter())
    m.register_buffer("noise_const", torch.randn(res, res, generator=rng))
    m.noise_strength = param(0.3 * torch.randn([], generator=rng))
    m.bias = param(0.2 * torch.randn(c_out, generator=rng))
    return m


def _torgb(rng, c_in) -> NvModule:
    m = NvModule("ToRGBLayer", conv_clamp=None, weight_gain=np.float64(1 / np.sqrt(c_in)))
    m.affine = _fc(rng, W_DIM, c_in, bias_init=1.0, activation="linear")
    m.weight = param(torch.randn(3, c_in, 1, 1, generator=rng))
    m.bias = param(0.2 * torch.randn(3, generator=rng))
    return m


def tiny_generator(seed: int, lr: float = 0.01, module_src: str = HARMLESS_SOURCE) -> NvModule:
    """An NVIDIA-layout StyleGAN2 generator of random weights (16 px, w_dim 8, 2 fc layers)."""
    rng = torch.Generator().manual_seed(seed)
    num_ws = 2 * int(math.log2(SIZE)) - 2
    synthesis = NvModule("SynthesisNetwork", w_dim=W_DIM, img_resolution=SIZE, img_channels=3,
                         num_ws=num_ws)  # fmt: skip
    for res in sorted(CHANNELS):
        block = NvModule("SynthesisBlock", in_channels=CHANNELS.get(res // 2, 0), resolution=res,
                         architecture="skip", is_last=res == SIZE, use_fp16=False,
                         num_conv=1 if res == 4 else 2, num_torgb=1)  # fmt: skip
        block.register_buffer("resample_filter", _resample_filter())
        if res == 4:
            block.const = param(torch.randn(CHANNELS[4], 4, 4, generator=rng))
        else:
            block.conv0 = _layer(rng, CHANNELS[res // 2], CHANNELS[res], res, up=2)
        block.conv1 = _layer(rng, CHANNELS[res], CHANNELS[res], res, up=1)
        block.torgb = _torgb(rng, CHANNELS[res])
        setattr(synthesis, f"b{res}", block)
    mapping = NvModule("MappingNetwork", z_dim=W_DIM, c_dim=0, w_dim=W_DIM, num_ws=num_ws,
                       num_layers=N_MLP, w_avg_beta=0.995)  # fmt: skip
    for i in range(N_MLP):
        setattr(mapping, f"fc{i}", _fc(rng, W_DIM, W_DIM, lr=lr))
    mapping.register_buffer("w_avg", 0.3 * torch.randn(W_DIM, generator=rng))
    g = NvModule("Generator", module_src=module_src, z_dim=W_DIM, c_dim=0, w_dim=W_DIM,
                 img_resolution=SIZE, img_channels=3, num_ws=num_ws)  # fmt: skip
    g._init_kwargs = EasyDict(
        z_dim=W_DIM, c_dim=0, w_dim=W_DIM, img_resolution=SIZE, img_channels=3,
        mapping_kwargs=EasyDict(num_layers=N_MLP),
        synthesis_kwargs=EasyDict(channel_base=128, channel_max=16, architecture="skip"),
    )  # fmt: skip
    g.synthesis, g.mapping = synthesis, mapping
    return g


def snapshot(seed: int = 0, **kw) -> dict:
    """NVIDIA's snapshot dict; D is a small record of its own."""
    d = NvModule("Discriminator", c_dim=0, img_resolution=SIZE)
    d.b16 = _fc(torch.Generator().manual_seed(seed + 7), 4, 4)
    return {
        "G": tiny_generator(seed + 1, **kw),
        "D": d,
        "G_ema": tiny_generator(seed, **kw),
        "augment_pipe": None,
        "training_set_kwargs": EasyDict(class_name="training.dataset.ImageFolderDataset",
                                        resolution=SIZE, use_labels=False),
    }  # fmt: skip


def write_pickle(path: Path, data, protocol: int = 3) -> Path:
    """Pickle as NVIDIA's training loop does (Python 3.7's default protocol: 3)."""
    with nvidia_names(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage's deprecation notice
        path.write_bytes(pickle.dumps(data, protocol=protocol))
    return path


def write_tiny_nvidia_pkl(path: Path, seed: int = 0, protocol: int = 3, **kw) -> Path:
    return write_pickle(path, snapshot(seed, **kw), protocol)
