"""Inversion: bring images the generator did not make into its latent space.

- `project`: optimisation of a `w`, `ws` or `z` code (and the noise maps), the StyleGAN2
  projector's recipe, with a pluggable perceptual distance.
- `pivotal_tuning`: tune the generator around a pivot code until it reconstructs the image
  (PTI), with the locality regulariser.
- `ReconstructionLoss` / `default_loss`: pixel, perceptual (LPIPS-style, on the shipped
  evaluator's features, or the user's own distance) and identity terms.
"""

from ganedit.inversion.perceptual import (
    FeatureDistance,
    IdentityDistance,
    ImageDistance,
    LossWeights,
    ReconstructionLoss,
    as_image_distance,
    default_loss,
    network_feature_distance,
)
from ganedit.inversion.projector import Projection, ProjectorConfig, project
from ganedit.inversion.pti import PTIConfig, Tuning, pivotal_tuning

__all__ = [
    "FeatureDistance",
    "IdentityDistance",
    "ImageDistance",
    "LossWeights",
    "PTIConfig",
    "Projection",
    "ProjectorConfig",
    "ReconstructionLoss",
    "Tuning",
    "as_image_distance",
    "default_loss",
    "network_feature_distance",
    "pivotal_tuning",
    "project",
]
