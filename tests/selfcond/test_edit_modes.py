"""Editing by modes: `ganedit edit --mode ATTR=T` on a self-conditioned generator."""

import json

import numpy as np
import pytest
import torch

from cli_run import ok, user_error
from ganedit.models.modes import mode_vector
from ganedit.models.registry import save_pretrained
from ganedit.models.sources import load_generator
from ganedit.models.stylegan2 import Discriminator
from tiny_generators import save_tiny_generators


@pytest.fixture(scope="module")
def generators(tmp_path_factory):
    root = tmp_path_factory.mktemp("gens")
    save_tiny_generators(root)
    reader = Discriminator(16, channel_max=16, num_modes=7).eval()
    with torch.no_grad():  # reads every image as smile t = 1, yaw t = 0
        reader.final_class[1].weight.zero_()
        reader.final_class[1].bias.copy_(torch.tensor([0, -50, -50, 50, 50, -50, -50.0]))
    selfcond = {"attributes": ["smile", "yaw"], "ranges": [[0, 1], [-40, 40]]}
    save_pretrained(reader, root / "sc" / "mode-reader", extra={"selfcond": selfcond})
    return root


def test_edit_by_modes_sweeps_from_neutral_to_the_target(capsys, tmp_path, generators):
    out = tmp_path / "e"
    text = ok(capsys, ["edit", "-g", generators / "sc", "--mode", "yaw=1", "-n", 2,
                       "--steps", 3, "-o", out, "--no-progress"])  # fmt: skip
    assert "strip.png" in text
    config = json.loads((out / "config.json").read_text())
    assert config["modes"]["attributes"] == ["smile", "yaw"]
    assert config["modes"]["targets"] == {"yaw": 1.0}
    assert config["modes"]["start"] == [[0.5, 0.5], [0.5, 0.5]]  # sampled latents: neutral
    assert config["strengths"] == [0.0, 0.5, 1.0]
    # the first column is the neutral mode, the last the target: check against the source
    source = load_generator(str(generators / "sc"))
    z = source.sample_z(2, seed=0)
    w = source.to_w(z)
    neutral = source.synthesize(w, "w")
    target = source.synthesize(w, "w", modes=mode_vector(torch.tensor([[0.5, 1.0]]), True))
    assert (neutral - target).abs().max() > 1e-2
    latents = np.load(out / "latents.npy")
    np.testing.assert_allclose(latents, w.numpy(), atol=1e-6)
    # the frames themselves: column 0 at neutral, the last at the target, w kept
    from ganedit.editing.run import EditConfig, _mode_edit, _render

    cfg = EditConfig(boundaries=(), modes=("yaw=1",), steps=3)
    start = torch.full((2, 2), 0.5)
    frames = _render(cfg, source, w, [], [], [0.0, 0.5, 1.0], False, _mode_edit(cfg, source), start)
    assert torch.allclose(frames[0], neutral, atol=1e-5)
    assert torch.allclose(frames[-1], target, atol=1e-5)


def test_sampled_faces_start_at_the_modes_sample_draws_for_them(capsys, tmp_path, generators):
    """With the data's modes shipped, an edit of sampled latents starts where `sample` drew
    each face (row i of the same seed), not at the neutral mode no real image has."""
    import shutil

    from ganedit.models.modes import ModeLayout, draw_coordinates, save_mode_prior

    folder = tmp_path / "with-prior"
    shutil.copytree(generators / "sc", folder)
    layout = ModeLayout(["smile", "yaw"])
    prior = np.array([[0.0, 0.1], [1.0, 0.9], [0.0, 0.7]])
    save_mode_prior(folder, layout, prior, "test")
    args = ["edit", "-g", folder, "--mode", "yaw=1", "-n", 3, "--seed", 5, "--steps", 2]
    ok(capsys, [*args, "-o", tmp_path / "d", "--no-progress"])
    config = json.loads((tmp_path / "d" / "config.json").read_text())
    drawn = draw_coordinates("data", 3, 5 + 1, layout, prior)
    np.testing.assert_allclose(config["modes"]["start"], drawn.numpy(), atol=1e-6)
    gaps = np.abs(np.asarray(config["modes"]["start"])[:, None] - prior[None]).max(-1)
    assert gaps.min(1).max() < 1e-6  # every start is a row of the data's modes
    # sample's first three faces at seed 5 are the edit's strength-0 column
    ok(capsys, ["sample", "-g", folder, "-n", 3, "--seed", 5, "--out", tmp_path / "s.png"])
    assert json.loads((tmp_path / "s.png.json").read_text())["modes_drawn"] == "data"
    ok(capsys, [*args, "--modes", "neutral", "-o", tmp_path / "n", "--no-progress"])
    config = json.loads((tmp_path / "n" / "config.json").read_text())
    assert config["modes"]["start"] == [[0.5, 0.5]] * 3 and config["sample_modes"] == "neutral"
    np.save(tmp_path / "codes.npy", np.zeros((3, 16), np.float32))
    line = user_error(capsys, [*args, "--modes", "data", "--latents", tmp_path / "codes.npy",
                               "-o", tmp_path / "x"])  # fmt: skip
    assert "--modes only with sampled latents" in line
    assert not (tmp_path / "x").exists()


