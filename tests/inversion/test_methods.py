"""The inversion method table: every front-end reads it, and a new method is one class and one
row (the runs, `edit --images` and the config check need nothing else)."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganedit.choices import INVERT_METHODS
from ganedit.editing.run import EditConfig
from ganedit.errors import UserInputError
from ganedit.inversion import run as inversion_run
from ganedit.inversion.images import load_image
from ganedit.inversion.methods import INVERTERS, Context, Inversion
from ganedit.inversion.projector import ProjectorConfig
from ganedit.inversion.run import InvertConfig, invert_and_edit, run_invert
from ganedit.models.registry import save_pretrained
from ganedit.models.sources import load_generator
from ganedit.models.stylegan2 import Generator
from ganedit.ui.upload import decode_upload
from ganedit.utils.params import OneOf


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16).eval()
    g.update_w_avg(n=256, generator=torch.Generator().manual_seed(0))
    folder = tmp_path_factory.mktemp("g") / "tiny"
    save_pretrained(g, folder)
    return folder


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for name, shape in [("a.png", (20, 24, 3)), ("b.png", (16, 16, 3)), ("c.png", (18, 16, 3))]:
        paths.append(tmp_path / name)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(paths[-1])
    return paths


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
    with pytest.raises(UserInputError, match="batch size <= 2 for average"):
        InvertConfig(generator=str(tiny), method="average", batch_size=3)
    cfg = InvertConfig(generator=str(tiny), method="average", batch_size=2)
    summary = run_invert(cfg, photos, tmp_path / "inv", progress=False)
    assert summary["method"] == "average" and summary["n"] == 3
    source = load_generator(tiny)
    codes = np.load(tmp_path / "inv" / "latents.npy")
    w_avg = source.generator.w_avg.numpy()
    assert codes.shape == (3, 6, 16) and np.array_equal(codes[2, 5], w_avg)
    # the run renders a method's codes when the method gives no images
    expected = source.synthesize(torch.from_numpy(codes[:1]), "ws")
    metrics = json.loads((tmp_path / "inv" / "00000.json").read_text())["metrics"]
    target, _ = load_image(photos[0], None, source.resolution)
    mse = float(((expected[0] - target) ** 2).mean())
    assert metrics["pixel_mse"] == pytest.approx(mse, rel=1e-5)

    boundary = tmp_path / "b.npy"
    np.save(boundary, np.eye(1, 16, dtype=np.float32))
    edit = EditConfig(boundaries=(str(boundary),), generator=str(tiny), steps=2)
    result = invert_and_edit(cfg, edit, photos[:2], tmp_path / "edited", progress=False)
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
