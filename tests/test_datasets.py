"""Datasets on both real stacks: tables from every source format, file trees
from local folders and S3 prefixes, checkout, diffs and deduplication."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lepton.data.sources import safe_rel
from lepton.errors import InvalidInput
from lepton.manifest import FileEntry, TableDataset, TreeDataset
from lepton.repo import Repo
from lepton.store.fs import s3_filesystem


# ---- helpers -------------------------------------------------------------------
def sample_frame(n: int = 300, start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(start + n)
    ids = np.arange(start, start + n, dtype=np.int64)
    return pd.DataFrame(
        {
            "id": ids,
            "name": pd.array([f'item-{i} é,"q"' for i in ids], dtype="str"),
            "score": rng.normal(size=n),  # full-precision floats must survive every format
            "flag": rng.random(n) < 0.5,
        }
    )


def write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for rec in frame.to_dict("records"):
            f.write(json.dumps({k: v.item() if hasattr(v, "item") else v for k, v in rec.items()}))
            f.write("\n")


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    suffix = "".join(path.suffixes)
    if suffix.startswith(".csv"):
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        write_jsonl(frame, path)
    return path


def read_back(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".jsonl":
        return pd.DataFrame.from_records([json.loads(line) for line in path.read_text().splitlines()])
    return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")


def objects(repo: Repo) -> set[str]:
    return set(repo.store.iter_keys())


def s3fs_of(repo: Repo):  # type: ignore[no-untyped-def]
    return s3_filesystem(repo.settings.s3)


@pytest.fixture
def s3_repo(backend, s3_server):  # type: ignore[no-untyped-def]
    """The repo of this stack, configured to read s3:// sources from the moto server."""
    r = Repo(backend.model_copy(update={"s3": s3_server.settings()})).ensure_ready()
    yield r
    r.close()


# ---- tables --------------------------------------------------------------------
@pytest.mark.parametrize("filename", ["t.csv", "t.tsv", "t.parquet", "t.jsonl", "t.csv.gz"])
def test_snapshot_table_from_each_format(repo, tmp_path, filename):
    df = sample_frame()
    path = write_table(df, tmp_path / filename)
    snap = repo.snapshot_data("table", path, key="id", message="first")
    assert snap.created and snap.version.version == 1
    m = snap.manifest
    assert isinstance(m, TableDataset)
    assert m.rows == 300 and m.key == "id"
    types = {c.name: c.type for c in m.columns}
    assert list(types) == ["id", "name", "score", "flag"]
    assert types["id"] == "int64" and types["score"] == "double" and types["flag"] == "bool"
    assert types["name"] in ("string", "large_string")
    assert sum(c.rows for c in m.chunks) == 300
    # the stored manifest is the one returned, and its id is its content hash
    assert repo.load(snap.version.id) == m and m.compute_id() == snap.version.id
    assert snap.version.meta["source"] == str(path) and snap.version.message == "first"
    pd.testing.assert_frame_equal(repo.read_table("table@v1"), df)


def test_snapshot_from_dataframe_and_resnapshot_is_a_no_op(repo):
    df = sample_frame(500)
    first = repo.snapshot_data("frame", df, key="id")
    assert first.created and first.version.meta == {"source": "<DataFrame>"}
    before = objects(repo)
    again = repo.snapshot_data("frame", df.copy(), key="id")
    assert not again.created
    assert again.version.version == 1 and again.version.id == first.version.id
    assert [v.version for v in repo.log("frame")] == [1]
    assert objects(repo) == before
    changed = df.assign(score=df["score"] + 1)
    second = repo.snapshot_data("frame", changed, key="id")
    assert second.created and second.version.version == 2
    pd.testing.assert_frame_equal(repo.read_table("frame@v1"), df)
    pd.testing.assert_frame_equal(repo.read_table("frame@latest"), changed)


