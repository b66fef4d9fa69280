"""The console script: `lepton ...`.

Before the command-line framework is even imported (typer, rich, then the
registry and Arrow: most of a second), a snapshot of a local table file
gets its head start (lepton.data.headstart): the file is read and hashed
from the first moment, on a helper thread. The head start is handed to the
command through the command-line context; the command uses it only for the
same, unchanged file. Everything else goes straight to lepton.cli.main.
"""

from __future__ import annotations

import sys

from lepton.data.headstart import HeadStart

SNAPSHOTS = (("data", "snapshot"), ("labels", "snapshot"))
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    source = snapshot_source(argv)
    head = HeadStart.begin(source) if source is not None else None
    try:
        from lepton.cli.main import main as cli_main

        return cli_main(argv, head=head)
    finally:
        if head is not None:
            head.close()


def run() -> None:  # console script
    sys.exit(main())
