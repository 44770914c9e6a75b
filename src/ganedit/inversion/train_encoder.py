"""Training an e4e encoder (encoder4editing, Tov et al. 2021) for a ganedit StyleGAN2 generator.

The generator is frozen (eval, no gradients of its own); the encoder's codes are rendered by
its synthesis network with constant noise and the reconstruction is compared with the input,
so the gradients reach the encoder through the generator. Each batch holds two kinds of
images:

- the generator's own samples (`synthetic_fraction` of the batch, from z mapped with
  `truncation_psi`): their ws are known, so a latent loss (mean squared error of the
  predicted ws) teaches the encoder where the generator's codes are;
- images the generator did not make: the LMDB or folder `data`, or, when `data` is None,
  faces rendered on the fly by the procedural world (`world`: the `celeba` preset by default;
  `balanced` shows every attribute's tail as often as its core, so the encoder learns to
  keep glasses, smiles and turned heads the generator's own samples rarely show) with `data_seed`
  (7001 by default, a seed that no evaluation or shipped network uses: predictors train on
  101/202/303, their held-out checks use 999983, studies and samples use 0 and 7).

The loss per batch, as in e4e: `pixel` x MSE + `perceptual` x the perceptual distance +
`identity` x the identity distance (`ReconstructionLoss` with the shipped networks), plus
`latent` x the latent loss on the synthetic part, plus `delta_reg` x the sum over the active
rows of ||delta_i|| (mean over the batch: e4e's delta regulariser, which keeps codes near W),
plus `adversarial` x the encoder's non-saturating loss against a latent discriminator that
tells mapped w (truncation 1) from the encoder's active rows (R1 on the real codes every
`d_reg_every` steps). `adversarial` 0 builds no discriminator.

Progressive training: stage 0 (pure W: one code repeated over the rows) until
`progressive_start`; offset delta_k is switched on at `progressive_start + (k - 1) *
progressive_every` (`stage_at`). Offsets of rows above the stage are exactly zero, their
heads receive no gradients and stay at their zero initialisation.

A self-conditioned generator (SC-GAN, `mode_attributes`) decodes every code at a mode vector
(SC-GAN's B7): each synthetic sample at anchor coordinates t ~ U(0, 1) per attribute, a
function of (seed, sample index); each real image at its own coordinates, given per data-set
image by the caller (`real_modes` [N_images, k], ganedit.selfcond.encoder reads them from a
labels store: no ground truth involved). The encoder itself never sees modes; the codes it
learns are the ones that, at the image's modes, reconstruct it. `init_encoder` starts from a
trained encoder (B7 starts from the official FFHQ e4e) instead of fresh weights.

Optimiser: Adam with float betas (0.9, 0.999). e4e uses Ranger (RAdam + Lookahead), which is
not in torch and not a dependency of ganedit; the learning rate 1e-4 is e4e's.

Reproducibility: every random draw of step t (z of the synthetic samples and of the
discriminator's real codes, the world renders, the dataset indices) is a function of
(seed or data_seed, global sample index), never of a global RNG, so a resumed run computes
exactly what an uninterrupted one does. Weights are initialised under
`torch.random.fork_rng()` seeded with `seed`: the encoder's layers draw their initial
weights from torch's global RNG (its default initialisers), and forking makes the weights a
function of `seed` alone while leaving the caller's global RNG as it was.

Run folder (`train_encoder`): `config.json` (the resolved config), `stats.jsonl` (one line per
logged step), `samples/{step:07d}.png` (8 held images, 4 world renders and 4 generator
samples, above their reconstructions), `checkpoint/` (resumable) and `encoder/`, the final
model folder (`ganedit.models.registry.load_pretrained`), whose config.json records the
generator it belongs to (`generator`: name and weights sha256).

Launched through torchrun (WORLD_SIZE > 1), every process takes its share of each batch
(synthetic and real parts alike) and gradients are averaged, so the global batch is the one a
single process would draw; batch-norm statistics are those of each process's share (their
running averages are averaged over processes after every step), so a multi-process run is
close to, not identical with, a single-process one. Process 0 alone writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ganedit.datasets import ImageDataset
from ganedit.errors import UserInputError
from ganedit.inversion.encode import encode_images
from ganedit.inversion.perceptual import LossWeights, ReconstructionLoss, combine, default_loss
from ganedit.models.encoder.networks import Encoder4Editing
from ganedit.models.modes import ModeLayout
from ganedit.models.registry import PREDICTORS, save_pretrained, spec_of_class
from ganedit.models.sources import StyleGANSource, load_generator, sample_z
from ganedit.training.gan import d_logistic_loss, g_nonsaturating_loss, r1_penalty
from ganedit.training.loop import (
    Checkpointing,
    Loop,
    Phase,
    refuse_another_config,
    run_phases,
    train_loop,
    upkeep,
)
from ganedit.utils import rng
from ganedit.utils.bounded import load_json_bounded
from ganedit.utils.context import RunContext
from ganedit.utils.distributed import barrier, init_distributed, on_rank0, update, world_info
from ganedit.utils.files import (
    atomic_path,
    check_output,
    empty_folder,
    open_run_folder,
    output_lock,
    write_json,
)
from ganedit.utils.images import encode, from_uint8, labelled_grid, to_uint8
from ganedit.utils.params import Integer, OneOf, Real, check_fields, check_params
from ganedit.world.config import load_world_config
from ganedit.world.factors import sample_factors
from ganedit.world.render import SIZES, render

log = logging.getLogger(__name__)

WHAT = "train-encoder"  # the run folder's marker
DATA_SEED = 7001  # world renders for training: a seed no evaluation uses
PREVIEW_SEED = 7002  # the held images of the sample grids (world renders and z)
_D_REAL_STREAM = 0x4C44  # the latent discriminator's real z ("LD")
_MODE_STREAM = 0x4D4F  # the synthetic samples' anchor coordinates ("MO")

_CONSTRAINTS = {
    "data_seed": Integer(0, 2**63 - 1),
    "steps": Integer(1, 100_000_000),
    "batch_size": Integer(1, 4096),
    "lr": Real(1e-12, 1.0),
    "progressive_start": Integer(0, 100_000_000),
    "progressive_every": Integer(1, 100_000_000),
    "pixel": Real(0.0, 1e6),
    "perceptual": Real(0.0, 1e6),
    "identity": Real(0.0, 1e6),
    "perceptual_net": OneOf(PREDICTORS),
    "latent": Real(0.0, 1e6),
    "delta_reg": Real(0.0, 1e6),
    "adversarial": Real(0.0, 1e6),
    "d_lr": Real(1e-12, 1.0),
    "r1": Real(0.0, 1e6),
    "d_reg_every": Integer(1, 1_000_000),
    "synthetic_fraction": Real(0.0, 1.0),
    "truncation_psi": Real(0.0, 1.0),
    "checkpoint_every": Integer(1, 100_000_000),
    "sample_every": Integer(1, 100_000_000),
    "log_every": Integer(1, 100_000_000),
    "seed": Integer(0, 2**63 - 1),
}

# Fields a resumed run may change: none alters what a step computes. The generator may be
# named differently (a moved folder); its weights' sha256 must be the same.
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "sample_every", "log_every", "generator")


@dataclass(frozen=True)
class EncoderTrainConfig:
    """What `train_encoder` runs; saved (resolved) as config.json in the run folder.

    Defaults: e4e's recipe (loss weights for faces, lr, discriminator, batch 8) at a length
    that trains the small default encoder for `world64` in about an hour on 2 idle CPU cores
    (0.14-0.15 s a step measured with 2 threads; 0.22-0.25 s with 1), every offset on from
    step 16,000.
    `encoder`: Encoder4Editing keyword arguments; unset ones take the small default, with
    w_dim and num_ws from the generator, image_size its resolution (within [32, 256]) and
    middle_ind/coarse_ind at most num_ws.
    """

    generator: str = "world64"
    data: str | None = None  # LMDB or image folder; None: world renders (`world`, data_seed)
    data_seed: int = DATA_SEED
    world: str = "celeba"  # the world preset (or TOML path) the renders come from
    steps: int = 24_000
    batch_size: int = 8
    lr: float = 1e-4
    progressive_start: int = 4000  # stage 1 (delta_1) from this step; stage 0 (W) before
    progressive_every: int = 1500  # one more offset every this many steps
    pixel: float = 1.0
    perceptual: float = 0.8
    identity: float = 0.5
    perceptual_net: str = "evaluator"  # the shipped network whose features give `perceptual`
    latent: float = 1.0  # on the generator's samples, whose ws are known
    delta_reg: float = 2e-4
    adversarial: float = 0.1  # latent discriminator; 0 disables it
    d_lr: float = 2e-5
    r1: float = 10.0  # R1 gamma of the latent discriminator
    d_reg_every: int = 16
    synthetic_fraction: float = 0.5
    truncation_psi: float = 1.0  # of the synthetic samples
    checkpoint_every: int = 500
    sample_every: int = 1000
    log_every: int = 10
    seed: int = 0
    encoder: dict = field(default_factory=dict)
    init_encoder: str | None = None  # an encoder (name or folder) to start from
    labels: str | None = None  # where the real images' modes came from (self-conditioned G)

    def __post_init__(self):
        check_fields(self, _CONSTRAINTS, WHAT)
        if not isinstance(self.generator, str) or not self.generator:
            raise UserInputError(f"expected a generator name or path, received {self.generator!r}")
        for key in ("data", "init_encoder", "labels"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise UserInputError(f"expected a {key} path or None, received {value!r}")
        constraints = spec_of_class(Encoder4Editing).constraints
        check_params(self.encoder, constraints, "encoder")
        if self.data is not None and self.world != "celeba":
            raise UserInputError(
                f"expected a world preset only for world renders (no --images), received "
                f"{self.world!r} with images {self.data!r}"
            )
        load_world_config(self.world)  # a preset name or a readable TOML file

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(self.pixel, self.perceptual, self.identity)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: dict) -> EncoderTrainConfig:
        """From a run folder's config.json (unknown keys refused)."""
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(values, dict):
            raise UserInputError(f"expected a {WHAT} config object, received {values!r}")
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserInputError(
                f"expected {WHAT} config keys among {sorted(names)}, received unknown {unknown}"
            )
        return cls(**values)