def test_modes_and_directions_combine_and_bad_requests_are_refused(capsys, tmp_path, generators):
    from ganedit.directions.io import save_boundary

    source = load_generator(str(generators / "sc"))
    meta = {"generator": source.identity["name"], "generator_sha256": source.identity["sha256"],
            "space": "w", "attribute": "smile"}  # fmt: skip
    b = save_boundary(tmp_path / "b.npy", np.eye(16, dtype=np.float32)[0], meta)
    ok(capsys, ["edit", "-g", generators / "sc", "-b", b, "--mode", "smile=0", "--mode",
                "absolute", "-n", 1, "--steps", 2, "-o", tmp_path / "both", "--no-progress"])  # fmt: skip
    config = json.loads((tmp_path / "both" / "config.json").read_text())
    assert config["mode"] == "absolute" and config["modes"]["targets"] == {"smile": 0.0}
    assert "no modes" in user_error(capsys, ["edit", "-g", generators / "plain", "--mode",
                                             "yaw=1", "-o", tmp_path / "x", "--no-progress"])  # fmt: skip
    for bad in ("yaw=2", "age=0.5", "sideways"):
        user_error(capsys, ["edit", "-g", generators / "sc", "--mode", bad, "-o", tmp_path / "y",
                            "--no-progress"])  # fmt: skip
    line = user_error(capsys, ["edit", "-g", generators / "sc", "-o", tmp_path / "z"])
    assert "--boundary or --mode" in line


def test_sources_check_modes(generators):
    from ganedit.errors import UserInputError

    sc, plain = load_generator(str(generators / "sc")), load_generator(str(generators / "plain"))
    assert sc.mode_attributes == ["smile", "yaw"] and plain.mode_attributes == []
    z = sc.sample_z(3, seed=1)
    per_sample = mode_vector(torch.rand(3, 2, generator=torch.Generator().manual_seed(2)), True)
    images = sc.synthesize(z, "z", batch_size=2, modes=per_sample)  # sliced with the batches
    one_by_one = torch.cat([sc.synthesize(z[i : i + 1], "z", modes=per_sample[i : i + 1])
                            for i in range(3)])  # fmt: skip
    assert torch.allclose(images, one_by_one, atol=1e-5)
    with pytest.raises(UserInputError, match="shape"):
        sc.synthesize(z, "z", modes=torch.ones(2, 7))
    with pytest.raises(UserInputError, match="self-conditioned"):
        plain.synthesize(z, "z", modes=per_sample)


