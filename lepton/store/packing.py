"""Packed objects: content kept as one zstd frame where that saves space.

Tree files (CSV shards, JSON annotations, text) and the byte chunks of
large files are stored packed when zstd makes them at least 10% smaller;
files that do not compress (images, audio, archives) are stored as they
are, after an LZ4 probe of their first 4 KiB (~4 us; a zstd probe costs
~20 us, most of it setting up its context; a C probe of byte entropy and
repeats was tried and cost ~8 us). LZ4 finds repeats, not small
alphabets: content that would compress only for its few symbols (hex or
base64 text with no repeats) is stored as it is. DVC and
git-lfs keep such files whole as they are; git packs its objects too.

A packed object is one standard zstd frame (RFC 8878) whose header holds the
content's size, so ``zstd -d`` reads it. Its key stays the hash of the
content: deduplication, status, the state cache and gc see no difference,
and a store may hold some objects packed and some not (those written before
packing, or by a writer that does not pack).

A reader knows a packed object by the frame's magic number and then by the
key: the frame must decompress to exactly the declared size and hash to the
object's key. A stored file that merely begins with the magic (a ``.zst``
file kept as it is) decompresses, if at all, to other content, and is read
as it is stored. Decompression is bounded: a frame declaring more than
MAX_CONTENT bytes (no packed object is larger) is never decompressed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

from lepton import hashing

if TYPE_CHECKING:
    import pyarrow as pa

MAGIC = b"\x28\xb5\x2f\xfd"
LEVEL = 1  # zstd -1: ~300 MB/s a core on text, ratio within 5% of -3 on the benchmark's files
KEEP = 0.9  # packed only where the frame is at most this share of the content
MIN_SIZE = 64  # smaller content is never packed: a frame's header and checksum eat the gain
PROBE = 4 * 2**10  # the head probed ...
PROBE_KEEP = 0.95  # ... looks compressible where LZ4 keeps at most this share of it
MAX_CONTENT = 16 * 2**20  # tree files above this are chunked; chunks are at most 4 MiB


def _codec(name: str = "zstd") -> pa.Codec:
    import pyarrow as pa  # lazy: model commands need no Arrow to start

    return pa.Codec(name, compression_level=LEVEL if name == "zstd" else None)  # cheap: one a call


def pack(data: bytes | bytearray | memoryview) -> bytes | None:
    """``data`` as a zstd frame, or None where that would not save 10% (or
    the content is larger than any packed object may be)."""
    n = len(data)
    if n < MIN_SIZE or n > MAX_CONTENT or not looks_compressible(memoryview(data)[:PROBE]):
        return None
    frame = _codec().compress(data, asbytes=True)
    if len(frame) > KEEP * n or content_size(frame) != n:
        return None
    return frame


def looks_compressible(head: bytes | bytearray | memoryview) -> bool:
    """Whether content opening with ``head`` is worth a zstd attempt."""
    return len(_codec("lz4_raw").compress(head)) <= PROBE_KEEP * len(head)


def content_size(head: bytes | bytearray | memoryview) -> int | None:
    """The content size a zstd frame header declares; None where ``head``
    does not begin with a frame header that declares one."""
    if len(head) < 6 or bytes(head[:4]) != MAGIC:
        return None
    fhd = head[4]
    if fhd & 0x08:  # a reserved bit: not a frame we read
        return None
    single = (fhd >> 5) & 1
    fcs_bytes = (0 if not single else 1, 2, 4, 8)[fhd >> 6]
    if fcs_bytes == 0:
        return None
    at = 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 0x03]
    if len(head) < at + fcs_bytes:
        return None
    size = int.from_bytes(head[at : at + fcs_bytes], "little")
    return size + 256 if fcs_bytes == 2 else size


def _packed_size(head: bytes | bytearray | memoryview) -> int | None:
    """The content size ``head`` declares, where a packed object may hold
    that much (at most MAX_CONTENT); else None."""
    size = content_size(head)
    return size if size is not None and size <= MAX_CONTENT else None


def unpack(stored: bytes | bytearray | memoryview) -> bytes | None:
    """The content a packed object holds; None where ``stored`` is no frame
    this module could have written (the caller then takes it as stored and
    verifies that). The caller checks the content against the key."""
    size = _packed_size(stored)
    if size is None or len(stored) >= size:
        return None  # nothing is packed unless that makes it smaller
    import pyarrow as pa

    try:
        return _codec().decompress(stored, decompressed_size=size, asbytes=True)
    except (OSError, ValueError, pa.ArrowException):
        return None


def content_of(key: str, stored: bytes) -> bytes | None:
    """The content of a packed object whose content hashes to ``key``; None
    where ``stored`` is not that (the caller then verifies it as stored)."""
    if stored[:4] != MAGIC:
        return None
    content = unpack(stored)
    return content if content is not None and hashing.hash_bytes(content) == key else None


def verified(key: str, stored: bytes) -> tuple[bytes, str | None]:
    """(content, None) where ``stored`` is the object ``key`` (a packed one
    unpacked), else (``stored``, what it hashes to)."""
    content = content_of(key, stored)
    if content is not None:
        return content, None
    actual = hashing.hash_bytes(stored)
    return stored, (None if actual == key else actual)


def read_on(src: BinaryIO, first: bytes) -> bytes:
    """``first``, an object's opening bytes read from ``src``, and where they
    open a frame that could be a packed object, the rest of it: at most its
    declared content size in all (a packed object is smaller), so a stream
    that goes on further is no packed object and is read on as stored."""
    size = _packed_size(first)
    if size is None or len(first) >= size:
        return first
    return first + src.read(size - len(first))
