"""Configuration: ``lepton.toml`` in the project folder, overridden by
``LEPTON_*`` environment variables (pydantic-settings).

    [store]
    url = ".lepton/store"            # or s3://bucket/prefix

    [registry]
    url = "sqlite:///.lepton/registry.db"   # or postgresql+psycopg://...

    [s3]
    endpoint_url = "http://127.0.0.1:9000"
    key = "..."  secret = "..."  region = "us-east-1"
    connect_timeout = 5  read_timeout = 30  max_attempts = 4

Relative paths are resolved against the folder holding lepton.toml.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from lepton.errors import ConfigError

CONFIG_FILE = "lepton.toml"
DEFAULT_DIR = ".lepton"


class S3Settings(BaseModel):
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint; AWS when unset")
    key: str | None = Field(None, description="access key id (else the usual AWS chain)")
    secret: str | None = Field(None, description="secret access key")
    region: str | None = None
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(60.0, gt=0)
    max_attempts: int = Field(4, ge=1, le=20)


class StoreSettings(BaseModel):
    url: str = f"{DEFAULT_DIR}/store"


class RegistrySettings(BaseModel):
    url: str = f"sqlite:///{DEFAULT_DIR}/registry.db"
    timings: str | None = Field(
        None,
        description="append one JSON line per registry write (op, seconds, pid, time) to this file: "
        "for benchmarks and diagnosis (e.g. LEPTON_REGISTRY__TIMINGS=/tmp/writes.jsonl)",
    )


class Settings(BaseSettings):
    """Resolved configuration of one repository."""

    model_config = SettingsConfigDict(env_prefix="LEPTON_", env_nested_delimiter="__", extra="forbid")

    store: StoreSettings = StoreSettings()
    registry: RegistrySettings = RegistrySettings()
    s3: S3Settings = S3Settings()
    creator: str | None = Field(None, description="who is recorded as creator of new versions")


def find_config(start: Path) -> Path | None:
    """The nearest lepton.toml at or above ``start``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def load_settings(root: Path, overrides: dict[str, Any] | None = None) -> Settings:
    """Read ``root/lepton.toml`` (if any), apply env and overrides, resolve paths."""
    data: dict[str, Any] = {}
    path = root / CONFIG_FILE
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: {e}") from e
    for key, value in (overrides or {}).items():
        data.setdefault(key, {}).update(value)
    try:
        # Values from the file are init arguments, so LEPTON_* env vars must be
        # merged explicitly: env wins over the file.
        env = Settings()
        merged = _merge(data, env.model_dump(exclude_defaults=True))
        settings = Settings(**merged)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: field '{field}': {first['msg']}") from e
    return _resolve_paths(settings, root)


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _resolve_paths(settings: Settings, root: Path) -> Settings:
    store = settings.store.url
    if "://" not in store or store.startswith("file://"):
        local = Path(store.removeprefix("file://"))
        store = str(local if local.is_absolute() else (root / local).resolve())
    registry = settings.registry.url
    if registry.startswith("sqlite:///") and not registry.startswith("sqlite:////"):
        rel = registry.removeprefix("sqlite:///")
        if rel and rel != ":memory:":
            registry = f"sqlite:///{(root / rel).resolve()}"
    return settings.model_copy(
        update={
            "store": StoreSettings(url=store),
            "registry": settings.registry.model_copy(update={"url": registry}),
        }
    )


def write_config(root: Path, store_url: str | None, registry_url: str | None) -> Path:
    """Write lepton.toml for a new repository; refuse to overwrite one."""
    path = root / CONFIG_FILE
    if path.exists():
        raise ConfigError(f"{path} already exists")
    doc: dict[str, Any] = {
        "store": {"url": store_url or StoreSettings().url},
        "registry": {"url": registry_url or RegistrySettings().url},
    }
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(doc))
    return path
