"""Large trees keep their file list in listing objects (lepton/data/listing.py):
a full listing, then deltas over it, the chain bounded. Versions with edits,
additions and removals load back exactly, on both real stacks; an unchanged
folder keeps its id; a missing or corrupt listing is a clear error naming
it; old inline manifests still load; verify and a registry rebuild reach
the listings. gc's side is in tests/test_gc.py."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from lepton import hashing
from lepton.data import listing
from lepton.errors import IntegrityError, NotFound
from lepton.manifest import FileEntry, TreeDataset, canonical_json, parse_manifest, parse_stored


def key(seed: str) -> str:
    return hashing.hash_bytes(seed.encode())


def entries(n: int, tag: str = "") -> list[FileEntry]:
    """``n`` entries in path order."""
    files = (
        FileEntry(path=f"d{i % 10:02d}/f{i:06d}.bin", size=1000 + i, id=key(f"{tag}{i}")) for i in range(n)
    )
    return sorted(files, key=lambda e: e.path)


def write(root: Path, files: dict[str, bytes]) -> None:
    t = time.time() - 60  # past the state cache's racy window
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (t, t))


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def stored_doc(repo, id: str) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(repo.store.read_bytes(id))


@pytest.fixture
def small_limits(monkeypatch):  # type: ignore[no-untyped-def]
    """Listings from 8 files on, chains of at most 4 objects: small trees show every case."""
    monkeypatch.setattr(listing, "LISTING_MIN", 8)
    monkeypatch.setattr(listing, "MAX_CHAIN", 4)


# ---- the format ------------------------------------------------------------------
def test_full_and_delta_listings_round_trip():
    files = entries(300)
    files[3] = files[3].model_copy(update={"chunks": (key("c1"), key("c2"), key("c3"))})
    files.append(FileEntry(path="ü/ß é.txt", size=0, id=key("empty")))
    full = listing.encode(files, len(files))
    part = listing.decode(full, "k")
    assert part.base is None and part.files == len(files) and part.rows == tuple(files)

    after = files[:5] + files[6:]  # one removed
    after[10] = after[10].model_copy(update={"id": key("edited"), "size": 7})  # one changed
    after.append(FileEntry(path="d00/zz.bin", size=1, id=key("new")))  # one added
    after.sort(key=lambda e: e.path)
    base = hashing.hash_bytes(full)
    rows = listing._delta(files, after)
    assert len(rows) == 3 and files[5].path in rows
    delta = listing.encode(rows, len(after), base=base)
    assert listing.decode(delta, "d").base == base
    chain = (base, hashing.hash_bytes(delta))
    blobs = dict(zip(chain, (full, delta), strict=True))
    assert listing.resolve(chain, blobs.__getitem__, "t") == tuple(after)
    assert listing.decode(listing.encode([], 0), "e").rows == ()


def test_a_delta_costs_about_what_changed():
    """S4's shape: 20,000 files, 1% rewritten and 1% added."""
    before = entries(20_000)
    after = list(before)
    for i in range(0, 20_000, 100):
        after[i] = after[i].model_copy(update={"id": key(f"v2-{i}")})
    after += [FileEntry(path=f"d{i % 10:02d}/g{i:06d}.bin", size=50_000, id=key(f"n{i}")) for i in range(200)]
    after.sort(key=lambda e: e.path)
    full = listing.encode(after, len(after))
    delta = listing.encode(listing._delta(before, after), len(after), base=key("base"))
    inline = TreeDataset(name="t", files=tuple(after), size=sum(e.size for e in after)).canonical_bytes()
    assert len(full) < 60 * len(after) < len(inline) / 2  # 32 bytes of each key are incompressible
    assert len(delta) < 60 * 400  # ~2% of the full listing


@pytest.mark.parametrize(
    "damage, why",
    [
        (lambda b: b[:-7], "ends early"),
        (lambda b: b + b"\x00", "after the last row"),
        (lambda b: b"LPTX" + b[4:], "bad magic"),
        (lambda b: b[:4] + b"\x09" + b[5:], "format 9"),
        (lambda b: b[:8] + b"\x00" + b[9:], "bad tag"),  # a REMOVED row in a full listing
    ],
)
def test_a_malformed_listing_is_refused_naming_it(damage, why):
    good = listing.encode(entries(20), 20)
    with pytest.raises(IntegrityError, match=f"listing object blake3:x.*{why}"):
        listing.decode(damage(good), "blake3:x")


def test_paths_out_of_order_are_refused():
    rows = entries(20)
    rows[4], rows[5] = rows[5], rows[4]
    with pytest.raises(IntegrityError, match="out of order"):
        listing.decode(listing.encode(rows, 20), "k")


