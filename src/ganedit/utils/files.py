"""Safe output: never destroy what ganedit did not create, never leave a half-written result.

- `check_output(path, overwrite=...)`: called by every entry point before any work, for every
  path it will write. An existing output is refused unless `overwrite`, and a folder is
  replaced only when ganedit made it (its marker file, or one of ganedit's own formats); a
  path that cannot be written (parent is a file, not writable, name too long) is refused.
- `atomic_path` / `atomic_dir`: write under a temporary name in the same folder and rename
  when complete, so an interrupted run never leaves something that looks finished. The
  temporary name carries the writer's pid: the next run writing the same output removes the
  leftovers of writers that are no longer running.
- `output_lock(path)`: one writer at a time for outputs written over several steps (resumable
  banks and runs); a second writer is refused, a lock left by a killed process is taken over.
- `check_outputs_apart(inputs, outputs)`: an output that is an input, lies inside one or holds
  one is refused (symlinks resolved), so no command can write over what it reads.
- A folder's marker lists the files ganedit wrote there; `--overwrite` replaces a folder only
  when it holds nothing else (`foreign_file`). Folders written before markers listed files are
  judged by kind: only files of the formats ganedit writes (`GANEDIT_SUFFIXES`, zarr chunks).
- Sidecars are named after the whole output name (`s.png` -> `s.png.json`), so two outputs
  that share a stem keep their own; readers still find the older `s.json` (`read_sidecar_path`).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from ganedit.errors import BusyError, UserInputError

log = logging.getLogger(__name__)

MARKER = ".ganedit.json"  # in every folder ganedit writes: what made it, when, which files
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-[0-9a-f]{8}$")
# ganedit's own bookkeeping beside or inside an output: temporaries, locks, write probes.
_BOOKKEEPING = re.compile(r"^\.(?:.+\.(?:tmp|old)-\d+-[0-9a-f]{8}|.+\.lock|ganedit-probe-.+)$")
# The kinds of file ganedit writes, for folders whose marker lists no files (written before
# markers did): images, arrays, JSON records and reports, weights, LMDB files.
GANEDIT_SUFFIXES = frozenset(
    (".png", ".gif", ".jpg", ".jpeg", ".json", ".jsonl", ".md", ".npy", ".npz",
     ".safetensors", ".pt", ".mdb")
)  # fmt: skip


# ------------------------------------------------------------------------------------------
# Checks before any work


def check_output(path: str | Path, *, overwrite: bool = False, kind: str = "file") -> Path:
    """Refuse an output that exists (unless `overwrite`) or that cannot be written.

    kind "file" or "dir". With `overwrite`, a file is replaced; a folder only when ganedit made
    it and holds nothing ganedit did not write (or it is empty), since replacing a folder
    deletes everything in it. A symlinked output stands for its target (which is replaced in
    place, the link kept); a link to nothing is refused.

    Raises:
        UserInputError: the path exists (and may not be replaced), is of the other kind, names
        no file or folder, its name is too long, or its nearest existing parent is a file or
        not writable.
    """
    path = Path(path)
    check_named(path)
    _check_writable_location(path)
    if path.is_symlink() and not path.exists():
        raise UserInputError(
            f"expected an output path, received {str(path)!r}, a link to the missing "
            f"{os.readlink(path)!r} (remove the link or give another path)"
        )
    target = output_target(path)
    if target != path:
        _check_writable_location(target)  # the target is replaced beside itself
    if not target.exists():
        return path
    if kind == "dir":
        _check_folder_replaceable(path, target, overwrite)
        return path
    if target.is_dir():
        raise UserInputError(
            f"expected a file path for the output, received an existing folder {str(path)!r}"
        )
    if not overwrite:
        raise UserInputError(
            f"expected a new output file, received existing {str(path)!r} "
            "(pass --overwrite to replace it)"
        )
    return path


def _check_folder_replaceable(path: Path, target: Path, overwrite: bool) -> None:
    if not target.is_dir():
        raise UserInputError(
            f"expected a folder path for the output, received an existing file {str(path)!r}"
        )
    if not any(target.iterdir()):
        return  # an empty folder: nothing to lose
    if not overwrite:
        raise UserInputError(
            f"expected a new output folder, received existing {str(path)!r} "
            "(pass --overwrite to replace it)"
        )
    if not made_by_ganedit(target):
        raise UserInputError(
            f"expected a folder that ganedit wrote to replace with --overwrite, received "
            f"{str(path)!r}, which has no {MARKER}; ganedit replaces only its own outputs "
            "(choose another path or move that folder)"
        )
    refuse_foreign_files(path, target)


def empty_folder(folder: Path) -> None:
    """Delete everything inside `folder` (a link inside is removed, not followed)."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def refuse_foreign_files(path: Path, target: Path | None = None) -> None:
    """Refuse to replace the folder `path` (at `target`) when it holds a file ganedit did not
    write: replacing it would delete that file."""
    foreign = foreign_file(target or path)
    if foreign is not None:
        raise UserInputError(
            f"expected only files ganedit wrote in {str(path)!r} to replace it with "
            f"--overwrite, received {str(path)!r}, which holds {foreign!r}, which ganedit did "
            "not write; move or delete it"
        )


