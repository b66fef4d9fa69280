"""Reading a stream into reused buffers (only the standard library: the
start-up path uses it too)."""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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


class ReadAhead:
    """A stream read from ``pos`` in blocks of the given ``sizes`` (each at
    most ``block``), one block ahead on a helper thread into two reused
    buffers: reading the next block while this one is hashed takes the
    longer of the two, not their sum (the kernel's own read-ahead is far
    smaller). A block yielded is valid until the next one is asked for.

    The buffers are anonymous maps, not written before use (a bytearray is
    zeroed byte by byte first)."""

    def __init__(self, stream: BinaryIO, sizes: Iterator[int], block: int, pos: int = 0) -> None:
        self.stream, self.pos, self.sizes = stream, pos, sizes
        self.maps = [mmap.mmap(-1, max(block, 1)) for _ in range(2)]
        self.views = [memoryview(m) for m in self.maps]
        self.pool = ThreadPoolExecutor(1)
        self.ahead: Future[int] | None = None
        self.turn = 0
        self._next()

    def _next(self) -> None:
        size = next(self.sizes, 0)
        view = self.views[self.turn % 2]
        self.ahead = self.pool.submit(fill, self.stream, view[:size]) if size else None

    def up_to(self, stop: int) -> Iterator[memoryview]:
        """The blocks up to ``stop`` (fewer at the end of the stream)."""
        while self.pos < stop and self.ahead is not None:
            n = self.ahead.result()
            view = self.views[self.turn % 2]
            self.turn += 1
            if not n:
                self.ahead = None
                return
            self._next()
            self.pos += n
            yield view[:n]

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True)
        for view in self.views:
            view.release()
        self.maps = []  # unmapped once no block yielded is held any more
