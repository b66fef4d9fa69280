"""What crosses the registry's edge: rows become frozen entities on the way
out, and input is checked on the way in."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from lepton import hashing
from lepton.errors import InvalidInput
from lepton.manifest import validate_name
from lepton.registry.entities import Alias, AliasMove, ArtifactVersion, Run

_KIND_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def now() -> datetime:
    return datetime.now(UTC)


def aware(ts: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if ts is not None and ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts


def iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def check_artifact(id: str, kind: str, parents: list[tuple[str, str]]) -> None:
    """Refuse what the index must never hold: ids that are not content keys,
    kinds and roles that are not plain identifiers."""
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise InvalidInput(f"invalid kind {kind!r}: use lowercase letters, digits, '_' and '-'")
    for key, what in [(id, "artifact id"), *((p, "parent id") for p, _ in parents)]:
        if not isinstance(key, str) or not hashing.is_key(key):
            raise InvalidInput(f"invalid {what} {key!r}: expected {hashing.ALGORITHM}:<64 hex>")
    for _, role in parents:
        validate_name(role, "parent role")


def to_artifact(row: Any) -> ArtifactVersion:
    m = row._mapping if hasattr(row, "_mapping") else row
    meta = m["meta"]
    return ArtifactVersion(
        name=m["name"],
        version=m["version"],
        id=m["id"],
        kind=m["kind"],
        created_at=aware(m["created_at"]),
        creator=m["creator"],
        message=m["message"],
        meta=json.loads(meta) if isinstance(meta, str) else (meta or {}),
        run_id=m["run_id"],
    )


def to_alias(row: Any) -> Alias:
    return Alias(**{**row._mapping, "updated_at": aware(row.updated_at)})


def to_alias_move(row: Any) -> AliasMove:
    m = {k: v for k, v in row._mapping.items() if k != "pk"}
    return AliasMove(**m | {"moved_at": aware(row.moved_at)})


def to_run(row: Any) -> Run:
    m = dict(row._mapping)
    m["params"] = json.loads(m["params"] or "{}")
    m["started_at"] = aware(m["started_at"])
    m["ended_at"] = aware(m["ended_at"])
    return Run(**m)
