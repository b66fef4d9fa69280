"""gc on inputs and timings that once broke it: registry log records of the
wrong shape, versions whose manifest is stored packed, a grace too short
for live writers, a retraining run's config stored just before the run, a
stale S3 reuse note, and a refusal that names the versions it concerns
and the command that reports them."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pipeline_helpers import project, write_project, write_repo
from sqlalchemy import update
from test_gc import HOUR, _age, _age_all, _age_path, _break, _frame, _tree_versions

from lepton.config import Settings
from lepton.gc import MIN_GRACE, GcRefused, collect
from lepton.registry import schema
from lepton.repo import Repo, open_repo
from lepton.store import packing, sweep
from lepton.store.objects import FRESHEN_AFTER, LOG, REUSED, TMP

DAY = 24 * HOUR


def _local(tmp_path: Path, name: str) -> Settings:
    return Settings.model_validate(
        {"store": {"url": str(tmp_path / name)}, "registry": {"url": f"sqlite:///{tmp_path / name}.db"}}
    )


# ---- registry log records of the wrong shape ---------------------------------------------
BAD_RECORDS = {
    "list": b"[]",
    "null": b"null",
    "number-id": b'{"event": "register", "id": 5}',
    "list-id": b'{"event": "register", "id": ["x"]}',
    "not-a-key": b'{"event": "alias", "id": "not-a-key"}',
    "no-id": b'{"event": "register", "name": "d", "version": 2}',
}


def test_log_records_of_the_wrong_shape_stop_gc_by_name(repo):  # type: ignore[no-untyped-def]
    """Valid JSON that is not a register/alias record with an object key is
    as unreadable as invalid JSON: gc cannot know what it names, so it
    refuses, naming each record, and --force gets past them."""
    repo.snapshot_data("d", _frame(1), key="id")
    orphan = repo.store.put_bytes(b"lost")
    _age_all(repo.store)
    base = repo.store.location.join(LOG, "registry")
    paths = {}
    for i, (name, data) in enumerate(BAD_RECORDS.items()):
        paths[name] = f"{base}/20990101T00000{i}.000000Z-{name}.json"
        repo.store.fs.pipe_file(paths[name], data)
    with pytest.raises(GcRefused, match="removed nothing") as err:
        collect(repo, dry_run=False)
    assert all(p in str(err.value) for p in list(paths.values())[:5]) and "and 1 more" in str(err.value)
    assert orphan in sweep.list_objects(repo.store)
    forced = collect(repo, dry_run=False, force=True)
    assert set(forced.unreadable) == set(paths.values())
    assert "not a JSON object" in forced.unreadable[paths["list"]]
    assert "5" in forced.unreadable[paths["number-id"]]
    assert "not-a-key" in forced.unreadable[paths["not-a-key"]]
    assert forced.removed == [orphan]
    assert repo.verify("d").ok


# ---- packed objects -------------------------------------------------------------------------
def test_a_version_whose_manifest_is_stored_packed_is_read_and_kept(repo, tmp_path):  # type: ignore[no-untyped-def]
    """A manifest's bytes stored earlier as a (packed) tree file: the
    version reuses that object, and gc reads it as every reader does."""
    src = tmp_path / "d"
    src.mkdir()
    files = {f"f{i}.txt": f"row {i} some text some text\n".encode() for i in range(1, 7)}
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    with Repo(_local(tmp_path, "scratch")).ensure_ready() as scratch:  # the same snapshot elsewhere
        key = scratch.snapshot_data("ds", str(src)).version.id
        (tmp_path / "x").mkdir()
        (tmp_path / "x" / "m.json").write_bytes(scratch.store.read_bytes(key))
    repo.snapshot_data("other", str(tmp_path / "x"))
    assert repo.store.fs.cat_file(repo.store.path_of(key))[:4] == packing.MAGIC
    assert repo.snapshot_data("ds", str(src)).version.id == key
    assert repo.verify("ds").ok
    orphan = repo.store.put_bytes(b"lost")
    everything = _age_all(repo.store)
    report = collect(repo, dry_run=False)
    assert report.unreadable == {} and report.removed == [orphan]
    assert set(sweep.list_objects(repo.store)) == everything - {orphan}
    out = repo.checkout("ds", tmp_path / "out")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files


# ---- grace ------------------------------------------------------------------------------------------
def test_the_least_grace_covers_an_orphan_a_writer_reuses_as_is(store):  # type: ignore[no-untyped-def]
    """A writer reuses an object younger than FRESHEN_AFTER without
    refreshing it: with a grace of MIN_GRACE gc still keeps it."""
    key = store.put_bytes(b"an orphan a snapshot is about to name")
    _age(store, [key], FRESHEN_AFTER - 200)
    assert store.put_bytes(b"an orphan a snapshot is about to name") == key  # reused as is
    assert not sweep.remove_if_old(store, key, sweep.clock(store) - MIN_GRACE)
    assert MIN_GRACE > FRESHEN_AFTER


def test_cli_refuses_a_grace_shorter_than_is_safe(tmp_path, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    from lepton.cli import maintenance
    from lepton.cli.main import main

    assert maintenance.MIN_GRACE == MIN_GRACE  # written out there, as DEFAULT_GRACE is
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("LEPTON_")]:
        monkeypatch.delenv(var)
    assert main(["init"]) == 0
    with open_repo(tmp_path) as repo:
        orphan = repo.store.put_bytes(b"reused by a snapshot still going")
        _age(repo.store, [orphan], FRESHEN_AFTER - 200)
    capsys.readouterr()
    assert main(["gc", "--grace", "300"]) == 1
    error = capsys.readouterr().err
    assert error.count("error:") == 1 and "--grace 300" in error and f"{MIN_GRACE:g}" in error
    assert "reuse" in error and "--unsafe-grace" in error
    with open_repo(tmp_path) as repo:
        assert repo.store.exists(orphan)
    assert main(["gc", "--grace", f"{MIN_GRACE:g}", "--dry-run", "--json"]) == 0
    assert orphan not in capsys.readouterr().out
    assert main(["gc", "--grace", "300", "--unsafe-grace"]) == 0
    with open_repo(tmp_path) as repo:
        assert not repo.store.exists(orphan)
    assert main(["gc", "--help"]) == 0
    assert "--unsafe-grace" in capsys.readouterr().out


# ---- a retraining run's config -----------------------------------------------------------------
def test_a_retrain_run_keeps_a_config_stored_just_before_it(backend, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The config an earlier run stored (young, so reused without a refresh)
    is stored again as a run starts, and the flow goes on a while: gc's
    guard for runs in progress must cover it however long the run takes."""
    from flows import retrain as flow

    folder = write_repo(tmp_path / "repo", backend)
    write_project(folder, project())
    config = folder / "project.toml"
    with open_repo(folder) as repo:
        earlier = repo.store.put_bytes(config.read_bytes())
        _age(repo.store, [earlier], FRESHEN_AFTER - 1)
        real = flow.store_config

        def then_a_while(*args):  # type: ignore[no-untyped-def]
            got = real(*args)
            time.sleep(2)  # whatever the flow does next takes time
            return got

        monkeypatch.setattr(flow, "store_config", then_a_while)
        key, cfg, _ = flow._begin(repo, config, flow.RetrainParams(repo=str(folder)), "exec-1")
        assert key == earlier and cfg.name == "bc"
        run = repo.registry.get_run("exec-1")
        assert run.status == "running"
        with repo.engine.begin() as conn:  # the run goes on for two hours
            later = run.started_at - timedelta(hours=2)
            conn.execute(update(schema.runs).where(schema.runs.c.id == "exec-1").values(started_at=later))
        _age(repo.store, [key])
        report = collect(repo, dry_run=False)
        assert key not in report.removed and repo.store.exists(key)
        assert report.live_runs == ["exec-1"]


