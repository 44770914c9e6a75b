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
from collections.abc import Iterator
from pathlib import Path

from ganedit.errors import BusyError, UserInputError

log = logging.getLogger(__name__)

MARKER = ".ganedit.json"  # in every folder ganedit writes: what made it, and when
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-[0-9a-f]{8}$")


# ------------------------------------------------------------------------------------------
# Checks before any work


def check_output(path: str | Path, *, overwrite: bool = False, kind: str = "file") -> Path:
    """Refuse an output that exists (unless `overwrite`) or that cannot be written.

    kind "file" or "dir". With `overwrite`, a file is replaced; a folder only when ganedit made
    it (or it is empty), since replacing a folder deletes everything in it.

    Raises:
        UserInputError: the path exists (and may not be replaced), is of the other kind, its
        name is too long, or its nearest existing parent is a file or not writable.
    """
    path = Path(path)
    _check_writable_location(path)
    if not path.exists() and not path.is_symlink():
        return path
    if kind == "dir":
        if not path.is_dir():
            raise UserInputError(
                f"expected a folder path for the output, received an existing file {str(path)!r}"
            )
        if not any(path.iterdir()):
            return path  # an empty folder: nothing to lose
        if not overwrite:
            raise UserInputError(
                f"expected a new output folder, received existing {str(path)!r} "
                "(pass --overwrite to replace it)"
            )
        if not made_by_ganedit(path):
            raise UserInputError(
                f"expected a folder that ganedit wrote to replace with --overwrite, received "
                f"{str(path)!r}, which has no {MARKER}; ganedit replaces only its own outputs "
                "(choose another path or move that folder)"
            )
        return path
    if path.is_dir():
        raise UserInputError(
            f"expected a file path for the output, received an existing folder {str(path)!r}"
        )
    if not overwrite:
        raise UserInputError(
            f"expected a new output file, received existing {str(path)!r} "
            "(pass --overwrite to replace it)"
        )
    return path


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
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
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
    (Path(folder) / MARKER).write_text(json.dumps(record, indent=2, default=str) + "\n")


def read_marker(folder: str | Path) -> dict:
    data = _read_json(Path(folder) / MARKER)
    return data if isinstance(data, dict) else {}


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
        for entry in folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
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
    path = Path(path)
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
    """Yield a temporary folder (already marked as ganedit's); on success it becomes `path`.

    An existing folder at `path` is replaced only with `overwrite` and only when ganedit made
    it or it is empty; the check is repeated at the end, since another process may have
    written `path` meanwhile."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path)
    tmp = _temp_sibling(path)
    tmp.mkdir()
    try:
        write_marker(tmp, what or path.name)
        yield tmp
        if path.exists() or path.is_symlink():
            check_output(path, overwrite=overwrite, kind="dir")
            old = _temp_sibling(path, "old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


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
