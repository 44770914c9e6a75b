"""How disentangled are edits along a set of directions? Measured on held-out latents.

Every number comes from the evaluator (never the labeler the directions were learned from; any
`AttributePredictor`) and the identity embedder (optional):
- each held-out sample is moved toward the opposite class of the target attribute over a grid
  of latent steps; the flip rate (share whose evaluator label changed) traces a curve;
- at matched target change (the step where 50% and 90% of samples flipped, interpolated on
  the grid) the re-scoring matrix gives the mean absolute change of every attribute's
  probability (and of each value attribute, such as yaw in degrees, in its own units), with
  the signed change along +direction beside it;
- identity preservation is the cosine between identity embeddings before and after the edit
  (not measured, nan, when no embedder is given);
- held-out separability: ROC AUC and accuracy of the direction's decision function against
  the evaluator's labels; the cosine matrix between directions;
- bootstrap confidence intervals over the held-out samples (fixed seed).
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ganedit.editing import core
from ganedit.editing.edit import restrict_to_layers, sample_latents
from ganedit.errors import UserInputError
from ganedit.models.predictors import PROBABILITY, VALUE, attributes_of_kind
from ganedit.utils.progress import progress_bar
from ganedit.utils.stats import roc_auc

log = logging.getLogger(__name__)

LEVELS = (0.5, 0.9)


@dataclass(frozen=True)
class DirectionEvalConfig:
    generator: str = "world64"
    space: str = "w"
    n: int = 500  # held-out latents
    seed: int = 424242  # held-out latents: a seed no bank in the docs uses
    steps: int = 12  # grid points after 0
    logit_span: float = 14.0  # grid reaches this expected change of the target's logit
    calibration_n: int = 64
    bootstrap: int = 200
    batch_size: int = 128
    truncation_psi: float = 1.0
    evaluator: str = "evaluator"  # any attribute predictor `load_predictor` accepts
    identity: str | None = "identity"  # an identity embedder; None: identity not measured
    # ws rows START:STOP each direction moves (space "ws"), as `edit --layers`; None: all
    layers: tuple[int, int] | None = None


@dataclass
class Direction:
    """A unit direction to evaluate: `name` labels it in the report (e.g. the method)."""

    name: str
    attribute: str
    vector: np.ndarray  # [D] or [L, D]
    intercept: float = 0.0


@dataclass
class EditTrace:
    """Per-sample responses over the step grid of one direction."""

    alphas: np.ndarray  # [S] latent steps, alphas[0] = 0
    flipped: np.ndarray  # bool [S, N]
    change: np.ndarray  # [S, N, K+V] |change| of each probability, then each value attribute
    signed: np.ndarray  # [S, N, K+V] change along +direction
    identity: np.ndarray  # [S, N] cosine to the unedited embedding (nan: not measured)


def columns(evaluator) -> tuple[list[str], int]:
    """The evaluator's attributes as table columns: its K probabilities, then its V values
    (yaw for the face world's networks); returns (names, K)."""
    binary = attributes_of_kind(evaluator, PROBABILITY)
    return binary + attributes_of_kind(evaluator, VALUE), len(binary)


def _score(source, latents, space, evaluator, identity, batch_size):
    """Evaluator table [N, K+V] (see `columns`) and identity embeddings [N, E] (None without
    an embedder)."""
    images = source.synthesize(latents, space, batch_size=batch_size)
    pred = evaluator.predict(images, batch_size=batch_size)
    table = np.stack([pred[a] for a in columns(evaluator)[0]], axis=1)
    embed = None if identity is None else identity.embed(images, batch_size=batch_size)
    return table, embed


def trace_direction(
    source, space, latents, base, direction: Direction, alphas, evaluator, identity, batch_size,
    bar=None,
) -> EditTrace:  # fmt: skip
    """Move every sample toward the opposite class of the target over `alphas`."""
    k = columns(evaluator)[0].index(direction.attribute)
    base_table, base_embed = base
    label = base_table[:, k] >= 0.5
    toward = np.where(label, -1.0, 1.0).astype(np.float32)  # [N]
    flipped, change, signed, ident = [], [], [], []
    for alpha in alphas:
        moved = core.moved(latents, [direction.vector], [torch.from_numpy(toward * alpha)])
        table, embed = _score(source, moved, space, evaluator, identity, batch_size)
        delta = table - base_table
        flipped.append((table[:, k] >= 0.5) != label)
        change.append(np.abs(delta))
        signed.append(delta * toward[:, None])
        ident.append(np.full(len(table), np.nan) if embed is None else (embed * base_embed).sum(1))
        if bar is not None:
            bar.advance(1)
    return EditTrace(
        np.asarray(alphas, np.float64),
        np.stack(flipped),
        np.stack(change),
        np.stack(signed),
        np.stack(ident),
    )


def _crossing(alphas: np.ndarray, curve: np.ndarray, level: float) -> float:
    """First step where `curve` reaches `level`, linearly interpolated; nan if never."""
    above = np.nonzero(curve >= level)[0]
    if len(above) == 0:
        return float("nan")
    i = above[0]
    if i == 0:
        return float(alphas[0])
    t = (level - curve[i - 1]) / max(curve[i] - curve[i - 1], 1e-12)
    return float(alphas[i - 1] + t * (alphas[i] - alphas[i - 1]))


def _at(alphas: np.ndarray, curve: np.ndarray, alpha: float) -> np.ndarray:
    """A per-step quantity [S, ...] interpolated at step `alpha`."""
    if not np.isfinite(alpha):
        return np.full(curve.shape[1:], np.nan)
    i = int(np.clip(np.searchsorted(alphas, alpha), 1, len(alphas) - 1))
    t = (alpha - alphas[i - 1]) / (alphas[i] - alphas[i - 1])
    return (1 - t) * curve[i - 1] + t * curve[i]


def matched(trace: EditTrace, level: float, rows: np.ndarray | None = None) -> dict:
    """Means at the step that flips `level` of the samples (rows: a bootstrap resample)."""
    rows = np.arange(trace.flipped.shape[1]) if rows is None else rows
    flip = trace.flipped[:, rows].mean(1)
    alpha = _crossing(trace.alphas, flip, level)
    return {
        "step": alpha,
        "change": _at(trace.alphas, trace.change[:, rows].mean(1), alpha),
        "signed": _at(trace.alphas, trace.signed[:, rows].mean(1), alpha),
        "identity": float(_at(trace.alphas, trace.identity[:, rows].mean(1)[:, None], alpha)[0]),
    }


def bootstrap_matched(trace: EditTrace, level: float, repeats: int, seed: int) -> dict:
    """Percentile 95% intervals of `matched` over resampled held-out samples."""
    rng = np.random.default_rng(seed)
    n = trace.flipped.shape[1]
    draws = [matched(trace, level, rng.integers(0, n, n)) for _ in range(repeats)]
    out = {}
    for key in ("step", "change", "signed", "identity"):
        values = np.array([d[key] for d in draws], dtype=np.float64)
        with warnings.catch_warnings():  # a level no resample reaches gives nan, on purpose
            warnings.simplefilter("ignore", RuntimeWarning)
            out[key] = np.nanpercentile(values, [2.5, 97.5], axis=0) if repeats else None
    return out


def separability(latents, base_table, direction: Direction, k: int) -> dict:
    """Held-out ROC AUC and accuracy of the direction's decision function vs evaluator labels."""
    vector = np.asarray(direction.vector, np.float64)
    if latents.ndim == 3 and vector.ndim == 1:  # a w direction on ws codes: per row, averaged
        latents = latents.mean(1)
    flat = latents.reshape(len(latents), -1).numpy().astype(np.float64)
    score = flat @ vector.reshape(-1) + direction.intercept
    label = base_table[:, k] >= 0.5
    return {
        "auc": roc_auc(score[label], score[~label])
        if 0 < label.sum() < len(label)
        else float("nan"),
        "accuracy": float(((score >= 0) == label).mean()),
    }


def cosine_matrix(directions: list[Direction]) -> np.ndarray:  # [M, M]
    flat = np.stack([np.asarray(d.vector, np.float64).reshape(-1) for d in directions])
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    return flat @ flat.T


def _step_grid(source, space, direction: Direction, evaluator, cfg: DirectionEvalConfig):
    cal = core.measure(
        source,
        direction.vector,
        space,
        evaluator,
        direction.attribute,
        n=min(cfg.calibration_n, cfg.n),  # a smoke run with few held-out latents stays small
        seed=cfg.seed + 1,
    )
    slope = abs(cal.slope)
    if cal.weak:  # recorded in the report; the grid still spans the planned logit change
        log.info("%s %s: %s", direction.name, direction.attribute, cal.weak_message())
    if not slope > 1e-6:
        # A direction that does not move its target at all: the grid stops at one latent unit
        # per step (it is reported as never reaching the flip levels, not amplified).
        slope = cfg.logit_span
    return np.linspace(0.0, cfg.logit_span / slope, cfg.steps + 1), cal


def _extend_until_flipped(trace: EditTrace, run, evaluator, identity, cfg, bar=None) -> EditTrace:
    """Where the calibrated grid falls short of 90% flips (saturating responses), go on with
    the same spacing, up to twice the planned range."""
    spacing = trace.alphas[1] - trace.alphas[0]
    for _ in range(2):
        if trace.flipped[-1].mean() >= max(LEVELS):
            break
        more = trace.alphas[-1] + spacing * np.arange(1, cfg.steps // 2 + 1)
        if bar is not None:
            bar.extend(len(more))
        extra = trace_direction(*run, more, evaluator, identity, cfg.batch_size, bar)
        trace = EditTrace(
            *(np.concatenate([a, b]) for a, b in zip(_fields(trace), _fields(extra), strict=True))
        )
    return trace


def _fields(trace: EditTrace) -> list[np.ndarray]:
    return [getattr(trace, f.name) for f in dataclasses.fields(trace)]


def within_layers(direction: Direction, num_ws: int, layers: tuple[int, int]) -> Direction:
    """`direction` restricted to ws rows START:STOP (`restrict_to_layers`), named
    "NAME@START:STOP" so that the report tells it from the unrestricted one."""
    start, stop = layers
    return dataclasses.replace(
        direction,
        name=f"{direction.name}@{start}:{stop}",
        vector=restrict_to_layers(direction.vector, num_ws, layers),
    )


def evaluate_directions(
    cfg: DirectionEvalConfig,
    directions: list[Direction],
    source,
    evaluator,
    identity,
    progress: bool = True,
) -> dict:
    """All numbers of the comparison as one JSON-ready dict (see the module docstring)."""
    names, n_binary = columns(evaluator)
    for direction in directions:
        _check_target(direction, evaluator)
    if cfg.layers is not None and cfg.space != "ws":
        raise UserInputError(f"expected --space ws with --layers, received {cfg.space}")
    latents = sample_latents(source, cfg.n, cfg.seed, cfg.space)
    given = directions  # a boundary's decision function is the same with its edit restricted
    if cfg.layers is not None:
        directions = [within_layers(d, latents.shape[1], cfg.layers) for d in directions]
    base = _score(source, latents, cfg.space, evaluator, identity, cfg.batch_size)
    results = []
    # One tick per batch of edited images rendered: calibration, then each grid step.
    per_direction = cfg.steps + 2
    with progress_bar(len(directions) * per_direction, "evaluate directions", progress) as bar:
        for i, direction in enumerate(directions):
            alphas, cal = _step_grid(source, cfg.space, direction, evaluator, cfg)
            bar.advance(1, direction=f"{direction.name}:{direction.attribute}")
            run = (source, cfg.space, latents, base, direction)
            trace = trace_direction(*run, alphas, evaluator, identity, cfg.batch_size, bar)
            trace = _extend_until_flipped(trace, run, evaluator, identity, cfg, bar)
            k = names.index(direction.attribute)
            results.append(
                _direction_result(trace, direction, abs(cal.slope), k, names, n_binary, cfg, i)
            )
            results[-1]["calibration"] = cal.to_dict()
            results[-1]["separability"] = separability(latents, base[0], given[i], k)
    return {
        "config": dataclasses.asdict(cfg),
        "attributes": names,
        "attribute_kinds": dict(evaluator.attribute_kinds),
        "identity_measured": identity is not None,
        "base_label_share": dict(
            zip(names[:n_binary], (base[0][:, :n_binary] >= 0.5).mean(0).tolist(), strict=True)
        ),
        "directions": results,
        "cosines": {
            "names": [f"{d.name}:{d.attribute}" for d in directions],
            "matrix": cosine_matrix(directions).tolist(),
        },
    }


def _check_target(direction: Direction, evaluator) -> None:
    """A direction is measured by flips of its target: a probability attribute."""
    kinds = dict(evaluator.attribute_kinds)
    if kinds.get(direction.attribute) != PROBABILITY:
        wanted = tuple(attributes_of_kind(evaluator, PROBABILITY))
        got = direction.attribute + (" (a value attribute)" if direction.attribute in kinds else "")
        raise UserInputError(
            f"expected directions whose attribute is a probability attribute of the evaluator "
            f"{wanted}, received {direction.name}:{got}"
        )


def _direction_result(trace, direction, slope, k, names, n_binary, cfg, index) -> dict:
    out = {
        "name": direction.name,
        "attribute": direction.attribute,
        "logit_slope": slope,
        "curve": {
            "step": trace.alphas.tolist(),
            "flip_rate": trace.flipped.mean(1).tolist(),
            "change": dict(zip(names, trace.change.mean(1).T.tolist(), strict=True)),
            "identity": trace.identity.mean(1).tolist(),
        },
        "matched": {},
    }
    for level in LEVELS:
        point = matched(trace, level)
        ci = bootstrap_matched(trace, level, cfg.bootstrap, cfg.seed + 100 + index)
        out["matched"][f"{int(level * 100)}"] = {
            "step": point["step"],
            "step_ci": _pair(ci["step"]),
            "identity": point["identity"],
            "identity_ci": _pair(ci["identity"]),
            "change": _per_name(names, point["change"], ci["change"]),
            "signed": _per_name(names, point["signed"], ci["signed"]),
            "off_target": _off_target(point["change"][:n_binary], k),
        }
    return out


def _off_target(change: np.ndarray, k: int) -> float:
    """Mean |change| of the probability attributes other than the target (nan: none)."""
    others = np.delete(change, k)
    return float(np.mean(others)) if others.size else float("nan")


def _pair(ci) -> list[float] | None:
    return None if ci is None else [float(ci[0]), float(ci[1])]


def _per_name(names, values, ci) -> dict:
    return {
        name: {
            "mean": float(values[j]),
            "ci": None if ci is None else [float(ci[0][j]), float(ci[1][j])],
        }
        for j, name in enumerate(names)
    }
