"""Checkout: materialise a dataset or labelset version on the local disk.
Every object is verified before it is written; a table is written whole
into a temp file and renamed, a tree file by file (each atomically)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lepton.data.chunks import read_chunks
from lepton.data.sources import TABLE_FORMATS, safe_rel
from lepton.errors import InvalidInput
from lepton.manifest import Labelset, Manifest, TableDataset, TreeDataset
from lepton.store.objects import ObjectStore

Progress = Callable[[int], None]


def checkout(
    store: ObjectStore, manifest: Manifest, dest: Path, progress: Progress | None = None
) -> Path:
    if isinstance(manifest, TreeDataset):
        return _tree(store, manifest, dest, progress)
    if isinstance(manifest, TableDataset | Labelset):
        return _table(store, manifest, dest)
    raise InvalidInput(f"a {manifest.kind} cannot be checked out")


def _table(store: ObjectStore, manifest: TableDataset | Labelset, dest: Path) -> Path:
    if dest.is_dir() or not dest.suffix:
        dest = dest / f"{manifest.name}.parquet"
    fmt = TABLE_FORMATS.get(dest.suffix.lower())
    if fmt is None:
        raise InvalidInput(f"{dest}: unknown table format; use .parquet, .csv, .tsv or .jsonl")
    frame = read_chunks(store, manifest.chunks)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    try:
        if fmt == "parquet":
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
        elif fmt in ("csv", "tsv"):
            frame.to_csv(tmp, index=False, sep="," if fmt == "csv" else "\t")
        else:
            frame.to_json(tmp, orient="records", lines=True)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _tree(store: ObjectStore, manifest: TreeDataset, dest: Path, progress: Progress | None) -> Path:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput(f"{dest}: destination exists and is not an empty folder")
    root = dest.resolve()
    for entry in manifest.files:
        target = (root / safe_rel(entry.path, manifest.name)).resolve()
        if not target.is_relative_to(root):
            raise InvalidInput(f"{manifest.name}: file {entry.path!r} would escape {dest}")
        store.get_file(entry.id, target)
        if progress:
            progress(entry.size)
    return dest
