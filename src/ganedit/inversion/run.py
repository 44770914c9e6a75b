"""`ganedit invert`: images in, latent codes (and tuned generators) out, with their metrics.

Output folder (written under a temporary name and renamed when complete):
- `latents.npy` [N, num_ws, w_dim] (`ws`; `z` [N, z_dim] for z-only sources), usable as
  `ganedit edit --latents ... --space ws`, and `latents.json`, its provenance (generator name
  and weights sha256, space, method), which `edit` checks; `latents.pt`, the same codes as
  the tensor file e4e's inference script writes;
- per image i: `{i:05d}.npy` (its code, [1, ...]), `{i:05d}.json` (source file, method,
  metrics; the code's provenance sidecar) and `{i:05d}.png` (input and
  reconstruction, labelled); with `pti`, `{i:05d}_generator/`, the tuned generator (a model
  folder loadable with `-g`, its parent and the image recorded in its config.json);
- `reconstructions.png` (every input above its reconstruction), `config.json` (the resolved
  settings) and `summary.json` (metrics per image and their medians).

A self-conditioned generator inverts each image at the image's own modes (SC-GAN's B8, B9):
read from the image by the generator's mode reader (`--modes read`, the fine-tune's
discriminator) or neutral (`--modes neutral`). The projector optimises the code, the
encoder's code is decoded, and PTI tunes, at those modes; `modes.npy` [N, k] holds the
anchor coordinates, and latents.json records them, so `edit` starts from them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganedit.choices import (  # noqa: F401 (re-exported: the inversion's vocabulary)
    INVERT_METHODS,
    MODE_SOURCES,
    PERCEPTUAL_NETWORKS,
    PIVOTS,
)
from ganedit.editing.run import EditConfig
from ganedit.errors import UserInputError
from ganedit.inversion.perceptual import LossWeights, ReconstructionLoss, default_loss
from ganedit.inversion.projector import ProjectorConfig, project
from ganedit.inversion.pti import PTIConfig, pivotal_tuning
from ganedit.inversion.train_encoder import encode_images
from ganedit.models.encoder.convert import save_latents_pt
from ganedit.utils.files import atomic_dir, check_output
from ganedit.utils.images import encode, from_uint8, labelled_grid, to_uint8
from ganedit.utils.params import Integer, OneOf, check_params
from ganedit.utils.progress import progress_bar

log = logging.getLogger(__name__)

METHODS = INVERT_METHODS
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

_CONSTRAINTS = {
    "method": OneOf(METHODS),
    "perceptual": OneOf(PERCEPTUAL_NETWORKS),
    "batch_size": Integer(1, 4096),
    "pivot": OneOf(PIVOTS),
    "modes": OneOf(MODE_SOURCES),
}


@dataclass(frozen=True)
class InvertConfig:
    """What `ganedit invert` runs; saved as config.json beside the outputs."""

    generator: str = "world64"
    method: str = "optimize"
    perceptual: str = "evaluator"  # the shipped network whose features give the distance
    batch_size: int = 8  # images optimised together (independent of each other)
    encoder: str | None = None  # method encoder, pti's encoder pivot (None: the generator's)
    pivot: str = "optimize"  # pti's pivot: the projector's w, or the encoder's ws
    modes: str = "read"  # self-conditioned generators: the images' modes, read or neutral
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    pti: PTIConfig = field(default_factory=PTIConfig)

    def __post_init__(self):
        check_params({k: getattr(self, k) for k in _CONSTRAINTS}, _CONSTRAINTS, "invert")
        if self.method == "pti" and self.projector.space == "z" and self.pivot == "optimize":
            raise UserInputError("expected a w or ws pivot for pti, received --space z")


# ------------------------------------------------------------------------------------------
# Images in


def image_files(paths: list[str | Path]) -> list[tuple[str, Path | None, int | None]]:
    """(label, file, dataset index) per image of the given files, folders and LMDBs."""
    from ganedit.datasets import ImageDataset

    if not paths:
        raise UserInputError("expected --images (files, a folder or an LMDB), received none")
    items: list[tuple[str, Path | None, int | None]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            data = ImageDataset(path)
            if data.is_lmdb:
                items += [(data.label(i), path, i) for i in range(len(data))]
            else:  # a user's folder: each file on its own (sizes may differ)
                items += [(f.name, f, None) for f in data.files]
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise UserInputError(
                    f"expected an image file ({', '.join(IMAGE_SUFFIXES)}), a folder or an LMDB, "
                    f"received {str(path)!r}"
                )
            items.append((path.name, path, None))
        else:
            raise UserInputError(f"expected an image file, folder or LMDB, received {str(raw)!r}")
    return items


def load_images(
    items: list[tuple[str, Path | None, int | None]], resolution: int
) -> tuple[torch.Tensor, list[str]]:
    """Images [N, 3, R, R] in [-1, 1] (see `load_image`) and the sha256 of each one's bytes."""
    from ganedit.datasets import ImageDataset

    datasets: dict[Path, ImageDataset] = {}  # one reader per LMDB: it checks sizes agree
    images, digests = [], []
    for _, path, index in items:
        if index is not None and path not in datasets:
            datasets[path] = ImageDataset(path)
        image, data = load_image(path, index, resolution, datasets.get(path))
        images.append(image)
        digests.append(hashlib.sha256(data).hexdigest())
    return torch.stack(images), digests


