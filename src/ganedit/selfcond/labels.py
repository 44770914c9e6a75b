"""Self-labels: where each image of a data set lies relative to latent boundaries.

SC-GAN labels every training image by inverting it (an e4e encoder) and taking the signed
distance of its code to each attribute's linear boundary: d = n . code + b, with the
boundary's own intercept b. For codes ws [N, L, D]:
- a boundary learned in `ws` ([L, D], unit over all of it): d = sum over layers n_l . w_l + b;
- a boundary learned in `w` ([D]): d = n . mean_l(w_l) + b, the distance of the codes' mean
  row (for codes of one w repeated over the layers, the distance of that w).

`self_label` streams a data set (LMDB or folder) through the encoder in chunks, which it
keeps in the output folder, so an interrupted run resumes where it stopped; the labels are
written last (`labels.npy` [N, k] float32, and `labels.json`, their record: encoder,
generator, boundaries, data set, counts, and the 0.5/99.5 percentile ranges that normalise
them). A folder without `labels.json` is not a finished labelling.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ganedit.errors import DamagedInputError, UserInputError
from ganedit.selfcond.modes import PERCENTILES, label_ranges
from ganedit.utils.params import Integer, check_params

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


def load_boundaries(paths: list[str | Path], identity: dict, force: bool = False) -> list[Boundary]:
    """Boundary files (ganedit's, with sidecars) checked against the generator `identity`."""
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


def boundary_distances(ws: torch.Tensor, boundaries: list[Boundary]) -> np.ndarray:
    """Signed distances [N, k] of codes ws [N, L, D] to k boundaries."""
    return np.stack([b.distance(ws) for b in boundaries], axis=1).astype(np.float32)


@dataclass(frozen=True)
class SelfLabelConfig:
    """Settings of `self_label` (what a resumed run must share with the first)."""

    batch_size: int = 64
    chunk: int = 1024  # images per kept chunk: the most an interruption loses
    save_codes: bool = False  # also write codes.npy [N, L, D]

    _CONSTRAINTS = {"batch_size": Integer(1, 65536), "chunk": Integer(1, 10_000_000)}

    def __post_init__(self):
        check_params(
            {k: getattr(self, k) for k in self._CONSTRAINTS}, self._CONSTRAINTS, "selflabel"
        )
        if not isinstance(self.save_codes, bool):
            raise UserInputError(f"expected save_codes true or false, received {self.save_codes!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def self_label(
    dataset,
    encoder: torch.nn.Module,
    boundaries: list[Boundary],
    out: str | Path,
    config: SelfLabelConfig,
    provenance: dict,
    resolution: int,
    overwrite: bool = False,
    progress=None,
) -> dict:
    """Label every image of `dataset` (an `ImageDataset`) by its code's distances; returns
    the record written as labels.json. `provenance` (generator, encoder, data set) goes into
    the record and decides, with `config` and the boundaries, whether a run resumes."""
    from ganedit.inversion.train_encoder import encode_images
    from ganedit.utils.files import atomic_path, open_run_folder, write_json

    run = {
        "config": config.to_dict(),
        "provenance": provenance,
        "boundaries": [b.record["sha256"] for b in boundaries],
        "n": len(dataset),
    }
    folder = open_run_folder(out, "selflabel", run, overwrite=overwrite)
    (folder / RECORD).unlink(missing_ok=True)  # not finished until rewritten
    parts = folder / PARTS
    parts.mkdir(exist_ok=True)
    starts = range(0, len(dataset), config.chunk)
    for start in starts:
        path = parts / f"{start:09d}.npz"
        stop = min(start + config.chunk, len(dataset))
        if _chunk_ok(path, stop - start, len(boundaries)):
            if progress is not None:
                progress.advance(stop - start)
            continue
        distances, codes = [], []
        for a in range(start, stop, config.batch_size):
            b = min(a + config.batch_size, stop)
            images = _batch(dataset, a, b, resolution)
            ws = encode_images(encoder, images, config.batch_size)
            distances.append(boundary_distances(ws, boundaries))
            if config.save_codes:
                codes.append(ws.numpy())
            if progress is not None:
                progress.advance(b - a)
        arrays = {"distances": np.concatenate(distances)}
        if config.save_codes:
            arrays["codes"] = np.concatenate(codes)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    labels = np.concatenate([_read_chunk(parts / f"{s:09d}.npz")["distances"] for s in starts])
    with atomic_path(folder / LABELS) as tmp, open(tmp, "wb") as f:
        np.save(f, labels)
    if config.save_codes:
        codes = np.concatenate([_read_chunk(parts / f"{s:09d}.npz")["codes"] for s in starts])
        with atomic_path(folder / CODES) as tmp, open(tmp, "wb") as f:
            np.save(f, codes)
    record = _record(labels, boundaries, provenance, config, len(dataset))
    write_json(folder / RECORD, record)
    return record


def _batch(dataset, a: int, b: int, resolution: int) -> torch.Tensor:
    """Images a..b-1 as float [n, 3, R, R] in [-1, 1], resized (area) to the encoder's size."""
    import torch.nn.functional as F

    images = np.stack([dataset[i] for i in range(a, b)])  # [n, H, W, 3] uint8
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if x.shape[-1] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="area")
    return x


def _chunk_ok(path: Path, n: int, k: int) -> bool:
    if not path.is_file():
        return False
    try:
        distances = _read_chunk(path).get("distances")
    except UserInputError:
        log.warning("%s is damaged; it is computed again", path)
        return False
    return distances is not None and distances.shape == (n, k)


def _read_chunk(path: Path) -> dict:
    from ganedit.utils.arrays import load_npz

    return load_npz(path, "a self-labels chunk")


def _record(labels, boundaries, provenance, config, n) -> dict:
    ranges = label_ranges(labels)
    return {
        "format": FORMAT,
        "format_version": 1,
        "source": "distances",
        "attributes": [b.attribute for b in boundaries],
        "count": n,
        "percentiles": list(PERCENTILES),
        "ranges": ranges.tolist(),
        "boundaries": [b.record for b in boundaries],
        "settings": config.to_dict(),
        **provenance,
    }


def load_labels(folder: str | Path) -> tuple[np.ndarray, dict]:
    """A labels store: labels [N, k] float32 and its record; refused when unfinished,
    damaged or inconsistent."""
    folder = Path(folder)
    record_path = folder / RECORD
    if not record_path.is_file():
        raise UserInputError(
            f"expected a finished self-labels folder (with {RECORD}), received {str(folder)!r}"
        )
    try:
        record = json.loads(record_path.read_text())
        labels = np.load(folder / LABELS, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DamagedInputError(
            f"expected a readable labels store, received {folder} ({err})"
        ) from None
    k = len(record.get("attributes", []))
    if record.get("format") != FORMAT or labels.shape != (record.get("count"), k):
        raise DamagedInputError(
            f"expected {FORMAT} labels of shape [{record.get('count')}, {k}] in {folder}, "
            f"received {labels.shape}"
        )
    if not np.isfinite(labels).all():
        raise DamagedInputError(f"expected finite labels in {folder}, received NaN or infinite")
    return labels, record
