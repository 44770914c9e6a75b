"""The one command-line app. Each subcommand parses, builds a config, calls one library
function and prints a short human summary (full JSON to a file on request).

The error contract: a user mistake (GaneditError: bad input, damaged file, provenance mismatch,
a busy output, a method the data cannot serve, or a usage error) prints one line on stderr,
`error: expected ..., received ...`, and exits with code 2; anything else is an internal failure
and keeps its traceback (exit code 1). The shared options and their one meaning per flag are
declared in `cli_options` (table in docs/cli.md).
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from pathlib import Path

import typer

from ganedit import __version__, cli_paths
from ganedit import cli_options as opt
from ganedit.choices import DEFAULT_METHOD
from ganedit.errors import GaneditError, UserInputError
from ganedit.utils import threads as cpu_threads
from ganedit.utils.context import RunContext

app = typer.Typer(
    help="ganedit: controllable editing of pretrained GANs.",
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
world_app = typer.Typer(
    help="The synthetic face world: render data sets and contact sheets.", no_args_is_help=True
)
app.add_typer(world_app, name="world")
bank_app = typer.Typer(
    help="Latent banks: export to and import from the reference .npy files.", no_args_is_help=True
)
app.add_typer(bank_app, name="bank")

log = logging.getLogger("ganedit")


LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class _HeldBack(logging.Handler):
    """The warnings of a run in the default mode, printed once the command has finished: a
    user mistake then prints only its one line, whatever was logged before it was found
    (-v and -vv print the diary as it is written)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def let_go(self, show: bool) -> None:
        records, self.records = self.records, []
        for record in records if show else ():
            sys.stderr.write(self.format(record) + "\n")


_HELD = _HeldBack()


def _setup_logging(verbose: int) -> None:
    # Warnings by default: the terminal gets the command's summary, not the library's diary.
    if verbose == 0:
        logging.basicConfig(level=logging.WARNING, handlers=[_HELD], force=True)
        return
    logging.basicConfig(
        level=logging.INFO if verbose == 1 else logging.DEBUG,
        format=LOG_FORMAT,
        stream=sys.stderr,
        force=True,  # the stream of this run (in-process callers swap sys.stderr)
    )


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="More logging: -v progress notes, -vv debug."
    ),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        max=cpu_threads.MAX_THREADS,
        help=f"CPU threads for torch and BLAS; also {cpu_threads.ENV} (default: "
        "OMP_NUM_THREADS if set, else every core this process may use; docs/cli.md).",
    ),
) -> None:
    _setup_logging(verbose)
    cpu_threads.use_threads(cpu_threads.requested_threads(threads))  # before torch loads
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def _outputs(*paths: Path | None, overwrite: bool) -> None:
    """Refuse, before any work, output files that exist (unless --overwrite) or cannot be written."""
    from ganedit.utils.files import check_output

    for path in paths:
        if path is not None:
            check_output(path, overwrite=overwrite)


def _sidecar(out: Path) -> Path:
    from ganedit.utils.files import sidecar_path

    return sidecar_path(out)


def _expect_suffix(path: Path | None, suffix: str, flag: str = "--out") -> None:
    if path is not None and path.suffix.lower() != suffix:
        raise UserInputError(f"expected a {suffix} path for {flag}, received {str(path)!r}")


def _write_report(report: dict, path: Path | None, overwrite: bool = True) -> None:
    from ganedit.evaluation.direction_report import json_safe
    from ganedit.utils.files import write_json

    if path is not None:
        write_json(path, json_safe(report), overwrite=overwrite)
        typer.echo(f"full report: {path}")


# ------------------------------------------------------------------------------------------
# The face world


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
    path = write_world_dataset(world, job, out, progress=progress, overwrite=overwrite)
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
    from ganedit.utils.files import atomic_path, write_json
    from ganedit.world.config import load_world_config
    from ganedit.world.sheet import make_sheet

    _expect_suffix(out, ".png")
    _outputs(out, _sidecar(out), overwrite=overwrite)
    world = load_world_config(preset)
    image = make_sheet(world, rows=rows, size=size, seed=seed, scale=scale)
    with atomic_path(out) as tmp:
        image.save(tmp, format="png")
    write_json(
        _sidecar(out),
        {"world": world.to_dict(), "rows": rows, "size": size, "seed": seed},
    )
    typer.echo(str(out))


# ------------------------------------------------------------------------------------------
# Measuring networks


@app.command("train-predictor")
def train_predictor_cmd(
    kind: opt.Kind = typer.Option(..., "--kind", help="Which measuring network."),
    out: Path = opt.out_option("Run folder (checkpoints, stats, final model)."),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Training steps (default: the shipped recipe)."
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", min=2),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the run folder's checkpoint."
    ),
    progress: bool = opt.progress_option(),
) -> None:
    """Train a measuring network on renders made on the fly (resumable)."""
    from ganedit.training.predictors import PredictorTrainConfig, train_predictor

    overrides = {
        k: v for k, v in {"steps": steps, "batch_size": batch_size}.items() if v is not None
    }
    cfg = PredictorTrainConfig.for_kind(opt.value(kind), **overrides)
    typer.echo(str(train_predictor(cfg, out, resume=resume, progress=progress)))


