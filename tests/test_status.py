"""`status`: what changed in a source since the latest version, on both real
stacks; unchanged files are not read; the CLI's text and --json; two
processes sharing one state cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from lepton.cli.main import main
from lepton.errors import InvalidInput, NotFound

ROOT = Path(__file__).resolve().parents[1]


def write(root: Path, files: dict[str, bytes], age_s: float = 60) -> None:
    t = time.time() - age_s
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (t, t))


def make(root: Path, n: int = 200) -> None:
    write(root, {f"part{i % 5}/s{i:04d}.txt": f"sample {i}\n".encode() * (i % 9 + 1) for i in range(n)})


def test_status_reports_exactly_what_changed(repo, tmp_path):
    src = tmp_path / "src"
    make(src)
    assert repo.status("t", src).model_dump() == {
        "name": "t",
        "source": str(src),
        "layout": "tree",
        "base": None,
        "changed": True,
        "added": sorted(p.relative_to(src).as_posix() for p in src.rglob("*.txt")),
        "removed": [],
        "modified": [],
        "unchanged": 0,
        "read": 200,
    }
    repo.snapshot_data("t", src)
    st = repo.status("t", src)
    assert (st.base, st.changed, st.unchanged, st.read) == ("t@v1", False, 200, 0)

    write(src, {"part1/s0001.txt": b"changed, and longer than before\n"})  # modified, new size
    write(src, {"part2/s0002.txt": b"sample 2\nsample 2\nsample 3\n"})  # modified, same size
    write(src, {"part0/new.txt": b"new", "new-folder/x.bin": b"\x00"})  # added
    (src / "part3" / "s0003.txt").unlink()  # removed
    (src / "part4" / "s0004.txt").unlink()
    st = repo.status("t", src)
    assert st.added == ["new-folder/x.bin", "part0/new.txt"]
    assert st.removed == ["part3/s0003.txt", "part4/s0004.txt"]
    assert st.modified == ["part1/s0001.txt", "part2/s0002.txt"]
    assert (st.unchanged, st.read, st.changed) == (196, 4, True)

    repo.snapshot_data("t", src)
    st = repo.status("t", src)
    assert (st.base, st.changed, st.read) == ("t@v2", False, 0)
    assert (st.added, st.removed, st.modified) == ([], [], [])


def test_stat_change_without_content_change_is_unchanged_and_cached(repo, tmp_path):
    src = tmp_path / "src"
    make(src, 20)
    repo.snapshot_data("t", src)
    p = src / "part0" / "s0000.txt"
    p.write_bytes(p.read_bytes())  # same bytes, new mtime and ctime
    os.utime(p, (time.time() - 30, time.time() - 30))
    st = repo.status("t", src)
    assert (st.changed, st.modified, st.read) == (False, [], 1)
    assert repo.status("t", src).read == 0, "the cache was updated"


def test_status_of_a_table_file(repo, tmp_path):
    csv = tmp_path / "t.csv"
    frame = pd.DataFrame({"id": range(50), "x": [i / 3 for i in range(50)]})
    frame.to_csv(csv, index=False)
    os.utime(csv, (time.time() - 60, time.time() - 60))  # past the racy window
    st = repo.status("tab", csv)
    assert (st.layout, st.base, st.changed, st.read) == ("table", None, True, 1)
    snap = repo.snapshot_data("tab", csv, key="id")
    from lepton.data.statecache import hash_path

    assert snap.version.meta["source_key"] == hash_path(str(csv))  # hashed by the ingest as it read
    st = repo.status("tab", csv)
    assert (st.base, st.changed, st.read) == ("tab@v1", False, 0), "hashed at snapshot, from the cache now"
    frame.loc[7, "x"] = -1.0
    frame.to_csv(csv, index=False)
    st = repo.status("tab", csv)
    assert (st.changed, st.read) == (True, 1)
    assert (st.added, st.removed, st.modified) == ([], [], [])


def test_status_of_a_labels_file(repo, tmp_path):
    data, labels = tmp_path / "d.csv", tmp_path / "labels.csv"
    pd.DataFrame({"id": range(40), "x": range(40)}).to_csv(data, index=False)
    frame = pd.DataFrame({"id": range(40), "y": ["a", "b"] * 20})
    frame.to_csv(labels, index=False)
    os.utime(labels, (time.time() - 60, time.time() - 60))
    repo.snapshot_data("d", data, key="id")
    repo.snapshot_labels("lab", labels, dataset="d", key="id", label="y")
    st = repo.status("lab", labels, kind="labelset")
    assert (st.layout, st.base, st.changed, st.read) == ("table", "lab@v1", False, 0)
    frame.loc[3, "y"] = "c"
    frame.to_csv(labels, index=False)
    assert repo.status("lab", labels, kind="labelset").changed is True
    with pytest.raises(InvalidInput, match="already a labelset"):
        repo.status("lab", labels)
    with pytest.raises(InvalidInput, match="a labelset's source is one table file"):
        repo.status("lab", tmp_path, kind="labelset")


def test_cli_labels_status(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("LEPTON_")]:
        monkeypatch.delenv(var)
    pd.DataFrame({"id": range(10), "x": range(10)}).to_csv("d.csv", index=False)
    pd.DataFrame({"id": range(10), "y": list("ab") * 5}).to_csv("l.csv", index=False)
    assert main(["init"]) == 0
    assert main(["data", "snapshot", "d", "d.csv", "--key", "id"]) == 0
    assert main(["labels", "snapshot", "l", "l.csv", "--dataset", "d", "--key", "id", "--label", "y"]) == 0
    capsys.readouterr()
    assert main(["labels", "status", "l", "l.csv", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["changed"], got["base"]) == (False, "l@v1")
    Path("l.csv").write_text("id,y\n" + "".join(f"{i},c\n" for i in range(10)))
    assert main(["labels", "status", "l", "l.csv"]) == 0
    assert "l.csv vs l@v1: changed" in capsys.readouterr().out


def test_status_of_a_table_without_a_recorded_source(repo, tmp_path):
    repo.snapshot_data("frame", pd.DataFrame({"id": [1, 2], "y": [3, 4]}))
    csv = tmp_path / "f.csv"
    csv.write_text("id,y\n1,3\n2,4\n")
    assert repo.status("frame", csv).changed is None


def test_status_refuses_mismatched_layouts_and_missing_sources(repo, tmp_path):
    src = tmp_path / "src"
    make(src, 5)
    repo.snapshot_data("tree", src)
    csv = tmp_path / "t.csv"
    csv.write_text("id,x\n1,2\n")
    repo.snapshot_data("tab", csv)
    with pytest.raises(InvalidInput, match="is a file tree"):
        repo.status("tree", csv)
    with pytest.raises(InvalidInput, match="is a table"):
        repo.status("tab", src)
    with pytest.raises(NotFound, match="no such file or folder"):
        repo.status("tab", tmp_path / "missing.csv")
    with pytest.raises(InvalidInput, match="invalid name"):
        repo.status("../x", src)


def test_cli_status_text_and_json(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("LEPTON_")]:
        monkeypatch.delenv(var)
    src = tmp_path / "data"
    make(src, 30)
    assert main(["init"]) == 0
    assert main(["data", "snapshot", "d", "data"]) == 0
    assert (tmp_path / ".lepton" / "state.db").is_file()
    write(src, {"part0/s0000.txt": b"edited", "extra.txt": b"+"})
    capsys.readouterr()
    assert main(["data", "status", "d", "data", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["added"], got["modified"], got["removed"]) == (["extra.txt"], ["part0/s0000.txt"], [])
    assert (got["unchanged"], got["read"], got["base"]) == (29, 2, "d@v1")
    assert main(["data", "status", "d", "data"]) == 0
    out = capsys.readouterr().out
    assert "1 added, 0 removed, 1 modified, 29 unchanged" in out
    assert "added: extra.txt" in out and "modified: part0/s0000.txt" in out
    assert main(["data", "status", "d", "nowhere"]) == 1
    assert "no such file" in capsys.readouterr().err


CHILD = textwrap.dedent(
    """
    import logging, os, sys, time
    from lepton.data import trees
    from lepton.data.statecache import StateCache
    from lepton.store.fs import open_location

    class Fail(logging.Handler):
        def emit(self, record):
            sys.exit(f"logged: {record.getMessage()}")

    logging.getLogger("lepton").addHandler(Fail(logging.WARNING))
    db, src, me = sys.argv[1], sys.argv[2], sys.argv[3]
    cache = StateCache(db)
    loc = open_location("/")
    for i in range(15):
        p = os.path.join(src, f"own-{me}", f"f{i}.txt")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(f"{me} {i}")
        os.utime(p, (time.time() - 60, time.time() - 60))
        st = trees.tree_status("t", None, loc, src, src, cache)
        assert f"own-{me}/f{i}.txt" in st.added, st
    cache.close()
    """
)


def test_two_processes_share_one_state_cache(tmp_path):
    src = tmp_path / "src"
    make(src, 300)
    db = tmp_path / "cache" / "state.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), str(src), str(me)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for me in range(2)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
    from lepton.data.statecache import StateCache

    cache = StateCache(db)
    assert len(cache.rows_under(os.path.realpath(src))) == 300 + 2 * 15
    cache.close()


def test_the_racy_window_is_as_fine_as_the_file_times():  # type: ignore[no-untyped-def]
    from lepton.data.statecache import RACY_NS, TICK_NS, racy_window

    assert racy_window(1_733_000_000_123_456_789) == 1 + TICK_NS
    assert racy_window(1_733_000_000_123_456_000) == 1_000 + TICK_NS  # microseconds
    assert racy_window(1_733_000_000_500_000_000) == 100_000_000 + TICK_NS
    assert racy_window(1_733_000_000_000_000_000) == RACY_NS  # whole seconds (FAT: 2 s)


def test_a_table_snapshotted_right_after_it_was_written_is_trusted_by_status(repo, tmp_path):  # type: ignore[no-untyped-def]
    """File times with nanoseconds: a read that began >20 ms after the last
    write is not racy, so the next status needs no read. Times in whole
    seconds, or later than the read, stay racy: read again every time."""
    csv = tmp_path / "t.csv"
    pd.DataFrame({"id": range(50), "x": [i / 3 for i in range(50)]}).to_csv(csv, index=False)
    now = time.time_ns()
    os.utime(csv, ns=(now - 50_000_000 + 123, now - 50_000_000 + 123))  # 50 ms ago, to the nanosecond
    repo.snapshot_data("tab", csv, key="id")
    assert repo.status("tab", csv).read == 0
    second = time.time_ns() // 1_000_000_000 * 1_000_000_000
    os.utime(csv, ns=(second, second))  # whole seconds, this second: a same-size edit may not show
    assert [repo.status("tab", csv).read for _ in range(2)] == [1, 1]
    later = time.time_ns() + 5_000_000_123
    os.utime(csv, ns=(later, later))  # stamped after the read began
    assert [repo.status("tab", csv).read for _ in range(2)] == [1, 1]
    os.utime(csv, ns=(now - 60_000_000_123, now - 60_000_000_123))
    assert [repo.status("tab", csv).read for _ in range(2)] == [1, 0]
