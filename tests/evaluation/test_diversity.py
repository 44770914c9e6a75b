"""Diversity and mode side-effect measurements (ganedit.evaluation.diversity)."""

import numpy as np
import pytest
import torch

from ganedit.evaluation.diversity import (
    diversity_report,
    knn_radii,
    mean_pairwise_cosine,
    mode_side_effects,
    precision_recall,
    render_labels,
    summary_line,
    world_conditional_shares,
)
from ganedit.models.sources import StyleGANSource
from ganedit.models.stylegan2 import Generator
from ganedit.world.config import BINARY_ATTRIBUTES
from ganedit.world.factors import sample_factors
from stand_in_networks import MeanReader, PixelIdentity


def test_pairwise_cosine_of_planted_sets():
    rng = np.random.default_rng(0)
    one = np.tile(rng.normal(size=(1, 8)), (20, 1))
    assert mean_pairwise_cosine(one) == pytest.approx(1.0)
    assert mean_pairwise_cosine(np.eye(6) * 3) == pytest.approx(0.0, abs=1e-12)
    # two antipodal pairs and rows of any length: pairs (+,+) 1, (+,-) -1 -> mean -1/3
    assert mean_pairwise_cosine(np.array([[2.0, 0], [1, 0], [-5, 0]])) == pytest.approx(-1 / 3)
    spread = rng.normal(size=(400, 64))
    assert abs(mean_pairwise_cosine(spread)) < 0.01
    # the shortcut equals the explicit mean over distinct pairs
    e = spread[:30] / np.linalg.norm(spread[:30], axis=1, keepdims=True)
    cos = e @ e.T
    explicit = (cos.sum() - np.trace(cos)) / (30 * 29)
    assert mean_pairwise_cosine(spread[:30]) == pytest.approx(explicit)
    with pytest.raises(ValueError, match="N >= 2"):
        mean_pairwise_cosine(one[:1])


def test_knn_radii_skip_the_point_itself():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(knn_radii(x, 1), [1, 1, 4, 16])
    np.testing.assert_allclose(knn_radii(x, 2), [9, 4, 9, 36])
    with pytest.raises(ValueError, match="k=4"):
        knn_radii(x, 4)


def test_precision_recall_of_planted_sets():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(800, 4))
    same = precision_recall(real, real.copy())
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["k"] == 3
    apart = precision_recall(real, real + 100.0)
    assert apart["precision"] == 0.0 and apart["recall"] == 0.0
    # a collapsed generator: every sample near the mode of the real set
    collapsed = precision_recall(real, rng.normal(0, 0.05, (800, 4)))
    assert collapsed["precision"] > 0.95 and collapsed["recall"] < 0.05
    # half the samples real, half far away: precision 1/2, recall still full
    half = precision_recall(real, np.concatenate([real[:400], real[400:] + 100.0]))
    assert half["precision"] == 0.5 and half["recall"] > 0.4
    # the same distribution drawn twice: both high, neither perfect
    fresh = precision_recall(real, rng.normal(size=(800, 4)))
    assert 0.8 < fresh["precision"] < 1 and 0.8 < fresh["recall"] < 1
    with pytest.raises(ValueError, match="feature sets"):
        precision_recall(real, real[:, :3])


def test_world_conditional_shares_match_sampled_labels(celeba):
    f = sample_factors(celeba, 0, 0, 40000)
    labels = {a: np.asarray(f[f"{a}_label"]) for a in BINARY_ATTRIBUTES}
    for a in ("smile", "glasses"):
        for value in (0, 1):
            exact = world_conditional_shares(celeba, a, value)
            assert set(exact) == set(BINARY_ATTRIBUTES) - {a}
            given = labels[a] == value
            for b, share in exact.items():
                se = np.sqrt(share * (1 - share) / given.sum())  # glasses are rare: wide
                assert labels[b][given].mean() == pytest.approx(share, abs=4 * se), (a, value, b)
    # the bias the measure must see: men wear glasses more than women
    assert (
        world_conditional_shares(celeba, "gender", 1)["glasses"]
        > world_conditional_shares(celeba, "gender", 0)["glasses"]
    )


@pytest.fixture(scope="module")
def sc_source():
    g = Generator(16, style_dim=16, n_mlp=2, channel_max=16, mode_attributes=["smile", "yaw"])
    g.eval().update_w_avg(n=256, generator=torch.Generator().manual_seed(0))
    return StyleGANSource(g, "tiny-sc")


