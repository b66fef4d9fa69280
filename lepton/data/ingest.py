"""Fast, streaming snapshots of delimited text tables (CSV, TSV).

The file is read once, in blocks, and cut into line-aligned, content-defined
chunks: a line ends a chunk when a hash of its own bytes falls under a
probability proportional to its length (so chunks average TARGET_BYTES
whatever the line length), subject to a minimum and maximum size. Equal
runs of lines therefore give equal chunks in every version of the file.

Each raw chunk is hashed (blake3). A chunk seen before (same bytes, same
header, same column types) maps through the registry's memo to the Parquet
chunk already stored, so a new version parses and stores only the chunks
around what changed: appending 5% of rows parses 5% of the file.

Every chunk carries a sidecar object: the sorted 64-bit hashes of its key
values, so duplicate keys across the whole table are found without
re-reading unchanged chunks. Anything unusual (a parse error, a duplicate,
a quoted newline crossing a chunk boundary) makes the caller fall back to
the whole-file reader, whose errors name the exact line.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from lepton import hashing
from lepton.data.chunks import parquet_bytes
from lepton.manifest import Chunk, Column, TableDataset, canonical_json
from lepton.store.objects import ObjectStore

TARGET_BYTES = 1 << 20
MIN_BYTES = 1 << 18
MAX_BYTES = 8 << 20
BLOCK = 16 << 20
PARSE_WORKERS = 2  # both cores: parsing and Parquet encoding release the GIL
IN_FLIGHT = 4
_MULT = np.uint64(0x9E3779B97F4A7C15)


class Fallback(Exception):  # noqa: N818 - a signal, not an error the user sees
    """The fast path cannot take this file; use the whole-file reader."""


class Memo:
    """raw chunk key -> stored Parquet chunk id (the registry's memos)."""

    def memo_get(self, key: str) -> str | None: ...

    def memo_put(self, key: str, artifact_id: str, kind: str) -> None: ...


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


@dataclass
class Ingested:
    columns: tuple[Column, ...]
    chunks: tuple[Chunk, ...]
    rows: int
    parsed_bytes: int  # bytes that had to be parsed (not found in the memo)


def ingest_delimited(
    store: ObjectStore,
    memo: Memo,
    stream: BinaryIO,
    *,
    sep: str,
    key: str | None,
    previous: TableDataset | None,
    progress: Callable[[int], None] | None = None,
) -> Ingested:
    """Chunk, parse (only what is new) and store a delimited table."""
    types: dict[str, pa.DataType] | None = None
    if previous is not None:
        types = {c.name: _type_of(c.type) for c in previous.columns}
    known = {c.id: c for c in previous.chunks} if previous else {}
    slots: list[Chunk | Future] = []  # per chunk, in order: reused, or being parsed
    old_keys: list[np.ndarray] = []  # key hashes of chunks reused from the previous version
    header_seen: bytes | None = None
    parsed = 0
    spool = _Spool()
    try:
        with ThreadPoolExecutor(PARSE_WORKERS) as pool:
            for header, raw in line_chunks(stream):
                if header_seen is None:
                    header_seen = header
                    names = _names(header, sep)
                    if key is not None and key not in names:
                        raise Fallback("key column missing")
                    if types is not None and list(types) != names:
                        types = None  # header changed: infer again
                if b'"' in raw and raw.count(b'"') % 2:
                    raise Fallback("a quoted value spans a chunk boundary")
                if types is None:
                    types = _infer(header, raw, sep)
                memo_key = _memo_key(header, raw, sep, types, key)
                chunk = known.get(memo.memo_get(memo_key) or "")
                if chunk is None:  # parsed on a worker thread (pyarrow releases the GIL)
                    spool.memos.append((memo_key, len(slots)))
                    slots.append(pool.submit(_parse_chunk, spool, header, raw, sep, types, key))
                    parsed += len(raw)
                    _bound(slots)
                else:
                    if key is not None:
                        old_keys.append(_load_keys(store, chunk))
                    slots.append(chunk)
                    if progress:
                        progress(chunk.rows)
            done = [s.result() if isinstance(s, Future) else (s, None) for s in slots]
        if header_seen is None or types is None or not done:
            raise Fallback("no data rows")
        chunks = [c for c, _ in done]
        new_keys = [h for _, h in done if h is not None]
        if key is not None and _has_duplicates(chunks, new_keys, old_keys):
            raise Fallback("duplicate keys")  # the whole-file reader names them
        if progress:
            progress(sum(c.rows for s, c in zip(slots, chunks, strict=True) if isinstance(s, Future)))
        spool.publish(store, memo, chunks)  # only now, once the whole table is valid
    finally:
        spool.cleanup()
    columns = tuple(Column(name=n, type=str(t)) for n, t in types.items())
    return Ingested(columns, tuple(chunks), sum(c.rows for c in chunks), parsed)


def _bound(slots: list[Chunk | Future]) -> None:
    """Keep at most IN_FLIGHT chunks being parsed (each holds its raw bytes)."""
    running = [s for s in slots[-4 * IN_FLIGHT :] if isinstance(s, Future) and not s.done()]
    for fut in running[: max(0, len(running) - IN_FLIGHT)]:
        fut.result()


def _has_duplicates(chunks: list[Chunk], new: list[np.ndarray], old: list[np.ndarray]) -> bool:
    """Reused chunks were unique together in the previous version, so only
    new keys need checking: among themselves and against the reused ones."""
    if len({c.id for c in chunks}) != len(chunks):
        return True  # the same block of rows twice
    fresh = np.sort(np.concatenate(new)) if new else np.array([], np.uint64)
    if len(fresh) > 1 and (fresh[1:] == fresh[:-1]).any():
        return True
    if not len(fresh) or not old:
        return False
    reused = np.concatenate(old)
    at = np.clip(np.searchsorted(fresh, reused), 0, len(fresh) - 1)
    return bool((fresh[at] == reused).any())


class _Spool:
    """New objects wait in a local temp folder until the whole table has been
    read and checked, so a file rejected halfway leaves the store untouched."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="lepton-ingest-")
        self.paths: dict[str, str] = {}
        self.memos: list[tuple[str, int]] = []  # (memo key, index of the chunk it names)
        self.lock = threading.Lock()

    def put(self, data: bytes) -> str:
        key = hashing.hash_bytes(data)
        with self.lock:
            if key in self.paths:
                return key
            path = os.path.join(self.dir.name, key.split(":")[1])
            with open(path, "wb") as f:
                f.write(data)
            self.paths[key] = path
        return key

    def publish(self, store: ObjectStore, memo: Memo, chunks: list[Chunk]) -> None:
        for path in self.paths.values():
            store.put_file(path)
        for memo_key, index in self.memos:  # memos last: they may only name stored chunks
            memo.memo_put(memo_key, chunks[index].id, "csvchunk")

    def cleanup(self) -> None:
        self.dir.cleanup()


def _names(header: bytes, sep: str) -> list[str]:
    return pacsv.read_csv(io.BytesIO(header), parse_options=pacsv.ParseOptions(delimiter=sep)).column_names


def _parse(header: bytes, raw: bytes, sep: str, types: dict[str, pa.DataType] | None) -> pa.Table:
    try:
        return pacsv.read_csv(
            io.BytesIO(header + raw),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=types, strings_can_be_null=True, timestamp_parsers=[]
            ),
            read_options=pacsv.ReadOptions(
                use_threads=False, block_size=max(len(raw) + len(header), 1 << 16)
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise Fallback(str(e)) from e


def _infer(header: bytes, raw: bytes, sep: str) -> dict[str, pa.DataType]:
    """Column types from the first chunk, in the forms the whole-file reader
    would give (text as large_string, integers with gaps as doubles)."""
    table = _parse(header, raw, sep, None)
    out: dict[str, pa.DataType] = {}
    for field, col in zip(table.schema, table.columns, strict=True):
        t = field.type
        if pa.types.is_integer(t):
            out[field.name] = pa.float64() if col.null_count else pa.int64()
        elif pa.types.is_floating(t):
            out[field.name] = pa.float64()
        elif pa.types.is_boolean(t) and not col.null_count:
            out[field.name] = pa.bool_()
        elif pa.types.is_null(t):
            out[field.name] = pa.float64()
        else:
            out[field.name] = pa.large_string()
    return out


def _type_of(name: str) -> pa.DataType:
    return {"int64": pa.int64(), "double": pa.float64(), "bool": pa.bool_()}.get(name, pa.large_string())


def _memo_key(header: bytes, raw: bytes, sep: str, types: dict[str, pa.DataType], key: str | None) -> str:
    doc = {
        "kind": "delimited-chunk/1",
        "sep": sep,
        "header": hashing.hash_bytes(header),
        "types": {n: str(t) for n, t in types.items()},
        "key": key,
        "raw": hashing.hash_bytes(raw),
    }
    return hashing.hash_bytes(canonical_json(doc))


def _parse_chunk(
    spool: _Spool, header: bytes, raw: bytes, sep: str, types: dict[str, pa.DataType], key: str | None
) -> tuple[Chunk, np.ndarray | None]:
    table = _parse(header, raw, sep, types)
    schema = pa.schema([pa.field(n, t) for n, t in types.items()])
    if table.schema != schema:
        try:
            table = table.cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise Fallback(str(e)) from e
    hashes = None
    keys_id = None
    if key is not None:
        col = table.column(key)
        if col.null_count:
            raise Fallback("empty key")
        hashes = np.sort(
            pd.util.hash_pandas_object(pd.Series(col.to_pandas()), index=False).to_numpy(np.uint64)
        )
        keys_id = spool.put(hashes.tobytes())
    chunk_id = spool.put(parquet_bytes(table))
    return Chunk(id=chunk_id, rows=table.num_rows, keys=keys_id), hashes


def _load_keys(store: ObjectStore, chunk: Chunk) -> np.ndarray:
    if chunk.keys is None:
        raise Fallback("chunk without key hashes")
    return np.frombuffer(store.read_bytes(chunk.keys), dtype=np.uint64)