def load_image(
    path: Path, index: int | None, resolution: int, dataset=None
) -> tuple[torch.Tensor, bytes]:
    """One image as float [3, R, R] in [-1, 1] and the bytes it came from (for its sha256).

    Converted as documented: grayscale and palette images to RGB, RGBA composited on white,
    non-square images centre-cropped to a square, then resized (area) to R."""
    from ganedit.datasets import ImageDataset, decode_image

    if index is None:
        try:
            data = path.read_bytes()
        except OSError as err:
            raise UserInputError(
                f"expected a readable image file, received {str(path)!r} ({err.strerror})"
            ) from None
        array = _decode_on_white(data, str(path)) if path.suffix.lower() == ".png" else None
        if array is None:
            array = decode_image(data, str(path))
    else:
        array = (dataset or ImageDataset(path))[index]
        data = array.tobytes()
    return _square(from_uint8(array[None])[0], resolution), data


def _decode_on_white(data: bytes, where: str) -> np.ndarray | None:
    # Transparent pixels would otherwise take whatever colour they store (often black).
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as pil:
            if pil.mode not in ("RGBA", "LA", "PA") and "transparency" not in pil.info:
                return None
            rgba = pil.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    except Exception:  # noqa: BLE001 - the regular decoder reports damage with its message
        return None


def _square(image: torch.Tensor, resolution: int) -> torch.Tensor:
    _, h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = image[:, top : top + side, left : left + side]
    if side != resolution:
        image = F.interpolate(image[None], size=(resolution, resolution), mode="area")[0]
    return image


# ------------------------------------------------------------------------------------------
# The run


