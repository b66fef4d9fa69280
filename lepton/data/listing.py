"""File listings: a large tree's entries kept outside its manifest, so a new
version stores about what changed rather than its whole file list again.

A tree of LISTING_MIN files or more names, in ``TreeDataset.listing``, a
chain of listing objects: a full listing, then deltas, each over the one
before it (the paths it removes, the entries it adds or changes). A version
whose files differ from its parent's by a little appends one delta to the
parent's chain; past MAX_CHAIN objects, or when a delta would touch more
than MAX_CHANGED of the files, it starts over with a full listing. Unchanged
files keep the parent's chain (or inline list) as it is, so snapshotting an
unchanged folder still yields the same id. Smaller trees keep their entries
inline in the manifest's JSON, as every tree did before (both forms load).

Why this over the alternatives, on the S4 benchmark's shape (20,000 files
of ~50 KB, 1% rewritten and 1% added per version): inline JSON costs ~140
bytes a file in every version (~2.8 MB); a full binary listing ~52 bytes a
file (~1 MB), 32 of them the incompressible digest; a delta ~55 bytes per
changed file (~22 KB for 2%), plus one full listing per MAX_CHAIN versions.
Content-defined chunks of the list (a prolly tree) would keep ids free of
history, but scattered edits touch most chunks. The cost of deltas: the id
follows the chain, so the same files reached by another history get
another id (as patched table chunks do). A chain is named whole by the
manifest, so its objects are fetched at once and gc sees them unread.

Format (version 1): b"LPTL", a format byte, a kind byte (0 full, 1 delta);
a delta then has the raw 32-byte blake3 digest of the listing it applies
to; varints: the tree's file count once applied, the row count n. Then
columns over the rows, which are in strictly increasing path order: n tags
(a byte: 0 removed, 1 file, 2 chunked file); n shared-prefix lengths and n
suffix lengths (little-endian u16, over the paths' UTF-8, each path coded
against the one before it); the suffixes; for the m rows that are files,
m sizes (u64) and m 32-byte digests; for the c chunked ones, c chunk
counts (u32) and 32 bytes per chunk. The bytes are defined here, not by a
compressor's version, so the same listing always hashes the same. Every
object is verified on read (the store checks its hash); its structure is
checked here (bounds, order, links, counts; entries validated), and errors
name the object.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from lepton import hashing
from lepton.errors import IntegrityError, LeptonError
from lepton.manifest import FileEntry, TreeDataset

if TYPE_CHECKING:
    from lepton.store.objects import ObjectStore

MAGIC, FORMAT = b"LPTL", 1
FULL, DELTA = 0, 1
REMOVED, FILE, CHUNKED = 0, 1, 2
LISTING_MIN = 256  # trees with fewer files keep their entries inline in the manifest
MAX_CHAIN = 16  # listing objects a version names at most: a full listing, then deltas
MAX_CHANGED = 0.25  # a delta over this share of the files is written as a full listing
FETCH_WORKERS = 8
PREFIX = "blake3:"

Read = Callable[[str], bytes]
_ENTRIES = TypeAdapter(tuple[FileEntry, ...])


@dataclass(frozen=True)
class Part:
    """One decoded listing object."""

    base: str | None  # the listing a delta applies to (None: a full listing)
    files: int  # the tree's file count once this part is applied
    rows: tuple[FileEntry | str, ...]  # entries, and (deltas) removed paths as str


# ---- writing ---------------------------------------------------------------------
def write(
    store: ObjectStore, files: Sequence[FileEntry], parent: TreeDataset | None
) -> tuple[str, ...] | None:
    """Store the listing object ``files`` need and return the chain the new
    manifest names; None: the entries stay inline."""
    if parent is not None and len(parent.files) == len(files) and all(map(_same, parent.files, files)):
        return parent.listing  # unchanged: the parent's form, whatever it is
    if len(files) < LISTING_MIN or not _encodable(files):
        return None
    chain = parent.listing if parent is not None else None
    if chain and len(chain) < MAX_CHAIN:
        rows = _delta(parent.files, files)  # type: ignore[union-attr]
        if len(rows) <= MAX_CHANGED * len(files):
            return (*chain, store.put_bytes(encode(rows, len(files), base=chain[-1])))
    return (store.put_bytes(encode(files, len(files))),)


def _same(a: FileEntry, b: FileEntry) -> bool:
    return a.path == b.path and a.id == b.id and a.size == b.size and a.chunks == b.chunks


def _encodable(files: Sequence[FileEntry]) -> bool:
    """Paths strictly increasing (sorted, unique), UTF-8 of at most 65,535
    bytes, and every key a blake3 key."""
    try:
        if any(len(f.path.encode()) > 0xFFFF for f in files):
            return False
    except UnicodeEncodeError:
        return False
    keys = (k for f in files for k in (f.id, *(f.chunks or ())))
    ordered = all(a.path < b.path for a, b in zip(files, files[1:], strict=False))
    return ordered and all(hashing.is_key(k) for k in keys)


def _delta(before: Sequence[FileEntry], after: Sequence[FileEntry]) -> list[FileEntry | str]:
    """Rows turning ``before`` into ``after``: removed paths, new or changed entries."""
    old = {e.path: e for e in before}
    new = {e.path for e in after}
    rows: list[FileEntry | str] = [p for p in old if p not in new]
    rows += [e for e in after if (o := old.get(e.path)) is None or not _same(o, e)]
    return sorted(rows, key=_path)


def _path(row: FileEntry | str) -> str:
    return row if isinstance(row, str) else row.path


def encode(rows: Sequence[FileEntry | str], files: int, base: str | None = None) -> bytes:
    """A listing object's bytes; ``rows`` sorted by path, str rows (removed
    paths) only in a delta (``base`` given)."""
    paths = [_path(r).encode() for r in rows]
    shared = [0, *map(_shared, paths, paths[1:])] if paths else []
    entries = [r for r in rows if not isinstance(r, str)]
    if base is None and len(entries) != len(rows):
        raise ValueError("a full listing removes nothing")
    chunked = [e.chunks for e in entries if e.chunks is not None]
    n = len(rows)
    out = [MAGIC, bytes((FORMAT, FULL if base is None else DELTA))]
    out += [bytes.fromhex(base[len(PREFIX) :])] if base is not None else []
    out += [_varint(files), _varint(n)]
    out.append(bytes(REMOVED if isinstance(r, str) else FILE if r.chunks is None else CHUNKED for r in rows))
    out.append(struct.pack(f"<{n}H", *shared))
    out.append(struct.pack(f"<{n}H", *(len(p) - k for p, k in zip(paths, shared, strict=True))))
    out += [p[k:] for p, k in zip(paths, shared, strict=True)]
    out.append(struct.pack(f"<{len(entries)}Q", *(e.size for e in entries)))
    out.append(bytes.fromhex("".join(e.id[len(PREFIX) :] for e in entries)))
    out.append(struct.pack(f"<{len(chunked)}I", *map(len, chunked)))
    out.append(bytes.fromhex("".join(k[len(PREFIX) :] for c in chunked for k in c)))
    return b"".join(out)


def _shared(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# ---- reading ---------------------------------------------------------------------
class _Bad(Exception):
    pass


def decode(data: bytes, key: str) -> Part:
    """A listing object's rows, its structure checked (IntegrityError naming ``key``)."""
    try:
        return _decode(memoryview(data))
    except (_Bad, IndexError, struct.error, UnicodeDecodeError, ValidationError) as e:
        why = "it ends early" if isinstance(e, IndexError | struct.error) else str(e)
        raise IntegrityError(f"listing object {key} is not a readable file listing: {why}") from None


