"""Manifests: canonical JSON documents describing one artifact each.

The artifact id is the hash of the canonical bytes (sorted keys, fixed
separators, UTF-8), so the same content always gets the same id. Every
manifest carries a format version, its kind, its parents by id and role,
and the run that made it (None for a manual snapshot). Things that do not
define the content (message, creator, time) live in the registry and its
log, not here: snapshotting identical data twice yields one id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer

from lepton import hashing
from lepton.errors import IntegrityError, InvalidInput

FORMAT_VERSION = 1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_name(name: str, what: str = "name") -> str:
    """Names are plain identifiers: no path separators, no '..', no control chars."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise InvalidInput(
            f"invalid {what} {name!r}: use letters, digits, '.', '_' and '-' "
            "(start with a letter or digit, no '..', at most 128 characters)"
        )
    return name


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Parent(Frozen):
    id: str
    role: str

    @field_validator("id")
    @classmethod
    def _key(cls, v: str) -> str:
        if not hashing.is_key(v):
            raise ValueError(f"parent id {v!r} is not a content key")
        return v


class Column(Frozen):
    name: str
    type: str


class Chunk(Frozen):
    """One Parquet object holding a contiguous run of rows, or (with ``base``)
    a patch: the rows of ``base`` with some replaced in place. The patch
    object holds only the changed rows and their positions, so relabeling
    or editing 1% of rows stores about 1% of the rows."""

    id: str
    rows: int = Field(ge=0)
    keys: str | None = None  # object: sorted 64-bit hashes of the chunk's key values
    base: Chunk | None = None
    lines: str | None = None  # object: its text lines' hashes (lepton.data.linehash), whole chunks only

    @model_serializer(mode="wrap")
    def _without_unset_lines(self, handler: Callable[[Chunk], dict[str, Any]]) -> dict[str, Any]:
        """No ``lines`` key when there are none: manifests written before
        line sidecars keep their bytes, and so their ids."""
        out = handler(self)
        if out.get("lines") is None:
            out.pop("lines", None)
        return out

    @property
    def ident(self) -> str:
        """Identity of the rows this entry stands for (a patch chain included)."""
        if self.base is None:
            return self.id
        return hashing.hash_bytes(f"{self.id}+{self.base.ident}".encode())

    @property
    def depth(self) -> int:
        return 0 if self.base is None else 1 + self.base.depth

    def objects(self) -> tuple[str, ...]:
        own = tuple(k for k in (self.id, self.keys, self.lines) if k)
        return own + (self.base.objects() if self.base else ())


class FileEntry(Frozen):
    path: str
    size: int = Field(ge=0)
    id: str  # the whole file's content key
    chunks: tuple[str, ...] | None = None  # content-defined byte chunks, in order (large files)


class Manifest(Frozen):
    """Base of every manifest. Subclasses fix ``kind`` (and ``layout``)."""

    TYPE: ClassVar[str] = ""
    format: int = FORMAT_VERSION
    kind: str
    name: str
    parents: tuple[Parent, ...] = ()
    run: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        validate_name(v)
        return v

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    def compute_id(self) -> str:
        return hashing.hash_bytes(self.canonical_bytes())

    def parent(self, role: str) -> str | None:
        return next((p.id for p in self.parents if p.role == role), None)

    def objects(self) -> tuple[str, ...]:
        """Keys of the store objects this manifest names (besides itself and
        other manifests, which are its parents). Garbage collection keeps
        exactly these, for every registered artifact."""
        return ()


class TableDataset(Manifest):
    """A table: rows in content-defined chunks, each a Parquet object."""

    kind: Literal["dataset"] = "dataset"
    layout: Literal["table"] = "table"
    key: str | None = None
    columns: tuple[Column, ...]
    rows: int = Field(ge=0)
    chunks: tuple[Chunk, ...]

    def objects(self) -> tuple[str, ...]:
        return tuple(k for c in self.chunks for k in c.objects())


