"""Quality of a generator of the face world, measured with the world's own networks.

- Frechet distance between generated samples and world renders in the evaluator's feature
  space, with the distance between two disjoint render sets of the same size as its floor;
- attribute marginals and pairwise label correlations of generated samples (by the labeler)
  against the world's exact values (the dependencies a generator must keep);
- the share of samples confident on every attribute at a threshold (what balanced sampling
  can use), and per attribute, which shows where a generator draws ambiguous images;
- the same label statistics of world renders by the labeler: the measurement floor of the
  gaps, since the labeler itself errs;
- the generated label statistics read a second time by the evaluator, a network trained
  apart from the labeler: renders only show the labeler is right on the world's images,
  and a gap both networks report on generated images is the generator's, not the labeler's;
- diversity (`ganedit.evaluation.diversity`): the mean pairwise identity cosine of samples
  against that of world renders, and improved precision and recall of the evaluator's
  features against world renders (two render sets give the floor); for a self-conditioned
  generator, each mode's side effects and the identity between its ends.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import torch

from ganedit.models.registry import load_predictor
from ganedit.utils.progress import progress_bar
from ganedit.world.config import BINARY_ATTRIBUTES, WorldConfig
from ganedit.world.factors import sample_factors
from ganedit.world.render import render

log = logging.getLogger(__name__)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets a [N, D] and b [M, D]."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(A B) = tr sqrt(A^1/2 B A^1/2); both symmetric, so eigen-decompositions suffice.
    vals, vecs = np.linalg.eigh(cov_a)
    root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def world_label_stats(world: WorldConfig) -> dict:
    """Exact marginals and pairwise label correlations (phi) of a world config."""
    table = world.joint_table()
    keys = np.array(list(table.keys()), dtype=np.float64)
    probs = np.array(list(table.values()))
    mean = probs @ keys
    cov = (keys - mean).T @ ((keys - mean) * probs[:, None])
    return _stats_from_moments(mean, cov)


def label_stats(labels: np.ndarray) -> dict:
    """Marginals and pairwise correlations of binary labels [N, K] (BINARY_ATTRIBUTES order)."""
    labels = np.asarray(labels, np.float64)
    mean = labels.mean(0)
    cov = np.cov(labels, rowvar=False, bias=True)
    return _stats_from_moments(mean, cov)


def _stats_from_moments(mean: np.ndarray, cov: np.ndarray) -> dict:
    std = np.sqrt(np.diag(cov))
    out = {
        "marginals": dict(zip(BINARY_ATTRIBUTES, mean.tolist(), strict=True)),
        "correlations": {},
    }
    for i, j in itertools.combinations(range(len(BINARY_ATTRIBUTES)), 2):
        r = cov[i, j] / (std[i] * std[j]) if std[i] > 0 and std[j] > 0 else 0.0
        out["correlations"][f"{BINARY_ATTRIBUTES[i]}-{BINARY_ATTRIBUTES[j]}"] = float(r)
    return out


def generated_scores(
    source, n: int, seed: int, labeler, evaluator, batch_size: int = 256, progress: bool = True
):
    """Labeler probabilities [N, K], evaluator features and evaluator probabilities [N, K]."""
    probs, feats, second = [], [], []
    with progress_bar(n, "generate + score", progress) as bar:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            images = source.synthesize(
                source.sample_z(count, seed, start), "z", batch_size=batch_size
            )
            probs.append(_probabilities(labeler.predict(images)))
            features, pred = evaluator.embed_and_predict(images)
            feats.append(features)
            second.append(_probabilities(pred))
            bar.advance(count)
    return np.concatenate(probs), np.concatenate(feats), np.concatenate(second)


def _probabilities(pred: dict[str, np.ndarray]) -> np.ndarray:  # [N, K]
    return np.stack([pred[a] for a in BINARY_ATTRIBUTES], 1)


def render_scores(
    world: WorldConfig, n: int, seed: int, size: int, evaluator, labeler=None, batch_size: int = 512
):
    """Evaluator features and (with a labeler) label probabilities [N, K] of n world renders."""
    feats, probs = [], []
    for start in range(0, n, batch_size):
        images = render(sample_factors(world, seed, start, min(batch_size, n - start)), size)
        feats.append(evaluator.embed(images))
        if labeler is not None:
            probs.append(_probabilities(labeler.predict(images)))
    return np.concatenate(feats), (np.concatenate(probs) if probs else None)


def confident_shares(probs: np.ndarray, threshold: float) -> dict:
    """Share of samples confident on every attribute, and on each one, at a threshold."""
    confident = (probs > threshold) | (probs < 1 - threshold)  # [N, K]
    return {
        "all": float(confident.all(1).mean()),
        **dict(zip(BINARY_ATTRIBUTES, confident.mean(0).tolist(), strict=True)),
    }


def stat_gaps(stats: dict, target: dict) -> tuple[float, float]:
    """Largest absolute marginal and correlation gaps between two label_stats results."""
    return (
        max(abs(stats["marginals"][k] - target["marginals"][k]) for k in target["marginals"]),
        max(
            abs(stats["correlations"][k] - target["correlations"][k])
            for k in target["correlations"]
        ),
    )


def evaluate_generator(
    source,
    world: WorldConfig,
    n: int = 20_000,
    n_fd: int = 10_000,
    seed: int = 0,
    threshold: float = 0.9,
    progress: bool = True,
    n_identity: int = 256,
    n_modes: int = 1024,
    k: int = 3,
    mode_prior: np.ndarray | None = None,
) -> dict:
    """All generator figures of the model card; sample counts and seeds are in the result.
    `n_identity` (at most n) faces for identity diversity, `n_modes` faces per end of each
    mode of a self-conditioned generator (0: none), `k` neighbours for precision/recall
    (the edit-identity probe is `ganedit.evaluation.edit_probe`, run beside this). With the
    data's modes of a self-conditioned generator (`mode_prior` [P, k], its mode-prior.json),
    also the diversity there and each mode's ends with the other attributes at those modes."""
    labeler, evaluator = load_predictor("labeler"), load_predictor("evaluator")
    probs, feats, second = generated_scores(source, n, seed, labeler, evaluator, progress=progress)
    size = source.resolution
    with torch.no_grad():
        real_a, real_probs = render_scores(world, n_fd, 1_000_003, size, evaluator, labeler)
        real_b, _ = render_scores(world, n_fd, 1_000_033, size, evaluator)
    generated, target = label_stats(probs > 0.5), world_label_stats(world)
    renders = label_stats(real_probs > 0.5)
    max_marginal_gap, max_correlation_gap = stat_gaps(generated, target)
    floor_marginal_gap, floor_correlation_gap = stat_gaps(renders, target)
    by_evaluator = label_stats(second > 0.5)
    evaluator_marginal_gap, evaluator_correlation_gap = stat_gaps(by_evaluator, target)
    shares = confident_shares(probs, threshold)
    diversity = diversity_figures(
        source, world, evaluator, (feats[:n_fd], real_a, real_b), min(n_identity, n), n_modes,
        seed, k, mode_prior,
    )  # fmt: skip
    return {
        "n": n,
        "n_fd": n_fd,
        "seed": seed,
        "world": world.name,
        "frechet_distance": frechet_distance(feats[:n_fd], real_a),
        "frechet_distance_floor": frechet_distance(real_b, real_a),
        "generated": generated,
        "world_exact": target,
        "max_marginal_gap": max_marginal_gap,
        "max_correlation_gap": max_correlation_gap,
        # The same statistics of n_fd world renders by the labeler: its own error.
        "renders_by_labeler": renders,
        "labeler_floor_marginal_gap": floor_marginal_gap,
        "labeler_floor_correlation_gap": floor_correlation_gap,
        # The generated samples read by the evaluator: the gaps measured a second way.
        "generated_by_evaluator": by_evaluator,
        "evaluator_max_marginal_gap": evaluator_marginal_gap,
        "evaluator_max_correlation_gap": evaluator_correlation_gap,
        "labeler_evaluator_agreement": dict(
            zip(BINARY_ATTRIBUTES, ((probs > 0.5) == (second > 0.5)).mean(0).tolist(), strict=True)
        ),
        "confidence_threshold": threshold,
        "share_confident_all": shares["all"],
        "share_confident": shares,
        "renders_share_confident": confident_shares(real_probs, threshold),
        "diversity": diversity,
    }


