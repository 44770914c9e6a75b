"""Reading numeric arrays that users bring: every failure is named, nothing is misread.

A zero-byte, truncated or random-byte `.npy`/`.npz` is damaged input (not a traceback, and
not typer's "Aborted." that an EOFError turns into); pickled object arrays are refused
without being unpickled; non-finite values are found before they reach a fit or a network.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ganedit.errors import DamagedInputError, UserInputError
from ganedit.utils.bounded import check_npy_header, check_npz_members, describe

_BLOCK = 1 << 22  # elements checked per step when scanning a large (memory-mapped) array
_READ_ERRORS = (ValueError, EOFError, OSError, UnicodeDecodeError, KeyError, zipfile.BadZipFile)


def existing_file(path: str | Path, what: str) -> Path:
    """`path` as a Path if it is a readable file, else UserInputError naming `what`."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"expected {what} at {str(path)!r}, received no such file")
    if path.is_dir():
        raise UserInputError(f"expected {what} at {str(path)!r}, received a folder")
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        raise UserInputError(
            f"expected a readable {what} at {str(path)!r}, received {err.strerror}"
        ) from None
    return path


def load_npy(path: str | Path, what: str = "a .npy array", mmap: bool = False) -> np.ndarray:
    """A plain (non-object) array from a .npy file; memory-mapped when `mmap`. Its header is
    checked first: a shape claiming more bytes than the file holds is damaged input."""
    path = existing_file(path, what)
    _check_header(path, what)
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except _READ_ERRORS as err:
        raise _read_error(err, path, what) from None
    if not isinstance(array, np.ndarray):  # np.load returns an NpzFile for .npz archives
        array.close()
        raise UserInputError(f"expected {what} (.npy) in {str(path)!r}, received an .npz archive")
    return array


def load_npz(path: str | Path, what: str = "an .npz archive of arrays") -> dict[str, np.ndarray]:
    """Every array of an .npz archive, read in full (so damage shows now, not later); each
    member's header is checked against its bytes, and the archive against a memory budget."""
    path = existing_file(path, what)
    if zipfile.is_zipfile(path):
        check_npz_members(path, what=what)
    try:
        # Opened here: numpy leaves its own handle open when the zip directory is unreadable.
        with open(path, "rb") as fh:
            archive = np.load(fh, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):  # an array, not an archive
                raise UserInputError(f"expected {what} in {str(path)!r}, received a .npy array")
            with archive:
                return {name: archive[name] for name in archive.files}
    except UserInputError:
        raise
    except _READ_ERRORS as err:
        raise _read_error(err, path, what) from None


def _check_header(path: Path, what: str) -> None:
    """A .npy header's claim against the file (an .npz is left to `np.load`'s own check)."""
    with open(path, "rb") as fh:
        if fh.read(6) != b"\x93NUMPY":
            return  # not a .npy: np.load says what it is (an .npz, damage)
        fh.seek(0)
        check_npy_header(fh, path.stat().st_size, what=what, where=repr(str(path)))


def _read_error(err: Exception, path: Path, what: str) -> UserInputError:
    """What numpy's failure to read `path` means for the user: pickled objects (refused, never
    loaded) or a damaged file."""
    if isinstance(err, ValueError) and ("allow_pickle" in str(err) or "Object arrays" in str(err)):
        # numpy's own message advises loading it unsafely: it is never relayed. numpy says
        # "pickled" of random bytes too, so the file's first bytes say which it is.
        with open(path, "rb") as fh:
            head = fh.read(6)
        if head == b"\x93NUMPY":
            received = "an array of pickled Python objects (not loaded: unpickling can run code)"
        elif head[:1] == b"\x80":  # the PROTO opcode every pickle since protocol 2 opens with
            received = "a pickle (not loaded: unpickling can run code)"
        else:
            return DamagedInputError(
                f"expected {what} in {str(path)!r}, received a file that is not a .npy array"
            )
        return UserInputError(f"expected {what} of numbers in {str(path)!r}, received {received}")
    if path.stat().st_size == 0:
        reason = "an empty file"
    elif isinstance(err, ValueError):
        reason = describe(str(err), 160)[1:-1]
    else:
        reason = describe(f"{type(err).__name__}: {err}", 160)[1:-1]
    return DamagedInputError(
        f"expected {what} in {str(path)!r}, received an unreadable file ({reason})"
    )


def check_finite(array, what: str) -> None:
    """DamagedInputError when `array` holds NaN or inf (scanned in blocks: memmaps stay lazy)."""
    values = np.asarray(array)
    if values.dtype.kind not in "fc":
        return
    flat = values.reshape(-1)
    for start in range(0, flat.size, _BLOCK):
        block = flat[start : start + _BLOCK]
        if not np.isfinite(block).all():
            bad = int((~np.isfinite(block)).sum())
            raise DamagedInputError(
                f"expected finite values in {what}, received {bad} NaN or inf value(s) "
                f"(first near element {start + int(np.flatnonzero(~np.isfinite(block))[0])})"
            )
