"""A fast path for chunks of plain numeric delimited text (lepton/data/_numcsv.c).

Every column int64 or float64, no quotes, no empty fields, no exponents:
the compiled parser takes ~1/4 of pyarrow's CPU time on such tables (the
benchmark's ids, features and labels). For anything else it declines, and
so does this module where the extension was not built: the caller then
parses with pyarrow, whose values it gives exactly (tests/test_numcsv.py).
"""

from __future__ import annotations

from collections.abc import Collection

import pyarrow as pa

from lepton.data.decimals import marked

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
