"""Tables as content-defined row chunks, each chunk one Parquet object.

Chunk boundaries are chosen from the rows themselves (a hash of the key,
or of the whole row when there is no key), so inserting or deleting rows
moves only the boundaries near the change: unchanged runs of rows map to
the same chunk objects and are stored once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from lepton import hashing
from lepton.data import patches
from lepton.data.parquet import parquet_bytes
from lepton.errors import InvalidInput
from lepton.manifest import Chunk, Column
from lepton.store.objects import ObjectStore

TARGET_ROWS = 16_384  # mean rows per chunk (a power of two)
MIN_ROWS = 2_048
MAX_ROWS = 8 * TARGET_ROWS
Progress = Callable[[int], None]


def row_hashes(frame: pd.DataFrame, key: str | None, *, exact: bool = False) -> np.ndarray:
    """A stable 64-bit hash per row (of the key column, or of every column).
    ``exact``: floats are hashed by their bits (-0.0 differs from 0.0; every
    NaN is one NaN), for deciding whether rows changed. Chunk boundaries use
    the hash without it, so boundaries stored before it stay where they were."""
    cols = frame[[key]] if key else frame
    if exact:
        cols = cols.apply(float_bits)
    try:
        hashed = pd.util.hash_pandas_object(cols, index=False)
    except TypeError:  # nested values (lists, structs) are hashed by their JSON text
        hashed = pd.util.hash_pandas_object(cols.apply(canonical_column), index=False)
    return hashed.to_numpy(dtype=np.uint64)


def float_bits(col: pd.Series) -> pd.Series:
    """A numpy float column as its values' bit patterns (NaNs made one NaN);
    any other column as it is."""
    if not isinstance(col.dtype, np.dtype) or col.dtype.kind != "f":
        return col
    values = col.to_numpy(dtype=np.float64, copy=True)
    values[np.isnan(values)] = np.nan
    return pd.Series(values.view(np.uint64), index=col.index, name=col.name)


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
    previous: tuple[Chunk, ...] = (),
) -> tuple[tuple[Column, ...], tuple[Chunk, ...]]:
    """Store ``frame`` as chunk objects; returns its columns and chunk list.

    With a key and the ``previous`` version's chunks, a chunk whose keys match
    a previous chunk's but whose rows differ a little is stored as a patch."""
    table = to_arrow(frame, source)
    content = row_hashes(table.to_pandas(), None, exact=True) if key and previous else None
    earlier = _Earlier(store, previous, key) if content is not None else None
    chunks = []
    for start, end in boundaries(row_hashes(frame, key), target, lo, hi):
        part = table.slice(start, end - start)
        data = parquet_bytes(part)
        chunk = Chunk(id=hashing.hash_bytes(data), rows=end - start)
        if earlier is not None and content is not None and not earlier.has(chunk.id):
            patched = earlier.patch(part, content[start:end])
            if patched is not None:
                chunk = patched
        if chunk.base is None:
            store.put_bytes(data)
        chunks.append(chunk)
        if progress:
            progress(end - start)
    return columns_of(table), tuple(chunks)


class _Earlier:
    """The previous version's chunks, indexed by the hash of their key sequence."""

    def __init__(self, store: ObjectStore, chunks: tuple[Chunk, ...], key: str) -> None:
        self.store, self.chunks, self.key = store, chunks, key
        self.ids = {c.id for c in chunks if c.base is None}
        self.by_keys: dict[str, tuple[Chunk, patches.Chain, np.ndarray]] | None = None

    def has(self, chunk_id: str) -> bool:
        return chunk_id in self.ids

    def _index(self) -> dict[str, tuple[Chunk, patches.Chain, np.ndarray]]:
        if self.by_keys is None:  # read the previous rows once, only when needed
            self.by_keys = {}
            for c in self.chunks:
                chain = patches.read_chain(self.store, c)
                rows = chain.rows
                if self.key not in rows.column_names:  # the previous version had other columns
                    continue
                held = patches.Chain(rows, chain.positions)  # the rows alone: the base and patches let go
                hashes = row_hashes(rows.to_pandas(), None, exact=True)
                self.by_keys[_key_sequence(rows, self.key)] = (c, held, hashes)
        return self.by_keys

    def patch(self, part: pa.Table, hashes: np.ndarray) -> Chunk | None:
        found = self._index().get(_key_sequence(part, self.key))
        if found is None:
            return None
        chunk, chain, earlier_hashes = found

        def put(t: pa.Table) -> str:
            return self.store.put_bytes(parquet_bytes(t))

        return patches.try_patch(part, hashes, self.key, chunk, chain, earlier_hashes, put)


def _key_sequence(rows: pa.Table, key: str) -> str:
    values = pd.util.hash_pandas_object(rows.column(key).to_pandas(), index=False).to_numpy(np.uint64)
    return hashing.hash_bytes(values.tobytes())


def read_chunks(
    store: ObjectStore, chunks: Iterable[Chunk], columns: list[str] | None = None
) -> pd.DataFrame:
    """Reassemble rows from chunk objects (each verified against its hash)."""
    tables = [patches.read_chunk(store, c, columns) for c in chunks]
    if not tables:
        return pd.DataFrame(columns=columns or [])
    return pa.concat_tables(tables).to_pandas()
