"""Exchange banks with the InterFaceGAN / MAB reference file layout.

    z.npy                float32 [N, z_dim]
    w.npy                float32 [N, w_dim]          (when the bank has w)
    wp.npy               float32 [N, num_ws, w_dim]  (when the bank has ws)
    <attr>_scores.npy    float32 [N, 1]              (InterFaceGAN; one per score, yaw included)
    scores_dict.npy      a pickled dict {attr: float32 [N]} saved with np.save (MAB)
    score_kinds.json     {attr: "probability" | "value"}  (ganedit's; the kinds the bank records)
    modes.npy            float32 [N, k]              (ganedit's; a self-conditioned generator's
                                                      per-row modes, in [0, 1])
    modes.json           {"attributes": [k names], "drawn": ..., "set": {...}}  (with modes.npy)

Score kinds travel with the scores: `bank export` writes `score_kinds.json` (the kinds the bank
records; none for a bank that records none) and `bank import` reads it; `ganedit score`'s .npz
holds them in its `.kinds` entry (a 0-d string array of the same JSON, read without pickle; `.`
cannot start a score name, so the entry never shadows one). Files without kinds keep the old
rule (`directions.sampling.legacy_kind`): `yaw` a value, every other score a probability.

Reading `scores_dict.npy` never runs code from the file: the pickle is read by an unpickler that
can only rebuild numpy arrays, dtypes and scalars, and refuses any other reference.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ganedit.errors import DamagedInputError, UserInputError, expect
from ganedit.latents.bank import (
    DEFAULT_CHUNK_SIZE,
    LatentBank,
    check_target,
    chunk_ranges,
    create_store,
    finalize,
    partial_path,
    write_chunk,
)
from ganedit.models.kinds import check_kinds
from ganedit.models.scoring import KINDS_ENTRY, kinds_entry  # noqa: F401 (re-exported)
from ganedit.utils.arrays import check_finite, existing_file, load_npy, load_npz
from ganedit.utils.bounded import check_npy_header, describe, load_json_bounded, scan_pickle
from ganedit.utils.files import atomic_dir, atomic_path, check_output, output_target

log = logging.getLogger(__name__)

LATENT_FILES = {"z": "z.npy", "w": "w.npy", "ws": "wp.npy"}
SCORES_DICT = "scores_dict.npy"
SCORES_SUFFIX = "_scores.npy"
KINDS_FILE = "score_kinds.json"  # {attr: kind} beside the reference files
MODES_FILE, MODES_RECORD = "modes.npy", "modes.json"  # a self-conditioned bank's per-row modes


# ------------------------------------------------------------------------------------------
# Export


def export_reference(
    bank: LatentBank | str | Path, folder: str | Path, overwrite: bool = False
) -> Path:
    """Write the bank's latents and scores as reference files into the new folder `folder`
    (atomically; latents are streamed chunk by chunk). An existing folder is replaced only
    with `overwrite`, and only when ganedit wrote it."""
    bank = bank if isinstance(bank, LatentBank) else LatentBank.open(bank)
    folder = check_output(folder, overwrite=overwrite, kind="dir")
    with atomic_dir(folder, overwrite=overwrite, what="bank export") as tmp:
        for space in bank.spaces:
            _export_latents(bank, space, tmp / LATENT_FILES[space])
        scores = bank.scores()
        for name, values in scores.items():
            with atomic_path(tmp / f"{name}{SCORES_SUFFIX}") as part, open(part, "wb") as fh:
                np.save(fh, values.astype(np.float32).reshape(-1, 1))
        if scores:
            with atomic_path(tmp / SCORES_DICT) as part, open(part, "wb") as fh:
                # np.save of a dict, as the MAB reference writes it (a pickled 0-d object array).
                np.save(fh, {k: v.astype(np.float32) for k, v in scores.items()}, allow_pickle=True)
        kinds = {name: kind for name, kind in bank.score_kinds.items() if kind is not None}
        if kinds:  # a bank that records no kinds exports none: readers keep the old rule
            with atomic_path(tmp / KINDS_FILE) as part:
                part.write_text(json.dumps(kinds, indent=2) + "\n")
        if bank.mode_attributes:
            _export_modes(bank, tmp)
    log.info("exported %s to %s", bank.path, folder)
    return folder


def _export_modes(bank: LatentBank, folder: Path) -> None:
    """modes.npy (each row's anchor coordinates) and modes.json (their columns, and how they
    were drawn) of a self-conditioned generator's bank."""
    record = {k: v for k, v in bank.mode_record(0, 1).items() if k != "t"}
    with atomic_path(folder / MODES_FILE) as part, open(part, "wb") as fh:
        np.save(fh, bank.modes().astype(np.float32))
    with atomic_path(folder / MODES_RECORD) as part:
        part.write_text(json.dumps(record, indent=2) + "\n")


