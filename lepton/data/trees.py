"""File trees: snapshot a folder (every file an object, large files as
content-defined chunks), check one out (every path checked before anything
is written, every object verified), and tell what changed since a version.

Local folders go through the state cache: a file whose stat is as recorded
is not read again, and its objects are not sent again when the parent
version (or, failing that, the store) already has them. Changed files are
read, hashed and stored in a thread pool (blake3 and the chunker release the
GIL); memory stays bounded: a small file whole, a large one chunk by chunk.
A large tree's entries go to a listing object, a delta over the parent's
when few changed (lepton/data/listing.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pydantic import BaseModel

from lepton import hashing
from lepton.data import filechunks as fc
from lepton.data import listing
from lepton.data.statecache import (
    LocalFile,
    StateCache,
    hash_local,
    hash_path,
    key_of,
    open_to_read,
    scan_local,
    stat_of,
)
from lepton.errors import InvalidInput
from lepton.manifest import FileEntry, TreeDataset
from lepton.store.fs import Location
from lepton.store.objects import ObjectStore
from lepton.store.staging import Staging

if TYPE_CHECKING:
    from lepton.data.sources import SourceFile
    from lepton.registry.entities import ArtifactVersion

Progress = Callable[[int], None]
TREE_WORKERS = 8  # threads reading, hashing and storing files (I/O waits overlap)
REMOTE_BLOCK = 4 * 2**20  # read size from s3:// sources (s3fs would read ahead 50 MiB per file)


class Status(BaseModel):
    """What changed in a source since the latest version of a dataset."""

    name: str
    source: str
    layout: str  # "tree" or "table"
    base: str | None  # the version compared against (None: the name has no version yet)
    changed: bool | None  # None: unknown (the version records no source hash)
    added: list[str] = []
    removed: list[str] = []
    modified: list[str] = []
    unchanged: int = 0
    read: int = 0  # files whose content had to be read (the rest came from the cache)


# ---- snapshot --------------------------------------------------------------------
def snapshot_tree(
    store: ObjectStore,
    name: str,
    source: Location,
    root: str,
    label: str,
    *,
    progress: Progress | None = None,
    state: StateCache | None = None,
    parent: TreeDataset | None = None,
) -> TreeDataset:
    known = frozenset(parent.objects()) if parent else frozenset()
    # A local store's new small files are staged and flushed together (one
    # syncfs, then a rename each) once every file is read, not one fsync each;
    # nothing of a snapshot that fails is published.
    staging = Staging(store, drop_behind=False) if store.location.is_local else None
    try:
        if source.is_local:
            entries = _snapshot_local(store, staging, root, label, known, progress, state, parent)
        else:
            from lepton.data.sources import list_tree  # lazy: tables' module: pandas

            put = partial(_put_remote, store, staging, source, known, progress)
            with ThreadPoolExecutor(TREE_WORKERS) as pool:
                entries = list(pool.map(put, list_tree(source, root, label)))
        if staging is not None:
            staging.publish()
    finally:
        if staging is not None:
            staging.discard()
    files = tuple(entries)  # its listing object (a large tree) is stored last, after every file
    chain = listing.write(store, files, parent)
    return TreeDataset(name=name, files=files, size=sum(e.size for e in files), listing=chain)


def _snapshot_local(
    store: ObjectStore,
    staging: Staging | None,
    root: str,
    label: str,
    known: frozenset[str],
    progress: Progress | None,
    state: StateCache | None,
    parent: TreeDataset | None,
) -> list[FileEntry]:
    checked = time.time_ns()  # before any stat: entries modified around now stay untrusted
    files = scan_local(root, label)
    rows = state.rows_under(os.path.realpath(root)) if state is not None else {}
    cached = _cached_entries(_cached_keys(rows, files), files, state, parent)
    # Objects of unchanged files are sent again only if the store lacks them.
    unsure = {k for e in cached.values() for k in _objects(e)} - known
    absent = fc.missing_objects(store, unsure) if unsure else set()
    for f in files:
        e = cached.get(f.rel)
        if e is not None and absent.intersection(_objects(e)):
            del cached[f.rel]
    todo = [f for f in files if f.rel not in cached]
    if progress:
        progress(sum(e.size for e in cached.values()))
    put = partial(_put_local, store, staging, known, label, progress)
    with ThreadPoolExecutor(TREE_WORKERS) as pool:
        fresh = list(pool.map(put, todo))
    if state is not None:
        state.record(((f, e.id) for f, e in zip(todo, fresh, strict=True)), checked)
        state.record_chunks(fc.SCHEME, ((e.id, e.chunks) for e in fresh if e.chunks is not None))
        seen = {f.path for f in files}
        state.forget(p for p in rows if p not in seen)
    by_rel = cached | {e.path: e for e in fresh}
    return [by_rel[f.rel] for f in files]


def _cached_keys(rows: dict[str, tuple], files: list[LocalFile]) -> dict[str, str]:
    """rel -> key of the files the cache's rows vouch for."""
    fresh = StateCache.fresh
    out = {}
    for f in files:
        key = fresh(rows.get(f.path), f)
        if key is not None:
            out[f.rel] = key
    return out


