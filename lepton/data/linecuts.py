"""Line-aligned, content-defined cuts of delimited text.

A line ends a chunk when a hash of its own bytes falls under a probability
proportional to its length (so chunks average TARGET_BYTES whatever the
line length), subject to a minimum and maximum size. Equal runs of lines
therefore give equal chunks in every version of the file, and the cut
points never depend on where a read block began.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

TARGET_BYTES = 1 << 20
MIN_BYTES = 1 << 18
MAX_BYTES = 8 << 20
BLOCK = 16 << 20
_MULT = np.uint64(0x9E3779B97F4A7C15)


class Fallback(Exception):  # noqa: N818 - a signal, not an error the user sees
    """The fast path cannot take this file; use the whole-file reader."""


def line_chunks(stream: BinaryIO) -> Iterator[tuple[bytes, bytes]]:
    """(header line, chunk) pairs: every chunk a run of whole lines."""
    header = stream.readline()
    if not header.strip():
        raise Fallback("no header line")
    carry = b""
    while True:
        block = stream.read(BLOCK)
        data = carry + block
        if not block:
            if data:
                yield header, data if data.endswith(b"\n") else data + b"\n"
            return
        cuts = _cuts(data)
        start = 0
        for end in cuts:
            yield header, data[start:end]
            start = end
        carry = data[start:]


def _cuts(data: bytes) -> list[int]:
    """Chunk ends (exclusive offsets) within ``data``, which starts at a chunk
    boundary; what follows the last cut is carried into the next read."""
    arr = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(arr == 10) + 1  # offsets just after each newline
    if not len(ends):
        return []
    starts = np.concatenate(([0], ends[:-1]))
    lengths = (ends - starts).astype(np.uint64)
    h = _tail_hash(arr, ends, lengths)
    threshold = (lengths << np.uint64(32)) // np.uint64(TARGET_BYTES)
    candidates = ends[(h & np.uint64(0xFFFFFFFF)) < threshold].tolist()
    cuts: list[int] = []
    base = 0  # offset of the current chunk's start
    for end in candidates:
        while end - base > MAX_BYTES:
            forced = _next_newline(ends, base + MAX_BYTES)
            if forced is None or forced >= end:
                break
            cuts.append(forced)
            base = forced
        if end - base >= MIN_BYTES:
            cuts.append(end)
            base = end
    return cuts


def _tail_hash(arr: np.ndarray, ends: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A 64-bit hash of the (up to) 16 bytes before each newline, taken from
    the line itself only, so the value never depends on where a read block
    began; two unaligned 8-byte reads per line."""
    padded = np.concatenate((np.zeros(16, np.uint8), arr))
    windows = np.lib.stride_tricks.sliding_window_view(padded, 8)
    last = windows[ends + 7].copy().view("<u8").ravel()  # bytes [e-9, e-1)
    prev = windows[ends - 1].copy().view("<u8").ravel()  # bytes [e-17, e-9)
    body = lengths.astype(np.int64) - 1  # bytes before the newline
    last &= _keep_top(np.clip(body, 0, 8))
    prev &= _keep_top(np.clip(body - 8, 0, 8))
    h = (last ^ (prev * _MULT)) * _MULT
    h ^= h >> np.uint64(29)
    return h * _MULT


def _keep_top(valid: np.ndarray) -> np.ndarray:
    """Masks keeping the ``valid`` most significant bytes of a uint64."""
    shift = ((8 - valid) * 8).astype(np.uint64)
    full = np.full(valid.shape, np.uint64(0xFFFFFFFFFFFFFFFF))
    return np.where(valid == 0, np.uint64(0), full << np.minimum(shift, np.uint64(63)))


def _next_newline(ends: np.ndarray, at: int) -> int | None:
    i = int(np.searchsorted(ends, at))
    return int(ends[i]) if i < len(ends) else None
