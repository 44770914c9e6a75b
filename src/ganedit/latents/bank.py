"""The latent bank: latent codes and their attribute scores, one row per generated sample.

A bank is a zarr v3 directory store (conventionally `*.zarr`):

    z               float32 [N, z_dim]
    w               float32 [N, w_dim]            (generators with a w space)
    ws              float32 [N, num_ws, w_dim]    (optional)
    index           int64   [N]                   (row i is sample (seed, index[i]))
    scores/<attr>   float32 [N]                   (of the kind in meta `score_kinds`)
    modes           float32 [N, k]                (a self-conditioned generator's: each row's
                                                   anchor coordinates, columns `mode_attributes`)
    done            uint8   [n_chunks]            (1 once every array of chunk k is written)
    config.json     the configuration that produced it (also in the group attributes)
    images/         optional PNGs, {i:07d}.png

Every array is chunked along N with the same `chunk_size`, so chunk k of every array belongs to
exactly one writer and is marked in `done[k]` (its own file) once written. The group attributes
hold the metadata (`meta`), including `complete`, set only after every chunk is done, the
generator's identity (name and sha256 of its weights) in `generator_identity`, each score's kind
in `score_kinds` and the truncation psi the samples were rendered at in `truncation_psi` (null
for an imported bank). A bank of a self-conditioned generator stores the modes each row was
rendered at (`modes`, one row per sample, in [0, 1]) and names their columns in
`mode_attributes`; such a bank is format version 2, so an older ganedit refuses it instead of
reading its samples without their modes. (Version-1 banks of such generators recorded one
setting for every row in `meta["modes"]`, {attribute: t}; they are still read.)

Damage is found, not read as data: opening a bank checks that every chunk file of every array
is there and whole (its compressed frame's recorded size matches the file), each chunk carries a
CRC32C checksum that is verified when it is read, and a chunk that fails to decode is reported
naming the array and rows. (zarr would otherwise read a missing chunk as zeros.)
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle, Crc32cCodec

from ganedit.errors import DamagedInputError, UserInputError, expect
from ganedit.models.kinds import KINDS
from ganedit.utils.bounded import describe, load_json_bounded
from ganedit.utils.files import (
    check_output,
    made_by_ganedit,
    output_target,
    record_files,
    swap_in,
)

FORMAT = "ganedit.latent_bank"
FORMAT_VERSION = 2  # 2: per-row modes (`modes`, `mode_attributes`); 1 without them
SPACES = ("z", "w", "ws")
DEFAULT_CHUNK_SIZE = 4096
SCORE_KINDS = KINDS
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# zarr v3 keeps each node's metadata in `zarr.json` and reserves names starting with "__": a
# score of such a name would collide with its group's metadata (compared without case, as
# macOS and Windows file systems do).
_RESERVED = ("zarr.json",)


def check_score_names(names: Sequence[str]) -> None:
    """UserInputError unless every score name can be an array of a bank: letters, digits,
    '_', '.', '-', distinct, and none of zarr's reserved names."""
    for name in names:
        expect(bool(_NAME.match(str(name))), "score names of letters, digits, '_', '.', '-'", name)
        if str(name).lower() in _RESERVED or str(name).startswith("__"):
            raise UserInputError(
                f"expected score names other than zarr's reserved {', '.join(_RESERVED)} and "
                f"names starting with '__', received {str(name)!r}"
            )
    expect(len(set(names)) == len(names), "distinct score names", names)


