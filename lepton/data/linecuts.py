"""Line-aligned, content-defined cuts of delimited text, two ways.

- FastCDC over the bytes (pyfastcdc's C gear hash, restarted at each chunk
  start), the cut moved on to the next line end: 0.46 s per GiB. A chunk's
  boundary moves when an edit falls in the 64 bytes before it (and, through
  the minimum size, the next chunks' starts may follow): for tables of long
  lines an edit rarely does; for short lines it often does.
- By first field (``line_chunks(stream, sep)``): a chunk may end after a line
  whose first field (its first PREFIX bytes, up to the separator: the key,
  in the usual layout) hashes below a threshold proportional to the line's
  length, one boundary every AVG_BYTES on average. Edits further along a
  line never move a boundary. Vectorised with numpy per read block (line
  ends, prefixes as rows of a sliding window, a SWAR mask at the separator,
  murmur3's finaliser): ~1 s per GiB, and slower still beside the parsing
  workers. Lines whose keys share their first PREFIX bytes all decide alike.

The ingest cuts datasets with FastCDC and labelsets (short `id,label` lines,
relabelled 1% at a time: FastCDC re-cut ~13% of their chunks, which then
could not be stored as patches) by first field.

Either way boundaries depend only on the bytes from the chunk's own start,
so equal runs of lines give equal chunks in every version of the file, an
insertion moves only the boundaries near it, and the cuts never depend on
where a read block began. A chunk is at least MIN_BYTES (the last one
excepted) and ends by CDC_MAX unless a single line is longer.
"""

from __future__ import annotations

import mmap
import queue
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np
from pyfastcdc.cy import FastCDC

from lepton.data import windows

try:
    from lepton.data import _linecuts
except ImportError:  # not built: numpy does the same, ~10x slower on short lines
    _linecuts = None

# ~4 MiB chunks (MIN + AVG): every chunk costs a Parquet writer, three objects (chunk, key and line
# sidecars), a read of its kept line hashes and ~1.5 ms of Python with the GIL held, whatever its
# size; a sparse-edit version is bound by the GIL, not the cores. Against ~1 MiB, ~2 MiB made a 1 GiB
# table's sparse-edit version 2.49 s instead of 3.01 (medians of 5, fresh repositories, same
# history); ~4 MiB against ~2 MiB, 3.85 s instead of 4.26 (8 alternating pairs on a slower day),
# 0.5 s less CPU, 1% less store, peak memory +70 MB (first import 566 MB instead of 442).
# Insertions re-store one chunk around them (4 MiB).
AVG_BYTES, MIN_BYTES, CDC_MAX = 3584 << 10, 512 << 10, 16 << 20
MAX_BYTES = 32 << 20  # CDC_MAX plus room to reach the end of the line
TARGET_BYTES = AVG_BYTES + MIN_BYTES
BLOCK = 64 << 20  # read size: the carried-over tail (< MAX_BYTES) is copied once per block
PREFIX = 16  # bytes of each line that decide whether a chunk may end after it
_STEPS = np.arange(PREFIX, dtype=np.int64)
_LINES_AT_ONCE = 1 << 18


def cutter(sep: str | None) -> str:
    """What decides the boundaries (a resume record holds only for the same)."""
    if sep is None:
        return f"fastcdc-lines/{AVG_BYTES}/{MIN_BYTES}/{CDC_MAX}/{MAX_BYTES}"
    return f"first-field/{PREFIX}/{AVG_BYTES}/{MIN_BYTES}/{CDC_MAX}/{sep}"


class Fallback(Exception):  # noqa: N818 - a signal, not an error the user sees
    """The fast path cannot take this file; use the whole-file reader."""


