"""Line hashes (lepton/data/_linehash.c) and the chunks edited in place that
they let the ingest store without parsing them whole (lepton.data.lineedits):
only the changed lines are parsed, and every version reads back exactly,
whatever was edited (values, keys, a key made a duplicate, a number's text)."""

from __future__ import annotations

import random
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lepton.config import Settings
from lepton.data import ingest, lineedits, linehash
from lepton.errors import InvalidInput
from lepton.repo import Repo

pytestmark = pytest.mark.skipif(linehash._linehash is None, reason="needs lepton/data/_linehash.c built")


def test_line_hashes_are_stable_and_name_each_line() -> None:
    """Pinned values: stored sidecars must hash the same in every release."""
    lines = linehash.of(b"1,a,0.5\n2,b,0.25\n3,c,1\n", ",", 0)
    assert lines is not None
    assert lines.starts.tolist() == [0, 8, 17, 23]
    assert lines.hashes.tolist() == PINNED_HASHES
    assert lines.keysum.hex() == PINNED_KEYSUM
    again = linehash.of(b"1,a,0.5\n2,b,0.25\n3,c,1", ",", 0)  # the last line without its newline
    assert again is not None and again.hashes.tolist() == PINNED_HASHES and again.starts[-1] == 22


def test_lines_longer_than_one_hashing_step_keep_their_pinned_hashes() -> None:
    """Lines of 13, 40 and 43 bytes: the 16-byte steps and the last 16 bytes
    (the values the build before the one-pass scan gave)."""
    raw = b"17,0.123456,0.654321,a longer text field\n18,0.5,0.25,x\n19," + b"y" * 40 + b"\n"
    lines = linehash.of(raw, ",", 0)
    assert lines is not None
    assert lines.hashes.tolist() == [14976206945391524406, 6515589827116903972, 17138279507068574335]
    assert lines.keysum.hex() == "29bd1d1d56c37708fbfe408ed880b0cc"


@pytest.mark.parametrize("length", [3, 16, 17, 40, 100])
def test_a_quote_anywhere_in_a_line_means_no_line_hashes(length: int) -> None:
    """The quote is found in the hashing's own reads: at every position of
    lines shorter and longer than a step, first, middle or last line."""
    for at in range(length):
        line = bytearray(b"9," + b"x" * (length - 2))
        line[at] = ord('"')
        for raw in (bytes(line) + b"\n1,a\n", b"1,a\n" + bytes(line) + b"\n2,b\n", b"1,a\n" + bytes(line)):
            assert linehash.of(raw, ",", 0) is None, (at, raw)
    assert linehash.of(b"9," + b"x" * (length - 2) + b"\n1,a\n", ",", 0) is not None


def test_the_key_sum_is_of_the_key_texts_in_any_order() -> None:
    a = linehash.of(b"1,x\n2,y\n3,z\n", ",", 0)
    b = linehash.of(b"3,q\n1,r\n2,s\n", ",", 0)
    c = linehash.of(b"1,x\n2,y\n4,z\n", ",", 0)
    d = linehash.of(b"x,1\ny,2\nz,3\n", ",", 1)
    assert a is not None and b is not None and c is not None and d is not None
    assert a.keysum == b.keysum == d.keysum != c.keysum
    assert len(set(a.hashes.tolist()) | set(b.hashes.tolist())) == 6


@pytest.mark.parametrize(
    ("raw", "field"),
    [(b'1,"a"\n2,b\n', 0), (b"1,a\n\n2,b\n", 0), (b"1,a\r\n\r\n", 0), (b"1\n2,b\n", 1)],
    ids=["quote", "empty line", "blank CRLF line", "no key field"],
)
def test_no_line_hashes_where_lines_are_not_rows(raw: bytes, field: int) -> None:
    assert linehash.of(raw, ",", field) is None
    assert linehash.of(raw.replace(b'"', b"").replace(b"\n\n", b"\n").replace(b"\r\n\r\n", b"\r\n"), ",", 0)


