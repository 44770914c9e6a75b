"""From training data on disk (a latent bank, or the reference's .npy files) to a boundary file."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganedit.directions.estimators import Conditional, DirectionEstimator, make_estimator
from ganedit.directions.io import load_boundary, save_boundary
from ganedit.errors import UserInputError

log = logging.getLogger(__name__)

SPACES = ("z", "w", "ws")


@dataclass(frozen=True)
class BoundaryConfig:
    """One direction to learn. Unset method options keep the estimator's defaults."""

    method: str
    attribute: str
    latents: str  # a latent bank (*.zarr) or a .npy of codes [N, D] / [N, L, D]
    scores: str | None = None  # None: the bank's scores
    space: str = "w"  # for banks; ws fits one block per layer
    n: int | None = None  # mab: subset size
    threshold: float | None = None  # confidence threshold (mab, stratified, regression, fisher)
    ratio: float | None = None  # interfacegan: share (or count) of top and bottom samples
    quota: str | None = None  # mab: random | exact
    solver: str | None = None  # interfacegan: fast | kernel
    base: str = "interfacegan"  # conditional: the method whose direction is projected
    conditions: tuple[str, ...] = field(default_factory=tuple)  # boundary .npy files
    seed: int = 0


# Which options each method takes, with the name its estimator uses.
_OPTIONS = {
    "interfacegan": {"ratio": "ratio", "solver": "solver"},
    "mab": {"n": "n", "threshold": "threshold", "quota": "quota"},
    "stratified": {"threshold": "threshold"},
    "regression": {"threshold": "threshold"},
    "fisher": {"threshold": "threshold"},
}


def load_latents(path: str, space: str, stop: int | None = None) -> tuple[np.ndarray, dict]:
    """Latent codes [N, D] or [N, L, D] (the first `stop` rows) and what is known of their origin."""
    p = Path(path)
    if p.suffix == ".npy":
        codes = np.load(p, mmap_mode="r", allow_pickle=False)
        if codes.ndim not in (2, 3) or codes.dtype.kind != "f":
            raise UserInputError(
                f"expected float latent codes [N, D] or [N, L, D] in {path!r}, received "
                f"{codes.dtype} {codes.shape}"
            )
        return np.array(codes[:stop], np.float32), {"latents": str(p)}
    from ganedit.latents import LatentBank

    bank = LatentBank.open(p)
    if space not in bank.spaces:
        raise UserInputError(f"expected a space of the bank {bank.spaces}, received {space!r}")
    stop = bank.n if stop is None else min(stop, bank.n)
    return bank.latents(space, 0, stop), {
        "latents": str(p),
        "generator": bank.meta.get("generator"),
    }


def load_scores(latents: str, scores: str | None, attribute: str) -> dict[str, np.ndarray]:
    """Attribute name -> [N] scores from the bank, a scores dict, or one `<attr>` score file."""
    if scores is None:
        if Path(latents).suffix == ".npy":
            raise UserInputError("expected --scores with latents from a .npy file, received none")
        from ganedit.latents import LatentBank

        return LatentBank.open(latents).scores()
    from ganedit.latents import load_scores_dict

    path = Path(scores)
    if path.suffix == ".npy" and path.name != "scores_dict.npy":
        array = _plain_npy(path)
        if array.dtype.names is None:
            # The reference's one-attribute file: [N] or [N, 1] scores of the target.
            name = attribute or path.stem.removesuffix("_scores")
            return {name: np.asarray(array, np.float64).reshape(len(array), -1)[:, 0]}
    return load_scores_dict(path)


def _plain_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError:
        raise UserInputError(
            f"expected a numeric score array in {str(path)!r}, received a pickled object "
            "(a scores dict? name it scores_dict.npy)"
        ) from None


def build_estimator(cfg: BoundaryConfig) -> DirectionEstimator:
    """The estimator for `cfg`, with conditions loaded for the conditional method."""
    if cfg.method == "conditional":
        if not cfg.conditions:
            raise UserInputError("expected --conditions for method conditional, received none")
        base = build_estimator(dataclasses.replace(cfg, method=cfg.base, conditions=()))
        return Conditional(
            base, np.stack([load_boundary(c)[0].reshape(-1) for c in cfg.conditions])
        )
    if cfg.method not in _OPTIONS:
        raise UserInputError(
            f"expected a method among {sorted([*_OPTIONS, 'conditional'])}, received {cfg.method!r}"
        )
    params = {
        name: getattr(cfg, key)
        for key, name in _OPTIONS[cfg.method].items()
        if getattr(cfg, key) is not None
    }
    _refuse_foreign_options(cfg)
    return make_estimator(cfg.method, cfg.attribute, random_state=cfg.seed, **params)


def _refuse_foreign_options(cfg: BoundaryConfig) -> None:
    given = [
        k for k in ("n", "threshold", "ratio", "quota", "solver") if getattr(cfg, k) is not None
    ]
    foreign = [k for k in given if k not in _OPTIONS[cfg.method]]
    if foreign:
        raise UserInputError(
            f"expected options of {cfg.method} among {sorted(_OPTIONS[cfg.method])}, "
            f"received {', '.join('--' + k for k in foreign)}"
        )


def load_training_data(cfg: BoundaryConfig) -> tuple[np.ndarray, dict, dict]:
    """(latents, scores, origin) as `cfg` names them: load once, fit many directions."""
    if cfg.space not in SPACES:
        raise UserInputError(f"expected --space in {SPACES}, received {cfg.space!r}")
    latents, origin = load_latents(cfg.latents, cfg.space)
    return latents, load_scores(cfg.latents, cfg.scores, cfg.attribute), origin


def fit_boundary(
    cfg: BoundaryConfig, out: str | Path, data: tuple[np.ndarray, dict, dict] | None = None
) -> DirectionEstimator:
    """Fit the configured direction and write `out` (.npy) with its JSON sidecar.

    `data`: what `load_training_data(cfg)` returns, when the caller already holds it.
    """
    latents, scores, origin = data if data is not None else load_training_data(cfg)
    if cfg.attribute not in scores:
        raise UserInputError(
            f"expected an attribute among {sorted(scores)}, received {cfg.attribute!r}"
        )
    estimator = build_estimator(cfg).fit(latents, scores)
    metadata = {
        **origin,
        "space": cfg.space if Path(cfg.latents).suffix != ".npy" else None,
        "attribute": cfg.attribute,
        "boundary_config": dataclasses.asdict(cfg),
    }
    if cfg.conditions:
        metadata["conditions"] = list(cfg.conditions)
    save_boundary(out, estimator, metadata)
    log.info("%s %s: accuracy %.4f on %d samples", cfg.method, cfg.attribute,
             estimator.accuracy_, estimator.n_samples_)  # fmt: skip
    return estimator
