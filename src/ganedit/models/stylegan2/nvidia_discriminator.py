"""The discriminator (`D`) of an NVIDIA StyleGAN2-ADA `.pkl`, as ganedit's `Discriminator`.

Read with the same restricted unpickler as the generator (`nvidia_pkl`: nothing in the file
runs). NVIDIA's 'resnet' discriminator has ganedit's (rosinality's) structure, under other
names:

    b{R}.fromrgb  (1x1, lrelu)            -> convs.0         (.0.weight, .1.bias)
    b{r}.conv0    (3x3, lrelu)            -> convs.{j}.conv1 (.0.weight, .1.bias)
    b{r}.conv1    (3x3, lrelu, down 2)    -> convs.{j}.conv2 (.1.weight, .2.bias)
    b{r}.skip     (1x1, no bias, down 2)  -> convs.{j}.skip  (.1.weight)
    b4.mbstd      (group_size, 1 channel) -> stddev_group
    b4.conv, b4.fc, b4.out                -> final_conv, final_linear.0, final_linear.1

with j = 1 for the first block (R px) and r halving per block. NVIDIA sums a block's two
paths with sqrt(1/2) gains where ganedit divides their sum by sqrt(2): the same function.
`conv_clamp` is kept (`Discriminator(conv_clamp=...)`).

A class-conditional discriminator scores an image against a projection of its label: the
output layer gives `cmap_dim` features, and the score is their dot product with
`cmap = mapping(c)` over sqrt(cmap_dim). For one fixed class that is a linear layer of one
output, so the discriminator of class k is ganedit's unconditional one with that layer
folded in (`class_index`); without a class, a conditional discriminator is refused.

Refused in one line: 'orig' and 'skip' architectures, a minibatch-std layer over the whole
batch (`group_size` None) or of more than one channel, and anything whose shapes or gains
fit no ganedit discriminator.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from ganedit.errors import UserInputError, expect
from ganedit.models.stylegan2.networks import Discriminator
from ganedit.models.stylegan2.nvidia_pkl import (
    PersistentRecord,
    _attr,
    _children,
    _describe,
    _int_attr,
    _is,
    _number,
    _resolution,
    _tensor,
    blur_taps,
    channel_kwargs,
    mapped_state,
    network_record,
    nvidia_state_dict,
    one_clamp,
    read_nvidia_pickle,
)

log = logging.getLogger(__name__)


def _block_names(size: int) -> list[int]:
    return [2**k for k in range(size.bit_length() - 1, 2, -1)]  # R, R/2, ..., 8


def _check_blocks(d: PersistentRecord, size: int, where: str) -> dict[str, PersistentRecord]:
    children = _children(d)
    expected = {f"b{r}" for r in _block_names(size)} | {"b4"}
    conditional = {"mapping"} if "mapping" in children else set()
    expect(
        set(children) == expected | conditional,
        f"discriminator blocks {sorted(expected)} in {where}",
        sorted(children),
    )
    for r in _block_names(size):
        block = children[f"b{r}"]
        architecture = _attr(block, "architecture", "resnet")
        if not _is(architecture, "resnet"):
            raise UserInputError(
                f"expected a StyleGAN2 discriminator of the 'resnet' architecture in {where}, "
                f"received {_describe(architecture)} (b{r}): not supported"
            )
        layers = {"conv0", "conv1", "skip"} | ({"fromrgb"} if r == size else set())
        expect(
            set(_children(block)) == layers,
            f"layers {sorted(layers)} in b{r} of {where}",
            sorted(_children(block)),
        )
    return children


def _check_layer(layer: PersistentRecord, nv: dict, name: str, activation: str, where: str):
    """A Conv2dLayer or FullyConnectedLayer: its activation and equalised-lr gains."""
    at = f"{where} {name}"
    kind = _attr(layer, "activation", "linear")
    expect(_is(kind, activation), f"a {activation} layer {at}", _describe(kind))
    weight = _tensor(nv, f"{name}.weight", where)
    fan_in = math.prod(weight.shape[1:])
    gain = _number(layer, "weight_gain", at)
    expect(
        math.isclose(gain, 1 / math.sqrt(fan_in), rel_tol=1e-6),
        f"a weight gain 1/sqrt({fan_in}) {at}",
        gain,
    )
    if layer.class_name == "FullyConnectedLayer":
        bias_gain = _number(layer, "bias_gain", at)
        expect(bias_gain == 1.0, f"a bias gain 1 {at}", bias_gain)


def _epilogue(b4: PersistentRecord, where: str) -> int:
    """The minibatch-std group size of NVIDIA's epilogue (ganedit's `stddev_group`)."""
    architecture = _attr(b4, "architecture", "resnet")
    expect(_is(architecture, "resnet"), f"a 'resnet' epilogue (b4) in {where}", architecture)
    mbstd = _children(b4).get("mbstd")
    expect(mbstd is not None, f"a minibatch-std layer (b4.mbstd) in {where}", "none")
    group = _attr(mbstd, "group_size")
    expect(
        type(group) is int and group >= 1,
        f"a minibatch-std group size (a whole number; not the whole batch) in {where}",
        _describe(group),
    )
    channels = _attr(mbstd, "num_channels", 1)
    expect(channels == 1, f"a minibatch-std layer of 1 channel in {where}", _describe(channels))
    expect(
        set(_children(b4)) == {"mbstd", "conv", "fc", "out"},
        f"b4 layers mbstd, conv, fc, out in {where}",
        sorted(_children(b4)),
    )
    return group


def key_map(size: int) -> list[tuple[str, str]]:
    """(NVIDIA name, ganedit name) of every tensor of a 'resnet' StyleGAN2-ADA discriminator."""
    pairs = [(f"b{size}.fromrgb.weight", "convs.0.0.weight"),
             (f"b{size}.fromrgb.bias", "convs.0.1.bias")]  # fmt: skip
    for j, r in enumerate(_block_names(size), start=1):
        pairs += [
            (f"b{r}.conv0.weight", f"convs.{j}.conv1.0.weight"),
            (f"b{r}.conv0.bias", f"convs.{j}.conv1.1.bias"),
            (f"b{r}.conv1.weight", f"convs.{j}.conv2.1.weight"),
            (f"b{r}.conv1.bias", f"convs.{j}.conv2.2.bias"),
            (f"b{r}.skip.weight", f"convs.{j}.skip.1.weight"),
        ]
    pairs += [
        ("b4.conv.weight", "final_conv.0.weight"),
        ("b4.conv.bias", "final_conv.1.bias"),
        ("b4.fc.weight", "final_linear.0.weight"),
        ("b4.fc.bias", "final_linear.0.bias"),
        ("b4.out.weight", "final_linear.1.weight"),
        ("b4.out.bias", "final_linear.1.bias"),
    ]
    return pairs


def _check_gains(children: dict, nv: dict, size: int, where: str) -> None:
    _check_layer(_children(children[f"b{size}"])["fromrgb"], nv, f"b{size}.fromrgb", "lrelu", where)
    for r in _block_names(size):
        layers = _children(children[f"b{r}"])
        for name, activation in (("conv0", "lrelu"), ("conv1", "lrelu"), ("skip", "linear")):
            _check_layer(layers[name], nv, f"b{r}.{name}", activation, where)
    b4 = _children(children["b4"])
    _check_layer(b4["conv"], nv, "b4.conv", "lrelu", where)
    _check_layer(b4["fc"], nv, "b4.fc", "lrelu", where)
    _check_layer(b4["out"], nv, "b4.out", "linear", where)


def _clamped_layers(children: dict, size: int) -> list[PersistentRecord]:
    """The layers NVIDIA hands `conv_clamp` (never the skips, fc or out)."""
    layers = [_children(children[f"b{size}"])["fromrgb"]]
    for r in _block_names(size):
        block = _children(children[f"b{r}"])
        layers += [block["conv0"], block["conv1"]]
    return [*layers, _children(children["b4"])["conv"]]


# ------------------------------------------------------------------------------------------
# A class-conditional discriminator at one class


def _dense(nv: dict, record: PersistentRecord, name: str, x: torch.Tensor, where: str):
    """NVIDIA's FullyConnectedLayer `name` on x, in float64, with its stored gains."""
    at = f"{where} {name}"
    weight = _tensor(nv, f"{name}.weight", where).double()
    bias = _tensor(nv, f"{name}.bias", where).double()
    wg, bg = _number(record, "weight_gain", at), _number(record, "bias_gain", at)
    y = x @ (weight * wg).t() + bias * bg
    kind = _attr(record, "activation", "linear")
    expect(_is(kind, "linear") or _is(kind, "lrelu"), f"a linear or lrelu layer {at}", kind)
    return torch.nn.functional.leaky_relu(y, 0.2) * math.sqrt(2) if _is(kind, "lrelu") else y