def require_file(path: Path, expected: str) -> None:
    """UserInputError `expected <expected>, received '<path>' (a folder | no such file)` unless
    `path` is a file."""
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "no such file"
        raise UserInputError(f"expected {expected}, received {str(path)!r} ({kind})")


def check_named(path: Path, flag: str = "the output") -> None:
    """Refuse an output path that names no file or folder: '' (which is '.'), '.', '..', '/'.
    Writing there would mean replacing the current folder or one of its parents."""
    if Path(path).name in ("", "..") or str(path) in ("", "."):
        shown = "'' or '.' (the current folder)" if str(path) in ("", ".") else repr(str(path))
        raise UserInputError(f"expected {flag} to name a new file or folder, received {shown}")


def output_target(path: str | Path) -> Path:
    """Where writing the output `path` lands: a symlink stands for its final target (written
    in place, so the link keeps pointing at the new output); any other path is itself."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def check_outputs_apart(
    inputs: Iterable[tuple[str, str | Path]], outputs: Iterable[tuple[str, str | Path]]
) -> None:
    """Refuse an output that is an input, lies inside one or holds one, and two outputs that
    are one or nest: writing it (replacing it, with --overwrite) would change what the command
    reads, or one output would replace another. Paths are resolved first (symlinks followed,
    `..` folded); inputs that do not exist are left to their readers.

    Each entry is (flag, path): the flag names the path in the message.

    Raises:
        UserInputError: for the first such pair, naming both paths.
    """
    outs = [(flag, Path(path), _resolved(path)) for flag, path in outputs]
    ins = [(flag, Path(path), _resolved(path)) for flag, path in inputs if os.path.lexists(path)]
    for i, (flag, given, real) in enumerate(outs):
        check_named(given, flag)
        for other_flag, other, other_real in ins:
            relation = _relation(real, other_real)
            if relation:
                raise UserInputError(
                    f"expected {flag} apart from the command's inputs, received {str(given)!r}, "
                    f"which {relation} the input {other_flag} {str(other)!r} (writing there "
                    "would change what the command reads)"
                )
        for other_flag, other, other_real in outs[i + 1 :]:
            relation = _relation(real, other_real)
            if relation:
                raise UserInputError(
                    f"expected {flag} apart from the command's other outputs, received "
                    f"{str(given)!r}, which {relation} the output {other_flag} {str(other)!r}"
                )


def _resolved(path: str | Path) -> Path:
    # realpath, not Path.resolve: a link loop is then a path like any other, not an error.
    return Path(os.path.realpath(os.fspath(path)))


def _relation(a: Path, b: Path) -> str | None:
    """How path `a` stands to path `b` (both resolved): 'is', 'lies inside', 'holds' or None."""
    if a == b or _same_file(a, b):
        return "is"
    if a.is_relative_to(b):
        return "lies inside"
    if b.is_relative_to(a):
        return "holds"
    return None


def _same_file(a: Path, b: Path) -> bool:
    """The same file or folder under two names (a hard link, a bind mount)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _check_writable_location(path: Path) -> None:
    name_max = 255
    parent = _nearest_existing(path.parent)
    with contextlib.suppress(OSError, ValueError):
        name_max = os.pathconf(parent, "PC_NAME_MAX")
    # Temporary siblings add a prefix and a suffix to the name; keep room for them.
    for part in path.parts:
        if len(os.fsencode(part)) > name_max - 24:
            raise UserInputError(
                f"expected an output name of at most {name_max - 24} bytes, received one of "
                f"{len(os.fsencode(part))} bytes in {str(path)[:80]!r}..."
            )
    if not parent.is_dir():
        raise UserInputError(
            f"expected a folder to write {str(path)!r} into, received {str(parent)!r}, a file"
        )
    if not _can_create_in(parent):
        raise UserInputError(
            f"expected a writable folder for {str(path)!r}, received {str(parent)!r} "
            "(permission denied or read-only)"
        )


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be created in `folder`: tried, since permission bits do not tell
    (root ignores them; /proc, read-only mounts and quotas refuse anyway)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    probe = folder / f".ganedit-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        probe.touch(exist_ok=False)
    except OSError:
        return False
    probe.unlink(missing_ok=True)
    return True


