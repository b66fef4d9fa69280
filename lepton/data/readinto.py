"""Reading a stream into a caller's buffer (no imports beyond typing: the
start-up path uses it too)."""

from __future__ import annotations

from typing import BinaryIO


def fill(stream: BinaryIO, into: memoryview) -> int:
    """Read up to len(into) bytes into ``into``; 0 at the end of the file."""
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        block = stream.read(len(into))
        into[: len(block)] = block
        return len(block)
    total = 0
    while total < len(into):  # a read may return less than asked before the end
        n = readinto(into[total:])
        if not n:
            break
        total += n
    return total
