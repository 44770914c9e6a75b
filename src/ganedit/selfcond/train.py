"""Fine-tune a pretrained StyleGAN2 into a self-conditioned one (SC-GAN, B6).

The StyleGAN2 recipe (`ganedit.training.gan`: non-saturating loss, lazy R1, path length,
style mixing, EMA, Adam with lazy correction) runs unchanged with four additions:
- the generator's input becomes a `ModeInput` over the labels' attributes, starting
  identical to the pretrained generator (zero offsets; `init="copy"` for SC-GAN's copies);
- batches of real images come from the re-sampled index list, each with its mode target
  (its labels, normalised by the store's percentile ranges, as a full soft 3-anchor vector);
- fakes get modes with t ~ U(0, 1) per attribute, and the discriminator's mode head adds a
  KL term on reals (weight `md_d`) and on fakes for the generator (`md_g`);
- the discriminator starts from the pretrained one when the generator comes with it (an
  NVIDIA StyleGAN2-ADA `.pkl` holds its `D`: its trunk and real/fake head are kept, its
  minibatch-std group and `conv_clamp` too, and the mode head starts fresh); otherwise (the
  shipped `world64`, a `.pt`, a folder) it is fresh, so it trains alone for `d_warmup` steps
  first.
No horizontal flips: they would contradict yaw labels. The rest of the recipe (architecture,
learning rate, R1, EMA) is the pretrained generator's own training config when it records
one.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image

from ganedit.choices import SELFCOND_FAKE_MODES, SELFCOND_INITS, SELFCOND_MODE_LOSSES
from ganedit.errors import DamagedInputError, UserInputError
from ganedit.models.modes import ModeLayout, save_mode_prior
from ganedit.models.registry import MODE_READER, save_pretrained
from ganedit.models.stylegan2 import Discriminator, Generator
from ganedit.selfcond.conditioning import ModeConditioning
from ganedit.selfcond.labels import anchor_coordinates, load_labels
from ganedit.training.gan import (
    BatchSampler,
    GanConfig,
    RunSpec,
    init_process,
    run_training,
    setup_gan,
)
from ganedit.utils.context import RunContext
from ganedit.utils.distributed import world_info
from ganedit.utils.files import atomic_path, record_files
from ganedit.utils.params import Integer, OneOf, OrNone, Real, check_fields

log = logging.getLogger(__name__)

INITS = SELFCOND_INITS


@dataclass(frozen=True)
class SelfCondConfig:
    """Settings of `train_selfcond`; None takes the pretrained run's value."""

    generator: str = "world64"
    data: str = ""  # the training images (LMDB or folder) the labels describe
    labels: str = ""  # a selflabel store of those images
    resample: str | None = None  # a resample folder (indices.npy); None: every image alike
    attributes: tuple[str, ...] | None = None  # label columns that become modes (None: all)
    init: str = "offset"
    md_d: float = 0.5
    md_g: float = 0.5
    # The generator's mode term: "ac" (SC-GAN's classifier) or "twin" (TAC-GAN: minus a twin
    # head's reading of the fakes; selfcond.conditioning).
    mode_loss: str = "ac"
    # The fakes' modes: "uniform" (t ~ U(0, 1), SC-GAN) or "data" (the real images' modes,
    # drawn as the re-sampled batches draw them).
    fake_modes: str = "uniform"
    # Share of the fakes' attributes drawn at the neutral mode (ModeConditioning).
    neutral_share: float = 0.0
    iterations: int = 3000
    d_warmup: int = 500
    batch: int | None = None
    lr: float | None = None
    r1: float | None = None
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 500
    # Steps between diversity probes of g_ema into probe.jsonl (0: never): identity cosine
    # and yaw spread at the neutral mode and at uniform modes (evaluation.diversity).
    probe_every: int = 0

    _CONSTRAINTS = {
        "init": OneOf(INITS),
        "md_d": Real(0.0, 1e6),
        "md_g": Real(0.0, 1e6),
        "mode_loss": OneOf(SELFCOND_MODE_LOSSES),
        "fake_modes": OneOf(SELFCOND_FAKE_MODES),
        "neutral_share": Real(0.0, 1.0),
        "iterations": Integer(1, 100_000_000),
        "d_warmup": Integer(0, 100_000_000),
        "batch": OrNone(Integer(1, 65_536)),
        "lr": OrNone(Real(1e-12, 10.0)),
        "r1": OrNone(Real(0.0, 1e6)),
        "seed": Integer(0, 2**63 - 1),
        "checkpoint_every": Integer(1, 100_000_000),
        "sample_every": Integer(1, 100_000_000),
        "probe_every": Integer(0, 100_000_000),
    }

    def __post_init__(self):
        check_fields(self, self._CONSTRAINTS, "train-selfcond")


