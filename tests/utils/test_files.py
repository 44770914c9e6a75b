import os
import shutil
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


def test_the_marker_lists_the_files_written_and_overwrite_refuses_any_other(tmp_path):
    from ganedit.utils.files import foreign_file, read_marker

    out = tmp_path / "out"
    with atomic_dir(out, what="test") as tmp:
        (tmp / "a.png").write_bytes(b"1")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b").write_bytes(b"2")
    assert read_marker(out)["files"] == ["a.png", "sub/b"]
    (out / ".a.png.tmp-1-0123abcd").write_bytes(b"")  # ganedit's own leftovers do not count
    (out / ".out.lock").write_bytes(b"")
    assert foreign_file(out) is None
    (out / "sub" / "notes.txt").write_text("mine")
    assert foreign_file(out) == "sub/notes.txt"
    with (
        pytest.raises(UserInputError, match="holds 'sub/notes.txt', which ganedit did not write"),
        atomic_dir(out, overwrite=True) as tmp,
    ):
        (tmp / "a.png").write_bytes(b"new")
    assert (out / "sub" / "notes.txt").read_text() == "mine" and (
        out / "a.png"
    ).read_bytes() == b"1"
    (out / "sub" / "notes.txt").unlink()
    (out / "sub" / "b").unlink()
    (out / "sub" / "b").symlink_to(tmp_path / "elsewhere")  # a listed name stays ganedit's
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "a.png").write_bytes(b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_folders_without_a_file_list_are_judged_by_the_kinds_ganedit_writes(tmp_path):
    from ganedit.utils.files import foreign_file, write_marker

    old = tmp_path / "old"
    (old / "bank.zarr" / "w" / "c" / "0").mkdir(parents=True)
    (old / "bank.zarr" / "w" / "zarr.json").write_text("{}")
    (old / "bank.zarr" / "w" / "c" / "0" / "0").write_bytes(b"chunk")
    for name in ("strip.png", "latents.npy", "report.md", "stats.jsonl", "model.safetensors"):
        (old / name).write_bytes(b"x")
    write_marker(old, "edit")  # written before markers listed files
    assert foreign_file(old) is None
    (old / "loose" / "c").mkdir(parents=True)  # a chunk-like name outside any zarr array
    (old / "loose" / "c" / "7").write_bytes(b"x")
    assert foreign_file(old) == "loose/c/7"
    shutil.rmtree(old / "loose")
    (old / "thesis.tex").write_text("years of work")
    with pytest.raises(UserInputError, match="'thesis.tex', which ganedit did not write"):
        check_output(old, overwrite=True, kind="dir")
    nested = old / "g_ema"  # a folder with its own list is judged by it
    with atomic_dir(nested, what="model") as tmp:
        (tmp / "weights").write_bytes(b"w")
    (old / "thesis.tex").unlink()
    assert foreign_file(old) is None
    (nested / "extra.png").write_bytes(b"x")
    assert foreign_file(old) == "g_ema/extra.png"


def test_run_folders_started_afresh_keep_files_they_did_not_write(tmp_path):
    from ganedit.utils.files import open_run_folder

    run = open_run_folder(tmp_path / "run", "study", {"n": 1})
    (run / "fitting.json").write_text("{}")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(UserInputError, match="'notes.txt', which ganedit did not write"):
        open_run_folder(run, "study", {"n": 2}, overwrite=True)
    assert (run / "notes.txt").read_text() == "mine" and (run / "fitting.json").is_file()
    (run / "notes.txt").unlink()
    open_run_folder(run, "study", {"n": 2}, overwrite=True)
    assert not (run / "fitting.json").exists()


def test_outputs_apart_from_inputs_by_resolved_paths(tmp_path):
    from ganedit.utils.files import check_outputs_apart

    data = tmp_path / "data"
    data.mkdir()
    (data / "x.npy").write_bytes(b"x")
    (tmp_path / "alias").symlink_to(data)
    os.link(data / "x.npy", tmp_path / "hard.npy")
    refused = [
        (data, tmp_path / "alias", "is"),
        (data / "x.npy", tmp_path / "hard.npy", "is"),  # one file, two names
        (data, tmp_path / "alias" / "out.npz", "lies inside"),
        (data / "x.npy", tmp_path, "holds"),
        (data, tmp_path / "data" / ".." / "data", "is"),
    ]
    for given, out, relation in refused:
        with pytest.raises(UserInputError, match=f"which {relation} the input -i"):
            check_outputs_apart([("-i", given)], [("-o", out)])
    check_outputs_apart([("-i", data), ("-g", tmp_path / "missing")], [("-o", tmp_path / "d2")])
    check_outputs_apart([("-i", data)], [("-o", tmp_path / "data2")])  # a shared prefix only
    with pytest.raises(UserInputError, match="other outputs"):
        check_outputs_apart([], [("-o", tmp_path / "r"), ("--json", tmp_path / "r" / "j.json")])
    for empty in ("", ".", ".."):
        with pytest.raises(UserInputError, match="name a new file or folder"):
            check_outputs_apart([], [("-o", empty)])


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    from ganedit.utils import files

    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("old")
    real = os.replace
    calls = []

    def failing(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the new folder's rename
            raise OSError("disk gone")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", failing)
    with pytest.raises(OSError, match="disk gone"), atomic_dir(out, overwrite=True) as tmp:
        (tmp / "a").write_text("new")
    monkeypatch.undo()
    assert (out / "a").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_marker_nested_past_the_parser_is_not_ganedits(tmp_path):
    from ganedit.utils.files import MARKER, made_by_ganedit

    folder = tmp_path / "out"
    folder.mkdir()
    (folder / MARKER).write_text("[" * 200_000 + "]" * 200_000)
    assert isinstance(made_by_ganedit(folder), bool)  # read as no marker, not a RecursionError
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UserInputError, match="notes.txt"):
        check_output(folder, overwrite=True, kind="dir")
