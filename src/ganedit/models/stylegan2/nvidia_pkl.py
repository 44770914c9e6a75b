"""Read NVIDIA StyleGAN2-ADA network pickles (`network-snapshot-*.pkl`, ffhq.pkl, ...) safely.

Such a file is a plain pickle of {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}.
Each network is written by NVIDIA's `torch_utils.persistence` as a call to
`_reconstruct_persistent_obj(meta)`, where `meta` carries the Python source of the network's
module (`module_src`), the class name and the object's `__dict__` (`state`: `_parameters`,
`_buffers`, `_modules`, hyper-parameters). NVIDIA's loader executes that source. This module
never does: its unpickler resolves a short allow-list of names to stand-ins of its own
(`_ALLOWED`), the persistence call to one that keeps only the class name and the state, and
refuses every other name, so no class, function or source text from the file is imported or
run. Tensors are rebuilt from their storages' bytes by `torch.load(weights_only=True)`.

The generator (`G_ema`, or `G` when asked) is then mapped onto ganedit's `Generator`
(the layout NVIDIA writes is recorded in docs/models.md, "The layout of a StyleGAN2-ADA
pickle"):

    mapping.fc{i}.weight/bias        -> style.{i+1}.weight/bias   (both stored / lr multiplier)
    mapping.embed.weight/bias        -> embed.weight/bias          (class-conditional only)
    mapping.w_avg                    -> w_avg
    synthesis.b4.const [C, 4, 4]     -> input.input [1, C, 4, 4]
    synthesis.b4.conv1, b4.torgb     -> conv1, to_rgb1
    synthesis.b{r}.conv0/conv1/torgb -> convs.{2j}/convs.{2j+1}/to_rgbs.{j}, j = log2(r) - 3
    layer .weight [O, I, k, k]       -> .conv.weight [1, O, I, k, k]
    layer .affine.weight/bias        -> .conv.modulation.weight/bias
    layer .noise_const [r, r]        -> noises.noise_{n} [1, 1, r, r] (n: the layer's index)
    layer .noise_strength []         -> .noise.weight [1]
    layer .bias                      -> .activate.bias (ToRGB: .bias [1, 3, 1, 1])
    every .resample_filter [4, 4]    -> blur_kernel taps (checked: one separable filter)

Both layouts store raw weights and apply the gains at run time, with one difference that
does not change images: NVIDIA's synthesis convolutions skip the 1/sqrt(fan_in) gain that
ganedit (like rosinality) applies, and demodulation divides any constant gain out again.
Hyper-parameters come from the objects' attributes: `c_dim` (a class-conditional generator
keeps its label embedding: `Generator(c_dim=...)`, `mapping(z, c=...)`) and `conv_clamp`
(`Generator(conv_clamp=...)`: each synthesis layer clamped after bias, activation and gain,
each ToRGB after its bias, as NVIDIA clamps).

Precision: NVIDIA runs its `num_fp16_res` highest-resolution blocks (`use_fp16`, 4 in every
training config) in float16 on CUDA; ganedit computes everything in float32, which is what
NVIDIA computes with `force_fp32` or on CPU. The float16 rounding is NVIDIA's own noise, not
part of the network: emulated on CPU on random networks of 16 to 256 px, it moves images by
1e-3 to 2e-3 of their largest value at most (docs/models.md gives the figures).
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import pickle
import struct
import warnings
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganedit.errors import UserInputError, expect
from ganedit.models.restricted_pickle import Refused, restricted_load
from ganedit.models.stylegan2.networks import Generator
from ganedit.utils.arrays import check_finite
from ganedit.utils.bounded import check_tensor_view, describe_keys

log = logging.getLogger(__name__)

NETWORKS = ("G_ema", "G")
# One tensor storage's bytes. The largest in NVIDIA's 1024 px FFHQ snapshot is 16 MiB (D's
# b4 fully connected layer); a storage 64 times that is not a StyleGAN2's.
MAX_STORAGE_BYTES = 1 << 30
ROSINALITY_LR_MLP = 0.01  # what StyleGAN2-pytorch `.pt` loaders assume
WHAT = "an NVIDIA StyleGAN2-ADA network pickle"
_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)  # torch.save's legacy header


# ------------------------------------------------------------------------------------------
# The restricted unpickler


@dataclass(frozen=True, slots=True)
class PersistentRecord:
    """What ganedit keeps of one of NVIDIA's persistent objects: its class name and state
    (the object's `__dict__`); never its module source."""

    class_name: str
    state: dict


@dataclass(frozen=True, slots=True)
class _Storage:
    untyped: torch.UntypedStorage
    dtype: torch.dtype

    @property
    def numel(self) -> int:
        return self.untyped.nbytes() // self.dtype.itemsize


class _DtypeSpec:
    """Stands in for `numpy.dtype(name, align, copy)` plus its pickled state: keeps the name
    and the byte order, which is all a numpy scalar needs."""

    NAMES = ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")

    def __init__(self, name=None, align=False, copy=False):
        if name not in self.NAMES:
            raise Refused("a numpy number type", f"dtype {name!r}")
        self.name, self.byteorder = name, "<"

    def __setstate__(self, state) -> None:
        order = state[1] if isinstance(state, tuple) and len(state) > 1 else None
        if order not in ("<", ">", "|", "="):
            raise Refused("a numpy dtype state", f"{type(state).__name__}", damaged=True)
        self.byteorder = order if order in ("<", ">") else "="


def _numpy_scalar(dtype, data=None) -> int | float | bool:
    """A numpy scalar (NVIDIA keeps gains such as 1 / np.sqrt(fan_in)) as a Python number."""
    if not isinstance(dtype, _DtypeSpec) or not isinstance(data, bytes):
        raise Refused("a numpy number", f"a scalar of {type(dtype).__name__}", damaged=True)
    np_dtype = np.dtype(dtype.name).newbyteorder(dtype.byteorder)
    if len(data) != np_dtype.itemsize:
        raise Refused(f"{np_dtype.itemsize} bytes of {dtype.name}", f"{len(data)}", damaged=True)
    return np.frombuffer(data, dtype=np_dtype)[0].item()


def _persistent_record(meta) -> PersistentRecord:
    """Stands in for `torch_utils.persistence._reconstruct_persistent_obj`: keeps the class
    name and the state; `module_src` is dropped unread."""
    ok = (
        isinstance(meta, dict)
        and meta.get("type") == "class"
        and isinstance(meta.get("class_name"), str)
        and isinstance(meta.get("state"), dict)
    )
    if not ok:
        received = describe_keys(meta)
        raise Refused("persistent records {type: 'class', class_name, state}", f"{received}")
    return PersistentRecord(meta["class_name"], meta["state"])


def _storage_from_bytes(data) -> _Storage:
    """Stands in for `torch.storage._load_from_bytes`: the bytes hold one storage written by
    torch.save (legacy format), which `torch.load(weights_only=True)` reads without code."""
    if not isinstance(data, bytes):
        raise Refused("storage bytes", type(data).__name__, damaged=True)
    if len(data) > MAX_STORAGE_BYTES:
        raise Refused(
            f"tensor storages of at most {MAX_STORAGE_BYTES} bytes", f"one of {len(data)} bytes"
        )
    if not data.startswith(_LEGACY_MAGIC):
        # What `Storage.__reduce__` writes. The zip format, which torch.load would also take,
        # may hold compressed records that inflate far beyond the bytes given.
        raise Refused("storages in torch's legacy format", "other bytes", damaged=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage's deprecation notice
            storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            untyped, dtype = storage._untyped_storage, storage.dtype
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, KeyError,
            AttributeError, IndexError, struct.error, zipfile.BadZipFile) as err:  # fmt: skip
        raise Refused("tensor storages torch can read", type(err).__name__, damaged=True) from None
    if untyped.nbytes() > len(data):  # the bytes must hold what the storage claims
        raise Refused("a storage inside its bytes", f"{untyped.nbytes()} bytes", damaged=True)
    return _Storage(untyped, dtype)


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, meta=None):
    """Stands in for `torch._utils._rebuild_tensor_v2`: a view of `storage`, checked to lie
    inside it (a claimed size beyond the storage is refused before anything is allocated)."""
    ints = lambda v: isinstance(v, tuple) and all(type(i) is int and i >= 0 for i in v)  # noqa: E731
    ok = (
        isinstance(storage, _Storage)
        and type(offset) is int
        and offset >= 0
        and ints(size)
        and ints(stride)
        and len(size) == len(stride) <= 8
    )
    if not ok:
        raise Refused("tensors (storage, offset, size, stride)", "other arguments", damaged=True)
    needed = (
        0 if 0 in size else offset + 1 + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    )
    if needed > storage.numel:
        raise Refused(
            "tensors inside their storage",
            f"a tensor of shape {list(size)} needing {needed} elements of a storage of "
            f"{storage.numel}",
            damaged=True,
        )
    itemsize = storage.dtype.itemsize
    check_tensor_view(size, stride, offset, storage.numel, itemsize, name="", where="the pickle")
    return torch.empty(0, dtype=storage.dtype).set_(storage.untyped, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None) -> torch.Tensor:
    """Stands in for `torch._utils._rebuild_parameter(_with_state)`: the plain tensor."""
    if not isinstance(data, torch.Tensor):
        raise Refused("a parameter's tensor", type(data).__name__, damaged=True)
    return data


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_record,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,  # nn.Module's `_non_persistent_buffers_set` (protocol < 4)
    ("dnnlib.util", "EasyDict"): dict,  # an attribute-access dict: the plain dict is the same
    ("numpy", "dtype"): _DtypeSpec,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


