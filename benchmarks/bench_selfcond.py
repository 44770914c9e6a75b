"""The self-conditioned GAN measured against the world's truth: tails and the paper's protocol.

Writes report.json, report.md and identity.png into --out (docs/selfcond_report for the
committed report). Every number is read by the evaluator and the identity embedder
(`ganedit.evaluation.selfcond`); the labeler, which may have labelled the training data,
is never used.

    python benchmarks/bench_selfcond.py --sc world64-sc --out docs/selfcond_report
    python benchmarks/bench_selfcond.py --sc runs/world64-sc/g_ema --n-tails 1000 \
        --n-renders 2000 --n-edit 100 --out runs/selfcond_report_small

Tails: --n-tails faces per generator setting (world64; world64-sc with modes drawn as in
training and at the neutral mode) against --n-renders world renders (celeba preset, seed
1000003, as the model card's Frechet distances). Protocol: --n-edit faces (seed 424242, the
directions study's held-out seed), each attribute edited by its mode on world64-sc and by
the latent direction on world64 (--method's boundaries; yaw by the continuous regression
direction, --yaw-direction), and by the same directions on world64-sc at its neutral mode.
Diversity (`ganedit.evaluation.diversity`): mean pairwise identity cosine of --n-identity
faces and improved precision/recall (evaluator features, k=--k) of --n-pr faces against as
many world renders, for world64 and world64-sc (neutral mode, modes as in training); per
mode of world64-sc forced to 0 and 1 (--n-modes faces each, same z), the other attributes'
shares against the world's conditional shares and the identity between the mode's ends.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from ganedit.directions.io import load_boundary
from ganedit.evaluation.direction_report import json_safe
from ganedit.evaluation.diversity import diversity_report
from ganedit.evaluation.selfcond import (
    CELLS,
    edges_for,
    edit_figures,
    generated_readings,
    label_statistics,
    mode_edits,
    render_readings,
    tail_figures,
    traversal_edits,
)
from ganedit.models.modes import sampled_modes
from ganedit.models.registry import load_predictor
from ganedit.models.sources import load_generator
from ganedit.utils.progress import progress_bar
from ganedit.world.config import load_world_config

RENDER_SEED = 1_000_003
EDIT_SEED = 424242
T_GRID = (0.0, 0.125, 0.25, 0.375, 0.625, 0.75, 0.875, 1.0)
# Toward the opposite class (binary attributes). The first steps are fine (0.25, 0.5 units) so
# that the smallest-change bins hold traversals too, as they hold mode edits (issue 28).
STEPS = (0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0)
YAW_STEPS = tuple(-s for s in reversed(STEPS)) + STEPS  # both ways


def tails(args, base, sc, evaluator, world) -> dict:
    truth, truth_feats = render_readings(world, args.n_renders, RENDER_SEED, 64, evaluator)
    k = len(sc.mode_attributes)
    settings = {
        "world64": (base, None),
        "world64-sc, modes as in training": (sc, sampled_modes(args.n_tails, k, args.seed + 1)),
        "world64-sc, neutral mode": (sc, np.full((args.n_tails, k), 0.5)),
    }
    if args.label_modes:  # the data's own distribution of modes: a labels store's rows
        from ganedit.selfcond.encoder import modes_from_labels

        t = modes_from_labels(args.label_modes, args.sc)
        rows = np.random.default_rng(args.seed + 2).integers(0, len(t), args.n_tails)
        settings["world64-sc, modes of the data's labels"] = (sc, t[rows])
    out = {}
    for name, (source, t) in settings.items():
        table, feats = generated_readings(
            source, args.n_tails, args.seed, evaluator, t, progress=args.progress
        )
        out[name] = {
            "cells": tail_figures(table, feats, truth, truth_feats, args.min_count),
            "labels": label_statistics(table, world),
        }
        print(f"tails {name}: " + ", ".join(
            f"{c} {v['share']:.3f} (world {v['world_share']:.3f})"
            for c, v in out[name]["cells"].items()
        ))  # fmt: skip
    return out


def diversity(args, base, sc, evaluator, identity, world) -> dict:
    """Diversity figures of the base and of the self-conditioned generator (with its modes'
    side effects)."""
    out = {}
    for name, source in (("world64", base), ("world64-sc", sc)):
        prior = shipped_prior(args, sc) if source is sc else None
        out[name] = diversity_report(
            source, world, evaluator, identity, n_identity=args.n_identity, n_pr=args.n_pr,
            n_modes=args.n_modes, seed=args.seed, k=args.k, mode_prior=prior,
        )  # fmt: skip
        for setting, f in out[name]["settings"].items():
            pr = f["precision_recall"]
            print(
                f"diversity {name}, {setting}: identity cosine {f['identity_cosine']:.3f} "
                f"(renders {out[name]['world renders']['identity_cosine']:.3f}), precision "
                f"{pr['precision']:.3f}, recall {pr['recall']:.3f}"
            )
    return out


def _diversity_tables(lines: list[str], report: dict) -> None:
    """The diversity section of report.md."""
    div = report["diversity"]
    first = next(iter(div.values()))
    lines += ["## Diversity", "", f"Mean pairwise identity cosine of {first['n_identity']} "
              f"faces (world renders: {first['world renders']['identity_cosine']:.3f}); "
              f"improved precision/recall (k {first['k']}, {first['features']}) of "
              f"{first['n_pr']} faces against as many world renders (seed "
              f"{first['render_seed']}); yaw standard deviation (deg) by the evaluator.", ""]  # fmt: skip
    lines += ["| generator, setting | identity cosine | precision | recall | yaw std |"]
    lines.append("|---|---|---|---|---|")
    for name, d in div.items():
        for setting, f in d["settings"].items():
            pr = f["precision_recall"]
            lines.append(
                f"| {name}, {setting} | {f['identity_cosine']:.3f} | {pr['precision']:.3f} | "
                f"{pr['recall']:.3f} | {f['yaw_std']:.1f} |"
            )
    for name, d in div.items():
        if "modes" in d:
            _mode_table(lines, name, d, "modes", "the others neutral")
        if "modes_at_data" in d:
            where = ("the others at each face's own row of the data's modes; the shares read "
                     "among faces whose other modes are the data's given that end")  # fmt: skip
            _mode_table(lines, name, d, "modes_at_data", where)


def _mode_table(lines: list[str], name: str, d: dict, key: str, where: str) -> None:
    lines += ["", f"### Modes of {name}: side effects and identity between the ends ({key})",
              "", f"Each mode forced to t ({where}), {d['n_modes']} faces per end, the "
              "same z at both ends: the evaluator's share of each other binary attribute "
              "(the world's share conditional on the mode's attribute = t in brackets; for "
              "yaw, the world's marginal), the largest gap, identity diversity at the end, "
              "precision/recall against the world renders of the same class (binary modes) "
              "and the mean identity cosine between the ends.", ""]  # fmt: skip
    lines += ["| mode | t | other attributes (world) | largest gap | identity cosine | "
              "yaw std | precision / recall | ends identity |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for a, m in d[key].items():
        for t in ("t=0", "t=1"):
            e = m[t]
            others = ", ".join(
                f"{b} {e['shares'][b]:.3f} ({w:.3f})" for b, w in e["world_shares"].items()
            )
            pr = e.get("precision_recall")
            pr = "-" if pr is None else f"{pr['precision']:.3f} / {pr['recall']:.3f}"
            lines.append(
                f"| {a} | {t[2:]} | {others} | {e['max_gap']:.3f} | {e['identity_cosine']:.3f}"
                f" | {e['yaw_std']:.1f} | {pr} | {m['ends_identity']['mean']:.3f} |"
            )
    lines.append("")


def directions(args, attributes, method: str) -> dict[str, np.ndarray]:
    """Unit directions [w_dim] per attribute: `method`'s boundaries, yaw's regression one."""
    out = {}
    for a in attributes:
        folder = Path(args.directions)
        path = Path(args.yaw_direction) if a == "yaw" else folder / f"{method}_{a}.npy"
        vector, _ = load_boundary(path)
        out[a] = np.asarray(vector, np.float32).reshape(-1)
    return out


def shipped_prior(args, sc):
    """The data's modes [P, k] the self-conditioned model folder ships, or None."""
    from ganedit.models.modes import load_mode_prior
    from ganedit.models.registry import generator_folder

    return load_mode_prior(generator_folder(args.sc), sc.mode_layout)


