"""Show a contingency table: a rich table for the terminal and a heatmap PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganedit.directions.sampling import ContingencyTable, cell_key
from ganedit.utils.files import atomic_path


def rich_table(table: ContingencyTable, threshold: float | None):
    """Every cell of the 2^K table (empty ones too) with count and share; rarest marked."""
    from rich.table import Table

    title = (
        f"{table.n_samples} samples confident at {threshold} on {', '.join(table.attributes)}"
        if threshold is not None
        else f"{table.n_samples} samples, {', '.join(table.attributes)}"
    )
    out = Table(title=title)
    for name in table.attributes:
        out.add_column(name, justify="center")
    out.add_column("count", justify="right")
    out.add_column("share", justify="right")
    counts, rarest = table.counts, table.rarest_cell
    for cell in table.all_cells:
        count = counts.get(cell, 0)
        note = " rarest" if cell == rarest else (" empty" if count == 0 else "")
        out.add_row(
            *[str(v) for v in cell], str(count), f"{count / max(table.n_samples, 1):.4f}{note}"
        )
    out.caption = (
        f"largest balanced subset (equal count in each of {len(table.cells)} non-empty cells): "
        f"{table.max_balanced_size}; over all {len(table.all_cells)} cells: "
        f"{table.max_balanced_size_all_cells}"
    )
    return out


def _grid(table: ContingencyTable) -> tuple[np.ndarray, list[str], list[str], str, str]:
    """Counts arranged with the first half of the attributes on rows, the rest on columns."""
    k = len(table.attributes)
    rows_k = k // 2
    row_labels = [format(i, f"0{rows_k}b") if rows_k else "" for i in range(2**rows_k)]
    col_labels = [format(j, f"0{k - rows_k}b") for j in range(2 ** (k - rows_k))]
    counts = np.zeros((len(row_labels), len(col_labels)), np.int64)
    for cell, count in table.counts.items():
        key = cell_key(cell)
        counts[int(key[:rows_k] or "0", 2), int(key[rows_k:], 2)] = count
    return (
        counts,
        row_labels,
        col_labels,
        ", ".join(table.attributes[:rows_k]),
        ", ".join(table.attributes[rows_k:]),
    )


def save_heatmap(table: ContingencyTable, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts, row_labels, col_labels, row_name, col_name = _grid(table)
    fig, ax = plt.subplots(figsize=(1.2 * len(col_labels) + 2, 0.9 * len(row_labels) + 1.5))
    image = ax.imshow(np.log10(counts + 1), cmap="viridis")
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, str(count), ha="center", va="center", color="w" if count else "r", fontsize=9)
    ax.set_xticks(range(len(col_labels)), col_labels)
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set_xlabel(col_name)
    ax.set_ylabel(row_name)
    ax.set_title(f"contingency table ({table.n_samples} samples)")
    fig.colorbar(image, ax=ax, label="log10(count + 1)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)
