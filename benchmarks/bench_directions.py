"""Direction workflow at scale on this machine.

1. `ganedit generate` (synthesis + labeler scores into a latent bank): samples/s and the peak
   resident memory of the process (VmHWM) at several N; memory must not grow with N.
2. Boundary fitting on N latents with 4 attributes (default 1,000,000 x 512): mab, mab exact,
   stratified, regression, interfacegan with the fast solver and with the reference's kernel
   SVM on its default 2% selection. Latents and scores are a synthetic bank of the given
   dimension (fitting time does not depend on where the codes came from). Per method: the
   median seconds of the repeats; that time in units of a same-run float32 2048 x 2048 matmul
   (numpy, the BLAS the fits use); and the fit's own peak memory as a multiple of the
   latents' bytes, measured in one extra run two ways: tracemalloc's peak (every numpy
   allocation, nothing that C libraries such as liblinear allocate themselves) and the rise
   of the process's peak resident memory (VmHWM, reset through /proc/self/clear_refs before
   the fit; everything, including liblinear's copy and BLAS buffers).

Medians over repeats; a same-run matmul is printed as the machine's reference. Usage:
    python benchmarks/bench_directions.py generate --n 20000 200000 [--generator world64]
    python benchmarks/bench_directions.py fit [--n 1000000] [--dim 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def matmul_gflops(repeats: int = 20) -> float:
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return 2 * 1024**3 / _median_seconds(lambda: a @ b, repeats) / 1e9


def _median_seconds(fn, repeats: int) -> float:
    """Median wall time of `fn()` over `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
    args = [sys.executable, "-c", code, "ganedit", "generate", "-g", generator, "-n", str(n),
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


def numpy_matmul_reference(size: int = 2048, repeats: int = 10) -> dict:
    """Median seconds of a float32 size x size matmul with numpy (the fits' BLAS), and GFLOP/s."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    seconds = _median_seconds(lambda: a @ b, repeats)
    return {
        "matmul_size": size,
        "matmul_seconds": seconds,
        "matmul_gflops": 2 * size**3 / seconds / 1e9,
    }


def _resident_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in kB."""
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def _reset_peak_resident() -> bool:
    """Give freed heap memory back to the system, then reset VmHWM to the current VmRSS.

    Without the trim, a fit would reuse memory that earlier runs freed but glibc kept, and its
    peak would not show in VmHWM.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current VmRSS (Linux >= 4.0)
    except OSError:
        return False
    return True


def fit_memory(fit, latent_bytes: int) -> dict:
    """One run of `fit()` under tracemalloc and with the peak resident memory reset."""
    reset = _reset_peak_resident()
    rss_before, _ = _resident_kb()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fit()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    _, hwm = _resident_kb()
    return {
        "peak_traced_x": peak / latent_bytes,
        "peak_rss_x": (hwm - rss_before) * 1024 / latent_bytes if reset else None,
    }


def _fit(estimator, x, scores):
    from sklearn.base import clone

    return clone(estimator).fit(x, scores)


def fit_timings(n: int, dim: int, repeats: int) -> list[dict]:
    from ganedit.directions import ContingencyTable, make_estimator

    x, scores = synthetic_bank(n, dim)
    reference = numpy_matmul_reference()
    print(json.dumps(reference), flush=True)
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
        fit = functools.partial(_fit, make_estimator(method, "glasses", **params), x, scores)
        times = []
        for _ in range(1 if params.get("solver") == "kernel" else repeats):
            start = time.perf_counter()
            est = fit()
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        rows.append(
            {
                "method": method,
                "params": params,
                "seconds": seconds,
                "times": [round(t, 3) for t in times],
                "matmuls": seconds / reference["matmul_seconds"],
                **fit_memory(fit, x.nbytes),
                "cosine_to_planted": float(abs(est.direction_[2])),
                "n_samples": int(est.n_samples_),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print(_markdown(rows, reference))
    return rows


def _markdown(rows: list[dict], reference: dict) -> str:
    lines = [
        f"same-run matmul: {reference['matmul_gflops']:.1f} GFLOP/s "
        f"({reference['matmul_seconds'] * 1e3:.1f} ms for {reference['matmul_size']}^2)",
        "| method | samples used | seconds | in matmuls | peak memory (tracemalloc / RSS) "
        "| cosine to the planted direction |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = r["method"] + "".join(f", {k}={v}" for k, v in r["params"].items() if k != "n")
        rss = "n/a" if r["peak_rss_x"] is None else f"{r['peak_rss_x']:.3f}"
        lines.append(
            f"| {name} | {r['n_samples']:,} | {r['seconds']:.2f} | {r['matmuls']:.1f} "
            f"| {r['peak_traced_x']:.3f} / {rss} | {r['cosine_to_planted']:.5f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--n", type=int, nargs="+", default=[20_000, 200_000])
    gen.add_argument("--generator", default="world64")
    gen.add_argument("--keep", type=Path, default=None, help="Move the largest bank here.")
    fit = sub.add_parser("fit")
    fit.add_argument("--n", type=int, default=1_000_000)
    fit.add_argument("--dim", type=int, default=512)
    fit.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.what == "generate":
        print(json.dumps({"matmul_gflops": matmul_gflops()}), flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            for n in args.n:
                keep = args.keep if n == max(args.n) else None
                print(json.dumps(run_generate(n, args.generator, Path(tmp), keep)), flush=True)
    else:
        fit_timings(args.n, args.dim, args.repeats)


if __name__ == "__main__":
    main()
