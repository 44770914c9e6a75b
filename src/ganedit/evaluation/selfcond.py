"""Does self-conditioning fix the tails, and do mode edits keep identity better?

Measured with the world's own networks (the evaluator reads attributes and yaw, the
identity embedder compares faces), never with the labeler that may have labelled the data:
- **tails**: the share of generated faces in each rare cell of the world, against the
  world's exact share, and the Frechet distance (evaluator features) between the generated
  faces of a cell and world renders of the same cell (cells of renders are defined by their
  ground truth); a self-conditioned generator is measured with modes drawn as in training
  (t ~ U(0, 1) per attribute) and at the neutral mode;
- **the paper's protocol**: faces edited by one attribute at a time, either by moving that
  attribute's mode coordinate t away from the neutral 0.5 (the others kept) or by walking a
  latent direction in `w`; every edit's achieved change (degrees of yaw, or the change of
  the attribute's probability), the identity cosine to the unedited face and the drift of
  the other attributes, pooled in bins of achieved change so that methods are compared at
  matched change.
Faces are resampled (bootstrap over faces, fixed seed) for the confidence intervals.
Diversity at fixed modes and each mode's side effects are `ganedit.evaluation.diversity`'s
(bench_selfcond.py's Diversity section).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ganedit.models.modes import sampled_modes
from ganedit.utils.progress import progress_bar
from ganedit.world.config import BINARY_ATTRIBUTES

log = logging.getLogger(__name__)

# Rare cells of the face world. Each is a rule over a table of attribute probabilities (or
# 0/1 truth labels) and yaw in degrees.
CELLS: dict[str, Callable[[dict], np.ndarray]] = {
    "glasses": lambda t: t["glasses"] > 0.5,
    "smiling men": lambda t: (t["smile"] > 0.5) & (t["gender"] > 0.5),
    "old with glasses": lambda t: (t["age"] > 0.5) & (t["glasses"] > 0.5),
    "|yaw| > 30": lambda t: np.abs(t["yaw"]) > 30,
    "|yaw| > 45": lambda t: np.abs(t["yaw"]) > 45,
}

YAW_BINS = (0.0, 10.0, 20.0, 30.0, 45.0, np.inf)  # |achieved yaw change|, degrees
PROBABILITY_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, np.inf)  # |achieved probability change|


def cell_masks(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Boolean [N] per rare cell of a table (attribute -> [N]; yaw in degrees)."""
    return {name: np.asarray(rule(table), bool) for name, rule in CELLS.items()}


def evaluator_table(evaluator, images, batch_size: int = 256) -> tuple[dict, np.ndarray]:
    """The evaluator's reading of images: {attribute: probability [N], yaw: degrees [N]} and
    its features [N, F]."""
    features, pred = evaluator.embed_and_predict(images, batch_size=batch_size)
    return {k: np.asarray(v, np.float64) for k, v in pred.items()}, features


def truth_table(factors) -> dict[str, np.ndarray]:
    """World renders' ground truth in the evaluator's vocabulary (0/1 labels, yaw)."""
    table = {a: np.asarray(factors[f"{a}_label"], np.float64) for a in BINARY_ATTRIBUTES}
    table["yaw"] = np.asarray(factors["yaw"], np.float64)
    return table


def generated_readings(
    source, n: int, seed: int, evaluator, t: np.ndarray | None = None, batch_size: int = 256,
    progress: bool = False,
) -> tuple[dict, np.ndarray]:  # fmt: skip
    """The evaluator's table and features of n faces drawn from z (seed); for a
    self-conditioned source, at anchor coordinates t [n, k] (None: the source's default)."""
    tables, feats = [], []
    with progress_bar(n, "generate + read", progress) as bar:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            z = source.sample_z(count, seed, start)
            modes = None
            if t is not None:
                chunk = torch.as_tensor(t[start : start + count], dtype=torch.float32)
                modes = source.require_modes().generator_vector(chunk)
            images = source.synthesize(z, "z", batch_size=batch_size, modes=modes)
            table, features = evaluator_table(evaluator, images, batch_size)
            tables.append(table)
            feats.append(features)
            bar.advance(count)
    return _concat(tables), np.concatenate(feats)


