"""Hostile files against ganedit's bounded readers (`ganedit.utils.bounded`), property-based.

What a file describes is checked against stated bounds before it is built: pickles nested
deeper than MAX_DEPTH (a dict key nested 300,000 deep crashes CPython's hash), memo
references that expand 198 bytes into 10^9 values, tensors whose zero strides claim
terabytes over one stored number, .npy headers claiming more than the file holds, JSON and
TOML nested 200,000 deep; and the classes of mistakes next to them: py: callables that are not
predictor factories, zarr's reserved names as score names, predictors returning strings,
scores of several columns given as one attribute's.

The library cases draw their shapes with hypothesis. The command-line cases that crashed the
interpreter (or would allocate or run for hours if the bounds regressed) run in one child
process under a timeout, so a SIGSEGV fails the test instead of killing pytest; each must end
in exit code 2 and one line. The hostile files are written here from raw pickle opcodes.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_run import user_error
from ganedit.errors import DamagedInputError, UserInputError
from ganedit.utils import bounded
from ganedit.utils.arrays import load_npy, load_npz
from ganedit.utils.bounded import (
    MAX_DEPTH,
    MAX_JSON_DEPTH,
    MAX_OVERLAPPING,
    check_tensor_view,
    describe,
    describe_keys,
    load_json_bounded,
    load_toml_bounded,
    scan_pickle,
    scan_torch_file,
)

FAST = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CHILD_TIMEOUT_S = 240  # the whole batch of crash cases; a regression hangs or dies instead
ADVICE = ("allow_pickle", "weights_only=False", "safe_globals", "unsafe")


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and text.startswith("expected ") and "received" in text, text
    assert len(text) < 600, text
    assert not any(a in text for a in ADVICE), text
    return text


# ------------------------------------------------------------------------------------------
# Hostile pickles from raw opcodes (protocol 2 header; FROZENSET is protocol 4)

PROTO = b"\x80\x02"


def nested(kind: str, n: int) -> bytes:
    """An object nested `n` deep: tuples, lists, dict values or frozensets around an empty one."""
    if kind == "tuple":
        return b")" + b"\x85" * n  # EMPTY_TUPLE, TUPLE1 x n
    if kind == "list":
        return b"(" * n + b"]" + b"l" * n  # MARK x n, EMPTY_LIST, LIST x n
    if kind == "dict":
        return b"(K\x00" * n + b"}" + b"d" * n  # {0: {0: ... {}}}
    if kind == "frozenset":
        return b"(" * n + b")" + b"\x91" * n  # ... frozenset({()})
    raise ValueError(kind)


def as_dict_key(obj: bytes) -> bytes:
    """{obj: None}: the unpickler hashes obj (recursively, in C, for tuples)."""
    return PROTO + b"}" + obj + b"Ns."


def billion_laughs(k: int) -> bytes:
    """{t_k: None} with t_0 = (1,), t_{i+1} = (t_i, t_i): 2^k values from a few bytes."""
    body = b"K\x01\x85q\x00" + b"0"  # (1,), BINPUT 0, POP
    for i in range(k):
        body += b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86q" + bytes([i + 1]) + b"0"
    return PROTO + b"}" + body + b"h" + bytes([k]) + b"Ns."


def mutated_chain(n: int) -> bytes:
    """n empty lists, then each appended into the one before it (outer first): the depth only
    shows once the chain is finished."""
    body = b"".join(b"]r" + i.to_bytes(4, "little") + b"0" for i in range(n + 1))
    for i in range(n):
        a, b = i.to_bytes(4, "little"), (i + 1).to_bytes(4, "little")
        body += b"j" + a + b"j" + b + b"a0"  # LONG_BINGET i, LONG_BINGET i+1, APPEND, POP
    return PROTO + body + b"j" + (0).to_bytes(4, "little") + b"."


def torch_zip(data_pkl: bytes, path: Path) -> Path:
    """A torch.save zip archive whose data.pkl is `data_pkl` (other records from a real one)."""
    buf = io.BytesIO()
    torch.save({"a": torch.zeros(2)}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = data_pkl if info.filename.endswith("/data.pkl") else src.read(info)
            out.writestr(info.filename, data)
    return path


def torch_legacy(main_pkl: bytes, path: Path) -> Path:
    """torch.save's legacy format around `main_pkl` (magic, protocol, sys info, keys)."""
    head = [pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {})]
    path.write_bytes(b"".join(head) + main_pkl + pickle.dumps([], protocol=2))
    return path


