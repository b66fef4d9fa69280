"""A head start on a local table file (lepton.data.headstart): its hash
states are the file's, it is used only for the same unchanged file, and it
stops reading when closed."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

import blake3
import pandas as pd
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


@pytest.mark.parametrize("entry", ["console script", "typer app"])
def test_the_cli_resumes_an_appended_file_from_its_head_start(tmp_path, monkeypatch, entry):  # type: ignore[no-untyped-def]
    """The console script (lepton.cli.launch) begins the head start before
    the CLI is imported and hands it to `lepton data snapshot`, which uses
    it rather than beginning another; the command run another way begins
    its own. The second version is resumed from its states (the checkpoints
    are matched with it) and equals the file."""
    from typer.testing import CliRunner

    from lepton.cli import launch
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
    begun: list[HeadStart] = []
    switches: list[float] = []
    real, real_init = resume.match_with_head, HeadStart.__init__

    def spy(points, head, matched_up_to=None):  # type: ignore[no-untyped-def]
        heads.append(head)
        switches.append(sys.getswitchinterval())
        return real(points, head, matched_up_to)

    def init(self, path):  # type: ignore[no-untyped-def]
        begun.append(self)
        real_init(self, path)

    monkeypatch.setattr(resume, "match_with_head", spy)
    monkeypatch.setattr(HeadStart, "__init__", init)
    argv = ["data", "snapshot", "t", "--key", "id", str(csv)]  # options anywhere
    before = sys.getswitchinterval()
    if entry == "console script":
        assert launch.main(argv) == 0
        assert switches == [launch.HEAD_SWITCH]  # the GIL handed over sooner while the head start reads
        assert sys.getswitchinterval() == before  # and as it was after
    else:
        got = runner.invoke(app, argv)
        assert got.exit_code == 0, got.output
    assert len(begun) == 1 and heads == begun  # one head start, the one the checkpoints were matched with
    assert not begun[0]._thread.is_alive()
    with open_repo(tmp_path) as repo:
        assert len(repo.read_table("t@v2")) == 403_000


@pytest.mark.parametrize(
    ("argv", "source"),
    [
        (["data", "snapshot", "t", "t.csv"], "t.csv"),
        (["data", "snapshot", "--key", "id", "t", "in/t.csv", "-m", "note"], "in/t.csv"),
        (["labels", "snapshot", "l", "--dataset", "t@v1", "l.csv", "--key", "id", "--label", "y"], "l.csv"),
        (["data", "snapshot", "t", "--", "-odd.csv"], "-odd.csv"),
        (["data", "snapshot", "t"], None),
        (["data", "status", "t", "t.csv"], None),
        (["data", "log", "snapshot", "t.csv"], None),
        (["--help"], None),
    ],
)
def test_the_console_script_finds_the_snapshot_source(argv, source):  # type: ignore[no-untyped-def]
    from lepton.cli.launch import snapshot_source

    assert snapshot_source(argv) == source


def _stat(path: Path) -> tuple[int, int, int, int]:
    s = path.stat()
    return (s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino)


def test_an_appended_file_is_cut_ahead_and_each_new_chunk_parsed_once(tmp_path, parsed):  # type: ignore[no-untyped-def]
    """With a head start the tail after the last checkpoint is cut and parsed
    while the prefix is checked, and taken as it is when the prefix matches:
    nothing parsed twice, every row counted once, the version and its
    resume record those of a snapshot without a head start."""
    csv = tmp_path / "t.csv"
    csv.write_text("id,x,label\n" + _rows(200_000))
    repo, plain = _repo(tmp_path / "r"), _repo(tmp_path / "p")
    first = repo.snapshot_data("t", csv, key="id")
    plain.snapshot_data("t", csv, key="id")
    last_start = first.version.meta["resume"]["points"][-1][0]
    with csv.open("a") as f:
        f.write(_rows(20_000, start=200_000))
    parsed.clear()
    rows: list[int] = []
    with headstart.head_start(str(csv)) as head:
        got = repo.snapshot_data("t", csv, key="id", head=head, progress=rows.append)
    assert sum(parsed) == csv.stat().st_size - last_start  # the old last chunk and the new rows, once
    assert sum(rows) == 220_000
    want = plain.snapshot_data("t", csv, key="id")
    assert got.manifest.chunks == want.manifest.chunks
    assert got.version.meta["resume"] == want.version.meta["resume"]  # the tail hashed into the record too
    pd.testing.assert_frame_equal(repo.read_table("t@v2"), pd.read_csv(csv), check_dtype=False)


@pytest.mark.parametrize("edit", ["value", "row"])
def test_a_prefix_that_differs_drops_what_was_cut_ahead_but_what_it_meets_again(tmp_path, parsed, edit):  # type: ignore[no-untyped-def]
    """Rows appended, and near the top a value edited (same length) or a row
    inserted (as long as the row before the last checkpoint, so that what
    is cut ahead from that offset starts one row early). The cut from the
    top takes a chunk cut ahead where it meets it again (parsed once); one
    it does not meet is not stored. The version is the one a snapshot
    without a head start makes; the store holds no object no version names."""
    from lepton.gc import collect

    csv = tmp_path / "t.csv"
    base = "id,x,label\n" + _rows(200_000)
    csv.write_text(base)
    repo, plain = _repo(tmp_path / "r"), _repo(tmp_path / "p")
    last_start = repo.snapshot_data("t", csv, key="id").version.meta["resume"]["points"][-1][0]
    plain.snapshot_data("t", csv, key="id")
    if edit == "value":
        edited = base.replace(",5\n", ",6\n", 1)
    else:
        before = base[: last_start - 1].rsplit("\n", 1)[1] + "\n"  # the row that ends at the checkpoint
        row = "999999,1." + "0" * (len(before) - len("999999,1.,1\n")) + ",1\n"
        assert len(row) == len(before)
        edited = base.replace("\n", "\n" + row, 1)
    csv.write_text(edited + _rows(20_000, start=200_000))
    parsed.clear()
    want = plain.snapshot_data("t", csv, key="id")
    parsed_plain = Counter(parsed)
    parsed.clear()
    with headstart.head_start(str(csv)) as head:
        got = repo.snapshot_data("t", csv, key="id", head=head)
    extra = Counter(parsed) - parsed_plain
    assert Counter(parsed) - extra == parsed_plain  # what a plain snapshot parses, each once,
    if edit == "value":
        assert not extra  # the chunks cut ahead were met again
    else:
        assert 0 < sum(extra.elements()) <= csv.stat().st_size - last_start  # cut ahead for nothing
    assert got.manifest.chunks == want.manifest.chunks
    assert collect(repo, dry_run=True, grace_seconds=0).removed == []
    pd.testing.assert_frame_equal(repo.read_table("t@v2"), pd.read_csv(csv), check_dtype=False)


def test_a_fifo_gets_no_head_start_and_is_not_read(tmp_path):  # type: ignore[no-untyped-def]
    """A named pipe with no writer is neither waited on nor read from."""
    fifo = tmp_path / "t.csv"
    os.mkfifo(fifo)
    assert HeadStart.begin(str(fifo)) is None  # returns at once (a blocking open would hang here)


def test_the_tail_cut_ahead_is_hashed_for_the_record_only_as_it_was_cut():  # type: ignore[no-untyped-def]
    """What was cut ahead is read again for the resume record's hashes; bytes
    that changed since (a file rewritten during the snapshot) make the
    ingest fall back instead of keeping a record that disagrees with the
    chunks stored."""
    import io

    from lepton.data.cutahead import Ahead
    from lepton.data.linecuts import Fallback

    ahead = Ahead(offset=3)
    for piece in (b"1,a\n2,b\n", b"3,c\n"):
        ahead.seen(piece)
    fed: list[bytes] = []

    class Fed(resume.Recorder):
        def piece(self, data):  # type: ignore[no-untyped-def]
            fed.append(data)

    ahead.replay(io.BytesIO(b"id\n1,a\n2,b\n3,c\n"), Fed())
    assert fed == [b"1,a\n2,b\n", b"3,c\n"]
    for changed in (b"id\n1,a\n2,x\n3,c\n", b"id\n1,a\n2,b\n3,"):  # an edit; a truncation
        with pytest.raises(Fallback, match="changed while it was read"):
            ahead.replay(io.BytesIO(changed), Fed())


def _settled(path: Path) -> None:
    """The file's times 5 s in the past: written long before any head start
    on it (outside statecache.racy_window)."""
    then = path.stat().st_mtime_ns - 5_000_000_000
    os.utime(path, ns=(then, then))


@pytest.mark.parametrize("case", ["first version", "edit near the top", "append"])
def test_the_recorder_adopts_what_the_head_start_hashed(tmp_path, monkeypatch, case):  # type: ignore[no-untyped-def]
    """The ingest does not hash again what the head start hashed: the
    recorder takes its states (checkpoints and the last chunk's start from
    the mark before them). Version, resume record and source key are those
    of a snapshot without a head start."""
    csv = tmp_path / "t.csv"
    base = "id,x,label\n" + _rows(200_000)
    csv.write_text(base)
    repo, plain = _repo(tmp_path / "r"), _repo(tmp_path / "p")
    if case != "first version":
        want_last = repo.snapshot_data("t", csv, key="id").version.meta["resume"]["points"][-1][0]
        plain.snapshot_data("t", csv, key="id")
        text = base.replace(",5\n", ",6\n", 1) if case == "edit near the top" else base
        csv.write_text(text + _rows(20_000, start=200_000))
    _settled(csv)
    reaches: list[int] = []
    hashed: list[int] = []
    adopt, piece = resume.Recorder.adopt, resume.Recorder.piece

    def spy_adopt(self, head):  # type: ignore[no-untyped-def]
        adopt(self, head)
        reaches.append(self._reach)

    def spy_piece(self, data):  # type: ignore[no-untyped-def]
        if self.hasher is not None:
            hashed.append(len(data))  # (the one crossing the reach: hashed from there)
        piece(self, data)

    monkeypatch.setattr(resume.Recorder, "adopt", spy_adopt)
    monkeypatch.setattr(resume.Recorder, "piece", spy_piece)
    size = csv.stat().st_size
    with headstart.head_start(str(csv)) as head:
        assert head is not None
        head.state_at(size)  # waits until it has read the whole file: its reach, the last mark
        got = repo.snapshot_data("t", csv, key="id", head=head)
    assert reaches == [size // MARK * MARK]
    assert sum(hashed) < size - reaches[0] + 2 * (1 << 20)  # the tail, and the chunk across the reach
    if case == "append":  # resumed at the last checkpoint; what was cut ahead is not hashed again
        assert sum(hashed) < size - want_last
    monkeypatch.setattr(resume.Recorder, "piece", piece)
    want = plain.snapshot_data("t", csv, key="id")
    assert got.manifest.chunks == want.manifest.chunks
    assert got.version.meta["resume"] == want.version.meta["resume"]
    assert got.version.meta["source"] == want.version.meta["source"]
    pd.testing.assert_frame_equal(repo.read_table("t@latest"), pd.read_csv(csv), check_dtype=False)


def test_a_file_written_just_before_its_head_start_is_hashed_by_the_ingest(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Within the file times' granularity of its last write a later write
    might leave them as they were: the head start's states are then not
    taken for the ingest's bytes (they are still used to match checkpoints)."""
    csv = tmp_path / "t.csv"
    csv.write_text("id,x,label\n" + _rows(200_000))
    adopted: list[object] = []
    monkeypatch.setattr(resume.Recorder, "adopt", lambda self, head: adopted.append(head))
    repo = _repo(tmp_path / "r")
    now = time.time_ns()
    os.utime(csv, ns=(now, now))
    with headstart.head_start(str(csv)) as head:
        assert head is not None and head.opened_ns < now + 20_000_000
        repo.snapshot_data("t", csv, key="id", head=head)
    assert adopted == []
    pd.testing.assert_frame_equal(repo.read_table("t@v1"), pd.read_csv(csv), check_dtype=False)


