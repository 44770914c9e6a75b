"""Hostile input for every subcommand, property-based: the one-line contract under damage.

Every case starts from a valid command line over small valid fixtures built once (a tiny
StyleGAN2 folder and its StyleGAN2-pytorch .pt, a tiny attribute-net folder, reference .npy
files and the latent bank imported from them, a fitted boundary, a world render as LMDB and as
a PNG folder, a world TOML, a training checkpoint) and breaks exactly one thing: a path, a
file's bytes, a number, a name, a pair of flags. Hypothesis draws which thing and how.

The checker cannot be fooled: exit code exactly 2, exactly one stderr line `error: expected
... received ...`, no traceback anywhere, no exception escaping `run`, no advice to allow
pickled code, and every byte and every folder listing under the fixtures and the case folder
unchanged (user mistakes create nothing, delete nothing, leave no `.ganedit-probe-*`). Python
warnings print to the captured stderr as they would in a real process. The baselines are
checked to succeed (`test_baselines_are_valid`), so each case fails because of its damage.

Unreadable inputs and unwritable outputs are drawn only where chmod stops this user; as
root it does not, so `test_permission_cases_as_an_unprivileged_user` (slow) runs every such
case in a process that is `nobody`.

The default run draws a few examples per case (profile `hostile`); `-m slow` draws more
(profile `hostile-slow`). Both are derandomized, so CI is reproducible.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import random
import shutil
import signal
import stat
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_run import assert_one_error_line, in_subprocess
from ganedit.cli import run
from planted import write_planted_reference

settings.register_profile(
    "hostile",
    max_examples=3,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("hostile-slow", settings.get_profile("hostile"), max_examples=30)

ATTRS = ("smile", "gender", "glasses", "age")
D = 8  # w width of the tiny generator
N_REF = 400
RUN_TIMEOUT_S = 90  # a case that starts real work instead of refusing fails instead of hanging
ADVICE = ("safe_globals", "weights_only=False", "allow_pickle=True", "add_safe_globals")


def _permissions_bind() -> bool:
    """Whether chmod 000 stops reads here (it does not for root)."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe"
        probe.write_bytes(b"x")
        probe.chmod(0)
        try:
            probe.read_bytes()
        except PermissionError:
            return True
        finally:
            probe.chmod(0o600)
    return False


PERMISSIONS_BIND = _permissions_bind()


# ------------------------------------------------------------------------------------------
# Fixtures: small, valid, built once


@dataclass(frozen=True)
class Fx:
    root: Path  # everything the suite writes lives under here (and is snapshotted)
    tiny: Path  # stylegan2-generator folder, 16 px, w_dim 8
    tiny_pt: Path  # the same generator as a StyleGAN2-pytorch .pt
    predictor: Path  # attribute-net folder (16 px input)
    ref: Path  # reference files: z.npy, w.npy, scores_dict.npy, <attr>_scores.npy
    bank: Path  # bank.zarr imported from ref (generator: tiny)
    scores_npz: Path
    boundary: Path  # regression direction of smile fitted on bank (sidecar beside)
    lmdb: Path  # world render, 4 images of 16 px
    images: Path  # the same as a PNG folder
    toml: Path  # a valid world config (the celeba preset)
    ckpt: Path  # train-gan checkpoint folder of TRAIN_GAN_ARCH
    encoder: Path  # an e4e encoder folder for tiny (one training step)
    labels: Path  # a selflabel store of images (two columns of its labels.npz)
    tiny_pkl: Path  # an NVIDIA StyleGAN2-ADA pickle (tests/nvidia_pkl_standin.py)
    cond_pkl: Path  # a class-conditional one (4 classes)
    trunc_bank: Path  # a bank generated from tiny at truncation psi 0.7 (4 samples)
    pggan_pth: Path  # InterFaceGAN's PGGAN .pth, current layout (tests/interfacegan_standin.py)

    @property
    def cases(self) -> Path:
        return self.root / "cases"

    @property
    def photo(self) -> Path:  # a photograph with a face (the astronaut, 256 px; `_photo`)
        return self.root / "fx" / "photo.png"


TRAIN_GAN_ARCH = ["--size", "16", "--style-dim", "8", "--n-mlp", "2", "--channel-max", "8"]


def _quiet_run(args) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run([str(a) for a in args])
    assert code == 0, f"fixture {args[:2]}: exit {code}\n{out.getvalue()}\n{err.getvalue()}"


def build_fixtures(root: Path) -> Fx:
    from ganedit.models.predictors import AttributeNet
    from ganedit.models.registry import save_pretrained
    from ganedit.models.stylegan2 import Generator, export_rosinality_checkpoint
    from interfacegan_standin import PGGAN_CHANNELS, pggan_state
    from nvidia_pkl_standin import write_tiny_nvidia_pkl

    fx_dir = root / "fx"
    fx_dir.mkdir()
    torch.manual_seed(0)
    g = Generator(16, style_dim=D, n_mlp=2, channel_max=8).eval()
    g.update_w_avg(n=64, generator=torch.Generator().manual_seed(0))
    save_pretrained(g, fx_dir / "tiny")
    export_rosinality_checkpoint(fx_dir / "tiny.pt", g)
    write_tiny_nvidia_pkl(fx_dir / "tiny.pkl")
    torch.save(pggan_state(PGGAN_CHANNELS), fx_dir / "pggan.pth")
    write_tiny_nvidia_pkl(fx_dir / "cond.pkl", c_dim=4)
    save_pretrained(AttributeNet("plain", width=8, hidden=8, image_size=16).eval(), fx_dir / "pred")

    ref = fx_dir / "ref"
    scores = write_planted_reference(ref, N_REF, D)
    np.savez(fx_dir / "scores.npz", **scores)

    toml = fx_dir / "world.toml"
    toml.write_text(resources.files("ganedit.world").joinpath("presets/celeba.toml").read_text())
    _quiet_run(["bank", "import", ref, "-o", fx_dir / "bank.zarr", "-g", fx_dir / "tiny"])
    _quiet_run(["boundary", "-c", fx_dir / "bank.zarr", "-a", "smile", "-o", fx_dir / "b.npy"])
    _quiet_run(["generate", "-g", fx_dir / "tiny", "-p", fx_dir / "pred", "-n", 4, "--trunc", 0.7,
                "-o", fx_dir / "trunc.zarr", "--no-progress"])  # fmt: skip
    for out in ("world.lmdb", "images"):
        _quiet_run(["world", "render", "-n", 4, "--size", 16, "-o", fx_dir / out, "--no-progress"])
    _quiet_run(["train-gan", "-i", fx_dir / "world.lmdb", "-o", fx_dir / "gan", *TRAIN_GAN_ARCH,
                "--iter", 1, "--batch-size", 2, "--mbstd-group", 2, "--no-progress"])  # fmt: skip
    _quiet_run(["train-encoder", "-g", fx_dir / "tiny", "-o", fx_dir / "enc", "--steps", 1,
                "--batch-size", 2, "--perceptual-weight", 0, "--identity-weight", 0,
                "--no-progress"])  # fmt: skip
    _quiet_run(["selflabel", "-i", fx_dir / "images", "-o", fx_dir / "labels", "--from-table",
                fx_dir / "images" / "labels.npz", "--columns", "smile,age"])  # fmt: skip
    _photo(fx_dir / "photo.png")
    return Fx(
        root=root,
        tiny=fx_dir / "tiny",
        tiny_pt=fx_dir / "tiny.pt",
        predictor=fx_dir / "pred",
        ref=ref,
        bank=fx_dir / "bank.zarr",
        scores_npz=fx_dir / "scores.npz",
        boundary=fx_dir / "b.npy",
        lmdb=fx_dir / "world.lmdb",
        images=fx_dir / "images",
        toml=toml,
        ckpt=fx_dir / "gan" / "checkpoint",
        encoder=fx_dir / "enc" / "encoder",
        labels=fx_dir / "labels",
        tiny_pkl=fx_dir / "tiny.pkl",
        cond_pkl=fx_dir / "cond.pkl",
        trunc_bank=fx_dir / "trunc.zarr",
        pggan_pth=fx_dir / "pggan.pth",
    )


def _photo(path: Path) -> None:
    """The astronaut (ganedit[faces-test]); without scikit-image a faceless stand-in, which
    only `align`'s baseline (a slow test) would notice."""
    from PIL import Image

    try:
        from skimage.data import astronaut
    except ImportError:
        Image.new("RGB", (256, 256), (90, 90, 90)).save(path)
        return
    Image.fromarray(astronaut()).resize((256, 256), Image.Resampling.LANCZOS).save(path)


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> Fx:
    root = tmp_path_factory.mktemp("hostile")
    built = build_fixtures(root)
    built.cases.mkdir()
    return built


# ------------------------------------------------------------------------------------------
# Valid command lines (one per subcommand); `d` is the case folder, where outputs go


