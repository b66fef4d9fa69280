"""Real backends for the tests: a temp folder, moto's S3 server on loopback
(reset per test, as s3fs's own suite does), SQLite in a temp file, and the
machine's PostgreSQL (one fresh schema per test)."""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from sqlalchemy import create_engine, text

from lepton.config import S3Settings, Settings
from lepton.data import ingest, linecuts
from lepton.repo import Repo
from lepton.store import ObjectStore, open_location

PG_ADMIN_URL = os.environ.get("LEPTON_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
S3_KEY, S3_SECRET = "testing-key", "testing-secret"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with the most slow tests first, each file's own order kept: the
    two workers of tests/run.sh (whole files each, in this order) then finish
    together instead of one waiting on the team stack at the end."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def settings(self, **kw) -> S3Settings:  # type: ignore[no-untyped-def]
        return S3Settings(
            endpoint_url=self.endpoint,
            key=S3_KEY,
            secret=S3_SECRET,
            region="us-east-1",
            connect_timeout=2,
            read_timeout=10,
            max_attempts=2,
            **kw,
        )

    def make_bucket(self, name: str) -> None:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
        ).create_bucket(Bucket=name)


@pytest.fixture(scope="session")
def _moto_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield S3Server(f"http://127.0.0.1:{port}")
    server.stop()


@pytest.fixture
def s3_server(_moto_server: S3Server) -> Iterator[S3Server]:
    """The moto server, wiped before each test, with an empty bucket 'lepton'."""
    requests.post(f"{_moto_server.endpoint}/moto-api/reset", timeout=10)
    _moto_server.make_bucket("lepton")
    yield _moto_server


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A registry URL on the machine's PostgreSQL, in a fresh schema."""
    schema = f"lepton_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not available: {e}")
    yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'registry.db'}"


# ---- chunk sizes ----------------------------------------------------------------
@pytest.fixture
def half_size_chunks(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Table chunks of ~2 MiB instead of ~4 (every size of the cut halved),
    for tests that need several chunks from a table of a few MB."""
    monkeypatch.setattr(linecuts, "AVG_BYTES", linecuts.AVG_BYTES // 2)
    monkeypatch.setattr(linecuts, "MIN_BYTES", linecuts.MIN_BYTES // 2)
    monkeypatch.setattr(linecuts, "CDC_MAX", linecuts.CDC_MAX // 2)
    monkeypatch.setattr(linecuts, "MAX_BYTES", linecuts.MAX_BYTES // 2)


# ---- stores ------------------------------------------------------------------
@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> ObjectStore:  # type: ignore[no-untyped-def]
    """An empty object store: a temp folder, or a prefix in the moto bucket."""
    if request.param == "local":
        return ObjectStore(open_location(str(tmp_path / "store")))
    server = request.getfixturevalue("s3_server")
    return ObjectStore(open_location("s3://lepton/store", server.settings()))


# ---- whole repositories --------------------------------------------------------
@pytest.fixture(params=["local-sqlite", "s3-postgres"])
def backend(request, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    """Settings for an empty repository on one of the two real stacks."""
    if request.param == "local-sqlite":
        return Settings.model_validate(
            {
                "store": {"url": str(tmp_path / "store")},
                "registry": {"url": f"sqlite:///{tmp_path / 'registry.db'}"},
            }
        )
    server = request.getfixturevalue("s3_server")
    url = request.getfixturevalue("pg_url")
    return Settings.model_validate(
        {
            "store": {"url": "s3://lepton/repo"},
            "registry": {"url": url},
            "s3": server.settings().model_dump(),
        }
    )


@pytest.fixture
def repo(backend: Settings) -> Iterator[Repo]:
    r = Repo(backend).ensure_ready()
    yield r
    r.close()


# ---- Prefect ---------------------------------------------------------------------
@pytest.fixture
def parsed(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """Bytes of every chunk the ingest parses."""
    seen: list[int] = []
    real = ingest._parse_chunk

    def spy(job, raw, *rest):  # type: ignore[no-untyped-def]
        seen.append(len(raw))
        return real(job, raw, *rest)

    monkeypatch.setattr(ingest, "_parse_chunk", spy)
    return seen


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A real Prefect API (prefect_test_harness: a server on a temporary
    database) with its own PREFECT_HOME, for the whole session."""
    home = tmp_path_factory.mktemp("prefect-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("PREFECT_HOME", str(home))
    mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    mp.setenv("PREFECT_LOGGING_LEVEL", "WARNING")
    import prefect.flow_engine
    from prefect.testing.utilities import prefect_test_harness

    # Sync flows wait ~1 s for a heartbeat thread at the end; not needed here.
    mp.setattr(prefect.flow_engine.BaseFlowRunEngine, "heartbeat_seconds", property(lambda self: None))
    with prefect_test_harness(server_startup_timeout=90):
        yield
    mp.undo()
