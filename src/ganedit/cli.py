"""The one command-line app. Each subcommand parses, builds a config, calls one library
function and writes its artifacts; user mistakes become one line on stderr and exit code 2."""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

import typer

from ganedit import __version__
from ganedit.errors import UserInputError

app = typer.Typer(
    help="ganedit: controllable editing of pretrained GANs.",
    pretty_exceptions_enable=False,
    add_completion=False,
)
world_app = typer.Typer(
    help="The synthetic face world: render data sets and contact sheets.", no_args_is_help=True
)
app.add_typer(world_app, name="world")

log = logging.getLogger("ganedit")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    _setup_logging(verbose)
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


PRESET_HELP = "Preset name (celeba, independent, balanced) or a world config TOML file."
# Options shared by several commands, declared once.
PROGRESS_OPTION = typer.Option(True, "--progress/--no-progress", help="Show a progress bar.")
DEVICE_OPTION = typer.Option("cpu", "--device", help="torch device: cpu, cuda, cuda:1, ...")
SEED_OPTION = typer.Option(0, "--seed", help="Sample i depends only on (seed, i).")
GENERATOR_HELP = "world64, world64-v1, dcgan-digiface, a StyleGAN2-pytorch .pt, or a model folder."


@world_app.command("render")
def world_render(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output: a path ending in .lmdb for an LMDB, else an image folder."
    ),
    preset: str = typer.Option("celeba", "--preset", "--config", help=PRESET_HELP),
    n: int = typer.Option(50000, "--n", "-n", min=1, help="Number of images."),
    size: int = typer.Option(64, "--size", help="Image size, a power of two from 16 to 256."),
    seed: int = SEED_OPTION,
    image_format: str = typer.Option(
        "png", "--format", help="Encoding of each image: png or jpeg."
    ),
    batch_size: int = typer.Option(512, "--batch-size", min=1),
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Render N faces with all ground-truth factors (labels.npz beside the images)."""
    from ganedit.world.config import load_world_config
    from ganedit.world.dataset import RenderJob, write_world_dataset

    job = RenderJob(n=n, size=size, seed=seed, image_format=image_format, batch_size=batch_size)
    path = write_world_dataset(load_world_config(preset), job, out, progress=progress)
    typer.echo(str(path))


@world_app.command("sheet")
def world_sheet(
    out: Path = typer.Option(Path("sheet.png"), "--out", "-o", help="PNG file to write."),
    preset: str = typer.Option("celeba", "--preset", "--config", help=PRESET_HELP),
    rows: int = typer.Option(6, "--rows", min=1, help="Identities, one per row."),
    size: int = typer.Option(64, "--size", help="Render size of each face."),
    scale: int = typer.Option(2, "--scale", min=1, help="Pixel upscaling for viewing."),
    seed: int = SEED_OPTION,
) -> None:
    """Contact sheet: each row one identity, each column one attribute off/on, then a yaw sweep."""
    from ganedit.utils.files import atomic_path, write_json
    from ganedit.world.config import load_world_config
    from ganedit.world.sheet import make_sheet

    _expect_suffix(out, ".png")
    world = load_world_config(preset)
    image = make_sheet(world, rows=rows, size=size, seed=seed, scale=scale)
    with atomic_path(out) as tmp:
        image.save(tmp, format="png")
    write_json(
        out.with_suffix(".json"),
        {"world": world.to_dict(), "rows": rows, "size": size, "seed": seed},
    )
    typer.echo(str(out))


@app.command("train-predictor")
def train_predictor_cmd(
    kind: str = typer.Option(..., "--kind", help="labeler, evaluator or identity."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run folder (checkpoints, stats, final model)."
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Training steps (default: the shipped recipe)."
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", min=2),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the run folder's checkpoint."
    ),
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Train a measuring network on renders made on the fly (resumable)."""
    from ganedit.training.predictors import KINDS, PredictorTrainConfig, train_predictor

    if kind not in KINDS:
        raise UserInputError(f"expected --kind in {list(KINDS)}, received {kind!r}")
    overrides = {
        k: v for k, v in {"steps": steps, "batch_size": batch_size}.items() if v is not None
    }
    cfg = PredictorTrainConfig.for_kind(kind, **overrides)
    typer.echo(str(train_predictor(cfg, out, resume=resume, progress=progress)))


