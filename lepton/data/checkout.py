"""Checkout: materialise a dataset or labelset version on the local disk.
Every object is verified before it is written; a table is written whole
into a temp file and renamed, a tree file by file (each atomically)."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lepton import pagecache
from lepton.data import decimals, numcsv
from lepton.data.parquet import read_parquet
from lepton.data.patches import read_chunk
from lepton.data.tablefiles import TABLE_FORMATS
from lepton.data.trees import checkout_tree
from lepton.errors import InvalidInput
from lepton.manifest import Chunk, Labelset, Manifest, TableDataset, TreeDataset
from lepton.store.objects import ObjectStore

if TYPE_CHECKING:
    import pandas as pd  # (imported where used: half a second of a checkout's start, for JSONL only)

Progress = Callable[[int], None]
JSONL_BATCH = 65_536
READERS = 2  # both cores decode chunks while the writer formats the ones before
READ_AHEAD = 4
ROW_GROUP_ROWS = 1 << 20  # rows per row group of a checked-out Parquet file (chunks hold ~10k)
T = TypeVar("T")


def checkout(store: ObjectStore, manifest: Manifest, dest: Path, progress: Progress | None = None) -> Path:
    if isinstance(manifest, TreeDataset):
        return checkout_tree(store, manifest, dest, progress)
    if isinstance(manifest, TableDataset | Labelset):
        return _table(store, manifest, dest)
    raise InvalidInput(f"a {manifest.kind} cannot be checked out")


def _table(store: ObjectStore, manifest: TableDataset | Labelset, dest: Path) -> Path:
    if dest.is_dir() or not dest.suffix:
        dest = dest / f"{manifest.name}.parquet"
    fmt = TABLE_FORMATS.get(dest.suffix.lower())
    if fmt is None:
        raise InvalidInput(f"{dest}: unknown table format; use .parquet, .csv, .tsv or .jsonl")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    try:
        if fmt == "jsonl":
            _write_jsonl(pa.concat_tables(_chunks(store, manifest)).to_pandas(), tmp)
        else:
            _write_streaming(store, manifest, tmp, fmt, dest)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _chunks(store: ObjectStore, manifest: TableDataset | Labelset) -> Iterator[pa.Table]:
    """The chunks' rows in order, read and decoded READ_AHEAD at a time on
    threads (reading, decompressing and decoding release the GIL)."""
    return _in_order(lambda c: read_chunk(store, c), manifest.chunks)


def _in_order(fn: Callable[[Any], T], items: Iterable[Any]) -> Iterator[T]:
    """``map(fn, items)``, READ_AHEAD calls at a time on READERS threads."""
    pending: deque[Future[T]] = deque()
    todo = iter(items)
    with ThreadPoolExecutor(READERS) as pool:
        for item in itertools.islice(todo, READ_AHEAD):
            pending.append(pool.submit(fn, item))
        while pending:
            got = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(fn, nxt))
            yield got


def _write_streaming(
    store: ObjectStore, manifest: TableDataset | Labelset, path: str, fmt: str, dest: Path
) -> None:
    """Chunk by chunk into one Parquet or CSV/TSV file: memory holds a few
    chunks, not the table. Columns Arrow's CSV writer cannot write (nested
    ones) go through pandas, on the whole table."""
    if fmt == "parquet":
        chunks = _chunks(store, manifest)
        try:
            first = next(chunks)
            with _parquet_writer(path, first.schema) as out:
                held: list[pa.Table] = []  # rows not written yet: fewer than ROW_GROUP_ROWS
                rows = 0
                for table in itertools.chain([first], chunks):
                    held.append(table.cast(first.schema))
                    rows += table.num_rows
                    if rows >= ROW_GROUP_ROWS:
                        batch = pa.concat_tables(held)
                        full = rows - rows % ROW_GROUP_ROWS
                        out.write_table(batch.slice(0, full), row_group_size=ROW_GROUP_ROWS)
                        held, rows = [batch.slice(full)], rows - full
                if rows:  # (an empty table: a file of its schema and no row group)
                    out.write_table(pa.concat_tables(held), row_group_size=ROW_GROUP_ROWS)
        finally:
            chunks.close()
        return
    sep = "," if fmt == "csv" else "\t"
    schema = read_chunk(store, manifest.chunks[0]).schema if manifest.chunks else None
    _check_text(schema, dest, fmt)
    if schema is None or any(pa.types.is_nested(f.type) for f in schema):  # Arrow's CSV writer cannot
        pa.concat_tables(_chunks(store, manifest)).to_pandas().to_csv(path, index=False, sep=sep)
        return

    def text(item: tuple[int, Chunk]) -> pa.Buffer | bytes:
        """One chunk as CSV: read and formatted on a thread (formatting numbers
        is most of the work; numcsv's formatter and Arrow's writer let go of
        the GIL)."""
        n, chunk = item
        table = _stored(store, chunk, schema)
        if table is None:
            table = read_chunk(store, chunk).cast(schema)
        rows = numcsv.format_rows(table, sep)  # (numbers only: None for anything else)
        if rows is not None and n:
            return rows
        options = pacsv.WriteOptions(include_header=n == 0, delimiter=sep, quoting_style="needed")
        sink = pa.BufferOutputStream()
        if rows is not None:  # (Arrow's writer for the header only: the names quoted as it quotes them)
            pacsv.write_csv(schema.empty_table(), sink, write_options=options)
            return sink.getvalue().to_pybytes() + rows
        pacsv.write_csv(decimals.decoded(table), sink, write_options=options)
        return sink.getvalue()

    with pagecache.WriteBehind(path) as out:
        for block in _in_order(text, enumerate(manifest.chunks)):
            out.write(block)


def _check_text(schema: pa.Schema | None, dest: Path, fmt: str) -> None:
    """Bytes have no text form in CSV/TSV: a binary column is refused by
    name, before a row is written (JSONL writes them as base64)."""
    for field in schema or ():
        if _has_binary(field.type):
            raise InvalidInput(
                f"{dest}: column '{field.name}' holds bytes ({field.type}), which {fmt.upper()} "
                "cannot hold; check it out as .parquet (or .jsonl, bytes as base64)"
            )


def _has_binary(t: pa.DataType) -> bool:
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return True
    if getattr(pa.types, "is_binary_view", lambda _: False)(t):
        return True
    return any(_has_binary(t.field(i).type) for i in range(t.num_fields))


def _stored(store: ObjectStore, chunk: Chunk, schema: pa.Schema) -> pa.Table | None:
    """A chunk without patches as stored, its decimals not divided into
    floats (lepton.data.decimals: numcsv.format_rows writes them as they
    are), when it has the table's columns; else None."""
    if chunk.base is not None:
        return None
    table = read_parquet(store.read_bytes(chunk.id), decode=False)
    logical = decimals.logical_schema(table.schema)
    if logical.names != schema.names or logical.types != schema.types:
        return None
    return table


