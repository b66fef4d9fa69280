"""The console script: `lepton ...`.

Before the command-line framework is even imported (typer, rich, then the
registry and Arrow: most of a second), a snapshot of a local table file
gets its head start (lepton.data.headstart): the file is read and hashed
from the first moment, on a helper thread. The head start is handed to the
command through the command-line context; the command uses it only for the
same, unchanged file. Everything else goes straight to lepton.cli.main.

Start-up is mostly imports, and a good part of their time went to the
cyclic garbage collector walking again and again the objects they create,
none of them garbage. The collector is off while the command's modules are
imported (for a snapshot: the registry, the store and the ingest); what
they made is then frozen (never walked again, at exit included) and the
collector runs as usual; at the end everything is frozen, so that the
collection at exit does not walk it all once more. The data and labels
commands do no linear algebra, so numpy's BLAS gets one thread: its idle
threads spin on the core the head start hashes on, and took 3% of a CSV
checkout's CPU samples (perf) from the threads that format the chunks.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from lepton.data.headstart import HeadStart

SNAPSHOTS = (("data", "snapshot"), ("labels", "snapshot"))
# The GIL's switch interval while a head start runs. Its thread takes the GIL
# back after every 4 MiB it hashes (0.5 ms), and waited up to the default
# 5 ms each time for the imports to let go of it: by the end of the imports
# it had read 336-440 MB of a cold 1.56 GB file, and 952 MB at 0.5 ms, the
# imports no slower (2 runs each).
HEAD_SWITCH = 0.0005
VALUED = frozenset({"--key", "-m", "--message", "--dataset", "--label"})  # their options that take a value


def snapshot_source(argv: list[str]) -> str | None:
    """SOURCE of `data snapshot NAME SOURCE` or `labels snapshot NAME SOURCE`
    in ``argv`` (options anywhere), else None. Only a guess: a wrong one
    costs a read, never a wrong version (the command checks the path)."""
    for i in range(len(argv) - 1):
        if (argv[i], argv[i + 1]) in SNAPSHOTS:
            break
    else:
        return None
    positional: list[str] = []
    rest = iter(argv[i + 2 :])
    for arg in rest:
        if arg == "--":
            positional.extend(rest)
        elif arg.startswith("-"):
            if arg in VALUED:
                next(rest, None)
        else:
            positional.append(arg)
    return positional[1] if len(positional) > 1 else None


def _data_command(argv: list[str]) -> bool:
    """Whether ``argv`` is a `data` or `labels` command (no linear algebra)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first in ("data", "labels")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    source = snapshot_source(argv)
    blas = _data_command(argv) and "OPENBLAS_NUM_THREADS" not in os.environ
    if blas:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"  # read once, when numpy loads OpenBLAS
    head = HeadStart.begin(source) if source is not None else None
    switch = sys.getswitchinterval()
    if head is not None:
        sys.setswitchinterval(HEAD_SWITCH)
    try:
        with _imports_frozen():
            from lepton.cli.main import main as cli_main

            if source is not None:
                import lepton.data.fileingest
                import lepton.repo  # noqa: F401
        return cli_main(argv, head=head)
    finally:
        sys.setswitchinterval(switch)
        if blas:
            del os.environ["OPENBLAS_NUM_THREADS"]
        if head is not None:
            head.close()


@contextmanager
def _imports_frozen() -> Iterator[None]:
    """No cyclic collection during the imports; what they made frozen after."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def run() -> None:  # console script
    code = main()
    # The process ends here, and its exit collects every generation: after a
    # checkout of the benchmark's table, 0.26 s walking objects none of
    # which is garbage (modules, their functions and types). Frozen, they
    # are not walked.
    gc.freeze()
    sys.exit(code)
