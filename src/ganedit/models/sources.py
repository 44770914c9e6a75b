"""One generator interface over several sources (`GeneratorSource`).

Every source says which latent spaces it has (`z` only, or `z`/`w`/`ws`), its z dimension and
image resolution, draws z with `sample_z(n, seed)` (sample i depends only on (seed, i)), and
synthesises images [N, 3, H, W] in [-1, 1] from any of its spaces, in batches, on its device.
Each source also carries its `identity` (name and sha256 of its weights), which latent banks
and boundary files record so that artefacts of different generators are never mixed silently.

Registered names: `world64` (the embedded default), `world64-v1` (its predecessor, kept because
earlier studies were measured on it), `dcgan-digiface` (optional package), a StyleGAN2-pytorch
`.pt` path, an NVIDIA StyleGAN2-ADA `.pkl` path (read without running it), an InterFaceGAN
PGGAN or StyleGAN `.pth` path (`ganedit.models.pggan`, `ganedit.models.stylegan1`), or a
ganedit model folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch

from ganedit.errors import UserInputError
from ganedit.models import registry
from ganedit.utils import rng
from ganedit.utils.bounded import describe_keys
from ganedit.utils.device import resolve_device
from ganedit.utils.progress import progress_bar

if TYPE_CHECKING:
    from ganedit.models.stylegan1 import StyleGAN1Source

SPACES = ("z", "w", "ws")


def sample_z(n: int, z_dim: int, seed: int, start: int = 0) -> torch.Tensor:
    """Standard normal z [n, z_dim]; row i depends only on (seed, start + i)."""
    index = np.arange(start, start + n, dtype=np.int64)[:, None] * z_dim + np.arange(z_dim)[None]
    return torch.from_numpy(rng.normal(seed, index, stream=17).astype(np.float32))


@runtime_checkable
class GeneratorSource(Protocol):
    """What every generator source offers (StyleGAN2 in z/w/ws, z-only generators, ...)."""

    name: str
    spaces: tuple[str, ...]

    @property
    def z_dim(self) -> int: ...

    @property
    def resolution(self) -> int: ...

    @property
    def identity(self) -> dict: ...

    def sample_z(self, n: int, seed: int, start: int = 0) -> torch.Tensor: ...

    def to_w(self, z: torch.Tensor) -> torch.Tensor: ...

    def to_ws(self, latents: torch.Tensor, space: str) -> torch.Tensor: ...

    def synthesize(
        self,
        latents: torch.Tensor,
        space: str = "z",
        batch_size: int = 64,
        progress: bool = False,
        modes: torch.Tensor | None = None,
    ) -> torch.Tensor: ...

    def render(
        self,
        latents: torch.Tensor,
        space: str = "z",
        noise: list[torch.Tensor] | None = None,
        modes: torch.Tensor | None = None,
    ) -> torch.Tensor: ...

    def make_noise(
        self, n: int = 1, mode: str = "const", generator: torch.Generator | None = None
    ) -> list[torch.Tensor]: ...


class _BatchedSource:
    """The one batched-synthesis loop every source shares; subclasses render one batch."""

    name: str
    spaces: tuple[str, ...]
    weights_sha256: str | None

    @property
    def identity(self) -> dict:
        """{"name", "sha256"}: what boundaries and banks record about their generator; a
        generator tuned from another (pivotal tuning) adds "parent", the parent's identity."""
        identity = {"name": self.name, "sha256": self.weights_sha256}
        parent = getattr(self, "parent", None)
        return identity if parent is None else {**identity, "parent": parent}

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def sample_z(self, n: int, seed: int, start: int = 0) -> torch.Tensor:
        return sample_z(n, self.z_dim, seed, start)

    def check_space(self, space: str) -> None:
        if space not in self.spaces:
            raise UserInputError(
                f"expected a latent space of {self.name} in {self.spaces}, received {space!r}"
            )

    @property
    def mode_attributes(self) -> list[str]:
        """A self-conditioned generator's mode attributes; [] for any other."""
        return list(getattr(self.generator, "mode_attributes", None) or [])

    def mode_settings(self, values) -> dict[str, float]:
        """{"smile": 0.9, ...} from ["smile=0.9", ...], checked against this generator's
        mode attributes (refused for a generator without modes)."""
        from ganedit.models.modes import parse_mode_settings

        if not self.mode_attributes:
            raise UserInputError(
                f"expected a self-conditioned generator for --mode, received {self.name} "
                "(it has no modes)"
            )
        return parse_mode_settings(values, self.mode_attributes)

    @torch.no_grad()
    def synthesize(
        self,
        latents: torch.Tensor,
        space: str = "z",
        batch_size: int = 64,
        progress: bool = False,
        modes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images [N, 3, H, W] in [-1, 1] on the CPU from latents in `space`, batch by batch.
        `modes`: a self-conditioned generator's mode vectors, [1, M] for all or [N, M]."""
        self.check_space(space)
        if batch_size < 1:
            raise UserInputError(f"expected a batch size >= 1, received {batch_size}")
        modes = self._check_modes(modes, len(latents))
        parts = []
        with progress_bar(len(latents), "synthesise", progress) as bar:
            for i in range(0, len(latents), batch_size):
                batch = torch.as_tensor(latents[i : i + batch_size]).to(self.device)
                part = (
                    None
                    if modes is None
                    else modes[i : i + batch_size]
                    if len(modes) > 1
                    else modes
                )
                parts.append(self._render(batch, space, modes=part).clamp(-1, 1).cpu())
                bar.advance(len(batch))
        if not parts:
            return torch.zeros(0, 3, self.resolution, self.resolution)
        return torch.cat(parts)

    def render(
        self,
        latents: torch.Tensor,
        space: str = "z",
        noise: list[torch.Tensor] | None = None,
        modes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The differentiable path: images [N, 3, H, W] from latents in `space`, on the
        source's device, with autograd as the caller has it, not clamped (an optimisation
        must see past [-1, 1]), in one batch. `noise`: explicit noise maps from
        `make_noise` (sources without noise inputs take none); default: the source's
        noise mode. `modes` as in `synthesize`."""
        self.check_space(space)
        modes = self._check_modes(modes, len(latents))
        return self._render(latents.to(self.device), space, noise, modes)

    def _check_modes(self, modes, n: int) -> torch.Tensor | None:
        """Mode vectors [1 or n, M] on the source's device, or None; refused for a
        generator without modes."""
        if modes is None:
            return None
        attributes = self.mode_attributes
        if not attributes:
            raise UserInputError(
                f"expected a self-conditioned generator for modes, received {self.name} "
                "(it has none)"
            )
        modes = torch.as_tensor(modes, dtype=torch.float32)
        m = 1 + 3 * len(attributes)
        if modes.ndim != 2 or modes.shape[1] != m or modes.shape[0] not in (1, n):
            raise UserInputError(
                f"expected mode vectors of shape [1 or {n}, {m}] for {self.name}, received "
                f"{tuple(modes.shape)}"
            )
        return modes.to(self.device)

    def make_noise(
        self, n: int = 1, mode: str = "const", generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Noise maps for `render(noise=...)`; [] for a source without noise inputs."""
        return []

    def _render(
        self,
        latents: torch.Tensor,
        space: str,
        noise: list[torch.Tensor] | None = None,
        modes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        raise NotImplementedError


@dataclass(eq=False)
class StyleGANSource(_BatchedSource):
    """A StyleGAN2 generator: spaces z, w and ws."""

    generator: torch.nn.Module
    name: str
    truncation_psi: float = 1.0
    noise_mode: str = "const"
    spaces: tuple[str, ...] = ("z", "w", "ws")
    weights_sha256: str | None = None
    parent: dict | None = None  # the generator this one was tuned from (its identity)
    modes: torch.Tensor | None = None  # a self-conditioned generator's default modes [1, M]

    def __post_init__(self):
        check_truncation(self.truncation_psi)

    def with_modes(self, settings: dict[str, float]) -> StyleGANSource:
        """This source rendering every sample at the given modes ({"smile": 0.9, ...}; the
        other attributes neutral) unless a call passes its own."""
        from ganedit.models.modes import NEUTRAL, mode_targets, mode_vector

        attributes = self.mode_attributes
        if not attributes:
            raise UserInputError(
                f"expected a self-conditioned generator for modes, received {self.name} "
                "(it has none)"
            )
        t = mode_targets(torch.full((1, len(attributes)), NEUTRAL), settings, attributes)
        return dataclasses.replace(self, modes=mode_vector(t, for_generator=True))

    def at_modes(self, modes: torch.Tensor) -> StyleGANSource:
        """This source rendering at the given mode vectors [1 or N, M] (generator form) unless
        a call passes its own: [N, M] pairs row i with latent i of every call (one batch of N
        images, as an inversion of N images renders them)."""
        checked = self._check_modes(modes, len(modes))
        return dataclasses.replace(self, modes=checked)

    @property
    def z_dim(self) -> int:
        return self.generator.z_dim

    @property
    def resolution(self) -> int:
        return self.generator.img_resolution

    @torch.no_grad()
    def to_w(self, z: torch.Tensor) -> torch.Tensor:  # [N, z_dim] -> [N, w_dim]
        """The w that synthesis from `z` uses (truncated like it), so `w` reproduces the image."""
        return self.to_ws(z, "z")[:, 0]

    @torch.no_grad()
    def to_ws(self, latents: torch.Tensor, space: str) -> torch.Tensor:  # -> [N, num_ws, w_dim]
        return self._to_ws(latents, space)

    def _to_ws(self, latents: torch.Tensor, space: str) -> torch.Tensor:
        # With autograd as the caller has it: `render` differentiates through the mapping.
        self.check_space(space)
        g = self.generator
        latents = torch.as_tensor(latents).to(g.w_avg.device)
        if space == "z":
            return g.mapping(latents, truncation_psi=self.truncation_psi)
        if space == "w":
            return latents[:, None, :].expand(-1, g.num_ws, -1)
        return latents

    @property
    def w_avg(self) -> torch.Tensor:  # [w_dim]
        return self.generator.w_avg

    def make_noise(
        self, n: int = 1, mode: str = "const", generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Per-layer noise maps [n, 1, r, r]: the stored ones ("const"), fresh ("random",
        from `generator`) or zeros ("none")."""
        return self.generator.make_noise(n, mode, generator)

    def _render(
        self,
        latents: torch.Tensor,
        space: str,
        noise: list[torch.Tensor] | None = None,
        modes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        ws = self._to_ws(latents, space)
        if modes is None and self.modes is not None:
            modes = self.modes.to(ws.device)
        return self.generator.synthesis(ws, noise_mode=self.noise_mode, noise=noise, modes=modes)


@dataclass(eq=False)
class ZOnlySource(_BatchedSource):
    """A generator with only a z space (e.g. a DCGAN)."""

    generator: torch.nn.Module
    name: str
    z_dim: int
    resolution: int
    spaces: tuple[str, ...] = ("z",)
    weights_sha256: str | None = None

    def to_w(self, z: torch.Tensor) -> torch.Tensor:
        raise UserInputError(f"expected a generator with a w space, received {self.name} (z only)")

    def to_ws(self, latents: torch.Tensor, space: str) -> torch.Tensor:
        raise UserInputError(f"expected a generator with a ws space, received {self.name} (z only)")

    def _render(
        self,
        latents: torch.Tensor,
        space: str,
        noise: list[torch.Tensor] | None = None,
        modes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if noise:
            raise UserInputError(f"expected no noise maps for {self.name}, received {len(noise)}")
        return self.generator(latents)


def check_truncation(psi: float) -> None:
    ok = isinstance(psi, int | float) and math.isfinite(psi) and 0 <= psi <= 1
    if not ok:
        raise UserInputError(f"expected a truncation psi in [0, 1], received {psi!r}")


# ------------------------------------------------------------------------------------------
# Loading


_SHA_CACHE: dict[tuple, str] = {}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (cached per path, size and modification time)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def load_generator(
    name_or_path: str | Path, device: str | torch.device = "cpu", truncation_psi: float = 1.0
) -> StyleGANSource | ZOnlySource | StyleGAN1Source:
    """Resolve a registered name, a StyleGAN2-pytorch `.pt` file, an NVIDIA StyleGAN2-ADA
    `.pkl` file (its `G_ema`), an InterFaceGAN PGGAN or StyleGAN `.pth` state dict or a
    ganedit model folder."""
    device = resolve_device(device)
    check_truncation(truncation_psi)
    text = str(name_or_path)
    if text == "dcgan-digiface":
        from ganedit.models.dcgan import load_dcgan_digiface, weights_path

        g = load_dcgan_digiface(device)
        return ZOnlySource(
            g, text, z_dim=100, resolution=64, weights_sha256=file_sha256(weights_path())
        )
    if text in registry.EMBEDDED_GENERATORS:
        folder = registry.weights_dir(text)
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
        return _stylegan_from_file(path, loaded["g_ema"], loaded.get("latent_avg"), truncation_psi)
    if path.suffix == ".pkl":
        from ganedit.models.stylegan2 import load_nvidia_pickle

        _scan_nvidia_pickle(path)
        loaded = load_nvidia_pickle(path, device=device)
        return _stylegan_from_file(path, loaded["generator"], loaded["w_avg"], truncation_psi)
    if path.suffix == ".pth":
        return _interfacegan_from_file(path, device, truncation_psi)
    if path.is_dir():
        return _stylegan_from_folder(path, path.name, device, truncation_psi)
    raise UserInputError(
        f"expected a generator name {registry.GENERATOR_NAMES}, a StyleGAN2-pytorch .pt file, "
        f"an NVIDIA StyleGAN2-ADA .pkl, an InterFaceGAN .pth or a model folder, received {text!r}"
    )


def _scan_nvidia_pickle(path: Path) -> None:
    """`scan_pickle`'s bounds on an NVIDIA `.pkl` before its reader unpickles it (nesting,
    memo expansion, zero-stride tensor views). The reader itself is to call it too; until it
    does, this keeps `-g x.pkl` from crashing on a hostile file."""
    from ganedit.utils.bounded import scan_pickle

    if path.is_file():
        with open(path, "rb") as fh:
            scan_pickle(fh, what="an NVIDIA StyleGAN2-ADA network pickle", where=repr(str(path)))


def _stylegan_from_file(
    path: Path, g: torch.nn.Module, w_avg: torch.Tensor | None, truncation_psi: float
) -> StyleGANSource:
    """A `.pt` or `.pkl` generator as a source named by the file (its bytes' sha256); a file
    without a mean w gets that of 10,000 seeded samples, so truncation works."""
    if w_avg is None:
        g.update_w_avg(generator=torch.Generator(device=g.w_avg.device).manual_seed(0))
    return StyleGANSource(g.eval(), path.name, truncation_psi, weights_sha256=file_sha256(path))


def _interfacegan_from_file(
    path: Path, device: torch.device, truncation_psi: float
) -> ZOnlySource | StyleGAN1Source:
    """An InterFaceGAN `.pth` (a plain state dict), told apart by its keys: PGGAN (z only, so
    truncation does not apply) or StyleGAN v1 (psi on its first 8 layers, as InterFaceGAN)."""
    from ganedit.models import pggan, stylegan1

    state = _read_state_dict(path, "an InterFaceGAN PGGAN or StyleGAN state dict (.pth)")
    sha = file_sha256(path)
    if stylegan1.is_stylegan1_state(state):
        g = stylegan1.stylegan1_from_state(state).to(device)
        return stylegan1.StyleGAN1Source(g, path.name, truncation_psi, weights_sha256=sha)
    if pggan.is_pggan_state(state):
        if truncation_psi != 1:
            raise UserInputError(
                f"expected truncation psi 1 for the PGGAN {path.name} (z only: no w space to "
                f"truncate in), received {truncation_psi}"
            )
        g = pggan.pggan_from_state(state).to(device)
        return pggan.PGGANSource(g, path.name, g.z_dim, g.img_resolution, weights_sha256=sha)
    raise UserInputError(
        f"expected InterFaceGAN's PGGAN keys (layer1.conv.weight, output_RxR.*) or StyleGAN keys "
        f"(mapping.dense0.*, synthesis.layer0.first_layer) in {str(path)!r}, received "
        f"{describe_keys(state)}"
    )


def _read_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A `.pth` holding one flat dict of finite tensors, read with weights_only (one line on
    anything else: a missing file, pickled objects, damage, NaN weights)."""
    from ganedit.models.io import safe_torch_load
    from ganedit.utils.arrays import check_finite

    if not path.is_file():
        kind = "a folder" if path.is_dir() else "no such file"
        raise UserInputError(f"expected {what}, received {str(path)!r} ({kind})")
    state = safe_torch_load(path, what)
    ok = isinstance(state, dict) and bool(state)
    ok = ok and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    if not ok:
        raise UserInputError(
            f"expected {what} of named tensors in {str(path)!r}, received {describe_keys(state)}"
        )
    for key, tensor in state.items():
        if tensor.is_floating_point():
            check_finite(tensor.float().numpy(), f"{path.name}: {key}")
    return dict(state)


def generator_identity(name_or_path: str | Path) -> dict:
    """{"name", "sha256"} of a generator source, from its weights file (nothing is built)."""
    text = str(name_or_path)
    if text == "dcgan-digiface":
        from ganedit.models.dcgan import weights_path

        return {"name": text, "sha256": file_sha256(weights_path())}
    if text in registry.EMBEDDED_GENERATORS:
        return {
            "name": text,
            "sha256": file_sha256(registry.weights_dir(text) / "model.safetensors"),
        }
    path = Path(text)
    if path.suffix in (".pt", ".pkl", ".pth") and path.is_file():
        return {"name": path.name, "sha256": file_sha256(path)}
    if path.is_dir() and (path / "model.safetensors").is_file():
        return {"name": path.name, "sha256": file_sha256(path / "model.safetensors")}
    raise UserInputError(
        f"expected a generator name {registry.GENERATOR_NAMES}, a StyleGAN2-pytorch .pt file, "
        f"an NVIDIA StyleGAN2-ADA .pkl, an InterFaceGAN .pth or a model folder, received {text!r}"
    )


def _stylegan_from_folder(folder: Path, name: str, device, truncation_psi: float) -> StyleGANSource:
    model = registry.load_pretrained(folder, device, expect=("stylegan2-generator",))
    sha = file_sha256(folder / "model.safetensors")
    parent = _tuned_from(folder)
    return StyleGANSource(model, name, truncation_psi, weights_sha256=sha, parent=parent)


def _tuned_from(folder: Path) -> dict | None:
    """The parent identity a pivotal-tuning folder records ({"name", "sha256"}), if any."""
    from ganedit.models.io import read_config

    parent = (read_config(folder).get("pti") or {}).get("parent")
    if isinstance(parent, dict) and isinstance(parent.get("sha256"), str):
        return {"name": str(parent.get("name")), "sha256": parent["sha256"]}
    return None
