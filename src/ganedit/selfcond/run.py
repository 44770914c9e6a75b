"""The `selflabel` and `resample` commands as library calls."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ganedit.errors import UserInputError
from ganedit.selfcond.labels import (
    DistanceLabeller,
    PredictorLabeller,
    SelfLabelConfig,
    anchor_coordinates,
    label_dataset,
    labels_from_table,
    load_boundaries,
    load_labels,
    write_labels,
)
from ganedit.selfcond.resample import ResampleConfig, balance_report, resample
from ganedit.utils.context import RunContext
from ganedit.utils.progress import progress_bar

log = logging.getLogger(__name__)


def run_selflabel(
    images: str | Path,
    out: str | Path,
    *,
    generator: str | None = None,
    boundaries: list[str | Path] = (),
    encoder: str | None = None,
    predictor: str | None = None,
    table: str | Path | None = None,
    columns: list[str] = (),
    merge: list[str] = (),
    config: SelfLabelConfig = SelfLabelConfig(),
    force: bool = False,
    ctx: RunContext = RunContext(),
) -> dict:
    """Label a data set by one of four sources: distances of its encoded codes to
    `boundaries` (the default, SC-GAN's self-labels), a `predictor`'s outputs for `columns`,
    `columns` of a `table`, or columns of finished label stores of the same images
    (`merge`: "STORE" or "STORE:col,col"). Returns the labels record."""
    from ganedit.datasets import ImageDataset

    chosen = [bool(boundaries), predictor is not None, table is not None, bool(merge)]
    if sum(chosen) != 1:
        raise UserInputError(
            "expected one label source: boundaries (-b), --from-predictor, --from-table or "
            f"--merge, received {sum(chosen)}"
        )
    data = ImageDataset(images)
    dataset = {"path": str(images), "count": len(data), "lmdb": data.is_lmdb}
    if table is not None:
        return _from_table(data, dataset, table, columns, out, ctx.overwrite)
    if merge:
        return _from_stores(dataset, merge, out, ctx.overwrite)
    if predictor is not None:
        labeller, record = _predictor_labeller(predictor, columns, ctx.device)
    else:
        labeller, record = _distance_labeller(
            generator, boundaries, encoder, config, ctx.device, force
        )
    record = {**record, "data": dataset}
    with progress_bar(len(data), f"selflabel ({record['source']})", ctx.progress) as bar:
        return label_dataset(data, labeller, out, config, record, ctx.overwrite, bar)


def _distance_labeller(generator, boundaries, encoder, config, device, force):
    from ganedit.inversion.encode import load_encoder_for, shipped_encoder
    from ganedit.models.registry import DEFAULT_GENERATOR
    from ganedit.models.sources import load_generator

    source = load_generator(generator or DEFAULT_GENERATOR, device)
    code_shape = source.to_ws(source.sample_z(1, 0), "z").shape[1:]  # (L, D)
    loaded = load_boundaries(boundaries, source.identity, force, code_shape)
    encoder = encoder or shipped_encoder(source)
    net = load_encoder_for(encoder, source, device)
    labeller = DistanceLabeller(net, loaded, source.resolution, config.batch_size)
    record = {
        "source": "distances",
        "generator": source.identity,
        "encoder": encoder,
        "boundaries": [b.record for b in loaded],
    }
    return labeller, record


def _predictor_labeller(predictor, columns, device):
    from ganedit.models.registry import load_attribute_predictor

    net = load_attribute_predictor(predictor, device)
    attributes = list(columns) or [*net.attributes, "yaw"]
    labeller = PredictorLabeller(net, attributes, int(net.config["image_size"]))
    return labeller, {"source": "predictor", "predictor": predictor}


def _from_table(data, dataset, table, columns, out, overwrite) -> dict:
    from ganedit.utils.files import atomic_dir, check_output

    if not columns:
        raise UserInputError("expected --columns naming the table's label columns, received none")
    labels = labels_from_table(table, list(columns), len(data))
    record = {"source": "table", "table": str(table), "data": dataset}
    check_output(out, overwrite=overwrite, kind="dir")
    with atomic_dir(out, overwrite=overwrite, what="selflabel") as tmp:
        return write_labels(tmp, labels, list(columns), record)


def _from_stores(dataset: dict, specs: list[str], out, overwrite) -> dict:
    """Columns of several label stores of the same data set side by side; each column keeps
    the record of the store it came from (for instance distances for age and yaw beside a
    predictor's probabilities for smile and glasses)."""
    from ganedit.utils.files import atomic_dir, check_output

    columns, names, parts = [], [], []
    for spec in specs:
        path, _, picked = str(spec).partition(":")
        values, record = load_labels(path)
        if record.get("count") != dataset["count"]:
            raise UserInputError(
                f"expected labels of the {dataset['count']} images of {dataset['path']!r}, "
                f"received {record.get('count')} in {path!r}"
            )
        wanted = [c.strip() for c in picked.split(",") if c.strip()] or record["attributes"]
        unknown = [c for c in wanted if c not in record["attributes"]]
        if unknown:
            raise UserInputError(
                f"expected columns among {record['attributes']} in {path!r}, received {unknown}"
            )
        for name in wanted:
            columns.append(values[:, record["attributes"].index(name)])
            names.append(name)
        parts.append({"path": path, "columns": wanted, "record": record})
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserInputError(
            f"expected each attribute from one store, received {repeated} more than once"
        )
    record = {"source": "merged", "parts": parts, "data": dataset}
    check_output(out, overwrite=overwrite, kind="dir")
    with atomic_dir(out, overwrite=overwrite, what="selflabel") as tmp:
        return write_labels(tmp, np.stack(columns, axis=1), names, record)


def selflabel_summary(record: dict, out: str | Path) -> list[str]:
    lines = [f"{out}: {record['count']} images labelled by {record['source']}"]
    for name, (lo, hi) in zip(record["attributes"], record["ranges"], strict=True):
        lines.append(f"  {name:12s} 0.5-99.5% range [{lo:.3g}, {hi:.3g}]")
    return lines


def run_resample(
    labels: str | Path,
    out: str | Path,
    config: ResampleConfig,
    attributes: list[str] | None = None,
    *,
    ctx: RunContext = RunContext(),
) -> dict:
    """Re-sample a labels store toward balance over `attributes` (default: all of them);
    writes indices.npy, report.json, histograms.png and config.json. Returns the report."""
    from ganedit.utils.files import atomic_dir, check_output

    values, record = load_labels(labels)
    u, chosen, ranges = anchor_coordinates(values, record, attributes)
    indices = resample(u, config)
    report = balance_report(u, indices, chosen)
    report["labels"] = {"path": str(labels), "source": record.get("source")}
    report["attributes"] = chosen
    report["ranges"] = ranges.tolist()
    check_output(out, overwrite=ctx.overwrite, kind="dir")
    with atomic_dir(out, overwrite=ctx.overwrite, what="resample") as tmp:
        np.save(tmp / "indices.npy", indices.astype(np.int64))
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        settings = {**config.to_dict(), "labels": str(labels), "attributes": chosen}
        (tmp / "config.json").write_text(json.dumps(settings, indent=2) + "\n")
        plot_histograms(report, tmp / "histograms.png")
    return report


def load_indices(folder: str | Path, n_images: int) -> np.ndarray:
    """A re-sampled index list [Q] (resample's indices.npy), checked against the data set."""
    from ganedit.utils.arrays import load_npy

    indices = load_npy(Path(folder) / "indices.npy", "a re-sampled index list")
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise UserInputError(f"expected a 1-D integer index list, received {indices.shape}")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_images):
        raise UserInputError(
            f"expected indices in [0, {n_images}) for a data set of {n_images} images, "
            f"received [{indices.min()}, {indices.max()}]"
        )
    return indices


def plot_histograms(report: dict, path: Path) -> None:
    """Per-attribute histograms before and after re-sampling, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = report["attributes"]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        h = report["histograms"][name]
        edges = np.asarray(h["edges"])
        centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        for key, colour in (("before", "#999999"), ("after", "#d95f02")):
            counts = np.asarray(h[key], np.float64)
            ax.bar(centres, counts / counts.sum(), width * 0.9, alpha=0.6, color=colour, label=key)
        ax.set_title(name)
        ax.set_xlabel("normalised label")
    axes[0][0].set_ylabel("share of images")
    axes[0][0].legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def resample_summary(report: dict, out: str | Path) -> list[str]:
    cells = report["cells_2"]
    return [
        f"{out}: {report['n_drawn']} draws from {report['n_images']} images over "
        f"{', '.join(report['attributes'])}",
        f"  emptiest of the 2^k cells, over their mean: {cells['before_min_over_mean']:.2f} "
        f"before, {cells['after_min_over_mean']:.2f} after",
        f"  images never used: {report['unused_share']:.1%}; largest repeat: "
        f"{report['largest_repeat']}",
    ]
