"""A repository: one object store plus one registry, and the operations
users run on them. This is the Python API behind the `lepton` command.

    import lepton
    repo = lepton.open_repo(".")                 # reads ./lepton.toml
    v = repo.snapshot_data("iris", "iris.csv", key="id")
    repo.snapshot_labels("iris-labels", "labels.csv", dataset="iris@latest",
                         key="id", label="species")
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton import filesource
from lepton.config import Settings, find_config, load_settings, write_config
from lepton.data.statecache import StateCache, default_path
from lepton.errors import IntegrityError, InvalidInput, LeptonError, NotFound
from lepton.manifest import (
    Labelset,
    Manifest,
    TableDataset,
    TreeDataset,
    parse_manifest,
    parse_stored,
    validate_name,
)
from lepton.registry import Registry, lineage, make_engine, migrate
from lepton.registry.entities import AliasMove, ArtifactVersion, Lineage
from lepton.registry.timings import write_log
from lepton.store import ObjectStore, open_location
from lepton.verify import VerifyReport, verify_objects

if TYPE_CHECKING:
    import pandas as pd

    from lepton.data import trees
    from lepton.data.headstart import HeadStart

# Table readers and writers (pandas, pyarrow) are imported by the methods
# that use them, so commands that never touch a table (status of a folder,
# log, show, lineage) start fast.
Progress = Callable[[int], None]


def _is_frame(source: object) -> bool:
    """A pandas DataFrame (pandas is imported already if it is one)."""
    import sys

    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(source, pandas.DataFrame)


@dataclass(frozen=True)
class Snapshot:
    """The outcome of a snapshot: the version and whether it is new."""

    version: ArtifactVersion
    created: bool
    manifest: Manifest


class Repo:
    def __init__(self, settings: Settings, root: Path | None = None) -> None:
        self.settings = settings
        self.root = root
        self.store = ObjectStore(open_location(settings.store.url, settings.s3))
        self.engine = make_engine(settings.registry.url)
        self.registry = Registry(self.engine, self.store, write_log(settings.registry.timings))
        self.creator = settings.creator or _user()

    def ensure_ready(self) -> Repo:
        """Check the store can be reached and bring the registry schema to head."""
        self.store.check()
        migrate(self.engine)
        return self

    def close(self) -> None:
        if "state" in self.__dict__:
            self.state.close()
        self.engine.dispose()

    @cached_property
    def state(self) -> StateCache:
        """The local state cache (file stat -> content key), beside lepton.toml
        in .lepton/; assign another StateCache to move it."""
        local_store = self.store.location.root if self.store.location.is_local else None
        return StateCache(default_path(self.root, local_store))

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- manifests ---------------------------------------------------------
    def load(self, id: str) -> Manifest:
        """A manifest by id, verified; a large tree's files from its listing objects."""
        return parse_manifest(self.store.read_bytes(id), id, self.store.read_bytes)

    def put_manifest(self, manifest: Manifest) -> str:
        return self.store.put_bytes(manifest.canonical_bytes())

    def resolve(self, ref: str) -> ArtifactVersion:
        return self.registry.resolve(ref)

    def _commit(
        self, manifest: Manifest, message: str | None, meta: dict[str, Any], run_id: str | None
    ) -> Snapshot:
        snap = self.commit(manifest, message=message, meta=meta, run_id=run_id)
        key = meta.get("source_key")
        if not snap.created and key and key != snap.version.meta.get("source_key"):
            self.state.note_holds(key, snap.version.id)  # so that `status` of this file says unchanged
        return snap

    def commit(
        self,
        manifest: Manifest,
        *,
        message: str | None = None,
        meta: dict[str, Any] | None = None,
        run_id: str | None = None,
        reuse_any: bool = False,
    ) -> Snapshot:
        """Store the manifest (last, after every object it names), then register it.

        The same content as the latest version makes no new version; with
        ``reuse_any``, the same content as any earlier version of the name
        returns that version (candidates registered as versions of a model).
        """
        if isinstance(manifest, TableDataset | Labelset) and not reuse_any:
            same = self._same_rows_as_latest(manifest)
            if same is not None:
                return same
        id = self.put_manifest(manifest)
        if reuse_any:
            for existing in self.registry.by_id(id):
                if existing.name == manifest.name:
                    return Snapshot(existing, False, manifest)
        version, created = self.registry.register(
            id=id,
            kind=manifest.kind,
            name=manifest.name,
            parents=[(p.id, p.role) for p in manifest.parents],
            creator=self.creator,
            message=message,
            meta=meta or {},
            run_id=run_id or manifest.run,
        )
        return Snapshot(version, created, manifest)

    def _same_rows_as_latest(self, manifest: TableDataset | Labelset) -> Snapshot | None:
        """The latest version of the name if it holds the same rows as
        ``manifest``: equal but for the chunks' sidecars (key and line
        hashes, caches the streaming ingest writes and the whole-file reader
        does not), so the same table read another way (gzipped, CRLF, a
        DataFrame) is no new version."""
        try:
            latest = self.registry.latest(manifest.name)
        except NotFound:
            return None
        if latest.kind != manifest.kind:
            return None
        current = self.load(latest.id)
        if not isinstance(current, type(manifest)):
            return None
        if [c.ident for c in current.chunks] != [c.ident for c in manifest.chunks]:
            return None  # the common case, told without dumping either manifest
        if _rows_of(current) != _rows_of(manifest):
            return None
        return Snapshot(latest, False, current)

    def _check_kind(self, name: str, kind: str) -> None:
        validate_name(name)
        for existing, existing_kind, _ in self.registry.names():
            if existing == name and existing_kind != kind:
                raise InvalidInput(f"'{name}' is already a {existing_kind}, not a {kind}")

    # ---- data --------------------------------------------------------------
    def snapshot_data(
        self,
        name: str,
        source: str | os.PathLike[str] | pd.DataFrame,
        *,
        key: str | None = None,
        message: str | None = None,
        run_id: str | None = None,
        progress: Progress | None = None,
        head: HeadStart | None = None,
    ) -> Snapshot:
        """Snapshot a table (file or DataFrame) or a folder as a new version of
        ``name``. ``head``: ``source`` already being read (lepton.data.headstart)."""
        self._check_kind(name, "dataset")
        if self.is_frame(source):
            from lepton.data import snapshot as _snap
            from lepton.data import sources

            table = sources.from_frame(source)
            previous = self._latest_table(name)
            manifest: Manifest = _snap.snapshot_table(
                self.store, name, table, key, progress, previous.chunks if previous else ()
            )
            return self._commit(manifest, message, {"source": "<DataFrame>"}, run_id)
        url = os.fspath(source)
        loc, path = filesource.open_source(url, self.settings.s3)
        if loc.fs.isdir(path):
            if key is not None:
                raise InvalidInput(f"{url}: --key applies to tables, and this is a folder")
            parent = self._latest_tree(name)
            from lepton.data import trees  # here: a table snapshot does not need it (0.08 s)

            manifest = trees.snapshot_tree(
                self.store, name, loc, path, url, progress=progress, state=self.state, parent=parent
            )
            return self._commit(manifest, message, {"source": url}, run_id)
        manifest, meta = filesource.dataset_file(self, name, loc, path, url, key, progress, head)
        return self._commit(manifest, message, {"source": url} | meta, run_id)

    def _latest_table(self, name: str) -> TableDataset | Labelset | None:
        """The latest version of ``name`` if it is a table (to reuse or patch its chunks)."""
        return self.latest_table_read(name)[0]

    is_frame = staticmethod(_is_frame)

    def latest_table_read(self, name: str) -> tuple[TableDataset | Labelset | None, Any]:
        """The latest table version of ``name``, and the record of how its
        source file was read (lepton.data.resume), if it was."""
        try:
            latest = self.registry.latest(name)
        except NotFound:
            return None, None
        manifest = self.load(latest.id)
        if not isinstance(manifest, TableDataset | Labelset):
            return None, None
        return manifest, latest.meta.get("resume")

    def _latest_tree(self, name: str) -> TreeDataset | None:
        try:
            latest = self.registry.latest(name)
        except NotFound:
            return None
        manifest = self.load(latest.id)
        return manifest if isinstance(manifest, TreeDataset) else None

    def status(self, name: str, source: str | os.PathLike[str], kind: str = "dataset") -> trees.Status:
        """What changed in ``source`` since the latest version of ``name`` (a
        dataset, or with ``kind="labelset"`` a labelset): files added, removed
        and modified (a folder), or whether the file changed (a table). Files
        whose stat is as the state cache recorded are not read."""
        self._check_kind(name, kind)
        return filesource.status(self, name, source, kind)

    def snapshot_labels(
        self,
        name: str,
        source: str | os.PathLike[str] | pd.DataFrame,
        *,
        dataset: str,
        key: str,
        label: str,
        message: str | None = None,
        run_id: str | None = None,
        progress: Progress | None = None,
        head: HeadStart | None = None,
    ) -> Snapshot:
        """Snapshot labels keyed by sample id, checked against ``dataset``
        (``head``: as for snapshot_data)."""
        self._check_kind(name, "labelset")
        target = self.resolve(dataset)
        if target.kind != "dataset":
            raise InvalidInput(f"{dataset} is a {target.kind}, not a dataset")
        manifest, meta = filesource.labelset(
            self, name, source, target=target, key=key, label=label, progress=progress, head=head
        )
        return self._commit(manifest, message, meta, run_id)

    def log(self, name: str) -> list[ArtifactVersion]:
        return self.registry.versions(name)

    def diff(self, ref_a: str, ref_b: str):  # type: ignore[no-untyped-def]
        a, b = self.resolve(ref_a), self.resolve(ref_b)
        from lepton.data import diff as _diff

        return _diff.diff(self.store, self.load(a.id), self.load(b.id), a.id, b.id)

    def checkout(self, ref: str, dest: str | os.PathLike[str], progress: Progress | None = None) -> Path:
        art = self.resolve(ref)
        from lepton.data import checkout as _checkout

        return _checkout.checkout(self.store, self.load(art.id), Path(dest), progress)

    def read_table(self, ref: str) -> pd.DataFrame:
        """A table dataset or labelset version as a DataFrame."""
        from lepton.data.chunks import read_chunks

        art = self.resolve(ref)
        manifest = self.load(art.id)
        if not isinstance(manifest, TableDataset | Labelset):
            raise InvalidInput(f"{art.ref} is not a table")
        return read_chunks(self.store, manifest.chunks)

    # ---- inspection --------------------------------------------------------
    def show(self, ref: str) -> tuple[ArtifactVersion, Manifest]:
        art = self.resolve(ref)
        return art, self.load(art.id)

    def lineage(self, ref: str, direction: str = "upstream", depth: int | None = None) -> Lineage:
        return lineage.walk(self.engine, self.resolve(ref).id, direction, depth)

    def impact(self, ref: str) -> Lineage:
        return lineage.impact(self.engine, self.resolve(ref).id)

    def set_alias(self, ref: str, alias: str, reason: str | None = None) -> AliasMove:
        art = self.resolve(ref)
        return self.registry.set_alias(art.name, alias, art.version, creator=self.creator, reason=reason)

    # ---- maintenance -------------------------------------------------------
    def objects_of(self, id: str) -> list[str]:
        """The manifest object and every object it names."""
        return [id, *self.load(id).objects()]

    def verify(self, ref: str | None = None, progress: Progress | None = None) -> VerifyReport:
        if ref is None:
            keys = list(self.store.iter_keys())
        else:
            try:
                keys = self.objects_of(self.resolve(ref).id)
            except (NotFound, IntegrityError) as e:  # a missing or corrupt object is itself a finding
                if isinstance(e, IntegrityError) and "corrupt" not in str(e):
                    raise
                id = self.resolve(ref).id
                try:  # the manifest as stored names its listing objects without reading them
                    keys = [id, *parse_stored(self.store.read_bytes(id), id).objects()]
                except LeptonError:
                    keys = [id]
        return verify_objects(self.store, keys, progress)

    def rebuild_registry(self) -> dict[str, int]:
        from lepton.registry.rebuild import rebuild as _rebuild

        return _rebuild(self.registry, self.store.iter_records("registry"), self.load)