@app.command("evaluate-predictor")
def evaluate_predictor_cmd(
    predictor: str = opt.predictor_option(..., "labeler, evaluator, identity, or a model folder."),
    eval_n: int = opt.eval_n_option(5000, "Held-out renders (identities for the embedder)."),
    preset: str = opt.preset_option(),
    out: Path | None = opt.optional_out_option("Write the full report as JSON here."),
    resample_scene: bool = typer.Option(
        False,
        "--resample-scene",
        help="Identity: the second view also gets another background, clothes and light.",
    ),
    overwrite: bool = opt.overwrite_option(),
    progress: bool = opt.progress_option(),
) -> None:
    """Held-out quality of a measuring network on fresh renders."""
    from ganedit.evaluation.predictors import evaluate_attribute_net, evaluate_identity_net
    from ganedit.models.predictors import AttributeNet, IdentityNet
    from ganedit.models.registry import load_predictor
    from ganedit.world.config import load_world_config

    _expect_suffix(out, ".json")
    _outputs(out, overwrite=overwrite)
    load_world_config(preset)
    net = load_predictor(predictor)
    if not isinstance(net, IdentityNet | AttributeNet):
        raise UserInputError(
            "expected a face-world network (labeler, evaluator, identity or a model folder), "
            f"received {type(net).__name__} from {predictor!r}: evaluate-predictor measures "
            "on renders of the world, whose attributes a foreign predictor need not know"
        )
    if isinstance(net, IdentityNet):
        report = evaluate_identity_net(
            net,
            n_identities=eval_n,
            preset=preset,
            resample_scene=resample_scene,
            progress=progress,
        )
        typer.echo(
            f"{predictor}: verification ROC AUC {report['verification_auc']:.4f} on {eval_n} "
            f"held-out identities ({preset})"
        )
    else:
        report = evaluate_attribute_net(net, n=eval_n, preset=preset, progress=progress)
        accuracies = ", ".join(
            f"{a} {report[f'{a}_accuracy']:.3f}" for a in ("smile", "gender", "glasses", "age")
        )
        typer.echo(
            f"{predictor} on {eval_n} held-out renders ({preset}): accuracy {accuracies}; "
            f"yaw error {report['yaw_mae_deg']:.2f} deg"
        )
    report["predictor"] = predictor
    _write_report(report, out)


# ------------------------------------------------------------------------------------------
# Generators


@app.command("train-gan")
def train_gan_cmd(
    images: Path = typer.Option(
        ..., "--images", "-i", "--data", help="Image LMDB (StyleGAN2-pytorch layout) or folder."
    ),
    out: Path = opt.out_option("Run folder: config, stats.jsonl, samples/, checkpoint/, g_ema/."),
    size: int = typer.Option(64, "--size", help="Image size (power of two, 8 to 1024)."),
    iterations: int = typer.Option(10_000, "--iter", "--iterations", min=1),
    batch_size: int = opt.batch_option(16, "Images per training step (all processes)."),
    style_dim: int = typer.Option(512, "--style-dim", min=1, max=4096),
    n_mlp: int = typer.Option(8, "--n-mlp", min=1, max=32),
    channel_multiplier: int = typer.Option(2, "--channel-multiplier", min=1, max=64),
    channel_max: int = typer.Option(512, "--channel-max", min=1, max=4096),
    channels: str | None = typer.Option(
        None,
        "--channels",
        help="Channels per resolution from 4 px up, e.g. 96,96,96,48,32 (overrides the "
        "multiplier and cap).",
    ),
    lr: float = typer.Option(0.002, "--lr", callback=opt.finite("--lr", 0.0, 10.0)),
    r1: float = typer.Option(
        10.0, "--r1", callback=opt.finite("--r1", 0.0, 1e6), help="R1 weight (gamma)."
    ),
    path_regularize: float = typer.Option(
        2.0, "--path-regularize", callback=opt.finite("--path-regularize", 0.0, 1e6)
    ),
    mixing: float = typer.Option(0.9, "--mixing", callback=opt.finite("--mixing", 0.0, 1.0)),
    mbstd_group: int = typer.Option(
        4,
        "--mbstd-group",
        min=1,
        help="Discriminator's minibatch-stddev group (divides the batch).",
    ),
    ema_kimg: float = typer.Option(
        10.0,
        "--ema-kimg",
        callback=opt.finite("--ema-kimg", 0.0, 1e6),
        help="EMA half-life in thousands of images.",
    ),
    ema_rampup: float | None = typer.Option(
        None,
        "--ema-rampup",
        callback=opt.finite("--ema-rampup", 0.0, 1e6),
        help="Cap the EMA half-life at this share of images seen.",
    ),
    flip: bool = typer.Option(
        False, "--flip/--no-flip", help="Horizontal flips (off when pose matters)."
    ),
    d_warmup: int = typer.Option(
        0,
        "--d-warmup",
        min=0,
        max=10_000_000,
        help="Steps that train only the discriminator first (a fine-tune without one).",
    ),
    seed: int = opt.seed_option(),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", min=1),
    sample_every: int = typer.Option(500, "--sample-every", min=1),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the run folder's checkpoint."
    ),
    ckpt: Path | None = typer.Option(
        None, "--ckpt", help="Fine-tune: start from a run's checkpoint folder or a .pt file."
    ),
    device: str = opt.device_option(),
    progress: bool = opt.progress_option(),
) -> None:
    """Train a StyleGAN2 (resumable; fine-tunes from --ckpt)."""
    from ganedit.training.gan import GanConfig, train_gan

    channel_list = _int_list(channels, "--channels", 1, 4096)  # the model format's bounds
    cfg = GanConfig(
        data=str(images), size=size, iterations=iterations, batch=batch_size,
        style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=channel_multiplier,
        channel_max=channel_max, channels=channel_list, lr=lr, r1=r1,
        path_regularize=path_regularize, mixing=mixing, mbstd_group=mbstd_group,
        ema_kimg=ema_kimg, ema_rampup=ema_rampup, flip=flip, seed=seed,
        checkpoint_every=checkpoint_every, sample_every=sample_every, d_warmup=d_warmup,
    )  # fmt: skip
    typer.echo(
        str(train_gan(cfg, out, resume=resume, init_from=ckpt, device=device, progress=progress))
    )


