"""The CLI's one vocabulary: every option shared by several commands is declared here once.

One meaning per flag across all subcommands (docs/cli.md has the table):

    -o/--out        the command's main output (a file or folder, per command)
    --overwrite     replace an existing output (folders only when ganedit wrote them)
    -g/--generator  a generator source: a registered name, a StyleGAN2-pytorch .pt, a folder
    -p/--predictor  an attribute predictor or measuring network: a name or a folder; where
                    attributes are scored, also a .pth/.pth.tar ResNet checkpoint, an ONNX
                    manifest .json or py:module:callable (runs that code; docs/models.md)
    -n/--n          how many samples the command makes or works on
    --eval-n        how many held-out samples an evaluation measures on
    -c/--latents    latent codes: a latent bank (also --bank) or a .npy file
    -s/--scores     a scores file (scores_dict.npy, <attr>_scores.npy or .npz)
    -a/--attribute  a target attribute
    -t/--threshold  a confidence threshold in (0.5, 1), or `none`
    -b/--boundary   a boundary .npy (repeat for several)
    -i/--images     an image data set (LMDB or folder)
    --space         a latent space: z, w or ws (no short form: -s is scores)
    --class         the class a class-conditional generator renders (sample, generate, edit)
    --json          the full JSON report, where -o is an artefact
    --seed, --device, --batch-size, --scale, --force, --progress/--no-progress, --resume

Choices come from the registries (`--help` lists them); numbers are checked to be finite and
in range here, before any work starts.
"""

from __future__ import annotations

import enum
import math
from pathlib import Path

import typer

# Names only (no torch, numpy or scikit-learn), so --help and a bad flag answer at once.
from ganedit.choices import (
    DEFAULT_GENERATOR,
    DIRECTION_METHODS,
    FACE_NETWORKS,
    GENERATOR_NAMES,
    IMAGE_FORMATS,
    INVERT_METHODS,
    MODE_SOURCES,
    PERCEPTUAL_NETWORKS,
    PIVOTS,
    PREDICTORS,
    QUOTAS,
    RESAMPLE_SCHEMES,
    SAMPLE_MODES,
    SELFCOND_FAKE_MODES,
    SELFCOND_INITS,
    SELFCOND_MODE_LOSSES,
    SOLVERS,
    SPLIT_MODES,
)
from ganedit.errors import UserInputError
from ganedit.models.formats import generator_forms
from ganedit.world.config import PRESETS


def _choices(name: str, values) -> type[enum.Enum]:
    """A str-valued Enum of `values`, which typer turns into a checked choice."""
    return enum.Enum(name, {str(v): str(v) for v in values}, type=str)


Space = _choices("Space", ("z", "w", "ws"))
StudySpace = _choices("StudySpace", ("z", "w"))
Method = _choices("Method", [*DIRECTION_METHODS, "conditional"])
Quota = _choices("Quota", QUOTAS)
Solver = _choices("Solver", SOLVERS)
SplitMode = _choices("SplitMode", SPLIT_MODES)
Kind = _choices("Kind", PREDICTORS)  # the measuring networks train-predictor trains
ImageFormat = _choices("ImageFormat", IMAGE_FORMATS)
InvertMethod = _choices("InvertMethod", INVERT_METHODS)
Perceptual = _choices("Perceptual", PERCEPTUAL_NETWORKS)
Pivot = _choices("Pivot", PIVOTS)
ImageModes = _choices("ImageModes", MODE_SOURCES)
SampleModes = _choices("SampleModes", SAMPLE_MODES)
ResampleScheme = _choices("ResampleScheme", RESAMPLE_SCHEMES)
SelfCondInit = _choices("SelfCondInit", SELFCOND_INITS)
SelfCondModeLoss = _choices("SelfCondModeLoss", SELFCOND_MODE_LOSSES)
SelfCondFakeModes = _choices("SelfCondFakeModes", SELFCOND_FAKE_MODES)


