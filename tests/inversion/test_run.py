import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from cli_run import ok, user_error
from ganedit.choices import INVERT_METHODS
from ganedit.editing.run import EditConfig
from ganedit.errors import UserInputError
from ganedit.inversion import run as inversion_run
from ganedit.inversion.images import load_image
from ganedit.inversion.methods import INVERTERS, Context, Inversion
from ganedit.inversion.projector import ProjectorConfig
from ganedit.inversion.run import InvertConfig, check_image_edit, invert_and_edit, run_invert
from ganedit.models.registry import save_pretrained
from ganedit.models.sources import load_generator
from ganedit.models.stylegan2 import Generator
from ganedit.ui.upload import decode_upload
from ganedit.utils.context import RunContext
from ganedit.utils.params import OneOf

QUIET = RunContext(progress=False)

FAST = ["--steps", 3, "--no-progress", "--identity-weight", 0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16).eval()
    g.update_w_avg(n=256, generator=torch.Generator().manual_seed(0))
    folder = tmp_path_factory.mktemp("g") / "tiny"
    save_pretrained(g, folder)
    return folder


def _png(path, array, mode=None):
    Image.fromarray(array, mode).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    _png(folder / "a.png", rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))  # not square
    _png(folder / "b.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return folder


def test_invert_a_folder(capsys, tmp_path, tiny, photos):
    out = tmp_path / "inv"
    text = ok(capsys, ["invert", "-g", tiny, "-i", photos, "-o", out, *FAST])
    assert "2 images inverted by optimize" in text
    codes = np.load(out / "latents.npy")
    assert codes.shape == (2, 6, 16) and np.isfinite(codes).all()
    origin = json.loads((out / "latents.json").read_text())
    assert origin["space"] == "ws" and origin["generator"] == "tiny"
    assert origin["generator_sha256"] == load_generator(tiny).identity["sha256"]
    record = json.loads((out / "00000.json").read_text())
    assert record["image"] == "a.png" and set(record["metrics"]) >= {"pixel_mse", "perceptual"}
    assert np.array_equal(np.load(out / "00001.npy"), codes[1:2])
    from ganedit.models.encoder.convert import load_latents_pt

    assert np.array_equal(load_latents_pt(out / "latents.pt").numpy(), codes)
    for name in ("00000.png", "reconstructions.png", "config.json", "summary.json"):
        assert (out / name).is_file()
    # An existing output is refused, and kept.
    assert "existing" in user_error(capsys, ["invert", "-g", tiny, "-i", photos, "-o", out, *FAST])
    assert (out / "latents.npy").is_file()


def test_pti_writes_a_tuned_generator_that_knows_its_parent(capsys, tmp_path, tiny, photos):
    out = tmp_path / "pti"
    args = ["invert", "-g", tiny, "-i", photos / "b.png", "-o", out, "--method", "pti"]
    ok(capsys, [*args, "--pti-steps", 2, *FAST])
    tuned = load_generator(out / "00000_generator")
    parent = load_generator(tiny).identity
    assert tuned.identity["parent"] == {"name": "tiny", "sha256": parent["sha256"]}
    config = json.loads((out / "00000_generator" / "config.json").read_text())
    assert config["pti"]["image"]["name"] == "b.png"
    assert np.asarray(config["pti"]["pivot_ws"]).shape == (6, 16)


def test_images_are_converted_as_documented(tmp_path):
    gray = _png(tmp_path / "gray.png", np.full((16, 16), 0, np.uint8), "L")
    rgba = np.zeros((16, 16, 4), np.uint8)  # fully transparent black: white once composited
    clear = _png(tmp_path / "clear.png", rgba, "RGBA")
    image, _ = load_image(gray, None, 8)
    assert image.shape == (3, 8, 8) and torch.equal(image, torch.full((3, 8, 8), -1.0))
    image, _ = load_image(clear, None, 16)
    assert torch.equal(image, torch.ones(3, 16, 16))


def test_bad_images_get_one_line(capsys, tmp_path, tiny):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    assert "decode" in user_error(
        capsys, ["invert", "-g", tiny, "-i", broken, "-o", tmp_path / "x"]
    )
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "image file" in user_error(
        capsys, ["invert", "-g", tiny, "-i", text, "-o", tmp_path / "y"]
    )
    assert "image file" in user_error(
        capsys, ["invert", "-g", tiny, "-i", tmp_path / "missing.png", "-o", tmp_path / "z"]
    )
    assert not any(p.name in ("x", "y", "z") for p in tmp_path.iterdir())


def test_edit_images_inverts_then_edits(capsys, tmp_path, tiny, photos):
    boundary = tmp_path / "b.npy"
    direction = np.zeros((1, 16), np.float32)
    direction[0, 0] = 1.0
    np.save(boundary, direction)
    out = tmp_path / "edited"
    args = ["edit", "-g", tiny, "-b", boundary, "-i", photos, "-o", out, "--steps", 3]
    text = ok(capsys, [*args, "--invert-steps", 2, "--no-progress"])
    assert f"{out / 'edit'}: strip.png" in text and ".tmp" not in text
    assert (out / "inversion" / "latents.npy").is_file() and (out / "edit" / "strip.png").is_file()
    # The inverted codes are ws of this generator: using them as w is refused.
    again = ["edit", "-g", tiny, "-b", boundary, "-c", out / "inversion" / "latents.npy"]
    line = user_error(capsys, [*again, "--space", "w", "-o", tmp_path / "e2", "--no-progress"])
    assert "'ws'" in line


def test_train_encoder_then_invert_with_it(capsys, tmp_path, tiny, photos):
    run = tmp_path / "enc"
    train = ["train-encoder", "-g", tiny, "-o", run, "--steps", 2, "--batch-size", 2]
    text = ok(capsys, [*train, "--perceptual-weight", 0, "--identity-weight", 0, "--no-progress"])
    assert "encoder for" in text and (run / "encoder" / "config.json").is_file()
    out = tmp_path / "inv"
    ok(capsys, ["invert", "-g", tiny, "-i", photos, "--method", "encoder", "--encoder",
                run / "encoder", "-o", out, "--no-progress"])  # fmt: skip
    codes = np.load(out / "latents.npy")
    assert (
        codes.shape == (2, 6, 16)
        and json.loads((out / "latents.json").read_text())["method"] == "encoder"
    )
    pivot = tmp_path / "pti"
    ok(capsys, ["invert", "-g", tiny, "-i", photos / "b.png", "--method", "pti", "--pivot",
                "encoder", "--encoder", run / "encoder", "--pti-steps", 1, "-o", pivot,
                "--no-progress"])  # fmt: skip
    assert (pivot / "00000_generator" / "model.safetensors").is_file()


def test_an_encoder_of_another_generator_is_refused(capsys, tmp_path, tiny, photos):
    torch.manual_seed(3)
    other = tmp_path / "other"
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16).eval()
    save_pretrained(g, other)
    run = tmp_path / "enc"
    ok(capsys, ["train-encoder", "-g", other, "-o", run, "--steps", 1, "--batch-size", 2,
                "--perceptual-weight", 0, "--identity-weight", 0, "--no-progress"])  # fmt: skip
    line = user_error(capsys, ["invert", "-g", tiny, "-i", photos, "--method", "encoder",
                               "--encoder", run / "encoder", "-o", tmp_path / "x"])  # fmt: skip
    assert "trained for" in line
    missing = user_error(capsys, ["invert", "-g", tiny, "-i", photos, "--method", "encoder",
                                  "--encoder", tmp_path / "nope", "-o", tmp_path / "y"])  # fmt: skip
    assert "encoder" in missing


