"""One generator interface over several sources.

Every source says which latent spaces it has (`z` only, or `z`/`w`/`ws`), its z dimension,
draws z with `sample_z(n, seed)` (sample i depends only on (seed, i)), and synthesises
images [N, 3, H, W] in [-1, 1] from any of its spaces, in batches, on any device.

Registered names: `world64` (the embedded default), `world64-v1` (its predecessor, kept because
the committed directions study was measured on it), `dcgan-digiface` (optional package), a
StyleGAN2-pytorch `.pt` path, or a ganedit model folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ganedit.errors import UserInputError
from ganedit.utils import rng

EMBEDDED = ("world64", "world64-v1")
GENERATOR_NAMES = EMBEDDED + ("dcgan-digiface",)


def sample_z(n: int, z_dim: int, seed: int, start: int = 0) -> torch.Tensor:
    """Standard normal z [n, z_dim]; row i depends only on (seed, start + i)."""
    index = np.arange(start, start + n, dtype=np.int64)[:, None] * z_dim + np.arange(z_dim)[None]
    return torch.from_numpy(rng.normal(seed, index, stream=17).astype(np.float32))


@dataclass
class StyleGANSource:
    """A StyleGAN2 generator: spaces z, w and ws."""

    generator: torch.nn.Module
    name: str
    truncation_psi: float = 1.0
    noise_mode: str = "const"
    spaces: tuple[str, ...] = ("z", "w", "ws")

    @property
    def z_dim(self) -> int:
        return self.generator.z_dim

    @property
    def resolution(self) -> int:
        return self.generator.img_resolution

    def sample_z(self, n: int, seed: int, start: int = 0) -> torch.Tensor:
        return sample_z(n, self.z_dim, seed, start)

    @torch.no_grad()
    def to_w(self, z: torch.Tensor) -> torch.Tensor:  # [N, z_dim] -> [N, w_dim]
        """The w that synthesis from `z` uses (truncated like it), so `w` reproduces the image."""
        return self.to_ws(z, "z")[:, 0]

    @torch.no_grad()
    def to_ws(self, latents: torch.Tensor, space: str) -> torch.Tensor:  # -> [N, num_ws, w_dim]
        g = self.generator
        device = g.w_avg.device
        if space == "z":
            return g.mapping(latents.to(device), truncation_psi=self.truncation_psi)
        if space == "w":
            return latents.to(device)[:, None, :].expand(-1, g.num_ws, -1)
        return latents.to(device)

    @torch.no_grad()
    def synthesize(
        self, latents: torch.Tensor, space: str = "z", batch_size: int = 64
    ) -> torch.Tensor:
        _check_space(self, space)
        out = [
            self.generator.synthesis(
                self.to_ws(latents[i : i + batch_size], space), noise_mode=self.noise_mode
            )
            .clamp(-1, 1)
            .cpu()
            for i in range(0, len(latents), batch_size)
        ]
        return torch.cat(out)


@dataclass
class ZOnlySource:
    """A generator with only a z space (e.g. a DCGAN)."""

    generator: torch.nn.Module
    name: str
    z_dim: int
    resolution: int
    spaces: tuple[str, ...] = ("z",)

    def sample_z(self, n: int, seed: int, start: int = 0) -> torch.Tensor:
        return sample_z(n, self.z_dim, seed, start)

    @torch.no_grad()
    def synthesize(
        self, latents: torch.Tensor, space: str = "z", batch_size: int = 64
    ) -> torch.Tensor:
        _check_space(self, space)
        device = next(self.generator.parameters()).device
        out = [
            self.generator(latents[i : i + batch_size].to(device)).clamp(-1, 1).cpu()
            for i in range(0, len(latents), batch_size)
        ]
        return torch.cat(out)


def _check_space(source, space: str) -> None:
    if space not in source.spaces:
        raise UserInputError(
            f"expected a latent space of {source.name} in {source.spaces}, received {space!r}"
        )


def load_generator(
    name_or_path: str | Path, device: str | torch.device = "cpu", truncation_psi: float = 1.0
) -> StyleGANSource | ZOnlySource:
    """Resolve a registered name, a StyleGAN2-pytorch `.pt` file or a ganedit model folder."""
    text = str(name_or_path)
    if text == "dcgan-digiface":
        from ganedit.models.dcgan import load_dcgan_digiface

        return ZOnlySource(load_dcgan_digiface(device), text, z_dim=100, resolution=64)
    if text in EMBEDDED:
        folder = Path(str(resources.files("ganedit").joinpath(f"data/weights/{text}")))
        if not (folder / "model.safetensors").is_file():
            raise UserInputError(
                f"expected the embedded generator {text!r} in {folder}, received no weights "
                "(it is not shipped yet; train one with `ganedit train-gan`, see docs/stylegan2.md)"
            )
        return _stylegan_from_folder(folder, text, device, truncation_psi)
    path = Path(text)
    if path.suffix == ".pt":
        from ganedit.models.stylegan2 import load_rosinality_checkpoint

        loaded = load_rosinality_checkpoint(path, device=device)
        g = loaded["g_ema"]
        if loaded.get("latent_avg") is None:
            g.update_w_avg(generator=torch.Generator(device=g.w_avg.device).manual_seed(0))
        return StyleGANSource(g.to(device).eval(), path.name, truncation_psi)
    if path.is_dir():
        return _stylegan_from_folder(path, path.name, device, truncation_psi)
    raise UserInputError(
        f"expected a generator name {GENERATOR_NAMES}, a StyleGAN2-pytorch .pt file or a model folder, "
        f"received {text!r}"
    )


def _stylegan_from_folder(folder: Path, name: str, device, truncation_psi: float) -> StyleGANSource:
    from ganedit.models.io import load_pretrained

    model = load_pretrained(folder, device)
    if not hasattr(model, "mapping"):
        raise UserInputError(
            f"expected a generator in {str(folder)!r}, received a {type(model).__name__}"
        )
    return StyleGANSource(model, name, truncation_psi)