# wyhash's core as _linehash.c computes it, written out in Python: the
# reference the one-pass scan (line ends found in the hash's own reads) must
# agree with, line for line.
_M64, _S0, _S1, _S2 = (1 << 64) - 1, 0xA0761D6478BD642F, 0xE7037ED1A0B428DB, 0x8EBC6AF09C88C6E3
_SEED_LINE = 0x589965CC75374CC3


def _mum(a: int, b: int) -> int:
    r = a * b
    return (r & _M64) ^ (r >> 64)


def _reference_line_hash(line: bytes) -> int:
    def r(i: int, k: int) -> int:
        return int.from_bytes(line[i : i + k], "little")

    n, h = len(line), _SEED_LINE ^ _S0
    if n > 16:
        i = 0
        while n - i > 16:
            h = _mum(r(i, 8) ^ _S1, r(i + 8, 8) ^ h)
            i += 16
        a, b = r(n - 16, 8), r(n - 8, 8)
    elif n >= 4:
        m = (n >> 3) << 2
        a, b = (r(0, 4) << 32) | r(m, 4), (r(n - 4, 4) << 32) | r(n - 4 - m, 4)
    else:
        a, b = (line[0] << 16) | (line[n >> 1] << 8) | line[n - 1], 0
    return _mum(_S1 ^ n, _mum(a ^ _S1, b ^ h) ^ _S2)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.binary(min_size=1, max_size=90).filter(lambda b: b"\n" not in b and b'"' not in b and b != b"\r"),
        min_size=1,
        max_size=40,
    ),
    st.booleans(),
)
def test_line_hashes_agree_with_the_reference_at_every_length_and_end(
    lines: list[bytes], newline: bool
) -> None:
    """Lines of 1-90 bytes (the steps stop on a newline in the step or just
    after it, or at the buffer's end), with and without a last newline."""
    raw = b"\n".join(lines) + (b"\n" if newline else b"")
    got = linehash.of(raw, ",", 0)
    assert got is not None
    assert got.hashes.tolist() == [_reference_line_hash(line) for line in lines]
    ends = np.cumsum([len(line) + 1 for line in lines])
    assert got.starts.tolist() == [0, *ends[:-1].tolist(), len(raw)]


def test_the_sidecar_round_trips_and_refuses_other_bytes() -> None:
    lines = linehash.of(b"7,a\n8,b\n", ",", 0)
    assert lines is not None
    keysum, hashes = linehash.read_sidecar(linehash.sidecar(lines))
    assert keysum == lines.keysum and hashes.tolist() == lines.hashes.tolist()
    with pytest.raises(ValueError, match="not a line sidecar"):
        linehash.read_sidecar(b"PAR1" + bytes(40))


def test_a_patch_gives_its_line_hashes_only_if_it_kept_them() -> None:
    """patches.patch_lines: the positions and line hashes of a patch written
    with them; None for one written without (the ingest then parses whole)."""
    import pyarrow as pa

    from lepton.data import patches
    from lepton.data.parquet import parquet_buffer

    rows = pa.table({"id": [7, 9], "x": [0.5, 0.25]})
    positions, hashes = np.array([3, 11]), np.arange(20, dtype=np.uint64) * np.uint64(2**61)
    got = patches.patch_lines(parquet_buffer(patches.patch_rows(rows, positions, hashes)))
    assert got is not None
    assert got[0].tolist() == [3, 11] and got[1].tolist() == hashes[[3, 11]].tolist()
    assert patches.patch_lines(parquet_buffer(patches.patch_rows(rows, positions))) is None


N = 100_000  # ~4 MB: a few chunks (linecuts: ~2 MiB each)


def _frame(seed: int = 0, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"id": np.arange(n) + 5_000_000, **{f"f{i}": rng.random(n).round(5) for i in range(4)}, "label": 3}
    )


