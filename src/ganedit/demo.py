"""The main job on the embedded default: render the world and its contact sheet, check the
shipped measuring networks, then the direction study on the embedded generator (latent bank,
every method's directions, their measured comparison) at a demo-sized N, and a short look at
the shipped self-conditioned generator (its modes, its tails, its mode edits)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from ganedit.choices import DEFAULT_METHOD
from ganedit.evaluation.predictors import evaluate_attribute_net, evaluate_identity_net
from ganedit.models.registry import load_predictor
from ganedit.utils.context import RunContext
from ganedit.utils.files import atomic_path, open_run_folder, output_lock, write_json
from ganedit.world.config import load_world_config
from ganedit.world.dataset import RenderJob, write_world_dataset
from ganedit.world.sheet import make_sheet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    preset: str = "celeba"
    n_render: int = 2000
    n_eval: int = 2000
    size: int = 64
    seed: int = 0
    generator: str = "world64"
    study_n: int = 20_000  # latent bank size (the full report uses at least 200,000)
    study_eval_n: int = 100
    study_bootstrap: int = 100
    study_steps: int = 8
    selfcond_generator: str = "world64-sc"  # a self-conditioned generator to look at
    selfcond_n: int = 300  # faces per measurement of that look (0: skip it)


def run_demo(cfg: DemoConfig, out: str | Path, *, ctx: RunContext = RunContext()) -> Path:
    """Write world.lmdb, sheet.png and report.{json,md} under `out`; returns the report path.

    `out` is the demo's own folder: running the same demo again resumes it (the study's bank
    is reused); another configuration needs `ctx.overwrite`; a folder the demo did not make is
    refused."""
    from ganedit.models.sources import generator_identity, load_generator

    # An unknown (or, when the study uses it, damaged) generator fails now, not after the
    # renders, and before the demo folder is made.
    (load_generator if cfg.study_n > 0 else generator_identity)(cfg.generator)
    if cfg.selfcond_n > 0:
        _self_conditioned(cfg.selfcond_generator)
    out = Path(out)
    with output_lock(out):
        open_run_folder(out, "demo", dataclasses.asdict(cfg), ctx.overwrite)
        return _run(cfg, out, replace(ctx, overwrite=True))  # its parts: the demo's own


def _run(cfg: DemoConfig, out: Path, ctx: RunContext) -> Path:
    write_json(out / "demo_config.json", dataclasses.asdict(cfg))
    world = load_world_config(cfg.preset)
    job = RenderJob(n=cfg.n_render, size=cfg.size, seed=cfg.seed)
    write_world_dataset(world, job, out / "world.lmdb", ctx=ctx)
    with atomic_path(out / "sheet.png") as tmp:
        make_sheet(world, seed=cfg.seed).save(tmp, format="png")
    report = {
        name: evaluate_attribute_net(load_predictor(name), n=cfg.n_eval, preset=cfg.preset)
        for name in ("labeler", "evaluator")
    }
    identity = load_predictor("identity")
    report["identity"] = evaluate_identity_net(identity, n_identities=cfg.n_eval, preset=cfg.preset)
    report["identity_face_only"] = evaluate_identity_net(
        identity, n_identities=cfg.n_eval, preset=cfg.preset, resample_scene=True
    )
    directions = _direction_study(cfg, out, ctx) if cfg.study_n > 0 else None
    if cfg.selfcond_n > 0:
        report["selfcond"] = _selfcond_look(cfg, out, identity)
    write_json(out / "report.json", report)
    with atomic_path(out / "report.md") as tmp:
        text = format_report(report) + _directions_summary(directions)
        tmp.write_text(text + _selfcond_summary(report.get("selfcond")))
    log.info("report written to %s", out / "report.md")
    return out / "report.md"


def _direction_study(cfg: DemoConfig, out: Path, ctx: RunContext) -> Path:
    from ganedit.pipeline import StudyConfig, run_direction_study

    study = StudyConfig(
        generator=cfg.generator, n=cfg.study_n, seed=cfg.seed, eval_n=cfg.study_eval_n,
        bootstrap=cfg.study_bootstrap, steps=cfg.study_steps,
    )  # fmt: skip
    return run_direction_study(study, out / "directions", ctx=ctx)


def _self_conditioned(name: str):
    from ganedit.errors import UserInputError
    from ganedit.models.sources import load_generator

    source = load_generator(name)
    if not source.mode_attributes:
        raise UserInputError(
            f"expected a self-conditioned generator for the demo's last part, received {name!r}"
        )
    return source


def _selfcond_look(cfg: DemoConfig, out: Path, identity) -> dict:
    """selfcond_modes.png (each attribute's mode swept on two faces) and small-n figures."""
    from PIL import Image

    from ganedit.editing.edit import mode_sweep_grid
    from ganedit.evaluation.selfcond import quick_look
    from ganedit.models.modes import load_mode_prior
    from ganedit.models.registry import generator_folder
    from ganedit.models.sources import load_generator, sample_coordinates

    sc, base = _self_conditioned(cfg.selfcond_generator), load_generator(cfg.generator)
    prior = load_mode_prior(generator_folder(cfg.selfcond_generator), sc.mode_layout)
    _, own = sample_coordinates(sc, cfg.selfcond_generator, None, 2, cfg.seed)
    with atomic_path(out / "selfcond_modes.png") as tmp:
        Image.fromarray(mode_sweep_grid(sc, 2, cfg.seed, own=own)).save(tmp, format="png")
    evaluator = load_predictor("evaluator")
    world = load_world_config(cfg.preset)
    look = quick_look(sc, base, world, evaluator, identity, cfg.selfcond_n, cfg.seed, prior)
    return {**look, "generator": cfg.selfcond_generator, "base": cfg.generator}


def _selfcond_summary(look: dict | None) -> str:
    if look is None:
        return ""
    sh = look["shares"]
    lines = [
        f"## The self-conditioned generator `{look['generator']}`",
        "",
        f"selfcond_modes.png: each attribute's mode from t = 0 to 1 on two faces (w kept). "
        f"Share of {look['n']} faces in rare cells, read by the evaluator (the world's by "
        f"ground truth), the self-conditioned faces at {look.get('modes', 'their modes')}:",
        "",
        f"| cell | world | {look['base']} | {look['generator']} |",
        "|---|---|---|---|",
    ]
    for cell in sh["world"]:
        name = cell.replace("|", "\\|")
        lines.append(
            f"| {name} | {sh['world'][cell]:.3f} | {sh['base'][cell]:.3f} | {sh['sc'][cell]:.3f} |"
        )
    lines += [
        "",
        f"Editing by modes (w kept; each face starts at {look.get('edits_start', 'neutral')}):"
        " mean achieved change and identity cosine to the unedited face, moving t to 0 and to "
        "1 (binary attributes: only the faces that can move that way):",
        "",
        "| attribute | t = 0: change | identity | t = 1: change | identity |",
        "|---|---|---|---|---|",
    ]
    for a, e in look["mode_edits"].items():
        cells = []
        for t in ("t=0", "t=1"):
            cells += (
                [f"{e[t]['achieved']:+.3g}", f"{e[t]['identity']:.3f}"] if t in e else ["-", "-"]
            )
        lines.append(f"| {a}{' (deg)' if a == 'yaw' else ''} | " + " | ".join(cells) + " |")
    lines += ["", "The measured comparison with latent traversals: docs/selfcond.md.", ""]
    return "\n".join(lines)


def _directions_summary(path: Path | None) -> str:
    """The methods in their two tiers at 90% target flips, with the attributes each reached."""
    if path is None:
        return ""
    import json

    from ganedit.evaluation.direction_report import method_tiers

    report = json.loads((path.parent / "report.json").read_text())
    rows = method_tiers(report, "90")
    lines = [
        "## Directions on the embedded generator",
        "",
        "Mean change of the other attributes' probabilities (evaluator) when an edit flips the "
        "target for 90% of held-out samples; lower is more disentangled. Tier 1: methods whose "
        "edits reached 90% flips on every attribute; tier 2: methods that missed some, whose "
        "mean covers only the attributes they reached and is not comparable with tier 1.",
        "",
        "| rank | tier | method | off-target change | attributes reached |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        total = len(r["reached"]) + len(r["missed"])
        missed = f" (missed: {', '.join(r['missed'])})" if r["missed"] else ""
        lines.append(
            f"| {r['rank']} | {r['tier']} | {r['method']} | {r['off_target']:.4f} | "
            f"{len(r['reached'])}/{total}{missed} |"
        )
    lines += [
        "",
        f"ganedit's default method is `{DEFAULT_METHOD}` (chosen on the committed 200k study, "
        "docs/directions.md); this demo's small bank is a smoke run, not the evidence.",
        "",
        f"Full comparison (tables, plots, CIs): {path}",
        "",
    ]
    return "\n".join(lines)


def format_report(report: dict) -> str:
    lines = ["# ganedit demo: the face world and its measuring networks", ""]
    lines += [
        "| network | smile | gender | glasses | age | yaw MAE (deg) |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("labeler", "evaluator"):
        r = report[name]
        accs = " | ".join(
            f"{r[f'{a}_accuracy']:.4f}" for a in ("smile", "gender", "glasses", "age")
        )
        lines.append(f"| {name} | {accs} | {r['yaw_mae_deg']:.2f} |")
    lines += [
        "",
        "Identity verification ROC AUC (same person, other attributes and pose, vs. another person):",
        f"{report['identity']['verification_auc']:.4f} in the same scene, "
        f"{report['identity_face_only']['verification_auc']:.4f} with background, clothes and light redrawn.",
        "",
    ]
    lines += ["All numbers, with sample counts and seeds: report.json beside this file.", ""]
    return "\n".join(lines)
