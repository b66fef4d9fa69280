"""The compiled fast path for plain numeric chunks (lepton.data.numcsv) gives
exactly pyarrow's values, bit for bit, or declines and leaves the chunk to
pyarrow: never a different value, never a value where pyarrow gives an error."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lepton.data import decimals, numcsv
from lepton.data.chunkparse import Fallback, parse_with_arrow
from lepton.data.parquet import parquet_buffer, read_parquet

PROPS = settings(max_examples=300, deadline=None)
SEPS = [",", "\t", ";", "|", " "]


def _plain_int() -> st.SearchStrategy[str]:
    return st.integers(-(10**18) + 1, 10**18 - 1).map(str)


@st.composite
def _plain_float(draw: st.DrawFn) -> str:
    """A decimal the fast path takes: at most 15 significant digits (so the
    mantissa is below 2**53), no exponent."""
    whole = draw(st.integers(1, 9))
    frac = draw(st.integers(0, 15 - whole))
    first = draw(st.sampled_from("123456789")) if whole > 1 else ""
    n = whole + frac - len(first)
    s = first + draw(st.text("0123456789", min_size=n, max_size=n))
    text = s[:whole] + ("." + s[whole:] if frac else "")
    return ("-" if draw(st.booleans()) else "") + text


# Fields the fast path may decline; where it takes one it must agree.
ODD_INTS = [
    "007", "0", "-0", "+5", "", " 5", "5 ", "1e3", "1.0", "9223372036854775807", "-9223372036854775808",
    "123456789012345678", "1234567890123456789", "-", "abc", '"5"', "nan", "0x10", "1_000",
]  # fmt: skip
ODD_FLOATS = [
    "1e5", "1E-3", "1.", ".5", "-.5", "-0", "-0.0", "0.0", "nan", "NaN", "inf", "-inf", "", " 1.5", "1.5 ",
    '"1.5"', "1,5", "0x1p3", "9007199254740992", "9007199254740993", "900719925474099.3", "0.1", "0.3",
    "1.7976931348623157", "0.0000000000000000000001", "0.00000000000000000000001", "1234567890123456789",
    "12345678901234567890", "0.12345678901234567", "+1.5", "1..5", "1.5.", "--1", "00.5", "4.35", "2.675",
]  # fmt: skip


def _odd_float() -> st.SearchStrategy[str]:
    exact_edge = st.tuples(st.integers(0, 2**60), st.integers(0, 25)).map(
        lambda mk: f"{mk[0] // 10 ** mk[1]}.{str(mk[0] % 10 ** mk[1]).zfill(mk[1])}" if mk[1] else str(mk[0])
    )
    return st.one_of(st.sampled_from(ODD_FLOATS), exact_edge, _plain_float())


def _types(kinds: str) -> dict[str, pa.DataType]:
    return {f"c{i}": pa.int64() if k == "i" else pa.float64() for i, k in enumerate(kinds)}


def _render(rows: list[list[str]], sep: str, eol: str, final: bool) -> bytes:
    text = eol.join(sep.join(r) for r in rows) + (eol if final else "")
    return text.encode()


def _bits(table: pa.Table) -> list[tuple[str, str, int, bytes]]:
    """Each column's name, type, null count and values' bytes (so -0.0 differs from 0.0)."""
    out = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        values = np.ascontiguousarray(col.to_numpy(zero_copy_only=False))
        out.append((name, str(col.type), col.null_count, values.tobytes()))
    return out


def _agrees(raw: bytes, sep: str, types: dict[str, pa.DataType]) -> pa.Table | None:
    """The fast path's table, checked against pyarrow's wherever it gives
    one; and the same values, bit for bit, once its float columns parsed as
    stored decimals are divided back, and once stored and read."""
    fast = numcsv.parse(raw, sep, types)
    floats = [n for n, t in types.items() if t == pa.float64()]
    stored = numcsv.parse(raw, sep, types, floats)
    assert (stored is None) == (fast is None), raw
    if fast is not None:
        try:
            slow = parse_with_arrow(list(types), raw, sep, types)
        except Fallback as e:
            pytest.fail(f"fast path took {raw!r}, which pyarrow rejects: {e}")
        assert _bits(fast) == _bits(slow), raw
        scales = decimals.scales_of(stored.schema)
        assert all(stored.schema.field(n).type == pa.int64() for n in scales), raw
        assert all(0 <= s <= decimals.MAX_SCALE for s in scales.values()), raw
        assert _bits(decimals.decoded(stored)) == _bits(fast), raw
        assert _bits(read_parquet(parquet_buffer(stored))) == _bits(fast), raw
    return fast


def test_the_compiled_parser_is_built() -> None:
    # setup.py builds it as an optional extension: a machine without a C
    # compiler still installs, only slower. The test machines have one.
    assert numcsv.available()


@st.composite
def _plain_tables(draw: st.DrawFn) -> tuple[bytes, str, str]:
    kinds = draw(st.text("if", min_size=1, max_size=6))
    fields = [_plain_int() if k == "i" else _plain_float() for k in kinds]
    rows = draw(st.lists(st.tuples(*fields), min_size=1, max_size=30))
    sep = draw(st.sampled_from(SEPS))
    raw = _render([list(r) for r in rows], sep, draw(st.sampled_from(["\n", "\r\n"])), draw(st.booleans()))
    return raw, sep, kinds


@PROPS
@given(_plain_tables())
def test_plain_numbers_take_the_fast_path_and_parse_as_pyarrow_does(case: tuple[bytes, str, str]) -> None:
    raw, sep, kinds = case
    table = _agrees(raw, sep, _types(kinds))
    assert table is not None, f"declined plain input {raw!r}"
    assert table.num_rows == raw.count(b"\n") + (not raw.endswith(b"\n"))


@st.composite
def _odd_tables(draw: st.DrawFn) -> tuple[bytes, str, str]:
    kinds = draw(st.text("if", min_size=1, max_size=4))
    fields = [st.sampled_from(ODD_INTS) | _plain_int() if k == "i" else _odd_float() for k in kinds]
    rows = [list(r) for r in draw(st.lists(st.tuples(*fields), min_size=1, max_size=8))]
    if draw(st.booleans()):  # a row with a field too many or too few, or a blank line
        at = draw(st.integers(0, len(rows) - 1))
        rows[at] = draw(st.sampled_from([rows[at] + ["1"], rows[at][:-1], []]))
    sep = draw(st.sampled_from(SEPS))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return _render(rows, sep, eol, draw(st.booleans())), sep, kinds


@PROPS
@given(_odd_tables())
def test_odd_input_is_declined_or_parsed_as_pyarrow_does(case: tuple[bytes, str, str]) -> None:
    raw, sep, kinds = case
    _agrees(raw, sep, _types(kinds))


@pytest.mark.parametrize("field", ODD_FLOATS)
def test_each_odd_float_alone(field: str) -> None:
    _agrees(f"1,{field}\n2,0.5\n".encode(), ",", _types("if"))


@pytest.mark.parametrize("field", ODD_INTS)
def test_each_odd_int_alone(field: str) -> None:
    _agrees(f"{field},0.5\n2,0.5\n".encode(), ",", _types("if"))


@pytest.mark.parametrize(
    "raw",
    [b"1,0.5\n\n2,0.5\n", b"1,0.5\n2\n", b"1,0.5,3\n", b'1,"0.5"\n', b"1,0.5\r2,0.5\n", b"1,1e5\n", b"1,\n"],
    ids=["blank line", "short row", "long row", "quoted", "bare CR", "exponent", "empty field"],
)
def test_what_pyarrow_reads_otherwise_is_left_to_it(raw: bytes) -> None:
    assert numcsv.parse(raw, ",", _types("if")) is None


def test_only_int64_and_float64_columns_and_plain_separators() -> None:
    assert numcsv.parse(b"1,x\n", ",", {"a": pa.int64(), "b": pa.large_string()}) is None
    assert numcsv.parse(b"1.5\n", ".", {"a": pa.float64()}) is None
    assert numcsv.parse(b"1-5\n", "-", _types("ii")) is None
    assert numcsv.parse(b"1,5\n", ",", {}) is None


def test_exact_decimals_round_as_pyarrow_does() -> None:
    """Mantissas up to 2**53 over powers of ten up to 1e22: one correctly
    rounded division each, as pyarrow's parser rounds."""
    rng = np.random.default_rng(7)
    mantissas = np.concatenate([rng.integers(0, 2**53, 4000, dtype=np.int64), [0, 1, 2**53 - 1, 2**53]])
    ks = rng.integers(0, 23, len(mantissas))
    pairs = zip(mantissas.tolist(), ks.tolist(), strict=True)
    lines = [f"{m // 10**k}.{str(m % 10**k).zfill(k)}" if k else str(m) for m, k in pairs]
    lines = [x for x in lines if sum(c.isdigit() for c in x) <= 19]
    table = _agrees(("\n".join(lines) + "\n").encode(), ",", _types("f"))
    assert table is not None and table.num_rows == len(lines)