@pytest.fixture
def counted(monkeypatch):  # type: ignore[no-untyped-def]
    """How many chunks took the line path, and how many bytes it parsed."""
    seen = {"chunks": 0, "bytes": 0}
    real = lineedits.edited

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        got = real(*args, **kwargs)
        if got is not None:
            seen["chunks"] += 1
            seen["bytes"] += got[2]
        return got

    monkeypatch.setattr(ingest.lineedits, "edited", spy)
    return seen


@pytest.mark.usefixtures("half_size_chunks")
def test_sparse_edits_parse_only_the_changed_lines(repo, tmp_path, counted, parsed):  # type: ignore[no-untyped-def]
    frame = _frame()
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    first = repo.snapshot_data("t", path, key="id")
    assert all(c.lines for c in first.manifest.chunks), "whole chunks keep their lines' hashes"
    rng = np.random.default_rng(3)
    for version in range(2, 6):
        rows = rng.choice(N, size=40, replace=False)
        frame.loc[rows, "f2"] = rng.random(len(rows)).round(5)
        frame.to_csv(path, index=False)
        parsed.clear()
        counted.update(chunks=0, bytes=0)
        snap = repo.snapshot_data("t", path, key="id")
        edited = [c for c in snap.manifest.chunks if c.base is not None]
        assert edited and counted["chunks"] >= len(edited) - 1, version  # (a moved boundary: parsed whole)
        assert counted["bytes"] < 40 * 80 * 3, (
            f"v{version}: {counted['bytes']} bytes parsed for 40 edited rows"
        )
        assert sum(parsed) < 0.5 * path.stat().st_size
        pd.testing.assert_frame_equal(repo.read_table(f"t@v{version}"), frame)
    assert repo.verify().ok


def test_an_edited_key_takes_the_whole_chunk_path_and_a_duplicate_is_refused(repo, tmp_path, counted):  # type: ignore[no-untyped-def]
    frame = _frame(1)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    repo.snapshot_data("t", path, key="id")
    frame.loc[1000, "id"] = 9_999_999  # a new key in place of an old one, in the middle of a chunk
    frame.loc[20_000, "f0"] = 0.5
    frame.to_csv(path, index=False)
    repo.snapshot_data("t", path, key="id")
    pd.testing.assert_frame_equal(repo.read_table("t@v2"), frame)
    stored = set(repo.store.iter_keys())
    frame.loc[30_000, "id"] = frame.loc[10, "id"]  # now twice
    frame.to_csv(path, index=False)
    with pytest.raises(InvalidInput, match="duplicate"):
        repo.snapshot_data("t", path, key="id")
    assert set(repo.store.iter_keys()) == stored
    assert [v.version for v in repo.log("t")] == [1, 2]


def test_chunks_stored_without_line_hashes_are_parsed_whole_once(repo, tmp_path, counted, monkeypatch):  # type: ignore[no-untyped-def]
    frame = _frame(2)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setattr(linehash, "_linehash", None)  # as a version written before line hashes
    first = repo.snapshot_data("t", path, key="id")
    assert not any(c.lines for c in first.manifest.chunks)
    monkeypatch.undo()
    monkeypatch.setattr(ingest.lineedits, "edited", lineedits.edited)
    for version, row in ((2, 100), (3, 200)):
        frame.loc[[row, row + 20_000], "f1"] = 0.125
        frame.to_csv(path, index=False)
        repo.snapshot_data("t", path, key="id")
        pd.testing.assert_frame_equal(repo.read_table(f"t@v{version}"), frame)