def line_chunks(
    stream: BinaryIO,
    sep: str | None = None,
    *,
    header: bytes | None = None,
    seen: Callable[[memoryview], None] | None = None,
    buffers: Buffers | None = None,
    direct: bool = False,
    through_cache: bool = False,
) -> Iterator[tuple[bytes, bytes | memoryview]]:
    """(header line, chunk) pairs: every chunk a run of whole lines; cut by
    FastCDC, or with ``sep`` by the lines' first fields. ``header``: the
    header line, when the caller read it (and perhaps more: the stream is
    then at a chunk start). ``seen`` is given each chunk's bytes as they
    are in the file (the last one without the newline it may lack).

    The file is read into reused buffers (lepton.data.windows; a fresh
    64 MiB object per read costs page faults for every byte, twice with
    the carried-over tail); with ``direct`` (a cold local file, read once)
    with O_DIRECT where the file system takes it (or, ``through_cache``,
    on the same ring of buffers through the page cache), else through the
    stream.
    More is read only when the next cut cannot be decided from what is in
    view, so the tail carried into the next block is mostly less than a
    chunk (keeping MAX_BYTES in view moved most bytes once more). Each
    chunk is a new bytes object; or, with ``buffers``, a view the consumer
    gives back: of the window itself where it lends its buffers
    (windows.Direct), else of a copy in one of ``buffers``'."""
    if header is None:
        header = stream.readline()
    if not header.strip():
        raise Fallback("no header line")
    win = windows.window(stream, BLOCK, MAX_BYTES, direct, through_cache)
    cdc = FastCDC(avg_size=AVG_BYTES, min_size=MIN_BYTES, max_size=CDC_MAX)
    lines: _Lines | _Bytes | None = None
    try:
        while True:
            start, end, view = win.start, win.end, win.view
            cut = None
            if start < end:
                if lines is None:
                    lines = (
                        _Lines(win.buf, start, end, win.eof, sep)
                        if sep
                        else _Bytes(cdc, win.buf, view, end, win.eof)
                    )
                cut = lines.cut(start)
            if cut is None:  # more is needed to decide
                if win.eof:
                    return
                if end - start > MAX_BYTES:
                    raise Fallback("a line longer than the read-ahead")
                win.more()
                lines = None
                continue
            if seen is not None:
                seen(view[start:cut])
            if buffers is not None:
                yield header, buffers.take(view[start:cut], win)
            else:
                chunk = view[start:cut].tobytes()
                yield header, chunk if chunk.endswith(b"\n") else chunk + b"\n"
            win.start = cut
    finally:
        win.close()
        if buffers is not None:
            buffers.retire(win)


def quotes(data: bytes | memoryview) -> int:
    """How many double quotes ``data`` holds, counted in place (a chunk is
    a view of a read buffer: no copy of it)."""
    if _linecuts is not None:
        return int(_linecuts.count(data, 0x22))
    return bytes(data).count(b'"')


class Buffers:
    """A few chunk-sized buffers (anonymous maps, as windows.fresh), used over and
    over: on some machines a page touched for the first time costs more
    than copying into it, and a new bytes object per chunk is fresh memory
    every time. ``copy`` waits for a free buffer, which also bounds the
    chunks in flight. A chunk is a view of the start of its buffer, or of
    the window that lent it (``take``)."""

    def __init__(self, count: int) -> None:
        self._free: queue.SimpleQueue[mmap.mmap] = queue.SimpleQueue()
        self._made, self._count = 0, count
        self._lenders: list[windows.Window] = []  # windows whose chunks may be out (workers give them back)
        self._lock = threading.Lock()

    def take(self, data: memoryview, window: windows.Window) -> memoryview:
        """A chunk cut from ``window`` (a view of its buffer): lent by the
        window itself where it lends, and the chunk ends with a newline,
        else copied."""
        if window.lends and len(data) and data[-1] == 10:
            with self._lock:
                if window not in self._lenders:
                    self._lenders.append(window)
            return window.lend(data)  # type: ignore[attr-defined]
        return self.copy(data)

    def copy(self, data: memoryview) -> memoryview:
        """``data`` in a buffer, ending with a newline: a view of the buffer."""
        if self._made < self._count and self._free.empty():
            self._made += 1
            buf = windows.fresh(MAX_BYTES + 1)
        else:
            buf = self._free.get()
        n = len(data)
        if n >= len(buf):  # one line longer than MAX_BYTES: a buffer of its own, kept after
            buf = windows.fresh(n + 1)
        if _linecuts is not None:
            _linecuts.copy(buf, data)  # without the GIL: the workers' Python runs meanwhile
        else:
            with memoryview(buf) as into:
                into[:n] = data
        if not n or buf[n - 1] != 10:
            buf[n] = 10
            n += 1
        return memoryview(buf)[:n]

    def retire(self, window: windows.Window) -> None:
        """``window`` is closed: forgotten once its last chunk is back (its
        buffers are then let go of)."""
        with self._lock:
            if window in self._lenders and not window.lent():  # type: ignore[attr-defined]
                self._lenders.remove(window)

    def give(self, chunk: memoryview) -> None:
        """A chunk's buffer, free again (its views must no longer be used)."""
        with self._lock:
            lenders = list(self._lenders)
        for lender in lenders:
            if lender.owns(chunk):  # type: ignore[attr-defined]
                lender.give(chunk)  # type: ignore[attr-defined]
                if lender.closing:  # type: ignore[attr-defined]
                    self.retire(lender)
                return
        buf = chunk.obj
        try:
            chunk.release()
        except BufferError:  # an export of the chunk itself is still held: leave the buffer to it
            # (views made from the chunk, as numpy's and ctypes' are, do not show here: as for
            # windows.Direct.give, nothing may read a chunk once given back)
            buf = windows.fresh(len(buf))  # type: ignore[arg-type]
        self._free.put(buf)  # type: ignore[arg-type]


