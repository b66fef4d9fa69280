"""Two OS processes writing to one registry at once, on SQLite (a file) and
on PostgreSQL: no lost or duplicate versions, no broken alias history.

Each writer is a fresh Python process running ``WORKER``; a file barrier
makes them start their loops together, after both have imported and
connected, so their writes really interleave.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lepton import hashing
from lepton.registry import Registry, make_engine, migrate
from lepton.store import ObjectStore, open_location

N = 300  # versions per writer
MOVES = 100  # alias moves per writer

WORKER = r"""
import sys, time
from pathlib import Path
from lepton import hashing
from lepton.registry import Registry, make_engine
from lepton.store import ObjectStore, open_location

url, journal, who, mode, count, barrier = sys.argv[1:7]
count = int(count)
engine = make_engine(url)
registry = Registry(engine, ObjectStore(open_location(journal), durable=False))
registry.has_name("warm-up")  # connect before the barrier
Path(barrier, "ready-" + who).touch()
while not Path(barrier, "go").exists():
    time.sleep(0.001)
start = time.time()
if mode == "register":
    for i in range(count):
        registry.register(
            id=hashing.hash_bytes(f"{who}-{i}".encode()),
            kind="dataset",
            name="shared",
            meta={"writer": who},
        )
else:  # move the alias: writer A to odd versions, writer B to even ones
    targets = [1, 3] if who == "A" else [2, 4]
    for i in range(count):
        registry.set_alias("shared", "production", targets[i % 2], creator=who)
print(start, time.time())
engine.dispose()
"""


def run_writers(url: str, journal: Path, mode: str, count: int, tmp_path: Path) -> None:
    """Run writers A and B at once; fail unless both succeed and their write
    loops overlapped in time."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = {
        who: subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(journal), who, mode, str(count), str(barrier)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("A", "B")
    }
    deadline = time.monotonic() + 60
    while not all((barrier / f"ready-{who}").exists() for who in procs):
        failed = {w: p for w, p in procs.items() if p.poll() not in (None, 0)}
        if failed or time.monotonic() > deadline:
            for p in procs.values():
                p.kill()
            pytest.fail(f"writer did not start: {[p.communicate()[1] for p in failed.values()]}")
        time.sleep(0.01)
    (barrier / "go").touch()
    spans = []
    for who, p in procs.items():
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"writer {who} failed:\n{err}"
        assert "Error" not in err, err
        spans.append(tuple(map(float, out.split())))
    (a_start, a_end), (b_start, b_end) = spans
    assert a_start < b_end and b_start < a_end, f"writers did not overlap: {spans}"


class ConcurrencyContract:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def registry(self, url: str, tmp_path: Path) -> Iterator[Registry]:
        engine = make_engine(url)
        migrate(engine)  # the schema exists before the writers start
        yield Registry(engine, ObjectStore(open_location(str(tmp_path / "journal"))))
        engine.dispose()

    def test_two_processes_register_contiguous_versions(
        self, registry: Registry, url: str, tmp_path: Path
    ) -> None:
        run_writers(url, tmp_path / "journal", "register", N, tmp_path)
        versions = registry.versions("shared")
        assert [v.version for v in versions] == list(range(1, 2 * N + 1))
        assert len({v.id for v in versions}) == 2 * N
        writers = [v.meta["writer"] for v in versions]
        assert writers.count("A") == writers.count("B") == N
        assert registry.names() == [("shared", "dataset", 2 * N)]
        # The journal holds exactly one record per version.
        logged = [r for r in registry.journal.iter_records("registry")]  # type: ignore[union-attr]
        assert sorted(r["version"] for r in logged) == list(range(1, 2 * N + 1))

    def test_two_processes_move_one_alias(self, registry: Registry, url: str, tmp_path: Path) -> None:
        for i in range(1, 5):
            registry.register(id=hashing.hash_bytes(b"%d" % i), kind="model", name="shared")
        run_writers(url, tmp_path / "journal", "alias", MOVES, tmp_path)
        history = registry.alias_history("shared", "production")
        assert len(history) == 2 * MOVES
        assert {h.creator for h in history} == {"A", "B"}
        # Each move saw the one committed before it: an unbroken chain.
        assert history[0].previous_version is None
        for before, after in itertools.pairwise(history):
            assert after.previous_version == before.version, (before, after)
        final = registry.alias("shared", "production")
        assert final.version == history[-1].version
        assert final.id == registry.get("shared", final.version).id
        moves = [
            r
            for r in registry.journal.iter_records("registry")  # type: ignore[union-attr]
            if r["event"] == "alias"
        ]
        assert [(m["version"], m["previous_version"]) for m in moves] == [
            (h.version, h.previous_version) for h in history
        ]

    def test_same_content_at_once_is_one_version(self, registry: Registry, url: str) -> None:
        """Writers registering the same id at once (a re-run snapshot): one
        version, whether the name is new or already has versions."""
        writers = [Registry(make_engine(url), None) for _ in range(4)]
        try:
            for trial in range(6):
                name = f"same-{trial // 2}"  # even trials: a new name; odd: existing
                results = _register_at_once(writers, name, hashing.hash_bytes(b"t%d" % trial))
                assert len(results) == len(writers), "a writer failed"
                assert sum(created for _, created in results) == 1, f"trial {trial}"
                assert len({v.version for v, _ in results}) == 1
            for n in range(3):
                assert [v.version for v in registry.versions(f"same-{n}")] == [1, 2]
        finally:
            for w in writers:
                w.engine.dispose()


def _register_at_once(writers: list[Registry], name: str, id: str) -> list:
    """Every writer (a thread with its own connections) registers ``id`` at once."""
    barrier = threading.Barrier(len(writers))
    results: list = []

    def write(r: Registry) -> None:
        barrier.wait()
        results.append(r.register(id=id, kind="dataset", name=name))

    threads = [threading.Thread(target=write, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class TestSQLiteConcurrency(ConcurrencyContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


class TestPostgresConcurrency(ConcurrencyContract):
    @pytest.fixture
    def url(self, pg_url: str) -> str:
        return pg_url


HOLDER = r"""
import sqlite3, sys, time
from pathlib import Path
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")  # the write lock on a new file, still in rollback-journal mode
c.execute("CREATE TABLE seed(x)")
Path(sys.argv[2]).touch()
time.sleep(float(sys.argv[3]))
c.execute("COMMIT")
"""


def test_a_new_database_locked_by_another_process_is_waited_for_not_refused(tmp_path: Path) -> None:
    """Opening a registry file that another process is creating at that
    moment (a flow and its Dask workers on a new repo): the connection's
    switch to WAL mode waits for the lock like any write, where SQLite's
    own busy handler does not (it failed in ~1 ms with "database is
    locked"), and the file ends in WAL mode."""
    db, held, hold = tmp_path / "registry.db", tmp_path / "held", 1.0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(held), str(hold)], stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while not held.exists():
            assert holder.poll() is None, holder.communicate()[1]
            assert time.monotonic() < deadline, "the holder never took the lock"
            time.sleep(0.005)
        engine = make_engine(f"sqlite:///{db}")
        started = time.monotonic()
        with engine.connect() as conn:
            waited = time.monotonic() - started
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        engine.dispose()
    finally:
        holder.wait(timeout=30)
    assert holder.returncode == 0
    assert mode == "wal"
    assert waited > 0.1  # it waited for the holder's commit (nothing else could have let it in)
