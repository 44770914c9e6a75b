"""Directions of `dcgan-digiface` measured across the real-face networks (dlib; nobody here
trained them, nor the generator): what `ganedit evaluate` cannot measure with one evaluator.

`ganedit evaluate` measures a direction with one evaluator whose probability attribute is the
target: smile_proxy directions with `--evaluator dlib-mouth`, whose other outputs are the
mouth's own ratios. It refuses yaw, a value. This script scores every edit with all three
networks at once (dlib-pose, dlib-mouth, dlib-identity) so that each direction's drift is read
on the other network: how far a smile_proxy edit turns the head (degrees of yaw, pitch,
roll), how much a yaw edit changes the mouth, and the identity cosine at matched flips.

For each boundary: held-out latents (`--seed`, a seed no bank uses), each moved toward the
opposite side of its target over a grid of latent steps (0 .. `--max-step`, the same grid for
every method); a smile_proxy sample flips when its probability crosses 0.5, a yaw sample when
its yaw crosses the held-out median. At the steps where 50% and 90% flipped (interpolated,
`ganedit.evaluation.directions.matched`): the mean |change| of every output, the identity
cosine, and the same over the samples dlib detected at the start (the others were read in the
fallback box). Also each network's fallback share per step, the held-out ROC AUC of the
direction, and yaw's slope in degrees per latent unit.

`--identity-baseline` gives only the identity cosines between different held-out faces (the
floor against which an edit's identity cosine is read).

Usage (docs/dcgan_digiface_report.md; about 0.3 s per image on one core, mostly the identity
network: 7 boundaries x 9 steps x 100 samples took 34 min on a shared 2-core machine):
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcgan_digiface.py \
        -b DIR/*.npy --n 100 --steps 8 --max-step 6 -o cross.json
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dcgan_digiface.py --identity-baseline \
        --n 100 -o identity_baseline.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ganedit.directions.io import load_boundary
from ganedit.editing.edit import sample_latents
from ganedit.evaluation.directions import LEVELS, EditTrace, matched
from ganedit.models.registry import load_attribute_predictor, load_identity_embedder
from ganedit.models.sources import load_generator
from ganedit.utils.stats import roc_auc

GENERATOR = "dcgan-digiface"
NETWORKS = ("dlib-mouth", "dlib-pose")
COLUMNS = ("smile_proxy", "mouth_width", "mouth_opening", "yaw", "pitch", "roll")


class Networks:
    """The two attribute networks and the identity embedder, scoring one batch of latents."""

    def __init__(self, batch_size: int):
        self.nets = [load_attribute_predictor(n, foreign=True) for n in NETWORKS]
        self.identity = load_identity_embedder("dlib-identity")
        self.batch_size = batch_size

    def score(self, source, z: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Table [N, 6] (COLUMNS), identity embeddings [N, 128], detected [N, 3] (mouth,
        pose, identity: whether dlib found the face rather than reading the fallback box)."""
        images = source.synthesize(z, "z", batch_size=self.batch_size)
        scores, detected = {}, []
        for net in self.nets:
            scores.update(net.predict(images, batch_size=self.batch_size))
            detected.append(net.last_detected)
        embed = self.identity.embed(images, batch_size=self.batch_size)
        detected.append(self.identity.last_detected)
        table = np.stack([np.asarray(scores[c], np.float64) for c in COLUMNS], axis=1)
        return table, np.asarray(embed, np.float64), np.stack(detected, axis=1)


def side(table: np.ndarray, k: int, split: float) -> np.ndarray:
    return table[:, k] >= split


def trace(source, nets, z, base, vector, k, split, alphas):
    """EditTrace over `alphas` (every sample moved toward its target's other side), and the
    detection flags [S, N, 3] per step."""
    table0, embed0, _ = base
    label = side(table0, k, split)
    toward = torch.from_numpy(np.where(label, -1.0, 1.0).astype(np.float32))[:, None]
    d = torch.from_numpy(np.asarray(vector, np.float32))[None]
    flipped, change, signed, ident, found = [], [], [], [], []
    for alpha in alphas:
        table, embed, detected = nets.score(source, z + float(alpha) * toward * d)
        delta = table - table0
        flipped.append(side(table, k, split) != label)
        change.append(np.abs(delta))
        signed.append(delta * toward.numpy())
        ident.append((embed * embed0).sum(1))
        found.append(detected)
    arrays = (flipped, change, signed, ident)
    return EditTrace(np.asarray(alphas, np.float64), *(np.stack(a) for a in arrays)), np.stack(
        found
    )


def at_level(tr: EditTrace, level: float, rows: np.ndarray) -> dict:
    point = matched(tr, level, rows)
    return {
        "step": point["step"],
        "identity": point["identity"],
        "change": dict(zip(COLUMNS, np.asarray(point["change"]).tolist(), strict=True)),
        "n": len(rows),
    }