class _Bytes:
    """FastCDC's boundaries in buf[:end], each moved on to the next line end."""

    def __init__(self, cdc: FastCDC, buf: mmap.mmap, view: memoryview, end: int, eof: bool) -> None:
        self.cdc, self.buf, self.view, self.end, self.eof = cdc, buf, view, end, eof

    def cut(self, pos: int) -> int | None:
        """End (exclusive) of the chunk starting at ``pos``; None where
        that needs more than is in view."""
        if not self.eof and self.end - pos < CDC_MAX:
            return None  # FastCDC decides within CDC_MAX bytes
        # a bounded view keeps pyfastcdc from copying the rest
        first = next(iter(self.cdc.cut_buf(self.view[pos : min(pos + CDC_MAX, self.end)])))
        boundary = pos + first.length
        if boundary >= self.end:
            return self.end if self.eof else None  # the rest of the file; else its line end is further
        newline = self.buf.find(b"\n", boundary - 1, self.end)
        if newline == -1:
            return self.end if self.eof else None
        cut = newline + 1
        if cut - pos > MAX_BYTES:  # a very long line: end at the last line end within bounds, if any
            back = self.buf.rfind(b"\n", pos, pos + MAX_BYTES)
            cut = back + 1 if back >= pos else cut
        return cut


class _Lines:
    """Boundary candidates of buf[base:end] (base: a line start)."""

    def __init__(self, buf: mmap.mmap, base: int, end: int, eof: bool, sep: str | None) -> None:
        self.buf, self.end, self.eof = buf, end, eof
        self.boundaries = first_field_boundaries(buf, base, end, eof, sep)

    def cut(self, pos: int) -> int | None:
        """End (exclusive) of the chunk starting at ``pos``; None where
        that needs more than is in view. A boundary in view is the first
        one whatever follows (each depends on its own line only)."""
        i = int(np.searchsorted(self.boundaries, pos + MIN_BYTES))
        if i < len(self.boundaries) and self.boundaries[i] - pos <= CDC_MAX:
            return int(self.boundaries[i])
        if self.end <= pos + CDC_MAX:  # at the end, the rest (its last line may lack a newline); else
            return self.end if self.eof else None  # a boundary may yet come, or the file end right here
        last = self.buf.rfind(b"\n", pos, pos + CDC_MAX)
        if last != -1:
            return last + 1  # no boundary in reach: the last line end within it
        first = self.buf.find(b"\n", pos, self.end)
        if first != -1:
            return first + 1  # one line longer than CDC_MAX: a chunk of its own
        if self.eof:
            return self.end
        return None  # a line longer than what is in view