def _cached_entries(
    keys: dict[str, str], files: list[LocalFile], state: StateCache | None, parent: TreeDataset | None
) -> dict[str, FileEntry]:
    """Entries of the files with a cached key: the parent's own entry when the
    content is the same (a large file also needs its cached chunk list)."""
    before = {e.path: e for e in parent.files} if parent and keys else {}
    out = {}
    for f in files:
        key = keys.get(f.rel)
        if key is None:
            continue
        e = before.get(f.rel)
        if e is None or e.id != key:
            chunks = state.chunks(key, fc.SCHEME) if state and fc.is_large(f.size) else None
            if fc.is_large(f.size) and chunks is None:
                continue
            e = FileEntry(path=f.rel, size=f.size, id=key, chunks=chunks)
        out[f.rel] = e
    return out


def _objects(e: FileEntry) -> tuple[str, ...]:
    return e.chunks if e.chunks is not None else (e.id,)


def _put_local(
    store: ObjectStore,
    staging: Staging | None,
    known: Collection[str],
    label: str,
    progress: Progress | None,
    f: LocalFile,
) -> FileEntry:
    with open_to_read(f.path, f"{label}: {f.rel}") as stream:
        entry = _put(store, staging, known, f.rel, f.size, stream)
        if stat_of(os.fstat(stream.fileno())) != f.stat:
            raise InvalidInput(f"{label}: {f.rel} changed while it was being stored; snapshot again")
    if progress:
        progress(entry.size)
    return entry


def _put_remote(
    store: ObjectStore,
    staging: Staging | None,
    source: Location,
    known: Collection[str],
    progress: Progress | None,
    f: SourceFile,
) -> FileEntry:
    with source.fs.open(f.path, "rb", block_size=REMOTE_BLOCK) as stream:
        entry = _put(store, staging, known, f.rel, f.size, stream)
    if progress:
        progress(entry.size)
    return entry


def _put(
    store: ObjectStore | None,
    staging: Staging | None,
    known: Collection[str],
    rel: str,
    size: int,
    stream: BinaryIO,
) -> FileEntry:
    """Hash (and, with a store, store) one file: whole if small (staged where
    ``staging`` is given and the store lacks it), else in chunks."""
    if fc.is_large(size):
        key, n, chunks = fc.put_chunked(store, stream, known)
        return FileEntry(path=rel, size=n, id=key, chunks=chunks)
    # Read as much as was listed (+1 to see growth): a buffer of the threshold's size
    # for every small file is an mmap and munmap each, and every munmap a TLB
    # shoot-down across the workers' CPUs.
    data = stream.read(size + 1)
    if len(data) > size:  # grew since it was listed: read on to the threshold
        data += stream.read(fc.CHUNK_THRESHOLD + 1 - len(data))
    if fc.is_large(len(data)):  # grew past the threshold since it was listed
        raise InvalidInput(f"{rel}: the file changed while it was being stored; snapshot again")
    key = hashing.hash_bytes(data)
    if store is not None and key not in known:
        if staging is None:
            store.put_bytes(data, pack=True)
        elif not store._reuse(key):  # noqa: SLF001 - as put_bytes: an old object found is refreshed
            staging.put(data, key=key, pack=True, absent=True)
    return FileEntry(path=rel, size=len(data), id=key)


