"""Patch chunks: a chunk whose rows equal an earlier chunk's except a few,
replaced in place, is stored as those few rows and their positions (plus a
reference to the earlier chunk). Scattered edits (relabeling 1% of the
samples, correcting 0.1% of the rows) touch every chunk of a table but
store only what changed.

Chains stay short, as the digits of a binary counter: a new patch goes over
the previous version's entry, but is folded into the patch below it (one
patch over that one's base, holding the rows of both) while it is more than
half that patch's size. With even edits, a chunk edited n times is read
through popcount(n) patches, not n, and the patches hold about
1 + (log2 n) / 2 times the rows a chain would. Past MAX_DEPTH, or when more
than MAX_CHANGED of a chunk changed, the chunk is stored whole again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lepton.data.keyhash import words_of
from lepton.data.linehash import LINE
from lepton.data.parquet import read_parquet
from lepton.manifest import Chunk
from lepton.store.objects import ObjectStore

POS = "__lepton_row__"
MAX_DEPTH = 16
MAX_CHANGED = 0.25


@dataclass(frozen=True)
class Chain:
    """A chunk entry read: its base's rows, the positions each of its
    patches replaces (its own first: ``chunk.depth`` arrays), and the
    patches' rows (oldest first, as the base's schema). ``rows``: the rows
    the entry stands for, put together on first use."""

    base: pa.Table
    positions: list[np.ndarray]
    layers: tuple[pa.Table, ...] = ()

    @cached_property
    def rows(self) -> pa.Table:
        """One pass: the positions of every patch, oldest first, folded into
        one index (a later patch wins), then the base and all the patches'
        rows taken through it once; a chain of d patches costs one take."""
        if not self.layers:
            return self.base
        take = np.arange(self.base.num_rows, dtype=np.int64)
        offset = self.base.num_rows
        for positions, layer in zip(reversed(self.positions), self.layers, strict=True):
            take[positions] = offset + np.arange(len(positions), dtype=np.int64)
            offset += layer.num_rows
        return pa.concat_tables([self.base, *self.layers]).take(_array(take))


def read_chunk(store: ObjectStore, chunk: Chunk, columns: list[str] | None = None) -> pa.Table:
    """The rows a chunk entry stands for (its patches applied to its base)."""
    return read_chain(store, chunk, columns).rows


def read_chain(store: ObjectStore, chunk: Chunk, columns: list[str] | None = None) -> Chain:
    """A chunk entry's base and patches, read."""
    chain: list[Chunk] = []
    while chunk.base is not None:
        chain.append(chunk)
        chunk = chunk.base
    base = read_parquet(store.read_bytes(chunk.id), columns)
    layers, held = [], []
    for patch_chunk in reversed(chain):
        patch = read_parquet(store.read_bytes(patch_chunk.id), None if columns is None else [*columns, POS])
        held.append(_positions(patch.column(POS)))
        layer = patch.drop_columns([c for c in (POS, LINE) if c in patch.column_names])
        layers.append(layer if layer.schema == base.schema else layer.cast(base.schema))
    return Chain(base, held[::-1], tuple(layers))


def place(
    candidate: Chunk, held: list[np.ndarray], changed: np.ndarray, rows: int
) -> tuple[Chunk, np.ndarray] | None:
    """Where a patch of the ``changed`` rows over ``candidate`` (whose
    chain's patches hold the positions ``held``, its own first) goes, and
    the positions it holds: folded down the chain while more than half the
    size of the patch below it. Folding into a patch over ``b`` holds the
    positions of both: every other row is the same in the new rows as in
    ``b``'s. None: store the chunk whole."""
    parent, positions = candidate, changed
    for below in held:  # ``parent``'s own positions, going down
        if 2 * len(positions) <= len(below):
            break
        positions = np.union1d(positions, below)
        parent = parent.base  # type: ignore[assignment]
    if parent.depth >= MAX_DEPTH or len(positions) > MAX_CHANGED * rows:
        return None
    return parent, positions


def try_patch(
    part: pa.Table,
    part_hashes: np.ndarray,
    key: str,
    candidate: Chunk,
    chain: Chain,
    candidate_hashes: np.ndarray,
    put,  # type: ignore[no-untyped-def]
) -> Chunk | None:
    """A patch over ``candidate`` (read as ``chain``) if it has the same
    keys in the same order, the same schema, and few enough rows differ;
    else None."""
    rows = chain.rows
    if (
        rows.num_rows != part.num_rows
        or rows.schema != part.schema
        or not rows.column(key).equals(part.column(key))
    ):
        return None
    return patch_over(candidate, chain, np.flatnonzero(part_hashes != candidate_hashes), part, put)


