"""One generator interface over several sources (`GeneratorSource`).

Every source says which latent spaces it has (`z` only, or `z`/`w`/`ws`), its z dimension and
image resolution, draws z with `sample_z(n, seed)` (sample i depends only on (seed, i)), and
synthesises images [N, 3, H, W] in [-1, 1] from any of its spaces, in batches, on its device.
Each source also carries its `identity` (name and sha256 of its weights), which latent banks
and boundary files record so that artefacts of different generators are never mixed silently.

Registered names: `world64` (the embedded default), `world64-v1` (its predecessor, kept because
earlier studies were measured on it), `world64-sc` (self-conditioned) and `world64-sc-v1` (its
collapsed predecessor, kept for the same reason), `dcgan-digiface` (optional package), a StyleGAN2-pytorch
`.pt` path, an NVIDIA StyleGAN2-ADA `.pkl` path or a TensorFlow PGGAN/StyleGAN/StyleGAN2 one
(both read without running them, `ganedit.models.tf_pickle`), an InterFaceGAN
PGGAN or StyleGAN `.pth` path (`ganedit.models.pggan`, `ganedit.models.stylegan1`), or a
ganedit model folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch

from ganedit.errors import UserInputError
from ganedit.models import registry
from ganedit.models.formats import format_of, generator_forms
from ganedit.models.modes import MODE_PRIOR, ModeLayout, draw_coordinates, load_mode_prior
from ganedit.utils import rng
from ganedit.utils.device import resolve_device
from ganedit.utils.progress import progress_bar

if TYPE_CHECKING:
    from ganedit.models.stylegan1 import StyleGAN1Source

log = logging.getLogger(__name__)

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

    @property
    def mode_layout(self) -> ModeLayout | None:
        """A self-conditioned generator's mode layout; None for any other."""
        attributes = self.mode_attributes
        return ModeLayout(attributes) if attributes else None

    def require_modes(self, what: str = "modes") -> ModeLayout:
        """The mode layout, refused (naming `what` needed it) for a generator without modes."""
        layout = self.mode_layout
        if layout is None:
            raise UserInputError(
                f"expected a self-conditioned generator for {what}, received {self.name} "
                "(it has no modes)"
            )
        return layout

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
        `modes`: a self-conditioned generator's mode vectors (generator form, `ModeLayout`),
        [1, M] for all or [N, M] one per latent; the one way a source takes modes."""
        self.check_space(space)
        if batch_size < 1:
            raise UserInputError(f"expected a batch size >= 1, received {batch_size}")
        modes = self.check_modes(modes, len(latents))
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
        modes = self.check_modes(modes, len(latents))
        return self._render(latents.to(self.device), space, noise, modes)

    def check_modes(self, modes, n: int) -> torch.Tensor | None:
        """Mode vectors [1 or n, M] on the source's device, or None; refused for a
        generator without modes."""
        if modes is None:
            return None
        m = self.require_modes().num_modes
        modes = torch.as_tensor(modes, dtype=torch.float32)
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


class _MappedSource(_BatchedSource):
    """What the sources of style-based generators share (StyleGAN2 here, StyleGAN v1 in
    `ganedit.models.stylegan1`): a generator with a mapping to ws (`_to_ws`, differentiable),
    its average w and per-layer noise maps."""

    @property
    def z_dim(self) -> int:
        return self.generator.z_dim

    @property
    def resolution(self) -> int:
        return self.generator.img_resolution

    @property
    def w_avg(self) -> torch.Tensor:  # [w_dim]
        return self.generator.w_avg

    @torch.no_grad()
    def to_ws(self, latents: torch.Tensor, space: str) -> torch.Tensor:  # -> [N, num_ws, w_dim]
        return self._to_ws(latents, space)

    def make_noise(
        self, n: int = 1, mode: str = "const", generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Per-layer noise maps [n, 1, r, r]: the stored ones ("const"), fresh ("random",
        from `generator`) or zeros ("none")."""
        return self.generator.make_noise(n, mode, generator)


