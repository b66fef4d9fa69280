"""File trees: snapshot a folder (every file an object) and check one out
(every path checked before anything is written, every object verified)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lepton.data.sources import SourceFile, safe_rel
from lepton.errors import InvalidInput
from lepton.manifest import FileEntry, TreeDataset
from lepton.store.fs import Location
from lepton.store.objects import ObjectStore

Progress = Callable[[int], None]
TREE_WORKERS = 4


def snapshot_tree(
    store: ObjectStore,
    name: str,
    source: Location,
    files: list[SourceFile],
    progress: Progress | None = None,
) -> TreeDataset:
    def put(f: SourceFile) -> FileEntry:
        if source.is_local:
            key, size = store.put_file(f.path)
        else:
            with source.fs.open(f.path, "rb") as stream:
                key, size = store.put_stream(stream)
        if progress:
            progress(size)
        return FileEntry(path=f.rel, size=size, id=key)

    with ThreadPoolExecutor(TREE_WORKERS) as pool:
        entries = tuple(pool.map(put, files))
    return TreeDataset(name=name, files=entries, size=sum(e.size for e in entries))


def checkout_tree(store: ObjectStore, manifest: TreeDataset, dest: Path, progress: Progress | None) -> Path:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput(f"{dest}: destination exists and is not an empty folder")
    root = dest.resolve()
    targets = []
    for entry in manifest.files:  # every path is checked before anything is written
        target = (root / safe_rel(entry.path, manifest.name)).resolve()
        if not target.is_relative_to(root) or target == root:
            raise InvalidInput(f"{manifest.name}: file {entry.path!r} would escape {dest}")
        targets.append(target)
    for entry, target in zip(manifest.files, targets, strict=True):
        store.get_file(entry.id, target)
        if progress:
            progress(entry.size)
    return dest