def _export_latents(bank: LatentBank, space: str, path: Path) -> None:
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.float32, shape=(bank.n, *bank.dims(space))
        )
        for chunk in bank.iter_chunks(spaces=(space,)):
            out[chunk.start : chunk.stop] = chunk.latents[space]
        out.flush()
        del out


# ------------------------------------------------------------------------------------------
# Import


def import_reference(
    folder_or_files: str | Path | Sequence[str | Path],
    out_bank: str | Path,
    generator: str = "imported",
    *,
    predictor: str = "imported",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
) -> Path:
    """Build a complete bank at `out_bank` from reference files.

    `folder_or_files`: a folder holding them, or the file paths. Needs `z.npy`; takes `w.npy`
    and `wp.npy` when present, scores from `scores_dict.npy` and/or `<attr>_scores.npy`
    ([N] or [N, 1]), and their kinds from `score_kinds.json` (checked against the scores;
    the bank records no kind for a score it does not name). Every file must have the same
    number of rows."""
    out = Path(out_bank)
    check_target(out, overwrite)
    out = output_target(out)  # a symlinked bank: written where the link points
    files = _reference_files(folder_or_files)
    latents = {s: _load_latents(p, s) for s, p in files.items() if s in LATENT_FILES}
    expect("z" in latents, "a z.npy among the reference files", sorted(map(str, files.values())))
    n = len(latents["z"])
    for space, array in latents.items():
        _check_rows(files[space], len(array), n)
    if "w" in latents and "ws" in latents:
        expect(
            latents["ws"].shape[2] == latents["w"].shape[1],
            f"wp.npy of width {latents['w'].shape[1]} like w.npy",
            latents["ws"].shape,
        )
    scores = _load_scores(files, n)
    kinds = _reference_kinds(files, scores)
    modes, record = _load_modes(files, n)
    partial = partial_path(out)
    group = create_store(
        partial,
        n=n,
        chunk_size=chunk_size,
        dims={s: a.shape[1:] for s, a in latents.items()},
        score_names=list(scores),
        meta={
            "generator": str(generator),
            "generator_identity": _identity_of(generator),
            "predictor": str(predictor) if scores else None,
            "score_kinds": {name: kinds.get(name) for name in scores},
            "truncation_psi": None,
            "seed": None,
            "imported_from": sorted(str(p) for p in files.values()),
            "config": None,
            **({"modes": record} if record else {}),
        },
        mode_attributes=(record or {}).get("attributes", ()),
    )
    for k, (a, b) in enumerate(chunk_ranges(n, chunk_size)):
        arrays = {s: np.asarray(x[a:b], np.float32) for s, x in latents.items()}
        arrays["index"] = np.arange(a, b, dtype=np.int64)
        arrays.update({f"scores/{name}": v[a:b] for name, v in scores.items()})
        if modes is not None:
            arrays["modes"] = modes[a:b]
        write_chunk(group, k, arrays)
    finalize(partial, out, overwrite)
    log.info("imported %d samples into %s", n, out)
    return out


