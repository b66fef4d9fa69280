"""The repository's side of a source named by path or URL: which reader
takes a table file (the streaming, memoised ingest where it can, else the
whole-file reader), the key recorded for `status`, and what changed in a
source since a name's latest version.

Repo (lepton.repo) calls these; they are kept apart so that Repo stays the
short list of what users run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton.data import statecache
from lepton.errors import InvalidInput, NotFound
from lepton.manifest import Manifest, parse_manifest
from lepton.registry.memo import RegistryMemo
from lepton.store import open_location

if TYPE_CHECKING:
    import pandas as pd

    from lepton.config import S3Settings
    from lepton.data import trees
    from lepton.data.headstart import HeadStart
    from lepton.registry.entities import ArtifactVersion
    from lepton.repo import Progress, Repo
    from lepton.store import Location


def open_source(url: str, s3: S3Settings) -> tuple[Location, str]:
    """The location and path of a source: a local path (or file:// URL) or
    s3://bucket/key; anything else is refused by name."""
    if "\x00" in url:
        raise InvalidInput(f"invalid source path {url!r}")
    if url.startswith("s3://"):
        loc = open_location(url, s3)
        return loc, loc.root
    if "://" in url and not url.startswith("file://"):
        raise InvalidInput(f"{url}: unsupported source; use a local path or s3://bucket/key")
    path = str(Path(url.removeprefix("file://")).expanduser())
    return open_location("/"), path


def dataset_file(
    repo: Repo,
    name: str,
    loc: Location,
    path: str,
    url: str,
    key: str | None,
    progress: Progress | None,
    head: HeadStart | None,
) -> tuple[Manifest, dict[str, Any]]:
    """A table file's dataset manifest and its source meta. CSV/TSV go
    through the streaming, memoised ingest; anything it cannot take (and
    every other format) through the whole-file reader, whose errors name
    the line."""
    from lepton.data import fileingest

    previous, record = repo.latest_table_read(name)
    got = _streamed(
        repo, fileingest.dataset_file, loc, path, url, head,
        name=name, key=key, previous=previous, progress=progress, record=record,
    )  # fmt: skip
    if got is not None:
        return got.manifest, source_key(repo, loc, path, got.read) | got.meta()
    from lepton.data import snapshot as _snap
    from lepton.data import sources  # the whole-file reader (pandas)

    meta = source_key(repo, loc, path)  # before the read: an edit during it shows as a change
    table = sources.read_table(loc, path, url)
    manifest = _snap.snapshot_table(
        repo.store, name, table, key, progress, previous.chunks if previous else ()
    )
    return manifest, meta


def labelset(
    repo: Repo,
    name: str,
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    target: ArtifactVersion,
    key: str,
    label: str,
    progress: Progress | None,
    head: HeadStart | None,
) -> tuple[Manifest, dict[str, Any]]:
    """A labelset manifest of ``source`` (a DataFrame or a table file)
    checked against the dataset version ``target``, and its source meta."""
    from lepton.data import fileingest

    dataset_manifest = repo.load(target.id)
    previous, record = repo.latest_table_read(name)
    if repo.is_frame(source):
        from lepton.data import sources

        table, meta = sources.from_frame(source), {"source": "<DataFrame>"}  # type: ignore[arg-type]
    else:
        url = os.fspath(source)  # type: ignore[arg-type]
        loc, path = open_source(url, repo.settings.s3)
        meta = {"source": url, "dataset": target.ref}
        fast = _streamed(
            repo, fileingest.labelset_file, loc, path, url, head,
            name=name, key=key, label=label, dataset=dataset_manifest, dataset_id=target.id,
            previous=previous, progress=progress, record=record,
        )  # fmt: skip
        if fast is not None:
            return fast.manifest, meta | source_key(repo, loc, path, fast.read) | fast.meta()
        from lepton.data import sources  # the whole-file reader (pandas)

        meta |= source_key(repo, loc, path)  # before the read: an edit during it shows as a change
        table = sources.read_table(loc, path, url)
    from lepton.data import snapshot as _snap

    manifest = _snap.snapshot_labels(
        repo.store,
        name,
        table,
        dataset=dataset_manifest,
        dataset_id=target.id,
        dataset_ref=target.ref,
        key=key,
        label=label,
        progress=progress,
        previous=previous.chunks if previous else (),
    )
    return manifest, meta | {"dataset": target.ref}


def _streamed(
    repo: Repo, ingest: Any, loc: Location, path: str, url: str, head: HeadStart | None, **kw: Any
) -> Any:
    """``ingest``'s result (fileingest.dataset_file or labelset_file) where
    the streaming ingest takes the file (CSV/TSV), else None: the caller
    reads it whole."""
    from lepton.data import fileingest

    sep = fileingest.streamable(loc, path, url)
    if sep is None:
        if head is not None:
            head.close()  # read whole: no prefix to check
        return None
    return ingest(repo.store, RegistryMemo(repo.engine), loc, path, sep=sep, head=head, **kw)


def source_key(repo: Repo, loc: Location, path: str, read: Any = None) -> dict[str, str]:
    """The file's key (for status): hashed as the streaming ingest read it
    (``read``: kept only if the file did not change during the read), else
    read again now. Either way an edit during the read shows as a change."""
    if not loc.is_local:
        return {}
    if read is None:
        return {"source_key": statecache.file_key(path, repo.state)}
    repo.state.record([(read.file, read.key)], read.checked_ns)
    return {"source_key": read.key}


def status(repo: Repo, name: str, source: str | os.PathLike[str], kind: str) -> trees.Status:
    """What changed in ``source`` since the latest version of ``name`` (see
    Repo.status)."""
    from lepton.data import trees

    url = os.fspath(source)
    loc, path = open_source(url, repo.settings.s3)
    if not loc.fs.exists(path):
        raise NotFound(f"{url}: no such file or folder")
    latest = repo.registry.latest(name) if repo.registry.has_name(name) else None
    # a table's status needs only the key recorded with its version: its
    # manifest (thousands of chunk entries) is read but not parsed, only its layout looked up
    raw = repo.store.read_bytes(latest.id) if latest else None
    layout = json.loads(raw).get("layout") if raw else None
    if kind == "labelset" and loc.fs.isdir(path):
        raise InvalidInput(f"{url}: is a folder; a labelset's source is one table file")
    if loc.fs.isdir(path):
        if latest is not None and layout != "tree":
            raise InvalidInput(f"{latest.ref} is a table and {url} is a folder")
        base = (latest.ref, parse_manifest(raw, latest.id, repo.store.read_bytes)) if latest else None
        return trees.tree_status(name, base, loc, path, url, repo.state)  # type: ignore[arg-type]
    if layout == "tree":
        raise InvalidInput(f"{latest.ref} is a file tree and {url} is not a folder")  # type: ignore[union-attr]
    return trees.table_status(name, latest, loc, path, url, repo.state)


__all__ = ["dataset_file", "labelset", "open_source", "source_key", "status"]
