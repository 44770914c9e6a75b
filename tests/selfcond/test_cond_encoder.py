"""The encoder of a self-conditioned generator: each image decoded at its own modes."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cli_run import ok, user_error
from ganedit.errors import UserInputError
from ganedit.inversion.train_encoder import (
    EncoderTrainConfig,
    encoder_step,
    setup_encoder_training,
    world_images,
)
from ganedit.models.modes import mode_vector
from ganedit.models.registry import load_encoder, save_pretrained
from ganedit.models.stylegan2 import Generator
from ganedit.selfcond.encoder import modes_from_labels, train_conditional_encoder
from ganedit.selfcond.labels import write_labels
from ganedit.utils.context import RunContext
from ganedit.utils.images import to_uint8
from tiny_encoder import TINY_ENCODER

QUIET = RunContext(progress=False)

RANGES = [[0.0, 1.0], [-40.0, 40.0]]  # smile, yaw


@pytest.fixture(scope="module", autouse=True)
def _one_thread():  # tiny models: one thread is fastest
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("condenc")
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16, mode_attributes=["smile", "yaw"])
    with torch.no_grad():
        g.input.mode_offsets.normal_(generator=torch.Generator().manual_seed(1))
    g.update_w_avg(n=256, generator=torch.Generator().manual_seed(0))
    selfcond = {"attributes": ["smile", "yaw"], "ranges": RANGES}
    save_pretrained(g.eval(), root / "sc", extra={"selfcond": selfcond})
    plain = Generator(16, style_dim=16, n_mlp=2, channel_max=16)
    plain.update_w_avg(n=256, generator=torch.Generator().manual_seed(0))
    save_pretrained(plain.eval(), root / "plain")
    faces = root / "faces"
    faces.mkdir()
    for i, image in enumerate(to_uint8(world_images(5, 0, 6, 16))):
        Image.fromarray(image).save(faces / f"{i}.png")
    labels = root / "labels"
    labels.mkdir()
    # columns in another order than the generator's, and one more: found by name
    values = np.array([[20.0, 0.1, 3], [-40, 0.9, 3], [0, 0.5, 3], [40, 0.0, 3], [-20, 1.0, 3],
                       [60, 0.3, 3]], np.float32)  # fmt: skip
    write_labels(labels, values, ["yaw", "smile", "other"], {"source": "table"})
    return root


def _cfg(root, **kw):
    base = dict(generator=str(root / "sc"), data=str(root / "faces"), labels=str(root / "labels"),
                steps=2, batch_size=4, lr=1e-3, perceptual=0.0, identity=0.0,
                encoder=TINY_ENCODER, checkpoint_every=2, sample_every=2, log_every=1)  # fmt: skip
    return EncoderTrainConfig(**{**base, **kw})


def test_image_modes_use_the_generators_ranges(setting):
    t = modes_from_labels(setting / "labels", str(setting / "sc"))
    np.testing.assert_allclose(t[:, 0], [0.1, 0.9, 0.5, 0.0, 1.0, 0.3], atol=1e-6)
    np.testing.assert_allclose(t[:, 1], [0.75, 0.0, 0.5, 1.0, 0.25, 1.0], atol=1e-6)  # clipped
    with pytest.raises(UserInputError, match="ranges"):
        modes_from_labels(setting / "labels", str(setting / "plain"))


def test_each_image_is_decoded_at_its_modes(setting):
    t = modes_from_labels(setting / "labels", str(setting / "sc"))
    run = setup_encoder_training(_cfg(setting), real_modes=t)
    images, true_ws, modes = run.batches(0)
    assert images.shape[0] == modes.shape[0] == 4 and true_ws.shape[0] == 2
    # the real half: the dataset images drawn for step 0, each at its own mode vector
    real, real_modes = run.batches.real(0, 2)
    for image, m in zip(real, real_modes, strict=True):
        index = int(np.argmin([(image - x).abs().sum() for x in _faces(setting)]))
        expected = mode_vector(torch.as_tensor(t[index : index + 1]), for_generator=True)[0]
        assert torch.allclose(m, expected)
    # the synthetic half: t ~ U(0, 1), a function of (seed, index)
    again = setup_encoder_training(_cfg(setting), real_modes=t).batches(0)[2]
    assert torch.equal(modes, again) and not torch.equal(modes[0], modes[1])
    stats = encoder_step(run)
    assert np.isfinite(stats["total"])


def _faces(root):
    from ganedit.utils.images import from_uint8

    return from_uint8(np.stack([np.asarray(Image.open(root / "faces" / f"{i}.png"))
                                for i in range(6)]))  # fmt: skip


def test_modes_are_required_for_and_refused_without_a_self_conditioned_generator(setting):
    with pytest.raises(UserInputError, match="--labels"):
        setup_encoder_training(_cfg(setting, labels=None))
    with pytest.raises(UserInputError, match="has none"):
        setup_encoder_training(_cfg(setting, generator=str(setting / "plain")),
                               real_modes=np.zeros((6, 2)))  # fmt: skip
    with pytest.raises(UserInputError, match=r"\[6, 2\]"):
        setup_encoder_training(_cfg(setting), real_modes=np.zeros((5, 2)))


def test_fine_tune_from_an_encoder_and_the_cli(setting, tmp_path, capsys):
    first = tmp_path / "first"
    train_conditional_encoder(_cfg(setting), first, ctx=QUIET)
    start = dict(load_encoder(first / "encoder")["encoder"].named_parameters())
    cfg = _cfg(setting, init_encoder=str(first / "encoder"), steps=1, lr=1e-12)
    train_conditional_encoder(cfg, tmp_path / "tuned", ctx=QUIET)
    tuned = dict(load_encoder(tmp_path / "tuned" / "encoder")["encoder"].named_parameters())
    for key, value in start.items():  # a vanishing learning rate: the starting weights
        assert torch.allclose(value, tuned[key], atol=1e-5), key
    record = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert record["labels"] == str(setting / "labels")

    args = ["train-encoder", "-g", setting / "sc", "-i", setting / "faces",
            "-l", setting / "labels", "--steps", 1, "--batch-size", 2,
            "--perceptual-weight", 0, "--identity-weight", 0, "--no-progress"]  # fmt: skip
    assert "encoder for" in ok(capsys, [*args, "-o", tmp_path / "cli"])
    # the CLI's default encoder is larger than the tiny one: refused with one line
    line = user_error(capsys, [*args, "--init-encoder", first / "encoder", "-o", tmp_path / "x"])
    assert "architecture" in line
    line = user_error(capsys, [*args[:5], *args[7:], "-o", tmp_path / "y"])  # no labels
    assert "--labels" in line
