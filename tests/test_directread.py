"""Direct (O_DIRECT) reads of a cold file cut it exactly as reads through
the page cache do, wherever the reading starts and whatever the block
size; a file system that refuses them is read through the cache instead;
chunks lent from the read buffers hold the file's bytes until given back,
in any order, and a buffer still in use is never read into again; and a
cold source file is snapshotted that way, nothing of it left cached."""

from __future__ import annotations

import errno
import fcntl
import io
import mmap
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lepton import pagecache
from lepton.data import directread, linecuts, windows


def _small_cuts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small sizes, so that a few thousand lines make many chunks and many blocks."""
    monkeypatch.setattr(linecuts, "AVG_BYTES", 2048)
    monkeypatch.setattr(linecuts, "MIN_BYTES", 512)
    monkeypatch.setattr(linecuts, "CDC_MAX", 8192)
    monkeypatch.setattr(linecuts, "MAX_BYTES", 16384)


def _direct_or_skip(path: Path) -> None:
    with open(path, "rb") as f:
        file = directread.DirectFile.reopen(f.fileno())
    if file is None:
        pytest.skip(f"{path.parent}: this file system refuses O_DIRECT reads")
    file.close()


def _chunks(path: Path, skip: int, sep: str | None, direct: bool, through_cache: bool = False) -> list[bytes]:
    with open(path, "rb") as f:
        header = f.readline()
        f.seek(max(skip, f.tell()))
        chunks = linecuts.line_chunks(f, sep, header=header, direct=direct, through_cache=through_cache)
        return [bytes(c) for _, c in chunks]


class _Counted:
    """DirectFile.read, counted: ``calls``, and ``cached`` (those through the
    page cache, by a descriptor opened without O_DIRECT)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = self.cached = 0
        read = directread.DirectFile.read

        def counted(file: directread.DirectFile, into: memoryview, offset: int) -> int:
            self.calls += 1
            direct = bool(fcntl.fcntl(file.fd, fcntl.F_GETFL) & os.O_DIRECT)
            assert direct != file.through_cache
            self.cached += not direct
            return read(file, into, offset)

        monkeypatch.setattr(directread.DirectFile, "read", counted)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.integers(0, 4000),
    header=st.integers(1, 9000),
    skip=st.integers(0, 20_000),
    block=st.sampled_from([4096, 8192, 45_056, 1 << 20]),
    sep=st.sampled_from([",", None]),
    newline_at_end=st.booleans(),
    seed=st.integers(0, 99),
    through_cache=st.booleans(),
)
def test_direct_reads_cut_as_reads_through_the_cache(  # type: ignore[no-untyped-def]
    tmp_path, monkeypatch, lines, header, skip, block, sep, newline_at_end, seed, through_cache
):
    """And so does the same ring of buffers reading through the cache."""
    _small_cuts(monkeypatch)
    monkeypatch.setattr(linecuts, "BLOCK", block)
    rnd = random.Random(seed)
    body = b"".join(f"{i},{rnd.random():.6f},{rnd.randint(0, 3)}\n".encode() for i in range(lines))
    if not newline_at_end:
        body = body.rstrip(b"\n")
    path = tmp_path / "t.csv"
    path.write_bytes(b"h" * header + b"\n" + body)
    _direct_or_skip(path)
    counted = _Counted(monkeypatch)
    want = _chunks(path, skip, sep, direct=False)
    got = _chunks(path, skip, sep, direct=True, through_cache=through_cache)
    assert got == want
    assert counted.calls >= 1  # read by the ring, not through the stream
    assert counted.cached == (counted.calls if through_cache else 0)
    if skip <= header + 1 and body:
        assert b"".join(got).rstrip(b"\n") == body.rstrip(b"\n")


def _ideal(data: bytes, sep: str) -> list[bytes]:
    """The chunks with the whole file in view and its end known."""
    buf = bytearray(data)
    lines = linecuts._Lines(buf, 0, len(buf), True, sep)  # noqa: SLF001
    out, pos = [], 0
    while pos < len(buf):
        cut = lines.cut(pos)
        assert cut is not None
        out.append(data[pos:cut] if data[cut - 1 : cut] == b"\n" else data[pos:cut] + b"\n")
        pos = cut
    return out


