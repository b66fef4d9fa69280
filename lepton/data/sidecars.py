"""Key sidecars: each stored chunk's sorted 64-bit key hashes (one object
per distinct set of keys), read back when a new version's keys must be
checked against a chunk it reuses (lepton.data.dupkeys)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from lepton.data import keyspan
from lepton.data.linecuts import Fallback
from lepton.manifest import Chunk
from lepton.store.objects import ObjectStore


def load_keys(store: ObjectStore, chunk: Chunk) -> np.ndarray:
    """A chunk's key sidecar: the sorted 64-bit hashes of its keys."""
    if chunk.keys is None:
        raise Fallback("chunk without key hashes")
    return np.frombuffer(store.read_bytes(chunk.keys), dtype=np.uint64)


def read_deferred(
    store: ObjectStore,
    done: list[Any],
    known: set[str],
    spans: dict[str, keyspan.Span] | None,
    reads: ThreadPoolExecutor,
) -> list[keyspan.Span] | None:
    """The key sidecars of reused chunks whose key range (``spans``: the
    previous version's, lepton.data.keyspan) meets the new chunks', read
    into ``done`` (the ingest's items: ``chunk``, ``hashes``, ``span``);
    returns this version's spans (None where one is unknown)."""
    spans = spans or {}
    new = [d for d in done if d.chunk.keys not in known]  # parsed, with keys no earlier chunk had
    new_span = keyspan.union(d.span for d in new)
    deferred = [d for d in done if d.hashes is None and d.chunk.keys]
    if new and deferred:
        need = [d for d in deferred if new_span is None or _meets(_span(d, spans), new_span)]
        for d, hashes in zip(need, reads.map(lambda d: load_keys(store, d.chunk), need), strict=True):
            d.hashes = hashes
    kept = [_span(d, spans) for d in done]
    return None if any(s is None for s in kept) else kept  # type: ignore[return-value]


def _span(d: Any, spans: dict[str, keyspan.Span]) -> keyspan.Span | None:
    """A chunk's key range: its own where it was parsed (an edited chunk,
    which has a new identity), else the previous version's record."""
    return d.span if d.span is not None else spans.get(d.chunk.ident)


def _meets(span: keyspan.Span | None, new_span: keyspan.Span) -> bool:
    return span is None or not keyspan.disjoint(span, new_span)
