"""Resuming a table file's ingest after the prefix it shares with the
previous version (lepton.data.resume): the same versions, chunk for chunk,
as the ingest that reads everything, whatever was done to the file; and
only the bytes after the matched checkpoint cut and parsed."""

from __future__ import annotations

import random
from pathlib import Path

import blake3
import pandas as pd
import pytest

from lepton.config import Settings
from lepton.data import headstart, resume
from lepton.repo import Repo

ROWS = 250_000  # ~8.5 MB: about ten chunks


def _line(i: int, rnd: random.Random) -> str:
    return f"{1_000_000 + i},{rnd.random():.9f},{rnd.random():.9f},{rnd.randint(0, 9)}\n"


def _table(n: int, seed: int, start: int = 0) -> list[str]:
    rnd = random.Random(seed)
    return [_line(i, rnd) for i in range(start, start + n)]


def _write(path: Path, lines: list[str], header: str = "id,a,b,label\n") -> None:
    path.write_text(header + "".join(lines))


def _repo(root: Path) -> Repo:
    settings = {"store": {"url": str(root / "store")}, "registry": {"url": f"sqlite:///{root / 'reg.db'}"}}
    return Repo(Settings.model_validate(settings)).ensure_ready()


@pytest.fixture(autouse=True)
def _small_spacing(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(resume, "SPACING", 512 << 10)  # a checkpoint every ~2 chunks


@pytest.fixture
def skipped(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """Chunks each snapshot took from its previous version without reading them."""
    got: list[int] = []
    real = resume.skip_prefix

    def spy(*args):  # type: ignore[no-untyped-def]
        got.append(real(*args))
        return got[-1]

    monkeypatch.setattr(resume, "skip_prefix", spy)
    return got


def _edits(rnd: random.Random, lines: list[str], step: int) -> tuple[list[str], str]:
    """One random change to the file: appended rows, rows edited, inserted or
    deleted anywhere, the end cut off, or nothing."""
    what = rnd.choice(["append", "edit", "insert", "delete", "truncate", "same"])
    out = list(lines)
    at = rnd.randrange(len(out))
    if what == "append":
        out += _table(rnd.randint(1, 4000), 100 + step, start=10 * ROWS + step * 5000)
    elif what == "edit":
        for i in rnd.sample(range(len(out)), rnd.randint(1, 5)):
            out[i] = out[i].replace(",", ",9", 1).replace(",9", ",", 1)[:-2] + f"{rnd.randint(0, 9)}\n"
    elif what == "insert":
        out[at:at] = _table(rnd.randint(1, 50), 200 + step, start=20 * ROWS + step * 100)
    elif what == "delete":
        del out[at : at + rnd.randint(1, 50)]
    elif what == "truncate":
        out = out[: max(1, at)]
    return out, what


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_resumed_versions_equal_full_reads_whatever_the_change(tmp_path, monkeypatch, seed):  # type: ignore[no-untyped-def]
    """The same sequence of files snapshotted three times: resuming by
    reading the prefix, resuming from a head start's hash states (as the
    CLI does), and with resuming turned off: every version has the same
    manifest id, so the same chunks; the table reads back as the file."""
    monkeypatch.setattr(headstart, "MARK", 64 << 10)  # several marks per checkpoint: states and residues
    monkeypatch.setattr(headstart, "READ", 256 << 10)
    rnd = random.Random(seed)
    lines = _table(ROWS, seed)
    history = []
    for step in range(6):
        lines, what = _edits(rnd, lines, step) if step else (lines, "first")
        history.append((list(lines), what))
    ids = {}
    for mode in ("resume", "head", "full"):
        if mode == "full":
            monkeypatch.setattr(resume, "points_of", lambda *a: [])
        repo, csv = _repo(tmp_path / mode), tmp_path / f"{mode}.csv"
        ids[mode] = []
        for lines, what in history:
            _write(csv, lines)
            with headstart.head_start(str(csv) if mode == "head" else "s3://none/x") as head:
                assert (head is not None) == (mode == "head")
                snap = repo.snapshot_data("t", csv, key="id", head=head)
            ids[mode].append((what, snap.version.id))
            back = repo.read_table(snap.version.ref)
            pd.testing.assert_frame_equal(back, pd.read_csv(csv), check_dtype=False)
            assert snap.version.meta["source_key"] == "blake3:" + blake3.blake3(csv.read_bytes()).hexdigest()
        repo.close()
    assert ids["resume"] == ids["head"] == ids["full"]


def test_an_appended_file_parses_only_what_follows_the_last_checkpoint(tmp_path, parsed, skipped):  # type: ignore[no-untyped-def]
    repo, csv = _repo(tmp_path / "r"), tmp_path / "t.csv"
    lines = _table(ROWS, 1)
    _write(csv, lines)
    first = repo.snapshot_data("t", csv, key="id")
    points = first.version.meta["resume"]["points"]
    assert len(points) >= 3 and points[-1][1] == len(first.manifest.chunks) - 1  # the last chunk's start
    parsed.clear()
    added = _table(2000, 9, start=ROWS)
    _write(csv, lines + added)
    second = repo.snapshot_data("t", csv, key="id")
    assert skipped == [len(first.manifest.chunks) - 1]  # skip_prefix runs only with a record
    assert second.manifest.chunks[: len(first.manifest.chunks) - 1] == first.manifest.chunks[:-1]
    last_start = points[-1][0]
    assert sum(parsed) == csv.stat().st_size - last_start  # the old last chunk and the new rows only
    assert second.manifest.rows == ROWS + 2000


def test_an_edit_resumes_from_the_checkpoint_before_it(tmp_path, skipped):  # type: ignore[no-untyped-def]
    repo, csv = _repo(tmp_path / "r"), tmp_path / "t.csv"
    lines = _table(ROWS, 4)
    _write(csv, lines)
    first = repo.snapshot_data("t", csv, key="id")
    points = first.version.meta["resume"]["points"]
    at = int(len(lines) * 0.7)
    lines[at] = lines[at][:-2] + "7\n" if not lines[at].endswith("7\n") else lines[at][:-2] + "3\n"
    _write(csv, lines)
    offset = len("id,a,b,label\n") + sum(len(x) for x in lines[:at])
    before = [p for p in points if p[0] <= offset]
    second = repo.snapshot_data("t", csv, key="id")
    assert skipped[-1] == before[-1][1] > 0
    assert second.manifest.rows == ROWS
    assert repo.read_table("t@v2")["label"].iloc[at] == int(lines[at].rsplit(",", 1)[1])


def test_a_changed_header_or_key_reads_everything(tmp_path, skipped):  # type: ignore[no-untyped-def]
    repo, csv = _repo(tmp_path / "r"), tmp_path / "t.csv"
    lines = _table(ROWS, 5)
    _write(csv, lines)
    repo.snapshot_data("t", csv, key="id")
    _write(csv, lines, header='"id",a,b,label\n')  # the same names, other bytes
    second = repo.snapshot_data("t", csv, key="id")
    assert skipped == [0] and not second.created  # the header is in every checkpoint's prefix
    skipped.clear()
    _write(csv, lines, header="id,a,b,target\n")
    third = repo.snapshot_data("t", csv, key="id")
    assert skipped == []  # other column names: no checkpoint can match (each holds the header)
    assert [c.name for c in third.manifest.columns][-1] == "target"
    skipped.clear()
    repo.snapshot_data("t", csv, key=None)  # another key: the record does not hold
    assert skipped == []


def test_a_damaged_record_is_ignored():  # type: ignore[no-untyped-def]
    bad_ones = [None, "x", {"format": 99}, {"format": 1, "points": [["a", 1]]}, {"format": 1, "points": 5}]
    for bad in bad_ones:
        assert resume.points_of(bad, "c", ",", "id", 10) == []
    points = [[100, 3, "ab"], [50, 1, "cd"], [900, 40, "ef"]]
    record = {"format": 1, "cut": "c", "sep": ",", "key": "id", "points": points}
    got = resume.points_of(record, "c", ",", "id", 10)
    assert [(p.offset, p.chunks) for p in got] == [(50, 1), (100, 3)]  # ordered; beyond the chunks: dropped
    points.append([120, 2, "gh"])  # fewer chunks further on: not a sound record's
    assert [p.offset for p in resume.points_of(record, "c", ",", "id", 10)] == [50, 100]
    assert resume.points_of(record, "c", ",", "other", 10) == []  # another key
    assert resume.points_of(record, "d", ",", "id", 10) == []  # another cutter


def test_labels_resume_too(tmp_path, skipped):  # type: ignore[no-untyped-def]
    repo = _repo(tmp_path / "r")
    data, labels = tmp_path / "d.csv", tmp_path / "l.csv"
    lines = _table(ROWS, 6)
    _write(data, lines)
    repo.snapshot_data("d", data, key="id")
    rows = [f"{1_000_000 + i},{i % 7}\n" for i in range(ROWS)]
    labels.write_text("id,y\n" + "".join(rows[: ROWS - 5000]))
    first = repo.snapshot_labels("y", labels, dataset="d", key="id", label="y")
    labels.write_text("id,y\n" + "".join(rows))
    second = repo.snapshot_labels("y", labels, dataset="d", key="id", label="y")
    assert skipped[-1] == len(first.manifest.chunks) - 1 > 0
    assert second.manifest.rows == ROWS
    assert second.manifest.classes == {str(k): sum(1 for i in range(ROWS) if i % 7 == k) for k in range(7)}


def test_a_file_on_s3_resumes_too(tmp_path, s3_server, skipped, parsed):  # type: ignore[no-untyped-def]
    """s3:// sources are read through s3fs, which seeks back to the checkpoint."""
    import s3fs

    settings = {
        "store": {"url": str(tmp_path / "store")},
        "registry": {"url": f"sqlite:///{tmp_path / 'reg.db'}"},
        "s3": s3_server.settings().model_dump(),
    }
    repo = Repo(Settings.model_validate(settings)).ensure_ready()
    fs = s3fs.S3FileSystem(
        key=s3_server.settings().key,
        secret=s3_server.settings().secret,
        client_kwargs={"endpoint_url": s3_server.endpoint},
    )
    lines = _table(ROWS, 7)
    fs.pipe_file("lepton/in/t.csv", ("id,a,b,label\n" + "".join(lines)).encode())
    first = repo.snapshot_data("t", "s3://lepton/in/t.csv", key="id")
    parsed.clear()
    more = lines + _table(3000, 8, start=ROWS)
    fs.pipe_file("lepton/in/t.csv", ("id,a,b,label\n" + "".join(more)).encode())
    second = repo.snapshot_data("t", "s3://lepton/in/t.csv", key="id")
    assert skipped == [len(first.manifest.chunks) - 1]
    assert sum(parsed) < 2 * (4 << 20)  # the old last chunk and the new rows, not the file
    local = tmp_path / "t.csv"
    _write(local, more)
    pd.testing.assert_frame_equal(repo.read_table(second.version.ref), pd.read_csv(local), check_dtype=False)