def patch_over(
    candidate: Chunk,
    chain: Chain,
    changed: np.ndarray,
    part: pa.Table,
    put,  # type: ignore[no-untyped-def]
    keys: str | None = None,
    lines: np.ndarray | None = None,
) -> Chunk | None:
    """``part`` as ``candidate`` itself (no row ``changed``), or as a patch
    placed by ``place`` and stored with ``put``; None: store it whole.
    ``lines``: the hashes of ``part``'s text lines (lepton.data.linehash)."""
    if not len(changed):
        return candidate  # the same rows (perhaps written differently, e.g. 1.0 and 1.00)
    placed = place(candidate, chain.positions, changed, part.num_rows)
    if placed is None:
        return None
    parent, positions = placed
    rows = part.take(_array(positions))
    return Chunk(id=put(patch_rows(rows, positions, lines)), rows=part.num_rows, keys=keys, base=parent)


def patch_rows(rows: pa.Table, positions: np.ndarray, lines: np.ndarray | None = None) -> pa.Table:
    """A patch: the new ``rows`` at ``positions``, with those positions and,
    given the hashes of every line of the new chunk, the ones of these rows."""
    out = rows.append_column(POS, _array(positions, np.int32))
    if lines is not None:
        out = out.append_column(LINE, _array(lines[positions], np.uint64))
    return out


def patch_lines(data: bytes | pa.Buffer) -> tuple[np.ndarray, np.ndarray] | None:
    """A stored patch's positions and line hashes; None if it has no line hashes."""
    # (a column the file lacks is left out, not refused: no schema to look at first, ~15% of the read)
    table = pq.ParquetFile(pa.BufferReader(data)).read(columns=[POS, LINE], use_threads=False)
    if LINE not in table.column_names:
        return None
    return _positions(table.column(POS)), words_of(table.column(LINE), np.uint64)


def _positions(column: pa.ChunkedArray) -> np.ndarray:
    """A patch's row positions (int32, no nulls) as a numpy view: a
    ChunkedArray's to_numpy costs ~0.5 ms (and imports pandas), on every
    patch of every chunk read."""
    if column.null_count or not pa.types.is_integer(column.type):
        raise ValueError(f"patch positions of type {column.type} with {column.null_count} null(s)")
    return words_of(column, column.type.to_pandas_dtype()).astype(np.int64)


def _array(values: np.ndarray, dtype: type = np.int64) -> pa.Array:
    """A numpy integer array as an Arrow array (no nulls). ``pa.array`` of
    a numpy array imports pandas (~0.3 s of CPU, once), to ask whether it
    is a Series."""
    data = np.ascontiguousarray(values, dtype=dtype)
    return pa.Array.from_buffers(pa.from_numpy_dtype(data.dtype), len(data), [None, pa.py_buffer(data)])


def changed_rows(earlier: pa.Table, part: pa.Table, key: str) -> np.ndarray | None:
    """Positions of the rows of ``part`` that differ from ``earlier``'s, or
    None when ``part`` cannot be a patch over it (other keys, other order,
    other schema). Nulls equal nulls; numbers are compared bit for bit (so
    -0.0 differs from 0.0, and a NaN equals only the same NaN)."""
    if (
        earlier.num_rows != part.num_rows
        or earlier.schema != part.schema
        or not earlier.column(key).equals(part.column(key))
    ):
        return None
    diff = np.zeros(part.num_rows, dtype=bool)
    for a, b in zip(earlier.columns, part.columns, strict=True):
        x, y = _bits(a), _bits(b)
        if x is not None and y is not None:
            diff |= x != y  # ~10 arrow compute calls a column otherwise
            continue
        import pyarrow.compute as pc  # here: an import of 0.06 s that appends never need

        same = pc.fill_null(pc.equal(a, b), False)
        both_null = pc.and_(pc.is_null(a), pc.is_null(b))
        diff |= ~pc.or_(same, both_null).to_numpy(zero_copy_only=False)
    return np.flatnonzero(diff)


def changed_over(chain: Chain, part: pa.Table, key: str) -> np.ndarray | None:
    """changed_rows against the rows ``chain`` stands for, without putting
    them together where every column is int64 or float64 without nulls:
    each column compared with the base's, then again at each patch's
    positions, oldest first (a later patch wins)."""
    base = chain.base
    if not chain.layers or base.num_rows != part.num_rows or base.schema != part.schema:
        return changed_rows(chain.rows, part, key)  # (no layers: the base itself)
    held = chain.positions[::-1]  # oldest first, as the layers
    diff = np.zeros(part.num_rows, dtype=bool)
    for name in part.column_names:
        new, old = _bits(part.column(name)), _bits(base.column(name))
        layers = [_bits(layer.column(name)) for layer in chain.layers]
        if new is None or old is None or any(b is None for b in layers):
            return changed_rows(chain.rows, part, key)
        differs = new != old
        for positions, bits in zip(held, layers, strict=True):
            differs[positions] = new[positions] != bits
        if name == key and differs.any():
            return None  # other keys, or another order
        diff |= differs
    return np.flatnonzero(diff)


def _bits(column: pa.ChunkedArray) -> np.ndarray | None:
    """An int64 or float64 column without nulls as its values' 64-bit words
    (a numpy view of its buffer); None for any other."""
    if column.type not in (pa.int64(), pa.float64()) or column.null_count:
        return None
    return words_of(column, np.int64)
