"""Dependencies between ganedit's packages point one way (README, "Layout"): a package imports
only from packages below it, at module level or inside a function alike."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ganedit"

# Lowest first. `errors` and `__version__` sit below everything; the command line on top.
LAYERS = [
    ("errors", "__version__", "choices"),
    ("utils",),
    ("datasets",),
    ("world",),
    ("models",),
    ("latents",),
    ("directions",),
    ("editing",),
    ("evaluation", "training"),
    ("inversion",),
    ("selfcond",),
    ("ui",),
    ("pipeline",),
    ("demo",),
    ("cli_errors", "cli_options", "cli_paths"),
    ("cli",),
    ("__main__",),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _package(path: Path) -> str:
    parts = path.relative_to(SRC).parts
    return parts[0].removesuffix(".py")


def _imported(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "ganedit":
                found |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("ganedit.")}
    return found


def test_every_package_has_a_layer():
    packages = {_package(p) for p in SRC.rglob("*.py")} - {"__init__"}
    assert packages <= set(RANK), sorted(packages - set(RANK))


def test_imports_point_down_the_layers():
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        here = _package(path)
        if here == "__init__":  # the package's lazy public API names everything
            continue
        for there in _imported(ast.parse(path.read_text())) - {here}:
            if RANK.get(there, -1) >= RANK[here]:
                upward.append(f"{path.relative_to(SRC)} imports ganedit.{there}")
    assert not upward, "\n".join(upward)
