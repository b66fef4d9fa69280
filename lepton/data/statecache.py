"""The local state cache, like git's index: what each local file held when it
was last read, so that an unchanged file is never read or hashed again.

One row per absolute path: (size, mtime_ns, ctime_ns, inode) -> content key.
A file whose stat is exactly what was recorded is trusted to hold the
recorded content; anything else is read and hashed again. This is the
trade-off git and DVC make: a change that keeps size, mtime, ctime and inode
(only possible by resetting the clock or editing the disk) goes unseen.
ctime cannot be set through the file API, so an edit that restores mtime
with os.utime is still caught.

Racy entries are not trusted and are hashed again: a file modified so
shortly before it was read that a later same-size edit could get the same
times. File times come from the kernel's coarse clock (one tick, at most
10 ms, behind the time read here) cut to the file system's granularity,
so the window is that granularity plus TICK_NS: as fine as the file's
times show (a file whose mtime has nanoseconds: ~20 ms; whole seconds:
RACY_NS, FAT's 2 s). A file snapshotted straight after it was written is
then trusted by the next status unless the two were within ~20 ms. Like
git's own rule, this assumes the clock that stamps the file agrees with
this machine's within the window (a network file system's server clock
running behind by more than that could hide an edit).

The cache lives in a small SQLite file on the local disk (WAL, busy
timeout): several processes can read and update it at once. It only ever
saves work: a corrupt file is set aside and rebuilt, a failed update is
logged and skipped. Keys name content, not a store, so one cache serves a
repository whatever its store.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sqlite3
import stat as st
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from lepton import hashing
from lepton.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

FILE_NAME = "state.db"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
RACY_NS = 2_000_000_000  # whole-second file times: covers the coarsest common ones (FAT: 2 s)
TICK_NS = 20_000_000  # the coarse clock's lag (a tick: 10 ms at HZ=100, less elsewhere), with margin
HOLDS = "holds"  # a chunks-table scheme: a table file's content key -> the version holding its rows
_SCHEMA = (
    "CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
    " ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, key TEXT NOT NULL,"
    " checked_ns INTEGER NOT NULL) WITHOUT ROWID",
    # content key -> its byte chunks under one chunking scheme (content-derived, never stale)
    "CREATE TABLE chunks (key TEXT NOT NULL, scheme TEXT NOT NULL, chunks TEXT NOT NULL,"
    " PRIMARY KEY (key, scheme)) WITHOUT ROWID",
)


class LocalFile(NamedTuple):
    """A regular file found in a local tree, with the stat fields the cache keys on."""

    rel: str
    path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @property
    def stat(self) -> tuple[int, int, int, int]:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode)


def stat_of(s: os.stat_result) -> tuple[int, int, int, int]:
    return (s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino)


def local_file(path: str, rel: str = "") -> LocalFile:
    s = os.stat(path)
    return LocalFile(rel or os.path.basename(path), os.path.abspath(path), *stat_of(s))


def scan_local(root: str, label: str) -> list[LocalFile]:
    """Every regular file under ``root``, sorted by relative path; one stat each.
    Symlinks must stay inside the folder; linked folders are not followed."""
    base = os.path.realpath(root)
    if not os.path.exists(base):
        raise NotFound(f"{label}: no such folder")
    if not os.path.isdir(base):
        raise InvalidInput(f"{label}: is a file; a tree source must be a folder")
    found: list[LocalFile] = []
    stack = [(base, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            raise InvalidInput(f"{label}: cannot read folder {prefix or '.'}: {e.strerror}") from e
        for e in entries:
            rel = prefix + e.name
            try:
                if e.is_symlink():
                    target = os.path.realpath(e.path)
                    if target != base and not target.startswith(base.rstrip(os.sep) + os.sep):
                        raise InvalidInput(f"{label}: symlink {rel} points outside the folder")
                    if os.path.isdir(target):
                        continue  # linked folders could loop: not followed
                    s = os.stat(e.path)
                elif e.is_dir(follow_symlinks=False):
                    stack.append((e.path, rel + "/"))
                    continue
                else:
                    s = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # a dangling link, or removed while we looked
            if st.S_ISREG(s.st_mode):
                if "\\" in e.name:  # the only unsafe thing a listed name can hold
                    from lepton.data.sources import safe_rel  # lazy: keeps pandas out of status

                    safe_rel(rel, label)
                found.append(LocalFile(rel, e.path, s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino))
    if not found:
        raise InvalidInput(f"{label}: the folder has no files")
    found.sort(key=lambda f: f.rel)
    return found


def default_path(root: Path | None, store_root: str | None) -> Path:
    """Beside the repository's local state: ``ROOT/.lepton/state.db``; else
    beside a local store; else the user's cache folder."""
    if root is not None:
        return Path(root) / ".lepton" / FILE_NAME
    if store_root is not None:
        return Path(store_root).parent / FILE_NAME
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "lepton" / FILE_NAME


