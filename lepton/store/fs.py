"""The one place where a URL becomes a filesystem. Core code receives the
filesystem; it never builds one itself."""

from __future__ import annotations

from dataclasses import dataclass

import fsspec
from fsspec.implementations.local import LocalFileSystem

from lepton.config import S3Settings
from lepton.errors import ConfigError


@dataclass(frozen=True)
class Location:
    """A filesystem and the root path inside it (no protocol prefix)."""

    fs: fsspec.AbstractFileSystem
    root: str
    url: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def join(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])


def s3_filesystem(s3: S3Settings) -> fsspec.AbstractFileSystem:
    try:
        import s3fs
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ConfigError("s3:// needs the s3 extra: pip install 'lepton[s3]'") from e
    client_kwargs = {}
    if s3.endpoint_url:
        client_kwargs["endpoint_url"] = s3.endpoint_url
    if s3.region:
        client_kwargs["region_name"] = s3.region
    fs = s3fs.S3FileSystem(
        key=s3.key,
        secret=s3.secret,
        client_kwargs=client_kwargs,
        config_kwargs={
            "connect_timeout": s3.connect_timeout,
            "read_timeout": s3.read_timeout,
            "retries": {"max_attempts": s3.max_attempts, "mode": "standard"},
        },
        # Each Repo owns its filesystem: no instance cache shared across repos.
        skip_instance_cache=True,
        use_listings_cache=False,
    )
    # s3fs retries on its own (5 tries, backoff) on top of botocore's
    # max_attempts: a stalled server then took 15 s with read_timeout=1 and
    # max_attempts=1. Let botocore's configured attempts be the only budget.
    fs.retries = 1
    return fs


def open_location(url: str, s3: S3Settings | None = None) -> Location:
    """Turn ``/path``, ``file:///path`` or ``s3://bucket/prefix`` into a Location."""
    if url.startswith("s3://"):
        path = url.removeprefix("s3://").strip("/")
        if not path:
            raise ConfigError(f"store URL {url!r} names no bucket")
        return Location(s3_filesystem(s3 or S3Settings()), path, url)
    if "://" in url and not url.startswith("file://"):
        raise ConfigError(f"unsupported store URL {url!r}: use a local path or s3://bucket/prefix")
    path = url.removeprefix("file://")
    return Location(LocalFileSystem(), path.rstrip("/") or "/", url)
