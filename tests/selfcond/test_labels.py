"""Self-labels: planted codes and boundaries give known distances; runs resume."""

import numpy as np
import pytest
import torch
from PIL import Image

from ganedit.datasets import ImageDataset
from ganedit.directions.io import save_boundary
from ganedit.errors import DamagedInputError, ProvenanceError, UserInputError
from ganedit.selfcond.labels import (
    DistanceLabeller,
    SelfLabelConfig,
    boundary_distances,
    label_dataset,
    labels_from_table,
    load_boundaries,
    load_labels,
)

IDENTITY = {"name": "tiny", "sha256": "ab" * 32}
L, D = 3, 4


class _MeanEncoder(torch.nn.Module):
    """ws whose coordinate 0 is the image's mean and coordinate 1 its red channel's mean
    minus the blue one's, every layer alike; counts the images it saw."""

    num_ws, w_dim = L, D

    def __init__(self):
        super().__init__()
        self.register_buffer("latent_avg", torch.zeros(L, D))
        self.seen = 0

    def forward(self, images):
        self.seen += len(images)
        ws = torch.zeros(len(images), L, D)
        ws[:, :, 0] = images.mean((1, 2, 3))[:, None]
        ws[:, :, 1] = (images[:, 0] - images[:, 2]).mean((1, 2))[:, None]
        return ws


def _boundary(folder, name, vector, intercept, space="w", sha=IDENTITY["sha256"]):
    meta = {"generator": "tiny", "generator_sha256": sha, "space": space}
    meta |= {"attribute": name, "intercept": intercept}
    return save_boundary(folder / f"{name}.npy", np.asarray(vector, np.float32), meta)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(23):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
            folder / f"{i:03d}.png"
        )
    return folder


def self_label(dataset, encoder, boundaries, out, config, provenance, resolution):
    labeller = DistanceLabeller(encoder, boundaries, resolution, config.batch_size)
    record = {"source": "distances", "boundaries": [b.record for b in boundaries], **provenance}
    return label_dataset(dataset, labeller, out, config, record)


def _truth(folder):
    """The planted encoder's coordinates 0 and 1, from the files themselves."""
    data = ImageDataset(folder)
    x = np.stack([data[i] for i in range(len(data))]).astype(np.float64) / 127.5 - 1
    return x.mean((1, 2, 3)), (x[..., 0] - x[..., 2]).mean((1, 2))


def test_distances_of_w_and_ws_boundaries():
    ws = torch.zeros(2, L, D)
    ws[0, :, 0] = torch.tensor([1.0, 2.0, 3.0])  # rows differ: a w boundary reads their mean
    ws[1, :, 1] = 1.0
    from ganedit.selfcond.labels import Boundary

    w = Boundary("a", np.array([1.0, 0, 0, 0], np.float32), 0.5, "w", {})
    per_layer = np.zeros((L, D), np.float32)
    per_layer[2, 0] = 1.0  # the last layer's coordinate 0 only
    wsb = Boundary("b", per_layer, -1.0, "ws", {})
    got = boundary_distances(ws, [w, wsb])
    assert np.allclose(got, [[2.5, 2.0], [0.5, -1.0]])


def test_self_label_finds_the_planted_distances_and_resumes(tmp_path, photos):
    paths = [
        _boundary(tmp_path, "brightness", [1.0, 0, 0, 0], 0.25),
        _boundary(tmp_path, "warmth", [0, -1.0, 0, 0], 0.0),
    ]
    boundaries = load_boundaries(paths, IDENTITY)
    encoder = _MeanEncoder()
    config = SelfLabelConfig(batch_size=4, chunk=10)
    provenance = {"generator": IDENTITY, "encoder": "mean", "data": str(photos)}
    out = tmp_path / "labels"
    record = self_label(ImageDataset(photos), encoder, boundaries, out, config, provenance, 8)
    labels, loaded = load_labels(out)
    mean, warm = _truth(photos)
    assert labels.shape == (23, 2) and labels.dtype == np.float32
    np.testing.assert_allclose(labels[:, 0], mean + 0.25, atol=1e-5)
    np.testing.assert_allclose(labels[:, 1], -warm, atol=1e-5)
    assert loaded == record and record["attributes"] == ["brightness", "warmth"]
    lo, hi = np.percentile(labels[:, 0], [0.5, 99.5])
    assert record["ranges"][0] == pytest.approx([lo, hi])
    assert [b["intercept"] for b in record["boundaries"]] == [0.25, 0.0]

    # an interrupted run: drop the record and the last chunk; only that chunk is encoded again
    (out / "labels.json").unlink()
    (out / "parts" / "000000020.npz").unlink()
    with pytest.raises(UserInputError, match="finished"):
        load_labels(out)
    again = _MeanEncoder()
    self_label(ImageDataset(photos), again, boundaries, out, config, provenance, 8)
    assert again.seen == 3
    assert np.array_equal(load_labels(out)[0], labels)
    # another configuration does not resume into the same folder
    with pytest.raises(UserInputError, match="--overwrite"):
        self_label(
            ImageDataset(photos), again, boundaries, out, SelfLabelConfig(chunk=5), provenance, 8
        )


