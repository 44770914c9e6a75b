"""Size measures of ganedit's source, for the architecture notes (issue 27's "Measures").

Prints the lines of src/ (every line of every .py file, as `find src -name '*.py' | xargs cat
| wc -l` counts them), the longest functions (first line of the `def` or its decorators to the
last line of its body; nested functions are counted on their own and inside their parent), and
percentiles of function length.

    python benchmarks/code_measures.py
    python benchmarks/code_measures.py --src /path/to/old/src --top 20
"""

from __future__ import annotations

import argparse
import ast
import statistics
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PERCENTILES = (50, 75, 90, 95, 99)


def _functions(path: Path, root: Path) -> list[tuple[int, str]]:
    """(length in lines, `file:line name`) of every function and method in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            where = f"{path.relative_to(root)}:{node.lineno} {node.name}"
            found.append((node.end_lineno - first + 1, where))
    return found


def _percentile(sorted_values: list[int], p: int) -> int:
    # Nearest rank: the smallest value with at least p % of the values at or below it.
    rank = max(1, -(-p * len(sorted_values) // 100))
    return sorted_values[rank - 1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=SRC, help="the source tree to measure")
    parser.add_argument("--top", type=int, default=10, help="how many longest functions")
    args = parser.parse_args(argv)

    files = sorted(args.src.rglob("*.py"))
    lines = sum(len(p.read_bytes().splitlines()) for p in files)
    functions = sorted((f for p in files for f in _functions(p, args.src)), reverse=True)
    lengths = sorted(n for n, _ in functions)

    print(f"src: {lines} lines in {len(files)} .py files, {len(functions)} functions")
    print(f"\nlongest {args.top} functions (lines):")
    for n, where in functions[: args.top]:
        print(f"  {n:5d}  {where}")
    cells = "  ".join(f"p{p} {_percentile(lengths, p)}" for p in PERCENTILES)
    print(f"\nfunction length: mean {statistics.fmean(lengths):.1f}  {cells}  max {lengths[-1]}")


if __name__ == "__main__":
    main()
