"""Fast, streaming snapshots of delimited text tables (CSV, TSV).

The file is read once, in blocks, and cut into line-aligned, content-defined
chunks (lepton.data.linecuts). Each raw chunk is hashed (blake3). A chunk
seen before (same bytes, same header, same column types) maps through the
registry's memo to the Parquet chunk already stored, so a new version
parses and stores only the chunks around what changed: appending 5% of rows
parses 5% of the file.

Every chunk carries a sidecar object: the sorted 64-bit hashes of its key
values, so duplicate keys across the whole table are found without
re-reading unchanged chunks. A new chunk with exactly the keys of a chunk of
the previous version (same sidecar), in the same order, whose rows differ
in a few places only, is stored as a patch over it (lepton.data.patches):
scattered edits and relabels store the changed rows, not the chunk.

Labelsets take the same path with a LabelRule: every label present, every
key a sample of the labelled dataset (checked against the dataset's key
hashes), class counts gathered on the way.

Anything unusual (a parse error, a duplicate, a missing label, a quoted
newline crossing a chunk boundary) makes the caller fall back to the
whole-file reader, whose errors name the exact line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from lepton.data import chunkparse, keyspan, lineedits, patches, resume, samekeys, sidecars
from lepton.data.chunkwrite import lines_of
from lepton.data.chunkwrite import parse_chunk as _parse_chunk  # (tests spy on it here)
from lepton.data.cutahead import cut_ahead
from lepton.data.dupkeys import has_duplicates
from lepton.data.headstart import HeadStart
from lepton.data.labelrule import LabelRule
from lepton.data.linecuts import (
    BLOCK,
    MAX_BYTES,
    MIN_BYTES,
    TARGET_BYTES,
    Buffers,
    Fallback,
    line_chunks,
    quotes,
)
from lepton.manifest import Chunk, Column, Labelset, TableDataset
from lepton.store.objects import ObjectStore
from lepton.store.staging import Staging

__all__ = [
    "BLOCK",
    "MAX_BYTES",
    "MIN_BYTES",
    "TARGET_BYTES",
    "Fallback",
    "Ingested",
    "LabelRule",
    "line_chunks",
]

PARSE_WORKERS = 2  # both cores: parsing and Parquet encoding release the GIL
SIDECAR_READS = 8  # threads reading key sidecars: small reads, mostly waiting on the disk
IN_FLIGHT = 4


class Memo:
    """raw chunk key -> stored Parquet chunk id (the registry's memos)."""

    def memo_keys_for(self, ids: Iterable[str]) -> dict[str, str]: ...

    def memo_put_many(self, pairs: Iterable[tuple[str, str]], kind: str) -> None: ...


@dataclass
class Ingested:
    columns: tuple[Column, ...]
    chunks: tuple[Chunk, ...]
    rows: int
    parsed_bytes: int  # bytes that had to be parsed (not found in the memo)
    classes: dict[str, int] | None = None  # labelsets: rows per class
    spans: list[keyspan.Span] | None = None  # datasets with integer keys: each chunk's key range


@dataclass
class _Job:
    """What every chunk needs besides its bytes."""

    store: ObjectStore
    staging: Staging
    header: bytes
    sep: str
    types: dict[str, pa.DataType]
    key: str | None
    known: dict[str, Chunk]  # the previous version's chunks by memo key (reusable as they are)
    by_keys: dict[str, Chunk]  # the previous version's chunks by key sidecar id (patch candidates)
    labels: LabelRule | None
    progress: Callable[[int], None] | None
    defer: bool = False  # reused chunks' key sidecars read only if the new keys need them (keyspan)
    ahead: dict[str, _Done] = field(default_factory=dict)  # chunks parsed when cut ahead, by memo key
    by_span: dict[keyspan.Span, Chunk] = field(default_factory=dict)  # previous chunks by key span (defer)
    read_ahead: lineedits.ReadAhead | None = None  # what edits in place compare with, read ahead
    same_columns: bool = False  # the previous version's columns and types: its chunks' schema


@dataclass
class _Done:
    chunk: Chunk
    hashes: np.ndarray | None  # its keys' hashes (sorted)
    memo_key: str | None  # set when it was parsed: remembered once stored
    parsed: int  # raw bytes parsed
    span: keyspan.Span | None = None  # its integer keys' range, when parsed


def ingest_delimited(
    store: ObjectStore,
    memo: Memo,
    stream: BinaryIO,
    *,
    sep: str,
    key: str | None,
    previous: TableDataset | Labelset | None,
    progress: Callable[[int], None] | None = None,
    labels: LabelRule | None = None,
    header: bytes | None = None,
    cut_by: str | None = None,
    recorder: resume.Recorder | None = None,
    points: Sequence[resume.Point] = (),
    head: HeadStart | None = None,
    adopt: bool = False,
    spans: dict[str, keyspan.Span] | None = None,
    direct: bool = False,
    through_cache: bool = False,
) -> Ingested:
    """Chunk, parse (only what is new) and store a delimited table.

    This thread reads and cuts; each chunk is hashed, looked up among the
    previous version's chunks, and (if new) parsed, encoded and staged on a
    worker thread: hashing, parsing and Parquet encoding release the GIL.

    ``header``: the header line, already read; ``cut_by``: the separator
    when cutting by first field (chunkparse.cut_rule), else None. ``recorder`` hashes the file
    as it is consumed (lepton.data.resume); with the ``points`` of the
    previous version's record, the prefix they share is skipped and the
    previous version's chunks before it taken as they are, their checks
    (keys, labels) done on the workers while the prefix is hashed; with
    ``head`` (the file already being hashed: lepton.data.headstart; the
    same file, unchanged), from its hash states, and ``head`` stopped once
    past the prefix; with ``adopt`` (nothing can have changed the file
    since ``head`` read it) the recorder adopts its states. ``spans``:
    the previous version's chunks' key ranges (lepton.data.keyspan): a
    reused chunk's key sidecar is then read only if its range meets the
    new chunks'. ``direct``: the stream is a cold local file, read once
    from here on (linecuts.line_chunks: with O_DIRECT where it can, or
    ``through_cache`` dropping what it read: lepton.data.directread)."""
    types: dict[str, pa.DataType] | None = None
    known: dict[str, Chunk] = {}
    if previous is not None:
        types = {c.name: chunkparse.type_of(c.type) for c in previous.columns}
        by_id = {c.id: c for c in previous.chunks}
        known = {k: by_id[i] for k, i in memo.memo_keys_for(by_id).items()}
    by_keys = {c.keys: c for c in previous.chunks if c.keys} if previous and key else {}
    slots: list[Future] = []
    job: _Job | None = None
    at_end = False  # the whole file is cut already
    staging = Staging(store)  # new objects: visible only once the whole table is valid
    defer = labels is None and key is not None and spans is not None

    by_span = samekeys.by_span(previous.chunks, spans) if defer and previous is not None and spans else {}

    def new_job(header_line: bytes, types: dict[str, pa.DataType]) -> _Job:
        return _Job(
            store,
            staging,
            header_line,
            sep,
            types,
            key,
            known,
            by_keys,
            labels,
            progress,
            defer,
            by_span=by_span,
            read_ahead=lineedits.ReadAhead(store, by_span.values()) if by_span else None,
            same_columns=previous is not None and previous.columns == _columns(types),
        )

    try:
        with ThreadPoolExecutor(PARSE_WORKERS) as pool, ThreadPoolExecutor(SIDECAR_READS) as reads:
            buffers = Buffers(IN_FLIGHT + PARSE_WORKERS + 2)
            if points and previous is not None and header is not None and recorder is not None:
                if types is not None and list(types) == chunkparse.names(
                    header, sep
                ):  # else nothing can match
                    types = _start(header, b"", sep, key, types, labels)
                    job = new_job(header, types)
                    taken = 0

                    def reuse_up_to(n: int) -> None:
                        nonlocal taken
                        slots.extend(reads.submit(_reused, job, c) for c in previous.chunks[taken:n])
                        taken = n

                    if head is not None and labels is None:  # (labels: counted as parsed, so never twice)
                        tail = _resume_cutting_ahead(
                            job, pool, buffers, stream, points, recorder, head, reuse_up_to, cut_by, adopt
                        )
                        slots.extend(tail)
                        at_end = bool(tail)
                    else:
                        resume.skip_prefix(stream, points, recorder, reuse_up_to, head)
            if head is not None:
                head.stop()  # past the prefix: the rest is read as it is cut
                if recorder is not None and adopt and not at_end:  # (at the end: adopted for the replay)
                    recorder.adopt(head)  # what it hashed beyond the prefix is not hashed again
            seen = recorder.piece if recorder is not None else None
            for first, raw in (
                ()
                if at_end
                else line_chunks(
                    stream,
                    cut_by,
                    header=header,
                    seen=seen,
                    buffers=buffers,
                    direct=direct,
                    through_cache=through_cache,
                )
            ):
                if job is None:
                    try:
                        types = _start(first, raw, sep, key, types, labels)
                    except BaseException:
                        buffers.give(raw)  # type: ignore[arg-type]
                        raise
                    job = new_job(first, types)
                slots.append(_submit(pool, job, buffers, raw))
                _bound(slots)
            done: list[_Done] = [s.result() for s in slots]
            if job is None or not done:
                raise Fallback("no data rows")
            new_spans = (
                None
                if job.labels is not None or job.key is None
                else sidecars.read_deferred(job.store, done, set(by_keys), spans, reads)
            )
        chunks = [d.chunk for d in done]
        if key is not None and has_duplicates(chunks, done, set(by_keys)):
            raise Fallback("duplicate keys")  # the whole-file reader names them
        staging.publish(only={k for d in done for k in (d.chunk.id, d.chunk.keys, d.chunk.lines) if k})
        # memos last: they may only name stored chunks
        memo.memo_put_many([(d.memo_key, d.chunk.id) for d in done if d.memo_key], "csvchunk")
    finally:
        staging.discard()
    columns = _columns(job.types)
    classes = {k: int(v) for k, v in sorted(labels.classes.items())} if labels else None
    return Ingested(
        columns, tuple(chunks), sum(c.rows for c in chunks), sum(d.parsed for d in done), classes, new_spans
    )


def _columns(types: dict[str, pa.DataType]) -> tuple[Column, ...]:
    return tuple(Column(name=n, type=str(t)) for n, t in types.items())


def _resume_cutting_ahead(
    job: _Job,
    pool: ThreadPoolExecutor,
    buffers: Buffers,
    stream: BinaryIO,
    points: Sequence[resume.Point],
    recorder: resume.Recorder,
    head: HeadStart,
    reuse_up_to: Callable[[int], None],
    cut_by: str | None,
    adopt: bool = False,
) -> list[Future]:
    """Resume with a head start: its states checked against the checkpoints
    on a helper thread while this one cuts from the last checkpoint on
    (lepton.data.cutahead). All matched: the tail's chunks are what was cut
    ahead (returned; the stream left at the end), and with ``adopt`` the
    head start's states stand for the tail as far as it read. Else none
    are returned, and what was cut ahead is kept for the cut from the
    furthest match."""
    quiet = replace(job, progress=None)  # rows are counted once taken
    with ThreadPoolExecutor(1, thread_name_prefix="lepton-resume") as check:
        matching = check.submit(resume.match_with_head, points, head, reuse_up_to)
        try:
            ahead = cut_ahead(
                stream,
                points[-1].offset,
                job.header,
                partial(_submit, pool, quiet, buffers),
                _bound,
                buffers,
                cut_by,
            )
        finally:
            matched = matching.result()
    resume.settle(stream, points, recorder, matched)
    if ahead.complete and matched is not None and matched[0] == points[-1]:
        if adopt:
            head.stop()  # (it read on meanwhile: the tail too, mostly)
            recorder.adopt(head)
        ahead.replay(stream, recorder)
        if job.progress is not None:
            for slot in ahead.slots:
                slot.add_done_callback(partial(_count, job.progress))
        return ahead.slots
    job.ahead = {d.memo_key: d for d in ahead.finished() if d.memo_key}
    return []


def _submit(pool: ThreadPoolExecutor, job: _Job, buffers: Buffers, raw: memoryview) -> Future:
    return pool.submit(_chunk, job, raw, buffers)


def _count(progress: Callable[[int], None], slot: Future) -> None:
    if not slot.cancelled() and slot.exception() is None:
        progress(slot.result().chunk.rows)


def _chunk(job: _Job, raw: memoryview, buffers: Buffers) -> _Done:
    """One chunk: reused from the previous version, or parsed and staged;
    its buffer given back either way."""
    try:
        return _one_chunk(job, raw)
    finally:
        buffers.give(raw)


def _one_chunk(job: _Job, raw: memoryview) -> _Done:
    lines = lines_of(job, raw)  # (none where the chunk has a quote)
    if lines is None and quotes(raw) % 2:  # (no line hashes: quotes, empty lines, unkeyed, or no extension)
        raise Fallback("a quoted value spans a chunk boundary")
    hashes_of_lines = None if lines is None else lines.hashes
    memo_key = chunkparse.memo_key(job.header, raw, job.sep, job.types, job.key, hashes_of_lines)
    chunk = job.known.get(memo_key)
    if chunk is not None:
        done = _Done(chunk, _reuse(job, chunk), None, 0)
    elif memo_key in job.ahead:
        done = job.ahead[memo_key]  # parsed when cut ahead (lepton.data.cutahead)
        chunk = done.chunk
    else:
        fast = None
        if lines is not None and job.by_span and job.same_columns:  # (a patch takes its base's schema)
            fast = lineedits.edited(
                job.store, job.staging, job.by_span, raw, lines, job.sep, job.types, job.key, job.read_ahead
            )  # type: ignore[arg-type]
        if fast is not None:
            chunk, span, parsed = fast
            done = _Done(chunk, None, memo_key, parsed, span)  # its key hashes: the candidate's (sidecars)
        else:
            chunk, hashes, span = _parse_chunk(job, raw, lines)
            done = _Done(chunk, hashes, memo_key, len(raw), span)
    if job.progress:
        job.progress(chunk.rows)
    return done


def _reused(job: _Job, chunk: Chunk) -> _Done:
    """One of the previous version's chunks before the resume point."""
    done = _Done(chunk, _reuse(job, chunk), None, 0)
    if job.progress:
        job.progress(chunk.rows)
    return done


def _start(
    header: bytes,
    raw: bytes | memoryview,
    sep: str,
    key: str | None,
    types: dict[str, pa.DataType] | None,
    labels: LabelRule | None,
) -> dict[str, pa.DataType]:
    """Column types for the whole file, checked against what the caller needs."""
    names = chunkparse.names(header, sep)
    if key is not None and key not in names:
        raise Fallback("key column missing")
    if types is None or list(types) != names:
        if not raw:
            raise Fallback("no rows to infer the column types from")
        types = chunkparse.infer(names, raw, sep)  # first version, or the header changed
    if labels is not None:
        if labels.label not in names or labels.label == key:
            raise Fallback("label column missing")
        if key is not None and pa.types.is_large_string(wanted := chunkparse.type_of(labels.key_type)):
            types = {**types, key: wanted}  # a text key reads as text however its values look ("007")
        if key is None or str(types[key]) != labels.key_type:
            raise Fallback("label keys typed unlike the dataset's")
    return types


def _reuse(job: _Job, chunk: Chunk) -> np.ndarray | None:
    """What a chunk reused from the previous version still needs checking:
    its keys (for duplicates; for labels, against the dataset, which may be
    newer), and its class counts."""
    if job.key is None or job.defer:
        return None
    hashes = sidecars.load_keys(job.store, chunk)
    if job.labels is not None:
        job.labels.check_keys(hashes, chunk.keys)
        job.labels.add(job.labels.count(patches.read_chunk(job.store, chunk, [job.labels.label])))
    return hashes


def _bound(slots: list[Future]) -> None:
    """Keep at most IN_FLIGHT chunks in the workers' hands (each holds its raw bytes)."""
    running = [s for s in slots[-4 * IN_FLIGHT :] if not s.done()]
    for fut in running[: max(0, len(running) - IN_FLIGHT)]:
        fut.result()
