"""Contract tests for the content-addressed object store.

``StoreContract`` is the contract; every backend inherits it and says how to
reach its raw bytes (to corrupt them, or to look for leftovers) without going
through the store. Real backends only: a temp folder, and moto's S3 server.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import blake3
import boto3
import pytest
import requests

from lepton import hashing
from lepton.config import S3Settings
from lepton.errors import IntegrityError, InvalidInput, LeptonError, NotFound, StorageError
from lepton.store import ObjectStore, localio, open_location

KEY_RE = re.compile(r"^blake3:[0-9a-f]{64}$")
BAD_KEYS = [
    "../x",
    "blake3:../../etc",
    "blake3:../../etc/passwd",
    "/etc/passwd",
    "blake3:" + "a" * 63,
    "blake3:" + "a" * 65,
    "blake3:" + "A" * 64,
    "blake3:" + "g" * 64,
    "sha1:" + "a" * 64,
    "blake3:aa/../../" + "a" * 56,
    "blake3:" + "a" * 64 + "\x00",
    "blake3:%2e%2e%2f" + "a" * 55,
    "",
]


def b3(data: bytes) -> str:
    """The expected key, computed independently of lepton.hashing."""
    return "blake3:" + blake3.blake3(data).hexdigest()


class FailingStream:
    """A binary stream whose read() raises after ``good`` bytes."""

    def __init__(self, payload: bytes, good: int) -> None:
        self.payload, self.good, self.pos = payload, good, 0

    def read(self, n: int = -1) -> bytes:
        if self.pos >= self.good:
            raise OSError("network stream dropped")
        n = min(n if n > 0 else len(self.payload), self.good - self.pos, 1024)
        block = self.payload[self.pos : self.pos + n]
        self.pos += len(block)
        return block


class StoreContract:
    """What every ObjectStore backend must do."""

    # ---- backend hooks ----------------------------------------------------
    @pytest.fixture
    def store(self) -> ObjectStore:
        raise NotImplementedError

    def overwrite_raw(self, store: ObjectStore, key: str, data: bytes) -> None:
        """Replace an object's stored bytes behind the store's back."""
        raise NotImplementedError

    s3_settings: S3Settings | None = None  # how a child process reaches the store

    def leftovers(self, store: ObjectStore) -> list[str]:
        """Unfinished writes: temp files, or unfinished multipart uploads."""
        raise NotImplementedError

    def raw_paths(self, store: ObjectStore, area: str = "objects") -> list[str]:
        """Every file under ``area/`` of the store, listed by the filesystem."""
        try:
            found = store.fs.find(store.location.join(area))
        except FileNotFoundError:
            return []
        root = store.location.root.rstrip("/") + "/"
        return sorted(p.split(root, 1)[-1] for p in found)

    def flip_byte(self, store: ObjectStore, key: str, data: bytes, at: int = 0) -> bytes:
        bad = bytearray(data)
        bad[at] ^= 0x01
        self.overwrite_raw(store, key, bytes(bad))
        return bytes(bad)

    # ---- keys and layout --------------------------------------------------
    def test_put_bytes_names_object_by_blake3_with_fan_out(self, store: ObjectStore) -> None:
        data = b"hello lepton\n"
        key = store.put_bytes(data)
        assert KEY_RE.match(key)
        assert key == b3(data)
        digest = key.split(":")[1]
        assert self.raw_paths(store) == [f"objects/blake3/{digest[:2]}/{digest[2:]}"]
        assert store.exists(key) and store.size(key) == len(data)
        assert store.read_bytes(key) == data

    def test_put_if_absent_across_put_bytes_file_and_stream(self, store: ObjectStore, tmp_path: Path) -> None:
        data = os.urandom(4096)
        src = tmp_path / "src.bin"
        src.write_bytes(data)
        k1 = store.put_bytes(data)
        k2 = store.put_bytes(data)
        k3, size3 = store.put_file(src)
        k4, size4 = store.put_stream(FailingStream(data, good=len(data) + 1))
        assert k1 == k2 == k3 == k4 == b3(data)
        assert size3 == size4 == len(data)
        assert len(self.raw_paths(store)) == 1
        assert list(store.iter_keys()) == [k1]
        assert self.leftovers(store) == []

    def test_distinct_content_gets_distinct_objects(self, store: ObjectStore) -> None:
        blobs = [b"a", b"b", b"", b"a" * 100_000]
        keys = [store.put_bytes(b) for b in blobs]
        assert len(set(keys)) == 4
        assert sorted(store.iter_keys()) == sorted(keys)
        for k, b in zip(keys, blobs, strict=True):
            assert store.read_bytes(k) == b

    def test_empty_object_round_trips_through_files(self, store: ObjectStore, tmp_path: Path) -> None:
        empty = tmp_path / "empty"
        empty.write_bytes(b"")
        key, size = store.put_file(empty)
        assert (key, size) == (b3(b""), 0)
        store.get_file(key, tmp_path / "out" / "empty")
        assert (tmp_path / "out" / "empty").read_bytes() == b""

    @pytest.mark.parametrize("size", [100_000, 9_000_000])  # read whole / streamed in blocks (local)
    def test_get_file_writes_verified_copy(self, store: ObjectStore, tmp_path: Path, size: int) -> None:
        data = os.urandom(size)
        key = store.put_bytes(data)
        dest = tmp_path / "deep" / "dir" / "copy.bin"
        old = os.umask(0o022)
        try:
            store.get_file(key, dest)
            store.get_file(key, dest.with_name("again.bin"))  # into the folder now there
        finally:
            os.umask(old)
        assert dest.read_bytes() == data
        assert sorted(p.name for p in dest.parent.iterdir()) == ["again.bin", "copy.bin"]  # no temp file
        assert stat.S_IMODE(dest.stat().st_mode) == 0o644  # as a file the user made (not a temp file's 0o600)
        assert store.verify(key) == key

    def test_get_file_to_a_long_non_ascii_name(self, store: ObjectStore, tmp_path: Path) -> None:
        """An 80-character CJK name is 240 bytes: the temp name beside it is
        cut by bytes (NAME_MAX is 255 bytes), so the file is written."""
        data = os.urandom(1000)
        key = store.put_bytes(data)
        dest = tmp_path / "out" / ("\u6570\u636e" * 40 + ".csv")
        store.get_file(key, dest)
        assert dest.read_bytes() == data and [p.name for p in dest.parent.iterdir()] == [dest.name]

    def test_get_file_that_cannot_write_says_where_and_leaves_nothing(
        self, store: ObjectStore, tmp_path: Path, monkeypatch
    ) -> None:
        """A full disk under the destination: one StorageError naming the
        destination and the object, no file or temp file left there."""
        out = tmp_path / "out"
        out.mkdir()
        real = localio.create_beside

        def on_a_full_disk(dest):  # type: ignore[no-untyped-def]
            fd, tmp = real(dest)  # the temp file is made, then written on /dev/full (ENOSPC)
            full = os.open("/dev/full", os.O_WRONLY)
            os.dup2(full, fd)
            os.close(full)
            return fd, tmp

        monkeypatch.setattr(localio, "create_beside", on_a_full_disk)
        for size in (50_000, 9_000_000):  # read whole / streamed (local); streamed (S3)
            key = store.put_bytes(os.urandom(size))
            with pytest.raises(StorageError, match="No space left") as e:
                store.get_file(key, out / "copy.bin")
            assert str(out / "copy.bin") in str(e.value) and key in str(e.value), e.value
            assert list(out.iterdir()) == []

    def test_iter_keys_of_empty_store_is_empty(self, store: ObjectStore) -> None:
        assert list(store.iter_keys()) == []

    def test_delete_removes_object(self, store: ObjectStore) -> None:
        key = store.put_bytes(b"to delete")
        store.delete(key)
        assert not store.exists(key)
        assert list(store.iter_keys()) == []

    # ---- missing and invalid keys ----------------------------------------
    def test_missing_key_is_not_found(self, store: ObjectStore, tmp_path: Path) -> None:
        key = b3(b"never stored")
        assert store.exists(key) is False
        with pytest.raises(NotFound, match=key) as e:
            store.read_bytes(key)
        assert isinstance(e.value, KeyError)  # also the builtin it resembles
        dest = tmp_path / "missing.bin"
        with pytest.raises(NotFound):
            store.get_file(key, dest)
        assert not dest.exists() and list(tmp_path.iterdir()) == []
        with pytest.raises(NotFound):
            store.verify(key)
        with pytest.raises(NotFound):
            store.size(key)
        store.delete(key)  # deleting what is absent is a no-op on every backend

    @pytest.mark.parametrize("bad", BAD_KEYS)
    def test_invalid_keys_are_refused(self, store: ObjectStore, tmp_path: Path, bad: str) -> None:
        for op in (store.read_bytes, store.exists, store.delete, store.verify, store.path_of):
            with pytest.raises(InvalidInput):
                op(bad)
        with pytest.raises(InvalidInput):
            store.get_file(bad, tmp_path / "x")
        assert not (tmp_path / "x").exists()

    # ---- verify on read ---------------------------------------------------
    def test_flipped_byte_is_refused_and_quarantined_by_read_bytes(self, store: ObjectStore) -> None:
        data = os.urandom(10_000)
        key = store.put_bytes(data)
        bad = self.flip_byte(store, key, data, at=5_000)
        with pytest.raises(IntegrityError) as e:
            store.read_bytes(key)
        msg = str(e.value)
        assert key in msg and b3(bad) in msg  # names expected and actual hash
        assert isinstance(e.value, OSError)
        digest = key.split(":")[1]
        assert self.raw_paths(store) == []
        assert self.raw_paths(store, "quarantine") == [f"quarantine/blake3/{digest[:2]}/{digest[2:]}"]
        assert not store.exists(key)
        with pytest.raises(NotFound):  # never the bad bytes, not even on retry
            store.read_bytes(key)
        # Writing the good content again heals the store.
        assert store.put_bytes(data) == key
        assert store.read_bytes(key) == data

    def test_flipped_byte_is_refused_by_get_file_leaving_no_file(
        self, store: ObjectStore, tmp_path: Path
    ) -> None:
        data = os.urandom(50_000)
        key = store.put_bytes(data)
        bad = self.flip_byte(store, key, data, at=len(data) - 1)
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(IntegrityError) as e:
            store.get_file(key, out / "copy.bin")
        assert key in str(e.value) and b3(bad) in str(e.value)
        assert list(out.iterdir()) == []  # neither the file nor a temp file
        assert not store.exists(key)
        assert len(self.raw_paths(store, "quarantine")) == 1

    def test_verify_reports_actual_hash(self, store: ObjectStore) -> None:
        data = b"x" * 1000
        key = store.put_bytes(data)
        bad = self.flip_byte(store, key, data)
        assert store.verify(key) == b3(bad)

    # ---- failed writes leave nothing --------------------------------------
    def test_stream_failing_mid_write_leaves_no_object(self, store: ObjectStore) -> None:
        payload = os.urandom(300_000)
        with pytest.raises(OSError, match="network stream dropped"):
            store.put_stream(FailingStream(payload, good=200_000))
        assert list(store.iter_keys()) == []
        assert self.raw_paths(store) == []
        assert not store.exists(b3(payload)) and not store.exists(b3(payload[:200_000]))
        assert self.leftovers(store) == []

    def test_read_error_mid_upload_leaves_no_object(
        self, store: ObjectStore, tmp_path: Path, monkeypatch
    ) -> None:
        """The source fails after 17 MiB were sent (on S3: two parts of a
        multipart upload): nothing is published and the upload is aborted."""
        src = tmp_path / "big.bin"
        src.write_bytes(os.urandom(20 * 2**20))

        def copy_then_fail(path, out, block_size=2**20):  # type: ignore[no-untyped-def]
            with open(path, "rb") as f:
                for _ in range(17):
                    out.write(f.read(2**20))
            raise OSError("source disk read error")

        monkeypatch.setattr(localio, "copy_hashing", copy_then_fail)
        with pytest.raises(OSError, match="source disk read error"):
            store.put_file(src)
        assert list(store.iter_keys()) == []
        assert self.raw_paths(store) == []
        assert self.leftovers(store) == []

    @pytest.mark.parametrize("size", [100_000, 20 * 2**20], ids=["small", "multipart"])
    def test_file_changed_while_stored_leaves_no_object(
        self, store: ObjectStore, tmp_path: Path, monkeypatch, size: int
    ) -> None:
        """A concurrent writer appends to the file after it was hashed: the
        store must not publish bytes under a key they do not hash to."""
        src = tmp_path / "growing.bin"
        src.write_bytes(os.urandom(size))
        hashed = hashing.hash_stream

        def hash_then_append(stream):  # type: ignore[no-untyped-def]
            result = hashed(stream)
            with open(src, "ab") as f:
                f.write(b"appended by another writer")
            return result

        monkeypatch.setattr(hashing, "hash_stream", hash_then_append)
        with pytest.raises(InvalidInput, match="changed while it was being stored"):
            store.put_file(src)
        assert list(store.iter_keys()) == []
        assert self.raw_paths(store) == []
        assert self.leftovers(store) == []

    # ---- the event log ----------------------------------------------------
    def test_records_come_back_in_append_order(self, store: ObjectStore) -> None:
        for i in range(12):
            store.append_record("registry", {"event": "e", "i": i, "nested": {"x": [i]}})
        store.append_record("other", {"i": -1})
        got = list(store.iter_records("registry"))
        assert [r["i"] for r in got] == list(range(12))
        assert got[3] == {"event": "e", "i": 3, "nested": {"x": [3]}}
        assert list(store.iter_records("other")) == [{"i": -1}]
        assert list(store.iter_records("empty")) == []
        assert list(store.iter_keys()) == []  # records are not objects

    # ---- big files stream -------------------------------------------------
    def test_64mb_file_streams_with_bounded_memory(self, store: ObjectStore, tmp_path: Path) -> None:
        """put_file/get_file of 64 MiB, measured in a child process (moto runs
        inside this one) with tracemalloc: peak well below the file size."""
        size = 64 * 2**20
        src = tmp_path / "big.bin"
        with open(src, "wb") as f:
            for _ in range(8):
                f.write(os.urandom(size // 8))
        with open(src, "rb") as f:
            expected, _ = hashing.hash_stream(f)
        s3 = self.s3_settings
        child = _BIG_FILE_CHILD.format(
            url=store.url, s3=json.dumps(s3.model_dump() if s3 else None), src=str(src)
        )
        out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["key"] == expected and result["size"] == size
        assert result["copy"] == expected
        assert result["put_peak"] < size / 2, result
        assert result["get_peak"] < size / 2, result
        assert store.exists(expected) and store.size(expected) == size
        assert self.leftovers(store) == []


_BIG_FILE_CHILD = """
import json, tracemalloc
from lepton import hashing
from lepton.config import S3Settings
from lepton.store import ObjectStore, objects, open_location
s3 = json.loads({s3!r})
store = ObjectStore(open_location({url!r}, S3Settings(**s3) if s3 else None))
store.exists(hashing.hash_bytes(b""))  # warm up: the S3 client loads its service model
tracemalloc.start()
key, size = store.put_file({src!r})
put_peak = tracemalloc.get_traced_memory()[1]
tracemalloc.reset_peak()
store.get_file(key, {src!r} + ".copy")
get_peak = tracemalloc.get_traced_memory()[1]
with open({src!r} + ".copy", "rb") as f:
    copy, _ = hashing.hash_stream(f)
