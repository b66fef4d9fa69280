"""The streaming CSV ingest: content-defined line chunks that do not depend
on how the file was read, reuse of unchanged chunks between versions, and
fallback to the whole-file reader (with its line-precise errors)."""

from __future__ import annotations

import io
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lepton.data import dupkeys, ingest, linecuts
from lepton.errors import InvalidInput


def _lines(n: int, seed: int = 1) -> list[bytes]:
    rnd = random.Random(seed)
    return [f"{i},{rnd.random():.6f},{rnd.randint(0, 3)}\n".encode() for i in range(n)]


def _cut(data: bytes, block: int, monkeypatch) -> list[bytes]:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(linecuts, "BLOCK", block)
    return [c for _, c in ingest.line_chunks(io.BytesIO(b"id,x,label\n" + data))]


@pytest.mark.usefixtures("half_size_chunks")
def test_edits_past_the_first_bytes_of_lines_keep_every_boundary(monkeypatch):  # type: ignore[no-untyped-def]
    """A relabel (or new feature values) leaves every line's first field as it
    was, so every chunk keeps its rows, and can be stored as a patch over its
    old self."""
    rnd = random.Random(5)
    labels = [rnd.randint(0, 9) for _ in range(300_000)]
    before = b"".join(f"{10_000_000 + i},{y}\n".encode() for i, y in enumerate(labels))
    for i in rnd.sample(range(len(labels)), len(labels) // 100):  # 1% relabelled
        labels[i] = (labels[i] + 1) % 10
    after = b"".join(f"{10_000_000 + i},{y}\n".encode() for i, y in enumerate(labels))
    monkeypatch.setattr(linecuts, "BLOCK", 1 << 20)
    a, b = ([c for _, c in linecuts.line_chunks(io.BytesIO(b"id,label\n" + d), ",")] for d in (before, after))
    assert len(a) > 3 and [len(c) for c in a] == [len(c) for c in b] and a != b


def test_chunks_are_whole_lines_and_independent_of_read_blocks(monkeypatch):  # type: ignore[no-untyped-def]
    body = b"".join(_lines(200_000))
    a = _cut(body, 1 << 20, monkeypatch)
    b = _cut(body, (3 << 20) + 12_345, monkeypatch)
    assert a == b and b"".join(a) == body
    assert all(c.endswith(b"\n") for c in a)
    assert all(ingest.MIN_BYTES <= len(c) <= ingest.MAX_BYTES for c in a[:-1])


def test_an_edit_or_insert_changes_only_nearby_chunks(monkeypatch):  # type: ignore[no-untyped-def]
    lines = _lines(300_000)
    base = _cut(b"".join(lines), 1 << 20, monkeypatch)
    edited = lines.copy()
    edited[150_000] = b"150000,0.5,9\n"
    inserted = lines[:100_000] + _lines(500, seed=9) + lines[100_000:]
    for variant in (edited, inserted):
        got = _cut(b"".join(variant), 1 << 20, monkeypatch)
        assert len(set(got) - set(base)) <= 2, "more than the touched chunks changed"


def test_short_lines_chunk_deterministically(monkeypatch):  # type: ignore[no-untyped-def]
    body = b"".join(f"{i},{i % 3}\n".encode() for i in range(400_000))
    assert _cut(body, 1 << 20, monkeypatch) == _cut(body, (2 << 20) + 7, monkeypatch)


def test_append_reuses_chunks_and_reads_back_exactly(repo, tmp_path):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    n = 120_000
    frame = pd.DataFrame({"id": np.arange(n), "x": rng.random(n).round(6), "label": rng.integers(0, 4, n)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    first = repo.snapshot_data("t", tmp_path / "t.csv", key="id")
    more = pd.DataFrame({"id": np.arange(n, n + 6000), "x": rng.random(6000).round(6), "label": 1})
    bigger = pd.concat([frame, more], ignore_index=True)
    bigger.to_csv(tmp_path / "t.csv", index=False)
    before = set(repo.store.iter_keys())
    second = repo.snapshot_data("t", tmp_path / "t.csv", key="id")
    added = set(repo.store.iter_keys()) - before
    shared = {c.id for c in first.manifest.chunks} & {c.id for c in second.manifest.chunks}
    assert len(shared) >= len(first.manifest.chunks) - 1
    assert len(added) <= 2 * 2 + 1  # the last chunk and the new one (+ key sidecars) + manifest
    pd.testing.assert_frame_equal(repo.read_table("t@v2"), bigger)
    assert second.manifest.rows == n + 6000


def test_duplicate_key_in_a_new_chunk_against_an_old_one(repo, tmp_path):  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"id": np.arange(50_000), "v": 1.5})
    frame.to_csv(tmp_path / "d.csv", index=False)
    repo.snapshot_data("d", tmp_path / "d.csv", key="id")
    with open(tmp_path / "d.csv", "a") as f:
        f.write("17,2.5\n")
    objects = set(repo.store.iter_keys())
    with pytest.raises(InvalidInput, match=r"duplicate value\(s\): 17 \(line 19, line 50002\)"):
        repo.snapshot_data("d", tmp_path / "d.csv", key="id")
    assert set(repo.store.iter_keys()) == objects  # nothing stored for the rejected file
    assert [v.version for v in repo.log("d")] == [1]


def test_quoted_newlines_fall_back_to_the_whole_file_reader(repo, tmp_path):  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"id": range(300), "text": [f"line one\nline two {i}" for i in range(300)]})
    frame.to_csv(tmp_path / "q.csv", index=False)
    snap = repo.snapshot_data("q", tmp_path / "q.csv", key="id")
    pd.testing.assert_frame_equal(repo.read_table(snap.version.ref), frame)