def first_field_boundaries(
    buf: bytearray | mmap.mmap, base: int, end: int, eof: bool, sep: str | None, avg: int | None = None
) -> np.ndarray:
    """The exclusive ends of the lines of buf[base:end] (with ``eof``, the
    last line without its newline too) after which a chunk may end:
    compiled (lepton/data/_linecuts.c, ~10x faster on short lines, without
    the GIL and without an array of every line end: ~5 MB a 64 MiB block),
    else numpy_cuts. ``avg``: bytes between boundaries on average (AVG_BYTES)."""
    avg = AVG_BYTES if avg is None else avg
    if _linecuts is None:
        return numpy_cuts(buf, base, end, eof, sep, avg)[1]
    got = _linecuts.boundaries(buf, base, end, eof, ord(sep) if sep else -1, avg, 2**64 // avg)
    return np.frombuffer(got, dtype=np.int64)


def numpy_cuts(
    buf: bytearray | mmap.mmap, base: int, end: int, eof: bool, sep: str | None, avg: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every line end of buf[base:end], and first_field_boundaries, in numpy
    (where the extension was not built)."""
    avg = AVG_BYTES if avg is None else avg
    data = np.frombuffer(buf, dtype=np.uint8, count=end)
    ends = np.flatnonzero(data[base:end] == 10) + (base + 1)  # exclusive ends of whole lines
    if eof and (not len(ends) or ends[-1] != end):
        ends = np.append(ends, end)  # the last line, without its newline
    starts = np.concatenate(([base], ends[:-1]))
    # every line's first PREFIX bytes, as rows of a sliding window (a 16-byte copy
    # each); lines shorter than PREFIX are redone below, their last byte repeated
    windows = np.lib.stride_tricks.sliding_window_view(data, PREFIX) if end >= PREFIX else None
    boundary = np.empty(len(ends), dtype=bool)
    for i in range(0, len(ends), _LINES_AT_ONCE):  # bounded temporaries for short lines
        s, e = starts[i : i + _LINES_AT_ONCE], ends[i : i + _LINES_AT_ONCE]
        short = (e - s) < PREFIX
        if windows is not None:
            prefixes = windows[np.minimum(s, end - PREFIX)]
        else:
            prefixes = np.zeros((len(s), PREFIX), dtype=np.uint8)
        if short.any():
            # the window from the line's own start, bytes past its end replaced
            # by its last byte (a gather per byte only where the window would
            # run past the data)
            fits = short & (s + PREFIX <= end)
            if fits.all():  # short lines only (e.g. `id,label`): no selection
                past = _STEPS[None, :] >= (e - s)[:, None]
                prefixes = np.where(past, data[e - 1][:, None], prefixes)
            elif fits.any():
                past = _STEPS[None, :] >= (e[fits] - s[fits])[:, None]
                prefixes[fits] = np.where(past, data[e[fits] - 1][:, None], prefixes[fits])
            rest = short & ~fits
            if rest.any():
                at = np.minimum(s[rest, None] + _STEPS, (e[rest] - 1)[:, None])
                prefixes[rest] = data[at]
        words = np.ascontiguousarray(prefixes).view("<u8")  # PREFIX // 8 words per line
        if sep is not None:
            words = _first_field(words, sep)
        h = words[:, 0]
        for w in range(1, PREFIX // 8):
            h = (h * _ODD) ^ words[:, w]
        h = _mix(h)
        # a boundary after the line with probability len/avg: one every avg bytes on average
        length = np.minimum(e - s, avg).astype(np.uint64)
        boundary[i : i + len(e)] = h < length * np.uint64(2**64 // avg)
    return ends, ends[boundary]


_ONES, _HIGHS = np.uint64(0x0101010101010101), np.uint64(0x8080808080808080)
_ODD = np.uint64(0x9E3779B97F4A7C15)


def _first_field(words: np.ndarray, sep: str) -> np.ndarray:
    """The prefixes with every byte from the first ``sep`` on zeroed. Per
    64-bit word, the classic test for a zero byte of ``word ^ sep*0x01..01``
    (exact for the lowest one) gives a mask of the bytes before it."""
    pattern = np.uint64(ord(sep)) * _ONES
    open_ = np.ones(len(words), dtype=bool)  # no separator in the words before
    out = np.empty_like(words)
    for w in range(words.shape[1]):
        x = words[:, w]
        y = x ^ pattern
        t = (y - _ONES) & ~y & _HIGHS  # lowest set bit: 8k+7 for the first separator at byte k
        keep = ((t & (~t + np.uint64(1))) >> np.uint64(7)) - np.uint64(1)  # bytes 0..k-1; all if none
        out[:, w] = np.where(open_, x & keep, np.uint64(0))
        open_ &= t == 0
    return out


def _mix(h: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser, element-wise (uint64 arithmetic wraps)."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))
