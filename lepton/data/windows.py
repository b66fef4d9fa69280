"""The window of a file that lepton.data.linecuts cuts: the bytes not cut
yet, ``buf[start:end]``, and more read after them when asked.

- Buffered: one buffer, the tail moved to its start (one memmove) and the
  stream read after it, through the page cache.
- Direct (a cold local file that takes O_DIRECT: lepton.data.directread):
  a ring of MAPS buffers, the next block read into one on a helper thread
  while another is cut (with O_DIRECT, or through the page cache, each
  block dropped from it once read: ``through_cache``). A block lands at
  the same page-aligned place of its buffer every time, at a file offset
  that is a multiple of its size; the tail of the previous block is
  copied in just before it. With O_DIRECT the device fills the buffers
  itself, so the file is neither copied out of the page cache nor put in
  it.

A Direct window ``lends`` its chunks: the consumer gets a view of the
buffer itself, not a copy, and gives it back (``give``) once done with
it and every view made of it; a buffer is read into again only when
every chunk lent from it is back (a consumer that holds chunks without
giving them back stops the reading, as linecuts.Buffers' copies do).
Copying each chunk out (linecuts.Buffers) cost the cutting thread a pass
over every byte, and buffers of its own whose pages the VM first had to
provide.

All buffers are anonymous maps: their pages are first touched by whoever
writes them (a bytearray is zeroed first, with the GIL held).
"""

from __future__ import annotations

import mmap
import queue
import sys
import threading
from concurrent.futures import Future
from typing import BinaryIO

from lepton.data.directread import ALIGN, DirectFile
from lepton.data.readinto import fill

try:
    from lepton.data import _linecuts
except ImportError:  # not built
    _linecuts = None


DIRECT_BLOCK = 32 << 20
MAPS = 3  # one being cut, one being read, and one whose chunks the workers may still hold


def fresh(size: int) -> mmap.mmap:
    """A writable buffer of ``size`` bytes whose pages are first touched by
    whoever writes them: ``bytearray(size)`` zeroes every byte first, with
    the GIL held (~40 ms for 72 MiB here, more on a loaded VM)."""
    return mmap.mmap(-1, max(size, 1))