_op = st.tuples(
    st.sampled_from(["value", "text", "key", "duplicate", "insert", "delete"]),
    st.integers(0, 10**9),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    versions=st.lists(st.lists(_op, min_size=1, max_size=5), min_size=1, max_size=4), seed=st.integers(0, 99)
)
def test_every_version_reads_back_exactly_after_random_edits(tmp_path_factory, versions, seed):  # type: ignore[no-untyped-def]
    """Values, number texts (1.5 and 1.50), keys (new, or another row's),
    inserted and deleted rows, version after version: the snapshot equals the
    file, or a duplicate is refused."""
    root = tmp_path_factory.mktemp("edits")
    settings_ = Settings.model_validate(
        {"store": {"url": str(root / "store")}, "registry": {"url": f"sqlite:///{root / 'r.db'}"}}
    )
    repo = Repo(settings_).ensure_ready()
    try:
        rnd = random.Random(seed)
        lines = [f"{5_000_000 + i},{rnd.random():.5f},{rnd.randint(0, 9)}" for i in range(30_000)]
        path = root / "t.csv"
        path.write_text("id,x,label\n" + "\n".join(lines) + "\n")
        repo.snapshot_data("t", path, key="id")
        for ops in versions:
            for op, at in ops:
                i = at % len(lines)
                ident, x, label = lines[i].split(",")
                if op == "value":
                    lines[i] = f"{ident},{rnd.random():.5f},{label}"
                elif op == "text":
                    lines[i] = f"{ident},{x}0,{label}"  # the same number, written longer
                elif op == "key":
                    lines[i] = f"{9_000_000 + at % 100_000},{x},{label}"
                elif op == "duplicate":
                    lines[i] = f"{lines[(i + 7) % len(lines)].split(',')[0]},{x},{label}"
                elif op == "insert":
                    lines.insert(i, f"{8_000_000 + at % 100_000},{x},{label}")
                else:
                    del lines[i]
            path.write_text("id,x,label\n" + "\n".join(lines) + "\n")
            expected = pd.read_csv(path)
            if expected["id"].duplicated().any():
                with pytest.raises(InvalidInput, match="duplicate"):
                    repo.snapshot_data("t", path, key="id")
                return
            snap = repo.snapshot_data("t", path, key="id")  # (the same rows again: the same version)
            pd.testing.assert_frame_equal(repo.read_table(snap.version.ref), expected)
    finally:
        repo.close()


PINNED_HASHES = [6200909138930955571, 10748066304021429506, 3089754268397895049]
PINNED_KEYSUM = "d2f305ba150132d7e771dd8bee5eab64"


@pytest.mark.usefixtures("half_size_chunks")
def test_the_kept_line_hashes_are_read_ahead_only_once_an_edit_shows_up(repo, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    asked: list[list[str]] = []
    monkeypatch.setattr(type(repo.store), "prefetch", lambda self, keys: asked.append(list(keys)))
    frame = _frame(4)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    repo.snapshot_data("t", path, key="id")
    more = _frame(5, 2000).assign(id=lambda f: f["id"] + N)  # appended rows, larger ids
    frame = pd.concat([frame, more], ignore_index=True)
    frame.to_csv(path, index=False)
    second = repo.snapshot_data("t", path, key="id")
    assert asked == [], "an append read the kept line hashes ahead"
    frame.loc[[5, 25_000], "f0"] = 0.75
    frame.to_csv(path, index=False)
    repo.snapshot_data("t", path, key="id")
    for _ in range(100):  # (a background thread)
        if asked:
            break
        time.sleep(0.01)
    assert len(asked) == 1
    assert {c.lines for c in second.manifest.chunks} <= set(asked[0])


def test_a_renamed_or_retyped_column_is_not_patched_over_the_old_schema(repo, tmp_path, counted):  # type: ignore[no-untyped-def]
    frame = _frame(6)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    repo.snapshot_data("t", path, key="id")
    renamed = frame.rename(columns={"f1": "g1"})  # every line as it was: only the header differs
    renamed.to_csv(path, index=False)
    snap = repo.snapshot_data("t", path, key="id")
    pd.testing.assert_frame_equal(repo.read_table(snap.version.ref), renamed)
    retyped = renamed.assign(label=renamed["label"].astype(float))
    retyped.loc[7, "label"] = 2.5  # the label column becomes floating point
    retyped.to_csv(path, index=False)
    snap = repo.snapshot_data("t", path, key="id")
    pd.testing.assert_frame_equal(repo.read_table(snap.version.ref), retyped)
    assert counted["chunks"] == 0
