"""The command line answers --help and usage mistakes without loading torch, numpy or
scikit-learn (the choices it lists come from ganedit.choices), and every registry serves
exactly the names it lists."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ganedit
from ganedit import choices

HEAVY = ("torch", "numpy", "sklearn", "scipy", "PIL")

# The subprocesses import this ganedit, whatever the working directory.
ENV = {**os.environ, "PYTHONPATH": str(Path(ganedit.__file__).resolve().parents[1])}

PROBE = """
import json, sys
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from ganedit.cli import run
heavy = {}
for argv in json.loads(sys.argv[1]):
    with redirect_stdout(StringIO()), redirect_stderr(StringIO()):
        code = run(argv)
    heavy[" ".join(argv)] = [code, sorted(m for m in HEAVY if m in sys.modules)]
print(json.dumps(heavy))
"""


def test_help_and_usage_mistakes_load_no_heavy_library():
    argvs = [
        ["--help"],
        ["invert", "--help"],
        ["world", "render", "--help"],
        ["invert", "--bogus"],  # an unknown flag
        ["boundary", "--method", "nope", "-c", "b.zarr", "-a", "age", "-o", "x.npy"],
        ["generate", "-n", "-5", "-o", "b.zarr"],
        ["--threads", "0", "sample"],
    ]
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(argvs)],
        capture_output=True,
        text=True,
        check=True,
        env=ENV,
    )
    answers = json.loads(out.stdout)
    for argv in argvs:
        exit_code, loaded = answers[" ".join(argv)]
        assert exit_code == (0 if "--help" in argv else 2), argv
        assert loaded == [], f"ganedit {' '.join(argv)} loaded {loaded}"


def test_importing_the_cli_and_the_package_loads_no_heavy_library():
    code = (
        f"import sys, ganedit, ganedit.cli\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV
    )
    assert out.stdout.strip() == "[]"


def test_the_package_api_still_loads_on_first_use():
    assert ganedit.load_generator.__module__ == "ganedit.models.sources"
    assert callable(ganedit.fit_boundary)


def test_each_registry_serves_exactly_the_names_the_cli_lists():
    from ganedit.directions.estimators import METHODS
    from ganedit.models import registry
    from ganedit.selfcond.resample import SCHEMES
    from ganedit.selfcond.train import INITS
    from ganedit.training.predictors import KINDS

    assert tuple(METHODS) == choices.DIRECTION_METHODS
    assert all(cls.method == name for name, cls in METHODS.items())
    assert choices.DEFAULT_METHOD in METHODS
    assert registry.GENERATOR_NAMES is choices.GENERATOR_NAMES
    assert choices.DEFAULT_GENERATOR in choices.GENERATOR_NAMES
    for name in choices.PREDICTORS:
        assert registry.weights_dir(name).is_dir(), name
    for name in choices.EMBEDDED_GENERATORS:
        assert registry.weights_dir(name).is_dir(), name
    assert SCHEMES is choices.RESAMPLE_SCHEMES
    assert INITS is choices.SELFCOND_INITS
    assert KINDS is choices.PREDICTORS


@pytest.mark.parametrize("name", [n for n in dir(choices) if n.isupper()])
def test_choices_are_tuples_of_names_or_one_name(name):
    value = getattr(choices, name)
    assert isinstance(value, str) or (
        isinstance(value, tuple) and value and all(isinstance(v, str) for v in value)
    )