def baseline(command: str, fx: Fx, d: Path) -> list:
    return {
        "world render": ["world", "render", "-n", 2, "--size", 16, "-o", d / "r.lmdb",
                         "--no-progress"],
        "world sheet": ["world", "sheet", "--rows", 1, "--size", 16, "-o", d / "sheet.png"],
        "train-predictor": ["train-predictor", "--kind", "labeler", "--steps", 1,
                            "--batch-size", 2, "-o", d / "run", "--no-progress"],
        "evaluate-predictor": ["evaluate-predictor", "-p", fx.predictor, "--eval-n", 10,
                               "-o", d / "report.json"],
        "train-gan": ["train-gan", "-i", fx.lmdb, "-o", d / "gan", *TRAIN_GAN_ARCH, "--iter", 1,
                      "--batch-size", 2, "--mbstd-group", 2, "--no-progress"],
        "sample": ["sample", "-g", fx.tiny, "-n", 2, "-o", d / "grid.png"],
        "evaluate-generator": ["evaluate-generator", "-g", fx.tiny, "-n", 4, "--n-fd", 2,
                               "-o", d / "gen.json", "--no-progress"],
        "score": ["score", "-i", fx.lmdb, "-p", fx.predictor, "-o", d / "scores.npz",
                  "--no-progress"],
        "generate": ["generate", "-g", fx.tiny, "-p", fx.predictor, "-n", 4,
                     "-o", d / "new.zarr", "--no-progress"],
        "bank export": ["bank", "export", fx.bank, "-o", d / "exported"],
        "bank import": ["bank", "import", fx.ref, "-o", d / "imported.zarr", "-g", fx.tiny],
        "contingency": ["contingency", "--bank", fx.bank, "-o", d / "table.json"],
        "boundary": ["boundary", "-c", fx.bank, "-a", "smile", "-o", d / "dir.npy"],
        "train-encoder": ["train-encoder", "-g", fx.tiny, "-o", d / "enc", "--steps", 1,
                          "--batch-size", 2, "--perceptual-weight", 0, "--identity-weight", 0,
                          "--no-progress"],
        "invert": ["invert", "-i", fx.images, "-g", fx.tiny, "-o", d / "inv", "--steps", 1,
                   "--identity-weight", 0, "--no-progress"],
        "edit": ["edit", "-b", fx.boundary, "-g", fx.tiny, "-o", d / "edit", "-n", 1,
                 "--steps", 2, "--no-progress"],
        "evaluate": ["evaluate", "-b", fx.boundary, "-g", fx.tiny, "-o", d / "report",
                     "--eval-n", 10, "--bootstrap", 0, "--steps", 2, "--no-progress"],
        "study": ["study", "-o", d / "study", "-g", fx.tiny, "-n", 100, "--mab-n", 10,
                  "--eval-n", 10, "--bootstrap", 0, "--steps", 2, "--no-progress"],
        "demo": ["demo", "-o", d / "demo", "-n", 2, "--eval-n", 10, "--study-n", 0,
                 "--selfcond-n", 0, "--no-progress"],
        "selflabel": ["selflabel", "-i", fx.images, "-g", fx.tiny, "-b", fx.boundary,
                      "--encoder", fx.encoder, "-o", d / "labels", "--no-progress"],
        "resample": ["resample", "-l", fx.labels, "-o", d / "balanced"],
        "train-selfcond": ["train-selfcond", "-i", fx.images, "-l", fx.labels, "-g", fx.tiny,
                           "-o", d / "sc", "--iter", 1, "--d-warmup", 0, "--batch-size", 2,
                           "--no-progress"],
        "convert": ["convert", "-g", fx.tiny_pkl, "-o", d / "g.pt"],
        "align": ["align", fx.photo, "-o", d / "aligned", "--size", 16, "--no-progress"],
        "ui": ["ui", "-g", fx.tiny, "-b", fx.boundary, "--dry-run"],  # --dry-run: never serves
    }[command]  # fmt: skip


COMMANDS = (
    "world render", "world sheet", "train-predictor", "evaluate-predictor", "train-gan",
    "sample", "evaluate-generator", "score", "generate", "bank export", "bank import",
    "contingency", "boundary", "edit", "evaluate", "study", "demo", "invert",
    "train-encoder", "selflabel", "resample", "train-selfcond", "convert", "ui", "align",
)  # fmt: skip
CHEAP_BASELINES = ("world render", "world sheet", "train-predictor", "sample",
                   "score", "generate", "bank export", "bank import", "contingency", "boundary",
                   "edit", "invert", "train-encoder", "selflabel", "resample",
                   "train-selfcond", "convert", "ui")  # fmt: skip


def _flag_index(argv: list, flag: str) -> int:
    """Where `flag`'s value sits; positional arguments are named `#1` (the first after the
    command words)."""
    if flag.startswith("#"):
        words = 2 if argv[0] in ("world", "bank") else 1
        return words + int(flag[1:]) - 1
    return argv.index(flag) + 1


def replace(argv: list, flag: str, value) -> list:
    """`argv` with `flag`'s value replaced (the flag appended when absent)."""
    argv = list(argv)
    if flag.startswith("#") or flag in argv:
        argv[_flag_index(argv, flag)] = value
        return argv
    return [*argv, flag, value]


def without(argv: list, flag: str) -> list:
    argv = list(argv)
    i = argv.index(flag)
    del argv[i : i + 2]
    return argv


# ------------------------------------------------------------------------------------------
# The checker


@dataclass
class Outcome:
    code: object
    out: str
    err: str
    raised: str | None


class _Timeout(Exception):
    pass


def _print_warning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_cli(argv: list, cwd: Path) -> Outcome:
    """Run in-process with stdout/stderr captured, in `cwd`, with a time limit; Python
    warnings are printed to stderr as a real process would print them."""
    out, err = io.StringIO(), io.StringIO()
    code, raised = None, None

    def alarm(signum, frame):
        raise _Timeout(f"still running after {RUN_TIMEOUT_S} s: the case was not refused")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(RUN_TIMEOUT_S)
    here = os.getcwd()
    try:
        os.chdir(cwd)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            warnings.simplefilter("always")
            # Python's own defaults hide these in a real process too.
            quiet_kinds = (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                           ResourceWarning)  # fmt: skip
            for quiet in quiet_kinds:
                warnings.simplefilter("ignore", quiet)
            warnings.showwarning = _print_warning
            code = run([str(a) for a in argv])
    except KeyboardInterrupt:
        raise
    except BaseException:
        raised = traceback.format_exc()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(here)
    return Outcome(code, out.getvalue(), err.getvalue(), raised)


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under `root`: folders with their listing and mode, files with mode, size,
    modification time and sha256 of their bytes, links with their target."""
    found: dict[str, tuple] = {}

    def record(path: Path) -> None:
        key = str(path.relative_to(root))
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            found[key] = ("link", os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            try:
                listing = tuple(sorted(os.listdir(path)))
            except OSError:
                listing = None
            found[key] = ("dir", info.st_mode, listing)
            for name in listing or ():
                record(path / name)
        else:
            found[key] = ("file", info.st_mode, info.st_size, info.st_mtime_ns, _digest(path))

    record(root)
    return found


def _diff(before: dict, after: dict) -> str:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return f"added {added[:8]}, removed {removed[:8]}, changed {changed[:8]}"


def assert_refused(fx: Fx, d: Path, argv: list) -> str:
    """The contract for a user mistake; returns the error line."""
    before = snapshot(fx.root)
    outcome = run_cli(argv, d)
    after = snapshot(fx.root)
    shown = " ".join(str(a) for a in argv)
    context = f"\n$ ganedit {shown}\nstdout: {outcome.out[-2000:]}\nstderr: {outcome.err[-4000:]}"
    assert outcome.raised is None, f"an exception escaped run:{context}\n{outcome.raised}"
    assert outcome.code == 2, f"exit {outcome.code!r}, expected 2{context}"
    assert_one_error_line(outcome.err)
    assert outcome.err.endswith("\n") and outcome.err.count("\n") == 1, context
    assert "Traceback" not in outcome.out, context
    for advice in ADVICE:
        assert advice not in outcome.err, f"the message advises {advice!r}{context}"
    assert before == after, f"the run changed the file system: {_diff(before, after)}{context}"
    return outcome.err.strip()


@contextlib.contextmanager
def case_folder(fx: Fx):
    d = Path(tempfile.mkdtemp(dir=fx.cases, prefix="c-"))
    try:
        yield d
    finally:
        for path in [d, *d.rglob("*")]:  # give back what a case took away, then remove
            with contextlib.suppress(OSError):
                if not path.is_symlink():
                    path.chmod(0o700 if path.is_dir() else 0o600)
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# Damage, derived from a valid artefact


def copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)
    return dst


def damage_bytes(data: bytes, how: str, draw, spare: int = 1) -> bytes:
    """Zero bytes, a prefix, random bytes, or some bytes XOR-ed with non-zero masks.

    A prefix lacks at least the last `spare` bytes before trailing blanks (a JSON file without
    its final newline is whole; so is a PNG without its IEND chunk and IDAT checksum)."""
    if how == "empty" or not data:
        return b""
    if how == "truncate":
        keep = draw(st.integers(0, max(0, len(data.rstrip()) - spare)), label="keep bytes")
        return data[:keep]
    if how == "random":
        seed = draw(st.integers(0, 2**32 - 1), label="random seed")
        size = draw(st.integers(1, 4096), label="random size")
        return random.Random(seed).randbytes(size)
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4), label="flips")):
        at = draw(st.integers(0, len(out) - 1), label="flip at")
        out[at] ^= draw(st.integers(1, 255), label="mask")
    return bytes(out)


def damage_file(path: Path, how: str, draw, spare: int = 1) -> None:
    path.write_bytes(damage_bytes(path.read_bytes(), how, draw, spare))


def png_spare(data: bytes) -> int:
    """A PNG whose deflate stream ends early still decodes when every row is in (its last
    bytes, the checksums and IEND are not needed): truncated PNGs lose half their bytes."""
    return len(data) // 2


def with_nonfinite(array: np.ndarray, draw) -> np.ndarray:
    array = np.array(array)
    flat = array.reshape(-1)
    at = draw(st.integers(0, flat.size - 1), label="non-finite at")
    flat[at] = draw(st.sampled_from([np.nan, np.inf, -np.inf]), label="non-finite")
    return array


class _Evil:
    """Pickles as a call to os.system: loading it must be refused, never executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_npy(path: Path, d: Path) -> None:
    """A `np.save`d object array whose pickle would run a command."""
    array = np.empty((), dtype=object)
    array[()] = {"smile": _Evil(d / "PWNED")}
    np.save(path, array, allow_pickle=True)


# Paths that are not what a flag needs

IN_PATH_KINDS = ("missing", "wrong-kind", "parent-is-file", "too-long", "no-device", "dev-null",
                 "unreadable")  # fmt: skip


def bad_input_path(d: Path, want: str, valid: Path, draw, kinds=IN_PATH_KINDS) -> Path | str:
    """A path where an input `want` ("file" or "dir") is expected that is missing, of the other
    kind, under a file, too long, a device that does not exist, a character device, or a copy
    of `valid` that cannot be read (only drawn where permissions stop this user)."""
    kinds = [k for k in kinds if PERMISSIONS_BIND or k != "unreadable"]
    kind = draw(st.sampled_from(kinds), label="bad path")
    name = valid.name
    if kind == "missing":
        return d / "nowhere" / name
    if kind == "wrong-kind":
        if want == "file":
            (d / name).mkdir()
            (d / name / "inside.txt").write_text("a folder, not a file")
        else:
            (d / name).write_bytes(b"a file, not a folder\n")
        return d / name
    if kind == "parent-is-file":
        (d / "plain").write_text("a file")
        return d / "plain" / name
    if kind == "too-long":
        return d / ("n" * 300 + Path(name).suffix)
    if kind == "no-device":
        return "/dev/ganedit-no-such-device"
    if kind == "dev-null":
        return "/dev/null"
    target = copy(valid, d / name)  # unreadable
    victim = target
    if target.is_dir() and draw(st.booleans(), label="lock an inner file"):
        victim = sorted(p for p in target.rglob("*") if p.is_file())[0]
    victim.chmod(0)
    return target


OUT_KINDS = ("exists", "foreign-folder", "foreign-file", "parent-is-file", "too-long",
             "read-only-fs", "dangling-link", "unwritable")  # fmt: skip


