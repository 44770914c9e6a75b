"""Inversion: train an encoder, invert images into codes."""

from __future__ import annotations

from pathlib import Path

import typer

from ganedit import cli_options as opt
from ganedit.cli._app import app
from ganedit.utils.context import RunContext


@app.command("train-encoder")
def train_encoder_cmd(
    out: Path = opt.out_option("Run folder: config, stats.jsonl, samples/, checkpoint/, encoder/."),
    generator: str = opt.generator_option(),
    data: Path | None = typer.Option(
        None,
        "--images",
        "-i",
        "--data",
        help="Images the generator did not make (LMDB or folder); default: world renders "
        "made on the fly (--preset, --data-seed).",
    ),
    data_seed: int = typer.Option(7001, "--data-seed", min=0, max=2**32 - 1),
    preset: str = typer.Option(
        "celeba",
        "--preset",
        help=opt.PRESET_HELP + " The world the renders come from without --images (balanced: "
        "the tails as often as the core).",
    ),
    steps: int = typer.Option(24_000, "--steps", min=1, max=10_000_000),
    batch_size: int = opt.batch_option(8, "Images per training step (all processes)."),
    lr: float = opt.finite_option(1e-4, "--lr", 1e-12, 1.0),
    progressive_start: int = typer.Option(
        4000, "--progressive-start", min=0, help="Step at which the first offset switches on."
    ),
    progressive_every: int = typer.Option(
        1500, "--progressive-every", min=1, help="Steps between further offsets."
    ),
    perceptual: opt.Perceptual = opt.perceptual_option(),
    pixel_weight: float = opt.finite_option(1.0, "--pixel-weight", 0.0, 1e6),
    perceptual_weight: float = opt.finite_option(0.8, "--perceptual-weight", 0.0, 1e6),
    identity_weight: float = opt.finite_option(0.5, "--identity-weight", 0.0, 1e6),
    latent_weight: float = opt.finite_option(
        1.0,
        "--latent-weight",
        0.0,
        1e6,
        help="Code loss on the generator's own samples (their ws are known).",
    ),
    delta_reg: float = opt.finite_option(2e-4, "--delta-reg", 0.0, 1e6, help="Offset norms."),
    adversarial_weight: float = opt.finite_option(
        0.1, "--adversarial-weight", 0.0, 1e6, help="Latent discriminator (0: none)."
    ),
    synthetic_fraction: float = opt.finite_option(
        0.5,
        "--synthetic-fraction",
        0.0,
        1.0,
        help="Share of each batch made of the generator's own samples.",
    ),
    seed: int = opt.seed_option(),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", min=1),
    sample_every: int = typer.Option(1000, "--sample-every", min=1),
    init_encoder: str | None = typer.Option(
        None,
        "--init-encoder",
        help="Start from this encoder (a shipped name or folder) instead of fresh weights.",
    ),
    labels: Path | None = typer.Option(
        None,
        "--labels",
        "-l",
        help="Self-conditioned generator: a selflabel store of --images; each image is "
        "decoded at its modes.",
    ),
    resume: bool = opt.resume_option(),
    device: str = opt.device_option(),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Train an e4e-style encoder (image -> ws) for a generator (resumable, torchrun-capable)."""
    from ganedit.inversion.train_encoder import EncoderTrainConfig, train_encoder
    from ganedit.selfcond.encoder import train_conditional_encoder

    cfg = EncoderTrainConfig(
        generator=generator, data=str(data) if data else None, data_seed=data_seed, world=preset,
        steps=steps,
        batch_size=batch_size, lr=lr, progressive_start=progressive_start,
        progressive_every=progressive_every, perceptual_net=opt.value(perceptual),
        pixel=pixel_weight, perceptual=perceptual_weight, identity=identity_weight,
        latent=latent_weight, delta_reg=delta_reg, adversarial=adversarial_weight,
        synthetic_fraction=synthetic_fraction, seed=seed, checkpoint_every=checkpoint_every,
        sample_every=sample_every, init_encoder=init_encoder,
        labels=str(labels) if labels else None,
    )  # fmt: skip
    train = train_conditional_encoder if labels is not None else train_encoder
    folder = train(cfg, out, resume, ctx=RunContext.current(device, progress, overwrite))
    typer.echo(
        f"{folder}: encoder for {generator} after {steps} steps (stats in {out}/stats.jsonl)"
    )


@app.command("invert")
def invert_cmd(
    images: list[Path] = typer.Option(
        ...,
        "--images",
        "-i",
        help="Images to invert: PNG/JPEG files, a folder or an LMDB (repeat for several).",
    ),
    out: Path = opt.out_option(
        "New folder: latents.npy (+ .json), per-image PNG/JSON, reconstructions.png."
    ),
    generator: str = opt.generator_option(),
    method: opt.InvertMethod = typer.Option(
        opt.InvertMethod("optimize"),
        "--method",
        help="optimize: the projector; encoder: one pass of an e4e-style encoder; pti: a "
        "pivot (--pivot), then pivotal tuning.",
    ),
    encoder: str | None = opt.encoder_option("Encoder for --method encoder or --pivot encoder"),
    pivot: opt.Pivot = typer.Option(
        opt.Pivot("optimize"), "--pivot", help="pti's pivot: the projector's w or the encoder's ws."
    ),
    modes: opt.ImageModes = opt.image_modes_option(),
    align: bool = opt.align_option(),
    space: opt.Space = typer.Option(
        opt.Space("w"), "--space", help="Space the projector optimises (output: ws)."
    ),
    steps: int = typer.Option(500, "--steps", min=1, max=1_000_000, help="Projector steps."),
    pti_steps: int = typer.Option(350, "--pti-steps", min=1, max=1_000_000),
    lr: float = opt.finite_option(0.1, "--lr", 1e-12, 10.0),
    noise: bool = typer.Option(
        True, "--optimize-noise/--no-optimize-noise", help="Optimise the noise maps too."
    ),
    perceptual: opt.Perceptual = opt.perceptual_option(),
    identity_weight: float = opt.finite_option(0.1, "--identity-weight", 0.0, 1e6),
    batch_size: int = opt.batch_option(8, "Images optimised together (independent)."),
    seed: int = opt.seed_option(0, "Image i's random draws depend only on (seed, i)."),
    device: str = opt.device_option(),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Invert images into a generator's latent space (optimisation, an encoder, pivotal tuning)."""
    from ganedit.inversion.perceptual import LossWeights
    from ganedit.inversion.projector import ProjectorConfig
    from ganedit.inversion.pti import PTIConfig
    from ganedit.inversion.run import InvertConfig, run_invert, summary_lines

    weights = LossWeights(pixel=1.0, perceptual=1.0, identity=identity_weight)
    cfg = InvertConfig(
        generator=generator, method=opt.value(method), perceptual=opt.value(perceptual),
        batch_size=batch_size, encoder=encoder, pivot=opt.value(pivot), modes=opt.value(modes),
        align=align, projector=ProjectorConfig(space=opt.value(space), steps=steps, lr=lr,
                                  optimize_noise=noise, weights=weights, seed=seed),
        pti=PTIConfig(steps=pti_steps, seed=seed),
    )  # fmt: skip
    summary = run_invert(cfg, images, out, ctx=RunContext.current(device, progress, overwrite))
    for line in summary_lines(summary, out):
        typer.echo(line)


@app.command("align")
def align_cmd(
    images: list[Path] = typer.Argument(
        ..., help="Photos: PNG/JPEG files, folders or LMDBs.", show_default=False
    ),
    out: Path = opt.out_option(
        "New folder: one PNG per image ({i:05d}.png; {i:05d}_{k}.png with --face all) and "
        "alignment.json."
    ),
    size: int | None = typer.Option(
        None, "--size", min=1, max=16384, help="Output size in px (default 1024, FFHQ's)."
    ),
    generator: str | None = opt.generator_option(
        None, "Align at this generator's resolution instead of --size."
    ),
    face: str = typer.Option(
        "largest",
        "--face",
        help="Which face of a photo: largest, all, or an index (0: the largest).",
        metavar="largest|all|N",
    ),
    upsample: int = typer.Option(
        1, "--upsample", min=0, max=4, help="Double the photo this often to find small faces."
    ),
    json_out: Path | None = opt.json_option("Also write alignment.json's summary here."),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Align faces in photos as FFHQ was made (dlib landmarks; needs ganedit[faces])."""
    from ganedit.cli._common import _expect_suffix, _outputs, _write_report
    from ganedit.errors import UserInputError
    from ganedit.inversion.align import parse_face
    from ganedit.inversion.align_run import AlignConfig, run_align
    from ganedit.models.face_landmarks import require_dlib

    require_dlib()
    if size is not None and generator is not None:
        raise UserInputError(
            f"expected --size or -g, received both (--size {size}, -g {generator})"
        )
    _expect_suffix(json_out, ".json", "--json")
    _outputs(json_out, overwrite=overwrite)
    if generator is not None:
        from ganedit.models.sources import load_generator

        size = load_generator(generator, "cpu").resolution
    cfg = AlignConfig(size=size or 1024, face=parse_face(face), upsample=upsample)
    summary = run_align(
        cfg, images, out, ctx=RunContext.current(progress=progress, overwrite=overwrite)
    )
    found = sum(r["faces"][0]["faces_found"] for r in summary["images"])
    typer.echo(
        f"{out}: {summary['n']} faces aligned at {cfg.size} px from {len(summary['images'])} "
        f"images ({found} faces found; alignment.json)"
    )
    _write_report(summary, json_out, overwrite=overwrite)