def test_sample_and_generate_at_modes(capsys, tmp_path, generators):
    from ganedit.latents import LatentBank

    ok(capsys, ["sample", "-g", generators / "sc", "-n", 2, "--mode", "yaw=0.9",
                "-o", tmp_path / "grid.png"])  # fmt: skip
    record = json.loads((tmp_path / "grid.png.json").read_text())
    assert record["modes"] == {"yaw": 0.9}
    ok(capsys, ["generate", "-g", generators / "sc", "-n", 4, "-p", "none", "--mode", "smile=0",
                "-o", tmp_path / "b.zarr", "--no-progress"])  # fmt: skip
    bank = LatentBank.open(tmp_path / "b.zarr")  # no data's modes shipped: the rest neutral
    assert bank.meta["modes"] == {"drawn": "neutral", "set": {"smile": 0.0}}
    np.testing.assert_array_equal(bank.modes(), [[0.0, 0.5]] * 4)
    user_error(capsys, ["sample", "-g", generators / "plain", "--mode", "yaw=1",
                        "-o", tmp_path / "p.png"])  # fmt: skip
    # a setting renders as its vector: the attributes it does not name neutral
    sc = load_generator(str(generators / "sc"))
    z = sc.sample_z(2, seed=3)
    at_setting = sc.synthesize(z, "z", modes=sc.mode_layout.setting_vector({"smile": 0.0}))
    explicit = sc.synthesize(z, "z", modes=mode_vector(torch.tensor([[0.0, 0.5]]), True))
    assert torch.equal(at_setting, explicit)


def test_inverted_images_keep_their_own_modes(capsys, tmp_path, generators):
    """invert reads each image's modes with the generator's mode reader; edit starts there."""
    from PIL import Image

    from ganedit.utils.images import to_uint8

    sc = load_generator(str(generators / "sc"))
    faces = tmp_path / "faces"
    faces.mkdir()
    for i, image in enumerate(to_uint8(sc.synthesize(sc.sample_z(2, seed=9), "z"))):
        Image.fromarray(image).save(faces / f"{i}.png")
    inv = tmp_path / "inv"
    ok(capsys, ["invert", "-i", faces, "-g", generators / "sc", "--steps", 3, "-o", inv,
                "--perceptual", "identity", "--no-progress"])  # fmt: skip
    np.testing.assert_allclose(np.load(inv / "modes.npy"), [[1.0, 0.0], [1.0, 0.0]], atol=1e-5)
    record = json.loads((inv / "latents.json").read_text())
    assert record["modes"]["how"] == "read" and record["modes"]["attributes"] == ["smile", "yaw"]
    assert json.loads((inv / "00001.json").read_text())["modes"]["t"] == [[1.0, 0.0]]
    # the reconstruction is rendered at the images' modes
    codes = torch.from_numpy(np.load(inv / "latents.npy"))
    at = sc.synthesize(codes, "ws", modes=mode_vector(torch.tensor([[1.0, 0.0]]), True))
    out = tmp_path / "e"
    ok(capsys, ["edit", "-g", generators / "sc", "--latents", inv / "latents.npy", "--space",
                "ws", "--mode", "yaw=1", "--steps", 2, "-o", out, "--no-progress"])  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["modes"]["start"] == [[1.0, 0.0], [1.0, 0.0]]  # read, not neutral
    from ganedit.editing.run import EditConfig, _mode_edit, _render

    cfg = EditConfig(boundaries=(), modes=("yaw=1",), steps=2, space="ws")
    start = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    frames = _render(cfg, sc, codes, [], [], [0.0, 1.0], False, _mode_edit(cfg, sc), start)
    assert torch.allclose(frames[0], at, atol=1e-5)  # column 0: the image's own modes

    ok(capsys, ["invert", "-i", faces, "-g", generators / "sc", "--steps", 2, "--modes",
                "neutral", "--method", "pti", "--pti-steps", 2, "-o", tmp_path / "n",
                "--perceptual", "identity", "--no-progress"])  # fmt: skip
    np.testing.assert_allclose(np.load(tmp_path / "n" / "modes.npy"), 0.5)
    tuned = load_generator(str(tmp_path / "n" / "00000_generator"))
    assert tuned.mode_attributes == ["smile", "yaw"]


