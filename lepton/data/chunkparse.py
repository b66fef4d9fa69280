"""How a raw chunk of delimited text becomes a typed Arrow table: the
header's column names, the column types (inferred from the first chunk),
the chunk's memo key, and the parse itself (the compiled fast path for
plain numeric chunks, lepton.data.numcsv, else pyarrow's CSV reader). Any
parse error raises Fallback: the whole-file reader then names the line."""

from __future__ import annotations

import io
from collections.abc import Collection

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from lepton import hashing
from lepton.data import numcsv
from lepton.data.decimals import logical_schema
from lepton.data.linecuts import Fallback
from lepton.manifest import canonical_json

# The one null rule of every table reader (sources.py too): an empty field
# (quoted or not: pandas cannot tell them apart) is null, and no text is.
NULL_VALUES = [""]


def names(header: bytes, sep: str) -> list[str]:
    """The header line's column names; Fallback where they repeat (the
    whole-file reader names the column) or the line does not parse."""
    if not header.endswith(b"\n"):  # a header-only file without its newline: Arrow finds no line
        header += b"\n"
    try:
        got = pacsv.read_csv(io.BytesIO(header), parse_options=pacsv.ParseOptions(delimiter=sep)).column_names
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise Fallback(str(e)) from e
    if len(set(got)) != len(got):
        raise Fallback("a column name repeats")
    return got


def parse(
    names: list[str],
    raw: bytes | memoryview,
    sep: str,
    types: dict[str, pa.DataType] | None,
    decimals: Collection[str] = (),
) -> pa.Table:
    """The chunk's rows; ``names`` come from the file's header line, so the
    chunk is parsed in place (no copy with the header in front). Plain
    numeric chunks take the compiled fast path (lepton.data.numcsv), which
    gives the float columns named in ``decimals`` as stored decimals where
    they are (for a table to be stored: lepton.data.decimals)."""
    if types is not None and (table := numcsv.parse(raw, sep, types, decimals)) is not None:
        return table
    return parse_with_arrow(names, raw, sep, types)


def parse_typed(
    raw: bytes | memoryview, sep: str, types: dict[str, pa.DataType], decimals: Collection[str] = ()
) -> pa.Table:
    """The chunk's rows, cast to ``types`` (Fallback where they do not fit);
    ``decimals``: as for parse."""
    table = parse(list(types), raw, sep, types, decimals)
    schema = pa.schema([pa.field(n, t) for n, t in types.items()])
    if logical_schema(table.schema) != schema:
        try:
            table = table.cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise Fallback(str(e)) from e
    return table


def parse_with_arrow(
    names: list[str], raw: bytes | memoryview, sep: str, types: dict[str, pa.DataType] | None
) -> pa.Table:
    try:
        return pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(raw)),  # C++ reads of the bytes themselves: no GIL, no copy
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=NULL_VALUES,  # only an empty field is null: "NA", "null", "nan" text stays
                strings_can_be_null=True,
                timestamp_parsers=[],
            ),
            read_options=pacsv.ReadOptions(
                column_names=names, use_threads=False, block_size=max(len(raw), 1 << 16)
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise Fallback(str(e)) from e


def infer(names: list[str], raw: bytes | memoryview, sep: str) -> dict[str, pa.DataType]:
    """Column types from the first chunk, in the forms the whole-file reader
    would give (text as large_string, integers with gaps as doubles)."""
    table = parse(names, raw, sep, None)
    out: dict[str, pa.DataType] = {}
    for fld, col in zip(table.schema, table.columns, strict=True):
        t = fld.type
        if pa.types.is_integer(t):
            out[fld.name] = pa.float64() if col.null_count else pa.int64()
        elif pa.types.is_floating(t):
            out[fld.name] = _wide_integers(names, raw, sep, fld.name, col) or pa.float64()
        elif pa.types.is_boolean(t) and not col.null_count:
            out[fld.name] = pa.bool_()
        elif pa.types.is_null(t):
            out[fld.name] = pa.float64()
        else:
            out[fld.name] = pa.large_string()
    return out


def _wide_integers(
    names: list[str], raw: bytes | memoryview, sep: str, name: str, col: pa.ChunkedArray
) -> pa.DataType | None:
    """For a column Arrow read as doubles because a whole number in it is too
    wide for int64 (a double would round it): uint64 where every value is
    a whole number that fits and none is missing, else large_string (the
    text kept), as the whole-file reader gives them. None for any other
    double column."""
    values = col.drop_null()
    if not len(values) or pc.max(pc.abs(values)).as_py() < 2.0**63:
        return None
    if not pc.all(pc.equal(pc.floor(values), values)).as_py():
        return None
    text = parse_with_arrow(names, raw, sep, {name: pa.large_string()})[name].drop_null()
    if not pc.all(pc.match_substring_regex(text, r"^\s*[+-]?[0-9]+\s*$")).as_py():
        return None  # written with a point or an exponent: a float column
    if col.null_count:
        return pa.large_string()
    try:
        text.cast(pa.uint64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.large_string()
    return pa.uint64()


def type_of(name: str) -> pa.DataType:
    known = {"int64": pa.int64(), "uint64": pa.uint64(), "double": pa.float64(), "bool": pa.bool_()}
    return known.get(name, pa.large_string())


def memo_key(
    header: bytes,
    raw: bytes | memoryview,
    sep: str,
    types: dict[str, pa.DataType],
    key: str | None,
    lines: np.ndarray | None = None,
) -> str:
    """What a raw chunk is remembered by: its bytes' hash, or given the
    hashes of its lines (lepton.data.linehash), the hash of those: the
    chunk is then the same as one seen before when each of its lines is,
    as an edited chunk's unchanged lines are (lepton.data.lineedits), and
    ~0.3 ms a chunk of 1 MB less is hashed."""
    doc = {
        "kind": "delimited-chunk/1" if lines is None else "delimited-chunk-lines/1",
        "sep": sep,
        "header": hashing.hash_bytes(header, threads=False),
        "types": {n: str(t) for n, t in types.items()},
        "key": key,
        # on a worker: both cores are busy already
        "raw": hashing.hash_bytes(
            raw if lines is None else lines.astype("<u8", copy=False).view(np.uint8), threads=False
        ),
    }
    return hashing.hash_bytes(canonical_json(doc), threads=False)


def cut_rule(header: bytes, first: bytes, sep: str, key: str | None, labelled: bool) -> str | None:
    """How a file's chunks are cut (lepton.data.linecuts): by first field
    (``sep``) for labelsets (``labelled``), where a relabel must not move a
    boundary, and for tables keyed by an integer first column (``first``:
    the first data line), where no edit but a key's does (FastCDC moves one
    when an edit falls in the 64 bytes before it), at ~2 ns a line instead
    of FastCDC's ~0.3 s per GiB on the reading thread. Else FastCDC (None):
    text keys may share their first bytes, and first fields need not differ."""
    if labelled:
        return sep
    if key is None or names(header, sep)[:1] != [key]:
        return None
    value = first.split(sep.encode(), 1)[0].strip()
    return sep if value.lstrip(b"-").isdigit() and len(value) <= 18 else None