def render_readings(world, n: int, seed: int, size: int, evaluator, batch_size: int = 512):
    """Ground truth table and evaluator features [n, F] of n world renders."""
    from ganedit.world.factors import sample_factors
    from ganedit.world.render import render

    tables, feats = [], []
    for start in range(0, n, batch_size):
        factors = sample_factors(world, seed, start, min(batch_size, n - start))
        feats.append(evaluator.embed(render(factors, size), batch_size=batch_size))
        tables.append(truth_table(factors))
    return _concat(tables), np.concatenate(feats)


def _concat(tables: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}


def tail_figures(
    table: dict, features: np.ndarray, truth: dict, truth_features: np.ndarray, min_count: int = 50
) -> dict:
    """Per rare cell: the generated share (by the evaluator), the world's share (by ground
    truth, on the renders), their ratio, and the Frechet distance between the cell's
    generated faces and the cell's renders (None below `min_count` faces on either side:
    a covariance of fewer faces says nothing). Frechet distances are biased upward at
    small counts, so the counts stand beside them."""
    from ganedit.evaluation.generator import frechet_distance

    gen, real = cell_masks(table), cell_masks(truth)
    out = {}
    for name in CELLS:
        g, r = gen[name], real[name]
        share, world_share = float(g.mean()), float(r.mean())
        fd = None
        if g.sum() >= min_count and r.sum() >= min_count:
            fd = frechet_distance(features[g], truth_features[r])
        out[name] = {
            "share": share,
            "world_share": world_share,
            "share_over_world": share / world_share if world_share > 0 else None,
            "count": int(g.sum()),
            "render_count": int(r.sum()),
            "frechet_distance": fd,
        }
    return out


def label_statistics(table: dict, world) -> dict:
    """Marginals and pairwise correlations of the evaluator's labels against the world's
    exact values, with the largest gaps."""
    from ganedit.evaluation.generator import label_stats, stat_gaps, world_label_stats

    labels = np.stack([table[a] > 0.5 for a in BINARY_ATTRIBUTES], 1)
    stats, target = label_stats(labels), world_label_stats(world)
    marginal_gap, correlation_gap = stat_gaps(stats, target)
    return {
        **stats,
        "yaw_std": float(np.std(table["yaw"])),
        "max_marginal_gap": marginal_gap,
        "max_correlation_gap": correlation_gap,
    }


@dataclass
class EditRecord:
    """Every edit of one method on one attribute, flattened over (step, face)."""

    face: np.ndarray  # [E] index of the face edited
    setting: np.ndarray  # [E] the step (alpha) or the anchor coordinate t
    achieved: np.ndarray  # [E] signed achieved change (degrees or probability)
    identity: np.ndarray  # [E] cosine to the unedited face
    off_target: np.ndarray  # [E] mean |change| of the other attributes' probabilities
    yaw_drift: np.ndarray  # [E] |yaw change| in degrees (0 for yaw edits themselves)


def _reading(source, latents, space, evaluator, identity, batch_size, modes=None):
    images = source.synthesize(latents, space, batch_size=batch_size, modes=modes)
    table, _ = evaluator_table(evaluator, images, batch_size)
    return table, identity.embed(images, batch_size=batch_size)


def _record(attribute, face_ids, settings, base, edited) -> EditRecord:
    (base_table, base_embed), (table, embed) = base, edited
    others = [a for a in BINARY_ATTRIBUTES if a != attribute]
    off = np.mean([np.abs(table[a] - base_table[a]) for a in others], axis=0)
    yaw = np.abs(table["yaw"] - base_table["yaw"])
    return EditRecord(
        face=face_ids,
        setting=settings,
        achieved=table[attribute] - base_table[attribute],
        identity=(embed * base_embed).sum(1),
        off_target=off,
        yaw_drift=np.zeros_like(yaw) if attribute == "yaw" else yaw,
    )


def _merge(records: list[EditRecord]) -> EditRecord:
    fields = EditRecord.__dataclass_fields__
    return EditRecord(**{f: np.concatenate([getattr(r, f) for r in records]) for f in fields})


