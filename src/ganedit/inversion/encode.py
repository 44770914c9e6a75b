"""Encoder inference: the encoder that belongs to a generator, and the codes it gives images.

`load_encoder_for` loads an encoder (by name, folder or official e4e checkpoint) and refuses
one trained for another generator; `encode_images` turns images into ws batch by batch.
`ganedit invert --method encoder`, PTI's encoder pivot, the editor's upload and the
self-conditioned labeller read images through these; training lives in `train_encoder`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganedit.errors import UserInputError
from ganedit.models.encoder.networks import Encoder4Editing


@torch.no_grad()
def encode_images(
    encoder: Encoder4Editing, images: torch.Tensor, batch_size: int = 64
) -> torch.Tensor:
    """ws [N, num_ws, w_dim] (CPU) of images [N, 3, H, W] in [-1, 1], batch by batch, with the
    encoder in eval mode (its mode is restored afterwards)."""
    images = torch.as_tensor(images)
    if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise UserInputError(
            f"expected float images [N, 3, H, W] in [-1, 1], received {tuple(images.shape)} "
            f"{images.dtype}"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UserInputError(f"expected a batch size >= 1, received {batch_size!r}")
    device, was_training = encoder.latent_avg.device, encoder.training
    encoder.eval()
    try:
        parts = [
            encoder(images[i : i + batch_size].to(device)).cpu()
            for i in range(0, len(images), batch_size)
        ]
    finally:
        encoder.train(was_training)
    if not parts:
        return torch.zeros(0, encoder.num_ws, encoder.w_dim)
    return torch.cat(parts)


def shipped_encoder(source) -> str:
    """The shipped encoder of a shipped generator (the default of --encoder)."""
    from ganedit.models.registry import SHIPPED_ENCODERS

    name = SHIPPED_ENCODERS.get(source.identity["name"])
    if name is None:
        raise UserInputError(
            f"expected --encoder (an encoder trained for {source.identity['name']!r}; "
            "ganedit train-encoder makes one), received none"
        )
    return name


def load_encoder_for(name: str | None, source, device) -> torch.nn.Module:
    """The encoder (None: the generator's shipped one), refused when it was trained for
    another generator: a ganedit encoder records its generator's sha256; an official e4e
    checkpoint carries its generator (`decoder.*`), whose weights must be the source's."""
    from ganedit.errors import ProvenanceError
    from ganedit.models.registry import load_encoder

    name = name or shipped_encoder(source)
    loaded = load_encoder(name, device)
    if Path(name).is_file():
        _check_decoder(loaded["decoder"], source, name)
        return loaded["encoder"]
    trained_for = loaded["generator"] or {}
    if trained_for.get("sha256") != source.identity["sha256"]:
        raise ProvenanceError(
            f"expected an encoder trained for {source.identity['name']!r} (weights sha256 "
            f"{str(source.identity['sha256'])[:12]}), received {name!r} trained for "
            f"{trained_for.get('name')!r} (sha256 {str(trained_for.get('sha256'))[:12]})"
        )
    return loaded["encoder"]


def _check_decoder(decoder, source, name: str) -> None:
    """An e4e checkpoint pairs with the generator whose parameters its decoder holds (equal up
    to float32 rounding: a mapping learning rate other than 0.01 is rescaled on import)."""
    from ganedit.errors import ProvenanceError

    what = f"an e4e checkpoint whose decoder is {source.identity['name']!r}"
    if decoder is None:
        raise ProvenanceError(
            f"expected {what}, received {name!r} with no decoder to check the pairing against"
        )
    mine = dict(getattr(source, "generator", torch.nn.Identity()).named_parameters())
    theirs = dict(decoder.named_parameters())
    differ = sorted(set(mine) ^ set(theirs)) or [
        k for k in sorted(mine) if not _close(mine[k], theirs[k])
    ]
    if differ:
        raise ProvenanceError(
            f"expected {what}, received {name!r}, whose decoder differs (first: {differ[0]})"
        )


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.detach().cpu(), b.detach().cpu()
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-7)
