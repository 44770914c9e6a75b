"""StyleGAN2 (rosinality-compatible weights, NVlabs-style API) and its checkpoint converters.

Importing this package registers `Generator` and `Discriminator` with `ganedit.models.io`,
so their `save_pretrained` folders can be reloaded with `load_pretrained`.
"""

from ganedit.models.stylegan2.convert import (
    export_rosinality_checkpoint,
    load_rosinality_checkpoint,
)
from ganedit.models.stylegan2.networks import Discriminator, Generator

__all__ = [
    "Discriminator",
    "Generator",
    "export_rosinality_checkpoint",
    "load_rosinality_checkpoint",
]
