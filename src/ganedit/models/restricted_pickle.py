"""Reading a foreign pickle without running it: the part every pickle reader shares.

A reader (NVIDIA's StyleGAN2-ADA `.pkl`, its TensorFlow-era `.pkl`) declares an allow-list,
(module, name) -> one of ganedit's own stand-ins, and calls `restricted_load`. The file is
first scanned for nesting, sizes and memo expansion (`ganedit.utils.bounded.scan_pickle`:
a deep key crashes CPython's unpickler in C, past any Python-level check), then unpickled by
an unpickler that resolves only the allow-list, refuses every other name and persistent ids,
and never reads past the end of the file. Stand-ins raise `Refused` to refuse what they are
given; every failure becomes one line naming what was expected and what was received.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable, Mapping
from pathlib import Path

from ganedit.errors import DamagedInputError, GaneditError, UserInputError
from ganedit.utils.bounded import scan_pickle


class Refused(Exception):
    """Raised inside the unpickler (by it or a stand-in); `restricted_load` turns it into a
    one-line error, damage (`DamagedInputError`) or a user's file of other content."""

    def __init__(self, expected: str, received: str, damaged: bool = False):
        super().__init__(expected, received)
        self.expected, self.received, self.damaged = expected, received, damaged


class _Unpickler(pickle.Unpickler):
    """Resolves only the names of `allowed`, each to ganedit's own stand-in."""

    def __init__(self, file, allowed: Mapping[tuple[str, str], Callable], contents: str):
        super().__init__(file)
        self.allowed, self.contents = allowed, contents

    def find_class(self, module: str, name: str):
        target = self.allowed.get((module, name))
        if target is None:
            raise Refused(
                self.contents,
                f"a reference to {module}.{name}, which was not loaded (unpickling it can "
                "run code)",
            )
        return target

    def persistent_load(self, pid):
        raise Refused(self.contents, "a persistent-id reference")


class _BoundedReader:
    """A file's `read`/`readline` that refuse to read past its end: a length field in a
    damaged pickle then cannot make the unpickler allocate more than the file holds."""

    def __init__(self, fh, size: int):
        self.fh, self.left = fh, size

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self.left:
            raise Refused("a complete pickle", "a truncated one", damaged=True)
        data = self.fh.read(n)
        self.left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self.fh.readline(self.left)
        self.left -= len(line)
        return line


# What a damaged pickle makes the unpickler (or a stand-in given the wrong values) raise.
_DAMAGE = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
           AttributeError, OverflowError, UnicodeDecodeError, MemoryError, RecursionError,
           RuntimeError, struct.error)  # fmt: skip


def restricted_load(
    path: str | Path, allowed: Mapping[tuple[str, str], Callable], *, what: str, contents: str
) -> object:
    """The pickle's top-level object, built only from `allowed`'s stand-ins.

    Args:
        path: the pickle file.
        allowed: (module, name) -> the callable or class the unpickler uses for that name.
        what: the file's kind, for messages ("an NVIDIA StyleGAN2-ADA network pickle").
        contents: what the file may hold, for refusals ("only networks, tensors and plain
            data").

    Raises:
        UserInputError: no such file, or a reference outside `allowed` (nothing it
            references is imported or run).
        DamagedInputError: a truncated, corrupt or over-deep pickle.
    """
    path = Path(path)
    where = repr(str(path))
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a file" if path.exists() else "no such file"
        raise UserInputError(f"expected {what} (.pkl), received {where} ({kind})")
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            scan_pickle(fh, what=what, where=where, size=size)
            fh.seek(0)
            return _Unpickler(_BoundedReader(fh, size), allowed, contents).load()
    except Refused as err:
        error = DamagedInputError if err.damaged else UserInputError
        raise error(f"expected {err.expected} in {where}, received {err.received}") from None
    except GaneditError:
        raise
    except _DAMAGE as err:
        reason = "an empty file" if size == 0 else f"{type(err).__name__}: {err}"
        raise DamagedInputError(
            f"expected {what} in {where}, received a file pickle cannot read ({reason[:200]})"
        ) from None