@dataclass(eq=False)
class StyleGANSource(_MappedSource):
    """A StyleGAN2 generator: spaces z, w and ws.

    A class-conditional generator (`generator.c_dim` > 0, e.g. a conditional StyleGAN2-ADA
    pickle) renders one class, `class_index`, chosen when the source is made (`with_class`,
    `load_generator(class_index=...)`, `--class`): its z map through the one-hot label of
    that class, and its identity records {"class": k}, so artefacts of different classes are
    told apart. Its w and ws spaces need no label.
    """

    generator: torch.nn.Module
    name: str
    truncation_psi: float = 1.0
    noise_mode: str = "const"
    spaces: tuple[str, ...] = ("z", "w", "ws")
    weights_sha256: str | None = None
    parent: dict | None = None  # the generator this one was tuned from (its identity)
    class_index: int | None = None  # the class a class-conditional generator renders
    named_modes: bool = False  # the user named a .pt's modes (load_generator's mode_names)

    def __post_init__(self):
        check_truncation(self.truncation_psi)

    @property
    def identity(self) -> dict:
        """{"name", "sha256"} (and "parent", see `_BatchedSource`), with "class" for a
        class-conditional generator's source."""
        identity = super().identity
        if self.class_index is not None:
            identity["class"] = self.class_index
        if self.named_modes:  # names the user gave a .pt's modes: part of what codes mean
            identity["mode_names"] = self.mode_attributes
        return identity

    @property
    def c_dim(self) -> int:
        """The label width of a class-conditional generator; 0 for any other."""
        return int(getattr(self.generator, "c_dim", 0) or 0)

    def with_class(self, class_index: int | None) -> StyleGANSource:
        """This source rendering class `class_index`, which a class-conditional generator
        needs (an index in [0, c_dim)) and any other refuses."""
        check_class(self, class_index)
        return self if class_index is None else dataclasses.replace(self, class_index=class_index)

    @torch.no_grad()
    def to_w(self, z: torch.Tensor) -> torch.Tensor:  # [N, z_dim] -> [N, w_dim]
        """The w that synthesis from `z` uses (truncated like it), so `w` reproduces the image."""
        return self.to_ws(z, "z")[:, 0]

    def _to_ws(self, latents: torch.Tensor, space: str) -> torch.Tensor:
        # With autograd as the caller has it: `render` differentiates through the mapping.
        self.check_space(space)
        g = self.generator
        latents = torch.as_tensor(latents).to(g.w_avg.device)
        if space == "z":
            c = None if self.class_index is None else g.one_hot(self.class_index, len(latents))
            return g.mapping(latents, truncation_psi=self.truncation_psi, c=c)
        if space == "w":
            return latents[:, None, :].expand(-1, g.num_ws, -1)
        return latents

    def _render(
        self,
        latents: torch.Tensor,
        space: str,
        noise: list[torch.Tensor] | None = None,
        modes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        ws = self._to_ws(latents, space)
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


def _check_mode_names(source, mode_names: Sequence[str] | None) -> None:
    """`mode_names` only name a `.pt`'s unnamed modes; anywhere else they must be the names
    the generator already has (a model folder records them)."""
    if not mode_names or getattr(source, "named_modes", False):
        return
    have = source.mode_attributes
    if list(mode_names) != have:
        held = f"modes named {','.join(have)}" if have else "no modes"
        raise UserInputError(
            f"expected --mode-names only for a self-conditioned StyleGAN2-pytorch .pt (SC-GAN; "
            f"its layout does not name its modes), received {','.join(mode_names)} for "
            f"{source.name}, which has {held}"
        )


def check_class(source, class_index: int | None) -> None:
    """A class index for a class-conditional generator (required, in [0, c_dim)); none for
    any other generator."""
    c_dim = int(getattr(source, "c_dim", 0) or 0)
    if not c_dim:
        if class_index is not None:
            raise UserInputError(
                f"expected a class-conditional generator for --class, received {source.name} "
                f"(unconditional) with class {class_index}"
            )
        return
    ok = type(class_index) is int and 0 <= class_index < c_dim
    if not ok:
        raise UserInputError(
            f"expected a class index in [0, {c_dim - 1}] for the class-conditional generator "
            f"{source.name} (--class of sample, generate and edit), received "
            f"{'none' if class_index is None else class_index}"
        )


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
    name_or_path: str | Path,
    device: str | torch.device = "cpu",
    truncation_psi: float = 1.0,
    class_index: int | None = None,
    mode_names: Sequence[str] | None = None,
) -> StyleGANSource | ZOnlySource | StyleGAN1Source:
    """Resolve a registered name, a StyleGAN2-pytorch `.pt` file, an NVIDIA StyleGAN2-ADA
    `.pkl` file (its `G_ema`), a TensorFlow PGGAN, StyleGAN or StyleGAN2 `.pkl` (its `Gs`),
    an InterFaceGAN PGGAN or StyleGAN `.pth` state dict or a
    ganedit model folder. `class_index`: the class a class-conditional generator renders
    (required for one, refused for any other). `mode_names`: the k attribute names of a
    self-conditioned (SC-GAN) `.pt`, whose layout does not name its modes (they are
    attribute_1..k otherwise); recorded in the source's identity."""
    source = _resolve_generator(name_or_path, device, truncation_psi, mode_names)
    _check_mode_names(source, mode_names)
    if isinstance(source, StyleGANSource):
        return source.with_class(class_index)
    check_class(source, class_index)
    return source


