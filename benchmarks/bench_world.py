"""Renderer and data-set throughput of the face world.

Reports medians over several repeats (timings on a shared machine are noisy). Usage:
    python benchmarks/bench_world.py [--repeats 5] [--n 4096]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from ganedit.utils.context import RunContext
from ganedit.world.config import load_world_config
from ganedit.world.dataset import RenderJob, write_world_dataset
from ganedit.world.factors import sample_factors
from ganedit.world.render import render

QUIET = RunContext(progress=False)


def _median_rate(fn, n: int, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


_PEAK_RSS = """
import sys
from ganedit.world.config import load_world_config
from ganedit.utils.context import RunContext
from ganedit.world.dataset import RenderJob, write_world_dataset
write_world_dataset(load_world_config("celeba"), RenderJob(n=int(sys.argv[1])), sys.argv[2],
                    ctx=RunContext(progress=False))
# VmHWM belongs to this process image; ru_maxrss would carry the parent's peak across exec.
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024)
"""


def peak_rss_mb(n: int, out: Path) -> float:
    """Peak resident memory of a fresh process rendering n images to an LMDB."""
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, str(n), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(proc.stdout.strip())


def matmul_gflops(repeats: int) -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    rate = _median_rate(lambda: a @ b, 1, repeats * 4)
    return rate * 2 * 1024**3 / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=4096)
    args = parser.parse_args()
    world = load_world_config("celeba")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats}")
    print(
        f"machine reference, same run: matmul 1024x1024 fp32 {matmul_gflops(args.repeats):.0f} GFLOP/s"
    )
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
                lambda lay=layout: write_world_dataset(world, job, Path(tmp) / lay, ctx=QUIET),
                args.n,
                3,
            )
            print(
                f"| render + encode PNG + write ({layout.replace('w.', '')}) | 64 | {rate:,.0f} |"
            )
        # Streaming: peak memory must not grow with n.
        for n in (2_000, 20_000, 100_000):
            peak = peak_rss_mb(n, Path(tmp) / f"{n}.lmdb")
            print(f"peak memory rendering {n:,} images (64 px) to an LMDB: {peak:.0f} MB")


if __name__ == "__main__":
    main()
