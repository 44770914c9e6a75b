"""Generate a latent bank: sample, synthesise, score and store N samples, chunk by chunk.

Sample i is (seed, i) whatever the chunk size, batch size or number of processes. The bank is
written under `<out>.partial` and renamed to `<out>` only once every chunk is done, so an
interrupted run never looks finished; running it again with the same config resumes it and
gives the same arrays as an uninterrupted run. Memory holds one chunk of latents and scores
and one batch of images, whatever N and the resolution: each batch is rendered on the
generator's device, scored (and saved, with --save-images) and dropped before the next.

Downscaling for the predictor: a batch is resized before `predict` only when the predictor
declares `resizes_to`, the side its own first step resizes a square image to (bilinear,
antialiased, in floating point, as `AttributeNet` does). ganedit then does that step early,
on the generator's device, so a 1024 px batch never reaches the predictor (or the CPU) at
full size. `input_size` alone is not enough: the CelebA ResNet's pipeline quantises to 8-bit
levels, resizes the shorter side to 256 and crops 224 (its input_size), so images shrunk to
224 first would lose its border and change its scores. A predictor that declares nothing
receives the generator's resolution and resizes as it likes.

On a self-conditioned generator every row has its own modes, drawn as `sample` draws them
(`sample_modes`: the data's mode distribution where the model ships one, else neutral; or
uniform), with the `modes` settings fixed on top; the bank stores each row's anchor coordinates
(`modes` [N, k]), so an edit or a fit of its codes knows where each started. Row i's modes, like
its z, depend only on (seed, i).

Under torchrun (WORLD_SIZE > 1) rank r computes chunks r, r + world, ...; rank 0 creates the
store before the others start and finalises it after all are done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganedit.choices import SAMPLE_MODES
from ganedit.errors import ProvenanceError, UserInputError, expect
from ganedit.latents.bank import (
    check_target,
    chunk_ranges,
    create_store,
    done_chunks,
    finalize,
    open_store,
    partial_path,
    write_chunk,
)
from ganedit.utils.context import RunContext
from ganedit.utils.distributed import init_distributed, on_rank0
from ganedit.utils.files import made_by_ganedit, output_lock, output_target, write_json
from ganedit.utils.images import encode, to_uint8
from ganedit.utils.progress import progress_bar

log = logging.getLogger(__name__)

NO_PREDICTOR = "none"  # GenerateConfig.predictor value for a bank without scores
MAX_RESIZE = 4096  # largest `resizes_to` a predictor may declare (pixels)
RESUME_FREE = ("batch_size",)  # config fields that may change between a run and its resume


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate. `predictor="none"` stores no scores."""

    generator: str
    predictor: str = "labeler"
    n: int = 10_000
    seed: int = 0
    truncation_psi: float = 1.0
    chunk_size: int = 4096
    batch_size: int = 256
    store_ws: bool = False
    save_images: bool = False
    modes: tuple[str, ...] = ()  # "ATTR=T": fixed on top of each sample's own modes
    class_index: int | None = None  # the class a class-conditional generator renders
    mode_names: tuple[str, ...] = ()  # the names of a self-conditioned .pt's modes
    sample_modes: str | None = None  # "data", "neutral", "uniform"; None: `sample`'s default

    def __post_init__(self):
        expect(bool(str(self.generator)), "a generator name or path", self.generator)
        expect(bool(str(self.predictor)), "a predictor name, path or 'none'", self.predictor)
        expect(self.n >= 1, "n >= 1 samples", self.n)
        expect(self.seed >= 0, "a seed >= 0", self.seed)
        expect(self.chunk_size >= 1, "chunk_size >= 1", self.chunk_size)
        expect(self.batch_size >= 1, "batch_size >= 1", self.batch_size)
        expect(0 <= self.truncation_psi <= 1, "truncation_psi in [0, 1]", self.truncation_psi)
        ok = self.class_index is None or (type(self.class_index) is int and self.class_index >= 0)
        expect(ok, "a class index >= 0 or None", self.class_index)
        ok = self.sample_modes in (None, *SAMPLE_MODES)
        expect(ok, f"modes drawn from one of {SAMPLE_MODES} (or None)", self.sample_modes)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["generator"], out["predictor"] = str(self.generator), str(self.predictor)
        out["modes"] = list(self.modes)  # as JSON keeps it, so a resumed run compares equal
        out["mode_names"] = list(self.mode_names)
        return out


