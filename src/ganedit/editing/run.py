"""`ganedit edit`: latents in, labelled strip + GIF + edited codes out.

Before anything is rendered, every boundary's record is checked against the generator and
space it is used with (`directions.provenance`). With `calibrated`, strengths are in
evaluator-logit units of each boundary's attribute, and two safeguards apply: a direction
that barely moves its attribute is reported instead of amplified, and a step never exceeds
`bound` times the width of the span the latents cover along the direction (said in the
output when it applies), so calibration cannot walk the edit off the generator's manifold.
The units, calibration, bound, moves and render are `editing.core`'s, which the editor shares.

Truncation: codes from a latent bank are rendered at the truncation psi the bank was generated
(and scored) at, so that a z code (or a StyleGAN v1 w code, truncated when rendered) gives the
image its scores describe; `truncation_psi` set to another value is refused. Sampled codes, a
`.npy` of codes and a bank that records no psi (an imported one) render at `truncation_psi`,
1 (none) by default. The psi used and where it came from are in the output's config.json.

A self-conditioned generator is also edited by its modes (`modes`, "ATTR=T"): each column
moves the set attributes' anchor coordinates a share of the way from the samples' own to
T, keeping w (for sampled latents, the modes `ganedit sample` draws for the same seed: the
data's where the model ships them; `sample_modes` chooses). With boundaries as well, both
edits advance together, column by column.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganedit.choices import SAMPLE_MODES
from ganedit.directions.io import load_boundary
from ganedit.directions.provenance import check_boundary_use
from ganedit.editing import core
from ganedit.editing.core import start_coordinates
from ganedit.editing.edit import (
    DEFAULT_BOUND,
    MODES,
    check_fits,
    sample_latents,
    save_gif,
    save_strip,
)
from ganedit.errors import UserInputError
from ganedit.utils.context import RunContext
from ganedit.utils.files import atomic_dir, check_output, write_json
from ganedit.utils.params import Integer, OneOf, OrNone, Real, check_fields, check_params
from ganedit.utils.progress import progress_bar

log = logging.getLogger(__name__)

_CONSTRAINTS = {
    "n": Integer(1, 4096),
    "seed": Integer(0, 2**63 - 1),
    "start": Real(-1e6, 1e6),
    "end": Real(-1e6, 1e6),
    "steps": Integer(1, 1024),
    "mode": OneOf(MODES),
    "bound": OrNone(Real(1e-6, 1e6)),
    "scale": Integer(1, 16),
    "truncation_psi": OrNone(Real(0.0, 1.0)),
    "class_index": OrNone(Integer(0, 100_000)),
    "sample_modes": OrNone(OneOf(SAMPLE_MODES)),
}


@dataclass(frozen=True)
class EditConfig:
    boundaries: tuple[str, ...]
    generator: str = "world64"
    space: str = "w"
    n: int = 4
    seed: int = 0
    latents: str | None = None  # a bank or .npy; None: sample n
    start: float = -3.0
    end: float = 3.0
    steps: int = 7
    strengths: tuple[float, ...] = field(default_factory=tuple)  # several boundaries at once
    mode: str = "relative"
    layers: tuple[int, int] | None = None
    calibrated: bool = False  # strengths in evaluator-logit units of each target attribute
    bound: float | None = DEFAULT_BOUND  # calibrated: largest step as a share of the span
    evaluator: str = "evaluator"
    scale: int = 2  # pixel upscaling of the strip and GIF
    force: bool = False  # use boundaries whose provenance does not match (recorded)
    modes: tuple[str, ...] = ()  # "ATTR=T": mode targets of a self-conditioned generator
    truncation_psi: float | None = None  # None: a bank's own psi, else 1 (module docstring)
    class_index: int | None = None  # the class a class-conditional generator renders
    mode_names: tuple[str, ...] = ()  # the names of a self-conditioned .pt's modes
    # sampled latents on a self-conditioned generator: their modes as `sample` draws them
    # (None: the data's where the model ships them, else neutral)
    sample_modes: str | None = None

    def __post_init__(self):
        check_fields(self, _CONSTRAINTS, "edit")
        if self.sample_modes is not None and self.latents is not None:
            raise UserInputError(
                "expected --modes only with sampled latents (a bank's or inverted codes' "
                f"edits start at their own recorded modes), received --modes "
                f"{self.sample_modes} with --latents {self.latents}"
            )
        if not self.boundaries and not self.modes:
            raise UserInputError("expected at least one --boundary or --mode, received none")
        for value in self.strengths:
            check_params({"start": value}, {"start": Real(-1e6, 1e6)}, "edit strength")
        if self.calibrated and self.mode != "relative":
            raise UserInputError(
                f"expected --mode relative with --calibrated (calibrated units are steps), "
                f"received {self.mode}"
            )


def _given_latents(cfg: EditConfig) -> tuple[np.ndarray, dict] | None:
    """The codes of `cfg.latents` and what is known of their origin; None to sample them."""
    if cfg.latents is None:
        return None
    from ganedit.directions.fit import load_latents

    return load_latents(cfg.latents, cfg.space, stop=cfg.n)


def truncation(cfg: EditConfig, origin: dict) -> tuple[float, str]:
    """The truncation psi to render at and where it comes from: the bank's ("bank") for codes
    of a bank that records one, else `cfg.truncation_psi` ("given") or 1 ("default").
    UserInputError for a given psi other than the bank's."""
    recorded, given = origin.get("truncation_psi"), cfg.truncation_psi
    if recorded is None:
        return (1.0, "default") if given is None else (float(given), "given")
    if given is not None and float(given) != float(recorded):
        raise UserInputError(
            f"expected --trunc {format(recorded, 'g')}, the truncation psi the bank "
            f"{cfg.latents} was generated and scored at (or no --trunc), received "
            f"{format(given, 'g')}"
        )
    return float(recorded), "bank"


