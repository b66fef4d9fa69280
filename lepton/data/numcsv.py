"""A fast path for chunks of plain numeric delimited text (lepton/data/_numcsv.c),
both ways.

Parsing: every column int64 or float64, no quotes, no empty fields, no
exponents: the compiled parser takes ~1/4 of pyarrow's CPU time on such
tables (the benchmark's ids, features and labels). For anything else it
declines, and so does this module where the extension was not built: the
caller then parses with pyarrow, whose values it gives exactly
(tests/test_numcsv.py).

Formatting (checkout): a table of int64 columns and float columns of
decimals (lepton.data.decimals) is written as text by the compiled
formatter, each decimal with its column's digits after the point (the
least that hold them all: 6-digit source columns come out as they went
in), where Arrow's writer spends most of a checkout finding each double's
shortest text. Anything else is left to Arrow.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pyarrow as pa

from lepton.data.decimals import as_decimal, marked, scales_of
from lepton.data.keyhash import words_of

try:
    from lepton.data import _numcsv
except ImportError:  # not built (no C compiler where it was installed): pyarrow parses everything
    _numcsv = None

_KINDS = {pa.int64(): "i", pa.float64(): "f"}
_NOT_SEPARATORS = frozenset('"\r\n-+.0123456789eE')


def available() -> bool:
    return _numcsv is not None


def parse(
    raw: bytes | memoryview, sep: str, types: dict[str, pa.DataType], decimals: Collection[str] = ()
) -> pa.Table | None:
    """The rows of ``raw`` (no header) with ``types``, or None where pyarrow
    must parse them (another type, quotes, empty fields, exponents, ...).
    The float64 columns named in ``decimals`` come as stored decimals where
    they are (lepton.data.decimals: int64 numerators, the table marked),
    for a table about to be stored: read_parquet gives the floats back."""
    if _numcsv is None or len(sep) != 1 or ord(sep) > 127 or sep in _NOT_SEPARATORS:
        return None
    kinds = "".join(
        "d" if t == pa.float64() and n in decimals else _KINDS.get(t, "?") for n, t in types.items()
    )
    if not kinds or "?" in kinds:
        return None
    got = _numcsv.parse(raw, sep, kinds)
    if got is None:
        return None
    rows, columns, scales = got
    arrays = [
        pa.Array.from_buffers(pa.int64() if s >= 0 else t, rows, [None, pa.py_buffer(b)])
        for t, b, s in zip(types.values(), columns, scales, strict=True)
    ]
    stored = {n: s for n, s in zip(types, scales, strict=True) if s >= 0}
    return marked(pa.Table.from_arrays(arrays, names=list(types)), stored)


def format_rows(table: pa.Table, sep: str) -> bytes | None:
    """The rows of ``table`` as delimited text (no header), a line each; None
    where the compiled formatter cannot write them (see the module's text).
    ``table`` may hold stored decimals (lepton.data.decimals), written as
    the floats they stand for."""
    if _numcsv is None or len(sep) != 1 or ord(sep) > 127 or not table.num_columns:
        return None
    stored = scales_of(table.schema)
    columns, scales = [], []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if column.null_count:
            return None
        if name in stored:
            columns.append(words_of(column, np.int64))
            scales.append(stored[name])
        elif column.type == pa.int64():
            columns.append(words_of(column, np.int64))
            scales.append(0)
        elif column.type == pa.float64():
            got = as_decimal(column) if len(column) else (pa.array([], pa.int64()), 0)
            if got is None:
                return None
            columns.append(words_of(got[0], np.int64))
            scales.append(got[1])
        else:
            return None
    return _numcsv.format(columns, tuple(scales), sep, table.num_rows)
