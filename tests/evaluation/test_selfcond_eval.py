"""Tails and edit measurements of self-conditioned generators (ganedit.evaluation.selfcond)."""

import numpy as np
import pytest
import torch

from ganedit.evaluation.selfcond import (
    EditRecord,
    binned,
    cell_masks,
    mode_edits,
    reach,
    tail_figures,
    traversal_edits,
)
from ganedit.models.modes import sampled_modes
from ganedit.models.sources import StyleGANSource
from ganedit.models.stylegan2 import Generator
from ganedit.world.config import BINARY_ATTRIBUTES
from stand_in_networks import MeanReader, PixelIdentity


def test_cells_at_worked_values():
    table = {
        "smile": np.array([0.9, 0.9, 0.1, 0.1]),
        "gender": np.array([0.8, 0.2, 0.8, 0.2]),
        "glasses": np.array([0.6, 0.1, 0.7, 0.4]),
        "age": np.array([0.9, 0.9, 0.1, 0.2]),
        "yaw": np.array([-50.0, 31.0, 10.0, -29.0]),
    }
    cells = cell_masks(table)
    assert cells["glasses"].tolist() == [True, False, True, False]
    assert cells["smiling men"].tolist() == [True, False, False, False]
    assert cells["old with glasses"].tolist() == [True, False, False, False]
    assert cells["|yaw| > 30"].tolist() == [True, True, False, False]
    assert cells["|yaw| > 45"].tolist() == [True, False, False, False]


def _table(n, glasses_share, rng):
    t = {a: rng.uniform(0, 0.4, n) for a in BINARY_ATTRIBUTES}
    t["glasses"][: int(n * glasses_share)] = 0.9
    t["yaw"] = rng.normal(0, 10, n)
    return t


def test_tail_shares_and_frechet_distance_of_a_planted_shift():
    rng = np.random.default_rng(0)
    truth, gen = _table(4000, 0.10, rng), _table(2000, 0.05, rng)
    real_feats = rng.normal(0, 1, (4000, 4))
    same = rng.normal(0, 1, (2000, 4))
    shifted = same + np.array([3.0, 0, 0, 0])
    near = tail_figures(gen, same, truth, real_feats)
    far = tail_figures(gen, shifted, truth, real_feats)
    g = near["glasses"]
    assert g["share"] == pytest.approx(0.05) and g["world_share"] == pytest.approx(0.10)
    assert g["share_over_world"] == pytest.approx(0.5)
    assert g["count"] == 100 and g["render_count"] == 400
    assert g["frechet_distance"] < 0.5  # same distribution: near zero
    assert far["glasses"]["frechet_distance"] == pytest.approx(9.0, abs=2.0)  # |shift|^2
    assert near["|yaw| > 45"]["frechet_distance"] is None  # too few faces in the cell


def test_bins_pool_edits_and_bootstrap_over_faces():
    # face f's edits: achieved 0.1 (identity 0.9) and 0.5 (identity 0.5 + 0.01 f)
    faces = np.repeat(np.arange(10), 2)
    achieved = np.tile([0.1, -0.5], 10)
    ident = np.where(achieved > 0, 0.9, 0.5 + 0.01 * faces)
    zeros = np.zeros(20)
    record = EditRecord(faces, zeros, achieved, ident, zeros + 0.2, zeros)
    bins = binned(record, (0.0, 0.2, 0.4, 0.6, np.inf))
    assert [b["count"] for b in bins] == [10, 0, 10, 0]
    assert bins[0]["identity"]["mean"] == pytest.approx(0.9)
    assert bins[2]["identity"]["mean"] == pytest.approx(0.545)
    lo, hi = bins[2]["identity"]["ci"]
    assert 0.5 <= lo < 0.545 < hi <= 0.59
    assert bins[1]["identity"]["mean"] is None and bins[2]["faces"] == 10
    assert reach(record, (0.0, 0.2, 0.4, 0.6, np.inf), 0.8) == 0.2
    assert reach(record, (0.0, 0.2, 0.6, np.inf), 0.5) == 0.6


def test_modes_are_drawn_per_row():
    t = sampled_modes(100, 3, seed=4)
    assert t.shape == (100, 3) and t.min() >= 0 and t.max() <= 1
    np.testing.assert_array_equal(sampled_modes(10, 3, seed=4), t[:10])


@pytest.fixture(scope="module")
def sc_source():
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16, mode_attributes=["smile", "yaw"])
    g.eval().update_w_avg(n=256, generator=torch.Generator().manual_seed(0))
    return StyleGANSource(g, "tiny-sc")


def test_untrained_offsets_make_mode_edits_change_nothing(sc_source):
    w = sc_source.to_w(sc_source.sample_z(6, 0))
    record = mode_edits(sc_source, w, "yaw", (0.0, 0.25, 1.0), MeanReader(), PixelIdentity())
    assert len(record.face) == 18  # yaw keeps both sides
    np.testing.assert_allclose(record.achieved, 0, atol=1e-4)
    np.testing.assert_allclose(record.identity, 1, atol=1e-5)


def test_binary_edits_go_toward_the_opposite_class(sc_source):
    with torch.no_grad():
        offsets = sc_source.generator.input.mode_offsets
        saved = offsets.clone()
        offsets.normal_(generator=torch.Generator().manual_seed(1))
    try:
        w = sc_source.to_w(sc_source.sample_z(8, 0))
        reader, ident = MeanReader(), PixelIdentity()
        record = mode_edits(sc_source, w, "smile", (0.0, 0.25, 0.75, 1.0), reader, ident)
        base = reader.predict(sc_source.synthesize(w, "w", modes=_neutral(2)))["smile"]
        toward = np.where(base >= 0.5, -1, 1)
        assert len(record.face) == 16  # two of the four coordinates per face
        assert np.all((record.setting - 0.5) * toward[record.face] > 0)
        # from the faces' own coordinates: moving yaw to where it already is changes nothing
        start = torch.tensor([[0.3, 0.8]]).expand(8, -1)
        ws = sc_source.to_ws(w, "w")
        same = mode_edits(sc_source, ws, "yaw", (0.8,), reader, ident, space="ws", start=start)
        np.testing.assert_allclose(same.achieved, 0, atol=1e-4)
        moved = mode_edits(sc_source, ws, "yaw", (0.0,), reader, ident, space="ws", start=start)
        assert np.abs(moved.achieved).max() > 1e-3
    finally:
        with torch.no_grad():
            offsets.copy_(saved)
    direction = np.eye(16, dtype=np.float32)[0]
    record = traversal_edits(sc_source, w, "smile", direction, (1.0, 2.0), reader, ident)
    assert len(record.face) == 16 and record.identity.max() <= 1 + 1e-5
    both = traversal_edits(sc_source, w, "yaw", direction, (-1.0, 1.0), reader, ident)
    assert set(both.setting.tolist()) == {-1.0, 1.0}


def _neutral(k):
    from ganedit.models.modes import mode_vector

    return mode_vector(torch.full((1, k), 0.5), for_generator=True)
