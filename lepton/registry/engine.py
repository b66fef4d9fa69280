"""Engines for the registry: SQLite (WAL, busy timeout, BEGIN IMMEDIATE so a
read never upgrades into a lock error) or PostgreSQL; schema migrations with
Alembic, run on open and serialised between processes."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from lepton.errors import ConfigError, StorageError

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0002"  # the newest revision in migrations/versions; a test checks it
_PG_LOCK_KEY = 0x1E970  # advisory lock that serialises migrations on PostgreSQL
BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            return _sqlite_engine(url)
        if url.startswith("postgresql"):
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            return create_engine(url, pool_pre_ping=True, future=True)
    except (ArgumentError, NoSuchModuleError) as e:
        raise ConfigError(f"registry URL {url!r}: {e}") from e
    raise ConfigError(f"unsupported registry URL {url!r}: use sqlite:///PATH or postgresql://...")


def _sqlite_engine(url: str) -> Engine:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        _set_wal(cur)
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        # A deferred BEGIN that later writes ignores the busy timeout and fails
        # with "database is locked"; IMMEDIATE takes the write lock up front.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _set_wal(cur: sqlite3.Cursor) -> None:
    """PRAGMA journal_mode=WAL, retried while SQLite says busy, up to the
    busy timeout. On a database not in WAL mode yet (a new file that other
    processes open at the same moment: a flow, its Dask workers) the pragma
    writes the header: it asks for the write lock inside a read transaction,
    where SQLite never calls the busy handler, so whoever loses the race got
    "database is locked" at once (measured: 114 of 1,200 opens by 4 processes
    of a new file; 0 with this loop). Once the file is WAL the pragma only
    reads and runs once."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as e:
            busy = (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay * (0.5 + random.random()))  # noqa: S311 (jitter: racers do not retry in step)
            delay = min(delay * 2, 0.1)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine) -> None:
    """Bring the schema to HEAD; cheap when it is already there."""
    try:
        if current_revision(engine) == HEAD:
            return
        from alembic import command  # only when the schema needs work (slow import)
        from alembic.config import Config

        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as e:
        raise StorageError(f"registry {engine.url.render_as_string()}: {e.orig}") from e
