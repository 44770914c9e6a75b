"""StyleGAN2 (rosinality-compatible weights, NVlabs-style API) and its checkpoint converters
(StyleGAN2-pytorch `.pt` both ways; NVIDIA StyleGAN2-ADA `.pkl` in, generator and
discriminator, read without running it).

Both classes are registered by name (`stylegan2-generator`, `stylegan2-discriminator`) in
`ganedit.models.registry`, whose `save_pretrained`/`load_pretrained` write and read them.
"""

from ganedit.models.stylegan2.convert import (
    export_rosinality_checkpoint,
    load_rosinality_checkpoint,
)
from ganedit.models.stylegan2.networks import Discriminator, Generator
from ganedit.models.stylegan2.nvidia_discriminator import load_nvidia_discriminator
from ganedit.models.stylegan2.nvidia_pkl import convert_nvidia_pickle, load_nvidia_pickle

__all__ = [
    "Discriminator",
    "Generator",
    "convert_nvidia_pickle",
    "export_rosinality_checkpoint",
    "load_nvidia_discriminator",
    "load_nvidia_pickle",
    "load_rosinality_checkpoint",
]
