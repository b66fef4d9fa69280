"""Local files of a store, read and written with the fewest system calls: an
object read whole, and a new file written whole beside its final name and
renamed into place (it appears complete or not at all).

A checkout of 20,000 small files calls these 20,000 times each, from 8
threads: every Python call and system call on the way holds or hands over
the GIL (see lepton.data.trees.checkout_tree)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any, BinaryIO

from lepton import hashing, pagecache

KEEP_CACHED = 256 * 2**10  # files smaller than this stay in the page cache once read (read_whole)
ONE_READ = 2**30  # files under this are read in one read(2) (its limit: 2 GiB less a page)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def read_whole(path: str, limit: int | None = None) -> bytes | None:
    """A local file's bytes; None where it holds ``limit`` bytes or more
    (for the caller to stream it). A file of KEEP_CACHED bytes or more that
    was not cached leaves the page cache again (lepton.pagecache): a
    snapshot that compares with the previous version reads ~800 MB of
    chunks once, cold. Measured on 1,238 such objects: 0.3 -> 0.19 s of
    system CPU, 0.88 -> 0.68 s. Smaller ones (sidecars, patches) stay: the
    next version reads them again."""
    fd = os.open(path, os.O_RDONLY | _CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if limit is not None and size >= limit:
            return None
        # (asked only of big ones: a probe per sidecar or patch cost ~3% of a sparse-edit version's CPU)
        cold = size >= KEEP_CACHED and not pagecache.cached(fd)
        if size < ONE_READ:
            data = os.read(fd, size + 1)  # the whole file, and its end seen
            if len(data) != size:  # it grew or shrank since the fstat: read on
                data += os.fdopen(fd, "rb", buffering=0, closefd=False).readall()
        else:  # read(2) returns at most ~2 GiB: FileIO's readall fills one buffer of the fstat size
            data = os.fdopen(fd, "rb", buffering=0, closefd=False).readall()
        if cold:
            with contextlib.suppress(OSError):  # only a hint to the kernel
                pagecache.drop(fd, 0, len(data))
        return data
    finally:
        os.close(fd)


def create_beside(dest: str) -> tuple[int, str]:
    """A new, empty temp file in ``dest``'s folder (made where missing: a
    checkout's files mostly share theirs, so it is made only when the
    create finds it missing), open for writing: (fd, its path). Its mode is
    0o666 less the umask, as the file ``dest`` would have been."""
    folder, name = os.path.split(dest)
    prefix = f".{os.fsdecode(os.fsencode(name)[:200])}."  # within NAME_MAX (255 bytes, not characters)
    try:
        return create_temp(folder, prefix, ".tmp")
    except FileNotFoundError:
        if not folder:
            raise
        os.makedirs(folder, exist_ok=True)
        return create_temp(folder, prefix, ".tmp")


def create_temp(folder: str, prefix: str, suffix: str = "", mode: int = 0o666) -> tuple[int, str]:
    """A new, empty file ``prefix`` + 12 random hex digits + ``suffix`` in
    ``folder``, open for writing: (fd, its path). As tempfile.mkstemp, at
    about a third of its cost, with ``mode`` less the umask (0o444: a file
    that is read-only from the start, written through this fd alone)."""
    for _ in range(100):
        path = os.path.join(folder, f"{prefix}{os.urandom(6).hex()}{suffix}")
        with contextlib.suppress(FileExistsError):
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, mode), path
    raise FileExistsError(f"{folder}: no free name {prefix}*{suffix} in 100 tries")


def write_all(fd: int, data: bytes | memoryview | Any) -> None:
    """Write all of ``data`` (anything with the buffer protocol) to ``fd``."""
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


def write_new(dest: str, fill: Callable[[int], object]) -> None:
    """Make the file ``dest``: ``fill(fd)`` writes a temp file beside it,
    which is renamed into place once ``fill`` returns (replacing any file of
    that name); where ``fill`` raises (a check failed, a disk is full), the
    temp file is removed and nothing appears."""
    fd, tmp = create_beside(dest)
    try:
        fill(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, dest)
        tmp = ""
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def copy_hashing(src: str | os.PathLike[str], out: BinaryIO, block_size: int = hashing.BUFFER_SIZE) -> str:
    """Copy the local file ``src`` to ``out`` block by block; returns the key
    of what was read."""
    h = hashing.new_hasher()
    with open(src, "rb") as f:
        while block := f.read(block_size):
            h.update(block)
            out.write(block)
    return hashing.finish(h)
