"""Diversity at fixed conditions, and what a self-conditioned generator's modes drag along.

A generator can match the world's label statistics and still draw one face per condition
(world64-sc did). These figures make such a collapse visible:
- **identity diversity**: the mean pairwise cosine of the identity embeddings of N samples
  (0 for unrelated faces, 1 for one face drawn N times); world renders are its floor;
- **improved precision and recall** (Kynkaanniemi et al. 2019) of the evaluator's
  penultimate features against world renders: a sample is precise when it falls inside the
  k-NN ball of some real feature, a real feature is recalled when it falls inside the k-NN
  ball of some sample; a collapsed generator keeps precision and loses recall;
- per mode of a self-conditioned generator forced to t in {0, 1}: the evaluator's share of
  each other binary attribute against the world's share conditional on that attribute (yaw
  is independent of the labels in the face world, so for the yaw mode the world's share is
  the marginal), and the identity cosine between the mode's ends for the same z.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ganedit.world.config import BINARY_ATTRIBUTES, WorldConfig

log = logging.getLogger(__name__)

MODE_ENDS = (0.0, 1.0)


def mean_pairwise_cosine(embeddings: np.ndarray) -> float:
    """Mean cosine over the N (N - 1) ordered pairs of distinct rows of embeddings [N, E]."""
    e = np.asarray(embeddings, np.float64)
    if e.ndim != 2 or len(e) < 2:
        raise ValueError(f"expected embeddings [N >= 2, E], received shape {e.shape}")
    e = e / np.linalg.norm(e, axis=1, keepdims=True).clip(1e-12)
    total = e.sum(0)
    n = len(e)
    # sum over all pairs of e_i . e_j = |sum e|^2; the diagonal contributes n.
    return float((total @ total - n) / (n * (n - 1)))


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # [N, M]
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0)


def knn_radii(features: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Squared distance of each row of features [N, D] to its k-th nearest other row [N]."""
    f = np.asarray(features, np.float64)
    if not 1 <= k < len(f):
        raise ValueError(f"expected 1 <= k < {len(f)} (the set's size), received k={k}")
    out = []
    for start in range(0, len(f), chunk):
        d = _squared_distances(f[start : start + chunk], f)
        # Column k of the sorted row: column 0 is the row itself (distance 0).
        out.append(np.partition(d, k, axis=1)[:, k])
    return np.concatenate(out)


def _inside_some_ball(points, centres, radii, chunk: int = 1024) -> np.ndarray:  # [N] bool
    out = []
    for start in range(0, len(points), chunk):
        d = _squared_distances(points[start : start + chunk], centres)
        out.append((d <= radii[None, :]).any(1))
    return np.concatenate(out)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict:
    """Improved precision and recall of fake features [M, D] against real features [N, D]:
    precision is the share of fake rows inside the k-NN ball of some real row, recall the
    share of real rows inside the k-NN ball of some fake row (balls include their border)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"expected two [N, D] feature sets, received {real.shape}, {fake.shape}")
    precision = _inside_some_ball(fake, real, knn_radii(real, k)).mean()
    recall = _inside_some_ball(real, fake, knn_radii(fake, k)).mean()
    return {
        "precision": float(precision),
        "recall": float(recall),
        "k": k,
        "n_real": len(real),
        "n_fake": len(fake),
    }


def world_conditional_shares(world: WorldConfig, attribute: str, value: int) -> dict:
    """The world's exact P(b = 1 | attribute = value) for every other binary attribute b."""
    table = world.joint_table()
    keys = np.array(list(table), dtype=np.float64)  # [2^K, K]
    probs = np.array(list(table.values()))
    given = keys[:, BINARY_ATTRIBUTES.index(attribute)] == value
    p = probs * given
    return {
        b: float(p @ keys[:, j] / p.sum())
        for j, b in enumerate(BINARY_ATTRIBUTES)
        if b != attribute
    }


