"""How chunks are written as Parquet (pyarrow only: the streaming ingest
writes chunks without pandas)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lepton.data import decimals
from lepton.data.keyhash import words_of

SMALL_ROWS = 64


def parquet_buffer(table: pa.Table) -> pa.Buffer:
    """One row group, zstd at its fast level -1, no dictionary pages,
    floating-point columns byte-stream-split, integer columns whose values
    span less than 2**32 delta-encoded. Measured on 1 MB chunks of
    numbers, labels and short text: plain+zstd is 20-45% smaller and 2-10x
    faster to write than dictionary+zstd (whose dictionaries overflow and
    fall back on unique values anyway); splitting floats' bytes into streams
    makes the benchmark's chunks another 5% smaller and 1.4x faster to
    write, and level -1 instead of 1 another 1.4x faster for 2% more bytes.
    Delta encoding (DELTA_BINARY_PACKED, bit-packed differences) wrote a
    column of ids or small labels 2x faster and 2.5x smaller than plain
    values, a chunk of the benchmark's table (id, 10 floats, label) 26%
    faster and 3% smaller; on values spread over all 64 bits it was 1.6x
    slower and no smaller, hence the span test.

    Tables of numbers with fewer than SMALL_ROWS rows (patches: the few rows
    an edit changed) are written plain with snappy: zstd's and the
    encodings' set-up for every column cost more than they save there (a
    10- to 60-row patch of the benchmark's table: 0.35-0.43 -> 0.17 ms,
    within 3% of the size). Text compresses better with zstd.

    Columns without nulls are stored REQUIRED (read_parquet makes them
    nullable again, as every table in memory is): no definition levels to
    encode, a 4 MB chunk of the benchmark's table written in 5.0 instead of
    7.8 ms, to within 500 bytes of the size.

    Float columns of decimals are stored as integer numerators
    (lepton.data.decimals), byte-stream-split like floats: a 4 MB chunk of
    the benchmark's table is 1.28 instead of 2.94 MB. read_parquet gives
    back the floats, bit for bit."""
    table = _required(table)
    if table.num_rows < SMALL_ROWS and all(_numeric(f.type) for f in table.schema):
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="snappy", use_dictionary=False, write_statistics=False)
        return sink.getvalue()
    table = decimals.encoded(table)
    stored = decimals.scales_of(table.schema)
    encodings = {
        f.name: enc
        for f in table.schema
        if (enc := "BYTE_STREAM_SPLIT" if f.name in stored else _encoding(f, table.column(f.name)))
    }
    sink = pa.BufferOutputStream()  # its buffer is handed out without a copy
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=-1,
        row_group_size=max(len(table), 1),
        use_dictionary=False,
        column_encoding=encodings or None,
        write_statistics=False,  # nothing reads them (chunks are read whole); 20% of the writing time
    )
    return sink.getvalue()


def _required(table: pa.Table) -> pa.Table:
    """``table`` with its columns that hold no null marked non-nullable."""
    fields = [
        f.with_nullable(False) if f.nullable and not table.column(i).null_count else f
        for i, f in enumerate(table.schema)
    ]
    if fields == list(table.schema):
        return table
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def _nullable(table: pa.Table) -> pa.Table:
    """``table`` with every column nullable (as chunks were parsed)."""
    if all(f.nullable for f in table.schema):
        return table
    fields = [f.with_nullable(True) for f in table.schema]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _encoding(field: pa.Field, values: pa.ChunkedArray) -> str | None:
    if pa.types.is_floating(field.type):
        return "BYTE_STREAM_SPLIT"
    if pa.types.is_integer(field.type):
        span = _span(values)
        if span is not None and span < 1 << 32:
            return "DELTA_BINARY_PACKED"
    return None


def _span(values: pa.ChunkedArray) -> int | None:
    """max - min of an integer column (None where it has no values). In
    numpy where it has no nulls: pyarrow.compute costs a ~0.15 s import
    with the GIL held, in the middle of an ingest whose patches grew past
    SMALL_ROWS rows."""
    if not len(values):
        return None
    if values.null_count:
        import pyarrow.compute as pc  # (nulls: rare in integer columns of the tables we chunk)

        low, high = pc.min_max(values).values()
        return high.as_py() - low.as_py() if low.is_valid and high.is_valid else None
    kind = f"{'' if pa.types.is_signed_integer(values.type) else 'u'}int{values.type.bit_width}"
    words = words_of(values, np.dtype(kind))  # (to_pandas_dtype would import pandas)
    return int(words.max()) - int(words.min())


def parquet_bytes(table: pa.Table) -> bytes:
    """parquet_buffer as bytes."""
    return parquet_buffer(table).to_pybytes()


def read_parquet(
    data: bytes | pa.Buffer, columns: list[str] | None = None, *, decode: bool = True
) -> pa.Table:
    """One stored chunk's table, read on the calling thread (the ingest's
    workers read many chunks at once already), every column nullable
    whether or not it was stored REQUIRED, stored decimals floats again
    (lepton.data.decimals; with ``decode`` False they are left as stored,
    the table marked). ``pq.read_table`` goes
    through the dataset layer: measured 2-3x the CPU per chunk, and most of
    the time of a snapshot that reads ~1,000 chunks with their patches."""
    table = pq.ParquetFile(pa.BufferReader(data)).read(columns=columns, use_threads=False)
    # (columns without nulls are stored REQUIRED: parquet_buffer)
    return _nullable(decimals.decoded(table) if decode else table)