def test_a_chain_must_link_and_count_up():
    files = entries(30)
    full = listing.encode(files, 30)
    stray = listing.encode([files[0].path], 29, base=key("another listing"))
    blobs = {"a": full, "b": stray}
    with pytest.raises(IntegrityError, match="applies to"):
        listing.resolve(("a", "b"), blobs.__getitem__, "T")
    with pytest.raises(IntegrityError, match="does not start with a full listing"):
        listing.resolve(("b",), blobs.__getitem__, "T")
    blobs["c"] = listing.encode(["zzz"], 29, base=hashing.hash_bytes(full))
    with pytest.raises(IntegrityError, match="removes 'zzz'"):
        listing.resolve(
            (hashing.hash_bytes(full), "c"), {hashing.hash_bytes(full): full, **blobs}.__getitem__
        )


def test_unsorted_or_small_trees_stay_inline(store):
    assert listing.write(store, entries(listing.LISTING_MIN - 1), None) is None
    shuffled = entries(listing.LISTING_MIN)[::-1]
    assert listing.write(store, shuffled, None) is None
    assert listing.write(store, entries(listing.LISTING_MIN), None) is not None


# ---- versions of a tree ---------------------------------------------------------------
def test_versions_with_edits_adds_and_removes_load_back_exactly(repo, tmp_path, small_limits):
    src = tmp_path / "src"
    current = {f"d{i % 3}/f{i:03d}.bin": os.urandom(50 + i) for i in range(40)}
    write(src, current)
    seen = []
    for v in range(1, 8):
        if v > 1:  # edit two, add two, remove one
            names = sorted(current)
            for rel in names[v : v + 2]:
                current[rel] = os.urandom(60 + v)
            write(src, {rel: current[rel] for rel in names[v : v + 2]})
            new = {f"new/v{v}-{j}.txt": f"v{v} {j}".encode() for j in range(2)}
            write(src, new)
            current |= new
            gone = names[-v]
            (src / gone).unlink()
            del current[gone]
        snap = repo.snapshot_data("t", src)
        assert snap.created and snap.version.version == v
        seen.append((snap.version.id, snap.manifest, dict(current)))
    chains = [len(m.listing) for _, m, _ in seen]
    assert chains == [1, 2, 3, 4, 1, 2, 3]  # bounded: a full listing again after MAX_CHAIN objects
    for v, (id, manifest, files) in enumerate(seen, 1):
        doc = stored_doc(repo, id)
        assert "files" not in doc and doc["listing"] == list(manifest.listing)
        loaded = repo.load(id)
        assert loaded == manifest and loaded.compute_id() == id
        assert [f.path for f in loaded.files] == sorted(files)
        assert set(manifest.listing) <= set(loaded.objects())
        out = repo.checkout(f"t@v{v}", tmp_path / f"out{v}")
        assert read_tree(out) == files
    delta = listing.decode(repo.store.read_bytes(seen[2][1].listing[-1]), "k")
    assert len(delta.rows) == 5 and delta.base == seen[1][1].listing[-1]  # 2 edits, 2 adds, 1 removal


def test_an_unchanged_folder_keeps_its_id(repo, tmp_path, small_limits):
    src = tmp_path / "src"
    write(src, {f"f{i:02d}": bytes([i]) * i for i in range(20)})
    first = repo.snapshot_data("t", src)
    write(src, {"f03": b"changed"})
    second = repo.snapshot_data("t", src)
    again = repo.snapshot_data("t", src)
    assert second.created and not again.created and again.version.id == second.version.id
    assert len(second.manifest.listing) == 2 and first.manifest.listing[0] == second.manifest.listing[0]


def test_a_large_change_writes_a_full_listing(repo, tmp_path, small_limits):
    src = tmp_path / "src"
    write(src, {f"f{i:02d}": os.urandom(10) for i in range(20)})
    repo.snapshot_data("t", src)
    write(src, {f"f{i:02d}": os.urandom(11) for i in range(10)})  # half the files
    snap = repo.snapshot_data("t", src)
    assert len(snap.manifest.listing) == 1


def test_small_trees_keep_inline_entries(repo, tmp_path):
    src = tmp_path / "src"
    write(src, {f"f{i}": b"x" * i for i in range(5)})
    snap = repo.snapshot_data("t", src)
    doc = stored_doc(repo, snap.version.id)
    assert snap.manifest.listing is None and "listing" not in doc and len(doc["files"]) == 5
    assert repo.load(snap.version.id) == snap.manifest


