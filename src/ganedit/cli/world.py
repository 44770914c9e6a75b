"""`ganedit world`: render the synthetic face world's data sets and contact sheets."""

from __future__ import annotations

from pathlib import Path

import typer

from ganedit import cli_options as opt
from ganedit.cli._app import world_app
from ganedit.cli._common import (
    _expect_suffix,
    _outputs,
)
from ganedit.utils.context import RunContext


@world_app.command("render")
def world_render(
    out: Path = opt.out_option("Output: a path ending in .lmdb for an LMDB, else an image folder."),
    preset: str = opt.preset_option(),
    n: int = opt.n_option(50000, "Number of images."),
    size: int = typer.Option(64, "--size", help="Image size, a power of two from 16 to 256."),
    seed: int = opt.seed_option(),
    image_format: opt.ImageFormat = typer.Option(
        opt.ImageFormat("png"), "--format", help="Encoding of each image."
    ),
    batch_size: int = opt.batch_option(512),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Render N faces with all ground-truth factors (labels.npz beside the images)."""
    from ganedit.world.config import load_world_config
    from ganedit.world.dataset import RenderJob, write_world_dataset

    job = RenderJob(
        n=n, size=size, seed=seed, image_format=opt.value(image_format), batch_size=batch_size
    )
    world = load_world_config(preset)
    ctx = RunContext.current(progress=progress, overwrite=overwrite)
    path = write_world_dataset(world, job, out, ctx=ctx)
    typer.echo(f"{path}: {n} renders of the {world.name} world at {size} px (labels.npz beside)")


@world_app.command("sheet")
def world_sheet(
    out: Path = opt.out_option("PNG file to write (its config as JSON beside).", Path("sheet.png")),
    preset: str = opt.preset_option(),
    rows: int = typer.Option(6, "--rows", min=1, max=64, help="Identities, one per row."),
    size: int = typer.Option(64, "--size", help="Render size of each face."),
    scale: int = opt.scale_option(),
    seed: int = opt.seed_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Contact sheet: each row one identity, each column one attribute off/on, then a yaw sweep."""
    from ganedit.utils.files import atomic_path, sidecar_path, write_json
    from ganedit.world.config import load_world_config
    from ganedit.world.sheet import make_sheet

    _expect_suffix(out, ".png")
    _outputs(out, sidecar_path(out), overwrite=overwrite)
    world = load_world_config(preset)
    image = make_sheet(world, rows=rows, size=size, seed=seed, scale=scale)
    with atomic_path(out) as tmp:
        image.save(tmp, format="png")
    write_json(
        sidecar_path(out),
        {"world": world.to_dict(), "rows": rows, "size": size, "seed": seed},
    )
    typer.echo(str(out))
