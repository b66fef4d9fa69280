"""Table files into dataset and labelset manifests through the streaming
ingest (lepton.data.ingest) when it can take them: plain CSV and TSV, from
a local path or s3://. Returns None when it cannot (another format, a
compressed file, or anything the fast path refuses), and the caller uses
the whole-file reader, whose errors name the file, row and field."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from lepton import pagecache
from lepton.data import chunkparse, dupkeys, ingest, keyspan, resume, sidecars, statecache
from lepton.data.headstart import HeadStart
from lepton.data.linecuts import cutter
from lepton.data.tablefiles import check_table_file, open_table_file
from lepton.manifest import Labelset, Manifest, Parent, TableDataset, TreeDataset
from lepton.store.fs import Location
from lepton.store.objects import ObjectStore

Progress = Callable[[int], None]


@dataclass(frozen=True)
class SourceRead:
    """A local source file's content key, hashed while the ingest read it
    (one read instead of two), and its state when the read began."""

    file: statecache.LocalFile
    key: str
    checked_ns: int  # a time before the file was stat'ed (for the state cache)


@dataclass(frozen=True)
class Taken:
    """What the streaming ingest made of a file: the manifest, the local
    source's key (None when it changed during the read, or is remote), and
    the resume record to keep with the version (lepton.data.resume)."""

    manifest: Any  # TableDataset | Labelset
    read: SourceRead | None
    resume: dict[str, Any] | None

    def meta(self) -> dict[str, Any]:
        return {"resume": self.resume} if self.resume else {}


def streamable(location: Location, path: str, url: str) -> str | None:
    """The separator of a file the streaming ingest reads, else None (the
    file's existence and format are checked here, with clear errors)."""
    fmt = check_table_file(location, path, url)
    if fmt not in ("csv", "tsv") or path.endswith(".gz"):
        return None
    return "," if fmt == "csv" else "\t"


def dataset_file(
    store: ObjectStore,
    memo: ingest.Memo,
    location: Location,
    path: str,
    *,
    sep: str,
    name: str,
    key: str | None,
    previous: TableDataset | Labelset | None,
    progress: Progress | None,
    record: Any = None,
    head: HeadStart | None = None,
) -> Taken | None:
    """The dataset (``record``: the previous version's resume record;
    ``head``: the file already being read, lepton.data.headstart)."""
    taken = _ingest(store, memo, location, path, sep, key, previous, progress, None, record, head)
    if taken is None:
        return None
    got, read, kept = taken
    manifest = TableDataset(name=name, key=key, columns=got.columns, rows=got.rows, chunks=got.chunks)
    return Taken(manifest, read, kept)


def labelset_file(
    store: ObjectStore,
    memo: ingest.Memo,
    location: Location,
    path: str,
    *,
    sep: str,
    name: str,
    key: str,
    label: str,
    dataset: Manifest,
    dataset_id: str,
    previous: TableDataset | Labelset | None,
    progress: Progress | None,
    record: Any = None,
    head: HeadStart | None = None,
) -> Taken | None:
    """The labelset (``record``, ``head``: as for dataset_file)."""
    kind = sample_key_type(dataset)
    if kind is None:
        return None
    same_dataset = isinstance(previous, Labelset) and dataset_id in {p.id for p in previous.parents}
    rule = ingest.LabelRule(
        label=label,
        key_type=kind,
        samples_of=lambda: sample_hashes(store, dataset),
        checked=frozenset(c.keys for c in previous.chunks if c.keys) if same_dataset else frozenset(),  # type: ignore[union-attr]
    )
    taken = _ingest(store, memo, location, path, sep, key, previous, progress, rule, record, head)
    if taken is None:
        return None
    got, read, kept = taken
    labelset = Labelset(
        name=name,
        key=key,
        label=label,
        classes=got.classes or {},
        columns=got.columns,
        rows=got.rows,
        chunks=got.chunks,
        parents=(Parent(id=dataset_id, role="dataset"),),
    )
    return Taken(labelset, read, kept)


def sample_key_type(dataset: Manifest) -> str | None:
    """The type of a dataset's sample ids (a tree's: its paths); None when it has none."""
    if isinstance(dataset, TreeDataset):
        return "large_string"
    if isinstance(dataset, TableDataset) and dataset.key is not None:
        return next(c.type for c in dataset.columns if c.name == dataset.key)
    return None


def sample_hashes(store: ObjectStore, dataset: Manifest) -> np.ndarray:
    """Sorted 64-bit hashes of a dataset's sample ids (hashed as the ingest
    hashes keys); the dataset has ids (sample_key_type)."""
    if isinstance(dataset, TableDataset) and dataset.chunks and all(c.keys for c in dataset.chunks):
        with ThreadPoolExecutor(ingest.SIDECAR_READS) as pool:  # the key sidecars: no row read
            parts = list(pool.map(lambda c: sidecars.load_keys(store, c), dataset.chunks))
        ranges = dupkeys.sorted_unique(parts)  # each part sorted already; sorted on both cores
        return np.concatenate(ranges) if ranges is not None else np.sort(np.concatenate(parts))
    import pandas as pd

    from lepton.data.chunks import read_chunks

    if isinstance(dataset, TreeDataset):
        values = pd.Series([f.path for f in dataset.files], dtype=object)
    else:
        values = read_chunks(store, dataset.chunks, [dataset.key])[dataset.key]  # type: ignore[union-attr]
    return np.sort(pd.util.hash_pandas_object(values, index=False).to_numpy(np.uint64))


def _ingest(
    store: ObjectStore,
    memo: ingest.Memo,
    location: Location,
    path: str,
    sep: str,
    key: str | None,
    previous: TableDataset | Labelset | None,
    progress: Progress | None,
    labels: ingest.LabelRule | None,
    record: Any,
    head: HeadStart | None = None,
) -> tuple[ingest.Ingested, SourceRead | None, dict[str, Any] | None] | None:
    """The streaming ingest of one file (None where it falls back), resumed
    after the prefix it shares with the previous version where the record
    shows one. The file is hashed as it is read: a local file's key is kept
    if the file did not change meanwhile. ``head`` is used only for this
    same file, unchanged since it was opened, else closed; its states stand
    for the ingest's own hash of the bytes it read where the file was
    _settled, so the checkpoints are then kept only if the file did not
    change meanwhile."""
    recorder = resume.Recorder()
    checked = time.time_ns()
    before = statecache.local_file(path) if location.is_local else None
    try:
        with open_table_file(location, path, path) as opened:
            cold = head.cold if head is not None and head.is_for(path) else None  # (it fills the cache)
            stream = pagecache.drop_behind(opened, cold) if location.is_local else opened  # if cold
            header = stream.readline()
            recorder.header(header)
            at = stream.tell()
            cut_by = chunkparse.cut_rule(header, stream.readline(), sep, key, labels is not None)
            stream.seek(at)
            cut = cutter(cut_by)
            points = resume.points_of(record, cut, sep, key, len(previous.chunks)) if previous else []
            if head is not None and not (before is not None and head.holds_for(path, before.stat)):
                head.close()  # of no use: stop reading the file twice
                head = None
            adopt = head is not None and _settled(head)
            got = ingest.ingest_delimited(
                store,
                memo,
                stream,
                sep=sep,
                key=key,
                previous=previous,
                progress=progress,
                labels=labels,
                header=header,
                cut_by=cut_by,
                recorder=recorder,
                points=points,
                head=head,
                adopt=adopt,
                spans=keyspan.from_record(record, key, previous.chunks) if previous else None,
                direct=stream is not opened,  # cold and local (pagecache.DropBehind)
                through_cache=previous is not None,  # edits found by line hashes: read-bound (directread)
            )
        kept = recorder.record(cut, sep, key, got.spans)
        if before is None or statecache.stat_of(os.stat(path)) != before.stat:
            # changed while read: the checkpoints hold for the chunks only if they were all hashed here
            return got, None, None if adopt else kept
        return got, SourceRead(before, recorder.key(), checked), kept
    except ingest.Fallback:  # (the recorder's too: no state where it adopted one)
        return None


def _settled(head: HeadStart) -> bool:
    """Whether the file (unchanged since ``head`` opened it) was last written
    long enough before that for any later write to change its times
    (statecache.racy_window): then what ``head`` read is what the ingest reads."""
    mtime_ns = head.stat[1]
    return head.opened_ns >= mtime_ns + statecache.racy_window(mtime_ns)