def diversity_figures(
    source, world: WorldConfig, evaluator, features, n_identity: int, n_modes: int, seed: int,
    k: int, mode_prior: np.ndarray | None = None,
) -> dict:  # fmt: skip
    """Identity diversity of the first n_identity samples and of as many world renders;
    precision/recall of generated features against renders and of renders against renders
    (the floor), given features = (generated, renders, other renders); None where a set has
    no more than k rows. Mode side effects of a self-conditioned source."""
    from ganedit.evaluation import diversity as div
    from ganedit.models.registry import load_identity_embedder

    identity = load_identity_embedder("identity")
    generated, real_a, real_b = features
    with torch.no_grad():
        reading = div.read_samples(source, n_identity, seed, evaluator, identity)
        _, render_ids = div.render_features(
            world, n_identity, 1_000_003, source.resolution, evaluator, identity
        )
    enough = min(len(generated), len(real_a)) > k
    out = {
        "n_identity": n_identity,
        "identity_cosine": div.mean_pairwise_cosine(reading["identity"]),
        "renders_identity_cosine": div.mean_pairwise_cosine(render_ids),
        "yaw_std": float(np.std(reading["table"]["yaw"])),
        "features": "evaluator penultimate features",
        "precision_recall": div.precision_recall(real_a, generated, k) if enough else None,
        "precision_recall_floor": div.precision_recall(real_a, real_b, k) if enough else None,
    }
    if getattr(source, "mode_attributes", None) and n_modes > 0:
        out["n_modes"] = n_modes
        renders = (real_a, div.render_labels(world, len(real_a), 1_000_003))
        with torch.no_grad():
            out["modes"] = div.mode_side_effects(
                source, world, evaluator, identity, n_modes, seed, min(n_identity, n_modes),
                renders=renders, k=k,
            )  # fmt: skip
            if mode_prior is not None:
                out.update(at_data_modes(source, world, evaluator, identity, mode_prior,
                                         n_identity, n_modes, seed, renders, k))  # fmt: skip
    return out


