"""File trees at scale, on both real stacks: byte-identical checkout (large
files as content-defined chunks, empty files), an unchanged re-snapshot that
reads no file, an edit in a large file that stores only the chunks around
it, and the store consulted in bulk for what the parent version lacks."""

from __future__ import annotations

import builtins
import io
import os
import time
from pathlib import Path

import pytest

from lepton.data import filechunks as fc
from lepton.data import trees
from lepton.data.statecache import StateCache, hash_local, scan_local
from lepton.errors import IntegrityError, InvalidInput
from lepton.filesource import open_source
from lepton.manifest import TreeDataset
from lepton.store.fs import open_location, s3_filesystem
from lepton.store.objects import ObjectStore

MB = 1_000_000


def write(root: Path, files: dict[str, bytes], age_s: float = 60) -> dict[str, bytes]:
    """Write files, their mtime set ``age_s`` back: past the cache's racy window."""
    t = time.time() - age_s
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (t, t))
    return files


def small_tree(root: Path, n: int = 120) -> dict[str, bytes]:
    files = {f"d{i % 7}/f{i:04d}.bin": os.urandom(100 + i) for i in range(n)}
    files |= {"empty.txt": b"", "deep/er/empty": b"", "name with spaces é.txt": b"x" * 3}
    return write(root, files)


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


