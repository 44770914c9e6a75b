"""Every name ganedit resolves to a model, in one place.

- Model classes by explicit registered name (`stylegan2-generator`, `attribute-net`, ...), each
  with the schema of its constructor arguments: a model folder's config is checked against it
  and its weights' shapes against the model the config describes (built on the `meta` device,
  which allocates nothing) before any real allocation, so a damaged folder, weights of another
  model or a memory-bomb config are refused with one line.
- The shipped measuring networks (`labeler`, `evaluator`, `identity`) and the embedded
  generators (`world64`, `world64-v1`, `world64-sc`, `world64-sc-v1`) by name, and the
  optional `dcgan-digiface`.
- The real-face networks on dlib (`dlib-pose`, `dlib-mouth`, `dlib-identity`; the optional
  extra ganedit[faces]), by name.

Model modules do not import this module: dependencies point from the registry to the models.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from ganedit.choices import (  # noqa: F401 (re-exported: the registry's names)
    DEFAULT_GENERATOR,
    EMBEDDED_GENERATORS,
    FACE_NETWORKS,
    GENERATOR_NAMES,
    OPTIONAL_GENERATORS,
    PREDICTORS,
)
from ganedit.errors import UserInputError
from ganedit.models import io
from ganedit.models.encoder.networks import Encoder4Editing
from ganedit.models.modes import ModeLayout, num_modes
from ganedit.models.predictors import AttributeNet, IdentityNet
from ganedit.models.stylegan2.networks import MODCONV_IMPLS, Discriminator, Generator
from ganedit.utils.device import resolve_device
from ganedit.utils.params import Integer, ListOf, Name, OneOf, OrNone, Real, check_params

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------
# Model classes


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its class, the schema of its kwargs, older names it was saved as."""

    name: str
    cls: type[torch.nn.Module]
    constraints: dict = field(default_factory=dict)
    legacy_names: tuple[str, ...] = ()


_BLUR = ListOf(Real(-1e3, 1e3), 1, 16)
_CHANNELS = OrNone(ListOf(Integer(1, 4096), 1, 9))
_SIZE = Integer(8, 1024, power_of_two=True)
_ARCH = OneOf(("plain", "residual"))
_CLAMP = OrNone(Real(1e-6, 1e9))  # StyleGAN2-ADA's activation clamp (256), or none
MAX_MODE_ATTRIBUTES = 16  # a self-conditioned generator's modes: at most 1 + 3 * 16 slots

MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model; a name (or legacy name) used twice is a programming error."""
    taken = {n for s in MODELS.values() for n in (s.name, *s.legacy_names)}
    clash = {spec.name, *spec.legacy_names} & taken
    if clash:
        raise ValueError(f"model name(s) {sorted(clash)} registered twice")
    MODELS[spec.name] = spec
    return spec


register(
    ModelSpec(
        "stylegan2-generator",
        Generator,
        {
            "size": _SIZE,
            "style_dim": Integer(1, 4096),
            "n_mlp": Integer(1, 32),
            "channel_multiplier": Integer(1, 64),
            "lr_mlp": Real(1e-6, 10.0),
            "channel_max": Integer(1, 4096),
            "blur_kernel": _BLUR,
            "modconv_impl": OneOf(tuple(MODCONV_IMPLS)),
            "channels": _CHANNELS,
            "mode_attributes": OrNone(ListOf(Name(), 1, MAX_MODE_ATTRIBUTES, unique=True)),
            "c_dim": Integer(0, 100_000),  # class-conditional (StyleGAN2-ADA's labels)
            "conv_clamp": _CLAMP,
        },
        legacy_names=("Generator",),
    )
)
register(
    ModelSpec(
        "stylegan2-discriminator",
        Discriminator,
        {
            "size": _SIZE,
            "channel_multiplier": Integer(1, 64),
            "channel_max": Integer(1, 4096),
            "blur_kernel": _BLUR,
            "channels": _CHANNELS,
            "stddev_group": Integer(1, 4096),
            "num_modes": Integer(0, num_modes(MAX_MODE_ATTRIBUTES)),
            "conv_clamp": _CLAMP,
            "twin_modes": OneOf((True, False)),  # TAC-GAN's twin mode head (train-selfcond)
        },
        legacy_names=("Discriminator",),
    )
)
register(
    ModelSpec(
        "attribute-net",
        AttributeNet,
        {
            "arch": _ARCH,
            "width": Integer(8, 512),
            "hidden": Integer(1, 8192),
            "image_size": Integer(16, 512, power_of_two=True),
        },
        legacy_names=("AttributeNet",),
    )
)
register(
    ModelSpec(
        "identity-net",
        IdentityNet,
        {
            "arch": _ARCH,
            "width": Integer(8, 512),
            "dim": Integer(1, 4096),
            "image_size": Integer(16, 512, power_of_two=True),
        },
        legacy_names=("IdentityNet",),
    )
)
register(
    ModelSpec(
        "e4e-encoder",
        Encoder4Editing,
        {
            "image_size": Integer(32, 1024, power_of_two=True),
            "w_dim": Integer(1, 4096),
            "num_ws": Integer(1, 64),
            "stage_units": ListOf(Integer(1, 64), 4, 4),
            "stage_channels": ListOf(Integer(1, 4096), 4, 4),
            "style_channels": Integer(1, 4096),
            "coarse_ind": Integer(1, 64),
            "middle_ind": Integer(1, 64),
            "se_reduction": Integer(1, 4096),
            "start_from_latent_avg": OneOf((True, False)),
        },
    )
)


def spec_of_class(cls: type) -> ModelSpec:
    for spec in MODELS.values():
        if spec.cls is cls:
            return spec
    raise ValueError(f"{cls.__name__} is not a registered model class")


def spec_named(name: str) -> ModelSpec:
    for spec in MODELS.values():
        if name == spec.name or name in spec.legacy_names:
            return spec
    raise UserInputError(f"expected a model name among {sorted(MODELS)}, received {name!r}")


def save_pretrained(
    model: torch.nn.Module,
    directory: str | Path,
    extra: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `model` as a folder (`config.json` + `model.safetensors`), atomically.

    `overwrite` replaces an existing folder that ganedit wrote; other folders are refused."""
    spec = spec_of_class(type(model))
    return io.write_model_folder(
        directory, spec.name, model.config, model.state_dict(), extra, overwrite=overwrite
    )


def load_pretrained(
    directory: str | Path,
    device: str | torch.device = "cpu",
    expect: tuple[str, ...] | None = None,
) -> torch.nn.Module:
    """Rebuild a registered model from its folder (eval mode), checking it on the way.

    `expect`: registered names that are acceptable here (e.g. only generators)."""
    device = resolve_device(device)
    directory = Path(directory)
    config = io.read_config(directory)
    spec = spec_named(config.get("model") or config.get("class_name"))
    if expect is not None and spec.name not in expect:
        raise UserInputError(
            f"expected a model folder of {list(expect)}, received a {spec.name} in "
            f"{str(directory)!r}"
        )
    kwargs = config["kwargs"]
    check_params(kwargs, spec.constraints, f"{spec.name} config.json")
    header = io.read_weights_header(directory / io.WEIGHTS)
    io.check_state_shapes(_shapes_on_meta(spec, kwargs), header, str(directory))
    model = _build(spec, kwargs)
    model.load_state_dict(io.load_weights(directory / io.WEIGHTS), strict=True)
    return model.to(device).eval()


def _shapes_on_meta(spec: ModelSpec, kwargs: dict) -> dict[str, tuple[int, ...]]:
    # The meta device gives shapes without memory, so the file is checked before allocation.
    with torch.device("meta"):
        model = _build(spec, kwargs)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _build(spec: ModelSpec, kwargs: dict) -> torch.nn.Module:
    return io.construct(spec.cls, kwargs, f"{spec.name} constructor arguments")


# ------------------------------------------------------------------------------------------
# Shipped networks and generators by name

# PREDICTORS, EMBEDDED_GENERATORS, OPTIONAL_GENERATORS, GENERATOR_NAMES and DEFAULT_GENERATOR
# come from ganedit.choices (imported above).


