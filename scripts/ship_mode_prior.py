"""Write a self-conditioned model folder's data mode distribution (mode-prior.json) from world
renders read by the model's own mode reader.

train-selfcond writes the prior from its labels itself; this script is for a model trained
before it did (world64-sc-v1, shipped as world64-sc until issue 28): the labels of its data
are gone, so the data's modes are read back from renders of the same world by the
discriminator the fine-tune trained.

    python scripts/ship_mode_prior.py --generator world64-sc-v1 --preset celeba --n 4096
"""

from __future__ import annotations

import argparse

import torch

from ganedit.models.modes import ModeLayout, read_modes, save_mode_prior
from ganedit.models.registry import generator_folder, load_mode_reader
from ganedit.models.sources import load_generator
from ganedit.world.config import load_world_config
from ganedit.world.factors import sample_factors
from ganedit.world.render import render


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="world64-sc-v1")
    ap.add_argument("--preset", default="celeba")
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    source = load_generator(args.generator)
    layout = ModeLayout(source.mode_attributes)
    reader = load_mode_reader(args.generator, list(layout.attributes))
    world = load_world_config(args.preset)
    parts = []
    for start in range(0, args.n, 512):
        factors = sample_factors(world, args.seed, start, min(512, args.n - start))
        parts.append(read_modes(reader, render(factors, source.resolution)))
    t = torch.cat(parts)
    origin = (
        f"{args.n} renders of the {args.preset!r} world (seed {args.seed}) read by the model's "
        "mode reader (scripts/ship_mode_prior.py)"
    )
    path = save_mode_prior(generator_folder(args.generator), layout, t, origin)
    print(
        f"{path}: {len(t)} rows; mean t {dict(zip(layout.attributes, t.mean(0).tolist(), strict=True))}"
    )


if __name__ == "__main__":
    main()
