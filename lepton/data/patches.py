"""Patch chunks: a chunk whose rows equal an earlier chunk's except a few,
replaced in place, is stored as those few rows and their positions (plus a
reference to the earlier chunk). Scattered edits (relabeling 1% of the
samples, correcting 0.1% of the rows) touch every chunk of a table but
store only what changed. Chains are bounded: past MAX_DEPTH, or when more
than MAX_CHANGED of a chunk changed, the chunk is stored whole again.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from lepton.data.parquet import read_parquet
from lepton.manifest import Chunk
from lepton.store.objects import ObjectStore

POS = "__lepton_row__"
MAX_DEPTH = 16
MAX_CHANGED = 0.25


def read_chunk(store: ObjectStore, chunk: Chunk, columns: list[str] | None = None) -> pa.Table:
    """The rows a chunk entry stands for (its patches applied to its base).

    One pass over the chain: the positions of every patch, oldest first, are
    folded into one index (a later patch wins), then the base and all the
    patches' rows are taken through it once; a chain of d patches costs one
    take, not d."""
    chain: list[Chunk] = []
    while chunk.base is not None:
        chain.append(chunk)
        chunk = chunk.base
    base = read_parquet(store.read_bytes(chunk.id), columns)
    if not chain:
        return base
    take = np.arange(base.num_rows, dtype=np.int64)
    parts, offset = [base], base.num_rows
    for patch_chunk in reversed(chain):
        patch = read_parquet(store.read_bytes(patch_chunk.id), None if columns is None else [*columns, POS])
        positions = patch.column(POS).to_numpy()
        take[positions] = offset + np.arange(len(positions), dtype=np.int64)
        parts.append(patch.drop_columns([POS]).cast(base.schema))
        offset += len(positions)
    return pa.concat_tables(parts).take(pa.array(take))


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
    return Chunk(id=put(patch_rows(part, changed)), rows=part.num_rows, base=candidate)


def patch_rows(part: pa.Table, changed: np.ndarray) -> pa.Table:
    """The rows of a patch: the changed rows of ``part`` and their positions."""
    return part.take(pa.array(changed)).append_column(POS, pa.array(changed.astype(np.int32)))


def changed_rows(earlier: pa.Table, part: pa.Table, key: str) -> np.ndarray | None:
    """Positions of the rows of ``part`` that differ from ``earlier``'s, or
    None when ``part`` cannot be a patch over it (other keys, other order,
    other schema). Nulls equal nulls; a NaN counts as changed (harmless: one
    row more in the patch)."""
    if (
        earlier.num_rows != part.num_rows
        or earlier.schema != part.schema
        or not earlier.column(key).equals(part.column(key))
    ):
        return None
    import pyarrow.compute as pc  # here: an import of 0.06 s that appends never need

    diff = np.zeros(part.num_rows, dtype=bool)
    for a, b in zip(earlier.columns, part.columns, strict=True):
        same = pc.fill_null(pc.equal(a, b), False)
        both_null = pc.and_(pc.is_null(a), pc.is_null(b))
        diff |= ~pc.or_(same, both_null).to_numpy(zero_copy_only=False)
    return np.flatnonzero(diff)