def weights_dir(name: str) -> Path:
    """The package folder of a shipped network or embedded generator."""
    return Path(str(resources.files("ganedit").joinpath(f"data/weights/{name}")))


def load_predictor(name_or_dir: str | Path, device: str | torch.device = "cpu"):
    """A measuring network or attribute predictor (`AttributePredictor`), by one of:

    - `labeler`, `evaluator` or `identity` (shipped), or a ganedit model folder;
    - `dlib-pose`, `dlib-mouth` or `dlib-identity` (real faces; needs `ganedit[faces]`);
    - a `.pth` / `.pth.tar` ResNet checkpoint of the balanced-sampling reference's layout;
    - an ONNX predictor manifest `.json` (needs `ganedit[onnx]`);
    - `py:package.module:callable`, which imports and runs that user code.

    Foreign forms live in `ganedit.models.foreign_predictors`, imported only when used."""
    text = str(name_or_dir)
    predictors = ("attribute-net", "identity-net")
    if text in FACE_NETWORKS:
        from ganedit.models.face_measures import load_face_network

        return load_face_network(text, device)
    if text in PREDICTORS:
        folder = weights_dir(text)
        if not (folder / io.WEIGHTS).is_file():
            raise UserInputError(
                f"expected shipped weights for {text!r} in {folder}, received none "
                f"(train them with `ganedit train-predictor --kind {text}`)"
            )
        return load_pretrained(folder, device, expect=predictors)
    from ganedit.models import foreign_predictors as foreign

    if foreign.is_entry_point(text):
        return foreign.load_entry_point(text, device)
    if Path(text).is_dir():
        return load_pretrained(text, device, expect=predictors)
    if foreign.is_checkpoint_path(text):
        return foreign.load_resnet_predictor(text, device)
    if text.lower().endswith(".json"):
        return foreign.load_onnx_predictor(text, device)
    raise UserInputError(
        f"expected a predictor name {PREDICTORS + FACE_NETWORKS}, a model folder, a .pth/.pth.tar checkpoint, "
        f"an ONNX manifest .json or py:module:callable, received {text!r}"
    )


MODE_READER = "mode-reader"  # a self-conditioned generator folder's discriminator

# The shipped encoder of each shipped generator: `--encoder`'s default follows `-g`.
SHIPPED_ENCODERS = {
    "world64": "world64-encoder",
    "world64-sc": "world64-sc-encoder",
    "world64-sc-v1": "world64-sc-v1-encoder",
}


def generator_folder(name_or_path: str | Path) -> Path | None:
    """The model folder of a generator given by shipped name or path; None when it is not a
    folder ganedit wrote (a .pt file, an optional package's generator)."""
    text = str(name_or_path)
    folder = weights_dir(text) if text in GENERATOR_NAMES else Path(text)
    return folder if (folder / io.CONFIG).is_file() else None


def load_mode_reader(generator: str | Path, attributes: list[str], device="cpu"):
    """The discriminator whose mode head reads images' modes for a self-conditioned
    generator (a shipped name or a folder): the folder's `mode-reader/`, which must have
    one logit per mode of `attributes` and record the same attributes."""
    folder = generator_folder(generator)
    reader = (folder or Path(str(generator))) / MODE_READER
    if not (reader / io.CONFIG).is_file():
        raise UserInputError(
            f"expected a mode reader (the fine-tune's discriminator) in {reader} to read "
            "images' modes, received none (pass --modes neutral instead)"
        )
    d = load_pretrained(reader, device, expect=("stylegan2-discriminator",))
    recorded = (io.read_config(reader).get("selfcond") or {}).get("attributes")
    wanted = ModeLayout(attributes)
    if d.config.get("num_modes") != wanted.num_modes or recorded != list(wanted.attributes):
        raise UserInputError(
            f"expected a mode reader for the modes {list(attributes)}, received one for "
            f"{recorded} ({d.config.get('num_modes')} mode logits) in {reader}"
        )
    return d


