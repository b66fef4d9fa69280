"""Integer key ranges of a table version's chunks, kept in its resume record.

Appended rows usually carry new, larger ids. The duplicate check must
compare every new key with every key the table already had, which means
reading the key sidecar of every chunk taken from the previous version
(about a thousand small objects for 1 GiB). A chunk whose key range does
not meet the new chunks' cannot share a key with them, and its sidecar is
not read at all: appending rows with larger ids reads none.

A span is (lowest, highest) of a chunk's key values, inclusive; only for
64-bit integer keys. The record keeps one per chunk, in manifest order
(about 20 bytes of JSON each), or none when one is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from lepton.data.keyhash import int64_values
from lepton.manifest import Chunk

Span = tuple[int, int]


def of_column(values: pa.ChunkedArray | pa.Array) -> Span | None:
    """The span of a key column without nulls (None unless 64-bit integers, or empty)."""
    data = int64_values(values)
    if data is None or not len(data):
        return None
    return int(data.min()), int(data.max())


def union(spans: Iterable[Span | None]) -> Span | None:
    """The span covering all of ``spans`` (None if one is unknown, or there are none)."""
    got = list(spans)
    if not got or any(s is None for s in got):
        return None
    return min(s[0] for s in got), max(s[1] for s in got)  # type: ignore[index]


def disjoint(a: Span, b: Span) -> bool:
    return a[1] < b[0] or b[1] < a[0]


def from_record(record: Any, key: str | None, chunks: Sequence[Chunk]) -> dict[str, Span] | None:
    """The spans a resume record keeps for ``key`` and these ``chunks`` (the
    version's, in order), by chunk identity; None unless sound."""
    if not (isinstance(record, dict) and key and record.get("key") == key):
        return None
    spans = record.get("spans")
    if not isinstance(spans, list) or len(spans) != len(chunks):
        return None
    out: dict[str, Span] = {}
    for chunk, span in zip(chunks, spans, strict=True):
        if not (
            isinstance(span, list)
            and len(span) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in span)
            and span[0] <= span[1]
        ):
            return None
        out[chunk.ident] = (span[0], span[1])
    return out