@dataclass(frozen=True)
class Pretrained:
    """What the fine-tune starts from."""

    generator: Generator
    identity: dict
    train: dict  # the generator's training config, or {}
    discriminator: Discriminator | None = None  # the one it was trained with, when it has one


def _pretrained(name_or_path: str, device) -> Pretrained:
    """The generator to fine-tune, its identity, its training config and discriminator."""
    from ganedit.models import registry
    from ganedit.models.io import read_config
    from ganedit.models.sources import StyleGANSource, load_generator

    if str(name_or_path).endswith(".pkl") and Path(name_or_path).is_file():
        return _from_pickle(Path(name_or_path))
    run_checkpoint = _training_checkpoint(Path(name_or_path))
    if run_checkpoint is not None:
        return _from_checkpoint(run_checkpoint, device)
    source = load_generator(name_or_path, device)
    if not isinstance(source, StyleGANSource):
        raise UserInputError(
            f"expected a StyleGAN2 generator to self-condition, received {name_or_path!r}"
        )
    if source.generator.num_modes:
        raise UserInputError(f"expected an unconditional generator, received {name_or_path!r}")
    folder = registry.generator_folder(name_or_path)
    train = (read_config(folder).get("train_config") or {}) if folder is not None else {}
    return Pretrained(source.generator, source.identity, train)


def _training_checkpoint(path: Path) -> Path | None:
    """The checkpoint folder when `path` is a `train-gan` run folder or its `checkpoint/`
    (g_ema, g, d and state.json inside), else None."""
    for folder in (path / "checkpoint", path):
        if (folder / "state.json").is_file() and (folder / "g_ema.safetensors").is_file():
            return folder
    return None


def _from_checkpoint(folder: Path, device) -> Pretrained:
    """A `train-gan` checkpoint: its g_ema (mean w from the run's seed), the discriminator
    it was trained against, and the run's config as the recipe. SC-GAN fine-tunes the
    pretrained D; a fresh one has to catch up first, while the generator drifts."""
    from ganedit.models.io import load_weights
    from ganedit.models.sources import file_sha256
    from ganedit.training.gan import GanConfig, build_discriminator, build_generator
    from ganedit.utils.bounded import load_json_bounded

    where = repr(str(folder))
    meta = load_json_bounded(folder / "state.json", what="a training checkpoint's state")
    meta = meta.get("meta") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise DamagedInputError(f"expected a train-gan checkpoint's state in {where}, received "
                                "a state.json without its meta and config")  # fmt: skip
    known = {f.name for f in dataclasses.fields(GanConfig)}
    train = {k: v for k, v in meta["config"].items() if k in known}
    if isinstance(train.get("channels"), list):
        train["channels"] = tuple(train["channels"])
    gcfg = GanConfig(**train)
    g, d = build_generator(gcfg), build_discriminator(gcfg)
    for module, name in ((g, "g_ema"), (d, "d")):
        weights = folder / f"{name}.safetensors"
        if not weights.is_file():
            raise UserInputError(f"expected {name}.safetensors in {where}, received none")
        state = load_weights(weights)
        if "input.mode_offsets" in state:
            raise UserInputError(f"expected an unconditional train-gan run, received the "
                                 f"self-conditioned checkpoint {where}")  # fmt: skip
        try:
            module.load_state_dict(state)
        except RuntimeError as err:
            raise DamagedInputError(
                f"expected the weights of the run's configured networks in {where}, received "
                f"others: {' '.join(str(err).split())[:200]}"
            ) from None
    g.eval().update_w_avg(generator=torch.Generator().manual_seed(gcfg.seed))
    run = folder.parent if folder.name == "checkpoint" else folder
    identity = {"name": f"{run.name}@{int(meta.get('step', 0))}",
                "sha256": file_sha256(folder / "g_ema.safetensors")}  # fmt: skip
    log.info(
        "starting from %s's checkpoint at step %s and its discriminator", run, meta.get("step")
    )
    return Pretrained(g.to(device), identity, train, d.to(device))