def _load_modes(files: dict[str, Path], n: int) -> tuple[np.ndarray | None, dict | None]:
    """The per-row modes [n, k] of modes.npy and modes.json's record (both, or neither)."""
    if "modes" not in files and "mode_record" not in files:
        return None, None
    expect(
        "modes" in files and "mode_record" in files,
        f"{MODES_FILE} and {MODES_RECORD} together",
        sorted(p.name for r, p in files.items() if r in ("modes", "mode_record")),
    )
    where = repr(str(files["mode_record"]))
    record = load_json_bounded(files["mode_record"], what="a bank's mode record", where=where)
    names = record.get("attributes") if isinstance(record, dict) else None
    if not (
        isinstance(names, list)
        and names
        and all(isinstance(x, str) and x for x in names)
        and len(set(names)) == len(names)
    ):
        raise DamagedInputError(
            f'expected {{"attributes": [distinct names], ...}} in {where}, received '
            f"{describe(record, 80)}"
        )
    modes = load_npy(files["modes"], f"per-row modes ({MODES_FILE})")
    expect(
        modes.dtype.kind == "f" and modes.shape == (n, len(names)),
        f"float modes of shape ({n}, {len(names)}) in {MODES_FILE}",
        f"{modes.dtype} {modes.shape}",
    )
    check_finite(modes, MODES_FILE)
    if not ((modes >= 0) & (modes <= 1)).all():
        raise DamagedInputError(f"expected modes in [0, 1] in {MODES_FILE}, received others")
    kept = {"attributes": names}
    if isinstance(record.get("drawn"), str):
        kept["drawn"] = record["drawn"]
    return np.asarray(modes, np.float32), kept


def _identity_of(generator: str) -> dict:
    """The named generator's identity when it is one ganedit can find, else the name alone."""
    from ganedit.models.sources import generator_identity

    try:
        return generator_identity(generator)
    except UserInputError:
        return {"name": str(generator), "sha256": None}


def _reference_kinds(files: dict[str, Path], scores: dict[str, np.ndarray]) -> dict[str, str]:
    """The kinds `score_kinds.json` records, checked against the scores (none without it)."""
    if "kinds" not in files:
        return {}
    return check_kinds(scores, read_kinds_file(files["kinds"]), repr(str(files["kinds"])))


def _reference_files(source) -> dict[str, Path]:
    """Role -> path: `z`, `w`, `ws`, `scores_dict`, `score:<attr>`, `kinds`."""
    explicit = not (isinstance(source, str | Path) and Path(source).is_dir())
    if explicit:
        paths = [Path(source)] if isinstance(source, str | Path) else [Path(p) for p in source]
    else:
        paths = sorted(Path(source).glob("*.npy"))
        for name in (KINDS_FILE, MODES_RECORD):
            if (Path(source) / name).exists():
                paths.append(Path(source) / name)
    by_name = {v: k for k, v in LATENT_FILES.items()}
    roles: dict[str, Path] = {}
    for path in paths:
        expect(path.is_file(), "an existing reference file", str(path))
        if path.name in by_name:
            role = by_name[path.name]
        elif path.name == SCORES_DICT:
            role = "scores_dict"
        elif path.name == KINDS_FILE:
            role = "kinds"
        elif path.name == MODES_FILE:
            role = "modes"
        elif path.name == MODES_RECORD:
            role = "mode_record"
        elif path.name.endswith(SCORES_SUFFIX) and len(path.name) > len(SCORES_SUFFIX):
            role = "score:" + path.name[: -len(SCORES_SUFFIX)]
        elif explicit:
            raise UserInputError(
                "expected reference files named z.npy, w.npy, wp.npy, scores_dict.npy, "
                f"<attr>_scores.npy, {KINDS_FILE}, {MODES_FILE} or {MODES_RECORD}, received "
                f"{str(path)!r}"
            )
        else:
            log.info("ignoring %s (not a reference file name)", path)
            continue
        expect(role not in roles, f"one file for {path.name}", [str(roles.get(role)), str(path)])
        roles[role] = path
    return roles


def _load_latents(path: Path, space: str) -> np.ndarray:
    array = load_npy(path, f"{space} latents (.npy)", mmap=True)
    ndim = 3 if space == "ws" else 2
    expect(
        array.ndim == ndim and array.dtype.kind == "f" and len(array) > 0,
        f"float latents of {ndim} dimensions in {path.name}",
        f"{array.dtype} {array.shape}",
    )
    check_finite(array, f"{path.name}")
    return array


