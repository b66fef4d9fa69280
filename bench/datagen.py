"""Data sets for bench/dvc_compare.py, generated here, deterministically.

Tables are CSV with fixed-width rows, so versions can be made the way users
make them, by editing the file in place (append, relabel, edit rows) without
rewriting it:

    id,f0,f1,...,f9,label
    10000000,0.417022,0.720324,...,0.302333,7

- ``id``: 8 digits, 10,000,000 + row number (unique, increasing);
- ``f0..f9``: uniform fractions with 6 decimals (incompressible-ish, like
  real measurements: Parquet keeps about 3/4 of the CSV's bytes);
- ``label``: one digit 0-9.

A full row is 101 bytes, so a 1 GiB file has about 10.6M rows. The same
layout without ``label`` is the features file, and ``id,label`` is the
labels file (S2). Every random draw is seeded by (seed, what, version), so
each tool's run sees byte-identical files whatever the order of the runs.

Trees are ``d000/f000000.bin ...``: random (incompressible, like images)
files of 45-55 KB in 100 folders; a changed file is rewritten whole. Text
trees (``text=True``) are ``d000/f000000.csv ...`` of the same sizes, each a
file of fixed-width annotation records (zstd -1 keeps ~40% of their bytes):

    image,x,y,w,h,class,score
    img0123456.jpg,0412,0118,064,096,3,0.913402

and a changed one is edited in part, as annotations are corrected: 5% of
its records get new values in place and 2% more are appended.

    python bench/datagen.py table OUT.csv --rows 1000000   # try it
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ID_BASE = 10_000_000
ID_DIGITS = 8
FEATURES = 10
DECIMALS = 6
FEATURE_WIDTH = 2 + DECIMALS  # "0.dddddd"
BLOCK_ROWS = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Layout:
    """Which columns a fixed-width table file has."""

    features: bool = True
    label: bool = True

    @property
    def header(self) -> bytes:
        cols = ["id"]
        if self.features:
            cols += [f"f{i}" for i in range(FEATURES)]
        if self.label:
            cols.append("label")
        return (",".join(cols) + "\n").encode()

    @property
    def row_bytes(self) -> int:
        n = ID_DIGITS
        if self.features:
            n += FEATURES * (1 + FEATURE_WIDTH)
        if self.label:
            n += 2
        return n + 1

    @property
    def feature_offset(self) -> int:
        return ID_DIGITS + 1

    @property
    def label_offset(self) -> int:
        return self.row_bytes - 2


FULL = Layout()
FEATURES_ONLY = Layout(label=False)
LABELS_ONLY = Layout(features=False)


def rows_for_bytes(nbytes: float, layout: Layout = FULL) -> int:
    return max(1000, int(nbytes // layout.row_bytes))


def _rng(seed: int, *what: int) -> np.random.Generator:
    return np.random.default_rng([seed, *what])


def _digits(out: np.ndarray, col: int, values: np.ndarray, width: int) -> None:
    """Write ``values`` as zero-padded decimals into out[:, col:col+width]."""
    v = values.astype(np.int64, copy=True)
    for k in range(width - 1, -1, -1):
        out[:, col + k] = 48 + (v % 10)
        v //= 10


def render(layout: Layout, ids: np.ndarray, feats: np.ndarray | None, labels: np.ndarray | None) -> bytes:
    """Rows as CSV bytes. ``feats``: (n, FEATURES) ints in [0, 10**DECIMALS)."""
    n = len(ids)
    out = np.full((n, layout.row_bytes), ord(","), dtype=np.uint8)
    _digits(out, 0, ids, ID_DIGITS)
    col = ID_DIGITS + 1
    if layout.features:
        assert feats is not None
        for j in range(FEATURES):
            out[:, col] = ord("0")
            out[:, col + 1] = ord(".")
            _digits(out, col + 2, feats[:, j], DECIMALS)
            col += FEATURE_WIDTH + 1
    if layout.label:
        assert labels is not None
        out[:, col] = 48 + labels
    out[:, -1] = ord("\n")
    return out.tobytes()


def _block(seed: int, what: int, block: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(seed, what, block)
    feats = rng.integers(0, 10**DECIMALS, size=(n, FEATURES), dtype=np.int64)
    labels = rng.integers(0, 10, size=n, dtype=np.int64)
    return feats, labels


def write_table(path: Path, rows: int, layout: Layout = FULL, seed: int = 0) -> int:
    """Write a new table of ``rows`` rows; the same seed gives the same values
    in every layout (the features and labels files split the full file)."""
    with open(path, "wb") as f:
        f.write(layout.header)
        for b, start in enumerate(range(0, rows, BLOCK_ROWS)):
            n = min(BLOCK_ROWS, rows - start)
            feats, labels = _block(seed, 0, b, n)
            ids = ID_BASE + np.arange(start, start + n, dtype=np.int64)
            f.write(render(layout, ids, feats, labels))
    return path.stat().st_size


def table_rows(path: Path, layout: Layout = FULL) -> int:
    size = path.stat().st_size - len(layout.header)
    assert size % layout.row_bytes == 0, f"{path}: not a fixed-width table"
    return size // layout.row_bytes


def append_rows(path: Path, n: int, version: int, layout: Layout = FULL, seed: int = 0) -> None:
    """Append ``n`` new rows (ids continue after the last row)."""
    start = table_rows(path, layout)
    with open(path, "ab") as f:
        for b, s in enumerate(range(0, n, BLOCK_ROWS)):
            k = min(BLOCK_ROWS, n - s)
            feats, labels = _block(seed, 1000 + version, b, k)
            ids = ID_BASE + np.arange(start + s, start + s + k, dtype=np.int64)
            f.write(render(layout, ids, feats, labels))


def _pick(rows: int, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(rows, size=min(n, rows), replace=False))


def relabel(path: Path, fraction: float, version: int, layout: Layout = FULL, seed: int = 0) -> int:
    """Change the label of ``fraction`` of the rows, in place (each picked
    label becomes another class). The same rows and new labels whatever
    the layout, so the full file and the labels file stay in step."""
    rows = table_rows(path, layout)
    rng = _rng(seed, 2000 + version)
    idx = _pick(rows, round(rows * fraction), rng)
    shift = rng.integers(1, 10, size=len(idx), dtype=np.int64)
    mm = np.memmap(path, dtype=np.uint8, mode="r+")
    pos = len(layout.header) + idx * layout.row_bytes + layout.label_offset
    old = mm[pos].astype(np.int64) - 48
    mm[pos] = (48 + (old + shift) % 10).astype(np.uint8)
    mm.flush()
    del mm
    return len(idx)


def edit_rows(path: Path, fraction: float, version: int, layout: Layout = FULL, seed: int = 0) -> int:
    """Give ``fraction`` of the rows new feature values, in place, scattered."""
    rows = table_rows(path, layout)
    rng = _rng(seed, 3000 + version)
    idx = _pick(rows, round(rows * fraction), rng)
    feats = rng.integers(0, 10**DECIMALS, size=(len(idx), FEATURES), dtype=np.int64)
    labels = np.zeros(len(idx), dtype=np.int64)
    fresh = np.frombuffer(render(layout, idx + ID_BASE, feats, labels), dtype=np.uint8)
    fresh = fresh.reshape(len(idx), layout.row_bytes)
    lo, hi = layout.feature_offset, layout.feature_offset + FEATURES * (1 + FEATURE_WIDTH) - 1
    mm = np.memmap(path, dtype=np.uint8, mode="r+")
    base = len(layout.header) + idx * layout.row_bytes
    for c in range(lo, hi):
        mm[base + c] = fresh[:, c]
    mm.flush()
    del mm
    return len(idx)


# ---- file trees ------------------------------------------------------------
TREE_DIRS = 100
FILE_MIN, FILE_MAX = 45_000, 55_000


TEXT_HEADER = b"image,x,y,w,h,class,score\n"
TEXT_FIELDS = (("img", 7), (".jpg,", 4), (",", 4), (",", 3), (",", 3), (",", 1), (",0.", 6))  # text, digits
TEXT_ROW = sum(len(p) + w for p, w in TEXT_FIELDS) + 1  # 44 bytes with its newline
TEXT_LIMITS = (10**7, 1920, 1080, 400, 400, 10, 10**6)


def _tree_path(root: Path, i: int, text: bool = False) -> Path:
    return root / f"d{i % TREE_DIRS:03d}" / f"f{i:06d}.{'csv' if text else 'bin'}"


def _records(rng: np.random.Generator, n: int) -> bytes:
    """``n`` annotation records (TEXT_ROW bytes each)."""
    out = np.empty((n, TEXT_ROW), dtype=np.uint8)
    col = 0
    for (prefix, width), limit in zip(TEXT_FIELDS, TEXT_LIMITS, strict=True):
        out[:, col : col + len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
        col += len(prefix)
        _digits(out, col, rng.integers(0, limit, size=n, dtype=np.int64), width)
        col += width
    out[:, -1] = ord("\n")
    return out.tobytes()


def _write_file(root: Path, i: int, rng: np.random.Generator, text: bool = False) -> int:
    size = int(rng.integers(FILE_MIN, FILE_MAX + 1))
    p = _tree_path(root, i, text)
    p.parent.mkdir(parents=True, exist_ok=True)
    if text:
        p.write_bytes(TEXT_HEADER + _records(rng, (size - len(TEXT_HEADER)) // TEXT_ROW))
    else:
        p.write_bytes(rng.bytes(size))
    return p.stat().st_size


def _edit_file(root: Path, i: int, rng: np.random.Generator) -> None:
    """Correct 5% of a text file's records in place and append 2% more."""
    p = _tree_path(root, i, text=True)
    rows = (p.stat().st_size - len(TEXT_HEADER)) // TEXT_ROW
    idx = _pick(rows, max(1, rows // 20), rng)
    fresh = np.frombuffer(_records(rng, len(idx)), dtype=np.uint8).reshape(len(idx), TEXT_ROW)
    with open(p, "r+b") as f:
        for k, row in zip(idx.tolist(), fresh, strict=True):
            f.seek(len(TEXT_HEADER) + k * TEXT_ROW)
            f.write(row.tobytes())
        f.seek(0, os.SEEK_END)
        f.write(_records(rng, max(1, rows // 50)))


def write_tree(root: Path, files: int, seed: int = 0, text: bool = False) -> int:
    root.mkdir(parents=True, exist_ok=True)
    total = 0
    for start in range(0, files, 1000):
        rng = _rng(seed, 4000, start)
        for i in range(start, min(files, start + 1000)):
            total += _write_file(root, i, rng, text)
    return total


def tree_files(root: Path) -> int:
    return sum(len(fs) for _, _, fs in os.walk(root))


def change_tree(
    root: Path, base_files: int, version: int, fraction: float = 0.01, seed: int = 0, text: bool = False
) -> tuple[int, int]:
    """Change ``fraction`` of the files already there (random files: rewritten
    whole; text files: edited in part) and add as many new files
    (``fraction`` of the first version's count each)."""
    existing = tree_files(root)
    n = max(1, round(base_files * fraction))
    rng = _rng(seed, 5000 + version)
    for i in _pick(existing, n, rng):
        if text:
            _edit_file(root, int(i), rng)
        else:
            _write_file(root, int(i), rng)
    for i in range(existing, existing + n):
        _write_file(root, i, rng, text)
    return n, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["table", "tree", "text-tree"])
    ap.add_argument("out", type=Path)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=1000)
    args = ap.parse_args()
    if args.kind == "table":
        print(write_table(args.out, args.rows), "bytes")
    else:
        print(write_tree(args.out, args.files, text=args.kind == "text-tree"), "bytes")


if __name__ == "__main__":
    main()
