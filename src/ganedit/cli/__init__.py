"""The one command-line app. Each subcommand parses, builds a config, calls one library
function and prints a short human summary (full JSON to a file on request). The commands live
in one module per concept (world, predictors, generators, banks, directions, inversion,
selfcond, editing); this module holds the entry point and the error contract.

The error contract: a user mistake (GaneditError: bad input, damaged file, provenance mismatch,
a busy output, a method the data cannot serve, or a usage error) prints one line on stderr,
`error: expected ..., received ...`, and exits with code 2; anything else is an internal failure
and keeps its traceback (exit code 1). The shared options and their one meaning per flag are
declared in `cli_options` (table in docs/cli.md).
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import typer

from ganedit import cli_options as opt
from ganedit import cli_paths
from ganedit.cli import (  # noqa: F401 (importing a command module registers its commands)
    banks,
    directions,
    editing,
    generators,
    inversion,
    predictors,
    selfcond,
    world,
)
from ganedit.cli._app import _HELD, app
from ganedit.errors import GaneditError

# The order `ganedit --help` lists the commands in (the modules register them by concept).
COMMANDS = (
    "train-predictor", "evaluate-predictor", "train-gan", "sample", "evaluate-generator",
    "score", "generate", "contingency", "boundary", "train-encoder", "align", "invert",
    "selflabel", "resample", "train-selfcond", "edit", "evaluate", "study", "demo", "convert", "ui",
)  # fmt: skip
app.registered_commands.sort(
    key=lambda c: COMMANDS.index(c.name) if c.name in COMMANDS else len(COMMANDS)
)

# Every command refuses, before it starts, an output that is, holds or lies inside an input.
cli_paths.guard(app)

# What callers name here (tests, the docs): each command function stays reachable as before.
boundary_cmd = directions.boundary_cmd
_diversity_lines = generators._diversity_lines
__all__ = ["app", "main", "run"]


# ------------------------------------------------------------------------------------------
# Entry point and the error contract


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on `argv` and return its exit code (the tests call this in-process).

    User mistakes print one line on stderr and return 2; internal failures propagate with
    their traceback. Warnings logged on the way are printed at the end, unless the run ends
    in one line (they are then dropped) or -v asked for them as they come."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _HELD.let_go(show=False)  # nothing of an earlier in-process run
    try:
        code = _run(argv)
    except BaseException:
        _HELD.let_go(show=True)  # an internal failure keeps what led to it
        raise
    _HELD.let_go(show=code == 0)
    return code


def _run(argv: list[str]) -> int:
    from typer._click import exceptions as click_exceptions

    from ganedit.cli_errors import usage_line

    try:
        result = app(args=opt.expand_conditions(argv), prog_name="ganedit", standalone_mode=False)
    except GaneditError as err:
        _error(str(err))
        return 2
    except click_exceptions.NoArgsIsHelpError as err:
        typer.echo(err.format_message())
        return 0
    except click_exceptions.UsageError as err:
        _error(usage_line(err, argv))
        return 2
    except click_exceptions.ClickException as err:  # other click failures: still one line
        _error(err.format_message())
        return err.exit_code or 1
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            # Only a path the user gave can be too long (pathlib's exists() raises on it).
            path = str(err.filename or "")
            longest = max(Path(path).parts or [""], key=lambda part: len(os.fsencode(part)))
            _error(
                f"expected paths whose names fit the file system (at most 255 bytes each), "
                f"received a name of {len(os.fsencode(longest))} bytes in {path[:60]!r}..."
            )
            return 2
        if err.errno in (errno.EACCES, errno.EPERM) and _unreadable(err.filename):
            # An input the user named that this user may not read (any reader: zarr, LMDB,
            # safetensors...): a mistake in the command line, like a missing file.
            _error(f"expected a readable {str(err.filename)!r}, received permission denied")
            return 2
        if err.errno not in _REFUSED_BY_THE_SYSTEM:
            raise
        # Not a bug and not a mistake in the command line: the system refused a write.
        _error(f"could not write {err.filename or 'an output'}: {err.strerror}")
        return 1
    return result if isinstance(result, int) else 0


_REFUSED_BY_THE_SYSTEM = {
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM
}  # fmt: skip


def _unreadable(name) -> bool:
    """Whether `name` exists but may not be read, or sits in a folder that may not be entered."""
    if not name:
        return False
    path = Path(os.fsdecode(name))
    if os.path.lexists(path) and not os.access(path, os.R_OK):
        return True
    return any(os.path.isdir(p) and not os.access(p, os.X_OK) for p in path.parents)


def _error(message: str) -> None:
    text = " ".join(str(message).split())  # one line, whatever the message held
    sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()


def main() -> None:
    sys.exit(run())