# ------------------------------------------------------------------------------------------
# The pickle scan


def plain_depth(value) -> tuple[int, int]:
    """(depth, values written out) as the scan counts them: scalars 0 and 1, containers one
    deeper than their deepest item."""
    if isinstance(value, dict):
        items = [x for kv in value.items() for x in kv]
    elif isinstance(value, list | tuple | frozenset):
        items = list(value)
    else:
        return 0, 1
    figures = [plain_depth(v) for v in items]
    return max((d + 1 for d, _ in figures), default=0), 1 + sum(s for _, s in figures)


scalars = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=4) | st.floats(allow_nan=False)
)
plain = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.tuples(inner, inner, inner, inner)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=40,
)


@FAST
@given(value=plain, protocol=st.integers(0, 5))
def test_the_scan_counts_what_the_unpickler_builds(value, protocol):
    scan = scan_pickle(pickle.dumps(value, protocol=protocol), what="a pickle", where="x")
    assert (scan.depth, scan.expanded) == plain_depth(value)
    assert scan.persistent_ids == () and scan.globals == frozenset()


@FAST
@given(
    kind=st.sampled_from(["tuple", "list", "dict", "frozenset"]),
    extra=st.integers(1, 3000),
    as_key=st.booleans(),
)
def test_nesting_beyond_the_bound_is_refused_before_unpickling(kind, extra, as_key):
    body = nested(kind, MAX_DEPTH + extra)
    data = as_dict_key(body) if as_key and kind in ("tuple", "frozenset") else PROTO + body + b"."
    with pytest.raises(DamagedInputError, match=f"nested at most {MAX_DEPTH} deep") as err:
        scan_pickle(data, what="a pickle", where="'x.pkl'")
    assert "not unpickled" in one_line(err.value)


@FAST
@given(
    kind=st.sampled_from(["tuple", "list", "dict", "frozenset"]), n=st.integers(0, MAX_DEPTH - 1)
)
def test_nesting_within_the_bound_is_read(kind, n):
    data = PROTO + nested(kind, n) + b"."
    assert scan_pickle(data, what="a pickle", where="x").depth == n
    assert plain_depth(pickle.loads(data))[0] == n  # plain containers only: safe to build here


@FAST
@given(extra=st.integers(1, 500))
def test_depth_made_by_later_mutation_is_counted(extra):
    n = MAX_DEPTH + extra
    with pytest.raises(DamagedInputError, match="nested at most"):
        scan_pickle(mutated_chain(n), what="a pickle", where="x")
    assert scan_pickle(mutated_chain(MAX_DEPTH), what="a pickle", where="x").depth == MAX_DEPTH


@FAST
@given(k=st.integers(23, 250))
def test_memo_references_that_expand_beyond_the_bound_are_refused(k):
    data = billion_laughs(k)
    assert len(data) < 2200
    with pytest.raises(DamagedInputError, match="shared \\(memo\\) references") as err:
        scan_pickle(data, what="a pickle", where="'laughs.pkl'")
    one_line(err.value)


def test_small_shared_structures_are_read():
    scan = scan_pickle(billion_laughs(10), what="a pickle", where="x")
    assert scan.expanded == 1 + (3 * 2**10 - 1) + 1  # the dict, t_10, None
    assert scan.depth == 12


def test_a_few_hundred_bytes_expanding_to_a_billion_values_are_refused():
    data = billion_laughs(30)  # 10^9 values when written out
    assert len(data) < 300
    with pytest.raises(DamagedInputError, match="expand"):
        scan_pickle(data, what="a pickle", where="x")