def start_modes(args, sc, n: int, seed: int):
    """Where the edits of n faces start on world64-sc, as `sample` draws their modes for
    (seed, i): (t [n, k], "the data's modes") where the model ships them, else (or with
    --start-modes neutral) (t, "neutral"), every coordinate 0.5."""
    from ganedit.models.sources import sample_coordinates

    how = "neutral" if args.start_modes == "neutral" else None
    how, t = sample_coordinates(sc, args.sc, how, n, seed)
    return t, ("the data's modes" if how == "data" else "neutral")


def protocol(args, base, sc, evaluator, identity) -> dict:
    """Per attribute: mode edits on world64-sc; each method's traversal on world64; the first
    method's traversal on world64-sc, each face at the same modes its mode edits start
    from (`start_modes`)."""
    attributes = sc.mode_attributes
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    vectors = {m: directions(args, attributes, m) for m in methods}
    z = base.sample_z(args.n_edit, EDIT_SEED)
    w_base, w_sc = base.to_w(z), sc.to_w(z)
    t0, where = start_modes(args, sc, args.n_edit, EDIT_SEED)
    start_vectors = sc.mode_layout.generator_vector(t0)
    out = {}
    steps = sum(
        len(T_GRID)
        + (2 if a == "yaw" else len(methods) + 1) * len(YAW_STEPS if a == "yaw" else STEPS)
        for a in attributes
    )
    with progress_bar(steps, "edits", args.progress) as bar:
        for a in attributes:
            alphas = YAW_STEPS if a == "yaw" else STEPS
            runs = {
                "modes (world64-sc)": mode_edits(
                    sc, w_sc, a, T_GRID, evaluator, identity, bar=bar, start=t0
                )
            }
            for m in methods:
                label = "regression" if a == "yaw" else m
                runs[f"{label} direction (world64)"] = traversal_edits(
                    base, w_base, a, vectors[m][a], alphas, evaluator, identity, bar=bar
                )
                if a == "yaw":
                    break  # one yaw direction
            label = "regression" if a == "yaw" else methods[0]
            runs[f"{label} direction (world64-sc, {where})"] = traversal_edits(
                sc, w_sc, a, vectors[methods[0]][a], alphas, evaluator, identity, bar=bar,
                modes=start_vectors,
            )  # fmt: skip
            out[a] = {name: edit_figures(r, a, args.identity_floor) for name, r in runs.items()}
            for name, fig in out[a].items():
                print(
                    f"edit {a:7s} {name:44s} reach {fig['reach']:.3g} max {fig['max_achieved']:.3g}"
                )
    return out


