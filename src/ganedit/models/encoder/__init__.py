"""The e4e (encoder4editing) encoder and its checkpoint converters.

`Encoder4Editing` is registered by name (`e4e-encoder`) in `ganedit.models.registry`, whose
`save_pretrained`/`load_pretrained` write and read it as a model folder; `convert` reads and
writes the official encoder4editing checkpoint layout and e4e's `latents.pt`.
"""

from ganedit.models.encoder.convert import (
    load_e4e_checkpoint,
    load_latents_pt,
    save_e4e_checkpoint,
    save_latents_pt,
)
from ganedit.models.encoder.networks import OFFICIAL_CONFIG, Encoder4Editing

__all__ = [
    "OFFICIAL_CONFIG",
    "Encoder4Editing",
    "load_e4e_checkpoint",
    "load_latents_pt",
    "save_e4e_checkpoint",
    "save_latents_pt",
]
