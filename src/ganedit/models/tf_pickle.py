"""Read NVIDIA's TensorFlow network pickles (PGGAN, StyleGAN, StyleGAN2) without TensorFlow.

NVIDIA's TensorFlow releases (`karras2018iclr-*.pkl` of tkarras/progressive_growing_of_gans,
`karras2019stylegan-*.pkl` of NVlabs/stylegan, `stylegan2-*-config-{e,f}.pkl` of
NVlabs/stylegan2, and every `network-snapshot-*.pkl` they trained) are plain pickles of a
tuple (G, D, Gs). Each network is a `Network` object (`dnnlib.tflib.network.Network` for
StyleGAN and StyleGAN2, `tfutil.Network` for PGGAN) whose pickled state is its
`__getstate__` dict: `version`, `name`, `static_kwargs` (the build function's keyword
arguments), `components` (sub-networks: StyleGAN's `mapping` and `synthesis`),
`build_module_src` (the Python source of the module that builds the graph),
`build_func_name` (`G_style`, `G_main`, `G_paper`, ...) and `variables`, a list of
(TensorFlow variable name, numpy array) pairs. NVIDIA's loader executes `build_module_src`
and rebuilds the TensorFlow graph.

This module runs nothing. Its unpickler resolves a short allow-list of names to stand-ins of
its own (`_ALLOWED`) and refuses every other name:

- the two `Network` classes become shells that keep the state as a `TFNetwork` record;
  `build_module_src` is kept as text and never compiled, imported or run;
- numpy arrays (`_reconstruct` + ndarray state, or a numpy scalar) are rebuilt from their raw
  bytes, only for numeric dtypes (bool, int, uint, float; object, string, void and structured
  dtypes are refused), after checking that the claimed shape times the item size is exactly
  the number of bytes given, before anything is allocated;
- protocol 2's `_codecs.encode(text, "latin1")` (how Python 3 writes bytes at protocol 2)
  and `dnnlib.util.EasyDict` (a dict) are the only other names.

The file is read through a reader that refuses to read past its end, so a damaged length
field cannot make the unpickler allocate more than the file holds. The records are then
mapped onto ganedit's generators by `ganedit.models.tf_generators`.
"""

from __future__ import annotations

import io
import math
import pickletools
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganedit.errors import UserInputError
from ganedit.models.restricted_pickle import Refused, restricted_load

WHAT = "a TensorFlow network pickle (NVIDIA's PGGAN, StyleGAN or StyleGAN2)"
# (module, class) of the pickled networks, and the state versions their loaders accept.
NETWORK_CLASSES = {
    ("dnnlib.tflib.network", "Network"): ("dnnlib", (2, 3, 4)),
    ("tfutil", "Network"): ("tfutil", (2,)),
}
NUMERIC_DTYPES = ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")
MAX_NDIM = 8
MAX_DEPTH = 16  # nesting of static kwargs; NVIDIA's are flat
PEEK_BYTES = 1 << 16  # the first global of a network pickle sits in its first few bytes
_STATE_KEYS = {
    "version",
    "name",
    "static_kwargs",
    "components",
    "build_module_src",
    "build_func_name",
    "variables",
}


@dataclass(frozen=True)
class TFNetwork:
    """What ganedit keeps of one pickled `Network`: its state, never run.

    Attributes:
        origin: "dnnlib" (`dnnlib.tflib.network.Network`: StyleGAN, StyleGAN2) or "tfutil"
            (`tfutil.Network`: PGGAN).
        version: the state's version (PGGAN 2, StyleGAN 3, StyleGAN2 4).
        name: the network's name ("G", "Gs", "G_synthesis", ...).
        build_func_name: the function that builds its graph ("G_style", "G_main", ...).
        static_kwargs: that function's keyword arguments, as plain Python values.
        components: sub-networks by key ("mapping", "synthesis").
        variables: TensorFlow variable names (relative to the network) to arrays.
        build_module_src: the source NVIDIA's loader would execute; kept as text only.
    """

    origin: str
    version: int
    name: str
    build_func_name: str
    static_kwargs: dict
    components: dict
    variables: dict
    build_module_src: str = field(repr=False)


# ------------------------------------------------------------------------------------------
# Stand-ins for the allowed names


class _DtypeShell:
    """Stands in for `numpy.dtype(name, align, copy)` and its pickled state: a numeric dtype
    and its byte order."""

    def __init__(self, name=None, align=False, copy=False):
        if name not in NUMERIC_DTYPES:
            shown = repr(name) if isinstance(name, str) else type(name).__name__
            raise Refused("arrays of a numeric dtype (bool, int, uint, float)", f"dtype {shown}")
        self.dtype = np.dtype(name)

    def __setstate__(self, state) -> None:
        ok = isinstance(state, tuple) and len(state) in (8, 9) and state[1] in ("<", ">", "|", "=")
        if not ok or any(part is not None for part in state[2:5]):
            # state[2:5] are a sub-array, field names and fields: never a numeric dtype's.
            raise Refused("a numeric numpy dtype", "a structured or damaged one", damaged=True)
        if state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