def _stored(text: str) -> tuple[dict[str, int], pa.Table]:
    types = {"a": pa.int64(), "b": pa.float64(), "c": pa.float64()}
    stored = numcsv.parse(text.encode(), ",", types, ["b", "c"])
    assert stored is not None
    return decimals.scales_of(stored.schema), stored


def test_decimals_come_as_numerators_at_the_least_scale_that_holds_every_value() -> None:
    scales, stored = _stored("1,0.850624,2.50\n2,-0.000001,3.25\n3,12.5,-7\n")
    assert scales == {"b": 6, "c": 2}  # 2.50: two digits, one needed; 3.25: two
    assert stored.column("b").to_pylist() == [850624, -1, 12500000]
    assert stored.column("c").to_pylist() == [250, 325, -700]
    scales, stored = _stored("1,0.10,1.000\n2,0.20,2.000\n")
    assert scales == {"b": 1, "c": 0} and stored.column("b").to_pylist() == [1, 2]


def test_a_column_no_scale_holds_comes_as_floats() -> None:
    # -0 (a numerator has no sign); 2**53 - 1 with a value needing one more digit
    for text in ("1,-0.0,1\n2,1.5,2\n", "1,9007199254740991,1\n2,0.5,2\n"):
        scales, stored = _stored(text)
        assert "b" not in scales and stored.column("b").type == pa.float64(), text
        _agrees(text.encode(), ",", {"a": pa.int64(), "b": pa.float64(), "c": pa.float64()})
    scales, stored = _stored("1,0.0000000000000001,1\n2,0.5,2\n")  # 16 digits after the point
    assert "b" not in scales and stored.column("b").to_pylist() == [1e-16, 0.5]


