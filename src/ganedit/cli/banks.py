"""Latent banks: generate them, export to and import from the reference .npy files."""

from __future__ import annotations

from pathlib import Path

import typer

from ganedit import cli_options as opt
from ganedit.cli._app import app, bank_app
from ganedit.utils.context import RunContext


@app.command("generate")
def generate_cmd(
    generator: str = opt.generator_option(),
    out: Path = opt.out_option("Latent bank to write (*.zarr)."),
    n: int = opt.n_option(10_000, "Number of samples."),
    seed: int = opt.seed_option(),
    predictor: str = opt.predictor_option(
        "labeler",
        "Scoring network: labeler, evaluator, a model folder, or none. "
        + opt.FOREIGN_PREDICTORS_HELP,
    ),
    truncation_psi: float = opt.trunc_option(),
    class_index: int | None = opt.class_option(),
    mode_names: str | None = opt.mode_names_option(),  # parsed to a tuple of names
    chunk_size: int = typer.Option(4096, "--chunk-size", min=1),
    batch_size: int = opt.batch_option(256),
    store_ws: bool = typer.Option(False, "--store-ws", help="Also store ws [N, L, D]."),
    save_images: bool = typer.Option(False, "--save-images", help="Also write one PNG per sample."),
    mode: list[str] = opt.mode_settings_option(),
    modes: opt.SampleModes | None = opt.sample_modes_option(),
    resume: bool = opt.resume_option("Continue an interrupted run."),
    overwrite: bool = opt.overwrite_option(),
    device: str = opt.device_option(),
    progress: bool = opt.progress_option(),
) -> None:
    """Sample latents, synthesise, score and store them in a latent bank (resumable)."""
    from ganedit.latents import GenerateConfig, LatentBank, generate_bank

    cfg = GenerateConfig(
        generator=generator, predictor=predictor, n=n, seed=seed, truncation_psi=truncation_psi,
        chunk_size=chunk_size, batch_size=batch_size, store_ws=store_ws, save_images=save_images,
        modes=tuple(mode), class_index=class_index, mode_names=mode_names,
        sample_modes=opt.value(modes),
    )  # fmt: skip
    ctx = RunContext.current(device, progress, overwrite)
    path = generate_bank(cfg, out, resume=resume, ctx=ctx)
    bank = LatentBank.open(path, verify=False)
    drawn = bank.mode_record(0, 1)
    drawn = f"; modes {drawn['drawn']}" if drawn and "drawn" in drawn else ""
    typer.echo(
        f"{path}: {bank.n} samples of {generator} (spaces {', '.join(bank.spaces)}; scores "
        f"{', '.join(bank.score_names) or 'none'}{drawn})"
    )


@bank_app.command("export")
def bank_export_cmd(
    bank: Path = typer.Argument(..., help="Latent bank (*.zarr)."),
    out: Path = opt.out_option("New folder for z.npy, w.npy, <attr>_scores.npy, scores_dict.npy."),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Write z.npy, w.npy, wp.npy, <attr>_scores.npy and scores_dict.npy."""
    from ganedit.latents import export_reference

    typer.echo(str(export_reference(bank, out, overwrite=overwrite)))


@bank_app.command("import")
def bank_import_cmd(
    folder: Path = typer.Argument(..., help="Folder with z.npy (+ w.npy, wp.npy) and scores."),
    out: Path = opt.out_option("Latent bank to write (*.zarr)."),
    generator: str = opt.generator_option(
        "imported",
        "The generator the codes came from (recorded; a registered name, .pt or folder is "
        "identified by the sha256 of its weights).",
    ),
    predictor: str = opt.predictor_option("imported", "The predictor that scored them (recorded)."),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Build a bank from the reference files (pickled score dicts are checked, never run)."""
    from ganedit.latents import import_reference

    path = import_reference(
        folder, out, generator=generator, predictor=predictor, overwrite=overwrite
    )
    typer.echo(str(path))
