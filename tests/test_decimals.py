"""Float columns of decimals stored as integer numerators (lepton.data.decimals):
read back bit for bit whatever the floats (NaN, infinities, -0.0, nulls,
arbitrary doubles), and stored as numerators where every value is a short
decimal, so the chunk is smaller."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lepton.data import decimals
from lepton.data.parquet import parquet_buffer, read_parquet

PROPS = settings(max_examples=200, deadline=None)


def _bits(column: pa.ChunkedArray | pa.Array) -> tuple[list[bool], bytes]:
    """Validity and the exact bytes of the valid values (so -0.0 differs from 0.0, NaNs compare)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    valid = np.asarray(array.is_valid()).tolist()
    values = np.array([v if ok else 0.0 for v, ok in zip(array.to_pylist(), valid, strict=True)], dtype=float)
    return valid, values.tobytes()


def _stored_types(buf: pa.Buffer) -> dict[str, str]:
    """Each column's physical type in the Parquet object."""
    schema = pq.ParquetFile(pa.BufferReader(buf)).schema
    return {schema.column(i).name: schema.column(i).physical_type for i in range(len(schema))}


_any_double = st.floats(allow_nan=True, allow_infinity=True, width=64)
_decimal = st.tuples(st.integers(-(10**12), 10**12), st.integers(0, 8)).map(lambda mk: mk[0] / 10 ** mk[1])


@st.composite
def _columns(draw: st.DrawFn) -> pa.Array:
    values = draw(st.lists(st.one_of(_decimal, _decimal, _any_double, st.none()), min_size=0, max_size=200))
    array = pa.array(values, type=pa.float64())
    if len(array) > 2 and draw(st.booleans()):  # an offset into a larger array
        start = draw(st.integers(0, len(array) - 1))
        array = array.slice(start, draw(st.integers(0, len(array) - start)))
    return array


@PROPS
@given(_columns(), st.integers(0, 10))
def test_any_float_column_reads_back_bit_for_bit(column: pa.Array, extra_rows: int) -> None:
    rows = len(column)
    table = pa.table({"x": column, "n": pa.array(range(rows), type=pa.int64())})
    back = read_parquet(parquet_buffer(table))
    assert back.schema == pa.schema([("x", pa.float64()), ("n", pa.int64())])
    assert _bits(back.column("x")) == _bits(column)
    got = decimals.as_decimal(column)
    if got is not None:
        numerators, scale = got
        assert _bits(
            decimals.decoded(decimals.marked(pa.table({"x": numerators}), {"x": scale}))["x"]
        ) == _bits(column)


_small_decimal = st.tuples(st.integers(-(10**7), 10**7), st.integers(0, 8)).map(
    lambda mk: mk[0] / 10 ** mk[1]
)


@PROPS
@given(st.lists(_small_decimal, min_size=64, max_size=300), st.integers(0, 8))
def test_short_decimals_are_stored_as_numerators_at_the_least_scale(values: list[float], k: int) -> None:
    """(Values below 1e7: with 8 digits after the point, numerators below 2**53.)"""
    floats = pa.array([round(v, k) + 0.0 for v in values], type=pa.float64())  # (+0.0: no -0.0)
    got = decimals.as_decimal(floats)
    assert got is not None
    numerators, scale = got
    assert scale <= k
    assert (np.asarray(numerators) / 10.0**scale).tolist() == floats.to_pylist()
    if scale:  # the least: one digit fewer does not hold them all
        assert not all(
            float(round(v * 10 ** (scale - 1))) / 10 ** (scale - 1) == v for v in floats.to_pylist()
        )
    buf = parquet_buffer(pa.table({"x": floats}))
    assert _stored_types(buf) == {"x": "INT64"}
    assert _bits(read_parquet(buf).column("x")) == _bits(floats)


def test_what_no_scale_holds_stays_float() -> None:
    rng = np.random.default_rng(3)
    cases = {
        "arbitrary doubles": rng.random(500),
        "a -0.0": np.r_[np.arange(499) / 4, -0.0],
        "a NaN": np.r_[np.arange(499) / 4, np.nan],
        "an infinity": np.r_[np.arange(499) / 4, np.inf],
        "0.1 + 0.2": np.r_[np.arange(499) / 4, 0.1 + 0.2],
        "past 2**53": np.r_[np.arange(499) / 4, 2.0**60],
    }
    for what, values in cases.items():
        column = pa.array(values)
        assert decimals.as_decimal(column) is None, what
        buf = parquet_buffer(pa.table({"x": column}))
        assert _stored_types(buf) == {"x": "DOUBLE"}, what
        assert _bits(read_parquet(buf).column("x")) == _bits(column), what


def test_nulls_stay_nulls_and_a_projection_reads_its_columns() -> None:
    rows = 200
    table = pa.table(
        {
            "a": pa.array([None if i % 7 == 0 else i / 8 for i in range(rows)], type=pa.float64()),
            "b": pa.array([i * 0.25 for i in range(rows)], type=pa.float64()),
            "c": pa.array([str(i) for i in range(rows)]),
        }
    )
    buf = parquet_buffer(table)
    assert _stored_types(buf) == {"a": "INT64", "b": "INT64", "c": "BYTE_ARRAY"}
    back = read_parquet(buf)
    assert back.equals(table) and back.schema.metadata is None
    assert read_parquet(buf, ["b"]).equals(table.select(["b"]))


def test_the_benchmark_layout_is_stored_in_less_than_half() -> None:
    """Ten columns of 6-digit decimals, as bench/datagen.py writes them."""
    rng = np.random.default_rng(0)
    floats = np.round(rng.random((40_000, 10)), 6)
    table = pa.table({f"f{i}": floats[:, i] for i in range(10)})
    stored = parquet_buffer(table)
    plain = pa.BufferOutputStream()
    pq.write_table(
        table, plain, compression="zstd", compression_level=-1, use_dictionary=False,
        column_encoding="BYTE_STREAM_SPLIT",
    )  # fmt: skip
    assert stored.size < 0.5 * plain.getvalue().size
    assert read_parquet(stored).equals(table)


def test_a_mark_no_writer_makes_is_refused_by_name() -> None:
    numerators = pa.table({"x": pa.array([1, 2], pa.int64()), "s": pa.array(["a", "b"])})
    for bad in ({"x": 16}, {"x": -1}, {"s": 2}, {"x": "2"}, [1]):
        table = numerators.replace_schema_metadata({decimals.DECIMALS: json.dumps(bad).encode()})
        with pytest.raises(ValueError, match="stored decimals: bad mark"):
            decimals.decoded(table)
    projected = decimals.marked(numerators.select(["s"]), {"x": 3})  # (a column not read: fine)
    assert decimals.decoded(projected).equals(numerators.select(["s"]))