def value(choice) -> str | None:
    """The plain string of an enum choice (None stays None)."""
    return None if choice is None else getattr(choice, "value", choice)


# ------------------------------------------------------------------------------------------
# Checks of values typer cannot express


def finite(flag: str, low: float | None = None, high: float | None = None):
    """A callback that refuses NaN, inf and values outside [low, high] for `flag`."""

    def check(number: float | None) -> float | None:
        if number is None:
            return None
        inside = (low is None or number >= low) and (high is None or number <= high)
        if not math.isfinite(number) or not inside:
            bounds = (
                f" in [{low}, {high}]"
                if low is not None and high is not None
                else f" >= {low}"
                if low is not None
                else f" <= {high}"
                if high is not None
                else ""
            )
            raise UserInputError(f"expected a finite number{bounds} for {flag}, received {number}")
        return number

    return check


def finite_option(default, flag: str, low=None, high=None, *, aliases: tuple[str, ...] = (), **kw):
    """A number option that must be finite and in [low, high], its flag spelled once."""
    return typer.Option(default, flag, *aliases, callback=finite(flag, low, high), **kw)


def finite_list(flag: str):
    inner = finite(flag)

    def check(numbers: list[float] | None):
        return None if numbers is None else [inner(n) for n in numbers]

    return check


def parse_threshold(text: str | None) -> float | None:
    """`-t 0.9` or `-t none` (no confidence filter, the reference mab's default)."""
    if text is None or str(text).lower() == "none":
        return None
    try:
        number = float(text)
    except ValueError:
        raise UserInputError(
            f"expected --threshold as a number in (0.5, 1) or none, received {text!r}"
        ) from None
    if not (math.isfinite(number) and 0.5 < number < 1):
        raise UserInputError(
            f"expected --threshold as a number in (0.5, 1) or none, received {text}"
        )
    return number


def check_device(text: str) -> str:
    if text == "cpu":  # always there; the other devices need torch to be looked up
        return text
    from ganedit.utils.device import resolve_device

    resolve_device(text)
    return text


# ------------------------------------------------------------------------------------------
# Shared options

OUT_HELP = "Output path."
GENERATOR_HELP = f"Generator: {generator_forms(GENERATOR_NAMES)} (docs/models.md)."
PREDICTOR_HELP = f"Predictor: {', '.join(PREDICTORS)}, or a model folder."
# The forms an attribute predictor may also take (ganedit.models.foreign_predictors).
FOREIGN_PREDICTORS_HELP = (
    f"Also {' or '.join(FACE_NETWORKS[:2])} (real faces, ganedit[faces]), a .pth/.pth.tar "
    "ResNet checkpoint (the balanced-sampling CelebA layout), an ONNX manifest .json "
    "(ganedit[onnx]), or py:module:callable, which imports and runs that Python code (see "
    "docs/models.md)."
)
PRESET_HELP = f"World config: a preset ({', '.join(PRESETS)}) or a TOML file."


def generator_option(default: str | None = DEFAULT_GENERATOR, help: str = GENERATOR_HELP):
    return typer.Option(default, "--generator", "-g", help=help)


ENCODER_HELP = (
    "a shipped name, an encoder folder (train-encoder's OUT/encoder) or an official "
    "encoder4editing checkpoint .pt (its decoder must be the generator); default: the "
    "generator's shipped one."
)


def encoder_option(purpose: str):
    """--encoder, one meaning everywhere; `purpose` says what it is for in this command."""
    return typer.Option(None, "--encoder", help=f"{purpose}: {ENCODER_HELP}")


def predictor_option(default: str | None, help: str = PREDICTOR_HELP):
    return typer.Option(default, "--predictor", "-p", help=help)


def out_option(help: str = OUT_HELP, default: Path | None = None):
    return typer.Option(... if default is None else default, "--out", "-o", help=help)


def optional_out_option(help: str):
    return typer.Option(None, "--out", "-o", help=help)


