"""A head start on a local table file (lepton.data.headstart): its hash
states are the file's, it is used only for the same unchanged file, and it
stops reading when closed."""

from __future__ import annotations

import os
from pathlib import Path

import blake3
import pytest

from lepton.config import Settings
from lepton.data import headstart, resume
from lepton.data.headstart import HeadStart
from lepton.repo import Repo, open_repo

MARK = 64 << 10


@pytest.fixture(autouse=True)
def _small_marks(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(headstart, "MARK", MARK)
    monkeypatch.setattr(headstart, "READ", 4 * MARK)  # several reads, each of several marks
    monkeypatch.setattr(resume, "SPACING", 256 << 10)


def _rows(n: int, start: int = 0) -> str:
    return "".join(f"{1_000_000 + i},{(i * 7919) % 1000 / 7:.6f},{i % 10}\n" for i in range(start, start + n))


def _repo(root: Path) -> Repo:
    settings = {"store": {"url": str(root / "store")}, "registry": {"url": f"sqlite:///{root / 'reg.db'}"}}
    return Repo(Settings.model_validate(settings)).ensure_ready()


def test_states_are_the_hashes_of_the_file_up_to_each_mark(tmp_path):  # type: ignore[no-untyped-def]
    data = os.urandom(5 * MARK + 1234)
    f = tmp_path / "f.bin"
    f.write_bytes(data)
    with HeadStart(str(f)) as head:
        for offset in (0, 1, MARK - 1, MARK, 3 * MARK + 17, 5 * MARK, 5 * MARK + 1233):
            mark, state = head.state_at(offset)  # type: ignore[misc]
            assert mark == offset // MARK * MARK
            assert state.hexdigest() == blake3.blake3(data[:mark]).hexdigest()
            state.update(b"x")  # a copy: the head's own state is untouched
        assert head.state_at(6 * MARK) is None  # past the end
        assert head.state_at(0)[1].hexdigest() == blake3.blake3(b"").hexdigest()  # type: ignore[index]
    assert not head._thread.is_alive()


def test_only_local_regular_files_get_one(tmp_path):  # type: ignore[no-untyped-def]
    f = tmp_path / "t.csv"
    f.write_text("id\n1\n")
    assert HeadStart.begin(str(tmp_path)) is None
    assert HeadStart.begin(str(tmp_path / "missing.csv")) is None
    assert HeadStart.begin("s3://bucket/t.csv") is None
    with headstart.head_start(f"file://{f}") as head:
        assert head is not None and head.holds_for(str(f), head.stat)
        assert not head.holds_for(str(tmp_path / "other.csv"), head.stat)


def test_closing_stops_the_reading(tmp_path):  # type: ignore[no-untyped-def]
    f = tmp_path / "big.bin"
    f.write_bytes(os.urandom(64 * MARK))
    head = HeadStart(str(f))
    head.close()
    assert not head._thread.is_alive()
    assert head.state_at(64 * MARK) is None  # closed: waits for nothing


def test_a_file_changed_after_the_head_start_began_is_read_as_usual(tmp_path):  # type: ignore[no-untyped-def]
    """The head start holds states of the file as it was; the ingest sees
    the file has changed since (size, times) and resumes by reading it: the
    version is the one a snapshot without a head start makes."""
    csv = tmp_path / "t.csv"
    base = "id,x,label\n" + _rows(200_000)
    csv.write_text(base)
    repo, plain = _repo(tmp_path / "a"), _repo(tmp_path / "b")
    repo.snapshot_data("t", csv, key="id")
    plain.snapshot_data("t", csv, key="id")
    with headstart.head_start(str(csv)) as head:
        assert head is not None
        head.state_at(len(base))  # waits until it has read (and hashed) the whole file as it was
        # a label edited near the top, bytes unshifted, and rows appended: stale states would match
        # every checkpoint (the bytes after each mark are as they were) and keep the old label
        edited = base.replace(",5\n1000006,", ",6\n1000006,", 1) + _rows(5_000, start=200_000)
        assert len(edited) - len(base) == len(_rows(5_000, start=200_000))
        csv.write_text(edited)
        assert not head.holds_for(str(csv), _stat(csv))
        got = repo.snapshot_data("t", csv, key="id", head=head)
        assert not head._thread.is_alive()  # closed by the ingest: no use for it
    want = plain.snapshot_data("t", csv, key="id")
    assert got.version.id == want.version.id
    back = repo.read_table("t@v2")
    assert len(back) == 205_000 and back["label"].iloc[5] == 6


def test_the_cli_resumes_an_appended_file_from_its_head_start(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """`lepton data snapshot` begins the head start; the second version is
    resumed from its states (skip_prefix is given it) and equals the file."""
    from typer.testing import CliRunner

    from lepton.cli.main import app

    csv = tmp_path / "t.csv"
    csv.write_text("id,x,label\n" + _rows(400_000))  # ~8 chunks
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ["data", "snapshot", "t", str(csv), "--key", "id"]).exit_code == 0
    with csv.open("a") as f:
        f.write(_rows(3_000, start=400_000))
    heads: list[object] = []
    real = resume.skip_prefix

    def spy(stream, points, recorder, matched_up_to=None, head=None):  # type: ignore[no-untyped-def]
        heads.append(head)
        return real(stream, points, recorder, matched_up_to, head)

    monkeypatch.setattr(resume, "skip_prefix", spy)
    got = runner.invoke(app, ["data", "snapshot", "t", str(csv), "--key", "id"])
    assert got.exit_code == 0, got.output
    assert len(heads) == 1 and isinstance(heads[0], HeadStart)
    with open_repo(tmp_path) as repo:
        assert len(repo.read_table("t@v2")) == 403_000


def _stat(path: Path) -> tuple[int, int, int, int]:
    s = path.stat()
    return (s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino)