def measure(source, nets, z, base, path: Path, alphas) -> dict:
    vector, meta = load_boundary(path)
    attribute = meta.get("attribute")
    k = COLUMNS.index(attribute)
    split = 0.5 if attribute == "smile_proxy" else float(np.median(base[0][:, k]))
    tr, found = trace(source, nets, z, base, vector, k, split, alphas)
    label = side(base[0], k, split)
    decision = z.numpy().astype(np.float64) @ np.asarray(vector, np.float64)
    detected_rows = np.flatnonzero(base[2].all(axis=1))
    out = {
        "boundary": path.name,
        "method": meta.get("method"),
        "attribute": attribute,
        "split": split,
        "auc": roc_auc(decision[label], decision[~label]),
        "curve": {
            "step": tr.alphas.tolist(),
            "flip_rate": tr.flipped.mean(1).tolist(),
            "identity": tr.identity.mean(1).tolist(),
            "signed": dict(zip(COLUMNS, tr.signed.mean(1).T.tolist(), strict=True)),
            "fallback_share": dict(
                zip((*NETWORKS, "dlib-identity"), (1 - found.mean(1)).T.tolist(), strict=True)
            ),
        },
        "matched": {
            str(int(lv * 100)): {
                "all": at_level(tr, lv, np.arange(len(z))),
                "detected_at_start": at_level(tr, lv, detected_rows),
            }
            for lv in LEVELS
        },
    }
    if attribute == "yaw":  # degrees per latent unit over the first third of the grid
        third = max(1, len(alphas) // 3)
        out["yaw_degrees_per_unit"] = float(tr.signed[third, :, k].mean() / alphas[third])
    return out


def pair_cosines(embed: np.ndarray, detected: np.ndarray) -> dict:
    """Identity cosines between different held-out faces: the floor an edit's cosine is read
    against (dlib's own same-person threshold, Euclidean 0.6, is a cosine of 0.82)."""
    upper = np.triu_indices(len(embed), 1)
    cos = (embed @ embed.T)[upper]
    both = (detected[:, None] & detected[None, :])[upper]
    return {
        "pairs_mean": float(cos.mean()),
        "pairs_p5_p50_p95": np.percentile(cos, [5, 50, 95]).tolist(),
        "detected_pairs_mean": float(cos[both].mean()),
        "share_above_0.82": float((cos > 0.82).mean()),
        "fallback_share": float(1 - detected.mean()),
    }


def identity_baseline(n: int, seed: int, batch_size: int) -> dict:
    source = load_generator(GENERATOR)
    identity = load_identity_embedder("dlib-identity")
    images = source.synthesize(sample_latents(source, n, seed, "z"), "z", batch_size=batch_size)
    embed = np.asarray(identity.embed(images, batch_size=batch_size), np.float64)
    return pair_cosines(embed, identity.last_detected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-b", "--boundary", nargs="+", type=Path)
    parser.add_argument(
        "--identity-baseline", action="store_true",
        help="only the identity cosines between different held-out faces",
    )  # fmt: skip
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=424242)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--max-step", type=float, default=6.0)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    if args.identity_baseline:
        out = identity_baseline(args.n, args.seed, args.batch_size)
        out["seconds"] = time.perf_counter() - started
        args.out.write_text(json.dumps(out))
        print(json.dumps(out))
        return
    if not args.boundary:
        parser.error("expected -b BOUNDARY... (or --identity-baseline)")
    source = load_generator(GENERATOR)
    nets = Networks(args.batch_size)
    z = sample_latents(source, args.n, args.seed, "z")
    base = nets.score(source, z)
    alphas = np.linspace(0.0, args.max_step, args.steps + 1)
    results = [measure(source, nets, z, base, p, alphas) for p in args.boundary]
    report = {
        "generator": GENERATOR,
        "n": args.n,
        "seed": args.seed,
        "grid": alphas.tolist(),
        "held_out_fallback_share": dict(
            zip((*NETWORKS, "dlib-identity"), (1 - base[2].mean(0)).tolist(), strict=True)
        ),
        "held_out_detected_by_all": float(base[2].all(axis=1).mean()),
        "identity_between_faces": pair_cosines(base[1], base[2][:, 2]),
        "directions": results,
        "seconds": time.perf_counter() - started,
    }
    args.out.write_text(json.dumps(report, indent=1))
    for r in results:
        m = r["matched"]["90"]["all"]
        print(
            f"{r['attribute']:12s} {r['method']:13s} auc {r['auc']:.3f} step90 {m['step']:.2f} "
            f"id {m['identity']:.3f} " + " ".join(f"{c} {m['change'][c]:.3f}" for c in COLUMNS)
        )
    print(f"{report['seconds']:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