def _input_latents(cfg: EditConfig, source, given) -> tuple[torch.Tensor, dict]:
    """The codes to edit (`given`, or sampled) and what is known of their origin."""
    if given is None:
        from ganedit.models.sources import sample_coordinates

        latents = sample_latents(source, cfg.n, cfg.seed, cfg.space)
        how, t = sample_coordinates(source, cfg.generator, cfg.sample_modes, cfg.n, cfg.seed)
        if t is None:
            return latents, {}
        names = list(source.mode_attributes)
        return latents, {"modes": {"attributes": names, "t": t.tolist(), "drawn": how}}
    codes, origin = given
    if origin.get("generator_sha256") or origin.get("space"):  # a bank, or inverted codes
        where = f"latents {cfg.latents}"
        check_boundary_use(origin, source.identity, cfg.space, where, cfg.force, "latents made")
    return torch.from_numpy(codes), origin


def run_edit(cfg: EditConfig, out: str | Path, *, ctx: RunContext = RunContext()) -> dict:
    """Write strip.png, edit.gif, latents.npy (unedited) and config.json into `out`.

    Returns a summary: the output files, the strengths, the truncation psi rendered at, and
    per boundary its provenance check and (when calibrated) its calibration and whether the
    bound applied."""
    from ganedit.models.sources import load_generator

    out = check_output(out, overwrite=ctx.overwrite, kind="dir")
    given = _given_latents(cfg)
    psi, psi_from = truncation(cfg, given[1] if given is not None else {})
    source = load_generator(
        cfg.generator, ctx.device, psi, class_index=cfg.class_index, mode_names=cfg.mode_names
    )
    modes = _mode_edit(cfg, source)
    loaded = [load_boundary(b) for b in cfg.boundaries]
    checks = [
        check_boundary_use(meta, source.identity, cfg.space, f"boundary {path}", cfg.force)
        for path, (_, meta) in zip(cfg.boundaries, loaded, strict=True)
    ]
    _warn_other_truncation(cfg.boundaries, loaded, psi)
    latents, origin = _input_latents(cfg, source, given)
    check_fits([d for d, _ in loaded], latents, cfg.layers)  # before any progress bar
    start = start_coordinates(source, origin, len(latents))
    if modes is not None:
        modes["start"] = start.tolist()
    sweep = _sweep(cfg, len(loaded))
    units = [
        _latent_units(cfg, source, direction, meta, latents, sweep, ctx.progress)
        for direction, meta in loaded
    ]
    title = _title(cfg, loaded, modes)
    with atomic_dir(out, overwrite=ctx.overwrite, what="edit") as tmp:
        frames = _render(cfg, source, latents, loaded, units, sweep, ctx.progress, modes, start)
        save_strip(frames, tmp / "strip.png", sweep, title, cfg.scale)
        save_gif(frames, tmp / "edit.gif", sweep, title, cfg.scale)
        np.save(tmp / "latents.npy", latents.numpy())
        summary = {
            "out": str(out),
            "files": ["strip.png", "edit.gif", "latents.npy", "config.json"],
            "strengths": list(sweep),
            "units": "calibrated (evaluator logits of the target)" if cfg.calibrated else "latent",
            "generator": source.identity,
            "rendered_truncation_psi": psi,
            "rendered_truncation_psi_from": psi_from,
            "provenance": checks,
            "boundaries": [u for u in units],
            "modes": modes,
        }
        write_json(tmp / "config.json", {**dataclasses.asdict(cfg), **summary})
    return summary


