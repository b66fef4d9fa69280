"""Content-defined chunking of tables: property tests on boundaries() and on
the write_chunks/read_chunks round trip, with small chunk sizes so that even
small tables span many chunks."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lepton.data.chunks import boundaries, read_chunks, row_hashes, write_chunks
from lepton.data.parquet import SMALL_ROWS, parquet_buffer, read_parquet
from lepton.store import ObjectStore, open_location

SMALL = {"target": 16, "lo": 4, "hi": 64}
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def local_store() -> Iterator[ObjectStore]:
    with tempfile.TemporaryDirectory() as d:
        yield ObjectStore(open_location(d), durable=False)


def ids(chunks) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.id for c in chunks]


# ---- boundaries ---------------------------------------------------------------
@st.composite
def chunk_params(draw) -> tuple[np.ndarray, int, int, int]:  # type: ignore[no-untyped-def]
    n = draw(st.integers(0, 600))
    target = 2 ** draw(st.integers(0, 6))
    lo = draw(st.integers(1, 2 * target))
    hi = lo + draw(st.integers(0, 4 * target))
    mode = draw(st.sampled_from(["random", "all-candidates", "no-candidates"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    hashes = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    if mode == "all-candidates":
        hashes = hashes << np.uint64(8)  # low bits all zero: every row may end a chunk
    elif mode == "no-candidates":
        hashes = hashes | np.uint64(1)
    return hashes, target, lo, hi


@PROPS
@given(chunk_params())
def test_boundaries_cover_rows_exactly_within_limits(params) -> None:  # type: ignore[no-untyped-def]
    hashes, target, lo, hi = params
    n = len(hashes)
    out = boundaries(hashes, target, lo, hi)
    # [0, n) exactly, in order, no gap, no overlap, no empty chunk
    covered = [i for s, e in out for i in range(s, e)]
    assert covered == list(range(n))
    assert all(e > s for s, e in out)
    sizes = [e - s for s, e in out]
    assert max(sizes, default=0) <= hi
    assert all(size >= lo for size in sizes[:-1]), "only the last chunk may be short"
    # every cut is content-defined (a candidate row) or forced by the size limit
    mask = np.uint64(target - 1)
    for s, e in out[:-1]:
        assert (hashes[e - 1] & mask) == 0 or e - s == hi
    assert boundaries(hashes, target, lo, hi) == out  # deterministic


def test_boundaries_reject_bad_parameters() -> None:
    h = np.zeros(10, dtype=np.uint64)
    for target, lo, hi in [(3, 1, 4), (0, 1, 4), (8, 0, 4), (8, 5, 4)]:
        with pytest.raises(ValueError):
            boundaries(h, target, lo, hi)


# ---- write/read round trip ---------------------------------------------------------
def make_frame(keys: list[int], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(keys)
    f = rng.normal(size=n)
    f[rng.random(n) < 0.1] = np.nan
    words = np.array(["alpha", "beta", "gamma", "δέλτα", "", "x,y", 'q"t'])
    s = pd.array(words[rng.integers(0, len(words), n)], dtype="str")
    s[rng.random(n) < 0.1] = None
    return pd.DataFrame(
        {
            "id": np.array(keys, dtype=np.int64),
            "n": rng.integers(-5, 5, n),
            "f": f,
            "s": s,
            "b": rng.random(n) < 0.5,
        }
    )


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.floats(0, 1), st.integers(1, 40)),
        st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 40)),
        st.tuples(st.just("edit"), st.floats(0, 1), st.sampled_from(["n", "f", "s", "b"])),
    ),
    min_size=1,
    max_size=6,
)


def apply(frame: pd.DataFrame, op, next_key: int, seed: int) -> tuple[pd.DataFrame, int]:  # type: ignore[no-untyped-def]
    kind, where, arg = op
    pos = int(where * len(frame))
    if kind == "insert":
        new = make_frame(list(range(next_key, next_key + arg)), seed)
        frame = pd.concat([frame.iloc[:pos], new, frame.iloc[pos:]], ignore_index=True)
        return frame, next_key + arg
    if kind == "delete" and len(frame) > arg:
        return frame.drop(frame.index[pos : pos + arg]).reset_index(drop=True), next_key
    if kind == "edit" and len(frame):
        frame = frame.copy()
        row = min(pos, len(frame) - 1)
        value = {"n": 999, "f": 0.5, "s": "edited", "b": not frame.at[row, "b"]}[arg]
        frame.loc[row, arg] = value
    return frame, next_key


@PROPS
@given(
    n=st.integers(1, 250),
    seed=st.integers(0, 10_000),
    keyed=st.booleans(),
    ops=OPS,
)
def test_roundtrip_after_random_edits(local_store, n, seed, keyed, ops) -> None:  # type: ignore[no-untyped-def]
    frame = make_frame(list(range(n)), seed)
    key = "id" if keyed else None
    versions = [frame]
    next_key = n
    for i, op in enumerate(ops):
        frame, next_key = apply(frame, op, next_key, seed + i + 1)
        versions.append(frame)
    for version in versions:
        columns, chunks = write_chunks(local_store, version, key, "t", **SMALL)
        assert [c.name for c in columns] == list(version.columns)
        assert sum(c.rows for c in chunks) == len(version)
        back = read_chunks(local_store, chunks)
        pd.testing.assert_frame_equal(back, version)
        # a subset of columns reads back too
        pd.testing.assert_frame_equal(read_chunks(local_store, chunks, ["s", "id"]), version[["s", "id"]])


@PROPS
@given(
    n=st.integers(50, 400),
    seed=st.integers(0, 10_000),
    keyed=st.booleans(),
    where=st.floats(0, 1),
    k=st.integers(1, 30),
)
def test_insertion_keeps_the_chunks_before_it(local_store, n, seed, keyed, where, k) -> None:  # type: ignore[no-untyped-def]
    key = "id" if keyed else None
    old = make_frame(list(range(n)), seed)
    pos = int(where * n)
    new, _ = apply(old, ("insert", where, k), n, seed + 1)
    _, a = write_chunks(local_store, old, key, "t", **SMALL)
    _, b = write_chunks(local_store, new, key, "t", **SMALL)
    ends = np.cumsum([c.rows for c in a])
    before = [c.id for c, end in zip(a, ends, strict=True) if end < pos]
    assert ids(b)[: len(before)] == before


@PROPS
@given(n=st.integers(20, 400), seed=st.integers(0, 10_000), where=st.floats(0, 1))
def test_editing_a_value_changes_only_its_chunk_when_keyed(local_store, n, seed, where) -> None:  # type: ignore[no-untyped-def]
    old = make_frame(list(range(n)), seed)
    new = old.copy()
    row = min(int(where * n), n - 1)
    new.loc[row, "n"] = 12345
    _, a = write_chunks(local_store, old, "id", "t", **SMALL)
    _, b = write_chunks(local_store, new, "id", "t", **SMALL)
    assert [c.rows for c in a] == [c.rows for c in b], "the key decides the boundaries"
    differing = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x.id != y.id]
    assert len(differing) == 1
    start = sum(c.rows for c in a[: differing[0]])
    assert start <= row < start + a[differing[0]].rows


@pytest.mark.parametrize("keyed", [True, False])
def test_insert_in_the_middle_leaves_most_chunks_shared(local_store, keyed) -> None:
    n = 5_000
    key = "id" if keyed else None
    old = make_frame(list(range(n)), seed=7)
    new, _ = apply(old, ("insert", 0.5, 10), n, seed=8)
    _, a = write_chunks(local_store, old, key, "t", target=64, lo=16, hi=512)
    _, b = write_chunks(local_store, new, key, "t", target=64, lo=16, hi=512)
    assert len(a) >= 40
    only_new = set(ids(b)) - set(ids(a))
    assert 1 <= len(only_new) <= 3, f"{len(only_new)} of {len(b)} chunks are new"
    assert len(set(ids(a)) & set(ids(b))) >= len(a) - 3
    pd.testing.assert_frame_equal(read_chunks(local_store, b), new)


def test_delete_in_the_middle_leaves_most_chunks_shared(local_store) -> None:
    n = 5_000
    old = make_frame(list(range(n)), seed=9)
    new = old.drop(old.index[2_000:2_040]).reset_index(drop=True)
    _, a = write_chunks(local_store, old, "id", "t", target=64, lo=16, hi=512)
    _, b = write_chunks(local_store, new, "id", "t", target=64, lo=16, hi=512)
    assert len(set(ids(b)) - set(ids(a))) <= 2
    pd.testing.assert_frame_equal(read_chunks(local_store, b), new)


def test_row_hashes_key_ignores_other_columns() -> None:
    f = make_frame(list(range(100)), seed=1)
    g = f.assign(n=f["n"] + 1)
    assert (row_hashes(f, "id") == row_hashes(g, "id")).all()
    assert (row_hashes(f, None) != row_hashes(g, None)).all()


def test_chunk_encodings_follow_each_columns_values() -> None:
    """Floats byte-stream-split; integers spanning less than 2**32 (ids,
    labels) delta-encoded, wider ones plain; every value read back."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lepton.data.parquet import parquet_buffer, read_parquet

    rng = np.random.default_rng(1)
    n = 5000
    table = pa.table(
        {
            "id": pa.array(np.arange(10**12, 10**12 + n)),
            "label": pa.array(rng.integers(0, 9, n).astype(np.int32)),
            "wide": pa.array(rng.integers(-(2**62), 2**62, n)),
            "top": pa.array(np.array([0, 2**64 - 1] * (n // 2), dtype=np.uint64)),
            "empty": pa.array([None] * n, pa.int64()),
            "holes": pa.array([None if i % 3 else i for i in range(n)], pa.int64()),  # (spans of values only)
            "x": pa.array(rng.random(n)),
            "s": pa.array([f"v{i % 7}" for i in range(n)]),
        }
    )
    data = parquet_buffer(pa.concat_tables([table.slice(0, 1000), table.slice(1000)]))  # columns of 2 chunks
    meta = pq.ParquetFile(pa.BufferReader(data)).metadata.row_group(0)
    used = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    assert {name for name, enc in used.items() if "DELTA_BINARY_PACKED" in enc} == {"id", "label", "holes"}
    assert {name for name, enc in used.items() if "BYTE_STREAM_SPLIT" in enc} == {"x"}
    assert read_parquet(data).equals(table)


@pytest.mark.parametrize("rows", [3, SMALL_ROWS * 2], ids=["small (snappy)", "zstd"])
def test_columns_without_nulls_are_stored_required_and_read_back_nullable(rows: int) -> None:
    """No definition levels for a column that has no null (REQUIRED in the
    file); a table reads back with the schema it was written with."""
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "x": pa.array([None if i == 1 else i / 2 for i in range(rows)], pa.float64()),
            "y": pa.array([i * 0.25 for i in range(rows)], pa.float64()),
        }
    )
    data = parquet_buffer(table)
    stored = pq.ParquetFile(pa.BufferReader(data)).schema
    assert [stored.column(i).max_definition_level for i in range(3)] == [0, 1, 0]
    back = read_parquet(data)
    assert back.schema == table.schema and back.equals(table)
    assert read_parquet(data, ["y"]).schema == table.select(["y"]).schema
