"""How well the real-face networks (ganedit.models.face_measures; dlib, nobody here trained
them) read the face world, whose truth is known, and one real photograph.

1. Pose (`dlib-pose`) on face-world renders against the true yaw: detection rate, fallback
   share, mean and median absolute error and correlation, over all faces and split into
   detected faces and fallbacks; pitch and roll (the world has none) as spread. On the
   astronaut (scikit-image's public-domain photograph, framed as an aligned crop): its
   mirror flips yaw and roll, and in-plane rotations by +-10 degrees shift roll by that.
2. Mouth proxy (`dlib-mouth`) against the world's smile label: ROC AUC of `smile_proxy` and
   of its two ratios; `--fit-mouth` prints the logistic's constants fitted on a disjoint
   seed (the midpoint of the two classes' median sums, and a quarter of their gap).
3. Identity (`dlib-identity`) on the world: each identity rendered with attributes and yaw
   redrawn (Factors.replace) against renders of other identities, mean cosines and ROC
   AUC of same-vs-different; on the astronaut, the cosine of its mirrored, shifted and
   scaled copies to the original, and of the world's faces to it.

Usage (about 1 minute on 1 core):
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/real_face_networks.py [--n 200]
        [--identities 60] [--size 256] [--seed 7] [--fit-mouth]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from ganedit.models import face_measures as fm
from ganedit.models.face_landmarks import find_faces
from ganedit.utils.images import to_uint8
from ganedit.world.config import load_world_config
from ganedit.world.factors import BINARY_ATTRIBUTES, sample_factors
from ganedit.world.render import render


def world_faces(n: int, seed: int, size: int):
    factors = sample_factors(load_world_config("celeba"), seed, 0, n)
    return factors, to_uint8(render(factors, size))


def framed_astronaut(shift: tuple[int, int] = (0, 0), scale: float = 1.0) -> np.ndarray:
    """The astronaut's face cropped as a framed face: its HOG box where `FALLBACK_BOX` puts
    it in a square crop (what an aligned crop looks like to the networks), 256 px."""
    from PIL import Image
    from skimage import data

    photo = data.astronaut()
    x0, y0, x1, y1 = find_faces(photo)[0].box  # the largest box is the astronaut's face
    fx0, fy0, fx1, fy1 = fm.FALLBACK_BOX
    side = (x1 - x0) / (fx1 - fx0) / scale
    left = x0 - fx0 * side + shift[0] * side / 256
    top = y0 - fy0 * side + shift[1] * side / 256
    crop = Image.fromarray(photo).crop((left, top, left + side, top + side))
    return np.array(crop.resize((256, 256), Image.Resampling.BICUBIC))


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    """In-plane rotation about the centre; positive turns the picture clockwise on screen."""
    from PIL import Image

    pil = Image.fromarray(image).rotate(-degrees, Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))
    return np.array(pil)


def _errors(pred: np.ndarray, true: np.ndarray) -> dict:
    err = np.abs(pred - true)
    r = float(np.corrcoef(pred, true)[0, 1]) if len(true) > 2 else float("nan")
    return {
        "n": len(true),
        "mae": round(float(err.mean()), 2),
        "median_ae": round(float(np.median(err)), 2),
        "r": round(r, 3),
        "slope": round(float(np.polyfit(true, pred, 1)[0]), 3) if len(true) > 2 else None,
    }


def _mean_sd(values: np.ndarray) -> list[float]:
    return [round(float(values.mean()), 2), round(float(values.std()), 2)]


def bench_pose(factors, images) -> dict:
    net = fm.HeadPose()
    out = net.predict(images, batch_size=64)
    found, yaw = net.last_detected, factors["yaw"]
    report = {
        "detection_rate": round(float(found.mean()), 3),
        "fallback_share": round(net.fallback_share, 3),
        "yaw_all": _errors(out["yaw"], yaw),
        "yaw_detected": _errors(out["yaw"][found], yaw[found]),
        "yaw_fallback": _errors(out["yaw"][~found], yaw[~found]),
        "yaw_mae_of_answering_0": round(float(np.abs(yaw).mean()), 2),
        "pitch_mean_sd": _mean_sd(out["pitch"]),
        "roll_mean_sd": _mean_sd(out["roll"]),
    }
    face = framed_astronaut()
    copies = np.stack([face, face[:, ::-1], rotated(face, 10), rotated(face, -10)])
    astro = net.predict(copies)
    report["astronaut"] = {
        "detected": net.last_detected.tolist(),
        "yaw": [round(float(v), 1) for v in astro["yaw"]],
        "pitch": [round(float(v), 1) for v in astro["pitch"]],
        "roll": [round(float(v), 1) for v in astro["roll"]],
        "copies": ["original", "mirrored", "rotated +10 (clockwise)", "rotated -10"],
    }
    return report


def bench_mouth(factors, images) -> dict:
    net = fm.MouthProxy()
    out = net.predict(images, batch_size=64)
    label = factors["smile_label"]
    total = out["mouth_width"] + out["mouth_opening"]
    found = net.last_detected
    return {
        "fallback_share": round(net.fallback_share, 3),
        **{f"auc_{k}": round(float(roc_auc_score(label, v)), 3) for k, v in out.items()},
        "auc_sum_detected": round(float(roc_auc_score(label[found], total[found])), 3),
        "median_sum_smiling": round(float(np.median(total[label > 0])), 3),
        "median_sum_neutral": round(float(np.median(total[label == 0])), 3),
        "mean_proxy_smiling": round(float(out["smile_proxy"][label > 0].mean()), 3),
        "mean_proxy_neutral": round(float(out["smile_proxy"][label == 0].mean()), 3),
        "astronaut": {k: round(float(v[0]), 3) for k, v in net.predict(framed_astronaut()).items()},
    }


def fit_mouth(factors, images) -> dict:
    out = fm.MouthProxy().predict(images, batch_size=64)
    total = out["mouth_width"] + out["mouth_opening"]
    label = factors["smile_label"]
    hi, lo = float(np.median(total[label > 0])), float(np.median(total[label == 0]))
    return {"centre": round((hi + lo) / 2, 3), "scale": round((hi - lo) / 4, 3)}


def counterfactuals(factors, seed: int):
    """Each face again with every attribute flipped at random and a new yaw."""
    rng = np.random.default_rng(seed)
    n = len(factors)
    changes = {a: rng.uniform(0, 1, n).astype(np.float32) for a in BINARY_ATTRIBUTES}
    changes["yaw"] = rng.uniform(-30, 30, n).astype(np.float32)
    return factors.replace(**changes)


def bench_identity(n: int, seed: int, size: int) -> dict:
    net = fm.DlibIdentity()
    factors, first = world_faces(n, seed + 1, size)
    second = to_uint8(render(counterfactuals(factors, seed + 2), size))
    a, b = net.embed(first, 64), net.embed(second, 64)
    same = np.sum(a * b, axis=1)
    other = (a @ b.T)[~np.eye(n, dtype=bool)]
    labels = np.r_[np.ones(len(same)), np.zeros(len(other))]
    face = framed_astronaut()
    copies = np.stack(
        [face, face[:, ::-1], framed_astronaut(shift=(16, 10)), framed_astronaut(scale=0.85)]
    )
    astro = net.embed(copies)
    return {
        "fallback_share": round(net.fallback_share, 3),
        "world_same_identity_cos": round(float(same.mean()), 3),
        "world_other_identity_cos": round(float(other.mean()), 3),
        "world_same_vs_other_auc": round(float(roc_auc_score(labels, np.r_[same, other])), 3),
        "astronaut_copies_cos": {
            "mirrored": round(float(astro[1] @ astro[0]), 3),
            "shifted (16, 10) px of 256": round(float(astro[2] @ astro[0]), 3),
            "zoomed out 0.85": round(float(astro[3] @ astro[0]), 3),
        },
        "astronaut_vs_world_cos_mean_max": [
            round(float((a @ astro[0]).mean()), 3),
            round(float((a @ astro[0]).max()), 3),
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="world faces for pose and mouth")
    parser.add_argument("--identities", type=int, default=60)
    parser.add_argument("--size", type=int, default=256, help="render size of the world")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fit-mouth", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    report: dict = {"args": vars(args)}
    if args.fit_mouth:
        report["mouth_fit"] = fit_mouth(*world_faces(args.n, args.seed + 100, args.size))
    factors, images = world_faces(args.n, args.seed, args.size)
    report["pose"] = bench_pose(factors, images)
    report["mouth"] = bench_mouth(factors, images)
    report["identity"] = bench_identity(args.identities, args.seed, args.size)
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
