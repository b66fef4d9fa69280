"""Reading a cold file once without filling the page cache with it.

A snapshot reads its source once, from start to end. Through the page
cache alone every 4 KiB of a file that was not cached takes a page of
memory the kernel had not used lately, and on a virtual machine such pages
can cost far more than the read itself: on the benchmark's VM 0.2-1.7 s of
system CPU per GiB (the host maps them in anew), on the cores the parsing
and hashing need. Dropping each block from the cache once it is read
(posix_fadvise DONTNEED) lets the kernel read the next blocks into the
pages it just freed: 0.2 s per GiB, every time.

Only a file that was cold when opened (its first page not cached) is read
this way; a file just written or read lately stays in the cache as it was,
where reading it again is faster than the disk. Only the standard library:
the start-up path (lepton.data.headstart) uses it too.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
from collections.abc import Iterable
from typing import Any, BinaryIO

PAGE = 4096
LAG = 64 << 20  # bytes behind the furthest read that stay cached (a resumed ingest reads its new rows twice)


def cached(fd: int) -> bool:
    """Whether the file's first page is in the page cache (then, likely, the
    rest); True where that cannot be told or nothing could be dropped.

    Asked with mincore(2) on a mapping of that page that is never touched:
    a 1-byte RWF_NOWAIT read that misses starts the kernel's readahead of
    the page (6.18 here), so that the next probe found it cached."""
    libc = _libc()
    if libc is None or not hasattr(os, "posix_fadvise"):
        return True
    try:
        if os.fstat(fd).st_size == 0:
            return True  # nothing to drop
    except OSError:
        return True
    address = libc.mmap(None, PAGE, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if address in (None, ctypes.c_void_p(-1).value):
        return True
    try:
        vec = ctypes.create_string_buffer(1)
        return libc.mincore(address, PAGE, vec) != 0 or bool(vec.raw[0] & 1)
    finally:
        libc.munmap(address, PAGE)


@functools.cache
def _libc() -> Any:
    """libc with mmap, mincore and munmap typed (once); None where it cannot be had."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def drop(fd: int, offset: int, length: int) -> None:
    """The file's bytes [offset, offset + length) out of the page cache
    (clean pages only; length 0: to the end of the file)."""
    os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def will_need(paths: Iterable[str]) -> None:
    """Ask the kernel to read these files into the page cache, in the
    background (a hint: files that cannot be opened are passed over)."""
    if not hasattr(os, "posix_fadvise"):
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


class DropBehind:
    """A binary stream whose bytes leave the page cache once they are LAG
    bytes behind the furthest point read (readinto and read), so that going
    back a little (a seek to read again what was just cut) still finds them
    cached; anything else goes to the stream as it is."""

    def __init__(self, stream: BinaryIO, fd: int) -> None:
        self._stream, self._fd = stream, fd
        self._dropped = 0  # the cache holds none of the file before this offset (that we read)

    def readinto(self, into: Any) -> int:
        n = self._stream.readinto(into)  # type: ignore[attr-defined]
        self._behind()
        return n

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._behind()
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Moved: what is read from here on leaves the cache LAG bytes behind
        it (a step back, then reading on, as a failed resume does from the
        file's start, is dropped again as it is read)."""
        pos = self._stream.seek(offset, whence)
        start = max(0, pos - LAG)
        self._dropped = start - start % PAGE
        return pos

    def _behind(self) -> None:
        upto = self._stream.tell() - LAG
        upto -= upto % PAGE
        if upto > self._dropped:
            drop(self._fd, self._dropped, upto - self._dropped)
            self._dropped = upto

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def drop_behind(stream: BinaryIO, cold: bool | None = None) -> BinaryIO:
    """``stream`` read as DropBehind if it is a local file that is not
    cached, else as it is. ``cold``: whether it was cached, told by whoever
    looked first (lepton.data.headstart, whose reading then fills it)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return stream
    if cold is None:
        cold = not cached(fd)
    return DropBehind(stream, fd) if cold else stream  # type: ignore[return-value]


SYNC_FILE_RANGE_WRITE = 2  # <fcntl.h>: start write-out of dirty pages, do not wait
WRITTEN = 1 | SYNC_FILE_RANGE_WRITE | 4  # SYNC_FILE_RANGE_WAIT_BEFORE | ... | _WAIT_AFTER: on disk
WRITE_LAG = 64 << 20  # bytes written lately that stay cached (their write-out under way)


@functools.cache
def sync_file_range() -> Any:
    """libc's sync_file_range(2), typed; None where there is none (not Linux)."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


class WriteBehind:
    """A new file written once from start to end, leaving the page cache
    behind it: each write's pages are sent to the disk at once, and once
    WRITE_LAG newer bytes are written after them, waited for and dropped.
    Writing a large file through the cache alone takes a fresh page per
    4 KiB, which on a VM costs far more than the copy (the module's text);
    this way the kernel reuses the same few pages. (The 2026-12-07 machine
    wrote 1.07 GB in 5 MiB blocks with 0.16-0.80 s of system CPU through
    the cache alone, as the pages it was given were recycled or fresh, and
    0.23-0.24 s written behind.) Where sync_file_range is missing or fails
    (a file system without write-out), the rest is written plainly."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._sync = sync_file_range()
        self._pos = 0
        self._dropped = 0  # nothing of the file before this offset is cached (by us)

    def write(self, data: Any) -> int:
        """All of ``data`` (anything with the buffer protocol), appended."""
        view = memoryview(data).cast("B")
        start, done = self._pos, 0
        while done < len(view):
            done += os.write(self._fd, view[done:])
        self._pos += done
        if self._sync is not None and done:
            if self._sync(self._fd, start, done, SYNC_FILE_RANGE_WRITE) != 0:
                self._sync = None  # best effort only
            else:
                self._behind()
        return done

    def _behind(self) -> None:
        upto = self._pos - WRITE_LAG
        upto -= upto % PAGE
        if upto > self._dropped:
            if self._sync(self._fd, self._dropped, upto - self._dropped, WRITTEN) != 0:
                self._sync = None
                return
            drop(self._fd, self._dropped, upto - self._dropped)
            self._dropped = upto

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