def _from_pickle(path: Path) -> Pretrained:
    """An NVIDIA pickle's G_ema and, when ganedit's discriminator can be it, its D (else a
    fresh one, the reason logged), from one read of the file."""
    from ganedit.models.sources import file_sha256
    from ganedit.models.stylegan2.nvidia_discriminator import discriminator_from_record
    from ganedit.models.stylegan2.nvidia_pkl import (
        generator_from_record,
        network_record,
        read_nvidia_pickle,
    )

    where = repr(str(path))
    top = read_nvidia_pickle(path)
    g, has_w_avg = generator_from_record(network_record(top, "G_ema", where), where)
    if g.c_dim:  # its mapping needs a label, which SC-GAN's generator does not take
        raise UserInputError(
            f"expected an unconditional generator to self-condition, received the "
            f"class-conditional {str(path)!r} (c_dim {g.c_dim})"
        )
    if not has_w_avg:
        g.update_w_avg(generator=torch.Generator().manual_seed(0))
    d = None
    if isinstance(top, dict) and top.get("D") is not None:
        try:
            d = discriminator_from_record(network_record(top, "D", where), where)
            log.info("starting from the pickle's discriminator (%s)", d.extra_repr())
        except DamagedInputError:
            raise
        except UserInputError as err:
            log.warning("starting a fresh discriminator: the pickle's does not fit (%s)", err)
    identity = {"name": path.name, "sha256": file_sha256(path)}
    return Pretrained(g, identity, {}, d)


def gan_config(
    cfg: SelfCondConfig, g: Generator, train: dict, d: Discriminator | None = None
) -> GanConfig:
    """The StyleGAN2 recipe of the fine-tune: the pretrained run's, architecture from the
    generator itself (and the minibatch-std group from its discriminator, when it has one),
    then this config's overrides."""
    known = {f.name for f in dataclasses.fields(GanConfig)}
    recipe = {k: v for k, v in train.items() if k in known}
    if d is not None:
        recipe["mbstd_group"] = d.stddev_group
    if isinstance(recipe.get("channels"), list):
        recipe["channels"] = tuple(recipe["channels"])
    arch = g.config
    recipe.update(
        size=arch["size"], style_dim=arch["style_dim"], n_mlp=arch["n_mlp"],
        channel_multiplier=arch["channel_multiplier"], channel_max=arch["channel_max"],
        channels=tuple(arch["channels"]) if arch.get("channels") else None,
        data=cfg.data, iterations=cfg.iterations, d_warmup=cfg.d_warmup, seed=cfg.seed,
        checkpoint_every=cfg.checkpoint_every, sample_every=cfg.sample_every, flip=False,
        probe_every=cfg.probe_every,
    )  # fmt: skip
    for key in ("batch", "lr", "r1"):
        if getattr(cfg, key) is not None:
            recipe[key] = getattr(cfg, key)
    return GanConfig(**recipe)


def label_mode_vectors(cfg: SelfCondConfig, n_images: int) -> tuple[torch.Tensor, list[str], dict]:
    """Full mode vectors [N, 1 + 3k] of every image, the attributes, and the labels record
    (with `chosen_ranges`, the chosen attributes' ranges [k, 2])."""
    labels, record = load_labels(cfg.labels)
    if len(labels) != n_images:
        raise UserInputError(
            f"expected labels for the {n_images} images of {cfg.data!r}, received "
            f"{len(labels)} in {cfg.labels!r}"
        )
    t, chosen, ranges = anchor_coordinates(labels, record, cfg.attributes)
    vectors = ModeLayout(chosen).target_vector(t)
    return vectors, chosen, {**record, "chosen_ranges": ranges}


def train_selfcond(
    cfg: SelfCondConfig,
    run_dir: str | Path,
    resume: bool = True,
    *,
    ctx: RunContext = RunContext(),
) -> Path:
    """Fine-tune `cfg.generator` into a self-conditioned generator; returns its folder
    (run_dir/g_ema; the discriminator, whose mode head reads images' modes, goes inside it,
    to g_ema/mode-reader). Resumable; everything is checked before the run folder is made."""
    from ganedit.datasets import ImageDataset
    from ganedit.selfcond.run import load_indices

    data = ImageDataset(cfg.data)
    targets, attributes, record = label_mode_vectors(cfg, len(data))
    indices = load_indices(cfg.resample, len(data)) if cfg.resample else None
    start = _pretrained(cfg.generator, "cpu")
    pretrained, identity = start.generator, start.identity
    gcfg = gan_config(cfg, pretrained, start.train, start.discriminator)
    device = init_process(gcfg, ctx.device)  # torchrun-capable, as train-gan
    layout = ModeLayout(attributes)
    base_kwargs = {key: v for key, v in pretrained.config.items() if key != "mode_attributes"}

    def build_g(c: GanConfig) -> Generator:
        return Generator(**base_kwargs, mode_attributes=attributes)

    d_config = start.discriminator.config if start.discriminator is not None else {}

    def build_d(c: GanConfig) -> Discriminator:
        return Discriminator(
            c.size, channel_multiplier=c.channel_multiplier, channel_max=c.channel_max,
            channels=c.channels, stddev_group=c.mbstd_group, num_modes=layout.num_modes,
            blur_kernel=d_config.get("blur_kernel", (1, 3, 3, 1)),
            conv_clamp=d_config.get("conv_clamp"), twin_modes=cfg.mode_loss == "twin",
        )  # fmt: skip

    state = setup_gan(
        gcfg,
        device,
        build_g,
        build_d,
        ModeConditioning(
            layout.k,
            cfg.md_d,
            cfg.md_g,
            cfg.neutral_share,
            twin=cfg.mode_loss == "twin",
            pool=_mode_pool(layout, targets, indices) if cfg.fake_modes == "data" else None,
        ),
    )
    for g in (state.g, state.g_ema):
        _start_from(g, pretrained, cfg.init)
    if start.discriminator is not None:
        _start_d_from(state.d, start.discriminator)
    sampler = BatchSampler(data, gcfg, device, indices, targets)
    provenance = {
        "base": identity,
        "discriminator": "pretrained" if start.discriminator is not None else "fresh",
        "attributes": attributes,
        "ranges": record["chosen_ranges"].tolist(),
        "labels": {"path": cfg.labels, "source": record.get("source")},
        "resample": cfg.resample,
        "init": cfg.init,
        "mode_loss": cfg.mode_loss,
        "fake_modes": cfg.fake_modes,
    }
    spec = RunSpec(
        what="train-selfcond",
        config={**asdict(cfg), "gan": asdict(gcfg)},
        extra={"selfcond": provenance},
        samples=save_mode_samples,
        adopt=(),
        probe=_diversity_probe(device) if cfg.probe_every else None,
    )
    out = run_training(gcfg, Path(run_dir), state, sampler, spec, resume, device, ctx.progress)
    if world_info()[0] == 0:  # its mode head reads the modes of images the model did not make
        extra = {"selfcond": provenance, "iterations": state.step}
        save_pretrained(state.d, Path(out) / MODE_READER, extra=extra, overwrite=True)
        save_data_modes(out, layout, targets, cfg.labels)
        record_files(out)  # so that a resumed, extended run may replace them all
    return out