def assign_chunks(n_chunks: int, rank: int, world: int) -> list[int]:
    """The chunks process `rank` of `world` writes: rank, rank + world, ..."""
    expect(world >= 1 and 0 <= rank < world, "0 <= rank < world", (rank, world))
    return list(range(rank, n_chunks, world))


def generate_bank(
    cfg: GenerateConfig,
    out: str | Path,
    source=None,
    predictor=None,
    *,
    resume: bool = True,
    ctx: RunContext = RunContext(),
) -> Path:
    """Write the bank `cfg` describes to `out` and return `out`.

    `source` (a `ganedit.models.sources` source) and `predictor` (an object with
    `predict(images, batch_size) -> {name: [N]}`, in eval mode) replace loading
    `cfg.generator` / `cfg.predictor` by name. `resume`: continue `<out>.partial` when it holds
    the same config (else start over). `ctx.overwrite`: replace an existing bank at `out`.
    """
    out = Path(out)
    check_target(out, ctx.overwrite)
    out = output_target(out)  # a symlinked bank: written where the link points
    partial = partial_path(out)
    device, rank, world = init_distributed(ctx.device)
    # One writer per bank: a second `generate` of the same output is refused while this one
    # runs, and a lock left by a killed run is taken over when it is resumed.
    lock = output_lock(out) if rank == 0 else contextlib.nullcontext()
    with lock:
        source, predictor, modes = _models(cfg, source, predictor, device)
        on_rank0(lambda: _prepare(cfg, partial, source, predictor, modes, resume), rank, world)
        group = open_store(partial)
        ranges = chunk_ranges(cfg.n, cfg.chunk_size)
        chunks = [(k, *ranges[k]) for k in assign_chunks(len(ranges), rank, world)]
        image_dir = partial / "images" if cfg.save_images else None
        bar = ctx.progress and rank == 0
        _write_chunks(group, cfg, source, predictor, modes, chunks, image_dir, bar)
        on_rank0(lambda: finalize(partial, out, ctx.overwrite), rank, world)
    log.info("wrote latent bank %s (%d samples)", out, cfg.n)
    return out


# ------------------------------------------------------------------------------------------
# Setup


@dataclass(frozen=True)
class RowModes:
    """How a self-conditioned generator's bank draws each row's modes: `how` ("data",
    "neutral", "uniform") with `settings` ({attribute: t}) fixed on top."""

    generator: str
    how: str
    settings: dict
    seed: int

    def coordinates(self, source, start: int, n: int) -> torch.Tensor:
        """Anchor coordinates [n, k] of rows start, ..., start + n - 1."""
        from ganedit.models.sources import sample_coordinates

        _, t = sample_coordinates(source, self.generator, self.how, n, self.seed, start)
        return source.mode_layout.targets(t, self.settings)

    def vectors(self, source, start: int, n: int) -> torch.Tensor:
        """The generator's mode vectors [n, M] of those rows."""
        return source.mode_layout.generator_vector(self.coordinates(source, start, n))


def _models(cfg: GenerateConfig, source, predictor, device: torch.device):
    """The source, the predictor (None: no scores) and how each row's modes are drawn
    (`RowModes`; None for a generator without modes)."""
    if source is None:
        from ganedit.models.sources import load_generator

        source = load_generator(
            cfg.generator, device, cfg.truncation_psi, cfg.class_index, cfg.mode_names
        )
    else:
        psi = getattr(source, "truncation_psi", cfg.truncation_psi)
        expect(psi == cfg.truncation_psi, f"a source with truncation_psi {cfg.truncation_psi}", psi)
        given = getattr(source, "class_index", None)
        expect(given == cfg.class_index, f"a source of class {cfg.class_index}", given)
    modes = _row_modes(cfg, source)
    if cfg.store_ws and "ws" not in source.spaces:
        raise UserInputError(
            f"expected a generator with a ws space to store ws, received {cfg.generator!r} "
            f"with spaces {tuple(source.spaces)}"
        )
    if predictor is None and cfg.predictor != NO_PREDICTOR:
        from ganedit.models.registry import load_predictor

        predictor = load_predictor(cfg.predictor, device)
    return source, predictor, modes


