"""Run the ganedit CLI in-process (`ganedit.cli.run`) and check its contract.

In-process runs are fast enough to drive every subcommand many times; `in_subprocess`
checks the same contract on a real process (exit code, stderr, no traceback)."""

from __future__ import annotations

import subprocess
import sys

from ganedit.cli import run


def ok(capsys, args) -> str:
    """Run; expect exit code 0; return stdout."""
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0, f"exit {code}\nstdout: {out}\nstderr: {err}"
    return out


def user_error(capsys, args) -> str:
    """Run; expect the one-line user-error contract; return that line."""
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 2, f"exit {code}\nstdout: {out}\nstderr: {err}"
    assert_one_error_line(err)
    return err.strip()


def assert_one_error_line(stderr: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, received {len(lines)}:\n{stderr}"
    assert lines[0].startswith("error: expected ") and "received" in lines[0], lines[0]
    assert "Traceback" not in stderr


def in_subprocess(args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ganedit", *[str(a) for a in args]],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
