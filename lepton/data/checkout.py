"""Checkout: materialise a dataset or labelset version on the local disk.
Every object is verified before it is written; a table is written whole
into a temp file and renamed, a tree file by file (each atomically)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lepton.data.patches import read_chunk
from lepton.data.sources import TABLE_FORMATS
from lepton.data.trees import checkout_tree
from lepton.errors import InvalidInput
from lepton.manifest import Labelset, Manifest, TableDataset, TreeDataset
from lepton.store.objects import ObjectStore

Progress = Callable[[int], None]
JSONL_BATCH = 65_536


def checkout(store: ObjectStore, manifest: Manifest, dest: Path, progress: Progress | None = None) -> Path:
    if isinstance(manifest, TreeDataset):
        return checkout_tree(store, manifest, dest, progress)
    if isinstance(manifest, TableDataset | Labelset):
        return _table(store, manifest, dest)
    raise InvalidInput(f"a {manifest.kind} cannot be checked out")


def _table(store: ObjectStore, manifest: TableDataset | Labelset, dest: Path) -> Path:
    if dest.is_dir() or not dest.suffix:
        dest = dest / f"{manifest.name}.parquet"
    fmt = TABLE_FORMATS.get(dest.suffix.lower())
    if fmt is None:
        raise InvalidInput(f"{dest}: unknown table format; use .parquet, .csv, .tsv or .jsonl")
    table = pa.concat_tables([read_chunk(store, c) for c in manifest.chunks])
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    try:
        if fmt == "parquet":
            pq.write_table(table, tmp)
        elif fmt in ("csv", "tsv"):
            _write_delimited(table, tmp, "," if fmt == "csv" else "\t")
        else:
            _write_jsonl(table.to_pandas(), tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _write_delimited(table: pa.Table, path: str, sep: str) -> None:
    """Arrow's multithreaded CSV writer (about 10x pandas); nested columns,
    which it cannot write, go through pandas."""
    try:
        pacsv.write_csv(table, path, pacsv.WriteOptions(delimiter=sep, quoting_style="needed"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        table.to_pandas().to_csv(path, index=False, sep=sep)


def _write_jsonl(frame: pd.DataFrame, path: str) -> None:
    """One JSON object per row. Not DataFrame.to_json: it rounds floats to 10
    digits; json.dumps writes the shortest repr that reads back exactly."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with open(path, "w", encoding="utf-8") as out:
        for batch in table.to_batches(max_chunksize=JSONL_BATCH):
            for rec in batch.to_pylist():
                out.write(json.dumps(rec, ensure_ascii=False, default=_json_value))
                out.write("\n")


def _json_value(v: object) -> object:
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    return str(v)  # Decimal and other exact scalars: their text form