def _subset(record: EditRecord, keep: np.ndarray) -> EditRecord:
    fields = EditRecord.__dataclass_fields__
    return EditRecord(**{f: getattr(record, f)[keep] for f in fields})


def _toward_opposite(attribute: str, base_table: dict) -> np.ndarray | None:
    """Per face, +1 to raise a binary attribute (the face lacks it) or -1 to lower it; None
    for yaw, which is edited both ways. An edit pushed further into the class a face is
    already in changes little and costs identity, so it would bias the comparison."""
    if attribute == "yaw":
        return None
    return np.where(base_table[attribute] >= 0.5, -1.0, 1.0)


def mode_edits(
    source, latents: torch.Tensor, attribute: str, t_grid, evaluator, identity,
    batch_size: int = 256, bar=None, space: str = "w", start: torch.Tensor | None = None,
) -> EditRecord:  # fmt: skip
    """Codes `latents` in `space` of a self-conditioned source rendered at their own anchor
    coordinates `start` [N, k] (default: neutral), then with `attribute`'s coordinate moved
    to each t of `t_grid` (the others kept). For a binary attribute only the moves toward
    the face's opposite class are kept (up for a face without the attribute, down for one
    with it)."""
    layout = source.require_modes()
    k = layout.attributes.index(attribute)
    n = len(latents)
    t0 = layout.neutral(n) if start is None else torch.as_tensor(start)
    t0 = t0.float()

    def modes_at(t: float | None) -> torch.Tensor:
        coords = t0.clone()
        if t is not None:
            coords[:, k] = t
        return layout.generator_vector(coords)

    base = _reading(source, latents, space, evaluator, identity, batch_size, modes_at(None))
    faces = np.arange(n)
    records = []
    for t in t_grid:
        edited = _reading(source, latents, space, evaluator, identity, batch_size, modes_at(t))
        records.append(_record(attribute, faces, np.full(n, float(t)), base, edited))
        if bar is not None:
            bar.advance(1)
    record = _merge(records)
    toward = _toward_opposite(attribute, base[0])
    if toward is None:
        return record
    moved = record.setting - t0[:, k].numpy()[record.face]
    return _subset(record, moved * toward[record.face] > 0)


def traversal_edits(
    source, w: torch.Tensor, attribute: str, direction: np.ndarray, alphas, evaluator, identity,
    batch_size: int = 256, bar=None, space: str = "w", modes: torch.Tensor | None = None,
) -> EditRecord:  # fmt: skip
    """Codes w [N, w_dim] (or ws [N, num_ws, w_dim] with space "ws": every row moves) walked
    along a unit `direction` [w_dim] by each step of `alphas`: as given for yaw (give both
    signs), toward the face's opposite class for a binary attribute (give positive steps).
    A self-conditioned source renders every face at its mode vector `modes` [N, M] (None:
    the source's default)."""
    from ganedit.editing import core

    vector = np.asarray(direction, np.float32).reshape(-1)
    base = _reading(source, w, space, evaluator, identity, batch_size, modes)
    toward = _toward_opposite(attribute, base[0])
    sign = torch.ones(len(w)) if toward is None else torch.as_tensor(toward, dtype=torch.float32)
    faces = np.arange(len(w))
    records = []
    for alpha in alphas:
        moved = core.moved(w, [vector], [sign * float(alpha)])
        edited = _reading(source, moved, space, evaluator, identity, batch_size, modes)
        records.append(_record(attribute, faces, np.full(len(w), float(alpha)), base, edited))
        if bar is not None:
            bar.advance(1)
    return _merge(records)


def binned(record: EditRecord, edges, repeats: int = 200, seed: int = 0) -> list[dict]:
    """Per bin of |achieved change|: the edits' count, the faces that reach it, mean identity,
    off-target drift and yaw drift, each mean with a 95% bootstrap interval over faces."""
    achieved = np.abs(record.achieved)
    n_faces = int(record.face.max()) + 1 if len(record.face) else 0
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, n_faces, n_faces) for _ in range(repeats)]
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (achieved >= lo) & (achieved < hi)
        row = {"bin": [float(lo), float(hi)], "count": int(inside.sum())}
        row["faces"] = int(len(np.unique(record.face[inside])))
        for key in ("identity", "off_target", "yaw_drift"):
            row[key] = _face_bootstrap(getattr(record, key), record.face, inside, n_faces, draws)
        out.append(row)
    return out


