"""Store-level primitives for garbage collection: the store's own clock,
objects with their modification times, leftovers in ``tmp/``, unfinished
S3 multipart uploads, and removal of one unreferenced object that first
checks, as late as possible, that no writer has just reused it.

Nothing here decides what is referenced; lepton/gc.py does.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lepton import hashing
from lepton.store.errors import is_missing_bucket, translate
from lepton.store.objects import OBJECTS, TMP, ObjectStore

Progress = Callable[[int], None]
ASIDE = "gc"  # tmp/gc/<algo>-<digest>-<uuid>: an object being removed


@dataclass(frozen=True)
class Entry:
    """An object (by key) or a tmp/ file (by path), with its modification
    time (seconds since the epoch, the store's clock) and size in bytes."""

    name: str
    mtime: float
    size: int


def clock(store: ObjectStore, *, fallback: bool = False) -> float:
    """The store's current time, read from a probe file it stamps itself, so
    ages compare times of one clock (an S3 server's, a file server's).
    With ``fallback`` (a dry run on a read-only store), this machine's clock
    when the probe cannot be written."""
    path = store.location.join(TMP, f"clock-{uuid.uuid4().hex}")
    try:
        with translate(store.url):
            if store.location.is_local:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb"):
                    pass
                now = os.stat(path).st_mtime
                os.unlink(path)
                return now
            store.fs.pipe_file(path, b"")
            now = store.fs.info(path)["LastModified"].timestamp()
            store.fs.rm_file(path)
            return now
    except Exception:
        if fallback:
            return time.time()
        raise


def list_objects(store: ObjectStore, progress: Progress | None = None) -> dict[str, Entry]:
    """Every object under objects/, by key. Files whose names are not object
    keys are not listed (so never removed)."""
    base = store.location.join(OBJECTS)
    found: dict[str, Entry] = {}
    for path, mtime, size in list_files(store, base):
        parts = path[len(base) + 1 :].split("/")
        key = f"{parts[0]}:{parts[1]}{parts[2]}" if len(parts) == 3 else ""
        if hashing.is_key(key):
            found[key] = Entry(key, mtime, size)
        if progress:
            progress(1)
    return found


def list_tmp(store: ObjectStore) -> list[Entry]:
    """Files under tmp/ (staging for atomic publish), by path."""
    return [Entry(p, m, s) for p, m, s in list_files(store, store.location.join(TMP))]


def remove_tmp(store: ObjectStore, path: str) -> None:
    with translate(store.url), contextlib.suppress(FileNotFoundError):
        if store.location.is_local:
            os.unlink(path)
        else:
            store.fs.rm_file(path)


def remove_if_old(store: ObjectStore, key: str, cutoff: float) -> bool:
    """Remove an unreferenced object unless a writer reuses it meanwhile;
    returns whether it was removed. The object is first set aside under
    tmp/gc/ (so a crash loses nothing a later gc could not put back).

    Local: an object whose time is at or after ``cutoff`` by now (refreshed
    by a writer that reused it since gc listed it) is left where it is: set
    aside, even for a moment, it would be missing to anyone reading it, and
    its version may be registered and read by then (seen in CI: a snapshot
    reading the previous version's chunk while gc checked it). Otherwise the
    set-aside is an atomic rename, and the object is renamed back if its
    time is at or after ``cutoff`` (refreshed between the look and the
    rename); a writer that looks after the rename finds it absent and
    writes it again. S3: copy aside, delete, then look for a writer's reuse
    note made at or after ``cutoff`` (written before the writer's refresh,
    which fails once the object is gone, making the writer store it again);
    with one, put it back."""
    path, aside = store.path_of(key), _aside(store, key)
    with translate(store.url, key):
        if store.location.is_local:
            try:  # refreshed since it was listed (reused, maybe registered by now): never moved
                if os.stat(path).st_mtime >= cutoff:
                    return False
            except FileNotFoundError:
                return False
            os.makedirs(os.path.dirname(aside), exist_ok=True)
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                return False
            try:  # a concurrent gc may clean tmp/ of it (only when it is old)
                if os.stat(aside).st_mtime >= cutoff:
                    os.replace(aside, path)  # a writer may have stored it again: same bytes
                    return False
                os.unlink(aside)
            except FileNotFoundError:
                return False
            return True
        try:
            if store.fs.info(path)["LastModified"].timestamp() >= cutoff:
                return False
            store.fs.copy(path, aside)
        except FileNotFoundError as e:
            if is_missing_bucket(e):
                raise
            return False
        store.fs.rm_file(path)
        if _reuse_noted(store, key, cutoff):
            _put_back(store, aside, key)
            return False
        store.fs.rm_file(aside)
        return True


def set_aside_key(path: str) -> str | None:
    """The key of an object set aside under tmp/gc/ (left there by a crash)."""
    parent, _, name = path.rpartition("/")
    if not parent.endswith(f"/{TMP}/{ASIDE}"):
        return None
    algo, _, rest = name.partition("-")
    key = f"{algo}:{rest.partition('-')[0]}"
    return key if hashing.is_key(key) else None


def put_back(store: ObjectStore, aside: str, key: str) -> None:
    """Return an object set aside to its place (it is referenced after all)."""
    with translate(store.url, key), contextlib.suppress(FileNotFoundError):  # a concurrent gc did
        _put_back(store, aside, key)


def _put_back(store: ObjectStore, aside: str, key: str) -> None:
    path = store.path_of(key)
    if store.location.is_local:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(aside, path)
        return
    store.fs.copy(aside, path)
    store.fs.rm_file(aside)


def _aside(store: ObjectStore, key: str) -> str:
    algo, digest = hashing.parse_key(key)
    return store.location.join(TMP, ASIDE, f"{algo}-{digest}-{uuid.uuid4().hex}")


def _reuse_noted(store: ObjectStore, key: str, cutoff: float) -> bool:
    """Whether a writer left a note, at or after ``cutoff``, that it reuses
    the object. An older note is a reuse as old as the object's own time
    (gc cleans it from tmp/ afterwards): counting it would keep the object
    forever, each put-back giving it a new time."""
    bucket, prefix, _ = store.fs.split_path(store.reuse_note_prefix(key))
    more: dict[str, str] = {}
    while True:
        page = store.fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=prefix, **more)
        if any(n["LastModified"].timestamp() >= cutoff for n in page.get("Contents", []) or []):
            return True
        if not page.get("IsTruncated"):
            return False
        more = {"ContinuationToken": page["NextContinuationToken"]}