@app.command("evaluate-predictor")
def evaluate_predictor_cmd(
    model: str = typer.Option(
        ..., "--model", "-m", help="labeler, evaluator, identity, or a model folder."
    ),
    n: int = typer.Option(
        5000, "--n", "-n", min=10, help="Held-out renders (identities for the embedder)."
    ),
    preset: str = typer.Option("celeba", "--preset", help=PRESET_HELP),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the report as JSON here too."),
    resample_scene: bool = typer.Option(
        False,
        "--resample-scene",
        help="Identity: the second view also gets another background, clothes and light.",
    ),
) -> None:
    """Held-out quality of a measuring network on fresh renders."""

    from ganedit.evaluation.predictors import evaluate_attribute_net, evaluate_identity_net
    from ganedit.models.predictors import IdentityNet
    from ganedit.models.registry import load_predictor

    net = load_predictor(model)
    if isinstance(net, IdentityNet):
        report = evaluate_identity_net(
            net, n_identities=n, preset=preset, resample_scene=resample_scene
        )
    else:
        report = evaluate_attribute_net(net, n=n, preset=preset)
    report["model"] = model
    _emit_report(report, out)


@app.command("train-gan")
def train_gan_cmd(
    data: Path = typer.Option(
        ..., "--data", "-d", help="Image LMDB (StyleGAN2-pytorch layout) or folder."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run folder: config, stats.jsonl, samples/, checkpoint/, g_ema/."
    ),
    size: int = typer.Option(64, "--size", help="Image size (power of two, 8 to 1024)."),
    iterations: int = typer.Option(10_000, "--iter", "--iterations", min=1),
    batch: int = typer.Option(16, "--batch", min=2),
    style_dim: int = typer.Option(512, "--style-dim", min=1),
    n_mlp: int = typer.Option(8, "--n-mlp", min=1),
    channel_multiplier: int = typer.Option(2, "--channel-multiplier", min=1),
    channel_max: int = typer.Option(512, "--channel-max", min=1),
    channels: str | None = typer.Option(
        None,
        "--channels",
        help="Channels per resolution from 4 px up, e.g. 96,96,96,48,32 (overrides the "
        "multiplier and cap).",
    ),
    lr: float = typer.Option(0.002, "--lr"),
    r1: float = typer.Option(10.0, "--r1", help="R1 weight (gamma)."),
    path_regularize: float = typer.Option(2.0, "--path-regularize"),
    mixing: float = typer.Option(0.9, "--mixing"),
    mbstd_group: int = typer.Option(
        4,
        "--mbstd-group",
        min=1,
        help="Discriminator's minibatch-stddev group (divides the batch).",
    ),
    ema_kimg: float = typer.Option(
        10.0, "--ema-kimg", min=0.0, help="EMA half-life in thousands of images."
    ),
    ema_rampup: float | None = typer.Option(
        None, "--ema-rampup", min=0.0, help="Cap the EMA half-life at this share of images seen."
    ),
    flip: bool = typer.Option(
        False, "--flip/--no-flip", help="Horizontal flips (off when pose matters)."
    ),
    seed: int = SEED_OPTION,
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", min=1),
    sample_every: int = typer.Option(500, "--sample-every", min=1),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the run folder's checkpoint."
    ),
    ckpt: Path | None = typer.Option(
        None, "--ckpt", help="Fine-tune: start from this run's checkpoint folder."
    ),
    device: str = DEVICE_OPTION,
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Train a StyleGAN2 (resumable; fine-tunes from --ckpt)."""
    from ganedit.training.gan import GanConfig, train_gan

    cfg = GanConfig(
        data=str(data), size=size, iterations=iterations, batch=batch, style_dim=style_dim, n_mlp=n_mlp,
        channel_multiplier=channel_multiplier, channel_max=channel_max,
        channels=_int_list(channels, "--channels"), lr=lr, r1=r1,
        path_regularize=path_regularize, mixing=mixing, mbstd_group=mbstd_group,
        ema_kimg=ema_kimg, ema_rampup=ema_rampup,
        flip=flip, seed=seed,
        checkpoint_every=checkpoint_every, sample_every=sample_every,
    )  # fmt: skip
    typer.echo(
        str(train_gan(cfg, out, resume=resume, init_from=ckpt, device=device, progress=progress))
    )


@app.command("sample")
def sample_cmd(
    generator: str = typer.Option(
        "world64",
        "--generator",
        "-g",
        "-m",
        help=GENERATOR_HELP,
    ),
    out: Path = typer.Option(Path("grid.png"), "--out", "-o", help="PNG grid to write."),
    n: int = typer.Option(16, "--n", "-n", min=1),
    seed: int = SEED_OPTION,
    truncation_psi: float = typer.Option(1.0, "--truncation-psi", "--trunc"),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    device: str = DEVICE_OPTION,
) -> None:
    """Write a grid of samples from any registered generator."""
    import math

    from PIL import Image

    from ganedit.models.sources import load_generator
    from ganedit.utils.files import atomic_path, write_json
    from ganedit.utils.images import grid, to_uint8

    _expect_suffix(out, ".png")
    source = load_generator(generator, device=device, truncation_psi=truncation_psi)
    images = source.synthesize(source.sample_z(n, seed), "z", batch_size=batch_size)
    with atomic_path(out) as tmp:
        Image.fromarray(grid(to_uint8(images), cols=math.ceil(math.sqrt(n)))).save(
            tmp, format="png"
        )
    write_json(
        out.with_suffix(".json"),
        {"generator": generator, "n": n, "seed": seed, "truncation_psi": truncation_psi},
    )
    typer.echo(str(out))


@app.command("evaluate-generator")
def evaluate_generator_cmd(
    generator: str = typer.Option(
        "world64", "--generator", "-g", help="A generator of the face world (name, .pt or folder)."
    ),
    preset: str = typer.Option("celeba", "--preset", help=PRESET_HELP),
    n: int = typer.Option(
        20_000, "--n", "-n", min=2, help="Generated samples scored by the labeler."
    ),
    n_fd: int = typer.Option(
        10_000, "--n-fd", min=2, help="Samples per set for the Frechet distance."
    ),
    threshold: float = typer.Option(0.9, "--threshold", min=0.5, max=1.0),
    seed: int = SEED_OPTION,
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the report as JSON here too."),
    device: str = DEVICE_OPTION,
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Frechet distance, attribute marginals and correlations, confident share of a generator."""

    from ganedit.evaluation.generator import evaluate_generator
    from ganedit.models.sources import load_generator
    from ganedit.world.config import load_world_config

    if n_fd > n:
        raise UserInputError(f"expected --n-fd at most --n ({n}), received {n_fd}")
    source = load_generator(generator, device=device)
    report = evaluate_generator(
        source,
        load_world_config(preset),
        n=n,
        n_fd=n_fd,
        seed=seed,
        threshold=threshold,
        progress=progress,
    )
    report["generator"] = generator
    _emit_report(report, out)


