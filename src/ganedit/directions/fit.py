"""From training data on disk (a latent bank, or the reference's .npy files) to a boundary file."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganedit.directions.estimators import METHODS, Conditional, DirectionEstimator, make_estimator
from ganedit.directions.io import load_boundary, save_boundary, sidecar_path
from ganedit.directions.sampling import Scores, check_kinds, score_kinds
from ganedit.errors import DamagedInputError, UserInputError
from ganedit.utils.arrays import check_finite, load_npy
from ganedit.utils.bounded import load_json_bounded
from ganedit.utils.files import check_output, read_sidecar_path

log = logging.getLogger(__name__)

SPACES = ("z", "w", "ws")


def _option():
    """A method option: an estimator parameter of the same name, passed to every method whose
    estimator takes it (its meaning and default are the estimator's), refused for the rest."""
    return field(default=None, metadata={"method_option": True})


@dataclass(frozen=True)
class BoundaryConfig:
    """One direction to learn. Unset method options keep the estimator's defaults.

    The method options are `ganedit boundary`'s flags for estimator parameters; which
    methods take each is read from the estimators (`method_options`). The field order is the
    order the boundary sidecar records them in.
    """

    method: str
    attribute: str
    latents: str  # a latent bank (*.zarr) or a .npy of codes [N, D] / [N, L, D]
    scores: str | None = None  # None: the bank's scores
    space: str | None = None  # a bank's space to fit (None: w); for .npy codes, what they are
    generator: str | None = None  # .npy codes: the generator they came from (recorded)
    n: int | None = _option()
    threshold: float | None = _option()
    threshold_given: bool = False  # True: use `threshold` even when None (no filter)
    ratio: float | None = _option()
    quota: str | None = _option()
    solver: str | None = _option()
    split_mode: str | None = _option()
    base: str = "interfacegan"  # conditional: the method whose direction is projected
    conditions: tuple[str, ...] = field(default_factory=tuple)  # boundary .npy files
    seed: int = 0

    def given_options(self) -> dict:
        """The method options set (threshold also when given as None: no filter)."""
        return {
            name: getattr(self, name)
            for name in OPTION_FIELDS
            if getattr(self, name) is not None or (name == "threshold" and self.threshold_given)
        }


OPTION_FIELDS = tuple(
    f.name for f in dataclasses.fields(BoundaryConfig) if f.metadata.get("method_option")
)


def reference_n(method: str, n: float | None, ratio: float | None):
    """`-n` as it meant in each reference script: InterFaceGAN's count-or-ratio of top and
    bottom samples (returned as the ratio), MAB's whole subset size; returns (ratio, n)."""
    if n is None:
        return ratio, None
    if method == "interfacegan":
        if ratio is not None:
            raise UserInputError("expected one of -n and --ratio for interfacegan, received both")
        return n, None
    if n != int(n) or n < 1:
        raise UserInputError(f"expected a whole subset size for -n, received {n}")
    return ratio, int(n)


def method_options(method: str) -> tuple[str, ...]:
    """The method options `method`'s estimator takes, from its constructor's parameters."""
    params = METHODS[method]._get_param_names()
    return tuple(name for name in OPTION_FIELDS if name in params)


def load_latents(path: str, space: str, stop: int | None = None) -> tuple[np.ndarray, dict]:
    """Latent codes [N, D] or [N, L, D] (the first `stop` rows) and what is known of their
    origin: the generator's name and weights sha256, and the space (from a bank; a .npy file
    records neither)."""
    p = Path(path)
    if p.suffix == ".npy":
        codes = load_npy(p, "latent codes (.npy)", mmap=True)
        if codes.ndim not in (2, 3) or codes.dtype.kind != "f" or len(codes) == 0:
            raise UserInputError(
                f"expected float latent codes [N, D] or [N, L, D] in {path!r}, received "
                f"{codes.dtype} {codes.shape}"
            )
        codes = np.array(codes[:stop], np.float32)
        check_finite(codes, f"the latent codes in {path!r}")
        return codes, {"latents": str(p), **_npy_origin(p)}
    from ganedit.latents import LatentBank

    bank = LatentBank.open(p)
    if space not in bank.spaces:
        raise UserInputError(f"expected a space of the bank {bank.spaces}, received {space!r}")
    stop = bank.n if stop is None else min(stop, bank.n)
    codes = bank.latents(space, 0, stop)
    check_finite(codes, f"the {space} latents of {path!r}")
    identity = bank.generator_identity
    origin = {
        "latents": str(p),
        "generator": identity["name"],
        "generator_sha256": identity["sha256"],
        "space": space,
    }
    if bank.truncation_psi is not None:  # what the codes were rendered and scored at
        origin["truncation_psi"] = bank.truncation_psi
    if isinstance(identity.get("class"), int):  # a class-conditional generator's class
        origin["generator_class"] = identity["class"]
    modes = bank.mode_record(0, stop)  # a self-conditioned generator's: where each row started
    if modes is not None:
        origin["modes"] = modes
    return codes, origin


def _npy_origin(path: Path) -> dict:
    """What a .npy's JSON sidecar (`ganedit invert`'s latents.json) says of its origin."""
    sidecar = read_sidecar_path(path)
    if not sidecar.is_file():
        return {}
    data = load_json_bounded(sidecar, what="a JSON sidecar of the codes")
    if not isinstance(data, dict):
        raise DamagedInputError(
            f"expected a JSON object in {str(sidecar)!r}, received {type(data).__name__}"
        )
    keys = ("generator", "generator_sha256", "space")
    origin = {k: data[k] for k in keys if isinstance(data.get(k), str)}
    if isinstance(data.get("modes"), dict):  # inverted images' own modes (`invert`)
        origin["modes"] = data["modes"]
    return origin


def _modes_summary(origin: dict) -> dict:
    """The codes' modes as a boundary records them: how they were drawn or read and what was
    set, not every row's coordinates (a bank's may be millions of numbers)."""
    modes = origin.get("modes")
    if not isinstance(modes, dict) or "t" not in modes:
        return {}
    return {"modes": {k: v for k, v in modes.items() if k != "t"}}


def load_scores(latents: str, scores: str | None, attribute: str) -> Scores:
    """Attribute name -> [N] scores from the bank, a scores dict, or one `<attr>` score file,
    with each score's kind as the bank or file records it (its predictor's `attribute_kinds`:
    a bank's `score_kinds`, an .npz's `.kinds` entry, the `score_kinds.json` that `bank export`
    writes beside its files); where none is recorded, yaw a value and the rest probabilities.
    Every array is checked to be finite, and recorded kinds against the scores
    (`check_kinds`: a probability outside [0, 1] is damage)."""
    if scores is None:
        if Path(latents).suffix == ".npy":
            raise UserInputError("expected --scores with latents from a .npy file, received none")
        from ganedit.latents import LatentBank

        bank = LatentBank.open(latents)
        loaded, kinds = bank.scores(), bank.score_kinds
        where = f"the scores of {latents!r}"
    else:
        (loaded, kinds), where = _scores_file(Path(scores), attribute), f"scores in {scores!r}"
    for name, values in loaded.items():
        check_finite(values, f"{where} ({name!r})")
    return Scores(loaded, check_kinds(loaded, kinds, repr(latents if scores is None else scores)))


def _scores_file(path: Path, attribute: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The scores of a file and the kinds it records (checked against them)."""
    from ganedit.latents.interchange import kinds_beside, load_scores_and_kinds

    if path.suffix == ".npy" and path.name != "scores_dict.npy":
        array = load_npy(path, "a score array (.npy)")
        if array.dtype.names is None:
            one_column = array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)
            if array.dtype.kind not in "biuf" or not one_column or len(array) == 0:
                # [N, k] with k > 1 holds k attributes in an order the file does not name.
                raise UserInputError(
                    f"expected numeric scores [N] or [N, 1] in {str(path)!r}, received "
                    f"{array.dtype} {array.shape}"
                )
            # The reference's one-attribute file: [N] or [N, 1] scores of the target, in their
            # stored dtype (the reference sorts them as stored; ties depend on it).
            stem = path.stem.removesuffix("_scores")
            name = attribute or stem
            kind = kinds_beside(path, [stem]).get(stem)  # the file's own attribute's
            loaded = {name: np.asarray(array).reshape(len(array), -1)[:, 0]}
            return loaded, {name: kind} if kind else {}
    return load_scores_and_kinds(path)


def build_estimator(cfg: BoundaryConfig) -> DirectionEstimator:
    """The estimator for `cfg`, with conditions loaded for the conditional method."""
    if cfg.conditions and cfg.method != "conditional":
        raise UserInputError(
            f"expected --conditions only with --method conditional, received --method "
            f"{cfg.method} (it would leave them out)"
        )
    if cfg.method == "conditional":
        if not cfg.conditions:
            raise UserInputError("expected --conditions for method conditional, received none")
        base = build_estimator(dataclasses.replace(cfg, method=cfg.base, conditions=()))
        return Conditional(
            base, np.stack([load_boundary(c)[0].reshape(-1) for c in cfg.conditions])
        )
    if cfg.method not in METHODS:
        raise UserInputError(
            f"expected a method among {sorted([*METHODS, 'conditional'])}, received {cfg.method!r}"
        )
    given, takes = cfg.given_options(), method_options(cfg.method)
    foreign = [name for name in given if name not in takes]
    if foreign:
        raise UserInputError(
            f"expected options of {cfg.method} among {sorted(takes)}, "
            f"received {', '.join('--' + k.replace('_', '-') for k in foreign)}"
        )
    return make_estimator(cfg.method, cfg.attribute, random_state=cfg.seed, **given)


def load_training_data(cfg: BoundaryConfig) -> tuple[np.ndarray, Scores, dict]:
    """(latents, scores, origin) as `cfg` names them: load once, fit many directions."""
    space = cfg.space or "w"
    if space not in SPACES:
        raise UserInputError(f"expected --space in {SPACES}, received {space!r}")
    if cfg.scores is None and Path(cfg.latents).suffix == ".npy":
        raise UserInputError("expected --scores with latents from a .npy file, received none")
    latents, origin = load_latents(cfg.latents, space)
    if Path(cfg.latents).suffix == ".npy":
        origin.update(_declared_origin(cfg, latents))
    elif cfg.generator is not None and str(cfg.generator) != str(origin.get("generator")):
        raise UserInputError(
            f"expected --generator to name the bank's generator {origin.get('generator')!r} "
            f"(or to be left out), received {cfg.generator!r}"
        )
    return latents, load_scores(cfg.latents, cfg.scores, cfg.attribute), origin


def _declared_origin(cfg: BoundaryConfig, latents: np.ndarray) -> dict:
    """What the user says about .npy codes: their space, and the generator that made them."""
    origin: dict = {"space": cfg.space}
    if cfg.generator is None:
        return origin  # fit_boundary warns once the boundary is written, not before an error
    from ganedit.models.sources import generator_identity

    identity = generator_identity(cfg.generator)
    origin.update(generator=identity["name"], generator_sha256=identity["sha256"])
    return origin


def fit_boundary(
    cfg: BoundaryConfig,
    out: str | Path,
    data: tuple[np.ndarray, Scores, dict] | None = None,
    overwrite: bool = False,
) -> DirectionEstimator:
    """Fit the configured direction and write `out` (.npy) with its JSON sidecar.

    `data`: what `load_training_data(cfg)` returns, when the caller already holds it.
    Existing files at `out` or its sidecar are refused unless `overwrite`.
    """
    out = Path(out)
    if out.suffix != ".npy":
        raise UserInputError(f"expected a boundary path ending in .npy, received {str(out)!r}")
    for path in (out, sidecar_path(out)):
        check_output(path, overwrite=overwrite)
    latents, scores, origin = data if data is not None else load_training_data(cfg)
    if cfg.attribute not in scores:
        raise UserInputError(
            f"expected an attribute among {sorted(scores)}, received {cfg.attribute!r}"
        )
    estimator = build_estimator(cfg).fit(latents, scores)
    metadata = {
        **origin,
        **_modes_summary(origin),
        "attribute": cfg.attribute,
        "attribute_kind": score_kinds(scores)[cfg.attribute],
        "boundary_config": dataclasses.asdict(cfg),
    }
    if cfg.conditions:
        metadata["conditions"] = list(cfg.conditions)
    save_boundary(out, estimator, metadata)
    if Path(cfg.latents).suffix == ".npy" and cfg.generator is None:
        log.warning(
            "%s: latent codes from a .npy file record no generator; pass --generator so the "
            "boundary can be checked against the generator it is used with",
            cfg.latents,
        )
    log.info("%s %s: accuracy %.4f on %d samples", cfg.method, cfg.attribute,
             estimator.accuracy_, estimator.n_samples_)  # fmt: skip
    return estimator