@PROPS
@given(_plain_tables())
def test_numbers_formatted_parse_back_bit_for_bit(case: tuple[bytes, str, str]) -> None:
    """format_rows (checkout's writer) of a parsed table is text that parses
    back to the same values, and so is its text of the table parsed as
    stored decimals (the same text but where a double has two numerators
    at the scale, past 15 significant digits: either reads back as it)."""
    raw, sep, kinds = case
    types = _types(kinds)
    table = numcsv.parse(raw, sep, types)
    assert table is not None
    text = numcsv.format_rows(table, sep)
    if text is None:  # only for a column no scale holds (a -0): Arrow writes those
        assert any(decimals.as_decimal(c) is None for c in table.columns if c.type == pa.float64()), raw
        return
    again = numcsv.parse(text, sep, types)
    assert again is not None and _bits(again) == _bits(table), (raw, text)
    stored = numcsv.parse(raw, sep, types, [n for n, t in types.items() if t == pa.float64()])
    text_of_stored = numcsv.format_rows(stored, sep)
    assert text_of_stored is not None
    again = numcsv.parse(text_of_stored, sep, types)
    assert again is not None and _bits(again) == _bits(table), (raw, text_of_stored)


def test_formatting_declines_what_is_not_plain_numbers() -> None:
    assert numcsv.format_rows(pa.table({"a": pa.array([1, None], pa.int64())}), ",") is None
    assert numcsv.format_rows(pa.table({"a": pa.array([0.1 + 0.2])}), ",") is None
    assert numcsv.format_rows(pa.table({"a": pa.array(["x"])}), ",") is None
    got = numcsv.format_rows(pa.table({"a": pa.array([-5, 0]), "b": pa.array([-0.000001, 12.5])}), "\t")
    assert got == b"-5\t-0.000001\n0\t12.500000\n"
