"""The registry: an SQL index over the store and the home of movable refs.

Every write happens in one transaction that also appends an event record
to the store's log (the journal), so the registry can be rebuilt from the
store alone. Version numbers come from an atomic per-name counter, so two
processes registering at once get distinct, contiguous versions.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from lepton import hashing
from lepton.errors import AmbiguousRef, Conflict, InvalidInput, NotFound, StorageError
from lepton.manifest import NAME_RE, validate_name
from lepton.registry import schema as t
from lepton.registry.entities import Alias, AliasMove, ArtifactVersion
from lepton.registry.rows import (
    check_artifact,
    iso,
    now,
    to_alias,
    to_alias_move,
    to_artifact,
)
from lepton.registry.runs import RunRecords

RESERVED_ALIASES = {"latest"}
_VERSION_RE = re.compile(r"^v(\d+)$")


def validate_alias(alias: str) -> None:
    """An alias is a valid name, neither reserved nor shaped like a version."""
    validate_name(alias, "alias")
    if alias in RESERVED_ALIASES or _VERSION_RE.match(alias):
        raise InvalidInput(f"'{alias}' is reserved and cannot be used as an alias")


_HEX_RE = re.compile(r"^(?:blake3:)?([0-9a-f]{4,64})$")
MAX_VERSION = 2**31 - 1  # the INTEGER column's range


class Journal(Protocol):
    """Where the registry appends its event records (the store's log)."""

    def append_record(self, category: str, record: dict[str, Any]) -> str: ...


WriteObserver = Callable[[str, float], None]  # (operation, seconds of its transaction)


class Registry(RunRecords):
    def __init__(
        self, engine: Engine, journal: Journal | None, on_write: WriteObserver | None = None
    ) -> None:
        self.engine = engine
        self.journal = journal
        self.on_write = on_write

    # ---- plumbing ---------------------------------------------------------
    def _insert(self, table):  # type: ignore[no-untyped-def]
        # Each dialect's module is imported when used: SQLite repositories do
        # not pay for PostgreSQL's at start-up (about 0.1 s).
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    def _write(self, fn: Callable[[Connection], Any]) -> Any:
        start = time.perf_counter()
        try:
            with self.engine.begin() as conn:
                result = fn(conn)
            if self.on_write is not None:  # the committed transaction, lock waits included
                self.on_write(_operation(fn), time.perf_counter() - start)
            return result
        except SAIntegrityError as e:
            raise Conflict(f"registry write conflicts with an existing row: {e.orig}") from e
        except OperationalError as e:
            raise StorageError(f"registry: {e.orig}") from e
        except DataError as e:  # e.g. a value too long for its column
            raise InvalidInput(f"registry refused a value: {e.orig}") from e

    def _log(self, category: str, record: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.append_record(category, record)

    # ---- artifacts --------------------------------------------------------
    def register(
        self,
        *,
        id: str,
        kind: str,
        name: str,
        parents: Iterable[tuple[str, str]] = (),
        creator: str | None = None,
        message: str | None = None,
        meta: dict[str, Any] | None = None,
        run_id: str | None = None,
        created_at: datetime | None = None,
        version: int | None = None,
        dedupe_latest: bool = True,
        journal: bool = True,
    ) -> tuple[ArtifactVersion, bool]:
        """Add a version of ``name`` pointing at artifact ``id``.

        Returns (version, created). When the latest version already has this
        id and ``dedupe_latest`` is set, nothing is written (created=False).
        ``version`` is only given by a rebuild replaying the log.
        """
        validate_name(name)
        parents = list(parents)
        check_artifact(id, kind, parents)

        def tx(conn: Connection) -> tuple[ArtifactVersion, bool]:
            # The name's row exists (counter 0 if new) and is locked before the
            # latest version is read: two writers of the same content cannot
            # both see "not registered yet" under READ COMMITTED.
            ensure = self._insert(t.names).values(name=name, kind=kind, last_version=0)
            conn.execute(ensure.on_conflict_do_nothing(index_elements=["name"]))
            self._lock_name(conn, name)
            if dedupe_latest:
                latest = self._latest_row(conn, name)
                if latest is not None and latest.id == id:
                    if latest.kind != kind:
                        raise Conflict(f"'{name}' is a {latest.kind}, not a {kind}")
                    return to_artifact(latest), False
            number = self._next_version(conn, name, kind, version)
            row = {
                "name": name,
                "version": number,
                "id": id,
                "kind": kind,
                "created_at": created_at or now(),
                "creator": creator,
                "message": message,
                "meta": json.dumps(meta or {}, sort_keys=True),
                "run_id": run_id,
            }
            conn.execute(t.artifacts.insert().values(**row))
            if parents:
                conn.execute(
                    self._insert(t.edges).on_conflict_do_nothing(),
                    [{"child_id": id, "parent_id": p, "role": r} for p, r in parents],
                )
            if journal:
                self._log(
                    "registry",
                    {"event": "register", **row, "created_at": iso(row["created_at"])},
                )
            return to_artifact(row), True

        return self._write(tx)

    @staticmethod
    def _lock_name(conn: Connection, name: str) -> None:
        """Hold the name's row lock until commit, so writes to one name go one
        at a time (PostgreSQL; on SQLite, BEGIN IMMEDIATE already serialises)."""
        conn.execute(select(t.names.c.name).where(t.names.c.name == name).with_for_update())

    def _next_version(self, conn: Connection, name: str, kind: str, version: int | None) -> int:
        """Atomically bump the per-name counter (or, on rebuild, raise it to ``version``)."""
        bumped = t.names.c.last_version + 1 if version is None else _greatest(conn, version)
        stmt = (
            self._insert(t.names)
            .values(name=name, kind=kind, last_version=version or 1)  # row exists: updates
            .on_conflict_do_update(index_elements=["name"], set_={"last_version": bumped})
            .returning(t.names.c.last_version, t.names.c.kind)
        )
        got = conn.execute(stmt).one()
        if got.kind != kind:
            raise Conflict(f"'{name}' is a {got.kind}, not a {kind}")
        return version if version is not None else int(got.last_version)

    def _latest_row(self, conn: Connection, name: str):  # type: ignore[no-untyped-def]
        q = (
            select(t.artifacts)
            .where(t.artifacts.c.name == name)
            .order_by(t.artifacts.c.version.desc())
            .limit(1)
        )
        return conn.execute(q).first()

    def _rows(self, q) -> list[ArtifactVersion]:  # type: ignore[no-untyped-def]
        with self.engine.connect() as conn:
            return [to_artifact(r) for r in conn.execute(q)]

    def versions(self, name: str) -> list[ArtifactVersion]:
        validate_name(name)
        q = select(t.artifacts).where(t.artifacts.c.name == name).order_by(t.artifacts.c.version)
        rows = self._rows(q)
        if not rows:
            raise NotFound(self._missing_name(name))
        return rows

    def get(self, name: str, version: int) -> ArtifactVersion:
        validate_name(name)
        q = select(t.artifacts).where(t.artifacts.c.name == name, t.artifacts.c.version == version)
        rows = self._rows(q) if 0 < version <= MAX_VERSION else []
        if not rows:
            if not self.has_name(name):
                raise NotFound(self._missing_name(name))
            last = self.versions(name)[-1].version
            raise NotFound(f"{name} has no version v{version} (latest is v{last})")
        return rows[0]

    def latest(self, name: str) -> ArtifactVersion:
        return self.versions(name)[-1]

    def has_name(self, name: str) -> bool:
        if not isinstance(name, str) or not NAME_RE.match(name):
            return False
        with self.engine.connect() as conn:
            return conn.execute(select(t.names.c.name).where(t.names.c.name == name)).first() is not None

    def names(self, kind: str | None = None) -> list[tuple[str, str, int]]:
        q = select(t.names.c.name, t.names.c.kind, t.names.c.last_version).order_by(t.names.c.name)
        if kind:
            q = q.where(t.names.c.kind == kind)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q)]

    def by_id(self, id: str) -> list[ArtifactVersion]:
        q = select(t.artifacts).where(t.artifacts.c.id == id).order_by(t.artifacts.c.pk)
        return self._rows(q)

    def _missing_name(self, name: str) -> str:
        return f"no artifact named '{name}' in the registry"

    # ---- refs -------------------------------------------------------------
    def resolve(self, ref: str) -> ArtifactVersion:
        """NAME, NAME@vN, NAME@latest, NAME@ALIAS, or an id prefix (>= 4 hex digits)."""
        if not isinstance(ref, str) or not ref or "\x00" in ref:
            raise InvalidInput(f"invalid ref {ref!r}")
        if "@" in ref:
            name, _, selector = ref.partition("@")
            validate_name(name, "name in ref")
            if selector == "latest":
                return self.latest(name)
            if m := _VERSION_RE.match(selector):
                return self.get(name, int(m.group(1)))
            validate_name(selector, "alias in ref")
            alias = self.alias(name, selector)
            return self.get(name, alias.version)
        if self.has_name(ref):
            return self.latest(ref)
        if m := _HEX_RE.match(ref):
            return self._by_prefix(m.group(1), ref)
        validate_name(ref, "ref")
        raise NotFound(self._missing_name(ref))

    def _by_prefix(self, prefix: str, ref: str) -> ArtifactVersion:
        like = f"{hashing.ALGORITHM}:{prefix}%"
        q = select(t.artifacts).where(t.artifacts.c.id.like(like)).order_by(t.artifacts.c.pk)
        rows = self._rows(q)
        ids = sorted({r.id for r in rows})
        if not ids:
            raise NotFound(f"no artifact named '{ref}' and no artifact id starts with {prefix}")
        if len(ids) > 1:
            shown = ", ".join(
                f"{hashing.short(i)} ({next(r.ref for r in rows if r.id == i)})" for i in ids[:10]
            )
            raise AmbiguousRef(f"id prefix {prefix} is ambiguous: it matches {shown}")
        return rows[-1]

    # ---- aliases ----------------------------------------------------------
    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        creator: str | None = None,
        reason: str | None = None,
        moved_at: datetime | None = None,
        journal: bool = True,
        expect: int | None = None,
        then: Callable[[], object] | None = None,
    ) -> AliasMove:
        """Point ``name@alias`` at ``version``. ``expect``: refuse (Conflict)
        unless the alias is still at that version; ``then``: run once the
        move is decided, under the name's lock, before it commits (a deploy
        switches its target there, so targets follow the order of the moves;
        if it raises, the alias does not move)."""
        validate_alias(alias)
        target = self.get(name, version)

        def tx(conn: Connection) -> AliasMove:
            # Moves of one name go one at a time, so each reads the previous
            # version that the last committed move wrote.
            self._lock_name(conn, name)
            key = (t.aliases.c.name == name) & (t.aliases.c.alias == alias)
            prev = conn.execute(select(t.aliases.c.version).where(key)).scalar()
            if expect is not None and prev != expect:
                raise Conflict(
                    f"{name}@{alias} moved to v{prev} meanwhile (expected v{expect}); nothing changed"
                )
            if then is not None:
                then()
            ts = moved_at or now()
            values = {"version": version, "id": target.id, "updated_at": ts}
            stmt = self._insert(t.aliases).values(name=name, alias=alias, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["name", "alias"], set_=values))
            move = {
                "name": name,
                "alias": alias,
                "version": version,
                "id": target.id,
                "previous_version": prev,
                "moved_at": ts,
                "creator": creator,
                "reason": reason,
            }
            conn.execute(t.alias_history.insert().values(**move))
            if journal:
                self._log("registry", {"event": "alias", **move, "moved_at": iso(ts)})
            return AliasMove(**move)

        return self._write(tx)

    def alias(self, name: str, alias: str) -> Alias:
        validate_name(name)
        validate_name(alias, "alias")
        q = select(t.aliases).where(t.aliases.c.name == name, t.aliases.c.alias == alias)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            if not self.has_name(name):
                raise NotFound(self._missing_name(name))
            raise NotFound(f"{name} has no alias '{alias}'")
        return to_alias(row)

    def aliases(self, name: str) -> list[Alias]:
        validate_name(name)
        q = select(t.aliases).where(t.aliases.c.name == name).order_by(t.aliases.c.alias)
        with self.engine.connect() as conn:
            return [to_alias(r) for r in conn.execute(q)]

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        validate_name(name)
        q = select(t.alias_history).where(t.alias_history.c.name == name)
        if alias:
            q = q.where(t.alias_history.c.alias == alias)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(t.alias_history.c.pk)).all()
        return [to_alias_move(r) for r in rows]


def _operation(tx: Callable[..., Any]) -> str:
    """'register' for the ``tx`` defined inside ``Registry.register``."""
    return tx.__qualname__.split(".<locals>")[0].rsplit(".", 1)[-1]


def _greatest(conn: Connection, version: int):  # type: ignore[no-untyped-def]
    fn = func.greatest if conn.dialect.name == "postgresql" else func.max
    return fn(t.names.c.last_version, version)