def ganedit_version() -> str:
    try:
        return importlib.metadata.version("ganedit")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def partial_path(path: str | Path) -> Path:
    """Where a bank is written until it is complete: `<path>.partial`."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def chunk_ranges(n: int, chunk_size: int) -> list[tuple[int, int]]:
    """Row ranges [start, stop) of the chunks of an N-row bank."""
    return [(a, min(a + chunk_size, n)) for a in range(0, n, chunk_size)]


@dataclasses.dataclass(frozen=True)
class BankChunk:
    """Rows [start, stop) of a bank: latents by space, scores by name, sample indices."""

    start: int
    stop: int
    index: np.ndarray  # [R] int64
    latents: dict[str, np.ndarray]  # space -> [R, ...] float32
    scores: dict[str, np.ndarray]  # name -> [R] float32


class LatentBank:
    """Read access to a complete bank. Open with `LatentBank.open(path)`."""

    def __init__(self, path: Path, group: zarr.Group):
        self.path = path
        self._group = group
        self._meta = dict(group.attrs)

    @classmethod
    def open(cls, path: str | Path, verify: bool = True) -> LatentBank:
        """Open a complete bank; `verify` checks every chunk file is present and whole."""
        path = Path(path)
        if not path.exists():
            hint = ""
            if partial_path(path).exists():
                hint = (
                    f"; {partial_path(path)} holds an interrupted generation, run the same "
                    "generation again to resume it"
                )
            raise UserInputError(
                f"expected a latent bank at {str(path)!r}, received no such path{hint}"
            )
        group = open_store(path, mode="r")
        meta = dict(group.attrs)
        if not meta.get("complete"):
            raise UserInputError(
                f"expected a complete latent bank at {str(path)!r}, received an incomplete one "
                f"({_count_done(group)} of {meta.get('n_chunks')} chunks written); run the same "
                "generation again to resume it"
            )
        bank = cls(path, group)
        if verify:
            verify_chunks(path, bank.array_names(), meta)
        return bank

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return (
            f"LatentBank({str(self.path)!r}, n={self.n}, spaces={self.spaces}, "
            f"scores={self.score_names})"
        )

    @property
    def n(self) -> int:
        return int(self._meta["n"])

    @property
    def meta(self) -> dict:
        """A copy of the group attributes (generator, predictor, seed, dims, config...)."""
        return dict(self._meta)

    @property
    def spaces(self) -> tuple[str, ...]:
        return tuple(self._meta["spaces"])

    @property
    def score_names(self) -> tuple[str, ...]:
        return tuple(self._meta["score_names"])

    @property
    def score_kinds(self) -> dict[str, str | None]:
        """name -> "probability" or "value", as the predictor declared; None where the bank
        records no kind (written before kinds were recorded, or imported)."""
        recorded = self._meta.get("score_kinds")
        recorded = recorded if isinstance(recorded, dict) else {}
        return {name: recorded.get(name) for name in self.score_names}

    @property
    def truncation_psi(self) -> float | None:
        """The truncation psi the bank's samples were rendered and scored at (as in its
        config); None where it records none (an imported bank)."""
        psi = self._meta.get("truncation_psi")
        return None if psi is None else float(psi)

    @property
    def chunk_size(self) -> int:
        return int(self._meta["chunk_size"])

    @property
    def config(self) -> dict | None:
        """The generation config (None for an imported bank)."""
        return self._meta.get("config")

    @property
    def generator_identity(self) -> dict:
        """{"name", "sha256"} of the generator that made the bank (sha256 None if unknown),
        and "class" when a class-conditional generator rendered one class."""
        identity = self._meta.get("generator_identity") or {}
        out = {"name": identity.get("name", self._meta.get("generator")),
               "sha256": identity.get("sha256")}  # fmt: skip
        if type(identity.get("class")) is int:
            out["class"] = identity["class"]
        return out

    def array_names(self) -> list[str]:
        """Every stored array: the spaces, `index`, `done`, `scores/<name>` and `modes`."""
        return stored_arrays(self._meta)

    @property
    def mode_attributes(self) -> tuple[str, ...]:
        """The attributes of the stored per-row modes' columns (empty: none stored)."""
        return tuple(self._meta.get("mode_attributes") or ())

    def modes(self, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        """Rows [start, stop) of the anchor coordinates [R, k] each sample was rendered at (a
        self-conditioned generator's, columns `mode_attributes`); None when the bank stores
        none."""
        if not self.mode_attributes:
            return None
        start, stop = self._range(start, stop)
        return self._read("modes", start, stop)

    def mode_record(self, start: int = 0, stop: int | None = None) -> dict | None:
        """The modes rows [start, stop) were rendered at, as codes' origins record them:
        {"attributes", "t" [R, k], "drawn", "set"} for per-row modes, a version-1 bank's one
        setting {attribute: t}, or None for a bank without modes."""
        t = self.modes(start, stop)
        if t is None:
            legacy = self._meta.get("modes")
            return dict(legacy) if isinstance(legacy, dict) else None
        summary = self._meta.get("modes") if isinstance(self._meta.get("modes"), dict) else {}
        return {**summary, "attributes": list(self.mode_attributes), "t": t}

    def dims(self, space: str) -> tuple[int, ...]:
        """Per-row shape of a space: (z_dim,), (w_dim,) or (num_ws, w_dim)."""
        self._check_space(space)
        return tuple(self._meta["dims"][space])

    def latents(self, space: str = "z", start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) of space `z`, `w` or `ws` as float32."""
        self._check_space(space)
        start, stop = self._range(start, stop)
        return self._read(space, start, stop)

    def index(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        start, stop = self._range(start, stop)
        return self._read("index", start, stop)

    def scores(
        self, names: Sequence[str] | None = None, start: int = 0, stop: int | None = None
    ) -> dict[str, np.ndarray]:
        """name -> float32 [stop - start] for each requested score (all when None)."""
        names = self.score_names if names is None else tuple(names)
        for name in names:
            expect(name in self.score_names, f"a score name in {self.score_names}", name)
        start, stop = self._range(start, stop)
        return {name: self._read(f"scores/{name}", start, stop) for name in names}

    def iter_chunks(
        self,
        spaces: Sequence[str] = ("z",),
        scores: Sequence[str] | None = (),
        rows: int | None = None,
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[BankChunk]:
        """Stream rows [start, stop) in blocks of `rows` (default: the bank's chunk size).

        `scores=None` reads every score, `()` none. Memory holds one block at a time."""
        for space in spaces:
            self._check_space(space)
        rows = self.chunk_size if rows is None else rows
        expect(rows >= 1, "rows >= 1", rows)
        start, stop = self._range(start, stop)
        for a in range(start, stop, rows):
            b = min(a + rows, stop)
            yield BankChunk(
                a,
                b,
                self.index(a, b),
                {space: self.latents(space, a, b) for space in spaces},
                self.scores(scores, a, b) if scores is None or len(scores) else {},
            )

    def image_path(self, i: int) -> Path | None:
        """The PNG of sample row i when the bank was generated with images, else None."""
        path = self.path / "images" / f"{int(i):07d}.png"
        return path if path.is_file() else None

    def _read(self, name: str, start: int, stop: int) -> np.ndarray:
        try:
            return self._group[name][start:stop]
        except (ValueError, RuntimeError, OSError, KeyError) as err:
            raise DamagedInputError(
                f"expected readable chunks of {name!r} rows {start}..{stop} in "
                f"{str(self.path)!r}, received damaged data ({err})"
            ) from None

    def _check_space(self, space: str) -> None:
        if space not in self.spaces:
            raise UserInputError(
                f"expected a latent space stored in {str(self.path)!r} {self.spaces}, "
                f"received {space!r}"
            )

    def _range(self, start: int, stop: int | None) -> tuple[int, int]:
        stop = self.n if stop is None else stop
        expect(0 <= start <= stop <= self.n, f"rows 0 <= start <= stop <= {self.n}", (start, stop))
        return int(start), int(stop)


# ------------------------------------------------------------------------------------------
# Writing (used by generate and interchange)


def create_store(
    path: Path,
    *,
    n: int,
    chunk_size: int,
    dims: dict[str, Sequence[int]],
    score_names: Sequence[str],
    meta: dict,
    mode_attributes: Sequence[str] = (),
) -> zarr.Group:
    """Create an empty, incomplete bank at `path` (replacing anything there).

    `dims` maps each stored space to its per-row shape; `meta` adds to the standard attributes;
    `mode_attributes`: a self-conditioned generator's, whose per-row modes the bank stores."""
    expect(n >= 1 and chunk_size >= 1, "n >= 1 and chunk_size >= 1", (n, chunk_size))
    expect("z" in dims and set(dims) <= set(SPACES), f"spaces including 'z' from {SPACES}", dims)
    check_score_names(score_names)
    mode_attributes = [str(a) for a in mode_attributes]
    expect(len(set(mode_attributes)) == len(mode_attributes), "distinct mode attributes",
           mode_attributes)  # fmt: skip
    if path.exists():
        if not made_by_ganedit(path):
            raise UserInputError(
                f"expected a new path for a bank, received {str(path)!r}, which ganedit did not "
                "write (it is not replaced)"
            )
        shutil.rmtree(path)
    spaces = [s for s in SPACES if s in dims]
    attrs = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION if mode_attributes else 1,
        **meta,
        "n": int(n),
        "chunk_size": int(chunk_size),
        "n_chunks": len(chunk_ranges(n, chunk_size)),
        "spaces": spaces,
        "dims": {s: [int(d) for d in dims[s]] for s in spaces},
        "score_names": [str(s) for s in score_names],
        **({"mode_attributes": mode_attributes} if mode_attributes else {}),
        "ganedit_version": ganedit_version(),
        "created": now(),
        "complete": False,
    }
    group = zarr.open_group(path, mode="w", attributes=attrs)
    for space in spaces:
        _rows_array(group, space, (n, *dims[space]), chunk_size, "float32")
    _rows_array(group, "index", (n,), chunk_size, "int64")
    scores = group.create_group("scores")
    for name in score_names:
        _rows_array(scores, str(name), (n,), chunk_size, "float32")
    if mode_attributes:
        _rows_array(group, "modes", (n, len(mode_attributes)), chunk_size, "float32")
    # One uncompressed byte per chunk, each its own file: writers never share a marker.
    group.create_array(
        "done",
        shape=(attrs["n_chunks"],),
        chunks=(1,),
        dtype="uint8",
        compressors=None,
    )
    return group


def _rows_array(group: zarr.Group, name: str, shape: tuple, chunk_size: int, dtype: str) -> None:
    group.create_array(
        name,
        shape=shape,
        chunks=(min(chunk_size, shape[0]), *shape[1:]),
        dtype=dtype,
        # The checksum makes a damaged chunk fail its read instead of decoding into numbers.
        compressors=[
            BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.shuffle),
            Crc32cCodec(),
        ],
    )


