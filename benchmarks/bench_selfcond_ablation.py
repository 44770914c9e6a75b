"""Ablations of self-conditioned fine-tunes: several runs side by side, each read the same way.

Per run (a generator folder and the labels store it was trained on): the rare-cell shares at
the modes of its training data and with modes drawn as in training (the evaluator's reading,
against world renders' ground truth), and per mode attribute how far its mode moves the
attribute: the mean achieved change from t = 0 to t = 1 on the same faces (w kept, the other
modes neutral), with a 95% bootstrap interval over faces, and the identity cosine between
the two ends. A mode whose labels carry no attribute moves nothing.

    python benchmarks/bench_selfcond_ablation.py --truth runs/celeba64sc.lmdb/labels.npz \
        --run base=runs/abl/base/g_ema:runs/sc/labels-pred \
        --run l-dist=runs/abl/l-dist/g_ema:runs/sc/labels-dist --json runs/abl.json --md runs/abl.md

(the recipes the committed report compares are in docs/selfcond.md, "Ablations"). Pass the
JSON to bench_selfcond.py --ablations to put the tables in the report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ganedit.evaluation.generator import frechet_distance
from ganedit.evaluation.selfcond import (
    cell_masks,
    evaluator_table,
    generated_readings,
    render_readings,
)
from ganedit.models.modes import NEUTRAL, mode_vector, sampled_modes
from ganedit.models.registry import load_predictor
from ganedit.models.sources import load_generator
from ganedit.selfcond.encoder import modes_from_labels
from ganedit.selfcond.labels import load_labels
from ganedit.world.config import load_world_config


def share_interval(mask: np.ndarray) -> dict:
    """A share and its 95% Wilson interval (binomial; n faces drawn independently)."""
    n, p, z = len(mask), float(mask.mean()), 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"share": p, "ci": [centre - half, centre + half]}


def label_quality(labels: str, truth: Path) -> dict:
    """Spearman rank correlation of each label column with the renders' ground truth."""
    from scipy.stats import spearmanr

    values, record = load_labels(labels)
    table = np.load(truth)
    return {
        a: float(spearmanr(values[:, j], table[a]).statistic)
        for j, a in enumerate(record["attributes"])
        if a in table.files
    }


def _mean_ci(values: np.ndarray, rng, repeats: int) -> list[float]:
    n = len(values)
    draws = [values[rng.integers(0, n, n)].mean() for _ in range(repeats)]
    return np.percentile(draws, [2.5, 97.5]).tolist()


def controllability(source, evaluator, identity, n: int, seed: int, repeats: int = 200) -> dict:
    """Per mode attribute: mean achieved change t = 0 -> 1 and the identity cosine between the
    ends, each with a 95% bootstrap interval over the n faces."""
    attributes = source.mode_attributes
    w = source.to_w(source.sample_z(n, seed))
    rng = np.random.default_rng(seed)
    out = {}
    for k, a in enumerate(attributes):
        ends = []
        for t in (0.0, 1.0):
            coords = torch.full((1, len(attributes)), NEUTRAL)
            coords[0, k] = t
            images = source.synthesize(w, "w", modes=mode_vector(coords, for_generator=True))
            table, _ = evaluator_table(evaluator, images)
            ends.append((table[a], identity.embed(images)))
        change = ends[1][0] - ends[0][0]
        kept = (ends[0][1] * ends[1][1]).sum(1)
        out[a] = {
            "change": float(change.mean()),
            "ci": _mean_ci(change, rng, repeats),
            "identity": float(kept.mean()),
            "identity_ci": _mean_ci(kept, rng, repeats),
        }
    return out


def include_runs(report: dict, earlier: dict, path: Path) -> None:
    """Adds an earlier output's runs; refused when they were read with other settings."""
    for key in ("n", "n_edit", "seed", "world"):
        if earlier.get(key) != report.get(key):
            raise SystemExit(
                f"expected {path} read with {key} = {report.get(key)}, received {earlier.get(key)}"
            )
    report.setdefault("attributes", earlier["attributes"])
    report["runs"].update(earlier["runs"])


def recipe(generator: str) -> dict:
    """A fine-tune's recipe: what its run folder (RUN/g_ema/..) records, or for a shipped or
    exported generator folder what its config.json's `selfcond` record keeps."""
    from ganedit.models.registry import generator_folder

    run = Path(generator).parent / "config.json"
    keys = ("labels", "resample", "init", "iterations", "d_warmup", "md_d", "md_g", "seed")
    if run.is_file():
        saved = json.loads(run.read_text())
        return {k: saved.get(k) for k in keys}
    folder = generator_folder(generator)
    if folder is None:
        return {}
    config = json.loads((folder / "config.json").read_text())
    record = config.get("selfcond", {})
    labels = record.get("labels", {})
    return {
        "labels": labels.get("path") if isinstance(labels, dict) else labels,
        "resample": record.get("resample"),
        "init": record.get("init"),
        "iterations": config.get("iterations"),
        "d_warmup": config.get("train_config", {}).get("d_warmup"),
    }


