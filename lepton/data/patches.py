"""Patch chunks: a chunk whose rows equal an earlier chunk's except a few,
replaced in place, is stored as those few rows and their positions (plus a
reference to the earlier chunk). Scattered edits (relabeling 1% of the
samples, correcting 0.1% of the rows) touch every chunk of a table but
store only what changed. Chains are bounded: past MAX_DEPTH, or when more
than MAX_CHANGED of a chunk changed, the chunk is stored whole again.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lepton.manifest import Chunk
from lepton.store.objects import ObjectStore

POS = "__lepton_row__"
MAX_DEPTH = 16
MAX_CHANGED = 0.25


def read_chunk(store: ObjectStore, chunk: Chunk, columns: list[str] | None = None) -> pa.Table:
    """The rows a chunk entry stands for (a patch applied to its base chain)."""
    if chunk.base is None:
        return pq.read_table(io.BytesIO(store.read_bytes(chunk.id)), columns=columns)
    base = read_chunk(store, chunk.base, columns)
    patch = pq.read_table(
        io.BytesIO(store.read_bytes(chunk.id)), columns=None if columns is None else [*columns, POS]
    )
    positions = patch.column(POS).to_numpy()
    rows = patch.drop_columns([POS])
    take = np.arange(base.num_rows, dtype=np.int64)
    take[positions] = base.num_rows + np.arange(len(positions), dtype=np.int64)
    return pa.concat_tables([base, rows.cast(base.schema)]).take(pa.array(take))


def try_patch(
    store: ObjectStore,
    part: pa.Table,
    part_hashes: np.ndarray,
    key: str,
    candidate: Chunk,
    candidate_rows: pa.Table,
    candidate_hashes: np.ndarray,
    put,  # type: ignore[no-untyped-def]
) -> Chunk | None:
    """A patch over ``candidate`` if it has the same keys in the same order,
    the same schema, and few enough rows differ; else None."""
    if (
        candidate.depth >= MAX_DEPTH
        or candidate_rows.num_rows != part.num_rows
        or candidate_rows.schema != part.schema
        or not candidate_rows.column(key).equals(part.column(key))
    ):
        return None
    changed = np.flatnonzero(part_hashes != candidate_hashes)
    if len(changed) > MAX_CHANGED * part.num_rows:
        return None
    if not len(changed):
        return candidate
    rows = part.take(pa.array(changed)).append_column(POS, pa.array(changed.astype(np.int32)))
    return Chunk(id=put(rows), rows=part.num_rows, base=candidate)