class OpenSpy:
    """Records every file under ``root`` opened through open()."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
        self.root, self.opened, real = str(root.resolve()), [], builtins.open

        def spy(file, *a, **kw):  # type: ignore[no-untyped-def]
            if isinstance(file, str | os.PathLike) and os.path.realpath(file).startswith(self.root):
                self.opened.append(os.fspath(file))
            return real(file, *a, **kw)

        monkeypatch.setattr(builtins, "open", spy)


# ---- exact reassembly --------------------------------------------------------------
def test_checkout_is_byte_identical_with_chunked_and_empty_files(repo, tmp_path):
    src = tmp_path / "src"
    files = small_tree(src, 40)
    big = os.urandom(20 * MB)
    files |= write(src, {"big/a.bin": big, "big/copy.bin": big, "big/zeros.bin": bytes(18 * MB)})
    snap = repo.snapshot_data("t", src)
    by_path = {e.path: e for e in snap.manifest.files}
    big_entry = by_path["big/a.bin"]
    assert big_entry.chunks and 10 <= len(big_entry.chunks) <= 40  # ~1 MiB each
    assert by_path["big/copy.bin"] == big_entry.model_copy(update={"path": "big/copy.bin"})
    assert by_path["empty.txt"].chunks is None and by_path["empty.txt"].size == 0
    assert by_path["d0/f0000.bin"].chunks is None
    assert set(snap.manifest.objects()) <= set(repo.store.iter_keys())
    assert big_entry.id not in set(repo.store.iter_keys()), "a chunked file is stored only as chunks"
    out = repo.checkout("t", tmp_path / "out")
    assert read_tree(out) == files
    assert not [p for p in out.rglob(".*")], "no temp file left"


def test_checkout_refuses_a_corrupt_chunk_and_writes_nothing_there(repo, tmp_path):
    src = tmp_path / "src"
    write(src, {"big.bin": os.urandom(17 * MB + 5)})
    snap = repo.snapshot_data("t", src)
    chunk = snap.manifest.files[0].chunks[3]
    repo.store.fs.pipe_file(repo.store.path_of(chunk), b"not the chunk")
    with pytest.raises(IntegrityError, match="corrupt"):
        repo.checkout("t", tmp_path / "out")
    assert read_tree(tmp_path / "out") == {}


def test_reassembly_is_checked_against_the_whole_file_key(repo, tmp_path):
    src = tmp_path / "src"
    write(src, {"big.bin": os.urandom(17 * MB)})
    entry = repo.snapshot_data("t", src).manifest.files[0]
    swapped = entry.model_copy(update={"chunks": (entry.chunks[1], entry.chunks[0], *entry.chunks[2:])})
    with pytest.raises(IntegrityError, match="reassemble"):
        fc.get_chunked(repo.store, swapped, tmp_path / "x.bin")
    assert not (tmp_path / "x.bin").exists()


def test_edit_in_the_middle_of_a_large_file_stores_a_few_chunks(repo, tmp_path):
    src = tmp_path / "src"
    data = bytearray(os.urandom(40 * MB))
    write(src, {"model.bin": bytes(data), "small.txt": b"hello"})
    v1 = repo.snapshot_data("t", src)
    before = set(repo.store.iter_keys())
    data[20 * MB : 20 * MB + 1000] = os.urandom(1000)
    write(src, {"model.bin": bytes(data)})
    v2 = repo.snapshot_data("t", src)
    added = set(repo.store.iter_keys()) - before
    assert v2.created and v2.version.id in added
    new_chunks = added - {v2.version.id}
    assert 1 <= len(new_chunks) <= 3, len(new_chunks)
    assert set(v2.manifest.files[0].chunks) - set(v1.manifest.files[0].chunks) == new_chunks
    assert read_tree(repo.checkout("t@v2", tmp_path / "out"))["model.bin"] == bytes(data)


def test_large_file_from_s3_prefix_matches_local(s3_server, backend, tmp_path):
    from lepton.repo import Repo

    repo = Repo(backend.model_copy(update={"s3": s3_server.settings()})).ensure_ready()
    files = write(tmp_path / "src", {"big.bin": os.urandom(17 * MB), "a/small.txt": b"small"})
    fs = s3_filesystem(repo.settings.s3)
    for rel, data in files.items():
        fs.pipe_file(f"lepton/in/{rel}", data)
    remote = repo.snapshot_data("t", "s3://lepton/in")
    local = repo.snapshot_data("t", tmp_path / "src")
    assert not local.created and local.version.id == remote.version.id
    assert read_tree(repo.checkout("t", tmp_path / "out")) == files
    repo.close()


# ---- the state cache in snapshots ------------------------------------------------------
def test_unchanged_resnapshot_reads_no_file(repo, tmp_path, monkeypatch):
    src = tmp_path / "src"
    small_tree(src)
    write(src, {"big.bin": os.urandom(17 * MB)})
    v1 = repo.snapshot_data("t", src)
    spy = OpenSpy(monkeypatch, src)
    again = repo.snapshot_data("t", src)
    assert not again.created and again.version.id == v1.version.id
    assert repo.status("t", src).read == 0
    assert spy.opened == []


def test_only_changed_files_are_read(repo, tmp_path, monkeypatch):
    src = tmp_path / "src"
    files = small_tree(src)
    repo.snapshot_data("t", src)
    spy = OpenSpy(monkeypatch, src)
    files |= write(src, {"d1/f0001.bin": b"new content", "added.txt": b"added"})
    (src / "d2" / "f0002.bin").unlink()
    del files["d2/f0002.bin"]
    v2 = repo.snapshot_data("t", src)
    assert sorted(os.path.relpath(p, src) for p in spy.opened) == ["added.txt", "d1/f0001.bin"]
    assert read_tree(repo.checkout(v2.version.ref, tmp_path / "out")) == files


def test_cache_is_trusted_for_an_unchanged_stat(repo, tmp_path):
    """What makes it fast is what it trusts: a file whose size, mtime, ctime and
    inode are as recorded is taken to hold the recorded content (git and DVC
    make the same trade-off). Shown by planting a wrong key for one file."""
    src = tmp_path / "src"
    small_tree(src)
    repo.snapshot_data("t", src)
    target = os.path.realpath(src / "d0" / "f0000.bin")
    db = repo.state._db
    db.execute("UPDATE files SET key = ? WHERE path = ?", ("blake3:" + "0" * 64, target))
    st = repo.status("t", src)
    assert st.modified == ["d0/f0000.bin"] and st.read == 0


def test_same_size_edit_with_mtime_restored_is_caught(repo, tmp_path):
    """ctime is part of the stat key and cannot be set back through the file API."""
    src = tmp_path / "src"
    small_tree(src)
    repo.snapshot_data("t", src)
    p = src / "d3" / "f0003.bin"
    before = p.stat()
    with open(p, "r+b") as f:
        f.write(b"\xff" * 10)
    os.utime(p, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = p.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    st = repo.status("t", src)
    assert st.modified == ["d3/f0003.bin"] and st.read == 1


def test_recently_modified_files_are_not_trusted_yet(repo, tmp_path):
    """A file written within the racy window of its read could be rewritten in
    the same timestamp tick: it is hashed again until it is older."""
    src = tmp_path / "src"
    # stamped 5 s ahead: still within the window when the snapshot and the
    # status read them, however slow the machine (written "now", a loaded
    # run's S3 snapshot once read them after the ~20 ms window had passed)
    write(src, {"a.txt": b"aaa", "b.txt": b"bbb"}, age_s=-5)
    repo.snapshot_data("t", src)
    assert repo.status("t", src).read == 2
    write(src, {"a.txt": b"aaa", "b.txt": b"bbb"}, age_s=60)
    assert repo.status("t", src).read == 2  # stat changed: read once more, then cached
    assert repo.status("t", src).read == 0


def test_bulk_existence_check_sends_only_what_the_store_lacks(repo, tmp_path, monkeypatch):
    """A second name for the same tree: no parent to vouch for the objects, so
    the store is asked in bulk; an object it lacks is read and sent again."""
    src = tmp_path / "src"
    files = small_tree(src)
    a = repo.snapshot_data("a", src)
    lost = a.manifest.files[5]
    repo.store.delete(lost.id)
    monkeypatch.setattr(fc, "LIST_MIN", 1)  # S3: list the fan-out folders instead of HEADs
    spy = OpenSpy(monkeypatch, src)
    b = repo.snapshot_data("b", src)
    assert b.manifest.files == a.manifest.files
    assert spy.opened == [os.path.join(os.path.realpath(src), lost.path)]
    assert repo.store.exists(lost.id)
    assert read_tree(repo.checkout("b", tmp_path / "out")) == files


def test_state_cache_forgets_removed_files(repo, tmp_path):
    src = tmp_path / "src"
    small_tree(src, 10)
    repo.snapshot_data("t", src)
    (src / "d1" / "f0001.bin").unlink()
    repo.snapshot_data("t", src)
    rows = repo.state.rows_under(os.path.realpath(src))
    assert os.path.realpath(src / "d1" / "f0001.bin") not in rows
    assert len(rows) == len(scan_local(str(src), "src"))


def test_a_file_changing_while_stored_is_refused(repo, tmp_path):
    src = tmp_path / "src"
    write(src, {"a.txt": b"abc"})
    f = scan_local(str(src), "src")[0]
    stale = f._replace(mtime_ns=f.mtime_ns - 1)
    with pytest.raises(InvalidInput, match="changed while it was being stored"):
        trees._put_local(repo.store, None, (), "src", None, stale)


def test_a_listed_file_that_cannot_be_read_is_one_error_naming_it(repo, tmp_path):
    src = tmp_path / "src"
    write(src, {"a.txt": b"abc", "gone.txt": b"xyz"})
    listed = {f.rel: f for f in scan_local(str(src), "src")}
    (src / "gone.txt").unlink()
    with pytest.raises(InvalidInput, match="src: gone.txt: cannot read it: No such file"):
        trees._put_local(repo.store, None, (), "src", None, listed["gone.txt"])
    with pytest.raises(InvalidInput, match=f"{src / 'gone.txt'}: cannot read it"):
        hash_local(listed["gone.txt"])


def test_a_tree_snapshot_that_cannot_read_a_file_registers_nothing(repo, tmp_path, monkeypatch):
    src = tmp_path / "src"
    small_tree(src, 20)
    real_scan = trees.scan_local

    def scan_then_lose_one(root, label):  # type: ignore[no-untyped-def]
        files = real_scan(root, label)
        os.unlink(files[-1].path)  # between the listing and the read, as a concurrent delete would
        return files

    monkeypatch.setattr(trees, "scan_local", scan_then_lose_one)
    with pytest.raises(InvalidInput, match="cannot read it"):
        repo.snapshot_data("t", str(src))
    assert not repo.registry.has_name("t")


def test_snapshot_without_state_cache(repo, tmp_path):
    src = tmp_path / "src"
    files = small_tree(src, 10) | write(src, {"big.bin": os.urandom(17 * MB)})
    m = trees.snapshot_tree(repo.store, "t", open_source(str(src), repo.settings.s3)[0], str(src), "src")
    assert isinstance(m, TreeDataset)
    snap = repo.commit(m)
    assert read_tree(repo.checkout(snap.version.ref, tmp_path / "out")) == files


def test_corrupt_state_file_is_set_aside_and_rebuilt(tmp_path, caplog):
    db = tmp_path / "state.db"
    db.write_bytes(b"this is not a database" * 100)
    cache = StateCache(db)
    assert cache.rows_under("/") == {}
    assert "corrupt" in caplog.text
    assert list(tmp_path.glob("state.db.corrupt-*"))
    cache.close()


class CountingStream(io.BytesIO):
    """Records how many bytes each read asked for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []

    def read(self, n: int | None = -1) -> bytes:
        self.asked.append(-1 if n is None else n)
        return super().read(n)


