"""Bad input on both real stacks: one clear, typed error naming the file and
the line, row or column; and nothing stored before changes (registry
versions, names, the store's objects and its registry log)."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from lepton.errors import InvalidInput, LeptonError, NotFound
from lepton.repo import Repo
from lepton.store.fs import s3_filesystem


def state(repo: Repo):  # type: ignore[no-untyped-def]
    names = repo.registry.names()
    versions = {n: [(v.version, v.id) for v in repo.log(n)] for n, _, _ in names}
    records = len(list(repo.store.iter_records("registry")))
    return names, versions, set(repo.store.iter_keys()), records


@pytest.fixture
def seeded(repo):  # type: ignore[no-untyped-def]
    """A repo holding a keyed table (2 versions) and a labelset, and its state."""
    df = pd.DataFrame({"id": [1, 2, 3, 4], "x": ["a", "b", "c", "d"]})
    repo.snapshot_data("existing", df, key="id")
    repo.snapshot_data("existing", df.assign(x="z"), key="id")
    labels = pd.DataFrame({"id": [1, 2], "label": ["p", "q"]})
    repo.snapshot_labels("existing-labels", labels, dataset="existing", key="id", label="label")
    before = state(repo)
    assert len(before[2]) >= 5
    yield repo
    assert state(repo) == before, "a failed operation changed what was stored"


def expect(exc: type[LeptonError], *fragments: str):  # type: ignore[no-untyped-def]
    """pytest.raises that also checks the message contains every fragment."""

    class Checker:
        def __enter__(self):  # type: ignore[no-untyped-def]
            self.ctx = pytest.raises(exc)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc_info):  # type: ignore[no-untyped-def]
            handled = self.ctx.__exit__(*exc_info)
            if not handled:
                return False
            msg = str(self.info.value)
            for f in fragments:
                assert f in msg, f"{f!r} not in {msg!r}"
            return handled

    return Checker()


def _bad_byte_at_line_2501(fmt: str) -> tuple[bytes, int]:
    """3,000 rows with a \\xff starting line 2501, and its byte offset."""
    if fmt == "jsonl":
        lines = [b'{"id": %d, "x": "abcdefghi"}\n' % i for i in range(1, 3001)]
    else:
        sep = b"," if fmt == "csv" else b"\t"
        lines = [b"id%sx\n" % sep] + [b"%d%sabcdefghi\n" % (i, sep) for i in range(1, 3000)]
    head = b"".join(lines[:2500])
    return head + b"\xff" + b"".join(lines[2500:]), len(head)


def _parquet_bytes(names: list[str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_arrays([pa.array([1, 2])] * len(names), names=names), sink)
    return sink.getvalue().to_pybytes()


BAD_TABLES = [
    # (file name, content, key, exception, fragments of the message)
    (
        "extra.csv",
        "id,x\n1,a\n2,b\n3,c,EXTRA\n4,d\n",
        "id",
        InvalidInput,
        ["malformed CSV", "line 4", "saw 3"],
    ),
    (
        "extra-first.csv",
        "id,x\n1,a,EXTRA\n2,b\n",
        "id",
        InvalidInput,
        ["malformed CSV", "line 2", "saw 3"],
    ),
    (
        "short.csv",  # a truncated line: pandas would fill it with NaN
        "id,x,y\n1,a,b\n2,c\n3,d,e\n",
        "id",
        InvalidInput,
        ["malformed CSV", "line 3", "saw 2"],
    ),
    ("short-last.tsv", "id\tx\ty\n1\ta\tb\n2\tc\n", "id", InvalidInput, ["malformed TSV", "line 3", "saw 2"]),
    ("extra-all.csv", "id,x\n1,a,E\n2,b,F\n", None, InvalidInput, ["malformed CSV", "line 2"]),
    ("extra.tsv", "id\tx\n1\ta\n2\tb\tEXTRA\n", "id", InvalidInput, ["malformed TSV", "line 3"]),
    ("empty.csv", "", "id", InvalidInput, ["the file is empty"]),
    ("blank.csv", "\n\n", None, InvalidInput, ["no columns"]),
    ("header-only.csv", "id,x\n", "id", InvalidInput, ["no data rows"]),
    ("header-only-no-newline.csv", "id,x", "id", InvalidInput, ["no data rows"]),
    ("header-only-no-newline.tsv", "id\tx", None, InvalidInput, ["no data rows"]),
    ("dup-columns.csv", "id,a,a\n1,2,3\n2,4,5\n", "id", InvalidInput, ["column 'a' appears more than once"]),
    ("dup-columns.tsv", "id\ta\tid\n1\t2\t3\n", None, InvalidInput, ["column 'id' appears more than once"]),
    (
        "dup-fields.jsonl",
        '{"id": 1, "a": 2}\n{"id": 2, "a": 3, "a": 4}\n',
        "id",
        InvalidInput,
        ["line 2", "'a'"],
    ),
    (
        "dup-columns.parquet",
        _parquet_bytes(["id", "a", "a"]),
        "id",
        InvalidInput,
        ["column 'a' appears more"],
    ),
    (
        "dup-columns.csv.gz",
        gzip.compress(b"id,a,b,a\n1,2,3,4\n"),
        "id",
        InvalidInput,
        ["column 'a' appears more than once"],
    ),
    ("header-only.jsonl", "\n", None, InvalidInput, []),
    (
        "nokey.csv",
        "ident,x,y\n1,a,b\n",
        "id",
        InvalidInput,
        ["key column 'id' not found", "columns are: ident, x, y"],
    ),
    (
        "dups.csv",
        "id,x\n1,a\n2,b\n1,c\n3,d\n2,e\n",
        "id",
        InvalidInput,
        ["2 duplicate value(s)", "1 (line 2, line 4)", "2 (line 3, line 6)"],
    ),
    ("dups-text.csv", "id,x\nk1,a\nk2,b\nk1,c\n", "id", InvalidInput, ["'k1' (line 2, line 4)"]),
    (
        "dups-blank-lines.csv",
        'id,x\n1,a\n\n2,"two\nlines"\n\n1,c\n3,d\n2,e\n',
        "id",
        InvalidInput,
        ["1 (line 2, line 7)", "2 (line 4, line 9)"],
    ),
    (
        "dups-blank.jsonl",
        '{"id": 1}\n\n{"id": 2}\n\n{"id": 1}\n',
        "id",
        InvalidInput,
        ["1 (line 1, line 5)"],
    ),
    (
        "nullkey.csv",
        "id,x\n1,a\n,b\n3,c\n,d\n",
        "id",
        InvalidInput,
        ["key column 'id' is empty at line 3, line 5"],
    ),
    (
        "bad.jsonl",
        '{"id": 1}\n{"id": 2}\n{"id": 3,\n',
        "id",
        InvalidInput,
        ["malformed JSON on line 3"],
    ),
    ("array.jsonl", '{"id": 1}\n[1, 2]\n', "id", InvalidInput, ["line 2 is not a JSON object"]),
    (
        "mixed.jsonl",
        '{"id": 1, "v": 1}\n{"id": 2, "v": "two"}\n{"id": 3, "v": [3]}\n',
        "id",
        InvalidInput,
        ["column", "v"],
    ),
    (
        "nested-key.jsonl",
        '{"id": [1], "v": 1}\n{"id": [2], "v": 2}\n',
        "id",
        InvalidInput,
        ["key column 'id' must hold plain values", "line 1"],
    ),
    (
        "garbage.parquet",
        "this is not parquet at all",
        None,
        InvalidInput,
        ["not a readable parquet file"],
    ),
    ("latin1.csv", b"id,x\n1,caf\xe9\n", "id", InvalidInput, ["not UTF-8", "line 2, byte offset 10"]),
    *(
        (
            name,
            _bad_byte_at_line_2501(name.split(".")[1])[0],
            "id",
            InvalidInput,
            ["not UTF-8", f"line 2501, byte offset {_bad_byte_at_line_2501(name.split('.')[1])[1]}"],
        )
        for name in ("late-ff.csv", "late-ff.tsv", "late-ff.jsonl")
    ),
    ("sheet.xlsx", "id\n1\n", None, InvalidInput, ["unknown table format", ".csv", ".parquet"]),
    ("noext", "id\n1\n", None, InvalidInput, ["unknown table format"]),
]


def test_bad_table_files(seeded, tmp_path):
    """Every case on one repo (cheap), with the stored state checked after each."""
    before = state(seeded)
    for fname, content, key, exc, fragments in BAD_TABLES:
        path = tmp_path / fname
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        for name in ("existing", "fresh-name"):
            with expect(exc, str(path), *fragments):
                seeded.snapshot_data(name, path, key=key)
            assert state(seeded) == before, f"{fname} into {name} changed the stored state"


def test_empty_last_fields_are_not_short_lines(repo, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "gaps.csv"
    path.write_text('id,x,y\n1,a,\n2,b,c\n3,"q\nr",\n')
    repo.snapshot_data("gaps", path, key="id")
    table = repo.read_table("gaps@v1")
    assert table["x"].tolist() == ["a", "b", "q\nr"] and table["y"].isna().tolist() == [True, False, True]


def test_a_column_named_like_a_renamed_repeat_is_kept(repo, tmp_path):  # type: ignore[no-untyped-def]
    for name in ("dots.csv", "dots.csv.gz"):
        path = tmp_path / name
        text = b"id,a,a.1\n1,2,3\n"
        path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
        repo.snapshot_data("dots", path, key="id")
        assert list(repo.read_table("dots")) == ["id", "a", "a.1"]


def _unreadable(tmp_path, name: str):  # type: ignore[no-untyped-def]
    """A non-empty file that cannot be opened for reading: chmod 000 where
    that stops us, else (root) a link to a write-only sysfs attribute, which
    the kernel refuses to open for reading even to root (EACCES)."""
    import os

    path = tmp_path / name
    if os.geteuid() != 0:
        path.write_bytes(b"id\n1\n")
        path.chmod(0)
        return path
    for target in ("/sys/bus/pci/rescan", "/sys/bus/pci/drivers_probe", "/sys/class/zram-control/hot_remove"):
        try:
            open(target, "rb").close()
        except PermissionError:
            path.symlink_to(target)
            return path
        except OSError:
            continue
    pytest.skip("no file here that root cannot open for reading")


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.csv.gz", "t.parquet", "t.jsonl"])
def test_an_unreadable_file_is_one_clear_error(seeded, tmp_path, name):  # type: ignore[no-untyped-def]
    path = _unreadable(tmp_path, name)
    with expect(InvalidInput, name, "cannot read: Permission denied"):
        seeded.snapshot_data("existing", path, key="id")


def test_truncated_parquet_and_gzip(seeded, tmp_path):
    pq_path = tmp_path / "t.parquet"
    pd.DataFrame({"id": range(1000)}).to_parquet(pq_path)
    pq_path.write_bytes(pq_path.read_bytes()[:-100])
    with expect(InvalidInput, str(pq_path), "not a readable parquet file"):
        seeded.snapshot_data("existing", pq_path)
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(b"id,x\n" + b"1,a\n" * 1000)[:-30])
    with expect(InvalidInput, str(gz)):
        seeded.snapshot_data("existing", gz)


def test_bad_dataframes(seeded):
    with expect(InvalidInput, "<DataFrame>", "empty"):
        seeded.snapshot_data("existing", pd.DataFrame({"id": []}))
    with expect(InvalidInput, "key column 'id' is empty at row 2"):
        seeded.snapshot_data("existing", pd.DataFrame({"id": [1, None, 3]}), key="id")
    twice = pd.DataFrame([[1, 2, 3]], columns=["id", "v", "v"])
    with expect(InvalidInput, "<DataFrame>", "column 'v' appears more than once"):
        seeded.snapshot_data("existing", twice, key="id")
    mixed = pd.DataFrame({"id": [1, 2], "v": [1, object()]})
    with expect(InvalidInput, "<DataFrame>", "cannot be stored"):
        seeded.snapshot_data("existing", mixed, key="id")


def test_nonexistent_sources_are_not_found(seeded, tmp_path):
    for missing in [
        tmp_path / "missing.csv",
        tmp_path / "missing-folder",
        tmp_path / "a/b.parquet",
    ]:
        with expect(NotFound, str(missing), "no such file"):
            seeded.snapshot_data("existing", missing)
        with expect(NotFound, str(missing)):
            seeded.snapshot_labels("existing-labels", missing, dataset="existing", key="id", label="label")


def test_unsupported_source_urls(seeded):
    for url in ["http://169.254.169.254/latest/meta-data.csv", "ftp://host/x.csv", "a\x00b.csv"]:
        with expect(InvalidInput):
            seeded.snapshot_data("existing", url)


def test_folder_and_file_mixups(seeded, tmp_path):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    (folder / "f.txt").write_text("x")
    with expect(InvalidInput, "--key applies to tables"):
        seeded.snapshot_data("existing", folder, key="id")
    with expect(InvalidInput, "is a folder"):
        seeded.snapshot_labels("existing-labels", folder, dataset="existing", key="id", label="label")
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    with expect(InvalidInput, "the folder has no files"):
        seeded.snapshot_data("existing", empty)


BAD_NAMES = ["../x", "a/b", "", "a\x00b", "..", ".hidden", "a b", "a;b", "%2e%2e%2f", "x" * 129]


def test_bad_names(seeded):
    df = pd.DataFrame({"id": [1]})
    labels = pd.DataFrame({"id": [1], "l": ["a"]})
    for name in BAD_NAMES:
        with expect(InvalidInput, "invalid name", repr(name)):
            seeded.snapshot_data(name, df)
        with expect(InvalidInput, "invalid name", repr(name)):
            seeded.snapshot_labels(name, labels, dataset="existing", key="id", label="l")


def test_missing_refs_are_not_found(seeded, tmp_path):
    with expect(NotFound, "no artifact named 'nope'"):
        seeded.checkout("nope", tmp_path / "out")
    with expect(NotFound, "existing has no version v9 (latest is v2)"):
        seeded.diff("existing@v1", "existing@v9")
    with expect(NotFound, "existing has no alias 'prod'"):
        seeded.read_table("existing@prod")
    with expect(NotFound, "no artifact id starts with abcdef12"):
        seeded.show("abcdef12")
    with expect(NotFound, "no artifact named 'nope'"):
        seeded.snapshot_labels(
            "new", pd.DataFrame({"id": [1], "l": ["a"]}), dataset="nope@v1", key="id", label="l"
        )
    for ref in ["../x@v1", "a/b", "x@../y", "x\x00"]:
        with expect(InvalidInput):
            seeded.resolve(ref)
    assert not (tmp_path / "out").exists()


def test_name_of_another_kind(seeded):
    with expect(InvalidInput, "'existing-labels' is already a labelset, not a dataset"):
        seeded.snapshot_data("existing-labels", pd.DataFrame({"id": [1]}))
    with expect(InvalidInput, "'existing' is already a dataset, not a labelset"):
        seeded.snapshot_labels(
            "existing",
            pd.DataFrame({"id": [1], "l": ["a"]}),
            dataset="existing",
            key="id",
            label="l",
        )


def test_bad_labels(seeded, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("id,label\n1,p\n2,q\n7,r\n1,s\n")
    with expect(InvalidInput, str(path), "1 (line 2, line 5)"):
        seeded.snapshot_labels("existing-labels", path, dataset="existing", key="id", label="label")
    path.write_text("id,label\n1,p\n2,\n")
    with expect(InvalidInput, str(path), "label column 'label' is empty at line 3"):
        seeded.snapshot_labels("existing-labels", path, dataset="existing", key="id", label="label")
    path.write_text("id,label\n1,p\n9,q\n")
    with expect(InvalidInput, str(path), "9 (line 3)"):
        seeded.snapshot_labels("existing-labels", path, dataset="existing", key="id", label="label")


def test_bad_input_from_s3(seeded, s3_server, backend):
    repo = Repo(backend.model_copy(update={"s3": s3_server.settings()}))
    try:
        fs = s3_filesystem(repo.settings.s3)
        fs.pipe_file("lepton/in/bad.csv", b"id,x\n1,a\n2,b,EXTRA\n")
        fs.pipe_file("lepton/in/tree/ok.txt", b"fine")
        fs.pipe_file("lepton/in/tree/sub\\evil.txt", b"backslash")
        with expect(InvalidInput, "s3://lepton/in/bad.csv", "line 3"):
            repo.snapshot_data("existing", "s3://lepton/in/bad.csv", key="id")
        with expect(NotFound, "s3://lepton/in/missing.csv"):
            repo.snapshot_data("existing", "s3://lepton/in/missing.csv")
        with expect(InvalidInput, "unsafe file name", "sub\\\\evil.txt"):
            repo.snapshot_data("existing", "s3://lepton/in/tree")
    finally:
        repo.close()
    # the fixture checks the state of `seeded`, which shares store and registry
    assert state(repo) == state(seeded)