def test_untrained_modes_keep_the_face_and_gaps_are_the_worlds_shares(sc_source, celeba):
    # The stand-in reads gender, glasses and age as 0.3 (share 0): each gap is the world's
    # conditional share itself; untrained mode offsets change no pixel between the ends.
    out = mode_side_effects(sc_source, celeba, MeanReader(), PixelIdentity(), 12, 0, 6)
    assert set(out) == {"smile", "yaw"}
    for a in ("smile", "yaw"):
        assert out[a]["ends_identity"]["mean"] == pytest.approx(1.0, abs=1e-5)
    for t in (0, 1):
        end = out["smile"][f"t={t}"]
        assert end["world_shares"] == world_conditional_shares(celeba, "smile", t)
        assert end["max_gap"] == pytest.approx(max(end["world_shares"].values()))
        assert end["n_identity"] == 6 and -1 <= end["identity_cosine"] <= 1
    assert set(out["yaw"]["t=0"]["world_shares"]) == set(BINARY_ATTRIBUTES)
    assert "precision_recall" not in out["smile"]["t=0"]
    # with renders: a binary mode's end against the renders of its class only
    labels = {a: np.arange(40) % 2 for a in BINARY_ATTRIBUTES}
    renders = (np.random.default_rng(0).normal(size=(40, 3)), labels)
    out = mode_side_effects(
        sc_source, celeba, MeanReader(), PixelIdentity(), 12, 0, 6, renders=renders
    )
    assert out["smile"]["t=1"]["precision_recall"]["n_real"] == 20
    assert "precision_recall" not in out["yaw"]["t=1"]


def test_render_labels_are_the_batched_renders_labels(celeba):
    whole = render_labels(celeba, 700, 1_000_003)
    parts = [sample_factors(celeba, 1_000_003, s, c) for s, c in ((0, 512), (512, 188))]
    for a in BINARY_ATTRIBUTES:
        np.testing.assert_array_equal(whole[a], np.concatenate([p[f"{a}_label"] for p in parts]))


def test_diversity_report_of_a_self_conditioned_source(sc_source, celeba):
    report = diversity_report(
        sc_source, celeba, MeanReader(), PixelIdentity(), n_identity=10, n_pr=24, n_modes=6
    )
    assert set(report["settings"]) == {"neutral mode", "modes as in training"}
    assert -1 <= report["world renders"]["identity_cosine"] <= 1
    for figures in report["settings"].values():
        pr = figures["precision_recall"]
        assert pr["n_real"] == pr["n_fake"] == 24 and 0 <= pr["precision"] <= 1
        assert "identity cosine" in summary_line("x", figures)
    assert set(report["modes"]) == {"smile", "yaw"}


class _WorldSource:
    """Latent i renders the world's sample i (seed 7), or always sample 0 when collapsed."""

    resolution = 16
    mode_attributes: list = []

    def __init__(self, world, collapsed):
        self.world, self.collapsed = world, collapsed

    def sample_z(self, n, seed, start=0):
        return torch.arange(start, start + n, dtype=torch.float64)[:, None]

    def synthesize(self, z, space="z", batch_size=256, modes=None):
        from ganedit.world.render import render

        assert modes is None
        if self.collapsed:
            return render(sample_factors(self.world, 7, 0, 1), 16).expand(len(z), -1, -1, -1)
        return render(sample_factors(self.world, 7, int(z[0, 0]), len(z)), 16)


def test_a_collapsed_generator_is_seen_and_the_world_is_not(celeba):
    reader, ident = MeanReader(), PixelIdentity()
    kw = {"n_identity": 40, "n_pr": 120}
    world = diversity_report(_WorldSource(celeba, False), celeba, reader, ident, **kw)
    one = diversity_report(_WorldSource(celeba, True), celeba, reader, ident, **kw)
    w, o = world["settings"]["default"], one["settings"]["default"]
    assert o["identity_cosine"] == pytest.approx(1.0, abs=1e-5)
    assert w["identity_cosine"] < 0.99
    # the world drawn again: as diverse as the renders, precise and recalled
    assert w["identity_cosine"] == pytest.approx(
        world["world renders"]["identity_cosine"], abs=0.05
    )
    assert w["precision_recall"]["recall"] > 0.7 and w["precision_recall"]["precision"] > 0.7
    assert o["precision_recall"]["recall"] < 0.1
    assert "modes" not in one


def test_evaluate_generator_summary_names_each_mode():
    from ganedit.cli import _diversity_lines

    end = {"identity_cosine": 0.5, "max_gap": 0.25, "precision_recall": {"recall": 0.05},
           "yaw_std": 3.25}  # fmt: skip
    d = {
        "identity_cosine": 0.667,
        "n_identity": 256,
        "renders_identity_cosine": 0.006,
        "precision_recall": {"precision": 0.9, "recall": 0.1, "k": 3},
        "precision_recall_floor": {"precision": 0.8, "recall": 0.8, "k": 3},
        "modes": {"smile": {"ends_identity": {"mean": 0.4}, "t=0": end, "t=1": end}},
    }
    first, mode = _diversity_lines(d)
    assert "identity cosine 0.667 of 256 samples (world renders 0.006)" in first
    assert "recall 0.100" in first and "k 3" in first
    assert mode.startswith("mode smile (others neutral): identity between its ends 0.400")
    assert "0.250" in mode and "yaw spread 3.2/3.2" in mode
    assert "recall at t=0/1 0.050/0.050" in mode
    assert len(_diversity_lines({**d, "precision_recall": None, "modes": {}})) == 1
    at_data = {**d, "data_modes": {"identity_cosine": 0.031, "yaw_std": 14.5},
               "modes_at_data": {"smile": {"ends_identity": {"mean": 0.9}, "t=0": end,
                                           "t=1": end}}}  # fmt: skip
    lines = _diversity_lines(at_data)
    assert lines[1] == "at the data's modes: identity cosine 0.031, yaw spread 14.5 degrees"
    assert lines[3].startswith("mode smile (others at the data's): identity between its ends 0.900")
    pr = {"precision": 0.5, "recall": 0.25, "k": 3}
    uniform = {"identity_cosine": 0.2, "yaw_std": 20.0, "frechet_distance": 80.25,
               "precision_recall": pr}  # fmt: skip
    lines = _diversity_lines({**at_data, "uniform_modes": uniform})
    assert lines[2] == (
        "at uniform modes: identity cosine 0.200, yaw spread 20.0 degrees; Frechet distance "
        "80.2, precision 0.500, recall 0.250"
    )