_edit = st.tuples(st.sampled_from(["insert", "delete", "edit"]), st.floats(0, 1), st.integers(1, 40))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(_edit, max_size=6), block=st.sampled_from([4096, 50_000, 131_101]), seed=st.integers(0, 99)
)
def test_line_chunks_reassemble_exactly_after_random_edits(monkeypatch, ops, block, seed):  # type: ignore[no-untyped-def]
    """Small FastCDC sizes so that a few thousand lines make many chunks."""
    monkeypatch.setattr(linecuts, "AVG_BYTES", 2048)
    monkeypatch.setattr(linecuts, "MIN_BYTES", 512)
    monkeypatch.setattr(linecuts, "CDC_MAX", 8192)
    monkeypatch.setattr(linecuts, "MAX_BYTES", 16384)
    lines = _lines(3000, seed)
    rnd = random.Random(seed)
    for op, where, n in ops:
        at = int(where * len(lines))
        if op == "insert":
            lines[at:at] = [f"{rnd.random():.6f},x,{i}\n".encode() for i in range(n)]
        elif op == "delete":
            del lines[at : at + n]
        else:
            for i in range(at, min(at + n, len(lines))):
                lines[i] = lines[i].replace(b"0", b"7")
    body = b"".join(lines)
    if not body:
        return
    chunks = _cut(body, block, monkeypatch)
    assert b"".join(chunks) == body
    assert all(c.endswith(b"\n") and len(c) <= 16384 for c in chunks)
    assert all(len(c) >= 512 for c in chunks[:-1])
    assert chunks == _cut(body, 1 << 20, monkeypatch), "cuts depend on the read size"