def describe(recipe: dict) -> str:
    """A run's recipe in a few words (empty for a generator without its run folder)."""
    if not recipe:
        return ""
    resample = Path(recipe["resample"]).name if recipe.get("resample") else "none"
    seed = f", seed {recipe['seed']}" if recipe.get("seed") else ""
    labels = Path(recipe["labels"]).name
    return f"{labels}, {resample}, {recipe['init']}, {recipe['iterations']} it{seed}"


def markdown(report: dict) -> str:
    """Two tables, one line per run: what its labels carry and what its samples cover; how far
    each mode moves its attribute."""
    runs = report["runs"]
    cells = list(report["world"])
    lines = [
        "| run | labels, re-sampling, initialisation, iterations | label rank corr. ("
        + ", ".join(report["attributes"])
        + ") | FD, uniform modes | "
        + " | ".join(f"{c}, data modes".replace("|", "\\|") for c in cells)
        + " |",
        "|---" * (4 + len(cells)) + "|",
        "| world (renders' truth) | | | | "
        + " | ".join(f"{report['world'][c]:.1%}" for c in cells)
        + " |",
    ]
    for name, r in runs.items():
        quality = ", ".join(
            f"{r['label_quality'].get(a, float('nan')):.2f}" for a in report["attributes"]
        )
        shares = " | ".join(
            "{:.1%} [{:.1%}, {:.1%}]".format(r["data modes"][c]["share"], *r["data modes"][c]["ci"])
            for c in cells
        )
        lines.append(
            f"| {name} | {describe(r.get('recipe', {}))} | {quality} | "
            f"{r['frechet_distance']:.1f} | {shares} |"
        )
    lines += [
        "",
        "| run | "
        + " | ".join(f"{a} mode: change t 0 -> 1 (identity)" for a in report["attributes"])
        + " |",
    ]
    lines.append("|---" * (1 + len(report["attributes"])) + "|")
    for name, r in runs.items():
        row = []
        for a in report["attributes"]:
            c = r["controllability"][a]
            fmt = "{:+.1f} [{:+.1f}, {:+.1f}]" if a == "yaw" else "{:+.2f} [{:+.2f}, {:+.2f}]"
            row.append(fmt.format(c["change"], *c["ci"]) + f" ({c['identity']:.2f})")
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", action="append", default=[], help="NAME=GENERATOR:LABELS")
    parser.add_argument(
        "--include",
        action="append",
        type=Path,
        default=[],
        help="an earlier --json output whose runs (read with the same settings) join the tables",
    )
    parser.add_argument("--truth", type=Path, help="labels.npz of the labelled renders")
    parser.add_argument("--order", help="comma-separated run names: the tables' row order")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--n-edit", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--md", type=Path, help="the tables as Markdown")
    args = parser.parse_args()
    torch.set_num_threads(2)
    evaluator, identity = load_predictor("evaluator"), load_predictor("identity")
    truth, truth_features = render_readings(
        load_world_config("celeba"), args.n, 1_000_003, 64, evaluator
    )
    report = {
        "setup": (
            f"Each run read the same way: {args.n} faces at the modes of its own training labels"
            f" (data modes) and {args.n} with t ~ U(0, 1) (uniform modes), by the evaluator; "
            f"shares with 95% Wilson intervals; FD: evaluator features at uniform modes against "
            f"{args.n} world renders; each mode moved from t = 0 to t = 1 on {args.n_edit} faces"
            " (w kept, other modes neutral): mean achieved change [95% bootstrap interval over "
            "faces] and the identity cosine between the ends; label rank correlation: Spearman "
            "against the training renders' ground truth."
        ),
        "n": args.n,
        "n_edit": args.n_edit,
        "seed": args.seed,
        "world": {c: float(m.mean()) for c, m in cell_masks(truth).items()},
        "runs": {},
    }
    for earlier in args.include:
        include_runs(report, json.loads(earlier.read_text()), earlier)
    for spec in args.run:
        name, _, rest = spec.partition("=")
        generator, _, labels = rest.partition(":")
        source = load_generator(generator)
        k = len(source.mode_attributes)
        report.setdefault("attributes", list(source.mode_attributes))
        t = modes_from_labels(labels, generator)
        rows = np.random.default_rng(args.seed + 2).integers(0, len(t), args.n)
        result = {"generator": generator, "labels": labels, "recipe": recipe(generator)}
        if args.truth:
            result["label_quality"] = label_quality(labels, args.truth)
        for setting, coords in (
            ("data modes", t[rows]),
            ("uniform modes", sampled_modes(args.n, k, args.seed + 1)),
        ):
            table, features = generated_readings(source, args.n, args.seed, evaluator, coords)
            result[setting] = {c: share_interval(m) for c, m in cell_masks(table).items()}
            if setting == "uniform modes":
                result["frechet_distance"] = frechet_distance(features, truth_features)
        result["controllability"] = controllability(
            source, evaluator, identity, args.n_edit, args.seed + 3
        )
        report["runs"][name] = result
        print(name, json.dumps(result))
    if args.order:
        names = [n.strip() for n in args.order.split(",")]
        rest = [n for n in report["runs"] if n not in names]
        report["runs"] = {n: report["runs"][n] for n in names + rest if n in report["runs"]}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.md:
        args.md.write_text(markdown(report))


if __name__ == "__main__":
    main()