def _check_rows(path: Path, rows: int, n: int) -> None:
    expect(rows == n, f"{n} rows in {path.name} (as in z.npy)", rows)


def _load_scores(files: dict[str, Path], n: int) -> dict[str, np.ndarray]:
    scores: dict[str, np.ndarray] = {}
    if "scores_dict" in files:
        for name, values in load_scores_dict(files["scores_dict"]).items():
            scores[name] = _score_column(values, n, f"{SCORES_DICT}[{name!r}]")
    for role, path in files.items():
        if not role.startswith("score:"):
            continue
        name = role.split(":", 1)[1]
        values = _score_column(load_npy(path, "a score array (.npy)"), n, path.name)
        if name in scores and not np.array_equal(scores[name], values):
            raise UserInputError(
                f"expected {path.name} to agree with {SCORES_DICT}[{name!r}], received different "
                "values (keep one of them)"
            )
        scores[name] = values
    return scores


def _score_column(values: np.ndarray, n: int, what: str) -> np.ndarray:
    values = np.asarray(values)
    expect(
        values.dtype.kind in "biuf" and values.shape in ((n,), (n, 1)),
        f"numeric scores of shape ({n},) or ({n}, 1) in {what}",
        f"{values.dtype} {values.shape}",
    )
    check_finite(values, what)
    return values.astype(np.float32).reshape(n)


# ------------------------------------------------------------------------------------------
# Safe reading of scores_dict.npy


def load_scores_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a dict of score arrays without executing code from the file.

    Accepts a `np.save`d dict (a pickled 0-d object array, the MAB `scores_dict.npy`), a
    structured `.npy` (one field per score) or an `.npz` of arrays (its `.kinds` entry is
    not a score: `load_scores_and_kinds` reads it). The pickle may only reference numpy's
    array, dtype and scalar reconstructors; values must be numeric arrays."""
    return _read_scores_dict(existing_file(path, "a scores file"))[0]


def load_scores_and_kinds(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A scores file's arrays (as `load_scores_dict`) and the kinds it records, checked
    against them (`models.kinds.check_kinds`): an .npz's `.kinds` entry, or for a
    `.npy` the `score_kinds.json` in its folder (as `bank export` writes it), for the scores
    read. Empty when the file records none (readers then keep the old rule)."""
    path = existing_file(path, "a scores file")
    scores, kinds = _read_scores_dict(path)
    where = repr(str(path))
    if kinds is None:
        kinds, where = kinds_beside(path, scores), repr(str(path.parent / KINDS_FILE))
    return scores, check_kinds(scores, kinds, where)


def kinds_beside(path: Path, names) -> dict[str, str]:
    """The kinds `score_kinds.json` in the folder of `path` records for `names` (it describes
    every score of that folder; a file of one attribute holds only some of them)."""
    beside = path.parent / KINDS_FILE
    if not beside.is_file():
        return {}
    return {k: v for k, v in read_kinds_file(beside).items() if k in names}


def read_kinds_file(path: str | Path) -> dict[str, str]:
    """{name: kind} from a `score_kinds.json` (structure checked; kinds and names are checked
    against the scores by `check_kinds`)."""
    path = existing_file(path, f"a score kinds file ({KINDS_FILE})")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise DamagedInputError(
            f"expected score kinds as JSON in {str(path)!r}, received an unreadable file ({err})"
        ) from None
    return _parse_kinds(text, repr(str(path)))


def _parse_kinds(text: str, where: str) -> dict[str, str]:
    data = load_json_bounded(
        text.encode("utf-8", "surrogatepass"), what="score kinds {name: kind}", where=where
    )
    ok = isinstance(data, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    )
    if not ok:
        raise DamagedInputError(
            f"expected score kinds as a JSON object {{name: kind}} in {where}, received "
            f"{describe(text.strip(), 80)}"
        )
    return data