def _row_modes(cfg: GenerateConfig, source) -> RowModes | None:
    """How the rows' modes are drawn; None for a generator without modes (UserInputError
    when `cfg` sets modes for one)."""
    from ganedit.models.sources import sample_coordinates

    if cfg.modes or cfg.sample_modes is not None:
        source.require_modes("--mode" if cfg.modes else "--modes")  # refused without modes
    if source.mode_layout is None:
        return None
    settings = source.mode_layout.parse(cfg.modes) if cfg.modes else {}
    how, _ = sample_coordinates(source, str(cfg.generator), cfg.sample_modes, 1, cfg.seed)
    return RowModes(str(cfg.generator), how, settings, cfg.seed)


def _prepare(cfg: GenerateConfig, partial: Path, source, predictor, modes, resume: bool) -> None:
    """Rank 0: validate `partial` for resuming, or create it afresh."""
    identity = _identity(source, cfg)
    if partial.exists():
        if resume:
            _check_resumable(partial, cfg, identity)
            return
        if not made_by_ganedit(partial):
            raise UserInputError(
                f"expected {str(partial)!r} to be an interrupted bank of ganedit's, received a "
                "folder ganedit did not write (move it away)"
            )
        shutil.rmtree(partial)
    dims, names, resolution = _probe(source, predictor, modes, cfg)
    meta = {
        "generator": cfg.generator,
        "generator_identity": identity,
        "predictor": cfg.predictor if predictor is not None else None,
        # Each score's kind, "probability" or "value" (the predictor's attribute_kinds).
        "score_kinds": {
            n: (getattr(predictor, "attribute_kinds", None) or {}).get(n) for n in names
        },
        "truncation_psi": cfg.truncation_psi,
        "seed": cfg.seed,
        "resolution": resolution,
        "config": cfg.to_dict(),
    }
    if modes is not None:  # each row's own coordinates are the `modes` array
        meta["modes"] = {"drawn": modes.how, "set": dict(modes.settings)}
    create_store(
        partial,
        n=cfg.n,
        chunk_size=cfg.chunk_size,
        dims=dims,
        score_names=names,
        meta=meta,
        mode_attributes=source.mode_attributes if modes is not None else (),
    )
    write_json(partial / "config.json", cfg.to_dict())


def _identity(source, cfg: GenerateConfig) -> dict:
    identity = dict(getattr(source, "identity", None) or {"name": cfg.generator, "sha256": None})
    identity["name"] = str(cfg.generator)
    return identity


def _check_resumable(partial: Path, cfg: GenerateConfig, identity: dict) -> None:
    try:
        attrs = dict(open_store(partial, mode="r").attrs)
    except UserInputError as exc:
        raise UserInputError(
            f"expected a resumable partial bank at {str(partial)!r}, received an unreadable one "
            f"({exc}); delete it or start over without resume"
        ) from exc
    saved = dict(attrs.get("config") or {})
    before = (attrs.get("generator_identity") or {}).get("sha256")
    then, now = (attrs.get("generator_identity") or {}).get("class"), identity.get("class")
    if then != now:
        raise ProvenanceError(
            f"expected the class the interrupted run in {str(partial)!r} rendered ({then}), "
            f"received class {now}; start over without resume"
        )
    if before and identity.get("sha256") and before != identity["sha256"]:
        raise ProvenanceError(
            f"expected the generator weights the interrupted run in {str(partial)!r} used "
            f"(sha256 {before[:12]}...), received other weights under the same name "
            f"(sha256 {identity['sha256'][:12]}...); start over without resume"
        )
    ours = cfg.to_dict()
    for key in RESUME_FREE:
        if key in saved and saved[key] != ours[key]:
            log.warning(
                "resuming with %s=%r (was %r): rows of new chunks may differ from an "
                "uninterrupted run in the last float bits",
                key,
                ours[key],
                saved[key],
            )
    differ = [
        k
        for k in sorted(set(saved) | set(ours))
        if k not in RESUME_FREE and saved.get(k) != ours.get(k)
    ]
    if differ:
        raise UserInputError(
            f"expected the configuration of the interrupted run in {str(partial)!r} ("
            + ", ".join(f"{k}={saved.get(k)!r}" for k in differ)
            + "), received "
            + ", ".join(f"{k}={ours.get(k)!r}" for k in differ)
            + "; rerun with that configuration, or start over without resume"
        )