class _NdarrayName:
    """What `numpy.ndarray` resolves to: a name `_reconstruct` accepts, not callable."""

    __slots__ = ()


_NDARRAY = _NdarrayName()


def _shape_of(shape) -> tuple[int, ...]:
    ok = isinstance(shape, tuple) and len(shape) <= MAX_NDIM
    if not ok or not all(type(n) is int and n >= 0 for n in shape):
        raise Refused("an array shape (whole numbers >= 0)", describe(shape), damaged=True)
    return shape


def _array_from_bytes(raw, dtype: _DtypeShell, shape, fortran: bool = False) -> np.ndarray:
    """An array of `shape` read from `raw`, which must hold exactly its bytes."""
    if not isinstance(dtype, _DtypeShell) or not isinstance(raw, bytes | bytearray):
        raise Refused("array bytes of a numeric dtype", type(raw).__name__, damaged=True)
    shape = _shape_of(shape)
    needed = math.prod(shape) * dtype.dtype.itemsize
    if needed != len(raw):  # checked before anything of that size is allocated
        raise Refused(
            f"{needed} bytes for an array of shape {list(shape)} and dtype {dtype.dtype.str}",
            f"{len(raw)} bytes",
            damaged=True,
        )
    flat = np.frombuffer(raw, dtype=dtype.dtype)
    array = flat.reshape(shape, order="F" if fortran else "C")
    return array.astype(dtype.dtype.newbyteorder("="), order="C", copy=True)