def world_marginals(world: WorldConfig) -> dict:
    table = world.joint_table()
    keys = np.array(list(table), dtype=np.float64)
    mean = np.array(list(table.values())) @ keys
    return dict(zip(BINARY_ATTRIBUTES, mean.tolist(), strict=True))


def read_samples(
    source, n: int, seed: int, evaluator, identity=None, t: np.ndarray | None = None,
    batch_size: int = 256,
) -> dict:  # fmt: skip
    """n faces from z (seed), for a self-conditioned source at anchor coordinates t [1 or n,
    k] (None: the source's default modes): the evaluator's probabilities {attribute: [n]}
    with yaw in degrees, its penultimate features [n, F] and (with `identity`) unit identity
    embeddings [n, E]."""
    from ganedit.models.modes import mode_vector

    tables, feats, embeds = [], [], []
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        modes = None
        if t is not None:
            rows = t if len(t) == 1 else t[start : start + count]
            modes = mode_vector(torch.as_tensor(rows, dtype=torch.float32), for_generator=True)
        images = source.synthesize(
            source.sample_z(count, seed, start), "z", batch_size=batch_size, modes=modes
        )
        features, pred = evaluator.embed_and_predict(images, batch_size=batch_size)
        tables.append({a: np.asarray(v, np.float64) for a, v in pred.items()})
        feats.append(features)
        if identity is not None:
            embeds.append(identity.embed(images, batch_size=batch_size))
    out = {
        "table": {a: np.concatenate([t[a] for t in tables]) for a in tables[0]},
        "features": np.concatenate(feats),
    }
    if identity is not None:
        out["identity"] = np.concatenate(embeds)
    return out


def setting_figures(reading: dict, n_identity: int, real_features=None, k: int = 3) -> dict:
    """Identity diversity (first n_identity faces), yaw spread, binary shares, and with
    real features, precision and recall of the reading's features."""
    table = reading["table"]
    out = {
        "identity_cosine": mean_pairwise_cosine(reading["identity"][:n_identity]),
        "n_identity": min(n_identity, len(reading["identity"])),
        "yaw_std": float(np.std(table["yaw"])) if "yaw" in table else None,
        "yaw_mean": float(np.mean(table["yaw"])) if "yaw" in table else None,
        "shares": binary_shares(table),
    }
    if real_features is not None:
        out["precision_recall"] = precision_recall(real_features, reading["features"], k)
    return out


def binary_shares(table: dict) -> dict[str, float]:
    """The share of faces the evaluator reads as positive, per binary attribute."""
    return {a: float((table[a] > 0.5).mean()) for a in BINARY_ATTRIBUTES}


def render_labels(world: WorldConfig, n: int, seed: int) -> dict[str, np.ndarray]:
    """Ground-truth binary labels {attribute: [n] 0/1} of the n world renders of `seed`."""
    from ganedit.world.factors import sample_factors

    factors = sample_factors(world, seed, 0, n)
    return {a: np.asarray(factors[f"{a}_label"]) for a in BINARY_ATTRIBUTES}