def _resolve_generator(
    name_or_path: str | Path,
    device: str | torch.device = "cpu",
    truncation_psi: float = 1.0,
    mode_names: Sequence[str] | None = None,
) -> StyleGANSource | ZOnlySource | StyleGAN1Source:
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
    fmt = format_of(path)
    if fmt is None:
        raise UserInputError(
            f"expected a generator: {generator_forms(registry.GENERATOR_NAMES)}, received {text!r}"
        )
    return fmt.load(path, device, truncation_psi, mode_names)


def load_pt_file(path: Path, device, truncation_psi: float, mode_names=None) -> StyleGANSource:
    """A StyleGAN2-pytorch (or SC-GAN) checkpoint's `g_ema`; `mode_names` name an SC-GAN's
    modes, which its layout leaves unnamed."""
    from ganedit.models.stylegan2 import load_rosinality_checkpoint

    names = list(mode_names) if mode_names else None
    loaded = load_rosinality_checkpoint(path, device=device, mode_attributes=names)
    source = _stylegan_from_file(path, loaded["g_ema"], loaded.get("latent_avg"), truncation_psi)
    return dataclasses.replace(source, named_modes=bool(names and source.mode_attributes))


def load_ada_file(path: Path, device, truncation_psi: float, mode_names=None) -> StyleGANSource:
    """An NVIDIA StyleGAN2-ADA pickle's `G_ema`."""
    from ganedit.models.stylegan2 import load_nvidia_pickle

    loaded = load_nvidia_pickle(path, device=device)
    return _stylegan_from_file(path, loaded["generator"], loaded["w_avg"], truncation_psi)


def load_model_folder(path: Path, device, truncation_psi: float, mode_names=None):
    return _stylegan_from_folder(path, path.name, device, truncation_psi)


def _stylegan_from_file(
    path: Path, g: torch.nn.Module, w_avg: torch.Tensor | None, truncation_psi: float
) -> StyleGANSource:
    """A `.pt` or `.pkl` generator as a source named by the file (its bytes' sha256); a file
    without a mean w gets that of 10,000 seeded samples, so truncation works."""
    if w_avg is None:
        g.update_w_avg(generator=torch.Generator(device=g.w_avg.device).manual_seed(0))
    return StyleGANSource(g.eval(), path.name, truncation_psi, weights_sha256=file_sha256(path))


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
    fmt = format_of(path)
    weights = fmt.weights(path) if fmt is not None else None
    if weights is None or not weights.is_file():
        raise UserInputError(
            f"expected a generator: {generator_forms(registry.GENERATOR_NAMES)}, received {text!r}"
        )
    return {"name": path.name, "sha256": file_sha256(weights)}


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


def sample_coordinates(source, generator, how: str | None, n: int, seed: int, start: int = 0):
    """How samples start, ..., start + n - 1 have their modes drawn ("data", "neutral",
    "uniform") and their anchor coordinates [n, k]; (None, None) for a generator without
    modes. Unless told (`how`), a self-conditioned model folder that ships its data's modes
    (`mode-prior.json`) is sampled there, else at the neutral mode. Sample i depends only on
    (seed, i): it is the face `sample` draws as its row i, where an edit of that face starts,
    and the modes `generate` renders row i of a bank at."""
    layout = source.mode_layout
    if layout is None:
        if how is not None:
            raise UserInputError(
                f"expected a self-conditioned generator for --modes, received {source.name} "
                "(it has no modes)"
            )
        return None, None
    prior = load_mode_prior(registry.generator_folder(generator), layout)
    if how is None:
        how = "neutral" if prior is None else "data"
        if prior is None:
            log.info("%s ships no %s: samples are drawn at the neutral mode", generator, MODE_PRIOR)
    return how, draw_coordinates(how, n, seed + 1, layout, prior, start)


def sample_mode_vectors(source, generator, how: str | None, settings: dict, n: int, seed: int):
    """`sample_coordinates` as the generator's mode vectors [n, M] (None: the source's
    default), with `settings` ({"smile": 1.0}) fixed on top of each sample's own modes."""
    how, t = sample_coordinates(source, generator, how, n, seed)
    if t is None:
        return None, None
    layout = source.mode_layout
    return how, layout.generator_vector(layout.targets(t, settings))
