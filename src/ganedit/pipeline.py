"""The direction study end to end: generate a bank, learn every method's directions, evaluate.

`ganedit evaluate` uses `evaluate_boundary_files`; `make demo` and the committed report in
docs/ use `run_direction_study` (the demo with a smaller N).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ganedit.directions.estimators import METHODS
from ganedit.directions.fit import BoundaryConfig, fit_boundary, load_training_data, method_options
from ganedit.directions.io import load_boundary, method_label
from ganedit.directions.provenance import check_boundary_use
from ganedit.directions.sampling import ContingencyTable
from ganedit.errors import FitError, UserInputError, expect
from ganedit.evaluation.directions import Direction, DirectionEvalConfig, evaluate_directions
from ganedit.models.predictors import PROBABILITY
from ganedit.utils.context import RunContext
from ganedit.utils.files import atomic_dir, check_output, open_run_folder, output_lock, write_json

log = logging.getLogger(__name__)

ATTRIBUTES = ("smile", "gender", "glasses", "age")
CONDITIONED = "interfacegan"  # the run whose directions the study projects off each other


def _study_labels() -> tuple[str, ...]:
    """Every run of the study in report order: the estimators' `study_runs` in the order of
    the method table, the conditional run after the run it projects."""
    labels: list[str] = []
    for cls in METHODS.values():
        for label in cls.study_runs:
            labels += [label, f"{label}+conditional"] if label == CONDITIONED else [label]
    return tuple(labels)


METHOD_LABELS = _study_labels()


def _study_plans(settings: dict) -> dict[str, dict]:
    """Label -> BoundaryConfig options of each run: the study's `settings` (subset size,
    threshold) that its method takes, under the options the run fixes."""
    plans = {}
    for method, cls in METHODS.items():
        takes = method_options(method)
        for label, fixed in cls.study_runs.items():
            given = {k: v for k, v in settings.items() if k in takes}
            plans[label] = {"method": method, **given, **fixed}
    return plans


def load_directions(paths: list[str]) -> list[Direction]:
    directions = []
    for path in paths:
        vector, sidecar = load_boundary(path)
        if "attribute" not in sidecar:
            raise UserInputError(
                f"expected a boundary with a JSON sidecar naming its attribute, received {path!r}"
            )
        directions.append(
            Direction(
                method_label(sidecar),
                sidecar["attribute"],
                vector,
                float(sidecar.get("intercept") or 0.0),
            )
        )
    return directions


def measuring_networks(evaluator: str, identity: str | None, device):
    """The evaluator (any attribute predictor) and the identity embedder (None: not measured)."""
    from ganedit.models.registry import load_attribute_predictor, load_identity_embedder

    model = load_attribute_predictor(evaluator, device, foreign=True)
    return model, None if identity is None else load_identity_embedder(identity, device)


def _networks(cfg: DirectionEvalConfig, device):
    from ganedit.models.sources import load_generator

    source = load_generator(cfg.generator, device, truncation_psi=cfg.truncation_psi)
    return (source, *measuring_networks(cfg.evaluator, cfg.identity, device))


def _rows(layers: tuple[int, int] | None) -> str:
    return "" if layers is None else f", rows {layers[0]}:{layers[1]}"


def evaluate_boundary_files(
    cfg: DirectionEvalConfig,
    paths: list[str],
    out: str | Path,
    *,
    extra_markdown: str = "",
    force: bool = False,
    ctx: RunContext = RunContext(),
) -> Path:
    """Evaluate boundary files on held-out latents and write the report folder `out`.

    Each boundary's record must match the generator and space (else ProvenanceError, unless
    `force`, which is recorded in the report). `out` must be new, or with `ctx.overwrite` a
    report folder ganedit wrote."""
    from ganedit.evaluation.direction_report import write_direction_report

    out = check_output(out, overwrite=ctx.overwrite, kind="dir")
    directions, sidecars = load_directions(paths), [load_boundary(p)[1] for p in paths]
    source, evaluator, identity = _networks(cfg, ctx.device)
    checks = [
        check_boundary_use(side, source.identity, cfg.space, f"boundary {path}", force)
        for path, side in zip(paths, sidecars, strict=True)
    ]
    report = evaluate_directions(
        cfg, directions, source, evaluator, identity, progress=ctx.progress
    )
    report["boundaries"] = list(paths)
    report["generator_identity"] = source.identity
    report["provenance"] = checks
    with atomic_dir(out, overwrite=ctx.overwrite, what="direction report") as tmp:
        write_direction_report(
            report,
            tmp,
            title=f"Directions on {cfg.generator} ({cfg.space}{_rows(cfg.layers)})",
            extra_markdown=extra_markdown,
        )
    return out / "report.md"


@dataclass(frozen=True)
class StudyConfig:
    generator: str = "world64"
    n: int = 200_000  # latent bank size
    seed: int = 0
    space: str = "w"
    threshold: float = 0.9
    # The reference README's choice for a large bank; rare cells fall short (reported).
    # None: the largest subset with an equal count in every non-empty cell.
    mab_n: int | None = 1000
    eval_n: int = 500
    eval_seed: int = 424242
    bootstrap: int = 200
    steps: int = 12
    chunk_size: int = 4096
    # Empty: every probability attribute that both the predictor and the evaluator give.
    attributes: tuple[str, ...] = ()
    predictor: str = "labeler"  # scores the bank the directions are learned from
    evaluator: str = "evaluator"  # measures the edits (another network than the predictor)
    identity: str | None = "identity"  # identity embedder; None: identity not measured
    truncation_psi: float = 1.0  # of the bank's and the held-out latents' images


def study_attributes(cfg: StudyConfig, predictor_kinds: dict, evaluator_kinds: dict) -> list[str]:
    """The attributes a study learns and evaluates: probability attributes of both networks
    (the predictor's order), or `cfg.attributes` when given, each checked to be one."""
    shared = [
        a
        for a, kind in predictor_kinds.items()
        if kind == PROBABILITY and evaluator_kinds.get(a) == PROBABILITY
    ]
    if not cfg.attributes:
        if not shared:
            raise UserInputError(
                "expected a predictor and an evaluator with a probability attribute in common, "
                f"received {cfg.predictor} {list(predictor_kinds)} and {cfg.evaluator} "
                f"{list(evaluator_kinds)}"
            )
        return shared
    for a in cfg.attributes:
        expect(
            a in shared,
            f"attributes that both the predictor and the evaluator give as probabilities {shared}",
            a,
        )
    return list(cfg.attributes)


def _fit_all(
    cfg: StudyConfig, attributes: list[str], bank: Path, folder: Path
) -> tuple[list[str], dict]:
    """Every method's boundary for every attribute; returns the files and fit timings."""
    common = dict(latents=str(bank), space=cfg.space, seed=cfg.seed)
    data = load_training_data(BoundaryConfig(method="", attribute="", **common))
    table = ContingencyTable.from_scores(data[1], attributes, cfg.threshold)
    mab_n = cfg.mab_n or table.max_balanced_size
    plans = _study_plans({"n": mab_n, "threshold": cfg.threshold})
    paths, seconds, skipped = [], {}, {}
    for label, plan in plans.items():
        for attribute in attributes:
            path = folder / f"{label}_{attribute}.npy"
            started = time.perf_counter()
            plan_cfg = BoundaryConfig(attribute=attribute, **common, **plan)
            if _fit_or_skip(plan_cfg, path, skipped, data):
                seconds[f"{label}:{attribute}"] = time.perf_counter() - started
                paths.append(str(path))
    for attribute in attributes:
        others = [folder / f"{CONDITIONED}_{a}.npy" for a in attributes if a != attribute]
        conditions = tuple(str(p) for p in others if p.exists())
        path = folder / f"{CONDITIONED}+conditional_{attribute}.npy"
        if not conditions:  # one attribute studied, or the others' boundaries were skipped
            skipped[path.stem] = f"no other attribute's {CONDITIONED} boundary to condition on"
            continue
        plan = BoundaryConfig(
            method="conditional", attribute=attribute, base=CONDITIONED, conditions=conditions,
            **common,
        )  # fmt: skip
        if _fit_or_skip(plan, path, skipped, data):
            paths.append(str(path))
    ordered = sorted(paths, key=lambda p: _order(Path(p).stem))
    facts = {"mab_n": mab_n, "contingency": table.to_dict(), "fit_seconds": seconds}
    return ordered, {**facts, "skipped": skipped}


def _fit_or_skip(cfg: BoundaryConfig, path: Path, skipped: dict, data) -> bool:
    """Fit one boundary; a method the data cannot serve (e.g. one class absent) is recorded.
    Only FitError means that: any other exception is a bug or bad input and stops the study."""
    try:
        fit_boundary(cfg, path, data, overwrite=True)
    except FitError as err:
        label = path.stem
        log.warning("skipping %s: %s", label, err)
        skipped[label] = str(err)
        return False
    return True


def _order(stem: str) -> tuple[int, int]:
    label, attribute = stem.rsplit("_", 1)
    return ATTRIBUTES.index(attribute) if attribute in ATTRIBUTES else 99, METHOD_LABELS.index(
        label
    )


def run_direction_study(
    cfg: StudyConfig, out: str | Path, *, ctx: RunContext = RunContext()
) -> Path:
    """Bank -> boundaries -> evaluation report; returns the report's markdown path.

    `out` is a study folder: new, or one this study wrote with the same configuration (then
    it resumes: a finished bank is reused, an interrupted one continued), or with
    `ctx.overwrite` a study folder of another configuration, started afresh. One process at a time."""
    # The study's bank keeps z and w only; fail before the long generation, not after it.
    expect(cfg.space in ("z", "w"), "a study space of z or w", cfg.space)
    from ganedit.models.registry import load_attribute_predictor
    from ganedit.models.sources import load_generator

    # An unknown or damaged generator or network fails now, before the study folder is made.
    source = load_generator(cfg.generator, ctx.device, truncation_psi=cfg.truncation_psi)
    expect(
        cfg.space in source.spaces,
        f"a space of the generator {list(source.spaces)} for the study",
        cfg.space,
    )
    predictor = load_attribute_predictor(cfg.predictor, ctx.device, foreign=True)
    evaluator, _ = measuring_networks(cfg.evaluator, cfg.identity, ctx.device)
    attributes = study_attributes(cfg, predictor.attribute_kinds, evaluator.attribute_kinds)
    out = Path(out)
    with output_lock(out):
        open_run_folder(out, "study", dataclasses.asdict(cfg), ctx.overwrite)
        return _run_study(cfg, attributes, out, ctx)


def _run_study(cfg: StudyConfig, attributes: list[str], out: Path, ctx: RunContext) -> Path:
    from ganedit.latents import GenerateConfig, generate_bank

    write_json(out / "study.json", {**dataclasses.asdict(cfg), "attributes": attributes})
    started = time.perf_counter()
    bank = out / "bank.zarr"
    if bank.exists():  # a finished bank is reused: the study can be re-run cheaply
        _check_reusable(bank, cfg)
    else:
        gen_cfg = GenerateConfig(
            generator=cfg.generator, predictor=cfg.predictor, n=cfg.n, seed=cfg.seed,
            truncation_psi=cfg.truncation_psi, chunk_size=cfg.chunk_size,
        )  # fmt: skip
        generate_bank(gen_cfg, bank, ctx=replace(ctx, overwrite=False))
    generated = time.perf_counter()
    (out / "boundaries").mkdir(exist_ok=True)
    paths, fitting = _fit_all(cfg, attributes, bank, out / "boundaries")
    write_json(out / "fitting.json", fitting)
    fitted = time.perf_counter()
    eval_cfg = DirectionEvalConfig(
        generator=cfg.generator, space=cfg.space, n=cfg.eval_n, seed=cfg.eval_seed,
        bootstrap=cfg.bootstrap, steps=cfg.steps, truncation_psi=cfg.truncation_psi,
        evaluator=cfg.evaluator, identity=cfg.identity,
    )  # fmt: skip
    note = _study_note(cfg, fitting, generated - started, fitted - generated)
    report = replace(ctx, overwrite=True)  # the study's own report folder, made anew
    return evaluate_boundary_files(eval_cfg, paths, out / "report", extra_markdown=note, ctx=report)


def _check_reusable(bank: Path, cfg: StudyConfig) -> None:
    """A bank left by an earlier study must be the one this study would generate."""
    from ganedit.latents import LatentBank

    made = LatentBank.open(bank).config or {}
    wanted = {
        "generator": cfg.generator, "n": cfg.n, "seed": cfg.seed, "predictor": cfg.predictor,
        "truncation_psi": cfg.truncation_psi,
    }  # fmt: skip
    found = {k: made.get(k) for k in wanted}
    if found != wanted:
        raise UserInputError(
            f"expected {bank} to hold the study's bank {wanted}, received one with {found} "
            "(choose another output folder or delete the bank)"
        )


def _study_note(cfg: StudyConfig, fitting: dict, gen_s: float, fit_s: float) -> str:
    table = fitting["contingency"]
    return (
        "\n## How the directions were learned\n\n"
        f"- Latent bank: {cfg.n} samples of `{cfg.generator}` (seed {cfg.seed}, truncation "
        f"psi {cfg.truncation_psi}), scored by `{cfg.predictor}`; {gen_s:.0f} s to generate "
        "(0 when reused).\n"
        f"- Confident on all attributes at {cfg.threshold}: {table.get('n_samples')} samples; "
        f"mab subset size n = {fitting['mab_n']} (the largest with an equal count in every "
        f"non-empty cell: {table.get('max_balanced_size')}).\n"
        f"- Boundaries learned in {cfg.space} in {fit_s:.1f} s in total; conditional = "
        "interfacegan projected off the other attributes' interfacegan boundaries.\n"
        + "".join(f"- Not learned: {k} ({v}).\n" for k, v in fitting["skipped"].items())
        + f"- Evaluation: held-out latents from another seed, scored by `{cfg.evaluator}` (the "
        f"evaluator: a different network from `{cfg.predictor}`) and "
        + (
            f"the identity embedder `{cfg.identity}`.\n"
            if cfg.identity
            else "no identity embedder.\n"
        )
    )
