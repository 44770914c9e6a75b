"""Latent banks: generated latent codes with their attribute scores, stored chunk by chunk.

- `generate_bank(GenerateConfig(...), out)`: sample, synthesise, score and store N samples
  (resumable, memory bounded, torchrun-aware);
- `LatentBank.open(path)`: read latents, scores and sample indices, whole or streamed;
- `export_reference` / `import_reference` / `load_scores_dict`: the InterFaceGAN / MAB files;
  `load_scores_and_kinds`: a scores file with the kinds it records.
"""

from ganedit.latents.bank import BankChunk, LatentBank, partial_path
from ganedit.latents.generate import GenerateConfig, assign_chunks, generate_bank
from ganedit.latents.interchange import (
    export_reference,
    import_reference,
    load_scores_and_kinds,
    load_scores_dict,
)

__all__ = [
    "BankChunk",
    "GenerateConfig",
    "LatentBank",
    "assign_chunks",
    "export_reference",
    "generate_bank",
    "import_reference",
    "load_scores_and_kinds",
    "load_scores_dict",
    "partial_path",
]
