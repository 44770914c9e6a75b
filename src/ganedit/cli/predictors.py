"""Measuring networks: train and evaluate attribute predictors."""

from __future__ import annotations

from pathlib import Path

import typer

from ganedit import cli_options as opt
from ganedit.cli._app import app
from ganedit.cli._common import (
    _expect_suffix,
    _outputs,
    _write_report,
)
from ganedit.errors import UserInputError
from ganedit.utils.context import RunContext


@app.command("train-predictor")
def train_predictor_cmd(
    kind: opt.Kind = typer.Option(..., "--kind", help="Which measuring network."),
    out: Path = opt.out_option("Run folder (checkpoints, stats, final model)."),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Training steps (default: the shipped recipe)."
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", min=2),
    resume: bool = opt.resume_option(),
    progress: bool = opt.progress_option(),
) -> None:
    """Train a measuring network on renders made on the fly (resumable)."""
    from ganedit.training.predictors import PredictorTrainConfig, train_predictor

    overrides = {
        k: v for k, v in {"steps": steps, "batch_size": batch_size}.items() if v is not None
    }
    cfg = PredictorTrainConfig.for_kind(opt.value(kind), **overrides)
    ctx = RunContext.current(progress=progress)
    typer.echo(str(train_predictor(cfg, out, resume=resume, ctx=ctx)))


@app.command("evaluate-predictor")
def evaluate_predictor_cmd(
    predictor: str = opt.predictor_option(..., "labeler, evaluator, identity, or a model folder."),
    eval_n: int = opt.eval_n_option(5000, "Held-out renders (identities for the embedder)."),
    preset: str = opt.preset_option(),
    out: Path | None = opt.optional_out_option("Write the full report as JSON here."),
    resample_scene: bool = typer.Option(
        False,
        "--resample-scene",
        help="Identity: the second view also gets another background, clothes and light.",
    ),
    overwrite: bool = opt.overwrite_option(),
    progress: bool = opt.progress_option(),
) -> None:
    """Held-out quality of a measuring network on fresh renders."""
    from ganedit.evaluation.predictors import evaluate_attribute_net, evaluate_identity_net
    from ganedit.models.predictors import AttributeNet, IdentityNet
    from ganedit.models.registry import load_predictor
    from ganedit.world.config import load_world_config

    _expect_suffix(out, ".json")
    _outputs(out, overwrite=overwrite)
    load_world_config(preset)
    net = load_predictor(predictor)
    if not isinstance(net, IdentityNet | AttributeNet):
        raise UserInputError(
            "expected a face-world network (labeler, evaluator, identity or a model folder), "
            f"received {type(net).__name__} from {predictor!r}: evaluate-predictor measures "
            "on renders of the world, whose attributes a foreign predictor need not know"
        )
    if isinstance(net, IdentityNet):
        report = evaluate_identity_net(
            net,
            n_identities=eval_n,
            preset=preset,
            resample_scene=resample_scene,
            progress=progress,
        )
        typer.echo(
            f"{predictor}: verification ROC AUC {report['verification_auc']:.4f} on {eval_n} "
            f"held-out identities ({preset})"
        )
    else:
        report = evaluate_attribute_net(net, n=eval_n, preset=preset, progress=progress)
        accuracies = ", ".join(
            f"{a} {report[f'{a}_accuracy']:.3f}" for a in ("smile", "gender", "glasses", "age")
        )
        typer.echo(
            f"{predictor} on {eval_n} held-out renders ({preset}): accuracy {accuracies}; "
            f"yaw error {report['yaw_mae_deg']:.2f} deg"
        )
    report["predictor"] = predictor
    _write_report(report, out)