class TreeDataset(Manifest):
    """A file tree: every file an object, entries sorted by path.

    A large tree keeps its entries in listing objects (lepton/data/listing.py)
    named by ``listing``, a full listing then deltas over it; its stored JSON
    then holds the chain and no ``files``, and loading fills ``files`` in
    (parse_manifest with ``read``). A smaller tree (and every tree written
    before listings) holds ``files`` inline and no ``listing`` key."""

    kind: Literal["dataset"] = "dataset"
    layout: Literal["tree"] = "tree"
    files: tuple[FileEntry, ...]
    size: int = Field(ge=0)
    listing: tuple[str, ...] | None = None

    @field_validator("listing")
    @classmethod
    def _chain(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and (not v or not all(hashing.is_key(k) for k in v)):
            raise ValueError("a listing chain is one or more content keys")
        return v

    def canonical_bytes(self) -> bytes:
        stored_elsewhere = {"files"} if self.listing is not None else {"listing"}
        return canonical_json(self.model_dump(mode="json", exclude=stored_elsewhere))

    def objects(self) -> tuple[str, ...]:
        files = (k for f in self.files for k in (f.chunks if f.chunks is not None else (f.id,)))
        return (*(self.listing or ()), *files)


class Labelset(Manifest):
    """Labels keyed by sample id, pointing at the dataset they label (parent role 'dataset')."""

    kind: Literal["labelset"] = "labelset"
    key: str
    label: str
    classes: dict[str, int]
    columns: tuple[Column, ...]
    rows: int = Field(ge=0)
    chunks: tuple[Chunk, ...]

    def objects(self) -> tuple[str, ...]:
        return tuple(k for c in self.chunks for k in c.objects())


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _manifest_type(doc: dict[str, Any]) -> type[Manifest]:
    kind, layout = doc.get("kind"), doc.get("layout")
    found = _match(MANIFEST_TYPES, kind, layout)
    if found is None:  # model kinds: a module of its own, imported only when one is read
        from lepton.model_manifest import MODEL_MANIFEST_TYPES  # defined over this module

        found = _match(MODEL_MANIFEST_TYPES, kind, layout)
    if found is None:
        raise IntegrityError(f"unknown manifest kind {kind!r} (layout {layout!r})")
    return found


def _match(types: Iterable[type[Manifest]], kind: object, layout: object) -> type[Manifest] | None:
    for cls in types:
        fields = cls.model_fields
        if fields["kind"].default == kind and ("layout" not in fields or fields["layout"].default == layout):
            return cls
    return None


def parse_manifest(
    data: bytes, expected_id: str | None = None, read: Callable[[str], bytes] | None = None
) -> Manifest:
    """Read a manifest object; the reader is picked by kind and format version.
    A tree naming listing objects gets its files through ``read`` (the store's
    verified read); without it, such a tree cannot be read."""
    manifest = parse_stored(data, expected_id)
    if not isinstance(manifest, TreeDataset) or manifest.listing is None:
        return manifest
    what = f"tree {expected_id or ''}"
    if read is None:
        raise IntegrityError(f"{what} keeps its files in listing objects: read it from its store")
    from lepton.data.listing import resolve  # defined over this module

    files = resolve(manifest.listing, read, expected_id)
    if sum(f.size for f in files) != manifest.size:
        raise IntegrityError(f"{what}: its listing's sizes do not add up to {manifest.size}")
    return manifest.model_copy(update={"files": files})


def parse_stored(data: bytes, expected_id: str | None = None) -> Manifest:
    """A manifest as stored: a tree naming listing objects has no ``files``
    here, only its ``listing`` chain (walks that read listing objects
    themselves, as gc does, use this)."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise IntegrityError(f"manifest {expected_id or ''} is not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise IntegrityError(f"manifest {expected_id or ''} is not a JSON object")
    fmt = doc.get("format")
    if fmt != FORMAT_VERSION:
        raise IntegrityError(
            f"manifest {expected_id or ''} has format {fmt!r}; this Lepton reads {FORMAT_VERSION}"
        )
    cls = _manifest_type(doc)
    if cls is TreeDataset and doc.get("listing") is not None:
        if "files" in doc:
            raise IntegrityError(f"manifest {expected_id or ''} names a listing and holds files too")
        doc = {**doc, "files": ()}
    try:
        return cls.model_validate(doc)
    except ValidationError as e:
        raise IntegrityError(f"manifest {expected_id or ''} is invalid: {e}") from e


# Readers, most specific first. Later kinds (component, model, ...) are added here.
MANIFEST_TYPES: tuple[type[Manifest], ...] = (TableDataset, TreeDataset, Labelset)