def run_invert(
    cfg: InvertConfig,
    images: list[str | Path],
    out: str | Path,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Invert every image; returns the summary written to summary.json."""
    from ganedit.models.sources import load_generator

    out = check_output(out, overwrite=overwrite, kind="dir")
    source = load_generator(cfg.generator, device)
    source.check_space(cfg.projector.space)
    items = image_files(images)
    loss = default_loss(device, perceptual=cfg.perceptual)
    targets, digests = load_images(items, source.resolution)
    uses_encoder = cfg.method == "encoder" or (cfg.method == "pti" and cfg.pivot == "encoder")
    if uses_encoder and cfg.encoder is None:  # recorded in config.json as resolved
        cfg = replace(cfg, encoder=shipped_encoder(source))
    encoder = load_encoder_for(cfg.encoder, source, device) if uses_encoder else None
    t = image_modes(cfg, source, targets, device)  # [N, k] or None

    codes, reconstructions, metrics = [], [], []
    with atomic_dir(out, overwrite=overwrite, what="inversion") as tmp:
        with progress_bar(len(items), f"invert ({cfg.method})", progress) as bar:
            for start in range(0, len(items), cfg.batch_size):
                batch = targets[start : start + cfg.batch_size]
                at = _at_modes(source, t, start, len(batch))  # the images' own modes
                if encoder is not None:
                    latents = encode_images(encoder, batch.to(source.device))
                    recon = at.synthesize(latents, "ws", batch_size=len(batch))
                else:
                    found = project(at, batch, loss, cfg.projector, start=start, progress=progress)
                    latents = _as_output_codes(source, found.latents, found.space)
                    recon = found.images
                if cfg.method == "pti":
                    recon = _tune_each(
                        cfg, source, t, batch, latents, loss, start, tmp, items, digests, progress
                    )
                codes.append(latents)
                reconstructions.append(recon)
                metrics += _metrics(loss, recon, batch, cfg.method)
                bar.advance(len(batch))
        codes_all = torch.cat(codes).numpy().astype(np.float32)
        recon_all = torch.cat(reconstructions)
        space = "z" if cfg.projector.space == "z" else "ws"
        provenance = {
            **_origin(source, space),
            "method": cfg.method,
            "n": len(items),
        }
        if t is not None:
            names = source.mode_attributes
            provenance["modes"] = {"attributes": names, "how": cfg.modes, "t": t.tolist()}
            np.save(tmp / "modes.npy", t.numpy().astype(np.float32))
        np.save(tmp / "latents.npy", codes_all)
        if codes_all.ndim == 3:  # the tensor file e4e's inference script writes
            save_latents_pt(codes_all, tmp / "latents.pt")
        for i in range(len(items)):  # one code per image, its JSON record as the sidecar
            np.save(tmp / f"{i:05d}.npy", codes_all[i : i + 1])
        (tmp / "latents.json").write_text(json.dumps(provenance, indent=2) + "\n")
        for i, ((label, path, index), m) in enumerate(zip(items, metrics, strict=True)):
            record = {
                "image": label,
                "path": str(path),
                "index": index,
                "sha256": digests[i],
                **provenance,
                "metrics": m,
            }
            if t is not None:  # this image's modes only
                record["modes"] = {**provenance["modes"], "t": t[i : i + 1].tolist()}
            (tmp / f"{i:05d}.json").write_text(json.dumps(record, indent=2) + "\n")
            pair = to_uint8(torch.stack([targets[i], recon_all[i]]))
            grid = labelled_grid(pair, 2, col_labels=["input", cfg.method], scale=2)
            (tmp / f"{i:05d}.png").write_bytes(encode(grid))
        _overview(tmp / "reconstructions.png", targets, recon_all, cfg.method)
        (tmp / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
        summary = {**provenance, "images": [r[0] for r in items], "metrics": metrics}
        summary["median"] = {
            k: float(np.median([m[k] for m in metrics])) for k in metrics[0] if k != "method"
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def image_modes(cfg: InvertConfig, source, images: torch.Tensor, device) -> torch.Tensor | None:
    """Anchor coordinates [N, k] of the images for a self-conditioned generator (read by its
    mode reader, or neutral); None for any other generator."""
    from ganedit.models.modes import NEUTRAL, read_modes
    from ganedit.models.registry import load_mode_reader

    attributes = source.mode_attributes
    if not attributes:
        return None
    if cfg.modes == "neutral":
        return torch.full((len(images), len(attributes)), NEUTRAL)
    reader = load_mode_reader(cfg.generator, attributes, device)
    return read_modes(reader, images)


def _at_modes(source, t: torch.Tensor | None, start: int, n: int):
    """The source rendering images start .. start+n-1 at their own modes."""
    if t is None:
        return source
    from ganedit.models.modes import mode_vector

    return source.at_modes(mode_vector(t[start : start + n], for_generator=True))


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


def _as_output_codes(source, latents: torch.Tensor, space: str) -> torch.Tensor:
    # Every StyleGAN2 result is written as ws, the space edits of inverted codes use.
    return latents if space == "z" else source.to_ws(latents, space).cpu()


def _origin(source, space: str) -> dict:
    identity = source.identity
    return {"generator": identity["name"], "generator_sha256": identity["sha256"], "space": space}


def _tune_each(
    cfg, source, t, batch, latents, loss, start, tmp, items, digests, progress: bool
) -> torch.Tensor:
    from ganedit.models.registry import save_pretrained

    recon = []
    for k in range(len(batch)):
        i = start + k
        at = _at_modes(source, t, i, 1)
        tuning = pivotal_tuning(at, batch[k], latents[k], loss, cfg.pti, index=i, progress=progress)
        with torch.no_grad():
            recon.append(tuning.source.synthesize(tuning.pivot[None], "ws")[0])
        extra = {
            "pti": {
                "parent": source.identity,
                "image": {"name": items[i][0], "sha256": digests[i]},
                "pivot_ws": tuning.pivot.tolist(),
                "steps": tuning.steps,
                "settings": cfg.pti.to_dict(),
            }
        }
        save_pretrained(tuning.source.generator, tmp / f"{i:05d}_generator", extra=extra)
    return torch.stack(recon)


@torch.no_grad()
def _metrics(loss: ReconstructionLoss, recon, target, method: str) -> list[dict]:
    terms = loss.terms(recon, target, LossWeights(1.0, 1.0, 1.0))
    out = []
    for i in range(len(recon)):
        m = {"pixel_mse": float(terms["pixel"][i])}
        if "perceptual" in terms:
            m["perceptual"] = float(terms["perceptual"][i])
        if "identity" in terms:
            m["identity_cosine"] = 1.0 - float(terms["identity"][i])
        out.append(m)
    return out


def _overview(path: Path, targets, recon, method: str) -> None:
    n = len(targets)
    cols = min(n, 8)
    rows = []
    for start in range(0, n, cols):
        part = slice(start, start + cols)
        pad = cols - len(targets[part])
        blank = torch.ones(pad, *targets.shape[1:])
        rows += [torch.cat([targets[part], blank]), torch.cat([recon[part], blank])]
    images = to_uint8(torch.cat(rows))
    labels = ["input", method] * (len(rows) // 2)
    path.write_bytes(encode(labelled_grid(images, cols, row_labels=labels, scale=2)))


def summary_lines(summary: dict, out: str | Path) -> list[str]:
    """A short human summary of `run_invert`'s result for the terminal."""
    median = summary["median"]
    parts = [f"pixel MSE {median['pixel_mse']:.4f}"]
    if "perceptual" in median:
        parts.append(f"perceptual {median['perceptual']:.4f}")
    if "identity_cosine" in median:
        parts.append(f"identity cosine {median['identity_cosine']:.3f}")
    return [
        f"{out}: {summary['n']} images inverted by {summary['method']} into {summary['space']} "
        f"of {summary['generator']} (latents.npy, reconstructions.png)",
        "median " + ", ".join(parts),
    ]


def invert_and_edit(
    cfg: InvertConfig,
    edit: EditConfig,
    images: list[str | Path],
    out: str | Path,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """`ganedit edit --images`: invert the images, then edit their codes, into one folder:
    `out/inversion/` (as `ganedit invert` writes it) and `out/edit/` (as `ganedit edit`
    does; with pti, `out/edit_{i:05d}/` per image, each edited in its tuned generator)."""
    from ganedit.editing.run import run_edit

    out = check_output(out, overwrite=overwrite, kind="dir")
    if edit.latents is not None:
        raise UserInputError("expected --images or --latents, received both")
    with atomic_dir(out, overwrite=overwrite, what="inverted edit") as tmp:
        inverted = run_invert(cfg, images, tmp / "inversion", device, progress=progress)
        codes = str(tmp / "inversion" / "latents.npy")
        edits = []
        if cfg.method == "pti":
            for i in range(inverted["n"]):
                one = replace(
                    edit, generator=str(tmp / "inversion" / f"{i:05d}_generator"),
                    latents=str(tmp / "inversion" / f"{i:05d}.npy"), space="ws", n=1,
                )  # fmt: skip
                edits.append(_edit_into(run_edit, one, tmp, out, f"edit_{i:05d}", device, progress))
        else:
            one = replace(edit, generator=cfg.generator, latents=codes, space="ws", n=inverted["n"])
            edits.append(_edit_into(run_edit, one, tmp, out, "edit", device, progress))
    return {"out": str(out), "inversion": inverted, "edits": edits}


def _edit_into(run_edit, edit, tmp: Path, out: Path, name: str, device, progress) -> dict:
    summary = run_edit(edit, tmp / name, device, progress=progress)
    return {**summary, "out": str(out / name)}  # where it will be, not the temporary folder