def mode_side_effects(
    source, world: WorldConfig, evaluator, identity, n: int, seed: int,
    n_identity: int = 256, batch_size: int = 256, renders=None, k: int = 3,
    others: np.ndarray | None = None, side_rows=None,
) -> dict:  # fmt: skip
    """Per mode attribute of a self-conditioned source, the other modes neutral (or, with
    `others` [n, k], each face's own coordinates there, e.g. rows of the data's modes): at
    each end t in {0, 1}, the evaluator's shares of the other binary attributes against the
    world's conditional shares (and the largest gap), identity diversity and yaw spread; and
    the identity cosine between the ends for the same z (mean and median over n faces).
    With renders = (features [N, F], truth labels {attribute: [N]}), a binary mode's end
    also gets precision/recall against the renders whose attribute = t (a forced attribute
    draws half the world at most; yaw ends get none: no render set matches an extreme).

    `side_rows(j, t) -> [n, k]` (with `others`): coordinates whose other attributes follow
    the data given attribute j on t's side (rows of the data's modes with that attribute).
    The shares compared with the world's conditional shares are then read there, since the
    world's shares given glasses hold for faces whose other modes are those of people with
    glasses, not of everyone (`shares_at` says which); diversity, yaw and the ends' identity
    stay on `others`, where only attribute j differs between a face's two ends."""
    from ganedit.models.modes import NEUTRAL

    attributes = source.mode_attributes
    marginals = world_marginals(world)
    shares_at = "neutral" if others is None else "each face's own row"
    if others is None:
        others = np.full((1, len(attributes)), NEUTRAL)
    elif others.shape != (n, len(attributes)):
        raise ValueError(f"expected others of shape {(n, len(attributes))}, got {others.shape}")
    out = {}
    for j, a in enumerate(attributes):
        ends, embeds = {}, []
        for t in MODE_ENDS:
            coords = np.array(others, dtype=np.float64)
            coords[:, j] = t
            reading = read_samples(source, n, seed, evaluator, identity, coords, batch_size)
            real = None
            if renders is not None and a in BINARY_ATTRIBUTES:
                real = renders[0][renders[1][a] == t]
                real = real if len(real) > k else None
            figures = setting_figures(reading, n_identity, real, k)
            figures["shares_at"] = shares_at
            if side_rows is not None:
                coords = np.array(side_rows(j, t), dtype=np.float64)
                coords[:, j] = t
                given = read_samples(source, n, seed, evaluator, None, coords, batch_size)
                figures["shares"] = binary_shares(given["table"])
                figures["shares_at"] = "rows of the data on this side"
            if a in BINARY_ATTRIBUTES:
                world_shares = world_conditional_shares(world, a, int(t))
            else:  # yaw: independent of the labels in the face world
                world_shares = dict(marginals)
            shares = {b: figures["shares"][b] for b in world_shares}
            figures["world_shares"] = world_shares
            figures["max_gap"] = max(abs(shares[b] - world_shares[b]) for b in shares)
            ends[f"t={t:g}"] = figures
            embeds.append(reading["identity"])
        cos = (embeds[0] * embeds[1]).sum(1)
        ends["ends_identity"] = {"mean": float(cos.mean()), "median": float(np.median(cos))}
        out[a] = ends
        log.info("mode %s: ends identity %.3f", a, cos.mean())
    return out


def render_features(world: WorldConfig, n: int, seed: int, size: int, evaluator, identity=None):
    """Evaluator features [n, F] and (with `identity`) identity embeddings [n, E] of n world
    renders."""
    from ganedit.world.factors import sample_factors
    from ganedit.world.render import render

    feats, embeds = [], []
    for start in range(0, n, 512):
        images = render(sample_factors(world, seed, start, min(512, n - start)), size)
        feats.append(evaluator.embed(images))
        if identity is not None:
            embeds.append(identity.embed(images))
    return np.concatenate(feats), (np.concatenate(embeds) if embeds else None)


def summary_line(name: str, figures: dict) -> str:
    """One human line: identity cosine and precision/recall of one setting."""
    pr = figures.get("precision_recall")
    text = f"{name}: identity cosine {figures['identity_cosine']:.3f} (n {figures['n_identity']})"
    if pr is not None:
        text += f", precision {pr['precision']:.3f}, recall {pr['recall']:.3f} (k {pr['k']})"
    return text


def data_side_rows(prior: np.ndarray, layout, n: int, seed: int):
    """`side_rows(j, t)` for `mode_side_effects`: n rows of the data's modes `prior` [P, k]
    whose attribute j is on t's side of 0.5 (all rows where none is), row i by (seed, i)."""
    from ganedit.models.modes import draw_coordinates

    def side_rows(j: int, t: float) -> np.ndarray:
        side = prior[:, j] >= 0.5 if t >= 0.5 else prior[:, j] < 0.5
        rows = prior[side] if side.any() else prior
        return draw_coordinates("data", n, seed, layout, rows).numpy()

    return side_rows


