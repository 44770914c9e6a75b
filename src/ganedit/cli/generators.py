"""Generators: train, sample, evaluate, score and convert them."""

from __future__ import annotations

from pathlib import Path

import typer

from ganedit import cli_options as opt
from ganedit.cli._app import app
from ganedit.cli._common import (
    _expect_suffix,
    _int_list,
    _outputs,
    _write_report,
)
from ganedit.errors import UserInputError


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
    lr: float = opt.finite_option(0.002, "--lr", 0.0, 10.0),
    r1: float = opt.finite_option(10.0, "--r1", 0.0, 1e6, help="R1 weight (gamma)."),
    path_regularize: float = opt.finite_option(2.0, "--path-regularize", 0.0, 1e6),
    mixing: float = opt.finite_option(0.9, "--mixing", 0.0, 1.0),
    mbstd_group: int = typer.Option(
        4,
        "--mbstd-group",
        min=1,
        help="Discriminator's minibatch-stddev group (divides the batch).",
    ),
    ema_kimg: float = opt.finite_option(
        10.0, "--ema-kimg", 0.0, 1e6, help="EMA half-life in thousands of images."
    ),
    ema_rampup: float | None = opt.finite_option(
        None, "--ema-rampup", 0.0, 1e6, help="Cap the EMA half-life at this share of images seen."
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
    probe_every: int = typer.Option(
        0,
        "--probe-every",
        min=0,
        help="Every N steps (0: never), measure whether g_ema's edits keep the person (the "
        "face world's labeler, evaluator and identity net; probe.jsonl). For world data only.",
    ),
    probe_n: int = typer.Option(
        200, "--probe-n", min=16, max=100_000, help="Held-out faces the probe edits."
    ),
    resume: bool = opt.resume_option(),
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
        probe_every=probe_every,
    )  # fmt: skip
    probe = None
    if probe_every:
        from ganedit.evaluation.edit_probe import EditProbeConfig, generator_probe

        probe = generator_probe(EditProbeConfig(n=probe_n), device)
    folder = train_gan(cfg, out, resume, ckpt, device, progress, probe)
    typer.echo(str(folder))


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
    modes: opt.SampleModes | None = opt.sample_modes_option(),
    device: str = opt.device_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Write a grid of samples from any generator source."""
    import math

    from PIL import Image

    from ganedit.models.sources import load_generator, sample_mode_vectors
    from ganedit.utils.files import atomic_path, sidecar_path, write_json
    from ganedit.utils.images import labelled_grid, to_uint8

    _expect_suffix(out, ".png")
    if n > 4096:
        raise UserInputError(f"expected --n of at most 4096 samples for a grid, received {n}")
    _outputs(out, sidecar_path(out), overwrite=overwrite)
    source = load_generator(generator, device, truncation_psi, class_index, mode_names)
    settings = source.require_modes("--mode").parse(mode) if mode else {}
    how, vectors = sample_mode_vectors(source, generator, opt.value(modes), settings, n, seed)
    images = source.synthesize(source.sample_z(n, seed), "z", batch_size=batch_size, modes=vectors)
    cols = math.ceil(math.sqrt(n))
    picture = labelled_grid(to_uint8(images), cols, scale=scale)
    with atomic_path(out) as tmp:
        Image.fromarray(picture).save(tmp, format="png")
    write_json(
        sidecar_path(out),
        {
            "generator": source.identity,
            "n": n,
            "seed": seed,
            "truncation_psi": truncation_psi,
            "modes": settings or None,
            "modes_drawn": how,
            "order": "row-major, sample i at row i // cols, column i % cols",
            "cols": cols,
        },
    )
    of_class = "" if class_index is None else f", class {class_index}"
    of_class += "" if how is None else f", modes {how}"
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
    n_edit: int = typer.Option(
        0,
        "--n-edit",
        min=0,
        max=opt.MAX_COUNT,
        help="Held-out faces edited to see whether edits keep the person: identity at 50%% "
        "flips per attribute, yaw reach (0: skip).",
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
    prior = None
    if source.mode_layout is not None:
        from ganedit.models.modes import load_mode_prior
        from ganedit.models.registry import generator_folder

        prior = load_mode_prior(generator_folder(generator), source.mode_layout)
    report = evaluate_generator(
        source, world, n=n, n_fd=n_fd, seed=seed, threshold=t, progress=progress,
        n_identity=n_identity, n_modes=n_modes, mode_prior=prior,
    )  # fmt: skip
    if n_edit:
        from ganedit.evaluation.edit_probe import world_probe

        report["edit_identity"] = world_probe(source, n_edit, device)
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
    if "edit_identity" in report:
        from ganedit.evaluation.edit_probe import summary_line

        typer.echo(f"edits ({n_edit} faces): {summary_line(report['edit_identity'])}")
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
    for key, where in (("data_modes", "the data's modes"), ("uniform_modes", "uniform modes")):
        if key in d:
            at = d[key]
            line = (
                f"at {where}: identity cosine {at['identity_cosine']:.3f}, yaw spread "
                f"{at['yaw_std']:.1f} degrees"
            )
            if "frechet_distance" in at:
                pr = at["precision_recall"]
                line += (
                    f"; Frechet distance {at['frechet_distance']:.1f}, precision "
                    f"{pr['precision']:.3f}, recall {pr['recall']:.3f}"
                )
            lines.append(line)
    for key, where in (("modes", "others neutral"), ("modes_at_data", "others at the data's")):
        for a, m in d.get(key, {}).items():
            ends = [m[f"t={t:g}"] for t in (0, 1)]
            lines.append(
                f"mode {a} ({where}): identity between its ends "
                f"{m['ends_identity']['mean']:.3f}; identity cosine at t=0/1 "
                f"{ends[0]['identity_cosine']:.3f}/{ends[1]['identity_cosine']:.3f}; yaw spread "
                f"{ends[0]['yaw_std']:.1f}/{ends[1]['yaw_std']:.1f}; largest side effect vs "
                f"the world {max(e['max_gap'] for e in ends):.3f}" + _end_recalls(ends)
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
    from ganedit.utils.files import sidecar_path, write_json

    _expect_suffix(out, ".npz")
    _outputs(out, sidecar_path(out), overwrite=overwrite)
    data = ImageDataset(images)
    model = load_attribute_predictor(predictor, foreign=True)
    scores = score_dataset(data, model, batch_size=batch_size, progress=progress)
    kinds = dict(model.attribute_kinds)  # the predictor's outputs, name by name
    save_scores(scores, out, kinds)
    write_json(
        sidecar_path(out),
        {"images": str(images), "predictor": predictor, "n": len(data), "keys": sorted(scores),
         "kinds": kinds},
    )  # fmt: skip
    typer.echo(f"{out}: {len(data)} images scored by {predictor} ({', '.join(sorted(scores))})")


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