def test_a_damaged_chunk_is_computed_again_and_a_damaged_store_refused(tmp_path, photos):
    boundaries = load_boundaries([_boundary(tmp_path, "b", [1.0, 0, 0, 0], 0.0)], IDENTITY)
    config = SelfLabelConfig(batch_size=8, chunk=16, save_codes=True)
    out = tmp_path / "labels"
    self_label(ImageDataset(photos), _MeanEncoder(), boundaries, out, config, {}, 8)
    codes = np.load(out / "codes.npy")
    assert codes.shape == (23, L, D)
    (out / "labels.json").unlink()
    (out / "parts" / "000000000.npz").write_bytes(b"PK\x03\x04 truncated")
    encoder = _MeanEncoder()
    self_label(ImageDataset(photos), encoder, boundaries, out, config, {}, 8)
    assert encoder.seen == 16
    np.save(out / "labels.npy", np.full((23, 1), np.nan, np.float32))
    with pytest.raises(DamagedInputError, match="finite"):
        load_labels(out)


def test_boundaries_of_another_generator_or_space_are_refused(tmp_path):
    other = _boundary(tmp_path, "x", [1.0, 0, 0, 0], 0.0, sha="cd" * 32)
    with pytest.raises(ProvenanceError):
        load_boundaries([other], IDENTITY)
    z = _boundary(tmp_path, "z", [1.0, 0, 0, 0], 0.0, space="z")
    with pytest.raises(UserInputError, match="w or ws"):
        load_boundaries([z], IDENTITY)
    twice = [_boundary(tmp_path, "y", [1.0, 0, 0, 0], 0.0)] * 2
    with pytest.raises(UserInputError, match="one boundary per attribute"):
        load_boundaries(twice, IDENTITY)


def test_labels_from_a_table(tmp_path):
    np.savez(tmp_path / "t.npz", yaw=np.array([3.0, -1.0, 2.0]), smile=np.array([0, 1, 1]))
    got = labels_from_table(tmp_path / "t.npz", ["smile", "yaw"], 3)
    assert got.tolist() == [[0, 3.0], [1, -1.0], [1, 2.0]]
    (tmp_path / "t.csv").write_text("index,age\n2,0.5\n0,0.1\n1,0.9\n")
    assert labels_from_table(tmp_path / "t.csv", ["age"], 3)[:, 0].tolist() == [0.1, 0.9, 0.5]
    with pytest.raises(UserInputError, match="missing"):
        labels_from_table(tmp_path / "t.npz", ["glasses"], 3)
    with pytest.raises(UserInputError, match="4 numbers"):
        labels_from_table(tmp_path / "t.npz", ["yaw"], 4)
    (tmp_path / "bad.csv").write_text("index,age\n0,x\n")
    with pytest.raises(UserInputError, match="numbers"):
        labels_from_table(tmp_path / "bad.csv", ["age"], 1)


def test_a_boundary_that_does_not_fit_the_codes_is_refused(tmp_path):
    fits = _boundary(tmp_path, "a", [1.0, 0, 0, 0], 0.0)
    assert len(load_boundaries([fits], IDENTITY, code_shape=(3, 4))) == 1
    short = _boundary(tmp_path, "b", [1.0, 0, 0], 0.0)
    with pytest.raises(UserInputError, match=r"w boundary of shape \[4\].*received shape \[3\]"):
        load_boundaries([short], IDENTITY, code_shape=(3, 4))