def bad_output(d: Path, argv: list, flag: str, kind_of_out: str, draw, kinds=OUT_KINDS) -> list:
    """`argv` with output `flag` made unwritable or already taken (never by something ganedit
    wrote): what exists must be left as it is."""
    kinds = [k for k in kinds if PERMISSIONS_BIND or k != "unwritable"]
    kind = draw(st.sampled_from(kinds), label="bad output")
    out = Path(argv[_flag_index(argv, flag)])
    overwrite = draw(st.booleans(), label="--overwrite")
    if kind == "exists":
        if kind_of_out == "dir":
            out.write_bytes(b"someone's file\n")  # a file where a folder goes
        else:
            out.write_bytes(b"someone's result\n")
            overwrite = False
    elif kind == "foreign-folder":  # refused with --overwrite too: ganedit did not make it
        out.mkdir()
        (out / "thesis.tex").write_text("not ganedit's")
    elif kind == "foreign-file":  # a folder ganedit wrote, and a file the user put there
        from ganedit.utils.files import record_files

        out.mkdir()
        (out / "a.png").write_bytes(b"ganedit's")
        record_files(out, "an earlier run")
        (out / "notes.txt").write_text("not ganedit's")
        overwrite = True
    elif kind == "parent-is-file":
        (d / "plain").write_text("a file")
        out = d / "plain" / out.name
    elif kind == "too-long":
        out = d / ("o" * 300 + out.suffix)
    elif kind == "read-only-fs":
        out = Path("/proc") / out.name
    elif kind == "dangling-link":
        out.symlink_to(d / "missing-target")
        overwrite = False
    else:  # unwritable
        locked = d / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        out = locked / out.name
    argv = replace(argv, flag, out)
    return [*argv, "--overwrite"] if overwrite else argv


# ------------------------------------------------------------------------------------------
# Damaged artefacts of every format the project reads


def damaged_model_folder(src: Path, d: Path, draw) -> Path:
    """A model folder (config.json + model.safetensors) with one thing wrong."""
    folder = copy(src, d / src.name)
    config_path, weights = folder / "config.json", folder / "model.safetensors"
    config = json.loads(config_path.read_text())
    kind = draw(st.sampled_from([
        "config-bytes", "config-not-json", "config-not-object", "config-missing",
        "kwargs-wrong-type", "kwargs-unknown-key", "kwargs-memory-bomb", "model-unknown",
        "format-version", "weights-bytes", "weights-missing", "weights-nonfinite",
        "weights-other-model", "weights-header",
    ]), label="model damage")  # fmt: skip
    if kind == "config-bytes":
        damage_file(config_path, draw(st.sampled_from(["empty", "truncate", "random"])), draw)
    elif kind == "config-not-json":
        config_path.write_text(draw(st.sampled_from(["{", "{'model': 1}", "nan", "\x00\x01"])))
    elif kind == "config-not-object":
        config_path.write_text(json.dumps(draw(st.sampled_from([[], "model", 3, None]))))
    elif kind == "config-missing":
        config_path.unlink()
    elif kind == "kwargs-wrong-type":
        key = draw(st.sampled_from(sorted(config["kwargs"])), label="key")
        # Of no type any constructor argument takes (8.5 is a valid lr_mlp, null valid channels).
        config["kwargs"][key] = draw(st.sampled_from(["16", True, {"a": 1}, [[]]]))
        config_path.write_text(json.dumps(config))
    elif kind == "kwargs-unknown-key":
        config["kwargs"]["rm_rf"] = True
        config_path.write_text(json.dumps(config))
    elif kind == "kwargs-memory-bomb":
        bombs = {"style_dim": 10_000_000, "size": 2**20, "width": 10**7, "hidden": 10**9,
                 "channel_max": 10**8, "n_mlp": 10**6, "image_size": 2**24}  # fmt: skip
        key = draw(st.sampled_from(sorted(set(bombs) & set(config["kwargs"]))), label="bomb")
        config["kwargs"][key] = bombs[key]
        config_path.write_text(json.dumps(config))
    elif kind == "model-unknown":
        config["model"] = draw(st.sampled_from(["rm-rf", "", "os.system", 7]))
        config_path.write_text(json.dumps(config))
    elif kind == "format-version":
        config["format_version"] = draw(st.sampled_from([99, "2", None, 0, -1, 2.5, True]))
        config_path.write_text(json.dumps(config))
    elif kind == "weights-bytes":
        damage_file(weights, draw(st.sampled_from(["empty", "truncate", "random"])), draw)
    elif kind == "weights-missing":
        weights.unlink()
    elif kind == "weights-nonfinite":
        from safetensors.torch import load_file, save_file

        state = load_file(str(weights))
        floats = sorted(k for k, v in state.items() if v.is_floating_point() and v.numel())
        key = draw(st.sampled_from(floats), label="tensor")
        state[key] = torch.from_numpy(with_nonfinite(state[key].numpy(), draw))
        save_file(state, str(weights))
    elif kind == "weights-other-model":
        root = next(p for p in src.parents if (p / "pred").is_dir())  # the fixtures' folder
        other = root / ("pred" if src.name != "pred" else "tiny")
        shutil.copyfile(other / "model.safetensors", weights)
    else:  # weights-header: a header length that does not fit, or a header that is not JSON
        data = bytearray(weights.read_bytes())
        if draw(st.booleans(), label="length"):
            data[:8] = draw(st.sampled_from([2**63, 2**40, len(data)])).to_bytes(8, "little")
        else:
            data[8] = ord("[")
        weights.write_bytes(bytes(data))
    return folder


def damaged_pt(src: Path, d: Path, draw) -> Path:
    """A StyleGAN2-pytorch .pt with one thing wrong."""
    path = d / "ckpt.pt"
    kind = draw(st.sampled_from(["bytes", "evil-pickle", "no-g_ema", "not-a-dict",
                                 "nonfinite", "missing-tensor", "other-shapes"]),
                label="pt damage")  # fmt: skip
    if kind == "bytes":
        copy(src, path)
        damage_file(path, draw(st.sampled_from(["empty", "truncate", "random"])), draw)
        return path
    if kind == "evil-pickle":
        torch.save({"g_ema": _Evil(d / "PWNED")}, path)
        return path
    ckpt = torch.load(src, weights_only=True)
    if kind == "no-g_ema":
        ckpt = {"g": ckpt["g_ema"]}
    elif kind == "not-a-dict":
        ckpt = draw(st.sampled_from([[1, 2], "g_ema", torch.zeros(3)]))
    elif kind == "nonfinite":
        key = draw(st.sampled_from(sorted(k for k in ckpt["g_ema"] if ckpt["g_ema"][k].numel())))
        ckpt["g_ema"][key] = torch.from_numpy(with_nonfinite(ckpt["g_ema"][key].numpy(), draw))
    elif kind == "missing-tensor":
        key = draw(st.sampled_from(sorted(ckpt["g_ema"])), label="dropped")
        del ckpt["g_ema"][key]
    else:
        key = draw(st.sampled_from(sorted(k for k in ckpt["g_ema"] if ckpt["g_ema"][k].ndim)))
        shape = list(ckpt["g_ema"][key].shape)
        shape[0] += 1
        ckpt["g_ema"][key] = torch.zeros(shape)
    torch.save(ckpt, path)
    return path


def damaged_pkl(src: Path, d: Path, draw) -> Path:
    """An NVIDIA StyleGAN2-ADA .pkl with one thing wrong (never run: no PWNED marker)."""
    from nvidia_pkl_standin import snapshot, write_pickle

    path = d / "net.pkl"
    kind = draw(st.sampled_from(["bytes", "evil-reduce", "exec-global", "not-a-dict",
                                 "no-G_ema", "conditional", "nonfinite", "filter-rank-2",
                                 "filter-nan", "filter-4x3", "embed-missing"]),
                label="pkl damage")  # fmt: skip
    if kind == "bytes":
        copy(src, path)
        damage_file(path, draw(st.sampled_from(["empty", "truncate", "random"])), draw)
    elif kind == "evil-reduce":
        path.write_bytes(pickle.dumps({"G_ema": _Evil(d / "PWNED")}))
    elif kind == "exec-global":
        path.write_bytes(f"cbuiltins\nexec\n(Vopen({str(d / 'PWNED')!r}, 'w')\ntR.".encode())
    elif kind == "not-a-dict":
        path.write_bytes(pickle.dumps(draw(st.sampled_from([[1, 2], "G_ema", None]))))
    elif kind == "no-G_ema":
        path.write_bytes(pickle.dumps({"G": 1, "D": 2}))
    else:
        snap = snapshot(0, c_dim=4 if kind == "embed-missing" else 0)
        g = snap["G_ema"]
        if kind == "conditional":  # a label width without its embedding
            g.c_dim = 10
        elif kind == "embed-missing":
            del g.mapping.embed
        elif kind == "nonfinite":
            g.synthesis.b8.conv1.bias.data[0] = float("nan")
        elif kind == "filter-rank-2":  # a sum of two outer products: not separable
            a, b = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8, torch.full((4,), 0.25)
            g.synthesis.b16.conv0.resample_filter = (torch.outer(a, a) + torch.outer(b, b)) / 2
        elif kind == "filter-nan":
            g.synthesis.b8.resample_filter[1, 1] = float("nan")
        else:
            g.synthesis.b8.conv1.resample_filter = torch.ones(4, 3) / 12
        write_pickle(path, snap)
    return path


def damaged_pth(src: Path, d: Path, draw) -> Path:
    """An InterFaceGAN PGGAN .pth with one thing wrong: its bytes, a pickled object, or one
    fault of its layout (lod, a layer, a head's shape, NaN, ...)."""
    from interfacegan_standin import PGGAN_DAMAGE, damaged_pggan_state

    path = d / "pggan.pth"
    kind = draw(st.sampled_from(["bytes", "evil-pickle", *sorted(PGGAN_DAMAGE)]),
                label="pth damage")  # fmt: skip
    if kind == "bytes":
        copy(src, path)
        damage_file(path, draw(st.sampled_from(["empty", "truncate", "random"])), draw)
    elif kind == "evil-pickle":
        torch.save({"layer0.conv.weight": _Evil(d / "PWNED")}, path)
    else:
        torch.save(damaged_pggan_state(kind), path)
    return path


def damaged_npy(src: Path, d: Path, draw, name: str | None = None, rows: int | None = None) -> Path:
    """A float .npy (latents, scores, a boundary) with one thing wrong; a non-finite value
    lands in the first `rows` rows (the rows the command reads) when given."""
    path = d / (name or src.name)
    array = np.load(src)
    kind = draw(st.sampled_from(["bytes", "nonfinite", "pickled", "strings", "npz-inside",
                                 "no-rows", "wrong-ndim"]), label="npy damage")  # fmt: skip
    if kind == "bytes":
        copy(src, path)
        damage_file(path, draw(st.sampled_from(["empty", "truncate", "random"])), draw)
    elif kind == "nonfinite":
        head = array[:rows] if rows is not None else array
        array[: len(head)] = with_nonfinite(head, draw)
        np.save(path, array)
    elif kind == "pickled":
        evil_npy(path, d)
    elif kind == "strings":
        np.save(path, array.astype(str))
    elif kind == "npz-inside":
        with open(path, "wb") as fh:
            np.savez(fh, a=array)
    elif kind == "no-rows":
        np.save(path, array[:0])
    else:
        np.save(path, array.reshape(-1)[:, None, None, None])
    return path


