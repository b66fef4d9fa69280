"""Line-aligned, content-defined cuts of delimited text.

From the start of each chunk (always the start of a line), FastCDC (the
C implementation in pyfastcdc, gear hash, 2020 normalisation) finds the
next content-defined boundary; the chunk ends at the first line end at or
after it. Boundaries depend only on the bytes from the chunk's own start,
so equal runs of lines give equal chunks in every version of the file, an
insertion or edit moves only the boundaries near it, and the cuts never
depend on where a read block began.

Measured on this 2-core machine (200 MB of the benchmark's CSV): 0.12 s,
against 0.76 s for the earlier numpy cutter that hashed every line.
Chunks average about 1 MiB (FastCDC's mean is AVG + MIN); a chunk is at
least MIN_BYTES (the last one excepted) and at most MAX_BYTES unless a
single line is longer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from pyfastcdc.cy import FastCDC

AVG_BYTES, MIN_BYTES, CDC_MAX = 768 << 10, 256 << 10, 4 << 20
MAX_BYTES = 8 << 20  # CDC_MAX plus room to reach the end of the line
TARGET_BYTES = AVG_BYTES + MIN_BYTES
BLOCK = 64 << 20  # read size: the carried-over tail (< MAX_BYTES) is copied once per block


class Fallback(Exception):  # noqa: N818 - a signal, not an error the user sees
    """The fast path cannot take this file; use the whole-file reader."""


def line_chunks(stream: BinaryIO) -> Iterator[tuple[bytes, bytes]]:
    """(header line, chunk) pairs: every chunk a run of whole lines."""
    header = stream.readline()
    if not header.strip():
        raise Fallback("no header line")
    cdc = FastCDC(avg_size=AVG_BYTES, min_size=MIN_BYTES, max_size=CDC_MAX)
    data, pos, eof = b"", 0, False
    while True:
        if not eof and len(data) - pos < MAX_BYTES:  # keep a whole maximal chunk in view
            block = stream.read(BLOCK)
            eof = not block
            data, pos = data[pos:] + block, 0
            continue
        if pos >= len(data):
            return
        end = _cut(cdc, data, pos, eof)
        chunk = data[pos:end]
        yield header, chunk if chunk.endswith(b"\n") else chunk + b"\n"
        pos = end


def _cut(cdc: FastCDC, data: bytes, pos: int, eof: bool) -> int:
    """End (exclusive) of the chunk starting at ``pos``: FastCDC's boundary,
    moved on to just after the next newline."""
    # FastCDC decides within CDC_MAX bytes; a bounded view keeps pyfastcdc from copying the rest
    first = next(iter(cdc.cut_buf(memoryview(data)[pos : pos + CDC_MAX])))
    boundary = pos + first.length
    if boundary >= len(data):
        return len(data)  # the rest of the file (we hold MAX_BYTES ahead unless at its end)
    newline = data.find(b"\n", boundary - 1)
    if newline == -1:
        if not eof:
            raise Fallback("a line longer than the read-ahead")
        return len(data)
    end = newline + 1
    if end - pos > MAX_BYTES:  # a very long line: end at the last line end within bounds, if any
        back = data.rfind(b"\n", pos, pos + MAX_BYTES)
        end = back + 1 if back >= pos else end
    return end