def _e4e_pair(tmp_path, decoder_seed: int | None):
    """A rosinality `.pt` generator and an official-layout e4e checkpoint for it; the
    checkpoint's decoder is that generator (decoder_seed None), another one, or absent (-1)."""
    from ganedit.models.encoder.convert import save_e4e_checkpoint
    from ganedit.models.encoder.networks import Encoder4Editing
    from ganedit.models.stylegan2.convert import export_rosinality_checkpoint
    from tiny_encoder import TINY_ENCODER

    def tiny_g(seed):
        torch.manual_seed(seed)
        g = Generator(16, style_dim=16, n_mlp=2, channel_max=16).eval()
        g.update_w_avg(n=64, generator=torch.Generator().manual_seed(0))
        return g

    g = tiny_g(0)
    g_path = export_rosinality_checkpoint(tmp_path / "g.pt", g)
    encoder = Encoder4Editing(
        image_size=32, w_dim=16, num_ws=g.num_ws, coarse_ind=2, middle_ind=4, **TINY_ENCODER
    )
    decoder = None if decoder_seed == -1 else g if decoder_seed is None else tiny_g(decoder_seed)
    e4e = save_e4e_checkpoint(encoder, tmp_path / "e4e.pt", decoder_state=decoder)
    return g_path, e4e