def _warn_other_truncation(paths, loaded, psi: float) -> None:
    """A warning for each boundary learned on codes rendered at another truncation psi (its
    sidecar's, from its bank): its direction describes those images, not these."""
    for path, (_, meta) in zip(paths, loaded, strict=True):
        learned = meta.get("truncation_psi")
        if isinstance(learned, int | float) and float(learned) != psi:
            log.warning(
                "boundary %s was learned on codes rendered at truncation psi %g; these render "
                "at %g",
                path,
                learned,
                psi,
            )


def _mode_edit(cfg: EditConfig, source) -> dict | None:
    """{"attributes", "targets"} of a mode edit, checked against the generator; or None."""
    if not cfg.modes:
        return None
    targets = source.require_modes("--mode").parse(cfg.modes)
    return {"attributes": source.mode_attributes, "targets": targets}


def _sweep(cfg: EditConfig, n_boundaries: int) -> list[float]:
    """The column strengths: start..end for one boundary; 0..1 of the given ones for several,
    or of the way to the mode targets when there is no boundary."""
    if n_boundaries == 0:
        return np.linspace(0.0, 1.0, cfg.steps).tolist()
    if n_boundaries == 1:
        return np.linspace(cfg.start, cfg.end, cfg.steps).tolist()
    if len(cfg.strengths) != n_boundaries:
        raise UserInputError(
            f"expected one --strength per boundary ({n_boundaries}), received {len(cfg.strengths)}"
        )
    if cfg.mode != "relative":
        raise UserInputError(
            f"expected --mode relative with several boundaries, received {cfg.mode}"
        )
    return np.linspace(0.0, 1.0, cfg.steps).tolist()


def _latent_units(cfg, source, direction, meta, latents, sweep, progress) -> dict:
    """Latent units per strength unit for one boundary, with its calibration when asked."""
    calibration = None
    if cfg.calibrated:
        from ganedit.models.registry import load_attribute_predictor

        evaluator = load_attribute_predictor(cfg.evaluator, source.device, foreign=True)
        calibration = core.measure(
            source,
            direction,
            cfg.space,
            evaluator,
            meta.get("attribute"),
            layers=cfg.layers,
            reference=latents,
            progress=progress,
        )
    largest = _largest_strengths(cfg, sweep)
    scale = core.scale(calibration, largest, cfg.bound)
    if scale.bounded:
        unbounded = abs(largest / calibration.slope)
        log.warning(
            "%s: %s calibrated units would move %.3g latent units along the direction, %.2fx "
            "the span its latents cover (%.3g); steps scaled to %.2fx the span (--bound)",
            calibration.attribute,
            format(largest, "g"),
            unbounded,
            unbounded / calibration.width,
            calibration.width,
            cfg.bound,
        )
    return scale.record(meta.get("attribute"))


