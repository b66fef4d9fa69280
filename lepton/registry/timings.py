"""A log of registry write latencies: one JSON line per committed write
transaction (operation, seconds including lock waits, process, wall time),
appended to a file named by ``[registry] timings`` or
``LEPTON_REGISTRY__TIMINGS``. Benchmarks read it; so can an operator
diagnosing a slow registry. Each line is one small append, so several
processes can share the file."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path


def write_log(path: str | None) -> Callable[[str, float], None] | None:
    if not path:
        return None
    target = Path(path)

    def record(op: str, seconds: float) -> None:
        line = json.dumps({"op": op, "s": round(seconds, 6), "pid": os.getpid(), "t": round(time.time(), 3)})
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    return record


def read_log(path: Path) -> list[dict[str, float | str]]:
    """The records in a timings file (a torn last line is skipped)."""
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