def test_a_line_longer_than_the_read_ahead_goes_to_the_whole_file_reader(repo, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(linecuts, "BLOCK", 1 << 20)  # the file is read in pieces, as a large one is
    big = "y" * (linecuts.MAX_BYTES + (2 << 20))
    frame = pd.DataFrame({"id": [1, 2, 3], "text": ["a", big, "c"]})
    frame.to_csv(tmp_path / "long.csv", index=False)
    snap = repo.snapshot_data("long", tmp_path / "long.csv", key="id")
    assert all(c.keys is None for c in snap.manifest.chunks)  # not the streaming path (it keeps key sidecars)
    pd.testing.assert_frame_equal(repo.read_table("long"), frame)


def test_new_keys_are_checked_for_repeats_in_every_value_range():  # type: ignore[no-untyped-def]
    """The new keys' hashes are sorted in value ranges on both cores: a
    repeat is found whichever range (and whichever chunks) it falls in."""
    rng = np.random.default_rng(3)
    values = rng.choice(np.iinfo(np.int64).max, 200_000, replace=False).astype(np.uint64) * np.uint64(2)
    parts = [np.sort(p) for p in np.array_split(values, 7)]
    ranges = dupkeys.sorted_unique(parts)
    assert ranges is not None and len(ranges) == dupkeys.CORES
    assert (np.concatenate(ranges) == np.sort(values)).all()
    for repeat in (values[values < np.uint64(1 << 63)][5], values[values >= np.uint64(1 << 63)][5]):
        with_repeat = [*parts[:3], np.sort(np.append(parts[3], repeat)), *parts[4:]]
        assert dupkeys.sorted_unique(with_repeat) is None


def test_key_hashes_are_pandas_hashes():  # type: ignore[no-untyped-def]
    """Integer keys are hashed without pandas, bit for bit as pandas does
    (sidecars written either way are compared with each other)."""
    import pyarrow as pa

    from lepton.data.keyhash import key_hashes

    rng = np.random.default_rng(0)
    ints = np.concatenate([rng.integers(-(2**63), 2**63 - 1, 5000), [0, -1, 2**63 - 1, -(2**63)]])
    for values in (ints, rng.random(100), np.array(["a", "b", "ü", ""], dtype=object)):
        want = pd.util.hash_pandas_object(pd.Series(values), index=False).to_numpy(np.uint64)
        assert (key_hashes(pa.chunked_array([pa.array(values)])) == want).all()


def test_label_counts_without_pandas_match_pandas():  # type: ignore[no-untyped-def]
    import pyarrow as pa

    rule = ingest.LabelRule(label="y", key_type="int64", samples_of=lambda: np.array([], np.uint64))
    for values in ([3, 1, 3, 0, 3], ["b", "a", "b"], [1.5, 2.0, 1.5], [True, False, True]):
        table = pa.table({"y": values})
        want = pd.Series(values).astype(str).value_counts().to_dict()
        assert rule.count(table) == want


def test_duplicate_checks_trust_only_one_use_of_each_previous_key_set():  # type: ignore[no-untyped-def]
    """Chunks whose key sidecar the previous version held (reused, or
    patched in a relabel) are disjoint and unique: only the others are
    checked. The same previous key set twice, or a new key repeating an
    old one, is still a duplicate."""
    from lepton.manifest import Chunk

    def key(n: int) -> str:
        return f"blake3:{n:064x}"

    def done(n: int, keys: int, values: list[int], parsed: bool) -> ingest._Done:
        chunk = Chunk(id=key(n), rows=len(values), keys=key(keys))
        return ingest._Done(chunk, np.sort(np.array(values, np.uint64)), "memo" if parsed else None, 0)

    known = {key(100), key(101)}
    relabelled = [done(1, 100, [1, 2], True), done(2, 101, [3, 4], True)]
    assert not dupkeys.has_duplicates([d.chunk for d in relabelled], relabelled, known)
    twice = [*relabelled, done(3, 100, [1, 2], True)]  # other rows, the same keys as chunk 1
    assert dupkeys.has_duplicates([d.chunk for d in twice], twice, known)
    clash = [*relabelled, done(4, 102, [5, 3], True)]  # a new chunk repeating key 3
    assert dupkeys.has_duplicates([d.chunk for d in clash], clash, known)
    fine = [*relabelled, done(5, 102, [5, 6], True)]
    assert not dupkeys.has_duplicates([d.chunk for d in fine], fine, known)


def test_new_chunks_with_disjoint_integer_key_ranges_skip_the_sort(monkeypatch):  # type: ignore[no-untyped-def]
    """Integer keys whose chunk ranges do not overlap are proved unique
    without sorting all of them; a repeat inside a chunk, or in chunks whose
    ranges overlap, is still found (then by the sort)."""
    import pyarrow as pa

    from lepton.data.keyhash import key_hashes
    from lepton.manifest import Chunk

    def done(n: int, values: list[int]) -> ingest._Done:
        chunk = Chunk(id=f"blake3:{n:064x}", rows=len(values), keys=f"blake3:{n + 50:064x}")
        hashes = np.sort(key_hashes(pa.array(values, pa.int64())))
        return ingest._Done(chunk, hashes, "memo", 0, (min(values), max(values)))

    def check(chunks: list[ingest._Done]) -> bool:
        return dupkeys.has_duplicates([d.chunk for d in chunks], chunks, set())

    sorts = []
    real = dupkeys.sorted_unique
    monkeypatch.setattr(dupkeys, "sorted_unique", lambda parts: sorts.append(1) or real(parts))
    assert not check([done(1, [5, 1, 3]), done(2, [9, 7]), done(3, [6])])
    assert sorts == []  # proved by the ranges alone
    assert check([done(1, [1, 2, 3]), done(2, [7, 3])])  # ranges overlap, 3 twice
    assert check([done(1, [1, 2, 2]), done(2, [7, 8])])  # a repeat inside one chunk
    assert not check([done(1, [1, 5]), done(2, [3, 7])])  # ranges overlap, no repeat
    assert len(sorts) == 3