class _ArrayShell:
    """Stands in for the ndarray `_reconstruct` makes; its BUILD state (version, shape,
    dtype, is_fortran, raw bytes) becomes `array`."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state) -> None:
        ok = isinstance(state, tuple) and len(state) == 5 and state[0] == 1
        if not ok or not isinstance(state[3], bool):
            raise Refused("a numpy array state (1, shape, dtype, fortran, bytes)", describe(state))
        _, shape, dtype, fortran, raw = state
        self.array = _array_from_bytes(raw, dtype, shape, fortran)


def _reconstruct(subtype, shape, typecode) -> _ArrayShell:
    """Stands in for `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`."""
    if subtype is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
        raise Refused("numpy arrays (_reconstruct of ndarray)", describe(subtype))
    return _ArrayShell()


def _scalar(dtype, data=None) -> np.ndarray:
    """Stands in for `numpy.core.multiarray.scalar`: a 0-d array (TensorFlow returns a
    variable of shape [] such as `lod` as a numpy scalar)."""
    return _array_from_bytes(data, dtype, ())


def _frombuffer(buffer, dtype, shape, order="C") -> np.ndarray:
    """Stands in for `numpy.core.numeric._frombuffer` (protocol 5's arrays)."""
    if order not in ("C", "F"):
        raise Refused("array order 'C' or 'F'", describe(order), damaged=True)
    return _array_from_bytes(buffer, dtype, shape, order == "F")


def _latin1(text, encoding="latin1") -> bytes:
    """Stands in for `_codecs.encode(text, 'latin1')`, which protocol 2 writes for bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise Refused("bytes written as latin-1 text", f"encoding {describe(encoding)}")
    return text.encode("latin1")


class _NetworkShell:
    """A pickled `Network`: NEWOBJ makes the shell (without `__init__`), BUILD hands it the
    state, kept as `record` (nothing of it is run); a shell never built keeps None."""

    origin = ""
    versions: tuple[int, ...] = ()
    record: TFNetwork | None = None

    def __setstate__(self, state) -> None:
        self.record = _network_record(self.origin, self.versions, state)


class _DnnlibNetwork(_NetworkShell):
    origin, versions = NETWORK_CLASSES[("dnnlib.tflib.network", "Network")]


class _TfutilNetwork(_NetworkShell):
    origin, versions = NETWORK_CLASSES[("tfutil", "Network")]


# EasyDict pickles as NEWOBJ of its class, then SETITEMS: `dict` stands in for it.
_ALLOWED = {
    ("dnnlib.tflib.network", "Network"): _DnnlibNetwork,
    ("tfutil", "Network"): _TfutilNetwork,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DtypeShell,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _latin1,
    ("dnnlib.util", "EasyDict"): dict,
}


# ------------------------------------------------------------------------------------------
# The network state


def describe(value) -> str:
    """A value from the file for a message: short, and never a deep repr (a short list of
    numbers is shown, anything else by its type)."""
    plain = value is None or isinstance(value, bool | int | float | str)
    numbers = isinstance(value, list | tuple) and len(value) <= 8
    numbers = numbers and all(isinstance(v, int | float) for v in value)
    if not (plain or numbers):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(value, depth: int = 0):
    """A static kwarg as plain Python: numbers, strings, None and lists/tuples/dicts of them
    (a 0-d array, e.g. a numpy int, becomes its number)."""
    if depth > MAX_DEPTH:
        raise Refused(f"static kwargs nested at most {MAX_DEPTH} deep", "deeper ones")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, list | tuple):
        return type(value)(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    raise Refused("static kwargs of plain values", describe(value))


def _variables(pairs) -> dict[str, np.ndarray]:
    """`variables` [(name, array), ...] as a dict; names unique."""
    if not isinstance(pairs, list | tuple):
        raise Refused("variables as a list of (name, array) pairs", describe(pairs), damaged=True)
    out: dict[str, np.ndarray] = {}
    for pair in pairs:
        ok = isinstance(pair, tuple | list) and len(pair) == 2 and isinstance(pair[0], str)
        if not ok:
            raise Refused("variables as (name, array) pairs", describe(pair), damaged=True)
        name, value = pair
        if isinstance(value, _ArrayShell):
            value = value.array
        if not isinstance(value, np.ndarray):
            raise Refused(f"an array for variable {name!r}", describe(value), damaged=True)
        if name in out:
            raise Refused("each variable once", f"{name!r} twice", damaged=True)
        out[name] = value
    return out


def _components(value) -> dict[str, TFNetwork]:
    ok = isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if not ok:
        raise Refused("components as a dict of networks", describe(value), damaged=True)
    out = {}
    for key, shell in value.items():
        if not isinstance(shell, _NetworkShell) or shell.record is None:
            raise Refused(f"component {key!r} as a network", describe(shell), damaged=True)
        out[key] = shell.record
    return out


def _text(state: dict, key: str) -> str:
    value = state.get(key)
    if not isinstance(value, str):
        raise Refused(f"a network's {key} as text", describe(value), damaged=True)
    return value


def _network_record(origin: str, versions: tuple[int, ...], state) -> TFNetwork:
    """The record of one network's `__getstate__` dict (checked; nothing run)."""
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise Refused("a network state dict", describe(state), damaged=True)
    unknown = sorted(set(state) - _STATE_KEYS)
    missing = sorted(_STATE_KEYS - {"components"} - set(state))
    if unknown or missing:
        raise Refused(
            f"a network state with keys {sorted(_STATE_KEYS)}",
            f"unknown {unknown[:3]}, missing {missing[:3]}",
            damaged=True,
        )
    version = state["version"]
    if type(version) is not int or version not in versions:
        raise Refused(f"network state version in {list(versions)}", describe(version))
    static = _plain(state["static_kwargs"])
    if not isinstance(static, dict):
        raise Refused("static kwargs as a dict", describe(static), damaged=True)
    return TFNetwork(
        origin=origin,
        version=version,
        name=_text(state, "name"),
        build_func_name=_text(state, "build_func_name"),
        static_kwargs=static,
        components=_components(state.get("components", {})),
        variables=_variables(state["variables"]),
        build_module_src=_text(state, "build_module_src"),
    )


# ------------------------------------------------------------------------------------------
# The restricted unpickler


def _networks(top, where: str) -> tuple[TFNetwork, ...]:
    """The pickle's (G, D, Gs) as records."""
    ok = isinstance(top, tuple) and len(top) == 3
    ok = ok and all(isinstance(n, _NetworkShell) and n.record is not None for n in top)
    if not ok:
        shown = f"a tuple of {len(top)}" if isinstance(top, tuple) else describe(top)
        raise UserInputError(
            f"expected {WHAT} holding a tuple (G, D, Gs) in {where}, received {shown}"
        )
    return tuple(n.record for n in top)


def read_tf_pickle(path: str | Path) -> tuple[TFNetwork, TFNetwork, TFNetwork]:
    """The pickle's networks (G, D, Gs) as records; nothing in the file is run.

    Raises:
        UserInputError: no such file, a reference outside the allow-list (nothing it
            references is imported or run), a non-numeric array, or not a (G, D, Gs) tuple.
        DamagedInputError: a truncated or corrupt pickle, an array whose bytes do not
            match its shape.
    """
    where = repr(str(path))
    contents = "only networks, numeric arrays and plain data"
    top = restricted_load(path, _ALLOWED, what=WHAT, contents=contents)
    return _networks(top, where)


# ------------------------------------------------------------------------------------------
# Telling a TensorFlow pickle from another


_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}
_NEUTRAL_OPS = {"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"}


def first_global(path: str | Path) -> tuple[str, str] | None:
    """(module, name) of the first global a pickle references, read from its first bytes
    with `pickletools` (which parses, never unpickles); None when there is none there."""
    with open(path, "rb") as fh:
        head = fh.read(PEEK_BYTES)
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(head)):
            if opcode.name == "GLOBAL":
                module, _, name = str(arg).partition(" ")
                return module, name
            if opcode.name == "STACK_GLOBAL":
                return (strings[-2], strings[-1]) if len(strings) >= 2 else None
            if opcode.name in _STRING_OPS:
                strings.append(arg)
            elif opcode.name not in _NEUTRAL_OPS:
                strings.clear()  # STACK_GLOBAL takes the two strings pushed just before it
    except (ValueError, EOFError, UnicodeDecodeError, struct.error):
        return None  # a prefix ends mid-opcode, or damage: not recognisably TensorFlow's
    return None


def is_tf_pickle(path: str | Path) -> bool:
    """Whether a `.pkl` file is one of NVIDIA's TensorFlow network pickles (its first
    global is a `Network` class); False for a missing file or any other pickle."""
    path = Path(path)
    return path.is_file() and first_global(path) in NETWORK_CLASSES