def _nearest_existing(folder: Path) -> Path:
    folder = folder if str(folder) else Path(".")
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def made_by_ganedit(folder: str | Path) -> bool:
    """A folder ganedit wrote: its marker file, or one of ganedit's own formats."""
    folder = Path(folder)
    if (folder / MARKER).is_file():
        return True
    config = _read_json(folder / "config.json")
    if (
        isinstance(config, dict)
        and "format_version" in config
        and ("class_name" in config or "model" in config)
    ):
        return True  # a model folder (save_pretrained before markers existed)
    if (folder / "state.json").is_file() and any(folder.glob("*.safetensors")):
        return True  # a training checkpoint
    zarr_meta = _read_json(folder / "zarr.json")
    if isinstance(zarr_meta, dict):
        attrs = zarr_meta.get("attributes") or {}
        return str(attrs.get("format", "")).startswith("ganedit.")
    world = _read_json(folder / "world.json")
    return isinstance(world, dict) and "layout" in world and "world" in world


def _read_json(path: Path):
    """A marker's JSON, or None when it is not one ganedit could have written (unreadable,
    invalid, or nested deep enough to exhaust the parser): such a folder is not ganedit's."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None


def write_marker(folder: str | Path, what: str, **facts) -> None:
    """Mark `folder` as written by ganedit (`what` made it; `facts` are recorded too)."""
    from ganedit import __version__

    record = {
        "made_by": f"ganedit {__version__}",
        "what": what,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **facts,
    }
    _write_record(Path(folder), record)


def _write_record(folder: Path, record: dict) -> None:
    (folder / MARKER).write_text(json.dumps(record, indent=2, default=str) + "\n")


def read_marker(folder: str | Path) -> dict:
    data = _read_json(Path(folder) / MARKER)
    return data if isinstance(data, dict) else {}


def record_files(folder: str | Path, what: str = "") -> None:
    """List in `folder`'s marker (made if missing) every file now under it, by its name
    relative to `folder`: what `--overwrite` may later replace, and nothing else."""
    folder = Path(folder)
    record = read_marker(folder)
    if not record:
        write_marker(folder, what or folder.name)
        record = read_marker(folder)
    record["files"] = [
        path.relative_to(folder).as_posix()
        for path in _entries_under(folder)
        if not _bookkeeping(path.name)
    ]
    _write_record(folder, record)


def foreign_file(folder: str | Path) -> str | None:
    """The first entry under `folder` (sorted walk, relative name) that ganedit did not write,
    or None. An entry is ganedit's when the nearest marker above it that lists files lists it;
    where no marker lists files (folders written before markers did, run folders filled step by
    step), when it is of a kind ganedit writes (`GANEDIT_SUFFIXES`, zarr chunks)."""
    folder = Path(folder)
    lists: dict[Path, frozenset[str] | None] = {}
    for path in _entries_under(folder):
        if _bookkeeping(path.name):
            continue
        if not _written_by_ganedit(path, folder, lists):
            return path.relative_to(folder).as_posix()
    return None


def _bookkeeping(name: str) -> bool:
    return name == MARKER or bool(_BOOKKEEPING.match(name))


def _entries_under(folder: Path) -> Iterator[Path]:
    """Every file under `folder` in sorted order, links included (never followed)."""

    def unreadable(err: OSError) -> None:
        raise err  # a folder that cannot be listed might hide anything

    for root, dirs, files in os.walk(folder, onerror=unreadable):
        here = Path(root)
        dirs.sort()
        links = [name for name in dirs if (here / name).is_symlink()]
        yield from (here / name for name in sorted(files + links))


def _written_by_ganedit(path: Path, top: Path, lists: dict) -> bool:
    owner = path.parent
    while True:
        if owner not in lists:
            listed = read_marker(owner).get("files")
            ok = isinstance(listed, list) and all(isinstance(f, str) for f in listed)
            lists[owner] = frozenset(listed) if ok else None
        if lists[owner] is not None:
            return path.relative_to(owner).as_posix() in lists[owner]
        if owner == top:
            return _of_ganedit_kind(path.relative_to(top), top)
        owner = owner.parent


def _of_ganedit_kind(relative: Path, top: Path) -> bool:
    """A file of a format ganedit writes: by suffix, or a chunk of a zarr array (`c/0/1`)."""
    if relative.suffix.lower() in GANEDIT_SUFFIXES:
        return True
    parts = relative.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "c" and all(p.isdigit() for p in parts[i + 1 :]):
            return (top.joinpath(*parts[:i]) / "zarr.json").is_file()
    return False


def open_run_folder(
    folder: str | Path,
    what: str,
    config: dict | None = None,
    overwrite: bool = False,
    adopt: tuple[str, ...] = (),
) -> Path:
    """Prepare a folder that a resumable job fills step by step (a study, the demo, training).

    A new or empty folder is created and marked. A folder this kind of job made is resumed
    when its recorded `config` equals `config` (or `config` is None: the job checks itself);
    with another config it is refused, or with `overwrite` emptied and started afresh. Any
    other non-empty folder is refused: its files are not ganedit's to replace, except one that
    holds every name in `adopt` (a run written before folders carried markers)."""
    folder = Path(folder)
    _check_writable_location(folder)
    if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
        raise UserInputError(
            f"expected a folder path for the output, received an existing file or link "
            f"{str(folder)!r}"
        )
    if folder.is_dir() and any(folder.iterdir()):
        marker = read_marker(folder)
        if not marker and adopt and all((folder / name).exists() for name in adopt):
            write_marker(folder, what, config=config)
            marker = read_marker(folder)
        if marker.get("what") != what:
            raise UserInputError(
                f"expected a new folder or one that `{what}` wrote, received {str(folder)!r} "
                f"({'made by ' + repr(marker['what']) if marker else f'no {MARKER}'}); ganedit "
                "does not write into folders it did not make (choose another path)"
            )
        if config is None or _jsonable(marker.get("config")) == _jsonable(config):
            return folder
        if not overwrite:
            raise UserInputError(
                f"expected the configuration of the {what} in {str(folder)!r} to resume it, "
                "received another one (pass --overwrite to start it afresh, or choose another "
                "folder)"
            )
        refuse_foreign_files(folder)
        empty_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_marker(folder, what, config=config)
    return folder


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


# ------------------------------------------------------------------------------------------
# Atomic writes


def _temp_sibling(path: Path, kind: str = "tmp") -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def clean_stale_temps(path: str | Path) -> list[Path]:
    """Remove temporaries of `path` left by writers that are no longer running."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for entry in parent.glob(f".{glob_escape(path.name)}.*"):
        match = _TEMP.match(entry.name)
        if not match or match["name"] != path.name:
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or pid_alive(pid):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        log.info("removed %s, left by an interrupted run (pid %d)", entry, pid)
        removed.append(entry)
    return removed


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary file path; on success it becomes `path`.

    An existing file at `path` is replaced when `overwrite` (entry points decide that with
    `check_output` before any work), else refused."""
    path = output_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path)
    tmp = _temp_sibling(path)
    try:
        yield tmp
        if path.exists() and (not overwrite or path.is_dir()):
            check_output(path, overwrite=overwrite)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = False, what: str = "") -> Iterator[Path]:
    """Yield a temporary folder (already marked as ganedit's); on success its marker lists the
    files written into it and it becomes `path`.

    An existing folder at `path` is replaced only with `overwrite` and only when ganedit made
    it and holds nothing else, or it is empty; the check is repeated at the end, since another
    process may have written `path` meanwhile. A symlinked `path` has its target replaced."""
    path = output_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path)
    tmp = _temp_sibling(path)
    tmp.mkdir()
    try:
        write_marker(tmp, what or path.name)
        yield tmp
        record_files(tmp)
        if path.exists() or path.is_symlink():
            check_output(path, overwrite=overwrite, kind="dir")
        swap_in(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def swap_in(new: Path, path: Path) -> None:
    """Rename the finished folder `new` (a sibling) to `path`, replacing what is there: the
    old one is renamed aside first and removed once the new one is in place (put back if
    the rename fails)."""
    if not path.exists() and not path.is_symlink():
        os.replace(new, path)
        return
    old = _temp_sibling(path, "old")
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    else:
        old.unlink()


def sidecar_path(path: str | Path) -> Path:
    """The JSON record written beside the output `path`: `s.png` -> `s.png.json`, so outputs
    that share a stem (`s.png`, `s.npz`) each keep their own."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_sidecar_path(path: str | Path) -> Path:
    """The sidecar to read for `path`: its own (`s.png.json`), else the name used before
    sidecars carried the whole output name (`s.json`), else its own (which then is missing)."""
    own = sidecar_path(path)
    older = Path(path).with_suffix(".json")
    if not own.is_file() and older != Path(path) and older.is_file():
        return older
    return own


def readable_by_all(path: str | Path) -> None:
    """Give a file the mode an ordinary `open()` would (0666 minus the umask): some writers
    (safetensors) create 0600 files, which other users could not load."""
    os.chmod(path, 0o666 & ~_umask())


def _umask() -> int:
    # Linux reports the umask in /proc; elsewhere it can only be read by setting it, which
    # briefly changes it for every thread of the process.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: str | Path, data: dict, *, overwrite: bool = True) -> Path:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return Path(path)


# ------------------------------------------------------------------------------------------
# One writer at a time


def lock_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def output_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on writing `path` for the duration of the block.

    The lock is an OS lock (flock) on `.<name>.lock` beside `path`: the kernel releases it when
    its process dies, so a lock file left by a killed run is simply taken over. A second live
    writer is refused with BusyError naming the holder's pid."""
    _check_writable_location(Path(path))  # a parent that is a file, a read-only place...
    target = lock_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = _lock_holder(target)
            raise BusyError(
                f"expected no other writer of {str(path)!r}, received one: process "
                f"{holder or '?'} is writing it (wait for it, or stop it and run again to resume)"
            ) from None
        # The file may have been unlinked by its previous holder between our open and flock:
        # then the lock we hold is on a dead inode, and we must try again on the new file.
        try:
            same = os.fstat(fd).st_ino == os.stat(target).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _lock_holder(target)
    if previous and previous != os.getpid():
        log.info("taking over the lock on %s left by pid %d (no longer running)", path, previous)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        os.close(fd)


def _lock_holder(target: Path) -> int | None:
    try:
        return int(target.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
