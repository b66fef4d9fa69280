"""Content-addressed object store over an fsspec filesystem.

Layout under the store root::

    objects/blake3/ab/cdef...   immutable objects, named by their content hash
    log/<category>/<ts>-<uuid>.json   append-only event records (registry log)
    quarantine/blake3/ab/cdef...      objects that failed verification
    tmp/                              local staging for atomic publish

Writes are put-if-absent and atomic: a temp file renamed into place on a
local disk; a single PUT or a completed multipart upload on S3 (an object
that is not complete is never visible at its final key). Reads verify the
hash and never return bytes that do not match their key. Objects written
with ``pack`` may be stored zstd-packed (lepton.store.packing); every read
returns the content, whichever way it is stored. Local file I/O is in
lepton.store.localio, S3 uploads and reuse in lepton.store.s3writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from lepton import hashing, pagecache
from lepton.errors import IntegrityError, InvalidInput, LeptonError, StorageError
from lepton.store import localio, packing, s3writes
from lepton.store.errors import is_missing_bucket, missing, translate
from lepton.store.fs import Location
from lepton.store.s3writes import PART_SIZE

OBJECTS = "objects"
LOG = "log"
QUARANTINE = "quarantine"
TMP = "tmp"
# A write that finds its object already stored refreshes the object's
# modification time when it is older than this, so gc (which removes only
# unreferenced objects older than its grace period) cannot remove an object
# that a writer has just decided to reuse; see lepton/gc.py. (On S3 the age
# compares this machine's clock with the server's: keep them within minutes.)
FRESHEN_AFTER = 600.0
# On S3 (no atomic rename), a writer refreshing an old object first leaves a
# note tmp/reused/<algo>-<digest>-<uuid>; gc checks for one after each delete
# and puts back what a writer reused meanwhile; see lepton/store/sweep.py.
REUSED = "reused"


class ObjectStore:
    """Content-addressed objects plus an append-only event log."""

    def __init__(self, location: Location, *, durable: bool = True) -> None:
        self.location = location
        self.fs = location.fs
        self.durable = durable

    # ---- naming -----------------------------------------------------------
    @property
    def url(self) -> str:
        return self.location.url

    def path_of(self, key: str, area: str = OBJECTS) -> str:
        try:
            algo, digest = hashing.parse_key(key)
        except ValueError as e:
            raise InvalidInput(str(e)) from e
        return self.location.join(area, algo, digest[:2], digest[2:])

    # ---- health -----------------------------------------------------------
    def check(self) -> None:
        """Fail with a clear StorageError if the store cannot be reached."""
        with translate(self.url):
            if self.location.is_local:
                Path(self.location.root).mkdir(parents=True, exist_ok=True)
                probe = Path(self.location.root) / TMP
                probe.mkdir(exist_ok=True)
                if not os.access(probe, os.W_OK):
                    raise StorageError(f"store {self.url}: folder is not writable")
            else:
                bucket = self.location.root.split("/", 1)[0]
                # ls on the bucket raises for a missing bucket or bad credentials.
                self.fs.ls(bucket, detail=False)

    # ---- existence --------------------------------------------------------
    def exists(self, key: str) -> bool:
        path = self.path_of(key)
        with translate(self.url):
            if self.location.is_local:
                return os.path.isfile(path)
            # Not fs.exists(): s3fs answers False for a missing bucket.
            try:
                self.fs.info(path)
            except FileNotFoundError as e:
                if is_missing_bucket(e):
                    raise
                return False
            return True

    def size(self, key: str) -> int:
        path = self.path_of(key)
        with translate(self.url, key):
            try:
                return int(self.fs.info(path)["size"])
            except FileNotFoundError as e:
                raise missing(self.url, key, e) from e

    # ---- writes -----------------------------------------------------------
    def put_bytes(self, data: bytes, pack: bool = False) -> str:
        """Store ``data``; with ``pack``, as a zstd frame where that saves
        10% (lepton.store.packing). The key is the content's either way."""
        key = hashing.hash_bytes(data)
        if self._reuse(key):
            return key
        final = self.path_of(key)
        body = (packing.pack(data) if pack else None) or data
        with translate(self.url, key):
            if self.location.is_local:
                self._publish_local(final, lambda f: f.write(body))
            else:
                self.fs.pipe_file(final, body)  # a single PUT: all or nothing
        return key

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a local file without reading it into memory; returns (key, size)."""
        src = Path(path)
        with open(src, "rb") as f:
            key, size = hashing.hash_stream(f)
        if self._reuse(key):
            return key, size
        final = self.path_of(key)
        with translate(self.url, key):
            if self.location.is_local:
                copied = self._publish_local(final, lambda out: localio.copy_hashing(src, out), key)
            else:
                copied = s3writes.publish(self.fs, final, src, key)
        if copied != key:
            raise InvalidInput(f"{src}: file changed while it was being stored")
        return key, size

    def put_stream(self, stream: BinaryIO) -> tuple[str, int]:
        """Store a stream of unknown size: spooled to a local temp file while
        hashing, so memory stays bounded, then published."""
        tmp_dir = self._local_tmp_dir()
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="spool-")
        try:
            with os.fdopen(fd, "wb") as out:
                while block := stream.read(hashing.BUFFER_SIZE):
                    out.write(block)
            return self.put_file(tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _reuse(self, key: str) -> bool:
        """True when the object is already stored and may be reused as is: an
        old one first has its modification time refreshed (local: utime; S3:
        copied onto itself). False when it is absent, or cannot be refreshed
        (another user's file, an object too large to copy): write it again."""
        path = self.path_of(key)
        with translate(self.url, key):
            if self.location.is_local:
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    return False
                if time.time() - st.st_mtime > FRESHEN_AFTER:
                    try:
                        os.utime(path)
                    except (PermissionError, FileNotFoundError):
                        return False  # renaming a fresh copy over it needs only the folder
                return True
            return s3writes.reuse(self.fs, path, self.reuse_note_prefix(key), FRESHEN_AFTER)

    def reuse_note_prefix(self, key: str) -> str:
        algo, digest = hashing.parse_key(key)
        return self.location.join(TMP, REUSED, f"{algo}-{digest}-")

    def _local_tmp_dir(self) -> str | None:
        if not self.location.is_local:
            return None
        d = Path(self.location.root) / TMP
        d.mkdir(parents=True, exist_ok=True)
        return str(d)

    def _publish_local(self, final: str, write, expect: str | None = None) -> str | None:
        """Write through ``write(fileobj)`` into tmp/, fsync, then rename into place."""
        tmp_dir = self._local_tmp_dir()
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="obj-")
        result = None
        try:
            with os.fdopen(fd, "wb") as f:
                result = write(f)
                f.flush()
                if self.durable:
                    os.fsync(f.fileno())
            if expect is not None and result != expect:
                return result
            os.chmod(tmp, 0o444)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)
            tmp = ""
            return result
        finally:
            if tmp:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    # ---- reads ------------------------------------------------------------
    def read_bytes(self, key: str) -> bytes:
        """The object's bytes, verified against its key."""
        path = self.path_of(key)
        with translate(self.url, key):
            try:
                if self.location.is_local:  # fsspec's cat_file: 2.5x the CPU per small object
                    data = localio.read_whole(path)
                else:
                    data = self.fs.cat_file(path)
            except FileNotFoundError as e:
                raise missing(self.url, key, e) from e
        return self._checked(key, data)  # type: ignore[arg-type]

    def _checked(self, key: str, data: bytes) -> bytes:
        """An object's stored bytes as its content (a packed one unpacked),
        refused and quarantined unless that hashes to its key."""
        content, actual = packing.verified(key, data)
        if actual is not None:
            self._refuse(key, actual)
        return content

    def prefetch(self, keys: Iterable[str]) -> None:
        """Local stores: have the kernel read these objects into the page
        cache in the background, for reads soon after (a hint)."""
        if self.location.is_local:
            pagecache.will_need(self.path_of(k) for k in keys)

    def get_file(self, key: str, dest: str | os.PathLike[str]) -> None:
        """Copy an object to a local file; the file appears only once verified.
        A local object under BUFFER_SIZE is read whole, checked, and written
        in one go (lepton.store.localio); others stream through in blocks. A
        failure to write ``dest`` (a full disk) is one StorageError naming it."""
        dest = os.fspath(dest)
        data = None
        if self.location.is_local:
            with translate(self.url, key):
                try:
                    data = localio.read_whole(self.path_of(key), limit=hashing.BUFFER_SIZE)
                except FileNotFoundError as e:
                    raise missing(self.url, key, e) from e

        def write(fd: int, block: bytes) -> None:
            try:
                localio.write_all(fd, block)
            except OSError as e:  # inside _open, translate would blame the store
                raise _unwritable(dest, key, e) from e

        def stream(fd: int) -> None:
            with self._open(key) as src:
                actual = self._content(key, src, partial(write, fd))
            if actual != key:
                self._refuse(key, actual)

        fill = stream if data is None else partial(localio.write_all, data=self._checked(key, data))
        try:
            localio.write_new(dest, fill)
        except LeptonError:
            raise
        except OSError as e:  # (not a context manager: ~3 us a file, 20,000 files a tree)
            raise _unwritable(dest, key, e) from e

    def _content(self, key: str, src: BinaryIO, write: Callable[[bytes], object] | None) -> str:
        """Read an object's content from ``src`` (a packed one unpacked), each
        piece passed to ``write``; returns the key it hashes to (== key when
        sound; for a packed object that is not, its stored bytes' hash)."""
        want = self._first_read(key)
        block = packing.read_on(src, src.read(want))
        content = packing.content_of(key, block)
        if content is not None:
            if write is not None:
                write(content)
            return key
        more = len(block) >= want  # a shorter first read was the whole object
        h = hashing.new_hasher(None if more else len(block))
        while block:
            h.update(block)
            if write is not None:
                write(block)
            block = src.read(hashing.BUFFER_SIZE) if more else b""
        return hashing.finish(h)

    def _first_read(self, key: str) -> int:
        """How much to read first: a local object's size + 1 (its whole, and
        the end seen) where that is less than BUFFER_SIZE. A read of
        BUFFER_SIZE allocates that much even for a 50 KB object: an mmap and
        an munmap each, a TLB shoot-down across CPUs, on checkout of many
        small files."""
        if self.location.is_local:
            with contextlib.suppress(OSError):
                return min(os.path.getsize(self.path_of(key)) + 1, hashing.BUFFER_SIZE)
        return hashing.BUFFER_SIZE

    @contextlib.contextmanager
    def _open(self, key: str) -> Iterator[BinaryIO]:
        path = self.path_of(key)
        with translate(self.url, key):
            # On S3, read block by block with no read-ahead cache: bounded memory.
            kw = {} if self.location.is_local else {"block_size": PART_SIZE, "cache_type": "none"}
            try:
                f = self.fs.open(path, "rb", **kw)
            except FileNotFoundError as e:
                raise missing(self.url, key, e) from e
            with f:
                yield f

    def verify(self, key: str) -> str:
        """Re-hash an object's content; returns the actual key (== key when
        sound; a packed object's stored bytes' hash where it is not)."""
        with self._open(key) as f:
            return self._content(key, f, None)

    def _refuse(self, key: str, actual: str) -> None:
        self.quarantine(key)
        raise IntegrityError(
            f"object {key} is corrupt (content hashes to {actual}); it was moved to {QUARANTINE}/ and refused"
        )

    # ---- maintenance ------------------------------------------------------
    def quarantine(self, key: str) -> str:
        src, dst = self.path_of(key), self.path_of(key, QUARANTINE)
        with translate(self.url, key):
            if self.location.is_local:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.replace(src, dst)
            else:
                self.fs.copy(src, dst)
                self.fs.rm_file(src)
        return dst

    def delete(self, key: str) -> None:
        """Remove an object; a no-op when it is absent (as on S3)."""
        path = self.path_of(key)
        with translate(self.url, key):
            if self.location.is_local:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            else:
                self.fs.rm_file(path)

    def iter_keys(self) -> Iterator[str]:
        base = self.location.join(OBJECTS)
        with translate(self.url):
            paths = self._find(base)
        prefix = base.rstrip("/") + "/"
        for p in sorted(paths):
            rel = p[len(prefix) :] if p.startswith(prefix) else p.split(f"/{OBJECTS}/", 1)[-1]
            parts = rel.split("/")
            if len(parts) == 3:
                yield f"{parts[0]}:{parts[1]}{parts[2]}"

    # ---- event log --------------------------------------------------------
    def append_record(self, category: str, record: dict[str, Any]) -> str:
        """Append one JSON record to ``log/<category>/``; names sort by time."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{uuid.uuid4().hex}.json"
        path = self.location.join(LOG, category, name)
        data = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        with translate(self.url):
            if self.location.is_local:
                self._publish_local(path, lambda f: f.write(data))
            else:
                self.fs.pipe_file(path, data)
        return name

    def iter_records(self, category: str) -> Iterator[dict[str, Any]]:
        base = self.location.join(LOG, category)
        with translate(self.url):
            for p in sorted(self._find(base)):
                if p.endswith(".json"):
                    yield json.loads(self.fs.cat_file(p))

    def _find(self, base: str) -> list[str]:
        """Every file under ``base``; none if it does not exist, but a missing
        bucket is an error, never an empty store."""
        try:
            return list(self.fs.find(base))
        except FileNotFoundError as e:
            if is_missing_bucket(e):
                raise
            return []


def _unwritable(dest: str, key: str, e: OSError) -> StorageError:
    """A failure to write ``dest`` (a full disk), as one error that names it."""
    return StorageError(f"{dest}: could not write object {key} there ({e})")
