"""Chunks edited in place, found and stored without parsing them whole.

A new chunk of a keyed table whose first and last keys are the key span of
one of the previous version's chunks (lepton.data.keyspan), with as many
lines and the same multiset of key texts, is that chunk with some lines
changed. The line hashes kept with the previous chunk (lepton.data.linehash:
its base's sidecar, with its patches' LINE columns applied) name the
changed lines; only those are parsed, and stored as a patch over it
(lepton.data.patches). Neither the previous rows nor the new chunk's other
lines are decoded: sparse edits of a 1 GiB table parse a few hundred KB.

The key multiset being the same, so are the chunk's key sidecar and span:
both are the previous chunk's (every entry of a chain has its base's keys).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from lepton.data import chunkparse, keyspan, linehash, patches
from lepton.data.linecuts import Fallback
from lepton.data.parquet import parquet_buffer
from lepton.manifest import Chunk
from lepton.store.objects import ObjectStore
from lepton.store.staging import Staging


@dataclass(frozen=True)
class Kept:
    """A chunk entry's line hashes (its base's, its patches applied), the
    hash of its key texts' multiset, and the positions each of its patches
    holds (its own first, as patches.Chain.positions)."""

    keysum: bytes
    hashes: np.ndarray
    held: list[np.ndarray]


def kept(store: ObjectStore, entry: Chunk) -> Kept | None:
    """The line hashes kept for ``entry``; None where its base has no line
    sidecar or one of its patches no LINE column."""
    above: list[Chunk] = []
    while entry.base is not None:
        above.append(entry)
        entry = entry.base
    if entry.lines is None:
        return None
    keysum, hashes = linehash.read_sidecar(store.read_bytes(entry.lines))
    if len(hashes) != entry.rows:
        return None
    held = []
    for patch in reversed(above):  # oldest first: a later patch wins
        got = patches.patch_lines(store.read_bytes(patch.id))
        if got is None:
            return None
        positions, lines = got
        hashes[positions] = lines
        held.append(positions)
    return Kept(keysum, hashes, held[::-1])


def kept_objects(entries: Iterable[Chunk]) -> list[str]:
    """The objects ``kept`` reads for these entries (line sidecars and
    patches, not the bases' rows), in their order."""
    out = []
    for entry in entries:
        while entry.base is not None:
            out.append(entry.id)
            entry = entry.base
        if entry.lines is not None:
            out.append(entry.lines)
    return out


class ReadAhead:
    """Has the kernel read the previous chunks' kept line hashes (their line
    sidecars and patches) in the background, from the first edit in place
    on: a version that only appends rows never reads them."""

    def __init__(self, store: ObjectStore, entries: Iterable[Chunk]) -> None:
        self.store, self.entries = store, list(entries)
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        objects = kept_objects(self.entries)
        threading.Thread(
            target=self.store.prefetch, args=(objects,), name="lepton-read-ahead", daemon=True
        ).start()


def edited(
    store: ObjectStore,
    staging: Staging,
    by_span: dict[keyspan.Span, Chunk],
    raw: bytes | memoryview,
    lines: linehash.Lines,
    sep: str,
    types: dict[str, pa.DataType],
    key: str,
    read_ahead: ReadAhead | None = None,
) -> tuple[Chunk, keyspan.Span, int] | None:
    """The raw chunk (whose ``lines`` are known) as a patch over the
    previous version's chunk it edits in place, staged: the entry, its key
    span, and the bytes parsed. None where it is not such a chunk, or too
    much of it changed for a patch: the caller parses it whole."""
    span = _ends(raw, lines, sep, list(types).index(key))
    candidate = by_span.get(span) if span is not None else None
    if candidate is None or candidate.rows != len(lines):
        return None
    if read_ahead is not None:
        read_ahead.start()
    before = kept(store, candidate)
    if before is None or before.keysum != lines.keysum:
        return None
    changed = np.flatnonzero(before.hashes != lines.hashes)
    if not len(changed):
        return candidate, span, 0  # type: ignore[return-value]
    placed = patches.place(candidate, before.held, changed, candidate.rows)
    if placed is None:
        return None
    parent, positions = placed
    text = linehash.gather(raw, lines, positions)
    rows = chunkparse.parse_typed(text, sep, types)
    if rows.num_rows != len(positions):
        return None
    if rows.column(key).null_count:
        raise Fallback("empty key")
    patch = patches.patch_rows(rows, positions, lines.hashes)
    chunk = Chunk(
        id=staging.put(parquet_buffer(patch)), rows=candidate.rows, keys=candidate.keys, base=parent
    )
    return chunk, span, len(text)  # type: ignore[return-value]


def _ends(raw: bytes | memoryview, lines: linehash.Lines, sep: str, field: int) -> keyspan.Span | None:
    """(first line's key, last line's key) as integers: the chunk's key
    span when its keys are sorted (else no previous chunk has that span,
    or one whose lines then differ in their key texts)."""
    if not len(lines):
        return None
    first, last = (_key_text(raw, lines, i, sep, field) for i in (0, len(lines) - 1))
    try:
        return int(first), int(last)
    except ValueError:
        return None


def _key_text(raw: bytes | memoryview, lines: linehash.Lines, i: int, sep: str, field: int) -> bytes:
    line = bytes(raw[int(lines.starts[i]) : int(lines.starts[i + 1])]).rstrip(b"\r\n")
    return line.split(sep.encode(), field + 1)[field]