def _class_map(mapping: PersistentRecord, nv: dict, c_dim: int, k: int, where: str):
    """cmap [cmap_dim] of class k: NVIDIA's D mapping of the one-hot label (z_dim 0)."""
    c = torch.zeros(1, c_dim, dtype=torch.float64)
    c[0, k] = 1
    layers = _children(mapping)
    expect("embed" in layers, f"a label embedding (mapping.embed) in {where}", sorted(layers))
    y = _dense(nv, layers["embed"], "mapping.embed", c, where)
    x = y * (y.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
    n = len([name for name in layers if name.startswith("fc")])
    expect(
        {f"fc{i}" for i in range(n)} <= set(layers),
        f"mapping layers fc0 .. fc{n - 1} in {where}",
        sorted(layers),
    )
    for i in range(n):
        x = _dense(nv, layers[f"fc{i}"], f"mapping.fc{i}", x, where)
    return x[0]


def _fold_class(d: PersistentRecord, nv: dict, c_dim: int, class_index, where: str) -> dict:
    """`nv` with the output layer replaced by the one-output layer of class `class_index`:
    score = out(x) . cmap / sqrt(cmap_dim), stored as ganedit's EqualLinear stores it."""
    expect(
        type(class_index) is int and 0 <= class_index < c_dim,
        f"a class index in [0, {c_dim - 1}] for the class-conditional discriminator of {where}",
        "none" if class_index is None else class_index,
    )
    children = _children(d)
    out = _children(children["b4"])["out"]
    weight = _tensor(nv, "b4.out.weight", where).double()
    cmap = _class_map(children["mapping"], nv, c_dim, class_index, where)
    expect(
        weight.shape[0] == cmap.shape[0],
        f"b4.out of {cmap.shape[0]} outputs (cmap_dim) in {where}",
        list(weight.shape),
    )
    at = f"{where} b4.out"
    wg, bg = _number(out, "weight_gain", at), _number(out, "bias_gain", at)
    scale = 1 / math.sqrt(cmap.shape[0])
    # ganedit's EqualLinear multiplies its stored weight by 1/sqrt(fan_in): store it divided.
    folded_w = (cmap @ (weight * wg)) * scale * math.sqrt(weight.shape[1])
    folded_b = (_tensor(nv, "b4.out.bias", where).double() * bg) @ cmap * scale
    state = {k: v for k, v in nv.items() if not k.startswith("mapping.")}
    state["b4.out.weight"] = folded_w[None].float()
    state["b4.out.bias"] = folded_b.reshape(1).float()
    return state


# ------------------------------------------------------------------------------------------
# The mapping onto ganedit's Discriminator


def discriminator_from_record(
    record: PersistentRecord, where: str, class_index: int | None = None
) -> Discriminator:
    """ganedit's Discriminator holding the record's weights (eval mode)."""
    expect(
        record.class_name == "Discriminator",
        f"a Discriminator as the network 'D' in {where}",
        record.class_name,
    )
    channels = _attr(record, "img_channels", 3)
    expect(type(channels) is int and channels == 3, f"3 image channels in {where}", channels)
    nv = nvidia_state_dict(record)
    size = _resolution(record, 2 ** len(_children(record)), where)
    children = _check_blocks(record, size, where)
    c_dim = _int_attr(record, "c_dim", 0, where)
    if c_dim or "mapping" in children:
        expect(
            c_dim > 0 and "mapping" in children,
            f"a label mapping (mapping) exactly when c_dim > 0 in {where}",
            f"c_dim {c_dim} with{'' if 'mapping' in children else 'out'} a mapping",
        )
        nv = _fold_class(record, nv, c_dim, class_index, where)
    else:
        expect(class_index is None, f"no class for the unconditional D of {where}", class_index)
    group = _epilogue(children["b4"], where)
    _check_gains(children, nv, size, where)
    table = {size: int(_tensor(nv, f"b{size}.fromrgb.weight", where).shape[0])}
    for r in _block_names(size):
        table[r // 2] = int(_tensor(nv, f"b{r}.conv1.weight", where).shape[0])
    if any(_attr(b, "use_fp16", False) is True for b in children.values()):
        log.info("%s runs some D blocks in float16 on GPU; ganedit runs them in float32", where)
    d = Discriminator(
        size,
        blur_kernel=blur_taps(nv, f"the discriminator of {where}"),
        stddev_group=group,
        conv_clamp=one_clamp(_clamped_layers(children, size), f"the discriminator of {where}"),
        **channel_kwargs(table, size),
    )
    state = mapped_state(nv, d.state_dict(), key_map(size), f"the discriminator of {where}", ())
    d.load_state_dict(state, strict=True)
    return d.eval()


@torch.no_grad()
def load_nvidia_discriminator(
    path: str | Path, device: str | torch.device = "cpu", *, class_index: int | None = None
) -> Discriminator | None:
    """The pickle's `D` as ganedit's `Discriminator` (eval mode, on `device`), or None when
    the pickle holds no discriminator (`D` missing or None).

    Logits match NVIDIA's `D(img, c)` in float32 for the same images (c one-hot at
    `class_index` for a class-conditional D, which needs one).

    Raises:
        UserInputError: what the generator's reader refuses, and a discriminator whose
            architecture or shapes fit no ganedit discriminator (module docstring).
        DamagedInputError: a truncated or corrupt file, non-finite weights or filters.
    """
    where = repr(str(path))
    top = read_nvidia_pickle(path)
    if isinstance(top, dict) and top.get("D") is None:
        return None
    d = discriminator_from_record(network_record(top, "D", where), where, class_index)
    log.info("read D of %s: size %d, stddev group %d", where, d.size, d.stddev_group)
    return d.to(device)