@app.command("score")
def score_cmd(
    images: Path = typer.Option(
        ..., "--images", "-i", help="An image LMDB (StyleGAN2-pytorch layout) or folder."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Scores file (.npz, one array per attribute)."
    ),
    model: str = typer.Option(
        "labeler", "--model", "-m", help="labeler, evaluator, or a model folder."
    ),
    batch_size: int = typer.Option(256, "--batch-size", min=1),
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Score every image with an attribute predictor (probabilities per attribute, yaw)."""
    from ganedit.models.registry import load_predictor
    from ganedit.models.scoring import save_scores, score_dataset
    from ganedit.utils.files import write_json
    from ganedit.datasets import ImageDataset

    _expect_suffix(out, ".npz")
    data = ImageDataset(images)
    scores = score_dataset(data, load_predictor(model), batch_size=batch_size, progress=progress)
    save_scores(scores, out)
    write_json(
        out.with_suffix(".json"),
        {"images": str(images), "model": model, "n": len(data), "keys": sorted(scores)},
    )
    typer.echo(str(out))


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(
        Path("demo_out"), "--out", "-o", help="Folder for everything the demo writes."
    ),
    n_render: int = typer.Option(2000, "--n-render", min=1),
    n_eval: int = typer.Option(2000, "--n-eval", min=10),
    generator: str = typer.Option("world64", "--generator", "-g", "-m", help=GENERATOR_HELP),
    study_n: int = typer.Option(
        20_000, "--study-n", min=0, help="Latent bank size of the direction study (0: skip it)."
    ),
    study_eval_n: int = typer.Option(100, "--study-eval-n", min=10),
    study_bootstrap: int = typer.Option(100, "--study-bootstrap", min=0),
    study_steps: int = typer.Option(8, "--study-steps", min=2),
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Run the main job on the embedded default and print the report path."""
    from ganedit.demo import DemoConfig, run_demo

    cfg = DemoConfig(
        n_render=n_render, n_eval=n_eval, generator=generator, study_n=study_n,
        study_eval_n=study_eval_n, study_bootstrap=study_bootstrap, study_steps=study_steps,
    )  # fmt: skip
    log.info("demo config: %s", dataclasses.asdict(cfg))
    report = run_demo(cfg, out, progress=progress)
    typer.echo(report.read_text())
    typer.echo(f"report: {report}")


@app.command("study")
def study_cmd(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Study folder: bank.zarr, boundaries/, fitting.json, report/."
    ),
    generator: str = typer.Option("world64", "--generator", "-g", "-m", help=GENERATOR_HELP),
    n: int = typer.Option(200_000, "--n", "-n", min=100, help="Latent bank size."),
    seed: int = SEED_OPTION,
    space: str = typer.Option("w", "--space", "-s", help="Latent space: z or w."),
    threshold: float = typer.Option(0.9, "--threshold", "-t", min=0.5, max=1.0),
    mab_n: int = typer.Option(
        1000, "--mab-n", min=0, help="mab subset size (0: the largest equal-count size)."
    ),
    eval_n: int = typer.Option(500, "--eval-n", min=10, help="Held-out latents to edit."),
    bootstrap: int = typer.Option(200, "--bootstrap", min=0),
    steps: int = typer.Option(12, "--steps", min=2),
    device: str = DEVICE_OPTION,
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Every method's directions for every attribute on one generator, evaluated (the committed
    report's command); a finished bank in --out is reused."""
    from ganedit.pipeline import StudyConfig, run_direction_study

    cfg = StudyConfig(
        generator=generator, n=n, seed=seed, space=space, threshold=threshold,
        mab_n=mab_n or None, eval_n=eval_n, bootstrap=bootstrap, steps=steps,
    )  # fmt: skip
    typer.echo(str(run_direction_study(cfg, out, device=device, progress=progress)))


bank_app = typer.Typer(
    help="Latent banks: export to and import from the reference .npy files.", no_args_is_help=True
)
app.add_typer(bank_app, name="bank")
SPACE_OPTION = typer.Option("w", "--space", "-s", help="Latent space: z, w or ws.")


@app.command("generate")
def generate_cmd(
    generator: str = typer.Option("world64", "--generator", "-g", "-m", help=GENERATOR_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Latent bank to write (*.zarr)."),
    n: int = typer.Option(10_000, "--n", "-n", min=1, help="Number of samples."),
    seed: int = SEED_OPTION,
    predictor: str = typer.Option(
        "labeler", "--predictor", help="Scoring network (labeler, evaluator, a folder) or none."
    ),
    truncation_psi: float = typer.Option(1.0, "--truncation-psi", "--trunc"),
    chunk_size: int = typer.Option(4096, "--chunk-size", min=1),
    batch_size: int = typer.Option(256, "--batch-size", min=1),
    store_ws: bool = typer.Option(False, "--store-ws", help="Also store ws [N, L, D]."),
    save_images: bool = typer.Option(False, "--save-images", help="Also write one PNG per sample."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue an interrupted run."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing bank."),
    device: str = DEVICE_OPTION,
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Sample latents, synthesise, score and store them in a latent bank (resumable)."""
    from ganedit.latents import GenerateConfig, generate_bank

    cfg = GenerateConfig(
        generator=generator, predictor=predictor, n=n, seed=seed, truncation_psi=truncation_psi,
        chunk_size=chunk_size, batch_size=batch_size, store_ws=store_ws, save_images=save_images,
    )  # fmt: skip
    path = generate_bank(
        cfg, out, device=device, progress=progress, resume=resume, overwrite=overwrite
    )
    typer.echo(str(path))


@bank_app.command("export")
def bank_export_cmd(
    bank: Path = typer.Argument(..., help="Latent bank (*.zarr)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for z.npy, w.npy, scores..."),
) -> None:
    """Write z.npy, w.npy, wp.npy, <attr>_scores.npy and scores_dict.npy."""
    from ganedit.latents import export_reference

    typer.echo(str(export_reference(bank, out)))


@bank_app.command("import")
def bank_import_cmd(
    folder: Path = typer.Argument(..., help="Folder with z.npy (+ w.npy, wp.npy) and scores."),
    out: Path = typer.Option(..., "--out", "-o", help="Latent bank to write (*.zarr)."),
    generator: str = typer.Option("imported", "--generator", "-m", help="Recorded origin."),
) -> None:
    """Build a bank from the reference files (pickled score dicts are checked, never run)."""
    from ganedit.latents import import_reference

    typer.echo(str(import_reference(folder, out, generator=generator)))


@app.command("contingency")
def contingency_cmd(
    latents: Path | None = typer.Option(
        None, "--latents", "--bank", "-c", help="Latent bank holding the scores."
    ),
    scores: Path | None = typer.Option(
        None, "--scores", "-s", help="scores_dict.npy / .npz instead of a bank."
    ),
    threshold: float | None = typer.Option(
        0.9, "--threshold", "-t", help="Keep samples with p > t or p < 1 - t on every attribute."
    ),
    attributes: list[str] | None = typer.Option(
        None, "--attribute", "-a", help="Attributes (repeat); default: all but yaw."
    ),
    heatmap: Path | None = typer.Option(None, "--heatmap", help="PNG heatmap to write."),
    out: Path | None = typer.Option(None, "--out", "-o", help="JSON of the table."),
) -> None:
    """Confidence filter and the contingency table over all attributes."""
    from rich.console import Console

    from ganedit.directions.display import rich_table, save_heatmap
    from ganedit.directions.fit import load_scores
    from ganedit.directions.sampling import ContingencyTable

    if latents is None and scores is None:
        raise UserInputError("expected --latents BANK or --scores FILE, received neither")
    table_scores = load_scores(str(latents or ""), str(scores) if scores else None, "")
    table = ContingencyTable.from_scores(table_scores, attributes or None, threshold)
    Console(stderr=True).print(rich_table(table, threshold))
    if heatmap is not None:
        _expect_suffix(heatmap, ".png")
        save_heatmap(table, heatmap)
    _emit_report({"threshold": threshold, **table.to_dict()}, out)


@app.command("boundary")
def boundary_cmd(
    method: str = typer.Option(
        "regression",
        "--method",
        help="regression (default: the lowest off-target drift without post-processing in the "
        "200k study, docs/directions_report), conditional, interfacegan, mab, stratified, fisher.",
    ),
    latents: Path = typer.Option(
        ..., "--latents", "--latent-codes-path", "-c", help="Latent bank or a .npy of codes."
    ),
    scores: Path | None = typer.Option(
        None, "--scores", "--scores-path", "-s", help="Scores file (default: the bank's)."
    ),
    attribute: str = typer.Option(..., "--attribute", "-a", help="Target attribute."),
    out: Path = typer.Option(..., "--out", "-o", help="Boundary .npy (a .json sidecar beside)."),
    space: str = typer.Option("w", "--space", help="Latent space of a bank: z, w or ws."),
    n: float | None = typer.Option(
        None, "--n", "-n", help="mab: subset size; interfacegan: like --ratio (reference -n)."
    ),
    threshold: float | None = typer.Option(None, "--threshold", "-t", help="Confidence threshold."),
    ratio: float | None = typer.Option(None, "--ratio", help="interfacegan: top/bottom share."),
    quota: str | None = typer.Option(None, "--quota", help="mab: random (published) or exact."),
    solver: str | None = typer.Option(None, "--solver", help="interfacegan: fast or kernel."),
    base: str = typer.Option("interfacegan", "--base", help="conditional: the method projected."),
    conditions: list[Path] | None = typer.Option(
        None, "--conditions", help="conditional: boundaries to be orthogonal to."
    ),
    seed: int = SEED_OPTION,
) -> None:
    """Learn one attribute direction (InterFaceGAN-compatible .npy + JSON sidecar)."""
    from ganedit.directions.fit import BoundaryConfig, fit_boundary

    _expect_suffix(out, ".npy")
    ratio, count = _reference_n(method if method != "conditional" else base, n, ratio)
    cfg = BoundaryConfig(
        method=method, attribute=attribute, latents=str(latents),
        scores=str(scores) if scores else None, space=space, n=count, threshold=threshold,
        ratio=ratio, quota=quota, solver=solver, base=base,
        conditions=tuple(str(c) for c in conditions or ()), seed=seed,
    )  # fmt: skip
    estimator = fit_boundary(cfg, out)
    _emit_report({"boundary": str(out), **estimator.summary()}, None)


def _reference_n(method: str, n: float | None, ratio: float | None):
    """-n means what it meant in each reference script: IFG's num-or-ratio, MAB's subset size."""
    if n is None:
        return ratio, None
    if method == "interfacegan":
        if ratio is not None:
            raise UserInputError("expected one of -n and --ratio for interfacegan, received both")
        return n, None
    if n != int(n) or n < 1:
        raise UserInputError(f"expected a whole subset size for --n, received {n}")
    return ratio, int(n)


@app.command("edit")
def edit_cmd(
    boundary: list[Path] = typer.Option(
        ..., "--boundary", "--boundary-path", "-b", help="Direction .npy (repeat to combine)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder: strip.png, edit.gif, latents.npy."),
    generator: str = typer.Option("world64", "--generator", "-g", "-m", help=GENERATOR_HELP),
    space: str = SPACE_OPTION,
    n: int = typer.Option(4, "--n", "-n", min=1, help="Samples to edit (when no --latents)."),
    seed: int = SEED_OPTION,
    latents: Path | None = typer.Option(
        None, "--latents", "--input-latent-codes-path", "-i", help="Bank or .npy to edit."
    ),
    start: float = typer.Option(-3.0, "--start", "--start-distance"),
    end: float = typer.Option(3.0, "--end", "--end-distance"),
    steps: int = typer.Option(7, "--steps", min=1),
    strength: list[float] | None = typer.Option(
        None, "--strength", help="With several boundaries: one strength each (repeat)."
    ),
    mode: str = typer.Option("relative", "--mode", help="relative (x + s d) or absolute."),
    layers: str | None = typer.Option(None, "--layers", help="ws rows START:STOP."),
    calibrated: bool = typer.Option(
        False, "--calibrated", help="Strengths in evaluator-logit units of the target."
    ),
    device: str = DEVICE_OPTION,
) -> None:
    """Move latents along directions and write an image strip and an animated GIF."""
    from ganedit.editing.run import EditConfig, run_edit

    cfg = EditConfig(
        boundaries=tuple(str(b) for b in boundary), generator=generator, space=space, n=n,
        seed=seed, latents=str(latents) if latents else None, start=start, end=end, steps=steps,
        strengths=tuple(strength or ()), mode=mode, layers=_parse_layers(layers),
        calibrated=calibrated,
    )  # fmt: skip
    typer.echo(str(run_edit(cfg, out, device=device)))


def _int_list(text: str | None, flag: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UserInputError(
            f"expected {flag} as comma-separated integers, received {text!r}"
        ) from None


def _parse_layers(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        start, stop = (int(v) for v in text.split(":"))
    except ValueError:
        raise UserInputError(f"expected --layers START:STOP, received {text!r}") from None
    return start, stop


@app.command("evaluate")
def evaluate_cmd(
    boundary: list[Path] = typer.Option(
        ..., "--boundary", "-b", help="Direction .npy files (repeat); names from their sidecars."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder (report.md, JSON, PNGs)."),
    generator: str = typer.Option("world64", "--generator", "-g", "-m", help=GENERATOR_HELP),
    space: str = SPACE_OPTION,
    n: int = typer.Option(500, "--n", "-n", min=10, help="Held-out latents."),
    seed: int = typer.Option(424242, "--seed", help="Seed of the held-out latents."),
    bootstrap: int = typer.Option(200, "--bootstrap", min=0),
    steps: int = typer.Option(12, "--steps", min=2),
    device: str = DEVICE_OPTION,
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Measure disentanglement of directions with the evaluator and the identity embedder."""
    from ganedit.evaluation.directions import DirectionEvalConfig
    from ganedit.pipeline import evaluate_boundary_files

    cfg = DirectionEvalConfig(
        generator=generator, space=space, n=n, seed=seed, bootstrap=bootstrap, steps=steps
    )
    path = evaluate_boundary_files(cfg, [str(b) for b in boundary], out, device, progress)
    typer.echo(str(path))


def _emit_report(report: dict, out: Path | None) -> None:
    """Print a report as JSON, and write it to `out` too when given."""
    import json

    from ganedit.utils.files import write_json

    if out is not None:
        write_json(out, report)
    typer.echo(json.dumps(report, indent=2))


def _expect_suffix(path: Path, suffix: str) -> None:
    if path.suffix.lower() != suffix:
        raise UserInputError(f"expected a {suffix} output path, received {str(path)!r}")


def _expand_conditions(argv: list[str]) -> list[str]:
    """`--conditions A.npy B.npy` (the reference's spelling) -> `--conditions A.npy --conditions B.npy`."""
    out, taking = [], False
    for token in argv:
        if token == "--conditions":
            taking = True
            continue
        if taking and not token.startswith("-"):
            out += ["--conditions", token]
            continue
        taking = False
        out.append(token)
    return out


def main() -> None:
    # Typer handles its own usage errors (exit code 2); ours get the same treatment.
    try:
        app(args=_expand_conditions(sys.argv[1:]))
    except UserInputError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