class Window:
    """buf[start:end]: read, not cut yet; ``eof``: nothing more to read."""

    buf: mmap.mmap
    view: memoryview
    start: int
    end: int
    eof: bool
    lends = False  # chunks are views of buf, given back (Direct)

    def more(self) -> None:
        """Keep buf[start:end] (as buf[start:end] anew) and read more after it."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Buffered(Window):
    """Read through the stream into one buffer of ``block + keep`` bytes."""

    def __init__(self, stream: BinaryIO, block: int, keep: int) -> None:
        self.stream = stream
        self.buf = fresh(block + keep)
        self.view = memoryview(self.buf)
        self.start = self.end = 0
        self.eof = False

    def more(self) -> None:
        tail = self.end - self.start
        if self.start:
            self.buf.move(0, self.start, tail)  # < keep bytes, once per block (no fresh bytes object)
        self.start, self.end = 0, tail
        got = fill(self.stream, self.view[tail:])
        self.eof = got == 0
        self.end += got

    def close(self) -> None:
        self.view.release()


class Direct(Window):
    """Read with ``file`` (O_DIRECT) from the stream's position on, in blocks
    of ``block`` bytes (a multiple of ALIGN), a tail of up to ``keep``
    bytes carried from one to the next; ``maps`` buffers in turn."""

    lends = True

    def __init__(self, file: DirectFile, position: int, block: int, keep: int, maps: int = MAPS) -> None:
        if block % ALIGN:
            raise ValueError(f"direct reads in blocks of {block} bytes, not a multiple of {ALIGN}")
        if maps < 2:
            raise ValueError("direct reads need two buffers at least")
        self.file, self.block, self.keep = file, block, keep
        self.head = -(-(keep + ALIGN) // ALIGN) * ALIGN  # room for the tail, and for where a block starts
        self.maps = [fresh(self.head + block) for _ in range(maps)]
        self.views = [memoryview(m) for m in self.maps]
        self.out = [0] * maps  # chunks lent from each buffer, not given back yet
        self.held = [False] * maps  # a chunk of it was still exported when given back: replace it
        self.cond = threading.Condition()
        self.closing = False
        self.offset = position - position % ALIGN  # of the next read
        self.skip = position - self.offset  # bytes of the first block before ``position``
        self.turn = 0  # blocks taken so far; the next one lands in maps[turn % maps]
        # a daemon thread, not a pool's: one waiting for chunks never given back must not hold up exit
        self.requests: queue.SimpleQueue[tuple[int, int, Future[int]] | None] = queue.SimpleQueue()
        self.reader = threading.Thread(target=self._serve, name="lepton-direct", daemon=True)
        self.reader.start()
        self.pending: Future[int] | None = None
        self._read_next()
        self.buf, self.view = self.maps[-1], self.views[-1]  # (empty: nothing lent from it)
        self.start = self.end = self.head
        self.eof = False

    def _read_next(self) -> None:
        self.pending = Future()
        self.requests.put((self.turn % len(self.maps), self.offset, self.pending))
        self.offset += self.block

    def _serve(self) -> None:
        """The reader thread: each block asked for, in turn, until None."""
        while (request := self.requests.get()) is not None:
            k, offset, done = request
            if not done.set_running_or_notify_cancel():
                continue
            try:
                done.set_result(self._fill(k, offset))
            except Exception as e:  # noqa: BLE001 - handed to the caller, as a buffered read's would be
                done.set_exception(e)

    def _fill(self, k: int, offset: int) -> int:
        """Read the block at ``offset`` into buffer ``k`` once every chunk
        lent from it is back (on the reader thread)."""
        with self.cond:
            self.cond.wait_for(lambda: self.closing or not self.out[k])
            if self.closing:
                return 0
            if self.held[k]:  # its memory is still someone's (it lives on with them): a new buffer
                self.maps[k] = fresh(self.head + self.block)
                self.views[k] = memoryview(self.maps[k])
                self.held[k] = False
        return self.file.read(self.views[k][self.head : self.head + self.block], offset)

    def more(self) -> None:
        if self.pending is None:
            self.eof = True
            return
        got = self.pending.result()  # (an OSError is the caller's, as a buffered read's)
        self.pending = None
        k = self.turn % len(self.maps)
        buf, view = self.maps[k], self.views[k]
        tail = self.end - self.start
        if tail > self.keep:
            raise ValueError(f"a tail of {tail} bytes carried over, more than the {self.keep} kept")
        start = self.head - tail
        if tail:
            if _linecuts is not None:
                _linecuts.copy(view[start : self.head], self.view[self.start : self.end])  # no GIL
            else:
                view[start : self.head] = self.view[self.start : self.end]
        if self.turn == 0:
            start = min(self.head + self.skip, self.head + got)
        self.buf, self.view = buf, view
        self.start, self.end = start, self.head + got
        self.turn += 1
        self.eof = got < self.block  # the end of the file: nothing more to read
        if not self.eof:
            self._read_next()  # into the next buffer of the ring, once its chunks are back

    def lend(self, chunk: memoryview) -> memoryview:
        """``chunk`` (a view of ``buf``, the buffer in view) lent to the
        consumer, who gives it back with ``give``."""
        k = self._index(chunk.obj)
        with self.cond:
            self.out[k] += 1
        return chunk

    def lent(self) -> int:
        """Chunks lent and not given back yet."""
        with self.cond:
            return sum(self.out)

    def owns(self, chunk: memoryview) -> bool:
        return any(chunk.obj is m for m in self.maps)

    def give(self, chunk: memoryview) -> None:
        """A lent chunk back: nothing may read it, or any view made of it,
        from then on; its buffer is read into again. Where an export of the
        chunk itself is still held (``pa.py_buffer(chunk)``, say), its buffer
        is left to the holder and a new one takes its place; a view made
        from the chunk (as numpy's and ctypes' are) does not show here."""
        k = self._index(chunk.obj)
        try:
            chunk.release()
            held = False
        except BufferError:
            held = True
        with self.cond:
            self.out[k] -= 1
            self.held[k] = self.held[k] or held
            self.cond.notify_all()

    def _index(self, obj: object) -> int:
        for k, m in enumerate(self.maps):
            if obj is m:
                return k
        raise ValueError("not a chunk of this window")

    def close(self) -> None:
        with self.cond:
            self.closing = True  # a read waiting for chunks that will not come back gives up
            self.cond.notify_all()
        if self.pending is not None:
            self.pending.cancel()  # (not started yet: never read)
        self.requests.put(None)
        if not sys.is_finalizing():  # (at exit, a daemon thread may never run again: no join)
            self.reader.join()  # a read under way ends first: no read into a buffer let go of
        self.pending = None
        for view in self.views:
            view.release()
        self.file.close()


def window(stream: BinaryIO, block: int, keep: int, direct: bool, through_cache: bool = False) -> Window:
    """A Direct window where ``direct`` asks for one and the stream is a
    local file that takes such reads, else a Buffered one. ``through_cache``:
    its ring reads through the page cache, not with O_DIRECT (directread)."""
    if direct:
        try:
            fd, position = stream.fileno(), stream.tell()
        except (AttributeError, OSError, ValueError):
            fd = -1
        file = DirectFile.reopen(fd, through_cache) if fd >= 0 else None
        if file is not None:
            size = min(block, DIRECT_BLOCK)
            return Direct(file, position, size - size % ALIGN or ALIGN, keep)
    return Buffered(stream, block, keep)
