"""Snapshots: turn a source into a dataset or labelset manifest whose
objects are all in the store. Nothing is registered here; the caller
registers the manifest once every object it names is stored, so a crash
leaves only unreferenced objects, never a visible half version."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lepton.data.chunks import write_chunks
from lepton.data.patches import read_chunk
from lepton.data.sources import MAX_LISTED, LoadedTable, check_key
from lepton.errors import InvalidInput
from lepton.manifest import Chunk, Labelset, Manifest, Parent, TableDataset, TreeDataset
from lepton.store.objects import ObjectStore

Progress = Callable[[int], None]


def snapshot_table(
    store: ObjectStore,
    name: str,
    table: LoadedTable,
    key: str | None,
    progress: Progress | None = None,
    previous: tuple[Chunk, ...] = (),
) -> TableDataset:
    if key is not None:
        check_key(table, key)
    columns, chunks = write_chunks(store, table.frame, key, table.source, progress, previous=previous)
    return TableDataset(name=name, key=key, columns=columns, rows=len(table.frame), chunks=chunks)


def sample_ids(store: ObjectStore, dataset: Manifest, ref: str) -> pa.ChunkedArray:
    """The sample ids of a dataset as stored, with their type: its key
    column, or its file paths."""
    if isinstance(dataset, TreeDataset):
        return pa.chunked_array([pa.array([f.path for f in dataset.files], pa.large_string())])
    if not isinstance(dataset, TableDataset):
        raise InvalidInput(f"{ref} is a {dataset.kind}, not a dataset")
    if dataset.key is None:
        raise InvalidInput(
            f"dataset {ref} has no key column, so labels cannot point at its rows; "
            "snapshot it again with --key COLUMN"
        )
    tables = [read_chunk(store, c, [dataset.key]) for c in dataset.chunks]
    if tables:
        return pa.concat_tables(tables).column(dataset.key)
    return pa.chunked_array([], pa.large_string())  # no rows: no key is a sample


def _found(keys: pd.Series, samples: pa.ChunkedArray) -> np.ndarray:
    """Per label key: is it a sample? Keys are compared as the samples' type
    (a text key "7" is the sample 7 of an integer key, 1 is 1.0), not as
    their text; a key that cannot be of that type is no sample."""
    try:
        typed = pa.array(keys, from_pandas=True).cast(samples.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        typed = pa.array([_cast(v, samples.type) for v in keys.tolist()], samples.type)
    found = pc.is_in(typed, value_set=samples.combine_chunks())
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)


def _cast(value: object, to: pa.DataType) -> object:
    try:
        return pa.array([value]).cast(to)[0].as_py()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def snapshot_labels(
    store: ObjectStore,
    name: str,
    table: LoadedTable,
    *,
    dataset: Manifest,
    dataset_id: str,
    dataset_ref: str,
    key: str,
    label: str,
    progress: Progress | None = None,
    previous: tuple[Chunk, ...] = (),
) -> Labelset:
    check_key(table, key)
    frame = table.frame
    if label not in frame.columns:
        cols = ", ".join(frame.columns[:20])
        raise InvalidInput(f"{table.source}: label column '{label}' not found; columns are: {cols}")
    if label == key:
        raise InvalidInput(f"{table.source}: the label column cannot also be the key column")
    empty = frame.index[frame[label].isna()]
    if len(empty):
        where = ", ".join(table.line_of(i) for i in empty[:MAX_LISTED])
        raise InvalidInput(f"{table.source}: label column '{label}' is empty at {where}")
    samples = sample_ids(store, dataset, dataset_ref)
    missing = ~_found(frame[key], samples)
    if missing.any():
        idx = frame.index[missing]
        shown = ", ".join(f"{_scalar(frame.at[i, key])!r} ({table.line_of(i)})" for i in idx[:MAX_LISTED])
        text = pa.types.is_string(samples.type) or pa.types.is_large_string(samples.type)
        hint = (
            f" (this file's key column '{key}' was read as numbers and {dataset_ref}'s keys are "
            "text: a key written 007 reads as 7)"
            if text and frame[key].dtype.kind in "iuf"
            else ""
        )
        raise InvalidInput(
            f"{table.source}: {int(missing.sum())} label key(s) are not samples of dataset "
            f"{dataset_ref}; first: {shown}{hint}"
        )
    counts = frame[label].astype(str).value_counts()
    classes = {str(k): int(v) for k, v in sorted(counts.items())}
    columns, chunks = write_chunks(store, frame, key, table.source, progress, previous=previous)
    return Labelset(
        name=name,
        key=key,
        label=label,
        classes=classes,
        columns=columns,
        rows=len(frame),
        chunks=chunks,
        parents=(Parent(id=dataset_id, role="dataset"),),
    )


def _scalar(value: object) -> object:
    """A numpy scalar as the plain Python value users wrote (5, not np.int64(5))."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value