def diversity_report(
    source, world: WorldConfig, evaluator, identity, n_identity: int = 256, n_pr: int = 1024,
    n_modes: int = 1024, seed: int = 0, k: int = 3, render_seed: int = 1_000_003,
    mode_prior: np.ndarray | None = None,
) -> dict:  # fmt: skip
    """Every diversity figure of one generator: world renders (the floor), the whole model
    (a self-conditioned one at its neutral mode, with modes drawn as in training,
    t ~ U(0, 1), and at the data's modes when `mode_prior` [P, k] is given), and for a
    self-conditioned one each mode's ends (`mode_side_effects`: the others neutral, and with
    the prior, the others at each face's row of it as `modes_at_data`)."""
    from ganedit.models.modes import NEUTRAL, draw_coordinates, sampled_modes

    real, real_ids = render_features(world, n_pr, render_seed, source.resolution, evaluator,
                                     identity)  # fmt: skip
    labels = render_labels(world, n_pr, render_seed)
    out = {
        "n_identity": n_identity,
        "n_pr": n_pr,
        "k": k,
        "seed": seed,
        "render_seed": render_seed,
        "features": "evaluator penultimate features",
        "world renders": {"identity_cosine": mean_pairwise_cosine(real_ids[:n_identity])},
        "settings": {},
    }
    attributes = source.mode_attributes
    settings = {"default": None}
    if attributes:
        settings = {
            "neutral mode": np.full((1, len(attributes)), NEUTRAL),
            "modes as in training": sampled_modes(n_pr, len(attributes), seed + 1),
        }
        if mode_prior is not None:
            layout = source.mode_layout
            t_data = draw_coordinates("data", max(n_pr, n_modes), seed + 1, layout, mode_prior)
            settings["the data's modes"] = t_data.numpy()[:n_pr]
    for name, t in settings.items():
        reading = read_samples(source, n_pr, seed, evaluator, identity, t)
        out["settings"][name] = setting_figures(reading, n_identity, real, k)
        log.info(summary_line(name, out["settings"][name]))
    if attributes:
        out["n_modes"] = n_modes
        out["modes"] = mode_side_effects(
            source, world, evaluator, identity, n_modes, seed, n_identity,
            renders=(real, labels), k=k,
        )  # fmt: skip
        if mode_prior is not None:
            out["modes_at_data"] = mode_side_effects(
                source, world, evaluator, identity, n_modes, seed, n_identity,
                renders=(real, labels), k=k, others=t_data.numpy()[:n_modes],
                side_rows=data_side_rows(mode_prior, source.mode_layout, n_modes, seed + 2),
            )  # fmt: skip
    return out


def diversity_probe(evaluator, identity, n: int = 128, seed: int = 535353):
    """`probe(generator) -> figures` for a training run (RunSpec.probe): the mean pairwise
    identity cosine and the evaluator's yaw spread of n faces, for a self-conditioned
    generator at the neutral mode and at modes drawn uniformly as in training. A collapse
    (one face for every z) shows as a cosine near 1 long before any other figure moves."""
    from ganedit.models.modes import draw_coordinates
    from ganedit.models.sources import StyleGANSource

    def figures(source, t) -> dict:
        reading = read_samples(source, n, seed, evaluator, identity, t=t)
        return {"identity_cosine": mean_pairwise_cosine(reading["identity"]),
                "yaw_std": float(np.std(reading["table"]["yaw"]))}  # fmt: skip

    def probe(generator) -> dict:
        source = StyleGANSource(generator, "training")
        layout = source.mode_layout
        if layout is None:
            return {"all": figures(source, None)}
        neutral = layout.neutral(1).numpy()
        uniform = draw_coordinates("uniform", n, seed, layout).numpy()
        return {"neutral": figures(source, neutral), "uniform": figures(source, uniform)}

    return probe
