"""Per-line hashes of a raw chunk (lepton/data/_linehash.c), and the line
sidecar that keeps them with a stored chunk.

A chunk of a keyed table stored whole carries a line sidecar: a 64-bit hash
of each of its text lines, and a 128-bit hash of the multiset of its key
field texts. Patches over it carry the new lines' hashes in a LINE column.
A new version of the chunk, edited in place, then needs neither parsing
nor the previous rows (lepton.data.lineedits): comparing its lines' hashes
with the ones kept names the changed lines, and only those are parsed.

An edited line is taken for unchanged only if its 64-bit hash equals its
former text's, about 1 in 1.8e19 for each edited line. (git's index and
DVC's state cache trust a file's size and mtime to the same end.)

Where the extension was not built, or a chunk has quotes or empty lines,
there are no line hashes and every edited chunk is parsed whole."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:
    from lepton.data import _linehash
except ImportError:  # not built: edited chunks are parsed whole
    _linehash = None

LINE = "__lepton_line__"  # a patch's column: the hash of each of its rows' lines
MAGIC = b"LPLINES1"


@dataclass(frozen=True)
class Lines:
    """A raw chunk's lines: ``hashes`` (uint64, one a line), ``starts``
    (int64, n + 1 offsets: line i is raw[starts[i]:starts[i + 1]]), and
    ``keysum``: 16 bytes, a hash of the multiset of the lines' key texts."""

    hashes: np.ndarray
    starts: np.ndarray
    keysum: bytes

    def __len__(self) -> int:
        return len(self.hashes)


def of(raw: bytes | memoryview, sep: str, key_field: int) -> Lines | None:
    """The lines of ``raw`` (no header), key field number ``key_field``;
    None where there are none to be had (see the module's text)."""
    if _linehash is None or len(sep) != 1 or ord(sep) > 255 or sep in '"\r\n':
        return None
    got = _linehash.lines(raw, ord(sep), key_field)
    if got is None:
        return None
    hashes, starts, keysum = got
    return Lines(np.frombuffer(hashes, dtype=np.uint64), np.frombuffer(starts, dtype=np.int64), keysum)


def sidecar(lines: Lines) -> bytes:
    """The object a whole chunk's line hashes are stored as."""
    return MAGIC + lines.keysum + lines.hashes.astype("<u8", copy=False).tobytes()


def read_sidecar(data: bytes) -> tuple[bytes, np.ndarray]:
    """(keysum, hashes) of a line sidecar."""
    head = len(MAGIC) + 16
    if data[: len(MAGIC)] != MAGIC or (len(data) - head) % 8:
        raise ValueError("not a line sidecar")
    return bytes(data[len(MAGIC) : head]), np.frombuffer(data, dtype="<u8", offset=head).astype(np.uint64)


def gather(raw: bytes | memoryview, lines: Lines, positions: np.ndarray) -> bytes:
    """The text of the lines at ``positions``, each ending in a newline."""
    view = memoryview(raw)
    out = bytearray()
    begins, ends = lines.starts[positions].tolist(), lines.starts[positions + 1].tolist()
    for begin, end in zip(begins, ends, strict=True):
        out += view[begin:end]
        if view[end - 1] != 0x0A:  # the chunk's last line, at the end of the file
            out += b"\n"
    return bytes(out)
