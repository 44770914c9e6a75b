"""Pivotal tuning (PTI, Roich et al. 2022): tune the generator around one inverted code.

An inversion that stays editable (a `w` code near the generator's distribution, the pivot)
rarely reconstructs an image it did not make. PTI keeps the pivot fixed and tunes the
generator's synthesis weights instead until G(pivot) reconstructs the image, with constant
noise, and stops early once the perceptual distance is small. The locality regulariser of
the PTI paper keeps the rest of the latent space as it was: each step, a code w_r a fixed
distance from the pivot toward a random mapped code must render as the original generator
renders it (pixel and perceptual terms). Edits then start from the pivot in the tuned
generator and keep the image's details.

The mapping network is not tuned: the pivot is a `w`/`ws` code and does not pass through it,
and the locality samples need the original mapping to stay where they were.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from ganedit.errors import UserInputError
from ganedit.inversion.perceptual import LossWeights, ReconstructionLoss, combine
from ganedit.inversion.projector import _prepare_images, latent_statistics
from ganedit.models.sources import StyleGANSource
from ganedit.utils import rng
from ganedit.utils.arrays import check_finite
from ganedit.utils.params import Integer, Real, check_fields
from ganedit.utils.progress import progress_bar

log = logging.getLogger(__name__)

_LOCALITY_WEIGHTS = LossWeights(pixel=1.0, perceptual=1.0, identity=0.0)
_STREAM = 0x505449  # per-image random streams of PTI's locality samples ("PTI")


@dataclass(frozen=True)
class PTIConfig:
    """Settings of `pivotal_tuning` (defaults: the PTI repository's, locality on)."""

    steps: int = 350
    lr: float = 3e-4
    stop_perceptual: float = 0.0  # stop once the perceptual term is at most this (0: never)
    weights: LossWeights = field(default_factory=lambda: LossWeights(1.0, 1.0, 0.0))
    locality_weight: float = 0.1  # weight of the locality term (0: off)
    locality_radius: float = 1.0  # distance of w_r from the pivot, in units of w's spread
    # (the root mean squared distance of mapped codes to their mean)
    locality_psi: float = 0.5  # truncation of the random codes the locality samples aim at
    stats_n: int = 10_000
    seed: int = 0

    _CONSTRAINTS = {
        "steps": Integer(1, 1_000_000),
        "lr": Real(1e-12, 1.0),
        "stop_perceptual": Real(0.0, 1e6),
        "locality_weight": Real(0.0, 1e6),
        "locality_radius": Real(0.0, 1e3),
        "locality_psi": Real(0.0, 1.0),
        "stats_n": Integer(1, 10_000_000),
        "seed": Integer(0, 2**63 - 1),
    }

    def __post_init__(self):
        check_fields(self, self._CONSTRAINTS, "pivotal tuning")
        if not isinstance(self.weights, LossWeights):
            raise UserInputError(f"expected LossWeights, received {type(self.weights).__name__}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Tuning:
    """A generator tuned on one image around its pivot."""

    source: StyleGANSource  # the tuned generator, as a source (constant noise)
    pivot: torch.Tensor  # [num_ws, w_dim]
    steps: int  # steps run (early stopping may cut them short)
    history: list[dict[str, float]]  # per step: loss terms of the image, locality term
    seconds: float
    config: PTIConfig


def locality_codes(
    generator, pivot: torch.Tensor, radius: float, psi: float, gen: torch.Generator
) -> torch.Tensor:
    """w_r [1, num_ws, w_dim]: for every layer, the pivot moved `radius` (a w-space
    distance) toward a random mapped code w_z, truncated by psi (the PTI paper's sample)."""
    z = torch.randn(1, generator.z_dim, generator=gen).to(pivot.device)
    with torch.no_grad():
        w_z = generator.mapping(z, truncation_psi=psi)  # [1, num_ws, w_dim]
    step = w_z - pivot[None]
    return pivot[None] + radius * step / step.norm(dim=2, keepdim=True).clamp_min(1e-8)


def pivotal_tuning(
    source: StyleGANSource,
    image: torch.Tensor,
    pivot: torch.Tensor,
    loss: ReconstructionLoss,
    config: PTIConfig = PTIConfig(),
    *,
    index: int = 0,
    modes: torch.Tensor | None = None,
    progress: bool = False,
    on_step: Callable[[int, int], None] | None = None,
) -> Tuning:
    """Tune a copy of `source`'s generator so that pivot [num_ws, w_dim] (or [w_dim])
    renders `image` [3, H, W] (or [1, 3, H, W]) in [-1, 1]. `source` is left unchanged.
    A self-conditioned source tunes at `modes` [1, M] (generator form: the image's own,
    SC-GAN's conditional PTI); render the tuned source at them too.

    `index`: the image's number in the caller's run; the locality samples depend only on
    (config.seed, index). `on_step(done, total)`: called after every step (a progress bar
    of another kind, e.g. a web page's).
    """
    if not isinstance(source, StyleGANSource):
        raise UserInputError(
            f"expected a StyleGAN2 generator for pivotal tuning, received {source.name} (z only)"
        )
    original = source.generator
    device = original.w_avg.device
    target = _prepare_images(image[None] if image.ndim == 3 else image, source.resolution)
    if len(target) != 1:
        raise UserInputError(f"expected one image to tune on, received {len(target)}")
    target = target.to(device)
    pivot = _check_pivot(torch.as_tensor(pivot), original).to(device)

    tuned = copy.deepcopy(original).eval()
    params = [p for name, p in tuned.named_parameters() if not name.startswith("style.")]
    for name, p in tuned.named_parameters():
        p.requires_grad_(not name.startswith("style."))
    optimizer = torch.optim.Adam(params, lr=config.lr, betas=(0.9, 0.999))
    _, spread = latent_statistics(source, "w", config.stats_n, config.seed)
    radius = config.locality_radius * spread
    gen = rng.torch_generator(config.seed, index, _STREAM)
    noise = original.make_noise(1, "const")
    modes = source.check_modes(modes, 1)  # the image's (SC-GAN B9), on the device

    history: list[dict[str, float]] = []
    began = time.perf_counter()
    # enable_grad: a caller's no_grad (e.g. an evaluation loop) must not silently stop tuning.
    with progress_bar(config.steps, "pivotal tuning", progress) as bar, torch.enable_grad():
        for _ in range(config.steps):
            rendered = tuned.synthesis(pivot[None], noise=noise, modes=modes)
            terms = loss.terms(rendered, target, config.weights)
            total = combine(terms, config.weights).sum()
            record = {k: float(v.detach().sum()) for k, v in terms.items()}
            if config.locality_weight > 0:
                local = _locality_term(
                    original, tuned, loss, pivot, radius, config, gen, noise, modes
                )
                total = total + config.locality_weight * local
                record["locality"] = float(local.detach())
            history.append(record)
            if (
                config.stop_perceptual > 0
                and record.get("perceptual", 1e30) <= config.stop_perceptual
            ):
                break  # close enough: PTI's early stop
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            bar.advance(1)
            if on_step is not None:
                on_step(len(history), config.steps)
    for p in tuned.parameters():
        p.requires_grad_(False)
    seconds = time.perf_counter() - began
    log.info("pivotal tuning: %d steps in %.1f s", len(history), seconds)
    tuned_source = StyleGANSource(
        tuned,
        f"{source.name}+pti",
        source.truncation_psi,
        noise_mode="const",
        weights_sha256=None,
        parent={"name": source.identity["name"], "sha256": source.identity["sha256"]},
    )
    return Tuning(tuned_source, pivot.cpu(), len(history), history, seconds, config)


def _locality_term(
    original, tuned, loss, pivot, radius, config, gen, noise, modes=None
) -> torch.Tensor:
    codes = locality_codes(original, pivot, radius, config.locality_psi, gen)
    with torch.no_grad():
        reference = original.synthesis(codes, noise=noise, modes=modes)
    rendered = tuned.synthesis(codes, noise=noise, modes=modes)
    # PTI's regulariser: pixel and perceptual terms, equally weighted.
    return loss.weighted(rendered, reference, _LOCALITY_WEIGHTS).sum()


def _check_pivot(pivot: torch.Tensor, generator) -> torch.Tensor:
    shape = (generator.num_ws, generator.w_dim)
    if pivot.ndim == 1 and pivot.shape[0] == generator.w_dim:
        pivot = pivot[None].expand(shape)
    if tuple(pivot.shape) != shape:
        raise UserInputError(
            f"expected a pivot of shape {list(shape)} (ws) or [{shape[1]}] (w), "
            f"received {list(pivot.shape)}"
        )
    check_finite(pivot, "pivot")
    return pivot.float().clone()
