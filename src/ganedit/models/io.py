"""The model folder format, without knowing any model: `config.json` beside `model.safetensors`.

    config.json          {"model": registered name, "kwargs": constructor arguments,
                          "format_version": 2, ...extra facts such as the training config}
    model.safetensors    the state dict (tensors only; nothing is unpickled)

Format version 1 named the class (`class_name`) instead of a registered name; it still loads.
Names, classes and their config schemas live in `ganedit.models.registry`, which builds and
checks models with the primitives here: a folder is validated (known format version, a JSON
object, a weights header whose tensors lie inside the file) before anything is allocated.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import re
import struct
import warnings
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ganedit.errors import DamagedInputError, UserInputError
from ganedit.utils.arrays import check_finite
from ganedit.utils.bounded import (
    check_tensor_view,
    describe,
    load_json_bounded,
    scan_torch_file,
)
from ganedit.utils.files import atomic_dir, readable_by_all

FORMAT_VERSION = 2
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
_MAX_HEADER = 100 << 20  # a safetensors header larger than this is not a model's
_DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "BOOL": 1,
}  # fmt: skip

log = logging.getLogger(__name__)


def write_model_folder(
    directory: str | Path,
    name: str,
    kwargs: dict,
    state: dict[str, torch.Tensor],
    extra: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `config.json` and `model.safetensors` into `directory` (atomically)."""
    config = {"model": name, "kwargs": dict(kwargs), "format_version": FORMAT_VERSION}
    config.update(extra or {})
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_dir(directory, overwrite=overwrite, what=f"model {name}") as tmp:
        save_file(tensors, str(tmp / WEIGHTS))
        readable_by_all(tmp / WEIGHTS)
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return Path(directory)


def read_config(directory: str | Path) -> dict:
    """The folder's config.json, checked: a JSON object of a known format version, with a
    model name (or a v1 class name) and a `kwargs` object."""
    directory = Path(directory)
    path = directory / CONFIG
    if not directory.is_dir():
        raise UserInputError(f"expected a model folder, received {str(directory)!r}")
    if not path.is_file():
        raise UserInputError(
            f"expected a model folder with {CONFIG}, received {str(directory)!r} without one"
        )
    config = load_json_bounded(path, what="a model config")
    if not isinstance(config, dict):
        raise DamagedInputError(
            f"expected a JSON object in {str(path)!r}, received a {type(config).__name__}"
        )
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or not version >= 1:
        raise DamagedInputError(
            f"expected an integer format_version in {str(path)!r}, received {describe(version)}"
        )
    if version > FORMAT_VERSION:
        raise UserInputError(
            f"expected a model folder of format version <= {FORMAT_VERSION} (upgrade ganedit "
            f"to read newer ones), received version {version} in {str(path)!r}"
        )
    key = "model" if version >= 2 else "class_name"
    if not isinstance(config.get(key), str):
        raise DamagedInputError(
            f"expected a string {key!r} in {str(path)!r}, received {describe(config.get(key))}"
        )
    if not isinstance(config.get("kwargs"), dict):
        raise DamagedInputError(
            f"expected a 'kwargs' object in {str(path)!r}, received {describe(config.get('kwargs'))}"
        )
    return config


def read_weights_header(path: str | Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (dtype, shape) from a safetensors header, without reading the tensors.

    The header is checked against the file: a truncated file (a tensor that would end past
    the end of the file) or bytes that are not a safetensors header are damaged input."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"expected weights at {str(path)!r}, received no such file")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise DamagedInputError(
                f"expected a safetensors file at {str(path)!r}, received {size} bytes"
            )
        (length,) = struct.unpack("<Q", prefix)
        if length > min(size - 8, _MAX_HEADER):
            raise DamagedInputError(
                f"expected a safetensors file at {str(path)!r}, received one whose header "
                f"length ({length}) does not fit the file ({size} bytes)"
            )
        raw = fh.read(length)
    header = load_json_bounded(
        raw, what="a safetensors header", where=repr(str(path)), max_bytes=_MAX_HEADER
    )
    if not isinstance(header, dict):
        raise DamagedInputError(f"expected a safetensors header object in {str(path)!r}")
    return _tensor_entries(header, path, size - 8 - length)


def _tensor_entries(header: dict, path: Path, data_bytes: int) -> dict:
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
            expected = _DTYPE_BYTES[dtype] * _product(shape)
        except (KeyError, TypeError, ValueError):
            raise DamagedInputError(
                f"expected safetensors entries with dtype, shape and offsets in {str(path)!r}, "
                f"received {describe(str(info), 80)} for {describe(name)}"
            ) from None
        if not (0 <= begin <= end <= data_bytes and end - begin == expected):
            raise DamagedInputError(
                f"expected tensor {describe(name)} ({dtype} {list(shape)}) inside {str(path)!r}, "
                f"received offsets {begin}..{end} of {data_bytes} data bytes (truncated or damaged)"
            )
        entries[name] = (dtype, shape)
    return entries


def _product(shape: tuple) -> int:
    total = 1
    for dim in shape:
        if not isinstance(dim, int) or dim < 0:
            raise ValueError(dim)
        total *= dim
    return total