def test_a_bad_config_starts_no_run(tmp_path):  # type: ignore[no-untyped-def]
    from flows import retrain as flow
    from lepton.errors import LeptonError

    folder = write_repo(tmp_path / "repo", _local(tmp_path, "store"))
    (folder / "project.toml").write_text('name = "bc"\n')
    with open_repo(folder) as repo, pytest.raises(LeptonError):
        flow._begin(repo, folder / "project.toml", flow.RetrainParams(repo=str(folder)), "exec-1")
    with open_repo(folder) as repo:
        assert repo.registry.runs() == []
        assert list(sweep.list_objects(repo.store)) == []


# ---- S3 reuse notes ----------------------------------------------------------------------------
def test_an_old_reuse_note_on_s3_neither_keeps_nor_refreshes_an_orphan(s3_server, tmp_path):  # type: ignore[no-untyped-def]
    settings = Settings.model_validate(
        {
            "store": {"url": "s3://lepton/store"},
            "registry": {"url": f"sqlite:///{tmp_path / 'r.db'}"},
            "s3": s3_server.settings().model_dump(),
        }
    )
    with Repo(settings).ensure_ready() as repo:
        store = repo.store
        key = store.put_bytes(b"reused long ago, then forgotten")
        _age(store, [key], 8 * DAY)
        assert store.put_bytes(b"reused long ago, then forgotten") == key  # a note, then a refresh
        notes = [p for p, _, _ in sweep.list_files(store, store.location.join(TMP, REUSED))]
        assert len(notes) == 1
        _age(store, [key], 7 * DAY)
        _age_path(store, notes[0], 7 * DAY)
        report = collect(repo, dry_run=False)
        assert report.removed == [key] and report.kept_young == 0
        assert not store.exists(key)
        assert list(sweep.list_files(store, store.location.join(TMP, REUSED))) == []


# ---- the refusal names the versions -----------------------------------------------------------------
def test_the_refusal_names_the_versions_and_the_command_that_reports_them(repo, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from lepton.data import listing

    monkeypatch.setattr(listing, "LISTING_MIN", 8)
    monkeypatch.setattr(listing, "MAX_CHAIN", 3)
    repo.snapshot_data("d", _frame(1), key="id")
    broken = repo.snapshot_data("e", _frame(2), key="id").version.id
    _tree_versions(repo, tmp_path / "src", 3)
    chain = repo.load(repo.resolve("tree@v3").id).listing  # type: ignore[attr-defined]
    _age_all(repo.store)
    _break(repo.store, broken, "missing")
    _break(repo.store, chain[0], "corrupt")
    with pytest.raises(GcRefused) as err:
        collect(repo, dry_run=False)
    message = str(err.value)
    assert "`lepton verify`" not in message and "lepton verify NAME@vN" in message
    assert f"{broken} (missing; version e@v1)" in message
    assert all(f"tree@v{v}" in message for v in (1, 2, 3)) and "d@v1" not in message
    found = repo.verify("e@v1")  # the command the message names reports what gc found
    assert [f.key for f in found.findings] == [broken]
    assert chain[0] in {f.key for f in repo.verify("tree@v3").findings}
