"""Editing: move latents along directions or modes, the web editor and the demo."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ganedit import cli_options as opt
from ganedit.cli._app import app
from ganedit.cli._common import (
    _parse_layers,
)
from ganedit.errors import UserInputError
from ganedit.utils.context import RunContext


@app.command("edit")
def edit_cmd(
    boundary: list[Path] = typer.Option(
        [], "--boundary", "-b", "--boundary-path", help="Boundary .npy (repeat for several)."
    ),
    out: Path = opt.out_option("New folder: strip.png, edit.gif, latents.npy, config.json."),
    generator: str = opt.generator_option(),
    space: opt.Space = opt.space_option(),
    n: int = opt.n_option(4, "Samples to edit (the first n rows of --latents, if given)."),
    seed: int = opt.seed_option(),
    latents: Path | None = opt.latents_option(None, "Bank or .npy of codes to edit."),
    start: float = opt.finite_option(-3.0, "--start", aliases=("--start-distance",)),
    end: float = opt.finite_option(3.0, "--end", aliases=("--end-distance",)),
    steps: int = typer.Option(7, "--steps", min=1, max=1024),
    strength: list[float] | None = typer.Option(
        None,
        "--strength",
        callback=opt.finite_list("--strength"),
        help="With several boundaries: one strength each (repeat).",
    ),
    mode: list[str] = typer.Option(
        [],
        "--mode",
        help="relative (x + s d, the default) or absolute (distance s); or, for a "
        "self-conditioned generator, ATTR=T: move attribute ATTR's mode to t = T in [0, 1] "
        "(repeat for several).",
    ),
    layers: str | None = typer.Option(None, "--layers", help="ws rows START:STOP."),
    calibrated: bool = typer.Option(
        False, "--calibrated", help="Strengths in evaluator-logit units of each target."
    ),
    evaluator: str = opt.evaluator_option(),
    bound: float = opt.finite_option(
        0.5,
        "--bound",
        1e-6,
        1e6,
        help="Calibrated: largest step as a share of the span the latents cover along the "
        "direction.",
    ),
    scale: int = opt.scale_option(),
    images: list[Path] | None = typer.Option(
        None,
        "--images",
        "-i",
        help="Edit these images instead: invert them first (PNG/JPEG files, a folder or an "
        "LMDB; repeat for several). Writes OUT/inversion/ and OUT/edit/.",
    ),
    invert_method: opt.InvertMethod = typer.Option(
        opt.InvertMethod("optimize"), "--invert-method", help="With --images: how to invert."
    ),
    invert_steps: int = typer.Option(
        500, "--invert-steps", min=1, max=1_000_000, help="With --images: projector steps."
    ),
    encoder: str | None = opt.encoder_option(
        "With --images and --invert-method encoder, the encoder"
    ),
    image_modes: opt.ImageModes = opt.image_modes_option("--image-modes"),
    sample_modes: opt.SampleModes | None = typer.Option(
        None,
        "--modes",
        help="Sampled latents on a self-conditioned generator: where each face's modes start, "
        "as `ganedit sample` draws them for the same seed (data: the data's mode distribution "
        "shipped with the model, the default where it ships one, else neutral; neutral; "
        "uniform).",
    ),
    align: bool = opt.align_option("With --images: "),
    truncation_psi: float | None = opt.trunc_option(
        None,
        "Truncation psi in [0, 1] to render at (default 1). Codes from a bank render at the "
        "bank's psi; another value is refused.",
    ),
    class_index: int | None = opt.class_option(),
    mode_names: str | None = opt.mode_names_option(),  # parsed to a tuple of names
    force: bool = opt.force_option(),
    device: str = opt.device_option(),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Move latents along directions: a labelled strip (one column per strength) and a GIF."""
    from ganedit.editing.edit import split_modes
    from ganedit.editing.run import EditConfig, run_edit, summary_lines
    from ganedit.inversion.projector import ProjectorConfig
    from ganedit.inversion.run import InvertConfig, check_image_edit

    ctx = RunContext.current(device, progress, overwrite)
    edit_mode, mode_settings = split_modes(mode)
    cfg = EditConfig(
        boundaries=tuple(str(b) for b in boundary), generator=generator, space=opt.value(space),
        n=n, seed=seed, latents=str(latents) if latents else None, start=start, end=end,
        steps=steps, strengths=tuple(strength or ()), mode=edit_mode,
        layers=_parse_layers(layers), calibrated=calibrated, bound=bound, scale=scale, force=force,
        modes=mode_settings, truncation_psi=truncation_psi, evaluator=evaluator,
        class_index=class_index,
        mode_names=mode_names, sample_modes=opt.value(sample_modes),
    )  # fmt: skip
    if images:
        check_image_edit(cfg)
        invert = InvertConfig(
            generator=cfg.generator, method=opt.value(invert_method), encoder=encoder,
            modes=opt.value(image_modes), align=align,
            # --space z projects into z and edits there (a z-only generator, a DCGAN); w and
            # ws project into w and edit the inverted codes in ws.
            projector=ProjectorConfig(steps=invert_steps, seed=seed,
                                      space="z" if cfg.space == "z" else "w"),
        )  # fmt: skip
        _edit_images(cfg, invert, images, out, ctx)
        return
    summary = run_edit(cfg, out, ctx=ctx)
    for line in summary_lines(summary):
        typer.echo(line)