@FAST
@given(data=st.binary(max_size=300), header=st.sampled_from([b"", PROTO, b"\x80\x04"]))
def test_any_bytes_are_scanned_or_refused_as_damage(data, header):
    try:
        scan_pickle(header + data, what="a pickle", where="x")
    except DamagedInputError as err:
        one_line(err)


def test_a_length_field_beyond_the_file_is_damage_not_an_allocation():
    data = PROTO + b"\x8e" + (1 << 62).to_bytes(8, "little") + b"."  # BINBYTES8 of 2^62 bytes
    with pytest.raises(DamagedInputError, match="not a whole pickle"):
        scan_pickle(data, what="a pickle", where="x")


def test_containers_beyond_the_item_bound_are_refused():
    data = PROTO + b"(" + b"N" * 50 + b"l."
    small = bounded.PickleBounds(max_items=49)
    with pytest.raises(DamagedInputError, match="at most 49 items"):
        scan_pickle(data, what="a pickle", where="x", bounds=small)
    with pytest.raises(DamagedInputError, match="at most 20 pickle operations"):
        scan_pickle(data, what="a pickle", where="x", bounds=bounded.PickleBounds(max_ops=20))


def test_the_scan_leaves_the_stream_after_stop():
    first, second = pickle.dumps(1, protocol=2), pickle.dumps([2, 3], protocol=2)
    stream = io.BytesIO(first + second)
    assert scan_pickle(stream, what="p", where="x").value == 1
    assert stream.tell() == len(first)
    assert scan_pickle(stream, what="p", where="x").depth == 1


# ------------------------------------------------------------------------------------------
# torch.save files


@pytest.mark.parametrize("kind", ["tuple", "frozenset", "list"])
@pytest.mark.parametrize("legacy", [False, True])
def test_torch_files_with_deep_pickles_are_refused(tmp_path, kind, legacy):
    d = tmp_path
    body = (
        as_dict_key(nested(kind, 300_000))
        if kind != "list"
        else PROTO + nested(kind, 300_000) + b"."
    )
    path = (torch_legacy if legacy else torch_zip)(body, d / "deep.pt")
    with pytest.raises(DamagedInputError, match="nested at most") as err:
        scan_torch_file(path, what="a checkpoint")
    one_line(err.value)


def test_storages_claiming_more_than_the_file_holds_are_refused(tmp_path):
    buf = io.BytesIO()
    torch.save({"w": torch.arange(64, dtype=torch.float32)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    cut = tmp_path / "cut.pt"
    with zipfile.ZipFile(cut, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            out.writestr(info.filename, data[:8] if info.filename.endswith("/data/0") else data)
    with pytest.raises(DamagedInputError, match="holds the 256 bytes its tensors claim"):
        scan_torch_file(cut, what="a checkpoint")
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.arange(64.0)}, legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:-64])
    with pytest.raises(DamagedInputError, match="storages claiming"):
        scan_torch_file(legacy, what="a checkpoint")


def test_storages_pickled_inside_a_pickle_are_held_to_the_same_bounds(tmp_path):
    from nvidia_pkl_standin import write_tiny_nvidia_pkl

    good = write_tiny_nvidia_pkl(tmp_path / "good.pkl")  # each storage a torch.save blob
    assert scan_pickle(good.read_bytes(), what="a pickle", where="x").ops > 1000
    blob = torch_legacy(as_dict_key(nested("tuple", 300_000)), tmp_path / "blob").read_bytes()
    data = pickle.dumps({"G_ema": [blob]}, protocol=3)
    with pytest.raises(DamagedInputError, match="a tensor storage in 'x.pkl'") as err:
        scan_pickle(data, what="a pickle", where="'x.pkl'")
    assert "nested at most" in one_line(err.value)


def test_random_bytes_and_plain_pickles_are_not_called_torch_files(tmp_path):
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(DamagedInputError, match="not a torch.save file") as err:
        scan_torch_file(noise, what="a checkpoint")
    assert "pickled" not in one_line(err.value)
    plain_file = tmp_path / "plain.pt"
    plain_file.write_bytes(pickle.dumps({"a": [1, 2]}, protocol=2))
    with pytest.raises(DamagedInputError, match="not a torch.save file"):
        scan_torch_file(plain_file, what="a checkpoint")