def _decode(buf: memoryview) -> Part:
    if bytes(buf[:4]) != MAGIC:
        raise _Bad("not a listing (bad magic)")
    if buf[4] != FORMAT:
        raise _Bad(f"listing format {buf[4]}; this Lepton reads {FORMAT}")
    kind, i = buf[5], 6
    if kind not in (FULL, DELTA):
        raise _Bad(f"unknown listing kind {kind}")
    base = None
    if kind == DELTA:
        base, i = PREFIX + _take(buf, i, 32).hex(), i + 32
    files, i = _read_varint(buf, i)
    n, i = _read_varint(buf, i)
    tags, i = bytes(_take(buf, i, n)), i + n
    if not set(tags) <= ({FILE, CHUNKED} if base is None else {FILE, CHUNKED, REMOVED}):
        raise _Bad("a row has a bad tag")
    shared, lengths = struct.unpack_from(f"<{n}H", buf, i), struct.unpack_from(f"<{n}H", buf, i + 2 * n)
    i += 4 * n
    blob, i = bytes(_take(buf, i, sum(lengths))), i + sum(lengths)
    paths, prev, at = [], b"", 0
    for k, length in zip(shared, lengths, strict=True):
        raw = prev[:k] + blob[at : at + length]
        if raw <= prev and paths or k > len(prev):
            raise _Bad(f"paths out of order at {raw.decode(errors='replace')!r}")
        paths.append(raw.decode())
        prev, at = raw, at + length
    m = n - tags.count(REMOVED)
    sizes = struct.unpack_from(f"<{m}Q", buf, i)
    ids, i = _take(buf, i + 8 * m, 32 * m).hex(), i + 40 * m
    c = tags.count(CHUNKED)
    counts, i = struct.unpack_from(f"<{c}I", buf, i), i + 4 * c
    keys, i = _take(buf, i, 32 * sum(counts)).hex(), i + 32 * sum(counts)
    if i != len(buf):
        raise _Bad(f"{len(buf) - i} bytes after the last row")
    slots: list[str | None] = []  # removed paths, and None where an entry goes
    docs: list[dict[str, Any]] = []
    j = c = at = 0
    for path, tag in zip(paths, tags, strict=True):
        if tag == REMOVED:
            slots.append(path)
            continue
        chunks = None
        if tag == CHUNKED:
            end = at + 64 * counts[c]
            chunks = [PREFIX + keys[h : h + 64] for h in range(at, end, 64)]
            at, c = end, c + 1
        digest = PREFIX + ids[64 * j : 64 * j + 64]
        docs.append({"path": path, "size": sizes[j], "id": digest, "chunks": chunks})
        slots.append(None)
        j += 1
    entries = _ENTRIES.validate_python(docs)
    if len(entries) == n:
        return Part(base, files, entries)
    it = iter(entries)
    return Part(base, files, tuple(next(it) if s is None else s for s in slots))


