"""The local cache of patch entries' line hashes (lepton.data.linecache):
what a version's edits in place keep there is what the store would give,
the next version reads it instead of the store's sidecars and patches, and
a missing or damaged file only sends the ingest back to the store."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest

from lepton.data import lineedits, linehash, patches
from lepton.data.linecache import LineCache
from lepton.manifest import Chunk

pytestmark = pytest.mark.skipif(linehash._linehash is None, reason="needs lepton/data/_linehash.c built")

BASE = Chunk(id="blake3:" + "a" * 64, rows=5, lines="blake3:" + "b" * 64)
ONE = Chunk(id="blake3:" + "c" * 64, rows=5, base=BASE)
TWO = Chunk(id="blake3:" + "d" * 64, rows=5, base=ONE)
HASHES = np.array([1, 2**64 - 1, 3, 4, 5], dtype=np.uint64)
HELD = [np.array([1, 4]), np.array([0, 1, 2])]


def test_what_is_put_is_got_for_the_same_chain_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cache = LineCache(tmp_path)
    cache.put(TWO, b"k" * 16, HASHES, HELD)
    got = cache.get(TWO)
    assert got is not None
    keysum, hashes, held = got
    assert keysum == b"k" * 16 and hashes.dtype == np.uint64 and hashes.tolist() == HASHES.tolist()
    assert [h.tolist() for h in held] == [[1, 4], [0, 1, 2]]
    same_id_other_base = Chunk(id=TWO.id, rows=5, base=Chunk(id="blake3:" + "e" * 64, rows=5, base=BASE))
    assert cache.get(same_id_other_base) is None  # keyed by the chain, not the patch object alone
    assert cache.has(TWO) and not cache.has(ONE)
    cache.forget(TWO)
    assert cache.get(TWO) is None and not cache.has(TWO)


def test_entries_that_do_not_fit_are_not_kept(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cache = LineCache(tmp_path)
    cache.put(BASE, b"k" * 16, HASHES, [])  # a whole chunk: its sidecar is one read already
    cache.put(TWO, b"k" * 16, HASHES[:4], HELD)  # not one hash a row
    cache.put(TWO, b"k" * 16, HASHES, HELD[:1])  # not one position array a patch of the chain
    assert not [p for p in tmp_path.iterdir()]


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "rows"])
def test_a_damaged_file_is_no_answer(tmp_path, damage) -> None:  # type: ignore[no-untyped-def]
    cache = LineCache(tmp_path)
    cache.put(TWO, b"k" * 16, HASHES, HELD)
    (path,) = list(tmp_path.iterdir())
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-3] ^= 1
    elif damage == "truncate":
        data = data[:-8]
    elif damage == "empty":
        data = bytearray()
    path.write_bytes(bytes(data))
    entry = Chunk(id=TWO.id, rows=6, base=ONE) if damage == "rows" else TWO
    if damage == "rows":  # another entry's file under this one's name (a sound file, another shape)
        os.replace(path, tmp_path / entry.ident.split(":", 1)[1])
    assert cache.get(entry) is None


def test_the_folder_is_trimmed_oldest_first_when_opened(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for i in range(10):
        (tmp_path / f"f{i}").write_bytes(bytes(1000))
        os.utime(tmp_path / f"f{i}", ns=(time.time_ns(), 10**18 + i))
    LineCache(tmp_path, max_bytes=9000)  # over: down to half of it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f6", "f7", "f8", "f9"]
    LineCache(tmp_path, max_bytes=9000)  # within bounds: nothing removed
    assert len(list(tmp_path.iterdir())) == 4


N = 100_000


def _frame(seed: int, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"id": np.arange(n) + 5_000_000, **{f"f{i}": rng.random(n).round(5) for i in range(4)}, "label": 3}
    )


def _edit(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    out = frame.copy()
    rows = np.random.default_rng(seed).choice(len(out), 300, replace=False)
    out.loc[rows, "f1"] = np.round(out.loc[rows, "f1"] + 1, 5)
    return out


@pytest.mark.usefixtures("half_size_chunks")
def test_edits_in_place_read_their_line_hashes_from_the_cache(repo, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Versions 3 and 4 find every candidate's line hashes in the cache, read
    no patch from the store for them, and store exactly what a repository
    without the cache stores; a damaged cache file falls back to the store."""
    reads: list[str] = []
    real = patches.patch_lines
    monkeypatch.setattr(patches, "patch_lines", lambda data: reads.append("patch") or real(data))
    repo.__dict__["line_cache"] = LineCache(tmp_path / "lines")  # this test's own (an S3 repo's is per user)
    without = _other_repo(tmp_path)
    without.__dict__["line_cache"] = None
    path = tmp_path / "t.csv"
    frame = _frame(0)
    chunks: tuple[Chunk, ...] = ()
    try:
        for version in range(4):
            if version:
                frame = _edit(frame, version)
            frame.to_csv(path, index=False)
            if version == 3:  # one damaged file: that chunk is read from the store
                victim = next(iter(sorted(repo.line_cache.folder.iterdir())))
                victim.write_bytes(victim.read_bytes()[:-1])
                (damaged,) = [c for c in chunks if c.ident.split(":", 1)[1] == victim.name]
            reads.clear()
            a = repo.snapshot_data("t", path, key="id")
            with_cache = list(reads)
            b = without.snapshot_data("t", path, key="id")
            assert a.version.id == b.version.id  # the same manifest, chunk for chunk
            pd.testing.assert_frame_equal(repo.read_table(a.version.ref), frame)
            chunks = a.manifest.chunks
            if version >= 1:
                assert all(c.base is not None for c in chunks)  # every chunk patched in place
            if version == 2:
                assert with_cache == []  # every candidate (a patch) from the cache
            if version == 3:
                assert len(with_cache) == damaged.depth > 0  # the damaged one's patches, from the store
        kept = repo.line_cache.folder
        assert len([p for p in kept.iterdir() if not p.name.startswith(".")]) == len(
            chunks
        )  # the latest only
        for c in chunks:
            from_store = lineedits.kept(repo.store, c)
            from_cache = lineedits.kept(repo.store, c, repo.line_cache)
            assert from_store is not None and from_cache is not None
            assert from_cache.keysum == from_store.keysum
            assert from_cache.hashes.tolist() == from_store.hashes.tolist()
            assert [h.tolist() for h in from_cache.held] == [h.tolist() for h in from_store.held]
    finally:
        without.close()


def _other_repo(tmp_path):  # type: ignore[no-untyped-def]
    from lepton.config import Settings
    from lepton.repo import Repo

    root = tmp_path / "other"
    settings = {"store": {"url": str(root / "store")}, "registry": {"url": f"sqlite:///{root}.db"}}
    return Repo(Settings.model_validate(settings)).ensure_ready()