def read_nvidia_pickle(path: str | Path) -> object:
    """The pickle's top-level object with every persistent network as a `PersistentRecord`.

    Raises:
        UserInputError: no such file, or the pickle references anything outside the
            allow-list (nothing it references is imported or run).
        DamagedInputError: a truncated or corrupt pickle or tensor.
    """
    return restricted_load(
        path, _ALLOWED, what=WHAT, contents="only networks, tensors and plain data"
    )


# ------------------------------------------------------------------------------------------
# The records as NVIDIA's state dict


def _named(record: PersistentRecord, group: str, kind: type) -> dict:
    """A record's `_modules`, `_parameters` or `_buffers`: names to `kind` (None entries,
    which nn.Module keeps for absent biases, left out)."""
    values = record.state.get(group, {})
    ok = isinstance(values, dict) and all(
        isinstance(k, str) and (v is None or isinstance(v, kind)) for k, v in values.items()
    )
    expect(ok, f"{group} of {kind.__name__} in {record.class_name}", type(values).__name__)
    return {k: v for k, v in values.items() if v is not None}


def _children(record: PersistentRecord) -> dict[str, PersistentRecord]:
    return _named(record, "_modules", PersistentRecord)


MAX_DEPTH = 8  # NVIDIA's generator nests 5 deep (Generator > synthesis > b8 > conv0 > affine)


