"""StyleGAN2 speed on this machine: synthesis images/s, training iterations/s, and the
achieved GFLOP/s against a plain matmul's GFLOP/s measured in the same run.

Medians over repeats; compare ratios, not absolute times (the machine is shared). Usage:
    python benchmarks/bench_stylegan2.py [--size 64] [--channel-max 64] [--repeats 5]
    python benchmarks/bench_stylegan2.py --style-dim 128 --channels 64,64,32,32,16  # world64
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from ganedit.models.stylegan2 import Generator
from ganedit.training.gan import BatchSampler, GanConfig, gan_step, setup_gan
from ganedit.world.config import load_world_config
from ganedit.world.dataset import ImageDataset, RenderJob, write_world_dataset


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class _FlopCount(TorchDispatchMode):
    # torch's FlopCounterMode tracks modules and trips over no_grad sections; this counts
    # the same registered formulas (convolutions, matmuls, their backward) without that.
    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def _flops(fn) -> int:
    with _FlopCount() as counter:
        fn()
    return counter.total


def matmul_gflops(repeats: int) -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return 2 * 1024**3 / _median_seconds(lambda: a @ b, repeats * 4) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--style-dim", type=int, default=256)
    parser.add_argument("--n-mlp", type=int, default=4)
    parser.add_argument("--channel-max", type=int, default=64)
    parser.add_argument("--channels", type=lambda t: tuple(int(v) for v in t.split(",")))
    parser.add_argument("--path-regularize", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, config {vars(args)}")
    peak = matmul_gflops(args.repeats)
    print(f"matmul 1024x1024 fp32: {peak:.1f} GFLOP/s")

    print("| modconv | synthesis images/s | synthesis GFLOP/s | share of matmul |")
    print("|---|---|---|---|")
    z = torch.randn(args.batch, args.style_dim)
    for impl in ("input", "grouped"):
        g = Generator(
            args.size,
            args.style_dim,
            args.n_mlp,
            channel_multiplier=1,
            channel_max=args.channel_max,
            modconv_impl=impl,
            channels=args.channels,
        ).eval()
        with torch.no_grad():
            ws = g.mapping(z)
            seconds = _median_seconds(lambda g=g, ws=ws: g.synthesis(ws), args.repeats)
            flops = _flops(lambda g=g, ws=ws: g.synthesis(ws))
        gflops = flops / seconds / 1e9
        print(f"| {impl} | {args.batch / seconds:.1f} | {gflops:.1f} | {gflops / peak:.0%} |")

    with tempfile.TemporaryDirectory() as tmp:
        data = write_world_dataset(
            load_world_config("celeba"),
            RenderJob(n=256, size=args.size),
            Path(tmp) / "d.lmdb",
            progress=False,
        )
        cfg = GanConfig(
            data=str(data),
            size=args.size,
            style_dim=args.style_dim,
            n_mlp=args.n_mlp,
            channel_multiplier=1,
            channel_max=args.channel_max,
            channels=args.channels,
            path_regularize=args.path_regularize,
            batch=args.batch,
        )
        state = setup_gan(cfg)
        sampler = BatchSampler(ImageDataset(cfg.data), cfg)
        # Average over a full lazy-regularisation cycle (R1 every 16, path length every 4).
        cycle = max(cfg.d_reg_every, cfg.g_reg_every)
        seconds = (
            _median_seconds(
                lambda: [gan_step(state, cfg, sampler) for _ in range(cycle)],
                max(1, args.repeats // 2),
            )
            / cycle
        )
        flops = _flops(lambda: [gan_step(state, cfg, sampler) for _ in range(cycle)]) / cycle
    gflops = flops / seconds / 1e9
    print(
        f"training: {1 / seconds:.2f} it/s ({args.batch / seconds:.1f} images/s), {gflops:.1f} GFLOP/s = {gflops / peak:.0%} of matmul"
    )


if __name__ == "__main__":
    main()