def test_snapshot_table_from_s3(s3_repo, tmp_path):
    df = sample_frame(200)
    local = write_table(df, tmp_path / "data.csv")
    s3fs_of(s3_repo).put_file(str(local), "lepton/incoming/data.csv")
    remote = s3_repo.snapshot_data("remote", "s3://lepton/incoming/data.csv", key="id")
    assert remote.created and remote.version.meta["source"] == "s3://lepton/incoming/data.csv"
    pd.testing.assert_frame_equal(s3_repo.read_table("remote"), df)
    # the same bytes read from a local copy make the very same artifact
    same = s3_repo.snapshot_data("remote", local, key="id")
    assert not same.created and same.version.id == remote.version.id


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".tsv", ".jsonl"])
def test_checkout_table_equals_snapshot(repo, tmp_path, suffix):
    df = sample_frame(400)
    snap = repo.snapshot_data("tab", df, key="id")
    out = repo.checkout("tab@v1", tmp_path / "out" / f"tab{suffix}")
    assert out == tmp_path / "out" / f"tab{suffix}"
    pd.testing.assert_frame_equal(read_back(out), df)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "temp file left"
    # the checked-out file snapshots back into the same rows; Parquet and
    # JSONL (read whole, chunked by row hash like a DataFrame) into the same
    # version; CSV/TSV go through the streaming ingest, which chunks by line
    # bytes: a new version id for the same rows, stable from then on
    again = repo.snapshot_data("tab", out, key="id")
    if suffix in (".csv", ".tsv"):
        pd.testing.assert_frame_equal(repo.read_table(again.version.ref), df)
        third = repo.snapshot_data("tab", out, key="id")
        assert not third.created and third.version.id == again.version.id
    else:
        assert not again.created and again.version.id == snap.version.id


def _many_chunks(repo, name: str, text, seed: int) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """120,000 rows (id, a float, ``text(i)``) snapshotted as ``name``: several chunks."""
    n = 120_000
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"id": np.arange(n), "x": rng.random(n), "t": [text(i) for i in range(n)]})
    snap = repo.snapshot_data(name, df, key="id")
    assert len(snap.manifest.chunks) > 4
    return df


