"""Where a `lepton` command's wall time goes, thread by thread.

    .venv/bin/python bench/timeline.py -- data snapshot t /data/t.csv --key id
    .venv/bin/python bench/timeline.py --step 0.1 --watch lepton.data.lineedits:kept=K -- data snapshot ...

Runs the command in this process (lepton.cli.launch, as the console script
does: the head start included) with the watched functions wrapped, and
prints for each thread and each watched function the time spent inside it
and a text timeline, one character per ``--step`` seconds: the function's
letter where it ran most of the step, a dot where it ran part of it. The
wrapping costs ~1 us a call: watch functions called per chunk, not per line.

What the default watch list showed for a sparse-edit version of the
benchmark's 1 GiB table (README, "Where an S3 version's time goes"): the
ingest starts after ~1 s of imports, both workers are in _one_chunk from
then on, and the cutting thread waits for them in _bound.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

WATCH = (
    "lepton.data.ingest:ingest_delimited=I",
    "lepton.data.ingest:_resume_cutting_ahead=R",
    "lepton.data.ingest:_one_chunk=C",
    "lepton.data.ingest:_bound=B",
    "lepton.data.linecuts:first_field_boundaries=X",
    "lepton.data.windows:Direct.more=M",
    "lepton.data.headstart:HeadStart.stop=S",
)

Event = tuple[str, str, float, float]  # thread, letter, start, end (seconds from the start)


def watch(spec: str, events: list[Event], t0: float) -> None:
    """Wrap ``module:attr.path=LETTER`` so that each call is recorded."""
    target, _, letter = spec.partition("=")
    module, _, path = target.partition(":")
    if not (module and path and len(letter) == 1):
        raise SystemExit(f"--watch {spec!r}: expected module:attr=L (one letter)")
    owner: Any = importlib.import_module(module)
    *parents, name = path.split(".")
    for part in parents:
        owner = getattr(owner, part)
    fn: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(fn)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            events.append((threading.current_thread().name, letter, start - t0, time.perf_counter() - t0))

    setattr(owner, name, recorded)


def timeline(events: list[Event], end: float, step: float) -> list[str]:
    """One line per thread and letter: total seconds, then the timeline."""
    width = int(end / step) + 1
    lines = [f"{end:.2f} s in all, {step:g} s a character"]
    for thread, letter in sorted({(e[0], e[1]) for e in events}):
        busy = [0.0] * width
        total = 0.0
        for th, le, start, stop in events:
            if (th, le) != (thread, letter):
                continue
            total += stop - start
            i = int(start / step)
            while i < width and i * step < stop:
                busy[i] += min(stop, (i + 1) * step) - max(start, i * step)
                i += 1
        cells = "".join(letter if b >= 0.6 * step else "." if b > 0.005 * step else " " for b in busy)
        lines.append(f"{thread[:24]:24s} {letter} {total:6.2f} s |{cells}|")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--step", type=float, default=0.05, help="seconds a character (default 0.05)")
    ap.add_argument("--watch", action="append", default=[], help="module:attr=L, added to the defaults")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the lepton command, after --")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command: bench/timeline.py -- data snapshot NAME SOURCE ...")
    t0 = time.perf_counter()
    events: list[Event] = []
    from lepton.cli import launch

    for spec in (*WATCH, *args.watch):
        watch(spec, events, t0)
    try:
        code = launch.main(command)
    finally:
        print("\n".join(timeline(events, time.perf_counter() - t0, args.step)), file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
