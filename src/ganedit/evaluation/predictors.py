"""Held-out quality of the measuring networks on fresh renders of a world preset."""

from __future__ import annotations

import numpy as np

from ganedit.models.predictors import AttributeNet, IdentityNet
from ganedit.utils.progress import progress_bar
from ganedit.utils.stats import roc_auc
from ganedit.world.config import BINARY_ATTRIBUTES, load_world_config
from ganedit.world.factors import (
    SCENE_FACTORS,
    Factors,
    sample_attributes,
    sample_factors,
    sample_identity,
)
from ganedit.world.render import render

HELD_OUT_SEED = 999_983  # never used for training
CHUNK = 256  # renders per step: the renderer's own batch, so results match one call


def _on_renders(apply, views: list[Factors], size: int, what: str, progress: bool) -> list:
    """`apply` on the renders of each view, chunk by chunk: per view, its list of parts."""
    out = []
    with progress_bar(sum(map(len, views)), what, progress) as bar:
        for view in views:
            parts = []
            for start in range(0, len(view), CHUNK):
                chunk = view.subset(slice(start, start + CHUNK))
                parts.append(apply(render(chunk, size)))
                bar.advance(len(chunk))
            out.append(parts)
    return out


def evaluate_attribute_net(
    model: AttributeNet,
    n: int = 5000,
    preset: str = "celeba",
    seed: int = HELD_OUT_SEED,
    size: int = 64,
    progress: bool = False,
) -> dict:
    """Accuracy per binary attribute and yaw mean absolute error (degrees)."""
    factors = sample_factors(load_world_config(preset), seed, 0, n)
    [parts] = _on_renders(model.predict, [factors], size, "render + predict", progress)
    pred = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    report = {"n": n, "preset": preset, "seed": seed}
    for name in BINARY_ATTRIBUTES:
        report[f"{name}_accuracy"] = float(
            ((pred[name] > 0.5) == (factors[f"{name}_label"] > 0.5)).mean()
        )
    err = np.abs(pred["yaw"] - factors["yaw"])
    report["yaw_mae_deg"] = float(err.mean())
    tails = np.abs(factors["yaw"]) > 45
    report["yaw_mae_abs_over_45_deg"] = float(err[tails].mean()) if tails.any() else None
    return report


def evaluate_identity_net(
    model: IdentityNet,
    n_identities: int = 2000,
    preset: str = "celeba",
    seed: int = HELD_OUT_SEED,
    size: int = 64,
    resample_scene: bool = False,
    progress: bool = False,
) -> dict:
    """Verification ROC AUC: same identity under other attributes/pose vs. different identities.

    With `resample_scene`, the second view also gets another background, shirt, position and
    light, so only the face itself (shape, skin, hair, eyes) ties the two views together.
    """
    world = load_world_config(preset)
    index = np.arange(n_identities)
    identity = sample_identity(seed, index)
    views = []
    for view in range(2):
        cols = sample_attributes(world, seed + 1 + view, index)
        cols.update(identity)
        if resample_scene and view == 1:
            other = sample_identity(seed + 3, index)
            cols.update({k: other[k] for k in SCENE_FACTORS})
        views.append(cols)
    parts = _on_renders(model.embed, [Factors(c) for c in views], size, "render + embed", progress)
    emb = [np.concatenate(p) for p in parts]
    same = (emb[0] * emb[1]).sum(1)
    rng = np.random.default_rng(seed)
    other = (index + rng.integers(1, n_identities, n_identities)) % n_identities
    different = (emb[0] * emb[1][other]).sum(1)
    changed = np.mean(
        [np.mean(views[0][f"{a}_label"] != views[1][f"{a}_label"]) for a in BINARY_ATTRIBUTES]
    )
    return {
        "n_identities": n_identities,
        "preset": preset,
        "seed": seed,
        "resample_scene": resample_scene,
        "verification_auc": roc_auc(same, different),
        "mean_cos_same": float(same.mean()),
        "mean_cos_different": float(different.mean()),
        "share_of_labels_changed_between_views": float(changed),
    }