def test_a_whole_pickled_module_is_refused_without_torch_s_warning(tmp_path, capsys):
    from ganedit.models.io import safe_torch_load

    path = tmp_path / "module.pt"
    torch.save({"g_ema": torch.nn.Linear(2, 2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(UserInputError, match="whole pickled nn.Module") as err:
        safe_torch_load(path, "a checkpoint")
    one_line(err.value)
    assert capsys.readouterr().err == ""


def test_loaded_tensors_are_checked_against_their_storage():
    from ganedit.models.io import check_loaded_tensors

    check_loaded_tensors({"a": [torch.zeros(3, 4).t(), torch.zeros(1).expand(8)]}, "'x'")
    wide = torch.zeros(1).expand(MAX_OVERLAPPING + 1)
    with pytest.raises(DamagedInputError, match="no zero or overlapping strides") as err:
        check_loaded_tensors({"w": {"deep": wide}}, "'x.pt'")
    assert "w.deep" in one_line(err.value)
    with pytest.raises(UserInputError, match="dense tensors"):
        check_loaded_tensors({"s": torch.zeros(3, 3).to_sparse()}, "'x.pt'")


# ------------------------------------------------------------------------------------------
# Tensor views


views = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30)), min_size=1, max_size=4)


@FAST
@given(dims=views, offset=st.integers(0, 4), storage=st.integers(0, 400))
def test_a_view_passes_only_inside_its_storage(dims, offset, storage):
    shape, stride = [n for n, _ in dims], [s for _, s in dims]
    numel = int(np.prod(shape))
    try:
        got = check_tensor_view(shape, stride, offset, storage, 4, name="w", where="'x'")
    except DamagedInputError as err:
        one_line(err)
        needed = offset + 1 + sum((n - 1) * s for n, s in dims)
        assert numel and needed > storage
    else:
        assert got == numel
        if numel:
            assert offset + sum((n - 1) * s for n, s in dims) < storage


@FAST
@given(dims=views)
def test_the_overlap_test_never_passes_a_view_that_overlaps(dims):
    shape, stride = [n for n, _ in dims], [s for _, s in dims]
    if bounded._non_overlapping(shape, stride):
        grids = np.meshgrid(*[np.arange(n) * s for n, s in dims], indexing="ij")
        offsets = sum(grids).ravel()
        assert len(np.unique(offsets)) == offsets.size


@FAST
@given(
    shape=st.lists(st.integers(2, 4096), min_size=1, max_size=4),
    zero=st.data(),
)
def test_zero_strides_over_many_values_are_refused(shape, zero):
    if int(np.prod(shape)) <= MAX_OVERLAPPING:
        shape = [*shape, MAX_OVERLAPPING + 1]
    stride = list(np.cumprod([1, *shape[:0:-1]])[::-1])
    stride[zero.draw(st.integers(0, len(shape) - 1))] = 0
    with pytest.raises(DamagedInputError):
        check_tensor_view(shape, [int(s) for s in stride], 0, None, 4, name="w", where="'x'")


def test_a_header_claiming_terabytes_is_refused_before_anything_is_allocated():
    with pytest.raises(DamagedInputError, match="at most") as err:
        check_tensor_view([3_000_000, 3_300_000], [0, 0], 0, 1, 4, name="w", where="'x'")
    one_line(err.value)


# ------------------------------------------------------------------------------------------
# .npy and .npz headers


def npy_claiming(shape: tuple, payload: bytes = b"\0" * 16) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + payload


@FAST
@given(shape=st.lists(st.integers(5, 10**6), min_size=1, max_size=3), npz=st.booleans())
def test_arrays_claiming_more_than_their_bytes_are_refused(tmp_path_factory, shape, npz):
    d = tmp_path_factory.mktemp("npy")
    data = npy_claiming(tuple(shape))
    if npz:
        path = d / "a.npz"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("z.npy", data)
        with pytest.raises(DamagedInputError, match="truncated or damaged") as err:
            load_npz(path)
    else:
        path = d / "a.npy"
        path.write_bytes(data)
        with pytest.raises(DamagedInputError, match="truncated or damaged") as err:
            load_npy(path)
    one_line(err.value)