def test_forced_modes_with_the_others_at_given_coordinates(sc_source, celeba):
    """`others` sets every face's other attributes (say, at the data's modes): each end
    renders the face at its own row with the forced column replaced."""
    calls = []
    original = sc_source.synthesize

    def spy(latents, space, batch_size=256, modes=None):
        calls.append(modes.clone())
        return original(latents, space, batch_size=batch_size, modes=modes)

    others = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.6], [0.7, 0.5]])
    sc_source.synthesize = spy
    try:
        out = mode_side_effects(sc_source, celeba, MeanReader(), PixelIdentity(), 4, 0, 4,
                                others=others)  # fmt: skip
    finally:
        del sc_source.synthesize
    layout = sc_source.mode_layout
    assert len(calls) == 4 and all(c.shape == (4, 7) for c in calls)
    expected = others.copy()
    expected[:, 0] = 1.0  # the smile mode's t=1 end: the yaw column is each face's own
    torch.testing.assert_close(calls[1], layout.generator_vector(torch.tensor(expected).float()))
    assert out["smile"]["ends_identity"]["mean"] == pytest.approx(1.0, abs=1e-5)
    from ganedit.evaluation.diversity import read_samples

    at = others.copy()
    at[:, 1] = 1.0
    yaw = read_samples(sc_source, 4, 0, MeanReader(), None, at)["table"]["yaw"]
    end = out["yaw"]["t=1"]
    assert end["yaw_mean"] == pytest.approx(yaw.mean()) and end["yaw_std"] == pytest.approx(
        yaw.std()
    )
    with pytest.raises(ValueError, match="others of shape"):
        mode_side_effects(sc_source, celeba, MeanReader(), PixelIdentity(), 4, 0, 4,
                          others=others[:3])  # fmt: skip
    assert end["shares_at"] == "each face's own row"


def test_side_effects_are_read_at_the_data_given_the_forced_end(sc_source, celeba):
    """With side_rows, each end's shares come from faces whose other modes are the data's
    given that end (the world's conditional shares describe those people); diversity and
    the ends' identity stay on each face's own row."""
    from ganedit.evaluation.diversity import binary_shares, read_samples

    others = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.6], [0.7, 0.5]])
    asked = []

    def side_rows(j, t):
        asked.append((j, t))
        return np.full((4, 2), 0.0 if t < 0.5 else 1.0)

    out = mode_side_effects(sc_source, celeba, MeanReader(), PixelIdentity(), 4, 0, 4,
                            others=others, side_rows=side_rows)  # fmt: skip
    assert asked == [(0, 0.0), (0, 1.0), (1, 0.0), (1, 1.0)]
    end = out["smile"]["t=1"]
    assert end["shares_at"] == "rows of the data on this side"
    given = read_samples(sc_source, 4, 0, MeanReader(), None, np.ones((4, 2)))
    assert end["shares"] == binary_shares(given["table"])
    plain = mode_side_effects(sc_source, celeba, MeanReader(), PixelIdentity(), 4, 0, 4,
                              others=others)  # fmt: skip
    assert out["smile"]["ends_identity"] == plain["smile"]["ends_identity"]
    assert end["identity_cosine"] == plain["smile"]["t=1"]["identity_cosine"]


def test_diversity_probe_sees_a_collapsed_generator(monkeypatch):
    # A generator that ignores z draws one face: the probe's identity cosine is 1.
    import torch

    from ganedit.evaluation.diversity import diversity_probe
    from ganedit.models.registry import load_identity_embedder, load_predictor
    from ganedit.models.sources import load_generator

    g = load_generator("world64").generator
    probe = diversity_probe(load_predictor("evaluator"), load_identity_embedder("identity"), n=16)
    alive = probe(g)["all"]["identity_cosine"]
    monkeypatch.setattr(g.style, "forward", lambda z: torch.zeros(len(z), 128) + g.w_avg)
    dead = probe(g)["all"]["identity_cosine"]
    assert alive < 0.3 and dead > 0.99