def _largest_strengths(cfg: EditConfig, sweep: list[float]) -> float:
    if cfg.strengths:
        return max(abs(s) for s in cfg.strengths)
    return max(abs(s) for s in sweep)


def _render(
    cfg, source, latents, loaded, units, sweep, progress, modes=None, start=None
) -> torch.Tensor:
    """Frames [S, N, 3, H, W], one per column strength."""
    frames = []
    shares = np.linspace(0.0, 1.0, len(sweep)) if len(sweep) > 1 else [1.0]
    directions = [d for d, _ in loaded]
    intercept = float(loaded[0][1].get("intercept") or 0.0) if len(loaded) == 1 else 0.0
    targets = None if modes is None else modes["targets"]
    with progress_bar(len(sweep), "edit", progress) as bar:
        for strength, share in zip(sweep, shares, strict=True):
            column_modes = core.mode_vector(source.mode_layout, start, targets, float(share))
            steps = _steps(cfg, strength, units)
            moved = core.moved(latents, directions, steps, cfg.mode, intercept, cfg.layers)
            frames.append(core.render(source, moved, cfg.space, column_modes))
            bar.advance(1)
    return torch.stack(frames)


def _steps(cfg: EditConfig, strength: float, units: list[dict]) -> list[float]:
    """The column's latent steps per boundary: its strength (times each boundary's own
    strength, with several) in latent units."""
    if len(units) == 1:
        return [strength * units[0]["latent_per_unit"]]
    return [strength * s * u["latent_per_unit"] for s, u in zip(cfg.strengths, units, strict=True)]


def _title(cfg: EditConfig, loaded, modes: dict | None = None) -> str:
    title = _directions_title(cfg, loaded) if loaded else ""
    if modes is None:
        return title
    targets = ", ".join(f"{a} to t={format(t, 'g')}" for a, t in modes["targets"].items())
    mode_text = f"modes: {targets} (share of the way from each face's own modes)"
    return f"{title}; {mode_text}" if title else mode_text


def _directions_title(cfg: EditConfig, loaded) -> str:
    names = [
        f"{meta.get('method', 'direction')}: {meta.get('attribute', '?')}" for _, meta in loaded
    ]
    units = "calibrated units" if cfg.calibrated else "latent units"
    if len(loaded) > 1:
        parts = ", ".join(
            f"{n} x{format(s, 'g')}" for n, s in zip(names, cfg.strengths, strict=True)
        )
        return f"{parts} ({cfg.space}, {units}, share of each)"
    return f"{names[0]} ({cfg.space}, {units})"


def summary_lines(summary: dict) -> list[str]:
    """A short human summary of `run_edit`'s result for the terminal."""
    lines = [f"{summary['out']}: strip.png, edit.gif ({summary['units']} units)"]
    psi, psi_from = (
        summary.get("rendered_truncation_psi"),
        summary.get("rendered_truncation_psi_from"),
    )
    if psi_from == "bank" or (psi is not None and psi != 1):
        whose = "the bank's" if psi_from == "bank" else "--trunc"
        lines.append(f"rendered at truncation psi {format(psi, 'g')} ({whose})")
    for record in summary["boundaries"]:
        cal = record.get("calibration")
        if cal is None:
            continue
        auc = cal["auc"]
        auc_text = f", AUC {auc:.2f}" if auc is not None and math.isfinite(auc) else ""
        line = (
            f"{record['attribute']}: {cal['logit_slope']:+.3g} evaluator logits per latent unit"
            f"{auc_text}; 1 unit = {abs(record['latent_per_unit']):.3g} latent units"
        )
        if record["bounded"]:
            line += f" (bounded: unbounded would be {abs(record['unbounded_latent_per_unit']):.3g})"
        lines.append(line)
    for check in summary["provenance"]:
        if check.get("forced"):
            lines.append(f"forced: {check['boundary']}: {'; '.join(check['mismatches'])}")
    return lines