def test_the_encoder_follows_the_generator_and_sidecar_modes_are_checked(
    capsys, tmp_path, generators
):
    from PIL import Image

    from ganedit.editing.run import start_coordinates
    from ganedit.errors import DamagedInputError
    from ganedit.inversion.encode import shipped_encoder
    from ganedit.utils.images import to_uint8

    assert shipped_encoder(load_generator("world64-sc")) == "world64-sc-encoder"
    assert shipped_encoder(load_generator("world64")) == "world64-encoder"
    sc = load_generator(str(generators / "sc"))
    image = to_uint8(sc.synthesize(sc.sample_z(1, seed=4), "z"))[0]
    Image.fromarray(image).save(tmp_path / "face.png")
    line = user_error(capsys, ["invert", "-i", tmp_path / "face.png", "-g", generators / "sc",
                               "--method", "encoder", "-o", tmp_path / "x", "--no-progress"])  # fmt: skip
    assert "expected --encoder" in line  # no shipped encoder for this generator
    start = start_coordinates(sc, {"modes": {"yaw": 0.9}}, 2)  # a bank's: neutral elsewhere
    torch.testing.assert_close(start, torch.tensor([[0.5, 0.9], [0.5, 0.9]]))
    with pytest.raises(DamagedInputError, match="numbers"):
        start_coordinates(sc, {"modes": {"yaw": "left"}}, 2)
    with pytest.raises(DamagedInputError, match="per-code modes"):
        start_coordinates(sc, {"modes": {"attributes": ["yaw"], "t": [[0.1]]}}, 2)


def test_the_modes_grid_sweeps_each_face_from_its_own_modes(generators):
    """Each row renders one face across t for one attribute; with `own`, the face's other
    attribute stays at its own coordinate, not neutral."""
    from ganedit.editing.edit import mode_sweep_grid

    source = load_generator(str(generators / "sc"))
    t_grid = (0.0, 1.0)
    neutral = mode_sweep_grid(source, 2, 3, t_grid)
    assert np.array_equal(neutral, mode_sweep_grid(source, 2, 3, t_grid, own=np.full((2, 2), 0.5)))
    own = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    grid = mode_sweep_grid(source, 2, 3, t_grid, own=own)
    assert grid.shape == neutral.shape and not np.array_equal(grid, neutral)
    # the smile rows' first face keeps yaw at its own t = 1: its image is the source's
    w = source.to_w(source.sample_z(2, 3))[:1]
    expected = source.synthesize(w, "w", modes=mode_vector(torch.tensor([[0.0, 1.0]]), True))
    from ganedit.utils.images import to_uint8

    first = to_uint8(expected)[0]  # the grid pads each image by 2 white pixels
    assert np.array_equal(grid[2 : 2 + first.shape[0], 2 : 2 + first.shape[1]], first)


def test_a_traversal_renders_each_face_at_its_given_modes(generators, monkeypatch):
    """traversal_edits with `modes` renders every step at those modes (the protocol's walk
    on a self-conditioned generator from each face's own modes), not at the default."""
    from ganedit.evaluation import selfcond

    source = load_generator(str(generators / "sc"))
    w = source.to_w(source.sample_z(3, 1))
    modes = mode_vector(torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]), True)
    seen = []

    def reading(src, latents, space, evaluator, identity, batch_size, modes=None):
        seen.append(modes)
        n = len(latents)
        return {a: np.zeros(n) for a in ("smile", "gender", "glasses", "age", "yaw")}, np.ones(
            (n, 2)
        ) / np.sqrt(2)

    monkeypatch.setattr(selfcond, "_reading", reading)
    direction = np.ones(w.shape[1], np.float32)
    selfcond.traversal_edits(source, w, "yaw", direction, [1.0, -1.0], None, None, modes=modes)
    assert len(seen) == 3 and all(m is modes for m in seen)
    seen.clear()
    selfcond.traversal_edits(source, w, "yaw", direction, [1.0], None, None)
    assert seen == [None, None]


def test_each_shipped_self_conditioned_generator_pairs_with_its_own_encoder():
    """world64-sc and its predecessor world64-sc-v1 are different weights; each shipped
    encoder loads for its own generator and is refused for the other (by sha256)."""
    from ganedit.errors import ProvenanceError
    from ganedit.inversion.encode import load_encoder_for, shipped_encoder

    new, old = load_generator("world64-sc"), load_generator("world64-sc-v1")
    assert new.identity["sha256"] != old.identity["sha256"]
    assert new.mode_attributes == old.mode_attributes == ["smile", "glasses", "age", "yaw"]
    assert shipped_encoder(old) == "world64-sc-v1-encoder"
    for source, other in ((new, "world64-sc-v1-encoder"), (old, "world64-sc-encoder")):
        assert load_encoder_for(None, source, "cpu") is not None
        with pytest.raises(ProvenanceError, match="expected an encoder trained for"):
            load_encoder_for(other, source, "cpu")
