"""A local cache of patch entries' line hashes (lepton.data.lineedits).

A chunk entry that is a patch keeps its line hashes in pieces: the base's
line sidecar, then each patch's LINE column over it. Reading them back
costs an object read per piece and a Parquet decode per patch, for every
chunk of a sparsely edited table (2.2 patches a chunk after 16 versions:
~0.8 s of the workers' time on a 1 GiB table, more from an S3 store). The
ingest holds the whole array when it writes such an entry, so it keeps it
here too, with the positions each patch of the chain holds, under the
entry's identity (its id and its base's: never stale), and the next
version reads one local file.

Only a hint: a missing, short or damaged file (each carries the blake3 of
its contents) is read from the store as before. An entry's file is removed
once a patch over it is written (the next snapshot needs the newest
entries), and the folder is trimmed to MAX_BYTES, oldest first, whenever
it is opened: about one version's line hashes (8 bytes a row) per table.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import blake3
import numpy as np

from lepton.manifest import Chunk

MAGIC = b"LPLCACH1"
MAX_BYTES = 2 << 30


class LineCache:
    """patch entry -> (keysum, line hashes, positions held by each patch of its chain, its own first)."""

    def __init__(self, folder: str | os.PathLike[str], max_bytes: int = MAX_BYTES) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        _trim(self.folder, max_bytes)

    def _path(self, entry: Chunk) -> Path:
        return self.folder / entry.ident.split(":", 1)[-1]

    def has(self, entry: Chunk) -> bool:
        return entry.base is not None and self._path(entry).exists()

    def get(self, entry: Chunk) -> tuple[bytes, np.ndarray, list[np.ndarray]] | None:
        """What put kept for ``entry``; None where there is nothing sound."""
        if entry.base is None:
            return None
        try:
            data = self._path(entry).read_bytes()
        except OSError:
            return None
        return _parse(data, entry.rows, entry.depth)

    def put(self, entry: Chunk, keysum: bytes, hashes: np.ndarray, held: list[np.ndarray]) -> None:
        """Keep ``entry``'s line hashes (best effort: a full disk only loses the hint)."""
        if entry.base is None or len(held) != entry.depth or len(hashes) != entry.rows:
            return
        lengths = np.array([len(h) for h in held], dtype="<u8")
        body = b"".join(
            [
                keysum,
                np.array([len(hashes), len(held)], dtype="<u8").tobytes(),
                lengths.tobytes(),
                np.ascontiguousarray(hashes, dtype="<u8").tobytes(),
                *(np.ascontiguousarray(h, dtype="<i8").tobytes() for h in held),
            ]
        )
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".put-")
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + blake3.blake3(body).digest() + body)
            os.replace(tmp, self._path(entry))
            tmp = None
        except OSError:
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def forget(self, entry: Chunk) -> None:
        """``entry`` superseded (a patch over it was written)."""
        if entry.base is not None:
            with contextlib.suppress(OSError):
                self._path(entry).unlink()


def _parse(data: bytes, rows: int, depth: int) -> tuple[bytes, np.ndarray, list[np.ndarray]] | None:
    head = len(MAGIC) + 32
    if len(data) < head + 32 or data[: len(MAGIC)] != MAGIC:
        return None
    body = memoryview(data)[head:]
    if blake3.blake3(body).digest() != data[len(MAGIC) : head]:
        return None
    keysum = bytes(body[:16])
    n, levels = (int(x) for x in np.frombuffer(body, "<u8", count=2, offset=16))
    if n != rows or levels != depth or len(body) < 32 + 8 * levels:
        return None
    lengths = [int(x) for x in np.frombuffer(body, "<u8", count=levels, offset=32)]
    at = 32 + 8 * levels
    if len(body) != at + 8 * (n + sum(lengths)):
        return None
    hashes = np.frombuffer(body, "<u8", count=n, offset=at).astype(np.uint64)
    at += 8 * n
    held = []
    for length in lengths:
        held.append(np.frombuffer(body, "<i8", count=length, offset=at).astype(np.int64))
        at += 8 * length
    return keysum, hashes, held


def _trim(folder: Path, max_bytes: int) -> None:
    """The oldest files out until the folder holds at most half of ``max_bytes``, once it holds more."""
    try:
        found = [(e.stat().st_mtime_ns, e.stat().st_size, e.path) for e in os.scandir(folder) if e.is_file()]
    except OSError:
        return
    total = sum(size for _, size, _ in found)
    if total <= max_bytes:
        return
    for _, size, path in sorted(found):
        with contextlib.suppress(OSError):
            os.unlink(path)
        total -= size
        if total <= max_bytes // 2:
            return