def at_data_modes(source, world, evaluator, identity, prior, n_identity, n_modes, seed,
                  renders=None, k: int = 3) -> dict:  # fmt: skip
    """Faces at the data's modes (rows of `prior` [P, k], as `sample` draws by default) and
    at uniform modes (as SC-GAN's fine-tune draws its fakes): identity diversity of
    n_identity, and with renders the Frechet distance and precision/recall of
    max(n_identity, n_modes); and each mode's ends for n_modes faces with the other
    attributes at their rows, where a forced mode's yaw spread means what it says (at the
    neutral mode yaw is held frontal by its own mode), its side effects read at the data's
    rows on that end's side (`diversity.mode_side_effects`)."""
    from ganedit.evaluation import diversity as div
    from ganedit.models.modes import draw_coordinates

    layout = source.mode_layout
    n = max(n_identity, n_modes)
    t = draw_coordinates("data", n, seed + 1, layout, prior).numpy()
    settings = {
        "data_modes": t,
        "uniform_modes": draw_coordinates("uniform", n, seed + 1, layout).numpy(),
    }

    out = {
        key: _setting(source, evaluator, identity, coords, n_identity, seed, renders, k)
        for key, coords in settings.items()
    }
    out["modes_at_data"] = div.mode_side_effects(
        source,
        world,
        evaluator,
        identity,
        n_modes,
        seed,
        min(n_identity, n_modes),
        renders=renders,
        k=k,
        others=t[:n_modes],
        side_rows=div.data_side_rows(prior, layout, n_modes, seed + 2),
    )
    return out


def _setting(source, evaluator, identity, t, n_identity, seed, renders=None, k=3) -> dict:
    """Faces at anchor coordinates t [n, k]: identity diversity and yaw spread of the first
    n_identity; with renders (features [N, F], labels), the Frechet distance and precision/
    recall of all n against the renders' evaluator features."""
    from ganedit.evaluation import diversity as div

    reading = div.read_samples(source, len(t), seed, evaluator, identity, t)
    out = {
        "identity_cosine": div.mean_pairwise_cosine(reading["identity"][:n_identity]),
        "yaw_std": float(np.std(reading["table"]["yaw"][:n_identity])),
        "n": len(t),
    }
    if renders is not None and min(len(t), len(renders[0])) > k:
        out["frechet_distance"] = frechet_distance(reading["features"], renders[0])
        out["precision_recall"] = div.precision_recall(renders[0], reading["features"], k)
    return out
