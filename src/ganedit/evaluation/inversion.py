"""How well an inversion reconstructs, measured by networks and by the world's ground truth.

For images x and their reconstructions G(code):
- pixel MSE (images in [-1, 1]) and the perceptual distance of the loss;
- identity cosine of the identity embedder;
- attribute agreement per attribute: the share of images whose label (probability > 0.5)
  is the same for x and G(code), read by the evaluator and, separately, by the labeler: the
  evaluator's trunk is inside the default perceptual loss, so its agreement is optimistic;
  the labeler is a network the optimisation never saw;
- yaw error in degrees (the labeler's yaw head);
- for generated samples, whose code is known: the distance of the found ws to the true ws,
  relative to the true code's distance to the mean.
Every figure is also split by the world's ground-truth cells where the images are renders
(smiling men, glasses, old, |yaw| > 30 degrees): the tails the generator under-represents.
`tails_kept` says how many of a tail's images keep what makes them a tail (issue 28's encoder
targets: glasses, a smile on a man, a head turned past 30 degrees within 10 degrees).
"""

from __future__ import annotations

import numpy as np
import torch

from ganedit.models.kinds import PROBABILITY
from ganedit.world.config import BINARY_ATTRIBUTES

CELLS = {
    "smiling men": lambda f: (f["smile_label"] > 0.5) & (f["gender_label"] > 0.5),
    "glasses": lambda f: f["glasses_label"] > 0.5,
    "old": lambda f: f["age_label"] > 0.5,
    "|yaw| > 30": lambda f: np.abs(f["yaw"]) > 30,
}


# What a tail's reconstruction must keep: its cell's attribute as a reader network reads it
# (the labeler by default, a network no inversion optimises against), or a turned head's yaw
# within 10 degrees of that network's reading of the input.
YAW_KEPT_DEGREES = 10.0
KEPT = {
    "smiling men": ("smile", lambda m, r: m[f"{r}_reads_smile"]),
    "glasses": ("glasses", lambda m, r: m[f"{r}_reads_glasses"]),
    "|yaw| > 30": (
        f"yaw within {YAW_KEPT_DEGREES:g} deg",
        lambda m, r: m[_yaw_error_key(r)] <= YAW_KEPT_DEGREES,
    ),
}


def _yaw_error_key(reader: str) -> str:
    return "yaw_error" if reader == "labeler" else f"{reader}_yaw_error"


def tails_kept(metrics: dict[str, np.ndarray], factors, reader: str = "labeler") -> dict:
    """{cell: {"n", "kept", "what"}}: the share of each tail cell's images (ground truth of
    the renders' `factors`) whose reconstruction keeps the cell's attribute (`KEPT`), as
    `reader` ("labeler" or "evaluator") reads it, from `reconstruction_metrics`' per-image
    figures."""
    out = {}
    for cell, (what, rule) in KEPT.items():
        mask = np.asarray(CELLS[cell](factors), bool)
        kept = np.asarray(rule(metrics, reader), np.float64)[mask]
        out[cell] = {"n": int(mask.sum()), "kept": float(kept.mean()) if len(kept) else None,
                     "what": what}  # fmt: skip
    return out


@torch.no_grad()
def reconstruction_metrics(
    inputs: torch.Tensor,
    recon: torch.Tensor,
    loss,
    evaluator: torch.nn.Module,
    labeler: torch.nn.Module | None,
) -> dict[str, np.ndarray]:
    """Per-image metrics [N] of reconstructions [N, 3, H, W] of inputs (both in [-1, 1]);
    without a labeler (None), only the evaluator's readings."""
    terms = loss.terms(recon, inputs)
    out = {"pixel_mse": terms["pixel"].numpy()}
    if "perceptual" in terms:
        out["perceptual"] = terms["perceptual"].numpy()
    if "identity" in terms:
        out["identity_cosine"] = 1.0 - terms["identity"].numpy()
    for name, net in (("evaluator", evaluator), ("labeler", labeler)):
        if net is None:
            continue
        a, b = net.predict(inputs), net.predict(recon)
        for attr in BINARY_ATTRIBUTES:
            out[f"{name}_agrees_{attr}"] = ((a[attr] > 0.5) == (b[attr] > 0.5)).astype(np.float64)
        for attr in BINARY_ATTRIBUTES:  # the reconstruction's own labels (tails_kept)
            out[f"{name}_reads_{attr}"] = (b[attr] > 0.5).astype(np.float64)
        if "yaw" in a and "yaw" in b:
            out[_yaw_error_key(name)] = np.abs(a["yaw"] - b["yaw"])
    return out