def _read_scores_dict(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str] | None]:
    """(scores, the kinds an .npz's `.kinds` entry records, or None without one)."""
    if path.suffix == ".npz":
        arrays = load_npz(path, "an .npz of score arrays")
        entry = arrays.pop(KINDS_ENTRY, None)
        kinds = None if entry is None else _entry_kinds(entry, path)
        return _check_scores(arrays, path), kinds
    return _read_npy_scores(path), None


def _entry_kinds(entry: np.ndarray, path: Path) -> dict[str, str]:
    where = f"the {KINDS_ENTRY} entry of {str(path)!r}"
    if entry.shape != () or entry.dtype.kind != "U":
        raise DamagedInputError(
            f"expected {where} to be one JSON string, received {entry.dtype} {entry.shape}"
        )
    return _parse_kinds(str(entry[()]), where)


def _read_npy_scores(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as fh:
        shape, dtype = _read_npy_header(fh, path)
        if not dtype.hasobject:
            array = load_npy(path, "a scores file (.npy)")
            if array.dtype.names is None:
                raise UserInputError(
                    f"expected a dict of scores in {str(path)!r}, received a plain "
                    f"{array.dtype} array of shape {array.shape} (use <attr>_scores.npy files)"
                )
            return _check_scores({name: np.array(array[name]) for name in array.dtype.names}, path)
        expect(
            shape == () and dtype == np.dtype(object),
            f"a pickled dict (a 0-d object array) in {path.name}",
            f"{dtype} array of shape {shape}",
        )
        loaded = _unpickle(fh, path)
    if isinstance(loaded, np.ndarray) and loaded.shape == () and loaded.dtype == object:
        loaded = loaded.item()
    return _check_scores(loaded, path)


def _read_npy_header(fh, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    shape, _, dtype = check_npy_header(
        fh, path.stat().st_size, what="a scores file", where=repr(str(path))
    )
    return shape, dtype


def _unpickle(fh, path: Path):
    start = fh.tell()
    scan_pickle(fh, what="a dict of plain numeric arrays", where=repr(str(path)))
    fh.seek(start)
    try:
        return _NumericUnpickler(fh).load()
    except UserInputError:
        raise
    except Exception as exc:  # any malformed pickle: a user-fixable bad file
        raise UserInputError(
            f"expected a dict of plain numeric arrays in {str(path)!r}, received an unreadable "
            f"pickle ({describe(f'{type(exc).__name__}: {exc}', 120)[1:-1]})"
        ) from None


def _multiarray():
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    return multiarray


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What pickles of protocol <= 2 use to carry bytes (`_codecs.encode(text, 'latin1')`)."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise UserInputError(
            f"expected a dict of plain numeric arrays, received a pickle encoding with {encoding!r}"
        )
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], object]:
    multiarray = _multiarray()
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    allowed[("_codecs", "encode")] = _latin1_encode
    return allowed


class _NumericUnpickler(pickle.Unpickler):
    """Rebuilds only numpy arrays, dtypes and scalars (plus builtin containers and strings,
    which the pickle format makes without any lookup); every other reference is refused."""

    def find_class(self, module: str, name: str):
        allowed = _allowed_globals().get((module, name))
        if allowed is None:
            raise UserInputError(
                f"expected a dict of plain numeric arrays, received a pickle referencing "
                f"{module}.{name}"
            )
        return allowed

    def persistent_load(self, pid):
        raise UserInputError(
            "expected a dict of plain numeric arrays, received a pickle with persistent ids"
        )


def _check_scores(scores, path: Path) -> dict[str, np.ndarray]:
    if not isinstance(scores, dict):
        raise UserInputError(
            f"expected a dict of plain numeric arrays in {str(path)!r}, received a "
            f"{type(scores).__name__}"
        )
    for key, value in scores.items():
        if not isinstance(key, str):
            raise UserInputError(f"expected string keys in {str(path)!r}, received {describe(key)}")
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise UserInputError(
                f"expected a dict of plain numeric arrays in {str(path)!r}, received "
                f"{describe(key)}: {kind}"
            )
        check_finite(value, f"scores {key!r} in {str(path)!r}")
    return dict(scores)