# ---- old repositories ----------------------------------------------------------------------
OLD_TREE = (  # a tree manifest as Lepton wrote it before listings: entries inline
    '{"files":[{"chunks":null,"id":"%s","path":"a.txt","size":3},'
    '{"chunks":null,"id":"%s","path":"b/c.txt","size":2}],'
    '"format":1,"kind":"dataset","layout":"tree","name":"old","parents":[],"run":null,"size":5}'
)


def test_old_inline_manifests_still_load_and_keep_their_id(repo, tmp_path, monkeypatch):
    a, c = repo.store.put_bytes(b"one"), repo.store.put_bytes(b"tw")
    data = (OLD_TREE % (a, c)).encode()
    id = repo.store.put_bytes(data)
    repo.registry.register(id=id, kind="dataset", name="old")
    m = repo.load(id)
    assert (
        isinstance(m, TreeDataset) and m.listing is None and [f.path for f in m.files] == ["a.txt", "b/c.txt"]
    )
    assert m.canonical_bytes() == data and m.compute_id() == id
    src = tmp_path / "src"
    write(src, {"a.txt": b"one", "b/c.txt": b"tw"})
    monkeypatch.setattr(listing, "LISTING_MIN", 1)  # even a tree that would now get a listing
    same = repo.snapshot_data("old", src)
    assert not same.created and same.version.id == id
    write(src, {"d.txt": b"new"})
    grown = repo.snapshot_data("old", src)  # the first change writes a full listing
    assert grown.created and len(grown.manifest.listing) == 1
    assert read_tree(repo.checkout("old@v1", tmp_path / "v1")) == {"a.txt": b"one", "b/c.txt": b"tw"}
    assert read_tree(repo.checkout("old@v2", tmp_path / "v2")) == read_tree(src)


# ---- damage ----------------------------------------------------------------------------------
def _listed(repo, tmp_path) -> tuple[str, TreeDataset]:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    write(src, {f"f{i:02d}": os.urandom(9) for i in range(12)})
    repo.snapshot_data("t", src)
    write(src, {"f00": b"edited"})
    snap = repo.snapshot_data("t", src)
    assert len(snap.manifest.listing) == 2
    return snap.version.id, snap.manifest


def test_a_missing_listing_is_a_clear_not_found(repo, tmp_path, small_limits):
    id, manifest = _listed(repo, tmp_path)
    repo.store.delete(manifest.listing[0])
    with pytest.raises(NotFound, match=f"tree {id}.*{manifest.listing[0]}"):
        repo.load(id)


def test_a_corrupt_listing_is_refused_and_quarantined(repo, tmp_path, small_limits):
    id, manifest = _listed(repo, tmp_path)
    bad = manifest.listing[-1]
    repo.store.delete(bad)
    repo.store.fs.pipe_file(repo.store.path_of(bad), b"LPTL\x01\x00garbage")
    with pytest.raises(IntegrityError, match=f"tree {id}.*{bad} is corrupt"):
        repo.load(id)
    assert not repo.store.exists(bad)


def test_a_tree_with_a_listing_needs_its_store_to_be_read(repo, tmp_path, small_limits):
    id, manifest = _listed(repo, tmp_path)
    data = repo.store.read_bytes(id)
    with pytest.raises(IntegrityError, match="listing objects"):
        parse_manifest(data, id)
    stored = parse_stored(data, id)
    assert stored.files == () and stored.listing == manifest.listing and stored.compute_id() == id
    both = json.loads(data) | {"files": []}
    with pytest.raises(IntegrityError, match="holds files too"):
        parse_stored(canonical_json(both))


# ---- maintenance --------------------------------------------------------------------------------
def test_verify_and_registry_rebuild_reach_the_listings(repo, tmp_path, small_limits):
    id, manifest = _listed(repo, tmp_path)
    report = repo.verify("t@v2")
    assert report.ok and report.checked == 1 + len(set(manifest.objects()))
    counts = repo.rebuild_registry()
    assert counts["artifacts"] == 2 and repo.resolve("t@v2").id == id
    assert repo.load(repo.resolve("t@latest").id) == manifest
    bad = manifest.listing[0]
    repo.store.delete(bad)
    repo.store.fs.pipe_file(repo.store.path_of(bad), b"not a listing")
    whole = repo.verify()
    assert [(f.key, f.problem) for f in whole.findings] == [(bad, "corrupt")]
    by_ref = repo.verify("t@v2")  # the listing is one of the version's objects: now quarantined
    assert [(f.key, f.problem) for f in by_ref.findings] == [(bad, "missing")]
