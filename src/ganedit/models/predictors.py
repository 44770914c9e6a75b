"""The measuring networks of the face world.

- `AttributeNet` (kind `labeler` or `evaluator`): one logit per binary attribute plus a yaw
  regression. The labeler scores generated samples for direction finding; the evaluator, a
  different architecture trained on disjoint renders with another seed, scores edits.
- `IdentityNet`: a unit-norm embedding; renders of one identity with different attributes
  and poses are close, different identities far (the role ArcFace plays for real faces).

All take images [N, 3, H, W] in [-1, 1]; other sizes are resized to the training size.

`AttributePredictor` is the interface every attribute predictor satisfies, the shipped
`AttributeNet` and the foreign ones of `ganedit.models.foreign_predictors` alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganedit.choices import BINARY_ATTRIBUTES
from ganedit.errors import UserInputError
from ganedit.models.kinds import KINDS, PROBABILITY, VALUE
from ganedit.utils.images import as_image_batch

YAW_SCALE = 30.0  # degrees per unit of the yaw output

ATTRIBUTE_KINDS = KINDS


@runtime_checkable
class AttributePredictor(Protocol):
    """What ganedit asks of an attribute predictor (`score`, `generate`, the evaluators).

    - `attribute_kinds`: every attribute `predict` returns, in a fixed order, with its kind
      (`PROBABILITY` or `VALUE`). Names are letters, digits, '_', '-' or '.'.
    - `input_size`: the side in pixels the network sees (after its own resizing); informative,
      since `predict` takes images of any size.
    - `predict(images, batch_size)`: images float [N, 3, H, W] in [-1, 1] (RGB, as generators
      render them; NumPy uint8 [N, H, W, 3] is also accepted by ganedit's predictors), run in
      batches of at most `batch_size` -> {attribute: float32 [N]}, finite, probabilities in
      [0, 1].
    """

    @property
    def attribute_kinds(self) -> Mapping[str, str]: ...

    @property
    def input_size(self) -> int: ...

    def predict(self, images, batch_size: int = 256) -> dict[str, np.ndarray]: ...


def attributes_of_kind(predictor, kind: str) -> list[str]:
    """The predictor's attributes of one kind (`PROBABILITY` or `VALUE`), in its order."""
    return [name for name, k in predictor.attribute_kinds.items() if k == kind]


# A foreign predictor gives probabilities only: they are clipped this far from 0 and 1 before
# the logit, so a saturated output reads as a large finite logit (+-13.8), never inf.
_LOGIT_CLIP = 1e-6


@torch.no_grad()
def attribute_logit(predictor, images, attribute: str, batch_size: int = 256) -> np.ndarray:
    """The predictor's logit for the probability attribute `attribute`: float32 [N].

    `AttributeNet` gives its own pre-sigmoid output; any other `AttributePredictor` the logit
    of its probability (clipped to [1e-6, 1 - 1e-6]). A value attribute has no logit."""
    kinds = dict(predictor.attribute_kinds)
    if kinds.get(attribute) != PROBABILITY:
        wanted = tuple(attributes_of_kind(predictor, PROBABILITY))
        got = f"{attribute!r} (a value attribute)" if attribute in kinds else repr(attribute)
        raise UserInputError(
            f"expected a probability attribute of the evaluator {wanted}, received {got}"
        )
    if isinstance(predictor, AttributeNet):
        k = list(predictor.attributes).index(attribute)
        return _batched(predictor, as_image_batch(images), batch_size)[0][:, k].numpy()
    p = predictor.predict(images, batch_size=batch_size)[attribute].astype(np.float64)
    p = np.clip(p, _LOGIT_CLIP, 1.0 - _LOGIT_CLIP)
    return np.log(p / (1.0 - p)).astype(np.float32)


def _fit_size(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(
        images, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )


def _plain_backbone(width: int) -> nn.Sequential:
    # 64 -> 32 -> 16 -> 8 -> 4, batch-normalised 3x3 convolutions.
    chans = [3, width, 2 * width, 4 * width, 4 * width]
    layers: list[nn.Module] = []
    for cin, cout in zip(chans[:-1], chans[1:], strict=True):
        layers += [
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.norm1 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, cout)
        self.skip = nn.Conv2d(cin, cout, 1, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm1(self.conv1(x)))
        return F.silu(self.norm2(self.conv2(h)) + self.skip(x))


def _residual_backbone(width: int) -> nn.Sequential:
    # A different family from the plain one: strided residual blocks, group norm, SiLU.
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.SiLU(),
        _ResBlock(width, width),
        _ResBlock(width, 2 * width),
        _ResBlock(2 * width, 4 * width),
        _ResBlock(4 * width, 4 * width),
    )


def _backbone(arch: str, width: int) -> nn.Sequential:
    if arch == "plain":
        return _plain_backbone(width)
    if arch == "residual":
        return _residual_backbone(width)
    raise ValueError(f"expected arch 'plain' or 'residual', received {arch!r}")


class AttributeNet(nn.Module):
    """Multi-task attribute predictor: logits [N, 4] (BINARY_ATTRIBUTES order) and yaw [N]."""

    def __init__(
        self, arch: str = "plain", width: int = 24, hidden: int = 256, image_size: int = 64
    ):
        super().__init__()
        self.config = {"arch": arch, "width": width, "hidden": hidden, "image_size": image_size}
        self.attributes = BINARY_ATTRIBUTES
        self.features = _backbone(arch, width)
        feat = 4 * width * (image_size // 16) ** 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(feat, hidden), nn.ReLU(inplace=True))
        self.logits = nn.Linear(hidden, len(BINARY_ATTRIBUTES))
        self.yaw = nn.Linear(hidden, 1)

    @property
    def attribute_kinds(self) -> dict[str, str]:
        """The binary attributes' probabilities, then yaw in degrees (`predict`'s keys)."""
        return {**dict.fromkeys(self.attributes, PROBABILITY), "yaw": VALUE}

    @property
    def input_size(self) -> int:
        return int(self.config["image_size"])

    @property
    def resizes_to(self) -> int:
        """Its first step resizes square images to this side (bilinear, antialiased), so
        `generate` may take that step on the generator's device, before a large batch
        reaches the CPU."""
        return self.input_size

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._heads(self.embedding(images))

    def _heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.logits(h), self.yaw(h).squeeze(1) * YAW_SCALE

    def embedding(self, images: torch.Tensor) -> torch.Tensor:  # [N, hidden]
        """The penultimate features (for Frechet distances in this network's feature space)."""
        return self.head(self.features(_fit_size(images, self.config["image_size"])))

    @torch.no_grad()
    def predict(self, images, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Probabilities per attribute name and yaw in degrees: name -> float32 [N].

        `images`: torch or NumPy, float [N, 3, H, W] in [-1, 1] or uint8 [N, H, W, 3]."""
        return self._named(*_batched(self, as_image_batch(images), batch_size))

    def _named(self, logits: torch.Tensor, yaw: torch.Tensor) -> dict[str, np.ndarray]:
        probs = torch.sigmoid(logits).float().cpu().numpy()
        out = {name: probs[:, k] for k, name in enumerate(self.attributes)}
        out["yaw"] = yaw.float().cpu().numpy()
        return out

    @torch.no_grad()
    def embed(self, images, batch_size: int = 256) -> np.ndarray:
        """Penultimate features [N, hidden] as float32 numpy (images as for `predict`)."""
        images = as_image_batch(images)
        device = next(self.parameters()).device
        parts = [
            self.embedding(images[i : i + batch_size].to(device)).cpu()
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(parts).numpy()

    @torch.no_grad()
    def embed_and_predict(
        self, images: torch.Tensor, batch_size: int = 256
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """embed() and predict() from one pass of the backbone, which costs most of either."""
        features = self.embed(images, batch_size)
        h = torch.from_numpy(features).to(next(self.parameters()).device)
        return features, self._named(*self._heads(h))


class IdentityNet(nn.Module):
    """Identity embedder: unit vectors [N, dim]."""

    def __init__(self, arch: str = "plain", width: int = 24, dim: int = 64, image_size: int = 64):
        super().__init__()
        self.config = {"arch": arch, "width": width, "dim": dim, "image_size": image_size}
        self.features = _backbone(arch, width)
        feat = 4 * width * (image_size // 16) ** 2
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(feat, 256), nn.ReLU(inplace=True), nn.Linear(256, dim)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = self.head(self.features(_fit_size(images, self.config["image_size"])))
        return F.normalize(h, dim=1)

    @torch.no_grad()
    def embed(self, images, batch_size: int = 256) -> np.ndarray:
        """Unit embeddings [N, dim] (images as for `AttributeNet.predict`)."""
        return _batched(self, as_image_batch(images), batch_size).numpy()


def _batched(model: nn.Module, images: torch.Tensor, batch_size: int):
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise UserInputError(f"expected a batch size >= 1, received {batch_size!r}")
    if len(images) == 0:
        raise UserInputError("expected at least one image, received none")
    device = next(model.parameters()).device
    outs = [model(images[i : i + batch_size].to(device)) for i in range(0, len(images), batch_size)]
    if isinstance(outs[0], tuple):
        return tuple(torch.cat([o[k] for o in outs]).float().cpu() for k in range(len(outs[0])))
    return torch.cat(outs).float().cpu()
