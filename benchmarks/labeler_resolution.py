"""How the labeler reads world renders at smaller sizes (resized up to its 64 px input).

A generator trained below 64 px is only as measurable as the labeler's reading of that size:
this prints, per render size, the labeler's marginals and pairwise label correlations minus
the world's exact ones, and the share confident on every attribute. Usage:
    python benchmarks/labeler_resolution.py [--sizes 64 32] [--n 4000]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ganedit.evaluation.generator import label_stats, world_label_stats
from ganedit.models.registry import load_predictor
from ganedit.world.config import BINARY_ATTRIBUTES, load_world_config
from ganedit.world.factors import sample_factors
from ganedit.world.render import render


def labeler_probs(size: int, n: int, seed: int, batch: int = 500) -> np.ndarray:
    world, labeler = load_world_config("celeba"), load_predictor("labeler").eval()
    parts = []
    with torch.no_grad():
        for start in range(0, n, batch):
            pred = labeler.predict(render(sample_factors(world, seed, start, batch), size))
            parts.append(np.stack([pred[a] for a in BINARY_ATTRIBUTES], 1))
    return np.concatenate(parts)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 32])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    exact = world_label_stats(load_world_config("celeba"))
    pairs = list(exact["correlations"])
    print(
        "| size | " + " | ".join(BINARY_ATTRIBUTES) + " | " + " | ".join(pairs) + " | confident |"
    )
    print("|---" * (len(BINARY_ATTRIBUTES) + len(pairs) + 2) + "|")
    for size in args.sizes:
        probs = labeler_probs(size, args.n, args.seed)
        read = label_stats(probs > 0.5)
        gaps = [read["marginals"][a] - exact["marginals"][a] for a in BINARY_ATTRIBUTES]
        gaps += [read["correlations"][k] - exact["correlations"][k] for k in pairs]
        confident = ((probs > 0.9) | (probs < 0.1)).all(1).mean()
        print(f"| {size} | " + " | ".join(f"{g:+.3f}" for g in gaps) + f" | {confident:.3f} |")


if __name__ == "__main__":
    main()
