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
    if not _bring_photo(tmp_path / PHOTO):  # without ganedit[faces]: its examples cannot run
        lines = [line for line in lines if PHOTO not in line and "aligned" not in line]
    for line in lines:
        code = run(shlex.split(line)[1:])
        out, err = capsys.readouterr()
        assert code == 0, f"{line}\nexit {code}\n{out}\n{err}"


PHOTO = "astronaut.png"  # the photograph docs/cli.md's examples bring: scikit-image's


def _bring_photo(path: Path) -> bool:
    """Write the examples' photograph; False when the faces extras are not installed."""
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("dlib", "skimage")):
        return False
    from PIL import Image
    from skimage import data

    Image.fromarray(data.astronaut()).save(path)
    return True


# Files the README's commands expect the reader to bring (or that the repository holds).
READER_FILES = ("photos/", "face.png", "path/to/")
INPUT_FLAGS = {"-b", "--boundary", "-c", "--latents", "--bank", "-i", "--images", "-l",
               "--labels", "-s", "--scores", "--resample", "--ckpt"}  # fmt: skip
OUTPUT_FLAGS = {"-o", "--out", "--heatmap", "--json"}


def _readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["ganedit"]:
                commands.append(words)
    return commands


def test_readme_commands_read_only_what_earlier_ones_wrote():
    """Run in order, each README command finds its inputs: written by an earlier command
    (or inside what one wrote), in the repository, or a file the reader brings."""
    written: list[str] = []
    missing = []
    commands = _readme_commands()
    assert len(commands) >= 20
    for words in commands:
        pairs = list(zip(words, words[1:], strict=False))
        for flag, path in pairs:
            if flag not in INPUT_FLAGS:
                continue
            found = (
                path.startswith(READER_FILES)
                or (ROOT / path).exists()
                or any(path == w or path.startswith(w.rstrip("/") + "/") for w in written)
            )
            if not found:
                missing.append(f"{' '.join(words)}: {path}")
        written += [path for flag, path in pairs if flag in OUTPUT_FLAGS]
    assert not missing, "\n".join(missing)
