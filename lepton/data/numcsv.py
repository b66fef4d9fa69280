"""A fast path for chunks of plain numeric delimited text (lepton/data/_numcsv.c).

Every column int64 or float64, no quotes, no empty fields, no exponents:
the compiled parser takes ~1/4 of pyarrow's CPU time on such tables (the
benchmark's ids, features and labels). For anything else it declines, and
so does this module where the extension was not built: the caller then
parses with pyarrow, whose values it gives exactly (tests/test_numcsv.py).
"""

from __future__ import annotations

import pyarrow as pa

try:
    from lepton.data import _numcsv
except ImportError:  # not built (no C compiler where it was installed): pyarrow parses everything
    _numcsv = None

_KINDS = {pa.int64(): "i", pa.float64(): "f"}
_NOT_SEPARATORS = frozenset('"\r\n-+.0123456789eE')


def available() -> bool:
    return _numcsv is not None


def parse(raw: bytes | memoryview, sep: str, types: dict[str, pa.DataType]) -> pa.Table | None:
    """The rows of ``raw`` (no header) with ``types``, or None where pyarrow
    must parse them (another type, quotes, empty fields, exponents, ...)."""
    if _numcsv is None or len(sep) != 1 or ord(sep) > 127 or sep in _NOT_SEPARATORS:
        return None
    kinds = "".join(_KINDS.get(t, "?") for t in types.values())
    if not kinds or "?" in kinds:
        return None
    got = _numcsv.parse(raw, sep, kinds)
    if got is None:
        return None
    rows, columns = got
    arrays = [
        pa.Array.from_buffers(t, rows, [None, pa.py_buffer(b)])
        for t, b in zip(types.values(), columns, strict=True)
    ]
    return pa.Table.from_arrays(arrays, names=list(types))
