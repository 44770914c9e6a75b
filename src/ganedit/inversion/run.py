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

With `align` (`--align`), each photo's largest face is FFHQ-aligned at the generator's
resolution before anything else (ganedit.inversion.align); config.json records it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ganedit.choices import (  # noqa: F401 (re-exported: the inversion's vocabulary)
    INVERT_METHODS,
    MODE_SOURCES,
    PERCEPTUAL_NETWORKS,
    PIVOTS,
)
from ganedit.editing.run import EditConfig
from ganedit.errors import UserInputError
from ganedit.inversion.encode import load_encoder_for, shipped_encoder
from ganedit.inversion.images import image_files, image_modes, load_images, mode_reader
from ganedit.inversion.methods import INVERTERS, Context
from ganedit.inversion.perceptual import LossWeights, ReconstructionLoss, default_loss
from ganedit.inversion.projector import ProjectorConfig
from ganedit.inversion.pti import PTIConfig
from ganedit.models.encoder.convert import save_latents_pt
from ganedit.utils.context import RunContext
from ganedit.utils.files import atomic_dir, check_output
from ganedit.utils.images import encode, labelled_grid, to_uint8
from ganedit.utils.params import Integer, OneOf, check_fields
from ganedit.utils.progress import progress_bar

log = logging.getLogger(__name__)

METHODS = INVERT_METHODS

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
    align: bool = False  # photos: each one's largest face FFHQ-aligned first (ganedit[faces])
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    pti: PTIConfig = field(default_factory=PTIConfig)

    def __post_init__(self):
        check_fields(self, _CONSTRAINTS, "invert")
        INVERTERS[self.method].check(self)
        if self.align:  # refused in one line before any work when the extra is missing
            from ganedit.models.face_landmarks import require_dlib

            require_dlib()


# ------------------------------------------------------------------------------------------
# The run


