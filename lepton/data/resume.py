"""Resuming a table file's ingest after the prefix it shares with the previous version.

Table files mostly grow at the end (a day's rows appended to a log). The
ingest hashes the file as it consumes it (the header, then each chunk's
bytes, in order) and records, with the version, checkpoints: byte offsets
where a chunk begins, how many chunks come before, and the blake3 hash of
every byte before it. Chunk boundaries depend only on the bytes from a
chunk's own start (lepton.data.linecuts), so when the next file's bytes up
to a checkpoint hash as recorded, the chunks before it are exactly the
previous version's first chunks: that prefix is read and hashed at full
speed (no cutting, no per-chunk hashing or memo lookup, no parsing) and the
cutting starts at the checkpoint.

A checkpoint every SPACING bytes (doubled whenever more than MAX_POINTS
would be kept) and one at the start of the last chunk (an appended file
matches there: all but the last chunk reused). The record also names the
cutter, separator and key it holds for; anything else starts from the top.
A mismatch costs the bytes read up to the first checkpoint that differs.

The file's first bytes are hashed already when a head start read them
(lepton.data.headstart, the same file unchanged): the Recorder then adopts
its states instead of hashing them again, at the cost of a few MiB per
checkpoint (from the mark before it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import blake3

from lepton import hashing
from lepton.data.headstart import HeadStart
from lepton.data.linecuts import Fallback
from lepton.data.readinto import ReadAhead

FORMAT = 1
SPACING = 64 << 20
MAX_POINTS = 32
READ = 16 << 20  # the prefix is read in blocks of this size into one reused buffer


@dataclass(frozen=True)
class Point:
    offset: int  # where a chunk begins in the file (the header included)
    chunks: int  # chunks before it
    digest: str  # blake3 hex of file[:offset]


@dataclass
class Recorder:
    """The source's hash, fed in file order, and the checkpoints taken on the way."""

    hasher: Any = field(default_factory=blake3.blake3)  # None while adopted (the head start's state)
    offset: int = 0
    chunks: int = 0
    spacing: int = field(default_factory=lambda: SPACING)
    points: list[Point] = field(default_factory=list)
    _last: tuple[int, int, Any] | None = None  # the latest chunk start, with the hash state there (or None)
    _head: HeadStart | None = None  # adopted: its states hold for the file's first _reach bytes
    _reach: int = 0

    def header(self, data: bytes) -> None:
        self.hasher.update(data)
        self.offset += len(data)

    def adopt(self, head: HeadStart) -> None:
        """Take ``head``'s hash states (stopped; this same file, unchanged)
        for the bytes up to its reach instead of hashing them."""
        reach = head.reach()
        if reach > self.offset:
            self._head, self._reach, self.hasher = head, reach, None

    def adopted(self, n: int) -> bool:
        """Whether the next ``n`` bytes are hashed by the adopted head start."""
        return self.hasher is None and self.offset + n <= self._reach

    def skip(self, n: int) -> None:
        """One chunk of ``n`` bytes that the adopted head start hashed (``adopted``)."""
        if not self.adopted(n):
            raise ValueError(f"{n} bytes at {self.offset} were not hashed by the head start")
        self._checkpoint()
        self._last = (self.offset, self.chunks, None)
        self.offset += n
        self.chunks += 1

    def _checkpoint(self) -> None:
        if self.chunks and self.offset - (self.points[-1].offset if self.points else 0) >= self.spacing:
            self.points.append(Point(self.offset, self.chunks, self._state_at(self.offset).hexdigest()))
            if len(self.points) > MAX_POINTS:
                self.points, self.spacing = self.points[1::2], self.spacing * 2

    def piece(self, data: bytes | memoryview) -> None:
        """One chunk's bytes, as they are in the file."""
        if self.adopted(len(data)):
            self.skip(len(data))  # hashed by the head start
            return
        self._checkpoint()
        if self.hasher is None:
            self.hasher = self._state_at(self.offset)  # past its reach: hashed here from now on
        self._last = (self.offset, self.chunks, self.hasher.copy())
        self.hasher.update(data)
        self.offset += len(data)
        self.chunks += 1

    def _state_at(self, offset: int) -> Any:
        """A copy of the hash state of the file's first ``offset`` bytes
        (``offset``: this recorder's, or an adopted one before it)."""
        if self.hasher is not None and offset == self.offset:
            return self.hasher.copy()
        state = self._head.hash_through(offset) if self._head is not None else None
        if state is None:  # closed, or a read error: read it all as a whole
            raise Fallback(f"no hash state at {offset}")
        return state

    def key(self) -> str:
        """The whole source's content key (once every byte went through)."""
        if self.hasher is None:
            self.hasher = self._state_at(self.offset)
        return hashing.finish(self.hasher)

    def record(
        self, cut: str, sep: str, key: str | None, spans: Sequence[tuple[int, int]] | None = None
    ) -> dict[str, Any] | None:
        """What to keep with the version; None for a file of one chunk.
        ``spans``: its chunks' integer key ranges (lepton.data.keyspan)."""
        points = list(self.points)
        if self._last is not None and self._last[1] and (not points or points[-1].offset < self._last[0]):
            offset, chunks, state = self._last
            state = self._state_at(offset) if state is None else state
            points.append(Point(offset, chunks, state.hexdigest()))
        if not points:
            return None
        return {
            "format": FORMAT,
            "cut": cut,
            "sep": sep,
            "key": key,
            "points": [[p.offset, p.chunks, p.digest] for p in points],
        } | ({"spans": [list(s) for s in spans]} if spans is not None else {})


