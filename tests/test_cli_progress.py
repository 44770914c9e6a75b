"""Commands that run long write plain progress lines when stderr is a log (not a terminal).
A fake clock, 30 s later at every reading, makes every line due: nothing sleeps."""

import re
import types

import pytest

from ganedit.cli import run
from ganedit.utils import progress


@pytest.fixture
def slow_clock(monkeypatch):
    now = [0.0]

    def monotonic() -> float:
        now[0] += 30.0
        return now[0]

    monkeypatch.setattr(progress, "time", types.SimpleNamespace(monotonic=monotonic))


def _lines(capsys, args) -> tuple[str, list[str]]:
    assert run([str(a) for a in args]) == 0
    out, err = capsys.readouterr()
    assert "\x1b[" not in err  # plain lines, no terminal drawing
    return out, err.splitlines()


def _finished(line: str, what: str) -> bool:
    return re.match(rf"{re.escape(what)} (\d+)/\1 done in \d+:\d\d", line) is not None


def test_train_predictor_reports_its_steps(tmp_path, capsys, slow_clock):
    out, lines = _lines(capsys, ["train-predictor", "--kind", "labeler", "--steps", 2,
                                 "--batch-size", 4, "-o", tmp_path / "run"])  # fmt: skip
    assert "model" in out
    assert re.match(r"train labeler 1/2 \(50%\), \S+ s each, ETA \d+:\d\d", lines[0]), lines
    assert _finished(lines[-1], "train labeler"), lines


@pytest.mark.parametrize(("predictor", "what"), [("labeler", "render + predict"),
                                                 ("identity", "render + embed")])  # fmt: skip
def test_evaluate_predictor_reports_its_renders(capsys, slow_clock, predictor, what):
    out, lines = _lines(capsys, ["evaluate-predictor", "-p", predictor, "--eval-n", 10])
    assert "held-out" in out
    assert lines[0].startswith(f"{what} 10/"), lines
    assert _finished(lines[-1], what), lines


def test_no_progress_writes_nothing(capsys, slow_clock):
    _, lines = _lines(capsys, ["evaluate-predictor", "-p", "labeler", "--eval-n", 10,
                               "--no-progress"])  # fmt: skip
    assert lines == []
