"""Table versions by content: -0.0 kept apart from 0.0 on every path, and
the same rows one id however they were read."""

from __future__ import annotations

import gzip
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lepton.data.chunks import row_hashes


def _sign_bits(values: pd.Series) -> list[bool]:
    return np.signbit(values.to_numpy(dtype=np.float64)).tolist()


# ---- -0.0 and 0.0 ----------------------------------------------------------------
def test_negative_zero_from_a_frame_is_a_new_version(repo):  # type: ignore[no-untyped-def]
    first = repo.snapshot_data("z", pd.DataFrame({"id": [1, 2], "x": [0.0, 1.0]}), key="id")
    second = repo.snapshot_data("z", pd.DataFrame({"id": [1, 2], "x": [-0.0, 1.0]}), key="id")
    assert second.created and second.version.id != first.version.id
    assert _sign_bits(repo.read_table("z@v2")["x"]) == [True, False]
    assert _sign_bits(repo.read_table("z@v1")["x"]) == [False, False]
    d = repo.diff("z@v1", "z@v2")
    assert (d.added, d.removed, d.changed) == (0, 0, 1)
    back = repo.snapshot_data("z", pd.DataFrame({"id": [1, 2], "x": [0.0, 1.0]}), key="id")
    assert back.created and _sign_bits(repo.read_table("z@v3")["x"]) == [False, False]


def test_negative_zero_from_parquet_is_a_new_version(repo, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "z.parquet"
    pq.write_table(pa.table({"id": [1, 2], "x": [0.0, 1.0]}), path)
    repo.snapshot_data("zp", path, key="id")
    pq.write_table(pa.table({"id": [1, 2], "x": [-0.0, 1.0]}), path)
    assert repo.status("zp", path).changed
    second = repo.snapshot_data("zp", path, key="id")
    assert second.created
    assert _sign_bits(repo.read_table("zp@v2")["x"]) == [True, False]


def test_negative_zero_in_a_csv_shows_in_the_diff(repo, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "nz.csv"
    path.write_text("id,x\n1,0.0\n2,1.5\n")
    repo.snapshot_data("nz", path, key="id")
    path.write_text("id,x\n1,-0.0\n2,1.5\n")
    assert repo.snapshot_data("nz", path, key="id").created
    d = repo.diff("nz@v1", "nz@v2")
    assert (d.added, d.removed, d.changed) == (0, 0, 1)
    assert d.samples["changed"][0]["key"] == 1


def test_keyless_diff_tells_negative_zero_apart(repo):  # type: ignore[no-untyped-def]
    repo.snapshot_data("k", pd.DataFrame({"x": [0.0, 2.0, np.nan]}))
    repo.snapshot_data("k", pd.DataFrame({"x": [-0.0, 2.0, np.nan]}))
    d = repo.diff("k@v1", "k@v2")
    assert (d.added, d.removed) == (1, 1)


def test_exact_row_hashes_tell_zeros_apart_and_not_nans() -> None:
    other_nan = np.array([0x7FF8000000000001], dtype=np.uint64).view(np.float64)[0]
    frame = pd.DataFrame({"x": [0.0, -0.0, np.nan, other_nan], "t": ["a"] * 4})
    h = row_hashes(frame, None, exact=True)
    assert h[0] != h[1] and h[2] == h[3]
    loose = row_hashes(frame, None)  # (chunk boundaries: as they always were)
    assert loose[0] == loose[1]


# ---- the same rows, read another way ---------------------------------------------
def test_the_same_rows_read_another_way_are_no_new_version(repo, tmp_path):  # type: ignore[no-untyped-def]
    """The streaming ingest keeps key and line hashes beside each chunk, the
    whole-file reader does not; a gzipped copy, CRLF line ends or a
    DataFrame of the same rows are still the version already there."""
    plain = tmp_path / "s1.csv"
    plain.write_text("id,v\n1,a\n2,b\n")
    first = repo.snapshot_data("st", plain, key="id")
    gz = tmp_path / "s1.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    crlf = tmp_path / "s2.csv"
    crlf.write_bytes(b"id,v\r\n1,a\r\n2,b\r\n")
    frame = pd.DataFrame({"id": [1, 2], "v": ["a", "b"]})
    for source in (gz, crlf, frame, plain):
        again = repo.snapshot_data("st", source, key="id")
        assert not again.created and again.version.id == first.version.id, source
    assert [v.version for v in repo.log("st")] == [1]
    changed = repo.snapshot_data("st", pd.DataFrame({"id": [1, 2], "v": ["a", "c"]}), key="id")
    assert changed.created and repo.read_table("st@v2")["v"].tolist() == ["a", "c"]
    back = repo.snapshot_data("st", crlf, key="id")  # v1's rows again: a new version over v2
    assert back.created and repo.read_table("st@v3")["v"].tolist() == ["a", "b"]


def test_the_same_labels_read_another_way_are_no_new_version(repo, tmp_path):  # type: ignore[no-untyped-def]
    repo.snapshot_data("ds", pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5]}), key="id")
    path = tmp_path / "l.csv"
    path.write_text("id,label\n1,a\n3,b\n")
    first = repo.snapshot_labels("l", path, dataset="ds", key="id", label="label")
    frame = pd.DataFrame({"id": [1, 3], "label": ["a", "b"]})
    again = repo.snapshot_labels("l", frame, dataset="ds", key="id", label="label")
    assert not again.created and again.version.id == first.version.id


def test_status_of_a_file_found_to_hold_the_latest_rows_is_unchanged(repo, tmp_path):  # type: ignore[no-untyped-def]
    mark = uuid.uuid4().hex  # rows of this run only: the state cache may outlive tmp_path (s3 stores)
    plain = tmp_path / "s1.csv"
    plain.write_text(f"id,v\n1,{mark}\n2,b\n")
    repo.snapshot_data("st", plain, key="id")
    crlf = tmp_path / "s2.csv"
    crlf.write_bytes(f"id,v\r\n1,{mark}\r\n2,b\r\n".encode())
    assert repo.status("st", crlf).changed  # another file: not known to hold v1's rows yet
    assert not repo.snapshot_data("st", crlf, key="id").created
    assert repo.status("st", crlf).changed is False  # the snapshot found it holds st@v1
    assert repo.status("st", plain).changed is False
    crlf.write_bytes(f"id,v\r\n1,{mark}\r\n2,c\r\n".encode())
    assert repo.status("st", crlf).changed
