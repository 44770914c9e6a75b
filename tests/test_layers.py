"""Dependencies between ganedit's packages point one way (README, "Layout"; docs/architecture.md):
a package imports only from packages below it, at module level or inside a function alike.

Inside a package, modules import each other without a circle. A circle of module-level imports
is refused outright (it breaks or half-initialises a module depending on which is imported
first). A circle closed by an import inside a function runs, but it still means each module
needs the other, which is the tangle the layers exist to prevent, so it is refused too; the few
such circles left in modules being reshaped are listed in LAZY_CIRCLES, and the test fails when
one of them is gone (delete its entry then) as it does when a new one appears. Imports under
`if TYPE_CHECKING:` never run and are not counted."""

import ast
from collections.abc import Iterator
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

# Circles closed by a function-level import that are allowed to stay; each is the sorted module
# names of one strongly connected group. None today.
LAZY_CIRCLES: set[tuple[str, ...]] = set()


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


def _module_name(path: Path) -> str:
    parts = ("ganedit", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _runtime_imports(node: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """(import statement, whether it sits in a function) for every import that can run."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            yield from (
                pair for stmt in child.orelse for pair in _runtime_imports(stmt, in_function)
            )
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, in_function
        lazy = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _runtime_imports(child, lazy)


def _targets(node: ast.AST, here: str, is_package: bool) -> set[str]:
    """The ganedit modules one import statement loads (a package's __init__ for a name it
    holds, the submodule for `from package import submodule`)."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in MODULES}
    base = node.module or ""
    if node.level:  # relative: from the package holding `here`
        package = here.split(".")[: len(here.split(".")) - (not is_package) - (node.level - 1)]
        base = ".".join([*package, *([node.module] if node.module else [])])
    found = {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    return found & set(MODULES)


def _import_graph(with_lazy: bool) -> dict[str, set[str]]:
    graph = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for node, lazy in _runtime_imports(ast.parse(path.read_text())):
            if with_lazy or not lazy:
                graph[name] |= _targets(node, name, path.name == "__init__.py") - {name}
    return graph


def _circles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """The strongly connected groups of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), set()
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while not group or group[-1] != node:
                        group.append(stack.pop())
                        on_stack.discard(group[-1])
                    if len(group) > 1:
                        found.add(tuple(sorted(group)))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_circle_of_module_level_imports():
    assert not _circles(_import_graph(with_lazy=False))


def test_no_circle_through_function_level_imports_but_the_listed_ones():
    found = _circles(_import_graph(with_lazy=True))
    new = [" -> ".join(c) for c in sorted(found - LAZY_CIRCLES)]
    gone = [" -> ".join(c) for c in sorted(LAZY_CIRCLES - found)]
    assert not new, "modules importing each other: " + "; ".join(new)
    assert not gone, "no longer a circle, delete it from LAZY_CIRCLES: " + "; ".join(gone)


def test_the_circle_finder_sees_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _circles(graph) == {("a", "b", "c")}


def test_a_lazy_import_closes_a_circle_only_when_counted():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ganedit.models import sources\n"
        "def f():\n    from ganedit.models import pggan\n"
        "from ganedit.models.io import read_config\n"
    )
    seen = {
        (t, lazy) for node, lazy in _runtime_imports(tree) for t in _targets(node, "x.y", False)
    }
    assert seen == {("ganedit.models.pggan", True), ("ganedit.models.io", False)}