def check_state_shapes(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[str, tuple[int, ...]]], where: str
) -> None:
    """UserInputError unless the weights hold exactly the expected tensors and shapes."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if tuple(expected[k]) != found[k][1])
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} of other shapes (e.g. {k}: {list(found[k][1])} where the config "
                f"gives {list(expected[k])})"
            )
        raise UserInputError(
            f"expected weights matching the config in {where}, received tensors that belong "
            f"to another model: {'; '.join(parts)}"
        )


def construct(cls: type, kwargs: dict, expected: str):
    """`cls(**kwargs)`; a constructor's refusal of its arguments is one line naming `expected`."""
    try:
        return cls(**kwargs)
    except UserInputError:
        raise
    except (TypeError, ValueError, KeyError, IndexError) as err:
        raise UserInputError(f"expected {expected}, received {kwargs} ({err})") from None


def key_indices(state, pattern: str) -> list[int]:
    """The distinct numbers that group 1 of `pattern` takes among the state's keys, sorted."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for key in state if (m := regex.match(key))})


def _few(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, each checked to be finite."""
    try:
        state = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise DamagedInputError(
            f"expected readable safetensors weights at {str(path)!r}, received: {err}"
        ) from None
    for name, tensor in state.items():
        if tensor.is_floating_point():
            check_finite(tensor.float().numpy(), f"weight {name!r} of {str(path)!r}")
    return state


def safe_torch_load(path: Path, what: str) -> object:
    """`torch.load(weights_only=True)` with every failure turned into one line.

    The file is first held to `scan_torch_file`'s bounds (a torch.save zip or legacy file,
    pickles of bounded nesting and size, storages inside the file), and every tensor loaded
    to `check_tensor_view` (no zero-stride view claiming more than the file stores) before it
    is returned. Only tensors and plain containers are rebuilt (plus argparse.Namespace, the
    attribute bag rosinality's training checkpoints keep under `args`); any other pickled
    object is refused without being loaded, and the message says what the file holds, never
    how to allow it. torch's warnings are not printed (a refusal stays one line)."""
    where = repr(str(path))
    scan_torch_file(path, what=what, where=where)
    value = _torch_load(path, what)
    check_loaded_tensors(value, where)
    return value


def _torch_load(path: Path, what: str) -> object:
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = _refused_global(str(err))
        raise UserInputError(
            f"expected {what} holding only tensors, numbers and strings in {str(path)!r}, "
            f"received pickled Python objects{f' ({found})' if found else ''}; they are not "
            "loaded, since unpickling can run code. Re-save only its tensors and plain "
            "containers (state dicts) with torch.save from a trusted environment."
        ) from None
    except (RuntimeError, EOFError, OSError, KeyError, IndexError, ValueError, TypeError,
            AttributeError, UnicodeDecodeError, struct.error, zipfile.BadZipFile) as err:  # fmt: skip
        reason = "an empty file" if path.stat().st_size == 0 else type(err).__name__
        raise DamagedInputError(
            f"expected {what} in {str(path)!r}, received a file torch cannot read ({reason})"
        ) from None


def check_loaded_tensors(value: object, where: str) -> None:
    """`check_tensor_view` on every tensor in a loaded object (dicts, lists, tuples and
    Namespaces walked without recursion), before any is scanned or copied; dense tensors only."""
    pending, seen = [("", value)], set()
    while pending:
        name, item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, torch.Tensor):
            _check_tensor(item, name or "(the file's tensor)", where)
        elif isinstance(item, dict):
            pending.extend((_join(name, k), v) for k, v in item.items())
        elif isinstance(item, list | tuple):
            pending.extend((f"{name}[{i}]", v) for i, v in enumerate(item))
        elif isinstance(item, argparse.Namespace):
            pending.extend((_join(name, k), v) for k, v in vars(item).items())


def _join(prefix: str, key: object) -> str:
    text = key if isinstance(key, str) and len(key) <= 80 else describe(key, 40)
    return f"{prefix}.{text}" if prefix else text


def _check_tensor(tensor: torch.Tensor, name: str, where: str) -> None:
    if tensor.layout != torch.strided or tensor.is_quantized or tensor.device.type != "cpu":
        raise UserInputError(
            f"expected dense tensors in {where}, received {name} of layout {tensor.layout}"
            f"{' (quantized)' if tensor.is_quantized else ''}"
        )
    size = tensor.element_size()
    check_tensor_view(
        tensor.shape,
        tensor.stride(),
        tensor.storage_offset(),
        tensor.untyped_storage().nbytes() // size,
        size,
        name=name,
        where=where,
    )


def _refused_global(message: str) -> str:
    """The name of the global torch refused, from its message (never its advice on allowing it)."""
    # torch's wording differs between releases ("Unsupported global: GLOBAL x.y", 2.4-2.12;
    # "unsupported GLOBAL x.y whose module x is blocked", 2.13).
    match = re.search(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)", message)
    if match:
        return f"it references {match.group(1)}"
    match = re.search(r"Unsupported operand (\d+)", message)
    return "it uses a pickle operation outside plain data" if match else ""
