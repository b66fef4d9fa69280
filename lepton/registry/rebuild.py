"""Rebuild the registry from the store alone: replay the event log that
every registry write appended to the store, reading each artifact's
manifest for its lineage edges."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update

from lepton.manifest import Manifest
from lepton.registry import schema as t
from lepton.registry.memo import RegistryMemo
from lepton.registry.registry import Registry


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def rebuild(
    registry: Registry,
    records: Iterable[dict[str, Any]],
    load_manifest: Callable[[str], Manifest],
) -> dict[str, int]:
    """Clear every table and replay ``records`` in log order. Idempotent:
    if interrupted, run it again. For a (name, version) claimed twice (a
    write whose commit failed after its record was logged, then retried),
    the later record wins, as it did in the registry."""
    with registry.engine.begin() as conn:
        for table in (t.memos, t.alias_history, t.aliases, t.edges, t.artifacts, t.runs, t.names):
            conn.execute(delete(table))
    memo = RegistryMemo(registry.engine)
    counts = {"artifacts": 0, "alias_moves": 0, "runs": 0}
    for rec in records:
        event = rec.get("event")
        if event == "register":
            _drop_version(registry, rec["name"], rec["version"])
            manifest = load_manifest(rec["id"])
            registry.register(
                id=rec["id"],
                kind=rec["kind"],
                name=rec["name"],
                parents=[(p.id, p.role) for p in manifest.parents],
                creator=rec.get("creator"),
                message=rec.get("message"),
                meta=_json(rec.get("meta")),
                run_id=rec.get("run_id"),
                created_at=_ts(rec.get("created_at")),
                version=rec["version"],
                dedupe_latest=False,
                journal=False,
            )
            fit_key = getattr(manifest, "fit_key", None)
            if fit_key:  # fits carry the key they are memoised under
                memo.memo_put(fit_key, rec["id"], manifest.kind)
            counts["artifacts"] += 1
        elif event == "alias":
            registry.set_alias(
                rec["name"],
                rec["alias"],
                rec["version"],
                creator=rec.get("creator"),
                reason=rec.get("reason"),
                moved_at=_ts(rec.get("moved_at")),
                journal=False,
            )
            counts["alias_moves"] += 1
        elif event == "run":
            with registry.engine.begin() as conn:
                conn.execute(delete(t.runs).where(t.runs.c.id == rec["id"]))
                conn.execute(
                    t.runs.insert().values(
                        **{k: rec.get(k) for k in ("id", "flow_run_id", "status", "creator", "params")},
                        started_at=_ts(rec["started_at"]),
                        ended_at=_ts(rec.get("ended_at")),
                    )
                )
            counts["runs"] += 1
        elif event == "run_end":
            with registry.engine.begin() as conn:
                conn.execute(
                    update(t.runs)
                    .where(t.runs.c.id == rec["id"])
                    .values(status=rec["status"], ended_at=_ts(rec["ended_at"]))
                )
    return counts


def _drop_version(registry: Registry, name: str, version: int) -> None:
    with registry.engine.begin() as conn:
        conn.execute(delete(t.artifacts).where(t.artifacts.c.name == name, t.artifacts.c.version == version))


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return json.loads(value or "{}")
    return value or {}
