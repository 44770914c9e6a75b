"""Does an edit keep the person? A small, fixed probe of a generator's latent space.

Issue 28's question for a base generator, cheap enough to run during training: learn one
direction per attribute from the labeler's reading of `n_fit` samples (a bank in miniature),
then on `n` held-out latents
- for each binary attribute, move every face toward its opposite class until the evaluator
  sees half of them flipped, and read the identity cosine there (`evaluate_directions`,
  the directions study's own measurement at its 50% level);
- walk a yaw direction (regression on the labeler's yaw, both signs) and read how far the
  evaluator's yaw moves before the mean identity falls below `identity_floor` (`reach` over
  the self-conditioned report's yaw bins), and the identity in the bin that contains
  `yaw_degrees`.
Every figure comes from the evaluator and the identity net, never from the labeler that
learned the directions.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import torch

from ganedit.directions.estimators import make_estimator
from ganedit.editing.edit import sample_latents
from ganedit.evaluation.directions import Direction, DirectionEvalConfig, evaluate_directions
from ganedit.evaluation.selfcond import YAW_BINS, binned, reach, traversal_edits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EditProbeConfig:
    n_fit: int = 2000  # samples the labeler reads to learn each direction
    n: int = 200  # held-out latents edited
    seed: int = 616161  # fit latents; held-out ones use seed + 1 (no bank in the docs uses them)
    attributes: tuple[str, ...] = ("smile", "gender", "age")
    method: str = "interfacegan"
    yaw_steps: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 3.0, 4.0)  # in units of the yaw
    # direction's latent step per 10 degrees (measured on the fit latents)
    yaw_degrees: float = 20.0
    identity_floor: float = 0.8
    steps: int = 12
    batch_size: int = 128


def _labels(source, latents: torch.Tensor, labeler, batch_size: int) -> dict[str, np.ndarray]:
    images = source.synthesize(latents, "w", batch_size=batch_size)
    pred = labeler.predict(images, batch_size=batch_size)
    return {k: np.asarray(v, np.float64) for k, v in pred.items()}


def fit_probe_directions(source, labeler, cfg: EditProbeConfig):
    """One unit direction in w per binary attribute (cfg.method) and yaw (regression on its
    degrees), learned from the labeler's reading of n_fit samples; returns (directions,
    the labeler's scores, the fit latents [n_fit, D])."""
    w = sample_latents(source, cfg.n_fit, cfg.seed, "w")
    scores = _labels(source, w, labeler, cfg.batch_size)
    flat = w.numpy()
    directions = []
    for attribute in cfg.attributes:
        est = make_estimator(cfg.method, attribute).fit(flat, scores)
        directions.append(
            Direction(cfg.method, attribute, est.direction_.reshape(-1), est.intercept_)
        )
    yaw = make_estimator("regression", "yaw").fit(flat, scores)
    directions.append(Direction("regression", "yaw", yaw.direction_.reshape(-1), 0.0))
    return directions, scores, flat


def _yaw_slope(w: np.ndarray, yaw: np.ndarray, vector: np.ndarray) -> float:
    """Degrees of the labeler's yaw per latent unit along `vector` (least squares)."""
    t = w @ vector
    t = t - t.mean()
    return float((t * (yaw - yaw.mean())).sum() / max((t * t).sum(), 1e-12))


def edit_probe(source, labeler, evaluator, identity, cfg: EditProbeConfig | None = None) -> dict:
    """The probe's figures as a JSON-ready dict (see the module docstring)."""
    cfg = cfg or EditProbeConfig()
    directions, scores, fit_w = fit_probe_directions(source, labeler, cfg)
    binary, yaw_dir = directions[:-1], directions[-1]
    eval_cfg = DirectionEvalConfig(
        n=cfg.n, seed=cfg.seed + 1, steps=cfg.steps, bootstrap=0, batch_size=cfg.batch_size
    )
    report = evaluate_directions(eval_cfg, binary, source, evaluator, identity, progress=False)
    out: dict = {"config": dataclasses.asdict(cfg), "identity_at_50": {}, "off_target_at_50": {}}
    for row in report["directions"]:
        at50 = row["matched"]["50"]
        out["identity_at_50"][row["attribute"]] = at50["identity"]
        out["off_target_at_50"][row["attribute"]] = at50["off_target"]
    per_ten = 10.0 / max(abs(_yaw_slope(fit_w, scores["yaw"], yaw_dir.vector)), 1e-6)
    alphas = [s * per_ten * sign for s in cfg.yaw_steps for sign in (1.0, -1.0)]
    held = sample_latents(source, cfg.n, cfg.seed + 1, "w")
    record = traversal_edits(
        source, held, "yaw", yaw_dir.vector, alphas, evaluator, identity, cfg.batch_size
    )
    bins = binned(record, YAW_BINS, repeats=0)
    out["yaw"] = {
        "reach": reach(record, YAW_BINS, cfg.identity_floor),
        "identity_floor": cfg.identity_floor,
        "bins": [
            {"bin": b["bin"], "count": b["count"], "identity": b["identity"]["mean"]} for b in bins
        ],  # fmt: skip
        "identity_at_degrees": _bin_identity(bins, cfg.yaw_degrees),
        "max_degrees": float(np.abs(record.achieved).max()),
    }
    return out


def world_networks(device="cpu") -> tuple:
    """The face world's shipped labeler, evaluator and identity net, as the probe takes them."""
    from ganedit.models.registry import load_identity_embedder, load_predictor

    return (load_predictor("labeler", device), load_predictor("evaluator", device),
            load_identity_embedder("identity", device))  # fmt: skip


def world_probe(source, n: int, device="cpu") -> dict:
    """The probe of `source` with n held-out faces and the face world's shipped networks
    (what `evaluate-generator --n-edit` adds to its report)."""
    return edit_probe(source, *world_networks(device), EditProbeConfig(n=n))


def generator_probe(cfg: EditProbeConfig, device="cpu"):
    """`probe(generator) -> figures` for a training run (train_gan's `probe`): the face
    world's shipped labeler, evaluator and identity net, loaded once, measuring a bare
    StyleGAN2 module as a source; logs the summary line."""
    from ganedit.models.sources import StyleGANSource

    nets = world_networks(device)

    def probe(generator) -> dict:
        figures = edit_probe(StyleGANSource(generator, "training"), *nets, cfg)
        log.info("probe: %s", summary_line(figures))
        return figures

    return probe


def _bin_identity(bins: list[dict], degrees: float) -> float | None:
    """Mean identity of the yaw bin holding `degrees` (None: no edit reached it)."""
    for b in bins:
        lo, hi = b["bin"]
        if lo <= degrees < hi:
            return b["identity"]["mean"]
    return None


def summary_line(figures: dict) -> str:
    """One line for a log: identity at 50% flips per attribute, yaw reach."""
    parts = [f"{a} {v:.2f}" for a, v in figures["identity_at_50"].items()]
    yaw = figures["yaw"]
    at = yaw["identity_at_degrees"]
    parts.append(f"yaw reach {yaw['reach']:g} deg (identity {at if at is None else round(at, 2)})")
    return "identity at 50% flips: " + ", ".join(parts)
