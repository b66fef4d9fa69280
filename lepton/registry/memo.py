"""Memos: a key derived from a step's inputs -> the artifact it produced.
A cache, not a source of truth: losing it only means recomputing, and the
rebuild restores it from the manifests that carry their key."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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

    def memo_keys_for(self, ids: Iterable[str]) -> dict[str, str]:
        """Every memo naming one of ``ids``: memo key -> artifact id (one query per 500 ids)."""
        if not self.read:
            return {}
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for part in _batches(ids):
                rows = conn.execute(
                    select(t.memos.c.key, t.memos.c.artifact_id).where(t.memos.c.artifact_id.in_(part))
                )
                out.update({k: a for k, a in rows})
        return out

    def forget(self, artifact_ids: Iterable[str], kinds: Iterable[str]) -> int:
        """Drop the memos of ``kinds`` that name one of ``artifact_ids`` (gc
        removed them); returns how many."""
        kinds, gone = list(kinds), 0
        with self.engine.begin() as conn:
            for part in _batches(artifact_ids):
                done = conn.execute(
                    t.memos.delete().where(t.memos.c.artifact_id.in_(part), t.memos.c.kind.in_(kinds))
                )
                gone += done.rowcount
        return gone

    def memo_put(self, key: str, artifact_id: str, kind: str) -> None:
        """First writer wins; a concurrent equal computation is harmless."""
        self.memo_put_many([(key, artifact_id)], kind)

    def memo_put_many(self, pairs: Iterable[tuple[str, str]], kind: str) -> None:
        """(memo key, artifact id) pairs in one transaction; first writer wins per key."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        at = datetime.now(UTC)
        rows = [{"key": k, "kind": kind, "artifact_id": a, "created_at": at} for k, a in dict(pairs).items()]
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(insert(t.memos).on_conflict_do_nothing(index_elements=["key"]), rows)


def _batches(ids: Iterable[str], size: int = 500) -> Iterator[list[str]]:
    """The distinct ids, sorted, ``size`` at a time (bounded IN lists)."""
    todo = sorted(set(ids))
    for i in range(0, len(todo), size):
        yield todo[i : i + size]
