"""Self-labels: where each image of a data set lies relative to latent boundaries.

SC-GAN labels every training image by inverting it (an e4e encoder) and taking the signed
distance of its code to each attribute's linear boundary: d = n . code + b, with the
boundary's own intercept b. For codes ws [N, L, D]:
- a boundary learned in `ws` ([L, D], unit over all of it): d = sum over layers n_l . w_l + b;
- a boundary learned in `w` ([D]): d = n . mean_l(w_l) + b, the distance of the codes' mean
  row (for codes of one w repeated over the layers, the distance of that w).

`label_dataset` streams a data set (LMDB or folder) through a labeller (`DistanceLabeller`:
the encoder and the boundaries; `PredictorLabeller`: a predictor's probabilities, for
comparison) in chunks, which it keeps in the output folder, so an interrupted run resumes
where it stopped. `labels_from_table` reads labels from elsewhere (a world render set's
ground truth). The store is written last (`labels.npy` [N, k] float32, and `labels.json`,
its record: where the labels came from, counts, and the 0.5/99.5 percentile ranges that
normalise them). A folder without `labels.json` is not a finished labelling.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ganedit.errors import DamagedInputError, UserInputError
from ganedit.models.modes import PERCENTILES, label_ranges
from ganedit.utils.bounded import load_json_bounded
from ganedit.utils.params import Integer, check_fields

log = logging.getLogger(__name__)

FORMAT = "ganedit.selflabels"
LABELS, RECORD, CODES, PARTS = "labels.npy", "labels.json", "codes.npy", "parts"


@dataclass(frozen=True)
class Boundary:
    """One attribute's boundary: unit normal [D] (`w`) or [L, D] (`ws`), its intercept, and
    where it came from (its file and sidecar record)."""

    attribute: str
    vector: np.ndarray
    intercept: float
    space: str
    record: dict

    def distance(self, ws: torch.Tensor) -> np.ndarray:
        """Signed distances [N] of codes ws [N, L, D]."""
        codes = ws.double().numpy()
        normal = self.vector.astype(np.float64)
        if self.space == "ws":
            return codes.reshape(len(codes), -1) @ normal.reshape(-1) + self.intercept
        return codes.mean(axis=1) @ normal.reshape(-1) + self.intercept


def load_boundaries(
    paths: list[str | Path], identity: dict, force: bool = False, code_shape=None
) -> list[Boundary]:
    """Boundary files (ganedit's, with sidecars) checked against the generator `identity`
    and, given the generator's ws shape `code_shape` (L, D), against its codes."""
    from ganedit.directions.io import load_boundary
    from ganedit.directions.provenance import check_boundary_use
    from ganedit.models.sources import file_sha256

    out = []
    for path in map(Path, paths):
        vector, sidecar = load_boundary(path)
        space = sidecar.get("space") or ("ws" if vector.ndim == 2 else "w")
        if space not in ("w", "ws"):
            raise UserInputError(
                f"expected a boundary learned in w or ws for self-labels, received {space!r} "
                f"({path})"
            )
        check = check_boundary_use(sidecar, identity, space, str(path), force)
        if code_shape is not None:
            _check_shape(vector, space, tuple(code_shape), path)
        intercept = sidecar.get("intercept")
        if intercept is None:
            log.warning("%s records no intercept: its distances are taken through 0", path)
        attribute = sidecar.get("attribute") or path.stem
        record = {
            "path": str(path),
            "sha256": file_sha256(path),
            "attribute": attribute,
            "method": sidecar.get("method"),
            "space": space,
            "intercept": float(intercept or 0.0),
            "check": check,
        }
        out.append(Boundary(attribute, vector, float(intercept or 0.0), space, record))
    names = [b.attribute for b in out]
    if len(set(names)) != len(names):
        raise UserInputError(f"expected one boundary per attribute, received {names}")
    return out


def _check_shape(vector: np.ndarray, space: str, code_shape: tuple[int, int], path) -> None:
    """A w boundary has D numbers, a ws boundary [L, D]: anything else cannot measure codes."""
    wanted = code_shape if space == "ws" else code_shape[1:]
    if tuple(vector.shape) != wanted and not (space == "w" and vector.size == wanted[0]):
        raise UserInputError(
            f"expected a {space} boundary of shape {list(wanted)} for this generator's codes, "
            f"received shape {list(vector.shape)} ({path})"
        )


def boundary_distances(ws: torch.Tensor, boundaries: list[Boundary]) -> np.ndarray:
    """Signed distances [N, k] of codes ws [N, L, D] to k boundaries."""
    return np.stack([b.distance(ws) for b in boundaries], axis=1).astype(np.float32)


@dataclass(frozen=True)
class SelfLabelConfig:
    """Settings of `label_dataset` (what a resumed run must share with the first)."""

    batch_size: int = 64
    chunk: int = 1024  # images per kept chunk: the most an interruption loses
    save_codes: bool = False  # also write codes.npy [N, L, D]

    _CONSTRAINTS = {"batch_size": Integer(1, 65536), "chunk": Integer(1, 10_000_000)}

    def __post_init__(self):
        check_fields(self, self._CONSTRAINTS, "selflabel")
        if not isinstance(self.save_codes, bool):
            raise UserInputError(f"expected save_codes true or false, received {self.save_codes!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class Labeller(Protocol):
    """What labels a batch of images: [n, 3, R, R] in [-1, 1] -> (labels [n, k], codes
    [n, L, D] or None)."""

    attributes: list[str]
    resolution: int

    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]: ...


@dataclass
class DistanceLabeller:
    """SC-GAN's self-labels: encode, then the codes' distances to the boundaries."""

    encoder: torch.nn.Module
    boundaries: list[Boundary]
    resolution: int
    batch_size: int = 64

    @property
    def attributes(self) -> list[str]:
        return [b.attribute for b in self.boundaries]

    def __call__(self, images):
        from ganedit.inversion.encode import encode_images

        ws = encode_images(self.encoder, images, self.batch_size)
        return boundary_distances(ws, self.boundaries), ws.numpy()


@dataclass
class PredictorLabeller:
    """Labels read by an attribute predictor (its probabilities, yaw in degrees)."""

    predictor: torch.nn.Module
    attributes: list[str]
    resolution: int

    def __call__(self, images):
        pred = self.predictor.predict(images)
        missing = [a for a in self.attributes if a not in pred]
        if missing:
            raise UserInputError(
                f"expected attributes the predictor reads ({sorted(pred)}), received {missing}"
            )
        return np.stack([pred[a] for a in self.attributes], axis=1).astype(np.float32), None


def label_dataset(
    dataset,
    labeller: Labeller,
    out: str | Path,
    config: SelfLabelConfig,
    record: dict,
    overwrite: bool = False,
    progress=None,
) -> dict:
    """Label every image of `dataset` (an `ImageDataset`) chunk by chunk; returns the record
    written as labels.json (`record`, the counts and the normalising ranges added). `record`
    (where the labels come from) and `config` decide whether a run in `out` resumes."""
    from ganedit.utils.files import open_run_folder

    n = len(dataset)
    run = {"config": config.to_dict(), "record": record, "n": n}
    fresh = not Path(out).exists()
    folder = open_run_folder(out, "selflabel", run, overwrite=overwrite)
    try:
        return _label_chunks(dataset, labeller, folder, config, record, progress)
    except BaseException:
        # A run refused before its first chunk leaves nothing behind; kept chunks stay for
        # the next run to resume from (the folder has no labels.json: not finished).
        if fresh and not any((folder / PARTS).glob("*.npz")):
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _label_chunks(dataset, labeller, folder: Path, config, record, progress) -> dict:
    from ganedit.utils.files import atomic_path

    n, k = len(dataset), len(labeller.attributes)
    (folder / RECORD).unlink(missing_ok=True)  # not finished until rewritten
    parts = folder / PARTS
    parts.mkdir(exist_ok=True)
    starts = range(0, n, config.chunk)
    for start in starts:
        path = parts / f"{start:09d}.npz"
        stop = min(start + config.chunk, n)
        if _chunk_ok(path, stop - start, k):
            if progress is not None:
                progress.advance(stop - start)
            continue
        labels, codes = [], []
        for a in range(start, stop, config.batch_size):
            b = min(a + config.batch_size, stop)
            values, found = labeller(_batch(dataset, a, b, labeller.resolution))
            labels.append(values)
            codes.append(found)
            if progress is not None:
                progress.advance(b - a)
        arrays = {"labels": np.concatenate(labels)}
        if config.save_codes and codes[0] is not None:
            arrays["codes"] = np.concatenate(codes)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    chunks = [_read_chunk(parts / f"{s:09d}.npz") for s in starts]
    labels = np.concatenate([c["labels"] for c in chunks])
    if config.save_codes and "codes" in chunks[0]:
        _save_npy(folder / CODES, np.concatenate([c["codes"] for c in chunks]))
    settings = {**record, "settings": config.to_dict()}
    return write_labels(folder, labels, labeller.attributes, settings)


def write_labels(folder: Path, labels: np.ndarray, attributes: list[str], record: dict) -> dict:
    """labels.npy [N, k] float32, then labels.json (last: a folder without it is unfinished)."""
    from ganedit.utils.files import write_json

    labels = np.asarray(labels, np.float32)
    if labels.ndim != 2 or labels.shape[1] != len(attributes):
        raise UserInputError(
            f"expected labels of shape [N, {len(attributes)}], received {labels.shape}"
        )
    if not np.isfinite(labels).all():
        raise DamagedInputError("expected finite labels, received NaN or infinite values")
    _save_npy(folder / LABELS, labels)
    full = {
        "format": FORMAT,
        "format_version": 1,
        "attributes": list(attributes),
        "count": len(labels),
        "percentiles": list(PERCENTILES),
        "ranges": label_ranges(labels).tolist(),
        **record,
    }
    write_json(folder / RECORD, full)
    return full


def _save_npy(path: Path, array: np.ndarray) -> None:
    from ganedit.utils.files import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def labels_from_table(path: str | Path, columns: list[str], n: int) -> np.ndarray:
    """Columns [n, k] of a table keyed by image index: an .npz of 1-D arrays (a world
    render set's labels.npz) or a CSV with a header (an `index` column, if present, orders
    the rows). Every image 0..n-1 must have a row."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        table = _read_csv(path)
    else:
        from ganedit.utils.arrays import load_npz

        table = load_npz(path, "a table of label columns (.npz)")
    missing = [c for c in columns if c not in table]
    if missing:
        raise UserInputError(
            f"expected columns {columns} in {str(path)!r}, received {sorted(table)} "
            f"(missing {missing})"
        )
    order = np.arange(n)
    if "index" in table:
        index = np.asarray(table["index"]).astype(np.int64)
        if sorted(index.tolist()) != list(range(n)):
            raise UserInputError(
                f"expected an index column holding 0..{n - 1} once each in {str(path)!r}"
            )
        order = np.argsort(index)
    values = []
    for c in columns:
        column = np.asarray(table[c])
        if column.ndim != 1 or len(column) != n or not np.issubdtype(column.dtype, np.number):
            raise UserInputError(
                f"expected column {c!r} of {path.name} as {n} numbers (one per image), "
                f"received shape {column.shape} {column.dtype}"
            )
        values.append(column[order].astype(np.float64))
    return np.stack(values, axis=1)


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    import csv

    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as err:
        raise UserInputError(
            f"expected a readable CSV table, received {str(path)!r} ({err})"
        ) from None
    if len(rows) < 2:
        raise UserInputError(f"expected a CSV with a header and rows, received {str(path)!r}")
    header, body = rows[0], rows[1:]
    try:
        data = np.array([[float(v) for v in row] for row in body], np.float64)
    except ValueError as err:
        raise UserInputError(f"expected numbers in {str(path)!r}, received {err}") from None
    if data.shape[1:] != (len(header),):
        raise UserInputError(f"expected {len(header)} values on every row of {str(path)!r}")
    return {name.strip(): data[:, j] for j, name in enumerate(header)}


def _batch(dataset, a: int, b: int, resolution: int) -> torch.Tensor:
    """Images a..b-1 as float [n, 3, R, R] in [-1, 1], resized (area) to the encoder's size."""
    import torch.nn.functional as F

    from ganedit.utils.images import from_uint8

    x = from_uint8(np.stack([dataset[i] for i in range(a, b)]))  # [n, 3, H, W]
    if x.shape[-1] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="area")
    return x