def stage_at(config: EncoderTrainConfig, step: int, num_ws: int) -> int:
    """The progressive stage of step `step` (0-based): 0 before `progressive_start`, then one
    more offset every `progressive_every` steps, at most num_ws - 1."""
    if step < config.progressive_start:
        return 0
    return min(num_ws - 1, 1 + (step - config.progressive_start) // config.progressive_every)


# ------------------------------------------------------------------------------------------
# Networks


class LatentDiscriminator(nn.Module):
    """e4e's latent discriminator: w [..., w_dim] -> logit [..., 1]; 3 hidden Linear(w_dim)
    layers with LeakyReLU 0.2, then a linear output."""

    def __init__(self, w_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(3):
            layers += [nn.Linear(w_dim, w_dim), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(w_dim, 1))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.net(w)


def resolve_encoder_kwargs(config: EncoderTrainConfig, source: StyleGANSource) -> dict:
    """The encoder's full kwargs: `config.encoder` over defaults fitted to the generator."""
    g = source.generator
    kwargs = dict(config.encoder)
    for key, value in (("w_dim", g.w_dim), ("num_ws", g.num_ws)):
        if kwargs.setdefault(key, value) != value:
            raise UserInputError(
                f"expected encoder {key} {value} (the generator's), received {kwargs[key]}"
            )
    kwargs.setdefault("image_size", min(max(source.resolution, 32), 256))
    kwargs.setdefault("middle_ind", min(7, g.num_ws))
    kwargs.setdefault("coarse_ind", min(3, kwargs["middle_ind"]))
    with torch.device("meta"):  # checks the config (one line) and fills in the rest
        return Encoder4Editing(**kwargs).config


def _build_networks(
    config: EncoderTrainConfig, kwargs: dict, w_avg: torch.Tensor
) -> tuple[Encoder4Editing, LatentDiscriminator | None]:
    # Seeded in a fork of the global RNG: weights depend on `seed` alone, and the caller's
    # global RNG is left as it was (see the module docstring).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        encoder = Encoder4Editing(**kwargs)
        disc = LatentDiscriminator(kwargs["w_dim"]) if config.adversarial > 0 else None
    if config.init_encoder is not None:
        _load_initial_weights(encoder, config.init_encoder)
    with torch.no_grad():
        encoder.latent_avg.copy_(w_avg.detach().cpu())
    return encoder, disc


def _load_initial_weights(encoder: Encoder4Editing, name_or_dir: str) -> None:
    """Another encoder's weights, which must have this one's architecture (its latent_avg is
    replaced by the generator's)."""
    from ganedit.models.registry import load_encoder

    start = load_encoder(name_or_dir)["encoder"]
    if start.config != encoder.config:
        raise UserInputError(
            f"expected an encoder to start from with the architecture {encoder.config}, "
            f"received {start.config} in {name_or_dir!r}"
        )
    encoder.load_state_dict(start.state_dict())


# ------------------------------------------------------------------------------------------
# Data: batch t is a pure function of the seeds, t and the process's rank


def _normal_rows(seed: int, stream: int, start: int, n: int, dim: int) -> torch.Tensor:
    """Standard normal [n, dim]; row i depends only on (seed, stream, start + i)."""
    index = np.arange(start, start + n, dtype=np.int64)[:, None] * dim + np.arange(dim)[None]
    return torch.from_numpy(rng.normal(seed, index, stream).astype(np.float32))


def _fit(images: torch.Tensor, resolution: int) -> torch.Tensor:
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    return F.interpolate(images, size=(resolution, resolution), mode="area")


def world_images(
    seed: int, start: int, n: int, resolution: int, world: str = "celeba"
) -> torch.Tensor:
    """World renders start .. start+n-1 of the `world` preset [n, 3, R, R] in [-1, 1]."""
    size = min(max(resolution, SIZES[0]), SIZES[-1])
    factors = sample_factors(load_world_config(world), seed, start, n)
    return _fit(render(factors, size), resolution)


class TrainingBatches:
    """Batch t: this process's synthetic images (with their true ws), then its real images.

    Global sample k of the synthetic part of step t is number t * n_synthetic + k of the
    seed's z; of the real part, number t * n_real + k of the world renders (data_seed), or
    the dataset image drawn by (data_seed, t * n_real + k)."""

    def __init__(self, config: EncoderTrainConfig, source: StyleGANSource, device, real_modes=None):
        self.config, self.source, self.device = config, source, device
        self.n_synthetic = round(config.batch_size * config.synthetic_fraction)
        self.n_real = config.batch_size - self.n_synthetic
        self.dataset = None
        if config.data is not None and self.n_real > 0:
            self.dataset = ImageDataset(config.data)
            self.dataset[0]  # a damaged first image is refused before any work
        self.k = len(source.mode_attributes)
        self.real_modes = self._check_real_modes(real_modes)

    def _check_real_modes(self, real_modes) -> torch.Tensor | None:
        """Anchor coordinates [N_images, k] of the data set's images, for a self-conditioned
        generator (refused for any other)."""
        if self.k == 0:
            if real_modes is not None:
                raise UserInputError(
                    f"expected a self-conditioned generator for image modes, received "
                    f"{self.source.name} (it has none)"
                )
            return None
        if self.n_real == 0:
            return None
        if self.dataset is None or real_modes is None:
            raise UserInputError(
                f"expected --data and --labels for the self-conditioned {self.source.name} "
                "(each real image is decoded at its own modes), received "
                f"{'no data' if self.dataset is None else 'no labels'}"
            )
        t = torch.as_tensor(np.asarray(real_modes, np.float32))
        if t.shape != (len(self.dataset), self.k) or not torch.isfinite(t).all():
            raise UserInputError(
                f"expected finite modes [{len(self.dataset)}, {self.k}] for the data set's "
                f"images, received {tuple(t.shape)}"
            )
        return t.clamp(0, 1)

    def check_world(self, world: int) -> None:
        if self.n_synthetic % world or self.n_real % world:
            raise UserInputError(
                f"expected synthetic ({self.n_synthetic}) and real ({self.n_real}) parts of the "
                f"batch divisible by the {world} processes, received --batch-size "
                f"{self.config.batch_size} with --synthetic-fraction {self.config.synthetic_fraction}"
            )

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(images [n, 3, R, R] in [-1, 1], true ws [n_synthetic_local, num_ws, w_dim], the
        mode vectors [n, M] to decode each image at, or None for a plain generator)."""
        rank, world = world_info()
        n_syn, n_real = self.n_synthetic // world, self.n_real // world
        ws, fake, fake_modes = self.synthetic(step * self.n_synthetic + rank * n_syn, n_syn)
        real, real_modes = self.real(step * self.n_real + rank * n_real, n_real)
        modes = None if self.k == 0 else torch.cat([fake_modes, real_modes])
        return torch.cat([fake, real]), ws, modes

    def _modes(self, t: np.ndarray | torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32).reshape(-1, self.k)
        return ModeLayout.unnamed(self.k).generator_vector(t).to(self.device)

    @torch.no_grad()
    def synthetic(self, start: int, n: int):
        g = self.source.generator
        z = sample_z(n, g.z_dim, self.config.seed, start).to(self.device)
        ws = g.mapping(z, truncation_psi=self.config.truncation_psi)
        if self.k == 0:
            return ws, g.synthesis(ws, noise_mode="const"), None
        ids = np.arange(start, start + n)[:, None] * self.k + np.arange(self.k)[None]
        modes = self._modes(rng.uniform(self.config.seed, ids, _MODE_STREAM))
        return ws, g.synthesis(ws, noise_mode="const", modes=modes), modes

    def real(self, start: int, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        resolution = self.source.resolution
        none = None if self.k == 0 else self._modes(torch.zeros(0, self.k))
        if n == 0:
            return torch.zeros(0, 3, resolution, resolution, device=self.device), none
        if self.dataset is None:
            images = world_images(self.config.data_seed, start, n, resolution, self.config.world)
            return images.to(self.device), none
        ids = np.arange(start, start + n)
        index = (rng.uniform(self.config.data_seed, ids, 1) * len(self.dataset)).astype(np.int64)
        images = from_uint8(np.stack([self.dataset[int(i)] for i in index]))
        modes = None if self.real_modes is None else self._modes(self.real_modes[index])
        return _fit(images, resolution).to(self.device), modes


def preview_images(config: EncoderTrainConfig, source: StyleGANSource) -> torch.Tensor:
    """The 8 held images of the sample grids: 4 world renders, 4 generator samples (at the
    neutral mode for a self-conditioned generator)."""
    world = world_images(PREVIEW_SEED, 0, 4, source.resolution)
    g = source.generator
    z = sample_z(4, g.z_dim, PREVIEW_SEED).to(source.device)
    with torch.no_grad():
        ws = g.mapping(z, truncation_psi=config.truncation_psi)
        samples = g.synthesis(ws, modes=_neutral_modes(source))
    return torch.cat([world.to(source.device), samples])


def _neutral_modes(source: StyleGANSource) -> torch.Tensor | None:
    layout = source.mode_layout
    if layout is None:
        return None
    return layout.generator_vector(layout.neutral()).to(source.device)


# ------------------------------------------------------------------------------------------
# Setup and one step


@dataclass
class EncoderTraining:
    """Everything a run uses: the fixed parts and the state a step changes."""

    config: EncoderTrainConfig  # resolved: `encoder` holds the full kwargs
    source: StyleGANSource
    loss: ReconstructionLoss
    batches: TrainingBatches
    encoder: Encoder4Editing
    optim: torch.optim.Optimizer
    discriminator: LatentDiscriminator | None = None
    d_optim: torch.optim.Optimizer | None = None
    step: int = 0

    @property
    def device(self) -> torch.device:
        return self.encoder.latent_avg.device


def _reconstruction_loss(config: EncoderTrainConfig, device) -> ReconstructionLoss:
    """Pixel MSE alone when both network terms are off (nothing to load), else the shipped
    networks' loss (`terms` skips a term whose weight is 0)."""
    if config.perceptual == 0 and config.identity == 0:
        return ReconstructionLoss(None)
    return default_loss(device, config.perceptual_net, identity=config.identity > 0)


def setup_encoder_training(
    config: EncoderTrainConfig, device: str | torch.device = "cpu", real_modes=None
) -> EncoderTraining:
    """Load and freeze the generator, check the data, build the encoder (latent_avg = the
    generator's w_avg), the discriminator and their optimizers. Nothing is written.
    `real_modes`: for a self-conditioned generator, the anchor coordinates [N_images, k] of
    the data set's images.

    The caller's global RNG is left as it was: building models (the loaded ones too, before
    their weights arrive) draws from it, so all of that happens in a fork of it."""
    with torch.random.fork_rng(devices=[]):
        return _setup(config, device, real_modes)


def _setup(config: EncoderTrainConfig, device: str | torch.device, real_modes) -> EncoderTraining:
    source = load_generator(config.generator, device)
    if not isinstance(source, StyleGANSource):
        raise UserInputError(
            f"expected a StyleGAN2 generator to train an encoder for, received {source.name} "
            "(z only)"
        )
    g = source.generator.eval()
    for p in g.parameters():
        p.requires_grad_(False)
    config = dataclasses.replace(config, encoder=resolve_encoder_kwargs(config, source))
    batches = TrainingBatches(config, source, device, real_modes)
    batches.check_world(world_info()[1])
    encoder, disc = _build_networks(config, config.encoder, g.w_avg)
    encoder = encoder.to(device).train()
    run = EncoderTraining(
        config=config,
        source=source,
        loss=_reconstruction_loss(config, device),
        batches=batches,
        encoder=encoder,
        optim=torch.optim.Adam(encoder.parameters(), lr=config.lr, betas=(0.9, 0.999)),
    )
    if disc is not None:
        run.discriminator = disc.to(device)
        run.d_optim = torch.optim.Adam(disc.parameters(), lr=config.d_lr, betas=(0.9, 0.999))
    return run


@torch.no_grad()
def _average_buffers(module: nn.Module) -> None:
    """Keep batch-norm running statistics identical in every process."""
    _, world = world_info()
    if world == 1:
        return
    for buffer in module.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer /= world


@dataclass
class _StepData:
    """What the phases of one step share: the batch, the encoder's codes and the stats."""

    images: torch.Tensor  # [n, 3, R, R]
    true_ws: torch.Tensor  # [n_synthetic, num_ws, w_dim]
    modes: torch.Tensor | None  # [n, M]: where a self-conditioned generator decodes each code
    deltas: torch.Tensor  # [n, num_ws - 1, w_dim]
    ws: torch.Tensor  # [n, num_ws, w_dim]
    stage: int
    stats: dict = field(default_factory=dict)
    real_codes: torch.Tensor | None = None  # the latent discriminator's real w [n, w_dim]


def d_main(run: EncoderTraining, data: _StepData) -> None:
    """The latent discriminator: mapped w (truncation 1) against the encoder's active rows
    (detached), on this step's codes before the encoder's adversarial term reads it (e4e)."""
    cfg, d, g = run.config, run.discriminator, run.source.generator
    fake = data.ws[:, : data.stage + 1].detach()
    rank, world = world_info()
    local = fake.shape[0]
    z = _normal_rows(cfg.seed, _D_REAL_STREAM, (run.step * world + rank) * local, local, g.z_dim)
    with torch.no_grad():
        data.real_codes = g.mapping(z.to(fake.device))[:, 0]  # [n, w_dim]
    d.requires_grad_(True)
    loss = d_logistic_loss(d(data.real_codes), d(fake))
    update(d, run.d_optim, loss)
    data.stats["d_loss"] = loss.item()


def d_reg(run: EncoderTraining, data: _StepData) -> None:
    """Lazy R1 on the discriminator's real codes."""
    cfg, d = run.config, run.discriminator
    r1 = r1_penalty(d, data.real_codes)
    update(d, run.d_optim, cfg.r1 / 2 * r1 * cfg.d_reg_every)
    data.stats["r1"] = r1.item()


def e_main(run: EncoderTraining, data: _StepData) -> None:
    """The encoder's update: reconstruction, latent, delta and adversarial terms."""
    cfg, stats = run.config, data.stats
    if run.discriminator is not None:
        run.discriminator.requires_grad_(False)
    recon = run.source.generator.synthesis(data.ws, noise_mode="const", modes=data.modes)
    terms = run.loss.terms(recon, data.images, cfg.loss_weights)
    loss = combine(terms, cfg.loss_weights).mean()
    stats.update({k: v.mean().item() for k, v in terms.items()})
    n_syn = data.true_ws.shape[0]
    if n_syn > 0:
        latent = (data.ws[:n_syn] - data.true_ws).square().mean()
        loss = loss + cfg.latent * latent
        stats["latent"] = latent.item()
    delta = data.deltas[:, : data.stage].norm(dim=2).sum(1).mean()
    loss = loss + cfg.delta_reg * delta
    stats["delta_reg"] = delta.item()
    if run.discriminator is not None:
        adversarial = g_nonsaturating_loss(run.discriminator(data.ws[:, : data.stage + 1]))
        loss = loss + cfg.adversarial * adversarial
        stats["adversarial"] = adversarial.item()
    update(run.encoder, run.optim, loss)
    _average_buffers(run.encoder)
    stats["total"] = loss.item()


def encoder_phases(config: EncoderTrainConfig) -> tuple[Phase, ...]:
    """One step, in order (NVlabs' phase list): the latent discriminator and its lazy R1 when
    `adversarial` is on, then the encoder."""
    if config.adversarial == 0:
        return (Phase("Emain", 1, e_main),)
    return (
        Phase("Dmain", 1, d_main),
        Phase("Dreg", config.d_reg_every if config.r1 > 0 else 0, d_reg),
        Phase("Emain", 1, e_main),
    )


def encoder_step(run: EncoderTraining) -> dict:
    """One training step; returns its stats (step, stage, every loss term, seconds)."""
    started = time.perf_counter()
    run.encoder.train()
    stage = stage_at(run.config, run.step, run.encoder.num_ws)
    run.encoder.progressive_stage = stage
    images, true_ws, modes = run.batches(run.step)
    w0, deltas = run.encoder.w0_and_deltas(images)  # [n, w_dim], [n, num_ws - 1, w_dim]
    data = _StepData(images, true_ws, modes, deltas, run.encoder.compose(w0, deltas), stage)
    run_phases(encoder_phases(run.config), run.step, run, data)
    run.step += 1
    stats = _average_stats(data.stats, run.device)
    seconds = time.perf_counter() - started
    return {"step": run.step, "stage": stage, **stats, "seconds": seconds}


def _average_stats(stats: dict, device: torch.device) -> dict:
    """The loss terms of the whole batch: the mean over processes of each one's share."""
    _, world = world_info()
    if world == 1:
        return stats
    values = torch.tensor(list(stats.values()), dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return dict(zip(stats, (values / world).tolist(), strict=True))


# ------------------------------------------------------------------------------------------
# Checkpoints, samples, inference


def encoder_checkpoints(run: EncoderTraining) -> Checkpointing:
    """The encoder, the discriminator (when on), their optimizers, the step, the config and
    the generator's identity."""
    modules, optims = {"encoder": run.encoder}, {"encoder_optim": run.optim}
    if run.discriminator is not None:
        modules["discriminator"] = run.discriminator
        optims["discriminator_optim"] = run.d_optim

    def meta() -> dict:
        return {"step": run.step, "config": run.config.to_dict(), "generator": run.source.identity}

    def restore(meta: dict) -> None:
        run.step = int(meta["step"])

    return Checkpointing(modules, optims, meta, restore)


def _check_resumable(run: EncoderTraining, meta: dict, run_dir: Path) -> None:
    hint = " (pass --overwrite to start afresh, or choose another folder)"
    refuse_another_config(meta, run.config, RESUMABLE_CHANGES, run_dir, hint)
    saved = (meta.get("generator") or {}).get("sha256")
    if saved != run.source.identity["sha256"]:
        raise UserInputError(
            f"expected the generator the run in {str(run_dir)!r} was trained for (weights "
            f"sha256 {str(saved)[:12]}), received {run.source.name} "
            f"({str(run.source.identity['sha256'])[:12]})"
        )


@torch.no_grad()
def save_samples(run: EncoderTraining, held: torch.Tensor, path: Path) -> None:
    """The held images above their reconstructions, labelled."""
    ws = encode_images(run.encoder, held).to(run.device)
    modes = _neutral_modes(run.source)
    recon = run.source.generator.synthesis(ws, noise_mode="const", modes=modes).clamp(-1, 1)
    images = to_uint8(torch.cat([held.clamp(-1, 1), recon]).cpu())
    n = len(held)
    labels = [f"world {i}" for i in range(n // 2)] + [f"G {i}" for i in range(n - n // 2)]
    grid = labelled_grid(
        images,
        cols=n,
        col_labels=labels,
        row_labels=["input", "encoded"],
        title=f"step {run.step}",
        scale=max(1, 64 // run.source.resolution),
    )
    with atomic_path(path) as tmp:
        tmp.write_bytes(encode(grid))


# ------------------------------------------------------------------------------------------
# The run


def train_encoder(
    config: EncoderTrainConfig,
    out: str | Path,
    resume: bool = True,
    real_modes=None,
    *,
    ctx: RunContext = RunContext(),
) -> Path:
    """Train (or continue) an encoder for `config.generator`; returns the `encoder/` folder.

    `resume`: continue the run in `out` from its checkpoint (a config that differs in more
    than the free fields `RESUMABLE_CHANGES`, or another generator, is refused); without it,
    an existing non-empty `out` is refused. `ctx.overwrite`: empty `out` (a folder ganedit made)
    and start afresh. A folder ganedit did not make is never written into.
    """
    out = Path(out)
    device, rank, world = init_distributed(ctx.device)
    run = setup_encoder_training(config, device, real_modes)  # checked before any folder
    main = rank == 0
    with output_lock(out) if main else contextlib.nullcontext():
        on_rank0(lambda: _open_run(run, out, resume, ctx.overwrite), rank, world)
        loop = encoder_loop(run, out, main)
        train_loop(loop, out, resume and not ctx.overwrite, ctx.progress and main, main)
        if main:
            _save_encoder(run, out / "encoder")
        barrier()
    return out / "encoder"


def _open_run(run: EncoderTraining, out: Path, resume: bool, overwrite: bool) -> None:
    """Make, adopt or empty the run folder and write config.json (process 0)."""
    if overwrite and out.is_dir() and any(out.iterdir()):
        check_output(out, overwrite=True, kind="dir")  # only a folder ganedit made
        empty_folder(out)
    elif not resume:
        check_output(out, overwrite=False, kind="dir")
    open_run_folder(out, WHAT)
    state = out / "checkpoint" / "state.json"
    if resume and state.is_file():  # refused before config.json is replaced
        meta = load_json_bounded(state, what="an encoder run's checkpoint state")["meta"]
        _check_resumable(run, meta, out)
    write_json(out / "config.json", run.config.to_dict())


def encoder_loop(run: EncoderTraining, out: Path, writes: bool) -> Loop:
    """The encoder as the shared loop runs it: `encoder_step` to `steps`; stats, samples of
    the held images and checkpoints at their intervals."""
    cfg = run.config
    held = preview_images(cfg, run.source) if writes else None
    checkpoints = encoder_checkpoints(run)

    def shown(record: dict) -> dict:
        terms = {k: record[k] for k in ("total", "pixel", "latent") if k in record}
        return {"stage": record["stage"], **terms}

    return Loop(
        what=WHAT,
        total=cfg.steps,
        step=lambda: encoder_step(run),  # looked up per call (tests replace it)
        position=lambda: run.step,
        checkpoints=checkpoints,
        upkeep=upkeep(
            out,
            checkpoints,
            lambda path: save_samples(run, held, path),
            (cfg.log_every, cfg.sample_every, cfg.checkpoint_every),
        ),
        shown=shown,
    )


def _save_encoder(run: EncoderTraining, folder: Path) -> None:
    run.encoder.progressive_stage = run.encoder.num_ws - 1  # unused heads are still zero
    run.encoder.eval()
    extra = {
        "generator": run.source.identity,
        "train_config": run.config.to_dict(),
        "steps": run.step,
        "final_stage": stage_at(run.config, max(run.step - 1, 0), run.encoder.num_ws),
    }
    save_pretrained(run.encoder, folder, extra=extra, overwrite=True)