def _edit_images(cfg, invert, images, out, ctx: RunContext) -> None:
    from ganedit.editing.run import summary_lines
    from ganedit.inversion.run import invert_and_edit
    from ganedit.inversion.run import summary_lines as invert_lines

    result = invert_and_edit(invert, cfg, images, out, ctx=ctx)
    for line in invert_lines(result["inversion"], Path(out) / "inversion"):
        typer.echo(line)
    for summary in result["edits"]:
        for line in summary_lines(summary):
            typer.echo(line)


@app.command("demo")
def demo_cmd(
    out: Path = opt.out_option("The demo's folder (re-running resumes it).", Path("demo_out")),
    n: int = opt.n_option(2000, "World renders written to world.lmdb."),
    eval_n: int = opt.eval_n_option(2000, "Held-out renders for the measuring networks."),
    generator: str = opt.generator_option(),
    study_n: int = typer.Option(
        20_000,
        "--study-n",
        min=0,
        max=opt.MAX_COUNT,
        help="Latent bank size of the direction study (0: skip it).",
    ),
    study_eval_n: int = typer.Option(100, "--study-eval-n", min=10, max=opt.MAX_COUNT),
    study_bootstrap: int = typer.Option(100, "--study-bootstrap", min=0, max=100_000),
    study_steps: int = typer.Option(8, "--study-steps", min=2, max=1000),
    selfcond_generator: str = typer.Option(
        "world64-sc",
        "--selfcond-generator",
        help="The self-conditioned generator the last part looks at.",
    ),
    selfcond_n: int = typer.Option(
        300,
        "--selfcond-n",
        min=0,
        max=opt.MAX_COUNT,
        help="Faces per measurement of the self-conditioned part (0: skip it).",
    ),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Run the main job on the embedded default and print the report."""
    from ganedit.demo import DemoConfig, run_demo

    if 0 < study_n < 100:
        raise UserInputError(f"expected --study-n of 0 or at least 100, received {study_n}")
    cfg = DemoConfig(
        n_render=n, n_eval=eval_n, generator=generator, study_n=study_n,
        study_eval_n=study_eval_n, study_bootstrap=study_bootstrap, study_steps=study_steps,
        selfcond_generator=selfcond_generator, selfcond_n=selfcond_n,
    )  # fmt: skip
    report = run_demo(cfg, out, ctx=RunContext.current(progress=progress, overwrite=overwrite))
    typer.echo(report.read_text())
    typer.echo(f"report: {report}")


@app.command("ui")
def ui_cmd(
    generator: str = opt.generator_option(),
    boundaries: list[Path] = typer.Option(
        [],
        "--boundaries",
        "-b",
        "--boundary",
        help="Boundary .npy files or folders of them: one slider each (repeat for several). "
        "Default: the directions ganedit ships for the generator (dcgan-digiface's; none for "
        "world64).",
    ),
    port: int = typer.Option(7860, "--port", min=0, max=65535, help="Port (0: a free one)."),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on; the default, loopback, lets only this machine connect.",
    ),
    max_upload_mb: float = opt.finite_option(
        10.0, "--max-upload-mb", 0.001, 1000.0, help="Largest image upload accepted (MB)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Load and check the generator and directions, then exit."
    ),
    evaluator: str = opt.evaluator_option(),
    identity: str = opt.identity_option(),
    device: str = opt.device_option(),
) -> None:
    """A local web editor: sliders per direction and mode, side-by-side methods, image
    upload with inversion, exports (needs `pip install 'ganedit[ui]'`; docs/ui.md)."""
    from ganedit.ui.server import UIConfig, bind, prepare, serve

    cfg = UIConfig(
        generator=generator, boundaries=tuple(str(b) for b in boundaries), host=host, port=port,
        device=device, max_upload_mb=max_upload_mb, evaluator=evaluator,
        identity=opt.identity_value(identity),
    )  # fmt: skip
    sock = None
    if not dry_run:
        _need_ui_extra()
        sock = bind(cfg.host, cfg.port)  # a taken port fails before the models load
    try:
        service, loaded = prepare(cfg)
    except KeyboardInterrupt:  # Ctrl-C while the models load: no traceback either
        typer.echo("ganedit ui: stopped before serving")
        raise typer.Exit(130) from None
    finally:
        if sock is not None and sys.exc_info()[0] is not None:
            sock.close()
    typer.echo(
        f"{loaded['identity']['name']}: {len(loaded['directions'])} direction(s) usable, "
        f"{len(loaded['refused'])} refused, {len(loaded['modes'])} mode slider(s)"
    )
    for refusal in loaded["refused"]:
        typer.echo(f"refused: {refusal['reason']}")
    if not dry_run:
        serve(cfg, service, announce=typer.echo, sock=sock)
        typer.echo("ganedit ui: stopped")


def _need_ui_extra() -> None:
    import importlib.util

    modules = ("fastapi", "uvicorn", "multipart")
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UserInputError(
            f"expected the web editor's packages (pip install 'ganedit[ui]'), received none of "
            f"{missing} installed"
        )