def test_a_pickled_npy_is_refused_without_numpy_s_advice(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserInputError, match="pickled Python objects") as err:
        load_npy(path)
    one_line(err.value)


# ------------------------------------------------------------------------------------------
# JSON, TOML and messages


@FAST
@given(extra=st.integers(1, 5000), brackets=st.sampled_from(["[]", "{}"]))
def test_json_nested_beyond_the_bound_is_refused(extra, brackets):
    n = MAX_JSON_DEPTH + extra
    text = ('{"a":' * n + "1" + "}" * n) if brackets == "{}" else "[" * n + "]" * n
    with pytest.raises(DamagedInputError, match=f"nested at most {MAX_JSON_DEPTH}") as err:
        load_json_bounded(text.encode(), what="a manifest")
    one_line(err.value)


def test_json_within_the_bound_and_damaged_json(tmp_path):
    n = MAX_JSON_DEPTH
    assert load_json_bounded(("[" * n + "]" * n).encode()) == json.loads("[" * n + "]" * n)
    with pytest.raises(DamagedInputError, match="unreadable JSON"):
        load_json_bounded(b"{nope")
    big = tmp_path / "big.json"
    big.write_bytes(b"[" + b"0," * 100 + b"0]")
    with pytest.raises(UserInputError, match="at most 50 bytes"):
        load_json_bounded(big, max_bytes=50)


def test_toml_nested_200000_deep_is_refused():
    n = 200_000
    with pytest.raises(UserInputError, match="nested at most") as err:
        load_toml_bounded("a = " + "[" * n + "]" * n, where="'w.toml'")
    one_line(err.value)


@FAST
@given(value=plain)
def test_descriptions_stay_short(value):
    assert len(describe(value)) <= 200
    assert len(describe_keys({"k": value, ("t", 1): 2, "x" * 500: 3})) <= 200


def test_a_shared_structure_is_described_without_walking_it():
    t = (1,)
    for _ in range(60):  # 2^60 values when written out
        t = (t, t)
    assert describe(t) == "a tuple of 2 items"
    key = (1,)
    for _ in range(16):  # hashable in a blink, a megabyte when printed
        key = (key, key)
    assert describe_keys({key: 1, "b": 2}) == "keys 'b', and 1 more"
    assert describe(10**5000 if sys.get_int_max_str_digits() == 0 else 1 << 20000).startswith(
        "an integer"
    )


# ------------------------------------------------------------------------------------------
# The command line: crash, allocation and time cases in one child process


def _nvidia_pkl_with_wide_const(path: Path) -> Path:
    from nvidia_pkl_standin import snapshot, write_pickle

    snap = snapshot(0)
    const = torch.zeros(1).expand(1 << 20, 4, 4)  # 2^20 channels over one stored number
    snap["G_ema"].synthesis.b4.const = torch.nn.Parameter(const, requires_grad=False)
    return write_pickle(path, snap)


