"""Output helpers for the CLI: JSON for machines, rich for people, progress
bars on stderr (so `--json` output on stdout stays clean)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console

out = Console(highlight=False)
if not out.is_terminal and "COLUMNS" not in os.environ:
    out.width = 120  # pipes and CI logs: rich would fall back to 80 columns
err = Console(stderr=True, highlight=False)


def to_jsonable(value: Any) -> Any:
    from pydantic import BaseModel  # here, not at the top: the CLI's start-up skips pydantic

    def convert(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    return convert(value)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def progress(
    description: str, total: int | None = None, unit: str = "rows"
) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr; yields advance(n). Hidden when not a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    columns += [TransferSpeedColumn()] if unit == "bytes" else [MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def short(id: str | None) -> str:
    return id.split(":", 1)[-1][:12] if id else "-"
