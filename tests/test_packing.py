"""Packed objects (lepton.store.packing): tree files that compress are stored
as zstd frames under their content's key, on a local and an S3 store; every
read returns the content; a stored file that is itself a zstd frame, a
corrupt frame and a frame declaring a huge size are each read safely."""

from __future__ import annotations

import contextlib
import os
import random
import tracemalloc
from pathlib import Path

import blake3
import pyarrow as pa
import pytest

from lepton.errors import IntegrityError
from lepton.store import packing
from lepton.store.fs import open_location
from lepton.store.objects import QUARANTINE, ObjectStore

MB = 1_000_000


def text(n: int, seed: int = 0) -> bytes:
    """CSV-like annotation records of ``n`` bytes: compressible, not trivially."""
    rng = random.Random(seed)
    labels = ["person", "car", "bicycle", "dog", "cat", "truck"]
    out, size = [b"image,x,y,w,h,label,score\n"], 0
    while size < n:
        row = (
            f"img_{rng.randrange(10**6):06d}.jpg,{rng.randrange(1920)},{rng.randrange(1080)},"
            f"{rng.randrange(8, 400)},{rng.randrange(8, 400)},{rng.choice(labels)},{rng.random():.4f}\n"
        ).encode()
        out.append(row)
        size += len(row)
    return b"".join(out)[:n]


def stored_bytes(store: ObjectStore, key: str) -> bytes:
    return store.fs.cat_file(store.path_of(key))


def frame(data: bytes, level: int = 3) -> bytes:
    """A zstd frame made independently of lepton.store.packing."""
    return pa.Codec("zstd", compression_level=level).compress(data, asbytes=True)


# ---- the format -----------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 255, 256, 65_791, 65_792, 300_000, 5 * MB])
def test_content_size_is_read_from_every_header_form(n):
    data = text(n, seed=n)
    f = frame(data)
    assert packing.content_size(f) == n
    # a frame no smaller than its content is never a packed object (nothing is packed to grow)
    assert packing.unpack(f) == (data if len(f) < n else None)


def test_pack_keeps_only_what_saves_a_tenth():
    data = text(50_000)
    packed = packing.pack(data)
    assert packed is not None and len(packed) < 0.5 * len(data)
    assert packed[:4] == packing.MAGIC and packing.unpack(packed) == data
    assert packing.pack(os.urandom(50_000)) is None
    assert packing.pack(os.urandom(2_000)) is None  # too small to probe: compressed whole, no gain
    assert packing.pack(b"") is None
    assert packing.pack(bytes(packing.MAX_CONTENT + 1)) is None


def test_the_probe_tells_random_bytes_from_what_compresses():
    assert not packing.looks_compressible(os.urandom(4096))
    assert packing.looks_compressible(text(4096))
    assert packing.looks_compressible(bytes(4096))
    assert packing.pack(os.urandom(30) * 1000) is not None  # random, but repeated


def test_unpack_refuses_what_it_could_not_have_written():
    data = text(100_000)
    good = frame(data)
    assert packing.unpack(good[:-1]) is None  # truncated
    assert packing.unpack(b"PAR1" + good[4:]) is None  # no magic
    bomb = frame(bytes(packing.MAX_CONTENT + 1))  # declares more than any packed object holds
    assert len(bomb) < 10_000 and packing.unpack(bomb) is None
    wrong = bytearray(good)
    wrong[5] ^= 0x01  # the declared size, off by one
    assert packing.unpack(bytes(wrong)) is None
    assert packing.unpack(frame(data) + frame(data)) is None  # two frames: not one packed object


