"""Renderer and data-set throughput of the face world.

Reports medians over several repeats (timings on a shared machine are noisy). Usage:
    python benchmarks/bench_world.py [--repeats 5] [--n 4096]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ganedit.world.config import load_world_config
from ganedit.world.dataset import RenderJob, write_world_dataset
from ganedit.world.factors import sample_factors
from ganedit.world.render import render


def _median_rate(fn, n: int, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=4096)
    args = parser.parse_args()
    world = load_world_config("celeba")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats}")
    print("| what | size | images/s (median) |")
    print("|---|---|---|")
    rate = _median_rate(lambda: sample_factors(world, 0, 0, args.n), args.n, args.repeats)
    print(f"| sample factors | - | {rate:,.0f} |")
    for size in (16, 32, 64, 128, 256):
        n = args.n if size <= 64 else args.n // (size // 64) ** 2
        factors = sample_factors(world, 0, 0, n)
        rate = _median_rate(lambda f=factors, s=size: render(f, s), n, args.repeats)
        print(f"| render | {size} | {rate:,.0f} |")
    with tempfile.TemporaryDirectory() as tmp:
        job = RenderJob(n=args.n, size=64)
        for layout in ("w.lmdb", "folder"):
            rate = _median_rate(
                lambda lay=layout: write_world_dataset(world, job, Path(tmp) / lay, progress=False),
                args.n,
                3,
            )
            print(
                f"| render + encode PNG + write ({layout.replace('w.', '')}) | 64 | {rate:,.0f} |"
            )


if __name__ == "__main__":
    main()
