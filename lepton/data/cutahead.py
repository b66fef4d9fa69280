"""Cutting and parsing a table file's tail while its prefix is still being checked.

A version of an appended file resumes at the previous version's last
checkpoint (lepton.data.resume) once the bytes before it hash as recorded.
With a head start (lepton.data.headstart) that check waits on the disk, and
the new rows after the checkpoint would be cut and parsed only afterwards.
Here they are cut first, from the checkpoint, and handed to the parsing
workers, so the parsing overlaps the check: the two together take the
longer of the two, not their sum.

What was cut ahead is the ingest's own work from that checkpoint (chunk
boundaries depend only on the bytes from a chunk's start), so when the
whole prefix matches it is taken as it is; otherwise its finished chunks
are kept by raw-chunk key, for the cut from the earlier checkpoint to take
where it meets the same bytes again, and the rest is dropped (its staged
objects are not published: the ingest publishes only what its table uses).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import blake3

from lepton.data.linecuts import Fallback, line_chunks
from lepton.data.resume import Recorder


@dataclass
class Ahead:
    """What was cut from ``offset`` on: one future per chunk (its _Done, as
    the ingest's workers return it), the chunks' lengths in the file and
    the hashes of their bytes."""

    offset: int
    slots: list[Future] = field(default_factory=list)
    pieces: list[tuple[int, bytes]] = field(default_factory=list)
    complete: bool = False  # cut to the end of the file without a Fallback

    def seen(self, data: bytes | memoryview) -> None:
        self.pieces.append((len(data), blake3.blake3(data).digest()))

    def finished(self) -> Iterator[Any]:
        """Every chunk's result that came out right (the others are dropped)."""
        for slot in self.slots:
            with contextlib.suppress(Exception):  # a chunk the cut from earlier may not meet again
                yield slot.result()

    def replay(self, stream: BinaryIO, recorder: Recorder) -> None:
        """Give ``recorder`` each chunk's bytes as they are in the file, in
        order, leaving the stream at the end. The bytes are read again, so
        they are checked against those cut: a file rewritten meanwhile
        raises Fallback (the whole-file reader then takes it), never a
        record that disagrees with the chunks. Chunks the recorder's adopted
        head start hashed (the same file, unchanged and settled: what it
        read is what was cut) are neither read nor hashed again."""
        stream.seek(self.offset)
        for n, digest in self.pieces:
            if recorder.adopted(n):
                recorder.skip(n)
                stream.seek(n, os.SEEK_CUR)
                continue
            data = stream.read(n)
            if len(data) != n or blake3.blake3(data).digest() != digest:
                raise Fallback("the file changed while it was read")
            recorder.piece(data)


def cut_ahead(
    stream: BinaryIO,
    offset: int,
    header: bytes,
    submit: Callable[[bytes | memoryview], Future],
    bound: Callable[[list[Future]], None],
    buffers: Any,
    cut_by: str | None = None,
) -> Ahead:
    """Cut the stream from ``offset`` (a chunk start) to its end as the
    ingest would (``cut_by``: see chunkparse.cut_rule), each chunk given to
    ``submit``; ``bound`` keeps the chunks in flight bounded."""
    ahead = Ahead(offset)
    stream.seek(offset)
    try:
        for _, raw in line_chunks(stream, cut_by, header=header, seen=ahead.seen, buffers=buffers):
            ahead.slots.append(submit(raw))
            bound(ahead.slots)
        ahead.complete = True
    except Fallback:
        pass  # the ingest's own cut meets it again, and says so
    return ahead