# Bounds that hold for every command: a count beyond MAX_COUNT cannot be held in memory or on
# disk (nor indexed), and seeds reach the estimators as 32-bit random states.
MAX_COUNT = 10**9
MAX_SEED = 2**32 - 1


def n_option(default: int, help: str, minimum: int = 1):
    return typer.Option(default, "--n", "-n", min=minimum, max=MAX_COUNT, help=help)


def eval_n_option(default: int, help: str = "Held-out samples the evaluation measures on."):
    return typer.Option(default, "--eval-n", min=10, max=MAX_COUNT, help=help)


def latents_option(default=None, help: str = "Latent bank (*.zarr) or a .npy of codes."):
    return typer.Option(
        default,
        "--latents",
        "-c",
        "--bank",
        "--latent-codes-path",
        "--input-latent-codes-path",
        help=help,
    )


def scores_option(help: str = "Scores file: scores_dict.npy, <attr>_scores.npy or .npz."):
    return typer.Option(None, "--scores", "-s", "--scores-path", help=help)


def threshold_option(default: str | None, help: str):
    return typer.Option(default, "--threshold", "-t", help=help, metavar="T|none")


def boundary_option():
    return typer.Option(
        ..., "--boundary", "-b", "--boundary-path", help="Boundary .npy (repeat for several)."
    )


def images_option(help: str = "Image data set: an LMDB (StyleGAN2-pytorch layout) or folder."):
    return typer.Option(..., "--images", "-i", help=help)


def space_option(default: str = "w"):
    return typer.Option(Space(default), "--space", help="Latent space.")


def perceptual_option():
    return typer.Option(
        Perceptual("evaluator"),
        "--perceptual",
        help="Shipped network whose features give the perceptual distance.",
    )


def mode_settings_option():
    return typer.Option(
        [],
        "--mode",
        help="A self-conditioned generator's mode ATTR=T (t in [0, 1]; repeat), set on top of "
        "each sample's own modes.",
        metavar="ATTR=T",
    )


def seed_option(default: int = 0, help: str = "Sample i depends only on (seed, i)."):
    return typer.Option(default, "--seed", min=0, max=MAX_SEED, help=help)


def device_option():
    return typer.Option(
        "cpu", "--device", callback=check_device, help="torch device: cpu, cuda, cuda:1, ..."
    )


def batch_option(default: int, help: str = "Samples per batch."):
    return typer.Option(default, "--batch-size", min=1, help=help)


def progress_option():
    return typer.Option(True, "--progress/--no-progress", help="Show a progress bar (stderr).")


def resume_option(help: str = "Continue from the run folder's checkpoint."):
    return typer.Option(True, "--resume/--no-resume", help=help)


def overwrite_option():
    return typer.Option(
        False, "--overwrite", help="Replace existing outputs (folders only if ganedit wrote them)."
    )


def json_option(help: str = "Also write the full JSON report here."):
    return typer.Option(None, "--json", help=help)


ALIGN_HELP = (
    "align each photo's largest face as FFHQ was made (dlib landmarks, ganedit[faces]; "
    "docs/inversion.md) instead of centre-cropping it."
)


def align_option(prefix: str = ""):
    """--align: photos' faces FFHQ-aligned before inversion."""
    text = f"{prefix}{ALIGN_HELP}" if prefix else ALIGN_HELP[:1].upper() + ALIGN_HELP[1:]
    return typer.Option(False, "--align", help=text)


def scale_option(default: int = 2):
    return typer.Option(default, "--scale", min=1, max=16, help="Pixel upscaling of images.")


def force_option():
    return typer.Option(
        False,
        "--force",
        help="Use boundaries learned on another generator or space (recorded in the output).",
    )


def trunc_option(default: float | None = 1.0, help: str = "Truncation psi in [0, 1]."):
    return finite_option(default, "--trunc", 0.0, 1.0, aliases=("--truncation-psi",), help=help)


# The widest label a generator config may declare (`c_dim`, ganedit.models.registry).
MAX_CLASSES = 100_000