class StateCache:
    """(path, stat) -> content key, in SQLite; safe to share between threads
    (one lock) and processes (WAL, busy timeout)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return _connect(self.path)
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError):  # cannot open or locked: work without it
                log.warning("state cache %s unusable (%s); continuing without it", self.path, e)
                return _connect(":memory:")
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.time_ns()}")
            log.warning("state cache %s is corrupt (%s); moved to %s and rebuilt", self.path, e, aside)
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.unlink(f"{self.path}{suffix}")
            return _connect(self.path)
        except OSError as e:
            log.warning("state cache %s unusable (%s); continuing without it", self.path, e)
            return _connect(":memory:")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- lookups -------------------------------------------------------------
    def rows_under(self, base: str) -> dict[str, tuple]:
        """Every recorded file below the folder ``base``: path -> row (one range scan)."""
        lo = base.rstrip("/") + "/"
        hi = lo[:-1] + chr(ord("/") + 1)
        return self._rows("WHERE path >= ? AND path < ?", (lo, hi))

    def rows_for(self, paths: Iterable[str]) -> dict[str, tuple]:
        out: dict[str, tuple] = {}
        for p in paths:
            out.update(self._rows("WHERE path = ?", (p,)))
        return out

    def _rows(self, where: str, args: tuple) -> dict[str, tuple]:
        q = f"SELECT path, size, mtime_ns, ctime_ns, inode, key, checked_ns FROM files {where}"  # noqa: S608
        with self._lock:
            return {r[0]: r for r in self._db.execute(q, args)}

    @staticmethod
    def fresh(row: tuple | None, f: LocalFile) -> str | None:
        """The recorded key if ``f`` is exactly as recorded and was not racy then."""
        if row is None or row[1:5] != f.stat or f.mtime_ns + racy_window(f.mtime_ns) > row[6]:
            return None
        return row[5]

    def chunks(self, key: str, scheme: str) -> tuple[str, ...] | None:
        with self._lock:
            r = self._db.execute("SELECT chunks FROM chunks WHERE key = ? AND scheme = ?", (key, scheme))
            row = r.fetchone()
        return tuple(json.loads(row[0])) if row else None

    def holds(self, key: str) -> str | None:
        """The version a table file with content ``key`` was found to hold
        (the same rows read another way: gzipped, CRLF), if noted."""
        got = self.chunks(key, HOLDS)
        return got[0] if got else None

    # ---- updates (best effort: the cache only ever saves work) ----------------
    def record(self, files: Iterable[tuple[LocalFile, str]], checked_ns: int) -> None:
        """Remember what each file held; ``checked_ns``: a time before it was stat'ed."""
        rows = [(f.path, *f.stat, key, checked_ns) for f, key in files]
        self._write("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def record_chunks(self, scheme: str, items: Iterable[tuple[str, tuple[str, ...]]]) -> None:
        rows = [(key, scheme, json.dumps(list(chunks))) for key, chunks in items]
        self._write("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?)", rows)

    def note_holds(self, key: str, version_id: str) -> None:
        self.record_chunks(HOLDS, [(key, (version_id,))])

    def forget(self, paths: Iterable[str]) -> None:
        self._write("DELETE FROM files WHERE path = ?", [(p,) for p in paths])

    def _write(self, sql: str, rows: list[tuple]) -> None:
        if not rows:
            return
        try:
            with self._lock, _transaction(self._db):
                self._db.executemany(sql, rows)
        except sqlite3.Error as e:
            log.warning("state cache %s not updated: %s", self.path, e)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")  # take the write lock now: waits (busy timeout), never deadlocks
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _connect(path: Path | str) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        _retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
        db.execute("PRAGMA synchronous=NORMAL")  # a cache: losing the last write costs a re-hash
        if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            with _transaction(db):  # two processes may create it at once: one does
                if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    for table in ("files", "chunks"):
                        db.execute(f"DROP TABLE IF EXISTS {table}")
                    for ddl in _SCHEMA:
                        db.execute(ddl)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.close()
        raise
    return db


def _retry_locked(fn, timeout: float = BUSY_TIMEOUT_S):  # type: ignore[no-untyped-def]
    """Switching to WAL can answer 'locked' without waiting: retry for a while."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


# ---- keys of local files, through the cache ------------------------------------------
def hash_local(f: LocalFile) -> str | None:
    """The file's key, or None if it changed while being read (then not to be cached)."""
    with open_to_read(f.path, f.path) as stream:
        key, _ = hashing.hash_stream(stream)
        same = stat_of(os.fstat(stream.fileno())) == f.stat
    return key if same else None


def open_to_read(path: str, what: str) -> io.FileIO:
    """A listed file opened to be read (unbuffered: a read is one read(2));
    one that cannot be (permissions, removed since it was listed) is one
    InvalidInput naming it as ``what``."""
    try:
        return open(path, "rb", buffering=0)
    except OSError as e:
        raise InvalidInput(f"{what}: cannot read it: {e.strerror}") from e


def racy_window(mtime_ns: int) -> int:
    """How long after ``mtime_ns`` a read must have begun for a later same-size
    edit to be sure to change the file's times: its granularity, told by
    the trailing zeros of the time itself (whole seconds: RACY_NS), plus TICK_NS."""
    if mtime_ns % 1_000_000_000 == 0:
        return RACY_NS
    grain = 1
    while mtime_ns % (grain * 10) == 0:
        grain *= 10
    return grain + TICK_NS


def hash_path(path: str) -> str:
    with open_to_read(path, path) as stream:
        return hashing.hash_stream(stream)[0]


def key_of(path: str, state: StateCache | None) -> tuple[str, bool]:
    """(content key of one local file, whether it had to be read): through
    the cache, which learns it when it was read."""
    checked = time.time_ns()
    f = local_file(path)
    if state is not None:
        key = state.fresh(state.rows_for([f.path]).get(f.path), f)
        if key is not None:
            return key, False
    key = hash_local(f)
    if key is None:
        return hash_path(path), True
    if state is not None:
        state.record([(f, key)], checked)
    return key, True


def file_key(path: str, state: StateCache | None) -> str | None:
    """The content key of one local file (a table's source), or None when it
    cannot be read (the table reader then says why)."""
    try:
        return key_of(path, state)[0]
    except (OSError, InvalidInput):
        return None
