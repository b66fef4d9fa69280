"""Memos: a key derived from a step's inputs -> the artifact it produced.
A cache, not a source of truth: losing it only means recomputing, and the
rebuild restores it from the manifests that carry their key."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from lepton.registry import schema as t


class RegistryMemo:
    """``read=False`` recomputes everything (a replay) while still recording."""

    def __init__(self, engine: Engine, read: bool = True) -> None:
        self.engine = engine
        self.read = read

    def memo_get(self, key: str) -> str | None:
        if not self.read:
            return None
        with self.engine.connect() as conn:
            return conn.execute(select(t.memos.c.artifact_id).where(t.memos.c.key == key)).scalar()

    def memo_put(self, key: str, artifact_id: str, kind: str) -> None:
        """First writer wins; a concurrent equal computation is harmless."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(t.memos).values(
            key=key, kind=kind, artifact_id=artifact_id, created_at=datetime.now(UTC)
        )
        with self.engine.begin() as conn:
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
