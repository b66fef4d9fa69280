"""Duplicate keys across a new table version, without re-reading what the
previous version already proved unique (the ingest's key sidecars: sorted
64-bit hashes of each chunk's keys). ``done`` items carry ``chunk`` (its
``keys`` sidecar id) and ``hashes`` (that chunk's sorted key hashes)."""

from __future__ import annotations

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
    new = [d.hashes for d in done if d.hashes is not None and d.chunk.keys not in known]
    ranges = sorted_unique(new)
    if ranges is None:
        return True
    reused = [d.hashes for d in done if d.hashes is not None and d.chunk.keys in known]
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
