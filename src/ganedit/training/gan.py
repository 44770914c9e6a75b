"""StyleGAN2 training (the rosinality / NVlabs recipe) as small, reusable pieces.

`setup_gan` builds networks and optimizers, `gan_step` runs one iteration, the phase list
of `gan_phases` (discriminator, lazy R1, generator with style mixing, lazy path-length
regularisation, EMA), and `run_training` hands it to the shared loop
(`ganedit.training.loop`) with its upkeep: JSON-lines stats, fixed-seed sample grids and
resumable checkpoints. Every random draw of iteration t comes from generators seeded by (seed, t),
and the data batch of iteration t is a function of (seed, t) too, so a resumed run continues
exactly as an uninterrupted one.

A conditioned GAN (the self-conditioned one) reuses every piece: `setup_gan` takes model
builders, `BatchSampler` draws from a re-sampled index list and returns each image's mode
targets, and a `Conditioning` (GanState.conditioning) supplies the generator's modes and the
mode-classification terms that join the discriminator's and the generator's losses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image

from ganedit.datasets import ImageDataset
from ganedit.errors import GaneditError, UserInputError
from ganedit.models.registry import save_pretrained
from ganedit.models.stylegan2 import Discriminator, Generator
from ganedit.training.loop import (
    Checkpointing,
    Loop,
    Phase,
    refuse_another_config,
    run_phases,
    train_loop,
    truncate_stats,
    upkeep,
)
from ganedit.utils import rng
from ganedit.utils.distributed import barrier, init_distributed, update, world_info
from ganedit.utils.files import atomic_path, open_run_folder, output_lock, write_json
from ganedit.utils.images import from_uint8, grid, to_uint8

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GanConfig:
    """Architecture and recipe. Defaults follow StyleGAN2 config-f, scaled by the caller."""

    data: str = ""
    size: int = 64
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    channel_max: int = 512
    # Per-resolution channels from 4 px up; overrides multiplier and cap when given.
    channels: tuple[int, ...] | None = None
    batch: int = 16
    iterations: int = 10_000
    lr: float = 0.002
    r1: float = 10.0  # R1 weight (gamma); NVlabs' heuristic is 0.0002 * size**2 / batch
    path_regularize: float = 2.0
    path_batch_shrink: int = 2
    d_reg_every: int = 16
    g_reg_every: int = 4
    mixing: float = 0.9
    # Discriminator's minibatch-stddev group; divides the batch (or exceeds it: whole batch).
    mbstd_group: int = 4
    ema_kimg: float = 10.0  # EMA half-life in thousands of images
    # Early on the half-life is capped at this share of the images seen (NVlabs' ramp-up), so
    # the EMA generator follows the fast early progress instead of averaging in its first blobs.
    ema_rampup: float | None = None
    # Steps that train the discriminator alone at the start: a fine-tune whose generator
    # comes without its discriminator lets a fresh one learn before it pushes the generator.
    d_warmup: int = 0
    flip: bool = False  # horizontal flips; off when pose matters
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 500
    n_sample: int = 16
    # Steps between runs of the run's probe of g_ema (RunSpec.probe; 0: never), e.g. the
    # edit-identity probe of a face-world generator (ganedit.evaluation.edit_probe).
    probe_every: int = 0


# Fields a resumed run may change: none alters what an iteration computes.
RESUMABLE_CHANGES = ("iterations", "checkpoint_every", "sample_every", "n_sample", "probe_every")


class Conditioning(Protocol):
    """What a conditioned GAN adds to the StyleGAN2 step.

    `sample` draws the modes of n fakes: what the generator is fed [n, M] and what its mode
    head should read from them [n, M]. `loss` is the mode-classification term of mode logits
    [n, M] against targets [n, M]; it joins the discriminator's loss on real images (weight
    `d_weight`) and the generator's on fakes (weight `g_weight`). With `twin`, the
    discriminator's twin mode head learns the fakes' modes (weight `d_weight`) and the
    generator's term is the mode head's loss minus the twin's (TAC-GAN).
    """

    d_weight: float
    g_weight: float
    twin: bool

    def sample(self, n: int, gen: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]: ...

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...


@dataclass
class GanState:
    """Everything a training step changes."""

    g: Generator
    d: Discriminator
    g_ema: Generator
    g_optim: torch.optim.Optimizer
    d_optim: torch.optim.Optimizer
    step: int = 0
    mean_path_length: float = 0.0
    stats: dict = field(default_factory=dict)
    conditioning: Conditioning | None = None


def _reg_optimizer(params, lr: float, reg_every: int) -> torch.optim.Optimizer:
    # Lazy regularisation: scale lr and betas so the effective update matches every-step reg.
    ratio = reg_every / (reg_every + 1)
    return torch.optim.Adam(params, lr=lr * ratio, betas=(0.0, float(0.99**ratio)))


def build_generator(cfg: GanConfig) -> Generator:
    return Generator(
        cfg.size,
        style_dim=cfg.style_dim,
        n_mlp=cfg.n_mlp,
        channel_multiplier=cfg.channel_multiplier,
        channel_max=cfg.channel_max,
        channels=cfg.channels,
    )


def build_discriminator(cfg: GanConfig) -> Discriminator:
    return Discriminator(
        cfg.size,
        channel_multiplier=cfg.channel_multiplier,
        channel_max=cfg.channel_max,
        channels=cfg.channels,
        stddev_group=cfg.mbstd_group,
    )


def setup_gan(
    cfg: GanConfig,
    device: str | torch.device = "cpu",
    build_g: Callable[[GanConfig], Generator] = build_generator,
    build_d: Callable[[GanConfig], Discriminator] = build_discriminator,
    conditioning: Conditioning | None = None,
) -> GanState:
    torch.manual_seed(cfg.seed)
    g = build_g(cfg).to(device)
    d = build_d(cfg).to(device)
    g_ema = build_g(cfg).to(device).eval()
    g_ema.load_state_dict(g.state_dict())
    for p in g_ema.parameters():
        p.requires_grad_(False)
    return GanState(
        g=g,
        d=d,
        g_ema=g_ema,
        g_optim=_reg_optimizer(g.parameters(), cfg.lr, cfg.g_reg_every),
        d_optim=_reg_optimizer(d.parameters(), cfg.lr, cfg.d_reg_every),
        conditioning=conditioning,
    )


class BatchSampler:
    """Batch t holds images at indices drawn from (seed, t): resumable without loader state.

    `indices` (a re-sampled list of image indices) draws from that list instead of from every
    image once; `targets` [N, M] (per image) makes each batch (images, their targets)."""

    def __init__(
        self,
        data: ImageDataset,
        cfg: GanConfig,
        device: str | torch.device = "cpu",
        indices: np.ndarray | None = None,
        targets: torch.Tensor | None = None,
    ):
        if len(data) < 1:
            raise UserInputError(f"expected a non-empty data set, received {len(data)} images")
        if indices is not None and len(indices) < 1:
            raise UserInputError("expected a non-empty re-sampled index list, received none")
        if targets is not None and len(targets) != len(data):
            raise UserInputError(
                f"expected one target row per image ({len(data)}), received {len(targets)}"
            )
        self.data, self.cfg, self.device = data, cfg, device
        self.indices, self.targets = indices, targets
        first = data[0]
        if first.shape[0] != cfg.size or first.shape[1] != cfg.size:
            raise UserInputError(
                f"expected {cfg.size}x{cfg.size} images in {cfg.data!r}, received {first.shape[1]}x{first.shape[0]}"
            )

    def __call__(self, step: int):
        """Images [B / world, 3, size, size] in [-1, 1] (and their targets, if given)."""
        # Each process takes its slice of the global batch, so all together see the same data
        # as a single process would.
        rank, world = world_info()
        local = self.cfg.batch // world
        ids = np.arange(
            step * self.cfg.batch + rank * local, step * self.cfg.batch + (rank + 1) * local
        )
        pool = len(self.data) if self.indices is None else len(self.indices)
        index = (rng.uniform(self.cfg.seed, ids, 1) * pool).astype(np.int64)
        if self.indices is not None:
            index = np.asarray(self.indices)[index]
        images = from_uint8(np.stack([self.data[int(i)] for i in index]))
        if self.cfg.flip:
            flip = torch.as_tensor(rng.uniform(self.cfg.seed, ids, 2) < 0.5)
            images = torch.where(flip[:, None, None, None], images.flip(3), images)
        if self.targets is None:
            return images.to(self.device)
        return images.to(self.device), self.targets[torch.as_tensor(index)].to(self.device)


def _noise_z(
    cfg: GanConfig, gen: torch.Generator, n: int, device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    # Style mixing: a second z for a random share of batches, as in rosinality's mixing_noise.
    z = torch.randn(n, cfg.style_dim, generator=gen).to(device)
    if cfg.mixing > 0 and torch.rand((), generator=gen).item() < cfg.mixing:
        return z, torch.randn(n, cfg.style_dim, generator=gen).to(device)
    return z, None


def generate(
    g: Generator,
    z: torch.Tensor,
    z2: torch.Tensor | None,
    gen: torch.Generator,
    modes: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and the ws used, with style mixing at a random crossover when z2 is given
    (and a conditioned generator's modes [N, M])."""
    ws = g.mapping(z)
    if z2 is not None:
        cut = int(torch.randint(1, g.num_ws, (), generator=gen))
        ws = torch.cat([ws[:, :cut], g.mapping(z2)[:, cut:]], dim=1)
    noise_gen = torch.Generator(device=ws.device).manual_seed(
        int(torch.randint(0, 2**62, (), generator=gen))
    )
    return g.synthesis(ws, noise_mode="random", generator=noise_gen, modes=modes), ws


