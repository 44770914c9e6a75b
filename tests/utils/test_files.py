import os
import subprocess
import sys

import pytest

from ganedit.errors import BusyError, UserInputError
from ganedit.utils.files import (
    MARKER,
    atomic_dir,
    atomic_path,
    check_output,
    lock_path,
    made_by_ganedit,
    output_lock,
    readable_by_all,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_check_output_refuses_what_exists_and_paths_that_cannot_be_written(tmp_path):
    (tmp_path / "f.png").write_bytes(b"x")
    with pytest.raises(UserInputError, match="pass --overwrite"):
        check_output(tmp_path / "f.png")
    assert check_output(tmp_path / "f.png", overwrite=True) == tmp_path / "f.png"
    with pytest.raises(UserInputError, match="existing folder"):
        check_output(tmp_path, overwrite=True)
    with pytest.raises(UserInputError, match="a file"):
        check_output(tmp_path / "f.png" / "inside.json")
    with pytest.raises(UserInputError, match="bytes"):
        check_output(tmp_path / ("x" * 300))
    (tmp_path / "empty").mkdir()
    assert check_output(tmp_path / "empty", kind="dir") == tmp_path / "empty"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_check_output_refuses_a_read_only_folder(tmp_path):
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(UserInputError, match="permission"):
            check_output(locked / "out.png")
    finally:
        locked.chmod(0o700)


def test_folders_are_replaced_only_when_ganedit_made_them(tmp_path):
    users = tmp_path / "users"
    users.mkdir()
    (users / "thesis.tex").write_text("years of work")
    with (
        pytest.raises(UserInputError, match="only its own outputs"),
        atomic_dir(users, overwrite=True) as tmp,
    ):
        (tmp / "a").write_text("new")
    assert (users / "thesis.tex").read_text() == "years of work"
    ours = tmp_path / "ours"
    with atomic_dir(ours) as tmp:
        (tmp / "a").write_text("1")
    assert made_by_ganedit(ours) and (ours / MARKER).is_file()
    with pytest.raises(UserInputError, match="pass --overwrite"), atomic_dir(ours) as tmp:
        (tmp / "a").write_text("2")
    with atomic_dir(ours, overwrite=True) as tmp:
        (tmp / "a").write_text("2")
    assert (ours / "a").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ours", "users"]


def test_temporaries_of_dead_writers_are_cleaned_up_and_live_ones_kept(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    stale_dir = tmp_path / f".out.tmp-{dead}-0123abcd"
    stale_dir.mkdir()
    (stale_dir / "half.png").write_bytes(b"x")
    stale_file = tmp_path / f".out.old-{dead}-89abcdef"
    stale_file.write_text("x")
    live = tmp_path / f".out.tmp-{alive}-fedcba98"
    live.mkdir()
    other = tmp_path / f".other.tmp-{dead}-0123abcd"
    other.mkdir()
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "done").write_text("1")
    assert not stale_dir.exists() and not stale_file.exists()
    assert live.exists() and other.exists()  # a running writer's, and another output's
    with atomic_path(tmp_path / "other") as tmp:
        tmp.write_text("x")
    assert not other.exists()


def test_a_second_writer_is_refused_and_a_killed_writers_lock_taken_over(tmp_path):
    target = tmp_path / "bank.zarr"
    with output_lock(target):
        assert lock_path(target).read_text().split()[0] == str(os.getpid())
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from ganedit.utils.files import output_lock\n"
                "try:\n    with output_lock(sys.argv[1]): pass\n"
                "except Exception as e: print(type(e).__name__, e)",
                str(target),
            ],
            capture_output=True,
            text=True,
        )
        assert child.stdout.startswith("BusyError") and str(os.getpid()) in child.stdout
    assert not lock_path(target).exists()
    # A killed run leaves its lock file but not the OS lock: the next writer takes over.
    lock_path(target).write_text(f"{_dead_pid()}\n")
    with output_lock(target):
        pass
    assert not lock_path(target).exists()


def test_busy_error_is_a_user_input_error():
    assert issubclass(BusyError, UserInputError)


def test_run_folders_and_locks_refuse_links_and_parents_that_are_files(tmp_path):
    from ganedit.utils.files import open_run_folder

    link = tmp_path / "run"
    link.symlink_to(tmp_path / "elsewhere")  # dangling: once a FileExistsError from mkdir
    with pytest.raises(UserInputError, match="existing file or link"):
        open_run_folder(link, "train-gan")
    assert link.is_symlink() and not (tmp_path / "elsewhere").exists()
    (tmp_path / "plain").write_text("a file")
    with pytest.raises(UserInputError, match="a file"), output_lock(tmp_path / "plain" / "run"):
        pass
    with pytest.raises(UserInputError, match="writable"), output_lock("/proc/ganedit-run"):
        pass


def test_readable_by_all_gives_the_mode_of_an_ordinary_open(tmp_path):
    private = tmp_path / "weights.safetensors"
    private.write_bytes(b"x")
    private.chmod(0o600)  # what safetensors' writer leaves
    ordinary = tmp_path / "ordinary"
    ordinary.write_bytes(b"x")  # open() applies the umask to 0666
    readable_by_all(private)
    assert private.stat().st_mode & 0o777 == ordinary.stat().st_mode & 0o777
