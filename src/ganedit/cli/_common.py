"""What several commands share: output checks, suffixes, reports, small parsers."""

from __future__ import annotations

from pathlib import Path

import typer

from ganedit.errors import UserInputError


def _outputs(*paths: Path | None, overwrite: bool) -> None:
    """Refuse, before any work, output files that exist (unless --overwrite) or cannot be written."""
    from ganedit.utils.files import check_output

    for path in paths:
        if path is not None:
            check_output(path, overwrite=overwrite)


def _expect_suffix(path: Path | None, suffix: str, flag: str = "--out") -> None:
    if path is not None and path.suffix.lower() != suffix:
        raise UserInputError(f"expected a {suffix} path for {flag}, received {str(path)!r}")


def _write_report(report: dict, path: Path | None, overwrite: bool = True) -> None:
    from ganedit.evaluation.direction_report import json_safe
    from ganedit.utils.files import write_json

    if path is not None:
        write_json(path, json_safe(report), overwrite=overwrite)
        typer.echo(f"full report: {path}")


def _int_list(text: str | None, flag: str, low: int, high: int) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UserInputError(
            f"expected {flag} as comma-separated integers, received {text!r}"
        ) from None
    if not all(low <= v <= high for v in values):
        raise UserInputError(f"expected {flag} values from {low} to {high}, received {text!r}")
    return values


def _parse_layers(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        start, stop = (int(v) for v in text.split(":"))
    except ValueError:
        raise UserInputError(f"expected --layers START:STOP, received {text!r}") from None
    return start, stop