def d_logistic_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    return F.softplus(fake_pred).mean() + F.softplus(-real_pred).mean()


def g_nonsaturating_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_pred).mean()


def r1_penalty(d: torch.nn.Module, real: torch.Tensor) -> torch.Tensor:
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(real).sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def path_length_penalty(
    images: torch.Tensor, ws: torch.Tensor, mean_length: float, gen: torch.Generator
) -> tuple[torch.Tensor, float]:
    noise = torch.randn(images.shape, generator=gen).to(images.device) / math.sqrt(
        images.shape[2] * images.shape[3]
    )
    (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    lengths = grad.pow(2).sum(2).mean(1).sqrt()
    batch_mean = lengths.mean().detach()
    if world_info()[1] > 1:  # keep the running mean identical in every process
        dist.all_reduce(batch_mean)
        batch_mean /= world_info()[1]
    new_mean = mean_length + 0.01 * (batch_mean.item() - mean_length)
    return (lengths - new_mean).pow(2).mean(), new_mean


def _step_generator(cfg: GanConfig, step: int, device) -> torch.Generator:
    # Each process draws its own latents and noise; rank 0 draws what a single process would.
    stream = 7 + 1000 * world_info()[0]
    return torch.Generator().manual_seed(
        int(rng.uniform(cfg.seed, np.array([step]), stream)[0] * 2**62)
    )


def _fake_modes(state: GanState, n: int, gen: torch.Generator, device):
    """(modes fed to the generator, the mode head's targets), or (None, None)."""
    if state.conditioning is None:
        return None, None
    return state.conditioning.sample(n, gen, device)


def _real(state: GanState, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """batch: real images, or (real images, their mode targets) when conditioned."""
    return batch if state.conditioning is not None else (batch, None)


def d_main(state: GanState, cfg: GanConfig, batch, gen: torch.Generator) -> None:
    state.g.requires_grad_(False)
    state.d.requires_grad_(True)
    cond = state.conditioning
    real, real_targets = _real(state, batch)
    z, z2 = _noise_z(cfg, gen, real.shape[0], real.device)
    modes, fake_targets = _fake_modes(state, real.shape[0], gen, real.device)
    with torch.no_grad():
        fake, _ = generate(state.g, z, z2, gen, modes)
    if cond is None:
        loss = d_logistic_loss(state.d(real), state.d(fake))
    else:  # the mode head learns from real images only (SC-GAN)
        real_pred, real_logits = state.d.forward_with_modes(real)
        mode_loss = cond.loss(real_logits, real_targets)
        if cond.twin:  # the twin head learns from fakes only (TAC-GAN)
            fake_pred, _, twin_logits = state.d.forward_with_twin(fake)
            twin_loss = cond.loss(twin_logits, fake_targets)
            state.stats["d_twin"] = twin_loss.item()
        else:
            fake_pred, twin_loss = state.d(fake), 0.0
        loss = d_logistic_loss(real_pred, fake_pred) + cond.d_weight * (mode_loss + twin_loss)
        state.stats["d_mode"] = mode_loss.item()
    update(state.d, state.d_optim, loss)
    state.stats["d_loss"] = loss.item()


def d_reg(state: GanState, cfg: GanConfig, batch, gen: torch.Generator) -> None:
    """Lazy R1 on the real images (after d_main, whose gradient settings it keeps)."""
    r1 = r1_penalty(state.d, _real(state, batch)[0])
    update(state.d, state.d_optim, cfg.r1 / 2 * r1 * cfg.d_reg_every)
    state.stats["r1"] = r1.item()


def g_main(state: GanState, cfg: GanConfig, batch, gen: torch.Generator) -> None:
    state.g.requires_grad_(True)
    state.d.requires_grad_(False)
    device = next(state.g.parameters()).device
    local = cfg.batch // world_info()[1]
    cond = state.conditioning
    z, z2 = _noise_z(cfg, gen, local, device)
    modes, targets = _fake_modes(state, local, gen, device)
    fake, _ = generate(state.g, z, z2, gen, modes)
    if cond is None:
        loss = g_nonsaturating_loss(state.d(fake))
    else:
        if cond.twin:
            fake_pred, fake_logits, twin_logits = state.d.forward_with_twin(fake)
            twin_loss = cond.loss(twin_logits, targets)
            state.stats["g_twin"] = twin_loss.item()
        else:
            fake_pred, fake_logits = state.d.forward_with_modes(fake)
            twin_loss = 0.0
        mode_loss = cond.loss(fake_logits, targets)
        loss = g_nonsaturating_loss(fake_pred) + cond.g_weight * (mode_loss - twin_loss)
        state.stats["g_mode"] = mode_loss.item()
    update(state.g, state.g_optim, loss)
    state.stats["g_loss"] = loss.item()


def g_reg(state: GanState, cfg: GanConfig, batch, gen: torch.Generator) -> None:
    """Lazy path-length regularisation (after g_main, whose gradient settings it keeps)."""
    device = next(state.g.parameters()).device
    n = max(1, cfg.batch // world_info()[1] // cfg.path_batch_shrink)
    z, z2 = _noise_z(cfg, gen, n, device)
    modes, _ = _fake_modes(state, n, gen, device)  # its own random modes (SC-GAN)
    images, ws = generate(state.g, z, z2, gen, modes)
    penalty, state.mean_path_length = path_length_penalty(images, ws, state.mean_path_length, gen)
    # The zero-weighted pixel term keeps every synthesis parameter in the graph (as rosinality).
    update(
        state.g,
        state.g_optim,
        cfg.path_regularize * cfg.g_reg_every * penalty + 0 * images[0, 0, 0, 0],
    )
    state.stats["path"] = penalty.item()
    state.stats["path_length"] = state.mean_path_length


def ema(state: GanState, cfg: GanConfig, batch, gen: torch.Generator) -> None:
    update_ema(state, ema_decay(cfg, state.step))


def gan_phases(cfg: GanConfig) -> tuple[Phase, ...]:
    """One iteration, in order (NVlabs' phases plus the EMA); the generator's phases start
    after the `d_warmup` steps in which the discriminator trains alone."""
    g_reg_every = cfg.g_reg_every if cfg.path_regularize > 0 else 0
    return (
        Phase("Dmain", 1, d_main),
        Phase("Dreg", cfg.d_reg_every, d_reg),
        Phase("Gmain", 1, g_main, start=cfg.d_warmup),
        Phase("Greg", g_reg_every, g_reg, start=cfg.d_warmup),
        Phase("Gema", 1, ema, start=cfg.d_warmup),
    )


def step_is(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


def ema_decay(cfg: GanConfig, step: int) -> float:
    """Per-step EMA decay after `step` finished iterations."""
    half_life = cfg.ema_kimg * 1000.0
    if cfg.ema_rampup is not None:
        half_life = min(half_life, (step + 1) * cfg.batch * cfg.ema_rampup)
    return 0.5 ** (cfg.batch / max(half_life, 1e-8))


@torch.no_grad()
def update_ema(state: GanState, decay: float) -> None:
    for p_ema, p in zip(state.g_ema.parameters(), state.g.parameters(), strict=True):
        p_ema.lerp_(p, 1.0 - decay)
    for b_ema, b in zip(state.g_ema.buffers(), state.g.buffers(), strict=True):
        b_ema.copy_(b)


def gan_step(state: GanState, cfg: GanConfig, sampler: BatchSampler) -> dict:
    """One training iteration (the phases of `gan_phases`); returns its stats
    (regularisers: their last values)."""
    gen = _step_generator(cfg, state.step, next(state.g.parameters()).device)
    run_phases(gan_phases(cfg), state.step, state, cfg, sampler(state.step), gen)
    state.step += 1
    return dict(state.stats)


def gan_checkpoints(state: GanState, cfg: GanConfig) -> Checkpointing:
    """Networks, optimizers, the step, the path-length mean and the config."""

    def meta() -> dict:
        return {"step": state.step, "mean_path_length": state.mean_path_length,
                "config": dataclasses.asdict(cfg)}  # fmt: skip

    def restore(meta: dict) -> None:
        state.step = int(meta["step"])
        state.mean_path_length = float(meta["mean_path_length"])

    return Checkpointing(_modules(state), _optimizers(state), meta, restore)


def _modules(state: GanState) -> dict:
    return {"g": state.g, "d": state.d, "g_ema": state.g_ema}


def _optimizers(state: GanState) -> dict:
    return {"g_optim": state.g_optim, "d_optim": state.d_optim}


@torch.no_grad()
def save_samples(g_ema: Generator, cfg: GanConfig, path: Path) -> None:
    z = torch.randn(cfg.n_sample, cfg.style_dim, generator=torch.Generator().manual_seed(cfg.seed))
    images = to_uint8(g_ema(z.to(g_ema.w_avg.device)).clamp(-1, 1))
    with atomic_path(path) as tmp:
        Image.fromarray(grid(images, cols=int(math.ceil(math.sqrt(cfg.n_sample))))).save(
            tmp, format="png"
        )


def train_gan(
    cfg: GanConfig,
    run_dir: str | Path,
    resume: bool = True,
    init_from: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    probe: Callable[[Generator], dict] | None = None,
) -> Path:
    """Train (or continue, or fine-tune from `init_from`) and return the final g_ema folder.
    `probe(g_ema)` runs every `cfg.probe_every` steps and at the end, into probe.jsonl.

    Launched through torchrun (WORLD_SIZE > 1), every process trains on its slice of each
    batch and gradients are averaged; process 0 alone writes stats, samples and checkpoints.
    """
    run_dir = Path(run_dir)
    device = init_process(cfg, device)
    sampler = BatchSampler(ImageDataset(cfg.data), cfg, device)  # checks the data first
    # The networks (and the weights to fine-tune from) are checked before the run folder is
    # made, so a mistake in them leaves nothing behind.
    state = setup_gan(cfg, device)
    if init_from is not None:
        _init_weights(state, Path(init_from))  # replaced below when resuming a checkpoint
    spec = RunSpec(probe=probe)
    return run_training(cfg, run_dir, state, sampler, spec, resume, device, progress)


@dataclass(frozen=True)
class RunSpec:
    """What distinguishes one kind of GAN training run from another (train-gan's by default):
    its name (progress bar, folder marker), the config written as config.json and checked on
    resume, extra facts saved with the final generator, and how sample grids are drawn."""

    what: str = "train-gan"
    config: dict | None = None  # default: the GanConfig
    extra: dict = field(default_factory=dict)
    samples: Callable[[Generator, GanConfig, Path], None] | None = None  # default: save_samples
    # Measures g_ema every cfg.probe_every steps: figures (a JSON-ready dict) for probe.jsonl.
    probe: Callable[[Generator], dict] | None = None
    adopt: tuple[str, ...] = ("config.json", "checkpoint")


def run_training(
    cfg: GanConfig,
    run_dir: Path,
    state: GanState,
    sampler: BatchSampler,
    spec: RunSpec = RunSpec(),
    resume: bool = True,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> Path:
    """Train `state` to `cfg.iterations` in `run_dir` (made, or resumed from its checkpoint)
    and write the final g_ema folder; only the first torchrun process writes."""
    main_process = world_info()[0] == 0
    config = spec.config if spec.config is not None else dataclasses.asdict(cfg)
    lock = output_lock(run_dir) if main_process else contextlib.nullcontext()
    with lock:
        if main_process:
            open_run_folder(run_dir, spec.what, adopt=spec.adopt)
            write_json(run_dir / "config.json", config)
        return _train(cfg, run_dir, resume, state, device, sampler, progress, main_process, spec)


def _train(cfg, run_dir, resume, state, device, sampler, progress, main_process, spec) -> Path:
    def check(meta: dict) -> None:
        refuse_another_config(meta, cfg, RESUMABLE_CHANGES, run_dir)

    loop = gan_loop(state, cfg, sampler, run_dir, spec)
    train_loop(loop, run_dir, resume, progress and main_process, main_process, check)
    state.g_ema.update_w_avg(generator=torch.Generator(device=device).manual_seed(cfg.seed))
    extra = {"train_config": dataclasses.asdict(cfg), "iterations": state.step, **spec.extra}
    if main_process:
        save_pretrained(state.g_ema, run_dir / "g_ema", extra=extra, overwrite=True)
    barrier()
    return run_dir / "g_ema"


def gan_loop(
    state: GanState, cfg: GanConfig, sampler: BatchSampler, run_dir: Path, spec: RunSpec
) -> Loop:
    """The GAN as the shared loop runs it: `gan_step` to `cfg.iterations`; stats every 10
    steps, samples and checkpoints at their intervals."""
    checkpoints = gan_checkpoints(state, cfg)
    draw = spec.samples or save_samples

    def shown(record: dict) -> dict:
        return {"d": record["d_loss"], "g": record.get("g_loss", float("nan")),
                "it_s": record["it_s"]}  # fmt: skip

    tasks = upkeep(
        run_dir,
        checkpoints,
        lambda path: draw(state.g_ema, cfg, path),
        (10, cfg.sample_every, cfg.checkpoint_every),
    )
    if spec.probe is not None and cfg.probe_every > 0:
        tasks += (Phase("probe", cfg.probe_every, _probe_writer(state, spec.probe, run_dir)),)
    return Loop(
        what=spec.what,
        total=cfg.iterations,
        step=lambda: gan_step(state, cfg, sampler),  # looked up per call (tests replace it)
        position=lambda: state.step,
        checkpoints=checkpoints,
        upkeep=tasks,
        shown=shown,
        record=lambda stats, rate: {"step": state.step, "it_s": rate, **stats},
    )


def _probe_writer(state: GanState, probe: Callable[[Generator], dict], run_dir: Path):
    """The probe phase: measure g_ema and append {"step", **figures} to run_dir/probe.jsonl
    (lines of later steps, left by a run that stopped after them, are dropped first)."""
    path = run_dir / "probe.jsonl"

    def run(step: int, record: dict) -> None:
        try:
            with torch.no_grad():
                figures = probe(state.g_ema)
        except GaneditError as exc:  # an early generator may draw one class only: not fatal
            log.warning("probe at step %d: %s", step, exc)
            figures = {"error": str(exc)}
        truncate_stats(path, step - 1)
        with path.open("a") as fh:
            fh.write(json.dumps({"step": step, **figures}) + "\n")

    return run


def init_process(cfg: GanConfig, device: str | torch.device) -> torch.device:
    """Join the torchrun process group when launched that way; returns this process's device."""
    device, _, world = init_distributed(device)
    if cfg.batch % world:
        raise UserInputError(
            f"expected --batch divisible by the {world} processes, received {cfg.batch}"
        )
    local = cfg.batch // world
    if local % min(local, cfg.mbstd_group):
        raise UserInputError(
            f"expected a per-process batch divisible by --mbstd-group {cfg.mbstd_group}, "
            f"received {local}"
        )
    return device


def _init_weights(state: GanState, source: Path) -> None:
    """Fine-tuning: start from another run's checkpoint folder or a StyleGAN2-pytorch `.pt`
    (networks only, fresh optimizers)."""
    from ganedit.models.io import load_weights

    if source.suffix == ".pt":
        _init_from_rosinality(state, source)
        return
    for name, module in _modules(state).items():
        weights = source / f"{name}.safetensors"
        if not weights.is_file():
            raise UserInputError(
                f"expected {name}.safetensors in checkpoint {str(source)!r}, received none"
            )
        # Damaged or non-finite weights, or another network's: one line, not a traceback.
        _load_into(module, load_weights(weights), f"{name}.safetensors in {str(source)!r}")


def _load_into(module: torch.nn.Module, state: dict, where: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise UserInputError(
            f"expected the weights of the configured network in {where}, received those of "
            f"another one: {' '.join(str(err).split())[:240]}"
        ) from None


def _init_from_rosinality(state: GanState, path: Path) -> None:
    from ganedit.models.stylegan2 import load_rosinality_checkpoint

    loaded = load_rosinality_checkpoint(path)
    g_ema = loaded["g_ema"]
    if g_ema.config["size"] != state.g.config["size"] or g_ema.w_dim != state.g.w_dim:
        raise UserInputError(
            f"expected a checkpoint of the configured generator (size {state.g.config['size']}, "
            f"style dim {state.g.w_dim}), received size {g_ema.config['size']}, style dim {g_ema.w_dim}"
        )
    _load_into(state.g_ema, g_ema.state_dict(), f"g_ema of {str(path)!r}")
    _load_into(state.g, (loaded["g"] or g_ema).state_dict(), f"g of {str(path)!r}")
    if loaded["d"] is not None:
        _load_into(state.d, loaded["d"].state_dict(), f"d of {str(path)!r}")
    else:
        log.warning("%s has no discriminator: fine-tuning starts from a fresh one", path)
