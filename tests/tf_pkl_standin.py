"""A TEST-ONLY stand-in of NVIDIA's TensorFlow `Network` pickles (PGGAN, StyleGAN, StyleGAN2).

`Network` pickles under NVIDIA's class paths (`dnnlib.tflib.network.Network`,
`tfutil.Network`) with the state its `__getstate__` writes upstream: version, name,
static_kwargs, components (dnnlib only), build_module_src, build_func_name and variables,
a list of (TensorFlow name, numpy array) pairs, arrays pickled by numpy's own reduce and
`lod` as the numpy scalar TensorFlow returns for a variable of shape []. Its `__setstate__`
does what NVIDIA's does first: it executes `build_module_src`. A reader that resolves the
class instead of refusing or replacing it therefore runs the file's code.

The variables are random, under the names and shapes NVIDIA's build functions give them
(`stylegan1_gs`, `stylegan2_gs`, `pggan_g`), for tiny 16 px networks.
"""

from __future__ import annotations

import contextlib
import pickle
import types
from pathlib import Path

import numpy as np

from importable import importable

HARMLESS_SOURCE = "# the source of NVIDIA's networks module travels here\n"


class Network:
    """Pickles as `dnnlib.tflib.network.Network` (inside `tf_names`)."""

    version = 4
    with_components = True

    def __init__(self, name, func, static_kwargs, variables, components=None, src=None):
        self.name, self.func = name, func
        self.static_kwargs = dict(static_kwargs)
        self.variables = dict(variables)
        self.components = dict(components or {})
        self.src = HARMLESS_SOURCE if src is None else src

    def __getstate__(self) -> dict:
        state = {"version": self.version, "name": self.name, "static_kwargs": self.static_kwargs}
        if self.with_components:
            state["components"] = self.components
        state["build_module_src"] = self.src
        state["build_func_name"] = self.func
        state["variables"] = list(self.variables.items())
        return state

    def __setstate__(self, state: dict) -> None:
        # What NVIDIA's loaders do first (dnnlib.tflib.network, tfutil): run the source.
        exec(compile(state["build_module_src"], "<build_module_src>", "exec"), {})  # noqa: S102
        self.__dict__.update(state)


class TfutilNetwork(Network):
    """Pickles as PGGAN's `tfutil.Network` (inside `tf_names`): version 2, no components."""

    version = 2
    with_components = False


@contextlib.contextmanager
def tf_names():
    """`dnnlib.tflib.network.Network` and `tfutil.Network` importable while it lasts (pickle
    writes a GLOBAL only for a name it can look up); removed afterwards."""
    network = types.ModuleType("dnnlib.tflib.network")
    tfutil = types.ModuleType("tfutil")
    saved = [(cls, cls.__module__, cls.__qualname__) for cls in (Network, TfutilNetwork)]
    Network.__module__, Network.__qualname__ = network.__name__, "Network"
    TfutilNetwork.__module__, TfutilNetwork.__qualname__ = "tfutil", "Network"
    network.Network, tfutil.Network = Network, TfutilNetwork
    added = {
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.tflib": types.ModuleType("dnnlib.tflib"),
        "dnnlib.tflib.network": network,
        "tfutil": tfutil,
    }
    try:
        with importable(added):
            yield
    finally:
        for cls, module, qualname in saved:
            cls.__module__, cls.__qualname__ = module, qualname


def write_tf_pickle(path: Path, nets: tuple, protocol: int = 4) -> Path:
    """Pickle (G, D, Gs) as NVIDIA's training loops do (`pickle.dump`, here any protocol)."""
    with tf_names():
        Path(path).write_bytes(pickle.dumps(tuple(nets), protocol=protocol))
    return Path(path)


# ------------------------------------------------------------------------------------------
# Random variables under NVIDIA's names