def damaged_scores_dict(src: Path, d: Path, draw) -> Path:
    """scores_dict.npy (a pickled dict, the MAB layout) with one thing wrong."""
    path = d / "scores_dict.npy"
    scores = np.load(src, allow_pickle=True).item()
    kind = draw(st.sampled_from(["bytes", "evil", "nonfinite", "not-a-dict", "key-type",
                                 "value-type", "length"]), label="scores damage")  # fmt: skip
    if kind == "bytes":
        copy(src, path)
        damage_file(path, draw(st.sampled_from(["empty", "truncate", "random"])), draw)
        return path
    if kind == "evil":
        evil_npy(path, d)
        return path
    name = draw(st.sampled_from(ATTRS), label="score")
    if kind == "nonfinite":
        scores[name] = with_nonfinite(scores[name], draw)
    elif kind == "not-a-dict":
        scores = [scores[name]]
    elif kind == "key-type":
        scores[7] = scores.pop(name)
    elif kind == "value-type":
        scores[name] = draw(st.sampled_from(["0.5", None, [0.5] * 3]))
    else:
        scores[name] = scores[name][:-1]
    np.save(path, np.array(scores, dtype=object), allow_pickle=True)
    return path


def damaged_npz(src: Path, d: Path, draw) -> Path:
    path = d / src.name
    with np.load(src) as archive:
        arrays = {k: archive[k] for k in archive.files}
    kind = draw(st.sampled_from(["bytes", "nonfinite", "pickled", "npy-inside", "strings",
                                 "kinds"]), label="npz damage")  # fmt: skip
    if kind == "bytes":
        # Flips are left out: numpy reads a member without reaching the zip's CRC check.
        copy(src, path)
        damage_file(path, draw(st.sampled_from(["empty", "truncate", "random"])), draw)
    elif kind == "nonfinite":
        name = draw(st.sampled_from(sorted(arrays)))
        arrays[name] = with_nonfinite(arrays[name], draw)
        np.savez(path, **arrays)
    elif kind == "pickled":
        arrays["smile"] = np.array([{"a": 1}, None], dtype=object)
        np.savez(path, **arrays)
    elif kind == "npy-inside":
        with open(path, "wb") as fh:
            np.save(fh, arrays["smile"])
    elif kind == "kinds":  # the `.kinds` entry: another attribute, kind or type; a range
        kinds, entry = draw(st.sampled_from(BAD_KINDS), label="kinds"), ".kinds"
        if isinstance(kinds, dict) and kinds == {"smile": "probability"}:
            arrays["smile"] = arrays["smile"] + 1.5  # probabilities beyond 1
        arrays[entry] = np.array(json.dumps(kinds)) if isinstance(kinds, dict) else kinds
        np.savez(path, **arrays)
    else:
        arrays["smile"] = arrays["smile"].astype(str)
        np.savez(path, **arrays)
    return path


# Score kinds that do not fit the scores (as a `.kinds` entry or a score_kinds.json).
BAD_KINDS = [{"beard": "value"}, {"smile": "binary"}, {"smile": "probability"},
             np.array([1.0, 2.0]), np.array("{not json")]  # fmt: skip


BANK_CHUNK_DAMAGE = ("delete", "empty", "truncate", "flip", "random")


def damaged_bank(src: Path, d: Path, draw, reads: tuple[str, ...] = ("",)) -> Path:
    """A latent bank with a damaged chunk, array metadata or group metadata.

    Opening a bank checks that every chunk file is there and whole; a chunk's checksum is
    checked when it is read. So bytes changed in place (flipped, or replaced by as many random
    ones) go only into arrays under `reads`, the ones the command reads."""
    bank = copy(src, d / src.name)
    kind = draw(st.sampled_from(["chunk", "array-meta", "group-meta", "group-attrs",
                                 "array-gone"]), label="bank damage")  # fmt: skip
    if kind == "chunk":
        how = draw(st.sampled_from(BANK_CHUNK_DAMAGE), label="chunk damage")
        chunks = {p for p in bank.rglob("*") if p.is_file() and "c" in p.relative_to(bank).parts}
        if how in ("flip", "random"):
            # `done` holds one marker byte per chunk, without a checksum by design: left out.
            chunks = {
                p for p in chunks
                if "done" not in p.parts and str(p.relative_to(bank)).startswith(reads)
            }  # fmt: skip
        chunk = draw(st.sampled_from(sorted(chunks)), label="chunk")
        if how == "delete":
            chunk.unlink()
        elif how == "random":
            size = len(chunk.read_bytes())  # the size of a whole chunk: only its checksum tells
            chunk.write_bytes(random.Random(draw(st.integers(0, 2**32 - 1))).randbytes(size))
        else:
            damage_file(chunk, how, draw)
    elif kind == "array-meta":
        # Arrays only: zarr reads an array by its own path, never the `scores` group's file.
        arrays = sorted(
            p for p in bank.rglob("zarr.json")
            if json.loads(p.read_text()).get("node_type") == "array"
        )  # fmt: skip
        meta_path = draw(st.sampled_from(arrays), label="array metadata")
        meta = json.loads(meta_path.read_text())
        how = draw(st.sampled_from(["bytes", "shape", "dtype", "chunks"]), label="meta damage")
        if how == "bytes":
            damage_file(meta_path, draw(st.sampled_from(["empty", "truncate", "random"])), draw)
            return bank
        if how == "shape":
            meta["shape"] = [meta["shape"][0] * 2, *meta["shape"][1:]]
        elif how == "dtype":
            meta["data_type"] = draw(st.sampled_from(["float64", "no-such-type", "int8"]))
        else:
            meta["chunk_grid"]["configuration"]["chunk_shape"] = draw(
                st.sampled_from([[0], "x", [1, 2, 3, 4]])
            )
        meta_path.write_text(json.dumps(meta))
    elif kind == "group-meta":
        damage_file(bank / "zarr.json", draw(st.sampled_from(["empty", "truncate", "random"])),
                    draw)  # fmt: skip
    elif kind == "group-attrs":
        meta = json.loads((bank / "zarr.json").read_text())
        attrs = meta["attributes"]
        key, value = draw(st.sampled_from([
            ("n", "400"), ("n", 10**12), ("n", -1), ("n", 3.5), ("spaces", "zw"),
            ("spaces", ["q"]), ("spaces", None), ("score_names", None), ("score_names", [1]),
            ("dims", None), ("dims", {"w": "x"}), ("chunk_size", 0), ("chunk_size", "big"),
            ("complete", False), ("format", "other"), ("format_version", 99),
            ("generator_identity", "x"), ("n_chunks", None), ("score_kinds", {"smile": "binary"}),
            ("score_kinds", {"beard": "value"}), ("truncation_psi", 2), ("truncation_psi", "0.7"),
        ]), label="attribute")  # fmt: skip
        attrs[key] = value
        (bank / "zarr.json").write_text(json.dumps(meta))
    else:
        victim = draw(st.sampled_from(["w", "z", "index", "done", "scores/smile"]))
        shutil.rmtree(bank / victim)
    return bank


def damaged_image_folder(
    src: Path, d: Path, draw, first_only: bool = False, kinds=("bytes", "other-size", "text")
) -> Path:
    """A PNG folder with one damaged image (the first when `first_only`: training checks only
    the first image before it starts, and reads the others as it samples them). `kinds`
    leaves out "other-size" where a folder may mix sizes (inversion of a user's photos)."""
    folder = copy(src, d / src.name)
    images = sorted(folder.glob("*.png"))
    victim = images[0] if first_only else draw(st.sampled_from(images), label="image")
    kind = draw(st.sampled_from(list(kinds)), label="png damage")
    if kind == "bytes":
        # Flips are left out: PNG image data carries no checksum PIL verifies.
        how = draw(st.sampled_from(["empty", "truncate", "random"]), label="png damage")
        damage_file(victim, how, draw, png_spare(victim.read_bytes()))
    elif kind == "other-size":
        from PIL import Image

        Image.new("RGB", (17, 16)).save(victim, format="png")
    else:
        victim.write_text("not a png")
    return folder


PHOTO_DAMAGE = partial(damaged_image_folder, kinds=("bytes", "text"))


def damaged_lmdb(src: Path, d: Path, draw, first_only: bool = False) -> Path:
    """An LMDB data set with damaged bytes, a damaged value, `length` or a missing key (the
    first image's when `first_only`, as for damaged_image_folder)."""
    import lmdb

    folder = copy(src, d / src.name)
    kind = draw(st.sampled_from(["file-bytes", "value", "length", "key-gone", "no-data"]),
                label="lmdb damage")  # fmt: skip
    if kind == "file-bytes":
        damage_file(folder / "data.mdb", draw(st.sampled_from(["empty", "truncate", "random"])),
                    draw)  # fmt: skip
        return folder
    if kind == "no-data":
        (folder / "data.mdb").unlink()
        (folder / "data.mdb").mkdir()
        return folder
    env = lmdb.open(str(folder), map_size=1 << 24)
    with env.begin(write=True) as txn:
        keys = sorted(k for k, _ in txn.cursor() if k != b"length")
        key = keys[0] if first_only else draw(st.sampled_from(keys), label="key")
        if kind == "value":
            how = draw(st.sampled_from(["empty", "truncate", "random"]), label="value damage")
            value = txn.get(key)
            txn.put(key, damage_bytes(value, how, draw, png_spare(value)))
        elif kind == "length":
            txn.put(b"length", draw(st.sampled_from([b"many", b"99", b"0", b"-3", b"\xff"])))
        else:  # the first key, or the last one the `length` names: both checked on opening
            txn.delete(key if first_only or key == keys[0] else keys[-1])
    env.close()
    (folder / "lock.mdb").unlink(missing_ok=True)
    return folder


