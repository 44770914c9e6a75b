"""Image distances for inversion: perceptual (LPIPS-style) and identity.

No LPIPS backbone can be had offline, so the default perceptual distance is built from the
project's own networks: the feature maps of the evaluator's trunk at several depths, each
normalised over its channels (so every depth counts alike whatever its scale), squared
differences summed over channels, averaged over pixels and over depths: LPIPS's recipe
with uniform weights instead of its learned linear heads. The identity distance is
1 - cosine of the identity embedder's unit embeddings (the role ArcFace plays in e4e/PTI).

Every distance maps two image batches [N, 3, H, W] in [-1, 1] to per-image distances [N],
differentiably (`ImageDistance`). A user who has LPIPS, or any other network, passes it
through `as_image_distance`, which accepts the `lpips` package's modules (output
[N, 1, 1, 1]) and any module or function returning one value per image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from ganedit.errors import UserInputError


@runtime_checkable
class ImageDistance(Protocol):
    """Per-image distances [N] between image batches a, b [N, 3, H, W] in [-1, 1]."""

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor: ...


def _frozen(module: nn.Module) -> nn.Module:
    # The measuring networks are fixed: gradients flow through them to the images only.
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="area")


class FeatureDistance(nn.Module):
    """LPIPS-style distance on the feature maps of `trunk` (an nn.Sequential) taken after
    the layers at `taps`; images are resized (area) to `image_size` first."""

    def __init__(self, trunk: nn.Sequential, taps: Sequence[int], image_size: int):
        super().__init__()
        if not taps or any(not 0 <= t < len(trunk) for t in taps):
            raise ValueError(f"taps must index the trunk's {len(trunk)} layers, got {taps}")
        self.trunk = _frozen(trunk)
        self.taps = tuple(sorted(set(taps)))
        self.image_size = image_size

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Channel-normalised feature maps, one [N, C, h, w] per tap."""
        x = _resize(images, self.image_size)
        out = []
        for i, layer in enumerate(self.trunk[: self.taps[-1] + 1]):
            x = layer(x)
            if i in self.taps:
                out.append(x / (x.square().sum(1, keepdim=True) + 1e-10).sqrt())
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # -> [N]
        fa, fb = self.features(a), self.features(b)
        per_tap = [(x - y).square().sum(1).mean((1, 2)) for x, y in zip(fa, fb, strict=True)]
        return torch.stack(per_tap).mean(0)


def trunk_taps(trunk: nn.Sequential) -> list[int]:
    """Where to read a measuring network's trunk: after every activation and residual block
    (one map per scale and depth, 64 px down to 4 px for the shipped networks)."""
    return [
        i
        for i, layer in enumerate(trunk)
        if isinstance(layer, nn.ReLU | nn.SiLU) or type(layer).__name__ == "_ResBlock"
    ]


def network_feature_distance(network: nn.Module) -> FeatureDistance:
    """The perceptual distance of an attribute or identity network (its `features` trunk)."""
    trunk = getattr(network, "features", None)
    size = getattr(network, "config", {}).get("image_size")
    if not isinstance(trunk, nn.Sequential) or not size:
        raise UserInputError(
            "expected a network with a `features` trunk (nn.Sequential) and a config image_size "
            f"for a perceptual distance, received {type(network).__name__}"
        )
    return FeatureDistance(trunk, trunk_taps(trunk), size)


class IdentityDistance(nn.Module):
    """1 - cosine of an identity embedder's unit embeddings: [N] in [0, 2]."""

    def __init__(self, embedder: nn.Module):
        super().__init__()
        self.embedder = _frozen(embedder)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ea = F.normalize(self.embedder(a), dim=1)
        eb = F.normalize(self.embedder(b), dim=1)
        return 1 - (ea * eb).sum(1)


class _PerImage(nn.Module):
    def __init__(self, fn: Callable[..., torch.Tensor], name: str):
        super().__init__()
        self.fn = fn
        self.name = name
        if isinstance(fn, nn.Module):
            _frozen(fn)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = self.fn(a, b)
        if not isinstance(out, torch.Tensor) or out.numel() != len(a):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise UserInputError(
                f"expected a perceptual distance {self.name} giving one value per image "
                f"({len(a)}), received {shape}"
            )
        return out.reshape(len(a))


def as_image_distance(fn: Callable[..., torch.Tensor] | nn.Module) -> nn.Module:
    """Wrap a user's distance (an `lpips.LPIPS` module, any module or function of two image
    batches in [-1, 1]) so it gives [N]; its parameters are frozen and put in eval mode."""
    if isinstance(fn, FeatureDistance | IdentityDistance | _PerImage):
        return fn
    if not callable(fn):
        raise UserInputError(f"expected a callable image distance, received {type(fn).__name__}")
    return _PerImage(fn, type(fn).__name__)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the reconstruction terms (per image, then summed over the batch)."""

    pixel: float = 1.0  # mean squared error over pixels and channels, images in [-1, 1]
    perceptual: float = 1.0
    identity: float = 0.1

    def __post_init__(self):
        for name in ("pixel", "perceptual", "identity"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0 and value < float("inf")):
                raise UserInputError(f"expected a finite weight >= 0 for {name}, received {value}")


class ReconstructionLoss(nn.Module):
    """The terms of a reconstruction loss per image: pixel MSE (over pixels and channels,
    images in [-1, 1]), the perceptual distance and the identity distance, each [N].

    The weights belong to the caller's config (`ProjectorConfig.weights`, ...), so that they
    are saved with it; `weighted(a, b, weights)` is the per-image loss [N]."""

    def __init__(self, perceptual: nn.Module | Callable | None, identity: nn.Module | None = None):
        super().__init__()
        self.perceptual = None if perceptual is None else as_image_distance(perceptual)
        self.identity = None if identity is None else IdentityDistance(identity)

    def terms(
        self, a: torch.Tensor, b: torch.Tensor, weights: LossWeights | None = None
    ) -> dict[str, torch.Tensor]:
        """Every term this loss has (only those with a weight > 0 when `weights` is given)."""
        out = {"pixel": (a - b).square().flatten(1).mean(1)}
        if self.perceptual is not None and (weights is None or weights.perceptual > 0):
            out["perceptual"] = self.perceptual(a, b)
        if self.identity is not None and (weights is None or weights.identity > 0):
            out["identity"] = self.identity(a, b)
        return out

    def weighted(self, a: torch.Tensor, b: torch.Tensor, weights: LossWeights) -> torch.Tensor:
        return combine(self.terms(a, b, weights), weights)


def combine(terms: dict[str, torch.Tensor], weights: LossWeights) -> torch.Tensor:
    """Sum of the terms times their weights: [N]."""
    return sum(getattr(weights, k) * v for k, v in terms.items())


def default_loss(
    device: str | torch.device = "cpu",
    perceptual: str | nn.Module | Callable = "evaluator",
    identity: bool = True,
) -> ReconstructionLoss:
    """The shipped networks' loss: `perceptual` names a shipped network whose trunk gives the
    perceptual distance (`evaluator`, `labeler`, `identity`), or is the user's own distance;
    `identity` adds the shipped identity embedder's distance."""
    from ganedit.models.registry import PREDICTORS, load_predictor

    if isinstance(perceptual, str):
        if perceptual not in PREDICTORS:
            raise UserInputError(
                f"expected a perceptual network in {PREDICTORS} or a distance module, "
                f"received {perceptual!r}"
            )
        perceptual = network_feature_distance(load_predictor(perceptual, device))
    return ReconstructionLoss(perceptual, load_predictor("identity", device) if identity else None)
