"""Inversion quality and cost on world64: held-out world renders and generated samples.

For each method (optimisation in w, in ws, pivotal tuning from the w pivot): reconstruction
metrics (`ganedit.evaluation.inversion`), split by ground-truth cells for the renders, the
code error for generated samples (their true ws is known), seconds per image and the peak
resident memory of the method (VmHWM, reset before each). Renders come from the celeba
preset with seed 90001, which no training run uses.

    python benchmarks/bench_inversion.py --n 32 --pti-n 16 --json runs/bench_inversion.json
    python benchmarks/bench_inversion.py --n 1000 --methods encoder --json runs/bench_encoder.json

On the renders, `tails_kept` says how many glasses, smiling men and turned heads keep what
makes them a tail (issue 28's encoder targets, `ganedit.evaluation.inversion.tails_kept`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from ganedit.evaluation.inversion import code_error, reconstruction_metrics, summarise
from ganedit.inversion import ProjectorConfig, PTIConfig, default_loss, pivotal_tuning, project
from ganedit.inversion.train_encoder import encode_images
from ganedit.models.registry import load_encoder, load_predictor
from ganedit.models.sources import load_generator
from ganedit.world.config import load_world_config
from ganedit.world.factors import sample_factors
from ganedit.world.render import render

HELD_OUT_SEED = 90001


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _pti_all(source, images, pivots, loss, config) -> tuple[torch.Tensor, list]:
    """Reconstructions [N, 3, H, W] and each image's tuned generator source."""
    out, tuned = [], []
    for i in range(len(images)):
        tuning = pivotal_tuning(source, images[i], pivots[i], loss, config, index=i)
        out.append(tuning.source.synthesize(tuning.pivot[None], "ws")[0])
        tuned.append(tuning.source)
    return torch.stack(out), tuned


def _editability(args, source, ws, evaluator) -> dict:
    """source: world64, or (PTI) each code's own tuned generator."""
    from ganedit.directions.io import load_boundary
    from ganedit.evaluation.inversion import editability

    folder = Path(args.editability)
    directions = {}
    for attribute in ("smile", "gender", "age"):  # glasses cannot be edited on world64
        vector, _ = load_boundary(folder / f"{args.edit_method}_{attribute}.npy")
        directions[attribute] = np.asarray(vector, np.float32).reshape(-1)
    alphas = np.linspace(0.0, 16.0, 33)  # steps of 0.5 along unit directions
    identity = load_predictor("identity")
    return editability(source, ws, directions, evaluator, identity, alphas)


def _print_editability(results: dict) -> None:
    for key, result in results.items():
        for attribute, r in result.get("editability", {}).items():
            print(
                f"edit {key:24s} {attribute:7s} step {r['step']:.2f} off-target "
                f"{r['off_target']:.3f} identity {r['identity']:.3f} "
                f"flipped at 16: {r['flipped_at_last_step']:.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=32, help="renders and generated samples each")
    parser.add_argument("--pti-n", type=int, default=16, help="images tuned by PTI (first n)")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--pti-steps", type=int, default=350)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--methods",
        default="optimize-w,optimize-ws,pti",
        help="comma-separated: encoder, optimize-w, optimize-ws, pti (after optimize-w)",
    )
    parser.add_argument("--encoder", default="world64-encoder", help="for the encoder method")
    parser.add_argument(
        "--editability",
        default=None,
        help="a folder of boundaries <method>_<attribute>.npy (e.g. docs/directions_report/"
        "boundaries): edit each method's codes along them, beside the true codes of the "
        "generated samples",
    )
    parser.add_argument("--edit-method", default="stratified")
    parser.add_argument(
        "--edit-n", type=int, default=200, help="codes edited per method (the first n)"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)

    source = load_generator("world64")
    loss = default_loss()
    evaluator, labeler = load_predictor("evaluator"), load_predictor("labeler")
    factors = sample_factors(load_world_config("celeba"), HELD_OUT_SEED, 0, args.n)
    z = source.sample_z(args.n, seed=HELD_OUT_SEED)
    true_ws = source.to_ws(z, "z")
    sets = {"renders": render(factors, source.resolution), "generated": source.synthesize(z)}
    encoder = load_encoder(args.encoder)["encoder"] if "encoder" in args.methods else None
    report: dict = {"config": vars(args) | {"json": str(args.json)}, "results": {}}

    for set_name, images in sets.items():
        pivots = None
        for method in args.methods.split(","):
            _reset_peak()
            began = time.perf_counter()
            edit_source = source
            if method == "encoder":
                count = len(images)
                found_ws = encode_images(encoder, images)
                encode_rate = count / (time.perf_counter() - began)  # the encoder alone
                recon = source.synthesize(found_ws, "ws", batch_size=256)
            elif method == "pti":
                count = min(args.pti_n, len(images))
                recon, edit_source = _pti_all(
                    source, images[:count], pivots[:count], loss, PTIConfig(steps=args.pti_steps)
                )
                found_ws = pivots[:count]
            else:
                space = method.split("-")[1]
                count = len(images)
                parts, codes = [], []
                for s in range(0, count, args.batch_size):
                    found = project(
                        source, images[s : s + args.batch_size], loss,
                        ProjectorConfig(space=space, steps=args.steps), start=s,
                    )  # fmt: skip
                    parts.append(found.images)
                    codes.append(found.ws(source))
                recon, found_ws = torch.cat(parts), torch.cat(codes)
                if space == "w":
                    pivots = found_ws
            seconds = (time.perf_counter() - began) / count
            metrics = reconstruction_metrics(images[:count], recon, loss, evaluator, labeler)
            if set_name == "generated":
                metrics["code_error"] = code_error(found_ws, true_ws[:count], source.w_avg)
            cells = None
            if set_name == "renders":
                cells = {k: v[:count] for k, v in factors.columns.items()}
            result = summarise(metrics, cells)
            result["seconds_per_image"] = seconds
            result["peak_mb"] = _peak_mb()
            if method == "encoder":
                result["encoder_images_per_s"] = encode_rate
            if args.editability:
                k = min(args.edit_n, count)
                sources = edit_source[:k] if isinstance(edit_source, list) else edit_source
                result["editability"] = _editability(args, sources, found_ws[:k], evaluator)
            report["results"][f"{set_name}/{method}"] = result
            row = result["all"]
            agree = min(row[f"evaluator_agrees_{a}"] for a in ("smile", "gender", "glasses", "age"))
            print(
                f"{set_name:9s} {method:11s} n={count:4d} mse {row['pixel_mse']:.4f} "
                f"perc {row['perceptual']:.4f} id {row['identity_cosine']:.3f} "
                f"min-agree(eval) {agree:.2f} yaw {row['yaw_error']:.1f} "
                f"{seconds:.2f} s/img {result['peak_mb']:.0f} MB",
                flush=True,
            )
            if "tails_kept" in result:
                kept = ", ".join(
                    f"{cell} ({v['n']}) {v['kept']:.2f}"
                    for cell, v in result["tails_kept"].items()
                    if v["kept"] is not None
                )
                print(f"{'':9s} {method:11s} tails kept (labeler): {kept}", flush=True)
            _write(args.json, report)  # after every method: a long run keeps what it measured
    if args.editability:
        report["results"]["generated/true codes"] = {
            "editability": _editability(args, source, true_ws[: args.edit_n], evaluator)
        }
        _print_editability(report["results"])
    _write(args.json, report)


def _write(path: Path | None, report: dict) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=float) + "\n")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