class Weights:
    """Random float32 arrays from one seed."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def __call__(self, *shape, scale: float = 1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)


def _nf(kwargs: dict, stage: int, clipped: bool) -> int:
    n = int(kwargs["fmap_base"] / (2.0 ** (stage * kwargs.get("fmap_decay", 1.0))))
    return (
        max(min(n, kwargs["fmap_max"]), kwargs.get("fmap_min", 1))
        if clipped
        else min(n, kwargs["fmap_max"])
    )


def mapping_vars(rnd: Weights, z_dim: int, hidden: int, w_dim: int, layers: int) -> dict:
    dims = [z_dim] + [hidden] * (layers - 1) + [w_dim]
    out = {}
    for i in range(layers):
        out[f"Dense{i}/weight"] = rnd(dims[i], dims[i + 1])
        out[f"Dense{i}/bias"] = rnd(dims[i + 1], scale=0.5)
    return out


SG1_KWARGS = {
    "num_channels": 3,
    "resolution": 16,
    "label_size": 0,
    "latent_size": 8,
    "dlatent_size": 8,
    "mapping_layers": 2,
    "mapping_fmaps": 8,
    "fmap_base": 64,
    "fmap_max": 16,
}


def stylegan1_synthesis_vars(rnd: Weights, kw: dict) -> dict:
    log2, w = int(np.log2(kw["resolution"])), kw["dlatent_size"]
    nf = lambda s: _nf(kw, s, clipped=False)  # noqa: E731
    out = {"lod": np.float32(0)}
    for i in range(2 * log2 - 2):
        r = 2 ** (i // 2 + 2)
        out[f"noise{i}"] = rnd(1, 1, r, r)
    scopes = ["4x4/Const", "4x4/Conv"]
    for res in range(3, log2 + 1):
        scopes += [f"{2**res}x{2**res}/Conv0_up", f"{2**res}x{2**res}/Conv1"]
    out["4x4/Const/const"] = rnd(1, nf(1), 4, 4)
    for i, scope in enumerate(scopes):
        c = nf(i // 2 + 1)
        if i > 0:
            out[f"{scope}/weight"] = rnd(3, 3, nf(i // 2) if i % 2 == 0 else c, c)
        out[f"{scope}/Noise/weight"] = rnd(c, scale=0.3)
        out[f"{scope}/bias"] = rnd(c, scale=0.3)
        out[f"{scope}/StyleMod/weight"] = rnd(w, 2 * c)
        out[f"{scope}/StyleMod/bias"] = rnd(2 * c, scale=0.3)
    for res in range(2, log2 + 1):
        out[f"ToRGB_lod{log2 - res}/weight"] = rnd(1, 1, nf(res - 1), 3)
        out[f"ToRGB_lod{log2 - res}/bias"] = rnd(3, scale=0.3)
    return out


def _style_gs(build: str, synthesis_build: str, synthesis_vars, kw: dict, seed, src, name):
    """A mapping + synthesis network pair under `build` (G_style or G_main), as both
    StyleGAN releases pickle their `Gs`: `lod` and `dlatent_avg` its own variables."""
    rnd = Weights(seed)
    num_layers = 2 * int(np.log2(kw["resolution"])) - 2
    layers, width = kw["mapping_layers"], kw["dlatent_size"]
    mapping = Network(
        "G_mapping", "G_mapping", {**kw, "dlatent_broadcast": num_layers},
        mapping_vars(rnd, kw["latent_size"], kw["mapping_fmaps"], width, layers), src=src,
    )  # fmt: skip
    synthesis = Network("G_synthesis", synthesis_build, kw, synthesis_vars(rnd, kw), src=src)
    own = {"lod": np.float32(0), "dlatent_avg": rnd(width, scale=0.5)}
    return Network(name, build, kw, own, {"synthesis": synthesis, "mapping": mapping}, src)


def stylegan1_gs(seed: int = 0, src: str | None = None, name: str = "Gs", **changes) -> Network:
    """A G_style network (what `Gs` is in NVIDIA's StyleGAN pickles)."""
    kw = {**SG1_KWARGS, **changes}
    return _style_gs("G_style", "G_synthesis", stylegan1_synthesis_vars, kw, seed, src, name)


SG2_KWARGS = SG1_KWARGS  # the same tiny shape; each release reads what it knows


def _modconv(rnd: Weights, scope: str, c_in: int, c_out: int, k: int, w: int, noise: bool) -> dict:
    out = {
        f"{scope}/weight": rnd(k, k, c_in, c_out),
        f"{scope}/mod_weight": rnd(w, c_in),
        f"{scope}/mod_bias": rnd(c_in, scale=0.3),
    }
    if noise:
        out[f"{scope}/noise_strength"] = np.float32(0.4)
    out[f"{scope}/bias"] = rnd(c_out, scale=0.3)
    return out


def stylegan2_synthesis_vars(rnd: Weights, kw: dict) -> dict:
    log2, w = int(np.log2(kw["resolution"])), kw["dlatent_size"]
    nf = lambda s: _nf(kw, s, clipped=True)  # noqa: E731
    out = {}
    for i in range(2 * log2 - 3):
        r = 2 ** ((i + 5) // 2)
        out[f"noise{i}"] = rnd(1, 1, r, r)
    out["4x4/Const/const"] = rnd(1, nf(1), 4, 4)
    out.update(_modconv(rnd, "4x4/Conv", nf(1), nf(1), 3, w, True))
    out.update(_modconv(rnd, "4x4/ToRGB", nf(1), 3, 1, w, False))
    for res in range(3, log2 + 1):
        r, c_in, c = 2**res, nf(res - 2), nf(res - 1)
        out.update(_modconv(rnd, f"{r}x{r}/Conv0_up", c_in, c, 3, w, True))
        out.update(_modconv(rnd, f"{r}x{r}/Conv1", c, c, 3, w, True))
        out.update(_modconv(rnd, f"{r}x{r}/ToRGB", c, 3, 1, w, False))
    return out


def stylegan2_gs(seed: int = 0, src: str | None = None, name: str = "Gs", **changes) -> Network:
    """A G_main network with G_synthesis_stylegan2 (configs E and F; F's default fmap_base,
    E's halved one in its static kwargs)."""
    kw = {**SG2_KWARGS, **changes}
    synthesis = "G_synthesis_stylegan2"
    return _style_gs("G_main", synthesis, stylegan2_synthesis_vars, kw, seed, src, name)


PGGAN_KWARGS = {
    "num_channels": 3,
    "resolution": 16,
    "label_size": 0,
    "fmap_base": 64,
    "fmap_max": 16,
}


def pggan_g(seed: int = 0, src: str | None = None, name: str = "Gs", **changes) -> TfutilNetwork:
    """A G_paper network (PGGAN's generator; latent_size None: nf(0))."""
    kw = {**PGGAN_KWARGS, **changes}
    rnd = Weights(seed)
    log2, fused = int(np.log2(kw["resolution"])), kw.get("fused_scale", True)
    nf = lambda s: _nf(kw, s, clipped=False)  # noqa: E731
    z = kw.get("latent_size") or nf(0)
    v = {"lod": np.float32(0)}
    v["4x4/Dense/weight"], v["4x4/Dense/bias"] = rnd(z, nf(1) * 16), rnd(nf(1), scale=0.3)
    v["4x4/Conv/weight"], v["4x4/Conv/bias"] = rnd(3, 3, nf(1), nf(1)), rnd(nf(1), scale=0.3)
    for res in range(3, log2 + 1):
        r, c_in, c = 2**res, nf(res - 2), nf(res - 1)
        up = f"{r}x{r}/Conv0_up" if fused else f"{r}x{r}/Conv0"
        v[f"{up}/weight"] = rnd(3, 3, c, c_in) if fused else rnd(3, 3, c_in, c)
        v[f"{up}/bias"] = rnd(c, scale=0.3)
        v[f"{r}x{r}/Conv1/weight"], v[f"{r}x{r}/Conv1/bias"] = rnd(3, 3, c, c), rnd(c, scale=0.3)
    for res in range(2, log2 + 1):
        v[f"ToRGB_lod{log2 - res}/weight"] = rnd(1, 1, nf(res - 1), 3)
        v[f"ToRGB_lod{log2 - res}/bias"] = rnd(3, scale=0.3)
    return TfutilNetwork(name, "G_paper", kw, v, src=src)


def discriminator(cls=Network, seed: int = 99, src: str | None = None) -> Network:
    """A stand-in D: its contents do not matter to a generator reader."""
    rnd = Weights(seed)
    variables = {"lod": np.float32(0), "4x4/Dense0/weight": rnd(16, 4), "Output/bias": rnd(1)}
    return cls("D", "D_basic", {"resolution": 16}, variables, src=src)


def network_tuple(kind: str, src: str | None = None, **changes) -> tuple:
    """(G, D, Gs) of `kind` ("stylegan1", "stylegan2", "pggan"); G and Gs differ in weights."""
    build = {"stylegan1": stylegan1_gs, "stylegan2": stylegan2_gs, "pggan": pggan_g}[kind]
    cls = TfutilNetwork if kind == "pggan" else Network
    g = build(seed=1, src=src, name="G", **changes)
    return g, discriminator(cls, src=src), build(seed=0, src=src, name="Gs", **changes)
