"""Contract tests for the registry, run on SQLite (a temp file) and on the
machine's PostgreSQL (a fresh schema per test).

``RegistryContract`` is the contract; each backend supplies the engine URL.
Artifacts are registered directly with made-up ids and kinds, so lineage
and refs are tested without building real manifests; the rebuild test at
the bottom goes through a whole Repo.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import blake3
import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import inspect, text

from lepton.errors import (
    AmbiguousRef,
    Conflict,
    InvalidInput,
    LeptonError,
    NotFound,
)
from lepton.registry import Registry, lineage, make_engine, migrate
from lepton.registry import engine as registry_engine
from lepton.registry.entities import Lineage
from lepton.registry.schema import metadata
from lepton.repo import Repo
from lepton.store import ObjectStore, open_location


def fake_id(seed: str, prefix: str = "") -> str:
    """A well-formed content key; ``prefix`` forces its first hex digits."""
    digest = blake3.blake3(seed.encode()).hexdigest()
    return "blake3:" + (prefix + digest)[:64]


class RegistryContract:
    """What the registry must do on every SQL backend."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def journal(self, tmp_path: Path) -> ObjectStore:
        return ObjectStore(open_location(str(tmp_path / "journal")), durable=False)

    @pytest.fixture
    def registry(self, url: str, journal: ObjectStore) -> Iterator[Registry]:
        engine = make_engine(url)
        migrate(engine)
        yield Registry(engine, journal)
        engine.dispose()

    def records(self, journal: ObjectStore) -> list[dict]:
        return list(journal.iter_records("registry"))

    # ---- register -----------------------------------------------------------
    def test_versions_count_up_per_name(self, registry: Registry) -> None:
        got = [registry.register(id=fake_id(f"d{i}"), kind="dataset", name="d") for i in range(3)]
        other, _ = registry.register(id=fake_id("o"), kind="dataset", name="other")
        assert [(v.version, created) for v, created in got] == [(1, True), (2, True), (3, True)]
        assert other.version == 1
        assert [v.id for v in registry.versions("d")] == [fake_id(f"d{i}") for i in range(3)]
        assert registry.latest("d").version == 3
        assert registry.get("d", 2).id == fake_id("d1")
        assert registry.names() == [("d", "dataset", 3), ("other", "dataset", 1)]
        assert registry.names(kind="model") == []

    def test_write_timings_name_each_committed_write(self, registry: Registry, tmp_path: Path) -> None:
        from lepton.registry.timings import read_log, write_log

        log = tmp_path / "writes.jsonl"
        registry.on_write = write_log(str(log))
        registry.register(id=fake_id("t1"), kind="model", name="m")
        registry.set_alias("m", "production", 1)
        registry.start_run("r1")
        with pytest.raises(NotFound):
            registry.set_alias("m", "production", 9)  # refused: no transaction committed, no line
        registry.finish_run("r1", "completed")
        rows = read_log(log)
        assert [r["op"] for r in rows] == ["register", "set_alias", "start_run", "finish_run"]
        assert all(0 < float(r["s"]) < 30 for r in rows)

    def test_register_records_fields_and_journals(self, registry: Registry, journal: ObjectStore) -> None:
        parent = fake_id("p")
        v, created = registry.register(
            id=fake_id("m"),
            kind="model",
            name="m",
            parents=[(parent, "dataset")],
            creator="ada",
            message="first",
            meta={"k": [1, 2]},
            run_id="run-1",
        )
        assert created and v.ref == "m@v1"
        back = registry.get("m", 1)
        assert back == v
        assert (back.creator, back.message, back.meta, back.run_id) == (
            "ada",
            "first",
            {"k": [1, 2]},
            "run-1",
        )
        assert back.created_at.tzinfo is not None
        (rec,) = self.records(journal)
        assert (rec["event"], rec["name"], rec["version"], rec["id"]) == (
            "register",
            "m",
            1,
            fake_id("m"),
        )

    def test_same_id_as_latest_is_not_a_new_version(self, registry: Registry, journal: ObjectStore) -> None:
        a, b = fake_id("a"), fake_id("b")
        registry.register(id=a, kind="dataset", name="d")
        again, created = registry.register(id=a, kind="dataset", name="d")
        assert not created and again.version == 1
        registry.register(id=b, kind="dataset", name="d")
        back, created = registry.register(id=a, kind="dataset", name="d")
        assert created and back.version == 3  # going back to old content is a new version
        assert [v.id for v in registry.versions("d")] == [a, b, a]
        assert len(self.records(journal)) == 3

    def test_kind_conflict(self, registry: Registry, journal: ObjectStore) -> None:
        registry.register(id=fake_id("a"), kind="dataset", name="d")
        with pytest.raises(Conflict, match="'d' is a dataset, not a labelset"):
            registry.register(id=fake_id("b"), kind="labelset", name="d")
        with pytest.raises(Conflict, match="dataset"):  # even with the latest's id
            registry.register(id=fake_id("a"), kind="labelset", name="d")
        assert [v.version for v in registry.versions("d")] == [1]
        assert registry.names() == [("d", "dataset", 1)]
        assert len(self.records(journal)) == 1
        v, _ = registry.register(id=fake_id("c"), kind="dataset", name="d")
        assert v.version == 2  # the refused write did not consume a number

    @pytest.mark.parametrize(
        "field,value",
        [
            ("name", "../x"),
            ("name", "a/b"),
            ("name", ""),
            ("name", "x" * 129),
            ("name", "bad\x00name"),
            ("id", "not-a-key"),
            ("id", "blake3:../../etc"),
            ("kind", "Data Set!"),
            ("kind", ""),
            ("parent", "../../etc/passwd"),
        ],
    )
    def test_register_validates_input(self, registry: Registry, field: str, value: str) -> None:
        args = {"id": fake_id("x"), "kind": "dataset", "name": "ok", "parents": []}
        if field == "parent":
            args["parents"] = [(value, "dataset")]
        else:
            args[field] = value
        with pytest.raises(InvalidInput):
            registry.register(**args)
        assert registry.names() == []

    # ---- refs ---------------------------------------------------------------
    @pytest.fixture
    def three(self, registry: Registry) -> list[str]:
        ids = [fake_id(f"v{i}") for i in range(1, 4)]
        for i in ids:
            registry.register(id=i, kind="dataset", name="data")
        registry.set_alias("data", "prod", 2)
        return ids

    def test_resolve_forms(self, registry: Registry, three: list[str]) -> None:
        assert registry.resolve("data").version == 3
        assert registry.resolve("data@latest").version == 3
        assert registry.resolve("data@v1").id == three[0]
        assert registry.resolve("data@prod").version == 2
        assert registry.resolve(three[0]).version == 1  # full id
        assert registry.resolve(three[0].split(":")[1][:8]).version == 1  # prefix
        assert registry.resolve(three[1][:14]).version == 2  # blake3:<prefix>

    def test_ambiguous_prefix_lists_candidates(self, registry: Registry) -> None:
        a, b = fake_id("one", prefix="abcd1"), fake_id("two", prefix="abcd2")
        registry.register(id=a, kind="dataset", name="first")
        registry.register(id=b, kind="model", name="second")
        with pytest.raises(AmbiguousRef) as e:
            registry.resolve("abcd")
        msg = str(e.value)
        assert a.split(":")[1][:12] in msg and b.split(":")[1][:12] in msg
        assert "first@v1" in msg and "second@v1" in msg
        assert isinstance(e.value, LookupError)
        assert registry.resolve("abcd1").name == "first"  # one more digit decides
        assert registry.resolve("blake3:abcd2").name == "second"

    def test_prefix_too_short_is_not_an_id(self, registry: Registry) -> None:
        registry.register(id=fake_id("x", prefix="abc"), kind="dataset", name="d")
        with pytest.raises(LeptonError):
            registry.resolve("abc")

    @pytest.mark.parametrize(
        "ref,message",
        [
            ("nope", "no artifact named 'nope'"),
            ("nope@v1", "no artifact named 'nope'"),
            ("nope@prod", "no artifact named 'nope'"),
            ("data@v9", "data has no version v9 (latest is v3)"),
            ("data@v0", "data has no version v0"),
            ("data@staging", "data has no alias 'staging'"),
            ("ffff0000", "no artifact id starts with ffff0000"),
        ],
    )
    def test_missing_refs_are_not_found(
        self, registry: Registry, three: list[str], ref: str, message: str
    ) -> None:
        with pytest.raises(NotFound) as e:
            registry.resolve(ref)
        assert message in str(e.value)

    @pytest.mark.parametrize(
        "ref",
        [
            "../x",
            "a@",
            "@v1",
            "data@",
            "data\x00",
            "data@prod\x00",
            "\x00",
            "",
            "%2e%2e%2f",
            "%252e%252e%252f",
            "data@%2e%2e",
            "data@../prod",
            "/etc/passwd",
            "file:///etc/passwd",
            "..\\x",
            "data;drop table names",
            "data#frag",
            "data@v1@v2",
            "blake3:",
            "blake3:../../etc",
            "data@v99999999999999999999",
            "data@v2147483648",
            "data@v-1",
            "x" * 500,
            "données",
            " data",
        ],
    )
    def test_bad_refs_fail_cleanly(self, registry: Registry, three: list[str], ref: str) -> None:
        with pytest.raises((InvalidInput, NotFound)):
            registry.resolve(ref)

    @pytest.mark.parametrize("bad", ["a\x00", "../x", "x" * 300])
    def test_lookups_never_crash_on_bad_names(self, registry: Registry, three: list[str], bad: str) -> None:
        for call in (
            lambda: registry.versions(bad),
            lambda: registry.get(bad, 1),
            lambda: registry.alias(bad, "prod"),
            lambda: registry.alias("data", bad),
            lambda: registry.alias_history(bad),
            lambda: registry.get_run(bad),
        ):
            with pytest.raises((InvalidInput, NotFound)):
                call()
        assert registry.has_name(bad) is False

    # ---- aliases ------------------------------------------------------------
    def test_alias_set_move_and_history(self, registry: Registry, journal: ObjectStore) -> None:
        ids = [fake_id(f"m{i}") for i in range(3)]
        for i in ids:
            registry.register(id=i, kind="model", name="m")
        first = registry.set_alias("m", "production", 1, creator="ada", reason="first")
        assert (first.version, first.previous_version, first.id) == (1, None, ids[0])
        second = registry.set_alias("m", "production", 3, creator="bob", reason="better")
        assert (second.version, second.previous_version) == (3, 1)
        registry.set_alias("m", "staging", 2)
        back = registry.set_alias("m", "production", 1, reason="rollback")
        assert back.previous_version == 3
        now = registry.alias("m", "production")
        assert (now.version, now.id) == (1, ids[0])
        assert registry.resolve("m@production").id == ids[0]
        hist = registry.alias_history("m", "production")
        assert [(h.version, h.previous_version, h.reason) for h in hist] == [
            (1, None, "first"),
            (3, 1, "better"),
            (1, 3, "rollback"),
        ]
        assert [h.creator for h in hist] == ["ada", "bob", None]
        assert all(h.moved_at.tzinfo is not None for h in hist)
        assert len(registry.alias_history("m")) == 4
        assert [(a.alias, a.version) for a in registry.aliases("m")] == [
            ("production", 1),
            ("staging", 2),
        ]
        alias_records = [r for r in self.records(journal) if r["event"] == "alias"]
        assert [r["version"] for r in alias_records] == [1, 3, 2, 1]

    @pytest.mark.parametrize("alias", ["latest", "v3", "v1", "../x", "", "a b", "prod\x00"])
    def test_reserved_or_invalid_aliases_are_refused(self, registry: Registry, alias: str) -> None:
        registry.register(id=fake_id("m"), kind="model", name="m")
        with pytest.raises(InvalidInput):
            registry.set_alias("m", alias, 1)
        assert registry.aliases("m") == [] and registry.alias_history("m") == []

    def test_alias_to_missing_version_or_name(self, registry: Registry) -> None:
        registry.register(id=fake_id("m"), kind="model", name="m")
        with pytest.raises(NotFound, match="m has no version v2"):
            registry.set_alias("m", "prod", 2)
        with pytest.raises(NotFound, match="no artifact named 'ghost'"):
            registry.set_alias("ghost", "prod", 1)
        assert registry.alias_history("m") == []

    # ---- lineage ------------------------------------------------------------
    @pytest.fixture
    def dag(self, registry: Registry) -> dict[str, str]:
        """dataset -> labelset -> model -> evaluation -> deployment, plus a
        shortcut dataset -> model, and an unrelated dataset -> model pair."""
        ids = {k: fake_id(k) for k in ("D", "L", "M", "E", "P", "D2", "M2")}
        spec = [
            ("D", "dataset", "data", []),
            ("L", "labelset", "labels", [("D", "dataset")]),
            ("M", "model", "model", [("D", "dataset"), ("L", "labels")]),
            ("E", "evaluation", "eval", [("M", "model")]),
            ("P", "deployment", "deploy", [("M", "model"), ("E", "evaluation")]),
            ("D2", "dataset", "data2", []),
            ("M2", "model", "model2", [("D2", "dataset")]),
        ]
        for key, kind, name, parents in spec:
            registry.register(id=ids[key], kind=kind, name=name, parents=[(ids[p], r) for p, r in parents])
        return ids

    @staticmethod
    def depths(lin: Lineage, ids: dict[str, str]) -> dict[str, int]:
        names = {v: k for k, v in ids.items()}
        return {names[n.id]: n.depth for n in lin.nodes}

    def test_upstream_to_any_depth(self, registry: Registry, dag: dict[str, str]) -> None:
        lin = lineage.walk(registry.engine, dag["P"], "upstream")
        assert self.depths(lin, dag) == {"P": 0, "E": 1, "M": 1, "L": 2, "D": 2}
        assert lin.root == dag["P"] and lin.direction == "upstream"
        node = {n.id: n for n in lin.nodes}[dag["L"]]
        assert (node.kind, node.name, node.version) == ("labelset", "labels", 1)
        edges = {(e.child_id, e.parent_id, e.role) for e in lin.edges}
        assert (dag["L"], dag["D"], "dataset") in edges
        assert (dag["M"], dag["L"], "labels") in edges
        assert len(edges) == 6  # every edge of the DAG above P, once
        assert min(e.depth for e in lin.edges if e.child_id == dag["L"]) == 3

    def test_depth_limit(self, registry: Registry, dag: dict[str, str]) -> None:
        one = lineage.walk(registry.engine, dag["P"], "upstream", depth=1)
        assert self.depths(one, dag) == {"P": 0, "M": 1, "E": 1}
        assert all(e.depth == 1 for e in one.edges)
        two = lineage.walk(registry.engine, dag["E"], "upstream", depth=2)
        assert self.depths(two, dag) == {"E": 0, "M": 1, "D": 2, "L": 2}

    def test_downstream_and_impact(self, registry: Registry, dag: dict[str, str]) -> None:
        down = lineage.walk(registry.engine, dag["D"], "downstream")
        assert self.depths(down, dag) == {"D": 0, "L": 1, "M": 1, "E": 2, "P": 2}
        imp = lineage.impact(registry.engine, dag["L"])
        assert imp.direction == "impact"
        assert self.depths(imp, dag) == {"L": 0, "M": 1, "E": 2, "P": 2}
        deployed = [n.name for n in imp.nodes if n.kind == "deployment"]
        assert deployed == ["deploy"]  # "which deployments used labels@v1?"
        assert dag["M2"] not in {n.id for n in lineage.impact(registry.engine, dag["D"]).nodes}

    def test_lineage_of_a_leaf(self, registry: Registry, dag: dict[str, str]) -> None:
        lin = lineage.walk(registry.engine, dag["P"], "downstream")
        assert [n.id for n in lin.nodes] == [dag["P"]] and lin.edges == ()
        with pytest.raises(ValueError):
            lineage.walk(registry.engine, dag["P"], "sideways")

    # ---- runs ---------------------------------------------------------------
    def test_runs_start_and_finish(self, registry: Registry, journal: ObjectStore) -> None:
        run = registry.start_run("r1", flow_run_id="f-1", params={"lr": 0.1}, creator="ada")
        assert (run.status, run.ended_at, run.params) == ("running", None, {"lr": 0.1})
        done = registry.finish_run("r1", "completed")
        assert done.status == "completed" and done.ended_at >= done.started_at
        registry.start_run("r2")
        assert [r.id for r in registry.runs()] == ["r2", "r1"]
        assert registry.get_run("r1") == done
        with pytest.raises(Conflict):
            registry.start_run("r1")
        events = [r["event"] for r in self.records(journal)]
        assert events == ["run", "run_end", "run"]

    def test_finishing_an_unknown_run_is_not_found_and_not_logged(
        self, registry: Registry, journal: ObjectStore
    ) -> None:
        with pytest.raises(NotFound, match="no run ghost"):
            registry.finish_run("ghost", "completed")
        assert self.records(journal) == []
        with pytest.raises(NotFound):
            registry.get_run("ghost")

    # ---- entities -----------------------------------------------------------
    def test_entities_are_frozen(self, registry: Registry, dag: dict[str, str]) -> None:
        v = registry.get("model", 1)
        move = registry.set_alias("model", "prod", 1)
        run = registry.start_run("r")
        lin = lineage.walk(registry.engine, dag["P"], "upstream")
        for entity, field, value in [
            (v, "version", 99),
            (v, "id", fake_id("evil")),
            (move, "version", 2),
            (registry.alias("model", "prod"), "version", 2),
            (run, "status", "completed"),
            (lin, "root", "x"),
            (lin.nodes[0], "depth", 5),
            (lin.edges[0], "role", "x"),
        ]:
            with pytest.raises(ValidationError):
                setattr(entity, field, value)
        assert registry.get("model", 1).version == 1

    # ---- schema -------------------------------------------------------------
    def test_head_is_alembic_head_and_schema_matches(self, registry: Registry) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(registry_engine.MIGRATIONS))
        assert ScriptDirectory.from_config(cfg).get_current_head() == registry_engine.HEAD
        assert registry_engine.current_revision(registry.engine) == registry_engine.HEAD
        with registry.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []  # migrations build exactly what schema.py describes

    def test_migrate_is_idempotent(self, registry: Registry) -> None:
        registry.register(id=fake_id("a"), kind="dataset", name="d")
        migrate(registry.engine)
        migrate(registry.engine)
        assert registry_engine.current_revision(registry.engine) == registry_engine.HEAD
        with registry.engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM alembic_version")).scalar()
            tables = set(inspect(conn).get_table_names())
        assert count == 1
        assert {t.name for t in metadata.sorted_tables} <= tables
        assert registry.latest("d").id == fake_id("a")


