"""Reading a cold local file with O_DIRECT: the device fills the caller's
buffer itself, with no copy through the page cache.

Read through the page cache, every byte of a cold file is copied once more
by the CPU, from the page the disk filled into the reader's buffer
(``_copy_to_iter``): on the benchmark's VM the largest single item of a
sparse-edit version's profile, ~0.85 s of CPU per GiB on the thread that
cuts the file, where the reads alone ran at ~1.5 GB/s. With O_DIRECT the
disk's DMA writes into the buffer and nothing is copied; nor does the file
take pages of the cache (lepton.pagecache drops them after a buffered
read; here they are never filled).

Such reads need the buffer's address, the file offset and the length each
a multiple of ALIGN (the device's logical block size; 4096 covers every
usual device). Not every file system takes them: tmpfs refuses the open,
and others may refuse the read. ``reopen`` tries a first read and returns
None where anything fails; the caller then reads through the cache as
before. Only the standard library (and lepton.pagecache).

With ``through_cache`` the same ring reads the file through the page
cache instead, each block dropped from it once read (lepton.pagecache):
a copy more per byte, but the kernel's readahead keeps the disk busy
between reads. Where the work per byte is small that wins. On the
2026-12-07 machine, one O_DIRECT read at a time ran at ~1.5 GB/s (1, 2,
4 or 8 reads in flight per 32 MiB block alike) and cached reads dropped
behind at 2.4-3.3 GB/s. A sparse-edit version of the benchmark's 1 GiB
table (line hashes only) took 1.24-1.43 s read through the cache against
1.41-1.61 s with O_DIRECT (6 alternating pairs; the workers, idle half
the time before, now busy throughout), while a first version (every byte
parsed) took 2.12-2.92 s against 2.21-2.64 s (4 pairs): there the copy
costs more than the reads gain. So the ingest reads a file that has a
previous version through the cache, and a first version with O_DIRECT.
"""

from __future__ import annotations

import mmap
import os

from lepton import pagecache

ALIGN = 4096


class DirectFile:
    """A file descriptor opened with O_DIRECT (or, ``through_cache``,
    without it, each read dropped from the cache), read at aligned offsets."""

    def __init__(self, fd: int, through_cache: bool = False) -> None:
        self.fd = fd
        self.through_cache = through_cache

    @classmethod
    def reopen(cls, fd: int, through_cache: bool = False) -> DirectFile | None:
        """The file open as ``fd``, opened again for direct reads (the same
        file, even if renamed meanwhile); None where the platform or the
        file system does not take them. ``through_cache``: for reads through
        the page cache that drop what they read (see the module's text)."""
        flag = getattr(os, "O_DIRECT", 0)
        if not flag:
            return None
        if through_cache:
            flag = 0
        try:
            direct = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | flag)
        except OSError:
            return None
        try:
            a, b = os.fstat(fd), os.fstat(direct)
            if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
                raise OSError("not the same file")
            with mmap.mmap(-1, ALIGN) as probe:  # page-aligned, as the reads' buffers must be
                os.preadv(direct, [probe], 0)
        except OSError:  # EINVAL: O_DIRECT taken by the open, refused by the read
            os.close(direct)
            return None
        return cls(direct, through_cache)

    def read(self, into: memoryview, offset: int) -> int:
        """Fill ``into`` (at an aligned address, a multiple of ALIGN long)
        with the file's bytes from ``offset`` (aligned); the bytes read,
        fewer than asked only at the end of the file."""
        if offset % ALIGN or len(into) % ALIGN:
            raise ValueError(f"unaligned direct read: {len(into)} bytes at {offset}")
        total = 0
        while total < len(into):
            n = os.preadv(self.fd, [into[total:]], offset + total)
            if self.through_cache and n:
                pagecache.drop(self.fd, offset + total, n)
            total += n
            if n == 0 or n % ALIGN:
                break  # the end of the file (its last, partial block)
        return total

    def close(self) -> None:
        """Let go of the file (safe to call twice)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