def points_of(record: Any, cut: str, sep: str, key: str | None, chunks: int) -> list[Point]:
    """The checkpoints of a previous version's record that hold for this
    ingest (same cutter, separator and key), in file order; none if the
    record is absent or of another form."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return []
    if (record.get("cut"), record.get("sep"), record.get("key")) != (cut, sep, key):
        return []
    try:
        points = [Point(int(o), int(c), str(d)) for o, c, d in record.get("points") or ()]
    except (TypeError, ValueError):
        return []
    kept: list[Point] = []
    for p in sorted(points, key=lambda p: p.offset):
        if 0 < p.chunks <= chunks and (not kept or p.chunks > kept[-1].chunks):
            kept.append(p)  # more chunks before each later point, as a sound record has
    return kept


def skip_prefix(
    stream: BinaryIO,
    points: Sequence[Point],
    recorder: Recorder,
    matched_up_to: Callable[[int], None] | None = None,
    head: HeadStart | None = None,
) -> int:
    """Read and hash the stream (just past the header, which ``recorder``
    has taken) up to the furthest checkpoint whose prefix hashes as recorded;
    leave the stream, and ``recorder``, there. Returns how many of the
    previous version's chunks come before it (0: start from the top);
    ``matched_up_to`` hears that number grow, checkpoint by checkpoint.
    ``head``: the same file, already being read and hashed from its start
    (lepton.data.headstart): its states are used instead, and the stream is
    only moved to the checkpoint."""
    if head is not None:
        return settle(stream, points, recorder, match_with_head(points, head, matched_up_to))
    with closing(_by_reading(stream, points, recorder.offset, recorder.hasher.copy())) as matches:
        matched = _furthest(matches, matched_up_to)  # the reads ahead stop before the seek in settle
    return settle(stream, points, recorder, matched)


Matched = tuple[Point, Any]  # a checkpoint, and the hash state of the bytes before it


def match_with_head(
    points: Sequence[Point], head: HeadStart, matched_up_to: Callable[[int], None] | None = None
) -> Matched | None:
    """The furthest checkpoint the head start's file matches, without the
    stream (another thread may be reading it meanwhile); then ``settle``."""
    return _furthest(_by_marks(points, head), matched_up_to)


def settle(stream: BinaryIO, points: Sequence[Point], recorder: Recorder, matched: Matched | None) -> int:
    """Leave the stream and ``recorder`` at the matched checkpoint (the
    recorder's own position, just past the header, if none matched); the
    chunks before it."""
    if matched is None:
        stream.seek(recorder.offset)
        recorder.points = []
        return 0
    point, state = matched
    stream.seek(point.offset)
    recorder.hasher, recorder.offset, recorder.chunks = state, point.offset, point.chunks
    recorder.points = [p for p in points if p.offset <= point.offset]
    return point.chunks


def _furthest(matches: Iterator[Matched], matched_up_to: Callable[[int], None] | None) -> Matched | None:
    matched: Matched | None = None
    for point, hasher in matches:
        if hasher.hexdigest() != point.digest:
            break
        matched = (point, hasher)
        if matched_up_to is not None:
            matched_up_to(point.chunks)
    return matched


def _by_reading(stream: BinaryIO, points: Sequence[Point], start: int, hasher: Any) -> Iterator[Matched]:
    """Each checkpoint with the hash of the file's bytes before it (a copy,
    the caller's to keep), while the file has them: the stream read from
    ``start``, where ``hasher`` holds the bytes before it."""
    with ReadAhead(stream, _blocks(start, [p.offset for p in points]), READ, start) as reads:
        for point in points:
            for block in reads.up_to(point.offset):
                hasher.update(block)
            if reads.pos != point.offset:
                return
            yield point, hasher.copy()


def _by_marks(points: Sequence[Point], head: HeadStart) -> Iterator[Matched]:
    """As _by_reading, from the head start's states (lepton.data.headstart)."""
    for point in points:
        hasher = head.hash_through(point.offset)
        if hasher is None:
            return  # the file ends before it (or the head start stopped: cut from the last match)
        yield point, hasher


def _blocks(pos: int, stops: Sequence[int]) -> Iterator[int]:
    """Read sizes from ``pos`` that land exactly on every stop."""
    for stop in stops:
        while pos < stop:
            size = min(READ, stop - pos)
            yield size
            pos += size
