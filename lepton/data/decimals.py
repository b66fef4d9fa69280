"""Decimal floats stored as integers: a float64 column whose every value is
a short decimal (0.850624, 19.99, -3.5) is stored as the int64 numerators
m of m / 10**scale, one scale for the column, and read back by that one
division, which gives the very same doubles, bit for bit.

This is the idea of ALP (Afroozeh and Boncz, "ALP: Adaptive Lossless
floating-Point Compression", SIGMOD 2023; DuckDB's float compression):
most floats in tables were typed or printed as decimals, and a double's
low mantissa bits, random to a compressor, carry nothing a decimal
numerator does not. On the benchmark's table (ten columns of 6-digit
decimals) a 4 MB chunk's Parquet object is 1.28 MB instead of 2.94 MB.

Exactness: a numerator |m| <= 2**53 and 10**scale (scale <= 22) are both
exact doubles, so IEEE division rounds m / 10**scale once, correctly; a
column is stored so only if dividing gives back every value's exact bits
(checked, not assumed: -0.0, NaN and infinities never qualify; nor does a
value that needs more than 2**53 as numerator, e.g. 0.1 + 0.2). The CSV
fast path (lepton.data.numcsv) parses such text into numerators directly;
other tables are checked here with numpy.

The stored table is marked with the schema metadata DECIMALS (a JSON
object: column -> scale); read_parquet (lepton.data.parquet) divides them
back. Tables in memory are never in this form, except between the parse
and the write of a whole chunk.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from lepton.data.keyhash import words_of

DECIMALS = b"lepton.decimals"
EXACT = 1 << 53  # the largest numerator that is an exact double (with all below it)
MAX_SCALE = 15  # at most 15 digits after the point (where a double still tells decimals apart)
SAMPLE = 64  # values tried first: a column of arbitrary doubles is given up on after these
POW10 = np.array([10.0**k for k in range(MAX_SCALE + 1)])  # exact doubles


def marked(table: pa.Table, scales: Mapping[str, int]) -> pa.Table:
    """``table``, whose int64 columns ``scales`` names hold numerators, marked
    as stored decimals (nothing is marked where ``scales`` is empty)."""
    if not scales:
        return table
    metadata = dict(table.schema.metadata or {})
    metadata[DECIMALS] = json.dumps(dict(sorted(scales.items())), separators=(",", ":")).encode()
    return table.replace_schema_metadata(metadata)


def scales_of(schema: pa.Schema) -> dict[str, int]:
    """column -> scale of the stored decimals in a table of this schema
    (ValueError for a mark no writer makes)."""
    raw = (schema.metadata or {}).get(DECIMALS)
    if not raw:
        return {}
    scales = json.loads(raw)
    if not isinstance(scales, dict) or not all(
        isinstance(s, int) and 0 <= s <= MAX_SCALE and _holds_numerators(schema, n) for n, s in scales.items()
    ):
        raise ValueError(f"stored decimals: bad mark {raw[:200]!r}")
    return scales


def _holds_numerators(schema: pa.Schema, name: str) -> bool:
    """Whether ``name`` is an int64 column of ``schema``, or not in it (a projection)."""
    i = schema.get_field_index(name)
    return i < 0 or schema.field(i).type == pa.int64()


def logical_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of the table a stored one (this schema) stands for."""
    scales = scales_of(schema)
    if not scales:
        return schema
    metadata = {k: v for k, v in schema.metadata.items() if k != DECIMALS} or None
    fields = [f.with_type(pa.float64()) if f.name in scales else f for f in schema]
    return pa.schema(fields, metadata=metadata)