REAL_SEED = 90001  # held-out renders, as benchmarks/bench_inversion.py


def kept_in_tails(images, recon, evaluator, factors) -> dict:
    """How many of each tail's images keep their attribute after inversion (issue 28,
    point 4), read by the evaluator (`ganedit.evaluation.inversion.tails_kept`)."""
    from ganedit.evaluation.inversion import reconstruction_metrics, tails_kept
    from ganedit.inversion.perceptual import ReconstructionLoss

    metrics = reconstruction_metrics(images, recon, ReconstructionLoss(None), evaluator, None)
    return tails_kept(metrics, factors.columns, reader="evaluator")


def real_images(args, base, sc, evaluator, identity, world) -> dict:
    """Held-out world renders inverted into world64-sc (its encoder, at the modes its mode
    reader reads) and into world64 (world64-encoder): reconstruction, identity, how well the
    read modes agree with the truth, and the same edits as on generated faces."""
    from ganedit.evaluation.selfcond import truth_table
    from ganedit.inversion.run import load_encoder_for
    from ganedit.inversion.train_encoder import encode_images
    from ganedit.models.modes import mode_vector, read_modes
    from ganedit.models.registry import load_mode_reader
    from ganedit.world.factors import sample_factors
    from ganedit.world.render import render

    factors = sample_factors(world, REAL_SEED, 0, args.real_n)
    images, truth = render(factors, sc.resolution), truth_table(factors)
    t0 = read_modes(load_mode_reader(args.sc, sc.mode_attributes), images)
    inverted = {
        "world64-sc": (sc, encode_images(load_encoder_for(args.sc_encoder, sc, "cpu"), images)),
        "world64": (base, encode_images(load_encoder_for(args.base_encoder, base, "cpu"), images)),
    }
    target_embed = identity.embed(images)
    out = {"n": args.real_n, "reconstruction": {}, "read_modes": {}, "edits": {}}
    for name, (source, ws) in inverted.items():
        modes = mode_vector(t0, True) if source is sc else None
        recon = source.synthesize(ws, "ws", modes=modes)
        cos = (identity.embed(recon) * target_embed).sum(1)
        out["reconstruction"][name] = {
            "pixel_mse": float(((recon - images) ** 2).mean()),
            "identity_median": float(np.median(cos)),
            "identity_mean": float(cos.mean()),
            "tails_kept": kept_in_tails(images, recon, evaluator, factors),
        }
    for j, a in enumerate(sc.mode_attributes):  # the reader against the truth
        t = t0[:, j].numpy()
        if a == "yaw":
            out["read_modes"][a] = {"correlation": float(np.corrcoef(t, truth["yaw"])[0, 1])}
        else:
            out["read_modes"][a] = {"agreement": float(np.mean((t > 0.5) == (truth[a] > 0.5)))}
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    vectors = directions(args, sc.mode_attributes, methods[0])
    for a in sc.mode_attributes:
        alphas = YAW_STEPS if a == "yaw" else STEPS
        sc_ws, base_ws = inverted["world64-sc"][1], inverted["world64"][1]
        runs = {
            "modes (world64-sc, its encoder, read modes)": mode_edits(
                sc, sc_ws, a, T_GRID, evaluator, identity, space="ws", start=t0
            ),
            f"{'regression' if a == 'yaw' else methods[0]} direction (world64, world64-encoder)": (
                traversal_edits(base, base_ws, a, vectors[a], alphas, evaluator, identity,
                                space="ws")
            ),
        }  # fmt: skip
        out["edits"][a] = {k: edit_figures(r, a, args.identity_floor) for k, r in runs.items()}
        for k, fig in out["edits"][a].items():
            print(f"real {a:7s} {k:52s} reach {fig['reach']:.3g} max {fig['max_achieved']:.3g}")
    print(f"real reconstruction: {out['reconstruction']}; read modes: {out['read_modes']}")
    return out