def _hostile_files(d: Path) -> dict[str, list]:
    """Command lines (without the program) that each must end in exit 2 and one line."""
    deep_key = as_dict_key(nested("tuple", 300_000))
    (d / "deep.pkl").write_bytes(deep_key)
    torch_zip(deep_key, d / "deep.pt")
    torch_legacy(deep_key, d / "deep.pth")
    (d / "laughs.pkl").write_bytes(billion_laughs(30))
    _nvidia_pkl_with_wide_const(d / "wide.pkl")
    # Read by the TensorFlow-pickle reader (its first global is a TF Network), then deep.
    tf_head = PROTO + b"cdnnlib.tflib.network\nNetwork\n)\x81"  # GLOBAL, EMPTY_TUPLE, NEWOBJ
    (d / "tf_deep.pkl").write_bytes(tf_head + b"}" + nested("tuple", 300_000) + b"Nsb.")
    huge = {"layer1.conv.weight": torch.zeros(1).expand(3_000_000, 3_300_000, 1, 1)}
    torch.save(huge, d / "huge.pth")  # 9.9e12 values claimed in a few KB
    n = 200_000
    (d / "manifest.json").write_text('{"format": ' + "[" * n + "]" * n + "}")
    model = d / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model": ' + "[" * n + "]" * n + "}")
    (model / "model.safetensors").write_bytes(b"")
    ref = d / "ref"
    ref.mkdir()
    np.save(ref / "z.npy", np.zeros((4, 8), np.float32))
    header = io.BytesIO()  # np.save of a dict: an object header, then the pickle
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|O", "fortran_order": False, "shape": ()}
    )
    (ref / "scores_dict.npy").write_bytes(header.getvalue() + deep_key)
    out = d / "out.zarr"
    return {
        "deep .pkl": ["generate", "-g", d / "deep.pkl", "-n", "2", "-o", out, "-p", "none"],
        "deep .pt": ["generate", "-g", d / "deep.pt", "-n", "2", "-o", out, "-p", "none"],
        "deep .pth": ["generate", "-g", d / "deep.pth", "-n", "2", "-o", out, "-p", "none"],
        "laughs .pkl": ["generate", "-g", d / "laughs.pkl", "-n", "2", "-o", out, "-p", "none"],
        "wide .pkl": ["generate", "-g", d / "wide.pkl", "-n", "2", "-o", out, "-p", "none"],
        "huge .pth": ["generate", "-g", d / "huge.pth", "-n", "2", "-o", out, "-p", "none"],
        "deep TF .pkl": ["generate", "-g", d / "tf_deep.pkl", "-n", "2", "-o", out, "-p", "none"],
        "convert deep .pkl": ["convert", "-g", d / "deep.pkl", "-o", d / "out.pt"],
        "convert laughs .pkl": ["convert", "-g", d / "laughs.pkl", "-o", d / "out.pt"],
        "convert wide .pkl": ["convert", "-g", d / "wide.pkl", "-o", d / "out.pt"],
        "convert deep TF .pkl": ["convert", "-g", d / "tf_deep.pkl", "-o", d / "out.pt"],
        "deep manifest": ["generate", "-n", "2", "-o", out, "-p", d / "manifest.json"],
        "deep config": ["generate", "-g", model, "-n", "2", "-o", out, "-p", "none"],
        "deep scores_dict": ["bank", "import", ref, "-o", out],
    }