def test_csv_checkout_of_many_chunks_is_one_table_written_in_order(repo, tmp_path):  # type: ignore[no-untyped-def]
    """Chunks are formatted on threads and written in order: the file is what
    Arrow writes for the whole table at once (one header; quoted text)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    df = _many_chunks(repo, "many", lambda i: f'a,"b" {i}', seed=1)
    import pyarrow.parquet as pq

    out = repo.checkout("many@v1", tmp_path / "many.tsv")
    whole = pa.BufferOutputStream()
    table = pq.read_table(repo.checkout("many@v1", tmp_path / "many.parquet"))
    pacsv.write_csv(table, whole, write_options=pacsv.WriteOptions(delimiter="\t", quoting_style="needed"))
    assert out.read_bytes() == whole.getvalue().to_pybytes()
    pd.testing.assert_frame_equal(pd.read_csv(out, sep="\t"), df)


def test_a_csv_of_numbers_checks_out_as_the_numbers_it_had(repo, tmp_path):  # type: ignore[no-untyped-def]
    """Ids, 6-digit decimals (0.075240: Arrow would write 0.07524) and labels:
    stored as integers and decimals (lepton.data.decimals), and written back
    by the compiled formatter, every row byte for byte as the source had it,
    also where a later version's chunks are patches over the first's."""
    n = 300_000  # ~9 MB: a few chunks
    rng = np.random.default_rng(5)
    values = rng.integers(0, 10**6, size=(n, 3))
    values[::7, 1] = values[::7, 1] // 10 * 10  # trailing zeros, kept as the column's digits
    lines = [
        f"{10_000 + i},{a / 1e6:.6f},{-b / 1e6:.6f},{c % 10}\n" for i, (a, b, c) in enumerate(values.tolist())
    ]
    src = tmp_path / "t.csv"
    src.write_text("id,f0,f1,label\n" + "".join(lines))
    first = repo.snapshot_data("nums", src, key="id")
    assert len(first.manifest.chunks) > 1
    out = repo.checkout("nums@v1", tmp_path / "out.csv")
    assert out.read_text().splitlines()[1:] == src.read_text().splitlines()[1:]
    for i in range(0, n, 997):  # edits in place: the next version's chunks are patches
        lines[i] = f"{10_000 + i},0.500000,-0.000010,{i % 10}\n"
    src.write_text("id,f0,f1,label\n" + "".join(lines))
    second = repo.snapshot_data("nums", src, key="id")
    assert all(c.base is not None for c in second.manifest.chunks)
    out = repo.checkout("nums@v2", tmp_path / "out2.csv")
    assert out.read_text().splitlines()[1:] == src.read_text().splitlines()[1:]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])  # the streaming and the whole-file reader
def test_only_an_empty_field_is_null(repo, tmp_path, suffix):  # type: ignore[no-untyped-def]
    """Text such as NA, null, None or nan is a value, read the same by both
    readers; a key or label NA is a key or label; NaN in a float column is a float."""
    import gzip

    import pyarrow.parquet as pq

    text = 'code,name,f\nNA,NA,nan\nnull,null,1.5\nNone,None,NaN\nnan,nan,\nN/A,,inf\nUS,"",2\n'
    src = tmp_path / f"t{suffix}"
    src.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    repo.snapshot_data("texts", src, key="code")
    table = repo.read_table("texts@v1")
    assert table["code"].tolist() == ["NA", "null", "None", "nan", "N/A", "US"]
    assert table["name"].tolist()[:4] == ["NA", "null", "None", "nan"]
    assert table["name"].isna().tolist() == [False] * 4 + [True, True]
    assert str(table["f"].dtype) == "float64" and table["f"].tolist()[1::4] == [1.5, 2.0]
    assert np.isinf(table["f"][4]) and table["f"].isna().tolist()[3]
    # both readers keep NaN a float, apart from the empty field's null
    f = pq.read_table(repo.checkout("texts@v1", tmp_path / "out.parquet"))["f"]
    assert f.is_null().to_pylist() == [False, False, False, True, False, False]
    assert np.isnan(f.to_numpy(zero_copy_only=False)[[0, 2]]).all()
    labels = tmp_path / f"labels{suffix}"
    body = "code,label\nNA,NA\nUS,null\n"
    labels.write_bytes(gzip.compress(body.encode()) if suffix.endswith(".gz") else body.encode())
    repo.snapshot_labels("texts-labels", labels, dataset="texts", key="code", label="label")
    assert repo.read_table("texts-labels@v1")["label"].tolist() == ["NA", "null"]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])  # the streaming and the whole-file reader
def test_integers_wider_than_int64_are_not_rounded(repo, tmp_path, suffix):  # type: ignore[no-untyped-def]
    """Above int64 a whole number is a uint64 where every value fits and
    none is missing, else its text; never a double (1.2345678901234567e+19)."""
    import gzip

    text = "id,u,gap,neg,f\n1,12345678901234567890,12345678901234567890,-12345678901234567890,1e20\n"
    text += "2,3,,4,2\n"
    src = tmp_path / f"t{suffix}"
    src.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    repo.snapshot_data("wide", src, key="id")
    table = repo.read_table("wide@v1")
    assert str(table["u"].dtype) == "uint64" and table["u"].tolist() == [12345678901234567890, 3]
    assert table["gap"].tolist()[0] == "12345678901234567890" and table["gap"].isna().tolist() == [
        False,
        True,
    ]
    assert table["neg"].tolist() == ["-12345678901234567890", "4"]
    assert str(table["f"].dtype) == "float64"
    out = repo.checkout("wide@v1", tmp_path / "out.csv").read_text()
    assert "1e+20" in out and "12345678901234567890," in out and ".2345678901234567e+19" not in out


def test_parquet_types_and_values_are_kept(repo, tmp_path):  # type: ignore[no-untyped-def]
    """Read into Arrow, not through numpy: NaN is not null, decimal128(10, 2)
    keeps its precision, a struct<a: int64> with a null row and a nullable
    int64 stay integers; a list key is still refused."""
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "t.parquet"
    d = decimal.Decimal
    table = pa.table(
        {
            "id": pa.array([1, 2, 3]),
            "f": pa.array([float("nan"), None, 1.5]),
            "d": pa.array([d("1.25"), None, d("12345678.90")], pa.decimal128(10, 2)),
            "s": pa.array([{"a": 1}, None, {"a": 3}], pa.struct([("a", pa.int64())])),
            "n": pa.array([1, None, 3], pa.int64()),
            "t": pa.array(["x", None, "z"], pa.large_string()),
            "b": pa.array([True, None, False]),
        }
    )
    pq.write_table(table, src)
    repo.snapshot_data("typed", src, key="id")
    out = pq.read_table(repo.checkout("typed@v1", tmp_path / "out.parquet"))
    assert out.schema == table.schema
    assert out.to_pylist()[1:] == table.to_pylist()[1:] and out["f"].is_null().to_pylist() == [
        False,
        True,
        False,
    ]
    assert np.isnan(out["f"][0].as_py())
    listed = tmp_path / "listed.parquet"
    pq.write_table(pa.table({"id": pa.array([[1], [2]])}), listed)
    with pytest.raises(InvalidInput, match="must hold plain values"):
        repo.snapshot_data("listed", listed, key="id")


def test_checkout_table_into_folder_defaults_to_parquet(repo, tmp_path):
    df = sample_frame(50)
    repo.snapshot_data("tab", df)
    (tmp_path / "dir").mkdir()
    out = repo.checkout("tab", tmp_path / "dir")
    assert out == tmp_path / "dir" / "tab.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(out), df)
    with pytest.raises(InvalidInput, match="unknown table format"):
        repo.checkout("tab", tmp_path / "x.xlsx")


def test_diff_with_key_counts_and_samples(repo):
    v1 = sample_frame(1_000)
    v2 = v1[~v1["id"].isin(range(5))]  # 5 removed
    v2 = pd.concat([v2, sample_frame(7, start=5_000)], ignore_index=True)  # 7 added
    v2.loc[v2["id"] == 500, "score"] = 42.5
    v2.loc[v2["id"] == 501, "flag"] = ~v2.loc[v2["id"] == 501, "flag"]
    v2.loc[v2["id"] == 502, ["name", "score"]] = ["renamed", -1.0]
    repo.snapshot_data("d", v1, key="id")
    repo.snapshot_data("d", v2, key="id")
    d = repo.diff("d@v1", "d@v2")
    assert (d.key, d.rows_a, d.rows_b) == ("id", 1_000, 1_002)
    assert (d.added, d.removed, d.changed) == (7, 5, 3)
    assert d.schema_change.empty
    assert sorted(r["id"] for r in d.samples["added"]) == list(range(5_000, 5_007))
    assert sorted(r["id"] for r in d.samples["removed"]) == [0, 1, 2, 3, 4]
    changed = {r["key"]: r["columns"] for r in d.samples["changed"]}
    old = v1.set_index("id")
    assert changed[500] == {"score": {"from": old.at[500, "score"], "to": 42.5}}
    assert changed[501] == {"flag": {"from": bool(old.at[501, "flag"]), "to": not old.at[501, "flag"]}}
    assert changed[502] == {
        "name": {"from": old.at[502, "name"], "to": "renamed"},
        "score": {"from": old.at[502, "score"], "to": -1.0},
    }
    assert repo.diff("d@v1", "d@v1").changed == 0
    back = repo.diff("d@v2", "d@v1")
    assert (back.added, back.removed, back.changed) == (5, 7, 3)


def test_diff_schema_changes(repo):
    v1 = pd.DataFrame({"id": range(50), "n": range(50), "flag": [True, False] * 25, "s": "x"})
    v2 = v1.drop(columns=["flag"]).assign(extra=1.5)
    v3 = v1.assign(n=v1["n"].astype("float64"), flag=v1["flag"].astype("int64"))
    v3.loc[10, "n"] = 10.5  # retyped columns, and one value that really differs
    repo.snapshot_data("s", v1, key="id")
    repo.snapshot_data("s", v2, key="id")
    repo.snapshot_data("s", v3, key="id")
    d = repo.diff("s@v1", "s@v2")
    assert d.schema_change.added == ("extra",)
    assert d.schema_change.removed == ("flag",)
    assert d.schema_change.retyped == ()
    assert d.changed == 0, "common columns are unchanged"
    d = repo.diff("s@v1", "s@v3")
    assert d.schema_change.retyped == (("n", "int64", "double"), ("flag", "bool", "int64"))
    assert not d.schema_change.added and not d.schema_change.removed
    # only the row whose value differs counts as changed, not every retyped row
    assert d.changed == 1
    assert d.samples["changed"] == [{"key": 10, "columns": {"n": {"from": 10, "to": 10.5}}}]


def test_diff_without_key_is_a_multiset_of_rows(repo):
    v1 = pd.DataFrame({"a": [1, 1, 2, 3, 4], "b": ["x", "x", "y", "z", "w"]})
    v2 = pd.DataFrame({"a": [1, 2, 3, 5, 5, 4], "b": ["x", "y", "Z", "v", "v", "w"]})
    repo.snapshot_data("nokey", v1)
    repo.snapshot_data("nokey", v2)
    d = repo.diff("nokey@v1", "nokey@v2")
    assert d.key is None
    # one duplicate (1,x) dropped and (3,z) edited to (3,Z): 2 removed; (3,Z) and 2x(5,v): 3 added
    assert (d.added, d.removed, d.changed) == (3, 2, 0)
    assert sorted((r["a"], r["b"]) for r in d.samples["added"]) == [(3, "Z"), (5, "v"), (5, "v")]
    assert sorted((r["a"], r["b"]) for r in d.samples["removed"]) == [(1, "x"), (3, "z")]
    reordered = v1.iloc[::-1].reset_index(drop=True)
    repo.snapshot_data("nokey", reordered)
    d = repo.diff("nokey@v1", "nokey@v3")
    assert (d.added, d.removed) == (0, 0), "row order alone is no content change"


def test_diff_of_nested_values(repo, tmp_path):
    path = tmp_path / "nested.jsonl"
    path.write_text('{"id": 1, "tags": ["a", "b"], "m": {"k": 1}}\n{"id": 2, "tags": [], "m": {"k": 2}}\n')
    repo.snapshot_data("nested", path)  # no key: whole rows are hashed
    path.write_text('{"id": 1, "tags": ["a", "c"], "m": {"k": 1}}\n{"id": 2, "tags": [], "m": {"k": 2}}\n')
    repo.snapshot_data("nested", path, key="id")
    d = repo.diff("nested@v1", "nested@v2")
    assert (d.added, d.removed) == (1, 1)  # key differs between versions: content multiset
    path.write_text('{"id": 1, "tags": ["a", "c"], "m": {"k": 9}}\n{"id": 2, "tags": [], "m": {"k": 2}}\n')
    repo.snapshot_data("nested", path, key="id")
    d = repo.diff("nested@v2", "nested@v3")
    assert (d.added, d.removed, d.changed) == (0, 0, 1)
    assert d.samples["changed"][0] == {
        "key": 1,
        "columns": {"m": {"from": {"k": 1}, "to": {"k": 9}}},
    }


def test_appending_rows_stores_only_new_chunks(repo):
    base = sample_frame(100_000)
    first = repo.snapshot_data("big", base, key="id")
    a = first.manifest.chunks
    assert len(a) >= 4
    before = objects(repo)
    grown = pd.concat([base, sample_frame(3_000, start=100_000)], ignore_index=True)
    second = repo.snapshot_data("big", grown, key="id")
    b = second.manifest.chunks
    new_objects = objects(repo) - before
    new_chunks = {c.id for c in b} - {c.id for c in a}
    assert new_objects == new_chunks | {second.version.id}
    assert 1 <= len(new_chunks) <= 2
    assert len({c.id for c in a} & {c.id for c in b}) >= len(a) - 1
    d = repo.diff("big@v1", "big@v2")
    assert (d.added, d.removed, d.changed) == (3_000, 0, 0)
    assert d.chunks_shared >= len(a) - 1
    tail = repo.read_table("big@v2").iloc[-3_000:].reset_index(drop=True)
    pd.testing.assert_frame_equal(tail, sample_frame(3_000, start=100_000))


# ---- trees ---------------------------------------------------------------------
def make_tree(root: Path) -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    files = {
        "README.txt": b"hello\n",
        "data/blob.bin": rng.bytes(50_000),
        "data/deep/er/small.bin": bytes(range(256)) * 3,
        "data/deep/empty": b"",
        "data/copy-1.bin": b"same bytes" * 100,
        "data/copy-2.bin": b"same bytes" * 100,
        "ünïcode name.txt": "ü".encode(),
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_tree_snapshot_and_checkout_byte_identical(repo, tmp_path):
    files = make_tree(tmp_path / "src")
    snap = repo.snapshot_data("tree", tmp_path / "src")
    m = snap.manifest
    assert isinstance(m, TreeDataset)
    assert [f.path for f in m.files] == sorted(files)
    assert {f.path: f.size for f in m.files} == {k: len(v) for k, v in files.items()}
    assert m.size == sum(map(len, files.values()))
    # identical contents are one object; plus the manifest
    assert objects(repo) == {f.id for f in m.files} | {snap.version.id}
    assert len({f.id for f in m.files}) == len(files) - 1
    out = repo.checkout("tree@v1", tmp_path / "out")
    assert read_tree(out) == files
    assert not [p for p in out.rglob(".*")], "temp files left"
    again = repo.snapshot_data("tree", tmp_path / "src")
    assert not again.created and again.version.version == 1


def test_tree_from_s3_prefix_matches_local(s3_repo, tmp_path):
    files = make_tree(tmp_path / "src")
    fs = s3fs_of(s3_repo)
    for rel, data in files.items():
        fs.pipe_file(f"lepton/incoming/tree/{rel}", data)
    fs.pipe_file("lepton/incoming/tree-sibling.txt", b"not part of the tree")
    remote = s3_repo.snapshot_data("tree", "s3://lepton/incoming/tree")
    assert [f.path for f in remote.manifest.files] == sorted(files)
    out = s3_repo.checkout("tree", tmp_path / "out")
    assert read_tree(out) == files
    local = s3_repo.snapshot_data("tree", tmp_path / "src")
    assert not local.created and local.version.id == remote.version.id


def test_tree_diff(repo, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    repo.snapshot_data("tree", src)
    (src / "data/blob.bin").write_bytes(b"changed")
    (src / "README.txt").unlink()
    (src / "data/new/file.txt").parent.mkdir()
    (src / "data/new/file.txt").write_text("new")
    repo.snapshot_data("tree", src)
    d = repo.diff("tree@v1", "tree@v2")
    assert d.added == ("data/new/file.txt",)
    assert d.removed == ("README.txt",)
    assert d.changed == ("data/blob.bin",)
    assert (d.files_a, d.files_b, d.unchanged) == (7, 7, 5)
    repo.snapshot_data("tab", sample_frame(5))
    with pytest.raises(InvalidInput, match="cannot diff a tree against a table"):
        repo.diff("tree@v1", "tab@v1")


def test_tree_checkout_refuses_non_empty_destination(repo, tmp_path):
    make_tree(tmp_path / "src")
    repo.snapshot_data("tree", tmp_path / "src")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not an empty folder"):
        repo.checkout("tree", dest)
    assert read_tree(dest) == {"keep.txt": b"mine"}
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidInput):
        repo.checkout("tree", tmp_path / "afile")
    assert (tmp_path / "afile").read_text() == "x"
    (tmp_path / "empty").mkdir()
    assert read_tree(repo.checkout("tree", tmp_path / "empty")) == read_tree(tmp_path / "src")


def test_symlink_outside_the_folder_is_refused(repo, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", src / "data" / "link.txt")
    before = objects(repo)
    with pytest.raises(InvalidInput, match=r"symlink data/link\.txt points outside the folder"):
        repo.snapshot_data("tree", src)
    assert objects(repo) == before
    (src / "data" / "link.txt").unlink()
    os.symlink(tmp_path, src / "data" / "dirlink")  # a linked folder outside, too
    with pytest.raises(InvalidInput, match="points outside"):
        repo.snapshot_data("tree", src)
    (src / "data" / "dirlink").unlink()
    os.symlink(src / "README.txt", src / "data" / "inside-link")  # inside: stored as a file
    snap = repo.snapshot_data("tree", src)
    entries = {f.path: f for f in snap.manifest.files}
    assert entries["data/inside-link"].id == entries["README.txt"].id


@pytest.mark.parametrize(
    "rel", ["../x", "a/../../x", "/abs", "a\\b", "a/./b", "./a", "a//b", "a/", "", "a\x00b", ".."]
)
def test_safe_rel_rejects_unsafe_names(rel):
    with pytest.raises(InvalidInput, match="unsafe file name"):
        safe_rel(rel, "src")


@pytest.mark.parametrize("rel", ["a", "a/b/c.txt", "..a", "a..b/c", ".hidden", "ü/ß"])
def test_safe_rel_accepts_plain_names(rel):
    assert safe_rel(rel, "src") == rel


@pytest.mark.parametrize("bad", ["../escaped.txt", "/ABS", "sub/../../escaped.txt"])
def test_checkout_refuses_a_crafted_manifest(repo, tmp_path, bad):
    box = tmp_path / "box"
    bad = bad.replace("/ABS", str(box / "abs.txt"))
    good = repo.store.put_bytes(b"fine")
    evil = repo.store.put_bytes(b"evil")
    manifest = TreeDataset(
        name="crafted",
        files=(FileEntry(path="a.txt", size=4, id=good), FileEntry(path=bad, size=4, id=evil)),
        size=8,
    )
    id = repo.put_manifest(manifest)
    repo.registry.register(id=id, kind="dataset", name="crafted")
    with pytest.raises(InvalidInput, match="unsafe file name"):
        repo.checkout("crafted", box / "dest")
    assert read_tree(box) == {}, "nothing written, not even the safe file"


def test_string_dtype_does_not_change_identity(repo):
    """The same strings held as pandas `object` or `str` are the same content."""
    frame = pd.DataFrame({"id": ["a", "b", "c"], "v": [1, 2, 3]})
    first = repo.snapshot_data("dtypes", frame.astype({"id": "str"}), key="id")
    again = repo.snapshot_data("dtypes", frame.astype({"id": object}), key="id")
    assert first.version.id == again.version.id and not again.created


def test_parquet_checkout_is_written_for_readers(repo, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Chunks gathered into row groups of ROW_GROUP_ROWS rows, with
    statistics; floats byte-stream-split, text dictionary-encoded (Arrow's
    default would dictionary-encode every column); the rows as snapshotted."""
    import pyarrow.parquet as pq

    from lepton.data import checkout as checkout_mod

    monkeypatch.setattr(checkout_mod, "ROW_GROUP_ROWS", 25_000)
    df = _many_chunks(repo, "rg", lambda i: f"c{i % 5}", seed=2)
    out = repo.checkout("rg@v1", tmp_path / "rg.parquet")
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)][:-1] == [25_000] * 4
    first = meta.row_group(0)
    columns = {first.column(i).path_in_schema: first.column(i) for i in range(first.num_columns)}
    assert "BYTE_STREAM_SPLIT" in columns["x"].encodings
    assert "RLE_DICTIONARY" in columns["t"].encodings and "RLE_DICTIONARY" not in columns["x"].encodings
    assert columns["id"].statistics.min == 0 and columns["id"].compression == "ZSTD"
    pd.testing.assert_frame_equal(pd.read_parquet(out), df)
