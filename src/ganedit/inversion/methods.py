"""Inversion methods: the `Inverter` protocol and `INVERTERS`, the one table that `ganedit
invert`, `ganedit edit --images` and the editor's upload read.

A method turns a batch of images into codes (and their reconstructions) at the images' own
modes. Adding one is a class here and a row in `INVERTERS` (its name also goes in
ganedit.choices.INVERT_METHODS, so `--help` lists it without importing torch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

import torch

from ganedit.errors import UserInputError
from ganedit.inversion.encode import encode_images
from ganedit.inversion.perceptual import ReconstructionLoss
from ganedit.inversion.projector import project
from ganedit.inversion.pti import Tuning, pivotal_tuning

if TYPE_CHECKING:
    from ganedit.inversion.run import InvertConfig
    from ganedit.models.sources import GeneratorSource


@dataclass(frozen=True)
class Context:
    """What a method works with: the run's settings and the networks loaded for it."""

    cfg: InvertConfig
    source: GeneratorSource  # the generator, at no modes
    loss: ReconstructionLoss | None = None  # None: a method that compares no images
    encoder: torch.nn.Module | None = None  # loaded when `Inverter.uses_encoder`
    modes: torch.Tensor | None = None  # [N, k] each image's anchor coordinates (self-cond.)
    images: list[dict] = field(default_factory=list)  # per image: {"name", "sha256"}
    progress: bool = False
    on_step: Callable[[int, int], None] | None = None  # (done, total) of a tuning

    def modes_at(self, start: int, n: int) -> torch.Tensor | None:
        """The mode vectors [n, M] images start .. start+n-1 render at (their own); None
        for a generator without modes."""
        if self.modes is None:
            return None
        layout = self.source.require_modes("image modes")
        return layout.generator_vector(self.modes[start : start + n])


@dataclass(frozen=True)
class Inversion:
    """One batch inverted."""

    latents: torch.Tensor  # [n, num_ws, w_dim] ws ([n, z_dim] z for z-only sources), CPU
    images: torch.Tensor | None = None  # [n, 3, R, R]; None: the latents rendered, at modes
    tuned: list[tuple[torch.nn.Module, dict]] = field(default_factory=list)  # per image:
    # a tuned generator and what its config.json records (`Inverter.tunes_generator`)


class Inverter(Protocol):
    """One inversion method (a row of `INVERTERS`); a method that subclasses it explicitly
    takes its defaults: no settings to refuse, no encoder, the generator left as it is."""

    # Each image gets its own generator (`{i:05d}_generator/`), and is edited in it.
    tunes_generator: ClassVar[bool] = False

    def check(self, cfg: InvertConfig) -> None:
        """Refuse (UserInputError) settings the method cannot run."""

    def uses_encoder(self, cfg: InvertConfig) -> bool:
        """Whether the run loads an encoder (`Context.encoder`) for the method."""
        return False

    def invert(self, ctx: Context, images: torch.Tensor, start: int) -> Inversion:
        """Codes of images [n, 3, R, R] in [-1, 1], numbered from `start` in the run."""
        ...


class Optimize(Inverter):
    """The projector: optimise a code (and the noise maps) per image."""

    def invert(self, ctx: Context, images: torch.Tensor, start: int) -> Inversion:
        found = project(
            ctx.source, images, ctx.loss, ctx.cfg.projector, start=start,
            modes=ctx.modes_at(start, len(images)), progress=ctx.progress,
        )  # fmt: skip
        # Every StyleGAN2 result is written as ws, the space edits of inverted codes use.
        latents = found.latents
        if found.space != "z":
            latents = ctx.source.to_ws(latents, found.space).cpu()
        return Inversion(latents, found.images)


class Encoder(Inverter):
    """An e4e encoder's codes, in one forward pass."""

    def uses_encoder(self, cfg: InvertConfig) -> bool:
        return True

    def invert(self, ctx: Context, images: torch.Tensor, start: int) -> Inversion:
        return Inversion(encode_images(ctx.encoder, images.to(ctx.source.device)))


class PivotalTuning(Inverter):
    """PTI: a pivot (the projector's or the encoder's code), then the generator tuned around
    it per image; the codes written are the pivots."""

    tunes_generator = True

    def check(self, cfg: InvertConfig) -> None:
        if cfg.projector.space == "z" and cfg.pivot == "optimize":
            raise UserInputError("expected a w or ws pivot for pti, received --space z")

    def uses_encoder(self, cfg: InvertConfig) -> bool:
        return INVERTERS[cfg.pivot].uses_encoder(cfg)

    def invert(self, ctx: Context, images: torch.Tensor, start: int) -> Inversion:
        pivots = INVERTERS[ctx.cfg.pivot].invert(ctx, images, start).latents
        recon, tuned = [], []
        for k in range(len(images)):
            tuning = self.tune(ctx, images[k], pivots[k], start + k)
            modes = ctx.modes_at(start + k, 1)
            recon.append(tuning.source.synthesize(tuning.pivot[None], "ws", modes=modes)[0])
            tuned.append((tuning.source.generator, self._record(ctx, tuning, start + k)))
        return Inversion(pivots, torch.stack(recon), tuned)

    def tune(self, ctx: Context, image: torch.Tensor, pivot: torch.Tensor, index: int) -> Tuning:
        """A copy of the generator tuned so that pivot [num_ws, w_dim] renders image
        [3, R, R] (run image `index`, at its modes)."""
        return pivotal_tuning(
            ctx.source, image, pivot, ctx.loss, ctx.cfg.pti, index=index,
            modes=ctx.modes_at(index, 1), progress=ctx.progress, on_step=ctx.on_step,
        )  # fmt: skip

    def _record(self, ctx: Context, tuning: Tuning, index: int) -> dict:
        return {
            "pti": {
                "parent": ctx.source.identity,
                "image": ctx.images[index],
                "pivot_ws": tuning.pivot.tolist(),
                "steps": tuning.steps,
                "settings": ctx.cfg.pti.to_dict(),
            }
        }


# The methods, by the names ganedit.choices.INVERT_METHODS lists (in that order).
INVERTERS: dict[str, Inverter] = {
    "optimize": Optimize(),
    "pti": PivotalTuning(),
    "encoder": Encoder(),
}
