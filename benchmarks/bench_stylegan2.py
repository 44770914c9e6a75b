"""StyleGAN2 speed on this machine: synthesis images/s and training iterations/s, reference
formulation against the fast inference path, with the achieved GFLOP/s against a plain
matmul's GFLOP/s measured in the same run.

GFLOP/s always count the reference formulation's FLOPs (torch's registered formulas for
convolutions and matrix products, forward and backward) per image or per iteration, whatever
path ran: a fixed amount of work, so a path's share of the matmul rate rises only with its
images/s. The cases are timed round-robin (one call of each per round, with a matmul between
rounds) and each figure is the median over rounds, so a busy spell of the shared machine
slows every case alike. Usage:
    python benchmarks/bench_stylegan2.py --style-dim 128 --channels 64,64,32,32,16  # world64
    python benchmarks/bench_stylegan2.py  # 64 px, style 256, 64 channels at every resolution
    options: --batches 16,256 --repeats 7 --no-training --compile
    /usr/bin/time -v python benchmarks/bench_stylegan2.py --generate 5000 [--synthesis reference]
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

from ganedit.datasets import ImageDataset
from ganedit.models.stylegan2 import Generator, networks
from ganedit.training.gan import BatchSampler, GanConfig, gan_step, setup_gan
from ganedit.utils.context import RunContext
from ganedit.world.config import load_world_config
from ganedit.world.dataset import RenderJob, write_world_dataset


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


def _round_robin(cases: dict, repeats: int) -> tuple[dict, float]:
    """Median seconds per case over `repeats` rounds, and the median matmul GFLOP/s."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)

    def matmul_gflops() -> float:
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        return 10 * 2 * 1024**3 / (time.perf_counter() - start) / 1e9

    for fn in cases.values():  # warm-up
        fn()
    seconds = {name: [] for name in cases}
    peaks = [matmul_gflops()]
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
        peaks.append(matmul_gflops())
    return {k: statistics.median(v) for k, v in seconds.items()}, statistics.median(peaks)


def _with_synthesis_impl(choose, fn):
    """fn with `synthesis(impl="auto")` resolved by choose() (gan.py passes no impl)."""
    resolve = networks.resolve_synthesis_impl

    def wrapped():
        networks.resolve_synthesis_impl = lambda _impl, _device: choose()
        try:
            return fn()
        finally:
            networks.resolve_synthesis_impl = resolve

    return wrapped


def synthesis_table(args, generators: dict) -> None:
    z = torch.randn(max(args.batches), args.style_dim)
    g_ref = generators["input"]
    with torch.no_grad():
        ws = {n: g_ref.mapping(z[:n]) for n in args.batches}
        per_image = _flops(lambda: g_ref.synthesis(ws[16], impl="reference")) / 16
    print(f"reference synthesis: {per_image / 1e6:.2f} MFLOP per image")
    cases, labels = {}, {}
    for n in args.batches:
        for label, modconv, impl in [
            ("reference, input modulation (before: `auto` on CPU)", "input", "reference"),
            ("reference, grouped per-sample weights", "grouped", "reference"),
            ("fast path (now: `auto` on CPU)", "input", "fast"),
        ]:
            g = generators[modconv]
            cases[(label, n)] = lambda g=g, w=ws[n], i=impl: g.synthesis(w, impl=i)
            labels[(label, n)] = label
    if args.compile:
        for n in args.batches:
            compiled, seconds = _compiled(generators["input"], ws[n])
            cases[("reference + torch.compile", n)] = lambda f=compiled, w=ws[n]: f(w)
            print(f"torch.compile of the reference synthesis, batch {n}: {seconds:.0f} s")
    with torch.no_grad():
        seconds, peak = _round_robin(cases, args.repeats)
    print(f"matmul 1024x1024 fp32, same run: {peak:.1f} GFLOP/s")
    print("| path | batch | images/s | GFLOP/s (reference count) | share of matmul |")
    print("|---|---|---|---|---|")
    for (label, n), s in seconds.items():
        gflops = per_image * n / s / 1e9
        print(f"| {label} | {n} | {n / s:.1f} | {gflops:.1f} | {gflops / peak:.0%} |")