def _mode_pool(layout: ModeLayout, targets: torch.Tensor, indices) -> torch.Tensor:
    """The coordinates [P, k] of the real images as the batches draw them (each re-sampled
    index once, so repeats weigh as in the batches)."""
    t = layout.coordinates(targets)
    return t if indices is None else t[torch.as_tensor(indices, dtype=torch.long)]


def _diversity_probe(device):
    from ganedit.evaluation.diversity import diversity_probe
    from ganedit.models.registry import load_identity_embedder, load_predictor

    return diversity_probe(load_predictor("evaluator", device),
                           load_identity_embedder("identity", device))  # fmt: skip


PRIOR_ROWS = 4096  # rows of the data's modes shipped with the model (evenly spaced images)


def save_data_modes(folder: Path, layout: ModeLayout, targets: torch.Tensor, labels) -> None:
    """The data's mode distribution beside the model (`sample` draws from it): the anchor
    coordinates of every image of the fine-tune's data, before re-sampling, thinned to
    PRIOR_ROWS evenly spaced images."""
    t = layout.coordinates(targets)
    rows = torch.linspace(0, len(t) - 1, min(PRIOR_ROWS, len(t))).round().long()
    origin = f"the labels of the fine-tune's data ({labels}), {len(rows)} of {len(t)} images"
    save_mode_prior(folder, layout, t[rows], origin)


@torch.no_grad()
def _start_from(g: Generator, pretrained: Generator, init: str) -> None:
    missing, unexpected = g.load_state_dict(pretrained.state_dict(), strict=False)
    if unexpected or missing != ["input.mode_offsets"]:
        raise UserInputError(
            f"expected the pretrained generator's weights to fit, received missing {missing} "
            f"and unexpected {unexpected}"
        )
    g.w_avg.copy_(pretrained.w_avg)
    if init == "copy":
        g.input.copy_base_into_modes()


@torch.no_grad()
def _start_d_from(d: Discriminator, pretrained: Discriminator) -> None:
    """The pretrained discriminator's trunk and real/fake head; the mode heads stay fresh."""
    missing, unexpected = d.load_state_dict(pretrained.state_dict(), strict=False)
    if unexpected or not all(key.startswith(("final_class.", "final_twin.")) for key in missing):
        raise UserInputError(
            f"expected the pretrained discriminator's weights to fit the generator's channels, "
            f"received missing {missing[:4]} and unexpected {unexpected[:4]}"
        )


T_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


@torch.no_grad()
def save_mode_samples(g_ema: Generator, cfg: GanConfig, path: Path, per_attribute: int = 2) -> None:
    """Per attribute, `per_attribute` faces (z of the run's seed) across t = 0 .. 1, the
    others neutral."""
    from ganedit.editing.edit import mode_sweep_grid
    from ganedit.models.sources import StyleGANSource

    source = StyleGANSource(g_ema, "g_ema")
    image = mode_sweep_grid(source, per_attribute, cfg.seed, T_GRID)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="png")