def _face_bootstrap(values, faces, inside, n_faces, draws) -> dict:
    """Mean of values[inside] and its 95% interval when whole faces are resampled (edits of
    one face are not independent)."""
    if not inside.any():
        return {"mean": None, "ci": None}
    sums = np.bincount(faces[inside], weights=values[inside], minlength=n_faces)
    counts = np.bincount(faces[inside], minlength=n_faces).astype(np.float64)
    means = []
    for rows in draws:
        c = counts[rows].sum()
        if c > 0:
            means.append(sums[rows].sum() / c)
    ci = np.percentile(means, [2.5, 97.5]).tolist() if means else None
    return {"mean": float(sums.sum() / counts.sum()), "ci": ci}


def reach(record: EditRecord, edges, identity_floor: float) -> float:
    """The largest bin edge of |achieved change| whose bin's mean identity stays at or above
    `identity_floor` for every bin up to it: how far the method edits before the face goes."""
    achieved = np.abs(record.achieved)
    reached = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (achieved >= lo) & (achieved < hi)
        if not inside.any() or record.identity[inside].mean() < identity_floor:
            break
        reached = float(hi if np.isfinite(hi) else achieved[inside].max())
    return reached


def edges_for(attribute: str) -> tuple[float, ...]:
    return YAW_BINS if attribute == "yaw" else PROBABILITY_BINS


def edit_figures(record: EditRecord, attribute: str, identity_floor: float = 0.5) -> dict:
    """The binned table of one method on one attribute, with its reach. The default floor is
    low because world64's latent edits lose identity fast (the directions study: a cosine of
    0.06-0.63 at the step that flips half the smiles)."""
    edges = edges_for(attribute)
    return {
        "bins": binned(record, edges),
        "reach": reach(record, edges, identity_floor),
        "identity_floor": identity_floor,
        "max_achieved": float(np.abs(record.achieved).max()) if len(record.achieved) else 0.0,
    }


def quick_look(sc, base, world, evaluator, identity, n: int, seed: int = 0, prior=None) -> dict:
    """A small-n summary for the demo: rare-cell shares of `base` and of the self-conditioned
    `sc` against world renders' truth, and per mode attribute the mean achieved change and
    identity when t goes to 0 and to 1 from each face's own modes. With the data's modes
    `prior` [P, k] (what the model folder ships) the faces are drawn at rows of it, as
    `sample` draws them; without, at modes drawn as in training and edited from neutral."""
    from ganedit.models.modes import draw_coordinates

    k = len(sc.mode_attributes)
    layout = sc.mode_layout
    truth, _ = render_readings(world, n, 1_000_003, sc.resolution, evaluator)
    base_table, _ = generated_readings(base, n, seed, evaluator)
    at = sampled_modes(n, k, seed + 1)
    start = None
    if prior is not None:
        at = draw_coordinates("data", n, seed + 1, layout, prior).numpy()
        start = draw_coordinates("data", n, seed + 3, layout, prior)
    sc_table, _ = generated_readings(sc, n, seed, evaluator, at)
    shares = {}
    for name, table in (("world", truth), ("base", base_table), ("sc", sc_table)):
        shares[name] = {c: float(m.mean()) for c, m in cell_masks(table).items()}
    w = sc.to_w(sc.sample_z(n, seed + 2))
    edits = {}
    for a in sc.mode_attributes:
        rec = mode_edits(sc, w, a, (0.0, 1.0), evaluator, identity, start=start)
        edits[a] = {
            f"t={t:g}": {
                "achieved": float(rec.achieved[rec.setting == t].mean()),
                "identity": float(rec.identity[rec.setting == t].mean()),
            }
            for t in (0.0, 1.0)
            if (rec.setting == t).any()
        }
    drawn = "the data's modes" if prior is not None else "modes drawn as in training"
    starts = "each face's own modes, drawn from the data's" if prior is not None else "neutral"
    return {"n": n, "seed": seed, "shares": shares, "mode_edits": edits, "modes": drawn,
            "edits_start": starts}  # fmt: skip