# ---- status ----------------------------------------------------------------------
def tree_status(
    name: str,
    base: tuple[str, TreeDataset] | None,
    source: Location,
    root: str,
    label: str,
    state: StateCache | None,
) -> Status:
    """Files added, removed and modified in ``root`` since the version ``base``
    (ref, manifest); only files whose stat changed are read."""
    checked = time.time_ns()
    if source.is_local:
        files = scan_local(root, label)
        rows = state.rows_under(os.path.realpath(root)) if state is not None else {}
        current = _cached_keys(rows, files)
        todo = [f for f in files if f.rel not in current]
        with ThreadPoolExecutor(TREE_WORKERS) as pool:
            keys = list(pool.map(hash_local, todo))
        if state is not None:
            state.record(((f, k) for f, k in zip(todo, keys, strict=True) if k is not None), checked)
        for f, k in zip(todo, keys, strict=True):
            current[f.rel] = k or hash_path(f.path)
        read = len(todo)
    else:
        from lepton.data.sources import list_tree  # lazy: tables' module: pandas

        listed = list_tree(source, root, label)
        with ThreadPoolExecutor(TREE_WORKERS) as pool:
            keys = list(pool.map(lambda f: hash_stream(source, f.path), listed))
        current = {f.rel: k for f, k in zip(listed, keys, strict=True)}
        read = len(listed)
    before = {e.path: e.id for e in base[1].files} if base else {}
    added = sorted(p for p in current if p not in before)
    removed = sorted(p for p in before if p not in current)
    modified = sorted(p for p in current if p in before and before[p] != current[p])
    return Status(
        name=name,
        source=label,
        layout="tree",
        base=base[0] if base else None,
        changed=bool(added or removed or modified),
        added=added,
        removed=removed,
        modified=modified,
        unchanged=len(current) - len(added) - len(modified),
        read=read,
    )


def hash_stream(source: Location, path: str) -> str:
    """The key of a file on any filesystem (read whole, streamed)."""
    with source.fs.open(path, "rb", block_size=REMOTE_BLOCK) as stream:
        return hashing.hash_stream(stream)[0]


def table_status(
    name: str,
    latest: ArtifactVersion | None,
    source: Location,
    root: str,
    label: str,
    state: StateCache | None,
) -> Status:
    """Whether the table file's content differs from the file the latest
    version was taken from (its key is recorded at snapshot time)."""
    key, read = (hash_stream(source, root), True) if not source.is_local else key_of(root, state)
    recorded = latest.meta.get("source_key") if latest is not None else None
    changed = True if latest is None else (None if recorded is None else key != recorded)
    if changed and latest is not None and state is not None and state.holds(key) == latest.id:
        changed = False  # another file of the same rows (gzipped, CRLF): the snapshot found it so
    return Status(
        name=name,
        source=label,
        layout="table",
        base=latest.ref if latest is not None else None,
        changed=changed,
        read=int(read),
    )


# ---- checkout --------------------------------------------------------------------
def checkout_tree(store: ObjectStore, manifest: TreeDataset, dest: Path, progress: Progress | None) -> Path:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput(f"{dest}: destination exists and is not an empty folder")
    from lepton.data.sources import safe_rel  # lazy: tables' module: pandas

    # Every path is checked before anything is written. A safe relative path (no "", "." or ".."
    # part, not absolute) joined to the resolved, empty destination stays inside it: no per-file
    # resolve (an lstat per part of each path, 100,000 for a tree of 20,000 files).
    root = str(dest.resolve())
    targets = [os.path.join(root, safe_rel(entry.path, manifest.name)) for entry in manifest.files]

    def get(pair: tuple[FileEntry, str]) -> None:
        entry, target = pair
        if entry.chunks is not None:
            fc.get_chunked(store, entry, target)
        else:
            store.get_file(entry.id, target)
        if progress:
            progress(entry.size)

    with ThreadPoolExecutor(TREE_WORKERS) as pool:
        list(pool.map(get, zip(manifest.files, targets, strict=True)))
    return dest
