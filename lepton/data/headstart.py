"""A head start on a local table file: read and hashed from its first byte
while the command that snapshots it is still starting up.

A snapshot spends its first second importing (Arrow, SQLAlchemy, pydantic)
and opening the repository, on one core, before it reads a byte of the
source; on a cold cache the disk and the other core sit idle meanwhile.
Appended files (the usual case) resume after the prefix they share with
the previous version (lepton.data.resume), and checking that prefix means
reading and hashing it: a HeadStart does that on a helper thread from the
moment the command knows its source, keeping the hash state at every MARK
bytes. The resume then needs, per checkpoint, the state at the mark before
it and the few bytes after that mark (in the page cache by then).

A file that was not in the page cache when it was opened leaves it again
as it is read (lepton.pagecache). (Not O_DIRECT, as the ingest reads it:
with one read ahead, in 16 or 64 MiB blocks, an appended version's prefix
took 0.3-0.6 s longer to read than through the cache, 6 alternating
runs.) On the benchmark's VM a new 1 GiB
version then took 1.04 s instead of 1.31 s (medians of 8 alternating
runs), the system CPU on the core the imports need 0.57 s instead of 1.1.
The ingest is told (``cold``) rather than finding out for itself, since
the head start may have the file's first pages in the cache by then; and
close() drops whatever the readers left. (Leaving what the head start
read in the cache for the ingest to read again, instead of the disk, cost
as much system CPU as it saved: 6 alternating pairs of sparse-edit
versions, no difference in wall time.)

The states it kept are also the ingest's own hash of the file's first
``reach()`` bytes: resume.Recorder.adopt takes them instead of hashing
those bytes a second time.

Nothing here knows about the previous version, so this is only ever a
hint: the ingest uses it for the same file, unchanged since it was opened
(size, times, inode), and otherwise reads as it would have. Whoever begins
one closes it; the ingest stops it (its thread stops at the next mark) as
soon as it needs no more of its reading.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import repeat
from typing import Any

import blake3

from lepton import pagecache
from lepton.data.readinto import ReadAhead

MARK = 4 << 20  # the spacing of the kept hash states
# The read size. On the benchmark's first VM cold reads ran at 1.2 GB/s in
# blocks of 4-32 MiB and 1.45 in 64. On the 2026-12-07 machine, whose disk
# reads 3.3 GB/s cold, a head start alone read a 1.56 GB file in 0.45 s in
# blocks of 8, 16 or 32 MiB and in 0.50-0.67 s in 64 (4 alternating runs
# each): a block that fits in the CPU's last-level cache is still there
# when it is hashed.
READ = 16 << 20


class HeadStart:
    """Reads and hashes ``path`` from its first byte on a helper thread."""

    def __init__(self, path: str) -> None:
        """Raises OSError for anything but a regular file (a FIFO is neither
        waited on nor read: O_NONBLOCK, and checked before any read)."""
        opened_ns = time.time_ns()
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            s = os.fstat(fd)
            if not stat.S_ISREG(s.st_mode):
                raise OSError(f"{path}: not a regular file")
            reads = os.dup(fd)  # for hash_through's small reads (pread: its own offsets); closed by close()
            self.cold = not pagecache.cached(fd)  # then out of the cache once read (by the ingest, or close)
        except OSError:
            os.close(fd)
            raise
        self.path = os.path.abspath(path)
        self.stat = (s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino)  # as statecache.stat_of
        self.opened_ns = opened_ns  # a wall-clock time before it was opened
        self._marks: list[Any] = [blake3.blake3()]  # the state at k * MARK bytes
        self._done = False
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._reads = reads
        self._reads_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(fd,), name="lepton-head-start", daemon=True)
        self._thread.start()

    @classmethod
    def begin(cls, source: str) -> HeadStart | None:
        """A head start on ``source`` if it is a local regular file, else None."""
        path = source.removeprefix("file://")
        if "://" in path:
            return None
        try:
            return cls(path)
        except OSError:
            return None  # a folder, a FIFO, missing: the snapshot itself says what is wrong

    def _run(self, fd: int) -> None:
        """Hash the file block after block (the next one read meanwhile),
        keeping the state at every mark, until its end or close()."""
        hasher = blake3.blake3()
        try:
            with open(fd, "rb", buffering=0) as f, ReadAhead(f, repeat(READ), READ) as reads:
                for block in reads.up_to(sys.maxsize):
                    if self.cold:  # read into our buffer: out of the cache
                        pagecache.drop(fd, reads.pos - len(block), len(block))
                    for at in range(0, len(block), MARK):
                        piece = block[at : at + MARK]
                        hasher.update(piece)
                        if len(piece) < MARK:
                            return  # the end of the file: no state past its last mark is kept
                        with self._cond:
                            self._marks.append(hasher.copy())
                            self._cond.notify_all()
                    if self._stop.is_set():
                        return
        except OSError:
            pass  # only a hint: the ingest reads (and reports) for itself
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def state_at(self, offset: int) -> tuple[int, Any] | None:
        """(mark, the hash state of the file's bytes before it) for the last
        mark at or before ``offset``, waiting for it to be read; None when
        the reading ended before it (end of file, an error, closed). The
        state is a copy, the caller's to update."""
        k = offset // MARK
        with self._cond:
            self._cond.wait_for(lambda: len(self._marks) > k or self._done)
            if len(self._marks) > k:
                return k * MARK, self._marks[k].copy()
            return None

    def hash_through(self, offset: int) -> Any | None:
        """The hash state of the file's first ``offset`` bytes (the caller's):
        the state at the mark before it and the bytes from there, read here
        (in the page cache by then); None where state_at has none or the
        file ends before ``offset``."""
        at = self.state_at(offset)
        if at is None:
            return None
        mark, hasher = at
        with self._reads_lock:
            if self._reads < 0:
                return None  # closed
            try:
                data = os.pread(self._reads, offset - mark, mark)
            except OSError:
                return None  # only a hint: the ingest reads (and reports) for itself
        if len(data) != offset - mark:
            return None
        hasher.update(data)
        return hasher

    def is_for(self, path: str) -> bool:
        return self.path == os.path.abspath(path.removeprefix("file://"))

    def holds_for(self, path: str, stat_now: tuple[int, int, int, int]) -> bool:
        """Whether this is ``path``, unchanged since it was opened."""
        return self.is_for(path) and self.stat == stat_now

    def stop(self) -> None:
        """Stop reading (at the next mark) and wait for the thread; the
        states kept stay usable (safe to call twice)."""
        self._stop.set()
        self._thread.join()

    def reach(self) -> int:
        """How far the states kept go (the last mark's offset); once stopped, final."""
        with self._cond:
            return (len(self._marks) - 1) * MARK

    def close(self) -> None:
        """Stop, drop the file from the cache if it was cold (the whole file:
        by then its readers are done), and let go of it (safe to call twice)."""
        self.stop()
        with self._reads_lock:
            if self._reads >= 0:
                if self.cold:  # what it read, and what the ingest left (its last LAG bytes)
                    with contextlib.suppress(OSError):
                        pagecache.drop(self._reads, 0, 0)
                os.close(self._reads)
                self._reads = -1

    def __enter__(self) -> HeadStart:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def head_start(source: str, begun: Any = None) -> Iterator[HeadStart | None]:
    """``begun`` if it is a head start on ``source`` (its beginner closes
    it), else HeadStart.begin(source), closed on the way out."""
    if isinstance(begun, HeadStart) and begun.is_for(source):
        yield begun
        return
    head = HeadStart.begin(source)
    try:
        yield head
    finally:
        if head is not None:
            head.close()
