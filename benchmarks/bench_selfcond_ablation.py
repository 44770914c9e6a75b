"""Ablations of self-conditioned fine-tunes: several runs side by side, each read the same way.

Per run (a generator folder and the labels store it was trained on): the rare-cell shares at
the modes of its training data and with modes drawn as in training (the evaluator's reading,
against world renders' ground truth), and per mode attribute how far its mode moves the
attribute: the mean achieved change from t = 0 to t = 1 on the same faces (w kept, the other
modes neutral), with a 95% bootstrap interval over faces, and the identity cosine between
the two ends. A mode whose labels carry no attribute moves nothing.

    python benchmarks/bench_selfcond_ablation.py --run merged=runs/abl-merged/g_ema:runs/sc/labels \
        --run distances=runs/abl-dist/g_ema:runs/sc/labels-dist --json runs/abl.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ganedit.evaluation.selfcond import (
    cell_masks,
    evaluator_table,
    generated_readings,
    render_readings,
    sampled_modes,
)
from ganedit.models.modes import NEUTRAL, mode_vector
from ganedit.models.registry import load_predictor
from ganedit.models.sources import load_generator
from ganedit.selfcond.encoder import modes_from_labels
from ganedit.world.config import load_world_config


def controllability(source, evaluator, identity, n: int, seed: int, repeats: int = 200) -> dict:
    """Per mode attribute: mean achieved change t = 0 -> 1 [95% CI] and identity between the
    ends, on n faces."""
    attributes = source.mode_attributes
    w = source.to_w(source.sample_z(n, seed))
    rng = np.random.default_rng(seed)
    out = {}
    for k, a in enumerate(attributes):
        ends = []
        for t in (0.0, 1.0):
            coords = torch.full((1, len(attributes)), NEUTRAL)
            coords[0, k] = t
            images = source.synthesize(w, "w", modes=mode_vector(coords, for_generator=True))
            table, _ = evaluator_table(evaluator, images)
            ends.append((table[a], identity.embed(images)))
        change = ends[1][0] - ends[0][0]
        draws = [change[rng.integers(0, n, n)].mean() for _ in range(repeats)]
        out[a] = {
            "change": float(change.mean()),
            "ci": np.percentile(draws, [2.5, 97.5]).tolist(),
            "identity": float((ends[0][1] * ends[1][1]).sum(1).mean()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", action="append", required=True, help="NAME=GENERATOR:LABELS")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--n-edit", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    evaluator, identity = load_predictor("evaluator"), load_predictor("identity")
    truth, _ = render_readings(load_world_config("celeba"), args.n, 1_000_003, 64, evaluator)
    report = {"world": {c: float(m.mean()) for c, m in cell_masks(truth).items()}, "runs": {}}
    for spec in args.run:
        name, _, rest = spec.partition("=")
        generator, _, labels = rest.partition(":")
        source = load_generator(generator)
        k = len(source.mode_attributes)
        t = modes_from_labels(labels, generator)
        rows = np.random.default_rng(args.seed + 2).integers(0, len(t), args.n)
        result = {}
        for setting, coords in (
            ("data modes", t[rows]),
            ("uniform modes", sampled_modes(args.n, k, args.seed + 1)),
        ):
            table, _ = generated_readings(source, args.n, args.seed, evaluator, coords)
            result[setting] = {c: float(m.mean()) for c, m in cell_masks(table).items()}
        result["controllability"] = controllability(
            source, evaluator, identity, args.n_edit, args.seed + 3
        )
        report["runs"][name] = result
        print(name, json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
