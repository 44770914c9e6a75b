"""Self-conditioned GANs: label a data set, resample it, fine-tune the generator."""

from __future__ import annotations

from pathlib import Path

import typer

from ganedit import cli_options as opt
from ganedit.cli._app import app
from ganedit.utils.context import RunContext


@app.command("selflabel")
def selflabel_cmd(
    images: Path = opt.images_option("Data set to label: an LMDB or an image folder."),
    out: Path = opt.out_option("New folder: labels.npy [N, k], labels.json (its record)."),
    boundary: list[Path] = typer.Option(
        [], "--boundary", "-b", help="Boundary .npy whose distance labels each image (repeat)."
    ),
    generator: str = opt.generator_option(),
    encoder: str | None = opt.encoder_option("Encoder that inverts the images"),
    predictor: str | None = typer.Option(
        None, "--from-predictor", help="Label by a predictor's outputs instead (e.g. labeler)."
    ),
    table: Path | None = typer.Option(
        None, "--from-table", help="Label by a table's columns instead (.npz or .csv by index)."
    ),
    columns: str | None = typer.Option(
        None, "--columns", help="Comma-separated columns of --from-table / --from-predictor."
    ),
    merge: list[str] = typer.Option(
        [],
        "--merge",
        help="Take columns of finished label stores of the same images instead: STORE or "
        "STORE:col,col (repeat).",
    ),
    save_codes: bool = typer.Option(False, "--save-codes", help="Also write codes.npy (ws)."),
    chunk: int = typer.Option(
        1024, "--chunk", min=1, max=10_000_000, help="Images per kept chunk (resume unit)."
    ),
    batch_size: int = opt.batch_option(64),
    device: str = opt.device_option(),
    force: bool = opt.force_option(),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Label a data set by its codes' distances to boundaries (SC-GAN's self-labels)."""
    from ganedit.selfcond.labels import SelfLabelConfig
    from ganedit.selfcond.run import run_selflabel, selflabel_summary

    names = [c.strip() for c in columns.split(",") if c.strip()] if columns else []
    record = run_selflabel(
        images, out, generator=generator, boundaries=boundary, encoder=encoder,
        predictor=predictor, table=table, columns=names, merge=merge,
        config=SelfLabelConfig(batch_size=batch_size, chunk=chunk, save_codes=save_codes),
        force=force, ctx=RunContext.current(device, progress, overwrite),
    )  # fmt: skip
    for line in selflabel_summary(record, out):
        typer.echo(line)


@app.command("resample")
def resample_cmd(
    labels: Path = typer.Option(..., "--labels", "-l", help="A selflabel output folder."),
    out: Path = opt.out_option("New folder: indices.npy, report.json, histograms.png."),
    scheme: opt.ResampleScheme = typer.Option(
        opt.ResampleScheme("knn"),
        "--scheme",
        help="knn: SC-GAN's uniform queries, one of the nearest images each; density: "
        "inverse-density weights, capped by --max-repeat.",
    ),
    attributes: str | None = typer.Option(
        None, "--attributes", help="Comma-separated attributes to balance (default: all)."
    ),
    n: int | None = typer.Option(
        None, "--n", "-n", min=1, help="Draws (default: as many as there are images)."
    ),
    neighbours: int = typer.Option(10, "--neighbours", min=1, max=10_000),
    max_repeat: float = opt.finite_option(10.0, "--max-repeat", 1.0, 1e12),
    seed: int = opt.seed_option(0, "Draw i depends only on (seed, i)."),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Re-sample labelled data toward a uniform joint distribution of its attributes."""
    from ganedit.selfcond.resample import ResampleConfig
    from ganedit.selfcond.run import resample_summary, run_resample

    config = ResampleConfig(
        scheme=opt.value(scheme), n=n, neighbours=neighbours, max_repeat=max_repeat, seed=seed
    )
    names = [a.strip() for a in attributes.split(",") if a.strip()] if attributes else None
    report = run_resample(labels, out, config, names, ctx=RunContext.current(overwrite=overwrite))
    for line in resample_summary(report, out):
        typer.echo(line)