def test_a_file_changed_during_an_adopting_ingest_keeps_no_resume_record(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Checkpoints taken from the head start's states describe the bytes it
    read; if the file's times changed by the end of the ingest, the chunks
    may hold other bytes, so no checkpoint is kept (the next version reads
    from the top) and the source key is not trusted."""
    from lepton.data import fileingest

    csv = tmp_path / "t.csv"
    csv.write_text("id,x,label\n" + _rows(200_000))
    _settled(csv)
    real = fileingest.ingest.ingest_delimited

    def touched(*args, **kwargs):  # type: ignore[no-untyped-def]
        got = real(*args, **kwargs)
        os.utime(csv)  # "written" while it was read
        return got

    monkeypatch.setattr(fileingest.ingest, "ingest_delimited", touched)
    repo, plain = _repo(tmp_path / "r"), _repo(tmp_path / "p")
    with headstart.head_start(str(csv)) as head:
        assert head is not None
        head.state_at(csv.stat().st_size)
        got = repo.snapshot_data("t", csv, key="id", head=head)
    assert "resume" not in got.version.meta
    want = plain.snapshot_data("t", csv, key="id")  # (touched too: its record is its own hashing's)
    assert want.version.meta["resume"]["points"]
    assert got.manifest.chunks == want.manifest.chunks


def test_no_state_where_one_was_adopted_falls_back_to_the_whole_file_reader(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A head start that cannot give a state after all (closed, a read
    error) makes the ingest fall back: the version is still the file's."""
    csv = tmp_path / "t.csv"
    csv.write_text("id,x,label\n" + _rows(200_000))
    _settled(csv)
    repo, plain = _repo(tmp_path / "r"), _repo(tmp_path / "p")
    monkeypatch.setattr(HeadStart, "hash_through", lambda self, offset: None)
    with headstart.head_start(str(csv)) as head:
        assert head is not None
        head.state_at(csv.stat().st_size)
        got = repo.snapshot_data("t", csv, key="id", head=head)
    assert "resume" not in got.version.meta  # (the whole-file reader keeps none)
    assert plain.snapshot_data("t", csv, key="id").version.meta["resume"]["points"]  # (streaming: one)
    pd.testing.assert_frame_equal(repo.read_table("t@v1"), pd.read_csv(csv), check_dtype=False)