def test_an_e4e_checkpoint_file_inverts_for_the_generator_it_holds(capsys, tmp_path, photos):
    g_path, e4e = _e4e_pair(tmp_path, decoder_seed=None)
    out = tmp_path / "inv"
    ok(capsys, ["invert", "-g", g_path, "-i", photos, "--method", "encoder", "--encoder", e4e,
                "-o", out, "--no-progress"])  # fmt: skip
    assert np.load(out / "latents.npy").shape == (2, 6, 16)


@pytest.mark.parametrize("decoder_seed, match", [(5, "decoder differs"), (-1, "no decoder")])
def test_an_e4e_checkpoint_of_another_generator_is_refused(
    capsys, tmp_path, photos, decoder_seed, match
):
    g_path, e4e = _e4e_pair(tmp_path, decoder_seed)
    line = user_error(capsys, ["invert", "-g", g_path, "-i", photos, "--method", "encoder",
                               "--encoder", e4e, "-o", tmp_path / "x"])  # fmt: skip
    assert match in line and "e4e checkpoint" in line


def test_invert_reports_images_and_steps_in_a_log(capsys, tmp_path, tiny, photos, monkeypatch):
    """stderr not a terminal: plain lines name the images and the projector's steps (a fake
    clock, 30 s later at every reading, makes each line due)."""
    import types

    from ganedit.cli import run
    from ganedit.utils import progress

    now = [0.0]

    def monotonic() -> float:
        now[0] += 30.0
        return now[0]

    monkeypatch.setattr(progress, "time", types.SimpleNamespace(monotonic=monotonic))
    args = ["invert", "-g", tiny, "-i", photos, "-o", tmp_path / "inv", "--steps", 3,
            "--identity-weight", 0]  # fmt: skip
    assert run([str(a) for a in args]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert any(
        line.startswith("invert (optimize) 0/2 (0%) | project (w) 1/3 (33%), ") for line in lines
    ), lines
    assert lines[-1].startswith("invert (optimize) 2/2 done in "), lines


# ------------------------------------------------------------------------------------------
# The method table


def test_the_table_serves_exactly_the_listed_methods():
    assert tuple(INVERTERS) == INVERT_METHODS
    for name, inverter in INVERTERS.items():
        assert inverter.tunes_generator == (name == "pti"), name


def test_a_z_pivot_for_pti_is_refused_by_the_methods_check():
    z = ProjectorConfig(space="z")
    with pytest.raises(UserInputError, match="w or ws pivot"):
        InvertConfig(method="pti", projector=z)
    InvertConfig(method="pti", pivot="encoder", projector=z)  # the encoder's pivot is ws
    InvertConfig(method="optimize", projector=z)


class Average:
    """A method for the test: every image's code is the generator's average ws."""

    tunes_generator = False

    def check(self, cfg):
        if cfg.batch_size > 2:
            raise UserInputError(
                f"expected a batch size <= 2 for average, received {cfg.batch_size}"
            )

    def uses_encoder(self, cfg):
        return False

    def invert(self, ctx: Context, images, start: int) -> Inversion:
        w_avg = ctx.source.generator.w_avg  # [w_dim]
        ws = w_avg.expand(len(images), ctx.source.generator.num_ws, -1).clone().cpu()
        return Inversion(ws)  # rendered by the run


@pytest.fixture
def average(monkeypatch):
    monkeypatch.setitem(INVERTERS, "average", Average())
    methods = OneOf((*INVERT_METHODS, "average"))
    monkeypatch.setitem(inversion_run._CONSTRAINTS, "method", methods)


def test_a_new_method_is_one_class_and_one_row(average, tmp_path, tiny, photos):
    photos = sorted(photos.iterdir())  # a.png (not square), b.png
    with pytest.raises(UserInputError, match="batch size <= 2 for average"):
        InvertConfig(generator=str(tiny), method="average", batch_size=3)
    cfg = InvertConfig(generator=str(tiny), method="average", batch_size=1)
    summary = run_invert(cfg, photos, tmp_path / "inv", ctx=QUIET)
    assert summary["method"] == "average" and summary["n"] == 2
    source = load_generator(tiny)
    codes = np.load(tmp_path / "inv" / "latents.npy")
    w_avg = source.generator.w_avg.numpy()
    assert codes.shape == (2, 6, 16) and np.array_equal(codes[1, 5], w_avg)
    # the run renders a method's codes when the method gives no images
    expected = source.synthesize(torch.from_numpy(codes[:1]), "ws")
    metrics = json.loads((tmp_path / "inv" / "00000.json").read_text())["metrics"]
    target, _ = load_image(photos[0], None, source.resolution)
    mse = float(((expected[0] - target) ** 2).mean())
    assert metrics["pixel_mse"] == pytest.approx(mse, rel=1e-5)

    boundary = tmp_path / "b.npy"
    np.save(boundary, np.eye(1, 16, dtype=np.float32))
    edit = EditConfig(boundaries=(str(boundary),), generator=str(tiny), steps=2)
    result = invert_and_edit(cfg, edit, photos, tmp_path / "edited", ctx=QUIET)
    assert [e["out"] for e in result["edits"]] == [str(tmp_path / "edited" / "edit")]
    assert (tmp_path / "edited" / "edit" / "strip.png").is_file()


def _rgba_png(path) -> bytes:
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (40, 30, 4), dtype=np.uint8)  # not square, half transparent
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="png")
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