@app.command("train-selfcond")
def train_selfcond_cmd(
    images: Path = opt.images_option("Training images (LMDB or folder) the labels describe."),
    labels: Path = typer.Option(..., "--labels", "-l", help="A selflabel folder of the images."),
    out: Path = opt.out_option("Run folder: config, stats.jsonl, samples/, checkpoint/, g_ema/."),
    generator: str = opt.generator_option(
        help="The pretrained generator to self-condition; a train-gan run folder (or its "
        "checkpoint/) brings the discriminator it was trained against."
    ),
    resample: Path | None = typer.Option(
        None, "--resample", help="A resample folder: draw the images by its indices.npy."
    ),
    attributes: str | None = typer.Option(
        None, "--attributes", help="Comma-separated label columns that become modes (all)."
    ),
    init: opt.SelfCondInit = typer.Option(
        opt.SelfCondInit("offset"),
        "--init",
        help="offset: modes start as zero offsets (the pretrained model exactly); copy: "
        "SC-GAN's copies of the constant.",
    ),
    md_d: float = opt.finite_option(0.5, "--md-d", 0.0, 1e6),
    md_g: float = opt.finite_option(0.5, "--md-g", 0.0, 1e6),
    mode_loss: opt.SelfCondModeLoss = typer.Option(
        opt.SelfCondModeLoss("ac"),
        "--mode-loss",
        help="ac: SC-GAN's mode classifier; twin: minus a twin classifier of the fakes "
        "(TAC-GAN), which keeps z's variety within a mode.",
    ),
    fake_modes: opt.SelfCondFakeModes = typer.Option(
        opt.SelfCondFakeModes("uniform"),
        "--fake-modes",
        help="uniform: the fakes' modes t ~ U(0, 1) (SC-GAN); data: the real images' modes, "
        "drawn as the re-sampled batches draw them.",
    ),
    neutral_share: float = opt.finite_option(
        0.0,
        "--neutral-share",
        0.0,
        1.0,
        help="Share of the fakes' attributes drawn at the neutral mode (t = 0.5) instead of "
        "U(0, 1), so the mode edits start from is trained too.",
    ),
    iterations: int = typer.Option(3000, "--iter", "--iterations", min=1, max=100_000_000),
    d_warmup: int = typer.Option(
        500, "--d-warmup", min=0, max=100_000_000, help="Discriminator-only steps first."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, max=65_536, help="Default: the pretrained run's."
    ),
    lr: float | None = opt.finite_option(None, "--lr", 1e-12, 10.0),
    r1: float | None = opt.finite_option(None, "--r1", 0.0, 1e6),
    seed: int = opt.seed_option(),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", min=1, max=100_000_000),
    sample_every: int = typer.Option(500, "--sample-every", min=1, max=100_000_000),
    probe_every: int = typer.Option(
        0,
        "--probe-every",
        min=0,
        max=100_000_000,
        help="Every N steps (0: never), the identity diversity and yaw spread of g_ema's faces "
        "at the neutral and at uniform modes (face-world networks; probe.jsonl).",
    ),
    resume: bool = opt.resume_option(),
    device: str = opt.device_option(),
    progress: bool = opt.progress_option(),
) -> None:
    """Fine-tune a generator into a self-conditioned one (SC-GAN) on labelled images."""
    from ganedit.selfcond.train import SelfCondConfig, train_selfcond

    names = tuple(a.strip() for a in attributes.split(",") if a.strip()) if attributes else None
    cfg = SelfCondConfig(
        generator=generator, data=str(images), labels=str(labels),
        resample=None if resample is None else str(resample), attributes=names,
        init=opt.value(init), md_d=md_d, md_g=md_g, mode_loss=opt.value(mode_loss), fake_modes=opt.value(fake_modes),
        neutral_share=neutral_share,
        iterations=iterations, d_warmup=d_warmup,
        batch=batch_size, lr=lr, r1=r1, seed=seed, checkpoint_every=checkpoint_every,
        sample_every=sample_every, probe_every=probe_every,
    )  # fmt: skip
    ctx = RunContext.current(device, progress)
    typer.echo(str(train_selfcond(cfg, out, resume, ctx=ctx)))