def code_error(found_ws: torch.Tensor, true_ws: torch.Tensor, w_avg: torch.Tensor) -> np.ndarray:
    """|found - true| / |true - w_avg| over all layers: [N]."""
    diff = (found_ws - true_ws).flatten(1).norm(dim=1)
    scale = (true_ws - w_avg).flatten(1).norm(dim=1).clamp_min(1e-8)
    return (diff / scale).numpy()


def summarise(metrics: dict[str, np.ndarray], factors=None) -> dict:
    """Medians (continuous metrics) and means (agreements) overall and per ground-truth
    cell (with its count), for the report."""

    def stats(mask) -> dict:
        out = {"n": int(mask.sum())}
        for key, values in metrics.items():
            if mask.sum() == 0:
                continue
            chosen = values[mask]
            share = "agrees" in key or "_reads_" in key
            out[key] = float(chosen.mean() if share else np.median(chosen))
        return out

    n = len(next(iter(metrics.values())))
    report = {"all": stats(np.ones(n, bool))}
    if factors is not None:
        for cell, select in CELLS.items():
            report[cell] = stats(np.asarray(select(factors)))
        if {"labeler_reads_smile", "labeler_reads_glasses", "yaw_error"} <= set(metrics):
            report["tails_kept"] = tails_kept(metrics, factors)
    return report


def editability(
    source,
    ws: torch.Tensor,
    directions: dict[str, np.ndarray],
    evaluator,
    identity,
    alphas: np.ndarray,
    level: float = 0.5,
    batch_size: int = 128,
) -> dict:
    """Edits of codes ws [N, num_ws, w_dim] along each attribute's direction ([w_dim], applied
    to every layer): at the step that flips `level` of the codes' target labels, that step,
    the mean off-target change (other attributes' probabilities), and the identity cosine to
    the unedited image; plus the share flipped at the grid's last step. The same call on
    generated samples' codes gives the reference the inverted codes are compared with.

    `source` is one generator source for every code, or a sequence of N sources, one per
    code: pivotal tuning gives each image its own tuned generator, and its code is edited
    in that generator."""
    from ganedit.evaluation.directions import Direction, columns, matched

    groups = _groups(source, ws)
    names = columns(evaluator)[0]
    out = {}
    for attribute, vector in directions.items():
        direction = Direction(attribute, attribute, np.asarray(vector, np.float32))
        trace = _trace_groups(groups, direction, alphas, evaluator, identity, batch_size)
        at = matched(trace, level)
        kinds = evaluator.attribute_kinds  # off-target: the other probabilities
        others = [i for i, n in enumerate(names) if n != attribute and kinds[n] == PROBABILITY]
        out[attribute] = {
            "step": at["step"],
            "off_target": float(np.mean(at["change"][others])),
            "identity": at["identity"],
            "flipped_at_last_step": float(trace.flipped[-1].mean()),
        }
    return out


def _groups(source, ws: torch.Tensor) -> list[tuple[object, torch.Tensor]]:
    """(source, its codes) pairs: one pair, or one per code when each has its own source."""
    if not isinstance(source, (list, tuple)):
        return [(source, ws)]
    if len(source) != len(ws):
        raise ValueError(f"expected one source per code ({len(ws)}), got {len(source)}")
    return [(s, ws[i : i + 1]) for i, s in enumerate(source)]


def _trace_groups(groups, direction, alphas, evaluator, identity, batch_size):
    """One EditTrace over all codes, each group traced in its own source."""
    from ganedit.evaluation.directions import EditTrace, _score, trace_direction

    traces = []
    for source, codes in groups:
        base = _score(source, codes, "ws", evaluator, identity, batch_size)
        traces.append(
            trace_direction(
                source, "ws", codes, base, direction, alphas, evaluator, identity, batch_size
            )
        )
    if len(traces) == 1:
        return traces[0]
    return EditTrace(
        traces[0].alphas,
        *(np.concatenate([getattr(t, f) for t in traces], axis=1)
          for f in ("flipped", "change", "signed", "identity")),
    )  # fmt: skip
