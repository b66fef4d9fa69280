"""Duplicate keys across a new table version, without re-reading what the
previous version already proved unique (the ingest's key sidecars: sorted
64-bit hashes of each chunk's keys). ``done`` items carry ``chunk`` (its
``keys`` sidecar id), ``hashes`` (that chunk's sorted key hashes) and
``span`` (its integer keys' range, lepton.data.keyspan, or None).

Integer ids usually grow through a file, so the new chunks' key ranges do
not overlap: then no two of them can share a key, and each chunk's own
sorted hashes show its repeats side by side. That proof costs a pass over
the hashes; sorting all of a 1 GiB table's keys costs ~0.8 s of CPU."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from lepton.manifest import Chunk

CORES = 2  # value ranges sorted, and groups probed, at once (numpy lets go of the GIL)
FILTER_BITS = 24  # pre-filter of the new keys' top bits: 16 MB of flags
PROBE_GROUP = 64  # reused chunks probed together (~5 MB of key hashes)


def has_duplicates(chunks: list[Chunk], done: list[Any], known: set[str]) -> bool:
    """The previous version's chunks held disjoint sets of unique keys, so a
    chunk whose keys are exactly one of them (its key sidecar is in
    ``known``: reused, or patched as in a relabel) cannot repeat a key
    unless another chunk has that same sidecar; only the other chunks' keys
    need checking: among themselves and against those."""
    if len({c.ident for c in chunks}) != len(chunks):
        return True  # the same block of rows twice
    old = [c.keys for c in chunks if c.keys in known]
    if len(set(old)) != len(old):
        return True  # one previous chunk's keys twice
    fresh_done = [d for d in done if d.hashes is not None and d.chunk.keys not in known]
    reused = [d.hashes for d in done if d.hashes is not None and d.chunk.keys in known]
    if not reused and unique_by_spans(fresh_done):
        return False
    ranges = sorted_unique([d.hashes for d in fresh_done])
    if ranges is None:
        return True
    if not reused or not any(len(r) for r in ranges):
        return False
    fresh = np.concatenate(ranges)
    # Each reused key against the (usually few) new ones: a 2**24-bit filter
    # on the top bits first, so that the exact search sees ~1 key in 30;
    # groups of chunks on both cores (numpy lets go of the GIL on whole arrays).
    seen = np.zeros(1 << FILTER_BITS, dtype=bool)
    seen[fresh >> np.uint64(64 - FILTER_BITS)] = True
    groups = [reused[i : i + PROBE_GROUP] for i in range(0, len(reused), PROBE_GROUP)]
    with ThreadPoolExecutor(CORES) as pool:
        return any(pool.map(lambda g: _any_in(np.concatenate(g), seen, fresh), groups))


def unique_by_spans(done: list[Any]) -> bool:
    """Whether these chunks' keys are proved unique by their spans alone:
    known for every chunk, no two overlapping, and no repeat next to
    itself in any chunk's sorted hashes. False proves nothing."""
    spans = [d.span for d in done]
    if any(s is None for s in spans):
        return False
    ordered = sorted(spans)
    if any(a[1] >= b[0] for a, b in itertools.pairwise(ordered)):
        return False
    return not any(len(d.hashes) > 1 and bool((d.hashes[1:] == d.hashes[:-1]).any()) for d in done)


def sorted_unique(parts: list[np.ndarray]) -> list[np.ndarray] | None:
    """The values of ``parts`` (each sorted) sorted, as consecutive value
    ranges (one per core: numpy sorts without the GIL), or None if a value
    repeats."""
    if not parts:
        return []
    ranges = CORES if sum(len(p) for p in parts) > 1 << 16 else 1
    step = (1 << 64) // ranges
    edges = [np.uint64(k * step) for k in range(1, ranges)]

    def one(k: int) -> np.ndarray | None:
        lo, hi = (edges[k - 1] if k else None), (edges[k] if k < len(edges) else None)
        got = np.sort(np.concatenate([_between(p, lo, hi) for p in parts]))
        return None if len(got) > 1 and (got[1:] == got[:-1]).any() else got

    with ThreadPoolExecutor(ranges) as pool:
        sorted_ranges = list(pool.map(one, range(ranges)))
    if any(r is None for r in sorted_ranges):
        return None
    return sorted_ranges  # type: ignore[return-value]


def _between(values: np.ndarray, lo: np.uint64 | None, hi: np.uint64 | None) -> np.ndarray:
    """The part of sorted ``values`` in [lo, hi) (None: no bound)."""
    start = int(np.searchsorted(values, lo)) if lo is not None else 0
    end = int(np.searchsorted(values, hi)) if hi is not None else len(values)
    return values[start:end]


def _any_in(hashes: np.ndarray, seen: np.ndarray, fresh: np.ndarray) -> bool:
    """Whether any of ``hashes`` is in ``fresh`` (sorted), ``seen`` its filter."""
    maybe = hashes[seen[hashes >> np.uint64(64 - FILTER_BITS)]]
    if not len(maybe):
        return False
    at = np.clip(np.searchsorted(fresh, maybe), 0, len(fresh) - 1)
    return bool((fresh[at] == maybe).any())
