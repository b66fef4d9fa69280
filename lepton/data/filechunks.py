"""Large opaque files as content-defined byte chunks (FastCDC 2020), and the
object-store helpers trees need: which objects are missing, in bulk.

A file above CHUNK_THRESHOLD is cut into chunks of ~1 MiB whose boundaries
depend only on nearby bytes, so an edit in the middle of a large file
changes only the chunks around it: a new version stores just those. The
file's entry keeps its whole-file key; checkout writes the chunks in order,
each verified, and the whole file is verified against that key before it
appears. Memory stays bounded: one chunk per worker, a few read ahead.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

from pyfastcdc import FastCDC

from lepton import hashing
from lepton.errors import IntegrityError
from lepton.manifest import FileEntry
from lepton.store import localio, objects
from lepton.store.errors import is_missing_bucket, translate
from lepton.store.objects import ObjectStore

CHUNK_THRESHOLD = 16 * 2**20  # files strictly larger are stored as chunks
AVG_SIZE, MIN_SIZE, MAX_SIZE = 768 * 2**10, 256 * 2**10, 4 * 2**20  # FastCDC's mean: avg + min = 1 MiB
SCHEME = f"fastcdc2020/{AVG_SIZE}/{MIN_SIZE}/{MAX_SIZE}"  # chunk lists are cached per scheme
READ_AHEAD = 4  # chunks fetched ahead on checkout (each at most MAX_SIZE)
EXISTS_WORKERS = 16
LIST_MIN = 512  # from this many keys on S3, list the fan-out folders instead of one HEAD each


def is_large(size: int) -> bool:
    return size > CHUNK_THRESHOLD


def put_chunked(
    store: ObjectStore | None, stream: BinaryIO, known: Collection[str] = ()
) -> tuple[str, int, tuple[str, ...]]:
    """Cut ``stream`` into chunks and store each one that is not in ``known``
    (None: hash only). Returns (whole-file key, size, chunk keys)."""
    cdc = FastCDC(AVG_SIZE, min_size=MIN_SIZE, max_size=MAX_SIZE)  # not thread-safe: one per call
    whole = hashing.new_hasher()
    keys: list[str] = []
    size = 0
    stored: set[str] = set()
    for chunk in cdc.cut_stream(stream):
        data = chunk.data  # valid until the next chunk
        whole.update(data)
        key = hashing.hash_bytes(data)
        if store is not None and key not in known and key not in stored:
            store.put_bytes(bytes(data), pack=True)
            stored.add(key)
        keys.append(key)
        size += chunk.length
    return hashing.finish(whole), size, tuple(keys)


def get_chunked(store: ObjectStore, entry: FileEntry, dest: str | os.PathLike[str]) -> None:
    """Reassemble a chunked file at ``dest``: every chunk verified as it is
    read, the whole file verified before it is renamed into place."""
    assert entry.chunks is not None

    def fill(fd: int) -> None:
        whole, size = hashing.new_hasher(), 0
        with ThreadPoolExecutor(READ_AHEAD) as pool:
            for data in _ahead(pool, store.read_bytes, entry.chunks, READ_AHEAD):  # type: ignore[arg-type]
                whole.update(data)
                localio.write_all(fd, data)
                size += len(data)
        actual = hashing.finish(whole)
        if actual != entry.id or size != entry.size:
            raise IntegrityError(
                f"{entry.path}: its chunks reassemble to {actual} ({size} bytes), "
                f"not {entry.id} ({entry.size} bytes)"
            )

    localio.write_new(os.fspath(dest), fill)


def _ahead(
    pool: ThreadPoolExecutor, fn: Callable[[str], bytes], keys: Iterable[str], n: int
) -> Iterator[bytes]:
    """fn(key) for each key, in order, at most ``n`` running ahead."""
    pending: deque = deque()
    for key in keys:
        pending.append(pool.submit(fn, key))
        if len(pending) >= n:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def missing_objects(store: ObjectStore, keys: Collection[str]) -> set[str]:
    """The keys the store does not hold. An object found is reused the way a
    write reuses it (the store refreshes an old one, so gc keeps it: see
    lepton/gc.py). Local: a stat each. S3: a HEAD each in a thread pool for a
    few keys; for many, one listing per fan-out folder, then a refresh only
    for the old objects found."""
    keys = set(keys)
    reuse = getattr(store, "_reuse", store.exists)
    if not keys:
        return set()
    if store.location.is_local:
        return {k for k in keys if not reuse(k)}
    if len(keys) < LIST_MIN:
        with ThreadPoolExecutor(EXISTS_WORKERS) as pool:
            return {k for k, ok in zip(keys, pool.map(reuse, keys), strict=True) if not ok}
    by_folder: dict[str, set[str]] = {}
    for k in keys:
        folder = store.path_of(k).rpartition("/")[0]
        by_folder.setdefault(folder, set()).add(k)
    fresh_for = getattr(objects, "FRESHEN_AFTER", None)
    now = time.time()

    def listed(folder: str) -> tuple[set[str], set[str]]:
        """(absent, present but old enough to need a refresh) in one folder."""
        with translate(store.url):
            try:
                found = {i["name"].rpartition("/")[2]: i for i in store.fs.ls(folder, detail=True)}
            except FileNotFoundError as e:
                if is_missing_bucket(e):
                    raise
                found = {}
        absent, old = set(), set()
        for k in by_folder[folder]:
            info = found.get(store.path_of(k).rpartition("/")[2])
            if info is None:
                absent.add(k)
            elif fresh_for is not None and not _younger(info, now, fresh_for / 2):
                old.add(k)
        return absent, old

    with ThreadPoolExecutor(EXISTS_WORKERS) as pool:
        results = list(pool.map(listed, list(by_folder)))
        absent = set().union(*(a for a, _ in results))
        old = list(set().union(*(o for _, o in results)))
        absent |= {k for k, ok in zip(old, pool.map(reuse, old), strict=True) if not ok}
    return absent


def _younger(info: dict, now: float, seconds: float) -> bool:
    modified = info.get("LastModified")
    return modified is not None and now - modified.timestamp() < seconds