def class_option():
    return typer.Option(
        None,
        "--class",
        min=0,
        max=MAX_CLASSES - 1,
        help="The class a class-conditional generator renders (an index of its labels, as "
        "NVIDIA's generate.py --class); required for one, refused for others.",
        metavar="N",
    )


def parse_mode_names(text: str | None) -> tuple[str, ...]:
    """`--mode-names smile,glasses,age`: distinct names of letters, digits, '_' and '-'."""
    if not text:
        return ()
    names = tuple(name.strip() for name in text.split(","))
    ok = all(n and n.replace("_", "").replace("-", "").isalnum() for n in names)
    if not ok or len(set(names)) != len(names):
        raise UserInputError(
            "expected --mode-names as distinct comma-separated names (letters, digits, _ and -), "
            f"received {text[:80]!r}"
        )
    return names


def mode_names_option():
    return typer.Option(
        None,
        "--mode-names",
        callback=parse_mode_names,
        help="Names of a self-conditioned StyleGAN2-pytorch .pt's k modes, in slot order "
        "(SC-GAN files do not name them: attribute_1..k otherwise), e.g. smile,glasses,age; "
        "recorded in the generator's identity.",
        metavar="A,B,...",
    )


EVALUATOR_HELP = (
    "The evaluator that measures edits: `evaluator` (shipped), `dlib-pose` or `dlib-mouth` "
    "(real faces, ganedit[faces]), a model folder, a .pth/.pth.tar ResNet checkpoint, an ONNX "
    "manifest .json or py:module:callable (runs that code)."
)
IDENTITY_HELP = (
    "The identity embedder: `identity` (shipped, the face world's), `dlib-identity` (real "
    "faces, ganedit[faces]), an identity-net folder, py:module:callable (runs that code), or "
    "`none` (identity not measured)."
)


def evaluator_option():
    return typer.Option("evaluator", "--evaluator", help=EVALUATOR_HELP)


def identity_option():
    return typer.Option("identity", "--identity", help=IDENTITY_HELP)


def identity_value(text: str) -> str | None:
    """`--identity none` means no embedder."""
    return None if text.strip().lower() == "none" else text


def preset_option():
    return typer.Option("celeba", "--preset", "--config", help=PRESET_HELP)


def bootstrap_option(default: int = 200):
    return typer.Option(
        default, "--bootstrap", min=0, max=100_000, help="Bootstrap resamples of the held-out set."
    )


def grid_steps_option(default: int = 12):
    return typer.Option(
        default, "--steps", min=2, max=1000, help="Grid steps of each edit sweep after 0."
    )


def sample_modes_option():
    return typer.Option(
        None,
        "--modes",
        help="Self-conditioned generator: draw each sample's modes from the data's mode "
        "distribution shipped with the model (data; the default where it ships one, else "
        "neutral), all neutral (neutral), or uniform as in training (uniform). --mode ATTR=T "
        "fixes an attribute on top of each sample's own modes.",
    )


def image_modes_option(flag: str = "--modes"):
    return typer.Option(
        ImageModes("read"),
        flag,
        help="Self-conditioned generator: invert each image at its own modes, read by the "
        "generator's mode reader (read), or at the neutral mode (neutral).",
    )


def expand_conditions(argv: list[str]) -> list[str]:
    """The reference's spelling `--conditions A.npy B.npy` as the parser reads it:
    `--conditions A.npy --conditions B.npy` (values run up to the next flag)."""
    out, taking, taken = [], False, 0
    for token in argv:
        if token == "--conditions":
            taking, taken = True, 0
            continue
        if taking and not token.startswith("-"):
            out += ["--conditions", token]
            taken += 1
            continue
        _need_conditions(taking, taken)
        taking = False
        out.append(token)
    _need_conditions(taking, taken)
    return out


def _need_conditions(taking: bool, taken: int) -> None:
    if taking and not taken:
        raise UserInputError(
            "expected one or more boundary .npy files after --conditions, received none"
        )
