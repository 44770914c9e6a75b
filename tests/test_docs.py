"""The documentation's examples run as written: the Python blocks of README.md, docs/api.md and
docs/inversion.md (each file's blocks in order, sharing one namespace, in an empty folder) and
the `ganedit`
command lines of docs/cli.md's examples."""

import re
import shlex
from pathlib import Path

import pytest

from ganedit.cli import run

ROOT = Path(__file__).resolve().parents[1]


def _blocks(path: Path, language: str) -> list[str]:
    text = path.read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.parametrize("doc", ["README.md", "docs/api.md", "docs/inversion.md"])
def test_python_examples_run_as_written(doc, tmp_path, monkeypatch):
    blocks = _blocks(ROOT / doc, "python")
    assert blocks, f"{doc} has no python examples"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_example__"}
    for block in blocks:
        exec(compile(block, f"{doc} example", "exec"), namespace)  # noqa: S102


def test_cli_examples_run_as_written(tmp_path, monkeypatch, capsys):
    text = (ROOT / "docs" / "cli.md").read_text()
    examples = text[text.index("## Examples") :]
    lines = [
        line.strip()
        for block in re.findall(r"^```bash\n(.*?)^```", examples, flags=re.S | re.M)
        for line in block.splitlines()
        if line.strip().startswith("ganedit ")
    ]
    assert len(lines) >= 10
    monkeypatch.chdir(tmp_path)
    for line in lines:
        code = run(shlex.split(line)[1:])
        out, err = capsys.readouterr()
        assert code == 0, f"{line}\nexit {code}\n{out}\n{err}"