def write_chunk(group: zarr.Group, k: int, arrays: dict[str, np.ndarray]) -> None:
    """Write chunk k: `arrays` maps `z`/`w`/`ws`/`index`/`scores/<name>` (and `modes`) to its
    rows; then mark it done. Every stored array must be given, with exactly the chunk's row
    count."""
    attrs = dict(group.attrs)
    n, size = int(attrs["n"]), int(attrs["chunk_size"])
    start, stop = k * size, min((k + 1) * size, n)
    expected = set(stored_arrays(attrs)) - {"done"}
    expect(set(arrays) == expected, f"arrays {sorted(expected)}", sorted(arrays))
    for name, values in arrays.items():
        expect(len(values) == stop - start, f"{stop - start} rows of {name}", len(values))
        _writable(group[name])[start:stop] = values
    _writable(group["done"])[k] = 1


def _writable(array: zarr.Array) -> zarr.Array:
    # Every chunk gets a file, even one equal to the fill value, so that a missing chunk file
    # always means damage (zarr would skip it and read zeros back).
    return array.with_config({"write_empty_chunks": True})


def done_chunks(group: zarr.Group) -> np.ndarray:
    """Boolean [n_chunks]: which chunks are written."""
    return group["done"][:].astype(bool)


def finalize(partial: Path, out: Path, overwrite: bool = False) -> Path:
    """Check every chunk is done and whole, mark the bank complete and move `partial` to `out`."""
    group = open_store(partial, mode="r+")
    done = done_chunks(group)
    if not done.all():
        missing = np.flatnonzero(~done)
        raise RuntimeError(
            f"expected every chunk of {partial} written, received {len(missing)} missing "
            f"(first: {missing[:5].tolist()})"
        )
    attrs = dict(group.attrs)
    verify_chunks(partial, stored_arrays(attrs), attrs)
    check_target(out, overwrite)
    group.attrs.update({"complete": True, "completed": now()})
    record_files(partial, "latent bank")  # what a later --overwrite may replace
    swap_in(partial, output_target(out))
    return out


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse an existing bank path unless `overwrite` (and then only a folder ganedit wrote)."""
    check_output(out, overwrite=overwrite, kind="dir")


def open_store(path: Path, mode: str = "r+") -> zarr.Group:
    """Open a bank's group (complete or not; for writing unless `mode` "r"), its format,
    version and attributes checked."""
    if not (path / "zarr.json").is_file():
        raise UserInputError(
            f"expected a latent bank (a zarr folder) at {str(path)!r}, received no zarr.json"
        )
    try:
        group = zarr.open_group(path, mode=mode)
        attrs = dict(group.attrs)
    except (ValueError, TypeError, KeyError, OSError, RecursionError) as err:
        raise DamagedInputError(
            f"expected readable zarr metadata in {str(path)!r}, received damaged metadata ({err})"
        ) from None
    fmt = attrs.get("format")
    if fmt != FORMAT:
        raise UserInputError(f"expected a latent bank at {str(path)!r}, received format {fmt!r}")
    version = attrs.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserInputError(
            f"expected bank format version <= {FORMAT_VERSION} (upgrade ganedit), "
            f"received {version!r}"
        )
    _check_attrs(attrs, path)
    return group


def _count(value, low: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _check_attrs(attrs: dict, path: Path) -> None:
    """DamagedInputError unless the attributes every reader relies on have their types: a bank
    whose metadata was edited or damaged is refused, not read with wrong counts."""
    n, size, spaces, dims, names = (
        attrs.get(k) for k in ("n", "chunk_size", "spaces", "dims", "score_names")
    )
    problems = []
    if not (_count(n) and _count(size)):
        problems.append(f"n {describe(n)} and chunk_size {describe(size)} (whole numbers >= 1)")
    elif attrs.get("n_chunks") != -(-n // size):
        problems.append(f"n_chunks {describe(attrs.get('n_chunks'))} (ceil(n / chunk_size))")
    if not (isinstance(spaces, list) and "z" in spaces and set(spaces) <= set(SPACES)):
        problems.append(f"spaces {describe(spaces)} (a list with 'z' from {list(SPACES)})")
    elif not (
        isinstance(dims, dict)
        and all(
            isinstance(dims.get(s), list)
            and len(dims[s]) == (2 if s == "ws" else 1)
            and all(_count(d) for d in dims[s])
            for s in spaces
        )
    ):
        problems.append(f"dims {describe(dims)} (per-row sizes of each space)")
    if not (
        isinstance(names, list)
        and all(isinstance(x, str) and _NAME.match(x) and x.lower() not in _RESERVED for x in names)
        and len(set(names)) == len(names)
    ):
        problems.append(f"score_names {describe(names)} (distinct names)")
    modes = attrs.get("mode_attributes")
    if modes is not None and not (
        isinstance(modes, list)
        and modes
        and all(isinstance(x, str) and x for x in modes)
        and len(set(modes)) == len(modes)
    ):
        problems.append(f"mode_attributes {describe(modes)} (distinct attribute names)")
    if not isinstance(attrs.get("generator_identity") or {}, dict):
        problems.append(
            f"generator_identity {describe(attrs.get('generator_identity'))} (an object)"
        )
    kinds = attrs.get("score_kinds")
    if kinds is not None and not (
        isinstance(kinds, dict)
        and isinstance(names, list)
        and set(kinds) <= set(map(str, names))
        and all(v is None or v in SCORE_KINDS for v in kinds.values())
    ):
        problems.append(
            f"score_kinds {describe(kinds)} (a kind in {SCORE_KINDS} or null per score)"
        )
    psi = attrs.get("truncation_psi")
    number = isinstance(psi, int | float) and not isinstance(psi, bool)
    if psi is not None and not (number and 0 <= psi <= 1):
        problems.append(f"truncation_psi {describe(psi)} (a number in [0, 1] or null)")
    if problems:
        raise DamagedInputError(
            f"expected a latent bank's metadata in {str(path)!r}, received damaged "
            f"{'; '.join(problems)}"
        )


def stored_arrays(attrs: dict) -> list[str]:
    """Every array a bank with group attributes `attrs` holds: its spaces, `index`, `done`,
    `scores/<name>` and, with per-row modes, `modes`."""
    modes = ["modes"] if attrs.get("mode_attributes") else []
    return [*attrs["spaces"], "index", "done", *(f"scores/{s}" for s in attrs["score_names"]),
            *modes]  # fmt: skip


def _expected_arrays(attrs: dict) -> dict[str, tuple[list[int], str]]:
    """Array name -> (shape, data type) that the attributes describe."""
    n, spaces, dims = attrs["n"], attrs["spaces"], attrs["dims"]
    expected = {s: ([n, *dims[s]], "float32") for s in spaces}
    expected["index"] = ([n], "int64")
    expected["done"] = ([attrs["n_chunks"]], "uint8")
    expected.update({f"scores/{s}": ([n], "float32") for s in attrs["score_names"]})
    if attrs.get("mode_attributes"):
        expected["modes"] = ([n, len(attrs["mode_attributes"])], "float32")
    return expected


def verify_chunks(path: Path, names: Sequence[str], attrs: dict | None = None) -> None:
    """DamagedInputError unless every chunk file of every named array is present and whole
    (and, given the group attributes, each array has the shape and type they describe).

    Whole: a Blosc frame records its compressed size in its header; the file must have exactly
    that size (plus the 4-byte checksum when the array has one). Reads 16 bytes per chunk."""
    expected = _expected_arrays(attrs) if attrs is not None else {}
    for name in names:
        meta = _array_metadata(path, name)
        shape_and_type = ([*meta["shape"]], meta.get("data_type"))
        if name in expected and shape_and_type != expected[name]:
            raise DamagedInputError(
                f"expected array {name!r} of shape {expected[name][0]} and type "
                f"{expected[name][1]} in {str(path)!r} (its metadata), received "
                f"{shape_and_type[0]} of type {shape_and_type[1]!r}"
            )
        codecs = [c.get("name") for c in meta.get("codecs", [])]
        shape, chunks = meta["shape"], meta["chunk_grid"]["configuration"]["chunk_shape"]
        grid = [-(-n // c) for n, c in zip(shape, chunks, strict=True)]
        separator = (
            meta.get("chunk_key_encoding", {}).get("configuration", {}).get("separator", "/")
        )
        for index in np.ndindex(*grid):
            key = separator.join(["c", *map(str, index)])
            _check_chunk_file(
                path / name / key, f"chunk {index[0]} of {name!r} in {str(path)!r}", codecs
            )


def _array_metadata(path: Path, name: str) -> dict:
    file = path / name / "zarr.json"
    if not file.is_file():
        raise DamagedInputError(
            f"expected the metadata of array {name!r} in {str(path)!r}, received no {file.name}"
        )
    meta = load_json_bounded(file, what=f"the metadata of array {name!r}")
    try:
        shape, chunks = meta["shape"], meta["chunk_grid"]["configuration"]["chunk_shape"]
        whole = isinstance(shape, list) and isinstance(chunks, list) and len(shape) == len(chunks)
        if not (whole and all(_count(d, 0) for d in shape) and all(_count(c) for c in chunks)):
            raise ValueError(f"shape {shape!r} with chunks {chunks!r}")
    except (ValueError, KeyError, TypeError) as err:
        raise DamagedInputError(
            f"expected the metadata of array {name!r} in {str(path)!r}, received none readable "
            f"({type(err).__name__}: {str(err)[:80]})"
        ) from None
    return meta


def _check_chunk_file(file: Path, where: str, codecs: list) -> None:
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        raise DamagedInputError(f"expected {where}, received a missing chunk file") from None
    if size == 0:
        raise DamagedInputError(f"expected {where}, received an empty chunk file")
    if "blosc" not in codecs or len(head) < 16:
        return
    compressed = int.from_bytes(head[12:16], "little")
    expected = compressed + (4 if "crc32c" in codecs else 0)
    if size != expected:
        raise DamagedInputError(
            f"expected {where} of {expected} bytes (its frame header), received {size} bytes "
            "(truncated or damaged)"
        )


def _count_done(group: zarr.Group) -> int:
    return int(done_chunks(group).sum()) if "done" in group else 0
