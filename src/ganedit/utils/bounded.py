"""Bounds on what a user's file can make ganedit build, checked before anything is built.

A file can describe far more than it holds: a pickle can nest a dict key 300,000 deep (CPython
hashes and prints nested tuples recursively in C, and crashes), or share one object through
its memo so that 198 bytes expand to 10^9 values ("billion laughs"); a tensor header can
claim 10^13 values over one stored number (a zero stride); a JSON file can nest 200,000 deep.
Every reader of such a format goes through this module, which checks the claim against stated
bounds and against the bytes the file holds, and refuses in one line (DamagedInputError)
before unpickling, allocating or scanning:

- `scan_pickle`: the opcode stream (pickletools; nothing is unpickled and nothing is looked
  up), with the unpickler's stack simulated structurally: the nesting depth of every object
  built (through memo references and later mutation too), the items of every container, the
  number of operations and the size each object would have if its shared references were
  written out (what a hash or a repr walks). `scan_torch_file` applies it to the pickles of
  a `torch.save` file (zip: `data.pkl` read from the archive; legacy: its five pickles) and
  checks the storages they claim against the bytes the file holds.
- `check_tensor_view`: a tensor's claimed shape, strides and offset against its storage, a
  memory budget, and no zero or overlapping strides unless the tensor is tiny.
- `check_npy_header`: a `.npy` (or `.npz` member) header's claimed size against its bytes.
- `describe`, `describe_keys`: values from a file rendered short for a message (never a
  deep repr).
- `load_json_bounded`, `load_toml_bounded`: size and nesting bounds for JSON and TOML.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import pickletools
import struct
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

from ganedit.errors import DamagedInputError, GaneditError, UserInputError

MAX_DEPTH = 100  # a StyleGAN2-ADA pickle nests about 40 deep (modules in records in dicts)
MAX_ITEMS = 1 << 20  # items in one pickled container
MAX_OPS = 1 << 21  # pickle operations (a 1024 px NVIDIA snapshot has about 10^5)
MAX_EXPANDED = 1 << 22  # values an object holds with its shared references written out
MAX_PICKLE_BYTES = 1 << 28  # a torch.save file's data.pkl (tensor bytes live beside it)
MAX_LINE = 1 << 20  # one text argument of a protocol-0 opcode
MEMORY_BUDGET = 1 << 34  # bytes of tensors or arrays one file may make ganedit allocate
MAX_OVERLAPPING = 1 << 10  # values a tensor may hold with zero or overlapping strides
MAX_DIMS = 16
MAX_JSON_BYTES = 64 << 20
MAX_JSON_DEPTH = 64

TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of torch.save's legacy format
TORCH_PROTOCOL = 1001
# What `Storage.__reduce__` pickles: torch.save's legacy format, opening with the magic number.
_LEGACY_STORAGE = b"\x80\x02\x8a\x0a" + TORCH_MAGIC.to_bytes(10, "little")
_ZIP_MAGIC = b"PK\x03\x04"
_STORAGE_BYTES = {
    "Double": 8, "Float": 4, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2,
    "Char": 1, "Byte": 1, "Bool": 1, "ComplexDouble": 16, "ComplexFloat": 8, "Untyped": 1,
    "QUInt8": 1, "QInt8": 1, "QInt32": 4, "QUInt4x2": 1, "QUInt2x4": 1,
}  # fmt: skip


# ------------------------------------------------------------------------------------------
# Messages


def describe(value, limit: int = 60) -> str:
    """`value` for a message: a short repr of a number, string or None, else its type and
    length; never a walk of a nested or shared structure."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str | bytes):
        text = repr(value[: limit + 1])
        return text if len(value) <= limit else text[: limit - 3] + "..."
    if isinstance(value, list | tuple) and len(value) <= 8 and all(map(_scalar, value)):
        inner = ", ".join(describe(v, 20) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' * (len(value) == 1)})"
    if (
        isinstance(value, dict)
        and len(value) <= 4
        and all(_scalar(k) and _scalar(v) for k, v in value.items())
    ):
        return (
            "{" + ", ".join(f"{describe(k, 20)}: {describe(v, 20)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def _scalar(value) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def describe_keys(mapping, n: int = 4) -> str:
    """The first `n` string keys of a mapping (sorted), others by type: for 'received ...'."""
    if not isinstance(mapping, Mapping):
        return describe(mapping)
    names = sorted(k for k in itertools.islice(mapping, 10 * n) if isinstance(k, str))
    shown = [describe(k, 40) for k in names[:n]]
    others = len(mapping) - len(shown)
    if others:
        shown.append(f"and {others} more")
    return "keys " + ", ".join(shown) if shown else "no keys"


# ------------------------------------------------------------------------------------------
# Pickles


@dataclass(frozen=True)
class PickleBounds:
    """The bounds `scan_pickle` holds a pickle to."""

    max_depth: int = MAX_DEPTH
    max_items: int = MAX_ITEMS
    max_ops: int = MAX_OPS
    max_expanded: int = MAX_EXPANDED


class GlobalRef(NamedTuple):
    """A name a pickle references (GLOBAL / STACK_GLOBAL / INST): never looked up here."""

    module: str
    name: str


@dataclass(frozen=True)
class PickleScan:
    """What a scan found: the operation count, the result's nesting depth and expanded size,
    the persistent ids (numbers, strings, names and short tuples of them as values; anything
    else as an opaque marker), the names referenced and the stream position after STOP."""

    ops: int
    depth: int
    expanded: int
    persistent_ids: tuple = ()
    globals: frozenset = field(default_factory=frozenset)
    end: int = 0
    value: object = None  # the result itself when it is a literal (a number, a short string)


class _Opaque:
    def __repr__(self) -> str:
        return "<not a literal>"


_OPAQUE = _Opaque()  # the value of what is not a literal (in tuple values: that item)


def _shallow(value):
    """`value` as an item of a literal tuple: scalars, names and flat tuples; else opaque (so
    literal values never nest, whatever the pickle shares)."""
    nested = isinstance(value, tuple) and not isinstance(value, GlobalRef)
    if nested and any(isinstance(v, tuple) and not isinstance(v, GlobalRef) for v in value):
        return _OPAQUE
    return value


class _Node:
    """One object the unpickler would build: nesting depth, expanded size, items, children
    and, for a number, a string, None or a short tuple of those, its value."""

    __slots__ = ("depth", "size", "items", "kids", "value", "parented")

    def __init__(self, value=_OPAQUE):
        self.depth, self.size, self.items = 0, 1, 0
        self.kids: list[_Node] = []
        self.value, self.parented = value, False


class _Exceeded(Exception):
    def __init__(self, expected: str, received: str):
        super().__init__(expected, received)
        self.expected, self.received = expected, received


class _Malformed(Exception):
    """The stream is not a pickle the unpickler could finish (underflow, missing mark...)."""


class _Reader:
    """`read`/`readline` that never read past `size` bytes (a length field in a damaged pickle
    cannot make anything allocate more than the file holds), and `tell` for positions."""

    def __init__(self, fh: BinaryIO, size: int):
        self.fh, self.left = fh, size

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self.left:
            raise _Malformed("truncated")
        data = self.fh.read(n)
        self.left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self.fh.readline(min(self.left, MAX_LINE))
        self.left -= len(line)
        return line

    def tell(self) -> int:
        return self.fh.tell()


_CONSTANTS = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING",
    "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "UNICODE",
    "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT", "NONE", "NEXT_BUFFER",
    "EXT1", "EXT2", "EXT4",
}  # fmt: skip
_LITERAL_TUPLE = 8  # tuples of up to this many literals keep their value (persistent ids)
_PLAIN_DATA = {  # names plain data pickles with: a message names any other first
    GlobalRef("_codecs", "encode"),
    GlobalRef("collections", "OrderedDict"),
    GlobalRef("builtins", "set"),
    GlobalRef("builtins", "frozenset"),
}
_TENSOR_REBUILDS = {
    GlobalRef("torch._utils", "_rebuild_tensor_v2"),
    GlobalRef("torch._utils", "_rebuild_tensor"),
}


class _Machine:
    """The unpickler's stack and memo, holding `_Node`s instead of objects."""

    def __init__(self, bounds: PickleBounds, where: str):
        self.bounds, self.where = bounds, where
        self.stack: list[_Node] = []
        self.marks: list[int] = []
        self.memo: dict[int, _Node] = {}
        self.pids: list = []
        self.globals: set[GlobalRef] = set()
        self.mutated_inside = False  # a container changed after it became another's item

    # -- building

    def push_new(self, kids: list[_Node], items: int, value=_OPAQUE) -> None:
        node = _Node(value)
        self.add(node, kids, items)
        self.stack.append(node)

    def add(self, parent: _Node, kids: list[_Node], items: int) -> None:
        if parent.parented and kids:
            self.mutated_inside = True  # its ancestors' depths are stale: recomputed at STOP
        cap = self.bounds.max_expanded + 1
        for kid in kids:
            kid.parented = True
            parent.kids.append(kid)
            parent.depth = max(parent.depth, kid.depth + 1)
            parent.size = min(parent.size + kid.size, cap)
        parent.items += items
        self.check(parent)

    def check(self, node: _Node) -> None:
        b = self.bounds
        if node.depth > b.max_depth:
            raise _Exceeded(
                f"objects nested at most {b.max_depth} deep",
                f"one nested deeper than {b.max_depth}",
            )
        if node.items > b.max_items:
            raise _Exceeded(
                f"containers of at most {b.max_items} items", f"one of more than {b.max_items}"
            )
        if node.size > b.max_expanded:
            raise _Exceeded(
                f"objects of at most {b.max_expanded} values with their shared references "
                "written out",
                "one whose shared (memo) references expand beyond that",
            )

    # -- the stack

    def pop(self) -> _Node:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise _Malformed("a stack underflow")
        return self.stack.pop()

    def pop_mark(self) -> list[_Node]:
        if not self.marks:
            raise _Malformed("a missing MARK")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def top(self) -> _Node:
        if not self.stack or (self.marks and len(self.stack) == self.marks[-1]):
            raise _Malformed("a stack underflow")
        return self.stack[-1]

    # -- opcodes

    def step(self, name: str, arg) -> None:
        if name in _CONSTANTS:
            if isinstance(arg, bytes) and arg.startswith(_LEGACY_STORAGE):
                self.check_storage_bytes(arg)
            short = not isinstance(arg, str) or len(arg) <= 1024
            literal = arg is None or isinstance(arg, int | float | str)
            self.stack.append(_Node(arg if literal and short else _OPAQUE))
        elif name in ("NEWTRUE", "NEWFALSE"):
            self.stack.append(_Node(name == "NEWTRUE"))
        elif name in ("PROTO", "FRAME", "READONLY_BUFFER"):
            pass
        elif name == "MARK":
            self.marks.append(len(self.stack))
        else:
            getattr(self, "op_" + name, self.unknown)(arg)

    def check_storage_bytes(self, data: bytes) -> None:
        """A `torch.save` file inside the pickle (how plain pickle carries a tensor storage,
        read back by `torch.storage._load_from_bytes`): its pickles are held to the same
        bounds and its storages to its bytes."""
        where = f"a tensor storage in {self.where}"
        _scan_torch_stream(io.BytesIO(data), len(data), "a tensor storage", where, MEMORY_BUDGET)

    def unknown(self, arg) -> None:
        raise _Malformed("an opcode this scanner does not know")

    def _tuple(self, kids: list[_Node]) -> None:
        value = tuple(_shallow(k.value) for k in kids) if len(kids) <= _LITERAL_TUPLE else _OPAQUE
        self.push_new(kids, len(kids), value)

    def op_EMPTY_TUPLE(self, arg) -> None:
        self._tuple([])

    def op_TUPLE(self, arg) -> None:
        self._tuple(self.pop_mark())

    def op_TUPLE1(self, arg) -> None:
        self._tuple([self.pop()])

    def op_TUPLE2(self, arg) -> None:
        b, a = self.pop(), self.pop()
        self._tuple([a, b])

    def op_TUPLE3(self, arg) -> None:
        c, b, a = self.pop(), self.pop(), self.pop()
        self._tuple([a, b, c])

    def op_EMPTY_LIST(self, arg) -> None:
        self.push_new([], 0)

    op_EMPTY_DICT = op_EMPTY_SET = op_EMPTY_LIST

    def op_LIST(self, arg) -> None:
        items = self.pop_mark()
        self.push_new(items, len(items))

    op_FROZENSET = op_OBJ = op_LIST

    def op_DICT(self, arg) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise _Malformed("a dict of an odd number of keys and values")
        self.push_new(items, len(items) // 2)

    def op_INST(self, arg) -> None:
        module, _, name = str(arg).partition(" ")
        self.globals.add(GlobalRef(module, name))
        items = self.pop_mark()
        self.push_new(items, len(items))

    def op_APPEND(self, arg) -> None:
        value = self.pop()
        self.add(self.top(), [value], 1)

    def op_APPENDS(self, arg) -> None:
        items = self.pop_mark()
        self.add(self.top(), items, len(items))

    op_ADDITEMS = op_APPENDS

    def op_SETITEM(self, arg) -> None:
        value, key = self.pop(), self.pop()
        self.add(self.top(), [key, value], 1)

    def op_SETITEMS(self, arg) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise _Malformed("SETITEMS of an odd number of keys and values")
        self.add(self.top(), items, len(items) // 2)

    def op_BUILD(self, arg) -> None:
        state = self.pop()
        self.add(self.top(), [state], 0)

    def op_REDUCE(self, arg) -> None:
        args, fn = self.pop(), self.pop()
        if fn.value in _TENSOR_REBUILDS:
            self.check_rebuild(args.value)
        self.push_new([fn, args], 0)

    def op_NEWOBJ(self, arg) -> None:
        args, cls = self.pop(), self.pop()
        self.push_new([cls, args], 0)

    def check_rebuild(self, args) -> None:
        """A tensor's claimed view, before its storage is known: bounded and not one stored
        value read as many (`check_tensor_view` without the storage)."""
        if not (isinstance(args, tuple) and len(args) >= 4):
            return  # not literal here: the reader's own check of the rebuilt tensor applies
        offset, size, stride = args[1:4]
        if isinstance(size, tuple) and isinstance(stride, tuple) and type(offset) is int:
            check_tensor_view(size, stride, offset, None, 1, name="", where=self.where)

    def op_NEWOBJ_EX(self, arg) -> None:
        kwargs, args, cls = self.pop(), self.pop(), self.pop()
        self.push_new([cls, args, kwargs], 0)

    def _global(self, module: str, name: str) -> None:
        ref = GlobalRef(module, name)
        self.globals.add(ref)
        self.stack.append(_Node(ref))

    def op_GLOBAL(self, arg) -> None:
        module, _, name = str(arg).partition(" ")
        self._global(module, name)

    def op_STACK_GLOBAL(self, arg) -> None:
        name, module = self.pop(), self.pop()
        if not (isinstance(module.value, str) and isinstance(name.value, str)):
            raise _Malformed("STACK_GLOBAL of values that are not strings")
        self._global(module.value, name.value)

    def op_PERSID(self, arg) -> None:
        self.pids.append(arg)
        self.stack.append(_Node())

    def op_BINPERSID(self, arg) -> None:
        pid = self.pop()
        self.pids.append(pid.value)
        self.stack.append(_Node())

    def op_POP(self, arg) -> None:
        if self.marks and len(self.stack) == self.marks[-1]:
            self.marks.pop()  # what both of CPython's unpicklers do: POP at a mark drops it
        else:
            self.pop()

    def op_POP_MARK(self, arg) -> None:
        self.pop_mark()

    def op_DUP(self, arg) -> None:
        self.stack.append(self.top())

    def op_PUT(self, arg) -> None:
        self.memo[arg] = self.top()

    op_BINPUT = op_LONG_BINPUT = op_PUT

    def op_MEMOIZE(self, arg) -> None:
        self.memo[len(self.memo)] = self.top()

    def op_GET(self, arg) -> None:
        if arg not in self.memo:
            raise _Malformed("a memo reference to nothing")
        self.stack.append(self.memo[arg])

    op_BINGET = op_LONG_BINGET = op_GET


def scan_pickle(
    source: bytes | BinaryIO,
    *,
    what: str,
    where: str,
    size: int | None = None,
    bounds: PickleBounds = PickleBounds(),
) -> PickleScan:
    """Check one pickle (from `source`'s current position up to its STOP) against `bounds`
    without unpickling it; the file position is left just after STOP.

    Args:
        source: the bytes, or a binary file object positioned at the pickle.
        what: what the file should be ("an NVIDIA StyleGAN2-ADA network pickle").
        where: the file, as messages name it (`repr(str(path))`).
        size: bytes the pickle may span from the current position (default: to the end).

    Raises:
        DamagedInputError: nesting, container items, operations or expanded size beyond
            `bounds`, or bytes that are not a whole pickle; one line, nothing unpickled.
    """
    fh = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
    if size is None:
        start = fh.tell()
        size = fh.seek(0, io.SEEK_END) - start
        fh.seek(start)
    try:
        return _run(_Reader(fh, size), bounds, where)
    except GaneditError:
        raise
    except _Exceeded as err:
        raise DamagedInputError(
            f"expected {what} of {err.expected} in {where}, received {err.received} "
            "(it was not unpickled)"
        ) from None
    except _Malformed as err:
        raise DamagedInputError(
            f"expected {what} in {where}, received bytes that are not a whole pickle ({err})"
        ) from None
    except (ValueError, EOFError, OverflowError, struct.error) as err:
        reason = str(err).splitlines()[0][:80] if str(err) else type(err).__name__
        raise DamagedInputError(
            f"expected {what} in {where}, received bytes that are not a whole pickle ({reason})"
        ) from None


def _run(reader: _Reader, bounds: PickleBounds, where: str) -> PickleScan:
    machine = _Machine(bounds, where)
    for ops, (opcode, arg, _) in enumerate(pickletools.genops(reader), start=1):
        if ops > bounds.max_ops:
            raise _Exceeded(
                f"at most {bounds.max_ops} pickle operations", f"more than {bounds.max_ops}"
            )
        if opcode.name == "STOP":
            result = machine.pop()
            if machine.mutated_inside:
                result = _exact(result, bounds)
                machine.check(result)
            return PickleScan(
                ops=ops,
                depth=result.depth,
                expanded=result.size,
                persistent_ids=tuple(machine.pids),
                globals=frozenset(machine.globals),
                end=reader.tell(),
                value=None if result.value is _OPAQUE else result.value,
            )
        machine.step(opcode.name, arg)
    raise _Malformed("no STOP")  # genops raises first; kept for clarity


def _exact(root: _Node, bounds: PickleBounds) -> _Node:
    """The depth and expanded size of `root` over the final graph (containers that changed
    after they were nested make the running figures stale); a cycle counts once."""
    cap = bounds.max_expanded + 1
    done: dict[int, tuple[int, int]] = {}
    on_path = {id(root)}
    path = [(root, iter(root.kids))]
    while path:
        node, kids = path[-1]
        for kid in kids:
            if id(kid) not in done and id(kid) not in on_path:
                on_path.add(id(kid))
                path.append((kid, iter(kid.kids)))
                break
        else:
            path.pop()
            on_path.discard(id(node))
            figures = [done[id(k)] for k in node.kids if id(k) in done]
            depth = max((d + 1 for d, _ in figures), default=0)
            size = min(1 + sum(s for _, s in figures), cap)
            done[id(node)] = (depth, size)
            if depth > bounds.max_depth:
                break  # deep enough to refuse: the caller's check says so
    summary = _Node(root.value)
    summary.depth, summary.size = done.get(id(root), (bounds.max_depth + 1, cap))
    return summary


# ------------------------------------------------------------------------------------------
# torch.save files


def scan_torch_file(
    source: str | Path | bytes, *, what: str, where: str | None = None, budget: int = MEMORY_BUDGET
) -> None:
    """Check a `torch.save` file before `torch.load` reads it: it is a zip archive or the
    legacy format (never a tar, which torch would try first), every pickle in it passes
    `scan_pickle`, it pickles no whole module, and every storage it claims lies in the bytes
    the file holds, within `budget` bytes in all.

    Raises:
        DamagedInputError: bytes of no torch file, a pickle beyond the bounds, storages the
            file does not hold.
        UserInputError: a pickled nn.Module (whole-model saves are not read).
    """
    where = where or (repr(str(source)) if not isinstance(source, bytes) else "the bytes given")
    if isinstance(source, bytes):
        _scan_torch_stream(io.BytesIO(source), len(source), what, where, budget)
        return
    try:
        size = Path(source).stat().st_size
        with open(source, "rb") as fh:
            _scan_torch_stream(fh, size, what, where, budget)
    except OSError as err:
        raise UserInputError(
            f"expected {what} at {where}, received an unreadable file ({err.strerror or err})"
        ) from None


def _scan_torch_stream(fh: BinaryIO, size: int, what: str, where: str, budget: int) -> None:
    head = fh.read(512)
    fh.seek(0)
    if head.startswith(_ZIP_MAGIC):
        _scan_torch_zip(fh, what, where, budget)
        return
    if not head:
        raise DamagedInputError(f"expected {what} in {where}, received an empty file")
    if _is_tar_header(head):
        raise UserInputError(
            f"expected {what} in {where}, received a tar archive (torch's oldest format, "
            "which ganedit does not read; re-save it with torch.save)"
        )
    _scan_torch_legacy(fh, size, what, where, budget)


def _is_tar_header(head: bytes) -> bool:
    try:
        tarfile.TarInfo.frombuf(head.ljust(512, b"\0")[:512], "utf-8", "surrogateescape")
    except (tarfile.HeaderError, ValueError):
        return False
    return True


def _not_torch(what: str, where: str) -> DamagedInputError:
    return DamagedInputError(
        f"expected {what} in {where}, received bytes that are not a torch.save file (neither "
        "a zip archive nor torch's legacy format)"
    )


def _scan_torch_legacy(fh: BinaryIO, size: int, what: str, where: str, budget: int) -> None:
    """The legacy format: pickles of the magic number, the protocol version, system facts,
    the object and its storage keys, then each storage's bytes (an 8-byte count first)."""
    try:
        magic = scan_pickle(fh, what=what, where=where, size=size)
    except DamagedInputError:
        raise _not_torch(what, where) from None
    if magic.value != TORCH_MAGIC:
        named = sorted(magic.globals, key=lambda g: (g in _PLAIN_DATA, g))
        if named:
            shown = describe(f"{named[0].module}.{named[0].name}", 80)[1:-1]
            raise UserInputError(
                f"expected {what} in {where}, received pickled Python objects (it references "
                f"{shown}) in a plain pickle, not a torch.save file; they are not loaded, "
                "since unpickling can run code"
            )
        raise _not_torch(what, where)
    scans = [scan_pickle(fh, what=what, where=where, size=size - fh.tell()) for _ in range(4)]
    if scans[0].value != TORCH_PROTOCOL:
        raise DamagedInputError(
            f"expected {what} in {where}, received torch's legacy format of protocol "
            f"{describe(scans[0].value)} (not {TORCH_PROTOCOL})"
        )
    claimed = _claimed_storages(scans[2].persistent_ids, what, where, legacy=True)
    needed = sum(nbytes + 8 for nbytes in claimed.values())
    held = size - fh.tell()
    if needed > min(held, budget):
        raise DamagedInputError(
            f"expected {what} in {where} whose tensor storages fit its {held} bytes of data, "
            f"received storages claiming {needed} bytes (truncated or damaged)"
        )


def _scan_torch_zip(fh: BinaryIO, what: str, where: str, budget: int) -> None:
    """The zip format: `<archive>/data.pkl` and one record `<archive>/data/<key>` per storage."""
    try:
        archive = zipfile.ZipFile(fh)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as err:
        raise DamagedInputError(
            f"expected {what} in {where}, received a zip archive ganedit cannot read "
            f"(truncated or damaged: {describe(str(err))[1:-1]})"
        ) from None
    names = [info.filename for info in infos]
    if not names or len(set(names)) != len(names):
        received = "an empty archive" if not names else "an archive naming a record twice"
        raise DamagedInputError(f"expected {what} in {where}, received {received}")
    prefix = names[0].split("/", 1)[0]  # torch takes the folder of the first record
    records = {info.filename: info for info in infos}
    inflated = sum(info.file_size for info in infos)
    if inflated > budget:
        raise DamagedInputError(
            f"expected {what} in {where} of at most {budget} bytes unpacked, received records "
            f"of {inflated} bytes"
        )
    pkl = records.get(f"{prefix}/data.pkl")
    if pkl is None:
        raise DamagedInputError(
            f"expected {what} in {where}, received a zip archive without {prefix}/data.pkl"
        )
    if pkl.file_size > MAX_PICKLE_BYTES:
        raise DamagedInputError(
            f"expected {what} in {where} whose data.pkl is at most {MAX_PICKLE_BYTES} bytes, "
            f"received {pkl.file_size}"
        )
    try:
        with archive.open(pkl) as stream:
            scan = scan_pickle(stream, what=what, where=where, size=pkl.file_size)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
        raise DamagedInputError(
            f"expected {what} in {where}, received a damaged zip record {pkl.filename!r} "
            f"({type(err).__name__})"
        ) from None
    claimed = _claimed_storages(scan.persistent_ids, what, where, legacy=False)
    for key, nbytes in claimed.items():
        record = records.get(f"{prefix}/data/{key}")
        held = -1 if record is None else record.file_size
        if nbytes > held:
            shown = "none" if record is None else f"{held} bytes"
            raise DamagedInputError(
                f"expected {what} in {where} whose storage {describe(key)} holds the "
                f"{nbytes} bytes its tensors claim, received {shown} (truncated or damaged)"
            )


def _claimed_storages(pids, what: str, where: str, legacy: bool) -> dict[object, int]:
    """Storage key -> bytes, from the persistent ids of a torch.save pickle."""
    claimed: dict[object, int] = {}
    for pid in pids:
        if isinstance(pid, tuple) and pid[:1] == ("module",):
            raise UserInputError(
                f"expected {what} holding only tensors, numbers and strings in {where}, "
                "received a whole pickled nn.Module (not loaded: unpickling it runs code); "
                "save its state_dict() instead"
            )
        width = 6 if legacy else 5
        ok = isinstance(pid, tuple) and len(pid) == width and pid[0] == "storage"
        ok = ok and isinstance(pid[1], GlobalRef) and isinstance(pid[2], str)
        numel = pid[4] if ok else None
        if not (ok and type(numel) is int and numel >= 0):
            raise DamagedInputError(
                f"expected {what} in {where}, received a tensor storage reference that is not "
                "torch's ('storage', type, key, location, size)"
            )
        item = _STORAGE_BYTES.get(pid[1].name.removesuffix("Storage"), 1)
        claimed[pid[2]] = max(claimed.get(pid[2], 0), numel * item)
    return claimed


# ------------------------------------------------------------------------------------------
# Tensors and arrays


def _non_overlapping(shape, stride) -> bool:
    """Whether every index of the view reaches its own storage element (sufficient test:
    dimensions by increasing stride, each stride beyond what the smaller ones span)."""
    reach = 0
    for n, s in sorted(((n, s) for n, s in zip(shape, stride, strict=True) if n > 1),
                       key=lambda p: p[1]):  # fmt: skip
        if s <= reach:
            return False
        reach += (n - 1) * s
    return True


def check_tensor_view(
    shape,
    stride,
    offset: int,
    storage_numel: int | None,
    itemsize: int,
    *,
    name: str,
    where: str,
    budget: int = MEMORY_BUDGET,
) -> int:
    """Check a tensor a file claims, before anything is allocated or scanned: whole-number
    shape and strides of at most MAX_DIMS dimensions, every element inside the storage (of
    `storage_numel` values; None: not known yet), at most `budget` bytes, and no zero or
    overlapping strides (one stored value read as many) unless it holds at most
    MAX_OVERLAPPING values. Returns its number of values.

    Raises:
        DamagedInputError: one line naming the tensor (`name`; "" for any) and the file.
    """
    shape, stride = tuple(shape), tuple(stride)
    name = f"tensor {name}" if name else "every tensor"
    whole = lambda v: all(type(i) is int and i >= 0 for i in v)  # noqa: E731
    if not (whole(shape) and whole(stride) and type(offset) is int and offset >= 0):
        raise DamagedInputError(
            f"expected {name} in {where} of whole-number shape, strides and offset, "
            f"received shape {describe(shape)}"
        )
    if len(shape) != len(stride) or len(shape) > MAX_DIMS:
        raise DamagedInputError(
            f"expected {name} in {where} of at most {MAX_DIMS} dimensions with one "
            f"stride each, received {len(shape)} dimensions and {len(stride)} strides"
        )
    numel = math.prod(shape)
    if numel == 0:
        return 0
    if numel * itemsize > budget:
        raise DamagedInputError(
            f"expected {name} in {where} of at most {budget} bytes, received shape "
            f"{list(shape)} ({numel} values of {itemsize} bytes or more)"
        )
    needed = offset + 1 + sum((n - 1) * s for n, s in zip(shape, stride, strict=True))
    if storage_numel is not None and needed > storage_numel:
        raise DamagedInputError(
            f"expected {name} in {where} inside its storage, received shape "
            f"{list(shape)} needing {needed} values of a storage of {storage_numel}"
        )
    if numel > MAX_OVERLAPPING and not _non_overlapping(shape, stride):
        raise DamagedInputError(
            f"expected {name} in {where} to store each of its values (no zero or "
            f"overlapping strides beyond {MAX_OVERLAPPING} values), received shape "
            f"{list(shape)} with strides {list(stride)}"
        )
    return numel


def check_npy_header(fh: BinaryIO, held: int, *, what: str, where: str) -> tuple:
    """(shape, fortran_order, dtype) of the `.npy` header at `fh`, checked to claim no more
    bytes than the `held` bytes from the header's start (the data follows the header).

    Raises:
        DamagedInputError: an unreadable header, or a shape whose bytes the file lacks.
    """
    import numpy as np

    fmt = np.lib.format
    start = fh.tell()
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        elif version == (3, 0) and hasattr(fmt, "_read_array_header"):  # a utf-8 header
            shape, fortran, dtype = fmt._read_array_header(fh, version)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, EOFError, OSError, SyntaxError, UnicodeDecodeError, TypeError) as err:
        reason = "an empty file" if held == 0 else describe(str(err).splitlines()[0], 80)
        raise DamagedInputError(
            f"expected {what} (a .npy array) in {where}, received an unreadable header ({reason})"
        ) from None
    data = held - (fh.tell() - start)
    if not dtype.hasobject:
        claimed = math.prod(shape) * dtype.itemsize
        if claimed > data:
            raise DamagedInputError(
                f"expected {what} in {where} whose data holds the shape {list(shape)} of "
                f"{dtype} its header claims ({claimed} bytes), received {data} bytes "
                "(truncated or damaged)"
            )
    return tuple(shape), fortran, dtype


def check_npz_members(path: str | Path, *, what: str, budget: int = MEMORY_BUDGET) -> None:
    """Every `.npy` member of an `.npz` archive claims no more than it holds, and the
    archive no more than `budget` bytes unpacked (a compressed member inflates)."""
    where = repr(str(path))
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            inflated = sum(info.file_size for info in infos)
            if inflated > budget:
                raise DamagedInputError(
                    f"expected {what} in {where} of at most {budget} bytes unpacked, received "
                    f"members of {inflated} bytes"
                )
            for info in infos:
                if info.filename.endswith(".npy"):
                    with archive.open(info) as stream:
                        check_npy_header(
                            stream, info.file_size, what=what, where=f"{info.filename} of {where}"
                        )
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
        raise DamagedInputError(
            f"expected {what} in {where}, received a damaged archive ({type(err).__name__})"
        ) from None


# ------------------------------------------------------------------------------------------
# JSON and TOML


def nesting_depth(value, limit: int = MAX_JSON_DEPTH) -> int:
    """How many lists and dicts nest in `value` (0 for a scalar); stops counting past `limit`."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > limit:
            return deepest
        pending.extend((child, depth + 1) for child in children)
    return deepest


def _check_size(data: bytes | str, what: str, where: str, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise UserInputError(
            f"expected {what} of at most {max_bytes} bytes in {where}, received {len(data)}"
        )


def _read(source: str | Path | bytes, what: str, max_bytes: int) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        return source, "the bytes given"
    path = Path(source)
    where = repr(str(path))
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UserInputError(
                f"expected {what} of at most {max_bytes} bytes in {where}, received {size}"
            )
        return path.read_bytes(), where
    except OSError as err:
        raise UserInputError(
            f"expected a readable {what} at {where}, received {err.strerror or err}"
        ) from None


def load_json_bounded(
    source: str | Path | bytes,
    *,
    what: str = "JSON",
    where: str | None = None,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
):
    """Parse JSON from a file (or bytes), refusing in one line: more than `max_bytes`, text
    that is not UTF-8 JSON, or nesting deeper than `max_depth`.

    Raises:
        UserInputError: the file cannot be read or is too large.
        DamagedInputError: invalid JSON or nesting beyond the bound.
    """
    data, named = _read(source, what, max_bytes)
    where = where or named
    _check_size(data, what, where, max_bytes)
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError:
        value = None
        depth = max_depth + 1
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError alike
        reason = describe(str(err).splitlines()[0] if str(err) else "", 120)[1:-1]
        raise DamagedInputError(
            f"expected {what} as valid JSON in {where}, received unreadable JSON ({reason})"
        ) from None
    else:
        depth = nesting_depth(value, max_depth)
    if depth > max_depth:
        raise DamagedInputError(
            f"expected {what} nested at most {max_depth} deep in {where}, received deeper nesting"
        )
    return value


def load_toml_bounded(
    text: str,
    *,
    what: str = "TOML",
    where: str,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> dict:
    """Parse TOML text, refusing more than `max_bytes`, invalid TOML or deeper nesting than
    `max_depth` in one line (UserInputError)."""
    import tomllib

    _check_size(text, what, where, max_bytes)
    try:
        value = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise UserInputError(f"expected valid {what} in {where}, received: {err}") from None
    except RecursionError:
        value, depth = None, max_depth + 1
    else:
        depth = nesting_depth(value, max_depth)
    if depth > max_depth:
        raise UserInputError(
            f"expected {what} nested at most {max_depth} deep in {where}, received deeper nesting"
        )
    return value