def _parquet_writer(path: str, schema: pa.Schema) -> pq.ParquetWriter:
    """A Parquet file for readers: row groups of ~ROW_GROUP_ROWS rows with
    statistics, written much as the chunks are (zstd at level -1, floats
    byte-stream-split, dictionaries only for text). Arrow's defaults
    dictionary-encode every column: on the benchmark's 1 GiB table of
    unique floats that took 6.4 s and wrote 1.10 GB, against 2.6 s and
    0.78 GB."""
    floats = [f.name for f in schema if pa.types.is_floating(f.type)]
    text = [
        f.name
        for f in schema
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_dictionary(f.type)
    ]
    return pq.ParquetWriter(
        path,
        schema,
        compression="zstd",
        compression_level=-1,
        use_dictionary=text or False,
        column_encoding={n: "BYTE_STREAM_SPLIT" for n in floats} or None,
    )


def _write_jsonl(frame: pd.DataFrame, path: str) -> None:
    """One JSON object per row. Not DataFrame.to_json: it rounds floats to 10
    digits; json.dumps writes the shortest repr that reads back exactly."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with open(path, "w", encoding="utf-8") as out:
        for batch in table.to_batches(max_chunksize=JSONL_BATCH):
            for rec in batch.to_pylist():
                out.write(json.dumps(rec, ensure_ascii=False, default=_json_value))
                out.write("\n")


def _json_value(v: object) -> object:
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    return str(v)  # Decimal and other exact scalars: their text form