def stale_uploads(store: ObjectStore, before: float) -> list[tuple[str, str]]:
    """(key, upload id) of unfinished S3 multipart uploads under the store's
    prefix that were started before ``before``; none on a local store."""
    if store.location.is_local:
        return []
    bucket, _, rest = store.location.root.partition("/")
    prefix = f"{rest.strip('/')}/" if rest.strip("/") else ""
    found: list[tuple[str, str]] = []
    markers: dict[str, str] = {}
    with translate(store.url):
        while True:
            page = store.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix, **markers)
            for u in page.get("Uploads", []) or []:
                if u["Initiated"].timestamp() < before:
                    found.append((u["Key"], u["UploadId"]))
            if not page.get("IsTruncated"):
                return found
            markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}


def abort_upload(store: ObjectStore, key: str, upload_id: str) -> None:
    bucket = store.location.root.partition("/")[0]
    with translate(store.url), contextlib.suppress(FileNotFoundError):  # already gone
        store.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)


def list_files(store: ObjectStore, base: str) -> Iterator[tuple[str, float, int]]:
    """(path, mtime, size) of every file under ``base``; none if it does not
    exist, but a missing bucket is an error, never an empty store."""
    with translate(store.url):
        if store.location.is_local:
            yield from _walk_local(base)
            return
        try:
            listing = store.fs.find(base, detail=True)
        except FileNotFoundError as e:
            if is_missing_bucket(e):
                raise
            return
        for path, info in sorted(listing.items()):
            if info.get("type", "file") == "file":
                yield path, info["LastModified"].timestamp(), int(info["size"])


def _walk_local(base: str) -> Iterator[tuple[str, float, int]]:
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        path = f"{base}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            yield from _walk_local(path)
        elif entry.is_file(follow_symlinks=False):
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed while listing
                continue
            yield path, st.st_mtime, st.st_size