def nvidia_state_dict(record: PersistentRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    """Parameters and buffers under NVIDIA's names (`mapping.fc0.weight`, ...), as
    `state_dict()` of NVIDIA's network would give them."""
    expect(prefix.count(".") < MAX_DEPTH, f"networks nested at most {MAX_DEPTH} deep", prefix)
    state = {}
    for group in ("_parameters", "_buffers"):
        state.update({prefix + k: v for k, v in _named(record, group, torch.Tensor).items()})
    for name, child in _children(record).items():
        state.update(nvidia_state_dict(child, f"{prefix}{name}."))
    return state


def _attr(record: PersistentRecord, name: str, default=None):
    return record.state.get(name, default)


def _describe(value) -> str:
    """A value from the file for a message: short, and never a deep repr."""
    if value is None or isinstance(value, bool | int | float | str):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return f"a {type(value).__name__}"


def _is(value, expected: str) -> bool:
    return isinstance(value, str) and value == expected


def _number(record: PersistentRecord, name: str, where: str) -> float:
    value = _attr(record, name)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    expect(ok, f"a finite number {name} in {where}", _describe(value))
    return float(value)


# ------------------------------------------------------------------------------------------
# Checks: which generators ganedit's StyleGAN2 can be


def _check_generator_kind(g: PersistentRecord, where: str) -> None:
    expect(g.class_name == "Generator", f"a Generator as the network in {where}", g.class_name)
    children = _children(g)
    expect(
        set(children) >= {"mapping", "synthesis"},
        f"a StyleGAN generator (mapping and synthesis networks) in {where}",
        sorted(children),
    )
    layers = sorted(_children(children["synthesis"]))
    if "input" in layers or any(n.startswith("L") for n in layers):
        raise UserInputError(
            f"expected a StyleGAN2 generator in {where}, received a StyleGAN3 (alias-free) one "
            f"(synthesis layers {', '.join(layers[:3])}, ...): not supported yet"
        )
    channels = _attr(g, "img_channels", 3)
    ok = type(channels) is int and channels == 3
    expect(ok, f"3 image channels in {where}", _describe(channels))


def _class_dim(g: PersistentRecord, nv: dict, w_dim: int, where: str) -> int:
    """c_dim: 0, or the label width of a class-conditional generator, whose `mapping.embed`
    (c_dim -> w_dim, learning rate 1, linear) must be there."""
    c_dim = _int_attr(g, "c_dim", 0, where)
    mapping = _children(g)["mapping"]
    embed = _children(mapping).get("embed")
    if c_dim == 0:
        expect(embed is None, f"no label embedding (mapping.embed) with c_dim 0 in {where}", "one")
    else:
        expect(
            embed is not None,
            f"a label embedding (mapping.embed) for c_dim {c_dim} in {where}",
            "none",
        )
    mapping_c = _int_attr(mapping, "c_dim", c_dim, f"{where} mapping")
    expect(mapping_c == c_dim, f"the mapping's c_dim equal to the generator's ({c_dim})", mapping_c)
    if c_dim == 0:
        return 0
    shape = list(_tensor(nv, "mapping.embed.weight", where).shape)
    expect(shape == [w_dim, c_dim], f"mapping.embed.weight of shape {[w_dim, c_dim]}", shape)
    at = f"{where} mapping.embed"
    gains = (_number(embed, "bias_gain", at), _number(embed, "weight_gain", at))
    expect(
        gains[0] == 1.0 and math.isclose(gains[1], 1 / math.sqrt(c_dim), rel_tol=1e-6),
        f"embedding gains 1 and 1/sqrt({c_dim}) in {at}",
        gains,
    )
    activation = _attr(embed, "activation", "linear")
    expect(_is(activation, "linear"), f"a linear label embedding in {where}", activation)
    return c_dim


def _check_synthesis(synthesis: PersistentRecord, size: int, where: str) -> float | None:
    """Check the blocks; returns the layers' one `conv_clamp` (None: no clamp)."""
    blocks = _children(synthesis)
    expected = [f"b{2**k}" for k in range(2, size.bit_length())]
    expect(
        sorted(blocks) == sorted(expected),
        f"synthesis blocks {expected} in {where}",
        sorted(blocks),
    )
    for name, block in blocks.items():
        architecture = _attr(block, "architecture", "skip")
        if not _is(architecture, "skip"):
            raise UserInputError(
                f"expected a StyleGAN2 generator of the 'skip' synthesis architecture in {where}, "
                f"received {_describe(architecture)} (synthesis.{name}): not supported"
            )
        for layer in _children(block).values():
            if layer.class_name == "SynthesisLayer":
                activation = _attr(layer, "activation", "lrelu")
                ok = _is(activation, "lrelu")
                expect(ok, f"lrelu synthesis layers in {where}", _describe(activation))
    layers = [layer for b in blocks.values() for layer in _children(b).values()]
    clamp = one_clamp(layers, f"the synthesis layers of {where}")
    if any(_attr(b, "use_fp16", False) is True for b in blocks.values()):
        log.info("%s runs some blocks in float16 on GPU; ganedit renders them in float32", where)
    return clamp


def one_clamp(layers: list[PersistentRecord], where: str) -> float | None:
    """The `conv_clamp` the layers share (NVIDIA gives every layer of a network the same
    one): None, or a positive finite number."""
    values = [_attr(layer, "conv_clamp") for layer in layers]
    first = values[0] if values else None
    number = isinstance(first, int | float) and not isinstance(first, bool)
    ok = first is None or (number and math.isfinite(first) and first > 0)
    expect(ok, f"a conv_clamp that is None or a positive number in {where}", _describe(first))
    same = all(v == first for v in values)
    expect(same, f"one conv_clamp for {where}", sorted({_describe(v) for v in values}))
    return first


def _mapping_lr(mapping: PersistentRecord, nv: dict, n_mlp: int, where: str) -> float:
    """The mapping's learning-rate multiplier, the same for every layer (NVIDIA: 0.01)."""
    rates = set()
    for i in range(n_mlp):
        fc = _children(mapping)[f"fc{i}"]
        lr = _number(fc, "bias_gain", f"{where} mapping.fc{i}")
        gain = _number(fc, "weight_gain", f"{where} mapping.fc{i}")
        fan_in = int(_tensor(nv, f"mapping.fc{i}.weight", where).shape[-1])
        expect(
            math.isclose(gain, lr / math.sqrt(fan_in), rel_tol=1e-6),
            f"mapping.fc{i} weight gain lr / sqrt({fan_in}) in {where}",
            gain,
        )
        activation = _attr(fc, "activation", "lrelu")
        expect(_is(activation, "lrelu"), f"lrelu mapping layers in {where}", _describe(activation))
        rates.add(lr)
    expect(len(rates) == 1, f"one learning-rate multiplier for the mapping in {where}", rates)
    return rates.pop()


# float32 rounding of an outer product normalised to sum 1 is ~1e-8 of its largest entry; a
# filter that is not separable differs by far more.
FILTER_RTOL = 1e-5
STANDARD_TAPS = [1, 3, 3, 1]


def filter_taps(f: torch.Tensor, what: str) -> list[float]:
    """The 1-D taps (summing to 1) of one stored resample filter.

    NVIDIA's `upfirdn2d.setup_filter` keeps a filter of 8 taps or more 1-D and turns a
    shorter one (every StyleGAN2's [1, 3, 3, 1]) into its 2-D outer product, normalised to sum
    1. Both forms are read; a 2-D filter must be the outer product of one tap vector with
    itself (rank 1, symmetric) to float32 rounding, the only filters ganedit's layers hold.
    """
    expect(f.is_floating_point(), f"a floating-point resample filter in {what}", str(f.dtype))
    check_finite(f.detach().float().numpy(), f"the resample filter of {what}")
    f = f.detach().to(torch.float64)
    square = f.ndim == 1 or (f.ndim == 2 and f.shape[0] == f.shape[1])
    ok = f.ndim in (1, 2) and square and 2 <= f.shape[-1] <= 16 and float(f.sum()) > 0
    expect(
        ok, f"a 1-D or square 2-D resample filter of 2 to 16 taps, summing to > 0 in {what}",
        list(f.shape),
    )  # fmt: skip
    f = f / f.sum()
    if f.ndim == 1:
        return f.tolist()
    taps = f.sum(dim=1)  # with sum(t) = 1, the row sums of outer(t, t) are t
    gap = float((f - torch.outer(taps, taps)).abs().max())
    expect(
        gap <= FILTER_RTOL * float(f.abs().max()),
        f"a separable 2-D resample filter (the outer product of its taps) in {what}",
        f"one {gap:.2g} away from it (not rank 1)",
    )
    return taps.tolist()


def blur_taps(nv: dict[str, torch.Tensor], where: str) -> list:
    """The one FIR filter every block and layer uses (NVIDIA: [1, 3, 3, 1], stored 2-D),
    as ganedit's `blur_kernel` taps; [1, 3, 3, 1] itself when it is that one."""
    taps = [
        filter_taps(v, f"{where} ({k})") for k, v in nv.items() if k.endswith("resample_filter")
    ]
    first = taps[0] if taps else [t / 8 for t in STANDARD_TAPS]
    same = all(
        len(t) == len(first)
        and all(math.isclose(a, b, abs_tol=1e-7) for a, b in zip(t, first, strict=True))
        for t in taps
    )
    expect(same, f"one resample filter for every layer of {where}", f"{len(taps)} different")
    standard = [t / 8 for t in STANDARD_TAPS]
    if len(first) == 4 and all(
        math.isclose(a, b, abs_tol=1e-7) for a, b in zip(first, standard, strict=True)
    ):
        return list(STANDARD_TAPS)
    return first


# ------------------------------------------------------------------------------------------
# The mapping onto ganedit's Generator


def channel_kwargs(channels: dict[int, int], size: int) -> dict:
    """Generator/Discriminator channel arguments: rosinality's multiplier and cap when the
    table is one of theirs, else the explicit per-resolution list (4 px up)."""
    from ganedit.models.stylegan2.convert import infer_channel_config

    try:
        multiplier, cap = infer_channel_config(channels, size)
    except UserInputError:  # NVIDIA's channel_base / channel_max need not fit rosinality's table
        return {"channels": [channels[r] for r in sorted(channels)]}
    return {"channel_multiplier": multiplier, "channel_max": cap}


def _layer_keys(nv_prefix: str, g_prefix: str, noise_index: int) -> list[tuple[str, str]]:
    return [
        (f"{nv_prefix}.weight", f"{g_prefix}.conv.weight"),
        (f"{nv_prefix}.affine.weight", f"{g_prefix}.conv.modulation.weight"),
        (f"{nv_prefix}.affine.bias", f"{g_prefix}.conv.modulation.bias"),
        (f"{nv_prefix}.noise_const", f"noises.noise_{noise_index}"),
        (f"{nv_prefix}.noise_strength", f"{g_prefix}.noise.weight"),
        (f"{nv_prefix}.bias", f"{g_prefix}.activate.bias"),
    ]


def _torgb_keys(nv_prefix: str, g_prefix: str) -> list[tuple[str, str]]:
    return [
        (f"{nv_prefix}.weight", f"{g_prefix}.conv.weight"),
        (f"{nv_prefix}.affine.weight", f"{g_prefix}.conv.modulation.weight"),
        (f"{nv_prefix}.affine.bias", f"{g_prefix}.conv.modulation.bias"),
        (f"{nv_prefix}.bias", f"{g_prefix}.bias"),
    ]


def key_map(size: int, n_mlp: int, c_dim: int = 0) -> list[tuple[str, str]]:
    """(NVIDIA name, ganedit name) of every tensor of a StyleGAN2-ADA generator."""
    pairs = [("synthesis.b4.const", "input.input"), ("mapping.w_avg", "w_avg")]
    if c_dim:
        pairs += [("mapping.embed.weight", "embed.weight"), ("mapping.embed.bias", "embed.bias")]
    for i in range(n_mlp):
        pairs += [(f"mapping.fc{i}.weight", f"style.{i + 1}.weight")]
        pairs += [(f"mapping.fc{i}.bias", f"style.{i + 1}.bias")]
    pairs += _layer_keys("synthesis.b4.conv1", "conv1", 0)
    pairs += _torgb_keys("synthesis.b4.torgb", "to_rgb1")
    for j, res in enumerate(2**k for k in range(3, size.bit_length())):
        block = f"synthesis.b{res}"
        pairs += _layer_keys(f"{block}.conv0", f"convs.{2 * j}", 2 * j + 1)
        pairs += _layer_keys(f"{block}.conv1", f"convs.{2 * j + 1}", 2 * j + 2)
        pairs += _torgb_keys(f"{block}.torgb", f"to_rgbs.{j}")
    return pairs


OPTIONAL = ("noise_const", "noise_strength", "w_avg")  # use_noise off, w_avg_beta None


def mapped_state(
    nv: dict[str, torch.Tensor], target: dict, pairs: list, where: str, optional=OPTIONAL
) -> dict:
    """`target` (a ganedit state dict) with NVIDIA's tensors in place, each reshaped to
    ganedit's layout (same values) after its shape is checked; an absent optional tensor
    becomes zeros; every tensor of `nv` but the resample filters must be used."""
    state = dict(target)
    left = {k: v for k, v in nv.items() if not k.endswith("resample_filter")}
    for nv_key, g_key in pairs:
        tensor = left.pop(nv_key, None)
        if tensor is None:
            expect(nv_key.endswith(optional), f"{nv_key} in {where}", "none")
            state[g_key] = torch.zeros_like(state[g_key])
            continue
        expect(tensor.is_floating_point(), f"floating-point {nv_key} in {where}", tensor.dtype)
        shape = state[g_key].shape
        ok = tensor.numel() == state[g_key].numel() and _same_layout(tensor.shape, shape)
        expect(ok, f"{nv_key} of shape {_nv_shape(shape)} in {where}", list(tensor.shape))
        check_finite(tensor.float().numpy(), f"{nv_key} in {where}")
        state[g_key] = tensor.detach().to(torch.float32).reshape(shape).clone()
    expect(not left, f"only the network's own tensors in {where}", sorted(left)[:4])
    return state


def _same_layout(nv_shape, g_shape) -> bool:
    """ganedit's shapes are NVIDIA's with leading 1s (or [1, 3, 1, 1] for ToRGB's [3])."""
    strip = lambda s: [d for d in s if d != 1]  # noqa: E731
    return strip(nv_shape) == strip(g_shape) and len(nv_shape) <= len(g_shape)


def _nv_shape(g_shape) -> list[int]:
    return [d for d in g_shape if d != 1] or [1]


def _tensor(nv: dict[str, torch.Tensor], key: str, where: str) -> torch.Tensor:
    expect(key in nv, f"{key} in {where}", "none")
    return nv[key]


def _int_attr(record: PersistentRecord, name: str, default: int, where: str) -> int:
    value = _attr(record, name, default)
    ok = type(value) is int and value >= 0
    expect(ok, f"a whole number {name} in {where}", _describe(value))
    return value


def _resolution(record: PersistentRecord, default: int, where: str) -> int:
    size = _int_attr(record, "img_resolution", default, where)
    expect(
        8 <= size <= 1024 and size & (size - 1) == 0,
        f"an image resolution that is a power of two from 8 to 1024 in {where}",
        size,
    )
    return size


def generator_from_record(record: PersistentRecord, where: str) -> tuple[Generator, bool]:
    """ganedit's Generator holding the record's weights, and whether it had a `w_avg`."""
    _check_generator_kind(record, where)
    nv = nvidia_state_dict(record)
    children = _children(record)
    mapping, synthesis = children["mapping"], children["synthesis"]
    w_dim = int(_tensor(nv, f"mapping.fc{_n_mlp(mapping, where) - 1}.weight", where).shape[0])
    w_dim = _int_attr(record, "w_dim", w_dim, where)
    z_dim = _int_attr(record, "z_dim", w_dim, where)
    expect(z_dim == w_dim, f"z_dim equal to w_dim ({w_dim}) in {where}", z_dim)
    c_dim = _class_dim(record, nv, w_dim, where)
    size = _resolution(record, 2 ** (len(_children(synthesis)) + 1), where)
    clamp = _check_synthesis(synthesis, size, where)
    n_mlp = _n_mlp(mapping, where)
    channels = {4: int(_tensor(nv, "synthesis.b4.const", where).shape[0])}
    for res in (2**k for k in range(3, size.bit_length())):
        channels[res] = int(_tensor(nv, f"synthesis.b{res}.conv1.weight", where).shape[0])
    _check_gains(synthesis, nv, w_dim, where)
    g = Generator(
        size=size,
        style_dim=w_dim,
        n_mlp=n_mlp,
        lr_mlp=_mapping_lr(mapping, nv, n_mlp, where),
        blur_kernel=blur_taps(nv, where),
        c_dim=c_dim,
        conv_clamp=clamp,
        **channel_kwargs(channels, size),
    )
    state = mapped_state(nv, g.state_dict(), key_map(size, n_mlp, c_dim), where)
    g.load_state_dict(state, strict=True)
    return g.eval(), "mapping.w_avg" in nv


def _n_mlp(mapping: PersistentRecord, where: str) -> int:
    n_mlp = len([n for n in _children(mapping) if n.startswith("fc")])
    expect(
        n_mlp >= 1 and {f"fc{i}" for i in range(n_mlp)} <= set(_children(mapping)),
        f"mapping layers fc0 .. fc{max(n_mlp, 1) - 1} in {where}",
        sorted(_children(mapping)),
    )
    return n_mlp


def _check_gains(synthesis: PersistentRecord, nv: dict, w_dim: int, where: str) -> None:
    """Synthesis affines at lr 1 (gain 1 / sqrt(w_dim)); ToRGB's weight gain 1 / sqrt(C)."""
    for name, block in _children(synthesis).items():
        for layer_name, layer in _children(block).items():
            affine = _children(layer).get("affine")
            if affine is None:
                continue
            at = f"{where} synthesis.{name}.{layer_name}"
            gains = (_number(affine, "bias_gain", at), _number(affine, "weight_gain", at))
            expect(
                gains[0] == 1.0 and math.isclose(gains[1], 1 / math.sqrt(w_dim)),
                f"affine gains of a StyleGAN2 layer (1 and 1/sqrt({w_dim})) in {at}",
                gains,
            )
            if layer.class_name == "ToRGBLayer":
                fan_in = _tensor(nv, f"synthesis.{name}.{layer_name}.weight", where).shape[1]
                gain = _number(layer, "weight_gain", at)
                expect(
                    math.isclose(gain, 1 / math.sqrt(fan_in)),
                    f"a ToRGB weight gain 1/sqrt({fan_in}) in {at}",
                    gain,
                )


# ------------------------------------------------------------------------------------------
# Public entry points


def check_network(network: str) -> None:
    """Refuse a network name other than G_ema or G (D and augment_pipe are not generators)."""
    expect(network in NETWORKS, f"a generator network of the pickle in {NETWORKS}", network)


def network_record(top: object, network: str, where: str) -> PersistentRecord:
    keys = describe_keys(top)
    expect(
        isinstance(top, dict) and network in top,
        f"{WHAT} (a dict with {network!r}) in {where}",
        keys,
    )
    record = top[network]
    expect(
        isinstance(record, PersistentRecord),
        f"{network!r} as a persistent network in {where}",
        type(record).__name__,
    )
    return record


@torch.no_grad()
def load_nvidia_pickle(
    path: str | Path, device: str | torch.device = "cpu", *, network: str = "G_ema"
) -> dict:
    """Read an NVIDIA StyleGAN2-ADA `.pkl` into ganedit's StyleGAN2 `Generator`, safely.

    Nothing the pickle references is imported or run (see the module docstring); tensors
    are read exactly, and the generator renders what NVIDIA's does for the same z (and
    label c), psi 1, noise_mode "const", in float32 (NVIDIA's `conv_clamp` included).

    Args:
        path: the `.pkl` file.
        network: "G_ema" (the averaged generator, what NVIDIA's scripts render) or "G".
            The discriminator: `ganedit.models.stylegan2.nvidia_discriminator`.

    Returns:
        {"generator": Generator (eval mode, on `device`; `c_dim` > 0 for a class-conditional
        one), "w_avg": tensor [w_dim] or None when the network tracked none (then the
        generator's `w_avg` is zeros)}.

    Raises:
        UserInputError: a reference outside the allow-list, a StyleGAN3 or non-'skip'
            generator, a label embedding missing for its c_dim, a resample filter that is not
            separable, or weights that fit no ganedit StyleGAN2.
        DamagedInputError: a truncated or corrupt file, non-finite weights or filters.
    """
    check_network(network)
    where = repr(str(path))
    record = network_record(read_nvidia_pickle(path), network, where)
    g, has_w_avg = generator_from_record(record, where)
    log.info("read %s of %s: %s", network, where, g.extra_repr())
    w_avg = g.w_avg.clone() if has_w_avg else None
    return {"generator": g.to(device), "w_avg": None if w_avg is None else w_avg.to(device)}


def with_rosinality_lr(g: Generator) -> Generator:
    """`g` as a generator of the mapping learning rate StyleGAN2-pytorch files assume (0.01),
    its mapping weights rescaled so it computes the same function; `g` itself when it has it."""
    lr = g.config["lr_mlp"]
    if lr == ROSINALITY_LR_MLP:
        return g
    factor = lr / ROSINALITY_LR_MLP  # stored = effective / lr, so stored' = stored * lr / 0.01
    state = {k: v * factor if k.startswith("style.") else v for k, v in g.state_dict().items()}
    out = Generator(**{**g.config, "lr_mlp": ROSINALITY_LR_MLP}).to(g.w_avg.device)
    out.load_state_dict(state, strict=True)
    return out.eval()


def convert_nvidia_pickle(
    path: str | Path, out: str | Path, *, network: str = "G_ema", overwrite: bool = False
) -> Path:
    """Write an NVIDIA `.pkl`'s generator as a StyleGAN2-pytorch `.pt` (`out` ends in .pt:
    `g_ema` and `latent_avg`, tensors only) or as a ganedit model folder (any other `out`:
    `config.json` + `model.safetensors`, with `w_avg`), atomically. Without a tracked
    `w_avg` in the pickle, the mean w of 10,000 seeded samples is written.

    The `.pt` layout has no label embedding: a class-conditional generator goes to a model
    folder only (refused in one line for a `.pt`). Nor has it an activation clamp: a `.pt` of
    a generator with `conv_clamp` (256 in NVIDIA's mixed-precision configs) is written with a
    warning, as its readers render without the clamp (the same images unless an activation
    reaches it); a model folder keeps it.
    """
    from ganedit.models.registry import save_pretrained
    from ganedit.models.stylegan2.convert import export_rosinality_checkpoint

    out = Path(out)
    loaded = load_nvidia_pickle(path, network=network)
    g = loaded["generator"]
    if loaded["w_avg"] is None:
        g.update_w_avg(generator=torch.Generator().manual_seed(0))
    if out.suffix != ".pt":
        return save_pretrained(g, out, extra={"converted_from": _origin(path, network)},
                               overwrite=overwrite)  # fmt: skip
    _check_rosinality_fit(g, path)
    return export_rosinality_checkpoint(out, with_rosinality_lr(g))


def _check_rosinality_fit(g: Generator, path: str | Path) -> None:
    """What a StyleGAN2-pytorch `.pt` cannot hold: refused, pointing at the folder form."""
    folder = "write a ganedit model folder instead (-o a path without .pt)"
    if g.c_dim:
        raise UserInputError(
            f"expected an unconditional generator for a StyleGAN2-pytorch .pt (that layout has "
            f"no label embedding), received a class-conditional one (c_dim {g.c_dim}) in "
            f"{str(path)!r}: {folder}"
        )
    expect(  # the layout has no field for it: its readers rebuild [1, 3, 3, 1]
        g.config["blur_kernel"] == STANDARD_TAPS,
        "the [1, 3, 3, 1] resample filter, the only one StyleGAN2-pytorch files can hold",
        g.config["blur_kernel"],
    )
    if g.conv_clamp is not None:
        log.warning(
            "%s clamps activations at %s (conv_clamp); a StyleGAN2-pytorch .pt cannot record "
            "it, so its readers render without the clamp (the same images unless an "
            "activation reaches it; a model folder keeps it)",
            path,
            g.conv_clamp,
        )


def _origin(path: str | Path, network: str) -> dict:
    """What a converted folder records of its pickle: name, sha256 of its bytes, network."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"file": Path(path).name, "sha256": digest.hexdigest(), "network": network}