def _probe(source, predictor, modes: RowModes | None, cfg: GenerateConfig):
    """Latent shapes, score names and image size, from sample 0."""
    z = source.sample_z(1, cfg.seed, 0)
    modes = None if modes is None else modes.vectors(source, 0, 1)
    dims = {"z": tuple(z.shape[1:])}
    if "w" in source.spaces:
        w = source.to_w(z).float().cpu()
        dims["w"] = tuple(w.shape[1:])
        if cfg.store_ws:
            dims["ws"] = tuple(source.to_ws(w, "w").shape[1:])
        images = render_batch(source, w, "w", modes)
    else:
        images = render_batch(source, z, "z", modes)
    resolution = int(images.shape[-1])
    if predictor is None:
        return dims, [], resolution
    side = predictor_resize(predictor)
    if side is not None and side < resolution:
        log.info("images of %d px are resized to %d px for the predictor", resolution, side)
    names = list(predictor.predict(fit_for_predictor(images, side), 1))
    return dims, names, resolution


# ------------------------------------------------------------------------------------------
# One chunk


def _write_chunks(
    group,
    cfg: GenerateConfig,
    source,
    predictor,
    modes: RowModes | None,
    chunks: list[tuple[int, int, int]],
    image_dir: Path | None,
    bar: bool,
) -> None:
    """Compute and write the chunks (k, start, stop) not yet marked done."""
    done = done_chunks(group)
    todo = [c for c in chunks if not done[c[0]]]
    if len(todo) < len(chunks):
        log.info("resuming: %d of %d chunks already written", len(chunks) - len(todo), len(chunks))
    if image_dir is not None:
        image_dir.mkdir(exist_ok=True)
    names = list(group.attrs["score_names"])
    dims = {s: tuple(d) for s, d in group.attrs["dims"].items()}
    total = sum(stop - start for _, start, stop in chunks)
    left = sum(stop - start for _, start, stop in todo)
    with progress_bar(total, "generate", enabled=bar, completed=total - left) as progress:
        began, written = time.perf_counter(), 0
        for k, start, stop in todo:
            arrays = _compute_chunk(
                source, predictor, cfg, start, stop, dims, names, image_dir, modes
            )
            write_chunk(group, k, arrays)
            written += stop - start
            rate = written / max(time.perf_counter() - began, 1e-9)
            progress.advance(stop - start, **{"samples/s": rate})


def _compute_chunk(
    source,
    predictor,
    cfg: GenerateConfig,
    start: int,
    stop: int,
    dims: dict[str, tuple[int, ...]],
    names: list[str],
    image_dir: Path | None,
    modes: RowModes | None,
) -> dict[str, np.ndarray]:
    """Every stored array for rows [start, stop), synthesising and scoring batch by batch."""
    rows = stop - start
    arrays = {s: np.empty((rows, *d), np.float32) for s, d in dims.items()}
    arrays.update({f"scores/{name}": np.empty(rows, np.float32) for name in names})
    z = source.sample_z(rows, cfg.seed, start)  # [R, z_dim]
    arrays["z"][:] = z.numpy()
    arrays["index"] = np.arange(start, stop, dtype=np.int64)
    vectors = None
    if modes is not None:
        t = modes.coordinates(source, start, rows)  # [R, k]
        arrays["modes"] = t.numpy().astype(np.float32)
        vectors = source.mode_layout.generator_vector(t)  # [R, M]
    side = predictor_resize(predictor) if predictor is not None else None
    for a in range(0, rows, cfg.batch_size):
        b = min(a + cfg.batch_size, rows)
        batch = {key: array[a:b] for key, array in arrays.items() if key in dims or "/" in key}
        at = None if vectors is None else vectors[a:b]
        _compute_batch(source, predictor, at, side, z[a:b], batch, image_dir, start + a)
    return arrays