@pytest.mark.parametrize("resolution", [16, 30, 8])
def test_an_upload_is_decoded_as_invert_decodes_a_file(tmp_path, resolution):
    data = _rgba_png(tmp_path / "x.png")
    expected, _ = load_image(tmp_path / "x.png", None, resolution)
    assert torch.equal(decode_upload(data, resolution, 10**6), expected)


@pytest.mark.parametrize(
    "setting, refused",
    [({"class_index": 3}, "--class 3"), ({"mode_names": ("a", "b")}, "--mode-names a,b"),
     ({"truncation_psi": 0.7}, "--trunc")],
)  # fmt: skip
def test_an_image_edit_refuses_what_inverted_codes_cannot_take(tmp_path, setting, refused):
    # The library refuses these itself, before any output or network exists.
    edit = EditConfig(boundaries=("b.npy",), generator="world64", **setting)
    cfg = InvertConfig(generator="world64")
    with pytest.raises(UserInputError, match=refused):
        invert_and_edit(cfg, edit, [tmp_path / "x.png"], tmp_path / "out", ctx=QUIET)
    assert not (tmp_path / "out").exists()
    # psi 1 (or unset) is what inverted codes reproduce: accepted
    check_image_edit(EditConfig(boundaries=("b.npy",), truncation_psi=1.0))
