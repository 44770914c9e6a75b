"""Attribute predictors that ganedit did not train ("bring your own predictor").

Three forms, each turned into an `AttributePredictor` (ganedit.models.predictors):

- A ResNet checkpoint (`.pth` / `.pth.tar`) in the layout of the balanced-sampling reference's
  CelebA predictor: a dict whose `state_dict` holds a ResNet-50 trunk and one
  `fc_<attribute>` Linear(2048, 2) head per attribute; read with
  `torch.load(weights_only=True)`, so only tensors and plain containers are rebuilt.
  `ResNetAttributePredictor` reproduces the reference's input pipeline (`CELEBA_PIPELINE`)
  and returns the softmax probability of class 1 of each head.
- A Python entry point `py:package.module:callable`, which imports that module and calls the
  callable: it runs the user's code, so it is only ever used when the user names it.
- An ONNX model run with onnxruntime (the optional extra `ganedit[onnx]`), described by a
  JSON manifest: input size and normalisation, and which output is which attribute.

Whatever the form, the declaration (attribute names and kinds, input size) is checked on load
and every batch of outputs on return: one float array [N] per declared attribute, finite,
probabilities in [0, 1] (`CheckedPredictor`).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganedit.errors import DamagedInputError, UserInputError
from ganedit.models.io import safe_torch_load
from ganedit.models.predictors import ATTRIBUTE_KINDS, PROBABILITY, AttributePredictor
from ganedit.models.resnet import MultiHeadResNet, remap_attribute_checkpoint
from ganedit.utils.bounded import describe, describe_keys, load_json_bounded
from ganedit.utils.device import resolve_device
from ganedit.utils.files import require_file
from ganedit.utils.images import as_image_batch
from ganedit.utils.params import Name

log = logging.getLogger(__name__)

ENTRY_POINT_PREFIX = "py:"
CHECKPOINT_SUFFIXES = (".pth", ".pth.tar")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_ATTRIBUTES = 256
MAX_INPUT_SIZE = 4096
MAX_RESNET_BATCH = 64  # images per ResNet pass at 224 px (the reference's MAX_IMAGES_ON_DEVICE)


# ------------------------------------------------------------------------------------------
# Input pipeline


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _floats(values, n: int, what: str) -> list[float]:
    ok = isinstance(values, list | tuple) and len(values) == n
    ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not (ok and all(math.isfinite(v) for v in values)):
        raise UserInputError(f"expected {what} ({n} finite numbers), received {_few(values)}")
    return [float(v) for v in values]


def _few(values) -> str:
    if isinstance(values, list | tuple) and len(values) <= 8:
        return "[" + ", ".join(describe(v, 20) for v in values) + "]"
    return describe(values)


@dataclass(frozen=True)
class InputPipeline:
    """How a foreign network sees ganedit images (float [N, 3, H, W] in [-1, 1], RGB).

    1. To 8-bit levels: (x + 1) * 127.5, rounded half up when `quantize` (the uint8 image
       the reference's generators hand to its predictor).
    2. Resize so the shorter side is `resize` px, the longer `int(resize * long / short)`
       (torchvision's `Resize(int)` sizes): bilinear, half-pixel centres, antialiased when
       shrinking (a triangle filter as wide as the scale, as PIL's BILINEAR). With `quantize`
       in PIL's two passes (width, then height), each rounded to levels: this reproduces PIL
       exactly at integer scales (1024 -> 256, 64 -> 256) and within one level on under 1 %
       of pixels otherwise (PIL's fixed-point filter weights).
    3. Centre crop `crop` x `crop`, the offset `int(round((side - crop) / 2))` (torchvision).
    4. Levels mapped linearly onto `value_range` (0..255 -> 0..1 is `ToTensor`), then
       (x - mean) / std per channel.
    """

    resize: int
    crop: int
    value_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    quantize: bool = False

    def __post_init__(self) -> None:
        ok = _is_int(self.crop) and _is_int(self.resize) and 1 <= self.crop <= self.resize
        if not (ok and self.resize <= MAX_INPUT_SIZE):
            raise UserInputError(
                f"expected 1 <= crop <= resize <= {MAX_INPUT_SIZE} pixels, received crop "
                f"{self.crop!r} and resize {self.resize!r}"
            )
        lo, hi = _floats(self.value_range, 2, "a value range [low, high]")
        if not lo < hi:
            raise UserInputError(f"expected a value range with low < high, received {[lo, hi]}")
        _floats(self.mean, 3, "a mean per RGB channel")
        if min(_floats(self.std, 3, "a std per RGB channel")) <= 0:
            raise UserInputError(f"expected a positive std per channel, received {self.std!r}")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:  # [N, 3, H, W] -> [N, 3, c, c]
        levels = (images.float().clamp(-1.0, 1.0) + 1.0) * 127.5
        if self.quantize:
            levels = _to_levels(levels)
        levels = centre_crop(self._resize(levels), self.crop)
        lo, hi = self.value_range
        x = lo + levels * ((hi - lo) / 255.0)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def _resize(self, levels: torch.Tensor) -> torch.Tensor:
        height, width = levels.shape[-2:]
        size = resized_size(height, width, self.resize)
        if not self.quantize:
            return _bilinear(levels, size) if size != (height, width) else levels
        # PIL resamples a uint8 image in two passes, width then height, each rounded to uint8.
        if size[1] != width:
            levels = _to_levels(_bilinear(levels, (height, size[1])))
        if size[0] != height:
            levels = _to_levels(_bilinear(levels, size))
        return levels


def _bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _to_levels(x: torch.Tensor) -> torch.Tensor:
    """Round half up to 8-bit levels and clip (PIL's and the reference's uint8 rounding)."""
    return torch.floor(x + 0.5).clamp(0.0, 255.0)


def resized_size(height: int, width: int, shorter: int) -> tuple[int, int]:
    """(height, width) with the shorter side `shorter` (torchvision's `Resize(int)`)."""
    if width <= height:
        return int(shorter * height / width), shorter
    return shorter, int(shorter * width / height)


def centre_crop(images: torch.Tensor, size: int) -> torch.Tensor:  # [N, C, H, W] -> [N, C, s, s]
    height, width = images.shape[-2:]
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return images[..., top : top + size, left : left + size]


# The reference: uint8 RGB -> PIL -> Resize(256) -> CenterCrop(224) -> ToTensor -> Normalize.
CELEBA_PIPELINE = InputPipeline(resize=256, crop=224, quantize=True)


def _check_batch(images: torch.Tensor, batch_size: int) -> None:
    if not (_is_int(batch_size) and batch_size >= 1):
        raise UserInputError(f"expected a batch size >= 1, received {batch_size!r}")
    if len(images) == 0:
        raise UserInputError("expected at least one image, received none")


# ------------------------------------------------------------------------------------------
# Holding any predictor to the interface


def check_declaration(predictor, source: str) -> dict[str, str]:
    """The attribute kinds `predictor` declares, checked: name -> kind (in order)."""
    kinds = getattr(predictor, "attribute_kinds", None)
    if not isinstance(kinds, Mapping) or not 1 <= len(kinds) <= MAX_ATTRIBUTES:
        raise UserInputError(
            f"expected {source} to declare attribute_kinds, a mapping of 1 to {MAX_ATTRIBUTES} "
            f"attribute names to kinds, received {type(kinds).__name__}"
        )
    bad = {k: v for k, v in kinds.items() if not Name().accepts(k) or v not in ATTRIBUTE_KINDS}
    if bad:
        raise UserInputError(
            f"expected {source} to declare attribute names ({Name().describe()}) of kinds "
            f"{ATTRIBUTE_KINDS}, received {dict(list(bad.items())[:4])}"
        )
    size = getattr(predictor, "input_size", None)
    if not (_is_int(size) and 1 <= size <= MAX_INPUT_SIZE):
        raise UserInputError(
            f"expected {source} to declare an input_size in 1..{MAX_INPUT_SIZE} pixels, "
            f"received {size!r}"
        )
    if not callable(getattr(predictor, "predict", None)):
        raise UserInputError(
            f"expected {source} to have predict(images, batch_size), received "
            f"a {type(predictor).__name__} without one"
        )
    return dict(kinds)


def check_outputs(out, kinds: Mapping[str, str], n: int, source: str) -> dict[str, np.ndarray]:
    """`out` as {attribute: float32 [n]}, or UserInputError saying what is wrong with it."""
    if not isinstance(out, Mapping) or set(out) != set(kinds):
        got = sorted(map(str, out)) if isinstance(out, Mapping) else type(out).__name__
        raise UserInputError(
            f"expected {source} to return {{attribute: values}} for {list(kinds)}, received {got}"
        )
    checked = {}
    for name, kind in kinds.items():
        value = _numbers(out[name], name, source)
        if value.shape != (n,):
            raise UserInputError(
                f"expected {source} to return {name} of shape [{n}], received {list(value.shape)}"
            )
        if not np.isfinite(value).all():
            raise UserInputError(f"expected finite {name} from {source}, received NaN or inf")
        if kind == PROBABILITY and not ((value >= 0) & (value <= 1)).all():
            raise UserInputError(
                f"expected {name} probabilities in [0, 1] from {source}, received values in "
                f"[{value.min():.4g}, {value.max():.4g}]"
            )
        checked[name] = value
    return checked


_NOT_NUMBERS = {"U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers"}


def _numbers(value, name: str, source: str) -> np.ndarray:
    """A predictor's output for `name` as float32, or UserInputError naming what it is."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.float().numpy() if not value.is_complex() else value.numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged lists and the like
        raise UserInputError(
            f"expected {source} to return {name} as an array of numbers, received "
            f"{describe(value)}, which is not one"
        ) from None
    if array.dtype.kind not in "biuf":
        kind = _NOT_NUMBERS.get(array.dtype.kind, "values")
        raise UserInputError(
            f"expected {source} to return {name} as numbers, received {kind} ({array.dtype})"
        )
    return array.astype(np.float32)


class CheckedPredictor:
    """A predictor held to `AttributePredictor`: its declaration checked once, its outputs on
    every batch; it receives CPU float32 batches [B, 3, H, W] in [-1, 1], B <= batch_size."""

    def __init__(self, inner, source: str):
        self.inner = inner
        self.source = source
        self._kinds = check_declaration(inner, source)
        self._size = int(inner.input_size)

    @property
    def attribute_kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    @property
    def input_size(self) -> int:
        return self._size

    def predict(self, images, batch_size: int = 256) -> dict[str, np.ndarray]:
        images = as_image_batch(images).cpu()  # [N, 3, H, W]
        _check_batch(images, batch_size)
        parts = []
        for i in range(0, len(images), batch_size):
            chunk = images[i : i + batch_size]
            out = self.inner.predict(chunk, len(chunk))
            parts.append(check_outputs(out, self._kinds, len(chunk), self.source))
        return {k: np.concatenate([p[k] for p in parts]) for k in self._kinds}  # name -> [N]

    def __repr__(self) -> str:
        return f"CheckedPredictor({self.source}, {list(self._kinds)})"


class CheckedEmbedder:
    """An identity embedder held to ganedit's contract: `embed(images, batch_size)` on CPU
    float32 batches [B, 3, H, W] in [-1, 1] returns finite [B, E] vectors, here made unit
    length (so a dot product is the cosine, as for the shipped `IdentityNet`)."""

    def __init__(self, inner, source: str):
        if not callable(getattr(inner, "embed", None)):
            raise UserInputError(
                f"expected {source} to return an identity embedder with embed(images, "
                f"batch_size), received a {type(inner).__name__}"
            )
        self.inner = inner
        self.source = source

    def embed(self, images, batch_size: int = 256) -> np.ndarray:  # [N, E]
        images = as_image_batch(images).cpu()
        _check_batch(images, batch_size)
        parts = [
            self._checked(
                self.inner.embed(images[i : i + batch_size], batch_size), i, batch_size, len(images)
            )
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts)

    def _checked(self, out, start: int, batch_size: int, total: int) -> np.ndarray:
        n = min(batch_size, total - start)
        if isinstance(out, torch.Tensor):
            out = out.detach().float().cpu().numpy()
        out = np.asarray(out, dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != n or out.shape[1] < 1:
            raise UserInputError(
                f"expected {self.source} to embed {n} images as [{n}, E], received "
                f"{list(out.shape)}"
            )
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        if not (np.isfinite(out).all() and (norm > 0).all()):
            raise UserInputError(
                f"expected finite, non-zero embeddings from {self.source}, received NaN, inf "
                "or a zero vector"
            )
        return out / norm

    def __repr__(self) -> str:
        return f"CheckedEmbedder({self.source})"


def is_attribute_predictor(obj) -> bool:
    """Whether `obj` has the members of `AttributePredictor` (not that they are right)."""
    return isinstance(obj, AttributePredictor)


# ------------------------------------------------------------------------------------------
# ResNet checkpoints (the balanced-sampling reference's CelebA predictor)


class ResNetAttributePredictor(nn.Module):
    """A multi-head ResNet behind an input pipeline: name -> softmax probability of class 1."""

    def __init__(self, network: MultiHeadResNet, pipeline: InputPipeline = CELEBA_PIPELINE):
        super().__init__()
        self.network = network
        self.pipeline = pipeline

    @property
    def attribute_kinds(self) -> dict[str, str]:
        return dict.fromkeys(self.network.heads, PROBABILITY)

    @property
    def input_size(self) -> int:
        return self.pipeline.crop

    @torch.no_grad()
    def predict(self, images, batch_size: int = 64) -> dict[str, np.ndarray]:
        """Images float [N, 3, H, W] in [-1, 1] (or uint8 [N, H, W, 3]) -> name -> float32 [N]."""
        images = as_image_batch(images)
        _check_batch(images, batch_size)
        step = min(batch_size, MAX_RESNET_BATCH)
        device = next(self.network.parameters()).device
        parts: dict[str, list[torch.Tensor]] = {name: [] for name in self.network.heads}
        for i in range(0, len(images), step):
            logits = self.network(self.pipeline(images[i : i + step].to(device)))
            for name, value in logits.items():  # [B, 2]
                parts[name].append(torch.softmax(value.float(), dim=1)[:, 1].cpu())
        return {name: torch.cat(p).numpy().astype(np.float32) for name, p in parts.items()}


def is_checkpoint_path(text: str) -> bool:
    return text.lower().endswith(CHECKPOINT_SUFFIXES)


def load_resnet_predictor(
    path: str | Path,
    device: str | torch.device = "cpu",
    pipeline: InputPipeline = CELEBA_PIPELINE,
) -> ResNetAttributePredictor:
    """A `.pth` / `.pth.tar` of the reference's layout as a predictor (eval mode).

    Raises:
        UserInputError: not a file, pickled objects, other keys or shapes, heads of more or
            fewer than 2 classes.
        DamagedInputError: a file torch cannot read, non-finite weights, negative variances.
    """
    device = resolve_device(device)
    path = Path(path)
    where = repr(str(path))
    require_file(path, "a predictor checkpoint file")
    what = "a ResNet attribute-predictor checkpoint (a dict with a `state_dict`)"
    state = _state_dict(safe_torch_load(path, what), where)
    _check_finite(state, where)
    ours, kwargs = remap_attribute_checkpoint(state, where)
    if kwargs["classes"] != 2:
        raise UserInputError(
            f"expected heads of 2 classes (class 1: the attribute present) in {where}, "
            f"received {kwargs['classes']}"
        )
    network = MultiHeadResNet(**kwargs)
    full = network.state_dict()
    for key, value in full.items():  # BatchNorm counters that old files lack
        ours.setdefault(key, value)
    network.load_state_dict(ours, strict=True)
    log.info(
        "loaded a ResNet attribute predictor from %s: blocks %s, width %d, heads %s",
        path,
        kwargs["blocks"],
        kwargs["width"],
        list(kwargs["heads"]),
    )
    return ResNetAttributePredictor(network, pipeline).to(device).eval()


def _state_dict(ckpt, where: str) -> dict[str, torch.Tensor]:
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) and "state_dict" in ckpt else ckpt
    ok = isinstance(state, dict) and state and all(isinstance(k, str) for k in state)
    if not ok or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserInputError(
            f"expected a dict whose `state_dict` maps names to tensors in {where}, received "
            f"{describe_keys(ckpt, 6)}"
        )
    return state


def _check_finite(state: dict[str, torch.Tensor], where: str) -> None:
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise DamagedInputError(
                f"expected finite weights in {where}, received NaN or inf in {key}"
            )
        if key.endswith("running_var") and bool((value < 0).any()):
            raise DamagedInputError(
                f"expected non-negative BatchNorm variances in {where}, received negative {key}"
            )


# ------------------------------------------------------------------------------------------
# Python entry points

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def is_entry_point(text: str) -> bool:
    return text.startswith(ENTRY_POINT_PREFIX)


def load_entry_point(spec: str, device: str | torch.device = "cpu") -> CheckedPredictor:
    """`py:package.module:callable`: import the module, call the callable (with `device=` when
    it takes a `device` parameter) and hold what it returns to `AttributePredictor`.

    This runs the named module's code, as `python -c "import package.module"` would; it is
    only for code the user chose. ImportErrors and names that do not resolve are one-line
    UserInputErrors; exceptions raised by the user's own code keep their traceback."""
    return CheckedPredictor(_build_entry_point(spec, device), spec)


def load_identity_entry_point(spec: str, device: str | torch.device = "cpu") -> CheckedEmbedder:
    """An identity embedder from `py:package.module:callable` (e.g. an ArcFace wrapper), held
    to `embed(images, batch_size) -> [N, E]`; runs that user code, as `load_entry_point`."""
    return CheckedEmbedder(_build_entry_point(spec, device), spec)


def _build_entry_point(spec: str, device):
    device = resolve_device(device)
    module_name, _, attr = spec.removeprefix(ENTRY_POINT_PREFIX).partition(":")
    if not (_DOTTED.fullmatch(module_name) and _DOTTED.fullmatch(attr)):
        raise UserInputError(
            f"expected an entry point py:package.module:callable, received {spec!r}"
        )
    log.info("importing %s to build a predictor (runs that module's code)", module_name)
    try:
        target = importlib.import_module(module_name)
    except ImportError as err:
        raise UserInputError(
            f"expected an importable module {module_name!r} for {spec!r}, received "
            f"{type(err).__name__}: {err}"
        ) from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UserInputError(
                f"expected {module_name} to define {attr} for {spec!r}, received no {part!r}"
            )
        target = getattr(target, part)
    _check_factory(target, spec)
    return target(device=device) if _takes_device(target) else target()


def _check_factory(target, spec: str) -> None:
    """A predictor factory is a class or function of the user's code, called with no
    arguments (or only `device=`): builtins (os.system, exec, ...) and callables that need
    other arguments are refused before anything is called."""
    if not callable(target):
        raise UserInputError(f"expected a callable at {spec!r}, received a {type(target).__name__}")
    if inspect.isbuiltin(target) or inspect.ismethodwrapper(target):
        raise UserInputError(
            f"expected {spec!r} to name a predictor factory (a class or function called with "
            f"no arguments), received the builtin {describe(getattr(target, '__name__', ''))[1:-1]}"
        )
    needed = _required_arguments(target)
    if needed:
        raise UserInputError(
            f"expected {spec!r} to name a predictor factory called with no arguments (or only "
            f"device=), received one that needs {', '.join(needed[:4])}"
        )


def _required_arguments(fn) -> list[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # no signature to read: the call itself will tell
        return []
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty and p.kind not in variadic and p.name != "device"
    ]


def _takes_device(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "device" or p.kind is p.VAR_KEYWORD for p in params)


# ------------------------------------------------------------------------------------------
# ONNX models through onnxruntime

ONNX_FORMAT = "ganedit-onnx-predictor"
ONNX_FORMAT_VERSION = 1
ACTIVATIONS = ("none", "sigmoid", "softmax")


@dataclass(frozen=True)
class OnnxAttribute:
    """Where one attribute is read: output `output`, column `index` (None: the output is
    [N]), after `activation` (softmax is over the output's last axis)."""

    name: str
    kind: str
    output: str
    index: int | None
    activation: str


@dataclass(frozen=True)
class OnnxManifest:
    model: Path
    input_name: str | None
    pipeline: InputPipeline
    attributes: tuple[OnnxAttribute, ...]


_TOP_KEYS = {"format", "format_version", "model", "input", "attributes"}
_INPUT_KEYS = {"name", "size", "resize", "range", "mean", "std"}
_ATTRIBUTE_KEYS = {"kind", "output", "index", "activation"}


def read_onnx_manifest(path: str | Path) -> OnnxManifest:
    """The manifest at `path`, checked (the model path is relative to the manifest's folder)."""
    path = Path(path)
    where = repr(str(path))
    require_file(path, "an ONNX predictor manifest (.json)")
    data = load_json_bounded(path, what="an ONNX predictor manifest")
    _keys(data, _TOP_KEYS, {"format", "format_version", "model", "input", "attributes"}, where)
    if data["format"] != ONNX_FORMAT or data["format_version"] != ONNX_FORMAT_VERSION:
        raise UserInputError(
            f"expected format {ONNX_FORMAT!r} version {ONNX_FORMAT_VERSION} in {where}, received "
            f"{describe(data['format'])} version {describe(data['format_version'])}"
        )
    if not isinstance(data["model"], str) or not data["model"]:
        raise UserInputError(
            f"expected `model`, the .onnx file's path, in {where}, received "
            f"{describe(data['model'])}"
        )
    spec = data["input"]
    _keys(spec, _INPUT_KEYS, {"size", "range", "mean", "std"}, f"`input` of {where}")
    name = spec.get("name")
    if name is not None and not isinstance(name, str):
        raise UserInputError(f"expected an input name string in {where}, received {describe(name)}")
    pipeline = InputPipeline(
        resize=spec.get("resize", spec["size"]),
        crop=spec["size"],
        value_range=tuple(_floats(spec["range"], 2, f"an input range in {where}")),
        mean=tuple(_floats(spec["mean"], 3, f"an input mean in {where}")),
        std=tuple(_floats(spec["std"], 3, f"an input std in {where}")),
    )
    attributes = data["attributes"]
    if not isinstance(attributes, dict) or not 1 <= len(attributes) <= MAX_ATTRIBUTES:
        raise UserInputError(
            f"expected `attributes`, an object of 1 to {MAX_ATTRIBUTES} attributes, in {where}, "
            f"received {type(attributes).__name__}"
        )
    parsed = tuple(_onnx_attribute(k, v, where) for k, v in attributes.items())
    return OnnxManifest(path.parent / data["model"], name, pipeline, parsed)


def _keys(obj, allowed: set[str], required: set[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise UserInputError(f"expected a JSON object for {where}, received {type(obj).__name__}")
    unknown, missing = sorted(set(obj) - allowed), sorted(required - set(obj))
    if unknown or missing:
        raise UserInputError(
            f"expected the keys {sorted(allowed)} in {where} (required {sorted(required)}), "
            f"received unknown {unknown} and missing {missing}"
        )


def _describe_spec(spec: dict) -> str:
    """An attribute's spec for a message: each field's value kept short."""
    return "{" + ", ".join(f"{describe(k, 20)}: {describe(v, 40)}" for k, v in spec.items()) + "}"


def _onnx_attribute(name: str, spec, where: str) -> OnnxAttribute:
    here = f"attribute {describe(name)} of {where}"
    _keys(spec, _ATTRIBUTE_KEYS, {"kind", "output"}, here)
    index, activation = spec.get("index"), spec.get("activation", "none")
    ok = Name().accepts(name) and spec["kind"] in ATTRIBUTE_KINDS
    ok = ok and isinstance(spec["output"], str) and activation in ACTIVATIONS
    ok = ok and (index is None or (_is_int(index) and index >= 0))
    if not ok or (activation == "softmax" and index is None):
        raise UserInputError(
            f"expected a name ({Name().describe()}), kind in {ATTRIBUTE_KINDS}, output name, "
            f"index >= 0 or null (not null for softmax) and activation in {ACTIVATIONS} for "
            f"{here}, received {_describe_spec(spec)}"
        )
    return OnnxAttribute(name, spec["kind"], spec["output"], index, activation)


class OnnxPredictor:
    """An ONNX model behind its manifest's pipeline (wrap it in `CheckedPredictor`)."""

    def __init__(self, manifest: OnnxManifest, session):
        self.manifest = manifest
        self.session = session
        self.input_name = _session_input(session, manifest)
        self.batch = _static_batch(session.get_inputs()[0].shape)
        outputs = {o.name for o in session.get_outputs()}
        wanted = [a.output for a in manifest.attributes if a.output not in outputs]
        if wanted:
            raise UserInputError(
                f"expected outputs {sorted(outputs)} of {str(manifest.model)!r} in its manifest, "
                f"received {sorted(set(wanted))}"
            )
        self.outputs = sorted({a.output for a in manifest.attributes})

    @property
    def attribute_kinds(self) -> dict[str, str]:
        return {a.name: a.kind for a in self.manifest.attributes}

    @property
    def input_size(self) -> int:
        return self.manifest.pipeline.crop

    def predict(self, images: torch.Tensor, batch_size: int = 64) -> dict[str, np.ndarray]:
        x = self.manifest.pipeline(images).contiguous().numpy().astype(np.float32)
        step = self.batch or len(x)
        runs = [self._run(x[i : i + step]) for i in range(0, len(x), step)]
        merged = {k: np.concatenate([r[k] for r in runs]) for k in self.outputs}
        return {
            a.name: _read(merged[a.output], a, str(self.manifest.model))
            for a in self.manifest.attributes
        }

    def _run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        try:
            values = self.session.run(self.outputs, {self.input_name: x})
        except _ort_errors() as err:
            raise UserInputError(
                f"expected {str(self.manifest.model)!r} to run on float32 images "
                f"{list(x.shape)}, received an onnxruntime error ({type(err).__name__}: "
                f"{str(err).splitlines()[0][:200] if str(err) else ''})"
            ) from None
        return {k: np.asarray(v) for k, v in zip(self.outputs, values, strict=True)}


def _read(values: np.ndarray, attribute: OnnxAttribute, where: str) -> np.ndarray:
    values = values.astype(np.float64)
    if attribute.activation == "softmax":
        values = np.exp(values - values.max(axis=-1, keepdims=True))
        values = values / values.sum(axis=-1, keepdims=True)
    elif attribute.activation == "sigmoid":
        values = 1.0 / (1.0 + np.exp(-values))
    if attribute.index is not None:
        if values.ndim != 2 or attribute.index >= values.shape[1]:
            raise UserInputError(
                f"expected output {attribute.output!r} of {where} to be [N, C] with C > "
                f"{attribute.index} for {attribute.name}, received {list(values.shape)}"
            )
        values = values[:, attribute.index]
    return values.astype(np.float32)


def _session_input(session, manifest: OnnxManifest) -> str:
    inputs = session.get_inputs()
    where = repr(str(manifest.model))
    if len(inputs) != 1 or (manifest.input_name not in (None, inputs[0].name)):
        raise UserInputError(
            f"expected one image input{f' named {manifest.input_name!r}' if manifest.input_name else ''} "
            f"in {where}, received {[i.name for i in inputs]}"
        )
    shape, size = inputs[0].shape, manifest.pipeline.crop
    fixed = [d if isinstance(d, int) else None for d in shape]
    ok = len(shape) == 4 and fixed[1] in (None, 3) and all(d in (None, size) for d in fixed[2:])
    if not ok or inputs[0].type != "tensor(float)":
        raise UserInputError(
            f"expected {where} to take float images [N, 3, {size}, {size}] (the manifest's size), "
            f"received {inputs[0].type} {shape}"
        )
    return inputs[0].name


def _static_batch(shape) -> int | None:
    return shape[0] if isinstance(shape[0], int) and shape[0] >= 1 else None


def _ort_errors() -> tuple[type[BaseException], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    found = [v for v in vars(state).values() if isinstance(v, type) and issubclass(v, Exception)]
    return (RuntimeError, ValueError, *found)


def load_onnx_predictor(path: str | Path, device: str | torch.device = "cpu") -> CheckedPredictor:
    """The ONNX predictor a manifest describes, on onnxruntime's CPU provider (CUDA when
    `device` is a GPU and onnxruntime has that provider).

    Raises:
        UserInputError: onnxruntime not installed, a manifest that does not match the model.
        DamagedInputError: a model file onnxruntime cannot read.
    """
    device = resolve_device(device)
    manifest = read_onnx_manifest(path)
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserInputError(
            "expected onnxruntime for an ONNX predictor (pip install 'ganedit[onnx]'), "
            "received none installed"
        ) from None
    if not manifest.model.is_file():
        raise UserInputError(
            f"expected the ONNX model the manifest names, received {str(manifest.model)!r} "
            "(no such file)"
        )
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(str(manifest.model), providers=providers)
    except _ort_errors() as err:
        raise DamagedInputError(
            f"expected an ONNX model in {str(manifest.model)!r}, received a file onnxruntime "
            f"cannot load ({type(err).__name__})"
        ) from None
    log.info("loaded ONNX predictor %s (%s)", manifest.model, providers[0])
    return CheckedPredictor(OnnxPredictor(manifest, session), f"ONNX predictor {str(path)!r}")
