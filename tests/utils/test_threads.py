"""--threads / GANEDIT_THREADS: one count for torch, OpenMP and BLAS, set before torch loads."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ganedit
from cli_run import assert_one_error_line
from ganedit.cli import run
from ganedit.utils.threads import COUNT_VARIABLES, ENV, default_threads, use_threads

VARIABLES = (*COUNT_VARIABLES, "OMP_WAIT_POLICY", ENV)


@pytest.fixture
def clean_env(monkeypatch):
    """No thread settings in the environment; torch's own count restored afterwards."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_count_sets_every_library_and_torch_already_loaded(clean_env):
    assert use_threads(1) == 1
    assert all(os.environ[name] == "1" for name in COUNT_VARIABLES)
    assert os.environ["OMP_WAIT_POLICY"] == "passive"
    assert torch.get_num_threads() == 1


def test_the_users_openmp_settings_stand_when_no_count_is_given(clean_env, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    assert use_threads(None) is None
    assert os.environ["OMP_NUM_THREADS"] == "3"
    assert os.environ["OMP_WAIT_POLICY"] == "active"
    assert "MKL_NUM_THREADS" not in os.environ
    # An explicit count overrides the count, never the user's wait policy.
    assert use_threads(2) == 2
    assert os.environ["OMP_NUM_THREADS"] == "2"
    assert os.environ["OMP_WAIT_POLICY"] == "active"


def test_without_any_setting_the_default_applies(clean_env):
    assert use_threads(None) == default_threads() >= 1
    assert os.environ["OMP_NUM_THREADS"] == str(default_threads())


def test_the_flag_and_the_variable_reach_torch(clean_env, monkeypatch, capsys):
    assert run(["--threads", "1", "--version"]) == 0
    assert torch.get_num_threads() == 1
    monkeypatch.setenv(ENV, "2")
    assert run(["--version"]) == 0
    assert torch.get_num_threads() == 2
    assert run(["--threads", "1", "--version"]) == 0  # the flag wins over the variable
    assert torch.get_num_threads() == 1
    capsys.readouterr()


@pytest.mark.parametrize(
    ("argv", "env"), [(["--threads", "0"], None), (["--threads", "x"], None), ([], "many")]
)
def test_a_bad_count_is_one_line(clean_env, monkeypatch, capsys, argv, env):
    if env is not None:
        monkeypatch.setenv(ENV, env)
    assert run([*argv, "--version"]) == 2
    err = capsys.readouterr().err
    assert_one_error_line(err)
    assert ("--threads" if env is None else ENV) in err


def test_set_before_torch_loads_so_openmp_itself_takes_it():
    # A fresh process: the count is in the environment before torch starts its thread pool.
    code = (
        "from ganedit.cli import run\n"
        "run(['--threads', '1', '--version'])\n"
        "import torch\n"
        "print(torch.get_num_threads())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env["PYTHONPATH"] = str(Path(ganedit.__file__).resolve().parents[1])  # this ganedit
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split()[-1] == "1"