def test_a_small_file_is_read_at_its_listed_size_and_growth_is_still_read_whole():
    """A buffer of the chunking threshold per small file is an mmap and a
    munmap each (S4's first version: 22.3 -> 16.9-18.2 s here); a file that
    grew since it was listed is still read (and hashed) whole."""
    data = os.urandom(50_000)
    stream = CountingStream(data)
    entry = trees._put(None, None, (), "a.bin", len(data), stream)
    assert max(stream.asked) == len(data) + 1
    assert (entry.size, entry.id) == (len(data), trees.hashing.hash_bytes(data))
    grown = CountingStream(data + b"more")
    entry = trees._put(None, None, (), "a.bin", len(data), grown)
    assert (entry.size, entry.id) == (len(data) + 4, trees.hashing.hash_bytes(data + b"more"))
    with pytest.raises(InvalidInput, match="changed while it was being stored"):
        trees._put(None, None, (), "a.bin", 10, CountingStream(bytes(fc.CHUNK_THRESHOLD + 5)))


def test_a_tree_snapshot_that_fails_publishes_nothing_on_a_local_store(tmp_path, monkeypatch):
    """A local store's new files are staged and published together once all
    are read: a failure halfway leaves no object and no staged file."""
    store = ObjectStore(open_location(str(tmp_path / "store")))
    src = tmp_path / "src"
    text = b"id,label\n" + b"1234,cat\n" * 900  # packed
    files = small_tree(src, 40) | write(src, {f"t/{i}.csv": text + bytes([i]) for i in range(5)})
    bad = sorted(files)[len(files) // 2]
    real = trees._put_local

    def failing(*args):  # type: ignore[no-untyped-def]
        if args[-1].rel == bad:
            raise OSError("the disk went away")
        return real(*args)

    monkeypatch.setattr(trees, "_put_local", failing)
    with pytest.raises(OSError, match="disk went away"):
        trees.snapshot_tree(store, "t", open_location(str(src)), str(src), "src")
    assert list(store.iter_keys()) == []
    assert not [p for p in (tmp_path / "store" / "tmp").rglob("*") if p.is_file()]
    monkeypatch.setattr(trees, "_put_local", real)
    m = trees.snapshot_tree(store, "t", open_location(str(src)), str(src), "src")
    assert set(m.objects()) == set(store.iter_keys())
    assert store.read_bytes(next(e.id for e in m.files if e.path == "t/0.csv")) == files["t/0.csv"]