print(json.dumps(dict(key=key, size=size, copy=copy, put_peak=put_peak, get_peak=get_peak)))
"""


# ---- local folder ---------------------------------------------------------------
class TestLocalStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        return ObjectStore(open_location(str(tmp_path / "store")))

    def overwrite_raw(self, store: ObjectStore, key: str, data: bytes) -> None:
        path = Path(store.path_of(key))
        path.chmod(0o644)  # objects are published read-only
        path.write_bytes(data)

    def leftovers(self, store: ObjectStore) -> list[str]:
        tmp = Path(store.location.root) / "tmp"
        return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []

    def test_objects_are_published_read_only(self, store: ObjectStore) -> None:
        key = store.put_bytes(b"immutable")
        assert Path(store.path_of(key)).stat().st_mode & 0o777 == 0o444

    def test_file_url_is_the_same_store(self, store: ObjectStore) -> None:
        key = store.put_bytes(b"via file://")
        other = ObjectStore(open_location("file://" + store.location.root))
        assert other.read_bytes(key) == b"via file://"


# ---- S3 (moto) --------------------------------------------------------------------
def _s3_client(endpoint: str, key: str = "testing-key", secret: str = "testing-secret"):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )


class TestS3Store(StoreContract):
    @pytest.fixture
    def store(self, s3_server) -> ObjectStore:  # type: ignore[no-untyped-def]
        self.client = _s3_client(s3_server.endpoint)
        self.s3_settings = s3_server.settings()
        return ObjectStore(open_location("s3://lepton/store", self.s3_settings))

    def overwrite_raw(self, store: ObjectStore, key: str, data: bytes) -> None:
        bucket, path = store.path_of(key).split("/", 1)
        self.client.put_object(Bucket=bucket, Key=path, Body=data)

    def leftovers(self, store: ObjectStore) -> list[str]:
        uploads = self.client.list_multipart_uploads(Bucket="lepton").get("Uploads", [])
        return [u["Key"] for u in uploads]

    def test_leftovers_sees_an_unfinished_upload(self, store: ObjectStore) -> None:
        """The probe used by the failed-write tests does detect a leftover."""
        self.client.create_multipart_upload(Bucket="lepton", Key="store/objects/x")
        assert self.leftovers(store) == ["store/objects/x"]

    def test_missing_bucket_is_a_storage_error_not_an_empty_store(self, s3_server) -> None:  # type: ignore[no-untyped-def]
        store = ObjectStore(open_location("s3://no-such-bucket/p", s3_server.settings()))
        key = b3(b"x")
        ops = {
            "check": store.check,
            "put_bytes": lambda: store.put_bytes(b"x"),
            "read_bytes": lambda: store.read_bytes(key),
            "exists": lambda: store.exists(key),
            "iter_keys": lambda: list(store.iter_keys()),
            "iter_records": lambda: list(store.iter_records("registry")),
        }
        for name, op in ops.items():
            with pytest.raises(StorageError) as e:
                op()
            assert "bucket does not exist" in str(e.value), name
            assert "no-such-bucket" in str(e.value), name

    def test_endpoint_down_fails_fast(self, tmp_path: Path) -> None:
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        store = _unreachable_store(port, max_attempts=1)
        src = tmp_path / "f"
        src.write_bytes(b"data")
        key = b3(b"data")
        ops = {
            "check": store.check,
            "exists": lambda: store.exists(key),  # never "missing" on a network error
            "put_bytes": lambda: store.put_bytes(b"data"),
            "put_file": lambda: store.put_file(src),
            "read_bytes": lambda: store.read_bytes(key),
            "get_file": lambda: store.get_file(key, tmp_path / "out"),
            "iter_keys": lambda: list(store.iter_keys()),
        }
        for name, op in ops.items():
            start = time.monotonic()
            with pytest.raises(StorageError) as e:
                op()
            assert time.monotonic() - start < 3, name
            assert "could not connect" in str(e.value).lower(), name
        assert not (tmp_path / "out").exists()

    def test_stalled_server_times_out_within_budget(self) -> None:
        """A server that accepts connections and never answers: read_timeout
        and max_attempts must bound the wait (s3fs alone retried 5 times)."""
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(64)  # the kernel accepts; nobody ever answers
            store = _unreachable_store(srv.getsockname()[1], max_attempts=1)
            start = time.monotonic()
            with pytest.raises(StorageError, match="(?i)timeout"):
                store.read_bytes(b3(b"x"))
            assert time.monotonic() - start < 6


def _unreachable_store(port: int, max_attempts: int) -> ObjectStore:
    settings = S3Settings(
        endpoint_url=f"http://127.0.0.1:{port}",
        key="k",
        secret="s",
        region="us-east-1",
        connect_timeout=1,
        read_timeout=1,
        max_attempts=max_attempts,
    )
    return ObjectStore(open_location("s3://lepton/p", settings))


# ---- S3 that checks credentials -------------------------------------------------
@pytest.fixture(scope="module")
def auth_s3() -> tuple[str, str, str]:
    """A second moto server that checks credentials: (endpoint, key, secret).

    moto authenticates every request once INITIAL_NO_AUTH_ACTION_COUNT
    requests have been served; we spend those 3 free requests creating an
    IAM user with an access key and an allow-all policy, so a correct key
    works and any other is refused, as on a real server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("moto server with authentication did not start")
                time.sleep(0.05)
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
            region_name="us-east-1",
        )
        iam.create_user(UserName="lepton")
        ak = iam.create_access_key(UserName="lepton")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="lepton", PolicyName="all", PolicyDocument=json.dumps(policy))
        _s3_client(endpoint, ak["AccessKeyId"], ak["SecretAccessKey"]).create_bucket(Bucket="secured")
        yield endpoint, ak["AccessKeyId"], ak["SecretAccessKey"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _auth_store(endpoint: str, key: str, secret: str) -> ObjectStore:
    settings = S3Settings(endpoint_url=endpoint, key=key, secret=secret, region="us-east-1", max_attempts=1)
    return ObjectStore(open_location("s3://secured/p", settings))


def test_s3_correct_credentials_work(auth_s3: tuple[str, str, str]) -> None:
    store = _auth_store(*auth_s3)
    store.check()
    key = store.put_bytes(b"authorised")
    assert store.read_bytes(key) == b"authorised"


@pytest.mark.parametrize("which", ["wrong-secret", "unknown-key"])
def test_s3_refused_credentials_are_a_storage_error(auth_s3: tuple[str, str, str], which: str) -> None:
    endpoint, key, secret = auth_s3
    store = (
        _auth_store(endpoint, key, "not-the-secret")
        if which == "wrong-secret"
        else _auth_store(endpoint, "AKIANOSUCHKEY", secret)
    )
    ops = {
        "check": store.check,
        "put_bytes": lambda: store.put_bytes(b"denied"),
        "read_bytes": lambda: store.read_bytes(b3(b"denied")),
        "exists": lambda: store.exists(b3(b"denied")),
        "iter_keys": lambda: list(store.iter_keys()),
    }
    for name, op in ops.items():
        with pytest.raises(StorageError, match="credentials") as e:
            op()
        assert isinstance(e.value, LeptonError), name


def test_read_whole_reads_to_the_end_of_a_file_that_grew_and_leaves_a_large_one(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """localio.read_whole reads a file at its fstat size + 1; a file that grew
    since (seen by that extra byte) is read on to its end, and one of
    ``limit`` bytes or more is left to the caller to stream."""
    from lepton.store import localio

    path = tmp_path / "f"
    data = os.urandom(3 * 2**20 + 5)
    path.write_bytes(data)
    assert localio.read_whole(str(path)) == data
    assert localio.read_whole(str(path), limit=len(data)) is None
    assert localio.read_whole(str(path), limit=len(data) + 1) == data
    real = os.fstat

    def stale(fd):  # type: ignore[no-untyped-def]
        st = real(fd)
        return os.stat_result((*st[:6], 1000, *st[7:]))  # st_size as it was before the file grew

    monkeypatch.setattr(os, "fstat", stale)
    assert localio.read_whole(str(path)) == data