EMBEDDED_ENCODERS = ("world64-encoder", "world64-sc-encoder", "world64-sc-v1-encoder")


def load_encoder(name_or_dir: str | Path, device: str | torch.device = "cpu") -> dict:
    """An e4e-style encoder by name (`world64-encoder`), folder, or official encoder4editing
    checkpoint file (`e4e_ffhq_encode.pt`), with what identifies the generator it was
    trained for: {"encoder": module, "generator": {"name", "sha256"} or None, "decoder":
    the checkpoint's own generator (a checkpoint file only; None when it holds none)}."""
    text = str(name_or_dir)
    folder = weights_dir(text) if text in EMBEDDED_ENCODERS else Path(text)
    if text in EMBEDDED_ENCODERS and not (folder / io.WEIGHTS).is_file():
        raise UserInputError(
            f"expected the shipped encoder {text!r} in {folder}, received no weights "
            "(train one with `ganedit train-encoder` and pass its encoder/ folder)"
        )
    if folder.is_file():
        from ganedit.models.encoder.convert import load_e4e_checkpoint

        loaded = load_e4e_checkpoint(folder, device)
        return {"encoder": loaded["encoder"], "generator": None, "decoder": loaded["decoder"]}
    if not folder.is_dir():
        raise UserInputError(
            f"expected an encoder name {EMBEDDED_ENCODERS}, an encoder folder or an e4e "
            f"checkpoint file, received {text!r}"
        )
    encoder = load_pretrained(folder, device, expect=("e4e-encoder",))
    generator = io.read_config(folder).get("generator")
    ok = isinstance(generator, dict) and isinstance(generator.get("sha256"), str)
    return {"encoder": encoder, "generator": generator if ok else None, "decoder": None}


IDENTITY = "identity"
DLIB_IDENTITY = FACE_NETWORKS[2]  # dlib-identity


def load_identity_embedder(name_or_dir: str | Path, device: str | torch.device = "cpu"):
    """An identity embedder (`embed(images, batch_size)` -> unit vectors [N, E]): `identity`
    (shipped, the face world's), `dlib-identity` (dlib's face-recognition network, for real
    faces; needs `ganedit[faces]`), an identity-net folder, or `py:package.module:callable`
    (user code, e.g. an ArcFace wrapper; its outputs are checked and made unit length)."""
    from ganedit.models import foreign_predictors as foreign
    from ganedit.models.predictors import IdentityNet

    text = str(name_or_dir)
    if foreign.is_entry_point(text):
        return foreign.load_identity_entry_point(text, device)
    if text == DLIB_IDENTITY:
        from ganedit.models.face_measures import load_face_network

        return load_face_network(text, device)
    model = load_predictor(text, device)
    if not isinstance(model, IdentityNet):
        raise UserInputError(
            f"expected an identity embedder ({IDENTITY!r}, {DLIB_IDENTITY!r}, an identity-net "
            f"folder or py:module:callable), received {type(model).__name__} from {text!r}"
        )
    return model


def load_attribute_predictor(
    name_or_dir: str | Path, device: str | torch.device = "cpu", *, foreign: bool = False
):
    """Like `load_predictor`, but only attribute predictors (not the identity embedder).

    With `foreign`, anything satisfying `AttributePredictor` (what `score`, `generate`,
    `evaluate`, `study` and calibrated edits need); without, only the shipped kind
    (`AttributeNet`: the labeler, the evaluator, an attribute-net folder), which
    self-labelling and `evaluate-predictor` still require. Networks come in eval mode, as
    every loader here returns them."""
    from ganedit.models.foreign_predictors import is_attribute_predictor

    model = load_predictor(name_or_dir, device)
    if foreign and is_attribute_predictor(model):
        return model
    if not isinstance(model, AttributeNet):
        accepted = (
            "or a foreign predictor"
            if foreign
            else "(foreign predictors: score, generate, evaluate, study, edit)"
        )
        raise UserInputError(
            f"expected an attribute predictor (labeler, evaluator, an attribute-net folder "
            f"{accepted}), received {type(model).__name__} from {str(name_or_dir)!r}"
        )
    return model
