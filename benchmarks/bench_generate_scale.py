"""`generate` (synthesis + scoring into a latent bank) per generator resolution.

For each resolution, a fresh process builds a random-weight StyleGAN2 generator of the
config-f width by default (style_dim 512, 8 mapping layers, channel_multiplier 2,
channel_max 512: 512 channels up to 64 px, then 256, 128, 64, 32 at 128, 256, 512, 1024 px,
the FFHQ-1024 layout), runs `generate_bank` on N samples with the given predictor (default
the shipped 64 px `labeler`) and reports images/s of the whole call (synthesis + scoring +
writing; the one-image shape probe included) and the peak resident memory of the process
(VmHWM: the weights, one batch of images, one chunk of latents and scores). Random weights
cost the same as trained ones.

Usage (one thread, as the numbers in docs/models.md should be measured):
    OMP_NUM_THREADS=1 python benchmarks/bench_generate_scale.py --n 32
    OMP_NUM_THREADS=1 python benchmarks/bench_generate_scale.py --resolutions 64 128 --n 8
    python benchmarks/bench_generate_scale.py --resolutions 1024 --n 256 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def worker(args: argparse.Namespace) -> dict:
    """One resolution in this process: build, generate, measure."""
    import torch

    from ganedit.latents import GenerateConfig, generate_bank
    from ganedit.models.registry import load_predictor
    from ganedit.models.sources import StyleGANSource
    from ganedit.models.stylegan2 import Generator
    from ganedit.utils.context import RunContext

    torch.manual_seed(0)
    g = Generator(args.resolution, style_dim=512, n_mlp=8, channel_multiplier=2,
                  channel_max=args.channel_max).eval().to(args.device)  # fmt: skip
    g.update_w_avg(n=1024, generator=torch.Generator().manual_seed(0))
    source = StyleGANSource(g, f"random{args.resolution}", truncation_psi=1.0)
    predictor = None if args.predictor == "none" else load_predictor(args.predictor, args.device)
    cfg = GenerateConfig(generator=source.name, predictor=args.predictor, n=args.n,
                         chunk_size=max(args.n, 1), batch_size=args.batch_size)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate_bank(cfg, Path(tmp) / "bank.zarr", source=source, predictor=predictor,
                      ctx=RunContext(args.device, progress=False))  # fmt: skip
        seconds = time.perf_counter() - start
    channels = [g.channels[2**k] for k in range(2, g.log_size + 1)]
    return {
        "resolution": args.resolution,
        "channels": f"{channels[0]} ... {channels[-1]}",
        "params_m": sum(p.numel() for p in g.parameters()) / 1e6,
        "n": args.n,
        "batch_size": args.batch_size,
        "predictor": args.predictor,
        "seconds": seconds,
        "images_per_s": args.n / seconds,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _markdown(rows: list[dict], threads: str) -> str:
    lines = [
        f"OMP_NUM_THREADS={threads}; predictor {rows[0]['predictor']}; batch "
        f"{rows[0]['batch_size']}",
        "",
        "| resolution | channels (4 px ... top) | params (M) | N | seconds | images/s | "
        "peak RSS (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['resolution']} | {r['channels']} | {r['params_m']:.1f} | {r['n']} | "
            f"{r['seconds']:.1f} | {r['images_per_s']:.2f} | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--n", type=int, default=32, help="Samples per resolution.")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--predictor", default="labeler", help="labeler, none, py:..., ...")
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        args.resolution = args.worker
        print(json.dumps(worker(args)))
        return
    rows = []
    for resolution in args.resolutions:
        # A process per resolution, so each peak resident memory is its own.
        cmd = [sys.executable, __file__, "--worker", str(resolution), "--n", str(args.n),
               "--batch-size", str(args.batch_size), "--predictor", args.predictor,
               "--channel-max", str(args.channel_max), "--device", args.device]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(_markdown(rows, os.environ.get("OMP_NUM_THREADS", "unset")))


if __name__ == "__main__":
    main()