def _edit_tables(lines: list[str], edits: dict) -> None:
    for a, methods in edits.items():
        unit = "deg" if a == "yaw" else "probability"
        edges = edges_for(a)
        lines += [f"### {a}", "", "Mean identity cosine to the unedited face [95% CI over "
                  f"faces] (faces reaching the bin), by |achieved change| in {unit}.", ""]  # fmt: skip
        heads = [
            f"{lo:g}-{hi:g}" if np.isfinite(hi) else f"{lo:g}+"
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
        lines.append("| method | " + " | ".join(heads) + " | reach |")
        lines.append("|---" * (len(heads) + 2) + "|")
        for name, fig in methods.items():
            cells = []
            for b in fig["bins"]:
                m = b["identity"]
                cells.append(
                    "-"
                    if m["mean"] is None
                    else f"{m['mean']:.3f} [{m['ci'][0]:.3f}, {m['ci'][1]:.3f}] ({b['faces']})"
                )
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {fig['reach']:.3g} |")
        lines += ["", "Off-target drift (mean |change| of the other attributes' probabilities)"
                  + ("" if a == "yaw" else " / yaw drift (deg)") + ", same bins:", ""]  # fmt: skip
        lines.append("| method | " + " | ".join(heads) + " |")
        lines.append("|---" * (len(heads) + 1) + "|")
        for name, fig in methods.items():
            cells = []
            for b in fig["bins"]:
                off, yaw = b["off_target"]["mean"], b["yaw_drift"]["mean"]
                if off is None:
                    cells.append("-")
                else:
                    cells.append(f"{off:.3f}" + ("" if a == "yaw" else f" / {yaw:.1f}"))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")


def markdown(report: dict) -> str:
    lines = ["# Self-conditioned world64: tails and edits against the world's truth", ""]
    lines += [f"Produced by `{report['command']}` ({report['date']}). {report['setup']}", ""]
    if "diversity" in report:
        _diversity_tables(lines, report)
    if "tails" in report:
        _tail_tables(lines, report)
    if report.get("protocol"):
        lines += ["## Edits at matched achieved change", ""]
        _edit_tables(lines, report["protocol"])
    _real_and_rest(lines, report)
    return "\n".join(lines)


def _tail_tables(lines: list[str], report: dict) -> None:
    lines += ["## Tails", ""]
    settings = list(report["tails"])
    lines.append("| cell | world | " + " | ".join(settings) + " |")
    lines.append("|---" * (len(settings) + 2) + "|")
    for cell in CELLS:
        first = report["tails"][settings[0]]["cells"][cell]
        row = [cell.replace("|", "\\|"), f"{first['world_share']:.3f}"]
        for s in settings:
            c = report["tails"][s]["cells"][cell]
            fd = "n/a" if c["frechet_distance"] is None else f"{c['frechet_distance']:.1f}"
            row.append(f"{c['share']:.3f} (FD {fd}, n {c['count']})")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Share of faces in the cell (the evaluator's reading; the world's by ground "
              "truth); FD: Frechet distance of the cell's faces to world renders of the same "
              "cell (evaluator features; n/a below the minimum count).", ""]  # fmt: skip
    lines.append("| labels | " + " | ".join(settings) + " |")
    lines.append("|---" * (len(settings) + 1) + "|")
    for key, label in (
        ("max_marginal_gap", "largest marginal gap"),
        ("max_correlation_gap", "largest correlation gap"),
        ("yaw_std", "yaw standard deviation (deg)"),
    ):
        row = [label] + [f"{report['tails'][s]['labels'][key]:.3f}" for s in settings]
        lines.append("| " + " | ".join(row) + " |")
    corr = report["tails"][settings[0]]["labels"]["correlations"]
    for pair in corr:
        row = [f"correlation {pair}"] + [
            f"{report['tails'][s]['labels']['correlations'][pair]:+.2f}" for s in settings
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")


def _real_and_rest(lines: list[str], report: dict) -> None:
    if "real" in report:
        real = report["real"]
        lines += [
            "## Real images",
            "",
            f"{real['n']} held-out world renders (seed {REAL_SEED}).",
            "",
        ]
        lines += [
            "| inverted into | pixel MSE | identity cosine (median) | glasses kept | smiling men "
            "keep the smile | \\|yaw\\| > 30 within 10 deg |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in real["reconstruction"].items():
            kept = r.get("tails_kept", {})
            shares = [kept.get(c, {}).get("kept") for c in ("glasses", "smiling men", "|yaw| > 30")]
            cells = " | ".join("n/a" if v is None else f"{v:.2f}" for v in shares)
            lines.append(
                f"| {name} | {r['pixel_mse']:.4f} | {r['identity_median']:.3f} | {cells} |"
            )
        reads = ", ".join(
            f"{a} {'r' if 'correlation' in v else 'agreement'} "
            f"{v.get('correlation', v.get('agreement')):.2f}"
            for a, v in real["read_modes"].items()
        )
        lines += ["", f"The mode reader against the truth: {reads}.", ""]
        _edit_tables(lines, real["edits"])
    if "ablations" in report:
        from bench_selfcond_ablation import markdown as ablation_tables

        ablations = report["ablations"]
        lines += ["## Ablations", "", ablations["setup"], "", ablation_tables(ablations)]
    lines += ["## Cost", "", *[f"- {k}: {v}" for k, v in report["cost"].items()], ""]


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["protocol"])
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.0), squeeze=False)
    for ax, a in zip(axes[0], names, strict=True):
        for name, f in report["protocol"][a].items():
            x = [np.mean([b["bin"][0], min(b["bin"][1], 2 * b["bin"][0] or 1)]) for b in f["bins"]]
            y = [
                b["identity"]["mean"] if b["identity"]["mean"] is not None else np.nan
                for b in f["bins"]
            ]
            ax.plot(x, y, marker="o", label=name)
        ax.set_title(a)
        ax.set_xlabel("|achieved change|" + (" (deg)" if a == "yaw" else ""))
        ax.set_ylim(0.5, 1.0)
    axes[0][0].set_ylabel("identity cosine")
    axes[0][-1].legend(fontsize=6, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def rerender(out: Path, ablations: Path | None) -> None:
    """report.md again from a finished report.json, with the ablations' JSON if given."""
    report = json.loads((out / "report.json").read_text())
    if ablations:
        report["ablations"] = json.loads(ablations.read_text())
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report))
    print(f"{out}: report.md")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sc", default="world64-sc", help="the self-conditioned generator")
    parser.add_argument("--base", default="world64")
    parser.add_argument("--n-tails", type=int, default=10_000)
    parser.add_argument("--n-renders", type=int, default=20_000)
    parser.add_argument("--n-edit", type=int, default=2_000)
    parser.add_argument("--min-count", type=int, default=50)
    parser.add_argument("--identity-floor", type=float, default=0.5)
    parser.add_argument("--directions", default="docs/directions_report/boundaries")
    parser.add_argument(
        "--methods", default="interfacegan,stratified", help="direction methods (comma-separated)"
    )
    parser.add_argument(
        "--yaw-direction", default="docs/selfcond_report/boundaries/regression_yaw.npy"
    )
    parser.add_argument(
        "--label-modes",
        default=None,
        help="a labels store of the training images: also sample world64-sc at their modes",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-tails", action="store_true")
    parser.add_argument("--skip-diversity", action="store_true")
    parser.add_argument("--n-identity", type=int, default=256, help="faces per identity cosine")
    parser.add_argument("--n-pr", type=int, default=2048, help="faces for precision/recall")
    parser.add_argument("--n-modes", type=int, default=1024, help="faces per mode end")
    parser.add_argument("--k", type=int, default=3, help="neighbours for precision/recall")
    parser.add_argument("--skip-protocol", action="store_true")
    parser.add_argument(
        "--start-modes",
        choices=("data", "neutral"),
        default="data",
        help="where world64-sc's edits and its modes grid start: each face's modes drawn from "
        "the shipped data's modes (data; neutral where none ships) or the neutral mode",
    )
    parser.add_argument("--real-n", type=int, default=0, help="held-out renders to invert")
    parser.add_argument("--sc-encoder", default=None, help="world64-sc's encoder (a folder)")
    parser.add_argument("--base-encoder", default="world64-encoder")
    parser.add_argument(
        "--ablations", type=Path, help="a bench_selfcond_ablation.py --json output to include"
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: rewrite report.md from --out's report.json (and --ablations)",
    )
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.render_only:
        rerender(args.out, args.ablations)
        return
    torch.set_num_threads(2)
    base, sc = load_generator(args.base), load_generator(args.sc)
    evaluator, identity = load_predictor("evaluator"), load_predictor("identity")
    world = load_world_config("celeba")
    report = {
        "command": "python benchmarks/bench_selfcond.py "
        + " ".join(
            f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}")
            for k, v in vars(args).items()
            if v not in (None, False) and k not in ("progress",)
        ),  # fmt: skip
        "date": time.strftime("%Y-%m-%d"),
        "setup": f"world64-sc: {sc.identity}; mode attributes {sc.mode_attributes}.",
        "generators": {"base": base.identity, "sc": sc.identity},
        "settings": {k: str(v) for k, v in vars(args).items()},
    }
    cost = {}
    start = time.perf_counter()
    if not args.skip_diversity:
        report["diversity"] = diversity(args, base, sc, evaluator, identity, world)
        cost["diversity (s)"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    if not args.skip_tails:
        report["tails"] = tails(args, base, sc, evaluator, world)
    cost["tails (s)"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    report["protocol"] = {} if args.skip_protocol else protocol(args, base, sc, evaluator, identity)
    cost["edits (s)"] = round(time.perf_counter() - start, 1)
    if args.real_n > 0:
        start = time.perf_counter()
        report["real"] = real_images(args, base, sc, evaluator, identity, world)
        cost["real images (s)"] = round(time.perf_counter() - start, 1)
    cost["peak memory (MB)"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    report["cost"] = cost
    if args.ablations:
        report["ablations"] = json.loads(args.ablations.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(json_safe(report), indent=2) + "\n")
    if "tails" in report or "diversity" in report:
        (args.out / "report.md").write_text(markdown(report))
    if report["protocol"]:
        plot(report, args.out / "identity.png")
    from PIL import Image

    from ganedit.editing.edit import mode_sweep_grid

    own, _ = start_modes(args, sc, 2, args.seed)
    Image.fromarray(mode_sweep_grid(sc, 2, args.seed, own=own)).save(args.out / "modes.png")
    print(f"{args.out}: report.json, report.md, identity.png, modes.png")


if __name__ == "__main__":
    main()