def _compiled(g: Generator, ws: torch.Tensor):
    # Optional only: the library never compiles. Needs a C++ compiler (gcc) on PATH; the
    # seconds include the first call. The fast path is not compiled: its chunk loop would
    # be unrolled (minutes) and its ops are already the big oneDNN kernels.
    compiled = torch.compile(lambda w: g.synthesis(w, impl="reference"), dynamic=False)
    start = time.perf_counter()
    with torch.no_grad():
        compiled(ws)
    return compiled, time.perf_counter() - start


def training_table(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = write_world_dataset(
            load_world_config("celeba"),
            RenderJob(n=256, size=args.size),
            Path(tmp) / "d.lmdb",
            ctx=RunContext(progress=False),
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
            batch=16,
        )
        sampler = BatchSampler(ImageDataset(cfg.data), cfg)
        # Average over a full lazy-regularisation cycle (R1 every 16, path length every 4).
        cycle = max(cfg.d_reg_every, cfg.g_reg_every)
        paths = {
            "reference (before)": lambda: "reference",
            "fast path under no_grad only (the discriminator step's fakes)": lambda: (
                "reference" if torch.is_grad_enabled() else "fast"
            ),
            "fast path, with autograd too (now: `auto` on CPU)": lambda: "fast",
        }
        cases = {}
        for label, choose in paths.items():
            state = setup_gan(cfg)
            cases[label] = _with_synthesis_impl(
                choose, lambda state=state: [gan_step(state, cfg, sampler) for _ in range(cycle)]
            )
        reference = setup_gan(cfg)
        count = _with_synthesis_impl(
            lambda: "reference", lambda: [gan_step(reference, cfg, sampler) for _ in range(cycle)]
        )
        flops = _flops(count) / cycle
        seconds, peak = _round_robin(cases, max(3, args.repeats // 2))
    print(f"training, batch 16, {cycle}-iteration cycles: reference {flops / 1e9:.2f} GFLOP/it")
    print(f"matmul 1024x1024 fp32, same run: {peak:.1f} GFLOP/s")
    print("| synthesis path in training | it/s | images/s | GFLOP/s (reference count) | share |")
    print("|---|---|---|---|---|")
    for label, s in seconds.items():
        per_it = s / cycle
        gflops = flops / per_it / 1e9
        print(
            f"| {label} | {1 / per_it:.2f} | {16 / per_it:.1f} | {gflops:.1f} | {gflops / peak:.0%} |"
        )


def generate(n: int, synthesis: str) -> None:
    """The end-to-end figure: a world64 latent bank (synthesis, labeler scores, zarr store);
    synthesis "reference" is what `auto` ran before the fast path existed."""
    from ganedit.latents import GenerateConfig, generate_bank

    with tempfile.TemporaryDirectory() as tmp:

        def run():
            config = GenerateConfig(generator="world64", n=n, seed=0)
            generate_bank(config, Path(tmp) / "bank.zarr", ctx=RunContext(progress=False))

        if synthesis == "reference":
            run = _with_synthesis_impl(lambda: "reference", run)
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
    print(f"generate_bank world64, n={n}, synthesis {synthesis}: {n / seconds:.1f} samples/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--style-dim", type=int, default=256)
    parser.add_argument("--n-mlp", type=int, default=4)
    parser.add_argument("--channel-max", type=int, default=64)
    parser.add_argument("--channels", type=lambda t: tuple(int(v) for v in t.split(",")))
    parser.add_argument("--path-regularize", type=float, default=2.0)
    parser.add_argument(
        "--batches", type=lambda t: [int(v) for v in t.split(",")], default=[16, 256]
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (optional)")
    parser.add_argument(
        "--generate",
        type=int,
        metavar="N",
        help="instead: one generate_bank of N samples from world64 (time the process from outside)",
    )
    parser.add_argument("--synthesis", choices=("auto", "reference"), default="auto")
    args = parser.parse_args()
    if args.generate:
        generate(args.generate, args.synthesis)
        return
    args.batches = sorted(set(args.batches) | {16})
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, config {vars(args)}")
    generators = {}
    for modconv in ("input", "grouped"):
        torch.manual_seed(0)  # the same weights for both forms
        generators[modconv] = Generator(
            args.size,
            args.style_dim,
            args.n_mlp,
            channel_multiplier=1,
            channel_max=args.channel_max,
            modconv_impl=modconv,
            channels=args.channels,
        ).eval()
    synthesis_table(args, generators)
    if not args.no_training:
        training_table(args)


if __name__ == "__main__":
    main()