def _chunk_ok(path: Path, n: int, k: int) -> bool:
    if not path.is_file():
        return False
    try:
        distances = _read_chunk(path).get("labels")
    except UserInputError:
        log.warning("%s is damaged; it is computed again", path)
        return False
    return distances is not None and distances.shape == (n, k)


def _read_chunk(path: Path) -> dict:
    from ganedit.utils.arrays import load_npz

    return load_npz(path, "a self-labels chunk")


def load_labels(folder: str | Path) -> tuple[np.ndarray, dict]:
    """A labels store: labels [N, k] float32 and its record; refused when unfinished,
    damaged or inconsistent."""
    from ganedit.utils.arrays import check_finite, load_npy

    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"expected a self-labels folder, received {str(folder)!r}")
    record_path = folder / RECORD
    if not record_path.is_file():
        raise UserInputError(
            f"expected a finished self-labels folder (with {RECORD}), received {str(folder)!r}"
        )
    record = load_json_bounded(record_path, what=f"a {RECORD} record")
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise DamagedInputError(f"expected a {FORMAT} record in {record_path}, received another")
    labels = load_npy(folder / LABELS, "self-labels (labels.npy)")
    attributes, count = record.get("attributes"), record.get("count")
    ranges = np.asarray(record.get("ranges", []), dtype=object)
    if (
        not isinstance(attributes, list)
        or labels.shape != (count, len(attributes))
        or not np.issubdtype(labels.dtype, np.floating)
        or ranges.shape != (len(attributes), 2)
    ):
        raise DamagedInputError(
            f"expected float labels of shape [{count}, {len(attributes or [])}] and their ranges "
            f"in {folder}, received {labels.shape} {labels.dtype}"
        )
    check_finite(labels, str(folder / LABELS))
    try:
        ranges = np.asarray(record["ranges"], np.float64)
    except (TypeError, ValueError):
        raise DamagedInputError(f"expected numeric ranges in {record_path}") from None
    check_finite(ranges, f"{record_path} ranges")
    return labels.astype(np.float32), record


def anchor_coordinates(
    labels: np.ndarray, record: dict, attributes=None
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The chosen attributes' (default: all) labels as anchor coordinates t [N, k] in
    [0, 1], normalised by the store's ranges; with the names and those ranges [k, 2]."""
    from ganedit.models.modes import normalise

    names = record["attributes"]
    chosen = list(attributes) if attributes else list(names)
    unknown = [a for a in chosen if a not in names]
    if unknown:
        raise UserInputError(f"expected attributes among {names}, received {unknown}")
    columns = [names.index(a) for a in chosen]
    ranges = np.asarray(record["ranges"], np.float64)[columns]
    return normalise(labels[:, columns], ranges), chosen, ranges
