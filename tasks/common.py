"""What every task shares: the job description (JSON, passed between
tasks), opening the repository, cache keys from artifact ids, retries on
storage errors, and Prefect artifacts for the UI."""

from __future__ import annotations

import contextlib
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lepton import hashing
from lepton.errors import StorageError
from lepton.manifest import canonical_json
from lepton.pipeline.context import Context
from lepton.project import parse_project
from lepton.repo import open_repo


class Job(BaseModel):
    """Where a run works: the repository folder, the project config (as the
    object key of its bytes in the store, so a replay reads the same text),
    the logical run id, and whether earlier work may be reused."""

    model_config = ConfigDict(frozen=True)
    repo: str = Field(..., description="folder holding lepton.toml")
    config_key: str = Field(..., description="object key of the project config bytes")
    config_root: str = Field(..., description="folder that relative sources resolve against")
    run_id: str | None = None
    reuse: bool = True
    dataset: str | None = Field(None, description="pinned dataset version (else the config's source)")
    labels: str | None = Field(None, description="pinned labelset version (else the config's source)")


@contextlib.contextmanager
def context(job: Job) -> Iterator[Context]:
    repo = open_repo(job.repo)
    try:
        text = repo.store.read_bytes(job.config_key).decode()
        project = parse_project(tomllib.loads(text), f"config {hashing.short(job.config_key)}")
        yield Context(repo, project, Path(job.config_root), job.run_id, reuse=job.reuse)
    finally:
        repo.close()


def ids_cache_key(task_name: str):  # type: ignore[no-untyped-def]
    """A cache key made only of the job's repo and run inputs (artifact ids):
    a re-run with the same ids is served from the cache."""

    def key(_ctx: Any, params: dict[str, Any]) -> str | None:
        job: Job = params["job"]
        if not job.reuse:
            return None
        doc = {
            "task": task_name,
            "repo": str(Path(job.repo).resolve()),
            "config": job.config_key,
            **{k: v for k, v in params.items() if k != "job"},
        }
        return hashing.short(hashing.hash_bytes(canonical_json(doc)), 32)

    return key


def retry_on_storage(_task: Any, _run: Any, state: Any) -> bool:
    """Retry a task only when the store or registry failed (I/O), not on bad input."""
    try:
        state.result()
    except StorageError:
        return True
    except Exception:  # noqa: BLE001 - anything else is final
        return False
    return False


TASK_OPTIONS: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": 1,
    "retry_condition_fn": retry_on_storage,
    "persist_result": True,
    "result_serializer": "json",
}


def publish(key: str, markdown: str, table: list[dict[str, Any]] | None = None) -> None:
    """Markdown (and a table) artifact for the Prefect UI; a no-op outside a run."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact
    from prefect.context import get_run_context

    try:
        get_run_context()
    except Exception:  # noqa: BLE001 - called outside a flow/task run
        return
    create_markdown_artifact(key=key, markdown=markdown)
    if table:
        create_table_artifact(key=f"{key}-table", table=table)


@contextlib.contextmanager
def timed() -> Iterator[Any]:
    """Seconds spent in the block: ``with timed() as clock: ...; clock()``."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: round((end[0] if end else time.perf_counter()) - start, 6)
    end.append(time.perf_counter())


def short(id: str | None) -> str:
    return hashing.short(id) if id else "-"