def _take(buf: memoryview, i: int, n: int) -> memoryview:
    if i + n > len(buf):
        raise IndexError
    return buf[i : i + n]


def _read_varint(buf: memoryview, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, i
        shift += 7
        if shift > 63:
            raise _Bad("a number is too long")


def resolve(chain: Sequence[str], read: Read, tree: str | None = None) -> tuple[FileEntry, ...]:
    """The files a listing chain stands for. ``read`` is the store's verified
    read (NotFound / IntegrityError for a missing or corrupt object); the
    chain's links and counts are checked here."""
    what = f"tree {tree}" if tree else "a tree"

    def fetch(key: str) -> Part:
        try:
            return decode(read(key), key)
        except LeptonError as e:
            raise type(e)(f"{what} cannot be loaded: {e}") from e

    if len(chain) > 1:
        with ThreadPoolExecutor(min(len(chain), FETCH_WORKERS)) as pool:
            parts = list(pool.map(fetch, chain))
    else:
        parts = [fetch(k) for k in chain]
    return apply(parts, chain, what)


def apply(parts: Sequence[Part], chain: Sequence[str], what: str) -> tuple[FileEntry, ...]:
    if not parts or parts[0].base is not None:
        raise IntegrityError(f"{what}: its listing chain does not start with a full listing")
    entries: dict[str, FileEntry] = {}
    for i, (part, key) in enumerate(zip(parts, chain, strict=True)):
        if i and part.base != chain[i - 1]:
            raise IntegrityError(f"{what}: listing {key} applies to {part.base}, not to {chain[i - 1]}")
        for row in part.rows:
            if isinstance(row, str):
                if entries.pop(row, None) is None:
                    raise IntegrityError(f"{what}: listing {key} removes {row!r}, which is not there")
            else:
                entries[row.path] = row
        if len(entries) != part.files:
            raise IntegrityError(f"{what}: listing {key} gives {len(entries)} files, not {part.files}")
    if len(parts) == 1:
        return tuple(entries.values())  # a full listing is in path order
    return tuple(sorted(entries.values(), key=_path))


def named(data: bytes, key: str) -> tuple[str, ...]:
    """The objects one listing object names (its files' objects): what gc keeps."""
    rows = decode(data, key).rows
    return tuple(
        k for e in rows if not isinstance(e, str) for k in (e.chunks if e.chunks is not None else (e.id,))
    )
