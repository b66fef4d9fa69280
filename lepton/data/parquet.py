"""How chunks are written as Parquet (pyarrow only: the streaming ingest
writes chunks without pandas)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq


def parquet_buffer(table: pa.Table) -> pa.Buffer:
    """One row group, zstd at its fast level -1, no dictionary pages,
    floating-point columns byte-stream-split. Measured on 1 MB chunks of
    numbers, labels and short text: plain+zstd is 20-45% smaller and 2-10x
    faster to write than dictionary+zstd (whose dictionaries overflow and
    fall back on unique values anyway); splitting floats' bytes into streams
    makes the benchmark's chunks another 5% smaller and 1.4x faster to
    write, and level -1 instead of 1 another 1.4x faster for 2% more bytes."""
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    sink = pa.BufferOutputStream()  # its buffer is handed out without a copy
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=-1,
        row_group_size=max(len(table), 1),
        use_dictionary=False,
        use_byte_stream_split=floats or False,
        write_statistics=False,  # nothing reads them (chunks are read whole); 20% of the writing time
    )
    return sink.getvalue()


def parquet_bytes(table: pa.Table) -> bytes:
    """parquet_buffer as bytes."""
    return parquet_buffer(table).to_pybytes()


def read_parquet(data: bytes | pa.Buffer, columns: list[str] | None = None) -> pa.Table:
    """One stored chunk's table, read on the calling thread (the ingest's
    workers read many chunks at once already). ``pq.read_table`` goes
    through the dataset layer: measured 2-3x the CPU per chunk, and most of
    the time of a snapshot that reads ~1,000 chunks with their patches."""
    return pq.ParquetFile(pa.BufferReader(data)).read(columns=columns, use_threads=False)
