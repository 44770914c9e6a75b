"""StyleGAN2 (rosinality-compatible weights, NVlabs-style API) and its checkpoint converters.

Both classes are registered by name (`stylegan2-generator`, `stylegan2-discriminator`) in
`ganedit.models.registry`, whose `save_pretrained`/`load_pretrained` write and read them.
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
