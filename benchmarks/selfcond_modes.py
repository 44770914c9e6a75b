"""Does a self-conditioned generator keep z alive at its modes? The table of
docs/model_card_world64_sc.md, "Keeping z alive", for any self-conditioned model folder
that ships its data's modes (mode-prior.json).

For each model: the mean pairwise identity cosine (the face world's identity net) and the
evaluator's yaw spread of n faces at the data's modes; then per mode attribute, with every
face's other attributes at its own row of the data's modes, the evaluator's reading at
t = 0 and 1 (the attribute's share, or mean yaw in degrees), the identity cosine among the
faces at each end, and the identity of each face between its ends
(`ganedit.evaluation.generator.at_data_modes`, which `ganedit evaluate-generator` runs
for its `data_modes` and `modes_at_data`).

Usage (about 1 minute per model at n = 128 on 1 core):
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/selfcond_modes.py MODEL [MODEL ...]
        [--n 128] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ganedit.evaluation.generator import at_data_modes
from ganedit.models.modes import load_mode_prior
from ganedit.models.registry import generator_folder, load_identity_embedder, load_predictor
from ganedit.models.sources import load_generator
from ganedit.world.config import load_world_config


def measure(model: str, n: int, seed: int, evaluator, identity, world) -> dict:
    source = load_generator(model)
    if source.mode_layout is None:
        raise SystemExit(f"expected a self-conditioned generator, received {model!r}")
    prior = load_mode_prior(generator_folder(model) or Path(model), source.mode_layout)
    if prior is None:
        raise SystemExit(f"expected {model!r} to ship its data's modes (mode-prior.json)")
    with torch.no_grad():
        figures = at_data_modes(source, world, evaluator, identity, prior, n, n, seed)
    return {"model": model, "n": n, "seed": seed, **figures}


def _end_reading(source_modes: dict, attribute: str, end: str) -> str:
    """The attribute's share at that end, or for yaw its mean in degrees."""
    figures = source_modes[end]
    if attribute in figures["shares"]:
        return f"{figures['shares'][attribute]:.2f}"
    return f"{figures['yaw_mean']:.1f} deg" if attribute == "yaw" else "-"


def summary(result: dict) -> list[str]:
    at = result["data_modes"]
    lines = [
        f"{result['model']}: at the data's modes identity cosine {at['identity_cosine']:.3f}, "
        f"yaw spread {at['yaw_std']:.1f}"
    ]
    for a, m in result["modes_at_data"].items():
        ends = [m["t=0"], m["t=1"]]
        reading = "/".join(_end_reading(m, a, e) for e in ("t=0", "t=1"))
        lines.append(
            f"  {a}: share t=0/1 {reading}; cosine {ends[0]['identity_cosine']:.3f}/"
            f"{ends[1]['identity_cosine']:.3f}; yaw spread {ends[0]['yaw_std']:.1f}/"
            f"{ends[1]['yaw_std']:.1f}; ends identity {m['ends_identity']['mean']:.3f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    evaluator, identity = load_predictor("evaluator"), load_identity_embedder("identity")
    world = load_world_config("celeba")
    results = []
    for model in args.models:
        results.append(measure(model, args.n, args.seed, evaluator, identity, world))
        print("\n".join(summary(results[-1])), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