def child_env() -> dict[str, str]:
    """This process's environment with the ganedit it imported first on the path (a relative
    PYTHONPATH would not hold in a child started elsewhere)."""
    import os

    import ganedit

    src = str(Path(ganedit.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


_CHILD = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from ganedit.cli import run
    for name, argv in json.loads(sys.argv[1]):
        print("case", name, flush=True)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = run(argv)
        print(json.dumps([name, code, err.getvalue()]), flush=True)
    """
)


def test_crash_allocation_and_time_cases_end_in_one_line(tmp_path):
    cases = _hostile_files(tmp_path)
    payload = json.dumps([[k, [str(a) for a in v]] for k, v in cases.items()])
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, payload],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            cwd=tmp_path,
            env=child_env(),
        )
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"a case ran past {CHILD_TIMEOUT_S} s:\n{err.stdout}") from None
    assert done.returncode == 0, (
        f"the child died ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    )
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("[")]
    assert [r[0] for r in results] == list(cases)
    for name, code, stderr in results:
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1, f"{name}: exit {code}\n{stderr}"
        assert lines[0].startswith("error: expected ") and "received" in lines[0], (name, lines)
        assert len(lines[0]) < 600 and not any(a in lines[0] for a in ADVICE), (name, lines)
    assert not (tmp_path / "out.zarr").exists() and not (tmp_path / "out.pt").exists()


def test_world_render_to_lmdb_under_a_memory_limit(tmp_path):
    out = tmp_path / "r.lmdb"
    script = (
        "ulimit -v 8000000 && "
        f"{sys.executable} -m ganedit world render -o {out} -n 6 --size 16 --no-progress"
    )
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=300, env=child_env()
    )
    assert done.returncode == 0, done.stderr
    from ganedit.datasets.images import ImageDataset

    data = ImageDataset(out)
    assert len(data) == 6 and data[5].shape == (16, 16, 3)


def test_the_lmdb_map_grows_with_the_data(tmp_path):
    from ganedit.datasets.images import LmdbWriter

    writer = LmdbWriter(tmp_path / "x.lmdb", 16, map_size=1 << 16)
    blobs = [bytes([k]) * 50_000 for k in range(20)]  # 1 MB, 16 times the first map
    writer.write(0, blobs[:10])
    writer.write(10, blobs[10:])
    writer.close(20)
    import lmdb

    env = lmdb.open(str(tmp_path / "x.lmdb"), readonly=True, lock=False)
    with env.begin() as txn:
        assert [txn.get(f"16-{k:05d}".encode()) for k in range(20)] == blobs
        assert txn.get(b"length") == b"20"
    env.close()


# ------------------------------------------------------------------------------------------
# The command line: the rest, in process


PREDICTORS = """
import numpy as np

class _Base:
    input_size = 16
    def __init__(self, name="smile"):
        self.attribute_kinds = {name: "probability"}
    def predict(self, images, batch_size=256):
        return {k: np.full(len(images), 0.5, np.float32) for k in self.attribute_kinds}

def reserved():
    return _Base("zarr.json")

class Strings(_Base):
    def predict(self, images, batch_size=256):
        return {"smile": ["yes"] * len(images)}

def needs_an_argument(path):
    return _Base()
"""


@pytest.fixture
def predictors(tmp_path, monkeypatch):
    (tmp_path / "hostile_predictors.py").write_text(PREDICTORS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "hostile_predictors"
    sys.modules.pop("hostile_predictors", None)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("py:os:system", "builtin"),
        ("py:builtins:exec", "builtin"),
        ("py:hostile_predictors:needs_an_argument", "needs path"),
        ("py:hostile_predictors:reserved", "reserved zarr.json"),
        ("py:hostile_predictors:Strings", "received strings"),
    ],
)
def test_predictors_that_are_not_or_do_not_fit_are_refused(
    capsys, tmp_path, predictors, spec, expected
):
    out = tmp_path / "b.zarr"
    line = user_error(capsys, ["generate", "-n", "2", "--batch-size", "2", "-o", out, "-p", spec])
    assert expected in line and not out.exists()
    assert not list(tmp_path.glob(".b.zarr*"))


def test_bank_import_refuses_a_reserved_score_name(capsys, tmp_path):
    ref = tmp_path / "ref"
    ref.mkdir()
    np.save(ref / "z.npy", np.zeros((4, 8), np.float32))
    scores = {"zarr.json": np.full(4, 0.5, np.float32)}
    np.save(ref / "scores_dict.npy", scores, allow_pickle=True)
    line = user_error(capsys, ["bank", "import", ref, "-o", tmp_path / "b.zarr"])
    assert "reserved" in line and "zarr.json" in line


def test_boundary_refuses_scores_of_several_columns(capsys, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "lat.npy", rng.standard_normal((600, 8)).astype(np.float32))
    np.save(tmp_path / "scores.npy", rng.random((600, 3)).astype(np.float32))
    argv = ["boundary", "-c", tmp_path / "lat.npy", "-s", tmp_path / "scores.npy", "-a", "smile"]
    line = user_error(capsys, [*argv, "-o", tmp_path / "b.npy"])
    assert "[N] or [N, 1]" in line and "(600, 3)" in line
    assert not (tmp_path / "b.npy").exists()


def test_random_bytes_as_a_generator_are_not_called_pickled_objects(capsys, tmp_path):
    for suffix in (".pt", ".pth"):
        path = tmp_path / f"noise{suffix}"
        path.write_bytes(np.random.default_rng(1).bytes(5000))
        line = user_error(capsys, ["generate", "-g", path, "-n", "2", "-o", tmp_path / "o.zarr"])
        assert "not a torch.save file" in line and "pickled" not in line