def _rows_of(manifest: Manifest) -> dict[str, Any]:
    """A table manifest without its chunks' sidecars (see _same_rows_as_latest)."""

    def bare(chunk: dict[str, Any]) -> dict[str, Any]:
        base = chunk.get("base")
        return {k: v for k, v in chunk.items() if k not in ("keys", "lines")} | {
            "base": bare(base) if base else None
        }

    doc = manifest.model_dump(mode="json")
    return doc | {"chunks": [bare(c) for c in doc["chunks"]]}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def open_repo(
    path_or_url: str | os.PathLike[str] | None = None,
    *,
    registry: str | None = None,
    settings: Settings | None = None,
) -> Repo:
    """Open a repository.

    - a folder: its lepton.toml (searched upwards), else the default
      ``.lepton/`` store and SQLite registry inside it;
    - ``s3://bucket/prefix``: that store, with ``registry`` (default: the
      SQLite file ``.lepton/registry.db`` in the current folder).
    """
    if settings is not None:
        return Repo(settings).ensure_ready()
    target = os.fspath(path_or_url) if path_or_url is not None else "."
    if target.startswith("s3://"):
        overrides = {"store": {"url": target}}
        if registry:
            overrides["registry"] = {"url": registry}
        return Repo(load_settings(Path.cwd(), overrides), Path.cwd()).ensure_ready()
    root = Path(target)
    config = find_config(root)
    base = config.parent if config else root.resolve()
    overrides = {"registry": {"url": registry}} if registry else None
    return Repo(load_settings(base, overrides), base).ensure_ready()


def init_repo(
    root: str | os.PathLike[str] = ".", store: str | None = None, registry: str | None = None
) -> Repo:
    """Write lepton.toml in ``root`` and create the store and registry."""
    path = write_config(Path(root), store, registry)
    return Repo(load_settings(path.parent), path.parent).ensure_ready()


__all__ = ["Repo", "Snapshot", "init_repo", "open_repo"]
