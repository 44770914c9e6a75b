"""The suite's own layout: test modules are imported by basename (no __init__.py), so two
test files with one name in different folders cannot both be collected."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_file_basenames_are_unique():
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [n for n, c in names.items() if c > 1] == []
