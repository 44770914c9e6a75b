"""Inversion by optimisation: find the latent code (and noise maps) that renders an image.

The recipe of the StyleGAN2 projector (Karras et al. 2020; rosinality's `projector.py`):
start at the mean w, optimise with Adam under a learning rate that warms up linearly and
ramps down along a cosine; add latent noise that decays to zero (it shakes the code out of
shallow minima early on); optimise the per-layer noise maps too, re-normalised after every
step and kept free of spatial structure by a multi-scale autocorrelation penalty, so that
they cannot paint the image themselves. The loss is `ReconstructionLoss` (pixel MSE,
perceptual and identity terms).

Spaces: `w` (one code repeated over the layers), `ws` (one code per layer: closer
reconstructions, further from the generator's distribution, so edits degrade), and `z` for
sources that have only `z`. Each image's loss is its own term of a sum and Adam works
element by element, so images in one batch do not influence each other: image i depends
only on (image i, seed, i), up to float32 rounding of batched convolutions.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from ganedit.errors import UserInputError
from ganedit.inversion.perceptual import LossWeights, ReconstructionLoss, combine
from ganedit.models.sources import GeneratorSource
from ganedit.utils import rng
from ganedit.utils.arrays import check_finite
from ganedit.utils.params import Integer, OneOf, Real, check_fields
from ganedit.utils.progress import progress_bar

log = logging.getLogger(__name__)

PROJECT_SPACES = ("w", "ws", "z")
_STREAM = 0x50524F4A  # per-image random streams of the projector ("PROJ")


@dataclass(frozen=True)
class ProjectorConfig:
    """Settings of `project` (defaults: the StyleGAN2 projector's, fewer steps)."""

    space: str = "w"
    steps: int = 500
    lr: float = 0.1
    lr_rampup: float = 0.05  # share of the steps with a linear warm-up
    lr_rampdown: float = 0.25  # share of the steps with a cosine ramp-down
    latent_noise: float = 0.05  # initial latent noise, in units of the codes' spread
    latent_noise_ramp: float = 0.75  # share of the steps after which it is zero
    optimize_noise: bool = True
    noise_regularize: float = 1e5
    weights: LossWeights = field(default_factory=LossWeights)
    stats_n: int = 10_000  # z samples for the mean and spread of w
    seed: int = 0

    _CONSTRAINTS = {
        "space": OneOf(PROJECT_SPACES),
        "steps": Integer(1, 1_000_000),
        "lr": Real(1e-12, 10.0),
        "lr_rampup": Real(0.0, 1.0),
        "lr_rampdown": Real(0.0, 1.0),
        "latent_noise": Real(0.0, 10.0),
        "latent_noise_ramp": Real(1e-6, 1.0),
        "noise_regularize": Real(0.0, 1e12),
        "stats_n": Integer(1, 10_000_000),
        "seed": Integer(0, 2**63 - 1),
    }

    def __post_init__(self):
        check_fields(self, self._CONSTRAINTS, "projector")
        if not isinstance(self.optimize_noise, bool):
            raise UserInputError(
                f"expected optimize_noise true or false, received {self.optimize_noise!r}"
            )
        if not isinstance(self.weights, LossWeights):
            raise UserInputError(f"expected LossWeights, received {type(self.weights).__name__}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Projection:
    """What `project` found for N images."""

    latents: torch.Tensor  # [N, w_dim] (w), [N, num_ws, w_dim] (ws) or [N, z_dim] (z)
    space: str
    noise: list[torch.Tensor]  # per layer [N, 1, r, r]; [] for sources without noise
    images: torch.Tensor  # reconstructions [N, 3, H, W] in [-1, 1], CPU
    terms: dict[str, torch.Tensor]  # final loss terms per image [N], CPU
    seconds: float
    config: ProjectorConfig

    def ws(self, source: GeneratorSource) -> torch.Tensor:  # [N, num_ws, w_dim]
        return source.to_ws(self.latents, self.space)


def lr_at(t: float, config: ProjectorConfig) -> float:
    """The projector's learning rate at progress t in [0, 1]."""
    ramp = 1.0 if config.lr_rampdown == 0 else min(1.0, (1 - t) / config.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    if config.lr_rampup > 0:
        ramp *= min(1.0, t / config.lr_rampup)
    return config.lr * ramp


def noise_regularization(noise: list[torch.Tensor]) -> torch.Tensor:
    """Squared autocorrelation of each noise map with itself shifted by one pixel (both
    axes), at every scale down to 8 px: [N]. Structured noise (edges, shapes) pays."""
    total = 0
    for maps in noise:
        x = maps
        while True:
            total = total + (x * torch.roll(x, 1, dims=3)).mean((1, 2, 3)).square()
            total = total + (x * torch.roll(x, 1, dims=2)).mean((1, 2, 3)).square()
            if x.shape[-1] <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return total


@torch.no_grad()
def _normalize_noise(noise: list[torch.Tensor]) -> None:
    for maps in noise:
        mean = maps.mean((1, 2, 3), keepdim=True)
        std = maps.std((1, 2, 3), keepdim=True).clamp_min(1e-8)
        maps.sub_(mean).div_(std)


@torch.no_grad()
def latent_statistics(
    source: GeneratorSource, space: str, n: int, seed: int
) -> tuple[torch.Tensor, float]:
    """The start code [dim] and the codes' spread (root mean squared distance to it)."""
    if space == "z":
        return torch.zeros(source.z_dim), math.sqrt(source.z_dim)
    w = source.to_w(source.sample_z(n, seed)).float().cpu()
    mean = w.mean(0)
    return mean, float((w - mean).square().sum(1).mean().sqrt())


def _prepare_images(images: torch.Tensor, resolution: int) -> torch.Tensor:
    images = torch.as_tensor(images)
    if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise UserInputError(
            f"expected float images [N, 3, H, W] in [-1, 1], received {tuple(images.shape)} "
            f"{images.dtype}"
        )
    if len(images) == 0:
        raise UserInputError("expected at least one image, received none")
    check_finite(images, "images")
    if images.shape[-1] != resolution or images.shape[-2] != resolution:
        # Like e4e's inference: the target is resized to the generator's resolution.
        images = F.interpolate(images.float(), size=(resolution, resolution), mode="area")
    return images.float()


def project(
    source: GeneratorSource,
    images: torch.Tensor,
    loss: ReconstructionLoss,
    config: ProjectorConfig = ProjectorConfig(),
    *,
    start: int = 0,
    init: torch.Tensor | None = None,
    modes: torch.Tensor | None = None,
    progress: bool = False,
) -> Projection:
    """Invert `images` [N, 3, H, W] in [-1, 1] (resized to the source's resolution).

    `start`: the index of the first image in the caller's numbering; image i's random
    draws depend only on (config.seed, start + i). `init`: a starting code per image in
    `config.space` instead of the mean (e.g. an encoder's ws). `modes`: a self-conditioned
    generator's mode vectors [1 or N, M] to render at (the images' own).
    """
    space = config.space
    source.check_space(space)
    device = source.device
    target = _prepare_images(images, source.resolution).to(device)
    n = len(target)
    mean, spread = latent_statistics(source, space, config.stats_n, config.seed)
    latents = _initial_latents(source, space, mean, init, n).to(device).requires_grad_(True)
    noise = source.make_noise(n, "const") if config.optimize_noise else []
    for maps in noise:
        maps.requires_grad_(True)
    generators = [rng.torch_generator(config.seed, start + i, _STREAM) for i in range(n)]
    optimizer = torch.optim.Adam([latents, *noise], lr=config.lr, betas=(0.9, 0.999))
    began = time.perf_counter()
    # enable_grad: a caller's no_grad must not silently stop the optimisation.
    with progress_bar(config.steps, f"project ({space})", progress) as bar, torch.enable_grad():
        for step in range(config.steps):
            t = step / config.steps
            for group in optimizer.param_groups:
                group["lr"] = lr_at(t, config)
            strength = spread * config.latent_noise * max(0.0, 1 - t / config.latent_noise_ramp)
            shaken = latents + strength * _latent_noise(generators, latents).to(device)
            rendered = source.render(shaken, space, noise=noise or None, modes=modes)
            per_image = loss.weighted(rendered, target, config.weights)
            if noise and config.noise_regularize > 0:
                per_image = per_image + config.noise_regularize * noise_regularization(noise)
            optimizer.zero_grad(set_to_none=True)
            per_image.sum().backward()  # images independent: one term each
            optimizer.step()
            if noise:
                _normalize_noise(noise)
            bar.advance(1)
    seconds = time.perf_counter() - began
    with torch.no_grad():
        final = source.render(latents, space, noise=noise or None, modes=modes)
        terms = {k: v.cpu() for k, v in loss.terms(final, target).items()}
        terms["loss"] = combine({k: v for k, v in terms.items() if k != "loss"}, config.weights)
    log.info("projected %d images in %s in %.1f s", n, space, seconds)
    return Projection(
        latents=latents.detach().cpu(),
        space=space,
        noise=[m.detach().cpu() for m in noise],
        images=final.clamp(-1, 1).cpu(),
        terms=terms,
        seconds=seconds,
        config=config,
    )


def _initial_latents(
    source: GeneratorSource, space: str, mean: torch.Tensor, init: torch.Tensor | None, n: int
) -> torch.Tensor:
    if init is None:
        code = mean[None].expand(n, -1)
        if space == "ws":
            code = code[:, None, :].expand(-1, source.to_ws(mean[None], "w").shape[1], -1)
        return code.clone()
    init = torch.as_tensor(init).float().cpu()
    expected = (n, *mean.shape) if space != "ws" else (n, *source.to_ws(mean[None], "w").shape[1:])
    if tuple(init.shape) != expected:
        raise UserInputError(
            f"expected starting codes of shape {list(expected)} ({space}), "
            f"received {list(init.shape)}"
        )
    check_finite(init, "starting codes")
    return init.clone()


def _latent_noise(generators: list[torch.Generator], latents: torch.Tensor) -> torch.Tensor:
    shape = latents.shape[1:]
    return torch.stack([torch.randn(shape, generator=g) for g in generators])
