"""Direction workflow at scale on this machine.

1. `ganedit generate` (synthesis + labeler scores into a latent bank): samples/s and the peak
   resident memory of the process (VmHWM) at several N; memory must not grow with N.
2. Boundary fitting on N latents with 4 attributes (default 1,000,000): mab, mab exact,
   stratified, regression, interfacegan with the fast solver and with the reference's kernel
   SVM on its default 2% selection. Latents and scores are a synthetic bank of the given
   dimension (fitting time does not depend on where the codes came from).

Medians over repeats; a same-run matmul GFLOP/s is printed as the machine's reference. Usage:
    python benchmarks/bench_directions.py generate --n 20000 200000 [--generator world64]
    python benchmarks/bench_directions.py fit [--n 1000000] [--dim 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def matmul_gflops(repeats: int = 20) -> float:
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * 1024**3 / statistics.median(times) / 1e9


def run_generate(n: int, generator: str, out: Path, keep: Path | None) -> dict:
    """One `ganedit generate` process; peak memory read from /proc just before it exits."""
    bank = out / f"bank_{n}.zarr"
    # A tiny wrapper prints the process's own VmHWM after the work, so no polling is needed.
    code = (
        "import sys\nfrom ganedit.cli import main\nsys.argv = sys.argv[1:]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    status = e.code or 0\nelse:\n    status = 0\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1],"
        " file=sys.stderr)\nsys.exit(status)"
    )
    args = [sys.executable, "-c", code, "ganedit", "generate", "-m", generator, "-n", str(n),
            "-o", str(bank), "--no-progress"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    peak_kb = int(proc.stderr.strip().splitlines()[-1])
    if keep is not None:
        shutil.move(str(bank), str(keep))
    return {"n": n, "seconds": seconds, "samples_per_s": n / seconds, "peak_rss_mb": peak_kb / 1024}


def synthetic_bank(n: int, dim: int, seed: int = 0):
    """Latents [n, dim] with 4 correlated attributes planted on the first coordinates."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    states = np.empty((n, 4), np.float32)
    states[:, 0] = rng.random(n) < 0.5
    for k in range(1, 4):
        copy = rng.random(n) < 0.6
        states[:, k] = np.where(copy, states[:, k - 1], rng.random(n) < 0.4)
    x[:, :4] += 2.0 * (states - 0.5)
    logits = 3.0 * x[:, :4]
    names = ("smile", "gender", "glasses", "age")
    scores = {a: 1 / (1 + np.exp(-logits[:, k])) for k, a in enumerate(names)}
    return x, scores


def fit_timings(n: int, dim: int, repeats: int) -> list[dict]:
    from ganedit.directions import ContingencyTable, make_estimator

    x, scores = synthetic_bank(n, dim)
    table = ContingencyTable.from_scores(scores, None, 0.9)
    mab_n = table.max_balanced_size
    plans = [
        ("mab", dict(n=mab_n)),
        ("mab", dict(n=mab_n, quota="exact")),
        ("stratified", {}),
        ("regression", {}),
        ("interfacegan", dict(solver="fast")),
        ("interfacegan", dict(solver="kernel")),
    ]
    rows = []
    for method, params in plans:
        times = []
        for _ in range(1 if params.get("solver") == "kernel" else repeats):
            start = time.perf_counter()
            est = make_estimator(method, "glasses", **params).fit(x, scores)
            times.append(time.perf_counter() - start)
        rows.append(
            {
                "method": method,
                "params": params,
                "seconds": statistics.median(times),
                "runs": len(times),
                "cosine_to_planted": float(abs(est.direction_[2])),
                "n_samples": int(est.n_samples_),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--n", type=int, nargs="+", default=[20_000, 200_000])
    gen.add_argument("--generator", default="world64")
    gen.add_argument("--keep", type=Path, default=None, help="Move the largest bank here.")
    fit = sub.add_parser("fit")
    fit.add_argument("--n", type=int, default=1_000_000)
    fit.add_argument("--dim", type=int, default=128)
    fit.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps({"matmul_gflops": matmul_gflops()}), flush=True)
    if args.what == "generate":
        with tempfile.TemporaryDirectory() as tmp:
            for n in args.n:
                keep = args.keep if n == max(args.n) else None
                print(json.dumps(run_generate(n, args.generator, Path(tmp), keep)), flush=True)
    else:
        fit_timings(args.n, args.dim, args.repeats)


if __name__ == "__main__":
    main()