def damaged_toml(src: Path, d: Path, draw) -> Path:
    """A world config (the celeba preset) with one thing wrong."""
    path = d / "world.toml"
    text = src.read_text()
    kind = draw(st.sampled_from([
        "syntax", "rate-type", "rate-range", "rate-nonfinite", "missing-attribute",
        "unknown-attribute", "effect-unknown", "effect-value", "pose", "not-utf8", "empty",
        "attributes-type", "table-type",
    ]), label="toml damage")  # fmt: skip
    if kind == "syntax":
        text = text.replace("[pose]", "[pose", 1) + "\n= = =\n"
    elif kind == "rate-type":
        text = text.replace("rate = 0.48", f"rate = {draw(st.sampled_from(RATE_TYPES))}")
    elif kind == "rate-range":
        value = draw(st.sampled_from(["0", "1", "1.5", "-0.1", "1e400", "0.0"]))
        text = text.replace("rate = 0.42", f"rate = {value}")
    elif kind == "rate-nonfinite":
        text = text.replace("rate = 0.23", f"rate = {draw(st.sampled_from(['nan', '-inf']))}")
    elif kind == "missing-attribute":
        text = text.replace("[attributes.smile]", "[unused.smile]")
    elif kind == "unknown-attribute":
        text += "\n[attributes.beard]\nrate = 0.5\n"
    elif kind == "effect-unknown":
        text = text.replace("effects = { gender = -0.8 }", "effects = { ghost = -0.8 }")
    elif kind == "effect-value":
        value = draw(st.sampled_from(["nan", "inf", '"strong"', "1e308", "[1]", "{ x = 1 }"]))
        text = text.replace("gender = -0.8", f"gender = {value}")
    elif kind == "pose":
        key = draw(st.sampled_from(["yaw_std", "yaw_max"]), label="pose key")
        value = draw(st.sampled_from(['"wide"', "nan", "inf", "-5.0", "[1]", "1e308", "-0.1"]))
        text = text.replace(f"{key} = ", f"{key} = {value}\n# was ", 1)
    elif kind == "not-utf8":
        path.write_bytes(text.encode() + b"\n# \xff\xfe\n")
        return path
    elif kind == "empty":
        text = ""
    elif kind == "attributes-type":
        text = 'attributes = "all of them"\n'
    else:
        text = text.replace("[pose]", "pose = 3\n[unused]", 1)
    path.write_text(text)
    return path


RATE_TYPES = ('"often"', "true", "[0.5]", "{ p = 0.5 }", "2020-01-01")


def damaged_labels(src: Path, d: Path, draw) -> Path:
    """A selflabel store with one thing wrong."""
    folder = copy(src, d / src.name)
    labels, record = folder / "labels.npy", folder / "labels.json"
    kind = draw(st.sampled_from(["labels-bytes", "labels-nonfinite", "labels-missing",
                                 "labels-pickled", "record-bytes", "record-missing",
                                 "record-count", "labels-shape"]), label="labels damage")  # fmt: skip
    if kind == "labels-bytes":
        damage_file(labels, draw(st.sampled_from(["empty", "truncate", "random"])), draw)
    elif kind == "labels-nonfinite":
        np.save(labels, with_nonfinite(np.load(labels), draw))
    elif kind == "labels-missing":
        labels.unlink()
    elif kind == "labels-pickled":
        evil_npy(labels, d)
    elif kind == "record-bytes":
        damage_file(record, draw(st.sampled_from(["empty", "truncate", "random"])), draw)
    elif kind == "record-missing":
        record.unlink()
    elif kind == "record-count":
        data = json.loads(record.read_text())
        data["count"] = data["count"] + 1
        record.write_text(json.dumps(data))
    else:
        np.save(labels, np.load(labels)[:, :1])
    return folder


BOUNDARY_DAMAGE = ("npy", "zeros", "shape", "width", "sidecar-bytes", "sidecar-type",
                   "sidecar-attribute")  # fmt: skip


