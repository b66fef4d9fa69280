"""Staging: many new objects written now and published together, or not at all.

A snapshot writes its objects while it reads the source, but nothing may
become visible until the whole source has been read and checked: a file
rejected halfway must leave the store as it was. Staged objects are hashed
as they are written (the caller holds the bytes), then published in one go:

- local store: written straight into the store's ``tmp/`` folder (same file
  system), so publishing is a flush and a rename per object, with no second
  copy or second hash. The flush is one ``syncfs`` for the whole batch where
  the platform has it (one journal commit instead of one per object), else
  an fsync per file. Each file's write-back starts as soon as it is
  written, and once BEHIND newer files are staged it is waited for and the
  file dropped from the page cache: a snapshot writing 1 GB then reuses
  the same few pages, where new ones cost up to 2 s of system CPU per GB
  on a VM (lepton.pagecache; a first 1 GiB import 4.94 -> 4.31 s).
- S3 store: written to a local temp folder, then uploaded in parallel, each
  upload hashing what it sends (ObjectStore.put_file).

Objects still in ``tmp/`` after a crash are unreferenced and removed by gc
after its grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lepton import hashing, pagecache
from lepton.store import localio, packing
from lepton.store.errors import translate
from lepton.store.objects import ObjectStore

UPLOADS = 8  # parallel S3 uploads
BEHIND = 16  # staged files (~1-2 MB each) kept in the page cache before they are dropped from it


class Staging:
    def __init__(self, store: ObjectStore, *, drop_behind: bool = True) -> None:
        """``drop_behind``: staged files leave the page cache once BEHIND newer
        ones are staged (for big chunks; a tree's small files skip the extra
        calls and are only flushed together at publish)."""
        self.store = store
        self.drop_behind = drop_behind
        self.local = store.location.is_local
        self._own_dir = None if self.local else tempfile.mkdtemp(prefix="lepton-stage-")
        self.dir = store._local_tmp_dir() if self.local else self._own_dir  # noqa: SLF001
        self.paths: dict[str, str] = {}
        self.lock = threading.Lock()
        # start each file's write-back as soon as it is written, so that the
        # flush at publish finds most of it on disk already
        self._writeback = pagecache.sync_file_range() if self.local and store.durable else None
        self._written: deque[str] = deque()  # staged lately, newest last
        self._absent: set[str] = set()  # keys the store was found without before they were staged

    def put(
        self,
        data: bytes | memoryview | Any,
        *,
        key: str | None = None,
        pack: bool = False,
        absent: bool = False,
    ) -> str:
        """Stage ``data`` (anything with the buffer protocol); returns its key.
        Thread-safe; called from busy workers, so it hashes on the calling
        thread only (not at all where the caller gives ``key``, the hash of
        ``data`` it already took). ``pack``: on a local store, staged as a zstd
        frame where that saves 10% (lepton.store.packing); not on S3, whose staged files are
        uploaded by put_file, which hashes what it sends. ``absent``: the caller
        found the store without it (``store._reuse``), so publish does not ask
        again (an object stored meanwhile is the same bytes, renamed over)."""
        key = key or hashing.hash_bytes(data, threads=False)
        with self.lock:
            if key in self.paths:
                return key
            self.paths[key] = ""  # reserved: another thread staging the same bytes returns at once
        body = (packing.pack(data) if pack and self.local else None) or data
        try:  # (a full disk): neither a staged file nor the key's reservation stays
            fd, path = localio.create_temp(self.dir, "stage-", mode=0o444)  # type: ignore[arg-type]
            try:
                os.fchmod(fd, 0o444)  # read-only for all, whatever the umask (a store users share)
                localio.write_all(fd, body)
                if self._writeback is not None:
                    self._writeback(fd, 0, 0, pagecache.SYNC_FILE_RANGE_WRITE)  # asynchronous; best effort
            except BaseException:
                os.unlink(path)
                raise
            finally:
                os.close(fd)
        except BaseException:
            with self.lock:
                del self.paths[key]
            raise
        older = None
        with self.lock:
            self.paths[key] = path
            if absent:
                self._absent.add(key)
            if self._writeback is not None and self.drop_behind:  # local, durable: written back, droppable
                self._written.append(path)
                older = self._written.popleft() if len(self._written) > BEHIND else None
        if older is not None:
            _out_of_cache(older, self._writeback)
        return key

    def publish(self, only: Collection[str] | None = None) -> None:
        """Make every staged object visible in the store (with ``only``,
        those of them; the rest are discarded)."""
        staged = {k: p for k, p in self.paths.items() if only is None or k in only}
        if self.local:
            self._publish_local(staged)
        else:
            with ThreadPoolExecutor(UPLOADS) as pool:
                for _ in pool.map(self.store.put_file, staged.values()):
                    pass
            self.discard()

    def _publish_local(self, staged: dict[str, str]) -> None:
        reuse = self.store._reuse  # noqa: SLF001
        todo = [(key, path) for key, path in staged.items() if key in self._absent or not reuse(key)]
        with translate(self.store.url):
            if self.store.durable and todo:
                _flush(self.dir, [path for _, path in todo])  # type: ignore[arg-type]
            made: set[str] = set()
            for key, path in todo:
                final = self.store.path_of(key)
                folder = os.path.dirname(final)
                if folder not in made:
                    os.makedirs(folder, exist_ok=True)
                    made.add(folder)
                os.replace(path, final)  # (staged read-only)
                self.paths[key] = ""
        self.discard()

    def discard(self) -> None:
        """Remove what was staged and not published (safe to call twice)."""
        for path in self.paths.values():
            if path:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        self.paths.clear()
        if self._own_dir:
            shutil.rmtree(self._own_dir, ignore_errors=True)


def _flush(folder: str, paths: list[str]) -> None:
    """Everything in ``paths`` on disk: one syncfs of the file system that
    holds ``folder`` (Linux), else one fsync per file."""
    syncfs = _syncfs()
    if syncfs is not None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            if syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _out_of_cache(path: str, sync_file_range: Any) -> None:
    """A staged file's pages, written out (waiting for what is still being
    written), dropped from the page cache; nothing if it is gone already."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        sync_file_range(fd, 0, 0, pagecache.WRITTEN)  # -1 on failure: then the pages, still dirty, stay
        pagecache.drop(fd, 0, 0)
    except OSError:
        pass  # best effort: the flush at publish writes it either way
    finally:
        os.close(fd)


def _syncfs():  # type: ignore[no-untyped-def]
    return _libc("syncfs", ctypes.c_int)


def _libc(name: str, *argtypes: object):  # type: ignore[no-untyped-def]
    """A C library function returning int, or None where there is none (not Linux)."""
    try:  # the C library's symbols, already loaded in this process
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return fn