# ---- through the store: local and S3 ----------------------------------------------
def test_packed_object_reads_back_its_content_every_way(store, tmp_path):
    data = text(200_000)
    key = store.put_bytes(data, pack=True)
    assert key == "blake3:" + blake3.blake3(data).hexdigest()
    raw = stored_bytes(store, key)
    assert raw[:4] == packing.MAGIC and len(raw) < 0.5 * len(data)
    assert store.read_bytes(key) == data
    store.get_file(key, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == data
    assert store.verify(key) == key
    assert store.put_bytes(data, pack=True) == key and stored_bytes(store, key) == raw  # reused as stored


def test_incompressible_and_unpacked_writes_are_stored_as_they_are(store):
    noise = os.urandom(100_000)
    assert stored_bytes(store, store.put_bytes(noise, pack=True)) == noise
    data = text(100_000, seed=1)
    assert stored_bytes(store, store.put_bytes(data)) == data  # pack is asked for, not assumed


@pytest.mark.parametrize("pack", [True, False])
def test_a_stored_zstd_file_is_read_as_the_file_not_its_content(store, tmp_path, pack):
    inner = text(300_000, seed=2)
    zst = frame(inner)  # a user's .zst file: a frame of other content
    key = store.put_bytes(zst, pack=pack)
    assert key == "blake3:" + blake3.blake3(zst).hexdigest()
    assert store.read_bytes(key) == zst
    store.get_file(key, tmp_path / "data.zst")
    assert (tmp_path / "data.zst").read_bytes() == zst
    assert store.verify(key) == key


def test_a_corrupt_packed_object_is_refused_and_quarantined(store, tmp_path):
    data = text(200_000, seed=3)
    key = store.put_bytes(data, pack=True)
    bad = bytearray(stored_bytes(store, key))
    bad[len(bad) // 2] ^= 0x40

    def corrupt() -> None:
        if store.fs.exists(store.path_of(key)):
            store.fs.rm(store.path_of(key))  # read-only on a local store: replaced, not written over
        store.fs.pipe_file(store.path_of(key), bytes(bad))

    corrupt()
    assert store.verify(key) == "blake3:" + blake3.blake3(bytes(bad)).hexdigest()
    with pytest.raises(IntegrityError, match="corrupt"):
        store.get_file(key, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    assert store.fs.exists(store.path_of(key, QUARANTINE)) and not store.exists(key)
    corrupt()
    with pytest.raises(IntegrityError, match="corrupt"):
        store.read_bytes(key)


def test_a_larger_object_opening_like_a_frame_streams_as_stored(store, tmp_path):
    """A stored file longer than the size its opening frame declares is no
    packed object: get_file reads on past the frame and writes it whole."""
    data = frame(text(1_000, seed=4)) + os.urandom(9 * MB)  # longer than hashing's 8 MiB block
    key = store.put_bytes(data)
    store.get_file(key, tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == data
    assert store.verify(key) == key and store.read_bytes(key) == data


# ---- trees ------------------------------------------------------------------------
def test_a_text_tree_is_stored_packed_and_checks_out_byte_identical(repo, tmp_path):
    src = tmp_path / "src"
    files = {f"ann/{i:03d}.csv": text(40_000 + i, seed=i) for i in range(30)}
    files |= {"img/a.jpg": os.urandom(60_000), "big/log.txt": text(17 * 2**20, seed=99), "empty": b""}
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    snap = repo.snapshot_data("t", src)
    keys = set(snap.manifest.objects())
    stored = sum(len(stored_bytes(repo.store, k)) for k in keys)
    content = sum(len(d) for d in files.values())
    assert stored < 0.6 * content, "text files and the large file's chunks are packed"
    by_path = {e.path: e for e in snap.manifest.files}
    assert by_path["big/log.txt"].chunks, "the large file is chunked, its chunks packed"
    assert stored_bytes(repo.store, by_path["img/a.jpg"].id) == files["img/a.jpg"]
    out = repo.checkout("t", tmp_path / "out")
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in Path(out).rglob("*") if p.is_file()}
    assert got == files
    assert repo.verify("t").ok


class _ReadSpy:
    """A stream that records what each read asked for."""

    def __init__(self, f, asked: list[int]) -> None:  # type: ignore[no-untyped-def]
        self.f, self.asked = f, asked

    def read(self, n: int = -1) -> bytes:
        self.asked.append(n)
        return self.f.read(n)


def test_get_file_holds_a_small_local_object_once_and_streams_a_large_one_in_blocks(tmp_path, monkeypatch):
    """A read of 8 MiB for a 50 KB object allocates 8 MiB (an mmap and a
    munmap per file checked out): a small object is read whole at its size
    and written from that one buffer; a large one goes in 8 MiB blocks to
    its end."""
    store = ObjectStore(open_location(str(tmp_path / "store")))
    small, large = os.urandom(50_000), os.urandom(9 * MB)
    keys = store.put_bytes(small), store.put_bytes(large)
    asked: list[int] = []
    real = store._open

    @contextlib.contextmanager
    def spy(k):  # type: ignore[no-untyped-def]
        with real(k) as f:
            yield _ReadSpy(f, asked)

    monkeypatch.setattr(store, "_open", spy)
    tracemalloc.start()
    try:
        store.get_file(keys[0], tmp_path / "small")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (tmp_path / "small").read_bytes() == small
    assert asked == [] and peak < 3 * len(small), peak  # not the streaming path: no 8 MiB block
    store.get_file(keys[1], tmp_path / "large")
    assert (tmp_path / "large").read_bytes() == large
    block = 8 * 2**20
    assert asked == [block, block, block]  # to the empty read at its end