def damaged_boundary(src: Path, d: Path, draw, kinds=BOUNDARY_DAMAGE) -> Path:
    """A boundary .npy (+ sidecar) with one thing wrong."""
    path = d / "damaged.npy"  # not the boundary baseline's -o, which --conditions would be
    # The copy's sidecar takes the older name (`damaged.json`), which readers still find.
    shutil.copyfile(src.with_name(src.name + ".json"), path.with_suffix(".json"))
    array = np.load(src)
    kind = draw(st.sampled_from(kinds), label="boundary damage")
    if kind == "npy":
        damaged_npy(src, d, draw, name=path.name)
    elif kind == "zeros":
        np.save(path, np.zeros_like(array))
    elif kind == "shape":
        np.save(path, np.concatenate([array, array]))
    elif kind == "width":
        np.save(path, array[:, : D // 2])
        sidecar = json.loads(path.with_suffix(".json").read_text())
        sidecar["shape"] = [1, D // 2]
        path.with_suffix(".json").write_text(json.dumps(sidecar))
    elif kind == "sidecar-bytes":
        np.save(path, array)
        damage_file(path.with_suffix(".json"), draw(st.sampled_from(["truncate", "random"])),
                    draw)  # fmt: skip
    elif kind == "sidecar-type":
        np.save(path, array)
        path.with_suffix(".json").write_text(json.dumps(draw(st.sampled_from([[], "x", 1]))))
    else:
        np.save(path, array)
        sidecar = json.loads(path.with_suffix(".json").read_text())
        key = draw(st.sampled_from(sorted(SIDECAR_DAMAGE)), label="sidecar key")
        sidecar[key] = draw(st.sampled_from(SIDECAR_DAMAGE[key]), label="sidecar value")
        path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


SIDECAR_DAMAGE = {  # values of the wrong type or out of range for the fields that are read
    "attribute": [7, [], {"a": 1}],
    "intercept": ["nan", [], {"a": 1}, float("nan"), float("inf")],
    "space": [7, "wp", []],
    "generator": [7, ["tiny"]],
    "generator_sha256": [7, [], {"a": 1}],
}


def damaged_ckpt(src: Path, d: Path, draw) -> Path:
    """A train-gan checkpoint folder with one thing wrong."""
    folder = copy(src, d / "checkpoint")
    name = draw(st.sampled_from(["g", "d", "g_ema"]), label="network")
    weights = folder / f"{name}.safetensors"
    kind = draw(st.sampled_from(["missing", "bytes", "nonfinite", "other"]), label="ckpt damage")
    if kind == "missing":
        weights.unlink()
    elif kind == "bytes":
        damage_file(weights, draw(st.sampled_from(["empty", "truncate", "random"])), draw)
    elif kind == "nonfinite":
        from safetensors.torch import load_file, save_file

        state = load_file(str(weights))
        key = draw(st.sampled_from(sorted(k for k, v in state.items() if v.is_floating_point())))
        state[key] = torch.from_numpy(with_nonfinite(state[key].numpy(), draw))
        save_file(state, str(weights))
    else:
        other = {"g": "d", "d": "g", "g_ema": "d"}[name]
        shutil.copyfile(folder / f"{other}.safetensors", weights)
    return folder


def damaged_reference_folder(src: Path, d: Path, draw) -> Path:
    """The reference files of `bank import`, one of them damaged (or disagreeing)."""
    folder = copy(src, d / "ref")
    kind = draw(st.sampled_from(["latents", "scores_dict", "score-file", "rows", "no-z",
                                 "disagree", "wp-width", "kinds"]),
                label="reference damage")  # fmt: skip
    if kind == "latents":
        name = draw(st.sampled_from(["z.npy", "w.npy"]))
        (folder / name).unlink()
        damaged_npy(src / name, folder, draw)
    elif kind == "scores_dict":
        (folder / "scores_dict.npy").unlink()
        damaged_scores_dict(src / "scores_dict.npy", folder, draw)
    elif kind == "score-file":
        name = f"{draw(st.sampled_from(ATTRS))}_scores.npy"
        (folder / name).unlink()
        damaged_npy(src / name, folder, draw)
    elif kind == "rows":
        name = draw(st.sampled_from(["w.npy", "smile_scores.npy"]))
        np.save(folder / name, np.load(src / name)[:-1])
    elif kind == "no-z":
        (folder / "z.npy").unlink()
    elif kind == "disagree":
        np.save(folder / "smile_scores.npy", 1 - np.load(src / "smile_scores.npy"))
    elif kind == "kinds":  # score_kinds.json that does not fit the scores, or is no JSON object
        text = draw(st.sampled_from(['{"beard": "value"}', '{"smile": "binary"}', "[1]",
                                     '{"smile": 1}', "{not json", ""]), label="kinds")  # fmt: skip
        (folder / "score_kinds.json").write_text(text)
    else:
        np.save(folder / "wp.npy", np.zeros((N_REF, 3, D + 1), np.float32))
    return folder


# ------------------------------------------------------------------------------------------
# Cases


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable  # (fx, d, draw) -> argv


CASES: list[Case] = []


def case(id: str):
    def register(make):
        CASES.append(Case(id, make))
        return make

    return register


# Numbers that the flag cannot take (each list: values outside the flag's range or not finite).
NONFINITE = ["nan", "inf", "-inf", "1e400"]
NOT_INT = ["nan", "inf", "-inf", "2.5", "1e3", "ten", ""]
HUGE = str(10**30)
NUMBERS: dict[str, dict[str, list[str]]] = {
    "world render": {"-n": ["0", "-4", *NOT_INT, HUGE], "--size": ["0", "48", "512", "-16"],
                     "--seed": ["-1", *NOT_INT, HUGE], "--batch-size": ["0", "-1", *NOT_INT]},
    "world sheet": {"--rows": ["0", "65", *NOT_INT], "--size": ["0", "48", "17", HUGE],
                    "--scale": ["0", "17", *NOT_INT], "--seed": ["-1", HUGE]},
    "train-predictor": {"--steps": ["0", "-1", *NOT_INT], "--batch-size": ["1", "0", *NOT_INT]},
    "evaluate-predictor": {"--eval-n": ["9", "0", "-10", *NOT_INT, HUGE]},
    "train-gan": {"--size": ["0", "48", "2048", *NOT_INT], "--iter": ["0", *NOT_INT],
                  "--batch-size": ["0", "-2", *NOT_INT], "--style-dim": ["0", "5000"],
                  "--n-mlp": ["0", "33"], "--channel-multiplier": ["0", "65"],
                  "--channel-max": ["0", "5000"], "--lr": [*NONFINITE, "-0.1", "11"],
                  "--r1": [*NONFINITE, "-1"], "--path-regularize": [*NONFINITE, "-1"],
                  "--mixing": [*NONFINITE, "1.5", "-0.5"], "--mbstd-group": ["0", "-4"],
                  "--ema-kimg": [*NONFINITE, "-1"], "--ema-rampup": [*NONFINITE, "-1"],
                  "--seed": ["-1", HUGE], "--checkpoint-every": ["0"], "--sample-every": ["0"],
                  "--d-warmup": ["-1", *NOT_INT, HUGE],
                  "--channels": ["a,b", "0,0,0", "-8,8,8", "", "8,,8", "8;8", HUGE, f"{HUGE},8,8",
                                 "5000,8,8"]},
    "sample": {"-n": ["0", "4097", *NOT_INT, HUGE], "--trunc": [*NONFINITE, "1.5", "-0.1"],
               "--class": ["-1", *NOT_INT, HUGE],
               "--batch-size": ["0", *NOT_INT], "--scale": ["0", "17"], "--seed": ["-1", HUGE]},
    "evaluate-generator": {"-n": ["1", "0", *NOT_INT, HUGE], "--n-fd": ["1", "5", HUGE],
                           "-t": ["0.5", "1", "0", "nan", "inf", "abc", "none", "-0.9", ""],
                           "--seed": ["-1", HUGE], "--n-identity": ["1", "0", *NOT_INT, HUGE],
                           "--n-modes": ["-1", *NOT_INT, HUGE]},
    "score": {"--batch-size": ["0", "-1", *NOT_INT]},
    "generate": {"-n": ["0", *NOT_INT, HUGE], "--trunc": [*NONFINITE, "2", "-1"],
                 "--chunk-size": ["0", *NOT_INT], "--batch-size": ["0", *NOT_INT],
                 "--seed": ["-1", HUGE]},
    "contingency": {"-t": ["0.5", "1", "0.3", "nan", "inf", "-inf", "x", ""]},
    "boundary": {"-n": [*NONFINITE, "-1", "1e13"], "-t": ["0.5", "1", "nan", "inf", "x"],
                 "--ratio": [*NONFINITE, "-0.1"], "--seed": ["-1", HUGE]},
    "edit": {"-n": ["0", "-1", *NOT_INT, "5000", HUGE], "--start": NONFINITE, "--end": NONFINITE,
             "--steps": ["0", "1025", *NOT_INT], "--strength": NONFINITE,
             "--bound": [*NONFINITE, "0", "-1", "1e7"], "--scale": ["0", "17"],
             "--layers": ["a:b", "3", "5:2", "0:99", "1:1", "-1:2", "::"], "--seed": ["-1", HUGE],
             "--trunc": [*NONFINITE, "1.5", "-0.1"], "--modes": ["bogus", "", "read"]},
    "train-encoder": {"--steps": ["0", *NOT_INT], "--batch-size": ["0", "-1", *NOT_INT],
                      "--lr": [*NONFINITE, "0", "-1"], "--identity-weight": [*NONFINITE, "-1"],
                      "--synthetic-fraction": [*NONFINITE, "1.5", "-0.1"],
                      "--seed": ["-1", HUGE], "--data-seed": ["-1", HUGE]},
    "selflabel": {"--chunk": ["0", "-1", *NOT_INT], "--batch-size": ["0", "-1", *NOT_INT]},
    "train-selfcond": {"--iter": ["0", *NOT_INT, HUGE], "--d-warmup": ["-1", *NOT_INT, HUGE],
                       "--batch-size": ["0", "-1", *NOT_INT], "--lr": [*NONFINITE, "0", "-1"],
                       "--r1": [*NONFINITE, "-1"], "--md-d": [*NONFINITE, "-1"],
                       "--md-g": [*NONFINITE, "-1"], "--seed": ["-1", HUGE],
                       "--checkpoint-every": ["0"], "--sample-every": ["0"],
                       "--mode-loss": ["projection", ""], "--fake-modes": ["normal", ""]},
    "resample": {"-n": ["0", "-1", *NOT_INT, HUGE], "--neighbours": ["0", *NOT_INT],
                 "--max-repeat": [*NONFINITE, "0.5", "-1"], "--seed": ["-1", HUGE]},
    "invert": {"--steps": ["0", *NOT_INT, HUGE], "--pti-steps": ["0", "-1"],
               "--lr": [*NONFINITE, "0", "-1", "11"], "--identity-weight": [*NONFINITE, "-1"],
               "--batch-size": ["0", "-1", *NOT_INT], "--seed": ["-1", HUGE]},
    "evaluate": {"--eval-n": ["9", "0", *NOT_INT, HUGE], "--bootstrap": ["-1", "100001"],
                 "--steps": ["1", "1001", *NOT_INT], "--seed": ["-1", HUGE],
                 "--trunc": [*NONFINITE, "1.5", "-0.1"]},
    "study": {"-n": ["99", "0", *NOT_INT, HUGE], "-t": ["none", "0.5", "nan", "1"],
              "--mab-n": ["-1", *NOT_INT, HUGE], "--eval-n": ["9", *NOT_INT, HUGE],
              "--bootstrap": ["-1", "100001"], "--steps": ["1", "1001"], "--seed": ["-1", HUGE],
              "--trunc": [*NONFINITE, "2", "-1"]},
    "demo": {"-n": ["0", *NOT_INT, HUGE], "--eval-n": ["9", *NOT_INT, HUGE],
             "--study-n": ["50", "-1", HUGE], "--study-eval-n": ["9", HUGE],
             "--study-bootstrap": ["-1", HUGE], "--study-steps": ["1", HUGE],
             "--selfcond-n": ["-1", *NOT_INT, HUGE]},
    "align": {"--size": ["0", "-1", "16385", *NOT_INT, HUGE], "--upsample": ["-1", "5", *NOT_INT]},
    "ui": {"--port": ["-1", "65536", *NOT_INT, HUGE],
           "--max-upload-mb": [*NONFINITE, "0", "-1", "1e4"]},
}  # fmt: skip

# Flags that only count with a particular method or mode: how to make them apply.
NUMBER_CONTEXT = {
    ("boundary", "-n"): ["--method", "mab"],
    ("boundary", "--ratio"): ["--method", "interfacegan"],
    ("boundary", "-t"): ["--method", "mab"],
    ("edit", "--layers"): ["--space", "ws"],
}


def _number_case(command: str):
    def make(fx, d, draw):
        flag = draw(st.sampled_from(sorted(NUMBERS[command])), label="flag")
        value = draw(st.sampled_from(NUMBERS[command][flag]), label="value")
        argv = [*baseline(command, fx, d), *NUMBER_CONTEXT.get((command, flag), [])]
        if command == "edit" and flag == "--strength":  # strengths come with several boundaries
            argv += ["-b", fx.boundary, "--strength", "1"]
        return replace(argv, flag, value)

    return make


for _command in NUMBERS:
    case(f"{_command}: numbers")(_number_case(_command))


# Inputs: (flag, what it needs, the fixture attribute of a valid one).
INPUTS = {
    "world render": [("--preset", "file", "toml")],
    "world sheet": [("--preset", "file", "toml")],
    "evaluate-predictor": [("-p", "dir", "predictor"), ("--preset", "file", "toml")],
    "train-gan": [("-i", "dir", "lmdb"), ("--ckpt", "dir", "ckpt")],
    "sample": [("-g", "dir", "tiny"), ("-g", "file", "tiny_pt"), ("-g", "file", "tiny_pkl")],
    "evaluate-generator": [("-g", "dir", "tiny"), ("--preset", "file", "toml")],
    "score": [("-i", "dir", "images"), ("-p", "dir", "predictor")],
    "generate": [("-g", "file", "tiny_pt"), ("-p", "dir", "predictor")],
    "bank export": [("#1", "dir", "bank")],
    "bank import": [("#1", "dir", "ref")],
    "contingency": [("--bank", "dir", "bank"), ("--scores", "file", "scores_npz")],
    "boundary": [("-c", "dir", "bank"), ("-s", "file", "scores_npz"),
                 ("--conditions", "file", "boundary")],
    "edit": [("-b", "file", "boundary"), ("-g", "dir", "tiny"), ("-c", "dir", "bank"),
             ("-i", "dir", "images")],
    "evaluate": [("-b", "file", "boundary"), ("-g", "dir", "tiny")],
    "invert": [("-i", "dir", "images"), ("-g", "dir", "tiny")],
    "train-encoder": [("-g", "dir", "tiny"), ("-i", "dir", "lmdb")],
    "selflabel": [("-i", "dir", "images"), ("-g", "dir", "tiny"), ("-b", "file", "boundary"),
                  ("--encoder", "dir", "encoder")],
    "resample": [("-l", "dir", "labels")],
    "train-selfcond": [("-i", "dir", "images"), ("-l", "dir", "labels"), ("-g", "dir", "tiny"),
                       ("--resample", "dir", "labels")],
    "study": [("-g", "dir", "tiny")],
    "demo": [("-g", "dir", "tiny")],
    "convert": [("-g", "file", "tiny_pkl")],
    "ui": [("-b", "file", "boundary"), ("-g", "dir", "tiny")],
    "align": [("#1", "file", "photo")],
}  # fmt: skip


def _input_context(command: str, flag: str, fx: Fx) -> list:
    """Flags that make `flag` an input the command reads (beside the baseline)."""
    if command == "contingency" and flag == "--scores":
        return ["__drop__", "--bank"]
    if command == "boundary" and flag == "-s":
        return []
    if command == "boundary" and flag == "--conditions":
        return ["--method", "conditional"]
    return []


def _with_input(command: str, flag: str, fx: Fx, d: Path, value) -> list:
    argv = baseline(command, fx, d)
    context = _input_context(command, flag, fx)
    if context[:1] == ["__drop__"]:
        argv = without(argv, context[1])
        context = []
    return replace([*argv, *context], flag, value)


def _path_case(command: str, flag: str, want: str, attr: str, kinds=IN_PATH_KINDS):
    def make(fx, d, draw):
        path = bad_input_path(d, want, getattr(fx, attr), draw, kinds)
        return _with_input(command, flag, fx, d, path)

    return make


for _command, _inputs in INPUTS.items():
    for _flag, _want, _attr in _inputs:
        case(f"{_command}: {_flag} bad path ({_attr})")(_path_case(_command, _flag, _want, _attr))


# Outputs: (flag, file or dir).
OUTPUTS = {
    "world render": [("-o", "dir")], "world sheet": [("-o", "file")],
    "train-predictor": [("-o", "dir")], "evaluate-predictor": [("-o", "file")],
    "train-gan": [("-o", "dir")], "sample": [("-o", "file")],
    "evaluate-generator": [("-o", "file")], "score": [("-o", "file")],
    "generate": [("-o", "dir")], "bank export": [("-o", "dir")], "bank import": [("-o", "dir")],
    "contingency": [("-o", "file"), ("--heatmap", "file")],
    "boundary": [("-o", "file"), ("--json", "file")], "edit": [("-o", "dir")], "invert": [("-o", "dir")], "train-encoder": [("-o", "dir")],
    "selflabel": [("-o", "dir")], "resample": [("-o", "dir")], "train-selfcond": [("-o", "dir")],
    "evaluate": [("-o", "dir")], "study": [("-o", "dir")], "demo": [("-o", "dir")],
    "convert": [("-o", "file")], "align": [("-o", "dir"), ("--json", "file")],
}  # fmt: skip
OUTPUT_DEFAULTS = {("contingency", "--heatmap"): "table.png", ("boundary", "--json"): "fit.json",
                   ("align", "--json"): "aligned.json"}  # fmt: skip
SIDECARS = {"world sheet": ".json", "sample": ".json", "score": ".json", "boundary": ".json"}


def _output_case(command: str, flag: str, kind: str, kinds=OUT_KINDS):
    def make(fx, d, draw):
        argv = baseline(command, fx, d)
        if (command, flag) in OUTPUT_DEFAULTS:
            argv = [*argv, flag, d / OUTPUT_DEFAULTS[command, flag]]
        return bad_output(d, argv, flag, kind, draw, kinds)

    return make


def _sidecar_case(command: str, suffix: str):
    def make(fx, d, draw):
        argv = baseline(command, fx, d)
        out = Path(argv[_flag_index(argv, "-o")])
        out.with_name(out.name + suffix).write_text('{"mine": true}\n')  # only the sidecar is taken
        return argv

    return make


def _suffix_case(command: str, flag: str):
    def make(fx, d, draw):
        argv = baseline(command, fx, d)
        if (command, flag) in OUTPUT_DEFAULTS:
            argv = [*argv, flag, d / OUTPUT_DEFAULTS[command, flag]]
        out = Path(argv[_flag_index(argv, flag)])
        # convert writes a model folder to a path without a suffix: no wrong suffix there
        suffixes = [".jpg", ".txt", "", ".npy.bak", ".PNG.gz"]
        suffix = draw(st.sampled_from([x for x in suffixes if x or command != "convert"]))
        return replace(argv, flag, out.with_suffix(suffix))

    return make


for _command, _outputs in OUTPUTS.items():
    for _flag, _kind in _outputs:
        case(f"{_command}: {_flag} bad output")(_output_case(_command, _flag, _kind))
        if _kind == "file":
            case(f"{_command}: {_flag} wrong suffix")(_suffix_case(_command, _flag))
for _command, _suffix in SIDECARS.items():
    case(f"{_command}: its sidecar exists")(_sidecar_case(_command, _suffix))

# Unreadable inputs and unwritable outputs, every one (the cases above draw them among others).
PERMISSION_CASES = [
    Case(f"{command}: {flag} unreadable ({attr})", _path_case(command, flag, want, attr,
                                                               ("unreadable",)))
    for command, inputs in INPUTS.items()
    for flag, want, attr in inputs
] + [
    Case(f"{command}: {flag} unwritable", _output_case(command, flag, kind, ("unwritable",)))
    for command, outputs in OUTPUTS.items()
    for flag, kind in outputs
]  # fmt: skip


# Damaged files: (flag, damage function, fixture attribute, extra argv).
DAMAGED = {
    "world render": [("--preset", damaged_toml, "toml", [])],
    "world sheet": [("--preset", damaged_toml, "toml", [])],
    "evaluate-predictor": [("-p", damaged_model_folder, "predictor", []),
                           ("--preset", damaged_toml, "toml", [])],
    "train-gan": [("-i", partial(damaged_lmdb, first_only=True), "lmdb", []),
                  ("-i", partial(damaged_image_folder, first_only=True), "images", []),
                  ("--ckpt", damaged_ckpt, "ckpt", ["--no-resume"]),
                  ("--ckpt", damaged_pt, "tiny_pt", ["--no-resume"])],
    "sample": [("-g", damaged_model_folder, "tiny", []), ("-g", damaged_pt, "tiny_pt", []),
               ("-g", damaged_pkl, "tiny_pkl", []), ("-g", damaged_pth, "pggan_pth", [])],
    "evaluate-generator": [("-g", damaged_model_folder, "tiny", []),
                           ("--preset", damaged_toml, "toml", [])],
    "score": [("-i", damaged_lmdb, "lmdb", []), ("-i", damaged_image_folder, "images", []),
              ("-p", damaged_model_folder, "predictor", [])],
    "generate": [("-g", damaged_model_folder, "tiny", []), ("-g", damaged_pt, "tiny_pt", []),
                 ("-g", damaged_pth, "pggan_pth", []),
                 ("-p", damaged_model_folder, "predictor", [])],
    "bank export": [("#1", damaged_bank, "bank", [])],
    "bank import": [("#1", damaged_reference_folder, "ref", [])],
    "contingency": [("--bank", partial(damaged_bank, reads=("scores",)), "bank", []),
                    ("--scores", damaged_npz, "scores_npz", ["__drop__", "--bank"]),
                    ("--scores", damaged_scores_dict, "ref/scores_dict.npy",
                     ["__drop__", "--bank"])],
    "boundary": [("-c", partial(damaged_bank, reads=("w", "scores")), "bank", []),
                 ("-c", damaged_npy, "ref/w.npy", ["-s", "ref/scores_dict.npy"]),
                 ("-s", damaged_scores_dict, "ref/scores_dict.npy", []),
                 ("-s", damaged_npz, "scores_npz", []),
                 ("-s", damaged_npy, "ref/smile_scores.npy", []),
                 ("--conditions", damaged_boundary, "boundary", ["--method", "conditional"])],
    "train-encoder": [("-g", damaged_model_folder, "tiny", [])],
    "selflabel": [("-i", damaged_image_folder, "images", []), ("-i", damaged_lmdb, "lmdb", []),
                  ("-b", damaged_boundary, "boundary", []),
                  ("-g", damaged_model_folder, "tiny", []),
                  ("--encoder", damaged_model_folder, "encoder", [])],
    "resample": [("-l", damaged_labels, "labels", [])],
    "train-selfcond": [("-l", damaged_labels, "labels", []),
                       ("-i", partial(damaged_image_folder, first_only=True), "images", []),
                       ("-g", damaged_model_folder, "tiny", [])],
    "invert": [("-i", PHOTO_DAMAGE, "images", []), ("-i", damaged_lmdb, "lmdb", []),
               ("-g", damaged_model_folder, "tiny", [])],
    "edit": [("-b", damaged_boundary, "boundary", []), ("-g", damaged_model_folder, "tiny", []),
             ("-i", PHOTO_DAMAGE, "images", []),
             ("-g", damaged_pt, "tiny_pt", ["--force"]),
             ("-c", partial(damaged_bank, reads=("w",)), "bank", []),
             ("-c", partial(damaged_npy, rows=1), "ref/w.npy", [])],
    "evaluate": [("-b", damaged_boundary, "boundary", []),
                 ("-g", damaged_model_folder, "tiny", [])],
    "study": [("-g", damaged_model_folder, "tiny", []), ("-g", damaged_pt, "tiny_pt", [])],
    "demo": [("-g", damaged_model_folder, "tiny", ["--study-n", "100"])],
    "convert": [("-g", damaged_pkl, "tiny_pkl", [])],
    # A well-formed direction of the wrong shape is no damage to `ui`: the page can switch
    # generators, so it is listed as refused (tests/ui/test_server.py), not an error.
    "ui": [("-b", partial(damaged_boundary, kinds=tuple(k for k in BOUNDARY_DAMAGE if k not in ("shape", "width"))),
            "boundary", []),
           ("-g", damaged_model_folder, "tiny", [])],
}  # fmt: skip


def _fixture_path(fx: Fx, attr: str) -> Path:
    if "/" in attr:
        head, rest = attr.split("/", 1)
        return getattr(fx, head) / rest
    return getattr(fx, attr)


def _damage_case(command: str, flag: str, damage, attr: str, extra: list):
    def make(fx, d, draw):
        src = _fixture_path(fx, attr)
        damaged = damage(src, d, draw)
        argv = baseline(command, fx, d)
        tail = list(extra)
        if tail[:1] == ["__drop__"]:
            argv, tail = without(argv, tail[1]), tail[2:]
        tail = [_fixture_path(fx, t) if "/" in str(t) else t for t in tail]
        return replace([*argv, *tail], flag, damaged)

    return make


for _command, _damages in DAMAGED.items():
    for _flag, _damage, _attr, _extra in _damages:
        _name = getattr(_damage, "func", _damage).__name__.removeprefix("damaged_")
        _id = f"{_command}: {_flag} {_name} ({_attr})"
        case(_id)(_damage_case(_command, _flag, _damage, _attr, _extra))


# Names that are not among the choices.
NAMES = {
    "world render": [("--preset", "nope"), ("--format", "gif")],
    "world sheet": [("--preset", "nope")],
    "train-predictor": [("--kind", "cat")],
    "evaluate-predictor": [("-p", "nope"), ("--preset", "nope")],
    "sample": [("-g", "nope"), ("--device", "cuda:7"), ("--mode", "smile=0.5")],
    "evaluate-generator": [("-g", "nope"), ("--preset", "nope"), ("--device", "tpu")],
    "score": [("-p", "nope"), ("-p", "identity")],
    "generate": [("-g", "nope"), ("-p", "nope"), ("--device", "cuda:7"), ("--mode", "smile=1"),
                 ("--modes", "data")],
    "contingency": [("-a", "beard")],
    "boundary": [("-a", "beard"), ("--method", "svm9"), ("--space", "wp"), ("--quota", "all")],
    "edit": [("--space", "wp"), ("--mode", "sideways"), ("--mode", "smile=0.5"), ("-g", "nope"),
             ("--device", "mps"), ("--modes", "data")],
    "train-encoder": [("--perceptual", "vgg"), ("-g", "nope"), ("--device", "cuda:7"),
                      ("--preset", "nope")],
    "selflabel": [("--encoder", "nope"), ("-g", "nope"), ("--from-predictor", "nope"),
                  ("--device", "cuda:7")],
    "resample": [("--scheme", "uniform"), ("--attributes", "beard")],
    "train-selfcond": [("--init", "clone"), ("--attributes", "beard"), ("-g", "nope"),
                       ("--device", "cuda:7")],
    "invert": [("--method", "encoder9"), ("--space", "wp"), ("--perceptual", "vgg"), ("-g", "nope"),
               ("--device", "cuda:7")],
    "evaluate": [("--space", "q"), ("-g", "nope"), ("--device", "cpu:x"), ("--evaluator", "nope"),
                 ("--evaluator", "identity"), ("--identity", "evaluator"),
                 ("--identity", "py:no_such_module:f"), ("--layers", "0:2"),
                 ("--layers", "1:x")],
    "study": [("--space", "ws"), ("-g", "nope"), ("--device", "cuda:99"), ("-p", "nope"),
              ("-p", "identity"), ("--evaluator", "labeler.pth"), ("--identity", "labeler"),
              ("-a", "beard"), ("-a", "yaw")],
    "demo": [("-g", "nope")],
    "align": [("--face", "biggest"), ("--face", "-1"), ("-g", "nope")],
    "train-gan": [("--device", "cuda:7")],
    "convert": [("--network", "D"), ("--network", "g_ema")],
    "ui": [("-g", "nope"), ("--device", "cuda:7"), ("--host", "example.com"), ("--host", ""),
           ("--evaluator", "nope"), ("--identity", "labeler")],
}  # fmt: skip


def _name_case(command: str):
    def make(fx, d, draw):
        flag, value = draw(st.sampled_from(NAMES[command]), label="name")
        return replace(baseline(command, fx, d), flag, value)

    return make


for _command in NAMES:
    case(f"{_command}: unknown names")(_name_case(_command))


# Classes: a class-conditional generator (an NVIDIA .pkl of 4 classes) without --class or with
# one beyond its labels, --class for an unconditional generator, --class with edit's --images.
def _class_case(command: str):
    def make(fx, d, draw):
        argv = baseline(command, fx, d)
        kinds = ["missing", "beyond", "unconditional"] + (["images"] if command == "edit" else [])
        kind = draw(st.sampled_from(kinds), label="class")
        if kind == "unconditional":
            return [*argv, "--class", "0"]
        argv = replace(argv, "-g", fx.cond_pkl)
        if kind == "missing":
            return argv
        if kind == "images":
            return [*argv, "--class", "0", "--images", fx.images]
        return [*argv, "--class", draw(st.sampled_from(["4", "99"]), label="index")]

    return make


for _command in ("sample", "generate", "edit"):
    case(f"{_command}: --class")(_class_case(_command))


# Flags that contradict each other (or a flag another method or mode does not take).
def _conflicts(command: str, fx: Fx, d: Path) -> list[list]:
    base = baseline(command, fx, d)
    if command == "contingency":
        return [[*base, "--scores", fx.scores_npz], without(base, "--bank")]
    if command == "boundary":
        return [
            [*base, "--method", "mab", "--ratio", "0.1"],
            [*base, "--method", "interfacegan", "-n", "0.1", "--ratio", "0.1"],
            [*base, "--method", "regression", "--quota", "exact"],
            [*base, "--method", "stratified", "--solver", "fast"],
            [*base, "--method", "mab", "--split-mode", "reference"],
            [*base, "--method", "conditional"],  # without --conditions
            [*base, "--method", "mab", "-n", "2.5"],
            [*base, "--method", "mab", "-n", "0"],
            replace(base, "-c", fx.ref / "w.npy"),  # .npy codes need --scores
            [*base, "-g", fx.tiny_pt],  # not the bank's generator
        ]
    if command == "edit":
        return [
            [*base, "--calibrated", "--mode", "absolute"],
            [*base, "-b", fx.boundary],  # two boundaries, no strengths
            [*base, "-b", fx.boundary, "--strength", "1"],  # two boundaries, one strength
            [*base, "-b", fx.boundary, "--strength", "1", "--strength", "1", "--mode",
             "absolute"],
            [*base, "--layers", "0:2"],  # layers need ws
            [*base, "--space", "z"],  # learned in w
            [*base, "-g", fx.tiny_pt],  # learned on another generator (without --force)
            [*base, "-c", fx.trunc_bank, "--trunc", "0.5"],  # the bank was made at psi 0.7
            [*base, "-i", fx.images, "--trunc", "0.5"],  # inverted codes are at psi 1
        ]  # fmt: skip
    if command == "evaluate":
        return [[*base, "--space", "z"], [*base, "-g", fx.tiny_pt]]
    if command == "invert":
        return [[*base, "--method", "pti", "--space", "z"]]  # pti needs a w pivot
    if command == "evaluate-generator":
        return [replace(base, "--n-fd", "5")]  # more than -n
    if command == "train-gan":
        return [
            replace(replace(base, "--batch-size", "6"), "--mbstd-group", "4"),
            replace(base, "--size", "32"),  # the images are 16 px
            [*base, "--channels", "8,8"],  # 16 px needs three resolutions
        ]
    if command == "world sheet":
        return [replace(base, "-o", d / "sheet.jpg")]
    if command == "sample":
        return [replace(base, "-o", d / "grid.gif")]
    if command == "score":
        return [replace(base, "-o", d / "scores.npy")]
    if command == "bank import":
        return [replace(base, "#1", fx.ref / "w.npy")]
    raise AssertionError(command)


def _conflict_case(command: str):
    def make(fx, d, draw):
        options = _conflicts(command, fx, d)
        return draw(st.sampled_from(options), label="conflict")

    return make


for _command in ("contingency", "boundary", "edit", "evaluate", "evaluate-generator", "train-gan",
                 "world sheet", "sample", "score", "bank import", "invert"):  # fmt: skip
    case(f"{_command}: conflicting flags")(_conflict_case(_command))


def _unknown_option_case(command: str):
    def make(fx, d, draw):
        argv = baseline(command, fx, d)
        extra = draw(st.sampled_from([["--no-such-flag"], ["--overwite"], ["stray"], ["-Z", "1"]]))
        return [*argv, *extra]

    return make


for _command in COMMANDS:
    case(f"{_command}: unknown option")(_unknown_option_case(_command))


# ------------------------------------------------------------------------------------------
# The tests


def _check(fx: Fx, c: Case, data) -> None:
    with case_folder(fx) as d:
        argv = c.make(fx, d, data.draw)
        assert_refused(fx, d, argv)
        assert not (d / "PWNED").exists(), "a pickle ran code"


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
@settings(settings.get_profile("hostile"))
@given(data=st.data())
def test_hostile_input_is_refused_in_one_line(fx, c, data):
    _check(fx, c, data)


@pytest.mark.slow
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
@settings(settings.get_profile("hostile-slow"))
@given(data=st.data())
def test_hostile_input_is_refused_in_one_line_many_examples(fx, c, data):
    _check(fx, c, data)


@pytest.mark.skipif(not PERMISSIONS_BIND, reason="permission bits do not stop this user (root)")
@pytest.mark.parametrize("c", PERMISSION_CASES, ids=[c.id for c in PERMISSION_CASES])
@settings(settings.get_profile("hostile"), max_examples=1)
@given(data=st.data())
def test_unreadable_inputs_and_unwritable_outputs(fx, c, data):
    _check(fx, c, data)


def _as_nobody() -> list[str] | None:
    """A command prefix that runs a program as `nobody`, when this process is root and that
    user can start this interpreter with ganedit; else None."""
    import pwd
    import subprocess

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return None
    prefix = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import ganedit, hypothesis, pytest"],
        capture_output=True,
        cwd="/",
    )
    return prefix if probe.returncode == 0 else None


@pytest.mark.slow  # a second pytest as `nobody` rebuilds every fixture: 29 s
def test_permission_cases_as_an_unprivileged_user():
    """As root, chmod stops nothing: run the permission cases in a process that is `nobody`
    (under `make test-slow`, so a CI that runs as root can still check them)."""
    import subprocess

    prefix = _as_nobody()
    if prefix is None:
        pytest.skip("needs root, setpriv and a `nobody` who can run this interpreter")
    home = Path(tempfile.mkdtemp(prefix="ganedit-nobody-"))
    home.chmod(0o777)
    try:
        proc = subprocess.run(
            [*prefix, sys.executable, "-m", "pytest", str(Path(__file__).resolve()), "-q",
             "-p", "no:cacheprovider", "--basetemp", str(home / "t"),
             "-k", "test_unreadable_inputs_and_unwritable_outputs"],
            cwd=home, capture_output=True, text=True, timeout=900,
            env={**os.environ, "HOME": str(home), "MPLCONFIGDIR": str(home)},
        )  # fmt: skip
    finally:
        shutil.rmtree(home, ignore_errors=True)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    assert f"{len(PERMISSION_CASES)} passed" in proc.stdout, tail


def test_warnings_are_printed_after_success_and_dropped_before_a_mistake(fx):
    with case_folder(fx) as d:
        off = d / "off.npy"
        np.save(off, 2 * np.load(fx.boundary))  # norm 2: re-normalised with a warning
        edit = ["edit", "-b", off, "-g", fx.tiny, "-n", 1, "--steps", 2, "--no-progress"]
        outcome = run_cli([*edit, "-o", d / "e"], d)
        assert outcome.code == 0 and "re-normalised" in outcome.err, outcome
        np.save(off, 2 * np.load(fx.boundary)[:, :4])  # and of another width than w
        line = assert_refused(fx, d, [*edit, "-o", d / "e2"])
        assert "shape" in line


def test_a_name_too_long_for_the_file_system_is_a_mistake(fx):
    with case_folder(fx) as d:  # pathlib's exists() raises ENAMETOOLONG: once a traceback
        line = assert_refused(fx, d, ["sample", "-g", d / ("g" * 300), "-o", d / "grid.png"])
        assert "300 bytes" in line


@pytest.mark.slow
def test_the_contract_holds_in_a_real_process(fx):
    """Crashes kill a process: a truncated LMDB was SIGBUS (exit 135, no message at all)."""
    with case_folder(fx) as d:
        lmdb_copy = copy(fx.lmdb, d / "cut.lmdb")
        data = lmdb_copy / "data.mdb"
        data.write_bytes(data.read_bytes()[:8292])
        torch.save({"g_ema": _Evil(d / "PWNED")}, d / "evil.pt")
        scores = dict(np.load(fx.scores_npz))
        scores["age"][7] = np.nan
        np.savez(d / "nan.npz", **scores)
        cases = [
            ["score", "-i", lmdb_copy, "-o", d / "s.npz", "--no-progress"],
            ["sample", "-g", d / "evil.pt", "-o", d / "g.png"],
            ["contingency", "--scores", d / "nan.npz"],
        ]
        for args in cases:
            before = snapshot(fx.root)
            proc = in_subprocess(args, d)
            assert proc.returncode == 2, (args, proc.returncode, proc.stderr[-2000:])
            assert_one_error_line(proc.stderr)
            assert "Traceback" not in proc.stdout and snapshot(fx.root) == before
        assert not (d / "PWNED").exists()


def test_every_subcommand_is_covered(fx):
    from ganedit.cli import app

    listed = set()
    for command in app.registered_commands:
        listed.add(command.name)
    for group in app.registered_groups:
        listed |= {f"{group.name} {c.name}" for c in group.typer_instance.registered_commands}
    assert listed == set(COMMANDS)
    covered = {c.id.split(":")[0] for c in CASES}
    assert covered == set(COMMANDS)


@pytest.mark.parametrize("command", CHEAP_BASELINES)
def test_baselines_are_valid(fx, command):
    """Every case breaks one thing of a command line that works."""
    with case_folder(fx) as d:
        outcome = run_cli(baseline(command, fx, d), d)
        assert outcome.raised is None and outcome.code == 0, outcome


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(set(COMMANDS) - set(CHEAP_BASELINES)))
def test_slow_baselines_are_valid(fx, command):
    with case_folder(fx) as d:
        outcome = run_cli(baseline(command, fx, d), d)
        assert outcome.raised is None and outcome.code == 0, outcome
