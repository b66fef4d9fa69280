"""Output helpers for the CLI: JSON for machines, rich for people, progress
bars on stderr (so `--json` output on stdout stays clean)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
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
    """A progress bar on stderr; yields advance(n). None when not a terminal."""
    if not err.is_terminal:  # no bar: nothing to count (a tree's workers call this 20,000 times)
        yield lambda n: None
        return
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
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=total)
        batched = Batched(lambda n: bar.advance(task, n))
        yield batched
        batched.flush()


class Batched:
    """advance(n) from many threads, passed on at most every ``every``
    seconds (rich's own advance takes its lock and keeps speed samples:
    ~10 us a call, 20,000 calls for a tree); the bar redraws 10 times a
    second anyway."""

    def __init__(self, advance: Callable[[int], object], every: float = 0.05) -> None:
        self.advance, self.every = advance, every
        self.lock = threading.Lock()
        self.pending, self.due = 0, 0.0

    def __call__(self, n: int) -> None:
        with self.lock:
            self.pending += n
            now = time.monotonic()
            if now < self.due:
                return
            self.due, n, self.pending = now + self.every, self.pending, 0
        self.advance(n)

    def flush(self) -> None:
        with self.lock:
            n, self.pending = self.pending, 0
        if n:
            self.advance(n)


def short(id: str | None) -> str:
    return id.split(":", 1)[-1][:12] if id else "-"
