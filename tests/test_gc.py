"""`lepton gc` on both stacks: unreferenced objects go once older than the
grace period; nothing reachable from any version, alias, memo or the
registry log ever goes; a dry run removes nothing; an unreadable manifest
stops gc; and gc next to a live snapshot in another process never breaks
that snapshot, even when the snapshot reuses old orphans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pipeline_helpers import prepare_data, project, write_project, write_repo
from sqlalchemy import select

from lepton import hashing
from lepton.config import Settings
from lepton.data import listing, sources, trees
from lepton.data import snapshot as _snap
from lepton.gc import GcRefused, collect
from lepton.pipeline import fit, prepare, release, score
from lepton.pipeline.context import Context, logical_run_id
from lepton.pipeline.runs import record_run, store_config
from lepton.project import load_project
from lepton.registry import schema
from lepton.repo import Repo, open_repo
from lepton.store import ObjectStore, open_location, sweep
from lepton.store.objects import TMP

HOUR = 3600.0


# ---- helpers ---------------------------------------------------------------------
def _age(store: ObjectStore, keys, seconds: float = 2 * HOUR) -> None:  # type: ignore[no-untyped-def]
    """Make objects look ``seconds`` older (local: utime; S3: moto's record)."""
    for key in keys:
        _age_path(store, store.path_of(key), seconds)


def _age_path(store: ObjectStore, path: str, seconds: float) -> None:
    if store.location.is_local:
        t = os.stat(path).st_mtime - seconds
        os.utime(path, (t, t))
        return
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    bucket, _, name = path.partition("/")
    fake = s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets[bucket].keys[name]
    fake.last_modified = fake.last_modified - timedelta(seconds=seconds)


def _age_all(store: ObjectStore, seconds: float = 2 * HOUR) -> set[str]:
    keys = set(sweep.list_objects(store))
    _age(store, keys, seconds)
    return keys


def _frame(seed: int, n: int = 2_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": np.arange(n), "x": rng.random(n), "c": rng.choice(["a", "b", "c"], n)})


def _orphans(repo: Repo) -> set[str]:
    """Objects a crash leaves: some put directly, and a snapshot's chunks and
    manifest written but never registered."""
    direct = {repo.store.put_bytes(f"orphan {i}".encode()) for i in range(3)}
    manifest = _snap.snapshot_table(repo.store, "crashed", sources.from_frame(_frame(99, 40_000)), "id")
    return direct | {repo.put_manifest(manifest), *manifest.objects()}


# ---- unreferenced objects -------------------------------------------------------------
def test_orphans_go_once_older_than_grace_and_stay_while_young(repo):  # type: ignore[no-untyped-def]
    repo.snapshot_data("d", _frame(1), key="id")
    kept = set(sweep.list_objects(repo.store))
    orphans = _orphans(repo)
    assert len(orphans) > 5 and not orphans & kept
    young = collect(repo, dry_run=False)  # default grace: an hour
    assert young.removed == [] and young.kept_young == len(orphans)
    assert young.reachable == len(kept) and young.scanned == len(kept | orphans)
    _age_all(repo.store)
    report = collect(repo, dry_run=False)
    assert set(report.removed) == orphans
    assert report.freed_bytes > 0 and report.kept_young == 0
    assert set(sweep.list_objects(repo.store)) == kept
    assert repo.verify().ok
    pd.testing.assert_frame_equal(repo.read_table("d@v1"), _frame(1))


def test_grace_zero_collects_at_once(repo):  # type: ignore[no-untyped-def]
    repo.snapshot_data("d", _frame(1), key="id")
    orphan = repo.store.put_bytes(b"lost")
    time.sleep(1.1)  # S3 times have one-second resolution
    assert collect(repo, dry_run=False, grace_seconds=0).removed == [orphan]
    assert repo.verify().ok


def test_a_crashed_csv_snapshot_is_collected_and_can_be_redone(repo, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The CSV ingest memoises its chunks before the version registers: a
    crash leaves memo rows pointing at orphans. gc collects the orphans (the
    memo is a cache), and the snapshot done again stores them again."""
    csv = tmp_path / "big.csv"
    _frame(5, 60_000).to_csv(csv, index=False)

    def crash(**kw):  # type: ignore[no-untyped-def]
        raise RuntimeError("killed before registration")

    with monkeypatch.context() as m:
        m.setattr(repo.registry, "register", crash)
        with pytest.raises(RuntimeError):
            repo.snapshot_data("big", csv, key="id")
    with repo.engine.connect() as conn:
        memoised = set(conn.execute(select(schema.memos.c.artifact_id)).scalars())
    orphans = _age_all(repo.store)
    assert memoised and memoised <= orphans
    assert set(collect(repo, dry_run=False).removed) == orphans
    with repo.engine.connect() as conn:  # their memos went with them
        assert not set(conn.execute(select(schema.memos.c.artifact_id)).scalars())
    repo.snapshot_data("big", csv, key="id")
    assert repo.verify("big").ok
    pd.testing.assert_frame_equal(repo.read_table("big"), pd.read_csv(csv), check_dtype=False)


def test_dry_run_removes_nothing(repo):  # type: ignore[no-untyped-def]
    repo.snapshot_data("d", _frame(1), key="id")
    orphans = _orphans(repo)
    before = _age_all(repo.store)
    dry = collect(repo, dry_run=True)
    assert dry.dry_run and set(dry.removed) == orphans
    assert dry.freed_bytes == sum(e.size for k, e in sweep.list_objects(repo.store).items() if k in orphans)
    assert set(sweep.list_objects(repo.store)) == before
    real = collect(repo, dry_run=False)
    assert real.removed == dry.removed and real.freed_bytes == dry.freed_bytes


# ---- what stays -------------------------------------------------------------------------
def test_every_version_of_tables_trees_and_labels_stays(repo, tmp_path):  # type: ignore[no-untyped-def]
    frames = [_frame(1, 60_000)]
    frames.append(frames[0].iloc[30_000:].reset_index(drop=True))  # v1's first chunks only in v1
    frames.append(frames[1].assign(x=frames[1]["x"] * 2))
    for f in frames:
        repo.snapshot_data("table", f, key="id")
    trees = []
    for i, files in enumerate([{"a.txt": b"one", "sub/b.bin": os.urandom(3000)}, {"a.txt": b"two"}]):
        folder = tmp_path / f"tree{i}"
        for rel, data in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        repo.snapshot_data("tree", folder)
        trees.append(files)
    labels = [pd.DataFrame({"id": np.arange(60_000), "y": np.arange(60_000) % k}) for k in (2, 3)]
    for lab in labels:
        repo.snapshot_labels("labels", lab, dataset="table@v1", key="id", label="y")
    repo.set_alias("table@v1", "golden")
    only_v1 = set(repo.load(repo.resolve("table@v1").id).objects()) - {
        k for v in (2, 3) for k in repo.load(repo.resolve(f"table@v{v}").id).objects()
    }
    assert only_v1  # an object referenced only by an older version
    everything = _age_all(repo.store)
    report = collect(repo, dry_run=False, grace_seconds=0)
    assert report.removed == [] and report.reachable == len(everything)
    assert set(sweep.list_objects(repo.store)) == everything
    assert repo.verify().ok
    for v, f in enumerate(frames, 1):
        pd.testing.assert_frame_equal(repo.read_table(f"table@v{v}"), f)
    for v, files in enumerate(trees, 1):
        out = repo.checkout(f"tree@v{v}", tmp_path / f"out{v}")
        got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert got == files
    for v, lab in enumerate(labels, 1):
        got = repo.read_table(f"labels@v{v}")
        assert got["y"].astype(str).tolist() == lab["y"].astype(str).tolist()


def _run_steps(ctx: Context) -> dict:  # type: ignore[type-arg]
    """The pipeline without Prefect (as tests/test_pipeline.py runs it), plus the run record."""
    snap = prepare.snapshot_data(ctx)
    ctx = Context(
        ctx.repo, ctx.project, ctx.root, logical_run_id(ctx.project, snap["dataset"], snap["labelset"])
    )
    comps = prepare.version_components(ctx, snap["dataset"], snap["labelset"])
    models, evaluated = [], []
    for cand in ctx.project.candidates:
        models.append(
            fit.train(
                ctx, cand.name, snap["dataset"], snap["labelset"], comps["evalset"], comps["specs"][cand.name]
            )
        )
        evaluated.append(score.evaluate(ctx, models[-1]["model"], comps["evalset"]))
    decision = score.select(ctx, evaluated, comps["evalset"])
    deployed = release.deploy(ctx, decision["decision"])
    config_key, _ = store_config(ctx.repo, ctx.root / "project.toml")
    outputs = {
        "dataset": snap["dataset"],
        "labelset": snap["labelset"],
        "evalset": comps["evalset"],
        "models": [{"candidate": m["candidate"], "model": m["model"]} for m in models],
        "decision": decision["decision"],
        "deployment": deployed.get("deployment"),
    }
    record = record_run(
        ctx.repo, ctx.project, run_id=ctx.run_id or "run", flow_run_id=None, config_key=config_key,
        params={}, outputs=outputs,
    )  # fmt: skip
    return {"record": record, "models": models, "deployed": deployed}


def test_a_pipeline_runs_artifacts_all_stay(tmp_path, backend):  # type: ignore[no-untyped-def]
    folder = write_repo(tmp_path / "repo", backend)
    prepare_data(folder)
    cfg, root = load_project(write_project(folder, project()))
    ctx = Context(open_repo(folder), cfg, root)
    repo = ctx.repo
    first = _run_steps(ctx)
    assert first["deployed"]["deployed"]
    orphan = repo.store.put_bytes(b"not referenced")
    everything = _age_all(repo.store)
    report = collect(repo, dry_run=False, grace_seconds=0)
    assert report.removed == [orphan]
    assert set(sweep.list_objects(repo.store)) == everything - {orphan}
    assert repo.verify().ok
    kinds = set()
    for name, kind, _ in repo.registry.names():
        kinds.add(kind)
        for v in repo.registry.versions(name):
            for key in repo.objects_of(v.id):  # every manifest reads, every object is there
                assert repo.store.exists(key), (v.ref, key)
    assert {"dataset", "labelset", "evalset", "component", "fit", "model", "evaluation"} <= kinds
    assert {"cost", "decision", "deployment", "run"} <= kinds
    again = _run_steps(ctx)  # memoised fits and evaluations are reused and still load
    assert all(s["reused"] for m in again["models"] for s in m["stages"])
    assert repo.load(again["record"]).kind == "run"
    repo.close()


def test_the_registry_log_keeps_what_a_lost_registry_forgot(backend, tmp_path):  # type: ignore[no-untyped-def]
    with Repo(backend).ensure_ready() as repo:
        repo.snapshot_data("d", _frame(1), key="id")
        everything = _age_all(repo.store)
    doc = backend.model_dump()
    doc["registry"] = {"url": f"sqlite:///{tmp_path / 'empty.db'}"}  # a wrong or lost registry
    with Repo(Settings.model_validate(doc)).ensure_ready() as other:
        assert other.registry.names() == []
        assert collect(other, dry_run=False, grace_seconds=0).removed == []
        assert set(sweep.list_objects(other.store)) == everything


def test_what_a_run_in_progress_wrote_stays(repo):  # type: ignore[no-untyped-def]
    repo.registry.start_run("run-1")
    fresh = repo.store.put_bytes(b"config of a run still going")
    old = repo.store.put_bytes(b"long lost")
    _age(repo.store, [old])
    time.sleep(1.1)
    report = collect(repo, dry_run=False, grace_seconds=0)
    assert report.removed == [old] and report.live_runs == ["run-1"] and report.kept_young == 1
    repo.registry.finish_run("run-1", "completed")
    assert collect(repo, dry_run=False, grace_seconds=0).removed == [fresh]


# ---- refusal ----------------------------------------------------------------------------------
def _break(store: ObjectStore, key: str, how: str) -> None:
    path = store.path_of(key)
    if how == "missing":
        store.delete(key)
    elif store.location.is_local:
        os.chmod(path, 0o644)
        Path(path).write_bytes(b'{"format": 1, "kind": "dataset"')
    else:
        store.fs.pipe_file(path, b'{"format": 1, "kind": "dataset"')


@pytest.mark.parametrize("how", ["missing", "corrupt"])
def test_an_unreadable_manifest_stops_gc(repo, how):  # type: ignore[no-untyped-def]
    repo.snapshot_data("d", _frame(1), key="id")
    broken = repo.snapshot_data("e", _frame(2), key="id").version.id
    orphans = _orphans(repo)
    _age_all(repo.store)
    _break(repo.store, broken, how)
    before = set(sweep.list_objects(repo.store))
    with pytest.raises(GcRefused, match="removed nothing") as err:
        collect(repo, dry_run=False)
    assert broken in str(err.value) and how in str(err.value) and "--force" in str(err.value)
    assert set(sweep.list_objects(repo.store)) == before  # nothing removed, nothing quarantined
    forced = collect(repo, dry_run=False, force=True)
    assert set(forced.unreadable) == {broken} and how in forced.unreadable[broken]
    assert orphans <= set(forced.removed)
    pd.testing.assert_frame_equal(repo.read_table("d"), _frame(1))


# ---- large trees: listing objects ------------------------------------------------------------
def _tree_versions(repo: Repo, src: Path, n: int) -> dict[int, dict[str, bytes]]:  # type: ignore[type-arg]
    """``n`` versions of a 30-file tree, each editing two files, adding one and removing one."""
    files = {f"d{i % 3}/f{i:02d}.bin": os.urandom(40 + i) for i in range(30)}
    versions = {}
    for v in range(1, n + 1):
        if v > 1:
            names = sorted(files)
            files |= {
                names[v]: os.urandom(90 + v),
                names[v + 1]: os.urandom(90 + v),
                f"new/{v}.txt": b"x" * v,
            }
            (src / names[-1]).unlink()
            del files[names[-1]]
        t = time.time() - 60  # past the state cache's racy window
        for rel, data in files.items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes(data)
            os.utime(src / rel, (t, t))
        assert repo.snapshot_data("tree", src).created
        versions[v] = dict(files)
    return versions


@pytest.fixture
def small_listings(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(listing, "LISTING_MIN", 8)
    monkeypatch.setattr(listing, "MAX_CHAIN", 3)


def test_every_listing_of_a_large_tree_and_every_file_it_names_stays(repo, tmp_path, small_listings):  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    versions = _tree_versions(repo, src, 5)
    manifests = {v: repo.load(repo.resolve(f"tree@v{v}").id) for v in versions}
    assert [len(m.listing) for m in manifests.values()] == [1, 2, 3, 1, 2]  # type: ignore[attr-defined]
    kept = {k for v in versions for k in repo.objects_of(repo.resolve(f"tree@v{v}").id)}
    (src / "crashed.txt").write_bytes(b"a snapshot that never registered")
    crashed = trees.snapshot_tree(
        repo.store,
        "tree",
        open_location("/"),
        str(src),
        "src",
        parent=manifests[5],  # type: ignore[arg-type]
    )
    assert crashed.listing[:-1] == manifests[5].listing  # type: ignore[attr-defined, index]
    everything = _age_all(repo.store)
    report = collect(repo, dry_run=False, grace_seconds=0)
    assert (
        set(report.removed)
        == set(crashed.objects()) - kept
        == {
            crashed.listing[-1],  # type: ignore[index]
            hashing.hash_bytes(b"a snapshot that never registered"),
        }
    )
    assert set(sweep.list_objects(repo.store)) == everything - set(report.removed)
    for v, files in versions.items():
        out = repo.checkout(f"tree@v{v}", tmp_path / f"out{v}")
        assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == files


@pytest.mark.parametrize("how", ["missing", "corrupt"])
def test_an_unreadable_listing_stops_gc(repo, tmp_path, small_listings, how):  # type: ignore[no-untyped-def]
    _tree_versions(repo, tmp_path / "src", 3)
    chain = repo.load(repo.resolve("tree@v3").id).listing  # type: ignore[attr-defined]
    _age_all(repo.store)
    _break(repo.store, chain[0], how)
    before = set(sweep.list_objects(repo.store))
    with pytest.raises(GcRefused, match="removed nothing") as err:
        collect(repo, dry_run=False)
    assert chain[0] in str(err.value) and how in str(err.value)
    assert set(sweep.list_objects(repo.store)) == before
    forced = collect(repo, dry_run=False, force=True)
    assert set(forced.unreadable) == {chain[0]}
    assert set(chain[1:]) <= set(sweep.list_objects(repo.store))  # the readable deltas (and their files) stay


# ---- leftovers ---------------------------------------------------------------------------------
def test_stale_temp_files_go(tmp_path):  # type: ignore[no-untyped-def]
    settings = Settings.model_validate(
        {"store": {"url": str(tmp_path / "store")}, "registry": {"url": f"sqlite:///{tmp_path / 'r.db'}"}}
    )
    with Repo(settings).ensure_ready() as repo:
        tmp = Path(repo.store.location.join(TMP))
        (tmp / "obj-stale").write_bytes(b"half")
        (tmp / "spool-live").write_bytes(b"being written")
        _age_path(repo.store, str(tmp / "obj-stale"), 2 * HOUR)
        assert collect(repo, dry_run=True).removed_tmp == 1
        assert (tmp / "obj-stale").exists()
        assert collect(repo, dry_run=False).removed_tmp == 1
        assert sorted(p.name for p in tmp.iterdir()) == ["spool-live"]


def test_stale_s3_multipart_uploads_are_aborted(s3_server, tmp_path):  # type: ignore[no-untyped-def]
    import boto3

    settings = Settings.model_validate(
        {
            "store": {"url": "s3://lepton/repo"},
            "registry": {"url": f"sqlite:///{tmp_path / 'r.db'}"},
            "s3": s3_server.settings().model_dump(),
        }
    )
    s3 = boto3.client(
        "s3", endpoint_url=s3_server.endpoint, aws_access_key_id="testing-key",
        aws_secret_access_key="testing-secret", region_name="us-east-1",
    )  # fmt: skip
    for key in ("repo/objects/blake3/ab/cd-killed-upload", "elsewhere/not-ours"):
        up = s3.create_multipart_upload(Bucket="lepton", Key=key)
        s3.upload_part(Bucket="lepton", Key=key, UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 1024)
    with Repo(settings).ensure_ready() as repo:
        assert collect(repo, dry_run=True, grace_seconds=0).aborted_uploads == 1
        assert len(s3.list_multipart_uploads(Bucket="lepton").get("Uploads", [])) == 2
        assert collect(repo, dry_run=False, grace_seconds=0).aborted_uploads == 1
    left = s3.list_multipart_uploads(Bucket="lepton").get("Uploads", [])
    assert [u["Key"] for u in left] == ["elsewhere/not-ours"]


# ---- store level: reuse refreshes, removal re-checks -----------------------------------------------
def test_a_reused_old_object_is_refreshed_and_not_removed(store):  # type: ignore[no-untyped-def]
    kept, lost = store.put_bytes(b"reused by a writer"), store.put_bytes(b"nobody wants me")
    _age(store, [kept, lost])
    listed = sweep.list_objects(store)
    now = sweep.clock(store)
    assert now - listed[kept].mtime > HOUR and listed[kept].size == len(b"reused by a writer")
    cutoff = now - HOUR
    assert store.put_bytes(b"reused by a writer") == kept  # a snapshot finds it stored...
    assert sweep.list_objects(store)[kept].mtime >= cutoff  # ...and refreshes it
    assert not sweep.remove_if_old(store, kept, cutoff)  # so gc keeps it
    assert sweep.remove_if_old(store, lost, cutoff)
    assert set(sweep.list_objects(store)) == {kept}
    assert store.read_bytes(kept) == b"reused by a writer"


def test_an_object_refreshed_since_it_was_listed_is_never_moved(store, monkeypatch):  # type: ignore[no-untyped-def]
    """gc's listing is older than its removals: an object a writer reused
    meanwhile (refreshed, its version perhaps registered and being read by
    now) is left in place, never set aside even for a moment, so no reader
    finds it missing. An object still old is set aside and removed."""
    kept, lost = store.put_bytes(b"reused since the listing"), store.put_bytes(b"still old")
    _age(store, [kept, lost])
    cutoff = sweep.clock(store) - HOUR
    assert store.put_bytes(b"reused since the listing") == kept  # refreshed after gc listed it
    moved: list[str] = []
    real = os.rename

    def rename(src, dst):  # type: ignore[no-untyped-def]
        moved.append(src)
        return real(src, dst)

    monkeypatch.setattr(sweep.os, "rename", rename)
    if store.location.is_local:
        assert not sweep.remove_if_old(store, kept, cutoff)
        assert moved == []
        assert sweep.remove_if_old(store, lost, cutoff)
        assert moved == [store.path_of(lost)]
    else:  # S3 looks before it copies aside: nothing is deleted
        assert not sweep.remove_if_old(store, kept, cutoff)
        assert sweep.remove_if_old(store, lost, cutoff)
    assert store.read_bytes(kept) == b"reused since the listing"
    assert set(sweep.list_objects(store)) == {kept}


def test_a_writer_note_on_s3_keeps_an_object_being_reused(s3_server):  # type: ignore[no-untyped-def]
    """S3 cannot rename: a writer notes a reuse before refreshing, and gc puts
    back what it removed if a note appeared (the refresh was in flight).
    (Locally, removal renames the object aside atomically: no note needed.)"""
    store = ObjectStore(open_location("s3://lepton/store", s3_server.settings()))
    key = store.put_bytes(b"being reused")
    _age(store, [key])
    store.fs.pipe_file(store.reuse_note_prefix(key) + "writer", b"")  # refresh not landed yet
    assert not sweep.remove_if_old(store, key, sweep.clock(store) - HOUR)
    assert store.read_bytes(key) == b"being reused"
    assert [e for e in sweep.list_tmp(store) if "/gc/" in e.name] == []


def test_an_object_a_stopped_gc_set_aside_is_put_back(repo):  # type: ignore[no-untyped-def]
    repo.snapshot_data("d", _frame(1), key="id")
    chunk = repo.load(repo.resolve("d").id).objects()[0]
    store = repo.store
    aside = store.location.join(TMP, "gc", f"{chunk.replace(':', '-')}-0123")
    if store.location.is_local:
        os.makedirs(os.path.dirname(aside), exist_ok=True)
        os.rename(store.path_of(chunk), aside)
    else:
        store.fs.copy(store.path_of(chunk), aside)
        store.fs.rm_file(store.path_of(chunk))
    assert not store.exists(chunk)
    assert collect(repo, dry_run=True).put_back == [chunk] and not store.exists(chunk)
    assert collect(repo, dry_run=False).put_back == [chunk]
    assert repo.verify("d").ok
    pd.testing.assert_frame_equal(repo.read_table("d"), _frame(1))


# ---- gc next to a live snapshot in another process -------------------------------------------------
WRITER = textwrap.dedent(
    """
    import sys, json
    import numpy as np, pandas as pd
    from lepton.config import Settings
    from lepton.repo import Repo

    def frame(seed, n):
        rng = np.random.default_rng(seed)
        return pd.DataFrame({"id": np.arange(n), "x": rng.random(n), "c": rng.choice(["a", "b", "c"], n)})

    repo = Repo(Settings.model_validate(json.loads(sys.argv[1]))).ensure_ready()
    print("ready", flush=True)
    for line in sys.stdin:
        seed = int(line)
        snap = repo.snapshot_data("big", frame(seed, %d), key="id")
        print(snap.version.ref, flush=True)
    """
)
ROWS = 150_000


def test_gc_during_snapshots_never_breaks_them(backend, monkeypatch):  # type: ignore[no-untyped-def]
    """Each round leaves the exact chunks and manifest of the next snapshot as
    old orphans (a crashed earlier attempt), then snapshots that table in
    another process while gc runs in a loop with the default grace: the
    snapshot reuses the orphans while gc wants them gone. Each removal is
    slowed down a little (a slow disk), so gc is still removing a round's
    orphans while the snapshot reuses them; without the refresh on reuse
    this test fails on both stacks."""
    rounds = 6
    remove = sweep.remove_if_old

    def slow_remove(*args):  # type: ignore[no-untyped-def]
        time.sleep(0.02)
        return remove(*args)

    monkeypatch.setattr(sweep, "remove_if_old", slow_remove)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER % ROWS, backend.model_dump_json()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    stop, passes, errors = threading.Event(), [], []
    with Repo(backend).ensure_ready() as repo:

        def gc_loop() -> None:
            with Repo(backend).ensure_ready() as mine:
                while not stop.is_set():
                    try:
                        passes.append(collect(mine, dry_run=False))
                    except Exception as e:  # noqa: BLE001 - reported below
                        errors.append(e)
                        return

        assert proc.stdout.readline().strip() == "ready"
        junk: list[str] = []
        thread = threading.Thread(target=gc_loop)
        thread.start()
        try:
            for seed in range(rounds):
                manifest = _snap.snapshot_table(
                    repo.store, "big", sources.from_frame(_frame(seed, ROWS)), "id"
                )
                stale = {repo.put_manifest(manifest), *manifest.objects()}
                junk.append(repo.store.put_bytes(f"junk {seed}".encode()))
                _age(repo.store, stale | {junk[-1]})
                proc.stdin.write(f"{seed}\n")
                proc.stdin.flush()
                assert proc.stdout.readline().strip() == f"big@v{seed + 1}"
            # two more passes: one of them began after the last round's junk was aged
            more, deadline = len(passes) + 2, time.monotonic() + 60
            while len(passes) < more and not errors and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            stop.set()
            thread.join()
            proc.stdin.close()
            assert proc.wait(timeout=60) == 0
        assert not errors, errors
        assert len(passes) >= rounds
        assert set(junk) <= {k for p in passes for k in p.removed}  # gc was really at work
        assert repo.verify().ok
        for seed in range(rounds):
            assert repo.verify(f"big@v{seed + 1}").ok  # every object it names is there, intact
            pd.testing.assert_frame_equal(repo.read_table(f"big@v{seed + 1}"), _frame(seed, ROWS))
        assert set(collect(repo, dry_run=False, grace_seconds=0).removed) <= {junk[-1]}


# ---- CLI -----------------------------------------------------------------------------------------------
def test_cli_gc(tmp_path, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    from lepton.cli.main import main

    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("LEPTON_")]:
        monkeypatch.delenv(var)
    _frame(1).to_csv(tmp_path / "data.csv", index=False)
    assert main(["init"]) == 0
    assert main(["data", "snapshot", "d", "data.csv", "--key", "id"]) == 0
    with open_repo(tmp_path) as repo:
        orphan = repo.store.put_bytes(b"orphan")
        _age(repo.store, [orphan])
    capsys.readouterr()
    assert main(["gc", "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] and report["removed"] == [orphan]
    assert main(["gc", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "would remove 1 object(s)" in text and orphan in text and "nothing was removed" in text
    assert main(["gc"]) == 0
    assert "removed 1 object(s)" in capsys.readouterr().out
    assert main(["gc", "--grace", "-1"]) == 2
    with open_repo(tmp_path) as repo:
        repo.store.delete(repo.resolve("d").id)
    assert main(["gc"]) == 1
    assert "error: gc removed nothing" in capsys.readouterr().err
    assert main(["gc", "--force", "--json"]) == 0