def run_invert(
    cfg: InvertConfig,
    images: list[str | Path],
    out: str | Path,
    *,
    ctx: RunContext = RunContext(),
) -> dict:
    """Invert every image; returns the summary written to summary.json."""
    out = check_output(out, overwrite=ctx.overwrite, kind="dir")
    job, items, targets, digests = _prepare(cfg, images, ctx)
    with atomic_dir(out, overwrite=ctx.overwrite, what="inversion") as tmp:
        codes, recon, metrics = _invert_all(job, targets, tmp)
        provenance = _write_codes(job, codes, len(items), tmp)
        _write_records(job, items, digests, provenance, metrics, tmp)
        _write_images(job.cfg.method, targets, recon, tmp)
        (tmp / "config.json").write_text(json.dumps(asdict(job.cfg), indent=2) + "\n")
        summary = {**provenance, "images": [r[0] for r in items], "metrics": metrics}
        summary["median"] = {
            k: float(np.median([m[k] for m in metrics])) for k in metrics[0] if k != "method"
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _prepare(cfg: InvertConfig, images: list[str | Path], ctx: RunContext):
    """The method's context (generator, loss, encoder, the images' modes), the images'
    (label, file, index), the images [N, 3, R, R] and the sha256 of each one's bytes."""
    from ganedit.models.sources import load_generator

    device = ctx.device
    source = load_generator(cfg.generator, device)
    source.check_space(cfg.projector.space)
    items = image_files(images)
    loss = default_loss(device, perceptual=cfg.perceptual)
    targets, digests = load_images(items, source.resolution, cfg.align)
    encoder = None
    if INVERTERS[cfg.method].uses_encoder(cfg):
        if cfg.encoder is None:  # recorded in config.json as resolved
            cfg = replace(cfg, encoder=shipped_encoder(source))
        encoder = load_encoder_for(cfg.encoder, source, device)
    reader = mode_reader(cfg.generator, source, device) if cfg.modes == "read" else None
    t = image_modes(source, targets, cfg.modes, reader)  # [N, k] or None
    named = [
        {"name": item[0], "sha256": digest} for item, digest in zip(items, digests, strict=True)
    ]
    job = Context(cfg, source, loss, encoder, t, named, ctx.progress)
    return job, items, targets, digests


def _invert_all(job: Context, targets: torch.Tensor, tmp: Path):
    """Codes [N, ...] (float32 numpy), reconstructions [N, 3, R, R] and metrics per image,
    batch by batch; a method's tuned generators are saved as they come."""
    from ganedit.models.registry import save_pretrained

    cfg, inverter = job.cfg, INVERTERS[job.cfg.method]
    codes, reconstructions, metrics = [], [], []
    with progress_bar(len(targets), f"invert ({cfg.method})", job.progress) as bar:
        for start in range(0, len(targets), cfg.batch_size):
            batch = targets[start : start + cfg.batch_size]
            found = inverter.invert(job, batch, start)
            recon = found.images
            if recon is None:  # the codes rendered at the images' own modes
                modes = job.modes_at(start, len(batch))
                recon = job.source.synthesize(
                    found.latents, "ws", batch_size=len(batch), modes=modes
                )
            for k, (generator, record) in enumerate(found.tuned):
                save_pretrained(generator, tmp / f"{start + k:05d}_generator", extra=record)
            codes.append(found.latents)
            reconstructions.append(recon)
            metrics += _metrics(job.loss, recon, batch, cfg.method)
            bar.advance(len(batch))
    return torch.cat(codes).numpy().astype(np.float32), torch.cat(reconstructions), metrics


def _write_codes(job: Context, codes: np.ndarray, n: int, tmp: Path) -> dict:
    """latents.npy (and .pt), one .npy per image, modes.npy and latents.json; returns the
    provenance every record repeats."""
    space = "z" if job.cfg.projector.space == "z" else "ws"
    provenance = {**_origin(job.source, space), "method": job.cfg.method, "n": n}
    t = job.modes
    if t is not None:
        names = job.source.mode_attributes
        provenance["modes"] = {"attributes": names, "how": job.cfg.modes, "t": t.tolist()}
        np.save(tmp / "modes.npy", t.numpy().astype(np.float32))
    np.save(tmp / "latents.npy", codes)
    if codes.ndim == 3:  # the tensor file e4e's inference script writes
        save_latents_pt(codes, tmp / "latents.pt")
    for i in range(n):  # one code per image, its JSON record as the sidecar
        np.save(tmp / f"{i:05d}.npy", codes[i : i + 1])
    (tmp / "latents.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance


def _write_records(job: Context, items, digests, provenance: dict, metrics, tmp: Path) -> None:
    t = job.modes
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


def _write_images(method: str, targets: torch.Tensor, recon: torch.Tensor, tmp: Path) -> None:
    for i in range(len(targets)):
        pair = to_uint8(torch.stack([targets[i], recon[i]]))
        grid = labelled_grid(pair, 2, col_labels=["input", method], scale=2)
        (tmp / f"{i:05d}.png").write_bytes(encode(grid))
    _overview(tmp / "reconstructions.png", targets, recon, method)


def _origin(source, space: str) -> dict:
    identity = source.identity
    return {"generator": identity["name"], "generator_sha256": identity["sha256"], "space": space}


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


def check_image_edit(edit: EditConfig) -> None:
    """Refuse edit settings that images inverted by `invert_and_edit` cannot take."""
    if edit.class_index is not None:
        raise UserInputError(
            "expected no --class with --images (inverting images into a class-conditional "
            f"generator is not supported yet), received --class {edit.class_index}"
        )
    if edit.mode_names:
        raise UserInputError(
            "expected no --mode-names with --images (inverting images into a renamed "
            "self-conditioned .pt is not supported yet), received --mode-names "
            f"{','.join(edit.mode_names)}"
        )
    if edit.truncation_psi not in (None, 1.0):
        raise UserInputError(
            "expected no --trunc with --images (inverted codes reproduce the images at psi "
            f"1), received {format(edit.truncation_psi, 'g')}"
        )


def invert_and_edit(
    cfg: InvertConfig,
    edit: EditConfig,
    images: list[str | Path],
    out: str | Path,
    *,
    ctx: RunContext = RunContext(),
) -> dict:
    """`ganedit edit --images`: invert the images, then edit their codes, into one folder:
    `out/inversion/` (as `ganedit invert` writes it) and `out/edit/` (as `ganedit edit`
    does; with a method that tunes the generator (pti), `out/edit_{i:05d}/` per image,
    each edited in its tuned generator)."""
    from ganedit.editing.run import run_edit

    check_image_edit(edit)
    out = check_output(out, overwrite=ctx.overwrite, kind="dir")
    if edit.latents is not None:
        raise UserInputError("expected --images or --latents, received both")
    fresh = replace(ctx, overwrite=False)  # the parts go into a new temporary folder
    with atomic_dir(out, overwrite=ctx.overwrite, what="inverted edit") as tmp:
        inverted = run_invert(cfg, images, tmp / "inversion", ctx=fresh)
        codes = str(tmp / "inversion" / "latents.npy")
        edits = []
        if INVERTERS[cfg.method].tunes_generator:  # each image in its own generator
            for i in range(inverted["n"]):
                one = replace(
                    edit, generator=str(tmp / "inversion" / f"{i:05d}_generator"),
                    latents=str(tmp / "inversion" / f"{i:05d}.npy"), space="ws", n=1,
                )  # fmt: skip
                edits.append(_edit_into(run_edit, one, tmp, out, f"edit_{i:05d}", fresh))
        else:
            space = "z" if cfg.projector.space == "z" else "ws"  # what run_invert wrote
            one = replace(
                edit, generator=cfg.generator, latents=codes, space=space, n=inverted["n"]
            )
            edits.append(_edit_into(run_edit, one, tmp, out, "edit", fresh))
    return {"out": str(out), "inversion": inverted, "edits": edits}


def _edit_into(run_edit, edit, tmp: Path, out: Path, name: str, ctx: RunContext) -> dict:
    summary = run_edit(edit, tmp / name, ctx=ctx)
    return {**summary, "out": str(out / name)}  # where it will be, not the temporary folder