class TestSQLiteRegistry(RegistryContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


class TestPostgresRegistry(RegistryContract):
    @pytest.fixture
    def url(self, pg_url: str) -> str:
        return pg_url


# ---- rebuild from the store, through a whole repository (both stacks) -----------
def _state(repo: Repo) -> dict:
    reg = repo.registry
    names = reg.names()
    state: dict = {"names": names, "runs": reg.runs()}
    for name, _, _ in names:
        state[name] = {
            "versions": reg.versions(name),
            "aliases": reg.aliases(name),
            "history": reg.alias_history(name),
        }
    for ref in ("labels@v1", "labels@v2", "data@v1"):
        state[f"up:{ref}"] = repo.lineage(ref, "upstream")
        state[f"down:{ref}"] = repo.lineage(ref, "downstream")
    return state


def _wipe(repo: Repo) -> None:
    """Drop every table, alembic's included, then migrate: an empty registry."""
    metadata.drop_all(repo.engine)
    with repo.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    migrate(repo.engine)
    assert repo.registry.names() == []


def test_rebuild_registry_from_store(repo: Repo) -> None:
    frames = [
        pd.DataFrame({"id": range(20), "x": [float(i) for i in range(20)]}),
        pd.DataFrame({"id": range(25), "x": [i * 2.0 for i in range(25)]}),
    ]
    for df in frames:
        repo.snapshot_data("data", df, key="id", message="snap")
    for n, ref in ((20, "data@v1"), (25, "data@v2")):
        labels = pd.DataFrame({"id": range(n), "y": [i % 3 for i in range(n)]})
        repo.snapshot_labels("labels", labels, dataset=ref, key="id", label="y")
    repo.set_alias("data@v1", "production", reason="first")
    repo.set_alias("data@v2", "production", reason="newer")
    repo.set_alias("data@v1", "production", reason="rollback")
    repo.set_alias("labels@v2", "staging")
    repo.registry.start_run("run-1", params={"seed": 1})
    repo.registry.finish_run("run-1", "completed")
    before = _state(repo)
    assert before["data"]["history"][-1].previous_version == 2
    assert len(before["up:labels@v2"].nodes) == 2

    _wipe(repo)
    counts = repo.rebuild_registry()
    assert counts == {"artifacts": 4, "alias_moves": 4, "runs": 1}
    assert _state(repo) == before
    repo.rebuild_registry()  # idempotent
    assert _state(repo) == before