@app.command("sample")
def sample_cmd(
    generator: str = opt.generator_option(),
    out: Path = opt.out_option("PNG grid to write (its config as JSON beside).", Path("grid.png")),
    n: int = opt.n_option(16, "Number of samples.", minimum=1),
    seed: int = opt.seed_option(),
    truncation_psi: float = opt.trunc_option(),
    class_index: int | None = opt.class_option(),
    mode_names: str | None = opt.mode_names_option(),  # parsed to a tuple of names
    batch_size: int = opt.batch_option(64),
    scale: int = opt.scale_option(1),
    mode: list[str] = opt.mode_settings_option(),
    device: str = opt.device_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Write a grid of samples from any generator source."""
    import math

    from PIL import Image

    from ganedit.models.sources import load_generator
    from ganedit.utils.files import atomic_path, write_json
    from ganedit.utils.images import labelled_grid, to_uint8

    _expect_suffix(out, ".png")
    if n > 4096:
        raise UserInputError(f"expected --n of at most 4096 samples for a grid, received {n}")
    _outputs(out, _sidecar(out), overwrite=overwrite)
    source = load_generator(generator, device, truncation_psi, class_index, mode_names)
    settings = source.mode_settings(mode) if mode else {}
    if settings:
        source = source.with_modes(settings)
    images = source.synthesize(source.sample_z(n, seed), "z", batch_size=batch_size)
    cols = math.ceil(math.sqrt(n))
    picture = labelled_grid(to_uint8(images), cols, scale=scale)
    with atomic_path(out) as tmp:
        Image.fromarray(picture).save(tmp, format="png")
    write_json(
        _sidecar(out),
        {
            "generator": source.identity,
            "n": n,
            "seed": seed,
            "truncation_psi": truncation_psi,
            "modes": settings or None,
            "order": "row-major, sample i at row i // cols, column i % cols",
            "cols": cols,
        },
    )
    of_class = "" if class_index is None else f", class {class_index}"
    typer.echo(f"{out}: {n} samples of {source.name} (seed {seed}, psi {truncation_psi}{of_class})")


@app.command("evaluate-generator")
def evaluate_generator_cmd(
    generator: str = opt.generator_option(
        help="A generator of the face world (name, .pt or folder)."
    ),
    preset: str = opt.preset_option(),
    n: int = opt.n_option(20_000, "Generated samples scored by the labeler.", minimum=2),
    n_fd: int = typer.Option(
        10_000, "--n-fd", min=2, max=opt.MAX_COUNT, help="Samples per set for the Frechet distance."
    ),
    threshold: str = opt.threshold_option(
        "0.9", "Confidence threshold for the confident shares (a number in (0.5, 1))."
    ),
    n_identity: int = typer.Option(
        256,
        "--n-identity",
        min=2,
        max=opt.MAX_COUNT,
        help="Samples (at most -n) and world renders for the mean pairwise identity cosine.",
    ),
    n_modes: int = typer.Option(
        1024,
        "--n-modes",
        min=0,
        max=opt.MAX_COUNT,
        help="A self-conditioned generator: faces per end of each mode for its side effects "
        "(0: skip).",
    ),
    seed: int = opt.seed_option(),
    out: Path | None = opt.optional_out_option("Write the full report as JSON here."),
    device: str = opt.device_option(),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Frechet distance, attribute marginals and correlations, confident share, diversity
    (identity cosine, precision/recall) and, with modes, each mode's side effects."""
    from ganedit.evaluation.generator import evaluate_generator
    from ganedit.models.sources import load_generator
    from ganedit.world.config import load_world_config

    t = opt.parse_threshold(threshold)
    if t is None:
        raise UserInputError("expected a number in (0.5, 1) for --threshold, received none")
    if n_fd > n:
        raise UserInputError(f"expected --n-fd at most --n ({n}), received {n_fd}")
    _expect_suffix(out, ".json")
    _outputs(out, overwrite=overwrite)
    world = load_world_config(preset)
    source = load_generator(generator, device=device)
    report = evaluate_generator(
        source, world, n=n, n_fd=n_fd, seed=seed, threshold=t, progress=progress,
        n_identity=n_identity, n_modes=n_modes,
    )  # fmt: skip
    report["generator"] = source.identity
    typer.echo(
        f"{source.name}: Frechet distance {report['frechet_distance']:.1f} (floor "
        f"{report['frechet_distance_floor']:.1f}); largest marginal gap "
        f"{report['max_marginal_gap']:.3f}, largest correlation gap "
        f"{report['max_correlation_gap']:.3f}; confident on all attributes "
        f"{report['share_confident_all']:.3f}"
    )
    for line in _diversity_lines(report["diversity"]):
        typer.echo(line)
    _write_report(report, out)


def _end_recalls(ends: list[dict]) -> str:
    if any("precision_recall" not in e for e in ends):
        return ""
    recalls = "/".join(f"{e['precision_recall']['recall']:.3f}" for e in ends)
    return f"; recall at t=0/1 {recalls} (against the renders of that class)"


def _diversity_lines(d: dict) -> list[str]:
    """evaluate-generator's human summary of diversity (and of modes, if any)."""
    line = (
        f"diversity: mean pairwise identity cosine {d['identity_cosine']:.3f} of "
        f"{d['n_identity']} samples (world renders {d['renders_identity_cosine']:.3f})"
    )
    pr, floor = d["precision_recall"], d["precision_recall_floor"]
    if pr is not None:
        line += (
            f"; precision {pr['precision']:.3f}, recall {pr['recall']:.3f} against world "
            f"renders (renders: {floor['precision']:.3f}, {floor['recall']:.3f}; k {pr['k']})"
        )
    lines = [line]
    for a, m in d.get("modes", {}).items():
        ends = [m[f"t={t:g}"] for t in (0, 1)]
        lines.append(
            f"mode {a}: identity between its ends {m['ends_identity']['mean']:.3f}; identity "
            f"cosine at t=0/1 {ends[0]['identity_cosine']:.3f}/{ends[1]['identity_cosine']:.3f}"
            f"; largest side effect vs the world {max(e['max_gap'] for e in ends):.3f}"
            + _end_recalls(ends)
        )
    return lines


@app.command("score")
def score_cmd(
    images: Path = opt.images_option(),
    out: Path = opt.out_option("Scores file (.npz, one array per attribute; JSON beside)."),
    predictor: str = opt.predictor_option(
        "labeler", "labeler, evaluator, or a model folder. " + opt.FOREIGN_PREDICTORS_HELP
    ),
    batch_size: int = opt.batch_option(256),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Score every image with an attribute predictor (probabilities per attribute, yaw);
    the .npz records each score's kind in its `.kinds` entry."""
    from ganedit.datasets import ImageDataset
    from ganedit.models.registry import load_attribute_predictor
    from ganedit.models.scoring import save_scores, score_dataset
    from ganedit.utils.files import write_json

    _expect_suffix(out, ".npz")
    _outputs(out, _sidecar(out), overwrite=overwrite)
    data = ImageDataset(images)
    model = load_attribute_predictor(predictor, foreign=True)
    scores = score_dataset(data, model, batch_size=batch_size, progress=progress)
    kinds = dict(model.attribute_kinds)  # the predictor's outputs, name by name
    save_scores(scores, out, kinds)
    write_json(
        _sidecar(out),
        {"images": str(images), "predictor": predictor, "n": len(data), "keys": sorted(scores),
         "kinds": kinds},
    )  # fmt: skip
    typer.echo(f"{out}: {len(data)} images scored by {predictor} ({', '.join(sorted(scores))})")


# ------------------------------------------------------------------------------------------
# Latent banks


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
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue an interrupted run."),
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
    )  # fmt: skip
    path = generate_bank(
        cfg, out, device=device, progress=progress, resume=resume, overwrite=overwrite
    )
    bank = LatentBank.open(path, verify=False)
    typer.echo(
        f"{path}: {bank.n} samples of {generator} (spaces {', '.join(bank.spaces)}; scores "
        f"{', '.join(bank.score_names) or 'none'})"
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


# ------------------------------------------------------------------------------------------
# Directions


@app.command("contingency")
def contingency_cmd(
    latents: Path | None = opt.latents_option(help="Latent bank holding the scores."),
    scores: Path | None = opt.scores_option("A scores file instead of a bank."),
    threshold: str | None = opt.threshold_option(
        "0.9", "Keep samples with p > t or p < 1 - t on every attribute (none: keep all)."
    ),
    attributes: list[str] | None = typer.Option(
        None,
        "--attribute",
        "-a",
        help="Attributes (repeat); default: every one of kind probability.",
    ),
    heatmap: Path | None = typer.Option(None, "--heatmap", help="PNG heatmap to write."),
    out: Path | None = opt.optional_out_option("Write the table as JSON here."),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Confidence filter and the contingency table over all attributes."""
    from rich.console import Console

    from ganedit.directions.display import rich_table, save_heatmap
    from ganedit.directions.fit import load_scores
    from ganedit.directions.sampling import ContingencyTable

    if latents is None and scores is None:
        raise UserInputError("expected --latents BANK or --scores FILE, received neither")
    if latents is not None and scores is not None:
        raise UserInputError(
            "expected one of --latents BANK and --scores FILE, received both (a bank holds "
            "its own scores)"
        )
    _expect_suffix(heatmap, ".png", "--heatmap")
    _expect_suffix(out, ".json")
    _outputs(heatmap, out, overwrite=overwrite)
    t = opt.parse_threshold(threshold)
    table_scores = load_scores(str(latents or ""), str(scores) if scores else None, "")
    table = ContingencyTable.from_scores(table_scores, attributes or None, t)
    Console().print(rich_table(table, t))
    if table.n_empty_cells:
        typer.echo(
            f"{table.n_empty_cells} empty cell(s): no balanced subset can make the attributes "
            "independent of those label combinations"
        )
    if heatmap is not None:
        save_heatmap(table, heatmap)
        typer.echo(f"heatmap: {heatmap}")
    _write_report({"threshold": t, **table.to_dict()}, out)


@app.command("boundary")
def boundary_cmd(
    method: opt.Method = typer.Option(
        opt.Method(DEFAULT_METHOD),
        "--method",
        help=f"Estimator (default {DEFAULT_METHOD}: chosen on the committed world64 study, "
        "docs/directions.md).",
    ),
    latents: Path = opt.latents_option(..., "Latent bank (*.zarr) or a .npy of codes."),
    scores: Path | None = opt.scores_option("Scores file (default: the bank's)."),
    attribute: str = typer.Option(..., "--attribute", "-a", help="Target attribute."),
    out: Path = opt.out_option("Boundary .npy to write (a .json sidecar beside)."),
    space: opt.Space | None = typer.Option(
        None, "--space", help="A bank's space to fit (default w); what .npy codes are."
    ),
    generator: str | None = opt.generator_option(
        None, "The generator .npy codes came from (recorded in the sidecar)."
    ),
    n: float | None = typer.Option(
        None,
        "--n",
        "-n",
        callback=opt.finite("-n", 0.0, 1e12),
        help="mab: subset size; interfacegan: count or ratio of top/bottom samples (the "
        "reference scripts' -n).",
    ),
    threshold: str | None = opt.threshold_option(
        None, "Confidence threshold in (0.5, 1), or none for no filter (method default if unset)."
    ),
    ratio: float | None = typer.Option(
        None,
        "--ratio",
        callback=opt.finite("--ratio", 0.0, 1e12),
        help="interfacegan: share (or count) of top and bottom samples.",
    ),
    quota: opt.Quota | None = typer.Option(None, "--quota", help="mab: how cells are filled."),
    solver: opt.Solver | None = typer.Option(None, "--solver", help="interfacegan: SVM solver."),
    split_mode: opt.SplitMode | None = typer.Option(
        None,
        "--split-mode",
        help="interfacegan: 'reference' reproduces InterFaceGAN's ordering and train/validation "
        "split for a legacy NumPy seed (--seed), for parity checks.",
    ),
    base: opt.Method = typer.Option(
        opt.Method("interfacegan"), "--base", help="conditional: the method projected."
    ),
    conditions: list[Path] | None = typer.Option(
        None, "--conditions", help="conditional: boundaries to be orthogonal to."
    ),
    seed: int = opt.seed_option(help="Seed of the method's randomness."),
    json_out: Path | None = opt.json_option("Also write the fit summary as JSON here."),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Learn one attribute direction (InterFaceGAN-compatible .npy + JSON sidecar)."""
    from ganedit.directions.fit import BoundaryConfig, fit_boundary, reference_n

    _expect_suffix(out, ".npy")
    _expect_suffix(json_out, ".json", "--json")
    _outputs(json_out, overwrite=overwrite)
    method_name = opt.value(method)
    threshold_given = threshold is not None
    t = opt.parse_threshold(threshold)
    ratio, count = reference_n(
        method_name if method_name != "conditional" else opt.value(base), n, ratio
    )
    cfg = BoundaryConfig(
        method=method_name, attribute=attribute, latents=str(latents),
        scores=str(scores) if scores else None, space=opt.value(space), generator=generator,
        n=count, threshold=t, threshold_given=threshold_given, ratio=ratio,
        quota=opt.value(quota), solver=opt.value(solver), split_mode=opt.value(split_mode),
        base=opt.value(base),
        conditions=tuple(str(c) for c in conditions or ()), seed=seed,
    )  # fmt: skip
    estimator = fit_boundary(cfg, out, overwrite=overwrite)
    summary = estimator.summary()
    typer.echo(
        f"{out}: {summary['method']} direction of {attribute!r}, accuracy "
        f"{summary['accuracy']:.4f} on {summary['n_samples']} samples"
    )
    _write_report({"boundary": str(out), **summary}, json_out, overwrite=overwrite)


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
        "made on the fly (celeba preset, --data-seed).",
    ),
    data_seed: int = typer.Option(7001, "--data-seed", min=0, max=2**32 - 1),
    steps: int = typer.Option(24_000, "--steps", min=1, max=10_000_000),
    batch_size: int = opt.batch_option(8, "Images per training step (all processes)."),
    lr: float = typer.Option(1e-4, "--lr", callback=opt.finite("--lr", 1e-12, 1.0)),
    progressive_start: int = typer.Option(
        4000, "--progressive-start", min=0, help="Step at which the first offset switches on."
    ),
    progressive_every: int = typer.Option(
        1500, "--progressive-every", min=1, help="Steps between further offsets."
    ),
    perceptual: opt.Perceptual = opt.perceptual_option(),
    pixel_weight: float = typer.Option(
        1.0, "--pixel-weight", callback=opt.finite("--pixel-weight", 0.0, 1e6)
    ),
    perceptual_weight: float = typer.Option(
        0.8, "--perceptual-weight", callback=opt.finite("--perceptual-weight", 0.0, 1e6)
    ),
    identity_weight: float = typer.Option(
        0.5, "--identity-weight", callback=opt.finite("--identity-weight", 0.0, 1e6)
    ),
    latent_weight: float = typer.Option(
        1.0,
        "--latent-weight",
        callback=opt.finite("--latent-weight", 0.0, 1e6),
        help="Code loss on the generator's own samples (their ws are known).",
    ),
    delta_reg: float = typer.Option(
        2e-4, "--delta-reg", callback=opt.finite("--delta-reg", 0.0, 1e6), help="Offset norms."
    ),
    adversarial_weight: float = typer.Option(
        0.1,
        "--adversarial-weight",
        callback=opt.finite("--adversarial-weight", 0.0, 1e6),
        help="Latent discriminator (0: none).",
    ),
    synthetic_fraction: float = typer.Option(
        0.5,
        "--synthetic-fraction",
        callback=opt.finite("--synthetic-fraction", 0.0, 1.0),
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
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the run folder's checkpoint."
    ),
    device: str = opt.device_option(),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Train an e4e-style encoder (image -> ws) for a generator (resumable, torchrun-capable)."""
    from ganedit.inversion.train_encoder import EncoderTrainConfig, train_encoder
    from ganedit.selfcond.encoder import train_conditional_encoder

    cfg = EncoderTrainConfig(
        generator=generator, data=str(data) if data else None, data_seed=data_seed, steps=steps,
        batch_size=batch_size, lr=lr, progressive_start=progressive_start,
        progressive_every=progressive_every, perceptual_net=opt.value(perceptual),
        pixel=pixel_weight, perceptual=perceptual_weight, identity=identity_weight,
        latent=latent_weight, delta_reg=delta_reg, adversarial=adversarial_weight,
        synthetic_fraction=synthetic_fraction, seed=seed, checkpoint_every=checkpoint_every,
        sample_every=sample_every, init_encoder=init_encoder,
        labels=str(labels) if labels else None,
    )  # fmt: skip
    train = train_conditional_encoder if labels is not None else train_encoder
    folder = train(cfg, out, device=device, resume=resume, overwrite=overwrite, progress=progress)
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
    space: opt.Space = typer.Option(
        opt.Space("w"), "--space", help="Space the projector optimises (output: ws)."
    ),
    steps: int = typer.Option(500, "--steps", min=1, max=1_000_000, help="Projector steps."),
    pti_steps: int = typer.Option(350, "--pti-steps", min=1, max=1_000_000),
    lr: float = typer.Option(0.1, "--lr", callback=opt.finite("--lr", 1e-12, 10.0)),
    noise: bool = typer.Option(
        True, "--optimize-noise/--no-optimize-noise", help="Optimise the noise maps too."
    ),
    perceptual: opt.Perceptual = opt.perceptual_option(),
    identity_weight: float = typer.Option(
        0.1, "--identity-weight", callback=opt.finite("--identity-weight", 0.0, 1e6)
    ),
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
        projector=ProjectorConfig(space=opt.value(space), steps=steps, lr=lr,
                                  optimize_noise=noise, weights=weights, seed=seed),
        pti=PTIConfig(steps=pti_steps, seed=seed),
    )  # fmt: skip
    summary = run_invert(cfg, images, out, device=device, overwrite=overwrite, progress=progress)
    for line in summary_lines(summary, out):
        typer.echo(line)


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
        device=device, force=force, overwrite=overwrite, progress=progress,
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
    max_repeat: float = typer.Option(
        10.0, "--max-repeat", callback=opt.finite("--max-repeat", 1.0, 1e12)
    ),
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
    report = run_resample(labels, out, config, names, overwrite=overwrite)
    for line in resample_summary(report, out):
        typer.echo(line)


@app.command("train-selfcond")
def train_selfcond_cmd(
    images: Path = opt.images_option("Training images (LMDB or folder) the labels describe."),
    labels: Path = typer.Option(..., "--labels", "-l", help="A selflabel folder of the images."),
    out: Path = opt.out_option("Run folder: config, stats.jsonl, samples/, checkpoint/, g_ema/."),
    generator: str = opt.generator_option(help="The pretrained generator to self-condition."),
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
    md_d: float = typer.Option(0.5, "--md-d", callback=opt.finite("--md-d", 0.0, 1e6)),
    md_g: float = typer.Option(0.5, "--md-g", callback=opt.finite("--md-g", 0.0, 1e6)),
    iterations: int = typer.Option(3000, "--iter", "--iterations", min=1, max=100_000_000),
    d_warmup: int = typer.Option(
        500, "--d-warmup", min=0, max=100_000_000, help="Discriminator-only steps first."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, max=65_536, help="Default: the pretrained run's."
    ),
    lr: float | None = typer.Option(None, "--lr", callback=opt.finite("--lr", 1e-12, 10.0)),
    r1: float | None = typer.Option(None, "--r1", callback=opt.finite("--r1", 0.0, 1e6)),
    seed: int = opt.seed_option(),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", min=1, max=100_000_000),
    sample_every: int = typer.Option(500, "--sample-every", min=1, max=100_000_000),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the run folder's checkpoint."
    ),
    device: str = opt.device_option(),
    progress: bool = opt.progress_option(),
) -> None:
    """Fine-tune a generator into a self-conditioned one (SC-GAN) on labelled images."""
    from ganedit.selfcond.train import SelfCondConfig, train_selfcond

    names = tuple(a.strip() for a in attributes.split(",") if a.strip()) if attributes else None
    cfg = SelfCondConfig(
        generator=generator, data=str(images), labels=str(labels),
        resample=None if resample is None else str(resample), attributes=names,
        init=opt.value(init), md_d=md_d, md_g=md_g, iterations=iterations, d_warmup=d_warmup,
        batch=batch_size, lr=lr, r1=r1, seed=seed, checkpoint_every=checkpoint_every,
        sample_every=sample_every,
    )  # fmt: skip
    typer.echo(str(train_selfcond(cfg, out, device=device, resume=resume, progress=progress)))


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
    start: float = typer.Option(
        -3.0, "--start", "--start-distance", callback=opt.finite("--start")
    ),
    end: float = typer.Option(3.0, "--end", "--end-distance", callback=opt.finite("--end")),
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
    bound: float = typer.Option(
        0.5,
        "--bound",
        callback=opt.finite("--bound", 1e-6, 1e6),
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

    run = RunContext.current(device, progress, overwrite)
    edit_mode, mode_settings = split_modes(mode)
    cfg = EditConfig(
        boundaries=tuple(str(b) for b in boundary), generator=generator, space=opt.value(space),
        n=n, seed=seed, latents=str(latents) if latents else None, start=start, end=end,
        steps=steps, strengths=tuple(strength or ()), mode=edit_mode,
        layers=_parse_layers(layers), calibrated=calibrated, bound=bound, scale=scale, force=force,
        modes=mode_settings, truncation_psi=truncation_psi, evaluator=evaluator,
        class_index=class_index,
        mode_names=mode_names,
    )  # fmt: skip
    if images:
        check_image_edit(cfg)
        invert = InvertConfig(
            generator=cfg.generator, method=opt.value(invert_method), encoder=encoder,
            modes=opt.value(image_modes), projector=ProjectorConfig(steps=invert_steps, seed=seed),
        )  # fmt: skip
        _edit_images(cfg, invert, images, out, run)
        return
    summary = run_edit(cfg, out, device=run.device, overwrite=run.overwrite, progress=run.progress)
    for line in summary_lines(summary):
        typer.echo(line)


def _edit_images(cfg, invert, images, out, run: RunContext) -> None:
    from ganedit.editing.run import summary_lines
    from ganedit.inversion.run import invert_and_edit
    from ganedit.inversion.run import summary_lines as invert_lines

    result = invert_and_edit(invert, cfg, images, out, run.device, run.overwrite, run.progress)
    for line in invert_lines(result["inversion"], Path(out) / "inversion"):
        typer.echo(line)
    for summary in result["edits"]:
        for line in summary_lines(summary):
            typer.echo(line)


def _int_list(text: str | None, flag: str, low: int, high: int) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UserInputError(
            f"expected {flag} as comma-separated integers, received {text!r}"
        ) from None
    if not all(low <= v <= high for v in values):
        raise UserInputError(f"expected {flag} values from {low} to {high}, received {text!r}")
    return values


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
    boundary: list[Path] = opt.boundary_option(),
    out: Path = opt.out_option("New report folder (report.md, report.json, PNGs)."),
    generator: str = opt.generator_option(),
    space: opt.Space = opt.space_option(),
    eval_n: int = opt.eval_n_option(500, "Held-out latents to edit."),
    seed: int = opt.seed_option(424242, "Seed of the held-out latents."),
    bootstrap: int = opt.bootstrap_option(),
    steps: int = opt.grid_steps_option(),
    truncation_psi: float = opt.trunc_option(),
    evaluator: str = opt.evaluator_option(),
    identity: str = opt.identity_option(),
    force: bool = opt.force_option(),
    device: str = opt.device_option(),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Measure disentanglement of directions with the evaluator and the identity embedder."""
    from ganedit.evaluation.directions import DirectionEvalConfig
    from ganedit.pipeline import evaluate_boundary_files

    cfg = DirectionEvalConfig(
        generator=generator, space=opt.value(space), n=eval_n, seed=seed, bootstrap=bootstrap,
        steps=steps, truncation_psi=truncation_psi, evaluator=evaluator,
        identity=opt.identity_value(identity),
    )  # fmt: skip
    path = evaluate_boundary_files(
        cfg, [str(b) for b in boundary], out, device, progress, force=force, overwrite=overwrite
    )
    _print_ranking(path)


def _print_ranking(report_md: Path) -> None:
    import json

    from ganedit.evaluation.direction_report import method_tiers

    report = json.loads((report_md.parent / "report.json").read_text())
    typer.echo(f"{report_md}")
    for r in method_tiers(report, "90"):
        missed = f", missed {', '.join(r['missed'])}" if r["missed"] else ""
        typer.echo(
            f"  {r['rank']}. {r['method']} (tier {r['tier']}{missed}): off-target change "
            f"{r['off_target']:.3f} at 90% flips"
        )


@app.command("study")
def study_cmd(
    out: Path = opt.out_option("Study folder: bank.zarr, boundaries/, fitting.json, report/."),
    generator: str = opt.generator_option(),
    n: int = opt.n_option(200_000, "Latent bank size.", minimum=100),
    seed: int = opt.seed_option(),
    space: opt.StudySpace = typer.Option(opt.StudySpace("w"), "--space", help="Latent space."),
    threshold: str = opt.threshold_option("0.9", "Confidence threshold of mab and stratified."),
    mab_n: int = typer.Option(
        1000,
        "--mab-n",
        min=0,
        max=opt.MAX_COUNT,
        help="mab subset size (0: the largest equal-count size).",
    ),
    eval_n: int = opt.eval_n_option(500, "Held-out latents to edit."),
    bootstrap: int = opt.bootstrap_option(),
    steps: int = opt.grid_steps_option(),
    truncation_psi: float = opt.trunc_option(),
    predictor: str = opt.predictor_option(
        "labeler", "The attribute predictor that scores the bank (any form `score` takes)."
    ),
    evaluator: str = opt.evaluator_option(),
    identity: str = opt.identity_option(),
    attribute: list[str] = typer.Option(
        None,
        "--attribute",
        "-a",
        help="An attribute to study (repeat); default: every probability attribute that both "
        "the predictor and the evaluator give.",
    ),
    device: str = opt.device_option(),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Every method's directions for every attribute on one generator, evaluated (the committed
    report's command). Running it again in the same folder resumes it."""
    from ganedit.pipeline import StudyConfig, run_direction_study

    t = opt.parse_threshold(threshold)
    if t is None:
        raise UserInputError("expected a number in (0.5, 1) for --threshold, received none")
    cfg = StudyConfig(
        generator=generator, n=n, seed=seed, space=opt.value(space), threshold=t,
        mab_n=mab_n or None, eval_n=eval_n, bootstrap=bootstrap, steps=steps,
        truncation_psi=truncation_psi, predictor=predictor, evaluator=evaluator,
        identity=opt.identity_value(identity), attributes=tuple(attribute or ()),
    )  # fmt: skip
    path = run_direction_study(cfg, out, device=device, progress=progress, overwrite=overwrite)
    _print_ranking(path)


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
    report = run_demo(cfg, out, progress=progress, overwrite=overwrite)
    typer.echo(report.read_text())
    typer.echo(f"report: {report}")


@app.command("convert")
def convert_cmd(
    source: Path = typer.Option(
        ...,
        "--generator",
        "-g",
        help="A network pickle (.pkl) to read: NVIDIA's StyleGAN2-ADA, or a TensorFlow PGGAN, "
        "StyleGAN or StyleGAN2 one.",
    ),
    out: Path = opt.out_option(
        "What to write: a StyleGAN2-pytorch .pt (StyleGAN2, StyleGAN2-ADA), an InterFaceGAN "
        ".pth (TensorFlow PGGAN, StyleGAN) or, for a StyleGAN2-ADA pickle, a ganedit model "
        "folder (a path without a suffix; it also holds a conditional generator's label "
        "embedding and NVIDIA's conv_clamp)."
    ),
    network: str = typer.Option(
        "G_ema",
        "--network",
        help="The pickle's generator: G_ema (the averaged weights NVIDIA renders; a "
        "TensorFlow pickle's Gs) or G.",
    ),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Convert an NVIDIA network pickle's generator to a StyleGAN2-pytorch .pt, an
    InterFaceGAN .pth or a ganedit model folder (read without running any code from the
    pickle; see docs/models.md). A class-conditional StyleGAN2-ADA generator converts to
    a folder only: render a class of it with `-g FOLDER --class N`."""
    from ganedit.models.stylegan2.nvidia_pkl import check_network, convert_nvidia_pickle
    from ganedit.models.tf_generators import LABELS, convert_tf_pickle
    from ganedit.models.tf_pickle import is_tf_pickle

    check_network(network)
    _expect_suffix(source, ".pkl", "--generator")
    if is_tf_pickle(source):
        if out.suffix.lower() not in (".pt", ".pth"):
            raise UserInputError(f"expected a .pt or .pth path for --out, received {str(out)!r}")
        _outputs(out, overwrite=overwrite)
        layout = convert_tf_pickle(source, out, network=network)
        typer.echo(f"{out}: {LABELS[network]} of {source.name} as {layout}")
        return
    folder = out.suffix == ""
    if not folder:
        _expect_suffix(out, ".pt")
    from ganedit.utils.files import check_output

    check_output(out, overwrite=overwrite, kind="dir" if folder else "file")
    path = convert_nvidia_pickle(source, out, network=network, overwrite=overwrite)
    what = "a ganedit model folder" if folder else "a StyleGAN2-pytorch checkpoint"
    typer.echo(f"{path}: {network} of {source.name} as {what}")


@app.command("ui")
def ui_cmd(
    generator: str = opt.generator_option(),
    boundaries: list[Path] = typer.Option(
        [],
        "--boundaries",
        "-b",
        "--boundary",
        help="Boundary .npy files or folders of them: one slider each (repeat for several).",
    ),
    port: int = typer.Option(7860, "--port", min=0, max=65535, help="Port (0: a free one)."),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on; the default, loopback, lets only this machine connect.",
    ),
    max_upload_mb: float = typer.Option(
        10.0,
        "--max-upload-mb",
        callback=opt.finite("--max-upload-mb", 0.001, 1000.0),
        help="Largest image upload accepted (MB).",
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


# Every command refuses, before it starts, an output that is, holds or lies inside an input.
cli_paths.guard(app)


# ------------------------------------------------------------------------------------------
# Entry point and the error contract


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on `argv` and return its exit code (the tests call this in-process).

    User mistakes print one line on stderr and return 2; internal failures propagate with
    their traceback. Warnings logged on the way are printed at the end, unless the run ends
    in one line (they are then dropped) or -v asked for them as they come."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _HELD.let_go(show=False)  # nothing of an earlier in-process run
    try:
        code = _run(argv)
    except BaseException:
        _HELD.let_go(show=True)  # an internal failure keeps what led to it
        raise
    _HELD.let_go(show=code == 0)
    return code


def _run(argv: list[str]) -> int:
    from typer._click import exceptions as click_exceptions

    from ganedit.cli_errors import usage_line

    try:
        result = app(args=opt.expand_conditions(argv), prog_name="ganedit", standalone_mode=False)
    except GaneditError as err:
        _error(str(err))
        return 2
    except click_exceptions.NoArgsIsHelpError as err:
        typer.echo(err.format_message())
        return 0
    except click_exceptions.UsageError as err:
        _error(usage_line(err, argv))
        return 2
    except click_exceptions.ClickException as err:  # other click failures: still one line
        _error(err.format_message())
        return err.exit_code or 1
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            # Only a path the user gave can be too long (pathlib's exists() raises on it).
            path = str(err.filename or "")
            longest = max(Path(path).parts or [""], key=lambda part: len(os.fsencode(part)))
            _error(
                f"expected paths whose names fit the file system (at most 255 bytes each), "
                f"received a name of {len(os.fsencode(longest))} bytes in {path[:60]!r}..."
            )
            return 2
        if err.errno in (errno.EACCES, errno.EPERM) and _unreadable(err.filename):
            # An input the user named that this user may not read (any reader: zarr, LMDB,
            # safetensors...): a mistake in the command line, like a missing file.
            _error(f"expected a readable {str(err.filename)!r}, received permission denied")
            return 2
        if err.errno not in _REFUSED_BY_THE_SYSTEM:
            raise
        # Not a bug and not a mistake in the command line: the system refused a write.
        _error(f"could not write {err.filename or 'an output'}: {err.strerror}")
        return 1
    return result if isinstance(result, int) else 0


_REFUSED_BY_THE_SYSTEM = {
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM
}  # fmt: skip


def _unreadable(name) -> bool:
    """Whether `name` exists but may not be read, or sits in a folder that may not be entered."""
    if not name:
        return False
    path = Path(os.fsdecode(name))
    if os.path.lexists(path) and not os.access(path, os.R_OK):
        return True
    return any(os.path.isdir(p) and not os.access(p, os.X_OK) for p in path.parents)


def _error(message: str) -> None:
    text = " ".join(str(message).split())  # one line, whatever the message held
    sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()


def main() -> None:
    sys.exit(run())
