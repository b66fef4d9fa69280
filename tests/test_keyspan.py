"""Integer key ranges kept with table versions (lepton.data.keyspan): rows
appended with new, larger ids need none of the earlier chunks' key
sidecars for the duplicate check, and a key inside the earlier range is
still checked against all of them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import text as sql

from lepton.config import Settings
from lepton.data import keyspan, sidecars
from lepton.errors import InvalidInput
from lepton.manifest import Chunk
from lepton.repo import Repo

ROWS = 300_000  # ~6 MB: several chunks, so the version keeps a resume record


pytestmark = pytest.mark.usefixtures("half_size_chunks")  # several chunks from tables of a few MB


def _rows(ids: range) -> str:
    return "".join(f"{i},{(i * 7919) % 1000 / 7:.6f},{i % 10}\n" for i in ids)


def _repo(root: Path) -> Repo:
    settings = {"store": {"url": str(root / "store")}, "registry": {"url": f"sqlite:///{root / 'reg.db'}"}}
    return Repo(Settings.model_validate(settings)).ensure_ready()


@pytest.fixture
def sidecar_reads(monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    """Key sidecars read back from the store by the ingest."""
    seen: list[str] = []
    real = sidecars.load_keys

    def spy(store, chunk):  # type: ignore[no-untyped-def]
        seen.append(chunk.keys)
        return real(store, chunk)

    monkeypatch.setattr(sidecars, "load_keys", spy)
    return seen


def _span(snap) -> list[int]:  # type: ignore[no-untyped-def]
    """The version's key range, from its chunks' (which are in key order here)."""
    spans = snap.version.meta["resume"]["spans"]
    assert len(spans) == len(snap.manifest.chunks)
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))
    return [spans[0][0], spans[-1][1]]


def test_appended_larger_ids_read_no_earlier_key_sidecar(tmp_path, sidecar_reads):  # type: ignore[no-untyped-def]
    csv, repo = tmp_path / "t.csv", _repo(tmp_path / "r")
    csv.write_text("id,x,label\n" + _rows(range(1000, 1000 + ROWS)))
    first = repo.snapshot_data("t", csv, key="id")
    assert _span(first) == [1000, 1000 + ROWS - 1]
    with csv.open("a") as f:
        f.write(_rows(range(5_000_000, 5_020_000)))
    sidecar_reads.clear()
    second = repo.snapshot_data("t", csv, key="id")
    assert sidecar_reads == []
    assert _span(second) == [1000, 5_019_999]
    assert second.manifest.rows == ROWS + 20_000
    pd.testing.assert_frame_equal(repo.read_table("t@v2"), pd.read_csv(csv), check_dtype=False)


def test_chunks_edited_in_place_are_not_read_back_for_appended_larger_ids(tmp_path, sidecar_reads):  # type: ignore[no-untyped-def]
    """A chunk edited in place has a new identity but its own key range:
    new ids above every range need no sidecar of it either."""
    csv, repo = tmp_path / "t.csv", _repo(tmp_path / "r")
    lines = _rows(range(1000, 1000 + ROWS)).splitlines(keepends=True)
    csv.write_text("id,x,label\n" + "".join(lines))
    first = repo.snapshot_data("t", csv, key="id")
    for at in range(7, ROWS, ROWS // 20):  # every chunk edited, in place
        i, x, label = lines[at].rstrip("\n").split(",")
        lines[at] = f"{i},{x},{(int(label) + 1) % 10}\n"
    csv.write_text("id,x,label\n" + "".join(lines) + _rows(range(5_000_000, 5_020_000)))
    sidecar_reads.clear()
    second = repo.snapshot_data("t", csv, key="id")
    assert sidecar_reads == []
    assert sum(c.base is not None for c in second.manifest.chunks) >= len(first.manifest.chunks) - 1
    assert _span(second) == [1000, 5_019_999]
    pd.testing.assert_frame_equal(repo.read_table("t@v2"), pd.read_csv(csv), check_dtype=False)


@pytest.mark.parametrize("where", ["appended", "inserted"])
def test_a_repeated_key_inside_the_earlier_range_is_still_found(tmp_path, sidecar_reads, where):  # type: ignore[no-untyped-def]
    """The new chunk's range meets the previous version's: every earlier
    sidecar is read, and the key repeated from a chunk taken as it is (its
    bytes unchanged) is reported with both lines."""
    csv, repo = tmp_path / "t.csv", _repo(tmp_path / "r")
    text = "id,x,label\n" + _rows(range(1000, 1000 + ROWS))
    csv.write_text(text)
    first = repo.snapshot_data("t", csv, key="id")
    if where == "appended":
        csv.write_text(text + _rows(range(5_000_000, 5_000_010)) + "1017,0.5,1\n")
    else:
        at = text.index("\n250000,")  # a row inserted in the middle (with a key from the top)
        csv.write_text(text[: at + 1] + "1017,0.5,1\n" + text[at + 1 :])
    sidecar_reads.clear()
    with pytest.raises(InvalidInput, match=r"duplicate value\(s\): 1017"):
        repo.snapshot_data("t", csv, key="id")
    assert len(sidecar_reads) >= len(first.manifest.chunks) - 2  # the earlier chunks' keys, read after all
    assert [v.version for v in repo.log("t")] == [1]


def test_new_keys_inside_the_range_without_repeats_are_taken(tmp_path):  # type: ignore[no-untyped-def]
    csv, repo = tmp_path / "t.csv", _repo(tmp_path / "r")
    text = "id,x,label\n" + _rows(range(0, 2 * ROWS, 2))  # even ids
    csv.write_text(text)
    repo.snapshot_data("t", csv, key="id")
    csv.write_text(text + _rows(range(1, 2001, 2)))  # odd ids, inside the range
    second = repo.snapshot_data("t", csv, key="id")
    spans = second.version.meta["resume"]["spans"]
    assert min(s[0] for s in spans) == 0 and max(s[1] for s in spans) == 2 * ROWS - 2
    assert second.manifest.rows == ROWS + 1000


def test_a_version_without_a_span_checks_as_before(tmp_path, sidecar_reads):  # type: ignore[no-untyped-def]
    """A previous version whose record keeps no span (made before spans, or
    with text keys): the earlier sidecars are read and a repeat is found."""
    csv, repo = tmp_path / "t.csv", _repo(tmp_path / "r")
    text = "id,x,label\n" + _rows(range(1000, 1000 + ROWS))
    csv.write_text(text)
    first = repo.snapshot_data("t", csv, key="id")
    meta = dict(first.version.meta)
    del meta["resume"]["spans"]
    with repo.engine.begin() as conn:
        update = sql("UPDATE artifacts SET meta = :m WHERE id = :i")
        conn.execute(update, {"m": json.dumps(meta), "i": first.version.id})
    assert "spans" not in repo.registry.latest("t").meta["resume"]
    csv.write_text(text + _rows(range(5_000_000, 5_000_010)))
    sidecar_reads.clear()
    second = repo.snapshot_data("t", csv, key="id")
    assert len(sidecar_reads) >= len(first.manifest.chunks) - 1
    assert "spans" not in second.version.meta["resume"]  # the kept chunks' ranges are unknown


def test_spans():  # type: ignore[no-untyped-def]
    assert keyspan.of_column(pa.chunked_array([[5, -3], [9]], pa.int64())) == (-3, 9)
    assert keyspan.of_column(pa.array([2**64 - 1, 0], pa.uint64())) == (0, 2**64 - 1)
    assert keyspan.of_column(pa.array(["a", "b"])) is None
    assert keyspan.of_column(pa.array([], pa.int64())) is None
    assert keyspan.of_column(pa.array([1, 2, 3], pa.int64()).slice(1)) == (2, 3)
    assert keyspan.union([(1, 5), (7, 9)]) == (1, 9)
    assert keyspan.union([(1, 5), None]) is None and keyspan.union([]) is None
    assert keyspan.disjoint((1, 5), (6, 9)) and not keyspan.disjoint((1, 6), (6, 9))
    chunks = [Chunk(id="blake3:" + "a" * 64, rows=1), Chunk(id="blake3:" + "b" * 64, rows=1)]
    record = {"key": "id", "spans": [[1, 2], [3, 9]]}
    assert keyspan.from_record(record, "id", chunks) == {chunks[0].ident: (1, 2), chunks[1].ident: (3, 9)}
    bad_spans = ([[2, 1], [3, 9]], [[1, True], [3, 9]], [[1, 2]], "x", [[1, 2], [3]])
    for bad in [{"key": "id", "spans": b} for b in bad_spans] + [
        {"key": "x", "spans": [[1, 2], [3, 9]]},
        None,
    ]:
        assert keyspan.from_record(bad, "id", chunks) is None
    assert keyspan.from_record(record, None, chunks) is None