def test_a_file_ending_a_chunks_reach_after_its_start_is_cut_alike_by_any_read(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Lines that never allow a boundary, so every chunk ends at the last
    line end within CDC_MAX; the file ends exactly CDC_MAX after a chunk
    start (or a byte either side), without a final newline. Whether the
    reads have met the end of the file yet or not when that chunk is cut,
    it is cut as with the whole file in view (one chunk to the end)."""
    _small_cuts(monkeypatch)
    line = next(  # a key whose lines all decide against a boundary
        f"{k:016d},{'x' * 37}\n".encode()
        for k in range(1000)
        if not len(
            linecuts.first_field_boundaries(
                bytearray(f"{k:016d},{'x' * 37}\n".encode() * 200), 0, 11000, True, ","
            )
        )
    )
    body = line * 2000
    starts = [0]
    for piece in _ideal(body, ",")[:-1]:
        starts.append(starts[-1] + len(piece))
    cases = 0
    for p in starts[1:12]:
        for end in (p + linecuts.CDC_MAX - 1, p + linecuts.CDC_MAX, p + linecuts.CDC_MAX + 1):
            data = body[:end]
            want = _ideal(data, ",")
            path = tmp_path / "t.csv"
            path.write_bytes(b"id,x\n" + data)
            for block in (4096, 8192, 1 << 20):
                monkeypatch.setattr(linecuts, "BLOCK", block)
                assert _chunks(path, 0, ",", direct=False) == want, (p, end, block)
                assert _chunks(path, 0, ",", direct=True) == want, (p, end, block)
                cases += 1
    assert cases == 11 * 3 * 3


@pytest.mark.parametrize("refused", ["open", "read"])
def test_a_file_system_that_refuses_direct_reads_is_read_through_the_cache(tmp_path, monkeypatch, refused):  # type: ignore[no-untyped-def]
    """As some file systems do, by the open or by the first read (EINVAL,
    injected here: this machine's file systems all take O_DIRECT)."""
    _small_cuts(monkeypatch)
    body = b"".join(f"{i},{i * 7}\n".encode() for i in range(20_000))
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,x\n" + body)
    want = _chunks(path, 0, ",", direct=False)
    real_open, real_preadv = os.open, os.preadv

    def refusing_open(name, flags, *args):  # type: ignore[no-untyped-def]
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument", name)
        return real_open(name, flags, *args)

    def refusing_preadv(fd, buffers, offset, *args):  # type: ignore[no-untyped-def]
        if os.get_blocking(fd) and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_preadv(fd, buffers, offset, *args)

    if refused == "open":
        monkeypatch.setattr(directread.os, "open", refusing_open)
    else:
        monkeypatch.setattr(directread.os, "preadv", refusing_preadv)
    before = {int(fd) for fd in os.listdir("/proc/self/fd")}
    with open(path, "rb") as f:
        assert directread.DirectFile.reopen(f.fileno()) is None
        assert isinstance(windows.window(f, 1 << 20, 16384, direct=True), windows.Buffered)
    assert _chunks(path, 0, ",", direct=True) == want
    assert b"".join(want) == body
    assert {int(fd) for fd in os.listdir("/proc/self/fd")} <= before  # no descriptor left open


def test_a_stream_that_is_no_file_is_read_as_a_stream():  # type: ignore[no-untyped-def]
    data = b"id,x\n" + b"".join(f"{i},{i}\n".encode() for i in range(1000))
    stream = io.BytesIO(data)
    stream.readline()
    assert isinstance(windows.window(stream, 1 << 20, 16384, direct=True), windows.Buffered)
    stream.seek(0)
    assert b"".join(c for _, c in linecuts.line_chunks(stream, ",", direct=True)) == data[5:]


def test_direct_reads_are_aligned_and_short_only_at_the_end(tmp_path):  # type: ignore[no-untyped-def]
    data = os.urandom(3 * directread.ALIGN + 123)
    path = tmp_path / "d.bin"
    path.write_bytes(data)
    _direct_or_skip(path)
    with open(path, "rb") as f, mmap.mmap(-1, 8 * directread.ALIGN) as buf:
        file = directread.DirectFile.reopen(f.fileno())
        assert file is not None
        view = memoryview(buf)
        try:
            assert file.read(view[: 2 * directread.ALIGN], directread.ALIGN) == 2 * directread.ALIGN
            assert bytes(view[: 2 * directread.ALIGN]) == data[directread.ALIGN : 3 * directread.ALIGN]
            assert file.read(view, 0) == len(data)  # fewer than asked: the end of the file
            assert bytes(view[: len(data)]) == data
            assert file.read(view[: directread.ALIGN], 4 * directread.ALIGN) == 0  # past the end
            with pytest.raises(ValueError, match="unaligned"):
                file.read(view[:100], 0)
            with pytest.raises(ValueError, match="unaligned"):
                file.read(view[: directread.ALIGN], 17)
        finally:
            view.release()
            file.close()


def test_cutting_stopped_early_stops_the_reads(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    _small_cuts(monkeypatch)
    monkeypatch.setattr(linecuts, "BLOCK", 8192)
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,x\n" + b"".join(f"{i},{i}\n".encode() for i in range(50_000)))
    _direct_or_skip(path)
    with open(path, "rb") as f:
        f.readline()
        chunks = linecuts.line_chunks(f, ",", header=b"id,x\n", direct=True)
        next(chunks)
        assert any(t.name.startswith("lepton-direct") for t in threading.enumerate())
        chunks.close()  # the consumer gave up (a Fallback, an error): the reader thread ends with it
    assert not any(t.name.startswith("lepton-direct") and t.is_alive() for t in threading.enumerate())


def _lent(path: Path, seed: int, keep_first: bool = False) -> tuple[list[bytes], int, bytes]:
    """Cut ``path`` directly with buffers, each chunk checked and given
    back by one of two workers after a random pause (out of order): the
    chunks as checked, the buffers made, and with ``keep_first`` the first
    chunk's bytes read at the end through an Arrow buffer of it (an export
    of the chunk itself) kept past its giving back."""
    rnd = random.Random(seed)
    made = []
    real_fresh = windows.fresh

    def counted_fresh(size: int) -> mmap.mmap:
        made.append(size)
        return real_fresh(size)

    buffers = linecuts.Buffers(4)
    checked: list[bytes] = []
    kept: list[pa.Buffer] = []
    with open(path, "rb") as f:
        header = f.readline()

        def check(i: int, chunk: memoryview) -> None:
            time.sleep(rnd.random() / 500)
            checked[i] = bytes(chunk)
            if keep_first and i == 0:
                kept.append(pa.py_buffer(chunk))
            buffers.give(chunk)

        windows.fresh = counted_fresh
        try:
            with ThreadPoolExecutor(2) as pool:
                chunks = linecuts.line_chunks(f, ",", header=header, buffers=buffers, direct=True)
                for i, (_, chunk) in enumerate(chunks):
                    checked.append(b"")
                    pool.submit(check, i, chunk).add_done_callback(lambda fut: fut.result())
        finally:
            windows.fresh = real_fresh
    assert not buffers._lenders  # noqa: SLF001 - closed, every chunk back: the window is let go of
    return checked, len(made), kept[0].to_pybytes() if kept else b""


def test_lent_chunks_hold_the_files_bytes_until_given_back(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Many small blocks, so the ring of buffers goes round many times while
    chunks are out: no block is read into a buffer before every chunk
    lent from it is back."""
    _small_cuts(monkeypatch)
    monkeypatch.setattr(linecuts, "BLOCK", 8192)
    rnd = random.Random(7)
    body = b"".join(f"{i},{rnd.random():.6f},{rnd.randint(0, 3)}\n".encode() for i in range(20_000))
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,x,y\n" + body)
    _direct_or_skip(path)
    want = _chunks(path, 0, ",", direct=False)
    assert len(want) > 50
    for seed in range(3):
        got, made, _ = _lent(path, seed)
        assert got == want
        assert made == windows.MAPS  # the ring only: nothing copied out
    got, made, kept = _lent(path, 0, keep_first=True)
    assert got == want
    assert kept == want[0]  # its buffer was not read into again ...
    assert made == windows.MAPS + 1  # ... but replaced, once


def test_cutting_stopped_with_chunks_out_does_not_wait_for_them(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The consumer gave up holding chunks it will never give back, from
    every buffer of the ring: the reader thread, waiting for the first
    buffer to read into it again, ends with the cutting."""
    _small_cuts(monkeypatch)
    monkeypatch.setattr(linecuts, "BLOCK", 8192)
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,x\n" + b"".join(f"{i},{i}\n".encode() for i in range(50_000)))
    _direct_or_skip(path)
    held: list[memoryview] = []
    with open(path, "rb") as f:
        f.readline()
        chunks = linecuts.line_chunks(f, ",", header=b"id,x\n", buffers=linecuts.Buffers(2), direct=True)
        for _, chunk in chunks:
            held.append(chunk)  # never given back
            if len({id(c.obj) for c in held}) == windows.MAPS:
                break  # the next read waits for the first buffer's chunks
        reader = [t for t in threading.enumerate() if t.name.startswith("lepton-direct")]
        assert reader and all(t.is_alive() for t in reader)
        closing = threading.Thread(target=chunks.close)
        closing.start()
        closing.join(timeout=10)
        assert not closing.is_alive()
    assert not any(t.is_alive() for t in reader)
    assert bytes(held[0]).startswith(b"0,0\n")  # what was lent stays readable


def test_a_process_holding_lent_chunks_still_exits(tmp_path):  # type: ignore[no-untyped-def]
    """A consumer that keeps chunks and the cutting to the end of the
    process, the reader thread waiting for their buffer: the process exits
    (the reader is a daemon thread, not one that exit waits for)."""
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,x\n" + b"".join(f"{i},{i}\n".encode() for i in range(50_000)))
    _direct_or_skip(path)
    script = f"""
from lepton.data import linecuts, windows
linecuts.AVG_BYTES, linecuts.MIN_BYTES, linecuts.CDC_MAX, linecuts.MAX_BYTES = 2048, 512, 8192, 16384
linecuts.BLOCK = 8192
f = open({str(path)!r}, "rb")
f.readline()
chunks = linecuts.line_chunks(f, ",", header=b"id,x\\n", buffers=linecuts.Buffers(2), direct=True)
held = []
for _, chunk in chunks:
    held.append(chunk)  # never given back, the cutting never closed
    if len({{id(c.obj) for c in held}}) == windows.MAPS:
        break
print("holding", len(held), flush=True)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("holding")


def _evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        pagecache.drop(fd, 0, 0)
    finally:
        os.close(fd)


def test_a_cold_source_is_snapshotted_with_direct_reads(repo, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    rnd = random.Random(3)
    n = 60_000
    xs = [rnd.random() for _ in range(n)]
    frame = pd.DataFrame({"id": range(n), "x": xs, "label": [i % 5 for i in range(n)]})
    path = tmp_path / "cold.csv"
    frame.to_csv(path, index=False)
    _direct_or_skip(path)
    _evict(path)
    with open(path, "rb") as f:
        if pagecache.cached(f.fileno()):
            pytest.skip("this kernel keeps the file cached after DONTNEED")
    _evict(path)  # (again: nothing between the probe and the snapshot may bring a page back)
    counted = _Counted(monkeypatch)
    snap = repo.snapshot_data("cold", path, key="id")
    assert counted.calls >= 1 and counted.cached == 0  # a first version: every byte parsed, O_DIRECT
    pd.testing.assert_frame_equal(repo.read_table(snap.version.ref), frame)
    first = counted.calls
    frame.loc[123, "x"] = 0.5  # a version read by the same ring, against the first: through the cache
    frame.to_csv(path, index=False)
    _evict(path)
    again = repo.snapshot_data("cold", path, key="id")
    pd.testing.assert_frame_equal(repo.read_table(again.version.ref), frame)
    assert counted.calls > first and counted.cached == counted.calls - first
