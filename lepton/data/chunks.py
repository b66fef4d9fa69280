"""Tables as content-defined row chunks, each chunk one Parquet object.

Chunk boundaries are chosen from the rows themselves (a hash of the key,
or of the whole row when there is no key), so inserting or deleting rows
moves only the boundaries near the change: unchanged runs of rows map to
the same chunk objects and are stored once.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lepton.errors import InvalidInput
from lepton.manifest import Chunk, Column
from lepton.store.objects import ObjectStore

TARGET_ROWS = 16_384  # mean rows per chunk (a power of two)
MIN_ROWS = 2_048
MAX_ROWS = 8 * TARGET_ROWS
Progress = Callable[[int], None]


def row_hashes(frame: pd.DataFrame, key: str | None) -> np.ndarray:
    """A stable 64-bit hash per row (of the key column, or of every column)."""
    cols = frame[[key]] if key else frame
    try:
        hashed = pd.util.hash_pandas_object(cols, index=False)
    except TypeError:  # nested values (lists, structs) are hashed by their JSON text
        hashed = pd.util.hash_pandas_object(cols.apply(canonical_column), index=False)
    return hashed.to_numpy(dtype=np.uint64)


def canonical_column(col: pd.Series) -> pd.Series:
    return col.map(canonical) if col.dtype == object else col


def canonical(value: Any) -> Any:
    """A hashable stand-in for a nested value: its canonical JSON text."""
    if isinstance(value, np.ndarray | list | tuple | dict):
        return json.dumps(plain_nested(value), sort_keys=True, default=str)
    return value


def plain_nested(value: Any) -> Any:
    if isinstance(value, np.ndarray | list | tuple):
        return [plain_nested(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain_nested(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def boundaries(
    hashes: np.ndarray, target: int = TARGET_ROWS, lo: int = MIN_ROWS, hi: int = MAX_ROWS
) -> list[tuple[int, int]]:
    """[start, end) row ranges. A row ends a chunk when its hash has the low
    log2(target) bits zero and the chunk has at least ``lo`` rows; a chunk
    never exceeds ``hi`` rows."""
    if target < 1 or target & (target - 1) or not 1 <= lo <= hi:
        raise ValueError(f"need a power-of-two target and 1 <= lo <= hi (got {target}, {lo}, {hi})")
    n = len(hashes)
    mask = np.uint64(target - 1)
    candidates = np.flatnonzero((hashes & mask) == 0) + 1
    out: list[tuple[int, int]] = []
    start = 0
    for end in candidates.tolist():
        while end - start > hi:
            out.append((start, start + hi))
            start += hi
        if end - start >= lo:
            out.append((start, end))
            start = end
    while n - start > hi:
        out.append((start, start + hi))
        start += hi
    if start < n:
        out.append((start, n))
    return out


def to_arrow(frame: pd.DataFrame, source: str) -> pa.Table:
    """Arrow table in a canonical form: the same values give the same bytes
    whether pandas held strings as ``object`` or ``str`` (no pandas metadata,
    strings always large_string)."""
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise InvalidInput(f"{source}: a column mixes types that cannot be stored: {e}") from e
    schema = pa.schema([f.with_type(pa.large_string()) if f.type == pa.string() else f for f in table.schema])
    return table.cast(schema).replace_schema_metadata(None)


def columns_of(table: pa.Table) -> tuple[Column, ...]:
    return tuple(Column(name=f.name, type=str(f.type)) for f in table.schema)


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", row_group_size=max(len(table), 1))
    return buf.getvalue()


def write_chunks(
    store: ObjectStore,
    frame: pd.DataFrame,
    key: str | None,
    source: str,
    progress: Progress | None = None,
    *,
    target: int = TARGET_ROWS,
    lo: int = MIN_ROWS,
    hi: int = MAX_ROWS,
) -> tuple[tuple[Column, ...], tuple[Chunk, ...]]:
    """Store ``frame`` as chunk objects; returns its columns and chunk list."""
    table = to_arrow(frame, source)
    chunks = []
    for start, end in boundaries(row_hashes(frame, key), target, lo, hi):
        part = table.slice(start, end - start)
        chunks.append(Chunk(id=store.put_bytes(parquet_bytes(part)), rows=end - start))
        if progress:
            progress(end - start)
    return columns_of(table), tuple(chunks)


def read_chunks(
    store: ObjectStore, chunks: Iterable[Chunk], columns: list[str] | None = None
) -> pd.DataFrame:
    """Reassemble rows from chunk objects (each verified against its hash)."""
    tables = [pq.read_table(io.BytesIO(store.read_bytes(c.id)), columns=columns) for c in chunks]
    if not tables:
        return pd.DataFrame(columns=columns or [])
    return pa.concat_tables(tables).to_pandas()
