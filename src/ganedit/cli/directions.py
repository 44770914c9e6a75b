"""Directions: the contingency table, fitting a boundary, evaluating and studying them."""

from __future__ import annotations

from pathlib import Path

import typer

from ganedit import cli_options as opt
from ganedit.choices import DEFAULT_METHOD
from ganedit.cli._app import app
from ganedit.cli._common import (
    _expect_suffix,
    _outputs,
    _parse_layers,
    _write_report,
)
from ganedit.errors import UserInputError
from ganedit.utils.context import RunContext


@app.command("contingency")
def contingency_cmd(
    latents: Path | None = opt.latents_option(help="Latent bank holding the scores."),
    scores: Path | None = opt.scores_option("A scores file instead of a bank."),
    threshold: str | None = opt.threshold_option(
        "0.9", "Keep samples with p > t or p < 1 - t on every attribute (none: keep all)."
    ),
    attributes: list[str] | None = typer.Option(
        None,
        "--attribute",
        "-a",
        help="Attributes (repeat); default: every one of kind probability.",
    ),
    heatmap: Path | None = typer.Option(None, "--heatmap", help="PNG heatmap to write."),
    out: Path | None = opt.optional_out_option("Write the table as JSON here."),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Confidence filter and the contingency table over all attributes."""
    from rich.console import Console

    from ganedit.directions.display import rich_table, save_heatmap
    from ganedit.directions.fit import load_scores
    from ganedit.directions.sampling import ContingencyTable

    if latents is None and scores is None:
        raise UserInputError("expected --latents BANK or --scores FILE, received neither")
    if latents is not None and scores is not None:
        raise UserInputError(
            "expected one of --latents BANK and --scores FILE, received both (a bank holds "
            "its own scores)"
        )
    _expect_suffix(heatmap, ".png", "--heatmap")
    _expect_suffix(out, ".json")
    _outputs(heatmap, out, overwrite=overwrite)
    t = opt.parse_threshold(threshold)
    table_scores = load_scores(str(latents or ""), str(scores) if scores else None, "")
    table = ContingencyTable.from_scores(table_scores, attributes or None, t)
    Console().print(rich_table(table, t))
    if table.n_empty_cells:
        typer.echo(
            f"{table.n_empty_cells} empty cell(s): no balanced subset can make the attributes "
            "independent of those label combinations"
        )
    if heatmap is not None:
        save_heatmap(table, heatmap)
        typer.echo(f"heatmap: {heatmap}")
    _write_report({"threshold": t, **table.to_dict()}, out)


@app.command("boundary")
def boundary_cmd(
    method: opt.Method = typer.Option(
        opt.Method(DEFAULT_METHOD),
        "--method",
        help=f"Estimator (default {DEFAULT_METHOD}: chosen on the committed world64 study, "
        "docs/directions.md).",
    ),
    latents: Path = opt.latents_option(..., "Latent bank (*.zarr) or a .npy of codes."),
    scores: Path | None = opt.scores_option("Scores file (default: the bank's)."),
    attribute: str = typer.Option(..., "--attribute", "-a", help="Target attribute."),
    out: Path = opt.out_option("Boundary .npy to write (a .json sidecar beside)."),
    space: opt.Space | None = typer.Option(
        None, "--space", help="A bank's space to fit (default w); what .npy codes are."
    ),
    generator: str | None = opt.generator_option(
        None, "The generator .npy codes came from (recorded in the sidecar)."
    ),
    n: float | None = typer.Option(
        None,
        "--n",
        "-n",
        callback=opt.finite("-n", 0.0, 1e12),
        help="mab: subset size; interfacegan: count or ratio of top/bottom samples (the "
        "reference scripts' -n).",
    ),
    threshold: str | None = opt.threshold_option(
        None, "Confidence threshold in (0.5, 1), or none for no filter (method default if unset)."
    ),
    ratio: float | None = opt.finite_option(
        None, "--ratio", 0.0, 1e12, help="interfacegan: share (or count) of top and bottom samples."
    ),
    quota: opt.Quota | None = typer.Option(None, "--quota", help="mab: how cells are filled."),
    solver: opt.Solver | None = typer.Option(None, "--solver", help="interfacegan: SVM solver."),
    split_mode: opt.SplitMode | None = typer.Option(
        None,
        "--split-mode",
        help="interfacegan: 'reference' reproduces InterFaceGAN's ordering and train/validation "
        "split for a legacy NumPy seed (--seed), for parity checks.",
    ),
    base: opt.Method = typer.Option(
        opt.Method("interfacegan"), "--base", help="conditional: the method projected."
    ),
    conditions: list[Path] | None = typer.Option(
        None, "--conditions", help="conditional: boundaries to be orthogonal to."
    ),
    seed: int = opt.seed_option(help="Seed of the method's randomness."),
    json_out: Path | None = opt.json_option("Also write the fit summary as JSON here."),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Learn one attribute direction (InterFaceGAN-compatible .npy + JSON sidecar)."""
    from ganedit.directions.fit import BoundaryConfig, fit_boundary, reference_n

    _expect_suffix(out, ".npy")
    _expect_suffix(json_out, ".json", "--json")
    _outputs(json_out, overwrite=overwrite)
    method_name = opt.value(method)
    threshold_given = threshold is not None
    t = opt.parse_threshold(threshold)
    ratio, count = reference_n(
        method_name if method_name != "conditional" else opt.value(base), n, ratio
    )
    cfg = BoundaryConfig(
        method=method_name, attribute=attribute, latents=str(latents),
        scores=str(scores) if scores else None, space=opt.value(space), generator=generator,
        n=count, threshold=t, threshold_given=threshold_given, ratio=ratio,
        quota=opt.value(quota), solver=opt.value(solver), split_mode=opt.value(split_mode),
        base=opt.value(base),
        conditions=tuple(str(c) for c in conditions or ()), seed=seed,
    )  # fmt: skip
    estimator = fit_boundary(cfg, out, overwrite=overwrite)
    summary = estimator.summary()
    typer.echo(
        f"{out}: {summary['method']} direction of {attribute!r}, accuracy "
        f"{summary['accuracy']:.4f} on {summary['n_samples']} samples"
    )
    _write_report({"boundary": str(out), **summary}, json_out, overwrite=overwrite)


@app.command("evaluate")
def evaluate_cmd(
    boundary: list[Path] = opt.boundary_option(),
    out: Path = opt.out_option("New report folder (report.md, report.json, PNGs)."),
    generator: str = opt.generator_option(),
    space: opt.Space = opt.space_option(),
    eval_n: int = opt.eval_n_option(500, "Held-out latents to edit."),
    seed: int = opt.seed_option(424242, "Seed of the held-out latents."),
    bootstrap: int = opt.bootstrap_option(),
    steps: int = opt.grid_steps_option(),
    truncation_psi: float = opt.trunc_option(),
    evaluator: str = opt.evaluator_option(),
    identity: str = opt.identity_option(),
    layers: str | None = typer.Option(
        None,
        "--layers",
        help="ws rows START:STOP each direction moves (with --space ws), as `edit --layers`.",
    ),
    force: bool = opt.force_option(),
    device: str = opt.device_option(),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Measure disentanglement of directions with the evaluator and the identity embedder."""
    from ganedit.evaluation.directions import DirectionEvalConfig
    from ganedit.pipeline import evaluate_boundary_files

    cfg = DirectionEvalConfig(
        generator=generator, space=opt.value(space), n=eval_n, seed=seed, bootstrap=bootstrap,
        steps=steps, truncation_psi=truncation_psi, evaluator=evaluator,
        identity=opt.identity_value(identity), layers=_parse_layers(layers),
    )  # fmt: skip
    ctx = RunContext.current(device, progress, overwrite)
    path = evaluate_boundary_files(cfg, [str(b) for b in boundary], out, force=force, ctx=ctx)
    _print_ranking(path)


def _print_ranking(report_md: Path) -> None:
    import json

    from ganedit.evaluation.direction_report import method_tiers, recommended_methods

    report = json.loads((report_md.parent / "report.json").read_text())
    typer.echo(f"{report_md}")
    for r in method_tiers(report, "90"):
        missed = f", missed {', '.join(r['missed'])}" if r["missed"] else ""
        typer.echo(
            f"  {r['rank']}. {r['method']} (tier {r['tier']}{missed}): off-target change "
            f"{r['off_target']:.3f} at 90% flips"
        )
    pick = recommended_methods(report)
    if pick["default"] is not None:
        per = ", ".join(f"{a} {m or 'none'}" for a, m in pick["by_attribute"].items())
        typer.echo(
            f"  keeps the most at 50% flips (identity minus drift): {pick['default']}; "
            f"per attribute: {per}"
        )


@app.command("study")
def study_cmd(
    out: Path = opt.out_option("Study folder: bank.zarr, boundaries/, fitting.json, report/."),
    generator: str = opt.generator_option(),
    n: int = opt.n_option(200_000, "Latent bank size.", minimum=100),
    seed: int = opt.seed_option(),
    space: opt.StudySpace = typer.Option(opt.StudySpace("w"), "--space", help="Latent space."),
    threshold: str = opt.threshold_option("0.9", "Confidence threshold of mab and stratified."),
    mab_n: int = typer.Option(
        1000,
        "--mab-n",
        min=0,
        max=opt.MAX_COUNT,
        help="mab subset size (0: the largest equal-count size).",
    ),
    eval_n: int = opt.eval_n_option(500, "Held-out latents to edit."),
    bootstrap: int = opt.bootstrap_option(),
    steps: int = opt.grid_steps_option(),
    truncation_psi: float = opt.trunc_option(),
    predictor: str = opt.predictor_option(
        "labeler", "The attribute predictor that scores the bank (any form `score` takes)."
    ),
    evaluator: str = opt.evaluator_option(),
    identity: str = opt.identity_option(),
    attribute: list[str] = typer.Option(
        None,
        "--attribute",
        "-a",
        help="An attribute to study (repeat); default: every probability attribute that both "
        "the predictor and the evaluator give.",
    ),
    device: str = opt.device_option(),
    progress: bool = opt.progress_option(),
    overwrite: bool = opt.overwrite_option(),
) -> None:
    """Every method's directions for every attribute on one generator, evaluated (the committed
    report's command). Running it again in the same folder resumes it."""
    from ganedit.pipeline import StudyConfig, run_direction_study

    t = opt.parse_threshold(threshold)
    if t is None:
        raise UserInputError("expected a number in (0.5, 1) for --threshold, received none")
    cfg = StudyConfig(
        generator=generator, n=n, seed=seed, space=opt.value(space), threshold=t,
        mab_n=mab_n or None, eval_n=eval_n, bootstrap=bootstrap, steps=steps,
        truncation_psi=truncation_psi, predictor=predictor, evaluator=evaluator,
        identity=opt.identity_value(identity), attributes=tuple(attribute or ()),
    )  # fmt: skip
    path = run_direction_study(cfg, out, ctx=RunContext.current(device, progress, overwrite))
    _print_ranking(path)
