"""The generator format table: what loading, identity, help and docs read."""

from pathlib import Path

import pytest

from ganedit.errors import UserInputError
from ganedit.models.formats import GENERATOR_FORMATS, format_of, generator_forms
from ganedit.models.registry import GENERATOR_NAMES
from ganedit.models.sources import generator_identity, load_generator

DOCS = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def test_every_format_has_a_row_in_the_docs_table_and_in_the_help():
    from ganedit.cli_options import GENERATOR_HELP

    rows = [line for line in DOCS.read_text().splitlines() if line.startswith("| ")]
    first_cells = {row.split("|")[1].strip() for row in rows}
    for fmt in GENERATOR_FORMATS:
        assert fmt.docs in first_cells, fmt.key
        assert fmt.label in GENERATOR_HELP
    assert len({f.key for f in GENERATOR_FORMATS}) == len(GENERATOR_FORMATS)


def test_paths_are_recognised_by_the_first_row_that_takes_them(tmp_path):
    folder = tmp_path / "g"
    folder.mkdir()
    assert format_of(tmp_path / "x.pt").key == "stylegan2-pytorch-pt"
    assert format_of(tmp_path / "missing.pkl").key == "stylegan2-ada-pkl"  # its reader says why
    assert format_of(tmp_path / "x.pth").key == "interfacegan-pth"
    assert format_of(folder).key == "model-folder"
    assert format_of(tmp_path / "x.png") is None


@pytest.mark.parametrize("call", [load_generator, generator_identity])
def test_an_unknown_form_lists_every_form_in_one_line(tmp_path, call):
    with pytest.raises(UserInputError) as err:
        call(tmp_path / "faces.png")
    message = str(err.value)
    assert "\n" not in message and generator_forms(GENERATOR_NAMES) in message