def _compute_batch(
    source,
    predictor,
    modes: torch.Tensor | None,
    side: int | None,
    z: torch.Tensor,
    out: dict[str, np.ndarray],
    image_dir: Path | None,
    first: int,
) -> None:
    """Fill `out` (views of one batch's rows: latents, `scores/<name>`) from z [B, z_dim].

    The batch's images live only in this call, so at most one batch of them is ever held."""
    if "w" in out:
        # Synthesise from the stored w, so the bank's w reproduces the image exactly.
        w = source.to_w(z).float().cpu()  # [B, w_dim]
        out["w"][:] = w.numpy()
        if "ws" in out:
            out["ws"][:] = source.to_ws(w, "w").float().cpu().numpy()
        images = render_batch(source, w, "w", modes)  # [B, 3, H, W] on the generator's device
    else:
        images = render_batch(source, z, "z", modes)
    if image_dir is not None:
        _save_images(images, image_dir, first)
    if predictor is not None:
        names = [key.removeprefix("scores/") for key in out if key.startswith("scores/")]
        scored = fit_for_predictor(images, side)  # [B, 3, s, s] when the predictor resizes
        del images  # only the predictor's copy stays while it runs
        for name, values in _score(predictor, scored, len(z), names).items():
            out[f"scores/{name}"][:] = values


def render_batch(source, latents: torch.Tensor, space: str, modes=None) -> torch.Tensor:
    """One batch of images [B, 3, H, W] in [-1, 1], left on the generator's device: the
    operations of `source.synthesize` for one batch (at mode vectors `modes` [1 or B, M]
    when given), without its copy to the CPU."""
    with torch.no_grad():
        return source.render(latents, space, modes=modes).clamp(-1, 1)


def predictor_resize(predictor) -> int | None:
    """The side a predictor's own first step resizes square images to (`resizes_to`, on the
    predictor or on the one a `CheckedPredictor` holds), or None when it declares none."""
    side = getattr(predictor, "resizes_to", None)
    if side is None:
        side = getattr(getattr(predictor, "inner", None), "resizes_to", None)
    if side is None:
        return None
    ok = isinstance(side, int) and not isinstance(side, bool) and 1 <= side <= MAX_RESIZE
    expect(ok, f"a predictor resizes_to in 1..{MAX_RESIZE} pixels, or None", side)
    return int(side)


def fit_for_predictor(images: torch.Tensor, side: int | None) -> torch.Tensor:
    """[B, 3, H, W] -> [B, 3, side, side], bilinear and antialiased, when `side` is smaller
    than the images; otherwise the images as they are (never enlarged)."""
    if side is None or (images.shape[-2] <= side and images.shape[-1] <= side):
        return images
    return F.interpolate(
        images, size=(side, side), mode="bilinear", antialias=True, align_corners=False
    )


def _score(predictor, images: torch.Tensor, batch_size: int, names: list[str]) -> dict:
    scores = predictor.predict(images, batch_size)
    if sorted(scores) != sorted(names):
        raise RuntimeError(f"expected predictor outputs {names}, received {sorted(scores)}")
    return {name: np.asarray(scores[name], np.float32).reshape(len(images)) for name in names}


def _save_images(images: torch.Tensor, folder: Path, first: int) -> None:
    for j, image in enumerate(to_uint8(images)):
        (folder / f"{first + j:07d}.png").write_bytes(encode(image, "png"))