def decoded(table: pa.Table) -> pa.Table:
    """``table`` with its stored decimals (those present) divided back into
    float64, and its mark removed; any other table as it is."""
    scales = scales_of(table.schema)
    if not scales:
        return table
    metadata = {k: v for k, v in table.schema.metadata.items() if k != DECIMALS} or None
    for name, scale in scales.items():
        i = table.schema.get_field_index(name)
        if i < 0:
            continue  # (not read: a projection)
        field = table.schema.field(i)
        column = pa.chunked_array([_divided(a, scale) for a in table.column(i).chunks], type=pa.float64())
        table = table.set_column(i, pa.field(name, pa.float64(), field.nullable, field.metadata), column)
    return table.replace_schema_metadata(metadata)


def _divided(numerators: pa.Array, scale: int) -> pa.Array:
    if not len(numerators):
        return pa.array([], type=pa.float64())
    return _with_nulls_of(numerators, words_of(numerators, np.int64) / POW10[scale], pa.float64())


def _with_nulls_of(array: pa.Array, values: np.ndarray, kind: pa.DataType) -> pa.Array:
    """``values`` (as many as ``array`` has) as an Arrow array of ``kind``,
    null where ``array`` is (its validity bitmap shared, unless offset)."""
    if not array.null_count:
        return pa.Array.from_buffers(kind, len(array), [None, pa.py_buffer(values)], 0)
    if array.offset:
        return pa.array(values, mask=~np.asarray(array.is_valid()), type=kind)
    return pa.Array.from_buffers(
        kind, len(array), [array.buffers()[0], pa.py_buffer(values)], array.null_count
    )


def encoded(table: pa.Table) -> pa.Table:
    """``table`` with each float64 column that holds decimals stored as
    numerators (and marked); columns already stored so stay as they are."""
    scales = scales_of(table.schema)
    for i, field in enumerate(table.schema):
        if field.type != pa.float64() or field.name in scales:
            continue
        got = as_decimal(table.column(i))
        if got is not None:
            numerators, scales[field.name] = got
            table = table.set_column(i, pa.field(field.name, pa.int64(), field.nullable), numerators)
    return marked(table, scales)


def as_decimal(column: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, int] | None:
    """(int64 numerators, scale) of a float64 column whose every value is
    numerator / 10**scale exactly (nulls kept as nulls); None if any is not
    (or it has no values)."""
    if isinstance(column, pa.ChunkedArray):  # (combine_chunks copies even a single chunk)
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    else:
        array = column
    if not len(array) or array.null_count == len(array):
        return None
    values = words_of(array, np.float64)  # (Array.to_numpy may import pandas)
    if array.null_count:
        values = np.where(np.asarray(array.is_valid()), values, 0.0)  # (what is under a null is anything)
    scale = _least_scale(values[:SAMPLE])
    while scale is not None and scale <= MAX_SCALE:  # (past the sample: a value may need a larger one)
        numerators = _exact(values, scale)
        if numerators is not None:
            return _with_nulls_of(array, numerators, pa.int64()), scale
        scale += 1
    return None


def _least_scale(values: np.ndarray) -> int | None:
    """The least scale at which every value (a few) is a decimal, else None:
    every scale tried at once."""
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.rint(values[:, None] * POW10[None, :])
        fits = (np.abs(scaled) <= EXACT).all(axis=0)  # (NaN and infinities fail here)
        back = np.where(fits, scaled, 0.0).astype(np.int64) / POW10[None, :]
    exact = fits & (back.view(np.int64) == values.view(np.int64)[:, None]).all(axis=0)
    found = np.flatnonzero(exact)
    return int(found[0]) if len(found) else None


def _exact(values: np.ndarray, scale: int) -> np.ndarray | None:
    """The numerators of ``values`` at ``scale`` if dividing them gives back
    every value's exact bits, else None."""
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.rint(values * POW10[scale])
        if not (np.abs(scaled) <= EXACT).all():  # (NaN and infinities fail here too)
            return None
    numerators = scaled.astype(np.int64)
    back = numerators / POW10[scale]
    return numerators if np.array_equal(back.view(np.int64), values.view(np.int64)) else None
